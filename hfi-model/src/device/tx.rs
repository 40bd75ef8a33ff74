//! The transmit side behind the MMIO dispatch: the per-send-context CSR blocks
//! (TXE + 0x100000 + 0x100 · ctxt) go to the device's [`SendContext`]s, the per-engine SDMA
//! CSR blocks (TXE + 0x200000 + 0x100 · engine) to its [`SdmaEngine`]s, SEND_PIO_INIT_CTXT to
//! the contexts it names, and PIO stores to an enabled send context to that context. The
//! [`TxEffect`]s they return are applied here on the device's clock (through the event queue
//! when they lie in the future): DMA writes through the device DMA path, interrupts through
//! the interrupt block, packets to the link (`docs/transmit.md` "Routing").
//!
//! **Transitional rule**: PIO stores to a send context that has not been enabled since the
//! last reset keep going to the PIO capture ([`crate::transmit::pio`]), which needs no enable
//! and returns no credits (our own driver's CTS path does not enable its send context yet).
//!
//! **LCB loopback**: while the link is up in LCB loopback (the 8051 in LinkUp with loopback
//! selected, and the LCB transferring), every transmitted packet enters the receive side as a
//! peer packet does ([`HfiDevice::link_send_at`]: link serialization and latency). Otherwise
//! it joins the outbound queue of the PIO capture ([`HfiDevice::take_tx_packets`]), which the
//! runner hands to the remote peer.

use hfi_abi::{bar0, pio, txe};
use vm_memory::GuestAddressSpace;

use super::{Event, HfiDevice};
use crate::dma::{DmaKind, DmaTag};
use crate::packet::Packet;
use crate::transmit::pio::TxPacket as CapturedPacket;
use crate::transmit::{SdmaEngine, SendContext, TxCounters, TxDmaKind, TxEffect, TxSource};

/// Packet ids of transmitted packets looped back to the receive side (trace only).
const TX_PACKET_ID_BASE: u64 = 0x7478_0000_0000_0000;

/// Transmit-side units and state of the device.
#[derive(Debug)]
pub(crate) struct TxState {
    pub ctxts: Vec<SendContext>,
    /// The context was enabled since the last reset (it no longer uses the PIO capture).
    pub ever_enabled: Vec<bool>,
    pub sdma: Vec<SdmaEngine>,
    pub counters: TxCounters,
    pub seq: u64,
}

impl TxState {
    pub fn new(send_contexts: u32, sdma_engines: u32) -> Self {
        let timing = crate::transmit::TxTiming::default();
        Self {
            ctxts: (0..send_contexts).map(|c| SendContext::new(c, timing)).collect(),
            ever_enabled: vec![false; send_contexts as usize],
            sdma: (0..sdma_engines).map(|e| SdmaEngine::new(e, timing)).collect(),
            counters: TxCounters::default(),
            seq: 0,
        }
    }
}

/// Registers whose 4-byte half writes merge into 0 (action registers).
fn is_action(reg: u64, sdma: bool) -> bool {
    if sdma {
        reg == txe::SEND_DMA_ENG_ERR_CLEAR
    } else {
        reg == txe::SEND_CTXT_ERR_CLEAR
    }
}

fn merge(base: u64, raw: u64, half: Option<bool>) -> u64 {
    match half {
        None => raw,
        Some(false) => (base & 0xFFFF_FFFF_0000_0000) | (raw & 0xFFFF_FFFF),
        Some(true) => (base & 0xFFFF_FFFF) | (raw << 32),
    }
}

impl<M: GuestAddressSpace> HfiDevice<M> {
    /// `(context, register offset)` when `reg_off` is in the CSR block of a send context.
    fn send_ctxt_reg(&self, reg_off: u64) -> Option<(usize, u64)> {
        let (c, r) = bar0::TXE_PER_CONTEXT.index(reg_off)?;
        (c < self.tx.ctxts.len() as u64).then_some((c as usize, r))
    }

    /// `(engine, register offset)` when `reg_off` is in the CSR block of an SDMA engine.
    fn sdma_reg(&self, reg_off: u64) -> Option<(usize, u64)> {
        let (e, r) = bar0::TXE_PER_SDMA.index(reg_off)?;
        (e < self.tx.sdma.len() as u64).then_some((e as usize, r))
    }

    /// The value of a transmit CSR when a transmit unit decodes `reg_off`.
    pub(crate) fn tx_read(&self, reg_off: u64) -> Option<u64> {
        if let Some((c, r)) = self.send_ctxt_reg(reg_off) {
            return self.tx.ctxts.get(c)?.read_csr(r);
        }
        let (e, r) = self.sdma_reg(reg_off)?;
        self.tx.sdma.get(e)?.read_csr(r, self.now)
    }

