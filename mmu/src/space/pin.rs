//! Pinning (`pin_user_pages_fast` / `unpin_user_pages_dirty_lock`, faulting pages in on the
//! way) and the inputs of the pin limit: `mm->pinned_vm`, which pinning does not change (the
//! driver accounts with `account_pinned`, as hfi1 does), RLIMIT_MEMLOCK and CAP_IPC_LOCK.

use crate::error::PinError;
use crate::types::{Pfn, Va};

use super::AddressSpace;

impl AddressSpace {
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

    /// Pin count of a frame of the shared pool.
    pub fn pin_count(&self, pfn: Pfn) -> u32 {
        self.pool.with(|p| p.pin_count(pfn))
    }

    /// Sum of all pin counts in the shared pool (every owner).
    pub fn total_pins(&self) -> u64 {
        self.pool.with(|p| p.total_pins())
    }

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
    /// [`SpaceStats::bad_unpin_count`](super::SpaceStats::bad_unpin_count) and skipped. Does
    /// not touch `pinned_vm`.
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
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{space, PS};
    use super::*;
    use crate::frames::Contiguity;

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
}
