//! One simulated process: its VMAs, its page table, its interval notifiers, its pinned-page
//! accounting and its DMA map table.
//!
//! # Two-phase invalidation
//!
//! Every operation that removes or changes a mapping is split in two:
//!
//! 1. **begin** (`begin_munmap`, `begin_shrink`, `begin_mremap`, `begin_madvise_dontneed`)
//!    validates the request, bumps the sequence number of every interval notifier overlapping
//!    the affected range and returns a [`PendingUnmap`] token listing one [`Invalidation`] per
//!    such notifier. Nothing in the page table has changed yet: like `invalidate_range_start`,
//!    the old pages are still mapped.
//! 2. The caller delivers each invalidation to the driver. The driver may call back into this
//!    address space in between (unpin pages, remove notifiers, read sequence numbers, even pin:
//!    the old pages are still there). Only operations that would change the layout (mmap,
//!    another begin, faulting pages in) are refused with `Busy`: the mmap lock is held for write.
//! 3. **commit** applies the change: page-table entries go, frames are freed, or orphaned when
//!    still pinned (freed at their last unpin), and every notifier that was being invalidated
//!    gets its sequence bumped once more.
//!
//! Why: a notifier callback must never re-enter the code that is changing the mapping, nor
//! allocate under the lock the invalidation path holds (anchors §1.2 libfabric, hfi1 4.6-era
//! mmap_sem re-entry fixes). Here the callback runs while *no* borrow of the page table is live,
//! so calling back in is safe by construction, and the `_with` helpers (`munmap_with`, ...) run
//! begin → callback per invalidation → commit.
//!
//! # Sequence numbers
//!
//! Each notifier has `seq` and an `invalidating` flag. Begin bumps `seq` (the value carried in
//! the [`Invalidation`]) and sets the flag; commit bumps `seq` again and clears it.
//! `read_retry(id, s)` is true while the flag is set or when `seq != s`. Linux's
//! `mmu_interval_read_begin` sleeps while an invalidation is in progress; a deterministic model
//! cannot sleep, so `read_begin` returns at once, and the value it returns during an invalidation
//! is retired by the commit: `read_retry` reports it. A notifier inserted while an invalidation
//! of its range is pending starts in the invalidating state for the same reason (Linux defers the
//! insert and makes its readers wait). Spurious retries are allowed; missed ones are not.
//!
//! # Choices
//!
//! - Mappings are populated at mmap time (`MAP_POPULATE`), so pinning is deterministic. After
//!   `madvise(MADV_DONTNEED)` the range stays mapped with no frames; `touch` or `pin_pages`
//!   fault fresh frames in (allocated with the VMA's [`Contiguity`]).
//! - `mmap_fixed` has `MAP_FIXED_NOREPLACE` semantics: it refuses to overlap an existing
//!   mapping. Replace a mapping with `munmap_with` then `mmap_fixed`.
//! - `mremap` that moves sends [`InvalidateEvent::Unmap`] for the old range, as the kernel's
//!   `move_page_tables` does (`MMU_NOTIFY_UNMAP`); the frames move with the mapping. Growing in
//!   place sends nothing. Shrinking sends `Unmap` for the removed tail.
//! - An [`Invalidation`] carries the operation's whole range (clipped to the mapped span), not
//!   the notifier's intersection with it, as the kernel's `mmu_notifier_range` does.
//! - `pinned_vm` is **not** changed by `pin_pages`/`unpin_pages`: hfi1 adds to
//!   `mm->pinned_vm` itself after pinning (`hfi1_acquire_user_pages`) and subtracts the
//!   *requested* count on release. The driver calls `account_pinned(±n)`, so accounting bugs
//!   (the 2016 `+= npages` vs `+= pinned` class) stay visible. It is signed like the kernel's.
//! - DMA mapping is identity (IOVA = PA, no IOMMU) with a counted map table: unmapping an
//!   unknown IOVA is counted, never a panic, and [`AddressSpace::dma_maps_live`] lets teardown
//!   tests check every map is gone.

use std::collections::BTreeMap;

use crate::error::{
    DmaMapError, InvariantViolation, MmapError, NotifierError, PinError, UnmapError,
};
use crate::frames::{Contiguity, FrameState, SharedFramePool};
use crate::types::{page_align_up, Iova, NotifierId, OwnerId, Pfn, Va, PAGE_SHIFT, PAGE_SIZE};

/// Lowest mappable address (`vm.mmap_min_addr` default, 64 KiB).
pub const MMAP_MIN_ADDR: u64 = 0x1_0000;
/// End of the user address range (x86-64 `TASK_SIZE` with 4-level paging).
pub const TASK_SIZE: u64 = 0x7fff_ffff_f000;
/// Where `mmap` starts its first-fit search for a free range.
pub const DEFAULT_MMAP_BASE: u64 = 0x7f00_0000_0000;

/// Why a range is being invalidated (the subset of `enum mmu_notifier_event` this model
/// produces or lets callers fake).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvalidateEvent {
    /// `MMU_NOTIFY_UNMAP`: munmap, shrink, the old range of a moving mremap. The memory is gone.
    Unmap,
    /// `MMU_NOTIFY_CLEAR`: page-table entries cleared (madvise DONTNEED); the range stays mapped
    /// and faults fresh pages on the next touch.
    Clear,
    /// `MMU_NOTIFY_PROTECTION_VMA`/`_PAGE`: permissions changed (mprotect).
    Protection,
    /// `MMU_NOTIFY_MIGRATE`: pages migrated to other frames.
    Migrate,
}

impl InvalidateEvent {
    /// True for [`InvalidateEvent::Unmap`], the only event hfi1 (2023+) acts on.
    pub const fn is_unmap(self) -> bool {
        matches!(self, InvalidateEvent::Unmap)
    }
}

/// One notifier callback to deliver: `mmu_interval_notifier_ops.invalidate(mni, range, seq)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Invalidation {
    /// The notifier to call.
    pub notifier: NotifierId,
    /// Start of the invalidated range (page aligned).
    pub start: Va,
    /// End of the invalidated range (exclusive, page aligned).
    pub end: Va,
    /// Why.
    pub event: InvalidateEvent,
    /// The notifier's new sequence number (`mmu_interval_set_seq`).
    pub seq: u64,
}

/// The begin phase of an unmap-like operation: the invalidations to deliver before
/// [`AddressSpace::commit`]. While it exists, the address space's layout is locked.
#[must_use = "deliver the invalidations, then commit (or abort) the token"]
#[derive(Debug)]
pub struct PendingUnmap {
    owner: OwnerId,
    id: u64,
    op: PendingOp,
    invalidations: Vec<Invalidation>,
}

impl PendingUnmap {
    /// The invalidations to deliver, ordered by notifier id.
    pub fn invalidations(&self) -> &[Invalidation] {
        &self.invalidations
    }
}

#[derive(Clone, Copy, Debug)]
enum PendingOp {
    /// Remove `[start, end)` (munmap, shrink). `result` is what commit returns.
    Unmap { start: u64, end: u64, result: u64 },
    /// Drop the frames of `[start, end)`, keep the mapping (madvise DONTNEED).
    Clear { start: u64, end: u64 },
    /// Move `[old, old+old_len)` to `[new, new+new_len)` (mremap with MREMAP_MAYMOVE).
    Move { old: u64, old_len: u64, new: u64, new_len: u64, contiguity: Contiguity },
    /// Extend `[start, start+old_len)`, the tail of the VMA at `vma_start`, to `new_len` in
    /// place.
    Grow { vma_start: u64, start: u64, old_len: u64, new_len: u64, contiguity: Contiguity },
    /// Nothing to change.
    Nop { result: u64 },
}

#[derive(Clone, Copy, Debug)]
struct Vma {
    end: u64,
    contiguity: Contiguity,
}

#[derive(Clone, Copy, Debug)]
struct Notifier {
    start: u64,
    end: u64,
    seq: u64,
    invalidating: bool,
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    id: u64,
    /// The range being invalidated (`start == end` when nothing is).
    start: u64,
    end: u64,
}

/// Address-space counters (monotonic).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpaceStats {
    /// Invalidations produced by begin phases.
    pub invalidations_sent: u64,
    /// Pages faulted in after madvise(DONTNEED) by `touch` or `pin_pages`.
    pub pages_faulted: u64,
    /// Pages pinned by `pin_pages`.
    pub pages_pinned: u64,
    /// Pages unpinned by `unpin_pages` (successful ones).
    pub pages_unpinned: u64,
    /// Pages unpinned with `dirty = true`.
    pub pages_dirtied: u64,
    /// `unpin_pages` of a frame with no pin or outside physical memory (caller bug).
    pub bad_unpin_count: u64,
    /// Successful `dma_map` calls.
    pub dma_maps: u64,
    /// `dma_unmap` calls that matched a live mapping.
    pub dma_unmaps: u64,
    /// `dma_unmap` of an IOVA/length that is not mapped (caller bug).
    pub dma_unmap_unknown_count: u64,
    /// `notifier_remove` of an unknown id (caller bug).
    pub notifier_remove_unknown_count: u64,
}

