//! Scenario tests of the user TID cache (driver::user) against MockFd: hit / miss / extend /
//! gap, partial registration, eviction (cache full, ENOMEM), the 128 KiB offset-mode rule,
//! invalidation of idle and in-use entries, the free-then-recheck ordering and its bug switch,
//! the non-cached path, cleanup, and error handling.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use driver::errno::Errno;
use driver::uapi::{CtxtInfo, HfiFd, TidUpdate};
use driver::user::mock::{MockFd, UpdateFault};
use driver::user::{Acquired, BugSwitches, CacheError, Eviction, TidCache};
use hfi_abi::uapi::event::TID_MMU_NOTIFY;
use hfi_abi::TidInfo;

const PAGE: u64 = 4096;
const BASE: u64 = 0x1000_0000;

fn page(n: u64) -> u64 {
    BASE + n * PAGE
}

fn cache_for(fd: &MockFd) -> TidCache {
    TidCache::new(fd.ctxt_info())
}

fn bytes(pages: u32) -> u32 {
    pages * PAGE as u32
}

/// Whether the kernel holds a TID starting at `va` (tidinfo words are reused, addresses tell).
fn held_at(fd: &MockFd, va: u64) -> bool {
    fd.live_tids().iter().any(|m| m.vaddr == va)
}

/// Acquire + release, returning the acquire.
fn touch(cache: &mut TidCache, fd: &mut MockFd, va: u64, len: u32) -> Acquired {
    let a = cache.acquire(fd, va, len).unwrap();
    cache.release(fd, &a).unwrap();
    a
}

/// The TIDs of `a` tile a contiguous range in the mock, start at or before `va`, and are valid.
fn assert_covers(fd: &MockFd, a: &Acquired, va: u64) {
    let held: Vec<_> =
        a.tids.iter().map(|&t| fd.lookup(t).expect("TID held by the kernel")).collect();
    assert!(held.iter().all(|m| !m.invalidated), "stale TID handed out: {held:?}");
    for w in held.windows(2) {
        assert_eq!(w[0].end(), w[1].vaddr, "TIDs not contiguous: {held:?}");
    }
    assert_eq!(held[0].vaddr + u64::from(a.tid_offset), va);
    assert!(va + u64::from(a.length) <= held.last().unwrap().end());
}

#[test]
fn miss_then_hit() {
    let mut fd = MockFd::new(16);
    let mut cache = cache_for(&fd);
    assert!(cache.caching());
    let a = touch(&mut cache, &mut fd, page(0), bytes(2));
    assert_eq!((a.hits, a.misses, a.length, a.tid_offset), (0, 1, bytes(2), 0));
    let b = cache.acquire(&mut fd, page(0), bytes(2)).unwrap();
    assert_eq!((b.hits, b.misses), (1, 0));
    assert_eq!(a.tids, b.tids);
    assert_covers(&fd, &b, page(0));
    let s = cache.stats();
    assert_eq!((s.acquires, s.hits, s.misses, s.tid_update_calls), (2, 1, 1, 1));
    assert_eq!((s.entries, s.idle, s.bytes_registered), (1, 0, 8192));
    cache.check_invariants().unwrap();
}

#[test]
fn unaligned_va_offset_and_length() {
    let mut fd = MockFd::new(16);
    let mut cache = cache_for(&fd);
    let a = cache.acquire(&mut fd, page(0) + 100, 5000).unwrap();
    assert_eq!((a.tid_offset, a.length), (100, 5000));
    assert_eq!(fd.lookup(a.tids[0]).unwrap().npages, 2, "two pages registered");
    assert_covers(&fd, &a, page(0) + 100);
    // A sub-range of a bigger TID is a hit with the offset into it.
    cache.release(&mut fd, &a).unwrap();
    let big = touch(&mut cache, &mut fd, page(16), bytes(8));
    let sub = cache.acquire(&mut fd, page(19) + 12, bytes(2)).unwrap();
    assert_eq!(sub.tids, big.tids);
    assert_eq!((sub.tid_offset, sub.hits), (3 * 4096 + 12, 1));
    cache.check_invariants().unwrap();
}

