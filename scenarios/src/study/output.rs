//! A study's files: `results.csv`, `results.json`, one SVG and one PNG per plot, and
//! `summary.md` (a table and a few sentences computed from the data).
//!
//! Numbers are written as serde_json writes them (shortest exact form) in both the CSV and the
//! JSON, and nothing depends on wall time or the number of jobs, so a study run twice with the
//! same seed gives the same bytes.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{json, Value};

use super::params;
use super::plot::{self, Chart, Series, Style};
use super::spec::{PlotSpec, Study};
use super::sweep::PointResult;
use super::workload::Metrics;

/// One CSV cell: quoted when it holds a comma, a quote or a line break.
pub fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `results.csv`: `point`, one column per swept parameter, one per metric, `error`.
pub fn csv(study: &Study, results: &[PointResult]) -> String {
    let mut head = vec!["point".to_string()];
    head.extend(study.axes.iter().map(|a| a.param.clone()));
    head.extend(Metrics::NAMES.iter().map(|n| n.to_string()));
    head.push("error".into());
    let mut out = head.iter().map(|h| csv_cell(h)).collect::<Vec<_>>().join(",");
    out.push('\n');
    for r in results {
        let mut row = vec![r.point.index.to_string()];
        row.extend(r.point.params.iter().map(|(_, v)| params::show(v)));
        match &r.outcome {
            Ok(m) => {
                row.extend(m.columns().iter().map(|(_, v)| cell(v)));
                row.push(String::new());
            }
            Err(e) => {
                row.extend(Metrics::NAMES.iter().map(|_| String::new()));
                row.push(e.clone());
            }
        }
        out.push_str(&row.iter().map(|c| csv_cell(c)).collect::<Vec<_>>().join(","));
        out.push('\n');
    }
    out
}

/// `results.json`: the study, its axes and every point's parameters and metrics (or error).
pub fn json(study: &Study, seed: u64, results: &[PointResult]) -> Value {
    let points: Vec<Value> = results
        .iter()
        .map(|r| {
            let params: Vec<Value> =
                r.point.params.iter().map(|(p, v)| json!([p, v])).collect();
            let (metrics, error) = match &r.outcome {
                Ok(m) => {
                    let cols: serde_json::Map<String, Value> =
                        m.columns().into_iter().map(|(k, v)| (k.to_string(), v)).collect();
                    (Value::Object(cols), Value::Null)
                }
                Err(e) => (Value::Null, Value::from(e.clone())),
            };
            json!({ "index": r.point.index, "name": r.point.file_stem(), "params": params, "metrics": metrics, "error": error })
        })
        .collect();
    let base: Vec<Value> = study.base.iter().map(|(p, v)| json!([p, v])).collect();
    let axes: Vec<Value> = study
        .axes
        .iter()
        .map(|a| json!({ "param": a.param, "label": a.label, "values": a.values }))
        .collect();
    json!({
        "study": study.name,
        "description": study.description,
        "seed": seed,
        "base": base,
        "axes": axes,
        "metrics": Metrics::NAMES,
        "points": points,
    })
}

/// Whether the values of swept parameter `param` are byte counts.
fn is_bytes(study: &Study, param: &str) -> bool {
    const BYTE_PARAMS: [&str; 6] = [
        "workload.message_size",
        "workload.page_size",
        "rndv.window",
        "rndv.threshold",
        "ctxt.egr_buf_size",
        "peer.mtu",
    ];
    BYTE_PARAMS.contains(&param)
        || study.axes.iter().filter(|a| a.param == param).any(|a| {
            a.values.iter().any(|v| {
                v.as_str()
                    .is_some_and(|s| crate::harness::scenario::units::ByteSize::parse(s).is_ok())
            })
        })
}

