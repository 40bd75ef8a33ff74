//! State-machine test of the kernel-side TID caching: random sequences of TID_UPDATE (whole or
//! split around an munmap), TID_FREE of live / stale / garbage tidinfo, TID_INVAL_READ, munmap,
//! mremap, madvise(DONTNEED), MAP_FIXED reuse of a freed range and close/re-open, per policy,
//! with the invariants checked after every step and a full teardown check at the end.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::collections::BTreeSet;

use driver::tid::test_utils::TidRig;
use driver::tid::TidConfig;
use driver::{Errno, Policy};
use hfi_abi::uapi::event::TID_MMU_NOTIFY;
use hfi_abi::{RcvArrayEntry, TidInfo};
use mmu::{Contiguity, FrameState, Va, PAGE_SIZE};
use proptest::prelude::*;

const FDS: u32 = 2;
const EXPECTED: u32 = 48;

#[derive(Clone, Debug)]
enum Op {
    Mmap { pages: u64, contig: u8 },
    Update { fd: u32, buf: usize, off: u64, pages: u64 },
    UpdateRace { fd: u32, buf: usize, off: u64, pages: u64, cut_off: u64, cut_pages: u64 },
    UpdateHole { fd: u32, pick: usize, pages: u64 },
    FreeLive { pick: usize },
    FreeAllOfFd { fd: u32 },
    FreeStale { pick: usize },
    FreeGarbage { fd: u32, raw: u32 },
    InvalReadFree { fd: u32 },
    Munmap { buf: usize, off: u64, pages: u64 },
    Mremap { buf: usize, grow: u64 },
    Madvise { buf: usize, off: u64, pages: u64 },
    ReuseFixed { pick: usize, contig: u8 },
    CloseReopen { fd: u32 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (1u64..=24, 0u8..4).prop_map(|(pages, contig)| Op::Mmap { pages, contig }),
        6 => (0..FDS, 0usize..8, 0u64..24, 1u64..=24)
            .prop_map(|(fd, buf, off, pages)| Op::Update { fd, buf, off, pages }),
        2 => (0..FDS, 0usize..8, 0u64..24, 1u64..=24, 0u64..24, 1u64..=8).prop_map(
            |(fd, buf, off, pages, cut_off, cut_pages)| Op::UpdateRace {
                fd, buf, off, pages, cut_off, cut_pages
            }
        ),
        1 => (0..FDS, 0usize..8, 1u64..=8)
            .prop_map(|(fd, pick, pages)| Op::UpdateHole { fd, pick, pages }),
        3 => (0usize..64).prop_map(|pick| Op::FreeLive { pick }),
        1 => (0..FDS).prop_map(|fd| Op::FreeAllOfFd { fd }),
        1 => (0usize..64).prop_map(|pick| Op::FreeStale { pick }),
        1 => (0..FDS, any::<u32>()).prop_map(|(fd, raw)| Op::FreeGarbage { fd, raw }),
        2 => (0..FDS).prop_map(|fd| Op::InvalReadFree { fd }),
        3 => (0usize..8, 0u64..24, 1u64..=8)
            .prop_map(|(buf, off, pages)| Op::Munmap { buf, off, pages }),
        1 => (0usize..8, 1u64..=8).prop_map(|(buf, grow)| Op::Mremap { buf, grow }),
        1 => (0usize..8, 0u64..24, 1u64..=8)
            .prop_map(|(buf, off, pages)| Op::Madvise { buf, off, pages }),
        1 => (0usize..8, 0u8..4).prop_map(|(pick, contig)| Op::ReuseFixed { pick, contig }),
        1 => (0..FDS).prop_map(|fd| Op::CloseReopen { fd }),
    ]
}

fn contiguity(c: u8) -> Contiguity {
    match c {
        0 => Contiguity::Contiguous,
        1 => Contiguity::Scattered,
        2 => Contiguity::Runs { pages: 3 },
        _ => Contiguity::Random { seed: 7 },
    }
}

/// The process and the user-side knowledge the test keeps.
struct Model {
    policy: Policy,
    rig: TidRig,
    /// Mapped ranges (start, pages).
    bufs: Vec<(Va, u64)>,
    /// Unmapped ranges available for MAP_FIXED reuse.
    holes: Vec<(Va, u64)>,
    /// TIDs user space was given and has not freed.
    known: Vec<(u32, TidInfo)>,
    /// TIDs user space freed (for stale frees).
    freed: Vec<(u32, TidInfo)>,
    /// Virtual pages madvise(DONTNEED) has hit.
    madvised: BTreeSet<u64>,
    /// Entries programmed by a setup an munmap raced unseen (Seed/NoCache: allowed stale).
    raced: BTreeSet<u32>,
}

