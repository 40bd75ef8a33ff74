//! Errno values of the hfi1 user ABI, as the driver returns them.

/// An errno the hfi1 ioctls return (positive values as in Linux).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Errno {
    /// EINVAL (22): bad argument (unaligned vaddr, zero length, too large, bad tidinfo).
    #[error("EINVAL: invalid argument")]
    Inval,
    /// ENOMEM (12): pin limit reached or allocation failure.
    #[error("ENOMEM: cannot pin or allocate")]
    NoMem,
    /// ENOSPC (28): nothing could be pinned or no TID could be programmed.
    #[error("ENOSPC: no space")]
    NoSpc,
    /// EBUSY (16): an invalidation raced with setup (2023 cover notifier).
    #[error("EBUSY: invalidation raced with setup")]
    Busy,
    /// EFAULT (14): bad user address, or copy to user failed.
    #[error("EFAULT: bad address")]
    Fault,
    /// EBADF (9): tidinfo does not name a TID owned by this fd.
    #[error("EBADF: TID not owned")]
    BadF,
    /// EPERM (1): operation not permitted in this mode.
    #[error("EPERM: not permitted")]
    Perm,
}

impl Errno {
    /// The Linux errno number.
    pub const fn code(self) -> i32 {
        match self {
            Errno::Perm => 1,
            Errno::BadF => 9,
            Errno::NoMem => 12,
            Errno::Fault => 14,
            Errno::Busy => 16,
            Errno::Inval => 22,
            Errno::NoSpc => 28,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_linux() {
        assert_eq!(
            [Errno::Inval, Errno::NoMem, Errno::NoSpc, Errno::Busy, Errno::Fault, Errno::BadF]
                .map(Errno::code),
            [22, 12, 28, 16, 14, 9]
        );
    }
}
