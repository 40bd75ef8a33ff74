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
/// SEND_CTRL.UnsupportedVl: VLs the chip refuses to send on (one bit per data VL).
pub const SEND_CTRL_UNSUPPORTED_VL: Field = Field::new(3, 8);
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
/// SEND_PIO_ERR_MASK.
pub const SEND_PIO_ERR_MASK: u64 = TXE + 0x48;
/// SEND_PIO_ERR_CLEAR (write 1 to clear).
pub const SEND_PIO_ERR_CLEAR: u64 = TXE + 0x50;
/// SEND_PIO_ERR_STATUS.PioWriteBadCtxtErr: a PIO store to a context that cannot take it.
pub const SEND_PIO_ERR_STATUS_PIO_WRITE_BAD_CTXT_ERR: Field = Field::bit(0);
/// SEND_DMA_ERR_STATUS (read-only).
pub const SEND_DMA_ERR_STATUS: u64 = TXE + 0x60;
/// SEND_DMA_ERR_MASK.
pub const SEND_DMA_ERR_MASK: u64 = TXE + 0x68;
/// SEND_DMA_ERR_CLEAR (write 1 to clear).
pub const SEND_DMA_ERR_CLEAR: u64 = TXE + 0x70;
/// SEND_EGRESS_ERR_STATUS (read-only).
pub const SEND_EGRESS_ERR_STATUS: u64 = TXE + 0x80;
/// SEND_EGRESS_ERR_CLEAR (write 1 to clear).
pub const SEND_EGRESS_ERR_CLEAR: u64 = TXE + 0x90;
/// SEND_EGRESS_ERR_INFO: hfi1 reads it after a PioDisallowedPacket error (chip.c
/// handle_send_egress_err_info).
pub const SEND_EGRESS_ERR_INFO: u64 = TXE + 0xF00;
/// SEND_ERR_STATUS (read-only).
pub const SEND_ERR_STATUS: u64 = TXE + 0xE0;
/// SEND_CM_CREDIT_USED_STATUS (read-only): per-VL credits still in use; hfi1 polls it for 0
/// before changing link credits.
pub const SEND_CM_CREDIT_USED_STATUS: u64 = TXE + 0x510;
/// SEND_CM_CREDIT_VL\[8\]: per-data-VL dedicated and shared credit limits (storage).
pub const SEND_CM_CREDIT_VL: RegArray = RegArray::new(TXE + 0x600, 8, 8);

// ---- Per send context (TXE + 0x100000 + ctxt * 0x100) ----------------------------------------
//
// Offsets and fields from `chip_registers.h` (6.1.172) lines 848-923; hfi1 reaches them with
// `write_kctxt_csr(dd, hw_context, ...)` (`pio.c` sc_alloc, lines 722-795).

