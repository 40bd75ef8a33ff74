//! Criterion benches of the device model.
//!
//! - `expected_rx/sim_8k` vs `expected_rx/memcpy_8k`: expected receive of 8 KiB packets into a
//!   16 MiB receive buffer, next to a plain memcpy (`VolatileSlice::copy_from`, i.e.
//!   `copy_nonoverlapping`) of the same bytes into the same guest-memory destination, in the same
//!   run. Target: sim/memcpy throughput ratio ≥ 0.7.
//! - `header_only/packets`: header-only timing mode, full timing model and event queue.
//!   Target: ≥ 10 M simulated packets per second.

#![allow(missing_docs)] // criterion_group! generates undocumented items

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hfi_benches::{expected_workload, ExpectedWorkload, RECV_BUF};
use hfi_model::{DataMode, TimingParams};
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend};

fn workload(mode: DataMode) -> ExpectedWorkload {
    match expected_workload(16, 8192, mode, TimingParams::default()) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("bench workload: {e}");
            std::process::exit(1);
        }
    }
}

fn expected_rx(c: &mut Criterion) {
    let mut w = workload(DataMode::Full);
    let mut g = c.benchmark_group("expected_rx");
    g.throughput(Throughput::Bytes(w.buf_len as u64));
    g.bench_function("sim_8k", |b| b.iter(|| w.receive_all(16)));
    let mem = w.dev.memory().clone();
    let data = w.data.clone();
    let mtu = w.mtu;
    g.bench_function("memcpy_8k", |b| {
        b.iter(|| {
            for (i, chunk) in data.chunks(mtu).enumerate() {
                if let Ok(s) = mem.get_slice(GuestAddress(RECV_BUF + (i * mtu) as u64), chunk.len())
                {
                    s.copy_from(chunk);
                }
            }
        })
    });
    g.bench_function("write_slice_8k", |b| {
        b.iter(|| {
            for (i, chunk) in data.chunks(mtu).enumerate() {
                let _ = mem.write_slice(chunk, GuestAddress(RECV_BUF + (i * mtu) as u64));
            }
        })
    });
    g.finish();
    if w.dev.counters().rx_tid_err_count != 0 {
        eprintln!("bench workload had TID errors: {:?}", w.dev.counters());
        std::process::exit(1);
    }
}

fn header_only(c: &mut Criterion) {
    let mut w = workload(DataMode::HeaderOnly);
    let mut g = c.benchmark_group("header_only");
    g.throughput(Throughput::Elements(w.packets.len() as u64));
    g.bench_function("packets", |b| b.iter(|| w.receive_all(16)));
    g.finish();
}

criterion_group!(benches, expected_rx, header_only);
criterion_main!(benches);
