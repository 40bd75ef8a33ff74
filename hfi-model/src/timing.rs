//! Timing model: *when* things happen. The functional engine decides *what* happens.
//!
//! Three FIFO resources are modelled, each as the time it becomes free: the link (serialization
//! at the LTP-framed data rate), the receive pipeline (cclock cycles per packet plus an RcvArray
//! lookup for expected packets) and the PCIe write channel (TLP-framed bytes at the Gen3 x16
//! rate). A packet's DMA completes when it has passed all three plus the fixed latencies.
//! Every parameter, its default and its source are listed in `docs/timing.md`.

use serde::{Deserialize, Serialize};

use crate::time::SimTime;

/// Every timing parameter of the device model. All values are integers (picoseconds, bytes,
/// cycles, parts per million) so runs are bit-for-bit reproducible.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimingParams {
    /// Link signalling rate in Mb/s (4 lanes × 25.78125 Gb/s).
    pub link_signal_mbps: u64,
    /// LTP efficiency in parts per million (1024 data bits per 1056-bit LTP).
    pub link_ltp_efficiency_ppm: u64,
    /// Per-packet bytes on the wire beyond LRH..ICRC (idle/tail flit; EST).
    pub link_packet_overhead_bytes: u64,
    /// Fixed one-way latency of the link: SerDes, LCB and cable (EST).
    pub link_latency_ps: u64,
    /// Switch hops between peer and receiver.
    pub switch_hops: u64,
    /// Latency of one switch hop (Dell 2016: 100–110 ns).
    pub switch_hop_latency_ps: u64,
    /// Core clock period (ASIC cclock 805 MHz).
    pub cclock_ps: u64,
    /// Receive-pipeline cycles per packet: header parse, context and KDETH checks (EST).
    pub rx_pipeline_cycles: u64,
    /// Extra cycles for the RcvArray lookup of an expected packet (EST).
    pub rcvarray_lookup_cycles: u64,
    /// PCIe raw data rate per direction in Mb/s (Gen3 x16: 8 GT/s × 16 × 128/130).
    pub pcie_mbps: u64,
    /// PCIe max payload size (bytes per TLP).
    pub pcie_mps_bytes: u64,
    /// Per-TLP overhead: header, framing, sequence number, LCRC.
    pub pcie_tlp_overhead_bytes: u64,
    /// DLLP (ACK/flow-control) overhead in parts per million of link time (EST ~3 %).
    pub pcie_dllp_overhead_ppm: u64,
    /// Device → host-memory write latency (EST 300–500 ns).
    pub pcie_write_latency_ps: u64,
}

impl Default for TimingParams {
    fn default() -> Self {
        Self {
            link_signal_mbps: 103_125,
            link_ltp_efficiency_ppm: 969_697,
            link_packet_overhead_bytes: 8,
            link_latency_ps: 150_000,
            switch_hops: 1,
            switch_hop_latency_ps: 105_000,
            cclock_ps: 1242,
            rx_pipeline_cycles: 8,
            rcvarray_lookup_cycles: 2,
            pcie_mbps: 126_030,
            pcie_mps_bytes: 256,
            pcie_tlp_overhead_bytes: 24,
            pcie_dllp_overhead_ppm: 30_000,
            pcie_write_latency_ps: 400_000,
        }
    }
}

impl TimingParams {
    /// The zero-latency functional mode: every cost is 0, so everything happens at the time it
    /// is injected (in injection order).
    pub fn functional() -> Self {
        Self {
            link_signal_mbps: 0,
            link_ltp_efficiency_ppm: 0,
            link_packet_overhead_bytes: 0,
            link_latency_ps: 0,
            switch_hops: 0,
            switch_hop_latency_ps: 0,
            cclock_ps: 0,
            rx_pipeline_cycles: 0,
            rcvarray_lookup_cycles: 0,
            pcie_mbps: 0,
            pcie_mps_bytes: 256,
            pcie_tlp_overhead_bytes: 0,
            pcie_dllp_overhead_ppm: 0,
            pcie_write_latency_ps: 0,
        }
    }

