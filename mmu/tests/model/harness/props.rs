//! The property test and a scripted sequence through the harness.

use super::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn matches_reference_model(ops in prop::collection::vec(op(), 1..48)) {
        let mut h = Harness::new();
        for op in ops {
            h.step(op);
            h.check();
        }
        h.teardown();
    }
}

/// A fixed sequence through the same harness, so the model itself is exercised even if the
/// generator drifts: map, pin, free under pin, remap at the same VA, reuse across owners.
#[test]
fn scripted_stale_cache_sequence() {
    let mut h = Harness::new();
    let script = [
        Op::Mmap { who: 0, pages: 4, policy: 0 },
        Op::NotifierInsert { who: 0, region: 0, off: 0, pages: 4 },
        Op::Pin { who: 0, region: 0, off: 0, pages: 4 },
        Op::Munmap { who: 0, region: 0, off: 0, pages: 4, cb: Cb::Nothing },
        Op::MmapAtFreed { who: 0, idx: 0, policy: 1 },
        Op::Mmap { who: 1, pages: 6, policy: 3 },
        Op::Unpin { who: 0, idx: 0, dirty: true },
        Op::Mmap { who: 1, pages: 4, policy: 2 },
        Op::Madvise { who: 1, region: 0, off: 1, pages: 2, cb: Cb::PinAtStart(2) },
        Op::Mremap { who: 1, region: 0, pages: 8, may_move: true, cb: Cb::InsertLate },
        Op::Touch { who: 1, region: 1 },
    ];
    for op in script {
        h.step(op);
        h.check();
    }
    assert!(h.m.reused > 0);
    h.teardown();
}
