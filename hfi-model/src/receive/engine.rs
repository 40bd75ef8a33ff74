//! The functional receive engine: *what* happens to a packet (which context, which buffer,
//! which RHQ entry, which RHF), as a function of device state and the packet. *When* it happens
//! is the timing model's job; the DMA writes decided here land later, at the writeback event.
//!
//! Rules (facts §3–4; the inferred ones are listed in `docs/receive.md`):
//! - A packet is split at `RcvHdrSize` DWs: the first part is the header copied into the RHQ
//!   entry, the rest is the payload.
//! - KDETH packets (BTH QP prefix = RcvBthQp.KdethQp) go to context `bth[1] & 0xff`.
//! - Expected path when KDETH.TIDCtrl ≠ 0 or the opcode is EXPTID; eager path otherwise.
//! - Expected: entry = TidBase + 2·TID + TIDCtrl − 1; TIDCtrl 0/3, an index outside the
//!   context's range, an invalid entry or offset+len past the buffer is a TID error: the header
//!   goes to the RHQ with RHF.TidErr, the payload is dropped.
//! - TID flows: with TidFlowEnable and a valid flow, generation/sequence are checked; a match
//!   with KDETH.SH and HdrSuppEnable places the payload without an RHQ entry.
//! - Eager: the payload goes to the eager ring; a full ring drops the payload (header kept with
//!   RHF.TidErr) unless DontDropEgrFull holds the packet back.
//! - A full RHQ drops the whole packet (RcvHdrOvflCnt) unless DontDropRHQFull holds it back.

use hfi_abi::rhf::{self, RcvType};
use hfi_abi::{rxe, wire, Rhf};
use rcvarray::RcvArrayStore;

use crate::counters::Counters;
use crate::dma::DmaKind;
use crate::packet::{Packet, ParsedHeader};
use crate::receive::context::{RcvContext, RhqGeometry};
use crate::regs::ureg;

/// Payload placement decided for a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PayloadWrite {
    /// Host DMA address.
    pub addr: u64,
    /// Start of the payload in the packet (bytes, = RcvHdrSize·4).
    pub start: u32,
    /// Length in bytes.
    pub len: u32,
    /// Purpose (for the observer).
    pub kind: DmaKind,
}

/// RHQ entry decided for a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RhqWrite {
    /// Address of the entry.
    pub entry_addr: u64,
    /// Entry size in bytes.
    pub entry_bytes: u32,
    /// Header bytes copied (from the start of the packet).
    pub hdr_len: u32,
    /// The RHF written in the entry's last 8 bytes.
    pub rhf: Rhf,
    /// Tail (DW offset) after this entry.
    pub new_tail: u32,
    /// Where to DMA the tail, when TailUpd is set.
    pub tail_addr: Option<u64>,
}

/// Everything the writeback event does for one packet.
#[derive(Clone, Copy, Debug)]
pub struct Delivery {
    /// Receive context.
    pub ctxt: u32,
    /// The packet's sender-chosen id (for DMA tags).
    pub packet_id: u64,
    /// Payload write, if the payload is placed.
    pub payload: Option<PayloadWrite>,
    /// RHQ entry, unless the header was suppressed.
    pub rhq: Option<RhqWrite>,
    /// KDETH.Intr was set: signal RcvAvail without moderation.
    pub urgent: bool,
    /// Expected packet (for the pipeline's RcvArray lookup cost).
    pub expected: bool,
}

/// The engine's verdict on a packet.
#[derive(Debug)]
pub enum Decision {
    /// Deliver (DMA at writeback).
    Deliver(Delivery),
    /// Hold back: the context's RHQ or eager ring is full and DontDrop is set.
    Hold,
    /// Dropped (counted).
    Drop,
}

/// Static inputs of a decision.
#[derive(Clone, Copy, Debug)]
pub struct Inputs<'a> {
    /// RcvBthQp.KdethQp.
    pub kdeth_qp: u32,
    /// The RcvArray.
    pub rcv_array: &'a RcvArrayStore,
}

