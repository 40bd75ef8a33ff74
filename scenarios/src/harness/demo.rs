//! `hfi-sim demo`: the demo workload ([`driver::endpoint::demo`]: buffer reuse,
//! osu_bw-like, and a buffer freed while its transfer is in flight) on an in-process [`Node`]
//! under `nocache`, `seed` and `v2023`. Every completed payload is checked byte for byte
//! against what the remote peer sent; the DMA oracle counts device writes into freed pages.

use driver::endpoint::demo::{self as workload, DemoPacing, DemoProcess, Tally};
use driver::endpoint::{Endpoint, EndpointHooks};
use driver::transport::Transport;
use driver::Policy;
use mmu::{Contiguity, Va};
use serde::Serialize;

use crate::world::node::{apply_mem_op, Node, NodeConfig, NodeError};
use crate::world::process::{MemOp, Process};

pub use driver::endpoint::demo::DemoConfig;

/// The demo's pacing on the simulated clock: 10 ms per receive loop; while the freed message's
/// windows land, 500 ns between rounds and four more rounds before the munmap.
pub const PACING: DemoPacing = DemoPacing {
    run_budget_ns: 10_000_000,
    windows_budget_ns: u64::MAX,
    pause_ns: Some(500),
    settle_rounds: 4,
    notice_ms: 0,
};

impl DemoProcess for Process {
    type Error = NodeError;
    fn alloc(&mut self, len: u64, layout: Contiguity) -> Result<u64, NodeError> {
        Ok(self.mmap(len, layout)?.0)
    }
    fn holds(&self, va: u64, data: &[u8]) -> Result<bool, NodeError> {
        Ok(self.read(Va(va), data.len())? == data)
    }
    fn free<T: Transport, H: EndpointHooks>(
        ep: &mut Endpoint<T, Self, H>,
        va: u64,
        len: u64,
        _notice_ms: u64,
    ) -> Result<usize, NodeError> {
        apply_mem_op(ep, Va(va), len, MemOp::Munmap)
    }
}

/// One row of the demo table.
#[derive(Clone, Debug, Serialize)]
pub struct DemoRow {
    /// Caching policy.
    pub policy: &'static str,
    /// Workload name.
    pub workload: String,
    /// Messages received.
    pub messages: u64,
    /// Payload bytes.
    pub bytes: u64,
    /// Simulated time in microseconds.
    pub sim_us: f64,
    /// Simulated receive bandwidth in GB/s.
    pub gbps: f64,
    /// TID_UPDATE ioctls.
    pub tid_updates: u64,
    /// User-library cache hit rate (TIDs found / TIDs used).
    pub hit_rate: f64,
    /// Peak pinned pages.
    pub pinned_peak: i64,
    /// Invalidations processed by the user library.
    pub invalidations: u64,
    /// Device writes into freed-but-pinned pages.
    pub dma_to_freed_pinned: u64,
    /// Device writes into free pages (use after free).
    pub dma_to_free: u64,
    /// Expected packets with TID errors.
    pub tid_errors: u64,
    /// Messages failed (and why).
    pub failed: Vec<String>,
    /// Every completed payload matched (`None` when there is nothing to compare).
    pub data_ok: Option<bool>,
    /// Pins, TIDs and RcvArray entries all released at teardown.
    pub teardown_clean: bool,
}

fn finish(node: &mut Node, t: Tally, row: &mut DemoRow) -> Result<(), NodeError> {
    let (t0, t1) = (t.start_ns.saturating_mul(1000), node.now_ps());
    row.messages = t.messages;
    row.bytes = t.bytes;
    row.failed = t.failed;
    row.data_ok = t.data_ok;
    row.sim_us = (t1 - t0) as f64 / 1e6;
    row.gbps = if t1 > t0 { row.bytes as f64 / ((t1 - t0) as f64 / 1e12) / 1e9 } else { 0.0 };
    let s = node.rx.cache.stats();
    row.tid_updates = s.tid_update_calls;
    row.hit_rate =
        if s.hits + s.misses > 0 { s.hits as f64 / (s.hits + s.misses) as f64 } else { 0.0 };
    row.invalidations = s.invalidations_processed;
    row.pinned_peak = node.proc.pinned_peak;
    row.tid_errors = node.rx.stats.tid_errors;
    let d = node.dma.as_ref().map(|d| *d.borrow()).unwrap_or_default();
    row.dma_to_freed_pinned = d.to_orphan;
    row.dma_to_free = d.to_free;
    node.close()?;
    row.teardown_clean = node.teardown_report().is_clean();
    Ok(())
}

