//! What the transmit units hand back to the device, their counters and their timing.
//!
//! The units ([`super::send_ctxt::SendContext`], [`super::sdma_engine::SdmaEngine`]) do no I/O
//! of their own except DMA *reads* through `vm_memory::Bytes`: every consequence of a CSR or PIO
//! write comes back as a list of [`TxEffect`]s, each stamped with the simulated time it takes
//! effect, for the device to apply (raise an interrupt source, DMA-write a qword, queue a
//! packet for the link) in its event queue. Within one returned list the effects are in causal
//! order (a packet before the credit return that frees its blocks).

use serde::Serialize;

use crate::time::SimTime;

/// Which send unit a packet came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum TxSource {
    /// A PIO send context (hardware context number).
    Pio {
        /// Hardware send context.
        ctxt: u32,
    },
    /// An SDMA engine.
    Sdma {
        /// Engine number.
        engine: u32,
    },
}

/// A packet the send side hands to the link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxPacket {
    /// When the packet is ready for the link (the link model serializes it from then on).
    pub ready: SimTime,
    /// Where it came from.
    pub source: TxSource,
    /// Its PBC (stripped from `bytes`; the chip does not put it on the wire).
    pub pbc: u64,
    /// The packet from the LRH through the last payload byte: `PBC.LengthDWs · 4 − 8` bytes.
    /// **No ICRC**: the chip appends it on the wire; a receive model that wants the 4-byte slot
    /// adds it (`hfi1-facts` PIO §6: "strip the PBC, append a 4-B ICRC slot").
    pub bytes: Vec<u8>,
}

impl TxPacket {
    /// PBC.VL.
    pub fn vl(&self) -> u8 {
        hfi_abi::wire::PBC_VL.get(self.pbc) as u8
    }
}

/// What a DMA write of a transmit unit is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum TxDmaKind {
    /// A credit-return qword of a send context.
    CreditReturn {
        /// Hardware send context.
        ctxt: u32,
    },
    /// An SDMA engine's head, written to SEND_DMA_HEAD_ADDR.
    SdmaHead {
        /// Engine number.
        engine: u32,
    },
}

/// One consequence of a transmit-side access.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxEffect {
    /// A packet for the link.
    Packet(TxPacket),
    /// Raise interrupt source `source` (CceIntStatus bit) at `time`.
    Interrupt {
        /// When.
        time: SimTime,
        /// Interrupt source number (0..768).
        source: u64,
    },
    /// DMA-write `value` as 8 little-endian bytes at host address `addr` at `time` (the time
    /// the chip issues the write; PCIe write latency, if modelled, is the device's to add).
    DmaWrite {
        /// When.
        time: SimTime,
        /// Host (guest-physical) address, 8-byte aligned.
        addr: u64,
        /// The qword.
        value: u64,
        /// What it is.
        kind: TxDmaKind,
    },
}

impl TxEffect {
    /// The time the effect takes place.
    pub fn time(&self) -> SimTime {
        match self {
            TxEffect::Packet(p) => p.ready,
            TxEffect::Interrupt { time, .. } | TxEffect::DmaWrite { time, .. } => *time,
        }
    }
}

