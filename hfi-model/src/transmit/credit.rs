//! PIO credit accounting and the credit-return qword of one send context.
//!
//! The chip counts the 64-byte blocks it frees (a packet's blocks are freed when the packet
//! leaves the context's buffer for the link) in an 11-bit wrapping counter and tells the host
//! by DMA-writing one u64 (Counter[10:0], Status bit 11, reasons bits 12-15; `chip.h` 86-118,
//! PSM `psm_hal_gen1_spio.h` 110-115). The host derives its free space from the counter alone:
//! hfi1 adds `(Counter − free) & 0x7ff` (`pio.c` 1672-1677), PSM computes
//! `total − ((fill − Counter) & 0x7ff)` (`psm_hal_gen1_spio.c` 483-488).
//!
//! When a return happens (hfi1 `pio.c` sc_alloc 760-789, sc_return_credits 1338-1352):
//! - **threshold**: SEND_CTXT_CREDIT_CTRL.Threshold ≠ 0 and the unreturned freed blocks reach
//!   it ("trigger when unreturned credits equal or exceed", `pio.c` 569-579). A threshold of 0
//!   returns nothing ("0 is off", `init.c` 79-81);
//! - **PBC**: the freed packet's PBC.CreditReturn bit (`chip.h` 56);
//! - **force**: a 0 → 1 edge of SEND_CTXT_CREDIT_FORCE.ForceReturn (`pio.c` 1343), even with
//!   nothing unreturned;
//! - **error**: the context halts; Status is set, which makes PSM reset the context
//!   (`psm_hal_gen1_spio.c` 468-470).
//!
//! The counter restarts at 0 when the context is enabled (0 → 1) or initialised by
//! SEND_PIO_INIT_CTXT: hfi1 zeroes its copy and its fill/free counts at that moment ("only
//! clear free and fill if transitioning 0 -> 1", `pio.c` 1266-1275), and PSM asserts a zero
//! counter after a context reset (`psm_hal_gen1_spio.c` 337-345).

use hfi_abi::pio::{
    credit_return_slot, CR_COUNTER, CR_DUE_TO_ERR, CR_DUE_TO_FORCE, CR_DUE_TO_PBC,
    CR_DUE_TO_THRESHOLD, CR_STATUS, PIO_COUNTER_MODULUS,
};
use hfi_abi::txe;

/// Why a credit return is made: a set of `CR_DUE_TO_*` bits of the return word.
pub type ReturnReasons = u64;

/// Credit state of one send context.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Credits {
    /// Blocks freed since the last reset (not wrapped; the counter is this mod 2048).
    freed: u64,
    /// `freed` at the last return.
    returned: u64,
    /// Last value written to SEND_CTXT_CREDIT_FORCE.ForceReturn (for edge detection).
    force_level: bool,
}

impl Credits {
    /// Back to the power-on state: counter 0, nothing unreturned.
    pub fn reset(&mut self) {
        *self = Self { force_level: self.force_level, ..Self::default() };
    }

    /// The free counter as the chip reports it (mod 2048).
    pub fn counter(&self) -> u64 {
        self.freed % PIO_COUNTER_MODULUS
    }

    /// The counter of the last return (SEND_CTXT_CREDIT_STATUS.LastReturnedCounter).
    pub fn last_returned(&self) -> u64 {
        self.returned % PIO_COUNTER_MODULUS
    }

    /// Freed blocks not yet returned.
    pub fn unreturned(&self) -> u64 {
        self.freed.saturating_sub(self.returned)
    }

    /// Blocks freed since the last reset, not wrapped.
    pub fn freed_total(&self) -> u64 {
        self.freed
    }

    /// `blocks` more blocks were freed by a packet whose PBC had CreditReturn = `pbc_return`.
    /// Returns the reasons a return is now due (0: none).
    pub fn free_blocks(
        &mut self,
        blocks: u64,
        pbc_return: bool,
        credit_ctrl: u64,
    ) -> ReturnReasons {
        self.freed = self.freed.saturating_add(blocks);
        let mut why = 0;
        if pbc_return {
            why |= CR_DUE_TO_PBC.smask();
        }
        let threshold = txe::SEND_CTXT_CREDIT_CTRL_THRESHOLD.get(credit_ctrl);
        if threshold != 0 && self.unreturned() >= threshold {
            why |= CR_DUE_TO_THRESHOLD.smask();
        }
        why
    }

    /// SEND_CTXT_CREDIT_FORCE was written with `value`: the reasons due (a 0 → 1 edge of
    /// ForceReturn), 0 otherwise.
    pub fn force_written(&mut self, value: u64) -> ReturnReasons {
        let level = txe::SEND_CTXT_CREDIT_FORCE_FORCE_RETURN.get(value) == 1;
        let edge = level && !self.force_level;
        self.force_level = level;
        if edge {
            CR_DUE_TO_FORCE.smask()
        } else {
            0
        }
    }