#[test]
fn extend_through_hits_and_register_gaps() {
    let mut fd = MockFd::new(16);
    let mut cache = cache_for(&fd);
    let p0 = touch(&mut cache, &mut fd, page(0), bytes(1));
    let p2 = touch(&mut cache, &mut fd, page(2), bytes(1));
    let a = cache.acquire(&mut fd, page(0), bytes(4)).unwrap();
    assert_eq!(a.tids.len(), 4);
    assert_eq!((a.hits, a.misses, a.length), (2, 2, bytes(4)));
    assert_eq!(a.tids[0], p0.tids[0]);
    assert_eq!(a.tids[2], p2.tids[0]);
    assert_covers(&fd, &a, page(0));
    // Gap before the first entry: [0, 2) is registered, then the entry at 2 is used.
    let b = cache.acquire(&mut fd, page(8), bytes(1)).unwrap();
    cache.release(&mut fd, &b).unwrap();
    let c = cache.acquire(&mut fd, page(6), bytes(3)).unwrap();
    assert_eq!((c.misses, c.hits), (1, 1));
    assert_eq!(c.tids[1], b.tids[0]);
    assert_covers(&fd, &c, page(6));
    assert_eq!(cache.stats().idle, 0);
    cache.check_invariants().unwrap();
}

#[test]
fn kernel_splits_into_power_of_two_tids() {
    let mut fd = MockFd::new(16).max_pages_per_tid(4);
    fd.phys_break(page(2));
    let mut cache = cache_for(&fd);
    let a = cache.acquire(&mut fd, page(0), bytes(9)).unwrap();
    let sizes: Vec<u32> = a.tids.iter().map(|t| t.npages()).collect();
    assert_eq!(sizes, vec![2, 4, 2, 1]);
    assert_covers(&fd, &a, page(0));
    cache.check_invariants().unwrap();
}

#[test]
fn partial_when_the_cache_fills_with_tids_in_use() {
    let mut fd = MockFd::new(2).max_pages_per_tid(1);
    let mut cache = cache_for(&fd);
    let a = cache.acquire(&mut fd, page(0), bytes(4)).unwrap();
    assert_eq!((a.tids.len(), a.length, a.misses), (2, bytes(2), 2));
    assert_covers(&fd, &a, page(0));
    // Nothing idle and nothing free: no progress.
    assert_eq!(cache.acquire(&mut fd, page(10), bytes(1)), Err(CacheError::NoProgress));
    assert_eq!(cache.stats().no_progress, 1);
    cache.check_invariants().unwrap();
}

#[test]
fn partial_mapping_is_completed_by_the_next_registration() {
    let mut fd = MockFd::new(16);
    let mut cache = cache_for(&fd);
    fd.push_update_fault(UpdateFault::Partial(bytes(1)));
    let a = cache.acquire(&mut fd, page(0), bytes(4)).unwrap();
    assert_eq!((a.tids.len(), a.length), (3, bytes(4)), "1 page, then 2 + 1");
    assert_eq!(fd.counters().tid_update_calls, 2);
    // A partial mapping followed by a failure returns what was obtained.
    fd.push_update_fault(UpdateFault::Partial(bytes(1)));
    fd.push_update_fault(UpdateFault::Fail(Errno::NoSpc));
    let b = cache.acquire(&mut fd, page(10) + 8, bytes(4)).unwrap();
    assert_eq!((b.tids.len(), b.length), (1, bytes(1) - 8));
    assert_covers(&fd, &b, page(10) + 8);
    cache.check_invariants().unwrap();
}

#[test]
fn first_registration_failure_is_reported() {
    let mut fd = MockFd::new(16);
    let mut cache = cache_for(&fd);
    fd.push_update_fault(UpdateFault::Fail(Errno::Busy));
    assert_eq!(
        cache.acquire(&mut fd, page(0), bytes(1)),
        Err(CacheError::UpdateFailed(Errno::Busy))
    );
    assert!(cache.is_empty());
    assert_eq!(
        cache.acquire(&mut fd, page(0), 0),
        Err(CacheError::InvalidRange { va: page(0), len: 0 })
    );
    assert!(matches!(
        cache.acquire(&mut fd, u64::MAX - 5, 100),
        Err(CacheError::InvalidRange { .. })
    ));
}

