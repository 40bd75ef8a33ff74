//! What-if studies (`hfi-sim study <file.toml> [--out DIR]`): sweep any set of parameters of a
//! node and its workload, run the points in parallel, and write `results.csv`,
//! `results.json`, one SVG and one PNG per plot and `summary.md` into `<out>/<study name>/`
//! (plus `traces/<point>.json` with `--trace`). `hfi-sim study calibration` runs the built-in
//! calibration against published OPA figures ([`calibration`]).
//!
//! # Study files
//!
//! ```toml
//! name = "caching-vs-reuse"          # [a-z0-9-]+, the output directory
//! description = "free text for the summary"
//! seed = 1                           # every point's seed (default 1), unless an axis sets `seed`
//!
//! [base]                             # parameters every point starts from
//! device.data_mode = "header-only"   # dotted keys or nested tables: the parameter paths
//! workload.message_size = "256KiB"
//!
//! [[axis]]                           # points = the cartesian product of the axes
//! param = "workload.reuse"
//! values = [0.0, 0.5, 1.0]           # or: range = { from = 1, to = 64, factor = 2 }
//! label = "buffer reuse ratio"       #     or: range = { from = 0, to = 1, step = 0.25 }
//!
//! [[axis]]
//! param = "policy"
//! values = ["nocache", "v2023"]
//!
//! [[plot]]
//! name = "bandwidth"                 # bandwidth.svg and bandwidth.png
//! x = "workload.reuse"               # a swept parameter or a metric
//! y = "bandwidth_gbps"               # a metric
//! series = "policy"                  # optional: one line per value of this swept parameter
//! title = "…"                        # optional; also x_label, y_label, x_log, y_log
//! ```
//!
//! Every key is checked; a bad file gives one line `file:line: key: message`, as scenario
//! files do. Parameter paths are those of [`params::PointConfig`] (any field of the node
//! configuration — `policy`, `device.*`, `device.timing.*`, `peer.*`, `ctxt.*`, `rndv.*`,
//! `host.*`, `mem_mib`, `memlock`, `cache_size_mb`, `tid_cache_entries`,
//! `tid_cache_eviction` — and of the workload, `workload.*`, plus `seed`); each axis value is
//! checked against the base when the file is loaded. Every swept parameter with more than one
//! value must be a plot's `x` or `series` (when `x` is a metric, one other swept parameter may
//! drive it). Metrics: [`workload::Metrics::NAMES`].
//!
//! The command line can override base parameters (`--set path=value`, the value in TOML
//! syntax: `--set host.iommu=strict`, `--set workload.messages=8`) and the seed (`--seed N`).

pub mod calibration;
pub mod font;
pub mod output;
pub mod params;
pub mod plot;
pub mod point_trace;
pub mod spec;
pub mod sweep;
pub mod workload;

use std::path::PathBuf;

use serde_json::Value;

pub use spec::{load_file, parse_str, Study};
pub use sweep::{Point, PointResult};

/// How to run a study.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Output root: files go to `<out>/<study name>/`.
    pub out: PathBuf,
    /// Worker threads.
    pub jobs: usize,
    /// Write a trace per point.
    pub trace: bool,
    /// Replaces the study's seed.
    pub seed: Option<u64>,
    /// `--set` overrides, applied after the base.
    pub overrides: Vec<(String, Value)>,
}

/// What a study run produced.
#[derive(Clone, Debug)]
pub struct Report {
    /// The study.
    pub study: Study,
    /// Every point's result, in point order.
    pub results: Vec<PointResult>,
    /// Where the files are.
    pub dir: PathBuf,
    /// The files written (relative to `dir`; traces not listed).
    pub files: Vec<String>,
}

/// Parses a `--set path=value` argument (the value in TOML syntax; a bare word is a string).
pub fn parse_override(arg: &str) -> Result<(String, Value), String> {
    let (path, raw) =
        arg.split_once('=').ok_or_else(|| format!("--set {arg}: expected path=value"))?;
    let path = path.trim();
    if path.is_empty() {
        return Err(format!("--set {arg}: empty parameter path"));
    }
    let raw = raw.trim();
    let value = match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
        Ok(t) => match t.get("v") {
            Some(v) => serde_json::to_value(v).map_err(|e| e.to_string())?,
            None => Value::from(raw),
        },
        Err(_) => Value::from(raw),
    };
    Ok((path.to_string(), value))
}

/// Expands and runs `study`, then writes its files. `progress(done, total, result)` is called
/// after each point.
pub fn run(
    study: &Study,
    opts: &Options,
    progress: &(dyn Fn(usize, usize, &PointResult) + Sync),
) -> Result<Report, String> {
    let points = sweep::points(study, &opts.overrides, opts.seed)?;
    let dir = opts.out.join(&study.name);
    let sweep_opts = sweep::SweepOptions {
        jobs: opts.jobs.max(1),
        trace_dir: opts.trace.then(|| dir.join("traces")),
    };
    let results = sweep::run(&points, &sweep_opts, progress);
    let seed = opts.seed.unwrap_or(study.seed);
    let files = output::write_all(&dir, study, seed, &results)?;
    Ok(Report { study: study.clone(), results, dir, files })
}
