//! The non-cached path (ips_tid_acquire / ips_tid_release, facts §9.2), used when the fd
//! reports HFI1_CAP_TID_UNMAP: one TID_UPDATE per acquire, one TID_FREE per release.

use hfi_abi::PAGE_SIZE;

use super::cache::{Acquired, TidCache};
use super::entry::tid_key;
use super::error::CacheError;
use super::register::MAX_UPDATE_LEN;
use crate::errno::Errno;
use crate::uapi::HfiFd;

impl TidCache {
    /// TID_UPDATE `[page_va, end)` clipped to `capacity` pages; [`CacheError::NoProgress`]
    /// when every TID of the fd is out.
    pub(super) fn acquire_nocache(
        &mut self,
        fd: &mut dyn HfiFd,
        va: u64,
        len: u32,
        page_va: u64,
        end: u64,
    ) -> Result<Acquired, CacheError> {
        let in_use = self.nocache_held.len() as u64;
        if in_use >= u64::from(self.capacity) {
            return Err(CacheError::NoProgress);
        }
        let worst_case = u64::from(self.capacity).saturating_mul(PAGE_SIZE);
        let asked = u32::try_from((end - page_va).min(worst_case)).unwrap_or(MAX_UPDATE_LEN);
        self.stats.tid_update_calls += 1;
        let upd = match fd.tid_update(page_va, asked) {
            Ok(upd) => upd,
            Err(Errno::Fault) => return Err(CacheError::Fault),
            Err(e) => return Err(CacheError::UpdateFailed(e)),
        };
        let pages: u64 = upd.tidlist.iter().map(|t| u64::from(t.npages())).sum();
        let fresh = upd.tidlist.iter().all(|&t| !self.nocache_held.contains_key(&tid_key(t)));
        if upd.tidlist.is_empty()
            || upd.length > asked
            || pages * PAGE_SIZE != u64::from(upd.length)
            || !fresh
        {
            let _ = self.free_tids(fd, &upd.tidlist);
            return Err(CacheError::BadUpdate);
        }
        self.stats.bytes_registered += u64::from(upd.length);
        for &t in &upd.tidlist {
            self.nocache_held.insert(tid_key(t), t);
        }
        self.note_peak();
        let covered = (page_va + u64::from(upd.length)).min(va + u64::from(len)) - va;
        let misses = upd.tidlist.len() as u32;
        Ok(Acquired {
            tids: upd.tidlist,
            tid_offset: (va - page_va) as u32,
            length: u32::try_from(covered).unwrap_or(len),
            hits: 0,
            misses,
        })
    }

    /// TID_FREE every TID of `acq` (all must be held).
    pub(super) fn release_nocache(
        &mut self,
        fd: &mut dyn HfiFd,
        acq: &Acquired,
    ) -> Result<(), CacheError> {
        let mut seen = std::collections::BTreeSet::new();
        for &t in &acq.tids {
            if self.nocache_held.get(&tid_key(t)) != Some(&t) || !seen.insert(tid_key(t)) {
                return Err(CacheError::NotAcquired(t.raw()));
            }
        }
        for &t in &acq.tids {
            self.nocache_held.remove(&tid_key(t));
        }
        self.free_tids(fd, &acq.tids)
    }
}
