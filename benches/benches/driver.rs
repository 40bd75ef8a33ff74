//! Criterion benches of the driver's user library (driver::user), over ModelFd.
//!
//! - `tidcache/acquire_hit_10k`: a cache holding 10 000 idle one-page entries (tid_limit
//!   10 000, unique synthetic tidinfo); one acquire + release of a cached buffer, rotating
//!   through all 10 000 in a scattered order. Target: ≤ 100 ns per acquire (+ release).
//! - `tidcache/acquire_hit_10k_mid`: the same with 10 000 two-page entries, acquiring the
//!   second page of each: the range lookup path (ordered map) instead of the exact-start index.
//! - `tidcache/acquire_miss`: a full cache (64 idle 128 KiB entries) and a ring of 1024
//!   buffers: every acquire of a new 128 KiB buffer evicts the LRU tail (TID_FREE), registers
//!   (TID_UPDATE) and is released. Includes the mock's own work.
//! - `tidcache/mock_update_free`: the mock alone doing the same TID_UPDATE + TID_FREE, so the
//!   library's share of the miss path is `acquire_miss − mock_update_free`.

#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use driver::uapi::HfiFd;
use driver::user::model_fd::ModelFd;
use driver::user::TidCache;
use hfi_benches::{BASE, HIT_ENTRIES, HIT_STRIDE, MISS_BUF, MISS_CAPACITY, MISS_RING, PAGE};

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("bench setup: {what}: {e}");
    std::process::exit(1);
}

/// The shared fixture (`scenarios::perf::workloads::filled`), exiting on a setup failure.
fn filled(tid_limit: u32, n: u64, stride: u64, len: u32) -> (ModelFd, TidCache) {
    match hfi_benches::filled(tid_limit, n, stride, len) {
        Ok(v) => v,
        Err(e) => fail("fill", e),
    }
}

fn acquire_hit_10k(c: &mut Criterion) {
    let (mut fd, mut cache) = filled(HIT_ENTRIES as u32, HIT_ENTRIES, 2 * PAGE, PAGE as u32);
    let mut i = 0u64;
    let mut g = c.benchmark_group("tidcache");
    g.bench_function("acquire_hit_10k", |b| {
        b.iter(|| {
            i = (i + HIT_STRIDE) % HIT_ENTRIES;
            match cache.acquire(&mut fd, BASE + i * 2 * PAGE, PAGE as u32) {
                Ok(a) => {
                    black_box(&a);
                    let _ = cache.release(&mut fd, &a);
                }
                Err(e) => fail("hit acquire", e),
            }
        })
    });
    g.finish();
    let s = cache.stats();
    if s.misses != HIT_ENTRIES || s.entries != HIT_ENTRIES {
        fail("hit bench", format!("not all hits: {s:?}"));
    }
}

fn acquire_hit_10k_mid(c: &mut Criterion) {
    let (mut fd, mut cache) = filled(HIT_ENTRIES as u32, HIT_ENTRIES, 2 * PAGE, 2 * PAGE as u32);
    let mut i = 0u64;
    let mut g = c.benchmark_group("tidcache");
    g.bench_function("acquire_hit_10k_mid", |b| {
        b.iter(|| {
            i = (i + HIT_STRIDE) % HIT_ENTRIES;
            match cache.acquire(&mut fd, BASE + i * 2 * PAGE + PAGE + 64, 1024) {
                Ok(a) => {
                    black_box(&a);
                    let _ = cache.release(&mut fd, &a);
                }
                Err(e) => fail("mid acquire", e),
            }
        })
    });
    g.finish();
    let s = cache.stats();
    if s.misses != HIT_ENTRIES || s.entries != HIT_ENTRIES {
        fail("mid bench", format!("not all hits: {s:?}"));
    }
}

fn acquire_miss(c: &mut Criterion) {
    let stride = u64::from(MISS_BUF);
    let (mut fd, mut cache) = filled(MISS_CAPACITY, u64::from(MISS_CAPACITY), stride, MISS_BUF);
    let mut k = u64::from(MISS_CAPACITY);
    let mut g = c.benchmark_group("tidcache");
    g.bench_function("acquire_miss", |b| {
        b.iter(|| {
            k = (k + 1) % MISS_RING;
            match cache.acquire(&mut fd, BASE + k * stride, MISS_BUF) {
                Ok(a) => {
                    black_box(&a);
                    let _ = cache.release(&mut fd, &a);
                }
                Err(e) => fail("miss acquire", e),
            }
        })
    });
    g.finish();
    let s = cache.stats();
    if s.hits != 0 || s.evictions + u64::from(MISS_CAPACITY) != s.misses {
        fail("miss bench", format!("not all misses: {s:?}"));
    }

    // The mock alone, in the same state: 63 other TIDs held, one update + free per iteration.
    let (mut fd, _cache) = filled(MISS_CAPACITY, u64::from(MISS_CAPACITY) - 1, stride, MISS_BUF);
    let va = BASE + MISS_RING * stride;
    g = c.benchmark_group("tidcache");
    g.bench_function("mock_update_free", |b| {
        b.iter(|| match fd.tid_update(va, MISS_BUF) {
            Ok(u) => {
                black_box(&u);
                let _ = fd.tid_free(&u.tidlist);
            }
            Err(e) => fail("mock update", e),
        })
    });
    g.finish();
}

criterion_group!(benches, acquire_hit_10k, acquire_hit_10k_mid, acquire_miss);
criterion_main!(benches);
