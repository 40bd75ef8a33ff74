//! The configuration of one study point as a tree of named parameters.
//!
//! A point is a [`PointConfig`]: the node ([`NodeConfig`]: `policy`, `device.*`, `peer.*`,
//! `ctxt.*`, `rndv.*`, `host.*`, `mem_mib`, `memlock`, `cache_size_mb`, `tid_cache_entries`,
//! `tid_cache_eviction`), the workload (`workload.*`, [`PointWorkload`]) and the draws' `seed`.
//! Every field is reachable by its dotted path; the tree is the serde form of the defaults, so
//! a path exists exactly when the configuration has that field. Values are checked by
//! deserializing the whole configuration again after each change.
//!
//! Conveniences: a byte-size string (`"128KiB"`) is accepted where the field is a number of
//! bytes, and the string `"none"` clears an optional field.

use serde::Serialize;
use serde_json::{Map, Value};

use super::workload::PointWorkload;
use crate::harness::scenario::units::ByteSize;
use crate::world::node::NodeConfig;

/// Everything one point runs with.
#[derive(Clone, Debug, Serialize)]
pub struct PointConfig {
    /// The node.
    pub node: NodeConfig,
    /// The workload.
    pub workload: PointWorkload,
    /// Seed of the workload's draws (reuse, invalidations, random contiguity).
    pub seed: u64,
}

impl Default for PointConfig {
    fn default() -> Self {
        Self { node: NodeConfig::default(), workload: PointWorkload::default(), seed: 1 }
    }
}

/// The parameter tree of a configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Tree(Value);

impl Tree {
    /// The tree of `cfg`.
    pub fn of(cfg: &PointConfig) -> Result<Tree, String> {
        let mut root = match serde_json::to_value(&cfg.node).map_err(|e| e.to_string())? {
            Value::Object(m) => m,
            _ => return Err("the node configuration is not a table".into()),
        };
        root.insert(
            "workload".into(),
            serde_json::to_value(&cfg.workload).map_err(|e| e.to_string())?,
        );
        root.insert("seed".into(), Value::from(cfg.seed));
        Ok(Tree(Value::Object(root)))
    }

    /// The tree of the default configuration.
    pub fn defaults() -> Result<Tree, String> {
        Tree::of(&PointConfig::default())
    }

    /// The value at `path`, if the path exists.
    pub fn get(&self, path: &str) -> Option<&Value> {
        let mut cur = &self.0;
        for key in path.split('.') {
            cur = cur.as_object()?.get(key)?;
        }
        Some(cur)
    }

    /// Every leaf path, sorted.
    pub fn leaves(&self) -> Vec<String> {
        fn walk(v: &Value, prefix: &str, out: &mut Vec<String>) {
            match v {
                Value::Object(m) => {
                    for (k, v) in m {
                        let p = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                        walk(v, &p, out);
                    }
                }
                _ => out.push(prefix.to_string()),
            }
        }
        let mut out = Vec::new();
        walk(&self.0, "", &mut out);
        out.sort();
        out
    }

    /// Sets `path` to `value` (see the module docs for the conveniences), then checks that the
    /// configuration still deserializes. The error is one line, without the path.
    pub fn set(&mut self, path: &str, value: Value) -> Result<(), String> {
        let keys: Vec<&str> = path.split('.').collect();
        let Some((last, parents)) = keys.split_last() else {
            return Err("empty parameter path".into());
        };
        let mut cur: &mut Map<String, Value> = match &mut self.0 {
            Value::Object(m) => m,
            _ => return Err("the configuration is not a table".into()),
        };
        let mut walked = String::new();
        for key in parents {
            let known = keys_of(cur);
            let here = if walked.is_empty() {
                "the configuration".to_string()
            } else {
                format!("`{walked}`")
            };
            cur = match cur.get_mut(*key) {
                Some(Value::Object(m)) => m,
                Some(_) => return Err(format!("`{walked}{key}` is not a table of parameters")),
                None => {
                    return Err(format!(
                        "unknown parameter `{path}`: {here} has no `{key}` (it has {known})"
                    ))
                }
            };
            walked.push_str(key);
            walked.push('.');
        }
        let known = keys_of(cur);
        let Some(slot) = cur.get_mut(*last) else {
            let here = if walked.is_empty() {
                "the configuration".to_string()
            } else {
                format!("`{}`", walked.trim_end_matches('.'))
            };
            return Err(format!(
                "unknown parameter `{path}`: {here} has no `{last}` (it has {known})"
            ));
        };
        if slot.is_object() {
            return Err(format!(
                "`{path}` is a table: name one of its parameters ({})",
                keys_of_value(slot)
            ));
        }
        let value = match (&*slot, value) {
            (_, Value::String(s)) if s == "none" => Value::Null,
            (Value::Number(_), Value::String(s)) | (Value::Null, Value::String(s)) => {
                match ByteSize::parse(&s) {
                    Ok(b) => Value::from(b.bytes()),
                    Err(_) => Value::String(s),
                }
            }
            (_, v) => v,
        };
        let old = std::mem::replace(slot, value);
        if let Err(e) = self.config() {
            if let Some(slot) = self.get_mut(path) {
                *slot = old;
            }
            return Err(e);
        }
        Ok(())
    }

