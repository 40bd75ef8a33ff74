//! `hfi1_can_pin_pages` (facts §6.7), as a pure function over explicit inputs, in both the
//! current (2023, a0d198f79a8d) and the original (2016) arithmetic.

use crate::types::PAGE_SIZE;

/// The `cache_size` module parameter's default, in MiB.
pub const DEFAULT_CACHE_SIZE_MB: u64 = 256;

/// Which version of `hfi1_can_pin_pages` to reproduce.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CanPinVariant {
    /// a0d198f79a8d (Feb 2023, "Fix arithmetic and logic errors in hfi1_can_pin_pages"):
    /// without CAP_IPC_LOCK, `ulimit_pages = RLIMIT_MEMLOCK / 4096`; fail when
    /// `pinned_vm + npages > ulimit_pages` or `nlocked + npages > ulimit_pages / user_ctxts / 4`;
    /// always fail when `nlocked + npages > cache_size_mb * 256`.
    #[default]
    V2023,
    /// The 2016 code: the per-cache size is `min(cache_size, RLIMIT_MEMLOCK / user_ctxts / 4)`
    /// bytes (the clamp skipped when the limit is unlimited), rounded up to pages; it fails when
    /// `pinned_vm + npages >= RLIMIT_MEMLOCK` (pages compared with **bytes**) without
    /// CAP_IPC_LOCK, and CAP_IPC_LOCK returns true before the cache-size cap is applied.
    Seed2016,
}

/// Inputs of [`can_pin_pages`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CanPinParams {
    /// `mm->pinned_vm` in pages. Signed like the kernel's `atomic64_t`: an unbalanced driver can
    /// drive it negative, and the kernel's comparison then converts it to a huge unsigned value
    /// (so the check fails); that conversion is reproduced.
    pub pinned_vm: i64,
    /// Pages this fd already has pinned (`tid_n_pinned`).
    pub nlocked: u64,
    /// Pages about to be pinned.
    pub npages: u64,
    /// `RLIMIT_MEMLOCK` in bytes; `None` = unlimited (`RLIM_INFINITY`, all ones).
    pub rlimit_memlock_bytes: Option<u64>,
    /// The caller has CAP_IPC_LOCK.
    pub cap_ipc_lock: bool,
    /// `num_rcv_contexts - first_dyn_alloc_ctxt`. The kernel divides by it unchecked; 0 is
    /// treated as 1 here.
    pub user_ctxts: u32,
    /// The `cache_size` module parameter in MiB.
    pub cache_size_mb: u64,
}

impl Default for CanPinParams {
    /// Nothing pinned, nothing requested, unlimited memlock, no capability, one user context,
    /// the default 256 MiB cache.
    fn default() -> CanPinParams {
        CanPinParams {
            pinned_vm: 0,
            nlocked: 0,
            npages: 0,
            rlimit_memlock_bytes: None,
            cap_ipc_lock: false,
            user_ctxts: 1,
            cache_size_mb: DEFAULT_CACHE_SIZE_MB,
        }
    }
}

impl CanPinParams {
    /// Parameters whose process-wide part (`pinned_vm`, `RLIMIT_MEMLOCK`, CAP_IPC_LOCK) is read
    /// from `mm`, the backend the driver pins through.
    pub fn from_mm(
        mm: &dyn crate::PinDma,
        nlocked: u64,
        npages: u64,
        user_ctxts: u32,
        cache_size_mb: u64,
    ) -> CanPinParams {
        CanPinParams {
            pinned_vm: mm.pinned_vm(),
            nlocked,
            npages,
            rlimit_memlock_bytes: mm.rlimit_memlock(),
            cap_ipc_lock: mm.cap_ipc_lock(),
            user_ctxts,
            cache_size_mb,
        }
    }
}

