//! [`ModelFd`]: an [`HfiFd`] backed by a simple in-memory model of the kernel's expected-receive
//! side, for the user library's workloads, perf fixtures, benches and catalog probes. The
//! driver's tests put fault switches on top (`mock::MockFd`, feature `test-utils`).
//!
//! It behaves like the hfi1 expected-receive ioctls as user space sees them (facts §5, §6.2–6.5)
//! without any device: TID_UPDATE splits the range into page sets the way find_phys_blocks
//! does (power-of-two runs of at most [`ModelFd::max_pages_per_tid`] pages, broken where the
//! caller says physical contiguity breaks), reserves at most `tid_limit` TIDs, and hands out the
//! lowest free relative entries (so a freed entry is reused at once, as the kernel's group
//! allocator tends to). Invalidations are queued once per TID and raise TID_MMU_NOTIFY;
//! TID_INVAL_READ drains the queue and clears the bit; invalidated TIDs stay allocated until
//! TID_FREE (both kernel eras agree on that, §6.4).
//!
//! Beyond 2048 TIDs (the 11-bit relative entry of real tidinfo) the model encodes the upper
//! bits of the entry in the reserved tidinfo bits 19:11, so up to 2^20 unique TIDs exist; the
//! first 2048 are encoded exactly as hardware does.
//!
//! The caller plays the rest of the kernel: a pin limit (ENOMEM), physical breaks, and MMU
//! invalidations, now or *during* the next TID_FREE (the kernel invalidating a TID while user
//! space is freeing it). Counters record calls and every misuse the model can see: frees of
//! TIDs not held, and invalidation reports delivered after the entry was reused for another
//! buffer.

use std::collections::{BTreeMap, BTreeSet};

use hfi_abi::uapi::cap::TID_UNMAP;
use hfi_abi::uapi::event::TID_MMU_NOTIFY;
use hfi_abi::{TidInfo, PAGE_SIZE};
use serde::Serialize;

use crate::errno::Errno;
use crate::uapi::{CtxtInfo, HfiFd, TidUpdate};

/// Relative entries the model can name (11 bits of real tidinfo plus 9 reserved bits).
pub const MAX_MODEL_TIDS: u32 = 1 << 20;

/// Largest power-of-two TID the kernel programs (MAX_EXPECTED_BUFFER, 2 MiB).
pub const DEFAULT_MAX_PAGES_PER_TID: u32 = 512;

/// Bit position of the model's extra entry bits inside the reserved tidinfo field.
const EXTRA_SHIFT: u32 = 11;
/// Mask of the model's extra entry bits (9 bits).
const EXTRA_MASK: u32 = 0x1FF;

/// tidinfo for relative entry `rel` of `npages` pages: hardware encoding for `rel` < 2048,
/// extra entry bits in the reserved field above. `None` when a value does not fit.
pub fn model_tidinfo(rel: u32, npages: u32) -> Option<TidInfo> {
    let base = TidInfo::for_entry(rel & 0x7FF, npages)?;
    let extra = rel >> 11;
    (extra <= EXTRA_MASK).then_some(TidInfo(base.raw() | extra << EXTRA_SHIFT))
}

/// The relative entry a model tidinfo names (inverse of [`model_tidinfo`]); `None` for CTRL 0/3.
pub fn model_rel(tid: TidInfo) -> Option<u32> {
    let low = tid.rel_entry()?;
    Some(((tid.raw() >> EXTRA_SHIFT) & EXTRA_MASK) << 11 | low)
}

/// One TID the model kernel holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelTid {
    /// The tidinfo handed out.
    pub tid: TidInfo,
    /// Virtual address of its first page.
    pub vaddr: u64,
    /// Pages mapped.
    pub npages: u32,
    /// Programming generation (increases with every TID programmed).
    pub generation: u64,
    /// Invalidated by the (simulated) MMU notifier; still allocated until TID_FREE.
    pub invalidated: bool,
}

impl ModelTid {
    /// One past the last byte mapped.
    pub fn end(&self) -> u64 {
        self.vaddr + u64::from(self.npages) * PAGE_SIZE
    }
}

