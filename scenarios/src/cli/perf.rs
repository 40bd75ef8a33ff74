//! `hfi-sim perf [--out DIR] [--quick] [--qemu]`: a self-benchmark of this machine, printed as
//! ratios measured in one run (simulator vs memcpy, header-only rate, TID-cache hit vs miss,
//! socket MMIO vs bare socket RTT); fails only if a measurement fails.

use std::path::PathBuf;

use clap::Args;

use super::{say, write_json};
use crate::{perf, qemu};

/// Flags of `hfi-sim perf`.
#[derive(Clone, Debug, Args)]
#[command(args_override_self = true)]
pub struct PerfArgs {
    /// Where `perf.json` goes (and the QEMU run's files, under `qemu/`).
    #[arg(long, value_name = "DIR", default_value = "out/perf")]
    pub out: PathBuf,
    /// Fewer rounds.
    #[arg(long)]
    pub quick: bool,
    /// Add the guest's costs from a short QEMU run (skipped if QEMU cannot run).
    #[arg(long)]
    pub qemu: bool,
}

impl PerfArgs {
    /// Runs the benchmark.
    pub fn run(self) -> Result<bool, String> {
        say(&format!(
            "hfi-sim perf{}: ratios measured in this run\n",
            if self.quick { " (quick)" } else { "" }
        ));
        let mut report = perf::run(self.quick).map_err(|e| format!("perf failed: {e}"))?;
        if self.qemu {
            let o = qemu::QemuOptions {
                work: self.out.join("qemu"),
                sizes: vec![64 << 10],
                repeats: 2,
                ..qemu::QemuOptions::new()
            };
            match qemu::run(&o, &mut std::io::sink()) {
                Ok(q) if q.passed() => perf::qemu_rows(&q, &mut report.rows),
                Ok(q) => report.skipped.push(format!("qemu: failed ({})", q.failures.join("; "))),
                Err(e) => report.skipped.push(format!("qemu: skipped ({e})")),
            }
        }
        say(&perf::table(&report));
        let path = write_json(&self.out, "perf.json", &report)?;
        say(&format!("results written to {}\n", path.display()));
        Ok(true)
    }
}