/// SEND_CTXT_CTRL.
pub const SEND_CTXT_CTRL: u64 = 0x00;
/// SEND_CTXT_CTRL.CtxtEnable.
pub const SEND_CTXT_CTRL_CTXT_ENABLE: Field = Field::bit(0);
/// SEND_CTXT_CTRL.CtxtBase: first block of the context in the chip's PIO memory (blocks).
pub const SEND_CTXT_CTRL_CTXT_BASE: Field = Field::new(32, 14);
/// SEND_CTXT_CTRL.CtxtDepth: ring size in 64-byte blocks (the context's credits).
pub const SEND_CTXT_CTRL_CTXT_DEPTH: Field = Field::new(48, 11);
/// SEND_CTXT_STATUS (read-only).
pub const SEND_CTXT_STATUS: u64 = 0x08;
/// SEND_CTXT_STATUS.CtxtHalted: the context stopped after a send error (`pio.c` is_sc_halted).
pub const SEND_CTXT_STATUS_CTXT_HALTED: Field = Field::bit(0);
/// SEND_CTXT_CREDIT_CTRL.
pub const SEND_CTXT_CREDIT_CTRL: u64 = 0x10;
/// SEND_CTXT_CREDIT_CTRL.Threshold: return credits once this many freed blocks are unreturned.
pub const SEND_CTXT_CREDIT_CTRL_THRESHOLD: Field = Field::new(0, 11);
/// SEND_CTXT_CREDIT_CTRL.EarlyReturn.
pub const SEND_CTXT_CREDIT_CTRL_EARLY_RETURN: Field = Field::bit(16);
/// SEND_CTXT_CREDIT_CTRL.CreditIntr: raise SendCredit (source 576 + context) on a return.
pub const SEND_CTXT_CREDIT_CTRL_CREDIT_INTR: Field = Field::bit(17);
/// SEND_CTXT_CREDIT_STATUS (read-only).
pub const SEND_CTXT_CREDIT_STATUS: u64 = 0x18;
/// SEND_CTXT_CREDIT_STATUS.LastReturnedCounter.
pub const SEND_CTXT_CREDIT_STATUS_LAST_RETURNED_COUNTER: Field = Field::new(0, 11);
/// SEND_CTXT_CREDIT_STATUS.CurrentFreeCounter.
pub const SEND_CTXT_CREDIT_STATUS_CURRENT_FREE_COUNTER: Field = Field::new(32, 11);
/// SEND_CTXT_CREDIT_RETURN_ADDR: host address of the 64-byte credit-return group.
pub const SEND_CTXT_CREDIT_RETURN_ADDR: u64 = 0x20;
/// SEND_CTXT_CREDIT_RETURN_ADDR.Address (64-byte aligned; smask 0xFFFF_FFFF_FFC0).
pub const SEND_CTXT_CREDIT_RETURN_ADDR_ADDRESS: Field = Field::new(6, 42);
/// SEND_CTXT_CREDIT_FORCE.
pub const SEND_CTXT_CREDIT_FORCE: u64 = 0x28;
/// SEND_CTXT_CREDIT_FORCE.ForceReturn: a 0 → 1 edge schedules a credit return
/// (`pio.c` sc_return_credits, line 1343).
pub const SEND_CTXT_CREDIT_FORCE_FORCE_RETURN: Field = Field::bit(0);
/// SEND_CTXT_ERR_STATUS (read-only).
pub const SEND_CTXT_ERR_STATUS: u64 = 0x40;
/// SEND_CTXT_ERR_MASK: which error bits raise source 32 + context (hfi1 writes all ones).
pub const SEND_CTXT_ERR_MASK: u64 = 0x48;
/// SEND_CTXT_ERR_CLEAR (write 1 to clear SEND_CTXT_ERR_STATUS bits).
pub const SEND_CTXT_ERR_CLEAR: u64 = 0x50;
/// SEND_CTXT_ERR_STATUS.PioInconsistentSop.
pub const SEND_CTXT_ERR_STATUS_PIO_INCONSISTENT_SOP: Field = Field::bit(0);
/// SEND_CTXT_ERR_STATUS.PioDisallowedPacket.
pub const SEND_CTXT_ERR_STATUS_PIO_DISALLOWED_PACKET: Field = Field::bit(1);
/// SEND_CTXT_ERR_STATUS.PioWriteCrossesBoundary.
pub const SEND_CTXT_ERR_STATUS_PIO_WRITE_CROSSES_BOUNDARY: Field = Field::bit(2);
/// SEND_CTXT_ERR_STATUS.PioWriteOverflow.
pub const SEND_CTXT_ERR_STATUS_PIO_WRITE_OVERFLOW: Field = Field::bit(3);
/// SEND_CTXT_ERR_STATUS.PioWriteOutOfBounds.
pub const SEND_CTXT_ERR_STATUS_PIO_WRITE_OUT_OF_BOUNDS: Field = Field::bit(4);
/// Every defined SEND_CTXT_ERR_STATUS bit (`hfi.h` NUM_SEND_CTXT_ERR_STATUS_COUNTERS = 5).
pub const SEND_CTXT_ERR_STATUS_ALL: u64 = 0x1F;

