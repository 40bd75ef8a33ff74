//! The DMA oracle: sees every device DMA write (through `hfi_model::DmaObserver`) and judges the
//! target frames of the process pool *at that simulated instant* against the memory model's
//! ownership and pin state:
//!
//! | frame state | verdict |
//! |---|---|
//! | mapped by the receiving process and pinned | fine |
//! | freed by the application, still pinned by the driver (orphan) | `DmaIntoFreedPinnedPage` — the `seed`/`nocache` design (pages stay pinned until TID_FREE): expected there, reported |
//! | free (the frame may be handed to anyone) | `DmaIntoFreePage` — a use after free: always a violation |
//! | mapped by another owner | `DmaIntoOtherOwnersPage` — a violation |
//! | mapped by the receiver but not pinned | `DmaIntoUnpinnedPage` — a violation (the page could move or be reclaimed) |
//!
//! Each verdict explains itself: time, packet id, what the write was for (the RcvArray entry
//! for expected payloads), the page, its state, and the injection point active at the time; the
//! `dma_index` is the position of the write in the run's DMA stream (the trace position).

use std::cell::RefCell;
use std::rc::Rc;

use hfi_model::{DmaKind, DmaObserver, DmaTag};
use mmu::{FrameState, OwnerId, Pfn, SharedFramePool, PAGE_SIZE};
use serde::Serialize;

/// Where device writes into the process pool landed (page counts).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DmaWatchStats {
    /// Writes into frames mapped by the receiving process and pinned.
    pub to_mapped: u64,
    /// Writes into frames the application freed while the driver still pinned them.
    pub to_orphan: u64,
    /// Writes into free frames (a use-after-free: the frame can be handed to anyone).
    pub to_free: u64,
    /// Writes into frames another owner maps.
    pub to_other_owner: u64,
    /// Writes into frames the receiver maps but nobody pins.
    pub to_unpinned: u64,
    /// DMA writes seen (all, also outside the pool).
    pub dma_writes: u64,
    /// FNV-1a hash of every DMA write `(time, address, length, packet, purpose)` in order: two
    /// runs with the same seed must produce the same value.
    pub trace_hash: u64,
}

/// What a verdict is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum VerdictKind {
    /// DMA into a free frame.
    DmaIntoFreePage,
    /// DMA into a frame another owner maps.
    DmaIntoOtherOwnersPage,
    /// DMA into a mapped frame nobody pins.
    DmaIntoUnpinnedPage,
    /// DMA into a frame the application freed and the driver still pins (policy-dependent).
    DmaIntoFreedPinnedPage,
}

impl VerdictKind {
    /// True for verdicts that are violations under every policy.
    pub fn is_violation(self) -> bool {
        !matches!(self, VerdictKind::DmaIntoFreedPinnedPage)
    }
}

/// One explained finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// What happened.
    pub kind: VerdictKind,
    /// Simulated time (ps).
    pub time_ps: u64,
    /// Position of the write in the run's DMA stream.
    pub dma_index: u64,
    /// Packet id (sender-chosen).
    pub packet_id: u64,
    /// Receive context.
    pub ctxt: u32,
    /// RcvArray entry of an expected payload.
    pub rcv_entry: Option<u32>,
    /// The frame.
    pub pfn: u64,
    /// The injection point active when it happened.
    pub injection: Option<String>,
    /// One-line explanation.
    pub detail: String,
}

/// The oracle; clone `stats`, `verdicts` and `injection` to read or steer it.
#[derive(Debug)]
pub struct DmaWatch {
    pool: SharedFramePool,
    receiver: OwnerId,
    /// Shared counts.
    pub stats: Rc<RefCell<DmaWatchStats>>,
    /// Explained findings (at most `max_verdicts` kept; counts are always complete).
    pub verdicts: Rc<RefCell<Vec<Verdict>>>,
    /// The injection point currently active (set by the fault injector).
    pub injection: Rc<RefCell<Option<String>>>,
    /// Trace of every DMA write, when tracing.
    pub trace: Option<crate::world::trace::TraceLog>,
    max_verdicts: usize,
}

impl DmaWatch {
    /// An oracle over `pool` for the process `receiver`.
    pub fn new(pool: SharedFramePool, receiver: OwnerId) -> Self {
        Self {
            pool,
            receiver,
            stats: Rc::new(RefCell::new(DmaWatchStats::default())),
            verdicts: Rc::new(RefCell::new(Vec::new())),
            injection: Rc::new(RefCell::new(None)),
            trace: None,
            max_verdicts: 1000,
        }
    }
}