/// One simulated process's memory (see the module docs for the protocol and choices).
#[derive(Debug)]
pub struct AddressSpace {
    owner: OwnerId,
    pool: SharedFramePool,
    /// start → VMA; non-overlapping, page aligned.
    vmas: BTreeMap<u64, Vma>,
    /// page VA → frame, for present pages only.
    ptes: BTreeMap<u64, Pfn>,
    notifiers: BTreeMap<NotifierId, Notifier>,
    next_notifier: u64,
    pending: Option<Pending>,
    next_token: u64,
    pinned_vm: i64,
    rlimit_memlock: Option<u64>,
    cap_ipc_lock: bool,
    /// (IOVA, pages) → number of live maps with that key.
    dma: BTreeMap<(u64, usize), u32>,
    mmap_base: u64,
    stats: SpaceStats,
}

impl AddressSpace {
    /// An empty address space for `owner`, drawing frames from `pool`. RLIMIT_MEMLOCK starts
    /// unlimited (as OPA installations configure it) and CAP_IPC_LOCK is off.
    pub fn new(owner: OwnerId, pool: SharedFramePool) -> AddressSpace {
        AddressSpace {
            owner,
            pool,
            vmas: BTreeMap::new(),
            ptes: BTreeMap::new(),
            notifiers: BTreeMap::new(),
            next_notifier: 1,
            pending: None,
            next_token: 1,
            pinned_vm: 0,
            rlimit_memlock: None,
            cap_ipc_lock: false,
            dma: BTreeMap::new(),
            mmap_base: DEFAULT_MMAP_BASE,
            stats: SpaceStats::default(),
        }
    }

    /// The owner id stamped on this space's frames.
    pub fn owner(&self) -> OwnerId {
        self.owner
    }
    /// The shared frame pool.
    pub fn pool(&self) -> &SharedFramePool {
        &self.pool
    }
    /// Counters.
    pub fn stats(&self) -> SpaceStats {
        self.stats
    }
    /// Set where `mmap` starts searching (clamped to the user range, page aligned down).
    pub fn set_mmap_base(&mut self, base: Va) {
        self.mmap_base = base.page().0.clamp(MMAP_MIN_ADDR, TASK_SIZE);
    }
    /// Set RLIMIT_MEMLOCK in bytes (`None` = unlimited).
    pub fn set_rlimit_memlock(&mut self, bytes: Option<u64>) {
        self.rlimit_memlock = bytes;
    }
    /// Grant or drop CAP_IPC_LOCK.
    pub fn set_cap_ipc_lock(&mut self, cap: bool) {
        self.cap_ipc_lock = cap;
    }
    /// RLIMIT_MEMLOCK in bytes (`None` = unlimited).
    pub fn rlimit_memlock(&self) -> Option<u64> {
        self.rlimit_memlock
    }
    /// Whether the process has CAP_IPC_LOCK.
    pub fn cap_ipc_lock(&self) -> bool {
        self.cap_ipc_lock
    }
    /// `mm->pinned_vm` in pages (signed; negative means unbalanced accounting).
    pub fn pinned_vm(&self) -> i64 {
        self.pinned_vm
    }
    /// Add `delta` pages to `pinned_vm` (negative to release), saturating.
    pub fn account_pinned(&mut self, delta: i64) {
        self.pinned_vm = self.pinned_vm.saturating_add(delta);
    }
    /// True between a begin phase and its commit or abort.
    pub fn has_pending(&self) -> bool {
        self.pending.is_some()
    }

    // ------------------------------------------------------------------ queries

    /// The frame backing `va`, if the page is present.
    pub fn translate(&self, va: Va) -> Option<Pfn> {
        self.ptes.get(&va.page().0).copied()
    }
    /// True when `va` lies in a mapping (present or not).
    pub fn is_mapped(&self, va: Va) -> bool {
        self.vma_containing(va.0).is_some()
    }
    /// Present pages in this space.
    pub fn mapped_pages(&self) -> u64 {
        self.ptes.len() as u64
    }
    /// The mappings as `(start, len)`, ascending.
    pub fn vmas(&self) -> Vec<(Va, u64)> {
        self.vmas.iter().map(|(&s, v)| (Va(s), v.end.saturating_sub(s))).collect()
    }
    /// State of a frame of the shared pool.
    pub fn frame_state(&self, pfn: Pfn) -> Option<FrameState> {
        self.pool.with(|p| p.state(pfn))
    }
    /// Pin count of a frame of the shared pool.
    pub fn pin_count(&self, pfn: Pfn) -> u32 {
        self.pool.with(|p| p.pin_count(pfn))
    }
    /// Owner of a mapped or orphaned frame.
    pub fn owner_of(&self, pfn: Pfn) -> Option<OwnerId> {
        self.pool.with(|p| p.owner_of(pfn))
    }
    /// Sum of all pin counts in the shared pool (every owner).
    pub fn total_pins(&self) -> u64 {
        self.pool.with(|p| p.total_pins())
    }

    // ------------------------------------------------------------------ mmap

    /// Map `len` bytes (rounded up to pages) at a free address chosen first-fit from the mmap
    /// base, populated with frames laid out per `contiguity`.
    pub fn mmap(&mut self, len: u64, contiguity: Contiguity) -> Result<Va, MmapError> {
        if self.pending.is_some() {
            return Err(MmapError::Busy);
        }
        let alen = map_len(len)?;
        let start = self.find_gap(alen).ok_or(MmapError::NoSpace(alen))?;
        self.map_new(start, alen, contiguity)?;
        Ok(Va(start))
    }

    /// Map `len` bytes at exactly `va` (`MAP_FIXED_NOREPLACE`: the range must be free).
    pub fn mmap_fixed(
        &mut self,
        va: Va,
        len: u64,
        contiguity: Contiguity,
    ) -> Result<Va, MmapError> {
        if self.pending.is_some() {
            return Err(MmapError::Busy);
        }
        if !va.is_page_aligned() {
            return Err(MmapError::Unaligned(va));
        }
        let alen = map_len(len)?;
        let end = va.0.checked_add(alen).ok_or(MmapError::OutOfRange(va))?;
        if va.0 < MMAP_MIN_ADDR || end > TASK_SIZE {
            return Err(MmapError::OutOfRange(va));
        }
        if !self.range_free(va.0, end) {
            return Err(MmapError::Overlaps(va));
        }
        self.map_new(va.0, alen, contiguity)?;
        Ok(va)
    }

    /// Fault in every non-present page of `[va, va+len)` (rounded out to pages), as a user
    /// touching the memory would after madvise(DONTNEED). Returns the pages faulted in. The
    /// whole range must be mapped. Running out of frames part way leaves the pages faulted so
    /// far in place.
    pub fn touch(&mut self, va: Va, len: u64) -> Result<u64, MmapError> {
        if self.pending.is_some() {
            return Err(MmapError::Busy);
        }
        if len == 0 {
            return Ok(0);
        }
        let start = va.page().0;
        let end =
            va.0.checked_add(len).and_then(page_align_up).ok_or(MmapError::InvalidLength(len))?;
        if let Some(hole) = self.first_unmapped(start, end) {
            return Err(MmapError::NotMapped(Va(hole)));
        }
        let mut faulted = 0u64;
        let mut cur = start;
        while cur < end {
            if self.ptes.contains_key(&cur) {
                cur += PAGE_SIZE;
                continue;
            }
            let n = self.fault_run(cur, (end - cur) >> PAGE_SHIFT);
            if n == 0 {
                return Err(MmapError::NoMemory);
            }
            faulted += n;
            cur += n << PAGE_SHIFT;
        }
        Ok(faulted)
    }

    // ------------------------------------------------------------------ two-phase ops

    /// Begin `munmap(va, len)`. Unmapping a range with nothing mapped is allowed and produces
    /// no invalidations (Linux returns 0).
    pub fn begin_munmap(&mut self, va: Va, len: u64) -> Result<PendingUnmap, UnmapError> {
        if self.pending.is_some() {
            return Err(UnmapError::Busy);
        }
        let (start, end) = checked_range(va, len)?;
        let Some((s, e)) = self.mapped_span(start, end) else {
            return Ok(self.start_pending(PendingOp::Nop { result: start }, 0, 0, None));
        };
        let op = PendingOp::Unmap { start, end, result: start };
        Ok(self.start_pending(op, s, e, Some(InvalidateEvent::Unmap)))
    }

    /// Begin shrinking the mapping `[va, va+old_len)` to `new_len` bytes: the tail is unmapped
    /// (mremap to a smaller size). `[va, va+old_len)` must lie in one mapping; `new_len` must be
    /// non-zero and not larger than `old_len`.
    pub fn begin_shrink(
        &mut self,
        va: Va,
        old_len: u64,
        new_len: u64,
    ) -> Result<PendingUnmap, UnmapError> {
        if self.pending.is_some() {
            return Err(UnmapError::Busy);
        }
        let (start, old_end) = checked_range(va, old_len)?;
        let new_alen = page_align_up(new_len)
            .filter(|&l| l > 0 && l <= old_end - start)
            .ok_or(UnmapError::InvalidLength(new_len))?;
        if !self.in_one_vma(start, old_end) {
            return Err(UnmapError::NotMapped(va));
        }
        Ok(self.shrink_op(start, start + new_alen, old_end))
    }

