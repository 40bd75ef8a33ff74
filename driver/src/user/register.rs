//! Registration and eviction (ips_tidcache_register, ips_tidcache_evict, ips_tidcache_remove;
//! facts §9.3).

use hfi_abi::{TidInfo, PAGE_SIZE};

use super::cache::{Eviction, TidCache};
use super::entry::{tid_key, CacheEntry};
use super::error::CacheError;
use crate::errno::Errno;
use crate::uapi::{HfiFd, TidUpdate};

/// Largest page-aligned length a TID_UPDATE can carry.
pub(super) const MAX_UPDATE_LEN: u32 = !(PAGE_SIZE as u32 - 1);

impl TidCache {
    /// Register `[start, start + nbytes)` (`start` page aligned): make room if the cache is
    /// full (evict the LRU idle entry, or [`CacheError::NoProgress`] when nothing is idle),
    /// clip the length to `capacity` pages, TID_UPDATE; on ENOMEM with idle entries evict from
    /// the LRU tail until the evicted bytes cover the length and retry. The new entries go to
    /// the idle head, built backwards from the end of the mapped length. Returns the number
    /// of TIDs registered; the first starts at `start`.
    pub(super) fn register(
        &mut self,
        fd: &mut dyn HfiFd,
        start: u64,
        nbytes: u64,
    ) -> Result<u32, CacheError> {
        if self.slab.len() >= self.capacity as usize {
            let victim = self.first_victim().ok_or(CacheError::NoProgress)?;
            self.remove(fd, &[victim])?;
        }
        let worst_case = u64::from(self.capacity).saturating_mul(PAGE_SIZE);
        let length = u32::try_from(nbytes.min(worst_case)).unwrap_or(MAX_UPDATE_LEN);
        if length == 0 {
            return Err(CacheError::NoProgress);
        }
        loop {
            self.stats.tid_update_calls += 1;
            match fd.tid_update(start, length) {
                Ok(upd) => return self.insert_update(fd, start, length, upd),
                Err(Errno::NoMem) if self.slab.linked_len() > 0 => {
                    if self.evict_bytes(fd, u64::from(length))? < u64::from(length) {
                        return Err(CacheError::UpdateFailed(Errno::NoMem));
                    }
                }
                Err(Errno::Fault) => return Err(CacheError::Fault),
                Err(e) => return Err(CacheError::UpdateFailed(e)),
            }
        }
    }

    /// Check a TID_UPDATE reply and insert its TIDs; an inconsistent reply is handed back with
    /// TID_FREE and reported as [`CacheError::BadUpdate`].
    fn insert_update(
        &mut self,
        fd: &mut dyn HfiFd,
        start: u64,
        asked: u32,
        upd: TidUpdate,
    ) -> Result<u32, CacheError> {
        let pages: u64 = upd.tidlist.iter().map(|t| u64::from(t.npages())).sum();
        let mut keys: Vec<u32> = upd.tidlist.iter().map(|&t| tid_key(t)).collect();
        keys.sort_unstable();
        let consistent = !upd.tidlist.is_empty()
            && upd.length <= asked
            && pages * PAGE_SIZE == u64::from(upd.length)
            && upd.tidlist.iter().all(|t| t.npages() > 0)
            && keys.windows(2).all(|w| w.first() != w.get(1))
            && keys.iter().all(|k| !self.by_key.contains_key(k))
            && self.first_overlap(start, start + u64::from(upd.length)).is_none();
        if !consistent {
            // Best effort: the reply is already wrong, a failing free changes nothing.
            let _ = self.free_tids(fd, &upd.tidlist);
            return Err(CacheError::BadUpdate);
        }
        self.stats.bytes_registered += u64::from(upd.length);
        let mut end = start + u64::from(upd.length);
        for &tid in upd.tidlist.iter().rev() {
            end -= u64::from(tid.npages()) * PAGE_SIZE;
            let entry = CacheEntry {
                start: end,
                tid,
                npages: tid.npages(),
                invalidated: false,
                refcount: 0,
            };
            let Some(slot) = self.slab.insert(entry) else {
                return Err(CacheError::BadUpdate);
            };
            self.by_va.insert(end, slot);
            self.by_start.insert(end, slot);
            self.by_key.insert(tid_key(tid), slot);
            self.slab.push_front(slot);
        }
        self.note_peak();
        Ok(upd.tidlist.len() as u32)
    }

    /// The idle entry eviction takes first: the LRU tail (PSM), or the head with
    /// [`Eviction::Mru`].
    fn first_victim(&self) -> Option<u32> {
        match self.eviction {
            Eviction::Lru => self.slab.back(),
            Eviction::Mru => self.slab.front(),
        }
    }

    /// ips_tidcache_evict: pick idle entries from the LRU tail until their bytes reach `need`
    /// (or the queue is exhausted) and remove them. Returns the bytes evicted.
    fn evict_bytes(&mut self, fd: &mut dyn HfiFd, need: u64) -> Result<u64, CacheError> {
        let mut victims = Vec::new();
        let mut freed = 0u64;
        let mut cur = self.first_victim();
        while let Some(slot) = cur {
            if freed >= need {
                break;
            }
            freed += self.slab.get(slot).map_or(0, CacheEntry::len_bytes);
            victims.push(slot);
            cur = match self.eviction {
                Eviction::Lru => self.slab.prev_of(slot),
                Eviction::Mru => self.slab.next_of(slot),
            };
        }
        self.remove(fd, &victims)?;
        Ok(freed)
    }

    /// ips_tidcache_remove: detach the idle entries `slots`, TID_FREE them in one call, THEN
    /// re-check the event word and process invalidations: the kernel may have queued an
    /// invalidation for one of them while it was being freed, and that report must be consumed
    /// (and ignored) before the kernel can hand the same entry out again. With
    /// [`super::BugSwitches::skip_recheck_after_free`] the check runs before the free instead.
    pub(super) fn remove(&mut self, fd: &mut dyn HfiFd, slots: &[u32]) -> Result<(), CacheError> {
        let mut tids: Vec<TidInfo> = Vec::with_capacity(slots.len());
        for &slot in slots {
            if self.slab.get(slot).is_some_and(CacheEntry::is_idle) {
                tids.extend(self.detach(slot).map(|e| e.tid));
            }
        }
        self.stats.evictions += tids.len() as u64;
        if self.bugs.skip_recheck_after_free {
            self.check_events(fd)?;
            return self.free_tids(fd, &tids);
        }
        self.free_tids(fd, &tids)?;
        self.check_events(fd)
    }

    /// The lowest-addressed entry overlapping `[start, end)` (entries do not overlap, so one
    /// starting exactly at `start` is it).
    pub(super) fn first_overlap(&self, start: u64, end: u64) -> Option<u32> {
        if start >= end {
            return None;
        }
        if let Some(&slot) = self.by_start.get(&start) {
            return Some(slot);
        }
        if let Some((_, &slot)) = self.by_va.range(..=start).next_back() {
            if self.slab.get(slot).is_some_and(|e| e.end() > start) {
                return Some(slot);
            }
        }
        self.by_va.range(start..end).next().map(|(_, &slot)| slot)
    }
}