impl DmaObserver for DmaWatch {
    fn dma_write(&mut self, tag: &DmaTag, addr: u64, len: usize) {
        let index = {
            let mut s = self.stats.borrow_mut();
            s.dma_writes += 1;
            let purpose = match tag.kind {
                DmaKind::ExpectedPayload { rcv_entry } => u64::from(rcv_entry),
                DmaKind::EagerPayload { egr_index } => (1 << 32) | u64::from(egr_index),
                DmaKind::RhqEntry => 2 << 32,
                DmaKind::RhqTail => 3 << 32,
                DmaKind::Transmit(_) => 4 << 32,
            };
            let mut h = if s.trace_hash == 0 { 0xcbf2_9ce4_8422_2325 } else { s.trace_hash };
            for w in [tag.time.0, addr, len as u64, tag.packet_id, purpose] {
                for b in w.to_le_bytes() {
                    h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3);
                }
            }
            s.trace_hash = h;
            s.dma_writes - 1
        };
        if let Some(t) = &self.trace {
            let name = match tag.kind {
                DmaKind::ExpectedPayload { .. } => "expected payload",
                DmaKind::EagerPayload { .. } => "eager payload",
                DmaKind::RhqEntry => "RHQ entry",
                DmaKind::RhqTail => "RHQ tail",
                DmaKind::Transmit(_) => "transmit write-back",
            };
            let args = serde_json::json!({ "addr": format!("{addr:#x}"), "len": len, "packet": tag.packet_id, "kind": format!("{:?}", tag.kind), "dma_index": index });
            t.instant("dma", name.to_string(), tag.time.0, tag.ctxt, args);
        }
        if len == 0 {
            return;
        }
        let first = addr / PAGE_SIZE;
        let last = (addr + len as u64 - 1) / PAGE_SIZE;
        let rcv_entry = match tag.kind {
            DmaKind::ExpectedPayload { rcv_entry } => Some(rcv_entry),
            _ => None,
        };
        let receiver = self.receiver;
        let mut found = Vec::new();
        self.pool.with(|p| {
            for pfn in first..=last {
                let pins = p.pin_count(Pfn(pfn));
                let v = match p.state(Pfn(pfn)) {
                    None => continue,
                    Some(FrameState::Mapped { owner, .. }) if owner != receiver => Some((
                        VerdictKind::DmaIntoOtherOwnersPage,
                        format!("mapped by owner {}", owner.0),
                    )),
                    Some(FrameState::Mapped { va, .. }) if pins == 0 => Some((
                        VerdictKind::DmaIntoUnpinnedPage,
                        format!("mapped at {va}, not pinned"),
                    )),
                    Some(FrameState::Mapped { .. }) => None,
                    Some(FrameState::Orphan { .. }) => Some((
                        VerdictKind::DmaIntoFreedPinnedPage,
                        format!("freed by the application, pinned {pins}x by the driver"),
                    )),
                    Some(FrameState::Free) => {
                        Some((VerdictKind::DmaIntoFreePage, "free frame".to_string()))
                    }
                };
                found.push((pfn, v));
            }
        });
        let mut s = self.stats.borrow_mut();
        let mut verdicts = self.verdicts.borrow_mut();
        for (pfn, v) in found {
            let Some((kind, why)) = v else {
                s.to_mapped += 1;
                continue;
            };
            match kind {
                VerdictKind::DmaIntoFreePage => s.to_free += 1,
                VerdictKind::DmaIntoOtherOwnersPage => s.to_other_owner += 1,
                VerdictKind::DmaIntoUnpinnedPage => s.to_unpinned += 1,
                VerdictKind::DmaIntoFreedPinnedPage => s.to_orphan += 1,
            }
            if verdicts.len() < self.max_verdicts {
                let entry = rcv_entry.map_or(String::new(), |e| format!(" via RcvArray entry {e}"));
                verdicts.push(Verdict {
                    kind,
                    time_ps: tag.time.0,
                    dma_index: index,
                    packet_id: tag.packet_id,
                    ctxt: tag.ctxt,
                    rcv_entry,
                    pfn,
                    injection: self.injection.borrow().clone(),
                    detail: format!(
                        "{kind:?}: packet {} ({:?}){entry} wrote page {pfn:#x} at {}: {why}",
                        tag.packet_id, tag.kind, tag.time
                    ),
                });
            }
        }
    }
}
