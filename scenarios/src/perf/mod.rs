//! `hfi-sim perf`: a self-benchmark of this machine, reported as ratios measured in one run
//! (machines are noisy; nothing here is compared against fixed absolute figures).
//!
//! 1. Simulator payload throughput next to a plain memcpy of the same bytes into the same
//!    guest-memory destinations (expected receive of 8 KiB packets into 16 MiB of 2 MiB TIDs,
//!    the workload of `benches`' `expected_rx`).
//! 2. Header-only packets per second on the same workload, next to the full-data packet rate.
//! 3. The user library's TID-cache hit (10 000 cached entries) next to its miss path.
//! 4. MMIO round trips over the vfio-user socket (the server on a thread of this process) next
//!    to a bare UNIX-socket echo of the same message sizes; skipped if the server cannot start.
//!
//! This is the one place besides the socket pacing that reads the wall clock: measuring real
//! time is its purpose. The model itself never does.

pub mod workloads;

use std::hint::black_box;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use driver::transport::vfio_user::VfioUserTransport;
use driver::transport::Transport;
use driver::user::model_fd::ModelFd;
use driver::user::TidCache;
use hfi_model::{DataMode, TimingParams};
use serde::Serialize;
use vm_memory::{GuestAddress, GuestMemoryBackend};

use crate::perf::workloads::{
    expected_workload, filled, ExpectedWorkload, BASE, HIT_ENTRIES, HIT_STRIDE, MISS_BUF,
    MISS_CAPACITY, MISS_RING, PAGE, RECV_BUF,
};
use crate::world::node::{NodeConfig, DMA_BASE, PROCESS_BASE};

/// One measured figure and the ratio that gives it meaning on this machine.
#[derive(Clone, Debug, Serialize)]
pub struct PerfRow {
    /// What was measured.
    pub metric: String,
    /// The measured value, in `unit`.
    pub value: f64,
    /// Unit of `value`.
    pub unit: String,
    /// A ratio measured in the same run (1.0 for a reference row).
    pub ratio: f64,
    /// What `ratio` compares.
    pub ratio_of: String,
}

/// The result of one `hfi-sim perf` run.
#[derive(Clone, Debug, Serialize)]
pub struct PerfReport {
    /// Whether the quick (fewer iterations) settings were used.
    pub quick: bool,
    /// The measured rows.
    pub rows: Vec<PerfRow>,
    /// Measurements that could not run, with the reason.
    pub skipped: Vec<String>,
}

impl PerfReport {
    /// The row named `metric`, if measured.
    pub fn row(&self, metric: &str) -> Option<&PerfRow> {
        self.rows.iter().find(|r| r.metric == metric)
    }
}

/// Metric names, in report order.
pub mod metric {
    /// Simulated expected receive, payload GiB/s.
    pub const SIM_PAYLOAD: &str = "sim payload (8 KiB pkts)";
    /// memcpy of the same bytes, GiB/s.
    pub const MEMCPY: &str = "memcpy same bytes";
    /// Header-only mode, M packets/s.
    pub const HEADER_ONLY: &str = "header-only packets";
    /// TID-cache hit, ns per acquire + release.
    pub const CACHE_HIT: &str = "tidcache hit (10k entries)";
    /// TID-cache miss, ns per acquire + release.
    pub const CACHE_MISS: &str = "tidcache miss";
    /// Socket MMIO read, µs per op.
    pub const MMIO_READ: &str = "socket MMIO read64";
    /// Socket MMIO write, µs per op.
    pub const MMIO_WRITE: &str = "socket MMIO write64";
    /// Bare socket echo, µs per op.
    pub const ECHO: &str = "bare socket echo 32->40 B";
    /// Every metric a full report holds.
    pub const ALL: [&str; 8] =
        [SIM_PAYLOAD, MEMCPY, HEADER_ONLY, CACHE_HIT, CACHE_MISS, MMIO_READ, MMIO_WRITE, ECHO];
}

/// Warm-up and measured iterations of one measurement.
#[derive(Clone, Copy, Debug)]
struct Iters {
    warmup: u32,
    measured: u32,
}

impl Iters {
    fn new(quick: bool, quick_n: u32, full_n: u32) -> Self {
        let measured = if quick { quick_n } else { full_n };
        Iters { warmup: (measured / 10).max(1), measured }
    }
}

