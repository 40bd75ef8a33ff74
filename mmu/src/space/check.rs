//! The invariant check of one address space against the shared frame pool.

use crate::error::InvariantViolation;
use crate::frames::FrameState;
use crate::types::{Va, PAGE_SIZE};

use super::{AddressSpace, MMAP_MIN_ADDR, TASK_SIZE};

impl AddressSpace {
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
}