    /// Writes a transmit CSR; false when no transmit unit decodes `reg_off`.
    pub(crate) fn tx_write(&mut self, reg_off: u64, raw: u64, half: Option<bool>) -> bool {
        let now = self.now;
        if let Some((c, r)) = self.send_ctxt_reg(reg_off) {
            let Some(sc) = self.tx.ctxts.get_mut(c) else {
                return false;
            };
            let base = if is_action(r, false) { 0 } else { sc.read_csr(r).unwrap_or(0) };
            let v = merge(base, raw, half);
            let Some(fx) = sc.write_csr(now, r, v, &mut self.tx.counters) else {
                return false;
            };
            if sc.enabled() {
                if let Some(e) = self.tx.ever_enabled.get_mut(c) {
                    *e = true;
                }
            }
            self.tx_apply(fx);
            return true;
        }
        if let Some((e, r)) = self.sdma_reg(reg_off) {
            let Some(eng) = self.tx.sdma.get_mut(e) else {
                return false;
            };
            let base = if is_action(r, true) { 0 } else { eng.read_csr(r, now).unwrap_or(0) };
            let v = merge(base, raw, half);
            let mem = self.dma.memory().memory();
            let Some(fx) = eng.write_csr(now, r, v, &*mem, &mut self.tx.counters) else {
                return false;
            };
            drop(mem);
            self.tx_apply(fx);
            return true;
        }
        false
    }

    /// SEND_PIO_INIT_CTXT with `value` (its trigger bits): the init engine restarts the
    /// context it names, or every context.
    pub(crate) fn tx_pio_init(&mut self, value: u64) {
        if txe::SEND_PIO_INIT_CTXT_PIO_ALL_CTXT_INIT.get(value) == 1 {
            for sc in &mut self.tx.ctxts {
                sc.pio_init(&mut self.tx.counters);
            }
        } else if txe::SEND_PIO_INIT_CTXT_PIO_SINGLE_CTXT_INIT.get(value) == 1 {
            let c = txe::SEND_PIO_INIT_CTXT_PIO_CTXT_NUM.get(value) as usize;
            if let Some(sc) = self.tx.ctxts.get_mut(c) {
                sc.pio_init(&mut self.tx.counters);
            }
        }
        self.fold_tx_counters();
    }

    /// A store of `len` bytes of `value` at BAR0 `offset` in the PIO space.
    pub(crate) fn tx_pio_write(&mut self, offset: u64, value: u64, len: usize) {
        let rel = offset.saturating_sub(bar0::TXE_PIO_SEND);
        let sop = rel >= bar0::PIO_SOP_DISTANCE;
        let rel = rel % bar0::PIO_SOP_DISTANCE;
        let ctxt = (rel / pio::PIO_CTXT_WINDOW_BYTES) as usize;
        let woff = rel % pio::PIO_CTXT_WINDOW_BYTES;
        let routed = self.tx.ever_enabled.get(ctxt).copied().unwrap_or(false);
        match self.tx.ctxts.get_mut(ctxt) {
            Some(sc) if routed => {
                let fx = sc.pio_store(self.now, sop, woff, value, len, &mut self.tx.counters);
                self.tx_apply(fx);
            }
            _ => self.pio.write(self.now, offset, value, len, &mut self.counters),
        }
    }

    /// Applies the effects a transmit unit returned, in order.
    fn tx_apply(&mut self, fx: Vec<TxEffect>) {
        self.fold_tx_counters();
        for e in fx {
            match e {
                TxEffect::Packet(p) => self.tx_packet(p),
                TxEffect::Interrupt { time, source } if time > self.now => {
                    self.queue.schedule(time, Event::TxInterrupt(source));
                }
                TxEffect::Interrupt { source, .. } => self.tx_interrupt(source),
                TxEffect::DmaWrite { time, addr, value, kind } if time > self.now => {
                    self.queue.schedule(time, Event::TxDma { addr, value, kind });
                }
                TxEffect::DmaWrite { addr, value, kind, .. } => self.tx_dma(addr, value, kind),
            }
        }
    }

    /// A transmit interrupt source is raised now.
    pub(super) fn tx_interrupt(&mut self, source: u64) {
        let err = txe::IS_SDMAENG_ERR_START..txe::IS_SDMAENG_ERR_START + bar0::TXE_PER_SDMA.count;
        if err.contains(&source) {
            self.counters.sdma_eng_err_intr_count += 1;
        }
        self.counters.tx_intr_count += 1;
        self.raise_source(source);
    }

    /// A transmit DMA write (credit return, SDMA head) lands now.
    pub(super) fn tx_dma(&mut self, addr: u64, value: u64, kind: TxDmaKind) {
        let ctxt = match kind {
            TxDmaKind::CreditReturn { ctxt } => ctxt,
            TxDmaKind::SdmaHead { engine } => engine,
        };
        let tag = DmaTag { time: self.now, ctxt, packet_id: 0, kind: DmaKind::Transmit(kind) };
        let bytes = value.to_le_bytes();
        if !self.dma.write(&mut self.counters, self.observer.as_deref_mut(), &tag, addr, &[&bytes])
        {
            self.counters.tx_dma_write_fails += 1;
        }
    }

