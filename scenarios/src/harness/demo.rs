//! `hfi-sim demo`: buffer reuse (osu_bw-like: many receives into a few buffers) under
//! `nocache`, `seed` and `v2023`, plus a buffer freed while its transfer is in flight. Every
//! completed payload is checked byte for byte against what the remote peer sent.

use std::sync::Arc;

use driver::Policy;
use mmu::{Contiguity, Va};
use serde::Serialize;

use crate::world::node::{Node, NodeConfig, NodeError};

/// Demo parameters.
#[derive(Clone, Debug, Serialize)]
pub struct DemoConfig {
    /// Message sizes (bytes), each sent `repeats` times.
    pub sizes: Vec<u64>,
    /// Messages per size.
    pub repeats: u32,
    /// Receive buffers reused round-robin (also the number of messages in flight).
    pub buffers: u32,
    /// Seed for buffer layout and payload bytes.
    pub seed: u64,
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self {
            sizes: vec![64 << 10, 256 << 10, 1 << 20, 4 << 20],
            repeats: 16,
            buffers: 4,
            seed: 1,
        }
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

fn payload(seed: u64, msg: u32, len: u64) -> Arc<[u8]> {
    Arc::from(hfi_abi::psm::pattern(seed as u32, msg, len as usize))
}

fn finish(node: &mut Node, mut row: DemoRow, t0: u64) -> Result<DemoRow, NodeError> {
    let t1 = node.now_ps();
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
    Ok(row)
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
    let node_cfg = NodeConfig { policy, ..Default::default() };
    let mut node = Node::new(&node_cfg)?;
    let max = cfg.sizes.iter().copied().max().unwrap_or(1 << 20);
    let bufs: Vec<Va> = (0..cfg.buffers)
        .map(|i| node.alloc(max, Contiguity::Random { seed: cfg.seed + u64::from(i) }))
        .collect::<Result<_, _>>()?;
    let mut row = empty_row(policy, name);
    let t0 = node.now_ps();
    let mut msg = 0u32;
    for &size in &cfg.sizes {
        for batch in 0..cfg.repeats.div_ceil(cfg.buffers) {
            let mut sent = Vec::new();
            for (b, &va) in bufs.iter().enumerate() {
                if batch * cfg.buffers + b as u32 >= cfg.repeats {
                    break;
                }
                // The receiver asks for the message through the device (a send request through
                // PIO); the remote sends the agreed pattern.
                let data = payload(cfg.seed, msg, size);
                node.request(msg, va, size as u32, cfg.seed as u32)?;
                sent.push((msg, va, data));
                msg += 1;
            }
            let done = node.run(10_000_000)?;
            for (id, va, data) in sent {
                match done.iter().find(|c| c.msg_id == id) {
                    Some(c) if c.ok => {
                        row.messages += 1;
                        row.bytes += data.len() as u64;
                        let same = node.proc.read(va, data.len())? == data[..];
                        row.data_ok = Some(row.data_ok.unwrap_or(true) && same);
                    }
                    Some(c) => row.failed.push(format!("msg {id}: {}", c.reason)),
                    None => row.failed.push(format!("msg {id}: did not complete")),
                }
            }
        }
    }
    finish(&mut node, row, t0)
}

/// A 2 MiB message whose buffer the application frees (munmap) after two windows landed.
pub fn run_free_in_flight(policy: Policy, cfg: &DemoConfig) -> Result<DemoRow, NodeError> {
    let node_cfg = NodeConfig { policy, ..Default::default() };
    let mut node = Node::new(&node_cfg)?;
    let len = 2u64 << 20;
    let va = node.alloc(len, Contiguity::Contiguous)?;
    let mut row = empty_row(policy, "free-in-flight");
    let t0 = node.now_ps();
    node.request(7, va, len as u32, cfg.seed as u32)?;
    let mut done = Vec::new();
    while node.rx.stats.windows < 2 && node.rx.pending() > 0 {
        done.extend(node.progress()?);
        node.wait(500)?;
    }
    // The next window is granted and partly on the wire: free the buffer now.
    for _ in 0..4 {
        done.extend(node.progress()?);
        node.wait(500)?;
    }
    node.munmap(va, len)?;
    done.extend(node.run(10_000_000)?);
    // Whatever happened, the buffer is gone: nothing to compare byte for byte.
    match done.iter().find(|c| c.msg_id == 7) {
        Some(c) if c.ok => {
            row.messages = 1;
            row.bytes = c.bytes;
            row.failed.push("completed into pages the application had freed".into());
        }
        Some(c) => row.failed.push(c.reason.clone()),
        None => row.failed.push("did not complete".into()),
    }
    finish(&mut node, row, t0)
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
