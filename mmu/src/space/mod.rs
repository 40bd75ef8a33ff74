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
//!   fault fresh frames in (allocated with the VMA's [`Contiguity`](crate::frames::Contiguity)).
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
//!
//! # Files
//!
//! | file | owns |
//! |---|---|
//! | `mod.rs` | [`AddressSpace`] (state, construction, exit), [`SpaceStats`], the user-range constants |
//! | `layout.rs` | VMAs and the page table: mmap, mmap_fixed, touch, translate, fault-in |
//! | `unmap.rs` | the begin phases (munmap, shrink, mremap, madvise DONTNEED, faked invalidations) and the `_with` helpers |
//! | `pending.rs` | [`PendingUnmap`], [`Invalidation`], [`InvalidateEvent`]; commit, abort, `complete_with` |
//! | `notifiers.rs` | interval notifiers: insert, remove, `read_begin`, `read_retry` |
//! | `pin.rs` | pin / unpin, `pinned_vm` accounting, RLIMIT_MEMLOCK and CAP_IPC_LOCK |
//! | `dma.rs` | the identity DMA map table |
//! | `check.rs` | [`AddressSpace::check_invariants`] |

mod check;
mod dma;
mod layout;
mod notifiers;
mod pending;
mod pin;
mod unmap;

use std::collections::BTreeMap;

use crate::frames::SharedFramePool;
use crate::types::{NotifierId, OwnerId, Pfn};

pub use pending::{InvalidateEvent, Invalidation, PendingUnmap};

use layout::Vma;
use notifiers::Notifier;
use pending::Pending;

/// Lowest mappable address (`vm.mmap_min_addr` default, 64 KiB).
pub const MMAP_MIN_ADDR: u64 = 0x1_0000;
/// End of the user address range (x86-64 `TASK_SIZE` with 4-level paging).
pub const TASK_SIZE: u64 = 0x7fff_ffff_f000;
/// Where `mmap` starts its first-fit search for a free range.
pub const DEFAULT_MMAP_BASE: u64 = 0x7f00_0000_0000;

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

    /// True between a begin phase and its commit or abort.
    pub fn has_pending(&self) -> bool {
        self.pending.is_some()
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

/// What the unit tests of every part of the address space build on.
#[cfg(test)]
mod fixture {
    use super::AddressSpace;
    use crate::frames::SharedFramePool;
    use crate::types::{OwnerId, Pfn, Va, PAGE_SIZE};

    pub(super) const PS: u64 = PAGE_SIZE;
    pub(super) const BASE: u64 = 0x100_0000; // pfn 0x1000

    pub(super) fn pool(frames: u64) -> SharedFramePool {
        SharedFramePool::new(BASE, frames * PS).unwrap()
    }

    pub(super) fn space(frames: u64) -> AddressSpace {
        AddressSpace::new(OwnerId(1), pool(frames))
    }

    pub(super) fn frames_of(s: &AddressSpace, va: Va, pages: u64) -> Vec<Option<Pfn>> {
        (0..pages).map(|i| s.translate(va.add_pages(i).unwrap())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::fixture::{space, PS};
    use super::*;
    use crate::frames::Contiguity;
    use crate::types::Va;

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
