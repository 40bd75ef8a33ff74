//! Device counters: everything the device drops, errors on or ignores, plus traffic totals.
//!
//! Naming: snake_case nouns; `_count` for events, `_drops` for packets or payloads discarded,
//! `_fails` for operations that did not complete, `_bytes` for byte totals. Counters are
//! exported as JSON with [`Counters::to_json`]. Bad input never panics the model: it lands here.

use serde::Serialize;

macro_rules! counters {
    ($( $(#[$doc:meta])* $name:ident ),* $(,)?) => {
        /// All device counters (see the module docs for naming).
        #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
        pub struct Counters {
            $( $(#[$doc])* pub $name: u64, )*
        }

        impl Counters {
            /// `(name, value)` for every counter, in declaration order.
            pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
                [$( (stringify!($name), self.$name), )*].into_iter()
            }
        }
    };
}

counters! {
    /// MMIO reads of an offset no register decodes to (returned 0).
    mmio_unknown_read_count,
    /// MMIO writes to an offset no register decodes to (dropped).
    mmio_unknown_write_count,
    /// MMIO accesses not aligned to their size (ignored; reads return 0).
    mmio_misaligned_count,
    /// MMIO accesses of a size other than 4 or 8 bytes (ignored).
    mmio_bad_size_count,
    /// MMIO accesses past the end of BAR0 (ignored).
    mmio_out_of_range_count,
    /// Writes to read-only registers or read-only bits of a register (those bits kept).
    mmio_read_only_write_count,
    /// Packets sent through a PIO send context (the capture or an enabled context).
    tx_pio_packet_count,
    /// Capture: PIO stores outside a packet, of the wrong size, or overflowing one (dropped);
    /// enabled contexts: send-context errors (each halts the context).
    tx_pio_error_count,
    /// RcvArray entry writes stored.
    rcvarray_write_count,
    /// RcvArray writes with WRITE_ENABLE clear (WC fill): ignored by the hardware.
    rcvarray_write_disabled_count,
    /// Low-half 32-bit RcvArray writes latched until the high half arrives.
    rcvarray_half_write_count,
    /// Packets that arrived at the receive port.
    rx_packet_count,
    /// Eager packets delivered.
    rx_eager_count,
    /// Expected packets delivered (payload placed by TID).
    rx_expected_count,
    /// Expected packets whose header was suppressed (SH with a matching TID flow).
    rx_hdr_suppressed_count,
    /// Packets whose BTH QP prefix is not the KDETH QP (verbs traffic is not modelled).
    rx_non_kdeth_drops,
    /// Packets addressed to a context the chip does not have.
    rx_bad_context_drops,
    /// Packets addressed to a context that is not enabled.
    rx_context_disabled_drops,
    /// Packets too short for LRH+BTH+KDETH (their context cannot be trusted: dropped).
    rx_short_packet_drops,
    /// Packets whose LRH.PktLen disagrees with their length (RHF.LenErr, payload dropped).
    rx_len_err_count,
    /// Expected packets with a TID error (header delivered with RHF.TidErr, payload dropped).
    rx_tid_err_count,
    /// ... of which the TIDCtrl was 0 or 3.
    rx_tid_bad_ctrl_count,
    /// ... of which the entry index fell outside the context's expected range.
    rx_tid_out_of_range_count,
    /// ... of which the RcvArray entry was invalid (size code 0 or reserved).
    rx_tid_invalid_entry_count,
    /// ... of which offset + length ran past the end of the TID buffer.
    rx_tid_overflow_count,
    /// Expected packets with a TID-flow sequence mismatch (payload dropped, RTE 2).
    rx_flow_seq_err_count,
    /// Expected packets with a TID-flow generation mismatch (payload dropped, RTE 4).
    rx_flow_gen_err_count,
    /// Eager payloads dropped because the eager ring was full (header kept, RHF.TidErr).
    rx_egr_full_drops,
    /// Eager payloads dropped because the eager RcvArray entry was invalid or too small.
    rx_egr_bad_entry_drops,
    /// Whole packets dropped because the RHQ was full.
    rx_rhq_full_drops,
    /// Packets held back (DontDrop set and the RHQ or eager ring full).
    rx_backlog_count,
    /// Packets dropped because a context's hold-back queue was at its limit.
    rx_backlog_overflow_drops,
    /// Headers truncated because RcvHdrSize does not fit the RHQ entry.
    rx_hdr_truncated_count,
    /// Payload bytes written to host memory.
    rx_payload_bytes,
    /// RHQ entries written.
    rhq_entry_count,
    /// DMA writes issued.
    dma_write_count,
    /// Bytes written by DMA.
    dma_write_bytes,
    /// DMA writes to an address no memory region covers (dropped, device error).
    dma_write_fails,
    /// RcvAvail interrupt sources raised.
    intr_rcvavail_count,
    /// RcvAvail raised by the moderation timer.
    intr_timeout_count,
    /// MSI-X messages signalled to the host.
    intr_msix_count,
    /// Context enables (RcvCtxtCtrl.Enable 0 → 1).
    ctxt_enable_count,
    /// Context enables refused because the RHQ or eager configuration is invalid.
    ctxt_bad_config_count,
    /// Device resets.
    reset_count,
    /// MMIO reads served by the generic CSR file (no modelled register at that offset).
    mmio_generic_read_count,
    /// MMIO writes served by the generic CSR file.
    mmio_generic_write_count,
    /// Non-zero writes to a new generic CSR dropped because the generic file is full.
    csr_generic_full_drops,
    /// Distinct 8-byte CSR offsets (below the PIO space, RcvArray entries excluded) read.
    csr_read_distinct_count,
    /// Distinct CSR offsets written.
    csr_written_distinct_count,
    /// Distinct CSR offsets read or written.
    csr_touched_distinct_count,
    /// Distinct CSR offsets served by the generic CSR file.
    csr_generic_distinct_count,
    /// PIO init engine runs (SEND_PIO_INIT_CTXT all/single context).
    tx_pio_init_count,
    /// SBus requests executed.
    sbus_request_count,
    /// ASIC_CFG_MUTEX writes that did not take the mutex (held).
    asic_mutex_busy_count,
    /// 8051 host commands run.
    dc8051_host_cmd_count,
    /// 8051 host commands answered with a code other than SUCCESS (unsupported or invalid).
    dc8051_cmd_invalid_count,
    /// 8051 host commands issued while the 8051 is held in reset (never completed).
    dc8051_cmd_in_reset_drops,
    /// Idle messages sent to a neighbour other than this port (they leave the model).
    dc8051_idle_msg_sent_count,
    /// Idle messages looped back while the receive queue was full (dropped).
    dc8051_idle_msg_drops,
    /// 8051 code RAM writes (no firmware runs; dropped).
    dc8051_code_ram_write_drops,
    /// 8051 data RAM writes past the data RAM (dropped).
    dc8051_ram_address_drops,
    /// Quick link-up trainings that ended without a ready LCB (the link stays in polling).
    dc8051_link_training_fails,
    /// DC 8051 interrupts raised (a new enabled DC_DC8051_ERR_FLG bit).
    dc8051_intr_count,
    /// Host writes of DCC_CFG_PORT_CONFIG.LinkState the hardware does not take.
    dcc_link_state_write_ignored_count,
    /// SDMA engine error interrupts raised (a new unmasked SEND_DMA_ENG_ERR_STATUS bit).
    sdma_eng_err_intr_count,
    /// PIO stores taken by an enabled send context (one per 8-byte qword).
    tx_pio_store_count,
    /// PIO stores to a send context of a size or alignment its window does not take.
    tx_pio_bad_store_drops,
    /// PIO stores to a disabled (formerly enabled) send context.
    tx_pio_disabled_drops,
    /// PIO stores to a halted send context.
    tx_pio_halted_drops,
    /// Bytes of the packets sent by send contexts (LRH .. payload).
    tx_pio_bytes,
    /// Partly written PIO packets discarded by a disable, a depth change, a halt or a PIO init.
    tx_pio_packet_drops,
    /// Send-context halts.
    tx_pio_halt_count,
    /// PIO packets refused by a SEND_CTXT_CHECK_ENABLE check.
    tx_pio_disallowed_count,
    /// Credit returns DMA-written.
    tx_credit_return_count,
    /// Credit returns due while SEND_CTXT_CREDIT_RETURN_ADDR is 0.
    tx_credit_return_no_addr_count,
    /// SendCredit interrupts raised.
    tx_credit_intr_count,
    /// Send-context error interrupts raised.
    tx_pio_err_intr_count,
    /// SDMA packets sent.
    tx_sdma_packet_count,
    /// Bytes of those packets (LRH .. payload).
    tx_sdma_bytes,
    /// SDMA descriptors completed.
    tx_sdma_desc_count,
    /// SDMA descriptor or data reads of unbacked memory (each halts the engine).
    tx_sdma_mem_read_fails,
    /// SDMA engine errors that halted the engine.
    tx_sdma_error_count,
    /// SDMA engine error interrupts issued by the engines.
    tx_sdma_eng_err_intr_count,
    /// SDMA interrupts raised by INT_REQ descriptors.
    tx_sdma_int_req_count,
    /// SDmaProgress interrupts raised.
    tx_sdma_progress_intr_count,
    /// SDmaIdle interrupts raised.
    tx_sdma_idle_intr_count,
    /// Engine heads DMA-written to SEND_DMA_HEAD_ADDR.
    tx_sdma_head_writeback_count,
    /// HEAD_TO_HOST completions while SEND_DMA_HEAD_ADDR is 0.
    tx_sdma_head_no_addr_count,
    /// SDMA packets using AHG header updates (not modelled; the engine halts).
    tx_sdma_ahg_unsupported_count,
    /// Writes to read-only transmit CSRs (ignored).
    tx_csr_read_only_write_count,
    /// Interrupt sources raised by the transmit units (applied on the device clock).
    tx_intr_count,
    /// Transmit DMA writes (credit returns, SDMA heads) to unbacked memory.
    tx_dma_write_fails,
    /// Transmitted packets looped back to the receive side (LCB loopback, link up).
    tx_loopback_count,
    /// Packets of the send units (enabled contexts, SDMA) queued for the remote peer.
    tx_outbound_count,
}

impl Counters {
    /// JSON object of every counter.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// Sum of every counter whose name ends in `_drops` or `_fails`.
    pub fn total_drops_and_fails(&self) -> u64 {
        self.iter()
            .filter(|(n, _)| n.ends_with("_drops") || n.ends_with("_fails"))
            .map(|(_, v)| v)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_every_counter() {
        let c = Counters { rx_egr_full_drops: 3, ..Default::default() };
        let j = c.to_json();
        assert_eq!(j["rx_egr_full_drops"], 3);
        assert_eq!(j.as_object().map(|o| o.len()), Some(c.iter().count()));
        assert_eq!(c.total_drops_and_fails(), 3);
    }

    #[test]
    fn every_counter_has_an_increment_site() {
        let sources = [
            include_str!("device/mod.rs"),
            include_str!("receive/engine.rs"),
            include_str!("device/mmio.rs"),
            include_str!("dma.rs"),
            include_str!("irq.rs"),
            include_str!("transmit/pio.rs"),
            include_str!("regs/csr_file.rs"),
            include_str!("device/chip.rs"),
            include_str!("link/dc8051/mod.rs"),
            include_str!("link/dc8051/ram.rs"),
            include_str!("device/rx.rs"),
            include_str!("link/dcc.rs"),
            include_str!("device/tx.rs"),
        ];
        for (name, _) in Counters::default().iter() {
            let site = format!(".{name} +=");
            assert!(
                sources.iter().any(|s| s.contains(&site)),
                "counter {name} is never incremented"
            );
        }
    }

    #[test]
    fn names_follow_the_convention() {
        for (name, _) in Counters::default().iter() {
            assert!(
                ["_count", "_drops", "_fails", "_bytes"].iter().any(|s| name.ends_with(s)),
                "{name}"
            );
        }
    }
}
