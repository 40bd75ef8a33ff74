//! A small study end to end: its files hold the values the run measured (CSV = JSON = summary),
//! the plots are real images, the output does not depend on the number of jobs, traces have
//! every per-context track, and `hfi-sim study` works from the command line.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)] // test code: a panic is a failure

use std::path::Path;
use std::process::Command;

use scenarios::study::{self, Options, PointResult, Study};
use serde_json::Value;

/// Four points: two policies × two reuse ratios, 4 messages of 64 KiB each, full data checks.
const SMALL: &str = r#"name = "small"
description = "CI study"
seed = 5

[base]
workload.message_size = "64KiB"
workload.messages = 4
workload.warmup = 2
workload.buffers = 2

[[axis]]
param = "workload.reuse"
values = [0.0, 1.0]

[[axis]]
param = "policy"
values = ["nocache", "v2023"]

[[plot]]
name = "bandwidth"
x = "workload.reuse"
y = "bandwidth_gbps"
series = "policy"

[[plot]]
name = "hits"
x = "workload.reuse"
y = "hit_rate"
series = "policy"
filter = {}
"#;

fn small() -> Study {
    study::parse_str(SMALL, "small.toml").unwrap()
}

fn run(s: &Study, out: &Path, jobs: usize, trace: bool) -> study::Report {
    let opts = Options { out: out.to_path_buf(), jobs, trace, ..Default::default() };
    study::run(s, &opts, &|_, _, _| {}).unwrap()
}

/// Decodes a PNG: its size and whether its pixels differ (a blank image would not).
fn decode_png(bytes: &[u8]) -> (u32, u32, usize) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    assert_eq!(&bytes[12..16], b"IHDR");
    let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (w, h));
    let px: Vec<&[u8]> = buf[..info.buffer_size()].chunks(3).collect();
    let mut colours: Vec<&[u8]> = px.clone();
    colours.sort_unstable();
    colours.dedup();
    (w, h, colours.len())
}

fn csv_rows(text: &str) -> Vec<Vec<String>> {
    text.lines().map(|l| l.split(',').map(str::to_string).collect()).collect()
}

