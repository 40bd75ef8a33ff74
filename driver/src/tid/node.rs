//! `struct tid_rb_node` (facts §6.1): one programmed expected TID, and its public snapshot
//! [`LiveTid`].

use hfi_abi::TidInfo;
use mmu::{Iova, NotifierId, Pfn, Va};

/// One TID: an RcvArray entry, the pinned pages behind it, their DMA mapping and the interval
/// notifier watching the virtual range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TidNode {
    /// Owning fd (subcontext).
    pub(crate) fd: u32,
    /// Absolute RcvArray entry.
    pub(crate) rcventry: u32,
    /// Entry relative to the context's expected base.
    pub(crate) rel: u32,
    /// First virtual address (`tbuf->vaddr + pageidx * 4 KiB`).
    pub(crate) vaddr: u64,
    /// Pages (a power of two).
    pub(crate) npages: u32,
    /// The pinned frames, physically contiguous.
    pub(crate) pfns: Vec<Pfn>,
    /// DMA address programmed into the entry.
    pub(crate) dma: Iova,
    /// The per-TID interval notifier (caching on).
    pub(crate) notifier: Option<NotifierId>,
    /// `__clear_tid_node` done: entry invalidated, DMA unmapped, pages unpinned (the 2023
    /// meaning of `node->freed`).
    pub(crate) released: bool,
    /// Queued on the fd's invalid-TID list (at most once; the 2016–2020 meaning of `freed`).
    pub(crate) invalidated: bool,
}

impl TidNode {
    /// The tidinfo naming this node.
    pub(crate) fn tidinfo(&self) -> TidInfo {
        TidInfo::for_entry(self.rel, self.npages).unwrap_or_default()
    }

    /// Snapshot for observers.
    pub(crate) fn live(&self) -> LiveTid {
        LiveTid {
            fd: self.fd,
            rcventry: self.rcventry,
            tidinfo: self.tidinfo(),
            vaddr: Va(self.vaddr),
            npages: self.npages,
            pfns: self.pfns.clone(),
            dma: self.dma,
            notifier: self.notifier,
            hw_programmed: !self.released,
            invalidated: self.invalidated,
        }
    }
}

/// A TID the driver holds (programmed, or invalidated but not yet freed by user space), as
/// tests, the oracle and reports see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveTid {
    /// Owning fd (subcontext).
    pub fd: u32,
    /// Absolute RcvArray entry.
    pub rcventry: u32,
    /// The tidinfo user space was given.
    pub tidinfo: TidInfo,
    /// First virtual address covered.
    pub vaddr: Va,
    /// Pages covered.
    pub npages: u32,
    /// Frames pinned for it (still listed after a 2023 invalidation released them).
    pub pfns: Vec<Pfn>,
    /// DMA address programmed.
    pub dma: Iova,
    /// Its interval notifier, while registered.
    pub notifier: Option<NotifierId>,
    /// The RcvArray entry is valid and the pages pinned (false after a 2023 invalidation).
    pub hw_programmed: bool,
    /// Queued for TID_INVAL_READ by an invalidation.
    pub invalidated: bool,
}
