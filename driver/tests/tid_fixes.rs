//! One test per fix of facts §6.8: the fixed behaviour under `V2023`, and the matching
//! [`BugSwitches`] field reproducing the old behaviour.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use driver::tid::test_utils::TidRig;
use driver::tid::{BugSwitches, TidConfig};
use driver::{Errno, Policy};
use hfi_abi::tidinfo::{EXP_TID_CTRL, EXP_TID_IDX, EXP_TID_LEN};
use hfi_abi::uapi::event::TID_MMU_NOTIFY;
use hfi_abi::{RcvArrayEntry, TidInfo};
use mmu::{AddressSpace, Contiguity, FrameState, Pfn, Va, PAGE_SIZE};

const PS: u32 = PAGE_SIZE as u32;

fn rig_with(bugs: BugSwitches, expected: u32, subctxts: u32) -> TidRig {
    TidRig::new(TidConfig::new(Policy::V2023).with_bugs(bugs), expected, subctxts, 2048).unwrap()
}

fn fixed(expected: u32, subctxts: u32) -> TidRig {
    rig_with(BugSwitches::NONE, expected, subctxts)
}

fn page(va: Va, i: u64) -> Va {
    Va(va.0 + i * PAGE_SIZE)
}

fn valid_entries(rig: &TidRig) -> usize {
    rig.hw.entries.values().filter(|&&r| RcvArrayEntry(r).is_valid()).count()
}

/// 2016 tid_n_pinned: `+= npages` instead of `+= pinned`.
#[test]
fn fix_tid_n_pinned_counts_pinned_pages() {
    let cfg =
        |bugs| TidConfig { cache_size_mb: 1, ..TidConfig::new(Policy::V2023).with_bugs(bugs) };
    for bug in [false, true] {
        let bugs = BugSwitches { pinned_count_npages: bug, ..BugSwitches::NONE };
        let mut rig = TidRig::new(cfg(bugs), 512, 1, 2048).unwrap();
        let va = rig.mmap(200, Contiguity::Contiguous);
        // The backend pins only 100 of the 200 pages asked for.
        rig.mm.pin_cap = Some(100);
        let u = rig.update(0, va, 200 * PS).unwrap();
        assert_eq!(u.length, 100 * PS);
        assert_eq!(rig.ctx.tid_n_pinned(0), if bug { 200 } else { 100 });
        assert_eq!(rig.space().pinned_vm(), 100, "pinned_vm is right either way");
        rig.free(0, &u.tidlist).unwrap();
        assert_eq!(rig.ctx.tid_n_pinned(0), if bug { 100 } else { 0 }, "drift");
        // cache_size 1 MiB = 256 pages: 200 more fit only without the drift.
        rig.mm.pin_cap = None;
        let again = rig.update(0, va, 200 * PS);
        if bug {
            assert_eq!(again, Err(Errno::NoMem));
        } else {
            assert_eq!(again.unwrap().length, 200 * PS);
            rig.check().unwrap();
        }
    }
}

/// "Restore allocated resources on failed copyout" (2023).
#[test]
fn fix_failed_copyout_restores_resources() {
    for bug in [false, true] {
        let mut rig = rig_with(BugSwitches { copyout_bad_clear: bug, ..BugSwitches::NONE }, 64, 1);
        let va = rig.mmap(8, Contiguity::Scattered);
        rig.ctx.fail_next_copyout(0);
        assert_eq!(rig.update(0, va, 8 * PS), Err(Errno::Fault));
        if bug {
            // The clear got the wrong list and freed nothing: 8 TIDs programmed, pinned and
            // counted, and user space never saw their tidinfo.
            assert_eq!(rig.ctx.live_entries().count(), 8);
            assert_eq!(valid_entries(&rig), 8);
            assert_eq!(rig.ctx.tid_used(0), 8);
            assert_eq!(rig.space().pinned_vm(), 8);
            // Only close gets them back.
            rig.close(0);
            assert_eq!(rig.space().total_pins(), 0);
        } else {
            assert_eq!(rig.ctx.live_entries().count(), 0);
            assert_eq!(valid_entries(&rig), 0);
            assert_eq!(rig.ctx.tid_used(0), 0);
            assert_eq!(rig.space().total_pins(), 0);
            rig.check().unwrap();
        }
    }
}