/// SEND_CTXT_CHECK_ENABLE: packet integrity checks (`hfi.h` hfi1_pkt_default_send_ctxt_mask).
pub const SEND_CTXT_CHECK_ENABLE: u64 = 0x80;
/// SEND_CTXT_CHECK_VL: VLs the context may not send on, one bit per VL (user contexts get
/// 1 << 15, `pio.c` line 793).
pub const SEND_CTXT_CHECK_VL: u64 = 0x88;
/// SEND_CTXT_CHECK_JOB_KEY.
pub const SEND_CTXT_CHECK_JOB_KEY: u64 = 0x90;
/// SEND_CTXT_CHECK_JOB_KEY.Value.
pub const SEND_CTXT_CHECK_JOB_KEY_VALUE: Field = Field::new(0, 16);
/// SEND_CTXT_CHECK_JOB_KEY.Mask.
pub const SEND_CTXT_CHECK_JOB_KEY_MASK: Field = Field::new(16, 16);
/// SEND_CTXT_CHECK_JOB_KEY.AllowPermissive.
pub const SEND_CTXT_CHECK_JOB_KEY_ALLOW_PERMISSIVE: Field = Field::bit(32);
/// SEND_CTXT_CHECK_PARTITION_KEY.
pub const SEND_CTXT_CHECK_PARTITION_KEY: u64 = 0x98;
/// SEND_CTXT_CHECK_PARTITION_KEY.Value.
pub const SEND_CTXT_CHECK_PARTITION_KEY_VALUE: Field = Field::new(0, 16);
/// SEND_CTXT_CHECK_SLID.
pub const SEND_CTXT_CHECK_SLID: u64 = 0xA0;
/// SEND_CTXT_CHECK_SLID.Value.
pub const SEND_CTXT_CHECK_SLID_VALUE: Field = Field::new(0, 16);
/// SEND_CTXT_CHECK_SLID.Mask.
pub const SEND_CTXT_CHECK_SLID_MASK: Field = Field::new(16, 16);
/// SEND_CTXT_CHECK_OPCODE.
pub const SEND_CTXT_CHECK_OPCODE: u64 = 0xA8;
/// SEND_CTXT_CHECK_OPCODE.Value: `(opcode & mask) == (value & mask)` passes.
pub const SEND_CTXT_CHECK_OPCODE_VALUE: Field = Field::new(0, 8);
/// SEND_CTXT_CHECK_OPCODE.Mask (user contexts: 0xC0 / 0xC0, `hfi.h` USER_OPCODE_CHECK_*).
pub const SEND_CTXT_CHECK_OPCODE_MASK: Field = Field::new(8, 8);

/// SEND_CTXT_CHECK_ENABLE / SEND_DMA_CHECK_ENABLE bits (`chip_registers.h` 848-876, 925-945;
/// the SDMA register has the same layout).
pub mod check {
    use crate::field::Field;

    /// CheckEnable: master enable of the Check* group.
    pub const CHECK_ENABLE: Field = Field::bit(0);
    /// CheckVl.
    pub const CHECK_VL: Field = Field::bit(1);
    /// CheckJobKey.
    pub const CHECK_JOB_KEY: Field = Field::bit(2);
    /// CheckPartitionKey.
    pub const CHECK_PARTITION_KEY: Field = Field::bit(3);
    /// CheckSlid.
    pub const CHECK_SLID: Field = Field::bit(4);
    /// CheckOpcode.
    pub const CHECK_OPCODE: Field = Field::bit(5);
    /// CheckVlMapping.
    pub const CHECK_VL_MAPPING: Field = Field::bit(6);
    /// CheckBypassVlMapping.
    pub const CHECK_BYPASS_VL_MAPPING: Field = Field::bit(7);
    /// DisallowRaw (LRH.LNH = 0).
    pub const DISALLOW_RAW: Field = Field::bit(8);
    /// DisallowRawIpv6 (LRH.LNH = 1).
    pub const DISALLOW_RAW_IPV6: Field = Field::bit(9);
    /// DisallowGrh (LRH.LNH = 3).
    pub const DISALLOW_GRH: Field = Field::bit(10);
    /// DisallowBypass (16B packets).
    pub const DISALLOW_BYPASS: Field = Field::bit(11);
    /// DisallowKdethPackets.
    pub const DISALLOW_KDETH_PACKETS: Field = Field::bit(12);
    /// DisallowNonKdethPackets.
    pub const DISALLOW_NON_KDETH_PACKETS: Field = Field::bit(13);
    /// DisallowTooSmallIbPackets.
    pub const DISALLOW_TOO_SMALL_IB_PACKETS: Field = Field::bit(14);
    /// DisallowTooSmallBypassPackets.
    pub const DISALLOW_TOO_SMALL_BYPASS_PACKETS: Field = Field::bit(15);
    /// DisallowPbcTest (PBC TestBadIcrc / TestEbp).
    pub const DISALLOW_PBC_TEST: Field = Field::bit(16);
    /// DisallowBadPktLen (PBC length against LRH.PktLen).
    pub const DISALLOW_BAD_PKT_LEN: Field = Field::bit(17);
    /// DisallowTooLongIbPackets.
    pub const DISALLOW_TOO_LONG_IB_PACKETS: Field = Field::bit(18);
    /// DisallowTooLongBypassPackets.
    pub const DISALLOW_TOO_LONG_BYPASS_PACKETS: Field = Field::bit(19);
    /// DisallowPbcStaticRateControl (PBC.StaticRateControlCnt ≠ 0).
    pub const DISALLOW_PBC_STATIC_RATE_CONTROL: Field = Field::bit(20);
    /// DisallowBypassBadPktLen.
    pub const DISALLOW_BYPASS_BAD_PKT_LEN: Field = Field::bit(21);
}