#[test]
fn small_study_files_hold_the_measured_values() {
    let dir = tempfile::tempdir().unwrap();
    let s = small();
    let rep = run(&s, dir.path(), 2, false);
    let out = dir.path().join("small");
    assert_eq!(rep.dir, out);
    for f in [
        "results.csv",
        "results.json",
        "bandwidth.svg",
        "bandwidth.png",
        "hits.svg",
        "hits.png",
        "summary.md",
    ] {
        assert!(rep.files.iter().any(|x| x == f), "{f} not written: {:?}", rep.files);
    }
    // Every point ran, received every byte correctly, and measured something plausible.
    assert_eq!(rep.results.len(), 4);
    let m = |i: usize| rep.results[i].outcome.as_ref().unwrap().clone();
    for i in 0..4 {
        let x = m(i);
        assert_eq!(x.failed_messages, 0);
        assert_eq!(x.data_ok, Some(true), "point {i}");
        assert!(
            x.bandwidth_gbps > 1.0 && x.bandwidth_gbps < 12.5,
            "point {i}: {}",
            x.bandwidth_gbps
        );
        assert!(x.sim_us > 0.0 && x.host_us > 0.0);
    }
    // Points are in cartesian order: reuse outer, policy inner.
    assert_eq!(rep.results[3].point.label(), "workload.reuse=1.0, policy=v2023");
    // With reuse the cache hits every TID after the warm-up; without it, none.
    assert_eq!(m(3).hit_rate, 1.0);
    assert_eq!(m(3).tid_updates, 0);
    assert_eq!(m(1).hit_rate, 0.0);
    assert_eq!(m(0).hit_rate, 0.0);
    assert!(m(3).bandwidth_gbps > m(2).bandwidth_gbps * 1.1, "caching with reuse wins");

    // CSV: header, one row per point, values equal to the run's (and to the JSON's).
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    let rows = csv_rows(&csv);
    assert_eq!(rows.len(), 5);
    let col =
        |name: &str| rows[0].iter().position(|c| c == name).unwrap_or_else(|| panic!("{name}"));
    assert_eq!(&rows[0][..3], &["point", "workload.reuse", "policy"]);
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(json["study"], "small");
    assert_eq!(json["seed"], 5);
    let points = json["points"].as_array().unwrap();
    for (i, r) in rep.results.iter().enumerate() {
        let row = &rows[i + 1];
        let metrics = r.outcome.as_ref().unwrap();
        let csv_bw: f64 = row[col("bandwidth_gbps")].parse().unwrap();
        assert_eq!(csv_bw, metrics.bandwidth_gbps, "CSV holds the exact value");
        assert_eq!(points[i]["metrics"]["bandwidth_gbps"].as_f64().unwrap(), csv_bw);
        assert_eq!(row[col("policy")], r.point.config.node.policy.name());
        assert_eq!(row[col("tid_updates")].parse::<u64>().unwrap(), metrics.tid_updates);
        assert_eq!(row[col("data_ok")], "true");
        assert_eq!(row[col("latency_us")], "", "no latency in a stream study");
        assert_eq!(row[col("error")], "");
        assert_eq!(
            points[i]["params"][1],
            serde_json::json!(["policy", r.point.config.node.policy.name()])
        );
    }
    // The summary's sentences are computed from these values.
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    let ratio = m(3).bandwidth_gbps / m(2).bandwidth_gbps;
    let want = format!("At workload.reuse = 1, policy=v2023 has the highest bandwidth_gbps ({}), {ratio:.2}× policy=nocache", scenarios::study::plot::fmt_num(m(3).bandwidth_gbps));
    assert!(summary.contains(&want), "{summary}\nwant: {want}");
    assert!(summary.contains("| 3 | 1.0 | v2023 |"), "{summary}");
    // Plots: SVG with the title and both series; PNG decodable, the chart size, not blank.
    let svg = std::fs::read_to_string(out.join("bandwidth.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("bandwidth_gbps vs workload.reuse"));
    assert!(svg.contains("policy=nocache") && svg.contains("policy=v2023"));
    assert!(
        svg.matches("<polyline").count() >= 2 || svg.matches("<path").count() >= 2,
        "lines drawn"
    );
    for png in ["bandwidth.png", "hits.png"] {
        let bytes = std::fs::read(out.join(png)).unwrap();
        let (w, h, colours) = decode_png(&bytes);
        assert_eq!((w, h), study::plot::SIZE);
        assert!(colours > 8, "{png}: {colours} colours");
    }
}

#[test]
fn output_bytes_do_not_depend_on_the_number_of_jobs() {
    let s = small();
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let ra = run(&s, a.path(), 1, false);
    let rb = run(&s, b.path(), 3, false);
    assert_eq!(ra.files, rb.files);
    for f in &ra.files {
        let x = std::fs::read(a.path().join("small").join(f)).unwrap();
        let y = std::fs::read(b.path().join("small").join(f)).unwrap();
        assert!(x == y, "{f} differs between 1 and 3 jobs");
    }
}

#[test]
fn traces_have_every_per_context_track() {
    let s = study::parse_str(
        r#"name = "traced"
[base]
workload.message_size = "64KiB"
workload.messages = 3
workload.buffers = 1
workload.invalidate = 1.0
[[axis]]
param = "policy"
values = ["seed", "v2023"]
"#,
        "traced.toml",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let rep = run(&s, dir.path(), 2, true);
    let traces = dir.path().join("traced").join("traces");
    for r in &rep.results {
        let m: &PointResult = r;
        assert!(m.outcome.as_ref().unwrap().invalidations >= 2);
        let path = traces.join(format!("{}.json", r.point.file_stem()));
        let t: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let evs = t["traceEvents"].as_array().unwrap();
        for track in ["packets", "RHQ entries", "TID programming", "invalidations", "faults"] {
            let name = format!("ctxt 1: {track}");
            let tid = evs
                .iter()
                .find(|e| e["name"] == "thread_name" && e["args"]["name"] == name.as_str())
                .unwrap_or_else(|| panic!("{}: no track {name}", path.display()))["tid"]
                .clone();
            let n = evs.iter().filter(|e| e["ph"] == "i" && e["tid"] == tid).count();
            assert!(n > 0, "{name}: no event");
        }
        // Instant events carry simulated microseconds, in order per track.
        let ts: Vec<f64> =
            evs.iter().filter(|e| e["ph"] == "i").map(|e| e["ts"].as_f64().unwrap()).collect();
        assert!(ts.iter().all(|t| *t >= 0.0));
    }
}

#[test]
fn failing_points_are_reported_not_fatal() {
    // 192 RcvArray entries for 8 contexts leave fewer than 8 eager buffers: that point fails.
    let s = study::parse_str(
        r#"name = "fails"
[base]
workload.message_size = "64KiB"
workload.messages = 2
device.data_mode = "header-only"
[[axis]]
param = "device.rcv_array_cnt"
values = [16384, 192]
[[plot]]
name = "bw"
x = "device.rcv_array_cnt"
y = "bandwidth_gbps"
"#,
        "fails.toml",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let rep = run(&s, dir.path(), 2, false);
    assert!(rep.results[0].outcome.is_ok());
    let e = rep.results[1].outcome.as_ref().unwrap_err();
    assert!(e.contains("fewer than 8 eager buffers"), "{e}");
    let csv = std::fs::read_to_string(dir.path().join("fails/results.csv")).unwrap();
    assert!(
        csv.lines()
            .nth(2)
            .unwrap()
            .ends_with("Invalid context configuration: fewer than 8 eager buffers"),
        "{csv}"
    );
    let summary = std::fs::read_to_string(dir.path().join("fails/summary.md")).unwrap();
    assert!(summary.contains("1 point(s) failed"), "{summary}");
}

#[test]
fn the_command_line_runs_a_study_and_rejects_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("small.toml");
    std::fs::write(&file, SMALL).unwrap();
    let out = dir.path().join("out");
    let exe = env!("CARGO_BIN_EXE_hfi-sim");
    let r = Command::new(exe)
        .args(["study", file.to_str().unwrap(), "--out", out.to_str().unwrap(), "--jobs", "2"])
        .args(["--set", "workload.messages=2", "--seed", "9"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&r.stdout);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(r.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("hfi-sim study small: 4 points, 2 jobs"), "{stdout}");
    assert!(stderr.contains("4/4"), "progress on stderr: {stderr}");
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("small/results.json")).unwrap())
            .unwrap();
    assert_eq!(json["seed"], 9);
    // A bad file: exit status 2 and the one-line error.
    std::fs::write(&file, SMALL.replace("values = [0.0, 1.0]", "values = [0.0, 1.5]")).unwrap();
    let r = Command::new(exe)
        .args(["study", file.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(
        stderr.contains(
            "small.toml:13: axis[0].values[1]: workload.reuse: 1.5 is out of range 0..=1"
        ),
        "{stderr}"
    );
}