/// What the model saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ModelCounters {
    /// TID_UPDATE calls.
    pub tid_update_calls: u64,
    /// TID_UPDATE calls that returned an error.
    pub tid_update_errors: u64,
    /// TID_FREE calls.
    pub tid_free_calls: u64,
    /// TID_INVAL_READ calls.
    pub tid_inval_read_calls: u64,
    /// ACK_EVENT calls.
    pub ack_event_calls: u64,
    /// TIDs programmed.
    pub tids_programmed: u64,
    /// TIDs freed.
    pub tids_freed: u64,
    /// TIDs freed that the notifier had invalidated.
    pub frees_of_invalidated: u64,
    /// TID_FREE entries naming a TID not held (double free or stale tidinfo): EBADF.
    pub bad_frees: u64,
    /// Invalidations queued (TID_MMU_NOTIFY raised).
    pub invalidations_queued: u64,
    /// Invalidation reports delivered by TID_INVAL_READ while the entry had meanwhile been
    /// freed *and reprogrammed* for another buffer: user space will take the new TID for
    /// invalidated (the ips_tidcache_remove ordering bug).
    pub stale_reports_on_reused: u64,
    /// Invalidation reports delivered after the entry was freed and not yet reused: harmless,
    /// the cache ignores them.
    pub stale_reports_on_free: u64,
    /// Most TIDs held at once.
    pub peak_live: u64,
}

/// The programmable fd. See the module docs.
#[derive(Clone, Debug)]
pub struct ModelFd {
    info: CtxtInfo,
    max_pages_per_tid: u32,
    expected_count: u32,
    breaks: BTreeSet<u64>,
    live: BTreeMap<u32, ModelTid>,
    /// Freed entries below `high_water`, reused lowest first.
    freed: BTreeSet<u32>,
    high_water: u32,
    generation: u64,
    queue: Vec<(TidInfo, u32, u64)>,
    events: u64,
    pin_limit_pages: Option<u64>,
    pinned_pages: u64,
    on_next_free: Vec<(u64, u64)>,
    counters: ModelCounters,
}

impl ModelFd {
    /// A caching fd (TID_UNMAP clear) with this `tid_limit`; expected_count = tid_limit.
    pub fn new(tid_limit: u32) -> Self {
        Self::with_info(CtxtInfo { tid_limit, ..CtxtInfo::default() })
    }

    /// An fd reporting this CTXT_INFO.
    pub fn with_info(info: CtxtInfo) -> Self {
        Self {
            info,
            max_pages_per_tid: DEFAULT_MAX_PAGES_PER_TID,
            expected_count: info.tid_limit.max(1),
            breaks: BTreeSet::new(),
            live: BTreeMap::new(),
            freed: BTreeSet::new(),
            high_water: 0,
            generation: 0,
            queue: Vec::new(),
            events: 0,
            pin_limit_pages: None,
            pinned_pages: 0,
            on_next_free: Vec::new(),
            counters: ModelCounters::default(),
        }
    }

    /// Report HFI1_CAP_TID_UNMAP (caching off).
    pub fn nocache(mut self) -> Self {
        self.info.runtime_flags |= TID_UNMAP;
        self
    }

    /// Largest TID in pages, rounded down to a power of two in 1..=1024 (default 512).
    pub fn max_pages_per_tid(mut self, pages: u32) -> Self {
        let p = pages.clamp(1, 1024);
        self.max_pages_per_tid = 1 << (31 - p.leading_zeros());
        self
    }

    /// TID_UPDATE fails with EINVAL above this many pages (default: tid_limit).
    pub fn expected_count(mut self, pages: u32) -> Self {
        self.expected_count = pages;
        self
    }

    /// Pages this fd may hold pinned; TID_UPDATE beyond it fails with ENOMEM (hfi1_can_pin_pages).
    pub fn pin_limit_pages(mut self, limit: Option<u64>) -> Self {
        self.pin_limit_pages = limit;
        self
    }

    /// A new physically contiguous run starts at the page holding `va`.
    pub fn phys_break(&mut self, va: u64) {
        self.breaks.insert(va / PAGE_SIZE);
    }

    /// The MMU notifier fires for `[va, va + len)`: every held, not yet invalidated TID that
    /// overlaps is marked and queued, and TID_MMU_NOTIFY is raised. Returns how many.
    pub fn invalidate_range(&mut self, va: u64, len: u64) -> u32 {
        let end = va.saturating_add(len);
        let hit: Vec<u32> = self
            .live
            .iter()
            .filter(|(_, m)| !m.invalidated && m.vaddr < end && m.end() > va)
            .map(|(&rel, _)| rel)
            .collect();
        for &rel in &hit {
            self.invalidate_rel(rel);
        }
        hit.len() as u32
    }

