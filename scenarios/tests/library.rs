//! The scenario library passes on the correct driver under all its policies, and a run
//! repeated with the same seed produces the same DMA trace hash.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)] // test code: a panic is a failure

use std::path::Path;

use scenarios::runner;
use scenarios::scenario;

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