/// 97736f36dbeb "Validate page aligned for a given virtual address".
#[test]
fn fix_unaligned_vaddr_is_rejected() {
    for bug in [false, true] {
        let mut rig =
            rig_with(BugSwitches { allow_unaligned_vaddr: bug, ..BugSwitches::NONE }, 64, 1);
        let va = rig.mmap(4, Contiguity::Scattered);
        let user_buf = Va(va.0 + 0x123);
        let r = rig.update(0, user_buf, PS);
        if !bug {
            assert_eq!(r, Err(Errno::Inval));
            continue;
        }
        // Accepted: 4096 bytes from +0x123 span 2 pages; two 1-page TIDs whose buffers start at
        // the page boundary, so the device puts byte 0 of the message 0x123 bytes before the
        // user's buffer.
        let u = r.unwrap();
        assert_eq!(u.tidlist.len(), 2);
        assert_eq!(u.length, 2 * PS);
        let e = rig.hw.entry(2048).unwrap();
        assert_eq!(e.dma_addr(), rig.frame(va).unwrap().addr());
        assert_ne!(e.dma_addr(), rig.frame(va).unwrap().addr() + 0x123);
        // The TID's notifier watches a shifted range: [va+0x123, va+0x1123).
        assert_eq!(rig.ctx.live_entry(2048).unwrap().vaddr, user_buf);
    }
}

/// "Reject a zero-length user expected buffer" (2023).
#[test]
fn fix_zero_length_is_rejected() {
    let mut rig = fixed(64, 1);
    let va = rig.mmap(1, Contiguity::Contiguous);
    assert_eq!(rig.update(0, va, 0), Err(Errno::Inval));
    // The length check alone undone: 0 pages (num_user_pages truncates), nothing pinned, and
    // the fixed error exit says ENOSPC.
    let mut rig = rig_with(BugSwitches { allow_zero_length: true, ..BugSwitches::NONE }, 64, 1);
    let va = rig.mmap(1, Contiguity::Contiguous);
    assert_eq!(rig.update(0, va, 0), Err(Errno::NoSpc));
    // The 2020 code as a whole (both fixes undone): "success" with no TID.
    let mut rig = rig_with(
        BugSwitches { allow_zero_length: true, setup_error_exit: true, ..BugSwitches::NONE },
        64,
        1,
    );
    let va = rig.mmap(1, Contiguity::Contiguous);
    let u = rig.update(0, va, 0).unwrap();
    assert!(u.tidlist.is_empty());
    assert_eq!(u.length, 0);
    assert_eq!(rig.space().total_pins(), 0);
}

/// "Reserve user expected TIDs" (2023): two setups in flight on one fd.
#[test]
fn fix_tids_are_reserved_before_programming() {
    for bug in [false, true] {
        // 16 entries, 2 subcontexts: tid_limit 8 each.
        let mut rig = rig_with(BugSwitches { no_tid_reservation: bug, ..BugSwitches::NONE }, 16, 2);
        let va = rig.mmap(6, Contiguity::Scattered);
        let vb = rig.mmap(6, Contiguity::Scattered);
        let a = rig.update_begin(0, va, 6 * PS).unwrap();
        let b = rig.update_begin(0, vb, 6 * PS).unwrap();
        assert_eq!(a.pageset_count(), 6);
        assert_eq!(b.pageset_count(), if bug { 6 } else { 2 });
        let ua = rig.update_finish(a).unwrap();
        let ub = rig.update_finish(b).unwrap();
        assert_eq!(ua.tidlist.len(), 6);
        if bug {
            // Both took the same headroom: 12 TIDs on a limit of 8, eating fd 1's share.
            assert_eq!(ub.tidlist.len(), 6);
            assert_eq!(rig.ctx.tid_used(0), 12);
            let vc = rig.mmap(8, Contiguity::Scattered);
            assert_eq!(rig.update(1, vc, 8 * PS).unwrap().tidlist.len(), 4);
            // And the next setup on fd 0 meets tid_used > tid_limit.
            assert_eq!(rig.update(0, vc, PS), Err(Errno::NoSpc));
            assert_eq!(rig.ctx.stats().tid_limit_overshoot_count, 1);
        } else {
            assert_eq!(ub.tidlist.len(), 2);
            assert_eq!(ub.length, 2 * PS);
            assert_eq!(rig.ctx.tid_used(0), 8);
            let vc = rig.mmap(8, Contiguity::Scattered);
            assert_eq!(rig.update(1, vc, 8 * PS).unwrap().tidlist.len(), 8);
            rig.check().unwrap();
        }
    }
}

