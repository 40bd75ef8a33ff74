//! The scenario library passes on the correct driver under all its policies, and a run
//! repeated with the same seed produces the same DMA trace hash.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)] // test code: a panic is a failure

use std::path::Path;

use scenarios::harness::runner;
use scenarios::harness::scenario;

#[test]
fn library_passes_and_is_deterministic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("library");
    let scenarios: Vec<_> = scenario::load_dir(&dir).unwrap().into_iter().map(|(_, s)| s).collect();
    assert!(scenarios.len() >= 6);
    let a = runner::run_all(&scenarios, 2);
    let table = runner::table(&a);
    for r in &a {
        let r = r.as_ref().unwrap_or_else(|e| panic!("{e}\n{table}"));
        assert!(r.ok(), "{}\n{table}", r.scenario);
    }
    let b = runner::run_all(&scenarios, 2);
    let ha: Vec<u64> = a.iter().map(|r| r.as_ref().unwrap().trace_hash).collect();
    let hb: Vec<u64> = b.iter().map(|r| r.as_ref().unwrap().trace_hash).collect();
    assert_eq!(ha, hb, "same seed, same trace");
}

#[test]
fn trace_has_every_event_kind() {
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join("library/munmap-after-packets.toml");
    let s = scenario::load_file(&lib).unwrap();
    let r = runner::run_traced(&s, driver::Policy::Seed, true).unwrap();
    for cat in ["dma", "rcvarray", "invalidate", "fault"] {
        assert!(r.trace.iter().any(|e| e.cat == cat), "no {cat} event");
    }
    // The fault fires after its packets arrived, and the invalidation follows it.
    let fired = r.trace.iter().find(|e| e.name.ends_with("(fired)")).unwrap().ts;
    let inval = r.trace.iter().find(|e| e.cat == "invalidate").unwrap().ts;
    assert!(inval >= fired);
    let json = scenarios::world::trace::to_json(&[("x".into(), r.trace.clone())]);
    assert!(json["traceEvents"].as_array().unwrap().len() > r.trace.len());
    // Without tracing nothing is recorded.
    assert!(runner::run_one(&s, driver::Policy::Seed).unwrap().trace.is_empty());
}
