//! The vfio-user device adapter behind `hfi-sim serve` (feature `server`).
//!
//! - [`model`]: the model thread, fed over a crossbeam channel, that owns the
//!   [`served`] device (device + DMA memory + remote peer + INTx line);
//! - [`wire`]: the socket side (framing, validation, dispatch) and the accept loop;
//! - [`protocol`]: the vfio-user constants (commands, sizes, flags, IRQ indices, errno);
//! - [`pci`]: configuration space, with [`pcie_cap`] and [`msix`] capabilities;
//! - [`stats`]: server counters.
//!
//! Interrupts: INTx by default (index 0, one eventfd). Every device vector signalled
//! (`take_interrupts`) writes the trigger eventfd once per settle, unless masked through
//! SET_IRQS ACTION_MASK; an unmask with a pending interrupt signals it. The line is edge-like
//! (no resample needed); the unmask (resample) fd QEMU sends is kept apart from the trigger fd.
//! Once SET_IRQS configures MSI-X vectors (index 2, one fd per message: QEMU splits), each
//! signalled vector writes its own eventfd instead ([`msix`]).

pub mod model;
pub mod msix;
pub mod pci;
pub mod pcie_cap;
pub mod protocol;
pub mod served;
pub mod stats;
pub mod wire;

pub use model::ModelThread;
pub use served::{ServedConfig, ServedDevice};
pub use stats::ServerStats;
pub use wire::serve;
