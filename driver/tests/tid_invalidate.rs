//! The invalidation paths per policy (facts §6.4, §6.5): munmap, madvise(DONTNEED), mremap,
//! partial unmaps, the invalid queue and TID_MMU_NOTIFY, TID_INVAL_READ, and the cover notifier
//! of a setup in flight.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use driver::tid::test_utils::TidRig;
use driver::tid::TidConfig;
use driver::{Errno, Policy};
use hfi_abi::uapi::event::TID_MMU_NOTIFY;
use hfi_abi::TidInfo;
use mmu::{Contiguity, FrameState, InvalidateEvent, Invalidation, NotifierId, Va, PAGE_SIZE};

const PS: u32 = PAGE_SIZE as u32;

fn rig(policy: Policy) -> TidRig {
    TidRig::new(TidConfig::new(policy), 64, 1, 1024).unwrap()
}

fn page(va: Va, i: u64) -> Va {
    Va(va.0 + i * PAGE_SIZE)
}

/// A 4-page contiguous buffer registered as one TID.
fn registered(rig: &mut TidRig) -> (Va, Vec<mmu::Pfn>, TidInfo) {
    let va = rig.mmap(4, Contiguity::Contiguous);
    let frames = (0..4).map(|i| rig.frame(page(va, i)).unwrap()).collect();
    let u = rig.update(0, va, 4 * PS).unwrap();
    assert_eq!(u.tidlist.len(), 1);
    (va, frames, u.tidlist[0])
}

#[test]
fn munmap_v2023_releases_at_once() {
    let mut rig = rig(Policy::V2023);
    let (va, frames, t) = registered(&mut rig);
    rig.hw.ops.clear();
    rig.munmap(va, 4 * PAGE_SIZE).unwrap();
    // The entry was invalidated with a flush inside the callback, the pages unpinned, so the
    // commit freed them.
    assert_eq!(rig.hw.ops, [(2048, hfi_abi::RcvArrayEntry::invalid().raw()), (u32::MAX, 0)]);
    assert!(rig.hw.entry(2048).is_none());
    for f in &frames {
        assert_eq!(rig.space().frame_state(*f), Some(FrameState::Free));
    }
    assert_eq!(rig.space().pinned_vm(), 0);
    assert_eq!(rig.ctx.tid_n_pinned(0), 0);
    // Bookkeeping stays until TID_FREE: slot, node, notifier, tid_used.
    let live: Vec<_> = rig.ctx.live_entries().collect();
    assert_eq!(live.len(), 1);
    assert!(!live[0].hw_programmed && live[0].invalidated && live[0].notifier.is_some());
    assert_eq!(rig.ctx.tid_used(0), 1);
    assert!(rig.ctx.groups().is_used(2048));
    assert_eq!(rig.ctx.event_word(0), TID_MMU_NOTIFY);
    rig.check().unwrap();
    // TID_INVAL_READ hands it out and clears the bit; the TID is still held.
    assert_eq!(rig.inval_read(0), Ok(vec![t]));
    assert_eq!(rig.ctx.event_word(0), 0);
    assert_eq!(rig.inval_read(0), Ok(vec![]));
    assert_eq!(rig.ctx.live_entries().count(), 1);
    // TID_FREE only does the bookkeeping: no second invalidation write, no second unpin.
    rig.hw.ops.clear();
    assert_eq!(rig.free(0, &[t]), Ok(1));
    assert!(rig.hw.ops.is_empty());
    assert_eq!(rig.space().stats().bad_unpin_count, 0);
    assert_eq!(rig.space().dma_maps_live(), 0);
    assert_eq!(rig.ctx.groups().used_entries(), 0);
    let s = rig.ctx.stats();
    assert_eq!((s.invalidations, s.inval_reads, s.inval_tids_read), (1, 2, 1));
    rig.check().unwrap();
}

