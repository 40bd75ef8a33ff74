//! What one study point runs: a receive workload on one in-process [`Node`], measured on the
//! simulated clock.
//!
//! - `stream` (osu_bw-like): messages are received `in_flight` at a time (the sender posts them
//!   all at once, the receiver waits for the whole batch), into buffers chosen by the reuse
//!   plan; bandwidth = payload bytes of the measured messages / simulated time.
//! - `latency` (osu_latency-like, one-way): one message at a time; latency = the sender's launch
//!   cost (host PIO stores + a PCIe crossing + the transmit pipeline, mirrored from the receive
//!   side's parameters: the model has no transmit engine) + the simulated time from the sender's
//!   hand-off to the link until the receiver's poll sees the last RHQ entry + the RHF poll and the
//!   last packet's eager copy.
//!
//! The reuse plan: every message goes, with probability `reuse`, to the next buffer of a ring of
//! `buffers` buffers, otherwise to a buffer never used before (all allocated before timing
//! starts). Before a batch, each message's buffer, if used before, is invalidated with
//! probability `invalidate`: the application frees it and maps new memory at the same address
//! (munmap + mmap, the MMU notifier fires), so cached TIDs of it are stale. All draws come from
//! the point's seed.

use std::sync::Arc;

use mmu::{Va, PAGE_SIZE};
use serde::{Deserialize, Serialize};

use crate::harness::scenario::units::{ByteSize, GIB, MIB};
use crate::harness::scenario::Contiguity;
use crate::world::node::{Node, NodeConfig, NodeError};

/// Which measurement a point makes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pattern {
    /// Windowed streaming (osu_bw-like): bandwidth.
    #[default]
    Stream,
    /// One message at a time (osu_latency-like, one-way): latency.
    Latency,
}

/// The workload of a point (`workload.*` parameters of a study).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
// serde's name stays `Workload`: it appears in error messages (`expected struct Workload`).
#[serde(deny_unknown_fields, default, rename = "Workload")]
pub struct PointWorkload {
    /// `stream` or `latency`.
    pub pattern: Pattern,
    /// Bytes per message, `1..=64MiB`.
    pub message_size: ByteSize,
    /// Measured messages, `1..=100000`.
    pub messages: u32,
    /// Messages received before timing starts (rounded up to whole batches), `0..=100000`.
    pub warmup: u32,
    /// Receives outstanding at once (the osu window), `1..=1024`; latency runs use 1.
    pub in_flight: u32,
    /// Buffers in the reuse ring, `1..=1024`.
    pub buffers: u32,
    /// Probability that a message lands in the ring rather than in a fresh buffer, `0..=1`.
    pub reuse: f64,
    /// Probability that a message's (previously used) buffer is freed and mapped again at the
    /// same address before it is posted, `0..=1`.
    pub invalidate: f64,
    /// Page size backing the buffers: 4 KiB, or 2 MiB (transparent huge pages: physically
    /// contiguous 2 MiB runs, pins charged per huge page).
    pub page_size: ByteSize,
    /// Physical layout of 4 KiB-page buffers (as scenario files: `contiguous`, `scattered`,
    /// `random`, `runs:N`).
    pub contiguity: Contiguity,
    /// Compare every completed payload with what was sent (only in `full` data mode, and only
    /// for messages that had their buffer to themselves).
    pub check_data: bool,
}

impl Default for PointWorkload {
    fn default() -> Self {
        Self {
            pattern: Pattern::Stream,
            message_size: ByteSize(MIB),
            messages: 32,
            warmup: 0,
            in_flight: 1,
            buffers: 1,
            reuse: 1.0,
            invalidate: 0.0,
            page_size: ByteSize(PAGE_SIZE),
            contiguity: Contiguity::Random,
            check_data: true,
        }
    }
}

/// Largest message a point may receive.
pub const MAX_MESSAGE: u64 = 64 * MIB;
/// Most host memory a point may ask for (buffers included).
pub const MAX_MEM_MIB: u64 = 16 * 1024;

