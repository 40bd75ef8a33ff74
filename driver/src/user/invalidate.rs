//! Invalidation processing (ips_tidcache_invalidation, facts §9.3): read the kernel's queue
//! of invalidated TIDs and retire them.

use hfi_abi::uapi::event::TID_MMU_NOTIFY;

use super::cache::TidCache;
use super::entry::tid_key;
use super::error::CacheError;
use crate::uapi::HfiFd;

impl TidCache {
    /// If the event word has TID_MMU_NOTIFY, process invalidations.
    pub(super) fn check_events(&mut self, fd: &mut dyn HfiFd) -> Result<(), CacheError> {
        if fd.event_word() & TID_MMU_NOTIFY != 0 {
            self.process_invalidations(fd)?;
        }
        Ok(())
    }

    /// TID_INVAL_READ (the kernel clears TID_MMU_NOTIFY); for each TID reported that the cache
    /// holds and has not marked yet: mark it invalidated; if idle, detach it (out of both maps
    /// and the idle queue) and batch it for one TID_FREE. TIDs in use stay, marked, until
    /// their last release frees them. Reports for TIDs not held or already marked are stale
    /// and ignored.
    pub(super) fn process_invalidations(&mut self, fd: &mut dyn HfiFd) -> Result<(), CacheError> {
        let reported = fd.tid_inval_read().map_err(CacheError::InvalReadFailed)?;
        let mut batch = Vec::new();
        for tid in reported {
            let slot = self.by_key.get(&tid_key(tid)).copied();
            let Some((slot, e)) = slot.and_then(|s| Some((s, self.slab.get_mut(s)?))) else {
                self.stats.stale_invalidations += 1;
                continue;
            };
            if e.invalidated {
                self.stats.stale_invalidations += 1;
                continue;
            }
            e.invalidated = true;
            self.stats.invalidations_processed += 1;
            if e.refcount == 0 {
                if let Some(gone) = self.detach(slot) {
                    batch.push(gone.tid);
                }
            }
        }
        self.free_tids(fd, &batch)
    }
}