#[test]
fn munmap_seed_only_queues() {
    let mut rig = rig(Policy::Seed);
    let (va, frames, t) = registered(&mut rig);
    rig.hw.ops.clear();
    rig.munmap(va, 4 * PAGE_SIZE).unwrap();
    // Still programmed and pinned: the frames are orphans the device can still write.
    assert!(rig.hw.ops.is_empty());
    assert_eq!(rig.hw.entry(2048).unwrap().dma_addr(), frames[0].addr());
    for f in &frames {
        assert!(matches!(rig.space().frame_state(*f), Some(FrameState::Orphan { .. })));
        assert_eq!(rig.space().pin_count(*f), 1);
    }
    assert_eq!(rig.space().pinned_vm(), 4);
    assert_eq!(rig.ctx.event_word(0), TID_MMU_NOTIFY);
    rig.check().unwrap();
    assert_eq!(rig.inval_read(0), Ok(vec![t]));
    // The free releases entry and pages; the orphans go back to the pool.
    assert_eq!(rig.free(0, &[t]), Ok(1));
    assert!(rig.hw.entry(2048).is_none());
    for f in &frames {
        assert_eq!(rig.space().frame_state(*f), Some(FrameState::Free));
    }
    rig.check().unwrap();
}

#[test]
fn munmap_nocache_is_not_seen() {
    let mut rig = rig(Policy::NoCache);
    let (va, frames, t) = registered(&mut rig);
    assert_eq!(rig.space().notifier_count(), 0);
    rig.munmap(va, 4 * PAGE_SIZE).unwrap();
    assert!(rig.hw.entry(2048).is_some());
    assert!(matches!(rig.space().frame_state(frames[0]), Some(FrameState::Orphan { .. })));
    assert_eq!(rig.ctx.event_word(0), 0);
    assert_eq!(rig.inval_read(0), Ok(vec![]));
    assert_eq!(rig.ctx.stats().invalidations, 0);
    rig.check().unwrap();
    assert_eq!(rig.free(0, &[t]), Ok(1));
    assert_eq!(rig.space().frame_state(frames[0]), Some(FrameState::Free));
    rig.check().unwrap();
}

#[test]
fn one_page_of_a_tid_invalidates_the_whole_tid() {
    let mut rig = rig(Policy::V2023);
    let va = rig.mmap(16, Contiguity::Contiguous);
    let frames: Vec<_> = (0..16).map(|i| rig.frame(page(va, i)).unwrap()).collect();
    let t = rig.update(0, va, 16 * PS).unwrap().tidlist[0];
    rig.munmap(page(va, 7), PAGE_SIZE).unwrap();
    assert!(rig.hw.entry(2048).is_none());
    // All 16 pages unpinned; page 7 freed, the others still mapped in the process.
    assert_eq!(rig.space().frame_state(frames[7]), Some(FrameState::Free));
    assert_eq!(rig.space().pin_count(frames[0]), 0);
    assert!(matches!(rig.space().frame_state(frames[15]), Some(FrameState::Mapped { .. })));
    assert_eq!(rig.inval_read(0), Ok(vec![t]));
    rig.check().unwrap();
}

#[test]
fn madvise_is_ignored_by_v2023_and_queued_by_seed() {
    for policy in [Policy::V2023, Policy::Seed] {
        let mut rig = rig(policy);
        let (va, frames, t) = registered(&mut rig);
        rig.madvise_dontneed(va, PAGE_SIZE).unwrap();
        // Either way the entry stays programmed on the (now orphaned) pinned frame.
        assert!(rig.hw.entry(2048).is_some());
        assert!(matches!(rig.space().frame_state(frames[0]), Some(FrameState::Orphan { .. })));
        let s = rig.ctx.stats();
        if policy == Policy::V2023 {
            assert_eq!((s.invalidations, s.invalidations_ignored), (0, 1));
            assert_eq!(rig.inval_read(0), Ok(vec![]));
        } else {
            assert_eq!((s.invalidations, s.invalidations_ignored), (1, 0));
            assert_eq!(rig.inval_read(0), Ok(vec![t]));
        }
        rig.check().unwrap();
        // A second event on the same TID: Seed has already queued it, V2023 waits for UNMAP.
        rig.munmap(va, 4 * PAGE_SIZE).unwrap();
        if policy == Policy::V2023 {
            assert!(rig.hw.entry(2048).is_none());
            assert_eq!(rig.inval_read(0), Ok(vec![t]));
        } else {
            assert_eq!(rig.ctx.stats().invalidations_ignored, 1);
            assert_eq!(rig.inval_read(0), Ok(vec![]));
        }
        rig.free(0, &[t]).unwrap();
        assert_eq!(rig.space().total_pins(), 0);
        rig.check().unwrap();
    }
}

