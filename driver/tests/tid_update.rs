//! Worked examples of TID_UPDATE, TID_FREE and close (facts §6.2, §6.3, §6.6) on a recording
//! RcvArray and a simulated process.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use driver::tid::test_utils::TidRig;
use driver::tid::{LiveTid, TidConfig};
use driver::{Errno, HfiFd, Policy};
use hfi_abi::{BufSize, RcvArrayEntry, TidInfo};
use mmu::{Contiguity, FrameState, Va, PAGE_SIZE};

const PS: u32 = PAGE_SIZE as u32;
const FLUSH: (u32, u64) = (u32::MAX, 0);

fn rig(policy: Policy, expected: u32, subctxts: u32) -> TidRig {
    TidRig::new(TidConfig::new(policy), expected, subctxts, 1024).unwrap()
}

fn tid(rel: u32, npages: u32) -> TidInfo {
    TidInfo::for_entry(rel, npages).unwrap()
}

fn page(va: Va, i: u64) -> Va {
    Va(va.0 + i * PAGE_SIZE)
}

fn entry_indices(ops: &[(u32, u64)]) -> Vec<u32> {
    ops.iter().filter(|op| **op != FLUSH).map(|op| op.0).collect()
}

#[test]
fn contiguous_64k_buffer_is_one_16_page_tid() {
    let mut rig = rig(Policy::V2023, 64, 1);
    let va = rig.mmap(16, Contiguity::Contiguous);
    let first = rig.frame(va).unwrap();
    let u = rig.update(0, va, 16 * PS).unwrap();
    assert_eq!(u.length, 16 * PS);
    assert_eq!(u.tidlist, [tid(0, 16)]);
    assert_eq!(u.tidlist[0].raw(), (1 << 20) | 16, "IDX 0, CTRL 1 (even), LEN 16");

    // One entry of 64 KiB (code 5) at the frames' physical address; the other 7 slots of the
    // group get WC fills; no flush (2048 & 3 != 3).
    let e = rig.hw.entry(2048).unwrap();
    assert_eq!(e.dma_addr(), first.addr());
    assert_eq!(e.buf_size(), BufSize::from_pages(16).unwrap());
    assert_eq!(e.buf_size().code(), 5);
    let mut want = vec![(2048, e.raw())];
    want.extend((2049..2056).map(|i| (i, 0)));
    assert_eq!(rig.hw.ops, want);

    let live: Vec<LiveTid> = rig.ctx.live_entries().collect();
    assert_eq!(live.len(), 1);
    assert_eq!((live[0].fd, live[0].rcventry, live[0].vaddr, live[0].npages), (0, 2048, va, 16));
    assert!(live[0].hw_programmed && !live[0].invalidated && live[0].notifier.is_some());
    for i in 0..16 {
        assert_eq!(rig.space().pin_count(rig.frame(page(va, i)).unwrap()), 1);
    }
    assert_eq!(rig.space().pinned_vm(), 16);
    assert_eq!((rig.ctx.tid_used(0), rig.ctx.tid_n_pinned(0)), (1, 16));
    assert_eq!(rig.space().notifier_count(), 1, "the cover notifier is gone");
    assert_eq!(rig.space().dma_maps_live(), 1);
    let s = rig.ctx.stats();
    assert_eq!((s.updates_ok, s.update_tids, s.update_pages), (1, 1, 16));
    assert_eq!((s.rcvarray_writes, s.wc_fills, s.wc_flushes), (1, 7, 0));
    rig.check().unwrap();
}