impl PointWorkload {
    /// Checks ranges; the error is `(key, message)` with the key relative to `workload`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let range = |key: &str, v: u64, lo: u64, hi: u64| {
            if v < lo || v > hi {
                Err((key.to_string(), format!("{v} is out of range {lo}..={hi}")))
            } else {
                Ok(())
            }
        };
        range("message_size", self.message_size.bytes(), 1, MAX_MESSAGE)?;
        range("messages", u64::from(self.messages), 1, 100_000)?;
        range("warmup", u64::from(self.warmup), 0, 100_000)?;
        range("in_flight", u64::from(self.in_flight), 1, 1024)?;
        range("buffers", u64::from(self.buffers), 1, 1024)?;
        for (key, p) in [("reuse", self.reuse), ("invalidate", self.invalidate)] {
            if !(0.0..=1.0).contains(&p) {
                return Err((key.to_string(), format!("{p} is out of range 0..=1")));
            }
        }
        if self.page_size.bytes() != PAGE_SIZE && self.page_size.bytes() != 2 * MIB {
            return Err((
                "page_size".to_string(),
                format!("{} is not a page size (expected \"4KiB\" or \"2MiB\")", self.page_size),
            ));
        }
        if let Contiguity::Runs(n) = self.contiguity {
            range("contiguity", u64::from(n), 1, 512)?;
        }
        Ok(())
    }

    fn huge(&self) -> bool {
        self.page_size.bytes() == 2 * MIB
    }

    /// Bytes of one buffer: the message size rounded up to the page size.
    pub fn buffer_len(&self) -> u64 {
        self.message_size.bytes().max(1).next_multiple_of(self.page_size.bytes().max(PAGE_SIZE))
    }

    /// Receives outstanding at once in this pattern.
    pub fn batch(&self) -> u32 {
        match self.pattern {
            Pattern::Stream => self.in_flight.max(1),
            Pattern::Latency => 1,
        }
    }

    /// Messages run before timing starts: `warmup` rounded up to whole batches.
    pub fn warmup_messages(&self) -> u32 {
        self.warmup.next_multiple_of(self.batch())
    }
}

/// What a point measured. Every field is a column of `results.csv`; `None` is an empty cell.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Metrics {
    /// Payload bytes of the measured messages per simulated second, GB/s (10^9).
    pub bandwidth_gbps: f64,
    /// Measured messages per simulated microsecond (millions of messages per second).
    pub msg_rate_mps: f64,
    /// Mean one-way latency of a message, µs (latency pattern only).
    pub latency_us: Option<f64>,
    /// Simulated time of the measured part, µs.
    pub sim_us: f64,
    /// Host time charged during the measured part, µs.
    pub host_us: f64,
    /// `host_us / sim_us`.
    pub host_busy: f64,
    /// Share of TIDs found in the user-library cache.
    pub hit_rate: f64,
    /// TID_UPDATE calls.
    pub tid_updates: u64,
    /// TID_FREE calls.
    pub tid_frees: u64,
    /// 4 KiB pages (or 4 KiB parts of huge pages) pinned.
    pub pages_pinned: u64,
    /// DMA maps.
    pub dma_maps: u64,
    /// IOTLB invalidations waited for.
    pub iotlb_invalidations: u64,
    /// TIDs the user library evicted.
    pub evictions: u64,
    /// Window grants postponed because no TID was free (TID pressure).
    pub no_progress: u64,
    /// Buffers invalidated by the workload (munmap + mmap).
    pub invalidations: u64,
    /// Invalidated TIDs the user library processed.
    pub invalidations_processed: u64,
    /// Packets that took a TID error.
    pub tid_errors: u64,
    /// Eager packets dropped because the eager ring was full.
    pub egr_full_drops: u64,
    /// Packets dropped because the RHQ was full.
    pub rhq_full_drops: u64,
    /// Measured messages that did not complete.
    pub failed_messages: u64,
    /// Every checked payload matched (`None`: nothing was checked).
    pub data_ok: Option<bool>,
    /// Expected (TID) RcvArray entries of the receive context.
    pub expected_entries: u64,
    /// Eager RcvArray entries of the receive context.
    pub eager_entries: u64,
}

