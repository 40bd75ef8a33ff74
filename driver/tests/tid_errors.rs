//! Every errno of TID_UPDATE / TID_FREE / TID_INVAL_READ / ACK_EVENT in the situations the
//! facts give (§6.2, §6.3, §6.7), and that each failure leaves nothing behind.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use driver::tid::test_utils::TidRig;
use driver::tid::TidConfig;
use driver::{Errno, Policy};
use hfi_abi::tidinfo::{EXP_TID_CTRL, EXP_TID_IDX, EXP_TID_LEN};
use hfi_abi::TidInfo;
use mmu::{AddressSpace, Contiguity, Pfn, Trigger, Va, PAGE_SIZE};

const PS: u32 = PAGE_SIZE as u32;

fn rig(policy: Policy, expected: u32, subctxts: u32) -> TidRig {
    TidRig::new(TidConfig::new(policy), expected, subctxts, 1024).unwrap()
}

fn raw(idx: u32, ctrl: u32, len: u32) -> TidInfo {
    TidInfo(EXP_TID_IDX.set(0, idx) | EXP_TID_CTRL.set(0, ctrl) | EXP_TID_LEN.set(0, len))
}

/// Nothing held, nothing pinned, nothing programmed.
fn assert_clean(rig: &TidRig) {
    rig.check().unwrap();
    assert_eq!(rig.ctx.live_entries().count(), 0);
    assert_eq!(rig.space().total_pins(), 0);
    assert_eq!(rig.space().pinned_vm(), 0);
    assert_eq!(rig.ctx.tid_used(0), 0);
    assert_eq!(rig.ctx.covers_in_flight(), 0);
    assert_eq!(rig.space().notifier_count(), 0);
}

#[test]
fn einval_update_arguments() {
    for policy in Policy::ALL {
        let mut rig = rig(policy, 64, 1);
        let va = rig.mmap(80, Contiguity::Contiguous);
        assert_eq!(rig.update(0, Va(va.0 + 0x10), PS), Err(Errno::Inval), "unaligned");
        assert_eq!(rig.update(0, va, 0), Err(Errno::Inval), "zero length");
        assert_eq!(rig.update(0, va, 65 * PS), Err(Errno::Inval), "more pages than entries");
        assert_eq!(rig.update(0, va, 64 * PS).unwrap().length, 64 * PS, "exactly all");
        assert_eq!(rig.ctx.stats().einval, 3);
        rig.close(0);
        assert_clean(&rig);
    }
}

#[test]
fn einval_free_arguments() {
    let mut rig = rig(Policy::V2023, 64, 1);
    let va = rig.mmap(2, Contiguity::Scattered);
    let u = rig.update(0, va, 2 * PS).unwrap();
    // tidcnt > tid_used.
    assert_eq!(rig.free(0, &[u.tidlist[0], u.tidlist[1], u.tidlist[0]]), Err(Errno::Inval));
    // CTRL 0 and 3.
    assert_eq!(rig.free(0, &[raw(0, 0, 1)]), Err(Errno::Inval));
    assert_eq!(rig.free(0, &[raw(0, 3, 1)]), Err(Errno::Inval));
    // Entry outside the expected range: pair 32 of a 64-entry context (entries 64, 65).
    assert_eq!(rig.free(0, &[raw(32, 1, 1)]), Err(Errno::Inval));
    assert_eq!(rig.free(0, &[raw(1023, 2, 1)]), Err(Errno::Inval));
    assert_eq!(rig.ctx.tid_used(0), 2, "nothing freed");
    assert_eq!(rig.ctx.stats().einval, 5);
    assert_eq!(rig.free(0, &u.tidlist), Ok(2));
    assert_clean(&rig);
}

