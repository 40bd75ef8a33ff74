//! The shipped studies show the expected shapes (on reduced versions: fewer messages and
//! points), and the calibration meets its bandwidth goal and explains its latency miss.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)] // test code: a panic is a failure

use std::path::Path;

use scenarios::study::{self, calibration, parse_override, Options, Study};
use serde_json::Value;

fn shipped(name: &str) -> Study {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("studies").join(format!("{name}.toml"));
    study::load_file(&p).unwrap()
}

/// Keeps only the listed values of axis `param`.
fn keep(s: &mut Study, param: &str, values: &[Value]) {
    let a = s.axes.iter_mut().find(|a| a.param == param).unwrap();
    a.values.retain(|v| values.contains(v));
    assert_eq!(a.values.len(), values.len(), "{param}: {values:?}");
}

/// Runs `s` with `overrides`; returns `(params, metric)` per point.
fn run(s: &Study, overrides: &[&str], metric: &str) -> Vec<(Vec<(String, Value)>, f64)> {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        out: dir.path().to_path_buf(),
        jobs: 2,
        overrides: overrides.iter().map(|o| parse_override(o).unwrap()).collect(),
        ..Default::default()
    };
    let rep = study::run(s, &opts, &|_, _, _| {}).unwrap();
    rep.results
        .iter()
        .map(|r| {
            let m = r.outcome.as_ref().unwrap_or_else(|e| panic!("{}: {e}", r.point.label()));
            assert_eq!(m.failed_messages, 0, "{}", r.point.label());
            (r.point.params.clone(), m.get(metric).unwrap())
        })
        .collect()
}

fn at(rows: &[(Vec<(String, Value)>, f64)], want: &[(&str, Value)]) -> f64 {
    rows.iter()
        .find(|(p, _)| want.iter().all(|(k, v)| p.iter().any(|(pk, pv)| pk == k && pv == v)))
        .unwrap_or_else(|| panic!("no point {want:?}"))
        .1
}

fn policy(p: &str) -> (&'static str, Value) {
    ("policy", Value::from(p))
}

#[test]
fn caching_helps_with_reuse_and_not_without() {
    let mut s = shipped("caching-vs-reuse");
    keep(&mut s, "workload.reuse", &[0.0.into(), 0.5.into(), 1.0.into()]);
    keep(&mut s, "policy", &["nocache".into(), "v2023".into()]);
    let rows =
        run(&s, &["workload.messages=24", "device.data_mode=\"header-only\""], "bandwidth_gbps");
    let bw = |r: f64, p: &str| at(&rows, &[("workload.reuse", r.into()), policy(p)]);
    // No reuse: caching registers every window as no caching does (within 10 %).
    assert!(bw(0.0, "v2023") < bw(0.0, "nocache") * 1.1, "{rows:?}");
    // Full reuse: caching is clearly faster, and grows with reuse.
    assert!(bw(1.0, "v2023") > bw(0.0, "nocache") * 1.2, "{rows:?}");
    assert!(bw(0.0, "v2023") < bw(0.5, "v2023") && bw(0.5, "v2023") < bw(1.0, "v2023"), "{rows:?}");
    // No caching does not care about reuse.
    assert!((bw(1.0, "nocache") / bw(0.0, "nocache") - 1.0).abs() < 0.02, "{rows:?}");
}

#[test]
fn bandwidth_falls_when_the_rcvarray_share_drops_below_the_need() {
    let mut s = shipped("tid-pressure");
    // Shares 1984, 1216 (both hold the 1024 TIDs cached by 4 scattered 1 MiB buffers), 960
    // and 448 (they do not; 448 still holds the 4 × 128 TIDs of the windows in flight), 96 and
    // 24 (they hold neither).
    let cnts: Vec<Value> =
        [16384, 10240, 8192, 4096, 1024, 256].iter().map(|&c| c.into()).collect();
    keep(&mut s, "device.rcv_array_cnt", &cnts);
    let rows = run(&s, &["workload.messages=8"], "bandwidth_gbps");
    let bw = |c: u64, p: &str| at(&rows, &[("device.rcv_array_cnt", c.into()), policy(p)]);
    // Caching: flat while the share holds the cached working set, then it thrashes.
    assert!((bw(10240, "v2023") / bw(16384, "v2023") - 1.0).abs() < 0.01, "{rows:?}");
    for c in [8192, 4096, 1024, 256] {
        assert!(bw(c, "v2023") < bw(16384, "v2023") * 0.3, "{c}: {rows:?}");
    }
    // No caching: flat while the share holds the windows in flight, then falling.
    assert!((bw(8192, "nocache") / bw(16384, "nocache") - 1.0).abs() < 0.01, "{rows:?}");
    assert!(bw(1024, "nocache") < bw(16384, "nocache") * 0.9, "{rows:?}");
    assert!(bw(256, "nocache") < bw(1024, "nocache"), "{rows:?}");
}