#[test]
fn mremap_move_is_an_unmap() {
    let mut rig = rig(Policy::V2023);
    let (va, _frames, t) = registered(&mut rig);
    // Something right after the buffer forces the grow to move it.
    rig.space_mut().mmap_fixed(page(va, 4), PAGE_SIZE, Contiguity::Contiguous).unwrap();
    let new = rig.mremap(va, 4 * PAGE_SIZE, 8 * PAGE_SIZE).unwrap();
    assert_ne!(new, va);
    assert!(rig.hw.entry(2048).is_none());
    assert_eq!(rig.inval_read(0), Ok(vec![t]));
    rig.free(0, &[t]).unwrap();
    // The moved buffer registers again at its new address.
    let u = rig.update(0, new, 8 * PS).unwrap();
    assert_eq!(u.length, 8 * PS);
    rig.check().unwrap();
}

#[test]
fn queue_order_and_the_event_bit() {
    let mut rig = rig(Policy::V2023);
    let va = rig.mmap(3, Contiguity::Scattered);
    let u = rig.update(0, va, 3 * PS).unwrap();
    rig.munmap(page(va, 2), PAGE_SIZE).unwrap();
    rig.munmap(va, PAGE_SIZE).unwrap();
    assert_eq!(rig.ctx.invalid_queued(0), 2);
    // ACK_EVENT clears the bit without draining; the next invalidation finds the queue
    // non-empty and does not raise it again (hfi1 behaviour: user space must read the queue).
    rig.ctx.ack_event(0, TID_MMU_NOTIFY).unwrap();
    rig.munmap(page(va, 1), PAGE_SIZE).unwrap();
    assert_eq!(rig.ctx.event_word(0), 0);
    assert_eq!(rig.inval_read(0), Ok(vec![u.tidlist[2], u.tidlist[0], u.tidlist[1]]));
    assert_eq!(rig.free(0, &u.tidlist), Ok(3));
    rig.check().unwrap();
}

#[test]
fn stale_cache_after_reuse_of_the_address() {
    // Seed: the TID still points at the old frames after the address is unmapped and mapped
    // again; only the queued tidinfo tells user space. V2023: the old frames are released and
    // the new mapping registers cleanly.
    for policy in [Policy::Seed, Policy::V2023] {
        let mut rig = rig(policy);
        let (va, frames, t) = registered(&mut rig);
        rig.munmap(va, 4 * PAGE_SIZE).unwrap();
        rig.space_mut().mmap_fixed(va, 4 * PAGE_SIZE, Contiguity::Contiguous).unwrap();
        let fresh = rig.frame(va).unwrap();
        if policy == Policy::Seed {
            // The orphans are still pinned, so the pool hands out other frames.
            assert_ne!(fresh, frames[0]);
        } else {
            // Released at the unmap: the first free frames are the old ones, reused at once.
            assert_eq!(fresh, frames[0]);
        }
        let live = rig.ctx.live_entry(2048).unwrap();
        assert!(live.invalidated);
        assert_eq!(live.hw_programmed, policy == Policy::Seed);
        let u = rig.update(0, va, 4 * PS).unwrap();
        assert_eq!(rig.hw.entry(2049).unwrap().dma_addr(), fresh.addr());
        rig.free(0, &[t]).unwrap();
        rig.free(0, &u.tidlist).unwrap();
        rig.check().unwrap();
    }
}

