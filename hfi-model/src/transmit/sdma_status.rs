//! The SDMA engines' control and status as far as hfi1's engine state machine needs them to
//! start (sdma.c: s10 HwStartUpHaltWait → s15 HwStartUpCleanWait → s20 Idle → s99 Running).
//! No descriptors are fetched: the send datapath is not modelled.
//!
//! Per engine, on a SEND_DMA_CTRL write:
//! - **SDmaHalt 0 → 1**: the engine halts: SEND_DMA_STATUS.EngHalted, and the halt is reported
//!   as SEND_DMA_ENG_ERR_STATUS.SDmaHaltErr (hfi1 learns of the halt from that error's
//!   interrupt, then reads EngHalted).
//! - **SDmaCleanup** (an action bit; it reads back 0): the clean-up completes at once:
//!   EngCleanedUp set, EngHalted clear (hfi1's clean-up tasklet spins on EngCleanedUp).
//! - **SDmaEnable 0 → 1**: the engine runs: EngCleanedUp clears.
//!
//! SEND_DMA_ENG_ERR_STATUS is cleared through SEND_DMA_ENG_ERR_CLEAR (write 1 to clear); the
//! caller raises interrupt source IS_SDMAENG_ERR_START + engine when a status bit enabled in
//! SEND_DMA_ENG_ERR_MASK becomes set.

use hfi_abi::txe;

/// One engine's modelled state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SdmaEngine {
    halted: bool,
    cleaned_up: bool,
    err_status: u64,
}

impl SdmaEngine {
    /// SEND_DMA_CTRL changed from `old` to `new`; returns the value to store (the clean-up
    /// action bit does not stick).
    pub fn ctrl_written(&mut self, old: u64, new: u64) -> u64 {
        let rising = |f: hfi_abi::Field| f.get(old) == 0 && f.get(new) == 1;
        if rising(txe::SEND_DMA_CTRL_SDMA_HALT) {
            self.halted = true;
            self.cleaned_up = false;
            self.err_status |= txe::SEND_DMA_ENG_ERR_STATUS_SDMA_HALT_ERR.smask();
        }
        if txe::SEND_DMA_CTRL_SDMA_CLEANUP.get(new) == 1 {
            self.halted = false;
            self.cleaned_up = true;
        }
        if rising(txe::SEND_DMA_CTRL_SDMA_ENABLE) {
            self.cleaned_up = false;
        }
        txe::SEND_DMA_CTRL_SDMA_CLEANUP.set(new, 0)
    }

    /// SEND_DMA_STATUS.
    pub fn status(&self) -> u64 {
        txe::SEND_DMA_STATUS_ENG_HALTED.encode(u64::from(self.halted))
            | txe::SEND_DMA_STATUS_ENG_CLEANED_UP.encode(u64::from(self.cleaned_up))
    }

    /// SEND_DMA_ENG_ERR_STATUS.
    pub fn err_status(&self) -> u64 {
        self.err_status
    }

    /// SEND_DMA_ENG_ERR_CLEAR.
    pub fn clear_errors(&mut self, bits: u64) {
        self.err_status &= !bits;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hfi_abi::txe::*;

    /// sdma_sendctrl's value for an op set (enable, intenable, halt, cleanup).
    fn op(p: u64, e: bool, i: bool, h: bool, c: bool) -> u64 {
        let f = |on, f: hfi_abi::Field| if on { f.smask() } else { 0 };
        let keep = p & !(SEND_DMA_CTRL_SDMA_ENABLE.smask()
            | SEND_DMA_CTRL_SDMA_INT_ENABLE.smask()
            | SEND_DMA_CTRL_SDMA_HALT.smask());
        keep | f(e, SEND_DMA_CTRL_SDMA_ENABLE)
            | f(i, SEND_DMA_CTRL_SDMA_INT_ENABLE)
            | f(h, SEND_DMA_CTRL_SDMA_HALT)
            | f(c, SEND_DMA_CTRL_SDMA_CLEANUP)
    }

    #[test]
    fn hfi1_engine_start_up() {
        let mut e = SdmaEngine::default();
        assert_eq!(e.status(), 0);
        // s10 HwStartUpHaltWait: halt; the halt error is reported.
        let mut ctrl = e.ctrl_written(0, op(0, false, false, true, false));
        assert_eq!(SEND_DMA_STATUS_ENG_HALTED.get(e.status()), 1);
        assert_eq!(e.err_status(), SEND_DMA_ENG_ERR_STATUS_SDMA_HALT_ERR.smask());
        e.clear_errors(u64::MAX);
        assert_eq!(e.err_status(), 0);
        // s15 HwStartUpCleanWait: int enable + clean-up, halt bit dropped.
        let w = op(ctrl, false, true, false, true);
        ctrl = e.ctrl_written(ctrl, w);
        assert_eq!(SEND_DMA_CTRL_SDMA_CLEANUP.get(ctrl), 0, "the action bit does not stick");
        assert_eq!(SEND_DMA_STATUS_ENG_CLEANED_UP.get(e.status()), 1);
        assert_eq!(SEND_DMA_STATUS_ENG_HALTED.get(e.status()), 0);
        // s20 Idle, then s99 Running.
        ctrl = e.ctrl_written(ctrl, op(ctrl, false, true, false, false));
        assert_eq!(SEND_DMA_STATUS_ENG_CLEANED_UP.get(e.status()), 1);
        let run = op(ctrl, true, true, false, false);
        assert_eq!(e.ctrl_written(ctrl, run), run);
        assert_eq!(e.status(), 0, "running: neither halted nor cleaned up");
        assert_eq!(e.err_status(), 0);
    }
}
