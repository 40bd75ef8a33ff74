//! The receive datapath of the device: a packet's arrival, the receive engine's decision
//! ([`crate::receive::engine`]), the scheduled DMA write-back, the backlog retried when the
//! host frees room, and RcvAvail interrupt moderation with its timer.

use hfi_abi::{cce, rxe};
use vm_memory::GuestAddressSpace;

use super::{DataMode, Event, HfiDevice, InFlight};
use crate::dma::{DmaKind, DmaTag};
use crate::packet::ParsedHeader;
use crate::receive::engine::{self, Decision, Delivery, Inputs};

impl<M: GuestAddressSpace> HfiDevice<M> {
    pub(super) fn handle(&mut self, ev: Event) {
        match ev {
            Event::Arrive(h) => self.arrive(h),
            Event::Writeback(h) => self.writeback(h),
            Event::Timer { ctxt, gen } => self.timer(ctxt, gen),
            Event::TxInterrupt(source) => self.tx_interrupt(source),
            Event::TxDma { addr, value, kind } => self.tx_dma(addr, value, kind),
        }
    }

    fn kdeth_qp(&self) -> u32 {
        let v = self.global.get(self.gslots.bth_qp).copied().unwrap_or(0);
        rxe::RCV_BTH_QP_KDETH_QP.get(v) as u32
    }

    pub(super) fn arrive(&mut self, handle: u32) {
        self.counters.rx_packet_count += 1;
        let kdeth_qp = self.kdeth_qp();
        let routed = self
            .packets
            .get(handle)
            .and_then(|f| engine::route(&f.pkt, kdeth_qp, &mut self.counters));
        let Some((ctxt, h)) = routed else {
            self.packets.remove(handle);
            return;
        };
        let limit = self.cfg.backlog_limit;
        let Some(ctx) = self.ctxts.get_mut(ctxt as usize) else {
            self.counters.rx_bad_context_drops += 1;
            self.packets.remove(handle);
            return;
        };
        if !ctx.enabled {
            self.counters.rx_context_disabled_drops += 1;
            self.packets.remove(handle);
            return;
        }
        if !ctx.backlog.is_empty() {
            if ctx.backlog.len() >= limit {
                self.counters.rx_backlog_overflow_drops += 1;
                self.packets.remove(handle);
            } else {
                self.counters.rx_backlog_count += 1;
                ctx.backlog.push_back(handle);
            }
            return;
        }
        if !self.decide(ctxt, &h, handle) {
            if let Some(ctx) = self.ctxts.get_mut(ctxt as usize) {
                ctx.backlog.push_back(handle);
            }
        }
    }

    /// Runs the engine for packet `handle` on `ctxt`; returns false if it must be held back.
    fn decide(&mut self, ctxt: u32, h: &ParsedHeader, handle: u32) -> bool {
        let kdeth_qp = self.kdeth_qp();
        let (Some(ctx), Some(f)) =
            (self.ctxts.get_mut(ctxt as usize), self.packets.get_mut(handle))
        else {
            return true;
        };
        let inp = Inputs { kdeth_qp, rcv_array: &self.rcv_array };
        match engine::decide(ctx, ctxt, h, &f.pkt, &inp, &mut self.counters) {
            Decision::Deliver(d) => {
                self.schedule_writeback(handle, d);
                true
            }
            Decision::Hold => false,
            Decision::Drop => {
                self.packets.remove(handle);
                true
            }
        }
    }

    fn schedule_writeback(&mut self, handle: u32, d: Delivery) {
        let pipe = self.timing.pipeline_done(self.now, d.expected);
        let sizes = [
            d.payload.map_or(0, |p| u64::from(p.len)),
            d.rhq.map_or(0, |r| u64::from(r.entry_bytes)),
            d.rhq.and_then(|r| r.tail_addr).map_or(0, |_| 8),
        ];
        let done = self.timing.dma_done(pipe, &sizes);
        if let Some(f) = self.packets.get_mut(handle) {
            f.plan = Some(d);
        }
        self.queue.schedule(done, Event::Writeback(handle));
    }

    /// Retries held packets of `ctxt` (after software freed RHQ entries or eager buffers).
    pub(crate) fn retry_backlog(&mut self, ctxt: u32) {
        loop {
            let Some(ctx) = self.ctxts.get_mut(ctxt as usize) else {
                return;
            };
            if !ctx.enabled {
                return;
            }
            ctx.blocked_rhq_full = false;
            let Some(handle) = ctx.backlog.pop_front() else {
                return;
            };
            let Some(h) = self.packets.get(handle).and_then(|f| f.pkt.parse()) else {
                self.packets.remove(handle);
                continue;
            };
            if !self.decide(ctxt, &h, handle) {
                if let Some(ctx) = self.ctxts.get_mut(ctxt as usize) {
                    ctx.backlog.push_front(handle);
                }
                return;
            }
        }
    }

