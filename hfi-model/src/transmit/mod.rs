//! The transmit side: PIO send buffers and the packets they emit ([`pio`]) and the SDMA
//! engines' control and status registers ([`sdma_status`]).

pub mod pio;
pub mod sdma_status;