#[test]
fn ebadf_not_owned_or_not_held() {
    let mut rig = rig(Policy::V2023, 64, 2);
    let va = rig.mmap(2, Contiguity::Scattered);
    let mine = rig.update(0, va, PS).unwrap().tidlist[0];
    let theirs = rig.update(1, Va(va.0 + PAGE_SIZE), PS).unwrap().tidlist[0];
    // fd 0 may not free fd 1's TID, nor an entry nobody holds.
    assert_eq!(rig.free(0, &[theirs]), Err(Errno::BadF));
    assert_eq!(rig.free(0, &[TidInfo::for_entry(5, 1).unwrap()]), Err(Errno::BadF));
    // The LEN field is not checked by hfi1: the entry decides.
    assert_eq!(rig.free(0, &[TidInfo(mine.raw() & !0x7ff | 7)]), Ok(1));
    assert_eq!(rig.free(1, &[theirs]), Ok(1));
    // Unknown and closed fds.
    assert_eq!(rig.update(7, va, PS), Err(Errno::BadF));
    assert_eq!(rig.inval_read(7), Err(Errno::BadF));
    assert_eq!(rig.ctx.ack_event(7, 1), Err(Errno::BadF));
    rig.close(1);
    assert_eq!(rig.update(1, va, PS), Err(Errno::BadF));
    assert_eq!(rig.ctx.stats().ebadf, 6);
    rig.check().unwrap();
}

#[test]
fn enomem_pin_limit() {
    // RLIMIT_MEMLOCK 64 KiB = 16 pages, one user context: the per-fd share is 16 / 1 / 4 = 4.
    let mut rig = rig(Policy::V2023, 64, 1);
    rig.space_mut().set_rlimit_memlock(Some(64 << 10));
    let va = rig.mmap(8, Contiguity::Contiguous);
    assert_eq!(rig.update(0, va, 5 * PS), Err(Errno::NoMem));
    assert_eq!(rig.update(0, va, 4 * PS).unwrap().length, 4 * PS);
    assert_eq!(rig.update(0, va, PS), Err(Errno::NoMem), "nlocked 4 + 1 > 4");
    rig.close(0);
    assert_clean(&rig);
    // The cache-size cap applies even with CAP_IPC_LOCK: 1 MiB = 256 pages.
    let cfg = TidConfig { cache_size_mb: 1, ..TidConfig::new(Policy::V2023) };
    let mut rig = TidRig::new(cfg, 512, 1, 1024).unwrap();
    rig.space_mut().set_cap_ipc_lock(true);
    let va = rig.mmap(300, Contiguity::Contiguous);
    assert_eq!(rig.update(0, va, 257 * PS), Err(Errno::NoMem));
    assert_eq!(rig.update(0, va, 256 * PS).unwrap().length, 256 * PS);
    assert_eq!(rig.ctx.stats().enomem, 1);
}

#[test]
fn enomem_from_the_pin_and_the_cover_insert() {
    let mut rig = rig(Policy::V2023, 64, 1);
    let va = rig.mmap(4, Contiguity::Contiguous);
    rig.mm.fail_pin = Trigger::NEXT;
    assert_eq!(rig.update(0, va, 4 * PS), Err(Errno::NoMem));
    assert_clean(&rig);
    rig.mm.fail_notifier_insert = Trigger::NEXT; // the cover notifier
    assert_eq!(rig.update(0, va, 4 * PS), Err(Errno::NoMem));
    assert_clean(&rig);
}

#[test]
fn enospc_nothing_pinned_no_headroom_no_entry() {
    // 0 pages pinned.
    let mut rig = rig(Policy::V2023, 16, 2);
    let va = rig.mmap(16, Contiguity::Scattered);
    rig.mm.pin_cap = Some(0);
    assert_eq!(rig.update(0, va, 4 * PS), Err(Errno::NoSpc));
    assert_clean(&rig);
    rig.mm.pin_cap = None;
    // tid_limit 8 used up: the reservation is 0.
    let u = rig.update(0, va, 8 * PS).unwrap();
    assert_eq!(u.tidlist.len(), 8);
    let pinned = rig.space().pinned_vm();
    assert_eq!(rig.update(0, Va(va.0 + 8 * PAGE_SIZE), PS), Err(Errno::NoSpc));
    assert_eq!(rig.space().pinned_vm(), pinned, "pages released");
    rig.free(0, &u.tidlist).unwrap();
    assert_clean(&rig);
    // No entry programmed: the groups are taken by the other fd (no caching: limit = all).
    let mut rig = self::rig(Policy::NoCache, 16, 2);
    let va = rig.mmap(17, Contiguity::Scattered);
    assert_eq!(rig.update(1, va, 16 * PS).unwrap().tidlist.len(), 16);
    assert_eq!(rig.update(0, Va(va.0 + 16 * PAGE_SIZE), PS), Err(Errno::NoSpc));
    assert_eq!(rig.ctx.tid_used(0), 0, "reservation undone");
    assert_eq!(rig.ctx.stats().enospc, 1);
    rig.close(1);
    assert_clean(&rig);
}

