//! The QEMU end-to-end test: `tools/qemu/setup.sh` (cached after the first run), then
//! `hfi-sim qemu`: the served model, stock QEMU with `vfio-user-pci`, a Linux guest running
//! the unmodified driver and caching code on real guest memory. Fails on any failed check.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::process::Command;

#[test]
fn driver_in_a_qemu_guest_against_hfi_sim_serve() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hfi-sim"))
        .args(["qemu", "--timeout", "240", "--out"])
        .arg(dir.path())
        .output()
        .expect("run hfi-sim qemu");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}\n{stderr}");
    assert!(out.status.success(), "hfi-sim qemu failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("qemu end-to-end: PASS"));

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("qemu.json")).unwrap())
            .unwrap();
    assert_eq!(report["failures"], serde_json::json!([]));
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 7);
    for r in rows.iter().filter(|r| r["workload"] == "reuse") {
        assert_eq!(r["data_ok"], true, "{r}");
        assert!(r["messages"].as_u64().unwrap() > 0);
    }
    // Caching cuts TID_UPDATE calls against nocache, as in process.
    let upd = |p: &str| {
        rows.iter().find(|r| r["workload"] == "reuse" && r["policy"] == p).unwrap()["tid_updates"]
            .as_u64()
            .unwrap()
    };
    assert!(upd("v2023") < upd("nocache"));
    // The munmap in flight reached the driver through userfaultfd under both caching policies.
    for p in ["seed", "v2023"] {
        let r =
            rows.iter().find(|r| r["workload"] == "free-in-flight" && r["policy"] == p).unwrap();
        assert!(r["notifier_calls"].as_u64().unwrap() > 0, "{r}");
    }
    let costs = &report["costs"];
    assert!(costs["mmio_read_us"].as_f64().unwrap() > 0.0);
    assert!(costs["cache_miss_us"].as_f64().unwrap() > costs["cache_hit_us"].as_f64().unwrap());
}