#[test]
fn bandwidth_falls_with_the_invalidation_rate() {
    let mut s = shipped("invalidation-rate");
    keep(&mut s, "workload.invalidate", &[0.0.into(), 0.25.into(), 0.5.into(), 1.0.into()]);
    let rows =
        run(&s, &["workload.messages=12", "device.data_mode=\"header-only\""], "bandwidth_gbps");
    for p in ["seed", "v2023", "nocache"] {
        let bw = |r: f64| at(&rows, &[("workload.invalidate", r.into()), policy(p)]);
        assert!(bw(0.0) > bw(0.25) && bw(0.25) > bw(0.5) && bw(0.5) > bw(1.0), "{p}: {rows:?}");
    }
    // Caching loses its advantage: at one invalidation per message it is no faster than no
    // caching.
    let bw = |r: f64, p: &str| at(&rows, &[("workload.invalidate", r.into()), policy(p)]);
    assert!(bw(0.0, "v2023") > bw(0.0, "nocache") * 1.2, "{rows:?}");
    assert!(bw(1.0, "v2023") < bw(1.0, "nocache") * 1.02, "{rows:?}");
}

#[test]
fn strict_iommu_costs_more_than_lazy_which_costs_more_than_none() {
    let mut s = shipped("iommu");
    keep(&mut s, "workload.message_size", &["64KiB".into(), "1MiB".into()]);
    let rows = run(&s, &["workload.messages=6"], "host_us");
    for size in ["64KiB", "1MiB"] {
        let host = |m: &str, p: &str| {
            at(
                &rows,
                &[("workload.message_size", size.into()), ("host.iommu", m.into()), policy(p)],
            )
        };
        // Without caching every window maps and unmaps.
        assert!(host("off", "nocache") < host("lazy", "nocache"), "{size}: {rows:?}");
        assert!(host("lazy", "nocache") < host("strict", "nocache"), "{size}: {rows:?}");
        // With caching (after the warm-up) nothing is mapped: the mode does not matter.
        assert_eq!(host("off", "v2023"), host("strict", "v2023"), "{size}: {rows:?}");
    }
    let bw = run(&s, &["workload.messages=6"], "bandwidth_gbps");
    let b = |m: &str| {
        at(
            &bw,
            &[
                ("workload.message_size", "1MiB".into()),
                ("host.iommu", m.into()),
                policy("nocache"),
            ],
        )
    };
    assert!(b("off") > b("lazy") && b("lazy") > b("strict"), "{bw:?}");
}

#[test]
fn calibration_meets_the_bandwidth_goal_and_explains_the_latency() {
    let settings = calibration::Settings {
        sizes: vec![1, 8, 64 << 10, 1 << 20],
        iterations: 1,
        window: 16,
        latency_messages: 3,
    };
    let dir = tempfile::tempdir().unwrap();
    let (cal, out) =
        calibration::run(&settings, dir.path(), 2, &[], None, false, &|_, _, _| {}).unwrap();
    let row =
        |b: &str, size: u64| cal.rows.iter().find(|r| r.bench == b && r.size == size).unwrap();
    // Large-message bandwidth: link-bound, within ±5 % of 12.3 GB/s.
    let bw = row("osu_bw", 1 << 20);
    assert_eq!(bw.published, Some(12.3));
    assert_eq!(bw.within_goal, Some(true), "{bw:?}");
    let e = bw.error_pct.unwrap();
    assert!((e - (bw.simulated.unwrap() - 12.3) / 12.3 * 100.0).abs() < 1e-9);
    assert!(row("osu_bw", 64 << 10).published.is_none());
    // Small-message latency: computed against 1 µs; each point's error is consistent, and a
    // miss is explained by naming the parameters responsible.
    for size in [1, 8] {
        let l = row("osu_latency", size);
        let sim = l.simulated.unwrap();
        assert!(sim > 0.8 && sim < 2.0, "{l:?}");
        assert_eq!(l.within_goal, Some((sim - 1.0).abs() <= 0.2));
    }
    let b = cal.budget.as_ref().unwrap();
    let parts =
        b.sender_host_ns + b.sender_device_ns + b.wire_ns + b.receive_device_ns + b.receive_host_ns;
    assert!((b.simulated_ns - parts).abs() < 50.0, "the budget accounts for the simulation: {b:?}");
    if cal.rows.iter().any(|r| r.within_goal == Some(false)) {
        let text = cal.explanations.join(" ");
        assert!(text.contains("pcie_write_latency_ps"), "{text}");
        // The sensitivity run at the low end of the PCIe estimate is faster.
        let (_, low) = cal.sensitivity.unwrap();
        assert!(low < row("osu_latency", 1).simulated.unwrap());
    }
    for f in [
        "results.csv",
        "results.json",
        "bandwidth.svg",
        "bandwidth.png",
        "latency.svg",
        "latency.png",
        "summary.md",
    ] {
        assert!(std::fs::metadata(out.join(f)).unwrap().len() > 100, "{f}");
    }
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(summary.contains("| osu_bw | 1MiB |") && summary.contains("| yes |"), "{summary}");
}
