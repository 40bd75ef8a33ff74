//! `hfi-sim perf` in-process with the quick settings: every metric is present with a finite,
//! positive value and ratio. No timing thresholds (machines are noisy).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use scenarios::perf::{self, metric};

#[test]
fn quick_perf_reports_every_metric() {
    let report = perf::run(true).expect("perf run");
    assert!(report.quick);
    assert!(
        report.skipped.is_empty(),
        "the in-process server must start here: {:?}",
        report.skipped
    );
    for m in metric::ALL {
        let row = report.row(m).unwrap_or_else(|| panic!("missing metric {m}: {report:?}"));
        assert!(row.value.is_finite() && row.value > 0.0, "{m}: value {}", row.value);
        assert!(row.ratio.is_finite() && row.ratio > 0.0, "{m}: ratio {}", row.ratio);
        assert!(!row.unit.is_empty() && !row.ratio_of.is_empty(), "{m}: {row:?}");
    }
    assert_eq!(report.rows.len(), metric::ALL.len());
    let table = perf::table(&report);
    for m in metric::ALL {
        assert!(table.contains(m), "table lacks {m}:\n{table}");
    }
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["rows"].as_array().unwrap().len(), metric::ALL.len());
}