impl Metrics {
    /// The metric names, in column order.
    pub const NAMES: [&'static str; 23] = [
        "bandwidth_gbps",
        "msg_rate_mps",
        "latency_us",
        "sim_us",
        "host_us",
        "host_busy",
        "hit_rate",
        "tid_updates",
        "tid_frees",
        "pages_pinned",
        "dma_maps",
        "iotlb_invalidations",
        "evictions",
        "no_progress",
        "invalidations",
        "invalidations_processed",
        "tid_errors",
        "egr_full_drops",
        "rhq_full_drops",
        "failed_messages",
        "data_ok",
        "expected_entries",
        "eager_entries",
    ];

    /// The metrics as `(name, JSON value)`, in column order.
    pub fn columns(&self) -> Vec<(&'static str, serde_json::Value)> {
        let map = match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        Self::NAMES
            .iter()
            .map(|&n| (n, map.get(n).cloned().unwrap_or(serde_json::Value::Null)))
            .collect()
    }

    /// Metric `name` as a number (booleans as 0/1; `None` when absent or empty).
    pub fn get(&self, name: &str) -> Option<f64> {
        self.columns().into_iter().find(|(n, _)| *n == name).and_then(|(_, v)| match v {
            serde_json::Value::Number(n) => n.as_f64(),
            serde_json::Value::Bool(b) => Some(f64::from(u8::from(b))),
            _ => None,
        })
    }
}

/// The outcome of a point: metrics and, when asked, the trace.
#[derive(Clone, Debug)]
pub struct PointRun {
    /// The metrics.
    pub metrics: Metrics,
    /// Trace events (with tracing on).
    pub trace: Vec<crate::world::trace::TraceEvent>,
}

/// A small deterministic generator (splitmix64) for the reuse and invalidation draws.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// True with probability `p` (exactly never for 0 and always for 1).
    pub fn chance(&mut self, p: f64) -> bool {
        let u = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        u < p
    }
}

/// Which buffer each message uses: `Ring(i)` or `Fresh(i)` (the i-th fresh buffer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    Ring(usize),
    Fresh(usize),
}

/// The reuse plan of `total` messages.
fn plan(w: &PointWorkload, total: usize, rng: &mut Rng) -> (Vec<Slot>, usize) {
    let mut out = Vec::with_capacity(total);
    let (mut ring, mut fresh) = (0usize, 0usize);
    for _ in 0..total {
        if rng.chance(w.reuse) {
            out.push(Slot::Ring(ring % w.buffers.max(1) as usize));
            ring += 1;
        } else {
            out.push(Slot::Fresh(fresh));
            fresh += 1;
        }
    }
    (out, fresh)
}

