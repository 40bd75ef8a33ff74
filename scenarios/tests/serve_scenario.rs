//! `hfi-sim serve --scenario FILE`: a bad file is refused with its one-line error; a good one
//! configures the served device, which then serves a client.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)] // test code: a panic is a failure
#![allow(clippy::disallowed_methods)] // waits for a real server process

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use scenarios::world::node::NodeConfig;

#[test]
fn bad_scenario_is_refused_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "name = \"x\"\n[workload]\nbufers = 2\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hfi-sim"))
        .args(["serve", "--socket"])
        .arg(dir.path().join("s.sock"))
        .arg("--scenario")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("bad.toml:3: unknown key `bufers` in [workload]"), "{err}");
}

#[test]
fn good_scenario_configures_the_served_device() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("s.sock");
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join("library/reuse-plain.toml");
    let mut child = Command::new(env!("CARGO_BIN_EXE_hfi-sim"))
        .args(["serve", "--socket"])
        .arg(&sock)
        .arg("--scenario")
        .arg(&lib)
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while !sock.exists() {
        assert!(t0.elapsed() < Duration::from_secs(10), "server did not come up");
        std::thread::sleep(Duration::from_millis(5));
    }
    let s = scenarios::harness::scenario::load_file(&lib).unwrap();
    let cfg = NodeConfig {
        mem_mib: 256,
        ..scenarios::harness::runner::node_config(&s, driver::Policy::Seed)
    };
    let mut n = scenarios::world::serve::connect_node(&sock, &cfg).unwrap();
    let va = n.alloc(1 << 20, mmu::Contiguity::Scattered).unwrap();
    n.request(1, va, 1 << 20, 5).unwrap();
    let done = n.run(2_000_000_000).unwrap();
    assert!(done.iter().any(|c| c.msg_id == 1 && c.ok), "{done:?}");
    assert_eq!(n.proc.read(va, 1 << 20).unwrap(), hfi_abi::psm::pattern(5, 1, 1 << 20));
    n.close().unwrap();
    drop(n);
    assert!(Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    assert!(child.wait().unwrap().success());
}
