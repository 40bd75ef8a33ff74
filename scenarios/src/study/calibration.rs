//! `hfi-sim study calibration`: osu_bw- and osu_latency-like curves of the simulated WFR next
//! to the published OPA figures of `shared/reference/timing-params.md` §2, with the error per
//! point, and an explanation of every point outside its goal, computed from the parameters.
//!
//! - **osu_bw-like**: `stream` workload, 64 messages in flight into one buffer (osu_bw's window
//!   and its single receive buffer), a warm-up window, then `iterations` windows; header-only
//!   data mode (the payload bytes do not change the timing).
//! - **osu_latency-like**: `latency` workload, one-way (see [`super::workload`]: the sender's
//!   launch is costed from the mirrored receive-side parameters, the model has no transmit
//!   engine).
//!
//! Published figures (both NOT-VERIFIED, "commonly quoted", in timing-params §2): large-message
//! bandwidth ≈ 12.3 GB/s (applied to messages of 1 MiB and more), small-message latency ≈ 1 µs
//! (applied to messages of 8 bytes and less). Goals: ±5 % and ±20 %.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{json, Value};

use super::params::{PointConfig, Tree};
use super::plot::{self, Chart, Series, Style};
use super::sweep::{self, Point, PointResult, SweepOptions};
use super::workload::{receive_tail_ps, sender_launch_ps, Metrics};
use crate::harness::scenario::units::ByteSize;
use crate::world::node::NodeConfig;

/// A published figure.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Published {
    /// Benchmark: `osu_bw` or `osu_latency`.
    pub bench: &'static str,
    /// Value.
    pub value: f64,
    /// Unit.
    pub unit: &'static str,
    /// Applies to messages of at least this many bytes …
    pub from: u64,
    /// … and at most this many.
    pub to: u64,
    /// Allowed error, ± percent.
    pub goal_pct: f64,
    /// Where it comes from.
    pub source: &'static str,
}

/// The published figures the calibration compares with.
pub const PUBLISHED: [Published; 2] = [
    Published {
        bench: "osu_bw",
        value: 12.3,
        unit: "GB/s",
        from: 1 << 20,
        to: u64::MAX,
        goal_pct: 5.0,
        source: "timing-params.md §2: osu_bw peak (OPA 100) ~12.3 GB/s, commonly quoted (NOT-VERIFIED)",
    },
    Published {
        bench: "osu_latency",
        value: 1.0,
        unit: "µs",
        from: 0,
        to: 8,
        goal_pct: 20.0,
        source: "timing-params.md §2: MPI 0-byte latency (OPA 100) ~1 µs, commonly quoted (NOT-VERIFIED)",
    },
];

/// Calibration settings.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Message sizes (bytes).
    pub sizes: Vec<u64>,
    /// osu_bw windows measured per size (after one warm-up window).
    pub iterations: u32,
    /// osu_bw window (messages in flight).
    pub window: u32,
    /// osu_latency messages measured per size (after 4 warm-up messages).
    pub latency_messages: u32,
}

impl Settings {
    /// The full curves: 1 B to 4 MiB in powers of two.
    pub fn full() -> Self {
        Self {
            sizes: (0..=22).map(|k| 1u64 << k).collect(),
            iterations: 4,
            window: 64,
            latency_messages: 16,
        }
    }

    /// A quick version (every fourth power of two, fewer iterations), for tests.
    pub fn quick() -> Self {
        Self {
            sizes: vec![1, 8, 1 << 10, 64 << 10, 1 << 20, 4 << 20],
            iterations: 1,
            window: 16,
            latency_messages: 4,
        }
    }
}

/// One row of the calibration table.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// `osu_bw` or `osu_latency`.
    pub bench: &'static str,
    /// Message size in bytes.
    pub size: u64,
    /// Simulated value.
    pub simulated: Option<f64>,
    /// Unit.
    pub unit: &'static str,
    /// Published value, where one applies.
    pub published: Option<f64>,
    /// `(simulated − published) / published`, percent.
    pub error_pct: Option<f64>,
    /// Whether the error is within the goal.
    pub within_goal: Option<bool>,
    /// Why the point failed to run, if it did.
    pub error: Option<String>,
}

