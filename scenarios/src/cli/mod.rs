//! The `hfi-sim` command line (clap, derive): one file per subcommand, each with its flags
//! (`XxxArgs`) and what it runs (`XxxArgs::run`). `hfi-sim --help`, `hfi-sim <subcommand>
//! --help` and `hfi-sim --version` print to stdout and exit 0; a bad flag or value is clap's
//! one-line error plus the subcommand's usage, exit status 2.
//!
//! A subcommand returns `Ok(true)` when every check passed, `Ok(false)` when one failed
//! (exit 1), `Err(message)` when it could not run (one line `hfi-sim: message`, exit 2).

pub mod catalog;
pub mod demo;
pub mod perf;
pub mod qemu;
pub mod run;
pub mod serve;
pub mod study;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The model of the Omni-Path WFR HFI and the Rust driver against it.
#[derive(Debug, Parser)]
#[command(name = "hfi-sim", version, propagate_version = true)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Buffer reuse and a buffer freed in flight under each caching policy, in process.
    Demo(demo::DemoArgs),
    /// Serve the device model over a vfio-user socket until SIGTERM/SIGINT.
    Serve(serve::ServeArgs),
    /// Re-introduce each historical bug and run the probe that must catch it.
    Catalog(catalog::CatalogArgs),
    /// A self-benchmark of this machine, reported as ratios measured in one run.
    Perf(perf::PerfArgs),
    /// The driver in a QEMU guest against the served model (or the upstream hfi1.ko).
    Qemu(qemu::QemuArgs),
    /// Run scenario files under each of their policies and judge them.
    Run(run::RunArgs),
    /// Run a what-if study (a parameter sweep) or the built-in calibration.
    Study(study::StudyArgs),
}

impl Command {
    /// Runs the subcommand.
    pub fn run(self) -> Result<bool, String> {
        match self {
            Command::Demo(a) => a.run(),
            Command::Serve(a) => a.run(),
            Command::Catalog(a) => a.run(),
            Command::Perf(a) => a.run(),
            Command::Qemu(a) => a.run(),
            Command::Run(a) => a.run(),
            Command::Study(a) => a.run(),
        }
    }
}

/// The entry point of the binary: parses the arguments (clap exits on help, version and
/// usage errors), runs the subcommand, maps its outcome to the exit status.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("hfi-sim: a check failed (see the table above)");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("hfi-sim: {e}");
            ExitCode::from(2)
        }
    }
}

/// Prints to stdout; a closed pipe (e.g. `| head`) is not an error worth a panic.
pub(crate) fn say(text: &str) {
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// Worker threads by default: the machine's parallelism (2 if unknown).
pub(crate) fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Writes `value` as pretty JSON to `dir/name` (creating `dir`); returns the path.
pub(crate) fn write_json(
    dir: &Path,
    name: &str,
    value: &impl serde::Serialize,
) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join(name);
    let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
    std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn a_bad_flag_names_itself_and_the_usage() {
        let e = Cli::try_parse_from(["hfi-sim", "demo", "--frobnicate"]).unwrap_err();
        let text = e.to_string();
        assert!(text.lines().next().unwrap_or("").contains("--frobnicate"), "{text}");
        assert!(text.contains("Usage: hfi-sim demo"), "{text}");
        assert_eq!(e.exit_code(), 2);
    }
}
