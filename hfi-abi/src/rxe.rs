//! RXE receive CSRs: global, kernel per-context and user per-context (facts §2.3, §3).
//!
//! Per-context offsets are relative to the context's block ([`crate::bar0::RXE_PER_CONTEXT_KERNEL`]
//! or [`crate::bar0::RXE_PER_CONTEXT_USER`]).

use crate::bar0::RXE;
use crate::field::{Field, RegArray};

// ---- Global RXE CSRs -------------------------------------------------------------------------

/// RcvCtrl: global receive control.
pub const RCV_CTRL: u64 = RXE;
/// RcvCtrl.RcvPortEnable.
pub const RCV_CTRL_RCV_PORT_ENABLE: Field = Field::bit(0);
/// RcvCtrl.RcvQpMapEnable.
pub const RCV_CTRL_RCV_QP_MAP_ENABLE: Field = Field::bit(1);
/// RcvCtrl.RcvPartitionKeyEnable.
pub const RCV_CTRL_RCV_PARTITION_KEY_ENABLE: Field = Field::bit(2);
/// RcvCtrl.RcvBypassEnable.
pub const RCV_CTRL_RCV_BYPASS_ENABLE: Field = Field::bit(4);
/// RcvCtrl.RcvRsmEnable.
pub const RCV_CTRL_RCV_RSM_ENABLE: Field = Field::bit(5);
/// RcvCtrl.RcvExtendedPsnEnable.
pub const RCV_CTRL_RCV_EXTENDED_PSN_ENABLE: Field = Field::bit(6);
/// RcvCtrl.RxRbufInit: start receive-buffer init (completes at once in the model).
pub const RCV_CTRL_RX_RBUF_INIT: Field = Field::bit(9);

/// RcvStatus (read-only).
pub const RCV_STATUS: u64 = RXE + 0x8;
/// RcvStatus.RxPktInProgress.
pub const RCV_STATUS_RX_PKT_IN_PROGRESS: Field = Field::bit(0);
/// RcvStatus.RxRbufPktPending.
pub const RCV_STATUS_RX_RBUF_PKT_PENDING: Field = Field::bit(6);
/// RcvStatus.RxRbufInitDone.
pub const RCV_STATUS_RX_RBUF_INIT_DONE: Field = Field::bit(9);

/// RcvContexts: number of receive contexts (read-only).
pub const RCV_CONTEXTS: u64 = RXE + 0x10;
/// RcvArrayCnt: number of RcvArray entries (read-only).
pub const RCV_ARRAY_CNT: u64 = RXE + 0x18;
/// RcvBthQp: the KDETH QP prefix.
pub const RCV_BTH_QP: u64 = RXE + 0x28;
/// RcvBthQp.KdethQp (bits 23:16). hfi1's default is 0x80.
pub const RCV_BTH_QP_KDETH_QP: Field = Field::new(16, 8);
/// Default KDETH QP prefix (DEFAULT_KDETH_QP).
pub const DEFAULT_KDETH_QP: u64 = 0x80;
/// RcvMulticast.
pub const RCV_MULTICAST: u64 = RXE + 0x30;
/// RcvBypass.
pub const RCV_BYPASS: u64 = RXE + 0x38;
/// RcvVl15.
pub const RCV_VL15: u64 = RXE + 0x48;
/// RcvErrInfo.
pub const RCV_ERR_INFO: u64 = RXE + 0x50;
/// RcvErrStatus (read-only; bits set by the engine).
pub const RCV_ERR_STATUS: u64 = RXE + 0x60;
/// RcvErrMask.
pub const RCV_ERR_MASK: u64 = RXE + 0x68;
/// RcvErrClear (write 1 to clear RcvErrStatus bits).
pub const RCV_ERR_CLEAR: u64 = RXE + 0x70;
/// RcvQpMapTable[32].
pub const RCV_QP_MAP_TABLE: RegArray = RegArray::new(RXE + 0x100, 8, 32);
/// RcvPartitionKey[16].
pub const RCV_PARTITION_KEY: RegArray = RegArray::new(RXE + 0x200, 8, 16);
/// RcvCounterArray32 (read-only).
pub const RCV_COUNTER_ARRAY32: RegArray = RegArray::new(RXE + 0x400, 8, 32);