/// Where the one-way latency of a small message goes, from the parameters (ns).
#[derive(Clone, Debug, Serialize)]
pub struct LatencyBudget {
    /// Message size.
    pub size: u64,
    /// Sender: PIO stores and flush.
    pub sender_host_ns: f64,
    /// Sender: the store's PCIe crossing and the transmit pipeline.
    pub sender_device_ns: f64,
    /// Wire: serialization, link latency and switch hops.
    pub wire_ns: f64,
    /// Receiver device: pipeline and the PCIe write of the entry.
    pub receive_device_ns: f64,
    /// Receiver host: RHF poll and eager copy.
    pub receive_host_ns: f64,
    /// Simulated minus the sum (queueing, head updates between packets).
    pub other_ns: f64,
    /// Simulated total.
    pub simulated_ns: f64,
}

/// The calibration's outcome.
#[derive(Clone, Debug, Serialize)]
pub struct Calibration {
    /// The table.
    pub rows: Vec<Row>,
    /// Latency budget of the smallest size.
    pub budget: Option<LatencyBudget>,
    /// Sensitivity: the smallest-size latency with the PCIe write latency at the low end of its
    /// estimate (300 ns), and that value.
    pub sensitivity: Option<(u64, f64)>,
    /// Explanations of the misses.
    pub explanations: Vec<String>,
}

/// The PCIe write latency of the sensitivity run: the low end of timing-params' 300–500 ns.
pub const LOW_PCIE_WRITE_PS: u64 = 300_000;

fn bw_point(base: &Tree, s: &Settings, size: u64, index: usize) -> Result<Point, String> {
    let mut t = base.clone();
    let set = |t: &mut Tree, p: &str, v: Value| t.set(p, v).map_err(|e| format!("{p}: {e}"));
    set(&mut t, "workload.pattern", Value::from("stream"))?;
    set(&mut t, "workload.message_size", Value::from(size))?;
    set(&mut t, "workload.in_flight", Value::from(s.window))?;
    set(&mut t, "workload.buffers", Value::from(1))?;
    set(&mut t, "workload.warmup", Value::from(s.window))?;
    set(&mut t, "workload.messages", Value::from(s.window * s.iterations.max(1)))?;
    set(&mut t, "workload.check_data", Value::from(false))?;
    set(&mut t, "device.data_mode", Value::from("header-only"))?;
    let config = t.config()?;
    let params = vec![("bench".into(), Value::from("osu_bw")), ("size".into(), Value::from(size))];
    Ok(Point { index, params, config })
}

fn lat_point(
    base: &Tree,
    s: &Settings,
    size: u64,
    index: usize,
    pcie: Option<u64>,
) -> Result<Point, String> {
    let mut t = base.clone();
    let set = |t: &mut Tree, p: &str, v: Value| t.set(p, v).map_err(|e| format!("{p}: {e}"));
    set(&mut t, "workload.pattern", Value::from("latency"))?;
    set(&mut t, "workload.message_size", Value::from(size))?;
    set(&mut t, "workload.warmup", Value::from(4))?;
    set(&mut t, "workload.messages", Value::from(s.latency_messages.max(1)))?;
    set(&mut t, "workload.buffers", Value::from(1))?;
    if let Some(ps) = pcie {
        set(&mut t, "device.timing.pcie_write_latency_ps", Value::from(ps))?;
    }
    let config = t.config()?;
    let bench = if pcie.is_some() { "osu_latency (sensitivity)" } else { "osu_latency" };
    let params = vec![("bench".into(), Value::from(bench)), ("size".into(), Value::from(size))];
    Ok(Point { index, params, config })
}

/// The points: osu_bw per size, osu_latency per size, and one sensitivity point.
pub fn points(
    s: &Settings,
    overrides: &[(String, Value)],
    seed: Option<u64>,
) -> Result<Vec<Point>, String> {
    let mut base = Tree::of(&PointConfig { seed: seed.unwrap_or(1), ..Default::default() })?;
    for (p, v) in overrides {
        base.set(p, v.clone()).map_err(|e| format!("--set {p}: {e}"))?;
    }
    let mut out = Vec::new();
    for &size in &s.sizes {
        out.push(bw_point(&base, s, size, out.len())?);
    }
    for &size in &s.sizes {
        out.push(lat_point(&base, s, size, out.len(), None)?);
    }
    if let Some(&small) = s.sizes.first() {
        let pcie = base.config()?.node.device.timing.pcie_write_latency_ps;
        if pcie > LOW_PCIE_WRITE_PS {
            out.push(lat_point(&base, s, small, out.len(), Some(LOW_PCIE_WRITE_PS))?);
        }
    }
    Ok(out)
}

fn bench_of(r: &PointResult) -> &str {
    r.point.params.first().and_then(|(_, v)| v.as_str()).unwrap_or("")
}

