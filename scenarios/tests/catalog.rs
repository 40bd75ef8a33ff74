//! The historical-bug catalog: every re-introduced bug is caught by its probe scenario, and the
//! correct driver gives no finding.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)] // test code: a panic is a failure

#[test]
fn every_bug_caught_no_false_positive() {
    let rows = scenarios::harness::catalog::run();
    let table = scenarios::harness::catalog::table(&rows);
    assert_eq!(rows.len(), 11);
    for r in &rows {
        assert!(r.caught, "{} not caught\n{table}", r.bug);
        assert!(r.false_positives.is_empty(), "{} false positive\n{table}", r.bug);
    }
}
