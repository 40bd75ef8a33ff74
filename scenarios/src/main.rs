//! `hfi-sim`: the command-line entry point.
//!
//! ```text
//! hfi-sim demo [--out DIR] [--seed N] [--quick]
//! hfi-sim serve --socket PATH [--scenario FILE] [--device-id ID] [--stats]
//! hfi-sim qemu [--cache DIR] [--guest-bin FILE] [--out DIR] [--timeout S] [--accel kvm|tcg]
//!              [--sizes A,B,..] [--repeats N] [--buffers N] [--kernel-driver | --psm2] [--verbose]
//! ```

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use scenarios::demo::{self, DemoConfig};

mod study_cli;

/// Prints to stdout; a closed pipe (e.g. `| head`) is not an error worth a panic.
fn say(text: &str) {
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

const USAGE: &str = "usage: hfi-sim demo [--out DIR] [--seed N] [--quick]\n       hfi-sim serve --socket PATH [--scenario FILE] [--device-id ID] [--stats]\n       hfi-sim catalog [--out DIR]\n       hfi-sim perf [--out DIR] [--quick] [--qemu]\n       hfi-sim qemu [--cache DIR] [--guest-bin FILE] [--out DIR] [--timeout S] [--accel kvm|tcg] [--sizes A,B,..] [--repeats N] [--buffers N] [--kernel-driver | --psm2] [--verbose]\n       hfi-sim run <scenario files or dirs> [--jobs N] [--seed N] [--out DIR] [--trace FILE] [--check-determinism]\n       hfi-sim study <file.toml | calibration> [--out DIR] [--jobs N] [--seed N] [--set path=value]... [--trace] [--quick]";

fn qemu_cmd(args: &[String]) -> Result<bool, String> {
    let mut o = scenarios::qemu::QemuOptions::new();
    let mut kernel = false;
    let mut psm2 = false;
    if args.iter().any(|a| a == "--kernel-driver") {
        o.work = scenarios::qemu::kdrv::default_work();
        o.timeout = scenarios::qemu::kdrv::DEFAULT_TIMEOUT;
    }
    if args.iter().any(|a| a == "--psm2") {
        o.work = scenarios::qemu::psm2::default_work();
        o.timeout = scenarios::qemu::psm2::DEFAULT_TIMEOUT;
    }
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().ok_or(format!("{a} needs a value"));
        let num = |v: &String| v.parse::<u64>().map_err(|_| format!("{a}: not a number: {v}"));
        match a.as_str() {
            "--cache" => o.cache = PathBuf::from(val()?),
            "--guest-bin" => o.guest_bin = Some(PathBuf::from(val()?)),
            "--out" => o.work = PathBuf::from(val()?),
            "--timeout" => o.timeout = std::time::Duration::from_secs(num(val()?)?.max(1)),
            "--accel" => match val()?.as_str() {
                v @ ("kvm" | "tcg") => o.accel = Some(v.to_string()),
                v => return Err(format!("--accel: kvm or tcg, not {v}")),
            },
            "--sizes" => {
                o.sizes =
                    val()?.split(',').map(|s| num(&s.to_string())).collect::<Result<_, _>>()?;
                if o.sizes.is_empty() || o.sizes.iter().any(|&s| s == 0 || s > 16 << 20) {
                    return Err("--sizes: each size must be in 1..=16 MiB".into());
                }
            }
            "--repeats" => o.repeats = num(val()?)?.clamp(1, 10_000) as u32,
            "--buffers" => o.buffers = num(val()?)?.clamp(1, 64) as u32,
            "--verbose" => o.verbose = true,
            "--kernel-driver" => kernel = true,
            "--psm2" => psm2 = true,
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    let mut stdout = std::io::stdout();
    if psm2 {
        let r = scenarios::qemu::psm2::run(&o, &mut stdout)?;
        say(&scenarios::qemu::psm2::summary(&r));
        return Ok(r.failures.is_empty());
    }
    if kernel {
        let r = scenarios::qemu::kdrv::run(&o, &mut stdout)?;
        say(&scenarios::qemu::kdrv::summary(&r));
        return Ok(r.failures.is_empty());
    }
    let r = scenarios::qemu::run(&o, &mut stdout)?;
    say(&scenarios::qemu::run::summary(&r));
    Ok(r.passed())
}

fn demo_cmd(args: &[String]) -> Result<bool, String> {
    let mut cfg = DemoConfig::default();
    let mut out = PathBuf::from("out/demo");
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--out" => out = PathBuf::from(it.next().ok_or("--out needs a directory")?),
            "--seed" => {
                let v = it.next().ok_or("--seed needs a number")?;
                cfg.seed = v.parse().map_err(|_| format!("--seed: not a number: {v}"))?;
            }
            "--quick" => {
                cfg.sizes = vec![64 << 10, 1 << 20];
                cfg.repeats = 8;
            }
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    say(&format!(
        "hfi-sim demo: seed {}, {} buffers, sizes {:?} x {}\n",
        cfg.seed, cfg.buffers, cfg.sizes, cfg.repeats
    ));
    let rows = demo::run(&cfg).map_err(|e| format!("demo failed: {e} ({e:?})"))?;
    say(&demo::table(&rows));
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let json = serde_json::json!({ "config": cfg, "rows": rows });
    let path = out.join("demo.json");
    let text = serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?;
    std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    say(&format!("results written to {}\n", path.display()));
    // Reuse rows must receive every byte correctly; every row must tear down cleanly. The
    // free-in-flight rows report what each policy does (see DESIGN.md); they are findings.
    let reuse_ok = rows
        .iter()
        .filter(|r| r.workload.starts_with("reuse"))
        .all(|r| r.data_ok == Some(true) && r.failed.is_empty() && r.dma_to_free == 0);
    let all_clean = rows.iter().all(|r| r.teardown_clean);
    Ok(reuse_ok && all_clean)
}

const SERVE_USAGE: &str =
    "usage: hfi-sim serve --socket PATH [--scenario FILE] [--device-id 0x24f0|0x24f1] [--stats]";

fn serve_cmd(args: &[String]) -> Result<bool, String> {
    let mut socket = None;
    let mut stats = false;
    let mut device_id = None;
    let mut cfg = scenarios::node::NodeConfig::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--socket" => socket = Some(PathBuf::from(it.next().ok_or("--socket needs a path")?)),
            "--stats" => stats = true,
            "--device-id" => {
                let v = it.next().ok_or("--device-id needs a PCI device ID")?;
                let hex = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")).unwrap_or(v);
                let id = u16::from_str_radix(hex, 16)
                    .map_err(|_| format!("--device-id: {v} is not a hexadecimal u16"))?;
                device_id = Some(id);
            }
            "--scenario" => {
                let p = PathBuf::from(it.next().ok_or("--scenario needs a file")?);
                let s = scenarios::scenario::load_file(&p).map_err(|e| e.to_string())?;
                // The served device, peer and rendezvous parameters come from the scenario
                // (its first policy: the policy itself is the client driver's choice).
                let policy = s.policies.first().copied().unwrap_or_default();
                cfg = scenarios::runner::node_config(&s, policy);
            }
            other => return Err(format!("unknown argument {other}\n{SERVE_USAGE}")),
        }
    }
    let socket = socket.ok_or(SERVE_USAGE)?;
    let mut served = scenarios::serve::served_config(&cfg);
    served.device_id = device_id.unwrap_or(served.device_id);
    let counters = scenarios::serve::run_served(&socket, served)?;
    if stats {
        say(&format!("{}\n", serde_json::to_string_pretty(&counters).map_err(|e| e.to_string())?));
    }
    Ok(true)
}