#[test]
fn full_cache_evicts_the_lru_tail() {
    let mut fd = MockFd::new(2);
    let mut cache = cache_for(&fd);
    let a = touch(&mut cache, &mut fd, page(0), bytes(1));
    let b = touch(&mut cache, &mut fd, page(4), bytes(1));
    let order: Vec<TidInfo> = cache.idle_lru_order().iter().map(|e| e.tid).collect();
    assert_eq!(order, vec![a.tids[0], b.tids[0]], "tail first: A was released first");
    let c = touch(&mut cache, &mut fd, page(8), bytes(1));
    assert!(!held_at(&fd, page(0)), "A evicted");
    assert_eq!(c.tids, a.tids, "and its entry reused for C");
    assert!(fd.is_valid(b.tids[0]));
    assert_eq!(cache.stats().evictions, 1);
    // Using B makes C the tail.
    touch(&mut cache, &mut fd, page(4), bytes(1));
    let order: Vec<TidInfo> = cache.idle_lru_order().iter().map(|e| e.tid).collect();
    assert_eq!(order, vec![c.tids[0], b.tids[0]]);
    assert_eq!(fd.counters().bad_frees, 0);
    cache.check_invariants().unwrap();
}

/// A cyclic working set one buffer larger than the cache: LRU evicts exactly the buffer needed
/// next (no hit after the first round); MRU keeps all but one.
fn cyclic_hits(eviction: Eviction) -> (u64, TidCache) {
    let mut fd = MockFd::new(4);
    let mut cache = cache_for(&fd);
    cache.set_eviction(eviction);
    assert_eq!(cache.eviction(), eviction);
    for round in 0..10 {
        for b in 0..5 {
            touch(&mut cache, &mut fd, page(b * 4), bytes(1));
            if round == 0 {
                assert_eq!(cache.stats().hits, 0);
            }
        }
    }
    assert_eq!(fd.counters().bad_frees, 0);
    cache.check_invariants().unwrap();
    (cache.stats().hits, cache)
}

#[test]
fn eviction_order_lru_thrashes_a_cycle_mru_does_not() {
    let (lru, c) = cyclic_hits(Eviction::Lru);
    assert_eq!(lru, 0);
    assert_eq!(c.stats().evictions, 50 - 4);
    let (mru, c) = cyclic_hits(Eviction::Mru);
    // After the first round MRU keeps three buffers of the cycle resident: 34 of the 45
    // later touches hit (LRU: none).
    assert_eq!(mru, 34);
    assert!(c.stats().evictions < 50 - 4);
}

#[test]
fn enomem_evicts_idle_until_the_length_is_covered() {
    let mut fd = MockFd::new(16).pin_limit_pages(Some(8));
    let mut cache = cache_for(&fd);
    let a = touch(&mut cache, &mut fd, page(0), bytes(4));
    let b = touch(&mut cache, &mut fd, page(8), bytes(4));
    let c = cache.acquire(&mut fd, page(16), bytes(4)).unwrap();
    assert_eq!(c.length, bytes(4));
    assert!(!held_at(&fd, page(0)), "A (LRU tail, 4 pages) evicted");
    assert_eq!(a.tids, c.tids, "A's entry reused for C");
    assert!(fd.is_valid(b.tids[0]), "B kept: A alone covered the length");
    assert_eq!(cache.stats().evictions, 1);
    assert_eq!(fd.counters().tid_update_errors, 1);
    cache.check_invariants().unwrap();
}

#[test]
fn injected_enomem_once_evicts_then_retries() {
    let mut fd = MockFd::new(16);
    let mut cache = cache_for(&fd);
    for i in 0..4 {
        touch(&mut cache, &mut fd, page(4 * i), bytes(1));
    }
    fd.push_update_fault(UpdateFault::Fail(Errno::NoMem));
    let a = cache.acquire(&mut fd, page(100), bytes(2)).unwrap();
    assert_eq!(a.length, bytes(2));
    assert_eq!(cache.stats().evictions, 2, "two 1-page TIDs cover 2 pages");
    assert_eq!(cache.len(), 3);
    cache.check_invariants().unwrap();
}

#[test]
fn enomem_without_enough_idle_fails() {
    let mut fd = MockFd::new(16);
    let mut cache = cache_for(&fd);
    fd.push_update_fault(UpdateFault::Fail(Errno::NoMem));
    assert_eq!(
        cache.acquire(&mut fd, page(0), bytes(1)),
        Err(CacheError::UpdateFailed(Errno::NoMem))
    );
    touch(&mut cache, &mut fd, page(0), bytes(1));
    fd.push_update_fault(UpdateFault::Fail(Errno::NoMem));
    // One idle page cannot cover 4: it is evicted anyway and the acquire fails.
    assert_eq!(
        cache.acquire(&mut fd, page(8), bytes(4)),
        Err(CacheError::UpdateFailed(Errno::NoMem))
    );
    assert!(cache.is_empty());
    assert_eq!(fd.live_count(), 0);
    cache.check_invariants().unwrap();
}

