//! Study files: TOML → [`Study`] (see the [module docs](super) for the format), with the
//! scenario files' one-line `file:line: key: message` errors.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use super::params::Tree;
use super::workload::Metrics;
use crate::harness::scenario::{FieldError, ScenarioError};

/// Most points a study may expand to.
pub const MAX_POINTS: usize = 10_000;
/// Most values one axis may have.
pub const MAX_AXIS_VALUES: usize = 1000;

/// A study file as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StudyFile {
    /// `[a-z0-9-]+`: the output directory's name.
    pub name: String,
    /// Free text for the summary.
    #[serde(default)]
    pub description: String,
    /// Seed of every point (unless an axis sets `seed`).
    #[serde(default = "one")]
    pub seed: u64,
    /// Parameters every point starts from (dotted paths, or nested tables).
    #[serde(default)]
    pub base: toml::Table,
    /// The swept parameters; points are their cartesian product (first axis outermost).
    #[serde(default)]
    pub axis: Vec<AxisSpec>,
    /// Plots to draw.
    #[serde(default)]
    pub plot: Vec<PlotSpec>,
}

fn one() -> u64 {
    1
}

/// `[[axis]]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AxisSpec {
    /// Parameter path.
    pub param: String,
    /// The values (or `range`).
    pub values: Option<Vec<toml::Value>>,
    /// A generated list of values (or `values`).
    pub range: Option<RangeSpec>,
    /// Axis label for plots (default: the path).
    pub label: Option<String>,
}

/// `range = { from, to, step | factor }`: `from`, `from + step`, … or `from`, `from × factor`,
/// … up to and including `to`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RangeSpec {
    /// First value.
    pub from: toml::Value,
    /// Last value (included when the sequence reaches it).
    pub to: toml::Value,
    /// Additive step (> 0).
    pub step: Option<toml::Value>,
    /// Multiplicative step (> 1).
    pub factor: Option<toml::Value>,
}

/// `[[plot]]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlotSpec {
    /// `[a-z0-9-]+`: file stem of the SVG and PNG.
    pub name: String,
    /// X: an axis parameter or a metric.
    pub x: String,
    /// Y: a metric.
    pub y: String,
    /// One line per value of this axis parameter (optional).
    pub series: Option<String>,
    /// Title (default: `y` vs `x`).
    pub title: Option<String>,
    /// X label (default: the axis label or the name).
    pub x_label: Option<String>,
    /// Y label (default: the metric's name).
    pub y_label: Option<String>,
    /// Only the points whose swept parameters have these values (`{ policy = "nocache" }`).
    #[serde(default)]
    pub filter: toml::Table,
    /// Logarithmic x.
    #[serde(default)]
    pub x_log: bool,
    /// Logarithmic y.
    #[serde(default)]
    pub y_log: bool,
}

/// One swept parameter, its values expanded.
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    /// Parameter path.
    pub param: String,
    /// Values, in order.
    pub values: Vec<Value>,
    /// Label for plots.
    pub label: String,
}

/// A checked study.
#[derive(Clone, Debug)]
pub struct Study {
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Seed.
    pub seed: u64,
    /// The base parameters as `(path, value)`, in file order.
    pub base: Vec<(String, Value)>,
    /// The axes.
    pub axes: Vec<Axis>,
    /// The plots.
    pub plots: Vec<PlotSpec>,
}

/// The metric names (the columns of `results.csv` after the parameters).
pub fn metric_names() -> Vec<String> {
    Metrics::NAMES.iter().map(|n| n.to_string()).collect()
}

