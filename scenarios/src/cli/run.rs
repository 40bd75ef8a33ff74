//! `hfi-sim run <scenario files or dirs> [--jobs N] [--seed N] [--out DIR] [--trace FILE]
//! [--check-determinism]`: runs scenario files under each of their policies, prints a table,
//! writes `run.json`, fails on any problem.

use std::path::PathBuf;

use clap::Args;

use super::{default_jobs, say, write_json};
use crate::harness::runner::{self, RunReport};
use crate::harness::scenario;
use crate::world::trace::{self, TraceEvent};

/// Flags of `hfi-sim run`.
#[derive(Clone, Debug, Args)]
#[command(args_override_self = true)]
pub struct RunArgs {
    /// Scenario files, or directories of them.
    #[arg(value_name = "FILE_OR_DIR", required = true)]
    pub paths: Vec<PathBuf>,
    /// Worker threads (default: the machine's parallelism).
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Replaces every scenario's seed.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Where `run.json` goes.
    #[arg(long, value_name = "DIR", default_value = "out/run")]
    pub out: PathBuf,
    /// Write a Chrome/Perfetto trace of every run to this file.
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// Run everything twice and require identical trace hashes.
    #[arg(long)]
    pub check_determinism: bool,
}

impl RunArgs {
    /// Runs the scenarios.
    pub fn run(self) -> Result<bool, String> {
        let jobs = self.jobs.unwrap_or_else(default_jobs);
        let mut list = Vec::new();
        for p in &self.paths {
            if p.is_dir() {
                let found = scenario::load_dir(p).map_err(|e| e.to_string())?;
                list.extend(found.into_iter().map(|(_, s)| s));
            } else {
                list.push(scenario::load_file(p).map_err(|e| e.to_string())?);
            }
        }
        if let Some(seed) = self.seed {
            for s in &mut list {
                s.seed = seed;
            }
        }
        let rows = runner::run_all_traced(&list, jobs, self.trace.is_some());
        say(&runner::table(&rows));
        if let Some(path) = &self.trace {
            let runs: Vec<(String, Vec<TraceEvent>)> = rows
                .iter()
                .filter_map(|r| r.as_ref().ok())
                .map(|r| (format!("{} [{}]", r.scenario, r.policy), r.trace.clone()))
                .collect();
            let text = serde_json::to_string(&trace::to_json(&runs)).map_err(|e| e.to_string())?;
            std::fs::write(path, text)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            say(&format!("trace written to {} (open in ui.perfetto.dev)\n", path.display()));
        }
        let mut ok = rows.iter().all(|r| r.as_ref().is_ok_and(|r| r.ok()));
        if self.check_determinism {
            let again = runner::run_all(&list, jobs);
            let hash = |v: &[Result<RunReport, String>]| -> Vec<Option<u64>> {
                v.iter().map(|r| r.as_ref().ok().map(|r| r.trace_hash)).collect()
            };
            let same = hash(&rows) == hash(&again);
            say(&format!(
                "determinism: second run {}\n",
                if same { "identical (trace hashes match)" } else { "DIFFERENT" }
            ));
            ok &= same;
        }
        let json: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| match r {
                Ok(r) => serde_json::to_value(r).unwrap_or(serde_json::Value::Null),
                Err(e) => serde_json::json!({ "error": e }),
            })
            .collect();
        let path = write_json(&self.out, "run.json", &json)?;
        let pass = rows.iter().filter(|r| r.as_ref().is_ok_and(|r| r.ok())).count();
        say(&format!("{pass}/{} runs passed; report in {}\n", rows.len(), path.display()));
        Ok(ok)
    }
}