#[test]
fn efault_is_fatal_and_unwinds_references() {
    let mut fd = MockFd::new(16);
    let mut cache = cache_for(&fd);
    fd.push_update_fault(UpdateFault::Fail(Errno::Fault));
    assert_eq!(cache.acquire(&mut fd, page(0), bytes(1)), Err(CacheError::Fault));
    let a = touch(&mut cache, &mut fd, page(0), bytes(1));
    fd.push_update_fault(UpdateFault::Fail(Errno::Fault));
    assert_eq!(cache.acquire(&mut fd, page(0), bytes(2)), Err(CacheError::Fault));
    let e = cache.entry_for(a.tids[0]).unwrap();
    assert_eq!((e.refcount, cache.idle_len()), (0, 1), "the hit taken before the fault is undone");
    cache.check_invariants().unwrap();
}

#[test]
fn offset_mode_rule_reregisters_unaligned_starts_past_128k() {
    let mut fd = MockFd::new(64).max_pages_per_tid(64);
    let mut cache = cache_for(&fd);
    let whole = touch(&mut cache, &mut fd, page(0), bytes(64));
    assert_eq!(whole.tids.len(), 1);
    // 124 KiB into the TID: below the switch-over, any alignment hits.
    let a = cache.acquire(&mut fd, page(31) + 32, bytes(1)).unwrap();
    assert_eq!((a.tids[0], a.tid_offset), (whole.tids[0], 31 * 4096 + 32));
    // 128 KiB + 64: OM=1 can express it.
    let b = cache.acquire(&mut fd, page(32) + 64, bytes(1)).unwrap();
    assert_eq!((b.tids[0], b.tid_offset), (whole.tids[0], 128 * 1024 + 64));
    // 128 KiB + 32 while in use: retry later.
    assert_eq!(cache.acquire(&mut fd, page(32) + 32, bytes(1)), Err(CacheError::NoProgress));
    cache.release(&mut fd, &a).unwrap();
    cache.release(&mut fd, &b).unwrap();
    // Idle: removed and re-registered from the needed page.
    let c = cache.acquire(&mut fd, page(32) + 32, bytes(1)).unwrap();
    assert_eq!((c.tid_offset, c.misses), (32, 1));
    assert_eq!(fd.lookup(c.tids[0]).unwrap().vaddr, page(32));
    assert!(cache.entry_for(whole.tids[0]).is_none_or(|e| e.start == page(32)));
    assert_eq!(cache.stats().evictions, 1);
    assert_eq!(fd.live_count(), 1);
    cache.check_invariants().unwrap();
}

#[test]
fn invalidated_idle_entry_is_freed_before_the_search() {
    let mut fd = MockFd::new(16);
    let mut cache = cache_for(&fd);
    let a = touch(&mut cache, &mut fd, page(0), bytes(2));
    assert_eq!(fd.invalidate_range(page(1), 1), 1);
    // Re-acquiring the same range must not hit the stale entry.
    let b = cache.acquire(&mut fd, page(0), bytes(2)).unwrap();
    assert_eq!((b.hits, b.misses), (0, 1));
    assert_covers(&fd, &b, page(0));
    assert_eq!(fd.event_word() & TID_MMU_NOTIFY, 0, "TID_INVAL_READ cleared the bit");
    assert!(fd.lookup(a.tids[0]).is_none() || fd.lookup(a.tids[0]).unwrap().generation != 1);
    let s = cache.stats();
    assert_eq!((s.invalidations_processed, s.tid_free_calls), (1, 1));
    assert_eq!(fd.counters().frees_of_invalidated, 1);
    cache.check_invariants().unwrap();
}