    /// True when every cost is zero.
    pub fn is_functional(&self) -> bool {
        self.link_signal_mbps == 0 && self.pcie_mbps == 0 && self.cclock_ps == 0
    }

    /// Picoseconds to serialize `bytes` on a channel of `mbps` megabits/s with efficiency `ppm`.
    /// A rate of 0 means "free".
    fn serialize_ps(bytes: u64, mbps: u64, efficiency_ppm: u64) -> u64 {
        if mbps == 0 || efficiency_ppm == 0 {
            return 0;
        }
        // ps = bits / (Mb/s) * 1e6, then divided by the efficiency.
        let bits = u128::from(bytes) * 8;
        let ps = bits * 1_000_000 * 1_000_000 / (u128::from(mbps) * u128::from(efficiency_ppm));
        u64::try_from(ps).unwrap_or(u64::MAX)
    }

    /// Link serialization time of a packet of `wire_bytes` (LRH..ICRC).
    pub fn link_serialize_ps(&self, wire_bytes: u64) -> u64 {
        Self::serialize_ps(
            wire_bytes + self.link_packet_overhead_bytes,
            self.link_signal_mbps,
            self.link_ltp_efficiency_ppm,
        )
    }

    /// Fixed link latency including switch hops.
    pub fn link_fixed_ps(&self) -> u64 {
        self.link_latency_ps + self.switch_hops * self.switch_hop_latency_ps
    }

    /// Receive pipeline occupancy of one packet.
    pub fn pipeline_ps(&self, expected: bool) -> u64 {
        let cycles =
            self.rx_pipeline_cycles + if expected { self.rcvarray_lookup_cycles } else { 0 };
        cycles * self.cclock_ps
    }

    /// PCIe write-channel occupancy of one DMA write of `bytes` (split into MPS-sized TLPs).
    pub fn pcie_write_ps(&self, bytes: u64) -> u64 {
        if bytes == 0 {
            return 0;
        }
        let mps = self.pcie_mps_bytes.max(1);
        let tlps = bytes.div_ceil(mps);
        let framed = bytes + tlps * self.pcie_tlp_overhead_bytes;
        let eff = 1_000_000u64.saturating_sub(self.pcie_dllp_overhead_ppm);
        Self::serialize_ps(framed, self.pcie_mbps, eff)
    }

    /// Duration of `cycles` core clocks.
    pub fn cclocks_ps(&self, cycles: u64) -> u64 {
        cycles.saturating_mul(self.cclock_ps)
    }
}

/// Picoseconds per byte as a 32.32 fixed-point number, so the per-packet path multiplies
/// instead of dividing. Exact to < 1 ps per 4 GiB.
fn rate_q32(mbps: u64, efficiency_ppm: u64) -> u64 {
    if mbps == 0 || efficiency_ppm == 0 {
        return 0;
    }
    let q = (8u128 << 32) * 1_000_000 * 1_000_000 / (u128::from(mbps) * u128::from(efficiency_ppm));
    u64::try_from(q).unwrap_or(u64::MAX)
}

fn apply_q32(bytes: u64, q: u64) -> u64 {
    u64::try_from((u128::from(bytes) * u128::from(q)) >> 32).unwrap_or(u64::MAX)
}

/// The state of the three FIFO resources.
#[derive(Clone, Debug, Default)]
pub struct TimingModel {
    /// Parameters.
    pub params: TimingParams,
    link_q32: u64,
    pcie_q32: u64,
    link_fixed: u64,
    link_free: SimTime,
    pipe_free: SimTime,
    pcie_free: SimTime,
}