/// `hfi-sim run <files or dirs> [--jobs N] [--out DIR] [--check-determinism]`: runs scenario
/// files under each of their policies, prints a table, writes `run.json`, fails on any problem.
fn run_cmd(args: &[String]) -> Result<bool, String> {
    let mut out = PathBuf::from("out/run");
    let mut jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut determinism = false;
    let mut seed: Option<u64> = None;
    let mut trace: Option<PathBuf> = None;
    let mut paths = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--out" => out = PathBuf::from(it.next().ok_or("--out needs a directory")?),
            "--jobs" => {
                let v = it.next().ok_or("--jobs needs a number")?;
                jobs = v.parse().map_err(|_| format!("--jobs: not a number: {v}"))?;
            }
            "--check-determinism" => determinism = true,
            "--seed" => {
                let v = it.next().ok_or("--seed needs a number")?;
                seed = Some(v.parse().map_err(|_| format!("--seed: not a number: {v}"))?);
            }
            "--trace" => trace = Some(PathBuf::from(it.next().ok_or("--trace needs a file")?)),
            p if !p.starts_with("--") => paths.push(PathBuf::from(p)),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    if paths.is_empty() {
        return Err(format!("no scenario given\n{USAGE}"));
    }
    let mut list = Vec::new();
    for p in &paths {
        if p.is_dir() {
            let found = scenarios::scenario::load_dir(p).map_err(|e| e.to_string())?;
            list.extend(found.into_iter().map(|(_, s)| s));
        } else {
            list.push(scenarios::scenario::load_file(p).map_err(|e| e.to_string())?);
        }
    }
    if let Some(seed) = seed {
        for s in &mut list {
            s.seed = seed;
        }
    }
    let rows = scenarios::runner::run_all_traced(&list, jobs, trace.is_some());
    say(&scenarios::runner::table(&rows));
    if let Some(path) = &trace {
        let runs: Vec<(String, Vec<scenarios::trace::TraceEvent>)> = rows
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .map(|r| (format!("{} [{}]", r.scenario, r.policy), r.trace.clone()))
            .collect();
        let text =
            serde_json::to_string(&scenarios::trace::to_json(&runs)).map_err(|e| e.to_string())?;
        std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        say(&format!("trace written to {} (open in ui.perfetto.dev)\n", path.display()));
    }
    let mut ok = rows.iter().all(|r| r.as_ref().is_ok_and(|r| r.ok()));
    if determinism {
        let again = scenarios::runner::run_all(&list, jobs);
        let hash = |v: &[Result<scenarios::runner::RunReport, String>]| -> Vec<Option<u64>> {
            v.iter().map(|r| r.as_ref().ok().map(|r| r.trace_hash)).collect()
        };
        let same = hash(&rows) == hash(&again);
        say(&format!(
            "determinism: second run {}\n",
            if same { "identical (trace hashes match)" } else { "DIFFERENT" }
        ));
        ok &= same;
    }
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let json: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| match r {
            Ok(r) => serde_json::to_value(r).unwrap_or(serde_json::Value::Null),
            Err(e) => serde_json::json!({ "error": e }),
        })
        .collect();
    let path = out.join("run.json");
    let text = serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?;
    std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let pass = rows.iter().filter(|r| r.as_ref().is_ok_and(|r| r.ok())).count();
    say(&format!("{pass}/{} runs passed; report in {}\n", rows.len(), path.display()));
    Ok(ok)
}

