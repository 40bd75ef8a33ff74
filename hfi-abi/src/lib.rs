//! The WFR (Intel Omni-Path HFI gen1, Linux `hfi1`) interface as data: BAR0 layout, CSR offsets
//! and fields, the RcvArray entry, the RHF, the wire headers (PBC, LRH, BTH, KDETH), the tidinfo
//! word and the user-ABI constants.
//!
//! This crate has no logic and no dependencies. Everything here is bit-exact to
//! `shared/reference/hfi1-facts.md`; where the facts say "unconfirmed", the choice is documented
//! in `DESIGN.md` and next to the constant. Neither the device model nor the driver owns the
//! interface: both import it from here.
#![forbid(unsafe_code)]

pub mod asic;
pub mod bar0;
pub mod cce;
pub mod dc;
pub mod field;
pub mod misc;
pub mod pcicfg;
pub mod pio;
pub mod psm;
pub mod rcv_array;
pub mod rhf;
pub mod rxe;
pub mod sdma;
pub mod tidinfo;
pub mod txe;
pub mod uapi;
pub mod wire;

pub use field::{Field, Field32, RegArray};
pub use rcv_array::{BufSize, RcvArrayEntry};
pub use rhf::{RcvType, Rhf};
pub use tidinfo::TidInfo;
pub use wire::Kdeth0;

/// Bytes in a page (the DMA/pin granularity of hfi1).
pub const PAGE_SIZE: u64 = 4096;
/// log2 of [`PAGE_SIZE`].
pub const PAGE_SHIFT: u32 = 12;
