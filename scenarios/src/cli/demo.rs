//! `hfi-sim demo [--out DIR] [--seed N] [--quick]`: the demo workload under each caching policy
//! in process; fails unless every buffer-reuse row received every byte and every row tore
//! down cleanly.

use std::path::PathBuf;

use clap::Args;

use super::{say, write_json};
use crate::harness::demo::{self, DemoConfig};

/// Flags of `hfi-sim demo`.
#[derive(Clone, Debug, Args)]
#[command(args_override_self = true)]
pub struct DemoArgs {
    /// Where `demo.json` goes.
    #[arg(long, value_name = "DIR", default_value = "out/demo")]
    pub out: PathBuf,
    /// Seed for buffer layout and payload bytes.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Two sizes (64 KiB, 1 MiB), 8 messages each.
    #[arg(long)]
    pub quick: bool,
}

impl DemoArgs {
    /// The demo's configuration.
    pub fn config(&self) -> DemoConfig {
        let mut cfg = DemoConfig::default();
        if let Some(seed) = self.seed {
            cfg.seed = seed;
        }
        if self.quick {
            cfg.sizes = vec![64 << 10, 1 << 20];
            cfg.repeats = 8;
        }
        cfg
    }

    /// Runs the demo.
    pub fn run(self) -> Result<bool, String> {
        let cfg = self.config();
        say(&format!(
            "hfi-sim demo: seed {}, {} buffers, sizes {:?} x {}\n",
            cfg.seed, cfg.buffers, cfg.sizes, cfg.repeats
        ));
        let rows = demo::run(&cfg).map_err(|e| format!("demo failed: {e} ({e:?})"))?;
        say(&demo::table(&rows));
        let json = serde_json::json!({ "config": cfg, "rows": rows });
        let path = write_json(&self.out, "demo.json", &json)?;
        say(&format!("results written to {}\n", path.display()));
        // Reuse rows must receive every byte correctly; every row must tear down cleanly. The
        // free-in-flight rows report what each policy does (see docs/world.md); they are findings.
        let reuse_ok = rows
            .iter()
            .filter(|r| r.workload.starts_with("reuse"))
            .all(|r| r.data_ok == Some(true) && r.failed.is_empty() && r.dma_to_free == 0);
        let all_clean = rows.iter().all(|r| r.teardown_clean);
        Ok(reuse_ok && all_clean)
    }
}