fn empty_row(policy: Policy, workload: &str) -> DemoRow {
    DemoRow {
        policy: policy.name(),
        workload: workload.into(),
        messages: 0,
        bytes: 0,
        sim_us: 0.0,
        gbps: 0.0,
        tid_updates: 0,
        hit_rate: 0.0,
        pinned_peak: 0,
        invalidations: 0,
        dma_to_freed_pinned: 0,
        dma_to_free: 0,
        tid_errors: 0,
        failed: vec![],
        data_ok: None,
        teardown_clean: false,
    }
}

/// Buffer reuse: `repeats` messages of each size into `buffers` buffers, round-robin,
/// `buffers` messages in flight.
pub fn run_reuse(policy: Policy, cfg: &DemoConfig) -> Result<DemoRow, NodeError> {
    run_reuse_named(policy, cfg, "reuse")
}

fn run_reuse_named(policy: Policy, cfg: &DemoConfig, name: &str) -> Result<DemoRow, NodeError> {
    let mut node = Node::new(&NodeConfig { policy, ..Default::default() })?;
    let t = workload::reuse(&mut node.ep, cfg, &PACING)?;
    let mut row = empty_row(policy, name);
    finish(&mut node, t, &mut row)?;
    Ok(row)
}

/// A 2 MiB message whose buffer the application frees (munmap) after two windows landed.
pub fn run_free_in_flight(policy: Policy, cfg: &DemoConfig) -> Result<DemoRow, NodeError> {
    let mut node = Node::new(&NodeConfig { policy, ..Default::default() })?;
    let t = workload::free_in_flight(&mut node.ep, cfg, &PACING)?;
    let mut row = empty_row(policy, "free-in-flight");
    finish(&mut node, t, &mut row)?;
    Ok(row)
}

/// Runs the whole demo.
pub fn run(cfg: &DemoConfig) -> Result<Vec<DemoRow>, NodeError> {
    let mut rows = Vec::new();
    for p in Policy::ALL {
        rows.push(run_reuse(p, cfg)?);
    }
    let single = DemoConfig { buffers: 1, repeats: cfg.repeats.div_ceil(2), ..cfg.clone() };
    for p in Policy::ALL {
        rows.push(run_reuse_named(p, &single, "reuse-1")?);
    }
    for p in Policy::ALL {
        rows.push(run_free_in_flight(p, cfg)?);
    }
    Ok(rows)
}

/// The table as text.
pub fn table(rows: &[DemoRow]) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "{:<8} {:<15} {:>5} {:>8} {:>10} {:>7} {:>8} {:>6} {:>8} {:>6} {:>8} {:>7} {:>7} {:<6} {:<8}\n",
        "policy", "workload", "msgs", "MiB", "sim_us", "GB/s", "TID_UPD", "hit%", "pin_peak", "inval",
        "dma>frd", "dma>free", "tid_err", "data", "teardown"
    ));
    for r in rows {
        s.push_str(&format!(
            "{:<8} {:<15} {:>5} {:>8.1} {:>10.1} {:>7.2} {:>8} {:>6.1} {:>8} {:>6} {:>8} {:>7} {:>7} {:<6} {:<8}\n",
            r.policy,
            r.workload,
            r.messages,
            r.bytes as f64 / (1 << 20) as f64,
            r.sim_us,
            r.gbps,
            r.tid_updates,
            r.hit_rate * 100.0,
            r.pinned_peak,
            r.invalidations,
            r.dma_to_freed_pinned,
            r.dma_to_free,
            r.tid_errors,
            match r.data_ok {
                Some(true) => "OK",
                Some(false) => "FAIL",
                None => "n/a",
            },
            if r.teardown_clean { "clean" } else { "LEAK" },
        ));
        for f in &r.failed {
            s.push_str(&format!("         note: {f}\n"));
        }
    }
    s
}
