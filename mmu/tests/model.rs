//! Property test: random sequences of mmap / munmap / shrink / mremap / madvise / touch / pin /
//! unpin / notifier insert / remove on two processes sharing one small frame pool, checked step
//! by step against a deliberately different reference model (a per-page map instead of VMAs
//! and extents).
//!
//! Checked after every step: the implementation's own invariant checks; the VMA list, page
//! table, and every frame's state and pin count equal the model's (so pin counts never go
//! negative, no frame is both free and mapped or mapped twice, and an orphan is freed exactly
//! when its last pin drops); the free count and the reuse counter match. For every begin phase:
//! the invalidations name exactly the notifiers overlapping the affected range, once each, with
//! bumped sequences, and after the commit `read_retry` reports them while other notifiers'
//! sequences are unchanged.

// Test-only code: a failed expect or index is a test failure, as clippy.toml allows inside
// #[test] functions; the harness helpers live outside them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::{BTreeMap, BTreeSet};

use mmu::space::{DEFAULT_MMAP_BASE, TASK_SIZE};
use mmu::{
    AddressSpace, Contiguity, FrameState, InvalidateEvent, Invalidation, MmapError, NotifierId,
    OwnerId, PendingUnmap, Pfn, PinError, SharedFramePool, UnmapError, Va, PAGE_SIZE,
};
use proptest::prelude::*;

const PS: u64 = PAGE_SIZE;
const FRAMES: u64 = 40;
const POOL_BASE: u64 = 0x40_0000;

/// What the notifier callback does (on the first invalidation of an operation).
#[derive(Clone, Copy, Debug)]
enum Cb {
    Nothing,
    UnpinOne(usize),
    RemoveNotifier,
    PinAtStart(u64),
    InsertLate,
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Mmap { who: usize, pages: u64, policy: u8 },
    MmapAtFreed { who: usize, idx: usize, policy: u8 },
    Munmap { who: usize, region: usize, off: u64, pages: u64, cb: Cb },
    Shrink { who: usize, region: usize, keep: u64, cb: Cb },
    Mremap { who: usize, region: usize, pages: u64, may_move: bool, cb: Cb },
    Madvise { who: usize, region: usize, off: u64, pages: u64, cb: Cb },
    Touch { who: usize, region: usize },
    Pin { who: usize, region: usize, off: u64, pages: u64 },
    Unpin { who: usize, idx: usize, dirty: bool },
    NotifierInsert { who: usize, region: usize, off: i64, pages: u64 },
    NotifierRemove { who: usize, idx: usize },
}