fn value_of(bench: &str, m: &Metrics) -> Option<f64> {
    if bench == "osu_bw" {
        Some(m.bandwidth_gbps)
    } else {
        m.latency_us
    }
}

/// Builds the table, the latency budget and the explanations from the results.
pub fn evaluate(results: &[PointResult]) -> Calibration {
    let mut rows = Vec::new();
    for r in results.iter().filter(|r| !bench_of(r).contains("sensitivity")) {
        let bench = if bench_of(r) == "osu_bw" { "osu_bw" } else { "osu_latency" };
        let size = r.point.config.workload.message_size.bytes();
        let unit = if bench == "osu_bw" { "GB/s" } else { "µs" };
        let simulated = r.outcome.as_ref().ok().and_then(|m| value_of(bench, m));
        let published =
            PUBLISHED.iter().find(|p| p.bench == bench && (p.from..=p.to).contains(&size));
        let error_pct = match (simulated, published) {
            (Some(s), Some(p)) => Some((s - p.value) / p.value * 100.0),
            _ => None,
        };
        let within_goal = match (error_pct, published) {
            (Some(e), Some(p)) => Some(e.abs() <= p.goal_pct),
            _ => None,
        };
        rows.push(Row {
            bench,
            size,
            simulated,
            unit,
            published: published.map(|p| p.value),
            error_pct,
            within_goal,
            error: r.outcome.as_ref().err().cloned(),
        });
    }
    let first_lat = results.iter().find(|r| bench_of(r) == "osu_latency");
    let budget = first_lat.and_then(|r| {
        let sim = r.outcome.as_ref().ok()?.latency_us? * 1000.0;
        Some(budget(&r.point.config.node, r.point.config.workload.message_size.bytes(), sim))
    });
    let sensitivity = results.iter().find(|r| bench_of(r).contains("sensitivity")).and_then(|r| {
        r.outcome
            .as_ref()
            .ok()?
            .latency_us
            .map(|l| (r.point.config.node.device.timing.pcie_write_latency_ps, l))
    });
    let explanations =
        explain(&rows, budget.as_ref(), sensitivity, first_lat.map(|r| &r.point.config.node));
    Calibration { rows, budget, sensitivity, explanations }
}

/// The latency budget of a `size`-byte message under `cfg`, against the simulated `sim_ns`.
pub fn budget(cfg: &NodeConfig, size: u64, sim_ns: f64) -> LatencyBudget {
    let t = &cfg.device.timing;
    let h = &cfg.host;
    let launch = sender_launch_ps(cfg, size) as f64 / 1000.0;
    let sender_device_ns =
        (t.pcie_write_latency_ps + t.cclocks_ps(t.rx_pipeline_cycles)) as f64 / 1000.0;
    let sender_host_ns = launch - sender_device_ns;
    // The message's packets on the wire: header + payload + ICRC, padded, one by one.
    let mtu = u64::from(cfg.peer.mtu.max(1));
    let eager = size < u64::from(cfg.rndv.threshold);
    let wire_bytes = if eager { size + (size.max(1).div_ceil(mtu)) * (56 + 4) } else { size };
    let wire_ns = (t.link_serialize_ps(wire_bytes) + t.link_fixed_ps()) as f64 / 1000.0;
    let last = size.min(mtu);
    let receive_device_ns =
        (t.pipeline_ps(false) + t.pcie_write_ps(last + 128) + t.pcie_write_latency_ps) as f64
            / 1000.0;
    let receive_host_ns = receive_tail_ps(cfg, size) as f64 / 1000.0;
    let parts = sender_host_ns + sender_device_ns + wire_ns + receive_device_ns + receive_host_ns;
    let _ = h;
    LatencyBudget {
        size,
        sender_host_ns,
        sender_device_ns,
        wire_ns,
        receive_device_ns,
        receive_host_ns,
        other_ns: sim_ns - parts,
        simulated_ns: sim_ns,
    }
}

