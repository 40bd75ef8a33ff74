//! Property test of the user TID cache against a reference model: random acquire / release /
//! invalidate / fault sequences over MockFd. After every step the cache's invariants hold,
//! each entry's refcount equals the number of outstanding acquires naming it, the kernel
//! holds exactly the cache's TIDs, and the mock saw no bad free and no stale report applied to
//! a reused TID. Every successful acquire returns TIDs that tile a contiguous range from at or
//! before the requested address, cover exactly `length` bytes of the request (all of it, or up
//! to the end of the last TID), and are valid in the kernel unless an invalidation raced with
//! that very acquire. A range lying inside a valid cached entry is a pure hit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::collections::BTreeMap;

use driver::errno::Errno;
use driver::uapi::HfiFd;
use driver::user::mock::{MockFd, UpdateFault};
use driver::user::{Acquired, CacheError, TidCache, OM_ALIGN, OM_THRESHOLD};
use hfi_abi::TidInfo;
use proptest::prelude::*;
use proptest::sample::Index;

const PAGE: u64 = 4096;
const BASE: u64 = 0x4000_0000;
/// Pages of the address space the operations touch.
const SPACE: u64 = 96;

#[derive(Clone, Debug)]
enum Op {
    Acquire { page: u64, off: u64, len: u32 },
    Release(Index),
    Invalidate { page: u64, pages: u64 },
    InvalidateDuringNextFree { page: u64, pages: u64 },
    UpdateFault(UpdateFault),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..SPACE, prop_oneof![Just(0u64), 0..PAGE], 1..(40 * PAGE as u32))
            .prop_map(|(page, off, len)| Op::Acquire { page, off, len }),
        4 => any::<Index>().prop_map(Op::Release),
        2 => (0..SPACE, 1..8u64).prop_map(|(page, pages)| Op::Invalidate { page, pages }),
        1 => (0..SPACE, 1..8u64).prop_map(|(page, pages)| Op::InvalidateDuringNextFree { page, pages }),
        1 => prop_oneof![
            Just(UpdateFault::Fail(Errno::NoMem)),
            Just(UpdateFault::Fail(Errno::NoSpc)),
            Just(UpdateFault::Fail(Errno::Busy)),
            Just(UpdateFault::Fail(Errno::Fault)),
            (0..8u32).prop_map(|p| UpdateFault::Partial(p * PAGE as u32)),
        ]
        .prop_map(Op::UpdateFault),
    ]
}

#[derive(Clone, Debug)]
struct Setup {
    tid_limit: u32,
    max_pages: u32,
    pin_limit: Option<u64>,
    breaks: Vec<u64>,
}

fn setup() -> impl Strategy<Value = Setup> {
    (
        1..12u32,
        prop_oneof![Just(1u32), Just(4), Just(16), Just(64)],
        prop_oneof![Just(None), (8..200u64).prop_map(Some)],
        proptest::collection::vec(0..SPACE, 0..6),
    )
        .prop_map(|(tid_limit, max_pages, pin_limit, breaks)| Setup {
            tid_limit,
            max_pages,
            pin_limit,
            breaks,
        })
}

/// Everything that must hold between operations.
fn check_state(cache: &TidCache, fd: &MockFd, held: &[Acquired]) -> Result<(), TestCaseError> {
    cache.check_invariants().map_err(TestCaseError::fail)?;
    let mut uses: BTreeMap<TidInfo, u32> = BTreeMap::new();
    for a in held {
        for &t in &a.tids {
            *uses.entry(t).or_default() += 1;
        }
    }
    let entries = cache.entries();
    for e in &entries {
        prop_assert_eq!(e.refcount, uses.get(&e.tid).copied().unwrap_or(0), "refcount of {:?}", e);
    }
    prop_assert_eq!(uses.len(), entries.iter().filter(|e| e.refcount > 0).count());
    let mut cached: Vec<(u64, TidInfo)> = entries.iter().map(|e| (e.start, e.tid)).collect();
    let mut kernel: Vec<(u64, TidInfo)> = fd.live_tids().iter().map(|m| (m.vaddr, m.tid)).collect();
    cached.sort();
    kernel.sort();
    prop_assert_eq!(cached, kernel, "the kernel holds exactly the cached TIDs");
    prop_assert!(cache.len() <= cache.capacity() as usize);
    let c = fd.counters();
    prop_assert_eq!(c.bad_frees, 0);
    prop_assert_eq!(c.stale_reports_on_reused, 0);
    Ok(())
}