impl TimingModel {
    /// A model with all resources free at time zero.
    pub fn new(params: TimingParams) -> Self {
        let link_q32 = rate_q32(params.link_signal_mbps, params.link_ltp_efficiency_ppm);
        let pcie_eff = 1_000_000u64.saturating_sub(params.pcie_dllp_overhead_ppm);
        let pcie_q32 = rate_q32(params.pcie_mbps, pcie_eff);
        let link_fixed = params.link_fixed_ps();
        Self { params, link_q32, pcie_q32, link_fixed, ..Default::default() }
    }

    /// A packet of `wire_bytes` handed to the link at `now`: returns when its last byte arrives
    /// at the receiver's port.
    pub fn link_arrival(&mut self, now: SimTime, wire_bytes: u64) -> SimTime {
        let start = now.max(self.link_free);
        let ser = apply_q32(wire_bytes + self.params.link_packet_overhead_bytes, self.link_q32);
        self.link_free = start.plus(ser);
        self.link_free.plus(self.link_fixed)
    }

    /// When the pipeline has processed a packet that arrived at `arrival`.
    pub fn pipeline_done(&mut self, arrival: SimTime, expected: bool) -> SimTime {
        let start = arrival.max(self.pipe_free);
        self.pipe_free = start.plus(self.params.pipeline_ps(expected));
        self.pipe_free
    }

    /// When a sequence of DMA writes (sizes in bytes) issued at `ready` is visible in memory.
    pub fn dma_done(&mut self, ready: SimTime, writes: &[u64]) -> SimTime {
        let start = ready.max(self.pcie_free);
        let mps = self.params.pcie_mps_bytes.max(1);
        let oh = self.params.pcie_tlp_overhead_bytes;
        let framed: u64 =
            writes.iter().filter(|&&b| b > 0).map(|&b| b + b.div_ceil(mps) * oh).sum();
        let busy = apply_q32(framed, self.pcie_q32);
        self.pcie_free = start.plus(busy);
        self.pcie_free.plus(self.params.pcie_write_latency_ps)
    }

    /// Forget all occupancy (device reset).
    pub fn reset(&mut self) {
        self.link_free = SimTime::ZERO;
        self.pipe_free = SimTime::ZERO;
        self.pcie_free = SimTime::ZERO;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_rate_is_100_gbps_of_data() {
        let p = TimingParams::default();
        // 12_500 bytes at 100 Gb/s of data = 1 µs, minus the per-packet overhead bytes.
        let ps = p.link_serialize_ps(12_500 - p.link_packet_overhead_bytes);
        assert!((999_000..=1_001_000).contains(&ps), "{ps}");
    }

    #[test]
    fn pcie_mps_framing() {
        let p = TimingParams::default();
        // 8 KiB = 32 TLPs of 256 B: 8192 + 32*24 bytes at 126.03 Gb/s / 0.97.
        let ps = p.pcie_write_ps(8192);
        let expect = (8192.0 + 32.0 * 24.0) * 8.0 / 126.03e9 / 0.97 * 1e12;
        assert!((ps as f64 - expect).abs() < 2.0, "{ps} vs {expect}");
        assert_eq!(p.pcie_write_ps(0), 0);
    }

    #[test]
    fn functional_mode_is_free() {
        let mut m = TimingModel::new(TimingParams::functional());
        let t = SimTime(1234);
        assert_eq!(m.link_arrival(t, 10_000), t);
        assert_eq!(m.pipeline_done(t, true), t);
        assert_eq!(m.dma_done(t, &[8192, 128, 8]), t);
    }

    #[test]
    fn fifo_resources_serialize_back_to_back() {
        let mut m = TimingModel::new(TimingParams::default());
        let a = m.link_arrival(SimTime::ZERO, 8248);
        let b = m.link_arrival(SimTime::ZERO, 8248);
        let ser = m.params.link_serialize_ps(8248);
        assert!(b.since(a).abs_diff(ser) <= 1);
        let d1 = m.dma_done(a, &[8192]);
        let d2 = m.dma_done(a, &[8192]);
        assert!(d2.since(d1).abs_diff(m.params.pcie_write_ps(8192)) <= 1);
    }
}