macro_rules! tx_counters {
    ($( $(#[$doc:meta])* $name:ident ),* $(,)?) => {
        /// Transmit-side counters (naming as `crate::counters`: `_count` events, `_drops`
        /// discarded stores or packets, `_fails` operations that did not complete, `_bytes`).
        /// Meant to be folded into the device's `Counters`.
        #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
        pub struct TxCounters {
            $( $(#[$doc])* pub $name: u64, )*
        }

        impl TxCounters {
            /// `(name, value)` for every counter, in declaration order.
            pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
                [$( (stringify!($name), self.$name), )*].into_iter()
            }
        }
    };
}

tx_counters! {
    /// PIO stores taken (after 4-byte halves were combined: one per 8-byte qword).
    tx_pio_store_count,
    /// PIO stores of a size or alignment the window does not take (not 4 or a multiple of 8
    /// bytes, misaligned, or past the window): dropped.
    tx_pio_bad_store_drops,
    /// PIO stores to a disabled send context: dropped (the chip's PioWriteBadCtxt; the
    /// global SEND_PIO_ERR_STATUS is not raised).
    tx_pio_disabled_drops,
    /// PIO stores to a halted send context: dropped.
    tx_pio_halted_drops,
    /// Packets sent through PIO.
    tx_pio_packet_count,
    /// Bytes of those packets (LRH .. payload).
    tx_pio_bytes,
    /// Partly written PIO packets discarded by a disable, a depth change, a halt or a PIO init.
    tx_pio_packet_drops,
    /// Send-context errors (one per SEND_CTXT_ERR_STATUS bit event); each halts the context.
    tx_pio_error_count,
    /// Send-context halts.
    tx_pio_halt_count,
    /// PIO packets refused by a SEND_CTXT_CHECK_ENABLE check (PioDisallowedPacket).
    tx_pio_disallowed_count,
    /// Credit returns DMA-written.
    tx_credit_return_count,
    /// Credit returns due while SEND_CTXT_CREDIT_RETURN_ADDR is 0 (not written).
    tx_credit_return_no_addr_count,
    /// SendCredit interrupts raised (SEND_CTXT_CREDIT_CTRL.CreditIntr).
    tx_credit_intr_count,
    /// Send-context error interrupts raised (source 32 + context).
    tx_pio_err_intr_count,
    /// SDMA packets sent.
    tx_sdma_packet_count,
    /// Bytes of those packets (LRH .. payload).
    tx_sdma_bytes,
    /// SDMA descriptors completed.
    tx_sdma_desc_count,
    /// SDMA descriptor or data reads of unbacked memory (each halts the engine,
    /// SDmaMemReadErr).
    tx_sdma_mem_read_fails,
    /// SDMA engine errors that halted the engine (descriptor, ring or memory errors).
    tx_sdma_error_count,
    /// SDMA engine error interrupts raised (source 16 + engine).
    tx_sdma_eng_err_intr_count,
    /// SDMA interrupts raised by INT_REQ descriptors (source 192 + engine).
    tx_sdma_int_req_count,
    /// SDmaProgress interrupts raised (source 208 + engine).
    tx_sdma_progress_intr_count,
    /// SDmaIdle interrupts raised (source 224 + engine).
    tx_sdma_idle_intr_count,
    /// Engine heads DMA-written to SEND_DMA_HEAD_ADDR (HEAD_TO_HOST descriptors).
    tx_sdma_head_writeback_count,
    /// HEAD_TO_HOST completions while SEND_DMA_HEAD_ADDR is 0 (not written).
    tx_sdma_head_no_addr_count,
    /// Packets using AHG header updates (not modelled): the engine halts (SDmaHeaderSelectErr).
    tx_sdma_ahg_unsupported_count,
    /// Writes to read-only transmit CSRs (ignored).
    tx_csr_read_only_write_count,
}

/// Timing of the send side. Integers in picoseconds, cycles and Mb/s so runs are bit-for-bit
/// reproducible; [`TxTiming::functional`] makes every cost 0 (everything happens at the time of
/// the access that caused it, in access order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct TxTiming {
    /// Core clock period: ASIC cclock 805 MHz (`chip.h` ASIC_CCLOCK_PS 1242;
    /// `shared/reference/timing-params.md` §1a "ASIC core clock").
    pub cclock_ps: u64,
    /// Cycles from the last 8-byte store of a PIO packet to its launch towards the link
    /// (**EST**: a few cycles of the PIO-to-egress pipeline; no published figure).
    pub pio_launch_cycles: u64,
    /// Descriptor fetch when an idle engine sees a TAIL write: one PCIe read round trip
    /// (timing-params §1a "PCIe one-way DMA write latency … DMA read round trip ~0.5–0.9 µs",
    /// **EST** 700 ns).
    pub sdma_desc_fetch_ps: u64,
    /// Latency of the engine's first data read of a burst (same source, **EST** 700 ns);
    /// later reads of the burst are pipelined behind it.
    pub pcie_read_latency_ps: u64,
    /// Effective DMA-read bandwidth in Mb/s: Gen3 x16 126 030 Mb/s raw (timing-params §1a
    /// "PCIe") less TLP and completion overhead (§1a "Effective DMA-write bandwidth" gives
    /// 13.9 GB/s for writes; reads get **EST** 13.0 GB/s = 104 000 Mb/s).
    pub dma_read_mbps: u64,
    /// Engine cycles per SDMA packet: header handling and launch (**EST**).
    pub sdma_packet_cycles: u64,
    /// Engine cycles per SDMA descriptor (**EST**).
    pub sdma_desc_cycles: u64,
}

impl Default for TxTiming {
    fn default() -> Self {
        Self {
            cclock_ps: 1242,
            pio_launch_cycles: 16,
            sdma_desc_fetch_ps: 700_000,
            pcie_read_latency_ps: 700_000,
            dma_read_mbps: 104_000,
            sdma_packet_cycles: 32,
            sdma_desc_cycles: 2,
        }
    }
}

impl TxTiming {
    /// Every cost zero.
    pub const fn functional() -> Self {
        Self {
            cclock_ps: 0,
            pio_launch_cycles: 0,
            sdma_desc_fetch_ps: 0,
            pcie_read_latency_ps: 0,
            dma_read_mbps: 0,
            sdma_packet_cycles: 0,
            sdma_desc_cycles: 0,
        }
    }

    /// Picoseconds of `n` cclock cycles.
    pub const fn cycles_ps(&self, n: u64) -> u64 {
        self.cclock_ps.saturating_mul(n)
    }

    /// Picoseconds to DMA-read `bytes` at [`TxTiming::dma_read_mbps`] (0 when the rate is 0).
    pub fn read_ps(&self, bytes: u64) -> u64 {
        if self.dma_read_mbps == 0 {
            return 0;
        }
        // ps = bits / (Mb/s) · 1e6.
        let ps = u128::from(bytes) * 8 * 1_000_000 / u128::from(self.dma_read_mbps);
        u64::try_from(ps).unwrap_or(u64::MAX)
    }

    /// Picoseconds from a PIO packet's last store to its launch.
    pub const fn pio_launch_ps(&self) -> u64 {
        self.cycles_ps(self.pio_launch_cycles)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn functional_timing_is_free() {
        let t = TxTiming::functional();
        assert_eq!(t.read_ps(16383), 0);
        assert_eq!(t.pio_launch_ps(), 0);
        assert_eq!(t.cycles_ps(1000), 0);
    }

    /// 10 KiB at 104 000 Mb/s is ~788 ns; 16 cycles of 805 MHz are ~19.9 ns
    /// (timing-params §1a).
    #[test]
    fn default_timing_arithmetic() {
        let t = TxTiming::default();
        assert_eq!(t.read_ps(10_240), 787_692);
        assert_eq!(t.pio_launch_ps(), 19_872);
        assert_eq!(t.read_ps(u64::MAX), u64::MAX, "saturates");
    }

    #[test]
    fn counters_iterate_in_order() {
        let c = TxCounters { tx_pio_store_count: 3, ..TxCounters::default() };
        let first = c.iter().next();
        assert_eq!(first, Some(("tx_pio_store_count", 3)));
        assert_eq!(c.iter().count(), 27);
    }
}