/// Parses a packet far enough to find its context; `None` when it is dropped (counted).
pub fn route(pkt: &Packet, kdeth_qp: u32, counters: &mut Counters) -> Option<(u32, ParsedHeader)> {
    let Some(h) = pkt.parse() else {
        counters.rx_short_packet_drops += 1;
        return None;
    };
    if h.qp_prefix() != kdeth_qp {
        counters.rx_non_kdeth_drops += 1;
        return None;
    }
    Some((h.ctxt(), h))
}

enum Tid {
    Ok { addr: u64, entry: u32 },
    Err,
}

fn tid_lookup(
    ctx: &RcvContext,
    inp: &Inputs<'_>,
    h: &ParsedHeader,
    len: usize,
    c: &mut Counters,
) -> Tid {
    let k = h.kdeth0;
    let ctrl = k.tidctrl();
    if ctrl != 1 && ctrl != 2 {
        c.rx_tid_bad_ctrl_count += 1;
        return Tid::Err;
    }
    let range = ctx.tid();
    let rel = 2 * k.tid() + ctrl - 1;
    if rel >= range.count {
        c.rx_tid_out_of_range_count += 1;
        return Tid::Err;
    }
    let entry = range.base + rel;
    let Some(e) = inp.rcv_array.read(entry) else {
        c.rx_tid_out_of_range_count += 1;
        return Tid::Err;
    };
    let Some(size) = e.buf_size().bytes() else {
        c.rx_tid_invalid_entry_count += 1;
        return Tid::Err;
    };
    let off = k.byte_offset();
    if off.saturating_add(len as u64) > size {
        c.rx_tid_overflow_count += 1;
        return Tid::Err;
    }
    Tid::Ok { addr: e.dma_addr() + off, entry }
}

enum Flow {
    /// No flow checking for this packet.
    Unchecked,
    /// Generation and sequence matched; header may be suppressed.
    Match { suppress_ok: bool },
    /// Mismatch: RcvTypeErr code.
    Error(u64),
}

fn check_flow(ctx: &mut RcvContext, h: &ParsedHeader, c: &mut Counters) -> Flow {
    if !ctx.ctrl_bit(rxe::RCV_CTXT_CTRL_TID_FLOW_ENABLE) {
        return Flow::Unchecked;
    }
    let Some(slot) = ctx.uregs.get_mut(ureg::FLOW + h.flow() as usize) else {
        return Flow::Unchecked;
    };
    let f = *slot;
    if rxe::TID_FLOW_VALID.get(f) == 0 {
        return Flow::Unchecked;
    }
    if rxe::TID_FLOW_GEN.get(f) != u64::from(h.flow_gen()) {
        c.rx_flow_gen_err_count += 1;
        let mut v = rxe::TID_FLOW_GEN_MISMATCH.set(f, 1);
        if rxe::TID_FLOW_KEEP_ON_GEN_ERR.get(f) == 0 {
            v = rxe::TID_FLOW_VALID.set(v, 0);
        }
        *slot = v;
        return Flow::Error(rhf::rte::EXPECTED_FLOW_GEN_ERR);
    }
    if rxe::TID_FLOW_SEQ.get(f) != u64::from(h.flow_seq()) {
        c.rx_flow_seq_err_count += 1;
        let mut v = rxe::TID_FLOW_SEQ_MISMATCH.set(f, 1);
        if rxe::TID_FLOW_KEEP_AFTER_SEQ_ERR.get(f) == 0 {
            v = rxe::TID_FLOW_VALID.set(v, 0);
        }
        *slot = v;
        return Flow::Error(rhf::rte::EXPECTED_FLOW_SEQ_ERR);
    }
    *slot = rxe::TID_FLOW_SEQ.set(f, rxe::TID_FLOW_SEQ.get(f) + 1);
    Flow::Match { suppress_ok: rxe::TID_FLOW_HDR_SUPP_ENABLE.get(f) == 1 }
}

