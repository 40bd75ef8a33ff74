//! Workloads of the criterion benches: they live in `scenarios::perf::workloads` (also used by
//! `hfi-sim perf`) and are re-exported here.
#![forbid(unsafe_code)]

pub use scenarios::perf::workloads::*;
