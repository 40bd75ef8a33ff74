//! A receive context: allocation of the RHQ, tail page and eager buffers in DMA memory, the
//! hfi1 enable sequence (facts §3.2), and the receive loop that consumes RHQ entries by RHF
//! sequence number or by the DMA'd tail (DMA_RTAIL), reading eager payloads and freeing RHQ
//! entries and eager buffers by writing the head registers.

use hfi_abi::rcv_array::PtType;
use hfi_abi::{bar0, cce, rhf, rxe, wire, BufSize, RcvType, Rhf};
use rcvarray::{ContextLayout, TidGroupAllocator};
use serde::{Deserialize, Serialize};

use super::rcvarray_mmio::{MmioRcvArray, WcStats};
use super::{Hfi, HwError};
use crate::put_tid::put_tid;
use crate::transport::Transport;

/// Receive-context parameters (module parameters of hfi1 and PSM's choices).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CtxtConfig {
    /// RHQ entries (multiple of 32, 64..=16352; hfi1 default 2048).
    pub rhq_entries: u32,
    /// RHQ entry size in DWs (2, 16 or 32; default 32).
    pub ent_dws: u32,
    /// RcvHdrSize in DWs: header copied per entry (14 = the 56-byte PSM header).
    pub hdr_dws: u32,
    /// Eager buffer size in bytes (power of two, 4 KiB..256 KiB).
    pub egr_buf_size: u32,
    /// Eager buffers (rounded down to 8; `None` = the rcvarr_split target).
    pub egr_count: Option<u32>,
    /// Percentage of the context's RcvArray entries for eager buffers (rcvarr_split).
    pub rcvarr_split: u32,
    /// DMA the RHQ tail (HFI1_CAP_DMA_RTAIL) instead of polling RHF sequence numbers.
    pub dma_rtail: bool,
    /// One packet per eager buffer.
    pub one_packet_per_egr: bool,
    /// TID flows (header suppression).
    pub tid_flows: bool,
    /// RcvAvail interrupts.
    pub intr: bool,
    /// RcvHdrHead.Counter (interrupt coalescing count).
    pub intr_count: u32,
    /// RcvAvailTimeOut reload (64-cclock units).
    pub intr_timeout: u32,
}

impl Default for CtxtConfig {
    fn default() -> Self {
        Self {
            rhq_entries: 2048,
            ent_dws: 32,
            hdr_dws: 14,
            egr_buf_size: 64 * 1024,
            egr_count: Some(64),
            rcvarr_split: 25,
            dma_rtail: false,
            one_packet_per_egr: false,
            tid_flows: true,
            intr: false,
            intr_count: 16,
            intr_timeout: 0,
        }
    }
}

/// One received RHQ entry, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RxEntry {
    /// The RHF.
    pub rhf: Rhf,
    /// Header bytes (RcvHdrSize DWs).
    pub hdr: Vec<u8>,
    /// Eager payload, when the packet used an eager buffer.
    pub payload: Option<Vec<u8>>,
}

impl RxEntry {
    /// A little-endian u32 of the header, `None` past its end.
    pub fn hdr_u32(&self, at: usize) -> Option<u32> {
        Some(u32::from_le_bytes(self.hdr.get(at..at + 4)?.try_into().ok()?))
    }
    /// BTH opcode.
    pub fn opcode(&self) -> Option<u8> {
        self.hdr.get(8).copied()
    }
    /// KDETH word 0.
    pub fn kdeth0(&self) -> Option<hfi_abi::Kdeth0> {
        self.hdr_u32(wire::KDETH_OFFSET).map(hfi_abi::Kdeth0)
    }
    /// Payload length from RHF.PktLen, the RcvHdrSize split and BTH.PadCnt.
    pub fn payload_len(&self, hdr_dws: u32) -> usize {
        let pad = self.hdr.get(9).map_or(0, |b| usize::from((b >> 4) & 3));
        (self.rhf.pkt_len_bytes() as usize)
            .saturating_sub(hdr_dws as usize * 4 + wire::ICRC_BYTES + pad)
    }
}