/// Why a point could not run.
#[derive(Debug, thiserror::Error)]
pub enum PointError {
    /// The node failed.
    #[error("{0}")]
    Node(#[from] NodeError),
    /// Process memory failed.
    #[error("Process memory failed: {0}")]
    Process(#[from] crate::world::process::ProcessError),
    /// The point needs more memory than allowed.
    #[error("The buffers need {0} MiB of host memory, more than {MAX_MEM_MIB} MiB")]
    TooMuchMemory(u64),
}

/// Runs one point: `node` is the node configuration, `w` the workload, `seed` the draws' seed.
pub fn run_point(
    node: &NodeConfig,
    w: &PointWorkload,
    seed: u64,
    trace: bool,
) -> Result<PointRun, PointError> {
    let warm = w.warmup_messages() as usize;
    let total = warm + w.messages as usize;
    let mut rng = Rng::new(seed);
    let (slots, fresh) = plan(w, total, &mut rng);
    let buf_len = w.buffer_len();
    let nbufs = w.buffers as u64 + fresh as u64;
    let need_mib = (nbufs * buf_len).div_ceil(MIB) + 128 + 64;
    if need_mib > MAX_MEM_MIB {
        return Err(PointError::TooMuchMemory(need_mib));
    }
    let mut cfg = node.clone();
    cfg.trace = trace;
    cfg.mem_mib = cfg.mem_mib.max(need_mib);
    let mut n = Node::new(&cfg)?;
    let contiguity =
        if w.huge() { mmu::Contiguity::Runs { pages: 512 } } else { w.contiguity.to_mmu(seed) };
    n.ledger().borrow_mut().thp = w.huge();
    n.hooks.charge_rhf_polls = true;
    let ring: Vec<Va> =
        (0..w.buffers).map(|_| n.alloc(buf_len, contiguity)).collect::<Result<_, _>>()?;
    let fresh_bufs: Vec<Va> =
        (0..fresh).map(|_| n.alloc(buf_len, contiguity)).collect::<Result<_, _>>()?;
    let va_of = |s: Slot| match s {
        Slot::Ring(i) => ring.get(i).copied(),
        Slot::Fresh(i) => fresh_bufs.get(i).copied(),
    };
    let full_data = cfg.device.data_mode == hfi_model::DataMode::Full;
    let len = w.message_size.bytes();
    let shared: Arc<[u8]> = Arc::from(vec![0x5Au8; len as usize]);
    let mut m = Metrics {
        expected_entries: u64::from(n.rx.ctx.layout.expected_count),
        eager_entries: u64::from(n.rx.ctx.layout.eager_count),
        ..Default::default()
    };
    let mut used = vec![false; w.buffers as usize + fresh];
    let used_index = |s: Slot| match s {
        Slot::Ring(i) => i,
        Slot::Fresh(i) => w.buffers as usize + i,
    };
    let mut start: Option<Start> = None;
    let mut latency_sum_ps = 0u128;
    let mut checked = 0u64;
    let mut mismatches = 0u64;
    let batch = w.batch() as usize;
    let budget_ns = budget_ns(w);
    for (b, chunk) in slots.chunks(batch).enumerate() {
        let first = b * batch;
        if first == warm {
            start = Some(Start::now(&mut n));
        }
        // Invalidations happen before any receive of the batch is posted.
        let mut freed: Vec<Slot> = Vec::new();
        for &s in chunk {
            let (Some(va), Some(u)) = (va_of(s), used.get(used_index(s)).copied()) else {
                continue;
            };
            if u && rng.chance(w.invalidate) && !freed.contains(&s) {
                freed.push(s);
                invalidate(&mut n, va, buf_len, contiguity, first >= warm)?;
                if first >= warm {
                    m.invalidations += 1;
                }
            }
        }
        let mut posted = Vec::with_capacity(chunk.len());
        for (k, &s) in chunk.iter().enumerate() {
            let msg = (first + k) as u32;
            let Some(va) = va_of(s) else { continue };
            if let Some(u) = used.get_mut(used_index(s)) {
                *u = true;
            }
            let alone = chunk.iter().filter(|&&o| o == s).count() == 1;
            let check = w.check_data && full_data && alone;
            let data: Arc<[u8]> = if check {
                Arc::from(hfi_abi::psm::pattern(seed as u32, msg, len as usize))
            } else {
                shared.clone()
            };
            n.hfi.transport().settle();
            let t_post = n.world().now().0;
            n.post(msg, va, data.clone());
            posted.push((msg, va, check.then_some(data), t_post));
        }
        let measured = first >= warm;
        let done = match w.pattern {
            Pattern::Stream => n.run(budget_ns)?,
            Pattern::Latency => {
                let done = n.run(budget_ns)?;
                if let (Some(&(_, _, _, t_post)), true) = (posted.first(), measured) {
                    let t_done = n.world().now().0;
                    latency_sum_ps += u128::from(t_done.saturating_sub(t_post))
                        + u128::from(receive_tail_ps(&cfg, len))
                        + u128::from(sender_launch_ps(&cfg, len));
                }
                done
            }
        };
        for (msg, va, data, _) in posted {
            let ok = done.iter().any(|c| c.msg_id == msg && c.ok);
            if !ok && measured {
                m.failed_messages += 1;
            }
            if let (true, Some(data)) = (ok && measured, data) {
                checked += 1;
                if n.proc.read(va, data.len())? != data[..] {
                    mismatches += 1;
                }
            }
        }
    }
    let start = match start {
        Some(s) => s,
        None => Start::now(&mut n),
    };
    // The end: the last completion, plus host work charged and not yet given to the device.
    let end_ps = n.world().now().0 + n.ledger().borrow().pending_ps();
    let sim_ps = end_ps.saturating_sub(start.time_ps).max(1);
    let measured_bytes = u64::from(w.messages) * len;
    m.sim_us = sim_ps as f64 / 1e6;
    m.bandwidth_gbps = measured_bytes as f64 / (sim_ps as f64 / 1e12) / 1e9;
    m.msg_rate_mps = f64::from(w.messages) / m.sim_us;
    if w.pattern == Pattern::Latency {
        m.latency_us = Some(latency_sum_ps as f64 / f64::from(w.messages.max(1)) / 1e6);
    }
    let l = n.ledger().borrow();
    m.host_us = (l.total_ns - start.host_ns) / 1e3;
    m.host_busy = m.host_us / m.sim_us;
    let work = l.work.since(&start.work);
    drop(l);
    m.pages_pinned = work.pages_pinned + work.thp_pages_pinned;
    m.dma_maps = work.dma_maps;
    m.iotlb_invalidations = work.iotlb_invalidations;
    let s = n.rx.cache.stats();
    let (hits, misses) =
        (s.hits.saturating_sub(start.cache.hits), s.misses.saturating_sub(start.cache.misses));
    m.hit_rate = if hits + misses > 0 { hits as f64 / (hits + misses) as f64 } else { 0.0 };
    m.tid_updates = s.tid_update_calls.saturating_sub(start.cache.tid_update_calls);
    m.tid_frees = s.tid_free_calls.saturating_sub(start.cache.tid_free_calls);
    m.evictions = s.evictions.saturating_sub(start.cache.evictions);
    m.invalidations_processed =
        s.invalidations_processed.saturating_sub(start.cache.invalidations_processed);
    m.no_progress = n.rx.stats.no_progress.saturating_sub(start.no_progress);
    m.tid_errors = n.rx.stats.tid_errors.saturating_sub(start.tid_errors);
    let c = n.world().dev.counters().clone();
    m.egr_full_drops = c.rx_egr_full_drops.saturating_sub(start.egr_full);
    m.rhq_full_drops = c.rx_rhq_full_drops.saturating_sub(start.rhq_full);
    m.data_ok = (checked > 0).then_some(mismatches == 0);
    let trace =
        n.hooks.trace.as_ref().map(crate::world::trace::TraceLog::events).unwrap_or_default();
    n.close()?;
    Ok(PointRun { metrics: m, trace })
}

/// Counters at the start of the measured part.
struct Start {
    time_ps: u64,
    host_ns: f64,
    work: crate::world::host_costs::HostWork,
    cache: driver::user::CacheStats,
    no_progress: u64,
    tid_errors: u64,
    egr_full: u64,
    rhq_full: u64,
}

impl Start {
    fn now(n: &mut Node) -> Start {
        n.hfi.transport().settle();
        let c = n.world().dev.counters().clone();
        let time_ps = n.world().now().0;
        let l = n.ledger().borrow();
        Start {
            time_ps,
            host_ns: l.total_ns,
            work: l.work,
            cache: n.rx.cache.stats(),
            no_progress: n.rx.stats.no_progress,
            tid_errors: n.rx.stats.tid_errors,
            egr_full: c.rx_egr_full_drops,
            rhq_full: c.rx_rhq_full_drops,
        }
    }
}

/// A simulated-time budget for one batch: generous, but bounded so a starved point (no TID
/// can ever be had) ends instead of spinning.
fn budget_ns(w: &PointWorkload) -> u64 {
    let bytes = w.message_size.bytes().saturating_mul(u64::from(w.batch()));
    // 1 GB/s would be ~100x slower than the link; at least 20 ms.
    bytes.saturating_add(20_000_000).min(10 * GIB)
}

/// The application frees `va` and maps new memory at the same address: the MMU notifier fires
/// (charged), then the munmap's own cost.
fn invalidate(
    n: &mut Node,
    va: Va,
    len: u64,
    contiguity: mmu::Contiguity,
    mark: bool,
) -> Result<(), PointError> {
    if mark {
        if let Some(t) = n.hooks.trace.clone() {
            let now = n.world().now().0;
            let args = serde_json::json!({ "va": format!("{:#x}", va.0), "len": len });
            t.instant("fault", "buffer freed and mapped again".into(), now, 0, args);
        }
    }
    n.ledger().borrow_mut().munmap();
    n.munmap(va, len)?;
    n.proc.mmap_fixed(va, len, contiguity)?;
    Ok(())
}

/// Picoseconds of `ns` nanoseconds (rounded).
fn ps(ns: f64) -> u64 {
    (ns * 1000.0).round().max(0.0) as u64
}

/// Bytes of the first packet a sender launches for a message of `len` bytes: PBC + the 56-byte
/// header + the payload of an eager packet (none for a rendezvous request).
fn first_packet_bytes(cfg: &NodeConfig, len: u64) -> u64 {
    let payload =
        if len >= u64::from(cfg.rndv.threshold) { 0 } else { len.min(u64::from(cfg.peer.mtu)) };
    8 + hfi_abi::wire::PSM_PACKET_HDR_BYTES as u64 + payload
}

/// The sender's launch of a message, which the model (receive side only) does not simulate:
/// PIO stores of the first packet in 64-byte blocks (8 WC stores each) and one flush, the
/// store's PCIe crossing (`pcie_write_latency_ps`, the receive side's figure) and the transmit
/// pipeline (`rx_pipeline_cycles`, likewise).
pub fn sender_launch_ps(cfg: &NodeConfig, len: u64) -> u64 {
    let h = &cfg.host;
    let t = &cfg.device.timing;
    let stores = first_packet_bytes(cfg, len).div_ceil(64) * 8;
    ps(stores as f64 * h.wc_store_ns + h.wc_flush_ns)
        + t.pcie_write_latency_ps
        + t.cclocks_ps(t.rx_pipeline_cycles)
}

/// The receiver's work after the last RHQ entry is visible: the RHF poll, and the copy of the
/// last packet's eager payload.
pub fn receive_tail_ps(cfg: &NodeConfig, len: u64) -> u64 {
    let h = &cfg.host;
    let last = if len >= u64::from(cfg.rndv.threshold) || len == 0 {
        0
    } else {
        let mtu = u64::from(cfg.peer.mtu.max(1));
        len - (len - 1) / mtu * mtu
    };
    ps(h.rhf_poll_ns + h.copy_ns(last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_are_the_serialized_fields() {
        let Ok(serde_json::Value::Object(m)) = serde_json::to_value(Metrics::default()) else {
            panic!("metrics serialize to a table");
        };
        let mut keys: Vec<&str> = m.keys().map(String::as_str).collect();
        let mut names = Metrics::NAMES.to_vec();
        keys.sort_unstable();
        names.sort_unstable();
        assert_eq!(keys, names);
        let x = Metrics { bandwidth_gbps: 2.5, data_ok: Some(true), ..Default::default() };
        assert_eq!(x.get("bandwidth_gbps"), Some(2.5));
        assert_eq!(x.get("data_ok"), Some(1.0));
        assert_eq!(x.get("latency_us"), None);
    }

    #[test]
    fn chance_is_exact_at_the_ends() {
        let mut r = Rng::new(3);
        assert!((0..1000).all(|_| !r.chance(0.0) && r.chance(1.0)));
        let hits = (0..10_000).filter(|_| r.chance(0.25)).count();
        assert!((2300..2700).contains(&hits), "{hits}");
    }
}