#[test]
fn unknown_notifiers_are_counted() {
    let mut rig = rig(Policy::V2023);
    let (va, _f, _t) = registered(&mut rig);
    let inv = Invalidation {
        notifier: NotifierId(9999),
        start: va,
        end: page(va, 1),
        event: InvalidateEvent::Unmap,
        seq: 1,
    };
    rig.ctx.invalidate(&mut rig.hw, rig.mm.inner_mut(), &inv);
    assert_eq!(rig.ctx.stats().unknown_notifier_count, 1);
    assert!(rig.hw.entry(2048).is_some());
    rig.check().unwrap();
}

#[test]
fn cover_notifier_sees_an_unmap_during_setup() {
    let mut rig = rig(Policy::V2023);
    let va = rig.mmap(8, Contiguity::Contiguous);
    let p = rig.update_begin(0, va, 8 * PS).unwrap();
    assert!(p.cover_notifier().is_some());
    assert_eq!(rig.ctx.covers_in_flight(), 1);
    // The user unmaps half the buffer while the setup runs; the callback reaches the cover.
    rig.munmap(page(va, 4), 4 * PAGE_SIZE).unwrap();
    assert_eq!(rig.ctx.stats().cover_invalidations, 1);
    assert_eq!(rig.update_finish(p), Err(Errno::Busy));
    assert_eq!(rig.ctx.live_entries().count(), 0);
    assert_eq!(rig.space().total_pins(), 0);
    assert_eq!(rig.ctx.tid_used(0), 0);
    assert_eq!(rig.ctx.covers_in_flight(), 0);
    assert!(rig.hw.entries.values().all(|&r| !hfi_abi::RcvArrayEntry(r).is_valid()));
    rig.check().unwrap();
}

#[test]
fn cover_notifier_ignores_madvise_during_setup() {
    // hfi1's cover callback only moves the sequence on UNMAP.
    let mut rig = rig(Policy::V2023);
    let va = rig.mmap(8, Contiguity::Contiguous);
    let p = rig.update_begin(0, va, 8 * PS).unwrap();
    rig.madvise_dontneed(va, PAGE_SIZE).unwrap();
    let u = rig.update_finish(p).unwrap();
    assert_eq!(u.length, 8 * PS);
    rig.check().unwrap();
    // The TID covering page 0 is on the orphaned frame: hfi1 ignores non-UNMAP events.
    let orphan = rig.ctx.live_entry(2048).unwrap().pfns[0];
    assert!(matches!(rig.space().frame_state(orphan), Some(FrameState::Orphan { .. })));
    // Setup abort returns everything: reservation, cover, pins.
    let (used, pinned) = (rig.ctx.tid_used(0), rig.space().pinned_vm());
    let p = rig.update_begin(0, va, 8 * PS).unwrap();
    assert_eq!(rig.ctx.tid_used(0), used + p.pageset_count());
    assert_eq!(rig.space().pinned_vm(), pinned + 8);
    rig.ctx.tid_update_abort(p, &mut rig.mm);
    assert_eq!((rig.ctx.tid_used(0), rig.space().pinned_vm()), (used, pinned));
    assert_eq!(rig.ctx.covers_in_flight(), 0);
    rig.check().unwrap();
}

#[test]
fn close_between_setup_halves() {
    let mut rig = rig(Policy::V2023);
    let va = rig.mmap(8, Contiguity::Contiguous);
    let p = rig.update_begin(0, va, 8 * PS).unwrap();
    rig.close(0);
    assert_eq!(rig.update_finish(p), Err(Errno::BadF));
    assert_eq!(rig.space().total_pins(), 0);
    assert_eq!(rig.space().pinned_vm(), 0);
    rig.check().unwrap();
}