impl Model {
    fn new(policy: Policy) -> Model {
        let mut rig = TidRig::new(TidConfig::new(policy), EXPECTED, FDS, 1024).unwrap();
        // RLIMIT_MEMLOCK 512 KiB: 128 pages per process, 32 per fd (the pin limit bites).
        rig.space_mut().set_rlimit_memlock(Some(512 << 10));
        Model {
            policy,
            rig,
            bufs: Vec::new(),
            holes: Vec::new(),
            known: Vec::new(),
            freed: Vec::new(),
            madvised: BTreeSet::new(),
            raced: BTreeSet::new(),
        }
    }

    /// `[off, off+pages)` of buffer `buf`, clipped to it (None when there is no buffer).
    fn range(&self, buf: usize, off: u64, pages: u64) -> Option<(Va, u64)> {
        let &(va, len) = self.bufs.get(buf % self.bufs.len().max(1))?;
        let off = off % len;
        let pages = pages.min(len - off).max(1);
        Some((Va(va.0 + off * PAGE_SIZE), pages))
    }

    /// Remove `[va, va+pages)` from the tracked buffers (it was unmapped) and remember the hole.
    fn cut(&mut self, va: Va, pages: u64) {
        let (a, b) = (va.0, va.0 + pages * PAGE_SIZE);
        let mut next = Vec::new();
        for &(s, n) in &self.bufs {
            let e = s.0 + n * PAGE_SIZE;
            if e <= a || s.0 >= b {
                next.push((s, n));
                continue;
            }
            if s.0 < a {
                next.push((s, (a - s.0) / PAGE_SIZE));
            }
            if e > b {
                next.push((Va(b), (e - b) / PAGE_SIZE));
            }
        }
        self.bufs = next;
        self.holes.push((va, pages));
    }

    fn forget(&mut self, fd: u32, t: TidInfo) {
        if let Some(i) = self.known.iter().position(|&k| k == (fd, t)) {
            self.known.remove(i);
        }
        self.freed.push((fd, t));
        if let Some(rel) = t.rel_entry() {
            self.raced.remove(&(2048 + rel));
        }
    }

    fn record_update(&mut self, fd: u32, r: &Result<driver::TidUpdate, Errno>, asked: u64) {
        match r {
            Ok(u) => {
                assert!(!u.tidlist.is_empty(), "success with no TID");
                let pages: u32 = u.tidlist.iter().map(|t| t.npages()).sum();
                assert_eq!(u.length, pages * PAGE_SIZE as u32);
                assert!(u64::from(pages) <= asked);
                self.known.extend(u.tidlist.iter().map(|&t| (fd, t)));
            }
            Err(e) => assert!(
                matches!(e, Errno::NoSpc | Errno::NoMem | Errno::Fault | Errno::Busy | Errno::BadF),
                "unexpected {e:?}"
            ),
        }
    }