fn explain(
    rows: &[Row],
    budget: Option<&LatencyBudget>,
    sensitivity: Option<(u64, f64)>,
    cfg: Option<&NodeConfig>,
) -> Vec<String> {
    let mut out = Vec::new();
    let misses = |bench: &str| {
        rows.iter().filter(|r| r.bench == bench && r.within_goal == Some(false)).count()
    };
    let checked =
        |bench: &str| rows.iter().filter(|r| r.bench == bench && r.within_goal.is_some()).count();
    if let Some(cfg) = cfg {
        let t = &cfg.device.timing;
        let mtu = u64::from(cfg.peer.mtu);
        // 56-byte header + 4-byte ICRC per packet, plus the idle/tail flit.
        let per_packet = 56 + 4 + t.link_packet_overhead_bytes;
        let ceiling =
            t.link_signal_mbps as f64 * t.link_ltp_efficiency_ppm as f64 / 1e6 / 8.0 / 1000.0
                * mtu as f64
                / (mtu + per_packet) as f64;
        if checked("osu_bw") > 0 && misses("osu_bw") == 0 {
            out.push(format!(
                "osu_bw: all {} published points within ±5 %. The model is link-bound for large \
                 messages: {} Gb/s of LTP data × {mtu}/({mtu} + {per_packet}) bytes per packet = \
                 {ceiling:.2} GB/s of payload.",
                checked("osu_bw"),
                plot::fmt_num(t.link_signal_mbps as f64 * t.link_ltp_efficiency_ppm as f64 / 1e9),
            ));
        } else if misses("osu_bw") > 0 {
            out.push(format!(
                "osu_bw: {} of {} published points outside ±5 %. The payload ceiling of the link \
                 model is {ceiling:.2} GB/s ({mtu}-byte packets with {per_packet} bytes of \
                 header, ICRC and idle flit each); the difference to the published 12.3 GB/s \
                 comes from the link-rate and per-packet-overhead choices (timing-params §1a) or, \
                 below the ceiling, from the one-window-per-message rendezvous choice (docs/driver.md, \
                 user library).",
                misses("osu_bw"),
                checked("osu_bw")
            ));
        }
    }
    if let (Some(b), Some(cfg)) = (budget, cfg) {
        let lat_checked = checked("osu_latency");
        let lat_misses = misses("osu_latency");
        let pcie_ns = cfg.device.timing.pcie_write_latency_ps as f64 / 1000.0;
        let head = format!(
            "osu_latency ({} B, one-way): {:.0} ns simulated = sender PIO {:.0} + sender PCIe and \
             transmit pipeline {:.0} + wire {:.0} + receive pipeline and PCIe write {:.0} + RHF \
             poll and copy {:.0} + other {:.0}.",
            b.size,
            b.simulated_ns,
            b.sender_host_ns,
            b.sender_device_ns,
            b.wire_ns,
            b.receive_device_ns,
            b.receive_host_ns,
            b.other_ns
        );
        if lat_checked > 0 && lat_misses == 0 {
            out.push(format!("{head} All {lat_checked} published points within ±20 %."));
        } else if lat_misses > 0 {
            // What each of the two PCIe crossings would have to cost to reach the goal's edge.
            let target = 1000.0 * 1.2;
            let needed = pcie_ns - (b.simulated_ns - target) / 2.0;
            let mut s = format!(
                "{head} {lat_misses} of {lat_checked} published points miss ±20 %: the \
                 difference comes from the two PCIe crossings, each costed at \
                 device.timing.pcie_write_latency_ps = {pcie_ns:.0} ns (timing-params §1a: EST \
                 300–500 ns, low-medium confidence; the sender's crossing mirrors the receiver's \
                 because the model has no transmit engine) and from the EST link latency \
                 ({:.0} ns); reaching +20 % needs ≈ {needed:.0} ns per crossing.",
                cfg.device.timing.link_latency_ps as f64 / 1000.0
            );
            if let Some((ps, l)) = sensitivity {
                let _ = write!(
                    s,
                    " With {:.0} ns (the low end of the estimate) the simulated latency is \
                     {:.3} µs ({:+.1} %).",
                    ps as f64 / 1000.0,
                    l,
                    (l - 1.0) * 100.0
                );
            }
            s.push_str(" The published figure itself is NOT-VERIFIED (timing-params §2); the default was not tuned to it.");
            out.push(s);
        }
    }
    out
}

/// Runs the calibration and writes its files into `<out>/calibration/`.
pub fn run(
    s: &Settings,
    out: &Path,
    jobs: usize,
    overrides: &[(String, Value)],
    seed: Option<u64>,
    trace: bool,
    progress: &(dyn Fn(usize, usize, &PointResult) + Sync),
) -> Result<(Calibration, PathBuf), String> {
    let points = points(s, overrides, seed)?;
    let dir = out.join("calibration");
    let opts = SweepOptions { jobs: jobs.max(1), trace_dir: trace.then(|| dir.join("traces")) };
    let results = sweep::run(&points, &opts, progress);
    let cal = evaluate(&results);
    write(&dir, &cal, &results)?;
    Ok((cal, dir))
}

fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.map(|v| format!("{v:.digits$}")).unwrap_or_else(|| "—".into())
}