/// Seconds per iteration of `f` after a warm-up.
// Wall-clock self-benchmark: measuring real time is the point (the model never reads the clock).
#[allow(clippy::disallowed_methods)]
fn seconds_per_iter(it: Iters, f: &mut dyn FnMut() -> Result<(), String>) -> Result<f64, String> {
    for _ in 0..it.warmup {
        f()?;
    }
    let t0 = Instant::now();
    for _ in 0..it.measured {
        f()?;
    }
    let s = t0.elapsed().as_secs_f64() / f64::from(it.measured.max(1));
    if s.is_finite() && s > 0.0 {
        Ok(s)
    } else {
        Err(format!("timer resolution too coarse ({s} s per iteration)"))
    }
}

fn row(metric: &str, value: f64, unit: &str, ratio: f64, ratio_of: &str) -> PerfRow {
    PerfRow { metric: metric.into(), value, unit: unit.into(), ratio, ratio_of: ratio_of.into() }
}

// ---------------------------------------------------------------------------------------------
// 1 + 2: expected receive (the workload of benches/src/lib.rs, re-created here).

const BUF_MIB: usize = 16;
const MTU: u32 = 8192;
const WINDOW: usize = 16;

fn workload(mode: DataMode) -> Result<ExpectedWorkload, String> {
    expected_workload(BUF_MIB, MTU, mode, TimingParams::default())
}

/// Receives every packet, `WINDOW` in flight at a time; fails on a TID error.
fn receive_all(w: &mut ExpectedWorkload) -> Result<(), String> {
    w.receive_all(WINDOW);
    let c = w.dev.counters();
    if c.rx_tid_err_count != 0 {
        return Err(format!("expected receive had TID errors: {c:?}"));
    }
    Ok(())
}

fn expected_rx(quick: bool, rows: &mut Vec<PerfRow>) -> Result<(), String> {
    let it = Iters::new(quick, 4, 40);
    let mut w = workload(DataMode::Full)?;
    let bytes = w.data.len() as f64;
    let npk = w.packets.len() as f64;
    let sim = seconds_per_iter(it, &mut || receive_all(&mut w))?;
    // The receive must have landed the message (checked once, outside the timing).
    let mem = w.dev.memory().clone();
    let head = mem.get_slice(GuestAddress(RECV_BUF), 64).map_err(|e| e.to_string())?;
    let mut got = [0u8; 64];
    head.copy_to(&mut got[..]);
    if w.data.get(..64) != Some(&got[..]) {
        return Err("expected receive did not land the payload".into());
    }
    let data = w.data.clone();
    let mtu = MTU as usize;
    let copy = seconds_per_iter(it, &mut || {
        for (i, chunk) in data.chunks(mtu).enumerate() {
            let s = mem
                .get_slice(GuestAddress(RECV_BUF + (i * mtu) as u64), chunk.len())
                .map_err(|e| e.to_string())?;
            s.copy_from(black_box(chunk));
        }
        Ok(())
    })?;
    let gib = (1u64 << 30) as f64;
    let (sim_gibs, copy_gibs) = (bytes / sim / gib, bytes / copy / gib);
    rows.push(row(
        metric::SIM_PAYLOAD,
        sim_gibs,
        "GiB/s",
        sim_gibs / copy_gibs,
        "sim / memcpy throughput",
    ));
    rows.push(row(metric::MEMCPY, copy_gibs, "GiB/s", 1.0, "reference"));

    let it = Iters::new(quick, 10, 200);
    let mut h = workload(DataMode::HeaderOnly)?;
    let hdr = seconds_per_iter(it, &mut || receive_all(&mut h))?;
    let (hdr_mpps, full_mpps) = (npk / hdr / 1e6, npk / sim / 1e6);
    rows.push(row(
        metric::HEADER_ONLY,
        hdr_mpps,
        "M pkt/s",
        hdr_mpps / full_mpps,
        "header-only / full-data packet rate",
    ));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 3: TID cache (as benches/benches/driver.rs).

fn acquire_release(
    fd: &mut ModelFd,
    cache: &mut TidCache,
    va: u64,
    len: u32,
) -> Result<(), String> {
    let a = cache.acquire(fd, va, len).map_err(|e| e.to_string())?;
    black_box(&a);
    cache.release(fd, &a).map_err(|e| e.to_string())
}

fn tid_cache(quick: bool, rows: &mut Vec<PerfRow>) -> Result<(), String> {
    let (mut fd, mut cache) = filled(HIT_ENTRIES as u32, HIT_ENTRIES, 2 * PAGE, PAGE as u32)?;
    let mut i = 0u64;
    let hit = seconds_per_iter(Iters::new(quick, 20_000, 1_000_000), &mut || {
        i = (i + HIT_STRIDE) % HIT_ENTRIES;
        acquire_release(&mut fd, &mut cache, BASE + i * 2 * PAGE, PAGE as u32)
    })?;
    let s = cache.stats();
    if s.misses != HIT_ENTRIES || s.entries != HIT_ENTRIES {
        return Err(format!("tidcache hit measurement: not all hits: {s:?}"));
    }

    let stride = u64::from(MISS_BUF);
    let (mut fd, mut cache) = filled(MISS_CAPACITY, u64::from(MISS_CAPACITY), stride, MISS_BUF)?;
    let mut k = u64::from(MISS_CAPACITY);
    let miss = seconds_per_iter(Iters::new(quick, 2_000, 100_000), &mut || {
        k = (k + 1) % MISS_RING;
        acquire_release(&mut fd, &mut cache, BASE + k * stride, MISS_BUF)
    })?;
    let s = cache.stats();
    if s.hits != 0 || s.evictions + u64::from(MISS_CAPACITY) != s.misses {
        return Err(format!("tidcache miss measurement: not all misses: {s:?}"));
    }
    rows.push(row(
        metric::CACHE_HIT,
        hit * 1e9,
        "ns/op",
        hit / miss,
        "hit / miss cost (acquire + release)",
    ));
    rows.push(row(metric::CACHE_MISS, miss * 1e9, "ns/op", 1.0, "reference"));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 4: socket MMIO vs bare socket RTT (as benches/benches/socket.rs).

/// Distinguishes the socket paths of several runs in one process.
static RUN: AtomicU32 = AtomicU32::new(0);

fn echo_pair() -> Result<(UnixStream, JoinHandle<()>), String> {
    let (a, mut b) = UnixStream::pair().map_err(|e| format!("socketpair: {e}"))?;
    let h = std::thread::spawn(move || {
        let mut buf = [0u8; 40];
        while b.read_exact(&mut buf[..32]).is_ok() {
            if b.write_all(&buf).is_err() {
                break;
            }
        }
    });
    Ok((a, h))
}

fn echo_once(s: &mut UnixStream) -> Result<(), String> {
    let mut buf = [7u8; 40];
    s.write_all(&buf[..32]).map_err(|e| format!("echo write: {e}"))?;
    s.read_exact(&mut buf).map_err(|e| format!("echo read: {e}"))
}

type Server = JoinHandle<Result<serde_json::Value, String>>;

/// Starts `serve::run` on a thread and waits (up to 10 s) for its socket to appear.
// Wall-clock wait for a real server thread to bind its socket.
#[allow(clippy::disallowed_methods)]
fn start_server(sock: &Path) -> Result<Server, String> {
    let cfg = NodeConfig { mem_mib: 256, ..Default::default() };
    let s2 = sock.to_path_buf();
    let server = std::thread::spawn(move || crate::world::serve::run(&s2, &cfg));
    let t0 = Instant::now();
    while !sock.exists() && !server.is_finished() && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(5));
    }
    if server.is_finished() {
        return match server.join() {
            Ok(Ok(_)) => Err("the server exited at once (already stopped in this process?)".into()),
            Ok(Err(e)) => Err(e),
            Err(_) => Err("the server thread panicked".into()),
        };
    }
    if !sock.exists() {
        // Left running: without its socket we cannot be sure its SIGTERM handler is installed.
        return Err("the server did not create its socket within 10 s".into());
    }
    Ok(server)
}