// ---- Kernel-only per-context CSRs (RXE + 0x100000 + ctxt * 0x100) -----------------------------

/// RcvCtxtCtrl.
pub const RCV_CTXT_CTRL: u64 = 0x00;
/// RcvCtxtCtrl.Enable.
pub const RCV_CTXT_CTRL_ENABLE: Field = Field::bit(0);
/// RcvCtxtCtrl.OnePacketPerEgrBuffer.
pub const RCV_CTXT_CTRL_ONE_PACKET_PER_EGR_BUFFER: Field = Field::bit(1);
/// RcvCtxtCtrl.DontDropEgrFull.
pub const RCV_CTXT_CTRL_DONT_DROP_EGR_FULL: Field = Field::bit(2);
/// RcvCtxtCtrl.DontDropRHQFull.
pub const RCV_CTXT_CTRL_DONT_DROP_RHQ_FULL: Field = Field::bit(3);
/// RcvCtxtCtrl.TidFlowEnable.
pub const RCV_CTXT_CTRL_TID_FLOW_ENABLE: Field = Field::bit(4);
/// RcvCtxtCtrl.IntrAvail.
pub const RCV_CTXT_CTRL_INTR_AVAIL: Field = Field::bit(5);
/// RcvCtxtCtrl.TailUpd: DMA the RHQ tail to RcvHdrTailAddr.
pub const RCV_CTXT_CTRL_TAIL_UPD: Field = Field::bit(6);
/// RcvCtxtCtrl.EgrBufSize: size code (1..7) of each eager buffer.
pub const RCV_CTXT_CTRL_EGR_BUF_SIZE: Field = Field::new(8, 3);

/// RcvCtxtStatus (read-only).
pub const RCV_CTXT_STATUS: u64 = 0x08;
/// RcvCtxtStatus.BlockedRHQFull: sticky while the RHQ is full and DontDropRHQFull is set.
pub const RCV_CTXT_STATUS_BLOCKED_RHQ_FULL: Field = Field::bit(2);

/// RcvEgrCtrl.
pub const RCV_EGR_CTRL: u64 = 0x10;
/// RcvEgrCtrl.EgrBaseIndex: first eager entry / 8.
pub const RCV_EGR_CTRL_EGR_BASE_INDEX: Field = Field::new(0, 13);
/// RcvEgrCtrl.EgrCnt: eager entries / 8.
pub const RCV_EGR_CTRL_EGR_CNT: Field = Field::new(32, 9);

/// RcvTidCtrl.
pub const RCV_TID_CTRL: u64 = 0x18;
/// RcvTidCtrl.TidBaseIndex: first expected entry / 8.
pub const RCV_TID_CTRL_TID_BASE_INDEX: Field = Field::new(0, 13);
/// RcvTidCtrl.TidPairCnt: expected entries / 8 ("pair count in groups of four").
pub const RCV_TID_CTRL_TID_PAIR_CNT: Field = Field::new(32, 9);

/// RcvKeyCtrl.
pub const RCV_KEY_CTRL: u64 = 0x20;
/// RcvKeyCtrl.JobKeyValue.
pub const RCV_KEY_CTRL_JOB_KEY_VALUE: Field = Field::new(0, 16);
/// RcvKeyCtrl.JobKeyEnable.
pub const RCV_KEY_CTRL_JOB_KEY_ENABLE: Field = Field::bit(33);

