//! MMIO round trips over the vfio-user socket (`VfioUserTransport` against `hfi-sim serve`'s
//! server running on a thread of this process) next to a bare UNIX-socket echo of the same
//! message sizes (a REGION_READ of 8 bytes is a 32-byte request and a 40-byte reply), measured in
//! the same run. Target: ratio ≤ 1.2. Run pinned to one CPU with `taskset -c 0 cargo bench -p
//! benches --bench socket` for the same-core figure.

#![allow(missing_docs)] // criterion_group! generates undocumented items
#![allow(clippy::disallowed_methods)] // a real server and real time: this bench measures wall time

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use driver::transport::vfio_user::VfioUserTransport;
use driver::transport::Transport;
use scenarios::world::node::{NodeConfig, DMA_BASE, PROCESS_BASE};

const ROUNDS: u32 = 20_000;

fn echo_pair() -> Option<(UnixStream, std::thread::JoinHandle<()>)> {
    let (a, mut b) = UnixStream::pair().ok()?;
    let h = std::thread::spawn(move || {
        let mut buf = [0u8; 40];
        while b.read_exact(&mut buf[..32]).is_ok() {
            if b.write_all(&buf).is_err() {
                break;
            }
        }
    });
    Some((a, h))
}

fn echo_once(s: &mut UnixStream) {
    let mut buf = [7u8; 40];
    if s.write_all(&buf[..32]).is_ok() {
        let _ = s.read_exact(&mut buf);
    }
}

fn socket(c: &mut Criterion) {
    let sock = std::env::temp_dir().join(format!("hfi-sim-bench-{}.sock", std::process::id()));
    let cfg = NodeConfig { mem_mib: 256, ..Default::default() };
    let s2 = sock.clone();
    let server = std::thread::spawn(move || scenarios::world::serve::run(&s2, &cfg));
    let t0 = Instant::now();
    while !sock.exists() && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut t = match VfioUserTransport::connect(&sock, 256 << 20, DMA_BASE, PROCESS_BASE) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("cannot connect to the in-process server: {e}");
            std::process::exit(1);
        }
    };
    let Some((mut echo, echo_thread)) = echo_pair() else {
        eprintln!("socketpair failed");
        std::process::exit(1);
    };
    let scratch = hfi_abi::cce::CCE_SCRATCH.base;
    // One-run ratios (criterion's figures follow).
    let time = |f: &mut dyn FnMut()| {
        let t0 = Instant::now();
        for _ in 0..ROUNDS {
            f();
        }
        t0.elapsed().as_nanos() as f64 / f64::from(ROUNDS)
    };
    let e = time(&mut || echo_once(&mut echo));
    let r = time(&mut || {
        let _ = t.read64(hfi_abi::rxe::RCV_CONTEXTS);
    });
    let w = time(&mut || {
        let _ = t.write64(scratch, 1);
    });
    println!("socket RTT per op: echo {e:.0} ns, MMIO read {r:.0} ns ({:.2}x), MMIO write {w:.0} ns ({:.2}x)", r / e, w / e);

    let mut g = c.benchmark_group("socket");
    g.bench_function("echo_32_40", |b| b.iter(|| echo_once(&mut echo)));
    g.bench_function("mmio_read64", |b| b.iter(|| t.read64(hfi_abi::rxe::RCV_CONTEXTS)));
    g.bench_function("mmio_write64", |b| b.iter(|| t.write64(scratch, 1)));
    g.finish();

    t.shutdown();
    drop(t);
    drop(echo);
    let _ = echo_thread.join();
    // SAFETY: kill(2) on our own pid with SIGTERM; the server thread's handler sets its stop
    // flag (installed by `serve::run`), nothing else in this process handles SIGTERM.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGTERM);
    }
    let _ = server.join();
}

criterion_group!(benches, socket);
criterion_main!(benches);