/// The categories of plot `p`'s x axis when the swept parameter has non-numeric values
/// (`policy`, `host.iommu`): its values in axis order, plotted at 0, 1, 2, …
pub fn categories(study: &Study, p: &PlotSpec) -> Option<Vec<String>> {
    let a = study.axes.iter().find(|a| a.param == p.x)?;
    a.values
        .iter()
        .any(|v| params::numeric(v).is_none())
        .then(|| a.values.iter().map(params::show).collect())
}

/// The x value of a point for plot `p`: the swept parameter's value (or its category index),
/// or a metric.
fn x_of(p: &PlotSpec, cats: Option<&[String]>, r: &PointResult) -> Option<f64> {
    match r.point.params.iter().find(|(k, _)| *k == p.x) {
        Some((_, v)) => match cats {
            Some(c) => c.iter().position(|c| *c == params::show(v)).map(|i| i as f64),
            None => params::numeric(v),
        },
        None => r.outcome.as_ref().ok().and_then(|m| m.get(&p.x)),
    }
}

/// Whether a point passes plot `p`'s filter.
fn selected(p: &PlotSpec, r: &PointResult) -> bool {
    let mut leaves = Vec::new();
    flatten_filter("", &p.filter, &mut leaves);
    leaves.iter().all(|(path, want)| {
        let want = serde_json::to_value(want).ok();
        r.point.params.iter().any(|(k, v)| k == path && want.as_ref() == Some(v))
    })
}

fn flatten_filter(prefix: &str, t: &toml::Table, out: &mut Vec<(String, toml::Value)>) {
    for (k, v) in t {
        let p = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        match v {
            toml::Value::Table(inner) => flatten_filter(&p, inner, out),
            other => out.push((p, other.clone())),
        }
    }
}

/// The series name of a point: `param=value` (last path component) or the study's name.
fn series_of(p: &PlotSpec, r: &PointResult) -> String {
    match &p.series {
        Some(s) => {
            let short = s.rsplit('.').next().unwrap_or(s);
            let v = r.point.params.iter().find(|(k, _)| k == s).map(|(_, v)| params::show(v));
            format!("{short}={}", v.unwrap_or_default())
        }
        None => p.y.clone(),
    }
}