// ---- Per SDMA engine (TXE + 0x200000 + engine * 0x100) ---------------------------------------
//
// Offsets and fields from `chip_registers.h` (6.1.172) lines 924-1012 and 1291-1292; hfi1
// programs them in `sdma.c` init_sdma_regs (lines 2009-2039) and sdma_setlengen (1948-1965).

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
/// SEND_DMA_BASE_ADDR: host address of the descriptor ring (16 bytes per descriptor).
pub const SEND_DMA_BASE_ADDR: u64 = 0x10;
/// SEND_DMA_LEN_GEN.
pub const SEND_DMA_LEN_GEN: u64 = 0x18;
/// SEND_DMA_LEN_GEN.Length: ring size in units of 64 descriptors (hfi1 writes
/// `descq_cnt / 64 << 6`, `sdma.c` 1960-1964; the width covers the 32768-entry maximum).
pub const SEND_DMA_LEN_GEN_LENGTH: Field = Field::new(6, 10);
/// SEND_DMA_LEN_GEN.Generation: bit 2 enables the generation check; its 0 → 1 edge loads the
/// engine's generation counter from bits 1:0 (`sdma.c` 1955-1964, "clear-then-set the MSB").
pub const SEND_DMA_LEN_GEN_GENERATION: Field = Field::new(16, 3);
/// SEND_DMA_LEN_GEN.Generation value whose MSB enables generation checking.
pub const SEND_DMA_LEN_GEN_GEN_CHECK: u64 = 4;
/// Descriptors per unit of SEND_DMA_LEN_GEN.Length.
pub const SEND_DMA_LEN_GEN_UNIT: u64 = 64;
/// SEND_DMA_TAIL: index of the descriptor after the last one posted (`sdma.c` 1967-1972).
pub const SEND_DMA_TAIL: u64 = 0x20;
/// SEND_DMA_TAIL.Tail (**choice**: 16 bits, hfi1 writes a u16).
pub const SEND_DMA_TAIL_TAIL: Field = Field::new(0, 16);
/// SEND_DMA_HEAD (read-only): index of the next descriptor the engine will complete; hfi1
/// reads it as a u16 (`sdma.c` sdma_gethead, 1674-1676).
pub const SEND_DMA_HEAD: u64 = 0x28;
/// SEND_DMA_HEAD_ADDR: where the engine DMA-writes its head (a u64) for HEAD_TO_HOST
/// descriptors (`sdma.c` 2027).
pub const SEND_DMA_HEAD_ADDR: u64 = 0x30;
/// SEND_DMA_PRIORITY_THLD.
pub const SEND_DMA_PRIORITY_THLD: u64 = 0x38;
/// SEND_DMA_IDLE_CNT (read-only).
pub const SEND_DMA_IDLE_CNT: u64 = 0x40;
/// SEND_DMA_RELOAD_CNT: idle-interrupt delay in cclocks (hfi1: `ns_to_cclock(sdma_idle_cnt)`,
/// 250 ns by default; 0 means no idle interrupt, and hfi1 then sets INT_REQ instead,
/// `sdma.c` 1365-1371, 2025).
pub const SEND_DMA_RELOAD_CNT: u64 = 0x48;
/// SEND_DMA_DESC_CNT: descriptors between SDmaProgress interrupts (hfi1 writes
/// `desct_intr` = 64 in every engine interrupt, `sdma.c` 310-320, 1857).
pub const SEND_DMA_DESC_CNT: u64 = 0x50;
/// SEND_DMA_DESC_CNT.Cnt.
pub const SEND_DMA_DESC_CNT_CNT: Field = Field::new(0, 16);
/// SEND_DMA_DESC_FETCHED_CNT (read-only).
pub const SEND_DMA_DESC_FETCHED_CNT: u64 = 0x58;
/// SEND_DMA_ENG_ERR_STATUS (read-only).
pub const SEND_DMA_ENG_ERR_STATUS: u64 = 0x60;
/// SEND_DMA_ENG_ERR_STATUS.SDmaWrongDwErr.
pub const SEND_DMA_ENG_ERR_STATUS_SDMA_WRONG_DW_ERR: Field = Field::bit(0);
/// SEND_DMA_ENG_ERR_STATUS.SDmaGenMismatchErr.
pub const SEND_DMA_ENG_ERR_STATUS_SDMA_GEN_MISMATCH_ERR: Field = Field::bit(1);
/// SEND_DMA_ENG_ERR_STATUS.SDmaTooLongErr.
pub const SEND_DMA_ENG_ERR_STATUS_SDMA_TOO_LONG_ERR: Field = Field::bit(2);
/// SEND_DMA_ENG_ERR_STATUS.SDmaTailOutOfBoundsErr.
pub const SEND_DMA_ENG_ERR_STATUS_SDMA_TAIL_OUT_OF_BOUNDS_ERR: Field = Field::bit(3);
/// SEND_DMA_ENG_ERR_STATUS.SDmaFirstDescErr.
pub const SEND_DMA_ENG_ERR_STATUS_SDMA_FIRST_DESC_ERR: Field = Field::bit(4);
/// SEND_DMA_ENG_ERR_STATUS.SDmaMemReadErr.
pub const SEND_DMA_ENG_ERR_STATUS_SDMA_MEM_READ_ERR: Field = Field::bit(5);
/// SEND_DMA_ENG_ERR_STATUS.SDmaHaltErr: the engine halted.
pub const SEND_DMA_ENG_ERR_STATUS_SDMA_HALT_ERR: Field = Field::bit(6);
/// SEND_DMA_ENG_ERR_STATUS.SDmaLengthMismatchErr.
pub const SEND_DMA_ENG_ERR_STATUS_SDMA_LENGTH_MISMATCH_ERR: Field = Field::bit(7);
/// SEND_DMA_ENG_ERR_STATUS.SDmaPacketDescOverflowErr.
pub const SEND_DMA_ENG_ERR_STATUS_SDMA_PACKET_DESC_OVERFLOW_ERR: Field = Field::bit(8);
/// SEND_DMA_ENG_ERR_STATUS.SDmaHeaderSelectErr.
pub const SEND_DMA_ENG_ERR_STATUS_SDMA_HEADER_SELECT_ERR: Field = Field::bit(10);
/// SEND_DMA_ENG_ERR_STATUS.SDmaHeaderAddressErr.
pub const SEND_DMA_ENG_ERR_STATUS_SDMA_HEADER_ADDRESS_ERR: Field = Field::bit(11);
/// SEND_DMA_ENG_ERR_STATUS.SDmaHeaderLengthErr.
pub const SEND_DMA_ENG_ERR_STATUS_SDMA_HEADER_LENGTH_ERR: Field = Field::bit(12);
/// SEND_DMA_ENG_ERR_STATUS.SDmaTimeoutErr.
pub const SEND_DMA_ENG_ERR_STATUS_SDMA_TIMEOUT_ERR: Field = Field::bit(13);
/// SEND_DMA_ENG_ERR_STATUS.SDmaDescTableUncErr.
pub const SEND_DMA_ENG_ERR_STATUS_SDMA_DESC_TABLE_UNC_ERR: Field = Field::bit(14);
/// SEND_DMA_ENG_ERR_STATUS.SDmaAssemblyUncErr.
pub const SEND_DMA_ENG_ERR_STATUS_SDMA_ASSEMBLY_UNC_ERR: Field = Field::bit(15);
/// SEND_DMA_ENG_ERR_STATUS.SDmaPacketTrackingUncErr.
pub const SEND_DMA_ENG_ERR_STATUS_SDMA_PACKET_TRACKING_UNC_ERR: Field = Field::bit(16);
/// SEND_DMA_ENG_ERR_STATUS.SDmaHeaderStorageUncErr.
pub const SEND_DMA_ENG_ERR_STATUS_SDMA_HEADER_STORAGE_UNC_ERR: Field = Field::bit(17);
/// SEND_DMA_ENG_ERR_STATUS.SDmaHeaderRequestFifoUncErr (hfi1 clears it in sdma_hw_start_up).
pub const SEND_DMA_ENG_ERR_STATUS_SDMA_HEADER_REQUEST_FIFO_UNC_ERR: Field = Field::bit(18);
/// The engine errors hfi1 treats as a halt (`sdma.c` ALL_SDMA_ENG_HALT_ERRS, lines 50-62):
/// each sends its state machine to s50_hw_halt_wait from s99_running.
pub const SDMA_ENG_HALT_ERRS: u64 = SEND_DMA_ENG_ERR_STATUS_SDMA_WRONG_DW_ERR.smask()
    | SEND_DMA_ENG_ERR_STATUS_SDMA_GEN_MISMATCH_ERR.smask()
    | SEND_DMA_ENG_ERR_STATUS_SDMA_TOO_LONG_ERR.smask()
    | SEND_DMA_ENG_ERR_STATUS_SDMA_TAIL_OUT_OF_BOUNDS_ERR.smask()
    | SEND_DMA_ENG_ERR_STATUS_SDMA_FIRST_DESC_ERR.smask()
    | SEND_DMA_ENG_ERR_STATUS_SDMA_MEM_READ_ERR.smask()
    | SEND_DMA_ENG_ERR_STATUS_SDMA_HALT_ERR.smask()
    | SEND_DMA_ENG_ERR_STATUS_SDMA_LENGTH_MISMATCH_ERR.smask()
    | SEND_DMA_ENG_ERR_STATUS_SDMA_PACKET_DESC_OVERFLOW_ERR.smask()
    | SEND_DMA_ENG_ERR_STATUS_SDMA_HEADER_SELECT_ERR.smask()
    | SEND_DMA_ENG_ERR_STATUS_SDMA_HEADER_ADDRESS_ERR.smask()
    | SEND_DMA_ENG_ERR_STATUS_SDMA_HEADER_LENGTH_ERR.smask()
    | SEND_DMA_ENG_ERR_STATUS_SDMA_TIMEOUT_ERR.smask()
    | SEND_DMA_ENG_ERR_STATUS_SDMA_DESC_TABLE_UNC_ERR.smask()
    | SEND_DMA_ENG_ERR_STATUS_SDMA_ASSEMBLY_UNC_ERR.smask()
    | SEND_DMA_ENG_ERR_STATUS_SDMA_PACKET_TRACKING_UNC_ERR.smask()
    | SEND_DMA_ENG_ERR_STATUS_SDMA_HEADER_STORAGE_UNC_ERR.smask()
    | SEND_DMA_ENG_ERR_STATUS_SDMA_HEADER_REQUEST_FIFO_UNC_ERR.smask();