#[test]
fn efault_unmapped_first_page_dma_map_notifier_copyout() {
    let mut rig = rig(Policy::V2023, 64, 1);
    // Nothing mapped at the address.
    assert_eq!(rig.update(0, Va(0x4000_0000), PS).map(|_| ()), Err(Errno::Fault));
    assert_clean(&rig);
    let va = rig.mmap(8, Contiguity::Scattered);
    // The first DMA map fails: nothing programmed, the error is returned.
    rig.mm.fail_dma_map = Trigger::NEXT;
    assert_eq!(rig.update(0, va, 8 * PS).map(|_| ()), Err(Errno::Fault));
    assert_clean(&rig);
    // The first per-TID notifier insert fails (the cover insert is the call before it).
    rig.mm.fail_notifier_insert = Trigger::After(1);
    assert_eq!(rig.update(0, va, 8 * PS).map(|_| ()), Err(Errno::Fault));
    assert_clean(&rig);
    assert_eq!(rig.space().dma_maps_live(), 0, "the map was undone");
    // A later DMA failure is a partial success: what was programmed stays.
    rig.mm.fail_dma_map = Trigger::After(3);
    let u = rig.update(0, va, 8 * PS).unwrap();
    assert_eq!(u.tidlist.len(), 3);
    assert_eq!(u.length, 3 * PS);
    rig.free(0, &u.tidlist).unwrap();
    // The copy-out fails: everything is undone.
    rig.ctx.fail_next_copyout(0);
    assert_eq!(rig.update(0, va, 8 * PS).map(|_| ()), Err(Errno::Fault));
    assert_clean(&rig);
    assert_eq!(rig.ctx.stats().copyout_failures, 1);
    assert_eq!(rig.ctx.stats().efault, 4);
    // Only the next one fails.
    assert_eq!(rig.update(0, va, 8 * PS).unwrap().tidlist.len(), 8);
}

#[test]
fn ebusy_unmap_races_the_setup() {
    let mut rig = rig(Policy::V2023, 64, 1);
    let va = rig.mmap(8, Contiguity::Contiguous);
    let frames: Vec<Pfn> = (0..8).map(|i| rig.frame(Va(va.0 + i * PAGE_SIZE)).unwrap()).collect();
    // Right after pinning, the user unmaps the buffer.
    rig.mm.after_pin = Some(Box::new(|s: &mut AddressSpace, va: Va, pfns: &[Pfn]| {
        s.munmap_with(va, pfns.len() as u64 * PAGE_SIZE, |_, _| {}).unwrap();
    }));
    assert_eq!(rig.update(0, va, 8 * PS).map(|_| ()), Err(Errno::Busy));
    rig.mm.after_pin = None;
    assert_clean(&rig);
    assert!(rig.hw.entries.values().all(|&r| !hfi_abi::RcvArrayEntry(r).is_valid()));
    for f in frames {
        assert_eq!(rig.space().frame_state(f), Some(mmu::FrameState::Free));
    }
    assert_eq!(rig.ctx.stats().ebusy, 1);
}

#[test]
fn inval_read_never_fails_for_an_open_fd() {
    for policy in Policy::ALL {
        let mut rig = rig(policy, 64, 1);
        assert_eq!(rig.inval_read(0), Ok(vec![]));
    }
}
