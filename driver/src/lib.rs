//! The Rust driver for the modelled WFR HFI: transport-agnostic bring-up and receive loop, a
//! re-implementation of hfi1's expected-receive TID caching (kernel side), and a PSM-like user
//! library (TID cache and rendezvous receive).
//!
//! The driver touches the device only through [`transport::Transport`] and the process memory
//! only through [`mmu::PinDma`], so the same code runs in process, over a vfio-user socket and
//! inside a QEMU guest. It never depends on the device model (checked in CI).
#![deny(unsafe_code)] // only `transport::vfio_user` and `transport::linux_vfio` allow it

pub mod endpoint;
pub mod errno;
pub mod hw;
pub mod put_tid;
pub mod recv;
pub mod tid;
pub mod transport;
pub mod uapi;
pub mod user;

pub use errno::Errno;
pub use tid::{TidConfig, TidContext};
pub use uapi::{CtxtInfo, HfiFd, Policy, TidUpdate};
