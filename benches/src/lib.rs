//! Workloads of the criterion benches: they live in `scenarios::workloads` (also used by
//! `hfi-sim perf`) and are re-exported here.
#![forbid(unsafe_code)]

pub use scenarios::workloads::*;
