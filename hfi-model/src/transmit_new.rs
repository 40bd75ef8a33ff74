//! The transmit engine: PIO send contexts with credit return, and SDMA engines.
//!
//! **Temporary module root.** The files live in `src/transmit/`; this file only declares them
//! until the `transmit/` module (being restructured in parallel) takes them over: move these
//! declarations into `transmit/mod.rs` and delete this file. Inside the files, siblings are
//! named through `super::`, so nothing else changes.

#[path = "transmit/credit.rs"]
pub mod credit;
#[path = "transmit/descriptor.rs"]
pub mod descriptor;
#[path = "transmit/effects.rs"]
pub mod effects;
#[path = "transmit/sdma_engine.rs"]
pub mod sdma_engine;
#[path = "transmit/send_ctxt.rs"]
pub mod send_ctxt;

pub use effects::{TxCounters, TxDmaKind, TxEffect, TxPacket, TxSource, TxTiming};
pub use sdma_engine::SdmaEngine;
pub use send_ctxt::SendContext;