/// An enabled receive context.
#[derive(Debug)]
pub struct RcvCtxt {
    /// Context number.
    pub ctxt: u32,
    /// RcvArray layout.
    pub layout: ContextLayout,
    /// Configuration.
    pub cfg: CtxtConfig,
    /// RHQ IOVA.
    pub rhq: u64,
    /// Tail page IOVA.
    pub tail: u64,
    /// IOVA of eager buffer 0 (buffers are contiguous).
    pub egr: u64,
    /// Eager buffers.
    pub egr_count: u32,
    head: u32,
    seq: u64,
    egr_head: u32,
    /// RcvArray stores and flushes issued for this context.
    pub wc: WcStats,
    /// Entries received.
    pub rx_entries: u64,
    /// Entries with an RHF error bit.
    pub rx_errors: u64,
}

fn kreg(ctxt: u32, off: u64) -> u64 {
    bar0::RXE_PER_CONTEXT_KERNEL.base + u64::from(ctxt) * bar0::RXE_PER_CONTEXT_KERNEL.stride + off
}

fn ureg(ctxt: u32, off: u64) -> u64 {
    bar0::RXE_PER_CONTEXT_USER.base + u64::from(ctxt) * bar0::RXE_PER_CONTEXT_USER.stride + off
}

impl<T: Transport> Hfi<T> {
    /// Allocates and enables receive context `ctxt` (the hfi1 enable sequence), programming its
    /// eager entries and invalidating its expected entries.
    pub fn open_context(&mut self, ctxt: u32, cfg: CtxtConfig) -> Result<RcvCtxt, HwError> {
        let range = self.partition.context(ctxt).ok_or(HwError::BadContext(ctxt))?;
        let egr_size =
            BufSize::from_bytes(u64::from(cfg.egr_buf_size)).filter(|s| s.is_eager_size()).ok_or(
                HwError::BadConfig("eager buffer size must be a power of two, 4 KiB..256 KiB"),
            )?;
        if cfg.rhq_entries < 64 || cfg.rhq_entries % 32 != 0 || cfg.rhq_entries > 16352 {
            return Err(HwError::BadConfig("RHQ entries must be a multiple of 32 in 64..=16352"));
        }
        let ent_code = rxe::hdr_ent_size_code(cfg.ent_dws)
            .ok_or(HwError::BadConfig("entry size 2, 16 or 32 DW"))?;
        if cfg.hdr_dws < 7 || cfg.hdr_dws + 2 > cfg.ent_dws {
            return Err(HwError::BadConfig("RcvHdrSize must hold LRH+BTH+KDETH and fit the entry"));
        }
        let target = ContextLayout::new(range, cfg.rcvarr_split, None)?.eager_count;
        let want = cfg.egr_count.map_or(target, |n| (n / 8 * 8).min(target));
        let layout = ContextLayout::new(range, cfg.rcvarr_split, Some(want))?;
        let egr_count = layout.eager_count;
        if egr_count < 8 {
            return Err(HwError::BadConfig("fewer than 8 eager buffers"));
        }
        let rhq_bytes = u64::from(cfg.rhq_entries) * u64::from(cfg.ent_dws) * 4;
        let rhq = self.t.dma_alloc(rhq_bytes, 4096)?;
        let tail = self.t.dma_alloc(4096, 4096)?;
        let egr_bytes = u64::from(cfg.egr_buf_size);
        let egr = self.t.dma_alloc(u64::from(egr_count) * egr_bytes, egr_bytes)?;
        let mut wc = WcStats::default();
        {
            let mut w = MmioRcvArray::new(&mut self.t, &mut wc);
            for i in 0..egr_count {
                let dma = egr + u64::from(i) * egr_bytes;
                put_tid(&mut w, layout.eager_base + i, PtType::Eager, dma, egr_size);
            }
            for i in 0..layout.expected_count {
                put_tid(&mut w, layout.expected_base + i, PtType::Invalid, 0, BufSize::INVALID);
            }
            if let Some(e) = w.error.take() {
                return Err(e.into());
            }
        }
        // facts §3.2: addresses, zeroed RHQ, sizes, heads, eager/TID ranges, then RcvCtxtCtrl,
        // then the timeout and RcvHdrHead with the interrupt count.
        let t = &mut self.t;
        t.write64(kreg(ctxt, rxe::RCV_HDR_ADDR), rhq)?;
        t.write64(kreg(ctxt, rxe::RCV_HDR_TAIL_ADDR), tail)?;
        t.dma_write(rhq, &vec![0u8; rhq_bytes as usize])?;
        t.write64(
            kreg(ctxt, rxe::RCV_HDR_CNT),
            u64::from(cfg.rhq_entries >> rxe::HDRQ_SIZE_SHIFT),
        )?;
        t.write64(kreg(ctxt, rxe::RCV_HDR_ENT_SIZE), ent_code)?;
        t.write64(kreg(ctxt, rxe::RCV_HDR_SIZE), u64::from(cfg.hdr_dws))?;
        t.write64(ureg(ctxt, rxe::RCV_HDR_HEAD), 0)?;
        t.write64(ureg(ctxt, rxe::RCV_EGR_INDEX_HEAD), 0)?;
        t.write64(kreg(ctxt, rxe::RCV_EGR_CTRL), layout.rcv_egr_ctrl())?;
        t.write64(kreg(ctxt, rxe::RCV_TID_CTRL), layout.rcv_tid_ctrl())?;
        let mut ctrl = rxe::RCV_CTXT_CTRL_ENABLE.encode(1);
        ctrl = if cfg.one_packet_per_egr {
            rxe::RCV_CTXT_CTRL_ONE_PACKET_PER_EGR_BUFFER.set(ctrl, 1)
        } else {
            rxe::RCV_CTXT_CTRL_EGR_BUF_SIZE.set(ctrl, u64::from(egr_size.code()))
        };
        ctrl = rxe::RCV_CTXT_CTRL_TAIL_UPD.set(ctrl, u64::from(cfg.dma_rtail));
        ctrl = rxe::RCV_CTXT_CTRL_TID_FLOW_ENABLE.set(ctrl, u64::from(cfg.tid_flows));
        ctrl = rxe::RCV_CTXT_CTRL_INTR_AVAIL.set(ctrl, u64::from(cfg.intr));
        t.write64(kreg(ctxt, rxe::RCV_CTXT_CTRL), ctrl)?;
        if rxe::RCV_CTXT_CTRL_ENABLE.get(t.read64(kreg(ctxt, rxe::RCV_CTXT_CTRL))?) == 0 {
            return Err(HwError::BadConfig("the device refused to enable the context"));
        }
        t.write64(kreg(ctxt, rxe::RCV_AVAIL_TIME_OUT), u64::from(cfg.intr_timeout))?;
        t.write64(
            ureg(ctxt, rxe::RCV_HDR_HEAD),
            rxe::RCV_HDR_HEAD_COUNTER.encode(u64::from(cfg.intr_count)),
        )?;
        if cfg.intr {
            let (reg, bit) = cce::int_source_bit(cce::IS_RCVAVAIL_START + u64::from(ctxt));
            if let Some(off) = cce::CCE_INT_MASK.offset(reg) {
                let m = t.read64(off)?;
                t.write64(off, m | bit)?;
            }
        }
        Ok(RcvCtxt {
            ctxt,
            layout,
            cfg,
            rhq,
            tail,
            egr,
            egr_count,
            head: 0,
            seq: 1,
            egr_head: 0,
            wc,
            rx_entries: 0,
            rx_errors: 0,
        })
    }

