//! The [`TidCache`] object: state, construction, release, cleanup and the removal helpers
//! shared by the other operations. Acquire lives in `acquire.rs`, registration and eviction
//! in `register.rs`, invalidation processing in `invalidate.rs`, the non-cached path in
//! `nocache.rs` and the consistency checker in `invariants.rs`.

use std::collections::BTreeMap;

use hfi_abi::uapi::cap::TID_UNMAP;
use hfi_abi::TidInfo;

use super::entry::{tid_key, CacheEntry};
use super::error::CacheError;
use super::hash::FoldMap;
use super::lru::LruSlab;
use super::stats::CacheStats;
use crate::uapi::{CtxtInfo, HfiFd};

/// Switches that re-introduce historical mistakes, for the bug catalog. All off by default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BugSwitches {
    /// Remove (eviction) checks the event word *before* TID_FREE instead of after it, the
    /// order ips_tidcache_remove warns against: an invalidation the kernel queues for the
    /// evicted TID while the free is in flight stays pending, the kernel reuses the entry for
    /// the next TID_UPDATE, and the stale invalidation is later applied to the new TID; an
    /// idle TID invalidated during the free can also be handed out by the same acquire.
    pub skip_recheck_after_free: bool,
}

/// Which idle entry the cache gives up when it needs room. PSM's ips_tidcache evicts the least
/// recently used one; `Mru` (the most recently released one) is a what-if for studies: it keeps
/// part of a cyclic working set larger than the cache instead of thrashing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Eviction {
    /// Least recently used first (PSM).
    #[default]
    Lru,
    /// Most recently used first.
    Mru,
}

/// The TIDs covering (a prefix of) an acquired range.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Acquired {
    /// tidinfo words in virtual-address order; together they map a contiguous range that
    /// starts at or before the requested address.
    pub tids: Vec<TidInfo>,
    /// Byte offset of the requested address into the first TID (the CTS `tsess_tidoffset`).
    pub tid_offset: u32,
    /// Bytes covered from the requested address; less than asked for a partial acquire.
    pub length: u32,
    /// TIDs found in the cache.
    pub hits: u32,
    /// TIDs registered by this acquire.
    pub misses: u32,
}

/// PSM2's user-space expected-receive TID cache (ips_tidcache, facts §9.3), or its non-cached
/// path (ips_tid, §9.2) when the fd reports HFI1_CAP_TID_UNMAP.
///
/// Structure: a slab of entries; an ordered map start VA → entry for range lookup (plus a hash
/// index of the same starts for exact hits); a map
/// [`tid_key`] → entry for invalidation and release; an LRU idle queue threaded through the
/// slab (new and released entries at the head, victims from the tail). Entries never overlap.
/// The cache talks to the kernel only through the [`HfiFd`] passed to each call.
#[derive(Clone, Debug)]
pub struct TidCache {
    pub(super) caching: bool,
    pub(super) capacity: u32,
    pub(super) bugs: BugSwitches,
    pub(super) eviction: Eviction,
    pub(super) slab: LruSlab<CacheEntry>,
    pub(super) by_va: BTreeMap<u64, u32>,
    /// The same index as `by_va` for exact-start point lookups (the hit fast path); never
    /// iterated.
    pub(super) by_start: FoldMap<u64, u32>,
    /// Point lookups only (never iterated).
    pub(super) by_key: FoldMap<u32, u32>,
    pub(super) stats: CacheStats,
    /// Non-cached path: TIDs handed out and not yet released, by key.
    pub(super) nocache_held: BTreeMap<u32, TidInfo>,
}

impl TidCache {
    /// A cache for an fd with this CTXT_INFO: capacity = `tid_limit` (the per-subcontext
    /// share); caching on only when HFI1_CAP_TID_UNMAP is clear in `runtime_flags`.
    pub fn new(fd_info: CtxtInfo) -> Self {
        Self::with_bugs(fd_info, BugSwitches::default())
    }