    /// Drops held packets (context disabled).
    pub(crate) fn drop_packets(&mut self, handles: Vec<u32>) {
        self.counters.rx_context_disabled_drops += handles.len() as u64;
        for h in handles {
            self.packets.remove(h);
        }
    }

    fn writeback(&mut self, handle: u32) {
        let Some(InFlight { pkt, plan: Some(d) }) = self.packets.get(handle) else {
            self.packets.remove(handle);
            return;
        };
        let d = *d;
        let obs = self.observer.as_deref_mut();
        let mut tag = DmaTag {
            time: self.now,
            ctxt: d.ctxt,
            packet_id: d.packet_id,
            kind: DmaKind::RhqEntry,
        };
        if let Some(p) = d.payload {
            self.counters.rx_payload_bytes += p.len as u64;
            if self.cfg.data_mode == DataMode::Full {
                tag.kind = p.kind;
                let (a, b) = pkt.range(p.start as usize, p.len as usize);
                self.dma.write(&mut self.counters, obs, &tag, p.addr, &[a, b]);
            }
        }
        if let Some(r) = d.rhq {
            let obs = self.observer.as_deref_mut();
            tag.kind = DmaKind::RhqEntry;
            let (a, b) = pkt.range(0, r.hdr_len as usize);
            let rhf = r.rhf.to_le_bytes();
            let pad_len = (r.entry_bytes as usize).saturating_sub(8 + a.len() + b.len());
            let pad = [0u8; 128];
            let pad = pad.get(..pad_len.min(128)).unwrap_or(&[]);
            self.dma.write(&mut self.counters, obs, &tag, r.entry_addr, &[a, b, pad, &rhf]);
            self.counters.rhq_entry_count += 1;
            if let Some(ctx) = self.ctxts.get_mut(d.ctxt as usize) {
                ctx.rhq_tail_visible = r.new_tail;
            }
            if let Some(addr) = r.tail_addr {
                tag.kind = DmaKind::RhqTail;
                let obs = self.observer.as_deref_mut();
                let tail = u64::from(r.new_tail).to_le_bytes();
                self.dma.write(&mut self.counters, obs, &tag, addr, &[&tail]);
            }
        }
        self.packets.remove(handle);
        if d.rhq.is_some() {
            self.moderate(d.ctxt, d.urgent);
        }
    }

    /// RcvAvail moderation after an RHQ entry landed.
    fn moderate(&mut self, ctxt: u32, urgent: bool) {
        let Some(ctx) = self.ctxts.get_mut(ctxt as usize) else {
            return;
        };
        if !ctx.ctrl_bit(rxe::RCV_CTXT_CTRL_INTR_AVAIL) {
            return;
        }
        ctx.intr_pending += 1;
        let counter = ctx.intr_counter().max(1);
        if urgent || ctx.intr_pending >= counter {
            self.fire_rcvavail(ctxt);
            return;
        }
        let reload = ctx.timeout_reload();
        if !ctx.timer_armed && reload > 0 {
            ctx.timer_armed = true;
            ctx.timer_gen += 1;
            let gen = ctx.timer_gen;
            let ps = self.timing.params.cclocks_ps(reload * rxe::RCV_AVAIL_TIME_OUT_UNIT_CCLOCKS);
            self.queue.schedule(self.now.plus(ps), Event::Timer { ctxt, gen });
        }
    }

    fn timer(&mut self, ctxt: u32, gen: u64) {
        let Some(ctx) = self.ctxts.get_mut(ctxt as usize) else {
            return;
        };
        if !ctx.timer_armed || ctx.timer_gen != gen {
            return;
        }
        ctx.timer_armed = false;
        if ctx.intr_pending > 0 {
            self.counters.intr_timeout_count += 1;
            self.fire_rcvavail(ctxt);
        }
    }

    pub(crate) fn fire_rcvavail(&mut self, ctxt: u32) {
        if let Some(ctx) = self.ctxts.get_mut(ctxt as usize) {
            ctx.intr_pending = 0;
            ctx.timer_armed = false;
            ctx.timer_gen += 1;
        }
        self.counters.intr_rcvavail_count += 1;
        self.raise_source(cce::IS_RCVAVAIL_START + u64::from(ctxt));
    }
}