    /// Invalidate one held TID (as [`ModelFd::invalidate_range`]); false if not held or already
    /// invalidated.
    pub fn invalidate_tid(&mut self, tid: TidInfo) -> bool {
        match model_rel(tid) {
            Some(rel) if self.live.get(&rel).is_some_and(|m| m.tid == tid && !m.invalidated) => {
                self.invalidate_rel(rel);
                true
            }
            _ => false,
        }
    }

    /// Invalidate `[va, va + len)` at the start of the next TID_FREE, before it frees anything:
    /// the kernel's notifier racing with user space's free.
    pub fn invalidate_on_next_free(&mut self, va: u64, len: u64) {
        self.on_next_free.push((va, len));
    }

    /// Raise event bits (other than through invalidation).
    pub fn raise_events(&mut self, bits: u64) {
        self.events |= bits;
    }

    /// The counters.
    pub fn counters(&self) -> ModelCounters {
        self.counters
    }

    /// Every TID held, by relative entry.
    pub fn live_tids(&self) -> Vec<ModelTid> {
        self.live.values().copied().collect()
    }

    /// Number of TIDs held.
    pub fn live_count(&self) -> usize {
        self.live.len()
    }

    /// The held TID this tidinfo names (exact tidinfo match).
    pub fn lookup(&self, tid: TidInfo) -> Option<ModelTid> {
        self.live.get(&model_rel(tid)?).filter(|m| m.tid == tid).copied()
    }

    /// Held and not invalidated: safe to hand to a sender.
    pub fn is_valid(&self, tid: TidInfo) -> bool {
        self.lookup(tid).is_some_and(|m| !m.invalidated)
    }

    /// Pages pinned for held TIDs.
    pub fn pinned_pages(&self) -> u64 {
        self.pinned_pages
    }

    /// Invalidation reports waiting for TID_INVAL_READ.
    pub fn pending_invalidations(&self) -> usize {
        self.queue.len()
    }

    fn invalidate_rel(&mut self, rel: u32) {
        if let Some(m) = self.live.get_mut(&rel) {
            m.invalidated = true;
            self.queue.push((m.tid, rel, m.generation));
            self.events |= TID_MMU_NOTIFY;
            self.counters.invalidations_queued += 1;
        }
    }

    /// find_phys_blocks: page counts of the page sets for `npages` pages from `first_page`.
    fn page_sets(&self, first_page: u64, npages: u64) -> Vec<u32> {
        let mut sets = Vec::new();
        let end = first_page + npages;
        let mut cur = first_page;
        while cur < end {
            let run_end = self.breaks.range(cur + 1..end).next().copied().unwrap_or(end);
            let mut run = run_end - cur;
            while run > 0 {
                let max = u64::from(self.max_pages_per_tid);
                let take = if run > max {
                    max
                } else if !run.is_power_of_two() {
                    1 << (63 - run.leading_zeros())
                } else {
                    run
                };
                sets.push(take as u32);
                run -= take;
            }
            cur = run_end;
        }
        sets
    }

    fn alloc_rel(&mut self) -> Option<u32> {
        if let Some(rel) = self.freed.pop_first() {
            return Some(rel);
        }
        let rel = self.high_water;
        if rel >= MAX_MODEL_TIDS {
            return None;
        }
        self.high_water += 1;
        Some(rel)
    }