#[test]
fn scattered_8_pages_fill_one_group() {
    let mut rig = rig(Policy::V2023, 64, 1);
    let va = rig.mmap(8, Contiguity::Scattered);
    let u = rig.update(0, va, 8 * PS).unwrap();
    assert_eq!(u.length, 8 * PS);
    assert_eq!(u.tidlist, (0..8).map(|r| tid(r, 1)).collect::<Vec<_>>());
    // Pairs: entries 0/1 are IDX 0 CTRL 1/2, and so on.
    assert_eq!((u.tidlist[5].idx(), u.tidlist[5].ctrl()), (2, 2));
    // Whole-group phase: 8 programs, no fill, flushes after 2051 and 2055.
    assert_eq!(entry_indices(&rig.hw.ops), (2048..2056).collect::<Vec<_>>());
    assert_eq!(rig.hw.ops[4], FLUSH);
    assert_eq!(rig.hw.ops[9], FLUSH);
    assert_eq!(rig.hw.flushes(), 2);
    for i in 0..8u32 {
        let e = rig.hw.entry(2048 + i).unwrap();
        assert_eq!(e.dma_addr(), rig.frame(page(va, u64::from(i))).unwrap().addr());
        assert_eq!(e.buf_size(), BufSize::SIZE_4K);
    }
    assert_eq!(rig.ctx.groups().full_list().collect::<Vec<_>>(), [2048]);
    rig.check().unwrap();

    // 3 more single pages: partial phase, a fresh group onto the used list.
    rig.hw.ops.clear();
    let va2 = rig.mmap(3, Contiguity::Scattered);
    let u2 = rig.update(0, va2, 3 * PS).unwrap();
    assert_eq!(u2.tidlist, (8..11).map(|r| tid(r, 1)).collect::<Vec<_>>());
    assert_eq!(entry_indices(&rig.hw.ops), (2056..2064).collect::<Vec<_>>());
    assert_eq!(rig.hw.ops.iter().filter(|op| op.1 == 0 && op.0 != u32::MAX).count(), 5);

    // 2 more: the used group again; its used slots are filled over first.
    rig.hw.ops.clear();
    let va3 = rig.mmap(2, Contiguity::Scattered);
    let u3 = rig.update(0, va3, 2 * PS).unwrap();
    assert_eq!(u3.tidlist, [tid(11, 1), tid(12, 1)]);
    let ops: Vec<(u32, bool)> = rig
        .hw
        .ops
        .iter()
        .filter(|op| **op != FLUSH)
        .map(|&(i, raw)| (i, RcvArrayEntry(raw).write_enable()))
        .collect();
    assert_eq!(
        ops,
        [
            (2056, false),
            (2057, false),
            (2058, false),
            (2059, true),
            (2060, true),
            (2061, false),
            (2062, false),
            (2063, false)
        ]
    );
    assert_eq!(rig.ctx.groups().used_list().collect::<Vec<_>>(), [2056]);
    rig.check().unwrap();
}

#[test]
fn seven_contiguous_pages_are_4_2_1() {
    let mut rig = rig(Policy::V2023, 64, 1);
    let va = rig.mmap(7, Contiguity::Contiguous);
    let first = rig.frame(va).unwrap();
    let u = rig.update(0, va, 7 * PS).unwrap();
    assert_eq!(u.tidlist, [tid(0, 4), tid(1, 2), tid(2, 1)]);
    let got: Vec<(u64, u8)> = (2048..2051)
        .map(|i| rig.hw.entry(i).unwrap())
        .map(|e| (e.dma_addr(), e.buf_size().code()))
        .collect();
    assert_eq!(
        got,
        [(first.addr(), 3), (first.addr() + 4 * PAGE_SIZE, 2), (first.addr() + 6 * PAGE_SIZE, 1)]
    );
    // Each TID watches its own part of the buffer.
    let vas: Vec<Va> = rig.ctx.live_entries().map(|t| t.vaddr).collect();
    assert_eq!(vas, [va, page(va, 4), page(va, 6)]);
    rig.check().unwrap();
}

#[test]
fn partial_by_tid_limit() {
    // 16 entries, 2 subcontexts: 8 TIDs each.
    let mut rig = rig(Policy::V2023, 16, 2);
    assert_eq!(rig.ctx.ctxt_info(0).tid_limit, 8);
    let va = rig.mmap(12, Contiguity::Scattered);
    let u = rig.update(0, va, 12 * PS).unwrap();
    assert_eq!(u.tidlist.len(), 8);
    assert_eq!(u.length, 8 * PS);
    // Pages 8..12 were pinned, then released: no TID covers them.
    assert_eq!(rig.space().pin_count(rig.frame(page(va, 8)).unwrap()), 0);
    assert_eq!(rig.space().pinned_vm(), 8);
    assert_eq!(rig.ctx.tid_used(0), 8);
    assert_eq!(rig.ctx.stats().partial_updates, 1);
    // No headroom left on fd 0; fd 1 still has its 8.
    assert_eq!(rig.update(0, page(va, 8), 4 * PS), Err(Errno::NoSpc));
    let u1 = rig.update(1, page(va, 8), 4 * PS).unwrap();
    assert_eq!(u1.length, 4 * PS);
    rig.check().unwrap();
}