    /// Makes a return for `reasons` (an error return also sets Status when `halted`):
    /// records it and yields the qword the chip writes.
    pub fn make_return(&mut self, reasons: ReturnReasons, halted: bool) -> u64 {
        self.returned = self.freed;
        let mut w = CR_COUNTER.encode(self.counter()) | reasons;
        if halted {
            w |= CR_STATUS.smask() | CR_DUE_TO_ERR.smask();
        }
        w
    }

    /// SEND_CTXT_CREDIT_STATUS.
    pub fn status_csr(&self) -> u64 {
        txe::SEND_CTXT_CREDIT_STATUS_CURRENT_FREE_COUNTER.encode(self.counter())
            | txe::SEND_CTXT_CREDIT_STATUS_LAST_RETURNED_COUNTER.encode(self.last_returned())
    }

    /// Internal consistency (for tests and debug checks).
    pub fn check(&self) -> Result<(), String> {
        if self.returned > self.freed {
            return Err(format!("returned {} > freed {}", self.returned, self.freed));
        }
        Ok(())
    }
}

/// The host address the chip writes hardware context `hw_ctxt`'s credit return to, from
/// SEND_CTXT_CREDIT_RETURN_ADDR (`pio.c` 519-527: `cr[hw_context & 7]` of the 64-byte group
/// whose address the CSR holds). `None` while the CSR is 0: hfi1 writes 0 when it frees the
/// context (`pio.c` 857-866), and no DMA goes to address 0 (**choice**).
pub fn return_address(csr: u64, hw_ctxt: u32) -> Option<u64> {
    let group = csr & txe::SEND_CTXT_CREDIT_RETURN_ADDR_ADDRESS.smask();
    if group == 0 {
        None
    } else {
        Some(group + credit_return_slot(hw_ctxt))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctrl(threshold: u64) -> u64 {
        txe::SEND_CTXT_CREDIT_CTRL_THRESHOLD.encode(threshold)
    }

    /// `pio.c` 569-579: a threshold triggers when unreturned credits equal or exceed it.
    #[test]
    fn threshold_triggers_at_equal() {
        let mut c = Credits::default();
        assert_eq!(c.free_blocks(2, false, ctrl(3)), 0);
        assert_eq!(c.free_blocks(1, false, ctrl(3)), CR_DUE_TO_THRESHOLD.smask());
        let w = c.make_return(CR_DUE_TO_THRESHOLD.smask(), false);
        assert_eq!(CR_COUNTER.get(w), 3);
        assert_eq!(c.unreturned(), 0);
        // Threshold 0 is off (init.c 79-81).
        assert_eq!(c.free_blocks(100, false, ctrl(0)), 0);
    }

    /// PSM's arithmetic on the 11-bit counter (`psm_hal_gen1_spio.c` 483-488) stays right
    /// across the wrap at 2048.
    #[test]
    fn counter_wraps_at_2048_and_psm_arithmetic_holds() {
        let total = 573u64;
        let mut c = Credits::default();
        let mut fill = 0u64; // PSM's 11-bit fill counter
        for _ in 0..100 {
            fill = (fill + 30) & 0x7FF;
            c.free_blocks(30, false, ctrl(0));
            let w = c.make_return(CR_DUE_TO_FORCE.smask(), false);
            let avail = total - ((fill - CR_COUNTER.get(w)) & 0x7FF);
            assert_eq!(avail, total);
        }
        assert_eq!(c.counter(), 3000 % 2048);
    }

    /// `pio.c` 1343: a 0 → 1 transition schedules a return; writing 1 again does not.
    #[test]
    fn force_is_edge_triggered() {
        let mut c = Credits::default();
        assert_eq!(c.force_written(1), CR_DUE_TO_FORCE.smask());
        assert_eq!(c.force_written(1), 0);
        assert_eq!(c.force_written(0), 0);
        assert_eq!(c.force_written(1), CR_DUE_TO_FORCE.smask());
    }

    /// An error return carries Status (PSM resets the context on it, spio.c 468-470).
    #[test]
    fn halted_return_sets_status() {
        let mut c = Credits::default();
        c.free_blocks(5, true, ctrl(0));
        let w = c.make_return(0, true);
        assert_eq!(CR_STATUS.get(w), 1);
        assert_eq!(CR_DUE_TO_ERR.get(w), 1);
        assert_eq!(CR_COUNTER.get(w), 5);
        c.reset();
        assert_eq!(c.status_csr(), 0);
    }

    /// `pio.c` 519-527: group address from the CSR, slot hw_context & 7.
    #[test]
    fn return_address_uses_slot_of_hw_context() {
        assert_eq!(return_address(0x1000_0040, 159), Some(0x1000_0040 + 56));
        assert_eq!(return_address(0x1000_007F, 8), Some(0x1000_0040));
        assert_eq!(return_address(0, 3), None);
    }
}