/// Would `hfi1_can_pin_pages` allow pinning `p.npages` more pages? Pure; no overflow (sums are
/// computed in `u64` and saturate, where the kernel's would only wrap at absurd sizes).
pub fn can_pin_pages(variant: CanPinVariant, p: &CanPinParams) -> bool {
    let ulimit_bytes = p.rlimit_memlock_bytes.unwrap_or(u64::MAX);
    let usr_ctxts = u64::from(p.user_ctxts.max(1));
    // The kernel adds a signed pinned_vm to npages and compares as unsigned long.
    let pinned = (p.pinned_vm as u64).wrapping_add(p.npages);
    let locked = p.nlocked.saturating_add(p.npages);
    match variant {
        CanPinVariant::V2023 => {
            if !p.cap_ipc_lock {
                let ulimit_pages = ulimit_bytes / PAGE_SIZE;
                if pinned > ulimit_pages {
                    return false;
                }
                if locked > ulimit_pages / usr_ctxts / 4 {
                    return false;
                }
            }
            let cache_limit_pages = p.cache_size_mb.saturating_mul(1024 * 1024) / PAGE_SIZE;
            locked <= cache_limit_pages
        }
        CanPinVariant::Seed2016 => {
            let mut size = p.cache_size_mb.saturating_mul(1 << 20);
            let cache_limit = ulimit_bytes / usr_ctxts / 4;
            if ulimit_bytes != u64::MAX && size > cache_limit {
                size = cache_limit;
            }
            let size_pages = size.div_ceil(PAGE_SIZE);
            if pinned >= ulimit_bytes && !p.cap_ipc_lock {
                return false;
            }
            locked <= size_pages || p.cap_ipc_lock
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn params(pinned_vm: i64, nlocked: u64, npages: u64, rlimit: Option<u64>) -> CanPinParams {
        CanPinParams {
            pinned_vm,
            nlocked,
            npages,
            rlimit_memlock_bytes: rlimit,
            cap_ipc_lock: false,
            user_ctxts: 4,
            cache_size_mb: DEFAULT_CACHE_SIZE_MB,
        }
    }

    #[test]
    fn v2023_worked_numbers() {
        let v = CanPinVariant::V2023;
        // RLIMIT_MEMLOCK 64 MiB → ulimit_pages 16384; 4 user contexts → per-cache share
        // 16384 / 4 / 4 = 1024 pages.
        let lim = Some(64 * MIB);
        assert!(can_pin_pages(v, &params(0, 0, 1024, lim)));
        assert!(!can_pin_pages(v, &params(0, 0, 1025, lim)));
        assert!(can_pin_pages(v, &params(0, 1000, 24, lim)));
        assert!(!can_pin_pages(v, &params(0, 1000, 25, lim)));
        // mm-wide: 16000 already pinned by someone else, 384 more hits the limit exactly.
        assert!(can_pin_pages(v, &params(16000, 0, 384, lim)));
        assert!(!can_pin_pages(v, &params(16000, 0, 385, lim)));
        // Unlimited memlock: only the 256 MiB cache cap (65536 pages) remains.
        assert!(can_pin_pages(v, &params(0, 65000, 536, None)));
        assert!(!can_pin_pages(v, &params(0, 65000, 537, None)));
        // CAP_IPC_LOCK skips the rlimit checks but not the cache cap.
        let mut p = params(1 << 40, 0, 65536, Some(0));
        p.cap_ipc_lock = true;
        assert!(can_pin_pages(v, &p));
        p.npages = 65537;
        assert!(!can_pin_pages(v, &p));
        // cache_size 1 MiB → 256 pages.
        let mut p = params(0, 0, 256, None);
        p.cache_size_mb = 1;
        assert!(can_pin_pages(v, &p));
        p.npages = 257;
        assert!(!can_pin_pages(v, &p));
        // A negative pinned_vm (unbalanced accounting) looks huge to the kernel: refused.
        assert!(!can_pin_pages(v, &params(-5, 0, 1, lim)));
        // ... unless npages brings the sum back to >= 0, exactly as in C.
        assert!(can_pin_pages(v, &params(-1, 0, 1, lim)));
        // user_ctxts 0 is treated as 1: share = 16384 / 4 = 4096.
        let mut p = params(0, 0, 4096, lim);
        p.user_ctxts = 0;
        assert!(can_pin_pages(v, &p));
    }

    #[test]
    fn seed2016_worked_numbers() {
        let v = CanPinVariant::Seed2016;
        // RLIMIT 64 MiB, 4 contexts: cache_limit = 64 MiB / 4 / 4 = 4 MiB < 256 MiB, so the
        // cap is 4 MiB = 1024 pages, as in 2023.
        let lim = Some(64 * MIB);
        assert!(can_pin_pages(v, &params(0, 0, 1024, lim)));
        assert!(!can_pin_pages(v, &params(0, 0, 1025, lim)));
        // The bug: pinned_vm (pages) is compared with the limit in bytes (67108864), so an mm
        // with 60000 pages (234 MiB) pinned, far over 64 MiB, still passes...
        assert!(can_pin_pages(v, &params(60000, 0, 16, lim)));
        // ... where the 2023 code refuses.
        assert!(!can_pin_pages(CanPinVariant::V2023, &params(60000, 0, 16, lim)));
        // Only pinned + npages >= 67108864 pages (256 GiB) trips it; note >= not >.
        let big = 64 * MIB as i64;
        assert!(!can_pin_pages(v, &params(big - 16, 0, 16, lim)));
        assert!(can_pin_pages(v, &params(big - 17, 0, 16, lim)));
        // CAP_IPC_LOCK bypasses everything, including the cache-size cap.
        let mut p = params(0, 0, 1 << 30, lim);
        p.cap_ipc_lock = true;
        assert!(can_pin_pages(v, &p));
        assert!(!can_pin_pages(CanPinVariant::V2023, &p));
        // Unlimited: no clamp, 256 MiB = 65536 pages.
        assert!(can_pin_pages(v, &params(0, 0, 65536, None)));
        assert!(!can_pin_pages(v, &params(0, 0, 65537, None)));
        // The cap rounds up: RLIMIT 4 MiB + 4 KiB with 1 context → cache_limit 1 MiB + 1 KiB
        // → 257 pages (2016), where 2023 rounds the limit down: 1025 / 4 = 256 pages.
        let mut p = params(0, 0, 257, Some(4 * MIB + 4 * 1024));
        p.user_ctxts = 1;
        assert!(can_pin_pages(v, &p));
        assert!(!can_pin_pages(CanPinVariant::V2023, &p));
        p.npages = 258;
        assert!(!can_pin_pages(v, &p));
    }

    #[test]
    fn default_params() {
        let p = CanPinParams::default();
        assert_eq!(p.cache_size_mb, 256);
        assert!(can_pin_pages(CanPinVariant::default(), &p));
    }
}
