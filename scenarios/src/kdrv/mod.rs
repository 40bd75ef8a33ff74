//! The upstream `hfi1.ko` as a reference: its TID script results (from the guest) replayed
//! through our driver in process and compared step by step ([`diff`]).

pub mod diff;
