//! TXE send CSRs: global, per send context and per SDMA engine (hfi1 `chip_registers.h`,
//! `pio.c`, `sdma.c`).
//!
//! Per-context and per-engine offsets are relative to the block
//! ([`crate::bar0::TXE_PER_CONTEXT`], [`crate::bar0::TXE_PER_SDMA`]).

use crate::bar0::TXE;
use crate::field::{Field, RegArray};

// ---- Global TXE CSRs -------------------------------------------------------------------------

/// SEND_CTRL: global send control.
pub const SEND_CTRL: u64 = TXE;
/// SEND_CTRL.SendEnable.
pub const SEND_CTRL_SEND_ENABLE: Field = Field::bit(0);
/// SEND_CTRL.VlArbiterEnable.
pub const SEND_CTRL_VL_ARBITER_ENABLE: Field = Field::bit(1);
/// SEND_CTRL.CmReset: resets the credit manager; self-clearing (hfi1 spins on it, unbounded).
pub const SEND_CTRL_CM_RESET: Field = Field::bit(2);
/// SEND_CONTEXTS (read-only): number of PIO send contexts.
pub const SEND_CONTEXTS: u64 = TXE + 0x10;
/// SEND_DMA_ENGINES (read-only): number of SDMA engines.
pub const SEND_DMA_ENGINES: u64 = TXE + 0x18;
/// SEND_PIO_MEM_SIZE (read-only): PIO send buffer memory in bytes.
pub const SEND_PIO_MEM_SIZE: u64 = TXE + 0x20;
/// SEND_DMA_MEM_SIZE (read-only): SDMA buffer memory in bytes.
pub const SEND_DMA_MEM_SIZE: u64 = TXE + 0x28;

/// SEND_PIO_INIT_CTXT: the PIO init engine.
pub const SEND_PIO_INIT_CTXT: u64 = TXE + 0x38;
/// SEND_PIO_INIT_CTXT.PioAllCtxtInit: initialise every send context.
pub const SEND_PIO_INIT_CTXT_PIO_ALL_CTXT_INIT: Field = Field::bit(0);
/// SEND_PIO_INIT_CTXT.PioSingleCtxtInit: initialise context PioCtxtNum.
pub const SEND_PIO_INIT_CTXT_PIO_SINGLE_CTXT_INIT: Field = Field::bit(1);
/// SEND_PIO_INIT_CTXT.PioInitInProgress (read-only).
pub const SEND_PIO_INIT_CTXT_PIO_INIT_IN_PROGRESS: Field = Field::bit(2);
/// SEND_PIO_INIT_CTXT.PioInitErr (read-only).
pub const SEND_PIO_INIT_CTXT_PIO_INIT_ERR: Field = Field::bit(3);
/// SEND_PIO_INIT_CTXT.PioCtxtNum.
pub const SEND_PIO_INIT_CTXT_PIO_CTXT_NUM: Field = Field::new(8, 8);

/// SEND_PIO_ERR_STATUS (read-only).
pub const SEND_PIO_ERR_STATUS: u64 = TXE + 0x40;
/// SEND_DMA_ERR_STATUS (read-only).
pub const SEND_DMA_ERR_STATUS: u64 = TXE + 0x60;
/// SEND_EGRESS_ERR_STATUS (read-only).
pub const SEND_EGRESS_ERR_STATUS: u64 = TXE + 0x80;
/// SEND_ERR_STATUS (read-only).
pub const SEND_ERR_STATUS: u64 = TXE + 0xE0;
/// SEND_CM_CREDIT_USED_STATUS (read-only): per-VL credits still in use; hfi1 polls it for 0
/// before changing link credits.
pub const SEND_CM_CREDIT_USED_STATUS: u64 = TXE + 0x510;
/// SEND_CM_CREDIT_VL\[8\]: per-data-VL dedicated and shared credit limits (storage).
pub const SEND_CM_CREDIT_VL: RegArray = RegArray::new(TXE + 0x600, 8, 8);

// ---- Per send context (TXE + 0x100000 + ctxt * 0x100) ----------------------------------------