    fn free(&mut self, fd: u32, tids: &[TidInfo]) {
        match self.rig.free(fd, tids) {
            Ok(n) => {
                assert_eq!(n as usize, tids.len());
                for &t in tids {
                    self.forget(fd, t);
                }
            }
            Err(e) => {
                assert!(matches!(e, Errno::Inval | Errno::BadF), "free gave {e:?}");
                // A single stale or foreign tidinfo: user space drops it.
                if let [t] = tids {
                    if let Some(i) = self.known.iter().position(|&k| k == (fd, *t)) {
                        self.known.remove(i);
                    }
                }
            }
        }
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Mmap { pages, contig } => {
                if let Ok(va) = self.rig.space_mut().mmap(pages * PAGE_SIZE, contiguity(contig)) {
                    self.bufs.push((va, pages));
                }
            }
            Op::Update { fd, buf, off, pages } => {
                // Not clipped to the buffer: the request may run past its end (partial pin).
                let Some((va, _)) = self.range(buf, off, 1) else { return };
                let r = self.rig.update(fd, va, (pages * PAGE_SIZE) as u32);
                self.record_update(fd, &r, pages);
            }
            Op::UpdateHole { fd, pick, pages } => {
                if self.holes.is_empty() {
                    return;
                }
                let (va, _) = self.holes[pick % self.holes.len()];
                let mapped = self.rig.space().is_mapped(va);
                let r = self.rig.update(fd, va, (pages * PAGE_SIZE) as u32);
                if !mapped {
                    // The pin limit is checked before pinning, so ENOMEM can come first.
                    assert!(matches!(r, Err(Errno::Fault | Errno::NoMem)), "unmapped: {r:?}");
                }
                self.record_update(fd, &r, pages);
            }
            Op::UpdateRace { fd, buf, off, pages, cut_off, cut_pages } => {
                let Some((va, n)) = self.range(buf, off, pages) else { return };
                let Some((cva, cn)) = self.range(buf, cut_off, cut_pages) else { return };
                let Ok(p) = self.rig.update_begin(fd, va, (n * PAGE_SIZE) as u32) else { return };
                self.rig.munmap(cva, cn * PAGE_SIZE).unwrap();
                self.cut(cva, cn);
                let overlap = cva.0 < va.0 + n * PAGE_SIZE && va.0 < cva.0 + cn * PAGE_SIZE;
                let r = self.rig.update_finish(p);
                if self.policy == Policy::V2023 && overlap {
                    assert_eq!(r, Err(Errno::Busy), "the cover notifier must see the unmap");
                }
                if overlap {
                    if let Ok(u) = &r {
                        self.raced.extend(
                            u.tidlist.iter().filter_map(|t| t.rel_entry()).map(|r| 2048 + r),
                        );
                    }
                }
                self.record_update(fd, &r, n);
            }
            Op::FreeLive { pick } => {
                if self.known.is_empty() {
                    return;
                }
                let (fd, t) = self.known[pick % self.known.len()];
                self.free(fd, &[t]);
            }
            Op::FreeAllOfFd { fd } => {
                let tids: Vec<TidInfo> =
                    self.known.iter().filter(|k| k.0 == fd).map(|k| k.1).collect();
                if !tids.is_empty() {
                    self.free(fd, &tids);
                }
            }
            Op::FreeStale { pick } => {
                if self.freed.is_empty() {
                    return;
                }
                let (fd, t) = self.freed[pick % self.freed.len()];
                // May hit a newer TID at the same entry: a user bug the kernel cannot tell.
                self.free(fd, &[t]);
            }
            Op::FreeGarbage { fd, raw } => {
                let r = self.rig.free(fd, &[TidInfo(raw)]);
                if let Ok(1) = r {
                    self.forget(fd, TidInfo(raw));
                    // Forget whichever known tidinfo names the same entry.
                    let rel = TidInfo(raw).rel_entry();
                    self.known.retain(|k| k.0 != fd || k.1.rel_entry() != rel);
                }
            }
            Op::InvalReadFree { fd } => {
                let Ok(list) = self.rig.inval_read(fd) else { return };
                if self.policy == Policy::NoCache {
                    assert!(list.is_empty());
                }
                // PSM frees the invalidated TIDs it is not using (here: all of them).
                for t in list {
                    self.free(fd, &[t]);
                }
            }
            Op::Munmap { buf, off, pages } => {
                let Some((va, n)) = self.range(buf, off, pages) else { return };
                self.rig.munmap(va, n * PAGE_SIZE).unwrap();
                self.cut(va, n);
            }
            Op::Mremap { buf, grow } => {
                if self.bufs.is_empty() {
                    return;
                }
                let i = buf % self.bufs.len();
                let (va, n) = self.bufs[i];
                if let Ok(new) = self.rig.mremap(va, n * PAGE_SIZE, (n + grow) * PAGE_SIZE) {
                    self.bufs[i] = (new, n + grow);
                    if new != va {
                        self.holes.push((va, n));
                    }
                }
            }
            Op::Madvise { buf, off, pages } => {
                let Some((va, n)) = self.range(buf, off, pages) else { return };
                self.rig.madvise_dontneed(va, n * PAGE_SIZE).unwrap();
                self.madvised.extend((0..n).map(|i| va.vpn() + i));
            }
            Op::ReuseFixed { pick, contig } => {
                if self.holes.is_empty() {
                    return;
                }
                let (va, n) = self.holes.remove(pick % self.holes.len());
                if self.rig.space_mut().mmap_fixed(va, n * PAGE_SIZE, contiguity(contig)).is_ok() {
                    self.bufs.push((va, n));
                }
            }
            Op::CloseReopen { fd } => {
                self.rig.close(fd);
                assert!(self.rig.ctx.live_entries().all(|t| t.fd != fd));
                assert_eq!(self.rig.ctx.tid_used(fd), 0);
                self.rig.ctx.open(fd).unwrap();
                self.known.retain(|k| k.0 != fd);
            }
        }
    }

    /// Policy-level invariants on top of `TidContext::check_invariants`.
    fn check(&self) {
        self.rig.check().unwrap();
        let space = self.rig.space();
        for t in self.rig.ctx.live_entries() {
            let here = |i: usize| Va(t.vaddr.0 + i as u64 * PAGE_SIZE);
            let mapped_here = |i: usize| matches!(space.frame_state(t.pfns[i]), Some(FrameState::Mapped { va, .. }) if va == here(i));
            match self.policy {
                Policy::V2023 if t.hw_programmed => {
                    // After an UNMAP no programmed entry covers the unmapped address: its frames
                    // are still mapped where the TID says, or orphaned only by madvise.
                    for i in 0..t.pfns.len() {
                        let orphan_by_madvise = self.madvised.contains(&here(i).vpn())
                            && matches!(
                                space.frame_state(t.pfns[i]),
                                Some(FrameState::Orphan { .. })
                            );
                        assert!(mapped_here(i) || orphan_by_madvise, "stale TID {t:?}");
                    }
                }
                Policy::Seed if !t.invalidated && !self.raced.contains(&t.rcventry) => {
                    // Any change to the mapping was reported.
                    assert!((0..t.pfns.len()).all(mapped_here), "unreported change {t:?}");
                }
                Policy::Seed => assert!(t.hw_programmed, "Seed never releases in the callback"),
                _ => {}
            }
        }
        for fd in 0..FDS {
            let queued = self.rig.ctx.invalid_queued(fd) > 0;
            let bit = self.rig.ctx.event_word(fd) & TID_MMU_NOTIFY != 0;
            assert_eq!(queued, bit, "fd {fd}: queue vs TID_MMU_NOTIFY");
        }
    }

    fn teardown(mut self) {
        for fd in 0..FDS {
            self.rig.close(fd);
        }
        self.rig.check().unwrap();
        let space = self.rig.space();
        assert_eq!(space.total_pins(), 0);
        assert_eq!(space.pinned_vm(), 0);
        assert_eq!(space.notifier_count(), 0);
        assert_eq!(space.dma_maps_live(), 0);
        assert_eq!(self.rig.ctx.groups().used_entries(), 0);
        assert_eq!(self.rig.ctx.live_entries().count(), 0);
        assert!(self.rig.hw.entries.values().all(|&r| !RcvArrayEntry(r).is_valid()));
        let s = self.rig.ctx.stats();
        assert_eq!((s.group_clear_errors, s.inval_queue_drops, s.leaked_pinned_pages), (0, 0, 0));
    }
}