    /// [`TidCache::new`] with bug switches.
    pub fn with_bugs(fd_info: CtxtInfo, bugs: BugSwitches) -> Self {
        Self {
            caching: fd_info.runtime_flags & TID_UNMAP == 0,
            capacity: fd_info.tid_limit,
            bugs,
            eviction: Eviction::Lru,
            slab: LruSlab::default(),
            by_va: BTreeMap::new(),
            by_start: FoldMap::default(),
            by_key: FoldMap::default(),
            stats: CacheStats::default(),
            nocache_held: BTreeMap::new(),
        }
    }

    /// Whether this cache caches (TID_UNMAP clear).
    pub fn caching(&self) -> bool {
        self.caching
    }

    /// Most TIDs the cache holds at once (= `tid_limit`).
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// Sets the eviction order (LRU by default, as PSM).
    pub fn set_eviction(&mut self, eviction: Eviction) {
        self.eviction = eviction;
    }

    /// The eviction order in force.
    pub fn eviction(&self) -> Eviction {
        self.eviction
    }

    /// The bug switches in force.
    pub fn bugs(&self) -> BugSwitches {
        self.bugs
    }

    /// Entries held (cached mode) or TIDs handed out (non-cached mode).
    pub fn len(&self) -> usize {
        if self.caching {
            self.slab.len()
        } else {
            self.nocache_held.len()
        }
    }

    /// No entries held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entries on the idle queue.
    pub fn idle_len(&self) -> usize {
        self.slab.linked_len()
    }

    /// Counters, with the gauges filled in.
    pub fn stats(&self) -> CacheStats {
        CacheStats { entries: self.len() as u64, idle: self.slab.linked_len() as u64, ..self.stats }
    }

    /// Snapshot of every entry in virtual-address order.
    pub fn entries(&self) -> Vec<CacheEntry> {
        self.by_va.values().filter_map(|&slot| self.slab.get(slot).copied()).collect()
    }

    /// The entry holding `tid` (matched by [`tid_key`]).
    pub fn entry_for(&self, tid: TidInfo) -> Option<CacheEntry> {
        self.by_key.get(&tid_key(tid)).and_then(|&slot| self.slab.get(slot)).copied()
    }

    /// Idle entries from the LRU tail (next victim first).
    pub fn idle_lru_order(&self) -> Vec<CacheEntry> {
        self.slab.list_from_tail().into_iter().filter_map(|s| self.slab.get(s).copied()).collect()
    }

    /// ips_tidcache_release / ips_tid_release: give back the TIDs of `acq`. In cached mode each
    /// refcount drops by one; at zero an invalidated entry is removed and TID_FREEd (one call
    /// for all of them), a valid one goes to the idle head. In non-cached mode every TID is
    /// TID_FREEd. `acq` is checked first: a tidinfo not held fails with
    /// [`CacheError::NotAcquired`] and nothing is released.
    pub fn release(&mut self, fd: &mut dyn HfiFd, acq: &Acquired) -> Result<(), CacheError> {
        if !self.caching {
            return self.release_nocache(fd, acq);
        }
        let mut batch = Vec::new();
        if let [tid] = acq.tids.as_slice() {
            let slot = self.held_slot(*tid).ok_or(CacheError::NotAcquired(tid.raw()))?;
            self.drop_ref_slot(slot, &mut batch);
        } else {
            self.check_held(&acq.tids)?;
            for &tid in &acq.tids {
                self.drop_ref(tid, &mut batch);
            }
        }
        self.free_tids(fd, &batch)
    }

    /// The slot of the entry holding exactly `tid` with at least one reference.
    fn held_slot(&self, tid: TidInfo) -> Option<u32> {
        let slot = *self.by_key.get(&tid_key(tid))?;
        let e = self.slab.get(slot)?;
        (e.tid == tid && e.refcount > 0).then_some(slot)
    }

