//! hfi-sim scenarios: the in-process world and transport, simulated processes, the workloads
//! behind `hfi-sim demo`, and (later) scenario files, fault injection and the DMA oracle.
#![forbid(unsafe_code)]

pub mod catalog;
pub mod demo;
pub mod dma_watch;
pub mod host_costs;
pub mod inproc;
pub mod kdrv;
pub mod link_faults;
pub mod node;
pub mod perf;
pub mod process;
pub mod qemu;
pub mod runner;
pub mod scenario;
pub mod serve;
pub mod study;
pub mod trace;
pub mod workloads;
pub mod world;

pub use inproc::InProcTransport;
pub use world::World;
