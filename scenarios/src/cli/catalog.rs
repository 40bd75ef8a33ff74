//! `hfi-sim catalog [--out DIR]`: re-introduces each historical bug and runs the probe that
//! must catch it; fails unless every bug is caught and the correct driver gives no finding.

use std::path::PathBuf;

use clap::Args;

use super::{say, write_json};
use crate::harness::catalog;

/// Flags of `hfi-sim catalog`.
#[derive(Clone, Debug, Args)]
#[command(args_override_self = true)]
pub struct CatalogArgs {
    /// Where `catalog.json` goes.
    #[arg(long, value_name = "DIR", default_value = "out/catalog")]
    pub out: PathBuf,
}

impl CatalogArgs {
    /// Runs the catalog.
    pub fn run(self) -> Result<bool, String> {
        let rows = catalog::run();
        say(&catalog::table(&rows));
        let path = write_json(&self.out, "catalog.json", &rows)?;
        let caught = rows.iter().filter(|r| r.caught).count();
        let fps: usize = rows.iter().map(|r| r.false_positives.len()).sum();
        say(&format!(
            "{caught}/{} bugs caught, {fps} false positives; report in {}\n",
            rows.len(),
            path.display()
        ));
        Ok(caught == rows.len() && fps == 0)
    }
}