    /// TID_UPDATE, mapping at most `cap_bytes` (rounded down to pages) when given.
    fn update(
        &mut self,
        vaddr: u64,
        length: u32,
        cap_bytes: Option<u32>,
    ) -> Result<TidUpdate, Errno> {
        if vaddr % PAGE_SIZE != 0 || length == 0 {
            return Err(Errno::Inval);
        }
        let mut npages = u64::from(length).div_ceil(PAGE_SIZE);
        if npages > u64::from(self.expected_count) {
            return Err(Errno::Inval);
        }
        if vaddr.checked_add(npages * PAGE_SIZE).is_none() {
            return Err(Errno::Fault);
        }
        if let Some(bytes) = cap_bytes {
            npages = npages.min(u64::from(bytes) / PAGE_SIZE);
        }
        if npages == 0 {
            return Err(Errno::NoSpc);
        }
        if self.pin_limit_pages.is_some_and(|lim| self.pinned_pages + npages > lim) {
            return Err(Errno::NoMem);
        }
        let sets = self.page_sets(vaddr / PAGE_SIZE, npages);
        let avail = (self.info.tid_limit as usize).saturating_sub(self.live.len());
        let mut tidlist = Vec::with_capacity(sets.len().min(avail));
        let mut mapped = 0u64;
        for &pages in sets.iter().take(avail) {
            let Some(rel) = self.alloc_rel() else { break };
            let Some(tid) = model_tidinfo(rel, pages) else {
                self.freed.insert(rel);
                break;
            };
            self.generation += 1;
            let m = ModelTid {
                tid,
                vaddr: vaddr + mapped * PAGE_SIZE,
                npages: pages,
                generation: self.generation,
                invalidated: false,
            };
            self.live.insert(rel, m);
            tidlist.push(tid);
            mapped += u64::from(pages);
        }
        if tidlist.is_empty() {
            return Err(Errno::NoSpc);
        }
        self.pinned_pages += mapped;
        self.counters.tids_programmed += tidlist.len() as u64;
        self.counters.peak_live = self.counters.peak_live.max(self.live.len() as u64);
        Ok(TidUpdate { tidlist, length: (mapped * PAGE_SIZE) as u32 })
    }

    /// TID_UPDATE as the [`HfiFd`] impl runs it, counted: failing with `refuse` before anything
    /// else, or mapping at most `cap_bytes`. A seam of `mock::MockFd`.
    pub(super) fn tid_update_with(
        &mut self,
        vaddr: u64,
        length: u32,
        refuse: Option<Errno>,
        cap_bytes: Option<u32>,
    ) -> Result<TidUpdate, Errno> {
        self.counters.tid_update_calls += 1;
        let r = match refuse {
            Some(e) => Err(e),
            None => self.update(vaddr, length, cap_bytes),
        };
        if r.is_err() {
            self.counters.tid_update_errors += 1;
        }
        r
    }

    /// TID_FREE as the [`HfiFd`] impl runs it, failing with `refuse` (no TID freed) once the
    /// invalidations queued for the next free have fired. A seam of `mock::MockFd`.
    pub(super) fn tid_free_with(
        &mut self,
        tids: &[TidInfo],
        refuse: Option<Errno>,
    ) -> Result<u32, Errno> {
        self.counters.tid_free_calls += 1;
        for (va, len) in std::mem::take(&mut self.on_next_free) {
            self.invalidate_range(va, len);
        }
        if let Some(e) = refuse {
            return Err(e);
        }
        if tids.len() > self.live.len() {
            return Err(Errno::Inval);
        }
        let mut freed = 0u32;
        for &tid in tids {
            let held =
                model_rel(tid).filter(|rel| self.live.get(rel).is_some_and(|m| m.tid == tid));
            let Some(rel) = held else {
                self.counters.bad_frees += 1;
                return Err(Errno::BadF);
            };
            if let Some(m) = self.live.remove(&rel) {
                self.pinned_pages = self.pinned_pages.saturating_sub(u64::from(m.npages));
                if m.invalidated {
                    self.counters.frees_of_invalidated += 1;
                }
            }
            self.freed.insert(rel);
            freed += 1;
            self.counters.tids_freed += 1;
        }
        Ok(freed)
    }
}

impl HfiFd for ModelFd {
    fn ctxt_info(&self) -> CtxtInfo {
        self.info
    }

    fn tid_update(&mut self, vaddr: u64, length: u32) -> Result<TidUpdate, Errno> {
        self.tid_update_with(vaddr, length, None, None)
    }

    fn tid_free(&mut self, tids: &[TidInfo]) -> Result<u32, Errno> {
        self.tid_free_with(tids, None)
    }

    fn tid_inval_read(&mut self) -> Result<Vec<TidInfo>, Errno> {
        self.counters.tid_inval_read_calls += 1;
        let queue = std::mem::take(&mut self.queue);
        for &(_, rel, generation) in &queue {
            match self.live.get(&rel) {
                Some(m) if m.generation != generation => self.counters.stale_reports_on_reused += 1,
                Some(_) => {}
                None => self.counters.stale_reports_on_free += 1,
            }
        }
        self.events &= !TID_MMU_NOTIFY;
        Ok(queue.into_iter().map(|(tid, _, _)| tid).collect())
    }

    fn event_word(&self) -> u64 {
        self.events
    }