#[test]
fn invalidated_entry_in_use_waits_for_release() {
    let mut fd = MockFd::new(16);
    let mut cache = cache_for(&fd);
    let a = cache.acquire(&mut fd, page(0), bytes(1)).unwrap();
    fd.invalidate_range(page(0), PAGE);
    touch(&mut cache, &mut fd, page(8), bytes(1));
    let e = cache.entry_for(a.tids[0]).unwrap();
    assert!(e.invalidated && e.refcount == 1);
    assert!(fd.lookup(a.tids[0]).is_some(), "not freed while in use");
    assert_eq!(cache.acquire(&mut fd, page(0), bytes(1)), Err(CacheError::NoProgress));
    // Overlapping the invalidated entry from a neighbouring page stops the extension there.
    let left = cache.acquire(&mut fd, page(0) - PAGE, bytes(3));
    assert_eq!(left, Err(CacheError::NoProgress), "the first overlap is invalidated");
    cache.release(&mut fd, &a).unwrap();
    assert!(fd.lookup(a.tids[0]).is_none(), "freed at the last release");
    assert_eq!(fd.counters().frees_of_invalidated, 1);
    let again = cache.acquire(&mut fd, page(0), bytes(1)).unwrap();
    assert_eq!(again.misses, 1);
    assert_covers(&fd, &again, page(0));
    cache.check_invariants().unwrap();
}

#[test]
fn extension_stops_at_an_invalidated_successor() {
    let mut fd = MockFd::new(16);
    let mut cache = cache_for(&fd);
    let held = cache.acquire(&mut fd, page(1), bytes(1)).unwrap();
    touch(&mut cache, &mut fd, page(0), bytes(1));
    fd.invalidate_range(page(1), PAGE);
    touch(&mut cache, &mut fd, page(9), bytes(1)); // processes the invalidation
    let a = cache.acquire(&mut fd, page(0), bytes(3)).unwrap();
    assert_eq!((a.tids.len(), a.length), (1, bytes(1)), "partial: page 1 is invalidated in use");
    cache.release(&mut fd, &held).unwrap();
    cache.check_invariants().unwrap();
}

#[test]
fn reports_for_unknown_tids_are_stale() {
    let mut fd = MockFd::new(16);
    let mut cache = cache_for(&fd);
    // The kernel reports a TID this cache never registered (another subcontext's, say).
    let stray = fd.tid_update(page(50), bytes(1)).unwrap().tidlist[0];
    fd.invalidate_tid(stray);
    touch(&mut cache, &mut fd, page(0), bytes(1));
    let s = cache.stats();
    assert_eq!((s.stale_invalidations, s.invalidations_processed), (1, 0));
    cache.check_invariants().unwrap();
}

/// Two idle 1-page entries, A (LRU tail) then X; the kernel invalidates A while the cache is
/// evicting it for B, and reuses A's entry for B.
fn same_tid_race(bugs: BugSwitches) -> (MockFd, TidCache, TidInfo) {
    let mut fd = MockFd::new(2);
    let mut cache = TidCache::with_bugs(fd.ctxt_info(), bugs);
    let a = touch(&mut cache, &mut fd, page(0), bytes(1));
    touch(&mut cache, &mut fd, page(10), bytes(1));
    fd.invalidate_on_next_free(page(0), PAGE);
    let b = touch(&mut cache, &mut fd, page(20), bytes(1));
    assert_eq!(b.tids[0], a.tids[0], "the kernel reused A's entry for B");
    assert!(fd.is_valid(b.tids[0]));
    // Any later acquire reads the event word first.
    touch(&mut cache, &mut fd, page(10), bytes(1));
    (fd, cache, b.tids[0])
}

#[test]
fn free_then_recheck_consumes_the_report_before_reuse() {
    let (mut fd, mut cache, b) = same_tid_race(BugSwitches::default());
    assert_eq!(fd.counters().stale_reports_on_reused, 0);
    assert_eq!(fd.counters().stale_reports_on_free, 1);
    assert_eq!(cache.stats().stale_invalidations, 1);
    assert_eq!(cache.stats().invalidations_processed, 0);
    assert!(fd.is_valid(b));
    let again = cache.acquire(&mut fd, page(20), bytes(1)).unwrap();
    assert_eq!((again.hits, again.tids[0]), (1, b));
    cache.check_invariants().unwrap();
}