/// "Fix expected receive setup error exit issues" (2023).
#[test]
fn fix_setup_error_exits() {
    for bug in [false, true] {
        let bugs = BugSwitches { setup_error_exit: bug, ..BugSwitches::NONE };
        // (a) No headroom: 2023 ENOSPC with the pages released; 2020 "success" with tidcnt
        // and length as passed in, the pages pinned for good.
        let mut rig = rig_with(bugs, 16, 2);
        let va = rig.mmap(12, Contiguity::Scattered);
        rig.update(0, va, 8 * PS).unwrap();
        let r = rig.update(0, page(va, 8), 4 * PS);
        if bug {
            assert_eq!(r.unwrap(), driver::TidUpdate { tidlist: vec![], length: 4 * PS });
            assert_eq!(rig.space().total_pins(), 12);
            assert_eq!(rig.ctx.leaked_pins().len(), 4);
            assert_eq!(rig.ctx.stats().leaked_pinned_pages, 4);
        } else {
            assert_eq!(r, Err(Errno::NoSpc));
            assert_eq!(rig.space().total_pins(), 8);
            rig.check().unwrap();
        }
        // (b) Nothing pinned: ENOSPC vs "success".
        let mut rig = rig_with(bugs, 16, 2);
        let va = rig.mmap(4, Contiguity::Scattered);
        rig.mm.pin_cap = Some(0);
        let r = rig.update(0, va, 4 * PS);
        if bug {
            assert_eq!(r.unwrap(), driver::TidUpdate { tidlist: vec![], length: 4 * PS });
        } else {
            assert_eq!(r, Err(Errno::NoSpc));
        }
        // (c) Copy-out failure with pages past the tid limit: 2020 skipped their unpin.
        let mut rig = rig_with(bugs, 16, 2);
        let va = rig.mmap(12, Contiguity::Scattered);
        rig.ctx.fail_next_copyout(0);
        assert_eq!(rig.update(0, va, 12 * PS), Err(Errno::Fault));
        assert_eq!(rig.ctx.live_entries().count(), 0, "the TIDs are cleared either way");
        assert_eq!(rig.space().total_pins(), if bug { 4 } else { 0 });
    }
}

/// 1c7edde1b572 "Immediately remove invalid memory from hardware" (2023).
#[test]
fn fix_invalidation_removes_memory_from_hardware_at_once() {
    for bug in [false, true] {
        let mut rig = rig_with(BugSwitches { lazy_invalidate: bug, ..BugSwitches::NONE }, 64, 1);
        let va = rig.mmap(4, Contiguity::Contiguous);
        let frames: Vec<Pfn> = (0..4).map(|i| rig.frame(page(va, i)).unwrap()).collect();
        let t = rig.update(0, va, 4 * PS).unwrap().tidlist[0];
        rig.munmap(va, 4 * PAGE_SIZE).unwrap();
        assert_eq!(rig.ctx.event_word(0), TID_MMU_NOTIFY);
        assert_eq!(rig.inval_read(0), Ok(vec![t]));
        if bug {
            // The device can still DMA into the unmapped (orphaned, pinned) pages until user
            // space frees the TID.
            assert_eq!(rig.hw.entry(2048).unwrap().dma_addr(), frames[0].addr());
            assert!(matches!(rig.space().frame_state(frames[0]), Some(FrameState::Orphan { .. })));
            assert_eq!(rig.space().pinned_vm(), 4);
        } else {
            assert!(rig.hw.entry(2048).is_none());
            assert_eq!(rig.space().frame_state(frames[0]), Some(FrameState::Free));
            assert_eq!(rig.space().pinned_vm(), 0);
            rig.check().unwrap();
        }
        rig.free(0, &[t]).unwrap();
        assert_eq!(rig.space().total_pins(), 0);
        // Before the fix any event counted; since, only UNMAP.
        let vb = rig.mmap(1, Contiguity::Contiguous);
        rig.update(0, vb, PS).unwrap();
        rig.madvise_dontneed(vb, PAGE_SIZE).unwrap();
        assert_eq!(rig.ctx.invalid_queued(0), usize::from(bug));
    }
}

/// b3deec25847b "Remove user expected buffer invalidate race" (2023).
#[test]
fn fix_invalidate_during_setup_is_seen() {
    for bug in [false, true] {
        let mut rig = rig_with(BugSwitches { no_cover_notifier: bug, ..BugSwitches::NONE }, 64, 1);
        let va = rig.mmap(8, Contiguity::Contiguous);
        let frames: Vec<Pfn> = (0..8).map(|i| rig.frame(page(va, i)).unwrap()).collect();
        // The unmap lands right after pinning, before any per-TID notifier exists.
        rig.mm.after_pin = Some(Box::new(|s: &mut AddressSpace, va: Va, pfns: &[Pfn]| {
            s.munmap_with(va, pfns.len() as u64 * PAGE_SIZE, |_, _| {}).unwrap();
        }));
        let r = rig.update(0, va, 8 * PS);
        rig.mm.after_pin = None;
        if bug {
            // Unseen: a TID programmed on orphaned pages, no invalidation queued, ever.
            let u = r.unwrap();
            assert_eq!(u.length, 8 * PS);
            assert_eq!(rig.hw.entry(2048).unwrap().dma_addr(), frames[0].addr());
            assert!(matches!(rig.space().frame_state(frames[0]), Some(FrameState::Orphan { .. })));
            assert_eq!(rig.ctx.event_word(0), 0);
            assert_eq!(rig.inval_read(0), Ok(vec![]));
        } else {
            assert_eq!(r, Err(Errno::Busy));
            assert_eq!(rig.ctx.live_entries().count(), 0);
            assert_eq!(valid_entries(&rig), 0);
            assert_eq!(rig.space().total_pins(), 0);
            assert_eq!(rig.space().frame_state(frames[0]), Some(FrameState::Free));
            rig.check().unwrap();
        }
    }
}

