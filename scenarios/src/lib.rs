//! hfi-sim scenarios: the simulated world around the device model and the `hfi-sim` binary,
//! one folder per layer (each only uses the layers listed before it):
//!
//! - [`world`]: the simulated world (device, host memory, remote sender), the in-process
//!   transport, the node (one receiving endpoint with its simulated process), host costs, the
//!   DMA oracle, link faults, the trace log, and the model served over a vfio-user socket;
//! - [`harness`]: the regression harness: scenario files, the runner, the historical-bug
//!   catalog, the demo;
//! - [`study`]: what-if studies (parameter sweeps, plots, calibration);
//! - [`qemu`]: the driver in a QEMU guest, and the upstream `hfi1.ko` against the model with
//!   its differential check;
//! - [`perf`]: the self-benchmark and the workloads it shares with the criterion benches;
//! - [`cli`]: the `hfi-sim` command line, one file per subcommand.
#![forbid(unsafe_code)]

pub mod cli;
pub mod harness;
pub mod perf;
pub mod qemu;
pub mod study;
pub mod world;

pub use world::{InProcTransport, World};