/// Reserves the next RHQ entry, or `None` when the queue is full.
fn reserve_rhq(ctx: &mut RcvContext, g: &RhqGeometry) -> Option<(u64, u32)> {
    let size = g.size_dws();
    let tail = ctx.rhq_tail % size;
    let next = (tail + g.ent_dws) % size;
    if next == ctx.hdr_head() % size {
        return None;
    }
    ctx.rhq_tail = next;
    Some((g.addr + u64::from(tail) * 4, next))
}

enum Egr {
    Placed { addr: u64, index: u32, off_blocks: u64 },
    Full,
    BadEntry,
}

fn place_eager(ctx: &mut RcvContext, inp: &Inputs<'_>, len: usize) -> Egr {
    let cfg = ctx.egr();
    if cfg.count == 0 {
        return Egr::BadEntry;
    }
    let len = len as u64;
    let usable = |b: u32, head: u32| (b + 1) % cfg.count != head % cfg.count;
    let head = ctx.egr_head();
    let size_of = |b: u32| -> Option<(u64, u64)> {
        let e = inp.rcv_array.read(cfg.base + b)?;
        let entry_size = e.buf_size().bytes()?;
        let size = if cfg.one_packet { entry_size } else { cfg.buf_size?.min(entry_size) };
        Some((e.dma_addr(), size))
    };
    // One packet per buffer, or this packet does not fit what is left: move to a new buffer.
    if ctx.egr_used > 0 {
        let cur_size = size_of(ctx.egr_cur).map_or(0, |(_, s)| s);
        if cfg.one_packet || ctx.egr_used + len > cur_size {
            ctx.egr_cur = (ctx.egr_cur + 1) % cfg.count;
            ctx.egr_used = 0;
        }
    }
    if ctx.egr_used == 0 && !usable(ctx.egr_cur, head) {
        return Egr::Full;
    }
    let Some((base, size)) = size_of(ctx.egr_cur) else {
        return Egr::BadEntry;
    };
    if len > size {
        return Egr::BadEntry;
    }
    let off = ctx.egr_used;
    ctx.egr_used += len.div_ceil(64) * 64;
    Egr::Placed { addr: base + off, index: ctx.egr_cur, off_blocks: off / 64 }
}

