//! The driver in a real Linux process: inside a QEMU guest, `hfi-guest` binds the HFI to
//! `vfio-pci` and runs the same driver and caching code as the in-process and socket runs,
//! on real memory:
//!
//! - [`process::RealProcess`]: the process's buffers ([`mmu::linux::AnonBuffer`]) and its
//!   memory as the TID code pins it ([`mmu::linux::LinuxMemory`]: mlock + pagemap, IOMMU maps
//!   through the VFIO container, userfaultfd invalidations);
//! - [`node::GuestNode`]: the driver's generic endpoint (`driver::endpoint::Endpoint`: one
//!   receive context, the kernel-side TID state, the receiver and its TID cache) over
//!   [`driver::transport::linux_vfio`];
//! - [`workload`]: the demo workload (`driver::endpoint::demo`, the same as `hfi-sim demo`)
//!   with the guest's rows, and the cost probes (guest MMIO, TID_UPDATE miss vs cache hit);
//! - [`error`]: the buffer and node errors;
//! - [`hfi1_cdev`]: the upstream hfi1 driver's character device, which the TID script of the
//!   differential check (`guest_proto::tidscript`) drives;
//! - [`opa_sm`] over [`umad`]: a minimal subnet manager that takes the upstream driver's port
//!   from Init to Active (tier B).
//!
//! The result lines the host reads from the serial console and the TID script are
//! `guest_proto`'s, shared with the host.
//!
//! The only unsafe code is the hfi1 ioctls in [`hfi1_cdev`] and the umad ioctls and poll in
//! [`umad`]. No dependency on the device model.
#![deny(unsafe_code)]

pub mod error;
pub mod hfi1_cdev;
pub mod node;
pub mod opa_sm;
pub mod process;
pub mod umad;
pub mod workload;
