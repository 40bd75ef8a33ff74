//! A DMA watcher: sees every device DMA write (through `hfi_model::DmaObserver`) and classifies
//! the target frames of the process pool at that simulated instant: mapped by their owner,
//! freed by the application but still pinned (orphans), or free (possibly already reused).

use std::cell::RefCell;
use std::rc::Rc;

use hfi_model::{DmaObserver, DmaTag};
use mmu::{FrameState, Pfn, SharedFramePool, PAGE_SIZE};
use serde::Serialize;

/// Where device writes into the process pool landed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DmaWatchStats {
    /// Writes into frames mapped by a process.
    pub to_mapped: u64,
    /// Writes into frames the application freed while the driver still pinned them.
    pub to_orphan: u64,
    /// Writes into free frames (a use-after-free: the frame can be handed to anyone).
    pub to_free: u64,
}

/// The observer; clone the `stats` handle to read the counts.
#[derive(Debug)]
pub struct DmaWatch {
    pool: SharedFramePool,
    /// Shared counts.
    pub stats: Rc<RefCell<DmaWatchStats>>,
}

impl DmaWatch {
    /// A watcher over `pool`.
    pub fn new(pool: SharedFramePool) -> Self {
        Self { pool, stats: Rc::new(RefCell::new(DmaWatchStats::default())) }
    }
}

impl DmaObserver for DmaWatch {
    fn dma_write(&mut self, _tag: &DmaTag, addr: u64, len: usize) {
        if len == 0 {
            return;
        }
        let first = addr / PAGE_SIZE;
        let last = (addr + len as u64 - 1) / PAGE_SIZE;
        let mut s = self.stats.borrow_mut();
        self.pool.with(|p| {
            for pfn in first..=last {
                match p.state(Pfn(pfn)) {
                    Some(FrameState::Mapped { .. }) => s.to_mapped += 1,
                    Some(FrameState::Orphan { .. }) => s.to_orphan += 1,
                    Some(FrameState::Free) => s.to_free += 1,
                    None => {}
                }
            }
        });
    }
}
