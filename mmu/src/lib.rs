//! The memory the driver pins, and the notifier that tells it the user freed that memory.
//!
//! `mmu` models what the Linux hfi1 expected-receive (TID caching) path needs from the kernel's
//! memory management: user address spaces with Linux semantics (mmap, munmap, mremap,
//! madvise(DONTNEED)), physical frames that are pinned, DMA-mapped and reused after free,
//! `mmu_interval_notifier`s with sequence numbers, `mm->pinned_vm`, `RLIMIT_MEMLOCK` and
//! `hfi1_can_pin_pages` (facts §6.2 steps 2–4 and 11, §6.4, §6.7).
//!
//! # Map
//!
//! - [`types`]: `Va`, `Pfn`, `Iova`, `NotifierId`, `OwnerId`, `PAGE_SIZE`.
//! - [`frames`]: the physical [`FramePool`] (free / mapped / orphaned frames, pin counts,
//!   allocation policies from [`Contiguity`]), shared by processes via [`SharedFramePool`].
//! - [`space`]: [`AddressSpace`], one process: VMAs, page table, notifiers, pinning, the DMA
//!   map table, and the two-phase invalidation protocol.
//! - [`ops`]: [`PinDma`], the object-safe trait the driver is written against.
//! - [`fault`]: [`PinFaults`], short pins and an after-pin hook at the pin seam (scenario
//!   probes and tests).
//! - [`pin_limit`]: [`can_pin_pages`] in its 2023 and 2016 arithmetic.
//! - `test_utils` (feature `test-utils`, never in a production build): `FailingPinDma`, error
//!   injection for driver tests.
//!
//! # Invariants
//!
//! - A frame is exactly one of free, mapped (by one owner at one virtual page) or orphaned
//!   (unmapped while pinned). No frame is mapped at two addresses.
//! - Pin counts never go below zero: an unbalanced unpin is counted and ignored.
//! - An orphan is freed exactly when its last pin drops; a free frame can then back any
//!   mapping of any owner (page reuse after free, the root of the stale-cache trap).
//! - Every notifier whose interval overlaps a range being removed or cleared receives exactly one
//!   [`Invalidation`] per operation, with a bumped sequence number, and `read_retry` on any
//!   sequence read before (or during) the invalidation reports it.
//! - Deterministic: no clock, no threads, no randomness but the seeded [`Contiguity::Random`];
//!   all maps are `BTreeMap`s. The same calls give the same frames.
//!
//! # Two-phase invalidation
//!
//! Operations that remove or change a mapping are split into *begin* (compute and return the
//! invalidations in a [`PendingUnmap`], bump sequences; nothing unmapped yet), *deliver* (the
//! caller hands each [`Invalidation`] to the driver, which may call back into the address space
//! to unpin pages or remove notifiers) and *commit* (the page table changes, frames are freed or
//! orphaned). A notifier callback therefore never runs inside the code that changes the page
//! table, and never needs to allocate there: the structural version of the deadlock lessons from
//! the notifier paths of libfabric, UCX and hfi1 (anchors §1.2, §1.4). While a token is pending,
//! operations that would change the layout return `Busy`, as they would wait for the mmap lock.
//! [`AddressSpace::munmap_with`] and friends run the three phases with a closure.
//!
//! ```
//! use mmu::{AddressSpace, Contiguity, FrameState, OwnerId, SharedFramePool, PAGE_SIZE};
//!
//! let pool = SharedFramePool::new(0x10_0000, 64 * PAGE_SIZE).unwrap();
//! let mut mm = AddressSpace::new(OwnerId(1), pool);
//! let va = mm.mmap(4 * PAGE_SIZE, Contiguity::Contiguous).unwrap();
//! // The driver pins the buffer and watches it.
//! let pages = mm.pin_pages(va, 4).unwrap();
//! mm.account_pinned(pages.len() as i64);
//! let watch = mm.notifier_insert(va, 4 * PAGE_SIZE).unwrap();
//! let seq = mm.read_begin(watch);
//!
//! // The user frees it. Begin: the notifier hears UNMAP while the pages are still mapped.
//! let token = mm.begin_munmap(va, 4 * PAGE_SIZE).unwrap();
//! assert_eq!(token.invalidations().len(), 1);
//! assert!(token.invalidations()[0].event.is_unmap());
//! assert!(mm.read_retry(watch, seq));
//! // Deliver: the driver's callback may call back in: here it unpins half the buffer.
//! mm.unpin_pages(&pages[..2], true);
//! // Commit: unpinned frames are freed, still-pinned ones become orphans.
//! mm.commit(token).unwrap();
//! assert_eq!(mm.frame_state(pages[0]), Some(FrameState::Free));
//! assert_eq!(mm.frame_state(pages[2]), Some(FrameState::Orphan { owner: OwnerId(1) }));
//! mm.unpin_pages(&pages[2..], true); // the last pin frees the orphans
//! mm.account_pinned(-(pages.len() as i64));
//! assert_eq!(mm.frame_state(pages[2]), Some(FrameState::Free));
//! ```
//!
//! # What this crate does not own
//!
//! - The bytes of physical memory: they live in a vm-memory `GuestMemoryMmap` owned by the
//!   simulation; frames are addressed as `pfn << 12` ([`Pfn::guest_addr`]), and
//!   [`frames::zero_frames`] clears freshly handed-out frames.
//! - The TID cache, RcvArray programming and the invalid-TID queue (crate `driver`), and the
//!   device (crate `hfi-model`).
//!
//! The real Linux backend ([`linux`], feature `linux`: mlock + pagemap + userfaultfd, DMA maps
//! through an [`linux::IommuMap`] such as VFIO) implements [`PinDma`] on the process's own
//! pages. Its `linux::sys` module holds the crate's only `unsafe` code.
#![deny(unsafe_code)]

pub mod error;
pub mod fault;
pub mod frames;
#[cfg(all(feature = "linux", target_os = "linux"))]
pub mod linux;
pub mod ops;
pub mod pin_limit;
pub mod space;
#[cfg(any(test, feature = "test-utils"))]
pub mod test_utils;
pub mod types;

pub use error::{
    DmaMapError, FrameError, InvariantViolation, MmapError, NotifierError, PinError, UnmapError,
};
pub use fault::{AfterPinHook, PinFaults};
pub use frames::{
    zero_frames, Contiguity, FramePool, FrameState, PoolStats, SharedFramePool, UnmapOutcome,
    UnpinOutcome,
};
pub use ops::PinDma;
pub use pin_limit::{can_pin_pages, CanPinParams, CanPinVariant, DEFAULT_CACHE_SIZE_MB};
pub use space::{AddressSpace, InvalidateEvent, Invalidation, PendingUnmap, SpaceStats};
#[cfg(any(test, feature = "test-utils"))]
pub use test_utils::{FailingPinDma, FailingStats, Trigger};
pub use types::{Iova, NotifierId, OwnerId, Pfn, Va, PAGE_SHIFT, PAGE_SIZE};