/// The lines of plot `p`: one per series value, in first-seen (axis) order, points sorted by x;
/// failed points and empty metrics are left out.
pub fn lines(study: &Study, p: &PlotSpec, results: &[PointResult]) -> Vec<Series> {
    let cats = categories(study, p);
    let mut out: Vec<Series> = Vec::new();
    for r in results.iter().filter(|r| selected(p, r)) {
        let x = x_of(p, cats.as_deref(), r);
        let (Some(x), Some(y)) = (x, r.outcome.as_ref().ok().and_then(|m| m.get(&p.y))) else {
            continue;
        };
        let name = series_of(p, r);
        match out.iter_mut().find(|s| s.name == name) {
            Some(s) => s.points.push((x, y)),
            None => out.push(Series { name, points: vec![(x, y)], style: Style::Line }),
        }
    }
    for s in &mut out {
        s.points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    out
}

/// The chart of plot `p`.
pub fn chart(study: &Study, p: &PlotSpec, results: &[PointResult]) -> Chart {
    let axis_label = study.axes.iter().find(|a| a.param == p.x).map(|a| a.label.clone());
    Chart {
        title: p.title.clone().unwrap_or_else(|| format!("{} vs {}", p.y, p.x)),
        x_label: p.x_label.clone().or(axis_label).unwrap_or_else(|| p.x.clone()),
        y_label: p.y_label.clone().unwrap_or_else(|| p.y.clone()),
        x_log: p.x_log,
        y_log: p.y_log,
        x_bytes: is_bytes(study, &p.x),
        x_categories: categories(study, p),
        series: lines(study, p, results),
    }
}

fn fmt_x(study: &Study, p: &PlotSpec, x: f64) -> String {
    if let Some(c) = categories(study, p) {
        return c.get(x.max(0.0) as usize).cloned().unwrap_or_else(|| plot::fmt_num(x));
    }
    if is_bytes(study, &p.x) && x >= 1.0 && x.fract() == 0.0 {
        crate::harness::scenario::units::ByteSize(x as u64).to_string()
    } else {
        plot::fmt_num(x)
    }
}

/// Sentences about plot `p`, computed from its lines: with series, the best line against the
/// worst at the lowest and the highest x; without, how y changes from the lowest to the highest
/// x and where it changes most.
pub fn findings(study: &Study, p: &PlotSpec, lines: &[Series]) -> Vec<String> {
    let mut out = Vec::new();
    let y = &p.y;
    if lines.len() >= 2 {
        let xs = |pick_last: bool| {
            let mut xs: Vec<f64> = lines
                .iter()
                .filter_map(|s| if pick_last { s.points.last() } else { s.points.first() })
                .map(|q| q.0)
                .collect();
            xs.sort_by(f64::total_cmp);
            if pick_last {
                xs.first().copied()
            } else {
                xs.last().copied()
            }
        };
        let mut sentences = Vec::new();
        for x in [xs(true), xs(false)].into_iter().flatten() {
            let at: Vec<(&str, f64)> = lines
                .iter()
                .filter_map(|s| s.points.iter().find(|q| q.0 == x).map(|q| (s.name.as_str(), q.1)))
                .collect();
            let best = at.iter().copied().max_by(|a, b| a.1.total_cmp(&b.1));
            let worst = at.iter().copied().min_by(|a, b| a.1.total_cmp(&b.1));
            if let (Some(b), Some(w)) = (best, worst) {
                if w.1 > 0.0 && b.0 != w.0 {
                    sentences.push((x, b, w));
                }
            }
        }
        sentences.dedup_by(|a, b| a.0 == b.0);
        for (x, b, w) in sentences {
            if b.1 / w.1 < 1.005 {
                out.push(format!(
                    "At {} = {}, every line has {y} ≈ {} (within 0.5 %).",
                    p.x,
                    fmt_x(study, p, x),
                    plot::fmt_num(w.1)
                ));
                continue;
            }
            out.push(format!(
                "At {} = {}, {} has the highest {y} ({}), {:.2}× {} ({}).",
                p.x,
                fmt_x(study, p, x),
                b.0,
                plot::fmt_num(b.1),
                b.1 / w.1,
                w.0,
                plot::fmt_num(w.1)
            ));
        }
        // Lines that coincide everywhere (the plot shows the earlier one wider).
        for (i, a) in lines.iter().enumerate() {
            if let Some(b) = lines.iter().skip(i + 1).find(|b| b.points == a.points) {
                out.push(format!("{} and {} coincide at every point.", a.name, b.name));
                break;
            }
        }
    } else if let Some(s) = lines.first() {
        if let (Some(a), Some(b)) = (s.points.first(), s.points.last()) {
            if s.points.len() >= 2 && a.1 != 0.0 {
                let change = (b.1 - a.1) / a.1 * 100.0;
                let verb = if b.1 < a.1 { "falls" } else { "rises" };
                out.push(format!(
                    "{y} {verb} from {} at {} = {} to {} at {} ({change:+.1} %).",
                    plot::fmt_num(a.1),
                    p.x,
                    fmt_x(study, p, a.0),
                    plot::fmt_num(b.1),
                    fmt_x(study, p, b.0),
                ));
                let step = s
                    .points
                    .windows(2)
                    .filter_map(|w| Some((w.first()?, w.get(1)?)))
                    .max_by(|u, v| (u.1 .1 - u.0 .1).abs().total_cmp(&(v.1 .1 - v.0 .1).abs()));
                if let Some((u, v)) = step {
                    out.push(format!(
                        "The largest change is between {} and {} ({} → {}).",
                        fmt_x(study, p, u.0),
                        fmt_x(study, p, v.0),
                        plot::fmt_num(u.1),
                        plot::fmt_num(v.1)
                    ));
                }
            }
        }
    }
    out
}

/// `summary.md`.
pub fn summary(study: &Study, seed: u64, results: &[PointResult]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Study `{}`\n", study.name);
    if !study.description.is_empty() {
        let _ = writeln!(s, "{}\n", study.description.trim());
    }
    let axes: Vec<String> =
        study.axes.iter().map(|a| format!("`{}` ({} values)", a.param, a.values.len())).collect();
    let _ = writeln!(
        s,
        "{} points{}; seed {seed}. Files: `results.csv`, `results.json`{}.\n",
        results.len(),
        if axes.is_empty() { String::new() } else { format!(" over {}", axes.join(" × ")) },
        study.plots.iter().map(|p| format!(", `{0}.svg`/`{0}.png`", p.name)).collect::<String>()
    );
    let mut sentences: Vec<String> = Vec::new();
    for p in &study.plots {
        for f in findings(study, p, &lines(study, p, results)) {
            if !sentences.contains(&f) {
                sentences.push(f);
            }
        }
    }
    let failed: Vec<&PointResult> = results.iter().filter(|r| r.outcome.is_err()).collect();
    if !sentences.is_empty() || !failed.is_empty() {
        let _ = writeln!(s, "## Findings\n");
        for line in sentences.iter().take(4) {
            let _ = writeln!(s, "- {line}");
        }
        if !failed.is_empty() {
            let _ = writeln!(s, "- {} point(s) failed (see the `error` column).", failed.len());
        }
        s.push('\n');
    }
    // The table: the swept parameters and the metrics the plots use (or the main ones).
    let mut cols: Vec<&str> = Vec::new();
    for p in &study.plots {
        for c in [p.y.as_str(), p.x.as_str()] {
            if Metrics::NAMES.contains(&c) && !cols.contains(&c) {
                cols.push(c);
            }
        }
    }
    for c in ["bandwidth_gbps", "hit_rate", "host_busy"] {
        if cols.len() < 4 && !cols.contains(&c) {
            cols.push(c);
        }
    }
    let _ = writeln!(s, "## Results\n");
    let mut head: Vec<String> = vec!["point".into()];
    head.extend(study.axes.iter().map(|a| a.param.clone()));
    head.extend(cols.iter().map(|c| c.to_string()));
    let _ = writeln!(s, "| {} |", head.join(" | "));
    let _ = writeln!(s, "|{}", "---|".repeat(head.len()));
    for r in results {
        let mut row = vec![r.point.index.to_string()];
        row.extend(r.point.params.iter().map(|(_, v)| params::show(v)));
        for c in &cols {
            row.push(match &r.outcome {
                Ok(m) => m.get(c).map(plot::fmt_num).unwrap_or_default(),
                Err(_) => "error".into(),
            });
        }
        let _ = writeln!(s, "| {} |", row.join(" | "));
    }
    s
}

/// Writes every file of a study into `dir`.
pub fn write_all(
    dir: &Path,
    study: &Study,
    seed: u64,
    results: &[PointResult],
) -> Result<Vec<String>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut written = Vec::new();
    let mut put = |name: &str, bytes: &[u8]| -> Result<(), String> {
        let path = dir.join(name);
        std::fs::write(&path, bytes)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        written.push(name.to_string());
        Ok(())
    };
    put("results.csv", csv(study, results).as_bytes())?;
    let text =
        serde_json::to_string_pretty(&json(study, seed, results)).map_err(|e| e.to_string())?;
    put("results.json", text.as_bytes())?;
    for p in &study.plots {
        let c = chart(study, p, results);
        put(&format!("{}.svg", p.name), c.svg()?.as_bytes())?;
        put(&format!("{}.png", p.name), &c.png()?)?;
    }
    put("summary.md", summary(study, seed, results).as_bytes())?;
    Ok(written)
}
