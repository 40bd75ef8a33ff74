//! One cached TID (facts §9.3: start vaddr, tidinfo, length in pages, invalidated flag,
//! refcount) and the key that names it in the kernel's invalidation queue.

use hfi_abi::tidinfo::EXP_TID_LEN;
use hfi_abi::{TidInfo, PAGE_SIZE};

/// The identity of a TID as TID_INVAL_READ reports it: the tidinfo word without its LEN field,
/// i.e. IDX and CTRL (the relative RcvArray entry, PSM's `2*TID + TIDCtrl`) plus the reserved
/// bits 19:11. Real hardware tidinfo has the reserved bits clear, so this is exactly the
/// relative entry; a mock may set them to name more than 2048 TIDs (facts §5.2).
pub const fn tid_key(tid: TidInfo) -> u32 {
    tid.raw() & !EXP_TID_LEN.smask()
}

/// A snapshot of one cache entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheEntry {
    /// Virtual address of the first byte the TID maps (page aligned).
    pub start: u64,
    /// The tidinfo TID_UPDATE returned.
    pub tid: TidInfo,
    /// Length in 4 KiB pages (the tidinfo LEN).
    pub npages: u32,
    /// The kernel reported the TID invalidated; no new user may take it.
    pub invalidated: bool,
    /// Outstanding acquires holding the TID.
    pub refcount: u32,
}

impl CacheEntry {
    /// One past the last byte the TID maps.
    pub const fn end(&self) -> u64 {
        self.start.saturating_add(self.npages as u64 * PAGE_SIZE)
    }

    /// Bytes mapped.
    pub const fn len_bytes(&self) -> u64 {
        self.npages as u64 * PAGE_SIZE
    }

    /// On the idle (LRU) queue: nobody holds it and it is still valid.
    pub const fn is_idle(&self) -> bool {
        self.refcount == 0 && !self.invalidated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ignores_len_only() {
        let a = TidInfo::for_entry(13, 16).unwrap();
        let b = TidInfo::for_entry(13, 1).unwrap();
        let c = TidInfo::for_entry(12, 16).unwrap();
        assert_eq!(tid_key(a), tid_key(b));
        assert_ne!(tid_key(a), tid_key(c));
        // Reserved bits take part in the key.
        assert_ne!(tid_key(TidInfo(a.raw() | 1 << 11)), tid_key(a));
    }

    #[test]
    fn entry_extent() {
        let e = CacheEntry {
            start: 0x1000,
            tid: TidInfo::for_entry(0, 2).unwrap(),
            npages: 2,
            invalidated: false,
            refcount: 0,
        };
        assert_eq!((e.end(), e.len_bytes(), e.is_idle()), (0x3000, 0x2000, true));
    }
}
