//! Receive-context state: the context's CSRs plus the hardware state behind them (RHQ tail and
//! sequence number, eager ring position, backlog, interrupt moderation).

use std::collections::VecDeque;

use hfi_abi::rxe;

use crate::regs::{kreg, ureg};

/// RHQ geometry decoded from a context's CSRs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RhqGeometry {
    /// DMA address of the RHQ.
    pub addr: u64,
    /// Number of entries.
    pub entries: u32,
    /// Entry size in DWs.
    pub ent_dws: u32,
    /// DWs of header copied into each entry (RcvHdrSize), also the header/payload split.
    pub hdr_dws: u32,
}

impl RhqGeometry {
    /// Queue size in DWs.
    pub fn size_dws(&self) -> u32 {
        self.entries * self.ent_dws
    }
}

/// Eager configuration decoded from a context's CSRs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EgrConfig {
    /// First eager RcvArray index.
    pub base: u32,
    /// Number of eager buffers.
    pub count: u32,
    /// OnePacketPerEgrBuffer.
    pub one_packet: bool,
    /// Buffer size from RcvCtxtCtrl.EgrBufSize (packing mode); `None` if the code is invalid.
    pub buf_size: Option<u64>,
}

/// Expected (TID) range decoded from RcvTidCtrl.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TidRange {
    /// First expected RcvArray index.
    pub base: u32,
    /// Number of expected entries.
    pub count: u32,
}

/// One receive context.
#[derive(Clone, Debug)]
pub struct RcvContext {
    /// Kernel per-context CSR values (slots per [`kreg`]).
    pub kregs: [u64; kreg::COUNT],
    /// User per-context CSR values (slots per [`ureg`]).
    pub uregs: [u64; ureg::COUNT],
    /// RcvCtxtCtrl.Enable as accepted by the hardware.
    pub enabled: bool,
    /// RHQ tail (DW offset) reserved by packets already decided.
    pub rhq_tail: u32,
    /// RHQ tail visible to software (advanced when the entry's DMA lands).
    pub rhq_tail_visible: u32,
    /// Next RHF sequence number (1..=13).
    pub seq: u8,
    /// Eager buffer being filled (or next to use).
    pub egr_cur: u32,
    /// Bytes used in `egr_cur` (0 = not started).
    pub egr_used: u64,
    /// RHQ-full drops (RcvHdrOvflCnt).
    pub hdr_ovfl: u64,
    /// Sticky BlockedRHQFull status.
    pub blocked_rhq_full: bool,
    /// Handles of packets held while the RHQ or eager ring is full and DontDrop is set.
    pub backlog: VecDeque<u32>,
    /// RHQ entries written since the last RcvHdrHead write (interrupt moderation).
    pub intr_pending: u32,
    /// Generation of the armed moderation timer (stale timer events are ignored).
    pub timer_gen: u64,
    /// True while a moderation timer is armed.
    pub timer_armed: bool,
}

impl Default for RcvContext {
    fn default() -> Self {
        Self {
            kregs: [0; kreg::COUNT],
            uregs: [0; ureg::COUNT],
            enabled: false,
            rhq_tail: 0,
            rhq_tail_visible: 0,
            seq: 1,
            egr_cur: 0,
            egr_used: 0,
            hdr_ovfl: 0,
            blocked_rhq_full: false,
            backlog: VecDeque::new(),
            intr_pending: 0,
            timer_gen: 0,
            timer_armed: false,
        }
    }
}

impl RcvContext {
    /// RcvCtxtCtrl.
    pub fn ctrl(&self) -> u64 {
        self.kregs[kreg::CTRL]
    }

    /// A bit of RcvCtxtCtrl.
    pub fn ctrl_bit(&self, f: hfi_abi::Field) -> bool {
        f.get(self.ctrl()) == 1
    }

    /// The RHQ geometry, `None` when the CSRs do not describe a usable queue.
    pub fn rhq(&self) -> Option<RhqGeometry> {
        let entries =
            (rxe::RCV_HDR_CNT_CNT.get(self.kregs[kreg::HDR_CNT]) << rxe::HDRQ_SIZE_SHIFT) as u32;
        let ent_dws = rxe::hdr_ent_size_dws(
            rxe::RCV_HDR_ENT_SIZE_ENT_SIZE.get(self.kregs[kreg::HDR_ENT_SIZE]),
        )?;
        let hdr_dws = rxe::RCV_HDR_SIZE_HDR_SIZE.get(self.kregs[kreg::HDR_SIZE]) as u32;
        let addr = self.kregs[kreg::HDR_ADDR];
        if entries < 2 || addr == 0 {
            return None;
        }
        Some(RhqGeometry { addr, entries, ent_dws, hdr_dws })
    }

    /// The eager configuration.
    pub fn egr(&self) -> EgrConfig {
        let v = self.kregs[kreg::EGR_CTRL];
        let code = rxe::RCV_CTXT_CTRL_EGR_BUF_SIZE.get(self.ctrl()) as u8;
        let size = hfi_abi::BufSize::from_code(code);
        EgrConfig {
            base: (rxe::RCV_EGR_CTRL_EGR_BASE_INDEX.get(v) << 3) as u32,
            count: (rxe::RCV_EGR_CTRL_EGR_CNT.get(v) << 3) as u32,
            one_packet: self.ctrl_bit(rxe::RCV_CTXT_CTRL_ONE_PACKET_PER_EGR_BUFFER),
            buf_size: if size.is_eager_size() { size.bytes() } else { None },
        }
    }

    /// The expected (TID) range.
    pub fn tid(&self) -> TidRange {
        let v = self.kregs[kreg::TID_CTRL];
        TidRange {
            base: (rxe::RCV_TID_CTRL_TID_BASE_INDEX.get(v) << 3) as u32,
            count: (rxe::RCV_TID_CTRL_TID_PAIR_CNT.get(v) << 3) as u32,
        }
    }

    /// RcvHdrHead.Head (DW offset).
    pub fn hdr_head(&self) -> u32 {
        rxe::RCV_HDR_HEAD_HEAD.get(self.uregs[ureg::HDR_HEAD]) as u32
    }

    /// RcvHdrHead.Counter.
    pub fn intr_counter(&self) -> u32 {
        rxe::RCV_HDR_HEAD_COUNTER.get(self.uregs[ureg::HDR_HEAD]) as u32
    }

    /// RcvEgrIndexHead.
    pub fn egr_head(&self) -> u32 {
        rxe::RCV_EGR_INDEX_HEAD_HEAD.get(self.uregs[ureg::EGR_INDEX_HEAD]) as u32
    }

    /// RcvAvailTimeOut reload value (64-cclock units).
    pub fn timeout_reload(&self) -> u64 {
        rxe::RCV_AVAIL_TIME_OUT_TIME_OUT_RELOAD.get(self.kregs[kreg::AVAIL_TIME_OUT])
    }

    /// Resets the hardware state latched at enable (0 → 1): tail 0, sequence 1, eager ring 0.
    pub fn latch_enable(&mut self) {
        self.enabled = true;
        self.rhq_tail = 0;
        self.rhq_tail_visible = 0;
        self.seq = 1;
        self.egr_cur = 0;
        self.egr_used = 0;
        self.blocked_rhq_full = false;
        self.intr_pending = 0;
        self.timer_armed = false;
        self.timer_gen += 1;
    }

    /// Disables the context; returns the handles of held packets (now dropped).
    pub fn disable(&mut self) -> Vec<u32> {
        self.enabled = false;
        self.timer_armed = false;
        self.timer_gen += 1;
        self.backlog.drain(..).collect()
    }
}
