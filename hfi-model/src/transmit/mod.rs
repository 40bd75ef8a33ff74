//! The transmit side.
//!
//! - [`pio`] and [`sdma_status`]: what the device dispatch serves today — the PIO capture of
//!   the driver's sends (the CTS path of the in-process runs) and the SDMA engines' halt /
//!   clean-up / enable status for hfi1's bring-up.
//! - The transmit engine, self-contained and not yet routed from the MMIO dispatch
//!   (`docs/transmit.md`): PIO send contexts with credit return ([`send_ctxt`], [`credit`]),
//!   SDMA engines walking descriptor rings ([`sdma_engine`], [`descriptor`]), and the effects
//!   both return to the device — packets for the link, interrupts, DMA writes — with the
//!   send-side timing ([`effects`]).

pub mod credit;
pub mod descriptor;
pub mod effects;
pub mod pio;
pub mod sdma_engine;
pub mod sdma_status;
pub mod send_ctxt;

pub use effects::{TxCounters, TxDmaKind, TxEffect, TxPacket, TxSource, TxTiming};
pub use sdma_engine::SdmaEngine;
pub use send_ctxt::SendContext;