/// SEND_DMA_ENG_ERR_MASK: which engine errors raise its interrupt source.
pub const SEND_DMA_ENG_ERR_MASK: u64 = 0x68;
/// SEND_DMA_ENG_ERR_CLEAR (write 1 to clear SEND_DMA_ENG_ERR_STATUS bits).
pub const SEND_DMA_ENG_ERR_CLEAR: u64 = 0x70;
/// SEND_DMA_CHECK_ENABLE (same bit layout as SEND_CTXT_CHECK_ENABLE, see [`check`]).
pub const SEND_DMA_CHECK_ENABLE: u64 = 0x80;
/// SEND_DMA_CHECK_VL.
pub const SEND_DMA_CHECK_VL: u64 = 0x88;
/// SEND_DMA_CHECK_JOB_KEY.
pub const SEND_DMA_CHECK_JOB_KEY: u64 = 0x90;
/// SEND_DMA_CHECK_PARTITION_KEY.
pub const SEND_DMA_CHECK_PARTITION_KEY: u64 = 0x98;
/// SEND_DMA_CHECK_SLID.
pub const SEND_DMA_CHECK_SLID: u64 = 0xA0;
/// SEND_DMA_CHECK_OPCODE.
pub const SEND_DMA_CHECK_OPCODE: u64 = 0xA8;
/// SEND_DMA_MEMORY: the engine's share of SDMA buffer memory (`sdma.c` 2028-2031).
pub const SEND_DMA_MEMORY: u64 = 0xB0;
/// SEND_DMA_MEMORY.SdmaMemoryIndex: first block (**choice** of width: 16 bits; only the shift
/// is in `chip_registers.h`).
pub const SEND_DMA_MEMORY_SDMA_MEMORY_INDEX: Field = Field::new(0, 16);
/// SEND_DMA_MEMORY.SdmaMemoryCnt: blocks (**choice** of width: 16 bits).
pub const SEND_DMA_MEMORY_SDMA_MEMORY_CNT: Field = Field::new(16, 16);