/// RcvHdrAddr: DMA address of the RHQ (64-byte aligned).
pub const RCV_HDR_ADDR: u64 = 0x28;
/// Writable bits of RcvHdrAddr (address bits 47:6).
pub const RCV_HDR_ADDR_MASK: u64 = 0xFFFF_FFFF_FFC0;
/// RcvHdrCnt: number of RHQ entries >> 5.
pub const RCV_HDR_CNT: u64 = 0x30;
/// RcvHdrCnt.Cnt.
pub const RCV_HDR_CNT_CNT: Field = Field::new(0, 9);
/// RcvHdrCnt is in units of 32 entries.
pub const HDRQ_SIZE_SHIFT: u32 = 5;
/// RcvHdrEntSize: 1 = 2 DW, 2 = 16 DW, 4 = 32 DW.
pub const RCV_HDR_ENT_SIZE: u64 = 0x38;
/// RcvHdrEntSize.EntSize.
pub const RCV_HDR_ENT_SIZE_ENT_SIZE: Field = Field::new(0, 3);
/// RcvHdrSize: DWs of packet header copied into each RHQ entry.
pub const RCV_HDR_SIZE: u64 = 0x40;
/// RcvHdrSize.HdrSize.
pub const RCV_HDR_SIZE_HDR_SIZE: Field = Field::new(0, 5);
/// RcvHdrTailAddr: DMA address for tail write-back.
pub const RCV_HDR_TAIL_ADDR: u64 = 0x48;
/// Writable bits of RcvHdrTailAddr (address bits 47:6).
pub const RCV_HDR_TAIL_ADDR_MASK: u64 = 0xFFFF_FFFF_FFC0;
/// RcvAvailTimeOut.
pub const RCV_AVAIL_TIME_OUT: u64 = 0x50;
/// RcvAvailTimeOut.TimeOutReload, in units of 64 cclocks.
pub const RCV_AVAIL_TIME_OUT_TIME_OUT_RELOAD: Field = Field::new(0, 8);
/// cclocks per RcvAvailTimeOut unit.
pub const RCV_AVAIL_TIME_OUT_UNIT_CCLOCKS: u64 = 64;
/// RcvHdrOvflCnt (read-only): RHQ-full drops.
pub const RCV_HDR_OVFL_CNT: u64 = 0x58;

/// RcvHdrEntSize code for an entry of `dws` DWs (2, 16 or 32), as hfi1 encodes it.
pub const fn hdr_ent_size_code(dws: u32) -> Option<u64> {
    match dws {
        2 => Some(1),
        16 => Some(2),
        32 => Some(4),
        _ => None,
    }
}

/// Entry size in DWs for a RcvHdrEntSize code (inverse of [`hdr_ent_size_code`]).
pub const fn hdr_ent_size_dws(code: u64) -> Option<u32> {
    match code {
        1 => Some(2),
        2 => Some(16),
        4 => Some(32),
        _ => None,
    }
}

// ---- User per-context page (RXE + 0x300000 + ctxt * 0x1000) -----------------------------------

/// RcvHdrTail (read-only): tail as a DW offset into the RHQ.
pub const RCV_HDR_TAIL: u64 = 0x000;
/// RcvHdrHead.
pub const RCV_HDR_HEAD: u64 = 0x008;
/// RcvHdrHead.Head: DW offset.
pub const RCV_HDR_HEAD_HEAD: Field = Field::new(0, 19);
/// RcvHdrHead.Counter: interrupt coalescing count.
pub const RCV_HDR_HEAD_COUNTER: Field = Field::new(32, 8);
/// RcvEgrIndexTail (read-only).
pub const RCV_EGR_INDEX_TAIL: u64 = 0x010;
/// RcvEgrIndexHead.
pub const RCV_EGR_INDEX_HEAD: u64 = 0x018;
/// RcvEgrIndexHead.Head.
pub const RCV_EGR_INDEX_HEAD_HEAD: Field = Field::new(0, 11);
/// RcvEgrOffsetTail (read-only).
pub const RCV_EGR_OFFSET_TAIL: u64 = 0x020;
/// RcvTidFlowTable[32], relative to the user page.
pub const RCV_TID_FLOW_TABLE: RegArray = RegArray::new(0x800, 8, 32);
/// TID flows per context.
pub const RXE_NUM_TID_FLOWS: u64 = 32;