    /// Programs TID flow `flow` of a context (generation, first sequence, header suppression).
    pub fn set_tid_flow(
        &mut self,
        c: &RcvCtxt,
        flow: u32,
        gen: u32,
        seq: u32,
    ) -> Result<(), HwError> {
        let off =
            rxe::RCV_TID_FLOW_TABLE.offset(u64::from(flow)).ok_or(HwError::BadConfig("flow"))?;
        let v = rxe::TID_FLOW_VALID.encode(1)
            | rxe::TID_FLOW_HDR_SUPP_ENABLE.encode(1)
            | rxe::TID_FLOW_KEEP_AFTER_SEQ_ERR.encode(1)
            | rxe::TID_FLOW_KEEP_ON_GEN_ERR.encode(1)
            | rxe::TID_FLOW_GEN.encode(u64::from(gen))
            | rxe::TID_FLOW_SEQ.encode(u64::from(seq));
        self.t.write64(ureg(c.ctxt, off), v)?;
        Ok(())
    }

    /// Consumes every new RHQ entry of the context (up to `max`), reading eager payloads, then
    /// frees them (RcvHdrHead, RcvEgrIndexHead).
    pub fn poll(&mut self, c: &mut RcvCtxt, max: usize) -> Result<Vec<RxEntry>, HwError> {
        if c.cfg.intr {
            // Acknowledge RcvAvail first (hfi1's receive interrupt handler: clear the source,
            // then look at the RHQ, so an entry landing meanwhile raises it again).
            let (reg, bit) = cce::int_source_bit(cce::IS_RCVAVAIL_START + u64::from(c.ctxt));
            if let Some(off) = cce::CCE_INT_CLEAR.offset(reg) {
                self.t.write64(off, bit)?;
            }
        }
        let ent = u64::from(c.cfg.ent_dws) * 4;
        let size_dws = c.cfg.rhq_entries * c.cfg.ent_dws;
        let hw_tail = if c.cfg.dma_rtail {
            let mut b = [0u8; 8];
            self.t.dma_read(c.tail, &mut b)?;
            Some(u64::from_le_bytes(b) as u32)
        } else {
            None
        };
        let mut out = Vec::new();
        let mut last_egr = None;
        while out.len() < max {
            if hw_tail.is_some_and(|t| t == c.head) {
                break;
            }
            let at = c.rhq + u64::from(c.head) * 4;
            let mut rb = [0u8; 8];
            self.t.dma_read(at + ent - 8, &mut rb)?;
            let r = Rhf::from_le_bytes(rb);
            if hw_tail.is_none() && r.seq() != c.seq {
                break;
            }
            let mut hdr = vec![0u8; c.cfg.hdr_dws as usize * 4];
            self.t.dma_read(at, &mut hdr)?;
            let mut e = RxEntry { rhf: r, hdr, payload: None };
            if r.use_egr_bfr() && r.rcv_type() == Some(RcvType::Eager) {
                let idx = r.egr_index() as u32;
                let len = e.payload_len(c.cfg.hdr_dws);
                let addr =
                    c.egr + u64::from(idx) * u64::from(c.cfg.egr_buf_size) + r.egr_offset_bytes();
                let mut p = vec![0u8; len.min(c.cfg.egr_buf_size as usize)];
                self.t.dma_read(addr, &mut p)?;
                e.payload = Some(p);
                last_egr = Some(idx);
            }
            if r.has_error() {
                c.rx_errors += 1;
            }
            c.rx_entries += 1;
            c.head = (c.head + c.cfg.ent_dws) % size_dws;
            c.seq = rhf::next_seq(c.seq);
            out.push(e);
        }
        if !out.is_empty() {
            let head = rxe::RCV_HDR_HEAD_HEAD.encode(u64::from(c.head))
                | rxe::RCV_HDR_HEAD_COUNTER.encode(u64::from(c.cfg.intr_count));
            self.t.write64(ureg(c.ctxt, rxe::RCV_HDR_HEAD), head)?;
        }
        if let Some(idx) = last_egr {
            // Buffers before the one just read are consumed; the device keeps one free.
            let h = (idx + 1) % c.egr_count;
            if h != c.egr_head {
                c.egr_head = h;
                self.t.write64(ureg(c.ctxt, rxe::RCV_EGR_INDEX_HEAD), u64::from(h))?;
            }
        }
        Ok(out)
    }