/// A successful acquire's TIDs tile the right range.
fn check_acquired(
    fd: &MockFd,
    a: &Acquired,
    va: u64,
    len: u32,
    raced: bool,
) -> Result<(), TestCaseError> {
    prop_assert!(!a.tids.is_empty());
    prop_assert!(a.length >= 1 && a.length <= len);
    prop_assert_eq!(a.hits + a.misses, a.tids.len() as u32);
    let mut ms = Vec::new();
    for &t in &a.tids {
        let m = fd.lookup(t);
        prop_assert!(m.is_some(), "TID {:#x} not held by the kernel", t.raw());
        let m = m.unwrap();
        prop_assert!(raced || !m.invalidated, "stale TID {:?} handed out", m);
        ms.push(m);
    }
    for w in ms.windows(2) {
        prop_assert_eq!(w[0].end(), w[1].vaddr);
    }
    let first = ms[0];
    let last = ms[ms.len() - 1];
    prop_assert!(first.vaddr <= va && va < first.end());
    prop_assert_eq!(first.vaddr + u64::from(a.tid_offset), va);
    prop_assert!(last.vaddr < va + u64::from(len), "a TID past the request");
    let covered_end = last.end().min(va + u64::from(len));
    prop_assert_eq!(va + u64::from(a.length), covered_end);
    Ok(())
}

/// The entry that serves `[va, va + len)` as a pure hit, if any.
fn expected_hit(cache: &TidCache, fd: &MockFd, va: u64, len: u32) -> Option<TidInfo> {
    if fd.pending_invalidations() > 0 {
        return None;
    }
    let page_va = va & !(PAGE - 1);
    let in_page = va - page_va;
    cache
        .entries()
        .into_iter()
        .find(|e| e.start <= page_va && e.end() >= va + u64::from(len))
        .filter(|e| !e.invalidated)
        .filter(|e| page_va - e.start < OM_THRESHOLD || in_page % OM_ALIGN == 0)
        .map(|e| e.tid)
}

fn run(s: Setup, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut fd = MockFd::new(s.tid_limit)
        .max_pages_per_tid(s.max_pages)
        .expected_count(4096)
        .pin_limit_pages(s.pin_limit);
    for b in &s.breaks {
        fd.phys_break(BASE + b * PAGE);
    }
    let mut cache = TidCache::new(fd.ctxt_info());
    let mut held: Vec<Acquired> = Vec::new();
    for op in ops {
        match op {
            Op::Acquire { page, off, len } => {
                let va = BASE + page * PAGE + off;
                let hit = expected_hit(&cache, &fd, va, len);
                let queued = fd.counters().invalidations_queued;
                let updates = fd.counters().tid_update_calls;
                match cache.acquire(&mut fd, va, len) {
                    Ok(a) => {
                        let raced = fd.counters().invalidations_queued != queued;
                        check_acquired(&fd, &a, va, len, raced)?;
                        if let Some(t) = hit {
                            prop_assert_eq!(&a.tids, &vec![t]);
                            prop_assert_eq!((a.hits, a.misses), (1, 0));
                            prop_assert_eq!(fd.counters().tid_update_calls, updates);
                        }
                        held.push(a);
                    }
                    Err(
                        CacheError::NoProgress | CacheError::UpdateFailed(_) | CacheError::Fault,
                    ) => prop_assert!(hit.is_none(), "a pure hit failed"),
                    Err(e) => return Err(TestCaseError::fail(format!("acquire: {e}"))),
                }
            }
            Op::Release(i) => {
                if !held.is_empty() {
                    let a = held.swap_remove(i.index(held.len()));
                    cache.release(&mut fd, &a).map_err(|e| TestCaseError::fail(e.to_string()))?;
                }
            }
            Op::Invalidate { page, pages } => {
                fd.invalidate_range(BASE + page * PAGE, pages * PAGE);
            }
            Op::InvalidateDuringNextFree { page, pages } => {
                fd.invalidate_on_next_free(BASE + page * PAGE, pages * PAGE);
            }
            Op::UpdateFault(f) => fd.push_update_fault(f),
        }
        check_state(&cache, &fd, &held)?;
    }
    for a in held.drain(..) {
        cache.release(&mut fd, &a).map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
    check_state(&cache, &fd, &held)?;
    prop_assert_eq!(cache.idle_len(), cache.len());
    cache.cleanup(&mut fd).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(fd.live_count(), 0);
    prop_assert_eq!(fd.pinned_pages(), 0);
    prop_assert_eq!(fd.counters().bad_frees, 0);
    Ok(())
}

proptest! {
    // At least 512 cases; PROPTEST_CASES raises it.
    #![proptest_config(ProptestConfig {
        cases: ProptestConfig::default().cases.max(512),
        ..ProptestConfig::default()
    })]

    #[test]
    fn cache_matches_reference_model(s in setup(), ops in proptest::collection::vec(op(), 1..80)) {
        run(s, ops)?;
    }
}