    /// Begin `mremap(old_va, old_len, new_len, may_move ? MREMAP_MAYMOVE : 0)`. The old range
    /// must lie in one mapping. Shrinking unmaps the tail; growing extends in place when the
    /// following range is free and the old range ends its mapping, otherwise moves (if allowed)
    /// to a free range, sending [`InvalidateEvent::Unmap`] for the old range. [`Self::commit`]
    /// returns the resulting address.
    pub fn begin_mremap(
        &mut self,
        old_va: Va,
        old_len: u64,
        new_len: u64,
        may_move: bool,
    ) -> Result<PendingUnmap, UnmapError> {
        if self.pending.is_some() {
            return Err(UnmapError::Busy);
        }
        let (old, old_end) = checked_range(old_va, old_len)?;
        let new_alen =
            page_align_up(new_len).filter(|&l| l > 0).ok_or(UnmapError::InvalidLength(new_len))?;
        let Some((vma_start, vma)) = self.vma_containing(old) else {
            return Err(UnmapError::NotMapped(old_va));
        };
        if old_end > vma.end {
            return Err(UnmapError::NotMapped(old_va));
        }
        let old_alen = old_end - old;
        if new_alen < old_alen {
            return Ok(self.shrink_op(old, old + new_alen, old_end));
        }
        if new_alen == old_alen {
            return Ok(self.start_pending(PendingOp::Nop { result: old }, 0, 0, None));
        }
        let contiguity = vma.contiguity;
        let grow_end = old.checked_add(new_alen).filter(|&e| e <= TASK_SIZE);
        if let Some(ge) = grow_end {
            if old_end == vma.end && self.range_free(old_end, ge) {
                let op = PendingOp::Grow {
                    vma_start,
                    start: old,
                    old_len: old_alen,
                    new_len: new_alen,
                    contiguity,
                };
                return Ok(self.start_pending(op, 0, 0, None));
            }
        }
        if !may_move {
            return Err(UnmapError::NoSpace(old_va));
        }
        let new = self.find_gap(new_alen).ok_or(UnmapError::NoSpace(old_va))?;
        let op = PendingOp::Move { old, old_len: old_alen, new, new_len: new_alen, contiguity };
        Ok(self.start_pending(op, old, old_end, Some(InvalidateEvent::Unmap)))
    }

    /// Begin `madvise(va, len, MADV_DONTNEED)`: the frames go (orphaned if pinned), the range
    /// stays mapped, the next touch or pin faults fresh zero frames in. The whole range must be
    /// mapped (else ENOMEM, nothing done). Sends [`InvalidateEvent::Clear`]. `len == 0` is a
    /// no-op.
    pub fn begin_madvise_dontneed(&mut self, va: Va, len: u64) -> Result<PendingUnmap, UnmapError> {
        if self.pending.is_some() {
            return Err(UnmapError::Busy);
        }
        if !va.is_page_aligned() {
            return Err(UnmapError::Unaligned(va));
        }
        if len == 0 {
            return Ok(self.start_pending(PendingOp::Nop { result: va.0 }, 0, 0, None));
        }
        let (start, end) = checked_range(va, len)?;
        if self.first_unmapped(start, end).is_some() {
            return Err(UnmapError::NotMapped(va));
        }
        let op = PendingOp::Clear { start, end };
        Ok(self.start_pending(op, start, end, Some(InvalidateEvent::Clear)))
    }

    /// Fake an invalidation of `[va, va+len)` with `event` that changes no mapping (mprotect,
    /// page migration, a spurious notifier call). Commit changes nothing but retires the
    /// sequence numbers.
    pub fn begin_invalidate(
        &mut self,
        va: Va,
        len: u64,
        event: InvalidateEvent,
    ) -> Result<PendingUnmap, UnmapError> {
        if self.pending.is_some() {
            return Err(UnmapError::Busy);
        }
        let (start, end) = checked_range(va, len)?;
        Ok(self.start_pending(PendingOp::Nop { result: start }, start, end, Some(event)))
    }

    /// Apply a begun operation: page-table entries go, frames are freed or orphaned, moved pages
    /// move, grown ranges are populated, and the sequence numbers of the notifiers that were
    /// being invalidated are retired. Returns the resulting address (the new address for
    /// mremap, the start of the range otherwise).
    ///
    /// On [`UnmapError::NoMemory`] (growth could not be populated) the layout is unchanged and
    /// the pending state is cleared, as after [`Self::abort`].
    pub fn commit(&mut self, token: PendingUnmap) -> Result<Va, UnmapError> {
        self.check_token(&token)?;
        let result = self.apply(token.op);
        self.finish_pending();
        result.map(Va)
    }

    /// Drop a begun operation without changing the layout. The invalidations already delivered
    /// become spurious (allowed by the notifier contract); sequence numbers are retired as by a
    /// commit.
    pub fn abort(&mut self, token: PendingUnmap) -> Result<(), UnmapError> {
        self.check_token(&token)?;
        self.finish_pending();
        Ok(())
    }

    /// Deliver each invalidation of `token` to `f` (which may call back into this space), then
    /// commit.
    pub fn complete_with<F>(&mut self, token: PendingUnmap, mut f: F) -> Result<Va, UnmapError>
    where
        F: FnMut(&mut AddressSpace, &Invalidation),
    {
        for inv in &token.invalidations {
            f(self, inv);
        }
        self.commit(token)
    }

    /// `munmap` with `f` as the notifier callback: begin, deliver, commit.
    pub fn munmap_with<F>(&mut self, va: Va, len: u64, f: F) -> Result<(), UnmapError>
    where
        F: FnMut(&mut AddressSpace, &Invalidation),
    {
        let token = self.begin_munmap(va, len)?;
        self.complete_with(token, f).map(|_| ())
    }

    /// Shrink with `f` as the notifier callback.
    pub fn shrink_with<F>(
        &mut self,
        va: Va,
        old_len: u64,
        new_len: u64,
        f: F,
    ) -> Result<(), UnmapError>
    where
        F: FnMut(&mut AddressSpace, &Invalidation),
    {
        let token = self.begin_shrink(va, old_len, new_len)?;
        self.complete_with(token, f).map(|_| ())
    }

    /// mremap with `f` as the notifier callback; returns the resulting address.
    pub fn mremap_with<F>(
        &mut self,
        old_va: Va,
        old_len: u64,
        new_len: u64,
        may_move: bool,
        f: F,
    ) -> Result<Va, UnmapError>
    where
        F: FnMut(&mut AddressSpace, &Invalidation),
    {
        let token = self.begin_mremap(old_va, old_len, new_len, may_move)?;
        self.complete_with(token, f)
    }

    /// madvise(DONTNEED) with `f` as the notifier callback.
    pub fn madvise_dontneed_with<F>(&mut self, va: Va, len: u64, f: F) -> Result<(), UnmapError>
    where
        F: FnMut(&mut AddressSpace, &Invalidation),
    {
        let token = self.begin_madvise_dontneed(va, len)?;
        self.complete_with(token, f).map(|_| ())
    }

    // ------------------------------------------------------------------ notifiers

    /// Subscribe an interval notifier to `[start, start+len)` (`mmu_interval_notifier_insert`).
    pub fn notifier_insert(&mut self, start: Va, len: u64) -> Result<NotifierId, NotifierError> {
        let bad = NotifierError::InvalidRange { start, len };
        if len == 0 {
            return Err(bad);
        }
        let end = start.0.checked_add(len).ok_or(bad)?;
        let id = NotifierId(self.next_notifier);
        self.next_notifier += 1;
        let invalidating = self.pending.is_some_and(|p| p.start < end && start.0 < p.end);
        self.notifiers.insert(id, Notifier { start: start.0, end, seq: 0, invalidating });
        Ok(id)
    }

    /// Unsubscribe (`mmu_interval_notifier_remove`). Safe at any time, including while an
    /// invalidation for it sits in an uncommitted token: ids are never reused, so the stale
    /// invalidation names no live notifier. Unknown ids are counted.
    pub fn notifier_remove(&mut self, id: NotifierId) {
        if self.notifiers.remove(&id).is_none() {
            self.stats.notifier_remove_unknown_count += 1;
        }
    }

    /// The notifier's current sequence (`mmu_interval_read_begin`); 0 for an unknown id.
    pub fn read_begin(&self, id: NotifierId) -> u64 {
        self.notifiers.get(&id).map_or(0, |n| n.seq)
    }

    /// True when an invalidation started since `read_begin` returned `seq`, or one is in
    /// progress (`mmu_interval_read_retry`). Unknown ids report true.
    pub fn read_retry(&self, id: NotifierId, seq: u64) -> bool {
        self.notifiers.get(&id).is_none_or(|n| n.invalidating || n.seq != seq)
    }

    /// The range `[start, end)` of a live notifier.
    pub fn notifier_range(&self, id: NotifierId) -> Option<(Va, Va)> {
        self.notifiers.get(&id).map(|n| (Va(n.start), Va(n.end)))
    }

    /// Live notifiers.
    pub fn notifier_count(&self) -> usize {
        self.notifiers.len()
    }

