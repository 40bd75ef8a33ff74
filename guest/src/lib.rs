//! The driver in a real Linux process: inside a QEMU guest, `hfi-guest` binds the HFI to
//! `vfio-pci` and runs the same driver and caching code as the in-process and socket runs,
//! on real memory:
//!
//! - [`process::RealProcess`]: the process's buffers ([`mmu::linux::AnonBuffer`]) and its
//!   memory as the TID code pins it ([`mmu::linux::LinuxMemory`]: mlock + pagemap, IOMMU maps
//!   through the VFIO container, userfaultfd invalidations);
//! - [`node::GuestNode`]: the HFI over [`driver::transport::linux_vfio`], one receive context,
//!   the kernel-side TID state, the receiver and its TID cache;
//! - [`workload`]: the demo's buffer-reuse and freed-in-flight runs, and the cost probes
//!   (guest MMIO, TID_UPDATE miss vs cache hit);
//! - [`report`]: the result lines the host reads from the serial console.
//!
//! This crate has no unsafe code and does not depend on the device model.
#![forbid(unsafe_code)]

pub mod node;
pub mod process;
pub mod report;
pub mod workload;