    /// Disables a context and invalidates all its RcvArray entries (hfi1_clear_tids).
    pub fn close_context(&mut self, c: &mut RcvCtxt) -> Result<(), HwError> {
        self.t.write64(kreg(c.ctxt, rxe::RCV_CTXT_CTRL), 0)?;
        let mut w = MmioRcvArray::new(&mut self.t, &mut c.wc);
        for i in 0..c.egr_count {
            put_tid(&mut w, c.layout.eager_base + i, PtType::Invalid, 0, BufSize::INVALID);
        }
        for i in 0..c.layout.expected_count {
            put_tid(&mut w, c.layout.expected_base + i, PtType::Invalid, 0, BufSize::INVALID);
        }
        match w.error.take() {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    /// Valid RcvArray entries of a context (eager and expected), read back through the
    /// transport; an entry that cannot be read counts as valid (teardown checks must not pass
    /// by accident).
    pub fn valid_entries(&mut self, c: &RcvCtxt) -> u64 {
        let l = c.layout;
        let mut n = 0;
        for i in l.eager_base..l.expected_base + l.expected_count {
            let off = hfi_abi::bar0::RCV_ARRAY.base + u64::from(i) * 8;
            match self.t.read64(off) {
                Ok(e) if !hfi_abi::RcvArrayEntry(e).is_valid() => {}
                _ => n += 1,
            }
        }
        n
    }

    /// A fresh TID group allocator for a context's expected range.
    pub fn tid_groups(c: &RcvCtxt) -> TidGroupAllocator {
        TidGroupAllocator::new(c.layout.expected_base, c.layout.expected_count)
    }
}
