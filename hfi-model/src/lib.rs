//! A cycle-approximate model of the receive engine of the Intel Omni-Path WFR HFI (Linux `hfi1`):
//! table-driven BAR0 MMIO, the RcvArray, receive contexts with the receive header queue (RHQ),
//! eager and expected (TID) receive, TID flows with header suppression, RcvAvail interrupts with
//! moderation, DMA through vm-memory, a virtual-time timing model and device counters; plus a
//! link peer that turns messages into the packet stream a PSM sender would emit, and (feature
//! `server`) the vfio-user server behind `hfi-sim serve`.
//!
//! Code map (lower layers first; a module uses only those above it in this list):
//!
//! | module | owns |
//! |---|---|
//! | [`counters`], [`time`], [`timing`], [`events`], [`dma`], [`irq`], [`packet`] | counters, virtual time, the timing model, the event queue, DMA through vm-memory, interrupt state, the packet and its parsed header |
//! | [`regs`] | the register tables (global, per-context, chip: [`regs::chip`]), the generic CSR file ([`regs::csr_file`]) and the BAR0 decode ([`regs::decode`]); tables name side effects by tag, no behaviour |
//! | [`receive`] | receive contexts ([`receive::context`]) and the receive engine's decisions ([`receive::engine`]) |
//! | [`transmit`] | PIO send contexts with credit return, SDMA engines, the PIO capture ([`transmit::pio`]); routed from the MMIO dispatch by `device/tx.rs` |
//! | [`link`] | the 8051, DCC and LCB ([`link::dc8051`], [`link::dcc`], [`link::lcb`]) and the link partner ([`link::peer`], [`link::remote`]) |
//! | [`device`] | [`HfiDevice`]: construction, MMIO entry and dispatch ([`device::mmio`]), chip CSR behaviour ([`device::chip`]), the receive datapath |
//! | [`setup`] | driver-less context setup for benches and perf workloads |
//! | `server` | the vfio-user server (feature `server`) |
//! | `test_utils` | test helpers (feature `test-utils`) |
//!
//! Invariants:
//! - The model reads no wall clock. [`SimTime`] is owned by the runner; events are ordered by
//!   `(time, seq)`, so one input sequence gives one output, bit for bit.
//! - Nothing a driver, guest or packet does can panic the model: bad accesses and bad packets
//!   are counted in [`Counters`] and ignored or reported through the RHF, as hardware does.
//! - DMA goes only through `vm_memory::Bytes`; an unbacked address is a counted device error.
//!
//! Not owned here: the driver, the process memory model, the in-process transport (in
//! `scenarios`).
#![forbid(unsafe_code)]

pub mod counters;
pub mod device;
pub mod dma;
pub mod events;
pub mod irq;
pub mod link;
pub mod packet;
pub mod receive;
pub mod regs;
#[cfg(feature = "server")]
pub mod server;
pub mod setup;
#[cfg(any(test, feature = "test-utils"))]
pub mod test_utils;
pub mod time;
pub mod timing;
pub mod transmit;

pub use link::remote;
pub use regs::csr_file;

pub use counters::Counters;
pub use device::{DataMode, DeviceConfig, DeviceError, HfiDevice};
pub use dma::{DmaKind, DmaObserver, DmaTag};
pub use link::peer::{Dest, FlowPos, Peer, PeerConfig, PeerError};
pub use packet::{Packet, ParsedHeader};
pub use time::SimTime;
pub use timing::{TimingModel, TimingParams};