#[test]
fn bug_switch_applies_the_stale_report_to_the_reused_tid() {
    let bugs = BugSwitches { skip_recheck_after_free: true };
    let (mut fd, mut cache, b) = same_tid_race(bugs);
    assert_eq!(fd.counters().stale_reports_on_reused, 1, "the mock saw the stale report hit B");
    assert_eq!(cache.stats().invalidations_processed, 1);
    assert!(fd.lookup(b).is_none(), "B's valid TID was freed by the stale report");
    let again = cache.acquire(&mut fd, page(20), bytes(1)).unwrap();
    assert_eq!(again.misses, 1, "B must be registered again");
    cache.check_invariants().unwrap();
}

/// C (idle, page 1) is invalidated while the cache evicts X to register the gap before it.
fn neighbour_race(bugs: BugSwitches) -> (MockFd, Acquired) {
    let mut fd = MockFd::new(2);
    let mut cache = TidCache::with_bugs(fd.ctxt_info(), bugs);
    touch(&mut cache, &mut fd, page(10), bytes(1));
    touch(&mut cache, &mut fd, page(1), bytes(1));
    fd.invalidate_on_next_free(page(1), PAGE);
    let a = cache.acquire(&mut fd, page(0), bytes(2)).unwrap();
    cache.check_invariants().unwrap();
    (fd, a)
}

#[test]
fn recheck_after_free_keeps_a_just_invalidated_tid_out() {
    let (fd, a) = neighbour_race(BugSwitches::default());
    assert_eq!(a.length, bytes(2));
    assert_covers(&fd, &a, page(0));
}

#[test]
fn bug_switch_hands_out_a_stale_tid() {
    let (fd, a) = neighbour_race(BugSwitches { skip_recheck_after_free: true });
    assert_eq!(a.tids.len(), 2);
    assert!(!fd.is_valid(a.tids[1]), "the TID for page 1 was invalidated, yet handed out");
}

#[test]
fn nocache_path_updates_and_frees_every_time() {
    let mut fd = MockFd::new(4).nocache();
    let mut cache = cache_for(&fd);
    assert!(!cache.caching());
    // 8 bytes into page 0, 2 pages long: 3 pages registered, as 2 + 1.
    let a = cache.acquire(&mut fd, page(0) + 8, bytes(2)).unwrap();
    assert_eq!((a.tid_offset, a.length, a.misses, a.hits), (8, bytes(2), 2, 0));
    assert_covers(&fd, &a, page(0) + 8);
    let b = cache.acquire(&mut fd, page(0) + 8, bytes(2)).unwrap();
    assert_ne!(a.tids, b.tids, "no caching: a second registration");
    // Every TID out: no progress.
    assert_eq!(cache.acquire(&mut fd, page(10), bytes(1)), Err(CacheError::NoProgress));
    cache.release(&mut fd, &a).unwrap();
    assert!(a.tids.iter().all(|&t| fd.lookup(t).is_none()));
    assert_eq!(cache.release(&mut fd, &a), Err(CacheError::NotAcquired(a.tids[0].raw())));
    let c = cache.acquire(&mut fd, page(10), bytes(3)).unwrap();
    assert_eq!(c.tids.len(), 2);
    assert_eq!(cache.len(), 4);
    assert_eq!(cache.cleanup(&mut fd), Ok(4));
    assert_eq!(fd.live_count(), 0);
    let s = cache.stats();
    assert_eq!((s.tid_update_calls, s.tid_free_calls, s.entries, s.no_progress), (3, 2, 0, 1));
    cache.check_invariants().unwrap();
}

#[test]
fn cleanup_leaves_nothing_registered() {
    let mut fd = MockFd::new(16);
    let mut cache = cache_for(&fd);
    touch(&mut cache, &mut fd, page(0), bytes(2)); // idle
    let _in_use = cache.acquire(&mut fd, page(4), bytes(1)).unwrap();
    let stale = cache.acquire(&mut fd, page(8), bytes(1)).unwrap();
    fd.invalidate_range(page(8), PAGE);
    touch(&mut cache, &mut fd, page(12), bytes(1)); // marks `stale` invalidated
    assert!(cache.entry_for(stale.tids[0]).unwrap().invalidated);
    touch(&mut cache, &mut fd, page(16), bytes(1));
    fd.invalidate_range(page(16), PAGE); // pending at cleanup
    let freed = cache.cleanup(&mut fd).unwrap();
    assert_eq!(freed, 4, "2 idle, in use, invalidated in use; the pending one freed by processing");
    assert_eq!(fd.live_count(), 0);
    assert_eq!(fd.pinned_pages(), 0);
    assert_eq!(fd.counters().bad_frees, 0);
    assert!(cache.is_empty());
    cache.check_invariants().unwrap();
    // A handle from before the cleanup is stale.
    assert!(matches!(cache.release(&mut fd, &stale), Err(CacheError::NotAcquired(_))));
}