// ---- Global per-context egress status (read by hfi1 before a context or engine stops) --------

/// SEND_EGRESS_CTXT_STATUS\[160\]: `TXE + 0x800 + 8 * hw_context` (`pio.c` 978-979). A non-zero
/// occupancy makes hfi1 wait and eventually bounce the link, so the model keeps it 0.
pub const SEND_EGRESS_CTXT_STATUS: RegArray = RegArray::new(TXE + 0x800, 8, 160);
/// SEND_EGRESS_CTXT_STATUS.CtxtEgressPacketOccupancy.
pub const SEND_EGRESS_CTXT_STATUS_PACKET_OCCUPANCY: Field = Field::new(0, 14);
/// SEND_EGRESS_CTXT_STATUS.CtxtEgressHaltStatus.
pub const SEND_EGRESS_CTXT_STATUS_HALT_STATUS: Field = Field::bit(16);
/// SEND_EGRESS_SEND_DMA_STATUS\[16\]: `TXE + 0xE00 + 8 * engine` (`sdma.c` 266-274).
pub const SEND_EGRESS_SEND_DMA_STATUS: RegArray = RegArray::new(TXE + 0xE00, 8, 16);
/// SEND_EGRESS_SEND_DMA_STATUS.SdmaEgressPacketOccupancy.
pub const SEND_EGRESS_SEND_DMA_STATUS_PACKET_OCCUPANCY: Field = Field::new(0, 14);