    // ------------------------------------------------------------------ pinning

    /// Pin up to `npages` consecutive pages from `va` (rounded down to its page), like
    /// `pin_user_pages_fast(FOLL_LONGTERM | FOLL_WRITE)`. Stops at the first page that is not
    /// mapped, or that needs a fault that cannot be served (no free frame, or an unmap pending),
    /// and returns what it pinned. Pages dropped by madvise(DONTNEED) are faulted in. Errors only
    /// when nothing was pinned: [`PinError::Fault`] (not mapped), [`PinError::NoMemory`],
    /// [`PinError::Busy`]. `npages == 0` pins nothing and succeeds. Does not touch `pinned_vm`.
    pub fn pin_pages(&mut self, va: Va, npages: usize) -> Result<Vec<Pfn>, PinError> {
        let start = va.page();
        let mut out = Vec::with_capacity(npages.min(4096));
        let mut stop = PinError::Fault(start);
        for i in 0..npages as u64 {
            let Some(page) = start.add_pages(i) else {
                break;
            };
            if self.vma_containing(page.0).is_none() {
                stop = PinError::Fault(page);
                break;
            }
            if !self.ptes.contains_key(&page.0) {
                if self.pending.is_some() {
                    stop = PinError::Busy;
                    break;
                }
                if self.fault_run(page.0, npages as u64 - i) == 0 {
                    stop = PinError::NoMemory;
                    break;
                }
            }
            let Some(&pfn) = self.ptes.get(&page.0) else {
                break;
            };
            if self.pool.with(|p| p.pin(pfn)).is_err() {
                break;
            }
            out.push(pfn);
        }
        self.stats.pages_pinned += out.len() as u64;
        if out.is_empty() && npages > 0 {
            return Err(stop);
        }
        Ok(out)
    }

    /// Drop one pin from each frame (`unpin_user_pages_dirty_lock`). An orphan whose last pin
    /// drops is freed. Frames without a pin are counted in
    /// [`SpaceStats::bad_unpin_count`] and skipped. Does not touch `pinned_vm`.
    pub fn unpin_pages(&mut self, pfns: &[Pfn], dirty: bool) {
        let (ok, bad) = self.pool.with(|p| {
            let mut ok = 0u64;
            let mut bad = 0u64;
            for &pfn in pfns {
                match p.unpin(pfn) {
                    Ok(_) => ok += 1,
                    Err(_) => bad += 1,
                }
            }
            (ok, bad)
        });
        self.stats.pages_unpinned += ok;
        self.stats.bad_unpin_count += bad;
        if dirty {
            self.stats.pages_dirtied += ok;
        }
    }

    // ------------------------------------------------------------------ DMA

    /// Identity DMA map of the physically contiguous frames `pfn .. pfn+npages`: IOVA = PA.
    /// Every frame must be in physical memory and pinned.
    pub fn dma_map(&mut self, pfn: Pfn, npages: usize) -> Result<Iova, DmaMapError> {
        if npages == 0 {
            return Err(DmaMapError::InvalidLength(npages));
        }
        self.pool.with(|p| {
            for i in 0..npages as u64 {
                let f = pfn.add(i).ok_or(DmaMapError::InvalidLength(npages))?;
                if !p.contains(f) {
                    return Err(DmaMapError::OutOfRange(f));
                }
                if p.pin_count(f) == 0 {
                    return Err(DmaMapError::NotPinned(f));
                }
            }
            Ok(())
        })?;
        let count = self.dma.entry((pfn.addr(), npages)).or_insert(0);
        *count = count.saturating_add(1);
        self.stats.dma_maps += 1;
        Ok(Iova(pfn.addr()))
    }

    /// Undo one [`Self::dma_map`] of the same IOVA and length. Unknown pairs are counted in
    /// [`SpaceStats::dma_unmap_unknown_count`].
    pub fn dma_unmap(&mut self, iova: Iova, npages: usize) {
        let key = (iova.0, npages);
        match self.dma.get_mut(&key) {
            Some(c) if *c > 1 => {
                *c -= 1;
                self.stats.dma_unmaps += 1;
            }
            Some(_) => {
                self.dma.remove(&key);
                self.stats.dma_unmaps += 1;
            }
            None => self.stats.dma_unmap_unknown_count += 1,
        }
    }

    /// Live DMA maps (each `dma_map` not yet undone counts once).
    pub fn dma_maps_live(&self) -> u64 {
        self.dma.values().map(|&c| u64::from(c)).sum()
    }

    /// Live DMA maps as `(iova, pages, count)`, ascending.
    pub fn dma_mappings(&self) -> Vec<(Iova, usize, u32)> {
        self.dma.iter().map(|(&(i, n), &c)| (Iova(i), n, c)).collect()
    }

    /// True when some live DMA map covers `pfn`.
    pub fn is_dma_mapped(&self, pfn: Pfn) -> bool {
        let pa = pfn.addr();
        self.dma.keys().any(|&(iova, n)| {
            (n as u64)
                .checked_mul(PAGE_SIZE)
                .and_then(|len| iova.checked_add(len))
                .is_some_and(|end| iova <= pa && pa < end)
        })
    }

    // ------------------------------------------------------------------ invariants

