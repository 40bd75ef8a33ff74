//! Expanding a study into points and running them in parallel.
//!
//! Points are the cartesian product of the axes, the first axis outermost, numbered from 0 in
//! that order. Workers (scoped threads) take points from a shared counter; results are put back
//! in point order, and a point's run depends only on its configuration, so the output does not
//! depend on the number of jobs.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use serde_json::Value;

use super::params::{self, PointConfig, Tree};
use super::spec::Study;
use super::workload::{run_point, Metrics};

/// One point of a study.
#[derive(Clone, Debug)]
pub struct Point {
    /// Index in the study (0-based, cartesian order).
    pub index: usize,
    /// The swept parameters' values, in axis order.
    pub params: Vec<(String, Value)>,
    /// The full configuration.
    pub config: PointConfig,
}

impl Point {
    /// `param=value` pairs joined by `, ` (or `base` when nothing is swept).
    pub fn label(&self) -> String {
        if self.params.is_empty() {
            return "base".into();
        }
        let parts: Vec<String> =
            self.params.iter().map(|(p, v)| format!("{p}={}", params::show(v))).collect();
        parts.join(", ")
    }

    /// A file-name-safe name: `p007-policy-v2023-workload.reuse-0.5`.
    pub fn file_stem(&self) -> String {
        let mut s = format!("p{:03}", self.index);
        for (p, v) in &self.params {
            s.push('-');
            s.push_str(p);
            s.push('-');
            s.push_str(&params::show(v));
        }
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .take(120)
            .collect()
    }
}

/// Expands `study` with the command line's `overrides` (applied after the base; a swept
/// parameter cannot be overridden) and `seed` (replacing the study's).
pub fn points(
    study: &Study,
    overrides: &[(String, Value)],
    seed: Option<u64>,
) -> Result<Vec<Point>, String> {
    let mut tree = Tree::defaults()?;
    tree.set("seed", Value::from(seed.unwrap_or(study.seed)))?;
    for (p, v) in &study.base {
        tree.set(p, v.clone()).map_err(|e| format!("base.{p}: {e}"))?;
    }
    for (p, v) in overrides {
        if study.axes.iter().any(|a| a.param == *p) {
            return Err(format!("--set {p}: the study sweeps this parameter"));
        }
        tree.set(p, v.clone()).map_err(|e| format!("--set {p}: {e}"))?;
    }
    let mut combos: Vec<Vec<(String, Value)>> = vec![Vec::new()];
    for a in &study.axes {
        let mut next = Vec::with_capacity(combos.len() * a.values.len());
        for c in &combos {
            for v in &a.values {
                let mut c = c.clone();
                c.push((a.param.clone(), v.clone()));
                next.push(c);
            }
        }
        combos = next;
    }
    let mut out = Vec::with_capacity(combos.len());
    for (index, params) in combos.into_iter().enumerate() {
        let mut t = tree.clone();
        for (p, v) in &params {
            t.set(p, v.clone()).map_err(|e| format!("point {index}: {p}: {e}"))?;
        }
        let config = t.config().map_err(|e| format!("point {index}: {e}"))?;
        config.workload.validate().map_err(|(k, m)| format!("point {index}: workload.{k}: {m}"))?;
        out.push(Point { index, params, config });
    }
    Ok(out)
}

/// What a point gave.
#[derive(Clone, Debug)]
pub struct PointResult {
    /// The point.
    pub point: Point,
    /// Its metrics, or why it failed (one line).
    pub outcome: Result<Metrics, String>,
}

/// Options of a sweep.
#[derive(Clone, Debug, Default)]
pub struct SweepOptions {
    /// Worker threads (at least 1).
    pub jobs: usize,
    /// Write each point's trace to `<dir>/<point>.json`.
    pub trace_dir: Option<PathBuf>,
}

/// Runs every point, `jobs` at a time; `progress(done, total, point)` is called after each
/// point (from the worker that ran it). Results come back in point order.
pub fn run(
    points: &[Point],
    opts: &SweepOptions,
    progress: &(dyn Fn(usize, usize, &PointResult) + Sync),
) -> Vec<PointResult> {
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let results: Mutex<Vec<PointResult>> = Mutex::new(Vec::with_capacity(points.len()));
    std::thread::scope(|sc| {
        for _ in 0..opts.jobs.clamp(1, points.len().max(1)) {
            sc.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(p) = points.get(i) else { break };
                let r = run_one(p, opts);
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                progress(n, points.len(), &r);
                if let Ok(mut v) = results.lock() {
                    v.push(r);
                }
            });
        }
    });
    let mut v = results.into_inner().unwrap_or_default();
    v.sort_by_key(|r| r.point.index);
    v
}

fn run_one(p: &Point, opts: &SweepOptions) -> PointResult {
    let c = &p.config;
    let outcome = match run_point(&c.node, &c.workload, c.seed, opts.trace_dir.is_some()) {
        Ok(run) => match &opts.trace_dir {
            Some(dir) => super::point_trace::write(dir, p, &run.trace).map(|()| run.metrics),
            None => Ok(run.metrics),
        },
        Err(e) => Err(error_chain(&e)),
    };
    PointResult { point: p.clone(), outcome }
}

/// An error and its sources on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(src) = cur {
        let m = src.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = src.source();
    }
    s.replace('\n', " ")
}
