//! `hfi-sim study <file.toml | calibration> [--out DIR] [--jobs N] [--seed N]
//! [--set path=value]... [--trace] [--quick]`: the command-line layer of
//! `scenarios::study` — argument parsing and a progress bar on stderr (the only wall-clock
//! reads of a study, for the elapsed time shown).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Mutex;

use scenarios::study::{self, calibration, PointResult};

/// Usage of the subcommand.
pub const USAGE: &str = "hfi-sim study <file.toml | calibration> [--out DIR] [--jobs N] [--seed N] [--set path=value]... [--trace] [--quick]";

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

fn say(text: &str) {
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// Runs the subcommand; `Ok(false)` when a point failed.
pub fn study_cmd(args: &[String]) -> Result<bool, String> {
    let mut out = PathBuf::from("out/study");
    let mut opts = study::Options {
        jobs: std::thread::available_parallelism().map_or(2, |n| n.get()),
        ..Default::default()
    };
    let mut quick = false;
    let mut target: Option<String> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--out" => out = PathBuf::from(it.next().ok_or("--out needs a directory")?),
            "--jobs" => {
                let v = it.next().ok_or("--jobs needs a number")?;
                opts.jobs = v.parse().map_err(|_| format!("--jobs: not a number: {v}"))?;
            }
            "--seed" => {
                let v = it.next().ok_or("--seed needs a number")?;
                opts.seed = Some(v.parse().map_err(|_| format!("--seed: not a number: {v}"))?);
            }
            "--set" => {
                let v = it.next().ok_or("--set needs path=value")?;
                opts.overrides.push(study::parse_override(v)?);
            }
            "--trace" => opts.trace = true,
            "--quick" => quick = true,
            p if !p.starts_with("--") && target.is_none() => target = Some(p.to_string()),
            other => return Err(format!("unknown argument {other}\nusage: {USAGE}")),
        }
    }
    opts.out = out;
    let target = target.ok_or_else(|| format!("no study given\nusage: {USAGE}"))?;
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
    let failed: Vec<&PointResult> = report.results.iter().filter(|r| r.outcome.is_err()).collect();
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
