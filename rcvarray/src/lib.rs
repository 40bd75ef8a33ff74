//! The WFR RcvArray as data and bookkeeping, shared by the device model and the driver.
//!
//! - [`entries`]: the array itself ([`RcvArrayStore`]), with the hardware's WRITE_ENABLE rule:
//!   a write whose bit 63 is clear (the WC zero fill) leaves the entry unchanged.
//! - [`partition`]: hfi1's split of the array among receive contexts ([`ChipPartition`]) and
//!   of each context into eager and expected entries ([`ContextLayout`]), with the RcvEgrCtrl /
//!   RcvTidCtrl values that describe it to the hardware and the KDETH TID → entry lookup.
//! - [`group`] and [`allocator`]: hfi1's 8-entry TID groups and the empty / used / full lists
//!   ([`TidGroupAllocator`]) that TID_UPDATE places pagesets with and TID_FREE releases them to,
//!   reproducing the driver's placement order, list order and write sequence.
//!
//! # Invariants
//!
//! - Context ranges, eager and expected bases and counts are whole 8-entry groups; contexts do
//!   not overlap; a context has at most 2048 eager and 2048 expected entries.
//! - Each group's `used` equals the number of set bits in its map; every group is on exactly one
//!   list; a group is on the full list exactly when all 8 slots are used. Without programming
//!   errors, groups on the used list have 1..=7 slots in use and groups on the empty list none.
//!   A programming error leaves what hfi1 leaves: a group taken whole goes back to the empty
//!   list with the slots programmed before the error, and a group just moved to the used list
//!   may stay there with none in use (see [`allocator`]).
//! - Each `program_rcvarray` writes every slot of its group once, in slot order (a program or a
//!   WC fill), unless a program call fails part-way.
//! - No function panics on any input: indices are checked and arithmetic cannot overflow.
//!
//! # Not owned here
//!
//! No I/O, clock or threads. Register offsets and field layouts live in `hfi-abi`; pinning, DMA
//! mapping, MMU notifiers, tidinfo encoding and the per-fd state (`tid_used`, `entry_to_rb`) live
//! in the driver; deciding whether a packet may use an entry lives in the device model.
#![forbid(unsafe_code)]

pub mod allocator;
pub mod entries;
pub mod group;
pub mod partition;

pub use allocator::{
    AllocError, ListCounts, ListKind, SetupOutcome, SlotProgrammer, TidGroupAllocator,
};
pub use entries::{RcvArrayStore, WriteOutcome};
pub use group::{SlotMap, TidGroup, TID_GROUP_SIZE};
pub use partition::{
    expected_entry, ChipPartition, ContextLayout, ContextRange, PartitionError, GROUP_SIZE,
    MAX_EAGER, MAX_EXPECTED, MAX_RCV_ARRAY_CNT,
};
