//! Errors of the user TID cache.

use crate::errno::Errno;

/// Why an acquire, release or cleanup did not (fully) succeed.
///
/// [`CacheError::NoProgress`] and [`CacheError::UpdateFailed`] are transient: PSM returns
/// PSM2_OK_NO_PROGRESS / "retry later" and the caller tries again after releasing or after the
/// kernel frees resources. The others are fatal for the endpoint in PSM
/// (PSM2_EP_DEVICE_FAILURE or an abort).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CacheError {
    /// The range hits an invalidated TID still in use, or the cache is full of TIDs in use,
    /// or (non-cached path) every TID of the fd is out. Retry after a release.
    #[error("No progress: TIDs are invalidated or all in use")]
    NoProgress,
    /// Zero length, or the range wraps the address space.
    #[error("Invalid range {va:#x}+{len}")]
    InvalidRange {
        /// Requested start.
        va: u64,
        /// Requested length.
        len: u32,
    },
    /// TID_UPDATE failed before any TID of this acquire was obtained (ENOMEM with nothing
    /// left to evict, ENOSPC, EBUSY, ...). Retry later.
    #[error("TID_UPDATE failed: {0}")]
    UpdateFailed(Errno),
    /// TID_UPDATE returned EFAULT: fatal in PSM.
    #[error("TID_UPDATE faulted (EFAULT)")]
    Fault,
    /// TID_UPDATE succeeded but its reply is inconsistent (empty list, lengths that do not add
    /// up, a TID the cache already holds, a range overlapping a cached TID). The returned TIDs
    /// were handed back with TID_FREE.
    #[error("TID_UPDATE returned an inconsistent reply")]
    BadUpdate,
    /// TID_FREE failed.
    #[error("TID_FREE failed: {0}")]
    FreeFailed(Errno),
    /// TID_FREE freed fewer TIDs than asked.
    #[error("TID_FREE freed {freed} of {asked} TIDs")]
    ShortFree {
        /// TIDs passed.
        asked: u32,
        /// TIDs the kernel reports freed.
        freed: u32,
    },
    /// TID_INVAL_READ failed.
    #[error("TID_INVAL_READ failed: {0}")]
    InvalReadFailed(Errno),
    /// Release of a tidinfo this cache does not hold for an acquire (raw tidinfo given).
    /// Nothing was released.
    #[error("Release of TID {0:#010x} that is not held")]
    NotAcquired(u32),
}

impl CacheError {
    /// Transient errors: try the same call again later.
    pub const fn is_transient(&self) -> bool {
        matches!(self, CacheError::NoProgress | CacheError::UpdateFailed(_))
    }
}