#[test]
fn partial_by_pin_hole_and_pin_cap() {
    let mut rig = rig(Policy::V2023, 64, 1);
    let va = rig.mmap(8, Contiguity::Contiguous);
    rig.munmap(page(va, 5), PAGE_SIZE).unwrap();
    // The pin stops at the hole: 5 contiguous pages → TIDs of 4 and 1.
    let u = rig.update(0, va, 8 * PS).unwrap();
    assert_eq!(u.tidlist, [tid(0, 4), tid(1, 1)]);
    assert_eq!(u.length, 5 * PS);
    // A backend that pins at most 3 pages per call.
    rig.mm.pin_cap = Some(3);
    let vb = rig.mmap(8, Contiguity::Contiguous);
    let u = rig.update(0, vb, 8 * PS).unwrap();
    assert_eq!(u.tidlist, [tid(2, 2), tid(3, 1)]);
    assert_eq!(u.length, 3 * PS);
    assert_eq!(rig.space().pinned_vm(), 8);
    rig.check().unwrap();
}

#[test]
fn partial_when_groups_run_out() {
    // No caching: each fd may use all 16 entries, so fd 1 finds the groups taken.
    let mut rig = rig(Policy::NoCache, 16, 2);
    assert_eq!(rig.ctx.ctxt_info(1).tid_limit, 16);
    let va = rig.mmap(12, Contiguity::Scattered);
    assert_eq!(rig.update(0, va, 12 * PS).unwrap().tidlist.len(), 12);
    let vb = rig.mmap(8, Contiguity::Scattered);
    let u = rig.update(1, vb, 8 * PS).unwrap();
    // Whole-group phase finds no empty group; the used group has 4 free slots.
    assert_eq!(u.tidlist, (12..16).map(|r| tid(r, 1)).collect::<Vec<_>>());
    assert_eq!(u.length, 4 * PS);
    assert_eq!(rig.ctx.tid_used(1), 4, "reservation of 8 settled to 4");
    assert_eq!(rig.space().pinned_vm(), 16);
    // Nothing left at all: no entry programmed.
    assert_eq!(rig.update(1, page(vb, 4), 4 * PS), Err(Errno::NoSpc));
    assert_eq!(rig.ctx.tid_used(1), 4);
    rig.check().unwrap();
}

#[test]
fn tid_free_releases_entry_pages_and_slot() {
    let mut rig = rig(Policy::V2023, 64, 1);
    let va = rig.mmap(16, Contiguity::Contiguous);
    let frames: Vec<_> = (0..16).map(|i| rig.frame(page(va, i)).unwrap()).collect();
    let u = rig.update(0, va, 16 * PS).unwrap();
    rig.hw.ops.clear();
    assert_eq!(rig.free(0, &u.tidlist), Ok(1));
    // PT_INVALID_FLUSH: address and size 0, write-enable, flushed at once.
    assert_eq!(rig.hw.ops, [(2048, RcvArrayEntry::invalid().raw()), FLUSH]);
    assert!(rig.hw.entry(2048).is_none());
    for f in &frames {
        assert_eq!(rig.space().pin_count(*f), 0);
        assert!(matches!(rig.space().frame_state(*f), Some(FrameState::Mapped { .. })));
    }
    assert_eq!(rig.space().stats().pages_dirtied, 16, "unpinned dirty");
    assert_eq!(rig.space().pinned_vm(), 0);
    assert_eq!((rig.ctx.tid_used(0), rig.ctx.tid_n_pinned(0)), (0, 0));
    assert_eq!(rig.ctx.groups().used_entries(), 0);
    assert_eq!(rig.ctx.groups().counts().empty, 8);
    assert_eq!((rig.space().notifier_count(), rig.space().dma_maps_live()), (0, 0));
    // Freeing it again: the fd holds nothing (tidcnt > tid_used).
    assert_eq!(rig.free(0, &u.tidlist), Err(Errno::Inval));
    let s = rig.ctx.stats();
    assert_eq!((s.frees, s.tids_freed, s.einval), (2, 1, 1));
    rig.check().unwrap();
}