/// "Improve TID validity checking" (2023).
#[test]
fn fix_tid_validity_checking() {
    let tidinfo = |idx, ctrl| {
        TidInfo(EXP_TID_IDX.set(0, idx) | EXP_TID_CTRL.set(0, ctrl) | EXP_TID_LEN.set(0, 1))
    };
    for bug in [false, true] {
        let mut rig = rig_with(BugSwitches { weak_tid_validity: bug, ..BugSwitches::NONE }, 64, 1);
        let va = rig.mmap(4, Contiguity::Scattered);
        rig.update(0, va, 4 * PS).unwrap(); // entries 0..4 = pairs 0 and 1
                                            // IDX 1, CTRL 0: names no entry; the old check took it as entry 1 (pair 0, odd).
        let r = rig.free(0, &[tidinfo(1, 0)]);
        // IDX 0, CTRL 0: the old code indexed entry_to_rb[-1].
        let r0 = rig.free(0, &[tidinfo(0, 0)]);
        if bug {
            assert_eq!(r, Ok(1));
            assert!(rig.hw.entry(2049).is_none(), "a TID the caller did not name is gone");
            assert_eq!(r0, Err(Errno::BadF));
            assert_eq!(rig.ctx.stats().tid_oob_lookup_count, 1);
        } else {
            assert_eq!(r, Err(Errno::Inval));
            assert_eq!(r0, Err(Errno::Inval));
            assert!(rig.hw.entry(2049).is_some());
            rig.check().unwrap();
        }
        // CTRL 3 was always rejected.
        assert_eq!(rig.free(0, &[tidinfo(0, 3)]), Err(Errno::Inval));
    }
}

/// a0d198f79a8d "Fix arithmetic and logic errors in hfi1_can_pin_pages" (2023).
#[test]
fn fix_pin_limit_arithmetic() {
    for bug in [false, true] {
        // 1 MiB RLIMIT_MEMLOCK (256 pages) and 300 pages already pinned by the process
        // elsewhere: 2023 refuses, 2016 compares pages with bytes and lets it through.
        let mut rig = rig_with(BugSwitches { pin_limit_2016: bug, ..BugSwitches::NONE }, 512, 1);
        rig.space_mut().set_rlimit_memlock(Some(1 << 20));
        rig.space_mut().account_pinned(300);
        let va = rig.mmap(16, Contiguity::Contiguous);
        let r = rig.update(0, va, 16 * PS);
        assert_eq!(r.is_ok(), bug);
        if !bug {
            assert_eq!(r, Err(Errno::NoMem));
        }
        // With CAP_IPC_LOCK, 2016 skipped the cache-size cap too (1 MiB cap = 256 pages).
        let cfg = TidConfig {
            cache_size_mb: 1,
            ..TidConfig::new(Policy::V2023)
                .with_bugs(BugSwitches { pin_limit_2016: bug, ..BugSwitches::NONE })
        };
        let mut rig = TidRig::new(cfg, 512, 1, 2048).unwrap();
        rig.space_mut().set_cap_ipc_lock(true);
        let va = rig.mmap(300, Contiguity::Contiguous);
        let r = rig.update(0, va, 300 * PS);
        assert_eq!(r.is_ok(), bug);
    }
}

/// Seed is the 2016 design: no cover notifier and no reservation without any switch.
#[test]
fn seed_has_the_2016_design() {
    let mut rig = TidRig::new(TidConfig::new(Policy::Seed), 64, 1, 1024).unwrap();
    let va = rig.mmap(8, Contiguity::Contiguous);
    let p = rig.update_begin(0, va, 8 * PS).unwrap();
    assert!(p.cover_notifier().is_none());
    assert_eq!(rig.ctx.tid_used(0), 0, "not reserved");
    rig.munmap(va, 8 * PAGE_SIZE).unwrap();
    let u = rig.update_finish(p).unwrap();
    assert_eq!(u.length, 8 * PS, "the race goes unseen");
    assert_eq!(rig.ctx.tid_used(0), 1);
}
