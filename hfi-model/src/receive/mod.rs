//! The receive side: receive contexts with their RHQ, eager and TID configuration
//! ([`context`]) and the receive engine's decisions for one packet ([`engine`]: routing, TID
//! lookup, TID-flow checks, RHQ and eager placement). Pure state and functions over it: the
//! device ([`crate::device`]) schedules the DMA and interrupts the decisions ask for.

pub mod context;
pub mod engine;