    fn get_mut(&mut self, path: &str) -> Option<&mut Value> {
        let mut cur = &mut self.0;
        for key in path.split('.') {
            cur = cur.as_object_mut()?.get_mut(key)?;
        }
        Some(cur)
    }

    /// The configuration this tree describes; the error is serde's, reworded.
    pub fn config(&self) -> Result<PointConfig, String> {
        let mut root = self.0.as_object().cloned().unwrap_or_default();
        let workload = root.remove("workload").unwrap_or(Value::Null);
        let seed = root.remove("seed").unwrap_or(Value::Null);
        let node: NodeConfig = serde_json::from_value(Value::Object(root)).map_err(reword)?;
        let workload: PointWorkload = serde_json::from_value(workload).map_err(reword)?;
        let seed: u64 = serde_json::from_value(seed).map_err(reword)?;
        Ok(PointConfig { node, workload, seed })
    }
}

fn keys_of(m: &Map<String, Value>) -> String {
    let mut keys: Vec<&str> = m.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let shown: Vec<String> = keys.iter().take(12).map(|k| format!("`{k}`")).collect();
    let more = if keys.len() > 12 { ", …" } else { "" };
    format!("{}{more}", shown.join(", "))
}

fn keys_of_value(v: &Value) -> String {
    v.as_object().map(keys_of).unwrap_or_default()
}

/// serde_json's wording in the words of a study file.
fn reword(e: serde_json::Error) -> String {
    let m = e.to_string();
    let m = match m.strip_prefix("unknown variant ") {
        Some(rest) => match rest.split_once(", expected ") {
            Some((v, list)) => format!("unknown value {v} (expected {list})"),
            None => format!("unknown value {rest}"),
        },
        None => m,
    };
    let m = m
        .replace("invalid type: null", "invalid value \"none\"")
        .replace("invalid type: map,", "invalid type: table,")
        .replace("invalid type: sequence,", "invalid type: array,")
        .replace("expected u32", "expected an integer in 0..=4294967295")
        .replace("expected u64", "expected a non-negative integer")
        .replace("expected u16", "expected an integer in 0..=65535")
        .replace("expected u8", "expected an integer in 0..=255")
        .replace("expected usize", "expected a non-negative integer");
    m.lines().next().unwrap_or_default().to_string()
}

/// Renders a parameter value for tables, CSV cells and file names: strings bare, numbers and
/// booleans as JSON does.
pub fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "none".into(),
        other => other.to_string(),
    }
}

/// A numeric reading of a parameter value (numbers; byte-size strings), for plot axes.
pub fn numeric(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => ByteSize::parse(s).ok().map(|b| b.bytes() as f64),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_set_and_check_values() {
        let mut t = Tree::defaults().unwrap();
        t.set("host.iommu", Value::from("strict")).unwrap();
        t.set("rndv.window", Value::from("256KiB")).unwrap();
        t.set("workload.message_size", Value::from("4MiB")).unwrap();
        t.set("tid_cache_entries", Value::from(64)).unwrap();
        t.set("ctxt.egr_count", Value::from("none")).unwrap();
        t.set("device.timing.pcie_write_latency_ps", Value::from(300_000)).unwrap();
        t.set("seed", Value::from(9)).unwrap();
        let c = t.config().unwrap();
        assert_eq!(c.node.host.iommu, crate::world::host_costs::IommuMode::Strict);
        assert_eq!(c.node.rndv.window, 256 << 10);
        assert_eq!(c.workload.message_size.bytes(), 4 << 20);
        assert_eq!(c.node.tid_cache_entries, Some(64));
        assert_eq!(c.node.ctxt.egr_count, None);
        assert_eq!(c.node.device.timing.pcie_write_latency_ps, 300_000);
        assert_eq!(c.seed, 9);
        assert!(t.leaves().contains(&"host.pin_2m_ns".to_string()));
    }

    #[test]
    fn bad_paths_and_values_are_refused_and_leave_the_tree_alone() {
        let mut t = Tree::defaults().unwrap();
        let before = t.clone();
        let e = t.set("host.iommuu", Value::from("strict")).unwrap_err();
        assert!(e.contains("unknown parameter `host.iommuu`") && e.contains("`iommu`"), "{e}");
        let e = t.set("hots.iommu", Value::from("strict")).unwrap_err();
        assert!(e.contains("has no `hots`"), "{e}");
        let e = t.set("host.iommu", Value::from("strictt")).unwrap_err();
        assert!(e.contains("unknown value `strictt`") && e.contains("`lazy`"), "{e}");
        let e = t.set("ctxt.rhq_entries", Value::from(-3)).unwrap_err();
        assert!(e.contains("expected an integer"), "{e}");
        let e = t.set("host", Value::from(1)).unwrap_err();
        assert!(e.contains("is a table"), "{e}");
        let e = t.set("policy.x", Value::from(1)).unwrap_err();
        assert!(e.contains("not a table"), "{e}");
        assert_eq!(t, before);
    }
}