/// Stops the server with SIGTERM to this process (its handler, installed by `serve::run`
/// before the socket appears, only sets its stop flag) and waits up to 10 s for it.
// Wall-clock wait for a real server thread to notice SIGTERM.
#[allow(clippy::disallowed_methods)]
fn stop_server(server: Server) -> Result<(), String> {
    // The crate forbids unsafe code, so the signal is sent by the shell's `kill` builtin.
    let pid = std::process::id().to_string();
    let sent = std::process::Command::new("sh")
        .args(["-c", "kill -TERM \"$0\"", pid.as_str()])
        .status()
        .map_err(|e| format!("cannot run kill: {e}"))?;
    if !sent.success() {
        return Err(format!("kill -TERM {pid} failed: {sent}"));
    }
    let t0 = Instant::now();
    while !server.is_finished() && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(5));
    }
    if !server.is_finished() {
        return Err("the server did not stop within 10 s of SIGTERM".into());
    }
    match server.join() {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("server: {e}")),
        Err(_) => Err("the server thread panicked".into()),
    }
}

/// Measures against a running server; `Err` means the measurement failed.
fn socket_rows(sock: &Path, quick: bool, rows: &mut Vec<PerfRow>) -> Result<(), String> {
    let mut t = VfioUserTransport::connect(sock, 256 << 20, DMA_BASE, PROCESS_BASE)
        .map_err(|e| format!("cannot connect to the in-process server: {e}"))?;
    let (mut echo, echo_thread) = echo_pair()?;
    let it = Iters::new(quick, 1_000, 20_000);
    let scratch = hfi_abi::cce::CCE_SCRATCH.base;
    let measured = (|| {
        let e = seconds_per_iter(it, &mut || echo_once(&mut echo))?;
        let r = seconds_per_iter(it, &mut || {
            black_box(t.read64(hfi_abi::rxe::RCV_CONTEXTS).map_err(|e| format!("MMIO read: {e}"))?);
            Ok(())
        })?;
        let w = seconds_per_iter(it, &mut || {
            t.write64(scratch, 1).map_err(|e| format!("MMIO write: {e}"))
        })?;
        Ok::<_, String>((e, r, w))
    })();
    t.shutdown();
    drop(t);
    drop(echo);
    let _ = echo_thread.join();
    let (e, r, w) = measured?;
    rows.push(row(metric::MMIO_READ, r * 1e6, "us/op", r / e, "MMIO read / bare echo RTT"));
    rows.push(row(metric::MMIO_WRITE, w * 1e6, "us/op", w / e, "MMIO write / bare echo RTT"));
    rows.push(row(metric::ECHO, e * 1e6, "us/op", 1.0, "reference"));
    Ok(())
}