// ---- Interrupt sources of the send side (`chip.h` lines 124-162) -----------------------------

/// General error source of SEND_PIO_ERR_STATUS (PIO_ERR_INT).
pub const IS_PIO_ERR_INT: u64 = 4;
/// General error source of SEND_DMA_ERR_STATUS (SDMA_ERR_INT).
pub const IS_SDMA_ERR_INT: u64 = 5;
/// First SDMA engine error interrupt source (source = 16 + engine).
pub const IS_SDMAENG_ERR_START: u64 = 16;
/// First send-context error source (source = 32 + hardware send context).
pub const IS_SENDCTXT_ERR_START: u64 = 32;
/// First SDMA interrupt source (INT_REQ descriptors; source = 192 + engine).
pub const IS_SDMA_START: u64 = 192;
/// First SDmaProgress source (source = 208 + engine).
pub const IS_SDMA_PROGRESS_START: u64 = 208;
/// First SDmaIdle source (source = 224 + engine).
pub const IS_SDMA_IDLE_START: u64 = 224;
/// First SendCredit source (source = 576 + hardware send context); defined in [`crate::cce`].
pub const IS_SENDCREDIT_START: u64 = crate::cce::IS_SENDCREDIT_START;

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

    /// Absolute offsets as `chip_registers.h` 893-1013 spells them (TXE = 0x1800000).
    #[test]
    fn absolute_offsets_match_chip_registers_h() {
        let ctxt = |off: u64| TXE_PER_CONTEXT.base + off;
        let sdma = |off: u64| TXE_PER_SDMA.base + off;
        assert_eq!(ctxt(SEND_CTXT_CREDIT_CTRL), 0x190_0010);
        assert_eq!(ctxt(SEND_CTXT_CREDIT_STATUS), 0x190_0018);
        assert_eq!(ctxt(SEND_CTXT_CREDIT_RETURN_ADDR), 0x190_0020);
        assert_eq!(ctxt(SEND_CTXT_CREDIT_FORCE), 0x190_0028);
        assert_eq!(ctxt(SEND_CTXT_CHECK_OPCODE), 0x190_00A8);
        assert_eq!(sdma(SEND_DMA_BASE_ADDR), 0x1A0_0010);
        assert_eq!(sdma(SEND_DMA_LEN_GEN), 0x1A0_0018);
        assert_eq!(sdma(SEND_DMA_TAIL), 0x1A0_0020);
        assert_eq!(sdma(SEND_DMA_HEAD), 0x1A0_0028);
        assert_eq!(sdma(SEND_DMA_HEAD_ADDR), 0x1A0_0030);
        assert_eq!(sdma(SEND_DMA_RELOAD_CNT), 0x1A0_0048);
        assert_eq!(sdma(SEND_DMA_DESC_CNT), 0x1A0_0050);
        assert_eq!(sdma(SEND_DMA_MEMORY), 0x1A0_00B0);
        assert_eq!(SEND_EGRESS_CTXT_STATUS.offset(3), Some(0x180_0818));
        assert_eq!(SEND_EGRESS_SEND_DMA_STATUS.offset(1), Some(0x180_0E08));
    }

    /// Field masks against the `_SMASK`/`_MASK << _SHIFT` values of `chip_registers.h`.
    #[test]
    fn field_masks_match_chip_registers_h() {
        assert_eq!(SEND_CTXT_CTRL_CTXT_BASE.smask(), 0x3FFF << 32);
        assert_eq!(SEND_CTXT_CTRL_CTXT_DEPTH.smask(), 0x7FF << 48);
        assert_eq!(SEND_CTXT_CREDIT_CTRL_THRESHOLD.smask(), 0x7FF);
        assert_eq!(SEND_CTXT_CREDIT_CTRL_EARLY_RETURN.smask(), 0x10000);
        assert_eq!(SEND_CTXT_CREDIT_CTRL_CREDIT_INTR.smask(), 0x20000);
        assert_eq!(SEND_CTXT_CREDIT_STATUS_CURRENT_FREE_COUNTER.smask(), 0x7FF << 32);
        assert_eq!(SEND_CTXT_CREDIT_RETURN_ADDR_ADDRESS.smask(), 0xFFFF_FFFF_FFC0);
        assert_eq!(SEND_CTXT_CHECK_JOB_KEY_MASK.smask(), 0xFFFF_0000);
        assert_eq!(SEND_CTXT_CHECK_JOB_KEY_ALLOW_PERMISSIVE.smask(), 0x1_0000_0000);
        assert_eq!(check::DISALLOW_PBC_STATIC_RATE_CONTROL.smask(), 0x10_0000);
        assert_eq!(check::DISALLOW_BYPASS_BAD_PKT_LEN.smask(), 0x20_0000);
        assert_eq!(check::DISALLOW_TOO_SMALL_IB_PACKETS.smask(), 0x4000);
        assert_eq!(SEND_DMA_STATUS_ENG_HALTED.smask(), 0x100_0000_0000_0000);
        assert_eq!(SEND_DMA_STATUS_ENG_CLEANED_UP.smask(), 0x200_0000_0000_0000);
        assert_eq!(SEND_DMA_ENG_ERR_STATUS_SDMA_HEADER_REQUEST_FIFO_UNC_ERR.smask(), 0x4_0000);
        assert_eq!(SEND_DMA_ENG_ERR_STATUS_SDMA_HEADER_STORAGE_UNC_ERR.smask(), 0x2_0000);
        assert_eq!(SEND_DMA_ENG_ERR_STATUS_SDMA_PACKET_DESC_OVERFLOW_ERR.smask(), 0x100);
        assert_eq!(SEND_EGRESS_CTXT_STATUS_PACKET_OCCUPANCY.smask(), 0x3FFF);
        assert_eq!(SEND_EGRESS_CTXT_STATUS_HALT_STATUS.smask(), 0x1_0000);
        assert_eq!(SEND_CTRL_UNSUPPORTED_VL.smask(), 0xFF << 3);
    }

    /// hfi1's LEN_GEN value for the default 2048-entry ring (`sdma.c` 1960-1964).
    #[test]
    fn len_gen_as_hfi1_writes_it() {
        let v = SEND_DMA_LEN_GEN_LENGTH.encode(2048 / SEND_DMA_LEN_GEN_UNIT)
            | SEND_DMA_LEN_GEN_GENERATION.encode(SEND_DMA_LEN_GEN_GEN_CHECK);
        assert_eq!(v, (2048 / 64) << 6 | 4 << 16);
        // The largest ring (32768) still fits the field.
        assert!(SEND_DMA_LEN_GEN_LENGTH.fits(32768 / 64));
    }

    /// `chip.h` 135-146 source numbering; `sdma.c` ALL_SDMA_ENG_HALT_ERRS has 18 bits.
    #[test]
    fn interrupt_sources_and_halt_errors() {
        assert_eq!(IS_SDMA_PROGRESS_START, IS_SDMA_START + 16);
        assert_eq!(IS_SDMA_IDLE_START, IS_SDMA_START + 32);
        assert_eq!(IS_SENDCTXT_ERR_START + 160, IS_SDMA_START);
        assert_eq!(IS_SENDCREDIT_START, 576);
        assert_eq!(SDMA_ENG_HALT_ERRS.count_ones(), 18);
        assert_eq!(SDMA_ENG_HALT_ERRS & (1 << 9), 0, "bit 9 is not defined");
    }
}