#[test]
fn release_checks_before_changing_anything() {
    let mut fd = MockFd::new(16);
    let mut cache = cache_for(&fd);
    let a = cache.acquire(&mut fd, page(0), bytes(1)).unwrap();
    let mut bad = a.clone();
    bad.tids.push(TidInfo::for_entry(900, 1).unwrap());
    assert!(matches!(cache.release(&mut fd, &bad), Err(CacheError::NotAcquired(_))));
    assert_eq!(cache.entry_for(a.tids[0]).unwrap().refcount, 1);
    let mut twice = a.clone();
    twice.tids.push(a.tids[0]);
    assert!(matches!(cache.release(&mut fd, &twice), Err(CacheError::NotAcquired(_))));
    cache.release(&mut fd, &a).unwrap();
    assert!(matches!(cache.release(&mut fd, &a), Err(CacheError::NotAcquired(_))));
    cache.check_invariants().unwrap();
}

#[test]
fn free_failure_surfaces() {
    let mut fd = MockFd::new(16);
    let mut cache = cache_for(&fd);
    let a = cache.acquire(&mut fd, page(0), bytes(1)).unwrap();
    fd.invalidate_range(page(0), PAGE);
    touch(&mut cache, &mut fd, page(4), bytes(1));
    fd.fail_next_free(Errno::Inval);
    assert_eq!(cache.release(&mut fd, &a), Err(CacheError::FreeFailed(Errno::Inval)));
    cache.check_invariants().unwrap();
}

/// An fd whose TID_UPDATE over-reports the mapped length.
struct LyingFd(MockFd);

impl HfiFd for LyingFd {
    fn ctxt_info(&self) -> CtxtInfo {
        self.0.ctxt_info()
    }
    fn tid_update(&mut self, vaddr: u64, length: u32) -> Result<TidUpdate, Errno> {
        let mut u = self.0.tid_update(vaddr, length)?;
        u.length += 4096;
        Ok(u)
    }
    fn tid_free(&mut self, tids: &[TidInfo]) -> Result<u32, Errno> {
        self.0.tid_free(tids)
    }
    fn tid_inval_read(&mut self) -> Result<Vec<TidInfo>, Errno> {
        self.0.tid_inval_read()
    }
    fn event_word(&self) -> u64 {
        self.0.event_word()
    }
    fn ack_event(&mut self, bits: u64) -> Result<(), Errno> {
        self.0.ack_event(bits)
    }
}

#[test]
fn inconsistent_update_reply_is_handed_back() {
    let mut fd = LyingFd(MockFd::new(16));
    let mut cache = TidCache::new(fd.ctxt_info());
    assert_eq!(cache.acquire(&mut fd, page(0), bytes(1)), Err(CacheError::BadUpdate));
    assert_eq!(fd.0.live_count(), 0, "the TIDs were freed back");
    assert!(cache.is_empty());
}

#[test]
fn ten_thousand_entries_beyond_the_tidinfo_limit() {
    let n = 10_000u64;
    let mut fd = MockFd::new(n as u32);
    let mut cache = cache_for(&fd);
    for i in 0..n {
        touch(&mut cache, &mut fd, page(2 * i), bytes(1));
    }
    assert_eq!(cache.len(), n as usize);
    cache.check_invariants().unwrap();
    for i in (0..n).step_by(97) {
        let a = cache.acquire(&mut fd, page(2 * i), bytes(1)).unwrap();
        assert_eq!(a.hits, 1);
        cache.release(&mut fd, &a).unwrap();
    }
    // One more evicts the LRU tail: the first entry registered and not touched since (entry 0
    // was re-acquired above).
    touch(&mut cache, &mut fd, page(2 * n), bytes(1));
    assert!(!held_at(&fd, page(2)));
    assert!(held_at(&fd, page(0)));
    assert_eq!(cache.stats().peak_entries, n);
    assert_eq!(cache.cleanup(&mut fd), Ok(n as u32));
    assert_eq!(fd.live_count(), 0);
}