/// `hfi-sim catalog [--out DIR]`: re-introduces each historical bug and runs the probe that
/// must catch it; fails unless every bug is caught and the correct driver gives no finding.
fn catalog_cmd(args: &[String]) -> Result<bool, String> {
    let mut out = PathBuf::from("out/catalog");
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--out" => out = PathBuf::from(it.next().ok_or("--out needs a directory")?),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    let rows = scenarios::catalog::run();
    say(&scenarios::catalog::table(&rows));
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let path = out.join("catalog.json");
    let text = serde_json::to_string_pretty(&rows).map_err(|e| e.to_string())?;
    std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let caught = rows.iter().filter(|r| r.caught).count();
    let fps: usize = rows.iter().map(|r| r.false_positives.len()).sum();
    say(&format!(
        "{caught}/{} bugs caught, {fps} false positives; report in {}\n",
        rows.len(),
        path.display()
    ));
    Ok(caught == rows.len() && fps == 0)
}

/// `hfi-sim perf [--out DIR] [--quick]`: a self-benchmark of this machine, printed as ratios
/// measured in one run (simulator vs memcpy, header-only rate, TID-cache hit vs miss, socket MMIO
/// vs bare socket RTT); fails only if a measurement fails.
fn perf_cmd(args: &[String]) -> Result<bool, String> {
    let mut out = PathBuf::from("out/perf");
    let mut quick = false;
    let mut qemu = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--out" => out = PathBuf::from(it.next().ok_or("--out needs a directory")?),
            "--quick" => quick = true,
            "--qemu" => qemu = true,
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    say(&format!(
        "hfi-sim perf{}: ratios measured in this run\n",
        if quick { " (quick)" } else { "" }
    ));
    let mut report = scenarios::perf::run(quick).map_err(|e| format!("perf failed: {e}"))?;
    if qemu {
        let o = scenarios::qemu::QemuOptions {
            work: out.join("qemu"),
            sizes: vec![64 << 10],
            repeats: 2,
            ..scenarios::qemu::QemuOptions::new()
        };
        match scenarios::qemu::run(&o, &mut std::io::sink()) {
            Ok(q) if q.passed() => scenarios::perf::qemu_rows(&q, &mut report.rows),
            Ok(q) => report.skipped.push(format!("qemu: failed ({})", q.failures.join("; "))),
            Err(e) => report.skipped.push(format!("qemu: skipped ({e})")),
        }
    }
    say(&scenarios::perf::table(&report));
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let path = out.join("perf.json");
    let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    say(&format!("results written to {}\n", path.display()));
    Ok(true)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("demo") => demo_cmd(args.get(1..).unwrap_or(&[])),
        Some("serve") => serve_cmd(args.get(1..).unwrap_or(&[])),
        Some("catalog") => catalog_cmd(args.get(1..).unwrap_or(&[])),
        Some("run") => run_cmd(args.get(1..).unwrap_or(&[])),
        Some("perf") => perf_cmd(args.get(1..).unwrap_or(&[])),
        Some("qemu") => qemu_cmd(args.get(1..).unwrap_or(&[])),
        Some("study") => study_cli::study_cmd(args.get(1..).unwrap_or(&[])),
        _ => Err(USAGE.to_string()),
    };
    match result {
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
