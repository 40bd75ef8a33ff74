//! The Rust driver for the modelled WFR HFI: transport-agnostic bring-up and receive loop, a
//! re-implementation of hfi1's expected-receive TID caching (kernel side), and a PSM-like user
//! library (TID cache and rendezvous receive).
//!
//! The driver touches the device only through [`transport::Transport`] and the process memory
//! only through [`mmu::PinDma`], so the same code runs in process, over a vfio-user socket and
//! inside a QEMU guest. It never depends on the device model (checked in CI).
//!
//! The only unsafe code is in `transport::vfio_user` (memfd, eventfd), `transport::linux_vfio`
//! (VFIO ioctls, the BAR0 mapping and its volatile accesses, eventfd) and `transport::eventfd`
//! (`ppoll`), each behind its transport's feature.
//!
//! Test rigs and mocks (`tid::test_utils::TidRig`, `user::mock::MockFd`,
//! `transport::mock::MockTransport`) are behind the `test-utils` feature, which only
//! `[dev-dependencies]` enable: a production build (`cargo build -p driver`) compiles none of
//! them. What production code needs of them has its own home: [`tid::standalone::KernelSide`]
//! and [`user::model_fd::ModelFd`].
#![deny(unsafe_code)] // `allow`ed only in `transport::{vfio_user, linux_vfio, eventfd}`

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