fn run(policy: Policy, ops: &[Op]) {
    let mut m = Model::new(policy);
    for op in ops {
        m.apply(op);
        m.check();
    }
    m.teardown();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn model_v2023(ops in prop::collection::vec(op(), 1..48)) {
        run(Policy::V2023, &ops);
    }

    #[test]
    fn model_seed(ops in prop::collection::vec(op(), 1..48)) {
        run(Policy::Seed, &ops);
    }

    #[test]
    fn model_nocache(ops in prop::collection::vec(op(), 1..48)) {
        run(Policy::NoCache, &ops);
    }
}

/// A fixed sequence through every kind of step, so a plain `cargo test` run covers them all.
#[test]
fn model_smoke_all_policies() {
    let ops = [
        Op::Mmap { pages: 16, contig: 0 },
        Op::Mmap { pages: 12, contig: 1 },
        Op::Update { fd: 0, buf: 0, off: 0, pages: 16 },
        Op::Update { fd: 1, buf: 1, off: 0, pages: 12 },
        Op::Madvise { buf: 1, off: 2, pages: 1 },
        Op::Munmap { buf: 0, off: 4, pages: 2 },
        Op::InvalReadFree { fd: 0 },
        Op::Mremap { buf: 1, grow: 4 },
        Op::InvalReadFree { fd: 1 },
        Op::ReuseFixed { pick: 0, contig: 0 },
        Op::Update { fd: 0, buf: 2, off: 0, pages: 2 },
        Op::UpdateRace { fd: 0, buf: 0, off: 0, pages: 4, cut_off: 1, cut_pages: 1 },
        Op::FreeStale { pick: 0 },
        Op::UpdateHole { fd: 1, pick: 0, pages: 2 },
        Op::FreeGarbage { fd: 1, raw: 0x0010_0001 },
        Op::FreeLive { pick: 3 },
        Op::CloseReopen { fd: 1 },
        Op::FreeAllOfFd { fd: 0 },
    ];
    for policy in Policy::ALL {
        run(policy, &ops);
    }
}
