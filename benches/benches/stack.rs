//! Benches of the driver stack on real code paths:
//! - `tid/update_free_128k`: kernel-side TID_UPDATE + TID_FREE of a 128 KiB buffer (32 pages,
//!   scattered and contiguous) against the simulated process memory and a recording RcvArray:
//!   the wall-clock cost of the driver's miss path.
//! - `demo/reuse-1/{seed,nocache}`: the demo's single-stream buffer-reuse workload end to end
//!   (device model + driver + cache); criterion reports the wall time, and the bench prints the
//!   simulated bandwidth of both policies and their ratio once.

#![allow(missing_docs)] // criterion_group! generates undocumented items

use criterion::{criterion_group, criterion_main, Criterion};
use driver::put_tid::RecordingWriter;
use driver::tid::{TidConfig, TidContext};
use driver::{CtxtInfo, Policy};
use mmu::{AddressSpace, Contiguity, OwnerId, SharedFramePool};
use scenarios::harness::demo::{self, DemoConfig};

fn tid_update(c: &mut Criterion) {
    let mut g = c.benchmark_group("tid");
    for (name, contig) in [
        ("update_free_128k_scattered", Contiguity::Scattered),
        ("update_free_128k_contiguous", Contiguity::Contiguous),
    ] {
        let pool = match SharedFramePool::new(0, 64 << 20) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("frame pool: {e}");
                std::process::exit(1);
            }
        };
        let mut mm = AddressSpace::new(OwnerId(1), pool);
        let Ok(va) = mm.mmap(128 << 10, contig) else {
            eprintln!("mmap failed");
            std::process::exit(1);
        };
        let mut tid =
            TidContext::new(1, 1024, 2048, 1, TidConfig::new(Policy::V2023), CtxtInfo::default());
        let mut hw = RecordingWriter::default();
        g.bench_function(name, |b| {
            b.iter(|| {
                if let Ok(u) = tid.tid_update(0, &mut hw, &mut mm, va.0, 128 << 10) {
                    let _ = tid.tid_free(0, &mut hw, &mut mm, &u.tidlist);
                }
                hw.ops.clear();
            })
        });
    }
    g.finish();
}

fn demo_reuse(c: &mut Criterion) {
    let cfg = DemoConfig { sizes: vec![1 << 20], repeats: 8, buffers: 1, seed: 1 };
    let mut sim = Vec::new();
    let mut g = c.benchmark_group("demo");
    g.sample_size(10);
    for p in [Policy::Seed, Policy::NoCache] {
        match demo::run_reuse(p, &cfg) {
            Ok(r) => sim.push((p.name(), r.gbps)),
            Err(e) => {
                eprintln!("demo: {e}");
                std::process::exit(1);
            }
        }
        g.bench_function(format!("reuse-1/{}", p.name()), |b| {
            b.iter(|| demo::run_reuse(p, &cfg).map(|r| r.gbps))
        });
    }
    g.finish();
    if let [(a, x), (b, y)] = sim[..] {
        println!("simulated bandwidth: {a} {x:.2} GB/s, {b} {y:.2} GB/s, speedup {:.2}x", x / y);
    }
}

criterion_group!(benches, tid_update, demo_reuse);
criterion_main!(benches);
