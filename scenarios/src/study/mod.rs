//! What-if studies (`hfi-sim study`).

pub mod params;
pub mod workload;
