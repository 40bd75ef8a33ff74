//! Error types, one per operation family, with variants named after the step that failed.
//!
//! Each variant notes the Linux errno it stands for, so a driver can map it to what the real
//! syscall or kernel helper would have returned.

use thiserror::Error;

use crate::types::{Pfn, Va};

/// Building or using a [`crate::FramePool`] failed.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub enum FrameError {
    /// The physical range is empty, not page aligned, or wraps around.
    #[error("Invalid physical range: base {base:#x}, len {len:#x}")]
    InvalidRange {
        /// Requested base address.
        base: u64,
        /// Requested length in bytes.
        len: u64,
    },
    /// The physical range has more frames than [`crate::frames::MAX_FRAMES`].
    #[error("Physical range too large: {frames} frames")]
    TooLarge {
        /// Frames the range would hold.
        frames: u64,
    },
    /// Fewer free frames than requested (ENOMEM).
    #[error("Out of frames: wanted {wanted}, {free} free")]
    OutOfFrames {
        /// Frames requested.
        wanted: u64,
        /// Frames free at the time.
        free: u64,
    },
    /// The frame number is outside the pool.
    #[error("Frame {0} is outside the pool")]
    OutOfRange(Pfn),
    /// The frame is not mapped (pin of a free or orphaned frame, unmap of an unmapped frame).
    #[error("Frame {0} is not mapped")]
    NotMapped(Pfn),
    /// Unpin of a frame whose pin count is already 0.
    #[error("Frame {0} is not pinned")]
    NotPinned(Pfn),
    /// The pin count would overflow `u32`.
    #[error("Pin count of frame {0} overflows")]
    PinOverflow(Pfn),
}

/// `mmap`, `mmap_fixed` or `touch` failed.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub enum MmapError {
    /// Length 0, or a length that overflows when rounded to pages (EINVAL).
    #[error("Invalid length {0:#x}")]
    InvalidLength(u64),
    /// A fixed address that is not page aligned (EINVAL).
    #[error("Address {0} is not page aligned")]
    Unaligned(Va),
    /// The fixed range lies outside the mappable user range (EINVAL/ENOMEM).
    #[error("Range at {0} is outside the user address range")]
    OutOfRange(Va),
    /// No free virtual range of the requested size (ENOMEM).
    #[error("No free virtual range of {0:#x} bytes")]
    NoSpace(u64),
    /// `mmap_fixed` over an existing mapping: this model implements `MAP_FIXED_NOREPLACE`
    /// (EEXIST); replace a mapping with `munmap_with` + `mmap_fixed`.
    #[error("Range at {0} overlaps an existing mapping")]
    Overlaps(Va),
    /// `touch` of a range that is not entirely mapped (EFAULT).
    #[error("Address {0} is not mapped")]
    NotMapped(Va),
    /// Not enough free frames to populate the mapping (ENOMEM).
    #[error("Out of frames to populate the mapping")]
    NoMemory,
    /// An unmap is between its begin and commit phases: the address space is write-locked.
    #[error("Address space is locked by a pending unmap")]
    Busy,
}

/// Beginning or committing an unmap-like operation (munmap, shrink, mremap, madvise) failed.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub enum UnmapError {
    /// Length 0 or overflowing (EINVAL).
    #[error("Invalid length {0:#x}")]
    InvalidLength(u64),
    /// Start address not page aligned (EINVAL).
    #[error("Address {0} is not page aligned")]
    Unaligned(Va),
    /// The range (or part of it) is not mapped: mremap needs one VMA (EFAULT), madvise needs the
    /// whole range mapped (ENOMEM).
    #[error("Range at {0} is not mapped as required")]
    NotMapped(Va),
    /// mremap growth impossible in place and moving was not allowed, or no free range to move to
    /// (ENOMEM).
    #[error("No room to grow the mapping at {0}")]
    NoSpace(Va),
    /// Not enough free frames to populate the grown part at commit (ENOMEM). The mapping is left
    /// unchanged; the invalidations already delivered were spurious, which is harmless.
    #[error("Out of frames to populate the grown mapping")]
    NoMemory,
    /// Another unmap is already pending (the mmap lock is held for write).
    #[error("Another unmap is pending")]
    Busy,
    /// The token does not belong to this address space's pending operation.
    #[error("Unknown or stale pending-unmap token")]
    StaleToken,
}

/// `pin_pages` pinned nothing.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub enum PinError {
    /// The first page is not mapped (EFAULT).
    #[error("Address {0} is not mapped")]
    Fault(Va),
    /// The first page needed a fault and no frame was free, or an injected ENOMEM.
    #[error("Out of memory while pinning")]
    NoMemory,
    /// The first page needed a fault while an unmap is pending (the fault would wait for the
    /// mmap lock); retry after the commit.
    #[error("Address space is locked by a pending unmap")]
    Busy,
}

/// `dma_map` failed.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub enum DmaMapError {
    /// `npages` was 0 or the run overflows.
    #[error("Invalid DMA length of {0} pages")]
    InvalidLength(usize),
    /// A frame of the run is outside the physical memory.
    #[error("Frame {0} is outside physical memory")]
    OutOfRange(Pfn),
    /// A frame of the run is not pinned: mapping it would let the device write into memory the
    /// kernel may reuse.
    #[error("Frame {0} is not pinned")]
    NotPinned(Pfn),
    /// The mapping failed (`dma_mapping_error`; only produced by fault injection here).
    #[error("DMA mapping failed")]
    MappingFailed,
}

/// `notifier_insert` failed.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub enum NotifierError {
    /// Length 0, or the range wraps around (EINVAL).
    #[error("Invalid notifier range at {start} (+{len:#x})")]
    InvalidRange {
        /// Start of the range.
        start: Va,
        /// Length in bytes.
        len: u64,
    },
    /// Allocation failure (ENOMEM; only produced by fault injection here).
    #[error("Out of memory inserting a notifier")]
    NoMemory,
}

/// A consistency check ([`crate::FramePool::check_invariants`],
/// [`crate::AddressSpace::check_invariants`]) found a broken invariant: a bug in this crate.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("Invariant violated: {0}")]
pub struct InvariantViolation(pub String);
