//! The protocol between the host (`hfi-sim qemu` in `scenarios`) and the guest (`hfi-guest` in
//! `guest`), in a crate of its own so that each side builds only what it needs: the host never
//! links the guest's Linux VFIO transport and real-memory backend, the guest never links the
//! device model. It depends on serde alone.
//!
//! - [`report`]: the result lines the guest prints on the serial console
//!   (`HFI-GUEST <kind> <json>`) and the host picks out of the kernel's output;
//! - [`tidscript`]: the TID script of the differential check, run by the guest against the
//!   upstream hfi1 driver's character device and by the host against our driver, with the
//!   step results both sides record.
#![forbid(unsafe_code)]

pub mod report;
pub mod tidscript;