/// Decides the fate of a packet for an enabled context.
pub fn decide(
    ctx: &mut RcvContext,
    ctxt: u32,
    h: &ParsedHeader,
    pkt: &Packet,
    inp: &Inputs<'_>,
    c: &mut Counters,
) -> Decision {
    let Some(g) = ctx.rhq() else {
        c.rx_context_disabled_drops += 1;
        return Decision::Drop;
    };
    let split = (g.hdr_dws as usize * 4).min(pkt.len());
    let payload_len = pkt.len() - split;
    let pkt_dws = pkt.wire_len().div_ceil(4);
    let len_ok = usize::from(h.lrh_pkt_len_dws) * 4 == pkt.wire_len();
    let k = h.kdeth0;
    let expected = k.tidctrl() != 0 || h.opcode() == wire::opcode::EXPTID;

    let mut rhf = rhf::RHF_PKT_LEN.encode(pkt_dws as u64);
    let mut payload = None;
    let mut suppress = false;
    let egr_snapshot = (ctx.egr_cur, ctx.egr_used);
    if !len_ok {
        c.rx_len_err_count += 1;
        rhf = rhf::RHF_LEN_ERR.set(rhf, 1);
        let t = if expected { RcvType::Expected } else { RcvType::Eager };
        rhf = rhf::RHF_RCV_TYPE.set(rhf, t as u64);
    } else if expected {
        rhf = rhf::RHF_RCV_TYPE.set(rhf, RcvType::Expected as u64);
        match tid_lookup(ctx, inp, h, payload_len, c) {
            Tid::Err => {
                c.rx_tid_err_count += 1;
                rhf = rhf::RHF_TID_ERR.set(rhf, 1);
            }
            Tid::Ok { addr, entry } => match check_flow(ctx, h, c) {
                Flow::Error(rte) => rhf = rhf::RHF_RCV_TYPE_ERR.set(rhf, rte),
                flow => {
                    suppress = k.sh() && matches!(flow, Flow::Match { suppress_ok: true });
                    if payload_len > 0 {
                        payload = Some(PayloadWrite {
                            addr,
                            start: split as u32,
                            len: payload_len as u32,
                            kind: DmaKind::ExpectedPayload { rcv_entry: entry },
                        });
                    }
                }
            },
        }
    } else {
        rhf = rhf::RHF_RCV_TYPE.set(rhf, RcvType::Eager as u64);
        if payload_len > 0 {
            match place_eager(ctx, inp, payload_len) {
                Egr::Placed { addr, index, off_blocks } => {
                    rhf = rhf::RHF_USE_EGR_BFR.set(rhf, 1);
                    rhf = rhf::RHF_EGR_INDEX.set(rhf, u64::from(index));
                    rhf = rhf::RHF_EGR_OFFSET.set(rhf, off_blocks);
                    payload = Some(PayloadWrite {
                        addr,
                        start: split as u32,
                        len: payload_len as u32,
                        kind: DmaKind::EagerPayload { egr_index: index },
                    });
                }
                Egr::Full => {
                    if ctx.ctrl_bit(rxe::RCV_CTXT_CTRL_DONT_DROP_EGR_FULL) {
                        (ctx.egr_cur, ctx.egr_used) = egr_snapshot;
                        c.rx_backlog_count += 1;
                        return Decision::Hold;
                    }
                    c.rx_egr_full_drops += 1;
                    rhf = rhf::RHF_TID_ERR.set(rhf, 1);
                }
                Egr::BadEntry => {
                    c.rx_egr_bad_entry_drops += 1;
                    rhf = rhf::RHF_TID_ERR.set(rhf, 1);
                }
            }
        }
    }

    let rhq = if suppress {
        c.rx_hdr_suppressed_count += 1;
        None
    } else {
        let Some((entry_addr, new_tail)) = reserve_rhq(ctx, &g) else {
            (ctx.egr_cur, ctx.egr_used) = egr_snapshot;
            if ctx.ctrl_bit(rxe::RCV_CTXT_CTRL_DONT_DROP_RHQ_FULL) {
                ctx.blocked_rhq_full = true;
                c.rx_backlog_count += 1;
                return Decision::Hold;
            }
            ctx.hdr_ovfl += 1;
            c.rx_rhq_full_drops += 1;
            return Decision::Drop;
        };
        let entry_bytes = g.ent_dws as usize * 4;
        let room = entry_bytes.saturating_sub(8);
        if split > room {
            c.rx_hdr_truncated_count += 1;
        }
        rhf = rhf::RHF_RCV_SEQ.set(rhf, u64::from(ctx.seq));
        ctx.seq = rhf::next_seq(u64::from(ctx.seq)) as u8;
        let tail_addr = ctx
            .ctrl_bit(rxe::RCV_CTXT_CTRL_TAIL_UPD)
            .then(|| ctx.kregs[crate::regs::kreg::HDR_TAIL_ADDR]);
        Some(RhqWrite {
            entry_addr,
            entry_bytes: entry_bytes as u32,
            hdr_len: split.min(room) as u32,
            rhf: Rhf(rhf),
            new_tail,
            tail_addr,
        })
    };
    if expected && payload.is_some() {
        c.rx_expected_count += 1;
    } else if !expected && payload.is_some() {
        c.rx_eager_count += 1;
    }
    Decision::Deliver(Delivery {
        ctxt,
        packet_id: pkt.id,
        payload,
        rhq,
        urgent: k.intr(),
        expected,
    })
}