fn cb() -> impl Strategy<Value = Cb> {
    prop_oneof![
        3 => Just(Cb::Nothing),
        1 => any::<usize>().prop_map(Cb::UnpinOne),
        1 => Just(Cb::RemoveNotifier),
        1 => (1..4u64).prop_map(Cb::PinAtStart),
        1 => Just(Cb::InsertLate),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let who = 0..2usize;
    prop_oneof![
        4 => (who.clone(), 1..7u64, 0..4u8).prop_map(|(who, pages, policy)| Op::Mmap { who, pages, policy }),
        1 => (who.clone(), any::<usize>(), 0..4u8).prop_map(|(who, idx, policy)| Op::MmapAtFreed { who, idx, policy }),
        2 => (who.clone(), any::<usize>(), 0..4u64, 1..8u64, cb()).prop_map(|(who, region, off, pages, cb)| Op::Munmap { who, region, off, pages, cb }),
        1 => (who.clone(), any::<usize>(), 1..6u64, cb()).prop_map(|(who, region, keep, cb)| Op::Shrink { who, region, keep, cb }),
        2 => (who.clone(), any::<usize>(), 1..9u64, any::<bool>(), cb()).prop_map(|(who, region, pages, may_move, cb)| Op::Mremap { who, region, pages, may_move, cb }),
        2 => (who.clone(), any::<usize>(), 0..4u64, 1..6u64, cb()).prop_map(|(who, region, off, pages, cb)| Op::Madvise { who, region, off, pages, cb }),
        1 => (who.clone(), any::<usize>()).prop_map(|(who, region)| Op::Touch { who, region }),
        4 => (who.clone(), any::<usize>(), 0..4u64, 1..8u64).prop_map(|(who, region, off, pages)| Op::Pin { who, region, off, pages }),
        3 => (who.clone(), any::<usize>(), any::<bool>()).prop_map(|(who, idx, dirty)| Op::Unpin { who, idx, dirty }),
        3 => (who.clone(), any::<usize>(), -1..4i64, 1..6u64).prop_map(|(who, region, off, pages)| Op::NotifierInsert { who, region, off, pages }),
        1 => (who, any::<usize>()).prop_map(|(who, idx)| Op::NotifierRemove { who, idx }),
    ]
}

fn policy(p: u8) -> Contiguity {
    match p {
        0 => Contiguity::Contiguous,
        1 => Contiguity::Scattered,
        2 => Contiguity::Runs { pages: 2 },
        _ => Contiguity::Random { seed: u64::from(p) },
    }
}

fn owner(who: usize) -> OwnerId {
    OwnerId(who as u32 + 1)
}

#[derive(Clone, Copy, Debug)]
struct MPage {
    vma: u64,
    frame: Option<Pfn>,
}

#[derive(Clone, Copy, Debug)]
struct MNotifier {
    start: u64,
    end: u64,
    seq: u64,
}

#[derive(Default, Debug)]
struct MSpace {
    /// Mapped page → (VMA id, present frame).
    pages: BTreeMap<u64, MPage>,
    notifiers: BTreeMap<NotifierId, MNotifier>,
    pins: Vec<Vec<Pfn>>,
    freed: Vec<(u64, u64)>,
}

#[derive(Clone, Copy, Debug)]
struct MFrame {
    owner: OwnerId,
    va: Option<u64>,
    pins: u32,
}

#[derive(Debug)]
struct Model {
    sp: [MSpace; 2],
    /// Non-free frames.
    frames: BTreeMap<Pfn, MFrame>,
    ever: BTreeSet<Pfn>,
    reused: u64,
    allocs: u64,
    next_vma: u64,
}

impl Model {
    fn free(&self) -> u64 {
        FRAMES - self.frames.len() as u64
    }

    /// VMAs as (start, end): runs of adjacent pages with the same id.
    fn vmas(&self, who: usize) -> Vec<(u64, u64)> {
        let mut out: Vec<(u64, u64, u64)> = Vec::new();
        for (&va, p) in &self.sp[who].pages {
            match out.last_mut() {
                Some((_, end, id)) if *end == va && *id == p.vma => *end += PS,
                _ => out.push((va, va + PS, p.vma)),
            }
        }
        out.into_iter().map(|(s, e, _)| (s, e)).collect()
    }

    fn region(&self, who: usize, idx: usize) -> Option<(u64, u64)> {
        let v = self.vmas(who);
        if v.is_empty() {
            None
        } else {
            Some(v[idx % v.len()])
        }
    }

    fn mapped(&self, who: usize, va: u64) -> bool {
        self.sp[who].pages.contains_key(&va)
    }

    fn range_free(&self, who: usize, start: u64, end: u64) -> bool {
        self.sp[who].pages.range(start..end).next().is_none()
    }

    fn learn(&mut self, who: usize, va: u64, pfn: Pfn) {
        assert!(!self.frames.contains_key(&pfn), "{pfn} handed out while not free");
        if !self.ever.insert(pfn) {
            self.reused += 1;
        }
        self.allocs += 1;
        self.frames.insert(pfn, MFrame { owner: owner(who), va: Some(va), pins: 0 });
        self.sp[who].pages.get_mut(&va).expect("page mapped").frame = Some(pfn);
    }

    fn drop_frame(&mut self, pfn: Pfn) {
        let f = self.frames.get_mut(&pfn).expect("dropped frame known");
        f.va = None;
        if f.pins == 0 {
            self.frames.remove(&pfn);
        }
    }

    fn unpin(&mut self, pfn: Pfn) {
        let f = self.frames.get_mut(&pfn).expect("unpinned frame known");
        assert!(f.pins > 0, "model pin count would go negative");
        f.pins -= 1;
        if f.pins == 0 && f.va.is_none() {
            self.frames.remove(&pfn);
        }
    }

    fn pin(&mut self, pfn: Pfn) {
        self.frames.get_mut(&pfn).expect("pinned frame known").pins += 1;
    }

    /// Remove the pages of `[start, end)` from the mapping.
    fn unmap_range(&mut self, who: usize, start: u64, end: u64) {
        let gone: Vec<u64> = self.sp[who].pages.range(start..end).map(|(&v, _)| v).collect();
        for va in gone {
            let p = self.sp[who].pages.remove(&va).expect("present");
            if let Some(f) = p.frame {
                self.drop_frame(f);
            }
        }
    }

    /// `[start, end)` clipped to the mapped pages it contains.
    fn span(&self, who: usize, start: u64, end: u64) -> Option<(u64, u64)> {
        let mut it = self.sp[who].pages.range(start..end);
        let first = *it.next()?.0;
        let last = self.sp[who].pages.range(start..end).next_back().map(|(&v, _)| v)?;
        Some((first, last + PS))
    }

    fn overlapping(&self, who: usize, start: u64, end: u64) -> BTreeSet<NotifierId> {
        self.sp[who]
            .notifiers
            .iter()
            .filter(|(_, n)| n.start < end && start < n.end)
            .map(|(&id, _)| id)
            .collect()
    }
}

/// The implementation and the reference model side by side, step by step.
#[path = "model/harness.rs"]
mod harness;