/// RcvTidFlowTable.Seq (11 bits).
pub const TID_FLOW_SEQ: Field = Field::new(0, 11);
/// RcvTidFlowTable.Gen (20 bits above the sequence).
pub const TID_FLOW_GEN: Field = Field::new(11, 20);
/// RcvTidFlowTable.FlowValid.
pub const TID_FLOW_VALID: Field = Field::bit(32);
/// RcvTidFlowTable.HdrSuppEnable.
pub const TID_FLOW_HDR_SUPP_ENABLE: Field = Field::bit(33);
/// RcvTidFlowTable.KeepAfterSeqErr.
pub const TID_FLOW_KEEP_AFTER_SEQ_ERR: Field = Field::bit(34);
/// RcvTidFlowTable.KeepOnGenErr.
pub const TID_FLOW_KEEP_ON_GEN_ERR: Field = Field::bit(35);
/// RcvTidFlowTable.SeqMismatch status (sticky).
pub const TID_FLOW_SEQ_MISMATCH: Field = Field::bit(37);
/// RcvTidFlowTable.GenMismatch status (sticky).
pub const TID_FLOW_GEN_MISMATCH: Field = Field::bit(38);

// ---- Chip limits -------------------------------------------------------------------------------

/// Receive contexts on a real chip.
pub const RXE_NUM_CONTEXTS: u64 = 160;
/// RcvArray entries on a real chip.
pub const CHIP_RCV_ARRAY_CNT: u64 = 65536;
/// RcvArray group size (RCV_INCREMENT = 1 << RCV_SHIFT).
pub const RCV_INCREMENT: u64 = 8;
/// log2 of [`RCV_INCREMENT`].
pub const RCV_SHIFT: u32 = 3;
/// Maximum eager entries per context.
pub const MAX_EAGER_ENTRIES: u64 = 2048;
/// Maximum expected TID pairs per context (so 2048 expected entries).
pub const MAX_TID_PAIR_ENTRIES: u64 = 1024;
/// Largest RHQ entry count.
pub const RHQ_MAX_ENTRIES: u64 = 16352;
/// RHF sequence numbers run 1..=13.
pub const RHF_MAX_SEQ: u64 = 13;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bar0::{RXE_PER_CONTEXT_KERNEL, RXE_PER_CONTEXT_USER};

    #[test]
    fn worked_tid_ctrl() {
        // Expected base 1024, 2048 expected entries: TidBaseIndex = 128, TidPairCnt = 256.
        let v = RCV_TID_CTRL_TID_BASE_INDEX.encode(1024 >> 3)
            | RCV_TID_CTRL_TID_PAIR_CNT.encode(2048 >> 3);
        assert_eq!(v, 0x0000_0100_0000_0080);
        assert_eq!(RCV_TID_CTRL_TID_PAIR_CNT.get(v) << 3, 2048);
    }

    #[test]
    fn worked_absolute_offsets() {
        assert_eq!(
            RXE_PER_CONTEXT_KERNEL.offset(1).map(|b| b + RCV_AVAIL_TIME_OUT),
            Some(0x110_0150)
        );
        assert_eq!(RXE_PER_CONTEXT_USER.offset(1).map(|b| b + RCV_HDR_HEAD), Some(0x130_1008));
        assert_eq!(RCV_TID_FLOW_TABLE.offset(31), Some(0x8F8));
    }

    #[test]
    fn hdr_ent_size_roundtrip() {
        for dws in [2, 16, 32] {
            let code = hdr_ent_size_code(dws).unwrap();
            assert_eq!(hdr_ent_size_dws(code), Some(dws));
        }
        assert_eq!(hdr_ent_size_code(8), None);
        assert_eq!(hdr_ent_size_dws(3), None);
    }

    #[test]
    fn rcv_hdr_head_counter() {
        let v = RCV_HDR_HEAD_COUNTER.encode(16) | RCV_HDR_HEAD_HEAD.encode(0x40);
        assert_eq!(v, 0x10_0000_0040);
    }
}