    /// Check this space against the shared pool: VMAs are ordered, aligned, disjoint and inside
    /// the user range; every present page lies in a VMA; every present page's frame is mapped by
    /// this owner at exactly that address (so no frame is mapped twice); no notifier is left
    /// invalidating without a pending operation. Also checks the pool.
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        let fail = |s: String| Err(InvariantViolation(s));
        let mut prev_end = 0u64;
        for (&s, v) in &self.vmas {
            if s % PAGE_SIZE != 0 || v.end % PAGE_SIZE != 0 || v.end <= s {
                return fail(format!("bad vma {s:#x}..{:#x}", v.end));
            }
            if s < prev_end || s < MMAP_MIN_ADDR || v.end > TASK_SIZE {
                return fail(format!("vma {s:#x}..{:#x} overlaps or out of range", v.end));
            }
            prev_end = v.end;
        }
        for (&va, &pfn) in &self.ptes {
            if self.vma_containing(va).is_none() {
                return fail(format!("pte {va:#x} outside every vma"));
            }
            let want = FrameState::Mapped { owner: self.owner, va: Va(va) };
            let got = self.frame_state(pfn);
            if got != Some(want) {
                return fail(format!("pte {va:#x} -> {pfn} but frame state {got:?}"));
            }
        }
        if self.pending.is_none() && self.notifiers.values().any(|n| n.invalidating) {
            return fail("notifier invalidating without a pending operation".to_string());
        }
        self.pool.with(|p| p.check_invariants())
    }

    // ------------------------------------------------------------------ internals

    fn vma_containing(&self, addr: u64) -> Option<(u64, Vma)> {
        let (&s, v) = self.vmas.range(..=addr).next_back()?;
        (addr < v.end).then_some((s, *v))
    }

    fn range_free(&self, start: u64, end: u64) -> bool {
        match self.vmas.range(..end).next_back() {
            Some((_, v)) => v.end <= start,
            None => true,
        }
    }

    /// `[start, end)` lies inside a single VMA.
    fn in_one_vma(&self, start: u64, end: u64) -> bool {
        self.vma_containing(start).is_some_and(|(_, v)| end <= v.end)
    }

    /// First address of `[start, end)` not covered by a VMA.
    fn first_unmapped(&self, start: u64, end: u64) -> Option<u64> {
        let mut cur = start;
        while cur < end {
            match self.vma_containing(cur) {
                Some((_, v)) => cur = v.end,
                None => return Some(cur),
            }
        }
        None
    }

    /// `[start, end)` clipped to the span of the VMAs overlapping it.
    fn mapped_span(&self, start: u64, end: u64) -> Option<(u64, u64)> {
        let mut lo: Option<u64> = None;
        let mut hi = 0u64;
        let first = self.vma_containing(start).map_or(start, |(s, _)| s);
        for (&s, v) in self.vmas.range(first..end) {
            if v.end <= start {
                continue;
            }
            lo.get_or_insert(s.max(start));
            hi = v.end.min(end);
        }
        lo.map(|l| (l, hi))
    }

    /// First-fit free range of `len` bytes at or above the mmap base.
    fn find_gap(&self, len: u64) -> Option<u64> {
        let mut cur = self.mmap_base;
        for (&s, v) in &self.vmas {
            if v.end <= cur {
                continue;
            }
            if s >= cur && s - cur >= len {
                return Some(cur);
            }
            cur = cur.max(v.end);
        }
        let end = cur.checked_add(len)?;
        (end <= TASK_SIZE).then_some(cur)
    }

    fn map_new(&mut self, start: u64, alen: u64, contiguity: Contiguity) -> Result<(), MmapError> {
        let n = alen >> PAGE_SHIFT;
        let owner = self.owner;
        let pfns = self
            .pool
            .with(|p| p.alloc(owner, Va(start), n, contiguity))
            .map_err(|_| MmapError::NoMemory)?;
        self.vmas.insert(start, Vma { end: start + alen, contiguity });
        self.insert_ptes(start, &pfns);
        Ok(())
    }

    fn insert_ptes(&mut self, start: u64, pfns: &[Pfn]) {
        for (i, &pfn) in pfns.iter().enumerate() {
            self.ptes.insert(start + ((i as u64) << PAGE_SHIFT), pfn);
        }
    }

    /// Fault in the run of consecutive non-present pages starting at `page` (at most
    /// `max_pages`, inside its VMA, limited by the free frames). Returns the pages faulted.
    fn fault_run(&mut self, page: u64, max_pages: u64) -> u64 {
        let Some((_, vma)) = self.vma_containing(page) else {
            return 0;
        };
        let mut n = 0u64;
        while n < max_pages {
            let p = page + (n << PAGE_SHIFT);
            if p >= vma.end || self.ptes.contains_key(&p) {
                break;
            }
            n += 1;
        }
        let owner = self.owner;
        let pfns = self.pool.with(|p| {
            let n = n.min(p.free_frames());
            p.alloc(owner, Va(page), n, vma.contiguity)
        });
        let Ok(pfns) = pfns else {
            return 0;
        };
        self.insert_ptes(page, &pfns);
        let got = pfns.len() as u64;
        self.stats.pages_faulted += got;
        got
    }

    fn shrink_op(&mut self, start: u64, cut: u64, old_end: u64) -> PendingUnmap {
        if cut >= old_end {
            return self.start_pending(PendingOp::Nop { result: start }, 0, 0, None);
        }
        let op = PendingOp::Unmap { start: cut, end: old_end, result: start };
        self.start_pending(op, cut, old_end, Some(InvalidateEvent::Unmap))
    }

    /// Enter the pending state and produce the invalidations for `[start, end)`.
    fn start_pending(
        &mut self,
        op: PendingOp,
        start: u64,
        end: u64,
        event: Option<InvalidateEvent>,
    ) -> PendingUnmap {
        let id = self.next_token;
        self.next_token += 1;
        let mut invalidations = Vec::new();
        if let Some(event) = event {
            for (&nid, n) in self.notifiers.iter_mut() {
                if n.start < end && start < n.end {
                    n.seq += 1;
                    n.invalidating = true;
                    invalidations.push(Invalidation {
                        notifier: nid,
                        start: Va(start),
                        end: Va(end),
                        event,
                        seq: n.seq,
                    });
                }
            }
        }
        self.stats.invalidations_sent += invalidations.len() as u64;
        let (start, end) = if event.is_some() { (start, end) } else { (0, 0) };
        self.pending = Some(Pending { id, start, end });
        PendingUnmap { owner: self.owner, id, op, invalidations }
    }

    fn check_token(&self, token: &PendingUnmap) -> Result<(), UnmapError> {
        match self.pending {
            Some(p) if p.id == token.id && token.owner == self.owner => Ok(()),
            _ => Err(UnmapError::StaleToken),
        }
    }

    fn finish_pending(&mut self) {
        for n in self.notifiers.values_mut() {
            if n.invalidating {
                n.seq += 1;
                n.invalidating = false;
            }
        }
        self.pending = None;
    }

    fn apply(&mut self, op: PendingOp) -> Result<u64, UnmapError> {
        match op {
            PendingOp::Nop { result } => Ok(result),
            PendingOp::Unmap { start, end, result } => {
                self.drop_ptes(start, end);
                self.remove_vma_range(start, end);
                Ok(result)
            }
            PendingOp::Clear { start, end } => {
                self.drop_ptes(start, end);
                Ok(start)
            }
            PendingOp::Grow { vma_start, start, old_len, new_len, contiguity } => {
                let extra = self.alloc_extra(start + old_len, new_len - old_len, contiguity)?;
                if let Some(v) = self.vmas.get_mut(&vma_start) {
                    v.end = start + new_len;
                }
                self.insert_ptes(start + old_len, &extra);
                Ok(start)
            }
            PendingOp::Move { old, old_len, new, new_len, contiguity } => {
                let extra = self.alloc_extra(new + old_len, new_len - old_len, contiguity)?;
                let moved: Vec<(u64, Pfn)> =
                    self.ptes.range(old..old + old_len).map(|(&va, &pfn)| (va, pfn)).collect();
                for &(va, _) in &moved {
                    self.ptes.remove(&va);
                }
                self.remove_vma_range(old, old + old_len);
                self.vmas.insert(new, Vma { end: new + new_len, contiguity });
                self.pool.with(|p| {
                    for &(va, pfn) in &moved {
                        // The frame is Mapped by this owner (invariant); remap cannot fail.
                        let _ = p.remap(pfn, Va(va - old + new));
                    }
                });
                for (va, pfn) in moved {
                    self.ptes.insert(va - old + new, pfn);
                }
                self.insert_ptes(new + old_len, &extra);
                Ok(new)
            }
        }
    }

    fn alloc_extra(
        &mut self,
        at: u64,
        bytes: u64,
        contiguity: Contiguity,
    ) -> Result<Vec<Pfn>, UnmapError> {
        let owner = self.owner;
        self.pool
            .with(|p| p.alloc(owner, Va(at), bytes >> PAGE_SHIFT, contiguity))
            .map_err(|_| UnmapError::NoMemory)
    }

    /// Remove the present pages of `[start, end)`, freeing or orphaning their frames.
    fn drop_ptes(&mut self, start: u64, end: u64) {
        let gone: Vec<(u64, Pfn)> =
            self.ptes.range(start..end).map(|(&va, &pfn)| (va, pfn)).collect();
        for &(va, _) in &gone {
            self.ptes.remove(&va);
        }
        self.pool.with(|p| {
            for &(_, pfn) in &gone {
                // Present pages are Mapped (invariant); unmap cannot fail.
                let _ = p.unmap(pfn);
            }
        });
    }

    /// Cut `[start, end)` out of the VMAs, splitting those that straddle it.
    fn remove_vma_range(&mut self, start: u64, end: u64) {
        let first = self.vma_containing(start).map_or(start, |(s, _)| s);
        let hit: Vec<(u64, Vma)> = self
            .vmas
            .range(first..end)
            .filter(|(_, v)| v.end > start)
            .map(|(&s, &v)| (s, v))
            .collect();
        for (s, v) in hit {
            self.vmas.remove(&s);
            if s < start {
                self.vmas.insert(s, Vma { end: start, contiguity: v.contiguity });
            }
            if v.end > end {
                self.vmas.insert(end, Vma { end: v.end, contiguity: v.contiguity });
            }
        }
    }
}

impl Drop for AddressSpace {
    /// Process exit without notifiers: every present page's frame goes back to the pool, or
    /// becomes an orphan if something still pins it (freed at its last unpin).
    fn drop(&mut self) {
        let pfns: Vec<Pfn> = self.ptes.values().copied().collect();
        self.pool.with(|p| {
            for pfn in pfns {
                let _ = p.unmap(pfn);
            }
        });
    }
}

/// `len` rounded up to pages; 0 or overflowing lengths are invalid.
fn map_len(len: u64) -> Result<u64, MmapError> {
    page_align_up(len).filter(|&l| l > 0).ok_or(MmapError::InvalidLength(len))
}

