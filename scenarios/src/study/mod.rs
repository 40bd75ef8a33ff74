//! What-if studies (`hfi-sim study`).

pub mod font;
pub mod params;
pub mod plot;
pub mod spec;
pub mod sweep;
pub mod trace;
pub mod workload;