fn err(key: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError { key: key.into(), message: message.into() }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Flattens nested tables into dotted `(path, value)` leaves, in file order.
fn flatten(prefix: &str, t: &toml::Table, out: &mut Vec<(String, toml::Value)>) {
    for (k, v) in t {
        let p = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        match v {
            toml::Value::Table(inner) => flatten(&p, inner, out),
            other => out.push((p, other.clone())),
        }
    }
}

fn json(v: &toml::Value) -> Result<Value, String> {
    match v {
        toml::Value::Datetime(_) => Err("a date-time is not a parameter value".into()),
        toml::Value::Float(f) if !f.is_finite() => Err(format!("{f} is not a finite number")),
        other => serde_json::to_value(other).map_err(|e| e.to_string()),
    }
}

fn number(v: &toml::Value) -> Option<f64> {
    match v {
        toml::Value::Integer(i) => Some(*i as f64),
        toml::Value::Float(f) if f.is_finite() => Some(*f),
        _ => None,
    }
}

/// The values of a range (integers when every bound is an integer).
fn expand(r: &RangeSpec, key: &str) -> Result<Vec<Value>, FieldError> {
    let ints = matches!(r.from, toml::Value::Integer(_))
        && matches!(r.to, toml::Value::Integer(_))
        && r.step.as_ref().is_none_or(|s| matches!(s, toml::Value::Integer(_)));
    let (Some(from), Some(to)) = (number(&r.from), number(&r.to)) else {
        return Err(err(format!("{key}.range"), "`from` and `to` must be numbers"));
    };
    let mut out = Vec::new();
    let push = |out: &mut Vec<Value>, x: f64| {
        if ints {
            out.push(Value::from(x.round() as i64));
        } else {
            out.push(Value::from(x));
        }
    };
    match (&r.step, &r.factor) {
        (Some(s), None) => {
            let step = number(s).filter(|s| *s > 0.0).ok_or_else(|| {
                err(format!("{key}.range.step"), "must be a number greater than 0")
            })?;
            let n = ((to - from) / step + 1e-9).floor();
            if n < 0.0 {
                return Err(err(format!("{key}.range"), "gives no value (`to` is below `from`)"));
            }
            if n >= MAX_AXIS_VALUES as f64 {
                return Err(err(
                    format!("{key}.range"),
                    format!("gives {} values (expected 1..={MAX_AXIS_VALUES})", n + 1.0),
                ));
            }
            for i in 0..=(n as usize) {
                push(&mut out, from + step * i as f64);
            }
        }
        (None, Some(f)) => {
            let factor = number(f).filter(|f| *f > 1.0).ok_or_else(|| {
                err(format!("{key}.range.factor"), "must be a number greater than 1")
            })?;
            if from <= 0.0 || to < from {
                return Err(err(format!("{key}.range"), "a factor needs 0 < from <= to"));
            }
            let mut x = from;
            while x <= to * (1.0 + 1e-9) {
                if out.len() >= MAX_AXIS_VALUES {
                    return Err(err(
                        format!("{key}.range"),
                        format!("gives more than {MAX_AXIS_VALUES} values"),
                    ));
                }
                push(&mut out, x);
                x *= factor;
            }
        }
        _ => return Err(err(format!("{key}.range"), "give exactly one of `step` and `factor`")),
    }
    if out.is_empty() {
        return Err(err(format!("{key}.range"), "gives no value (`to` is below `from`)"));
    }
    Ok(out)
}

impl StudyFile {
    /// Checks the file and expands it into a [`Study`].
    pub fn check(&self) -> Result<Study, FieldError> {
        if !valid_name(&self.name) {
            return Err(err(
                "name",
                format!("{:?} is not a valid name (expected [a-z0-9-]+)", self.name),
            ));
        }
        let defaults = Tree::defaults().map_err(|e| err("base", e))?;
        let mut tree = defaults.clone();
        let mut leaves = Vec::new();
        flatten("", &self.base, &mut leaves);
        let mut base = Vec::with_capacity(leaves.len());
        for (path, v) in leaves {
            let key = format!("base.{path}");
            let value = json(&v).map_err(|m| err(&key, m))?;
            tree.set(&path, value.clone()).map_err(|m| err(&key, m))?;
            base.push((path, value));
        }
        let cfg = tree.config().map_err(|m| err("base", m))?;
        cfg.workload.validate().map_err(|(k, m)| err(format!("base.workload.{k}"), m))?;
        let mut axes: Vec<Axis> = Vec::with_capacity(self.axis.len());
        let mut points = 1usize;
        for (i, a) in self.axis.iter().enumerate() {
            let key = format!("axis[{i}]");
            if axes.iter().any(|b| b.param == a.param) {
                return Err(err(format!("{key}.param"), format!("`{}` is swept twice", a.param)));
            }
            let values = match (&a.values, &a.range) {
                (Some(v), None) => {
                    let mut out = Vec::with_capacity(v.len());
                    for (j, x) in v.iter().enumerate() {
                        out.push(json(x).map_err(|m| err(format!("{key}.values[{j}]"), m))?);
                    }
                    out
                }
                (None, Some(r)) => expand(r, &key)?,
                _ => return Err(err(&key, "give exactly one of `values` and `range`")),
            };
            if values.is_empty() || values.len() > MAX_AXIS_VALUES {
                return Err(err(
                    format!("{key}.values"),
                    format!("{} values (expected 1..={MAX_AXIS_VALUES})", values.len()),
                ));
            }
            // Each value must make a valid configuration on top of the base.
            for (j, v) in values.iter().enumerate() {
                let vkey = if a.values.is_some() {
                    format!("{key}.values[{j}]")
                } else {
                    format!("{key}.range")
                };
                let mut t = tree.clone();
                t.set(&a.param, v.clone()).map_err(|m| {
                    let at = if m.starts_with("unknown parameter")
                        || m.contains("is a table")
                        || m.contains("is not a table")
                    {
                        format!("{key}.param")
                    } else {
                        vkey.clone()
                    };
                    err(at, m)
                })?;
                let c = t.config().map_err(|m| err(&vkey, m))?;
                c.workload.validate().map_err(|(k, m)| err(&vkey, format!("workload.{k}: {m}")))?;
            }
            points = points.saturating_mul(values.len());
            if points > MAX_POINTS {
                return Err(err(&key, format!("the axes give more than {MAX_POINTS} points")));
            }
            let label = a.label.clone().unwrap_or_else(|| a.param.clone());
            axes.push(Axis { param: a.param.clone(), values, label });
        }
        let metrics = metric_names();
        let mut names: Vec<&str> = Vec::new();
        for (i, p) in self.plot.iter().enumerate() {
            let key = format!("plot[{i}]");
            if !valid_name(&p.name) {
                return Err(err(
                    format!("{key}.name"),
                    format!("{:?} is not a valid name (expected [a-z0-9-]+)", p.name),
                ));
            }
            if names.contains(&p.name.as_str()) {
                return Err(err(
                    format!("{key}.name"),
                    format!("plot `{}` is defined twice", p.name),
                ));
            }
            names.push(&p.name);
            let is_axis = |s: &str| axes.iter().any(|a| a.param == s);
            let is_metric = |s: &str| metrics.iter().any(|m| m == s);
            let list = || metrics.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ");
            if !is_axis(&p.x) && !is_metric(&p.x) {
                return Err(err(
                    format!("{key}.x"),
                    format!("`{}` is neither a swept parameter nor a metric ({})", p.x, list()),
                ));
            }
            if !is_metric(&p.y) {
                return Err(err(
                    format!("{key}.y"),
                    format!("unknown metric `{}` (expected one of {})", p.y, list()),
                ));
            }
            if let Some(s) = &p.series {
                if !is_axis(s) {
                    return Err(err(
                        format!("{key}.series"),
                        format!("`{s}` is not a swept parameter"),
                    ));
                }
                if *s == p.x {
                    return Err(err(format!("{key}.series"), "the series cannot be the x axis"));
                }
            }
            let mut filtered: Vec<String> = Vec::new();
            let mut leaves = Vec::new();
            flatten("", &p.filter, &mut leaves);
            for (path, v) in leaves {
                let fkey = format!("{key}.filter.{path}");
                let Some(a) = axes.iter().find(|a| a.param == path) else {
                    return Err(err(fkey, format!("`{path}` is not a swept parameter")));
                };
                let v = json(&v).map_err(|m| err(&fkey, m))?;
                if !a.values.contains(&v) {
                    return Err(err(fkey, format!("`{path}` is never {v} in this study")));
                }
                if path == p.x || Some(&path) == p.series.as_ref() {
                    return Err(err(fkey, "cannot filter on the plot's `x` or `series`"));
                }
                filtered.push(path);
            }
            let free: Vec<&str> = axes
                .iter()
                .filter(|a| {
                    a.values.len() > 1
                        && a.param != p.x
                        && Some(&a.param) != p.series.as_ref()
                        && !filtered.contains(&a.param)
                })
                .map(|a| a.param.as_str())
                .collect();
            let allowed = usize::from(!is_axis(&p.x));
            if free.len() > allowed {
                return Err(err(
                    &key,
                    format!(
                        "swept parameter(s) {} neither `x` nor `series`: their points would \
                         be mixed on one line (add them to `filter`)",
                        free.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
        }
        Ok(Study {
            name: self.name.clone(),
            description: self.description.clone(),
            seed: self.seed,
            base,
            axes,
            plots: self.plot.clone(),
        })
    }
}

/// Parses and checks study text; `file` names it in errors.
pub fn parse_str(text: &str, file: &str) -> Result<Study, ScenarioError> {
    crate::harness::scenario::parse_checked::<StudyFile, Study>(text, file, StudyFile::check)
}

/// Reads and checks a study file.
pub fn load_file(path: &Path) -> Result<Study, ScenarioError> {
    let (text, file) = crate::harness::scenario::read_text(path)?;
    parse_str(&text, &file)
}