/// Validate an unmap-style `(va, len)`: aligned start, non-zero length, no wrap, inside the user
/// range's addressable span. Returns `[start, end)` with `end` page aligned.
fn checked_range(va: Va, len: u64) -> Result<(u64, u64), UnmapError> {
    if !va.is_page_aligned() {
        return Err(UnmapError::Unaligned(va));
    }
    let alen = page_align_up(len).filter(|&l| l > 0).ok_or(UnmapError::InvalidLength(len))?;
    let end = va.0.checked_add(alen).ok_or(UnmapError::InvalidLength(len))?;
    Ok((va.0, end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::PinError;
    use crate::frames::SharedFramePool;

    const PS: u64 = PAGE_SIZE;
    const BASE: u64 = 0x100_0000; // pfn 0x1000

    fn pool(frames: u64) -> SharedFramePool {
        SharedFramePool::new(BASE, frames * PS).unwrap()
    }

    fn space(frames: u64) -> AddressSpace {
        AddressSpace::new(OwnerId(1), pool(frames))
    }

    fn frames_of(s: &AddressSpace, va: Va, pages: u64) -> Vec<Option<Pfn>> {
        (0..pages).map(|i| s.translate(va.add_pages(i).unwrap())).collect()
    }

    #[test]
    fn mmap_first_fit_and_populated() {
        let mut s = space(64);
        let a = s.mmap(3 * PS - 1, Contiguity::Contiguous).unwrap();
        assert_eq!(a, Va(DEFAULT_MMAP_BASE));
        let b = s.mmap(PS, Contiguity::Contiguous).unwrap();
        assert_eq!(b, Va(DEFAULT_MMAP_BASE + 3 * PS));
        assert_eq!(s.mapped_pages(), 4);
        assert_eq!(
            frames_of(&s, a, 3),
            vec![Some(Pfn(0x1000)), Some(Pfn(0x1001)), Some(Pfn(0x1002))]
        );
        assert_eq!(s.translate(Va(a.0 + 0x1234)), Some(Pfn(0x1001)));
        assert_eq!(s.owner_of(Pfn(0x1000)), Some(OwnerId(1)));
        assert_eq!(s.vmas(), vec![(a, 3 * PS), (b, PS)]);
        assert_eq!(s.mmap(0, Contiguity::Contiguous), Err(MmapError::InvalidLength(0)));
        assert_eq!(
            s.mmap(u64::MAX, Contiguity::Contiguous),
            Err(MmapError::InvalidLength(u64::MAX))
        );
        assert_eq!(s.mmap(61 * PS, Contiguity::Contiguous), Err(MmapError::NoMemory));
        // Free the first mapping: the gap is reused first-fit.
        s.munmap_with(a, 3 * PS, |_, _| {}).unwrap();
        assert_eq!(s.mmap(2 * PS, Contiguity::Contiguous).unwrap(), a);
        s.check_invariants().unwrap();
    }

    #[test]
    fn mmap_fixed_is_noreplace() {
        let mut s = space(16);
        let va = Va(0x4000_0000);
        assert_eq!(
            s.mmap_fixed(Va(0x4000_0001), PS, Contiguity::Contiguous),
            Err(MmapError::Unaligned(Va(0x4000_0001)))
        );
        assert_eq!(
            s.mmap_fixed(Va(0x1000), PS, Contiguity::Contiguous),
            Err(MmapError::OutOfRange(Va(0x1000)))
        );
        assert_eq!(
            s.mmap_fixed(Va(TASK_SIZE), PS, Contiguity::Contiguous),
            Err(MmapError::OutOfRange(Va(TASK_SIZE)))
        );
        assert_eq!(s.mmap_fixed(va, 2 * PS, Contiguity::Contiguous), Ok(va));
        assert_eq!(
            s.mmap_fixed(Va(va.0 + PS), 2 * PS, Contiguity::Contiguous),
            Err(MmapError::Overlaps(Va(va.0 + PS)))
        );
        assert_eq!(
            s.mmap_fixed(Va(va.0 - PS), 2 * PS, Contiguity::Contiguous),
            Err(MmapError::Overlaps(Va(va.0 - PS)))
        );
        assert_eq!(
            s.mmap_fixed(Va(va.0 + 2 * PS), PS, Contiguity::Contiguous),
            Ok(Va(va.0 + 2 * PS))
        );
        s.check_invariants().unwrap();
    }

    /// The stale-cache trap: pin a buffer, munmap it, re-mmap the same VA. The VA now has other
    /// frames; the pinned ones are orphans until unpinned, and then get reused.
    #[test]
    fn remap_same_va_gets_other_frames() {
        let mut s = space(8);
        let va = s.mmap(4 * PS, Contiguity::Contiguous).unwrap();
        let pinned = s.pin_pages(va, 4).unwrap();
        assert_eq!(pinned, (0x1000..0x1004).map(Pfn).collect::<Vec<_>>());
        s.munmap_with(va, 4 * PS, |_, _| {}).unwrap();
        for &p in &pinned {
            assert_eq!(s.frame_state(p), Some(FrameState::Orphan { owner: OwnerId(1) }));
            assert_eq!(s.pin_count(p), 1);
        }
        s.mmap_fixed(va, 4 * PS, Contiguity::Contiguous).unwrap();
        let now: Vec<Pfn> = frames_of(&s, va, 4).into_iter().flatten().collect();
        assert_eq!(now, (0x1004..0x1008).map(Pfn).collect::<Vec<_>>());
        // Pool exhausted while the orphans are pinned.
        assert_eq!(s.mmap(PS, Contiguity::Contiguous), Err(MmapError::NoMemory));
        s.unpin_pages(&pinned, true);
        assert_eq!(s.frame_state(pinned[0]), Some(FrameState::Free));
        // ... and the freed frames are handed out again.
        let b = s.mmap(PS, Contiguity::Contiguous).unwrap();
        assert_eq!(s.translate(b), Some(pinned[0]));
        assert_eq!(s.pool().with(|p| p.stats().frames_reused), 1);
        s.check_invariants().unwrap();
    }

    #[test]
    fn freed_frame_goes_to_another_owner() {
        let shared = pool(4);
        let mut p1 = AddressSpace::new(OwnerId(1), shared.clone());
        let mut p2 = AddressSpace::new(OwnerId(2), shared.clone());
        let a = p1.mmap(4 * PS, Contiguity::Contiguous).unwrap();
        let f = p1.translate(a).unwrap();
        p1.munmap_with(a, PS, |_, _| {}).unwrap();
        let b = p2.mmap(PS, Contiguity::Contiguous).unwrap();
        assert_eq!(p2.translate(b), Some(f));
        assert_eq!(p1.owner_of(f), Some(OwnerId(2)));
        p1.check_invariants().unwrap();
        p2.check_invariants().unwrap();
        // Dropping a process returns its frames.
        drop(p1);
        assert_eq!(shared.with(|p| p.free_frames()), 3);
    }

    #[test]
    fn munmap_invalidates_exactly_overlapping_notifiers() {
        let mut s = space(64);
        let va = s.mmap(16 * PS, Contiguity::Contiguous).unwrap();
        let n_head = s.notifier_insert(va, 4 * PS).unwrap();
        let n_mid = s.notifier_insert(Va(va.0 + 6 * PS), 2 * PS).unwrap();
        let n_tail = s.notifier_insert(Va(va.0 + 12 * PS), 4 * PS).unwrap();
        // Partial overlap by one byte counts.
        let n_edge = s.notifier_insert(Va(va.0 + 8 * PS - 1), 1).unwrap();
        let seqs: Vec<u64> =
            [n_head, n_mid, n_tail, n_edge].iter().map(|&n| s.read_begin(n)).collect();
        let token = s.begin_munmap(Va(va.0 + 5 * PS), 3 * PS).unwrap();
        let got: Vec<(NotifierId, InvalidateEvent)> =
            token.invalidations().iter().map(|i| (i.notifier, i.event)).collect();
        assert_eq!(got, vec![(n_mid, InvalidateEvent::Unmap), (n_edge, InvalidateEvent::Unmap)]);
        let inv = token.invalidations()[0];
        assert_eq!((inv.start, inv.end), (Va(va.0 + 5 * PS), Va(va.0 + 8 * PS)));
        assert_eq!(inv.seq, seqs[1] + 1);
        // Begin changed nothing yet, but readers already see the invalidation.
        assert!(s.translate(Va(va.0 + 6 * PS)).is_some());
        assert!(s.read_retry(n_mid, seqs[1]));
        assert!(!s.read_retry(n_head, seqs[0]));
        assert_eq!(s.commit(token), Ok(Va(va.0 + 5 * PS)));
        assert!(s.read_retry(n_mid, seqs[1]));
        assert!(s.read_retry(n_edge, seqs[3]));
        assert!(!s.read_retry(n_head, seqs[0]));
        assert!(!s.read_retry(n_tail, seqs[2]));
        assert_eq!(s.vmas(), vec![(va, 5 * PS), (Va(va.0 + 8 * PS), 8 * PS)]);
        assert_eq!(s.mapped_pages(), 13);
        assert_eq!(s.stats().invalidations_sent, 2);
        s.check_invariants().unwrap();
    }

    #[test]
    fn munmap_range_is_clipped_to_mappings() {
        let mut s = space(16);
        let va = Va(0x2000_0000);
        s.mmap_fixed(Va(va.0 + 2 * PS), 2 * PS, Contiguity::Contiguous).unwrap();
        let n = s.notifier_insert(va, 16 * PS).unwrap();
        let lonely = s.notifier_insert(Va(0x3000_0000), PS).unwrap();
        let t = s.begin_munmap(va, 8 * PS).unwrap();
        assert_eq!(t.invalidations().len(), 1);
        let i = t.invalidations()[0];
        assert_eq!((i.notifier, i.start, i.end), (n, Va(va.0 + 2 * PS), Va(va.0 + 4 * PS)));
        s.commit(t).unwrap();
        // Nothing mapped under the lonely notifier: no invalidation at all.
        let seq = s.read_begin(lonely);
        let t = s.begin_munmap(Va(0x3000_0000), PS).unwrap();
        assert!(t.invalidations().is_empty());
        s.commit(t).unwrap();
        assert!(!s.read_retry(lonely, seq));
        assert_eq!(s.begin_munmap(Va(1), PS).unwrap_err(), UnmapError::Unaligned(Va(1)));
        assert_eq!(s.begin_munmap(va, 0).unwrap_err(), UnmapError::InvalidLength(0));
        assert_eq!(
            s.begin_munmap(Va(!0xfff), 2 * PS).unwrap_err(),
            UnmapError::InvalidLength(2 * PS)
        );
    }

    #[test]
    fn pending_locks_layout_but_allows_driver_callbacks() {
        let mut s = space(32);
        let va = s.mmap(8 * PS, Contiguity::Contiguous).unwrap();
        let other = s.mmap(2 * PS, Contiguity::Contiguous).unwrap();
        s.begin_madvise_dontneed(other, PS).and_then(|t| s.commit(t)).unwrap();
        let n = s.notifier_insert(va, 8 * PS).unwrap();
        let pinned = s.pin_pages(va, 8).unwrap();
        let token = s.begin_munmap(va, 8 * PS).unwrap();
        assert!(s.has_pending());
        assert_eq!(s.mmap(PS, Contiguity::Contiguous), Err(MmapError::Busy));
        assert_eq!(s.mmap_fixed(Va(0x1000_0000), PS, Contiguity::Contiguous), Err(MmapError::Busy));
        assert_eq!(s.touch(other, PS), Err(MmapError::Busy));
        assert_eq!(s.begin_munmap(other, PS).unwrap_err(), UnmapError::Busy);
        assert_eq!(s.begin_shrink(other, 2 * PS, PS).unwrap_err(), UnmapError::Busy);
        assert_eq!(s.begin_mremap(other, PS, PS, true).unwrap_err(), UnmapError::Busy);
        assert_eq!(s.begin_madvise_dontneed(other, PS).unwrap_err(), UnmapError::Busy);
        assert_eq!(
            s.begin_invalidate(other, PS, InvalidateEvent::Migrate).unwrap_err(),
            UnmapError::Busy
        );
        // A pin needing a fault waits for the lock; present pages can still be pinned.
        assert_eq!(s.pin_pages(other, 1), Err(PinError::Busy));
        let extra = s.pin_pages(va, 2).unwrap();
        // read_begin during the invalidation returns a value the commit retires.
        let seq_during = s.read_begin(n);
        assert!(s.read_retry(n, seq_during));
        // A notifier inserted over the range while the unmap is pending counts as invalidated.
        let late = s.notifier_insert(Va(va.0 + PS), PS).unwrap();
        let late_seq = s.read_begin(late);
        let apart = s.notifier_insert(other, PS).unwrap();
        let apart_seq = s.read_begin(apart);
        // The driver's callback: unpin and drop the notifier (removal with the invalidation still
        // in the uncommitted token is safe).
        for inv in token.invalidations().to_vec() {
            assert_eq!(inv.notifier, n);
            s.unpin_pages(&pinned, true);
            s.notifier_remove(inv.notifier);
        }
        assert_eq!(s.commit(token), Ok(va));
        assert!(!s.has_pending());
        assert!(s.read_retry(late, late_seq));
        assert!(!s.read_retry(apart, apart_seq));
        assert!(s.read_retry(n, 0), "removed notifier reports retry");
        // The two extra pins hold orphans; everything else is free.
        for (i, &p) in pinned.iter().enumerate() {
            let want =
                if i < 2 { FrameState::Orphan { owner: OwnerId(1) } } else { FrameState::Free };
            assert_eq!(s.frame_state(p), Some(want), "page {i}");
        }
        s.unpin_pages(&extra, false);
        assert_eq!(s.frame_state(extra[0]), Some(FrameState::Free));
        assert_eq!(s.total_pins(), 0);
        s.check_invariants().unwrap();
    }

    #[test]
    fn tokens_are_checked() {
        let shared = pool(16);
        let mut a = AddressSpace::new(OwnerId(1), shared.clone());
        let mut b = AddressSpace::new(OwnerId(2), shared);
        let va = a.mmap(PS, Contiguity::Contiguous).unwrap();
        let vb = b.mmap(PS, Contiguity::Contiguous).unwrap();
        let ta = a.begin_munmap(va, PS).unwrap();
        let tb = b.begin_munmap(vb, PS).unwrap();
        assert_eq!(a.commit(tb), Err(UnmapError::StaleToken));
        // b's operation is still pending (the token was consumed): abort is the only way out,
        // and it needs the token, so b stays locked. a is unaffected.
        assert!(b.has_pending());
        let n = a.notifier_insert(va, PS).unwrap();
        let seq = a.read_begin(n);
        a.abort(ta).unwrap();
        assert!(!a.has_pending());
        assert!(a.translate(va).is_some());
        // An abort after begin_invalidate retires sequences too.
        let t = a.begin_invalidate(va, PS, InvalidateEvent::Protection).unwrap();
        assert_eq!(t.invalidations()[0].event, InvalidateEvent::Protection);
        assert!(!t.invalidations()[0].event.is_unmap());
        a.commit(t).unwrap();
        assert!(a.read_retry(n, seq));
        assert!(a.translate(va).is_some());
    }

    #[test]
    fn shrink_unmaps_the_tail_only() {
        let mut s = space(16);
        let va = s.mmap(8 * PS, Contiguity::Contiguous).unwrap();
        let head = s.notifier_insert(va, 2 * PS).unwrap();
        let tail = s.notifier_insert(Va(va.0 + 6 * PS), 2 * PS).unwrap();
        let mut seen = Vec::new();
        s.shrink_with(va, 8 * PS, 3 * PS, |_, inv| seen.push(*inv)).unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].notifier, tail);
        assert_eq!((seen[0].start, seen[0].end), (Va(va.0 + 3 * PS), Va(va.0 + 8 * PS)));
        assert!(seen[0].event.is_unmap());
        assert_eq!(s.vmas(), vec![(va, 3 * PS)]);
        assert_eq!(s.read_begin(head), 0);
        assert_eq!(s.pool().with(|p| p.free_frames()), 13);
        assert_eq!(
            s.begin_shrink(va, 3 * PS, 4 * PS).unwrap_err(),
            UnmapError::InvalidLength(4 * PS)
        );
        assert_eq!(s.begin_shrink(va, 3 * PS, 0).unwrap_err(), UnmapError::InvalidLength(0));
        assert_eq!(s.begin_shrink(va, 4 * PS, PS).unwrap_err(), UnmapError::NotMapped(va));
        // Same size: nothing to do.
        s.shrink_with(va, 3 * PS, 3 * PS, |_, _| panic!("no invalidation expected")).unwrap();
        s.check_invariants().unwrap();
    }

    #[test]
    fn mremap_grow_in_place_sends_nothing() {
        let mut s = space(16);
        let va = s.mmap(2 * PS, Contiguity::Contiguous).unwrap();
        let n = s.notifier_insert(va, 2 * PS).unwrap();
        let got =
            s.mremap_with(va, 2 * PS, 4 * PS, false, |_, _| panic!("no invalidation")).unwrap();
        assert_eq!(got, va);
        assert_eq!(s.vmas(), vec![(va, 4 * PS)]);
        assert_eq!(frames_of(&s, va, 4).iter().flatten().count(), 4);
        assert!(!s.read_retry(n, 0));
        s.check_invariants().unwrap();
    }

    #[test]
    fn mremap_move_sends_unmap_for_old_range_and_moves_frames() {
        let mut s = space(32);
        let va = s.mmap(4 * PS, Contiguity::Contiguous).unwrap();
        let blocker = s.mmap(PS, Contiguity::Contiguous).unwrap();
        assert_eq!(blocker, Va(va.0 + 4 * PS));
        let old_frames = frames_of(&s, va, 4);
        let pinned = s.pin_pages(va, 1).unwrap();
        let n = s.notifier_insert(Va(va.0 + 3 * PS), PS).unwrap();
        assert_eq!(s.begin_mremap(va, 4 * PS, 6 * PS, false).unwrap_err(), UnmapError::NoSpace(va));
        let mut seen = Vec::new();
        let new = s.mremap_with(va, 4 * PS, 6 * PS, true, |_, inv| seen.push(*inv)).unwrap();
        assert_eq!(new, Va(blocker.0 + PS));
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].notifier, n);
        assert_eq!(seen[0].event, InvalidateEvent::Unmap);
        assert_eq!((seen[0].start, seen[0].end), (va, Va(va.0 + 4 * PS)));
        // Frames moved with the mapping; the pinned one is still mapped (at its new address).
        assert_eq!(frames_of(&s, new, 4), old_frames);
        assert_eq!(frames_of(&s, new, 6).iter().flatten().count(), 6);
        assert_eq!(frames_of(&s, va, 4), vec![None; 4]);
        assert_eq!(
            s.frame_state(pinned[0]),
            Some(FrameState::Mapped { owner: OwnerId(1), va: new })
        );
        assert_eq!(s.vmas(), vec![(blocker, PS), (new, 6 * PS)]);
        s.check_invariants().unwrap();
    }

    #[test]
    fn mremap_edge_cases() {
        let mut s = space(8);
        let va = s.mmap(4 * PS, Contiguity::Contiguous).unwrap();
        let b = s.mmap(2 * PS, Contiguity::Contiguous).unwrap();
        // Not in one VMA.
        assert_eq!(
            s.begin_mremap(va, 6 * PS, 8 * PS, true).unwrap_err(),
            UnmapError::NotMapped(va)
        );
        assert_eq!(
            s.begin_mremap(Va(0x1000_0000), PS, 2 * PS, true).unwrap_err(),
            UnmapError::NotMapped(Va(0x1000_0000))
        );
        assert_eq!(s.begin_mremap(va, PS, 0, true).unwrap_err(), UnmapError::InvalidLength(0));
        // Shrinking is a tail munmap.
        let n = s.notifier_insert(Va(va.0 + 3 * PS), PS).unwrap();
        let t = s.begin_mremap(va, 4 * PS, 2 * PS, true).unwrap();
        assert_eq!(t.invalidations().len(), 1);
        assert_eq!(s.commit(t), Ok(va));
        assert!(s.read_retry(n, 0));
        // Same size: no-op.
        let t = s.begin_mremap(va, 2 * PS, 2 * PS, true).unwrap();
        assert!(t.invalidations().is_empty());
        assert_eq!(s.commit(t), Ok(va));
        // Growth that cannot be populated fails at commit and changes nothing. In place: 4
        // frames in use, 4 free, 6 more wanted; no invalidation is sent for in-place growth.
        let n2 = s.notifier_insert(b, PS).unwrap();
        let t = s.begin_mremap(b, 2 * PS, 8 * PS, true).unwrap();
        assert!(t.invalidations().is_empty());
        assert_eq!(s.commit(t), Err(UnmapError::NoMemory));
        assert!(!s.has_pending());
        assert!(!s.read_retry(n2, 0));
        // Moving (a blocker sits right after b): the old range's notifier hears Unmap, the
        // commit fails, the layout is unchanged, and the invalidation was merely spurious.
        let blocker = Va(b.0 + 2 * PS);
        s.mmap_fixed(blocker, PS, Contiguity::Contiguous).unwrap();
        let t = s.begin_mremap(b, 2 * PS, 8 * PS, true).unwrap();
        assert_eq!(t.invalidations().len(), 1);
        assert_eq!(s.commit(t), Err(UnmapError::NoMemory));
        assert!(!s.has_pending());
        assert!(s.read_retry(n2, 0));
        assert_eq!(s.vmas(), vec![(va, 2 * PS), (b, 2 * PS), (blocker, PS)]);
        assert_eq!(s.mapped_pages(), 5);
        s.check_invariants().unwrap();
    }

    #[test]
    fn madvise_dontneed_clears_and_refaults() {
        let mut s = space(16);
        let va = s.mmap(4 * PS, Contiguity::Contiguous).unwrap();
        let old = frames_of(&s, va, 4);
        let pinned = s.pin_pages(Va(va.0 + PS), 1).unwrap();
        let n = s.notifier_insert(va, 4 * PS).unwrap();
        let mut seen = Vec::new();
        s.madvise_dontneed_with(va, 2 * PS, |_, inv| seen.push(*inv)).unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].notifier, n);
        assert_eq!(seen[0].event, InvalidateEvent::Clear);
        assert!(!seen[0].event.is_unmap());
        // Still mapped, not present; the pinned frame is an orphan, the other one is free.
        assert!(s.is_mapped(va));
        assert_eq!(s.translate(va), None);
        assert_eq!(s.translate(Va(va.0 + PS)), None);
        assert_eq!(s.frame_state(pinned[0]), Some(FrameState::Orphan { owner: OwnerId(1) }));
        assert_eq!(s.frame_state(old[0].unwrap()), Some(FrameState::Free));
        assert_eq!(s.vmas(), vec![(va, 4 * PS)]);
        // A pin faults fresh frames in (one contiguous run of 2, first fit: old[0] is alone
        // between the base and the orphan, so the run comes from after the mapping), never the
        // orphan the driver still holds.
        let again = s.pin_pages(va, 4).unwrap();
        assert_eq!(again.len(), 4);
        assert_eq!(&again[..2], &[Pfn(0x1004), Pfn(0x1005)]);
        assert!(!again.contains(&pinned[0]));
        assert_eq!(&again[2..], &[old[2].unwrap(), old[3].unwrap()]);
        assert_eq!(s.stats().pages_faulted, 2);
        // Unmapped part of the range: ENOMEM, nothing done.
        assert_eq!(s.begin_madvise_dontneed(va, 8 * PS).unwrap_err(), UnmapError::NotMapped(va));
        assert_eq!(
            s.begin_madvise_dontneed(Va(va.0 + 1), PS).unwrap_err(),
            UnmapError::Unaligned(Va(va.0 + 1))
        );
        let t = s.begin_madvise_dontneed(va, 0).unwrap();
        assert!(t.invalidations().is_empty());
        s.commit(t).unwrap();
        s.unpin_pages(&again, false);
        s.unpin_pages(&pinned, false);
        assert_eq!(s.total_pins(), 0);
        s.check_invariants().unwrap();
    }

    #[test]
    fn touch_faults_in_with_the_vma_policy() {
        let mut s = space(16);
        let va = s.mmap(4 * PS, Contiguity::Scattered).unwrap();
        s.madvise_dontneed_with(va, 4 * PS, |_, _| {}).unwrap();
        assert_eq!(s.mapped_pages(), 0);
        assert_eq!(s.touch(va, 4 * PS), Ok(4));
        assert_eq!(s.touch(va, 4 * PS), Ok(0));
        assert_eq!(s.touch(va, 0), Ok(0));
        let f: Vec<u64> = frames_of(&s, va, 4).into_iter().flatten().map(|p| p.0).collect();
        assert_eq!(f, vec![0x1000, 0x1002, 0x1001, 0x1003]);
        // A touch of one byte faults one page.
        s.madvise_dontneed_with(Va(va.0 + PS), PS, |_, _| {}).unwrap();
        assert_eq!(s.touch(Va(va.0 + PS + 10), 1), Ok(1));
        assert_eq!(s.touch(va, 5 * PS), Err(MmapError::NotMapped(Va(va.0 + 4 * PS))));
        s.check_invariants().unwrap();
    }

    #[test]
    fn pin_is_partial_and_stops_at_holes() {
        let mut s = space(16);
        let va = Va(0x4000_0000);
        s.mmap_fixed(va, 3 * PS, Contiguity::Contiguous).unwrap();
        s.mmap_fixed(Va(va.0 + 4 * PS), 2 * PS, Contiguity::Contiguous).unwrap();
        // Unaligned start rounds down; stops at the hole after 3 pages.
        let p = s.pin_pages(Va(va.0 + 5), 6).unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(s.pin_pages(Va(va.0 + 3 * PS), 2), Err(PinError::Fault(Va(va.0 + 3 * PS))));
        assert_eq!(s.pin_pages(va, 0), Ok(vec![]));
        assert_eq!(s.stats().pages_pinned, 3);
        // Twice-pinned frames need two unpins.
        let q = s.pin_pages(va, 1).unwrap();
        assert_eq!(s.pin_count(q[0]), 2);
        s.unpin_pages(&q, false);
        s.unpin_pages(&q, false);
        s.unpin_pages(&q, false); // one too many: counted, ignored
        assert_eq!(s.stats().bad_unpin_count, 1);
        assert_eq!(s.pin_count(q[0]), 0);
        s.unpin_pages(&p[1..], false);
        assert_eq!(s.total_pins(), 0);
        s.check_invariants().unwrap();
    }

    #[test]
    fn pin_fault_out_of_frames() {
        let mut s = space(4);
        let va = s.mmap(4 * PS, Contiguity::Contiguous).unwrap();
        let held = s.pin_pages(va, 2).unwrap();
        s.madvise_dontneed_with(va, 4 * PS, |_, _| {}).unwrap();
        // Two orphans held, two frames free: the fault-in serves two pages, then stops.
        let got = s.pin_pages(va, 4).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(s.pin_pages(Va(va.0 + 2 * PS), 2), Err(PinError::NoMemory));
        s.unpin_pages(&held, false);
        assert_eq!(s.pin_pages(Va(va.0 + 2 * PS), 2).unwrap().len(), 2);
        s.check_invariants().unwrap();
    }

    #[test]
    fn notifier_api_edges() {
        let mut s = space(4);
        assert_eq!(
            s.notifier_insert(Va(0x1000), 0),
            Err(NotifierError::InvalidRange { start: Va(0x1000), len: 0 })
        );
        assert!(s.notifier_insert(Va(u64::MAX), 2).is_err());
        let a = s.notifier_insert(Va(0x1000), 10).unwrap();
        let b = s.notifier_insert(Va(0x1000), 10).unwrap();
        assert_ne!(a, b);
        assert_eq!(s.notifier_range(a), Some((Va(0x1000), Va(0x100a))));
        assert_eq!(s.notifier_count(), 2);
        s.notifier_remove(a);
        s.notifier_remove(a);
        assert_eq!(s.stats().notifier_remove_unknown_count, 1);
        assert_eq!(s.read_begin(a), 0);
        assert!(s.read_retry(a, 0));
        assert!(!s.read_retry(b, 0));
        // Ids are never reused.
        let c = s.notifier_insert(Va(0x1000), 10).unwrap();
        assert!(c > b);
    }

    #[test]
    fn settings_and_accounting() {
        let mut s = space(4);
        assert_eq!(s.rlimit_memlock(), None);
        s.set_rlimit_memlock(Some(64 << 10));
        s.set_cap_ipc_lock(true);
        assert_eq!(s.rlimit_memlock(), Some(64 << 10));
        assert!(s.cap_ipc_lock());
        s.account_pinned(5);
        s.account_pinned(-7);
        assert_eq!(s.pinned_vm(), -2);
        s.account_pinned(i64::MIN);
        assert_eq!(s.pinned_vm(), i64::MIN);
        s.set_mmap_base(Va(0x2000_0123));
        assert_eq!(s.mmap(PS, Contiguity::Contiguous), Ok(Va(0x2000_0000)));
        assert_eq!(s.owner(), OwnerId(1));
    }
}