    fn ack_event(&mut self, bits: u64) -> Result<(), Errno> {
        self.counters.ack_event_calls += 1;
        self.events &= !bits;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tidinfo_roundtrip_beyond_2048() {
        for rel in [0, 1, 2047, 2048, 9999, MAX_MODEL_TIDS - 1] {
            let t = model_tidinfo(rel, 3).unwrap();
            assert_eq!((model_rel(t), t.npages()), (Some(rel), 3));
        }
        assert_eq!(model_tidinfo(MAX_MODEL_TIDS, 1), None);
        assert_eq!(model_tidinfo(5, 1), TidInfo::for_entry(5, 1));
    }

    #[test]
    fn update_splits_like_find_phys_blocks() {
        let mut fd = ModelFd::new(64).max_pages_per_tid(8);
        // 13 pages contiguous: 8 + 4 + 1.
        let u = fd.tid_update(0x10000, 13 * 4096).unwrap();
        assert_eq!(u.tidlist.iter().map(|t| t.npages()).collect::<Vec<_>>(), vec![8, 4, 1]);
        assert_eq!(u.length, 13 * 4096);
        // A break after 3 pages: 2 + 1, then 4.
        fd.phys_break(0x100000 + 3 * 4096);
        let u = fd.tid_update(0x100000, 7 * 4096).unwrap();
        assert_eq!(u.tidlist.iter().map(|t| t.npages()).collect::<Vec<_>>(), vec![2, 1, 4]);
        assert_eq!(fd.pinned_pages(), 20);
        let held: Vec<u64> = fd.live_tids().iter().map(|m| m.vaddr).collect();
        assert_eq!(held.len(), 6);
    }

    #[test]
    fn tid_limit_clamps_and_then_enospc() {
        let mut fd = ModelFd::new(2).max_pages_per_tid(1).expected_count(64);
        let u = fd.tid_update(0, 5 * 4096).unwrap();
        assert_eq!((u.tidlist.len(), u.length), (2, 8192));
        assert_eq!(fd.tid_update(0x10000, 4096), Err(Errno::NoSpc));
        assert_eq!(fd.tid_free(&u.tidlist[..1]), Ok(1));
        // The freed entry is reused first.
        let again = fd.tid_update(0x20000, 4096).unwrap();
        assert_eq!(model_rel(again.tidlist[0]), model_rel(u.tidlist[0]));
    }

    #[test]
    fn double_free_is_ebadf_and_counted() {
        let mut fd = ModelFd::new(4);
        let a = fd.tid_update(0, 4096).unwrap().tidlist;
        let _b = fd.tid_update(0x10000, 4096).unwrap();
        assert_eq!(fd.tid_free(&a), Ok(1));
        assert_eq!(fd.tid_free(&a), Err(Errno::BadF));
        assert_eq!(fd.counters().bad_frees, 1);
    }

    #[test]
    fn invalidation_queue_and_stale_reports() {
        let mut fd = ModelFd::new(4);
        let a = fd.tid_update(0, 4096).unwrap().tidlist[0];
        assert_eq!(fd.invalidate_range(0, 1), 1);
        assert_eq!(fd.invalidate_range(0, 1), 0, "queued once");
        assert!(!fd.is_valid(a));
        assert_eq!(fd.event_word() & TID_MMU_NOTIFY, TID_MMU_NOTIFY);
        // Freed and reprogrammed before the report is read: a stale report on a reused entry.
        assert_eq!(fd.tid_free(&[a]), Ok(1));
        let b = fd.tid_update(0x5000, 4096).unwrap().tidlist[0];
        assert_eq!(model_rel(a), model_rel(b));
        assert_eq!(fd.tid_inval_read().unwrap(), vec![a]);
        assert_eq!(fd.event_word(), 0);
        assert_eq!(fd.counters().stale_reports_on_reused, 1);
        // Invalidation racing with a free.
        fd.invalidate_on_next_free(0x5000, 4096);
        assert_eq!(fd.tid_free(&[b]), Ok(1));
        assert_eq!(fd.pending_invalidations(), 1);
        assert_eq!(fd.tid_inval_read().unwrap().len(), 1);
        assert_eq!(fd.counters().stale_reports_on_free, 1);
        assert_eq!(fd.counters().frees_of_invalidated, 2);
        fd.raise_events(1);
        fd.ack_event(1).unwrap();
        assert_eq!(fd.event_word(), 0);
    }
}
