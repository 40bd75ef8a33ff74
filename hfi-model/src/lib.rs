//! A cycle-approximate model of the receive engine of the Intel Omni-Path WFR HFI (Linux `hfi1`):
//! table-driven BAR0 MMIO, the RcvArray, receive contexts with the receive header queue (RHQ),
//! eager and expected (TID) receive, TID flows with header suppression, RcvAvail interrupts with
//! moderation, DMA through vm-memory, a virtual-time timing model and device counters; plus a
//! link peer that turns messages into the packet stream a PSM sender would emit.
//!
//! Invariants:
//! - The model reads no wall clock. [`SimTime`] is owned by the runner; events are ordered by
//!   `(time, seq)`, so one input sequence gives one output, bit for bit.
//! - Nothing a driver, guest or packet does can panic the model: bad accesses and bad packets
//!   are counted in [`Counters`] and ignored or reported through the RHF, as hardware does.
//! - DMA goes only through `vm_memory::Bytes`; an unbacked address is a counted device error.
//!
//! Not owned here: the vfio-user server adapter (in its own module, later), the driver, the
//! process memory model, the in-process transport (in `scenarios`).
#![forbid(unsafe_code)]

pub mod chip_regs;
pub mod context;
pub mod counters;
pub mod csr_file;
pub mod dc8051;
pub mod dcc;
pub mod device;
pub mod dma;
pub mod engine;
pub mod events;
pub mod irq;
pub mod lcb;
pub mod mmio;
pub mod packet;
pub mod peer;
pub mod pio;
pub mod regs;
pub mod remote;
pub mod sdma;
#[cfg(feature = "server")]
pub mod server;
pub mod test_utils;
pub mod time;
pub mod timing;
pub mod transmit_new;

pub use counters::Counters;
pub use device::{DataMode, DeviceConfig, DeviceError, HfiDevice};
pub use dma::{DmaKind, DmaObserver, DmaTag};
pub use packet::{Packet, ParsedHeader};
pub use peer::{Dest, FlowPos, Peer, PeerConfig, PeerError};
pub use time::SimTime;
pub use timing::{TimingModel, TimingParams};