/// SEND_CTXT_CTRL.
pub const SEND_CTXT_CTRL: u64 = 0x00;
/// SEND_CTXT_CTRL.CtxtEnable.
pub const SEND_CTXT_CTRL_CTXT_ENABLE: Field = Field::bit(0);
/// SEND_CTXT_STATUS (read-only).
pub const SEND_CTXT_STATUS: u64 = 0x08;
/// SEND_CTXT_ERR_STATUS (read-only).
pub const SEND_CTXT_ERR_STATUS: u64 = 0x40;

// ---- Per SDMA engine (TXE + 0x200000 + engine * 0x100) ---------------------------------------

/// SEND_DMA_CTRL.
pub const SEND_DMA_CTRL: u64 = 0x00;
/// SEND_DMA_CTRL.SDmaEnable: the engine fetches descriptors.
pub const SEND_DMA_CTRL_SDMA_ENABLE: Field = Field::bit(0);
/// SEND_DMA_CTRL.SDmaHalt: halt the engine.
pub const SEND_DMA_CTRL_SDMA_HALT: Field = Field::bit(1);
/// SEND_DMA_CTRL.SDmaCleanup: clean a halted engine up (reset its state).
pub const SEND_DMA_CTRL_SDMA_CLEANUP: Field = Field::bit(2);
/// SEND_DMA_CTRL.SDmaIntEnable.
pub const SEND_DMA_CTRL_SDMA_INT_ENABLE: Field = Field::bit(3);
/// SEND_DMA_STATUS (read-only).
pub const SEND_DMA_STATUS: u64 = 0x08;
/// SEND_DMA_STATUS.EngHalted.
pub const SEND_DMA_STATUS_ENG_HALTED: Field = Field::bit(56);
/// SEND_DMA_STATUS.EngCleanedUp (hfi1's clean-up tasklet spins on it without a timeout).
pub const SEND_DMA_STATUS_ENG_CLEANED_UP: Field = Field::bit(57);
/// SEND_DMA_ENG_ERR_STATUS (read-only).
pub const SEND_DMA_ENG_ERR_STATUS: u64 = 0x60;
/// SEND_DMA_ENG_ERR_STATUS.SDmaHaltErr: the engine halted.
pub const SEND_DMA_ENG_ERR_STATUS_SDMA_HALT_ERR: Field = Field::bit(6);
/// SEND_DMA_ENG_ERR_MASK: which engine errors raise its interrupt source.
pub const SEND_DMA_ENG_ERR_MASK: u64 = 0x68;
/// SEND_DMA_ENG_ERR_CLEAR (write 1 to clear SEND_DMA_ENG_ERR_STATUS bits).
pub const SEND_DMA_ENG_ERR_CLEAR: u64 = 0x70;
/// First SDMA engine error interrupt source (source = 16 + engine).
pub const IS_SDMAENG_ERR_START: u64 = 16;

/// Bytes per PIO block (a send context's credit unit).
pub const PIO_BLOCK_SIZE: u64 = 64;
/// Bytes per SDMA memory block (an engine's credit unit).
pub const SDMA_BLOCK_SIZE: u64 = 64;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bar0::{TXE_PER_CONTEXT, TXE_PER_SDMA};

    #[test]
    fn worked_offsets() {
        assert_eq!(SEND_PIO_INIT_CTXT, 0x180_0038);
        assert_eq!(SEND_CM_CREDIT_USED_STATUS, 0x180_0510);
        assert_eq!(TXE_PER_CONTEXT.offset(2).map(|b| b + SEND_CTXT_ERR_STATUS), Some(0x190_0240));
        assert_eq!(TXE_PER_SDMA.offset(1).map(|b| b + SEND_DMA_ENG_ERR_STATUS), Some(0x1A0_0160));
        let single = SEND_PIO_INIT_CTXT_PIO_CTXT_NUM.encode(159)
            | SEND_PIO_INIT_CTXT_PIO_SINGLE_CTXT_INIT.encode(1);
        assert_eq!(single, 0x9F02);
    }
}
