//! What differs between the hosts of an [`Endpoint`](super::Endpoint): the process (where its
//! MMU-notifier invalidations come from, when the driver's callback sees them, what it still
//! holds at teardown) and the host's hooks around the driver calls.

use mmu::Invalidation;

use crate::recv::{Receiver, UserProcess};

/// When a process's reported invalidations reach the driver's notifier callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Before each progress round and before teardown: the memory changed while the driver was
    /// not running, and the kernel's notifier has already been called (a real process, whose
    /// invalidations userfaultfd reports).
    BeforeCalls,
    /// When a progress round's driver calls return: faults raised inside those calls (the
    /// callback cannot be re-entered), as the simulated process raises them.
    AfterCalls,
}

/// What a process holds, as its teardown report counts it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Held {
    /// Page pins.
    pub pins: u64,
    /// `pinned_vm` (pages).
    pub pinned_vm: i64,
    /// Live DMA (IOMMU) mappings of its pages.
    pub dma_maps: u64,
}

/// The process an endpoint receives for.
pub trait EndpointProcess: UserProcess {
    /// When its reported invalidations are delivered.
    const DELIVERY: Delivery;
    /// Invalidations of its memory waiting for the driver's callback (a real process waits
    /// up to `wait_ms` for one to be reported).
    fn take_invalidations(&mut self, wait_ms: u64) -> Vec<Invalidation>;
    /// What it still holds.
    fn held(&self) -> Held;
    /// After each progress round (a real process samples its `pinned_vm` peak here).
    fn after_progress(&mut self) {}
}

/// What a host adds around an endpoint's driver calls (in process: the host-cost ledger and
/// the trace). `()` adds nothing.
pub trait EndpointHooks {
    /// An invalidation is about to reach the driver's callback, at `now_ns` on the transport's
    /// clock.
    fn on_invalidation(&mut self, inv: &Invalidation, now_ns: u64) {
        let _ = (inv, now_ns);
    }
    /// A progress round ended; `rx` has the receiver's counters.
    fn after_progress(&mut self, rx: &Receiver) {
        let _ = rx;
    }
}

impl EndpointHooks for () {}
