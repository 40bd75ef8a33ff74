//! `hfi-sim qemu`: the unmodified driver in a Linux guest against the served model.
//!
//! 1. The cache from `tools/qemu/setup.sh` (QEMU ≥ 10.1 in a private prefix, the bookworm
//!    cloud kernel, busybox-static) and the static `hfi-guest` binary.
//! 2. An initramfs: busybox, the VFIO modules, `hfi-guest`, an init script.
//! 3. `hfi-sim serve` on a fresh socket (a thread of this process), then QEMU (TCG, or KVM
//!    when it works) with the HFI as `vfio-user-pci` behind an emulated Intel IOMMU; the guest
//!    binds it to vfio-pci and runs the demo workload; its `HFI-GUEST` lines are streamed.
//! 4. Teardown bounded by timeouts (QEMU is killed at the deadline), then the checks: every
//!    guest row passed, the cache statistics agree with the same workload in process, and the
//!    server saw DMA maps for guest IOVAs and wrote guest memory.

pub mod boot;
pub mod env;
pub mod initramfs;
pub mod kdrv;
pub mod kdrv_diff;
pub mod psm2;
pub mod run;

pub use env::{build_guest_binary, default_cache, QemuEnv};
pub use run::{run, QemuOptions, QemuReport};
