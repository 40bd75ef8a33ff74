//! The transmit side.
//!
//! - [`pio`]: the PIO capture of stores to a send context never enabled since reset (the CTS
//!   path of our own driver in the in-process runs), and the outbound packet queue.
//! - The transmit engine, routed from the MMIO dispatch by `device/tx.rs`
//!   (`docs/transmit.md` "Routing"): PIO send contexts with credit return ([`send_ctxt`],
//!   [`credit`]), SDMA engines walking descriptor rings ([`sdma_engine`], [`descriptor`];
//!   they also serve hfi1's engine start-up, formerly `sdma_status.rs`), and the effects both
//!   return to the device — packets for the link, interrupts, DMA writes — with the send-side
//!   timing ([`effects`]).

pub mod credit;
pub mod descriptor;
pub mod effects;
pub mod pio;
pub mod sdma_engine;
pub mod send_ctxt;

pub use effects::{TxCounters, TxDmaKind, TxEffect, TxPacket, TxSource, TxTiming};
pub use sdma_engine::SdmaEngine;
pub use send_ctxt::SendContext;