    /// Every tidinfo of `tids` names an entry with enough references for this list.
    fn check_held(&self, tids: &[TidInfo]) -> Result<(), CacheError> {
        let held = |tid: TidInfo| -> Option<u32> {
            let e = self.by_key.get(&tid_key(tid)).and_then(|&s| self.slab.get(s))?;
            (e.tid == tid).then_some(e.refcount)
        };
        let mut uses: BTreeMap<TidInfo, u32> = BTreeMap::new();
        for &tid in tids {
            let n = uses.entry(tid).or_insert(0);
            *n = n.saturating_add(1);
        }
        for (tid, n) in uses {
            if held(tid).is_none_or(|refs| refs < n) {
                return Err(CacheError::NotAcquired(tid.raw()));
            }
        }
        Ok(())
    }

    /// Drop one reference on `tid`; an entry reaching zero goes idle, or (invalidated) is
    /// detached and its tidinfo appended to `batch` for TID_FREE.
    pub(super) fn drop_ref(&mut self, tid: TidInfo, batch: &mut Vec<TidInfo>) {
        if let Some(&slot) = self.by_key.get(&tid_key(tid)) {
            self.drop_ref_slot(slot, batch);
        }
    }

    /// [`TidCache::drop_ref`] for a known slot.
    fn drop_ref_slot(&mut self, slot: u32, batch: &mut Vec<TidInfo>) {
        let Some(e) = self.slab.get_mut(slot) else { return };
        e.refcount = e.refcount.saturating_sub(1);
        if e.refcount > 0 {
            return;
        }
        if e.invalidated {
            if let Some(gone) = self.detach(slot) {
                batch.push(gone.tid);
            }
        } else {
            self.slab.push_front(slot);
        }
    }

    /// ips_tidcache_cleanup: process pending invalidations, then TID_FREE every TID the
    /// kernel still holds for this cache, in one call, and empty the cache. Entries still in
    /// use are freed too (their [`Acquired`] handles become stale). Returns the TIDs freed.
    pub fn cleanup(&mut self, fd: &mut dyn HfiFd) -> Result<u32, CacheError> {
        let all: Vec<TidInfo> = if self.caching {
            self.check_events(fd)?;
            let tids = self.by_va.values().filter_map(|&s| self.slab.get(s)).map(|e| e.tid);
            tids.collect()
        } else {
            self.nocache_held.values().copied().collect()
        };
        self.slab.clear();
        self.by_va.clear();
        self.by_start.clear();
        self.by_key.clear();
        self.nocache_held.clear();
        self.free_tids(fd, &all)?;
        Ok(all.len() as u32)
    }

    /// Take entry `slot` out of every structure (idle queue, both maps, slab).
    pub(super) fn detach(&mut self, slot: u32) -> Option<CacheEntry> {
        let e = self.slab.remove(slot)?;
        if self.by_va.get(&e.start) == Some(&slot) {
            self.by_va.remove(&e.start);
            self.by_start.remove(&e.start);
        }
        let key = tid_key(e.tid);
        if self.by_key.get(&key) == Some(&slot) {
            self.by_key.remove(&key);
        }
        Some(e)
    }

    /// One TID_FREE for `tids` (nothing for an empty list).
    pub(super) fn free_tids(
        &mut self,
        fd: &mut dyn HfiFd,
        tids: &[TidInfo],
    ) -> Result<(), CacheError> {
        if tids.is_empty() {
            return Ok(());
        }
        self.stats.tid_free_calls += 1;
        let asked = tids.len() as u32;
        match fd.tid_free(tids) {
            Ok(freed) if freed == asked => Ok(()),
            Ok(freed) => Err(CacheError::ShortFree { asked, freed }),
            Err(e) => Err(CacheError::FreeFailed(e)),
        }
    }

    /// Record the current size in `peak_entries`.
    pub(super) fn note_peak(&mut self) {
        self.stats.peak_entries = self.stats.peak_entries.max(self.len() as u64);
    }
}
