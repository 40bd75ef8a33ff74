//! `hfi-sim study <file.toml | calibration> [--out DIR] [--jobs N] [--seed N]
//! [--set path=value]... [--trace] [--quick]`: the command-line layer of [`crate::study`] —
//! its flags and a progress bar on stderr (the only wall-clock reads of a study, for the
//! elapsed time shown).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Mutex;

use clap::Args;

use super::{default_jobs, say};
use crate::study::{self, calibration, PointResult};

/// A progress bar on stderr: redrawn in place on a terminal, one line per point otherwise.
struct Progress {
    #[allow(clippy::disallowed_methods)]
    // reason: the CLI shows elapsed wall time, the model never sees it
    start: std::time::Instant,
    tty: bool,
    lock: Mutex<()>,
}

impl Progress {
    fn new() -> Self {
        #[allow(clippy::disallowed_methods)] // reason: elapsed wall time for the user, CLI only
        let start = std::time::Instant::now();
        Self { start, tty: std::io::stderr().is_terminal(), lock: Mutex::new(()) }
    }

    fn update(&self, done: usize, total: usize, r: &PointResult) {
        let _guard = self.lock.lock();
        let width = 30usize;
        let filled = (done * width).checked_div(total).unwrap_or(width);
        let bar: String = "#".repeat(filled) + &"-".repeat(width - filled.min(width));
        let status = if r.outcome.is_ok() { "ok" } else { "FAILED" };
        let line = format!(
            "[{bar}] {done}/{total} {:5.1} s  p{:03} {} {status}",
            self.start.elapsed().as_secs_f64(),
            r.point.index,
            r.point.label()
        );
        let mut err = std::io::stderr().lock();
        if self.tty {
            let shown: String = line.chars().take(150).collect();
            let _ = write!(err, "\r\x1b[2K{shown}");
            if done == total {
                let _ = writeln!(err);
            }
        } else {
            let _ = writeln!(err, "{line}");
        }
    }
}

/// Flags of `hfi-sim study`.
#[derive(Clone, Debug, Args)]
#[command(args_override_self = true)]
pub struct StudyArgs {
    /// A study file, or `calibration` for the built-in calibration.
    #[arg(value_name = "FILE.toml|calibration")]
    pub target: String,
    /// Output root: files go to `<out>/<study name>/`.
    #[arg(long, value_name = "DIR", default_value = "out/study")]
    pub out: PathBuf,
    /// Worker threads (default: the machine's parallelism).
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Replaces the study's seed.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Overrides a base parameter (the value in TOML syntax); repeatable.
    #[arg(long = "set", value_name = "path=value", value_parser = parse_set)]
    pub overrides: Vec<Override>,
    /// Write a trace per point.
    #[arg(long)]
    pub trace: bool,
    /// The calibration's quick settings.
    #[arg(long)]
    pub quick: bool,
}

/// One `--set path=value`: the parameter path and its value.
#[derive(Clone, Debug, PartialEq)]
pub struct Override(pub String, pub serde_json::Value);

fn parse_set(v: &str) -> Result<Override, String> {
    study::parse_override(v).map(|(path, value)| Override(path, value))
}

impl StudyArgs {
    /// How to run the study.
    pub fn options(&self) -> study::Options {
        study::Options {
            out: self.out.clone(),
            jobs: self.jobs.unwrap_or_else(default_jobs),
            trace: self.trace,
            seed: self.seed,
            overrides: self.overrides.iter().map(|Override(p, v)| (p.clone(), v.clone())).collect(),
        }
    }

    /// Runs the study; `Ok(false)` when a point failed.
    pub fn run(self) -> Result<bool, String> {
        let opts = self.options();
        let target = self.target;
        let quick = self.quick;
        let progress = Progress::new();
        let bar = |d: usize, t: usize, r: &PointResult| progress.update(d, t, r);
        if target == "calibration" {
            let settings =
                if quick { calibration::Settings::quick() } else { calibration::Settings::full() };
            say(&format!(
                "hfi-sim study calibration: {} sizes, osu_bw window {}, {} jobs\n",
                settings.sizes.len(),
                settings.window,
                opts.jobs
            ));
            let (cal, dir) = calibration::run(
                &settings,
                &opts.out,
                opts.jobs,
                &opts.overrides,
                opts.seed,
                opts.trace,
                &bar,
            )?;
            say(&calibration::table(&cal));
            for e in &cal.explanations {
                say(&format!("- {e}\n"));
            }
            say(&format!("files written to {}\n", dir.display()));
            return Ok(cal.rows.iter().all(|r| r.error.is_none()));
        }
        let s = study::load_file(std::path::Path::new(&target)).map_err(|e| e.to_string())?;
        let npoints: usize = s.axes.iter().map(|a| a.values.len()).product();
        say(&format!("hfi-sim study {}: {npoints} points, {} jobs\n", s.name, opts.jobs));
        let report = study::run(&s, &opts, &bar)?;
        let summary = std::fs::read_to_string(report.dir.join("summary.md")).unwrap_or_default();
        if let Some(findings) = summary.split("## Findings\n").nth(1) {
            say(findings.split("## Results").next().unwrap_or_default());
        }
        say(&format!("files written to {}: {}\n", report.dir.display(), report.files.join(", ")));
        let failed: Vec<&PointResult> =
            report.results.iter().filter(|r| r.outcome.is_err()).collect();
        for r in &failed {
            say(&format!(
                "point {} ({}) failed: {}\n",
                r.point.index,
                r.point.label(),
                r.outcome.as_ref().err().map_or("", String::as_str)
            ));
        }
        Ok(failed.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Command};

    #[test]
    fn set_is_repeatable_and_parsed_as_toml() {
        let argv = ["hfi-sim", "study", "x.toml", "--set", "workload.messages=8"];
        let cli = Cli::try_parse_from(argv.iter().chain(&["--set", "host.iommu=strict"]));
        let Command::Study(a) = cli.unwrap().command else { panic!("not study") };
        let o = a.options();
        assert_eq!(o.out, std::path::PathBuf::from("out/study"));
        assert_eq!(
            o.overrides,
            vec![
                ("workload.messages".to_string(), serde_json::json!(8)),
                ("host.iommu".to_string(), serde_json::json!("strict")),
            ]
        );
        assert!(Cli::try_parse_from(["hfi-sim", "study", "x.toml", "--set", "novalue"]).is_err());
        assert!(Cli::try_parse_from(["hfi-sim", "study"]).is_err());
        assert!(Cli::try_parse_from(["hfi-sim", "study", "a.toml", "b.toml"]).is_err());
    }
}