/// The table as text (also the body of `summary.md`).
pub fn table(cal: &Calibration) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "| benchmark | size | simulated | published | error % | within goal |");
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    for r in &cal.rows {
        let digits = if r.bench == "osu_bw" { 2 } else { 3 };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} |",
            r.bench,
            ByteSize(r.size),
            match (&r.error, r.simulated) {
                (Some(e), _) => format!("error: {e}"),
                (None, v) => format!("{} {}", fmt_opt(v, digits), r.unit),
            },
            r.published.map(|p| format!("{p} {}", r.unit)).unwrap_or_else(|| "—".into()),
            r.error_pct.map(|e| format!("{e:+.1}")).unwrap_or_else(|| "—".into()),
            match r.within_goal {
                Some(true) => "yes",
                Some(false) => "no",
                None => "—",
            }
        );
    }
    s
}

fn write(dir: &Path, cal: &Calibration, results: &[PointResult]) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let put = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).map_err(|e| format!("cannot write {}: {e}", p.display()))
    };
    let mut csv =
        String::from("benchmark,size,simulated,unit,published,error_pct,within_goal,error\n");
    for r in &cal.rows {
        let num = |v: Option<f64>| v.map(|v| Value::from(v).to_string()).unwrap_or_default();
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{},{},{}",
            r.bench,
            r.size,
            num(r.simulated),
            r.unit,
            num(r.published),
            num(r.error_pct),
            r.within_goal.map(|b| b.to_string()).unwrap_or_default(),
            super::output::csv_cell(r.error.as_deref().unwrap_or(""))
        );
    }
    put("results.csv", csv.as_bytes())?;
    let metrics: Vec<Value> = results
        .iter()
        .map(|r| {
            let m = r.outcome.as_ref().ok().map(|m| {
                m.columns().into_iter().map(|(k, v)| (k.to_string(), v)).collect::<serde_json::Map<_, _>>()
            });
            json!({ "bench": bench_of(r), "size": r.point.config.workload.message_size.bytes(), "metrics": m, "error": r.outcome.as_ref().err() })
        })
        .collect();
    let doc = json!({ "published": PUBLISHED, "calibration": cal, "points": metrics });
    put("results.json", serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?.as_bytes())?;
    for (bench, name, title, y_label, y_log) in [
        (
            "osu_bw",
            "bandwidth",
            "osu_bw-like bandwidth (window 64, one buffer)",
            "bandwidth (GB/s)",
            false,
        ),
        ("osu_latency", "latency", "osu_latency-like one-way latency", "latency (µs)", true),
    ] {
        let sim: Vec<(f64, f64)> = cal
            .rows
            .iter()
            .filter(|r| r.bench == bench)
            .filter_map(|r| Some((r.size as f64, r.simulated?)))
            .collect();
        let publ: Vec<(f64, f64)> = cal
            .rows
            .iter()
            .filter(|r| r.bench == bench)
            .filter_map(|r| Some((r.size as f64, r.published?)))
            .collect();
        let mut series =
            vec![Series { name: "simulated WFR".into(), points: sim, style: Style::Line }];
        if !publ.is_empty() {
            series.push(Series {
                name: "published OPA".into(),
                points: publ,
                style: Style::Markers,
            });
        }
        let c = Chart {
            title: title.into(),
            x_label: "message size".into(),
            y_label: y_label.into(),
            x_log: true,
            y_log,
            x_bytes: true,
            x_categories: None,
            series,
        };
        put(&format!("{name}.svg"), c.svg()?.as_bytes())?;
        put(&format!("{name}.png"), &c.png()?)?;
    }
    put("summary.md", summary(cal).as_bytes())
}

/// `summary.md`.
pub fn summary(cal: &Calibration) -> String {
    let mut s = String::from("# Calibration against published OPA figures\n\n");
    s.push_str(
        "osu_bw-like: 64 messages in flight into one buffer, per size; osu_latency-like: one \
         message at a time, one-way. Published figures and goals:\n\n",
    );
    for p in PUBLISHED {
        let range = if p.to == u64::MAX {
            format!("messages ≥ {}", ByteSize(p.from))
        } else {
            format!("messages ≤ {} B", p.to)
        };
        let _ = writeln!(
            s,
            "- {}: {} {} for {range}, goal ±{} % — {}",
            p.bench, p.value, p.unit, p.goal_pct, p.source
        );
    }
    s.push('\n');
    s.push_str(&table(cal));
    s.push_str("\n## Explanation\n\n");
    for e in &cal.explanations {
        let _ = writeln!(s, "- {e}");
    }
    s
}