fn socket(quick: bool, rows: &mut Vec<PerfRow>, skipped: &mut Vec<String>) -> Result<(), String> {
    let n = RUN.fetch_add(1, Ordering::Relaxed);
    let sock: PathBuf =
        std::env::temp_dir().join(format!("hfi-sim-perf-{}-{n}.sock", std::process::id()));
    let server = match start_server(&sock) {
        Ok(s) => s,
        Err(reason) => {
            skipped.push(format!("socket: skipped ({reason})"));
            return Ok(());
        }
    };
    let measured = socket_rows(&sock, quick, rows);
    let stopped = stop_server(server);
    measured?;
    stopped
}

/// Runs every measurement (`quick`: fewer iterations, a few seconds in total) and returns the
/// rows; the socket measurement is skipped (and listed in `skipped`) if the server cannot start.
pub fn run(quick: bool) -> Result<PerfReport, String> {
    let mut rows = Vec::new();
    let mut skipped = Vec::new();
    expected_rx(quick, &mut rows)?;
    tid_cache(quick, &mut rows)?;
    socket(quick, &mut rows, &mut skipped)?;
    Ok(PerfReport { quick, rows, skipped })
}

/// The guest figures of a QEMU run (`hfi-sim perf --qemu`): boot and run time, guest MMIO,
/// and the real cost in the guest of a TID_UPDATE miss (pin + VFIO map + RcvArray) against a
/// TID-cache hit — the measured pin+map cost a timing model of a virtualised path is
/// calibrated against.
pub fn qemu_rows(q: &crate::qemu::QemuReport, rows: &mut Vec<PerfRow>) {
    let c = q.costs.clone().unwrap_or_default();
    let f = |k: &str| c.get(k).and_then(serde_json::Value::as_f64).unwrap_or(0.0);
    let pages = f("update_pages").max(1.0);
    rows.push(row(
        "guest_boot",
        q.boot_s,
        "s",
        q.boot_s / q.total_s.max(1e-9),
        "boot / whole QEMU run",
    ));
    rows.push(row("guest_run", q.total_s, "s", 1.0, "QEMU start to power-off"));
    rows.push(row(
        "guest_mmio_read",
        f("mmio_read_us"),
        "us",
        f("mmio_read_us") / f("mmio_write_us").max(1e-9),
        "read / posted write",
    ));
    rows.push(row("guest_mmio_write", f("mmio_write_us"), "us", 1.0, "posted (mmap'ed BAR)"));
    rows.push(row(
        "guest_tid_update_per_page",
        f("tid_update_us") / pages,
        "us",
        f("tid_update_us") / f("cache_hit_us").max(1e-9),
        "TID_UPDATE miss / cache hit",
    ));
    rows.push(row("guest_cache_hit", f("cache_hit_us"), "us", 1.0, "acquire + release, cached"));
}

/// The report as a text table (metric, value, unit, ratio, what the ratio compares).
pub fn table(r: &PerfReport) -> String {
    let mut s = format!(
        "{:<28} {:>10} {:<8} {:>7}  {}\n",
        "metric", "value", "unit", "ratio", "ratio compares"
    );
    for row in &r.rows {
        s.push_str(&format!(
            "{:<28} {:>10.3} {:<8} {:>7.3}  {}\n",
            row.metric, row.value, row.unit, row.ratio, row.ratio_of
        ));
    }
    for k in &r.skipped {
        s.push_str(k);
        s.push('\n');
    }
    s
}