    /// True while transmitted packets loop back to the receive side.
    pub fn tx_loopback(&self) -> bool {
        self.chip_state.dc8051.link_up_in_loopback()
            && self.lcb_cfg().transfer_active(self.chip_state.dc8051.link_up())
    }

    fn tx_packet(&mut self, p: crate::transmit::TxPacket) {
        if self.tx_loopback() {
            self.counters.tx_loopback_count += 1;
            let id = TX_PACKET_ID_BASE | self.tx.seq;
            self.tx.seq += 1;
            self.link_send_at(p.ready, Packet::from_bytes(&p.bytes, id));
            return;
        }
        let send_ctxt = match p.source {
            TxSource::Pio { ctxt } => ctxt,
            TxSource::Sdma { engine } => engine,
        };
        let time = p.ready.max(self.now);
        self.counters.tx_outbound_count += 1;
        self.pio.tx.push(CapturedPacket {
            time,
            send_ctxt,
            source: p.source,
            pbc: p.pbc,
            bytes: p.bytes,
        });
    }

    /// A transmit unit's counters are added to the device's and reset.
    fn fold_tx_counters(&mut self) {
        let t = std::mem::take(&mut self.tx.counters);
        let c = &mut self.counters;
        c.tx_pio_store_count += t.tx_pio_store_count;
        c.tx_pio_bad_store_drops += t.tx_pio_bad_store_drops;
        c.tx_pio_disabled_drops += t.tx_pio_disabled_drops;
        c.tx_pio_halted_drops += t.tx_pio_halted_drops;
        c.tx_pio_packet_count += t.tx_pio_packet_count;
        c.tx_pio_bytes += t.tx_pio_bytes;
        c.tx_pio_packet_drops += t.tx_pio_packet_drops;
        c.tx_pio_error_count += t.tx_pio_error_count;
        c.tx_pio_halt_count += t.tx_pio_halt_count;
        c.tx_pio_disallowed_count += t.tx_pio_disallowed_count;
        c.tx_credit_return_count += t.tx_credit_return_count;
        c.tx_credit_return_no_addr_count += t.tx_credit_return_no_addr_count;
        c.tx_credit_intr_count += t.tx_credit_intr_count;
        c.tx_pio_err_intr_count += t.tx_pio_err_intr_count;
        c.tx_sdma_packet_count += t.tx_sdma_packet_count;
        c.tx_sdma_bytes += t.tx_sdma_bytes;
        c.tx_sdma_desc_count += t.tx_sdma_desc_count;
        c.tx_sdma_mem_read_fails += t.tx_sdma_mem_read_fails;
        c.tx_sdma_error_count += t.tx_sdma_error_count;
        c.tx_sdma_eng_err_intr_count += t.tx_sdma_eng_err_intr_count;
        c.tx_sdma_int_req_count += t.tx_sdma_int_req_count;
        c.tx_sdma_progress_intr_count += t.tx_sdma_progress_intr_count;
        c.tx_sdma_idle_intr_count += t.tx_sdma_idle_intr_count;
        c.tx_sdma_head_writeback_count += t.tx_sdma_head_writeback_count;
        c.tx_sdma_head_no_addr_count += t.tx_sdma_head_no_addr_count;
        c.tx_sdma_ahg_unsupported_count += t.tx_sdma_ahg_unsupported_count;
        c.tx_csr_read_only_write_count += t.tx_csr_read_only_write_count;
        // The device-wide count of read-only writes includes the transmit CSRs'.
        c.mmio_read_only_write_count += t.tx_csr_read_only_write_count;
    }

    /// A send context (tests, reports).
    pub fn send_context(&self, ctxt: u32) -> Option<&SendContext> {
        self.tx.ctxts.get(ctxt as usize)
    }

    /// An SDMA engine (tests, reports).
    pub fn sdma_engine(&self, engine: u32) -> Option<&SdmaEngine> {
        self.tx.sdma.get(engine as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_merges() {
        assert_eq!(merge(0x1111_2222_3333_4444, 0xAAAA_BBBB, Some(false)), 0x1111_2222_AAAA_BBBB);
        assert_eq!(merge(0x1111_2222_3333_4444, 0xAAAA_BBBB, Some(true)), 0xAAAA_BBBB_3333_4444);
        assert_eq!(merge(5, 7, None), 7);
        assert!(is_action(txe::SEND_DMA_ENG_ERR_CLEAR, true));
        assert!(!is_action(txe::SEND_CTXT_CTRL, false));
    }
}