#[test]
fn tid_free_stops_at_the_first_bad_tidinfo() {
    let mut rig = rig(Policy::V2023, 64, 1);
    let va = rig.mmap(4, Contiguity::Scattered);
    let u = rig.update(0, va, 4 * PS).unwrap();
    let bad = TidInfo(u.tidlist[1].raw() & !(3 << 20)); // CTRL 0
    assert_eq!(rig.free(0, &[u.tidlist[0], bad, u.tidlist[2]]), Err(Errno::Inval));
    // The first one is gone, the third is still there.
    assert_eq!(rig.ctx.tid_used(0), 3);
    assert!(rig.hw.entry(2048).is_none());
    assert!(rig.hw.entry(2050).is_some());
    assert_eq!(rig.free(0, &u.tidlist[1..]), Ok(3));
    rig.check().unwrap();
}

#[test]
fn close_releases_everything_of_the_fd() {
    let mut rig = rig(Policy::V2023, 64, 2);
    let va = rig.mmap(12, Contiguity::Scattered);
    let vb = rig.mmap(3, Contiguity::Scattered);
    rig.update(0, va, 12 * PS).unwrap();
    rig.update(1, vb, 3 * PS).unwrap();
    // fd 1's TIDs share the used group with fd 0's.
    assert_eq!(rig.ctx.groups().used_entries(), 15);
    rig.close(0);
    assert!(!rig.ctx.is_open(0));
    assert_eq!(rig.ctx.live_entries().count(), 3);
    assert!(rig.ctx.live_entries().all(|t| t.fd == 1));
    assert_eq!(rig.space().pinned_vm(), 3);
    rig.check().unwrap();
    // A closed fd answers nothing.
    assert_eq!(rig.update(0, va, PS), Err(Errno::BadF));
    assert_eq!(rig.free(0, &[tid(0, 1)]), Err(Errno::BadF));
    assert_eq!(rig.inval_read(0), Err(Errno::BadF));
    rig.close(1);
    rig.close(1); // twice: nothing
    assert_eq!(rig.space().total_pins(), 0);
    assert_eq!(rig.space().pinned_vm(), 0);
    assert_eq!(rig.ctx.groups().used_entries(), 0);
    assert_eq!(rig.ctx.groups().counts().empty, 8);
    assert!(rig.hw.entries.values().all(|&r| !RcvArrayEntry(r).is_valid()));
    assert_eq!((rig.space().notifier_count(), rig.space().dma_maps_live()), (0, 0));
    rig.check().unwrap();
    // Re-open: fresh state, works again.
    rig.ctx.open(0).unwrap();
    assert_eq!(rig.update(0, va, PS).unwrap().tidlist.len(), 1);
    rig.check().unwrap();
}

#[test]
fn fd_binding_is_an_hfi_fd() {
    let mut rig = rig(Policy::V2023, 64, 1);
    let va = rig.mmap(2, Contiguity::Contiguous);
    let mut fd = rig.fd(0);
    let info = fd.ctxt_info();
    assert_eq!((info.ctxt, info.subctxt, info.tid_limit, info.rcvtids), (1, 0, 64, 576));
    assert_eq!(info.runtime_flags & driver::tid::RUNTIME_TID_UNMAP, 0);
    let u = fd.tid_update(va.0, 2 * PS).unwrap();
    assert_eq!(u.tidlist, [tid(0, 2)]);
    assert_eq!(fd.event_word(), 0);
    assert_eq!(fd.tid_inval_read(), Ok(vec![]));
    assert_eq!(fd.ack_event(u64::MAX), Ok(()));
    assert_eq!(fd.tid_free(&u.tidlist), Ok(1));
    let mut rig = TidRig::new(TidConfig::new(Policy::NoCache), 64, 1, 64).unwrap();
    let info = rig.fd(0).ctxt_info();
    assert_eq!(info.runtime_flags, driver::tid::RUNTIME_TID_UNMAP);
}

#[test]
fn same_buffer_twice_pins_twice() {
    // hfi1 keeps no kernel-side cache lookup: registering a buffer again pins it again.
    let mut rig = rig(Policy::V2023, 64, 1);
    let va = rig.mmap(4, Contiguity::Contiguous);
    let a = rig.update(0, va, 4 * PS).unwrap();
    let b = rig.update(0, va, 4 * PS).unwrap();
    assert_ne!(a.tidlist, b.tidlist);
    assert_eq!(rig.space().pin_count(rig.frame(va).unwrap()), 2);
    assert_eq!(rig.space().pinned_vm(), 8);
    rig.check().unwrap();
    rig.free(0, &a.tidlist).unwrap();
    assert_eq!(rig.space().pin_count(rig.frame(va).unwrap()), 1);
    rig.check().unwrap();
}
