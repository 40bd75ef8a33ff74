//! The `hfi-sim qemu` run: server, QEMU, guest lines, checks.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::boot::{boot, default_accel, Machine};
use super::env::{build_guest_binary, build_image, GuestEnd, ImageSpec, QemuEnv};
use crate::harness::demo::{self, DemoConfig};
use crate::world::node::NodeConfig;
use crate::world::serve::ServerThread;

/// Options of a run.
#[derive(Clone, Debug)]
pub struct QemuOptions {
    /// The setup cache.
    pub cache: PathBuf,
    /// A prebuilt static guest binary (built when `None`).
    pub guest_bin: Option<PathBuf>,
    /// Work directory (socket, image, logs); kept.
    pub work: PathBuf,
    /// Whole-run deadline for QEMU.
    pub timeout: Duration,
    /// Message sizes of the guest workload.
    pub sizes: Vec<u64>,
    /// Messages per size.
    pub repeats: u32,
    /// Buffers reused.
    pub buffers: u32,
    /// `kvm` or `tcg`; `None` = KVM when it works here.
    pub accel: Option<String>,
    /// Echo every console line (not only result lines).
    pub verbose: bool,
}

impl QemuOptions {
    /// Defaults: the repo cache, `out/qemu`, 240 s, the guest workload's defaults
    /// ([`DemoConfig::small`]).
    pub fn new() -> Self {
        let demo = DemoConfig::small();
        Self {
            cache: super::default_cache(),
            guest_bin: None,
            work: PathBuf::from("out/qemu"),
            timeout: Duration::from_secs(240),
            sizes: demo.sizes,
            repeats: demo.repeats,
            buffers: demo.buffers,
            accel: None,
            verbose: false,
        }
    }
}

impl Default for QemuOptions {
    fn default() -> Self {
        Self::new()
    }
}

/// A guest row next to the same workload in process.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    /// Policy.
    pub policy: String,
    /// Messages (guest, in process).
    pub messages: (u64, u64),
    /// TID_UPDATE calls (guest, in process).
    pub tid_updates: (u64, u64),
    /// Cache hit rate in TIDs (guest, in process).
    pub hit_rate: (f64, f64),
    /// Messages and TID_UPDATE calls agree.
    pub consistent: bool,
}

/// Everything a run found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct QemuReport {
    /// QEMU version.
    pub qemu: String,
    /// Accelerator used.
    pub accel: String,
    /// Seconds from QEMU start to the guest's init (the `boot` line).
    pub boot_s: f64,
    /// Seconds from QEMU start to its exit.
    pub total_s: f64,
    /// Guest uptime at power-off.
    pub guest_uptime_s: f64,
    /// The guest's rows (JSON as printed).
    pub rows: Vec<Value>,
    /// The guest's measured costs.
    pub costs: Option<Value>,
    /// Guest error lines.
    pub errors: Vec<String>,
    /// The guest printed `done ok`.
    pub guest_ok: bool,
    /// Guest rows next to the in-process run.
    pub comparisons: Vec<Comparison>,
    /// Server and device counters.
    pub server: Value,
    /// Failed checks (empty = pass).
    pub failures: Vec<String>,
}

impl QemuReport {
    /// True when every check passed.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// The common start of a QEMU run: the setup cache (running `tools/qemu/setup.sh` if
/// needed), the static guest binary (built unless given), the work directory.
pub fn prepare(opts: &QemuOptions, out: &mut dyn Write) -> Result<(QemuEnv, PathBuf), String> {
    let env = QemuEnv::setup(&opts.cache)?;
    let _ = writeln!(out, "qemu: {}", env.version);
    let guest_bin = match &opts.guest_bin {
        Some(p) => p.clone(),
        None => build_guest_binary(&opts.cache.join("guest-target"))?,
    };
    std::fs::create_dir_all(&opts.work)
        .map_err(|e| format!("cannot create {}: {e}", opts.work.display()))?;
    Ok((env, guest_bin))
}

/// Runs the end-to-end test; `out` receives progress and the guest's result lines.
pub fn run(opts: &QemuOptions, out: &mut dyn Write) -> Result<QemuReport, String> {
    let (env, guest_bin) = prepare(opts, out)?;
    let sizes: Vec<String> = opts.sizes.iter().map(u64::to_string).collect();
    let args = format!(
        "--sizes {} --repeats {} --buffers {}",
        sizes.join(","),
        opts.repeats,
        opts.buffers
    );
    let spec = ImageSpec {
        kernel: env.kernel_cloud.clone(),
        modules: vec![
            ("irqbypass".into(), String::new()),
            ("vfio_virqfd".into(), String::new()),
            ("vfio".into(), String::new()),
            ("vfio_iommu_type1".into(), "allow_unsafe_interrupts=1".into()),
            ("vfio-pci-core".into(), String::new()),
            ("vfio-pci".into(), String::new()),
        ],
        programs: vec![("hfi-guest".into(), guest_bin)],
        commands: vec![format!("/bin/hfi-guest {args}")],
        end: GuestEnd::PowerOff,
    };
    let image = build_image(&env, &spec)?;
    let initrd = opts.work.join("initrd.cpio");
    std::fs::write(&initrd, image).map_err(|e| format!("cannot write the image: {e}"))?;
    let socket = opts.work.join(format!("hfi-{}.sock", std::process::id()));
    let server = ServerThread::start(&socket, &NodeConfig::default())?;
    let accel = opts.accel.clone().unwrap_or_else(|| default_accel().into());
    let mut report =
        QemuReport { qemu: env.version.clone(), accel: accel.clone(), ..Default::default() };
    let boot = boot_guest(&env, opts, &accel, &initrd, &socket, &mut report, out);
    report.server = server.stop().unwrap_or_else(Value::String);
    boot?;
    check(opts, &mut report);
    let json = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    let path = opts.work.join("qemu.json");
    std::fs::write(&path, json).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(report)
}

fn boot_guest(
    env: &QemuEnv,
    opts: &QemuOptions,
    accel: &str,
    initrd: &Path,
    socket: &Path,
    report: &mut QemuReport,
    out: &mut dyn Write,
) -> Result<(), String> {
    let device = serde_json::json!({
        "driver": "vfio-user-pci",
        "socket": { "path": socket.to_string_lossy(), "type": "unix" }
    });
    let machine = Machine {
        kernel: env.kernel_cloud.join("vmlinuz"),
        append: "console=ttyS0 quiet panic=-1 intel_iommu=on iommu=pt".into(),
        devices: vec!["intel-iommu,intremap=off,caching-mode=on".into(), device.to_string()],
    };
    let verbose = opts.verbose;
    let b = boot(env, accel, opts.timeout, &machine, initrd, &mut |line, t| {
        handle_line(line, t, report, verbose, out)
    })?;
    report.total_s = b.total_s;
    let log = opts.work.join("console.log");
    let _ = std::fs::write(&log, b.console.join("\n"));
    if b.timed_out {
        report.failures.push(format!(
            "QEMU did not finish within {} s (killed); console in {}",
            opts.timeout.as_secs(),
            log.display()
        ));
    }
    Ok(())
}

fn handle_line(line: &str, t: f64, report: &mut QemuReport, verbose: bool, out: &mut dyn Write) {
    let Some((kind, rest)) = guest_proto::report::parse(line) else {
        if verbose || line.starts_with("qemu stderr") {
            let _ = writeln!(out, "  | {line}");
        }
        return;
    };
    let _ = writeln!(out, "guest: {kind} {rest}");
    match kind {
        "boot" => report.boot_s = t,
        "uptime" => report.guest_uptime_s = rest.trim().parse().unwrap_or(0.0),
        "row" => {
            if let Ok(v) = serde_json::from_str(rest) {
                report.rows.push(v);
            }
        }
        "costs" => report.costs = serde_json::from_str(rest).ok(),
        "error" => report.errors.push(rest.to_string()),
        "done" => report.guest_ok = rest.trim() == "ok",
        _ => {}
    }
}

static NULL: Value = Value::Null;

/// `v[k]`, or null.
pub(crate) fn at<'a>(v: &'a Value, k: &str) -> &'a Value {
    v.get(k).unwrap_or(&NULL)
}

/// `v[k]` as u64, or 0.
pub(crate) fn u(v: &Value, k: &str) -> u64 {
    v.get(k).and_then(Value::as_u64).unwrap_or(0)
}

fn check(opts: &QemuOptions, report: &mut QemuReport) {
    let mut fails = Vec::new();
    if !report.guest_ok {
        fails.push("the guest did not report `done ok`".to_string());
    }
    for e in &report.errors {
        fails.push(format!("guest error: {e}"));
    }
    let reuse: Vec<&Value> = report.rows.iter().filter(|r| at(r, "workload") == "reuse").collect();
    if reuse.len() != 3 {
        fails.push(format!("{} buffer-reuse rows, expected 3", reuse.len()));
    }
    let intr: Vec<&Value> =
        report.rows.iter().filter(|r| at(r, "workload") == "reuse-intr").collect();
    if intr.len() != 1 || intr.iter().any(|r| u(r, "irq_wakeups") == 0) {
        fails.push("the interrupt-driven run is missing or never woke on an interrupt".into());
    }
    if u(at(&report.server, "server"), "irq_trigger_count") == 0 {
        fails.push("the server never signalled an interrupt to the guest".into());
    }
    if report.rows.iter().filter(|r| at(r, "workload") == "free-in-flight").count() != 3 {
        fails.push("missing free-in-flight rows".into());
    }
    for r in &report.rows {
        let clean = at(r, "leftovers").as_object().is_some_and(|o| o.values().all(|v| v == 0));
        if !clean {
            fails.push(format!(
                "{} {}: teardown left {}",
                at(r, "policy"),
                at(r, "workload"),
                at(r, "leftovers")
            ));
        }
    }
    // The same workload in process.
    let cfg = DemoConfig {
        sizes: opts.sizes.clone(),
        repeats: opts.repeats,
        buffers: opts.buffers,
        ..DemoConfig::small()
    };
    for r in reuse.iter().chain(&intr) {
        let name = at(r, "policy").as_str().unwrap_or("");
        let Some(policy) = driver::Policy::ALL.into_iter().find(|p| p.name() == name) else {
            continue;
        };
        let Ok(ip) = demo::run_reuse(policy, &cfg) else {
            fails.push(format!("in-process run of {name} failed"));
            continue;
        };
        let (h, m) = (u(r, "hits"), u(r, "misses"));
        let rate = if h + m > 0 { h as f64 / (h + m) as f64 } else { 0.0 };
        let c = Comparison {
            policy: format!(
                "{name}{}",
                if at(r, "workload") == "reuse-intr" { " (intr)" } else { "" }
            ),
            messages: (u(r, "messages"), ip.messages),
            tid_updates: (u(r, "tid_updates"), ip.tid_updates),
            hit_rate: (rate, ip.hit_rate),
            consistent: u(r, "messages") == ip.messages && u(r, "tid_updates") == ip.tid_updates,
        };
        if !c.consistent {
            fails.push(format!("{name}: guest and in-process runs disagree: {c:?}"));
        }
        report.comparisons.push(c);
    }
    let srv = &at(&report.server, "server");
    if u(srv, "dma_map_count") < 2 {
        fails.push(format!("the server saw {} DMA maps from the guest", u(srv, "dma_map_count")));
    }
    // Every guest VFIO map of user pages reached the server as a DMA_MAP, and the device
    // placed the payloads through those IOVAs into guest memory.
    let guest_maps: u64 = report.rows.iter().map(|r| u(r, "iommu_maps")).sum::<u64>()
        + report.costs.as_ref().map_or(0, |c| u(c, "iommu_maps"));
    if u(srv, "dma_map_count") < guest_maps {
        fails.push(format!(
            "the server saw {} DMA maps, fewer than the guest's {guest_maps} VFIO maps",
            u(srv, "dma_map_count")
        ));
    }
    let dev = &at(&report.server, "device");
    let payload: u64 = reuse.iter().map(|r| u(r, "bytes")).sum();
    if u(dev, "rx_expected_count") == 0 || u(dev, "dma_write_bytes") < payload {
        fails.push(format!(
            "the device wrote {} bytes ({} expected packets) into guest memory, less than the {payload} payload bytes received",
            u(dev, "dma_write_bytes"),
            u(dev, "rx_expected_count")
        ));
    }
    report.failures.extend(fails);
}

/// The report as text: timings, rows, comparison, costs, server counters, verdict.
pub fn summary(r: &QemuReport) -> String {
    let mut s = format!(
        "\n{} ({}): guest init after {:.1} s, QEMU exit after {:.1} s (guest uptime {:.1} s)\n",
        r.qemu, r.accel, r.boot_s, r.total_s, r.guest_uptime_s
    );
    s.push_str(&format!(
        "{:<8} {:<15} {:>5} {:>8} {:>10} {:>8} {:>6} {:>7} {:>6} {:>8} {:>7} {:<5}\n",
        "policy",
        "workload",
        "msgs",
        "MiB",
        "guest_ms",
        "TID_UPD",
        "hit%",
        "inval",
        "notif",
        "pin_peak",
        "tid_err",
        "data"
    ));
    for row in &r.rows {
        let (h, m) = (u(row, "hits"), u(row, "misses"));
        s.push_str(&format!(
            "{:<8} {:<15} {:>5} {:>8.1} {:>10.1} {:>8} {:>6.1} {:>7} {:>6} {:>8} {:>7} {:<5}\n",
            at(row, "policy").as_str().unwrap_or("?"),
            at(row, "workload").as_str().unwrap_or("?"),
            u(row, "messages"),
            u(row, "bytes") as f64 / f64::from(1u32 << 20),
            at(row, "elapsed_us").as_f64().unwrap_or(0.0) / 1000.0,
            u(row, "tid_updates"),
            if h + m > 0 { 100.0 * h as f64 / (h + m) as f64 } else { 0.0 },
            u(row, "invalidations"),
            u(row, "notifier_calls"),
            at(row, "pinned_peak").as_i64().unwrap_or(0),
            u(row, "tid_errors"),
            match at(row, "data_ok").as_bool() {
                Some(true) => "OK",
                Some(false) => "FAIL",
                None => "n/a",
            }
        ));
        if let Some(f) = at(row, "failed").as_array().filter(|f| !f.is_empty()) {
            s.push_str(&format!("         note: {}\n", Value::Array(f.clone())));
        }
    }
    for c in &r.comparisons {
        s.push_str(&format!(
            "in process vs guest, {}: messages {} / {}, TID_UPDATE {} / {}, hit rate {:.3} / {:.3}: {}\n",
            c.policy, c.messages.1, c.messages.0, c.tid_updates.1, c.tid_updates.0, c.hit_rate.1,
            c.hit_rate.0, if c.consistent { "consistent" } else { "DIFFERENT" }
        ));
    }
    if let Some(c) = &r.costs {
        let f = |k: &str| c[k].as_f64().unwrap_or(0.0);
        let pages = f("update_pages").max(1.0);
        s.push_str(&format!(
            "guest costs: MMIO read {:.1} µs, MMIO write {:.2} µs (BAR mmap'ed: {}); TID_UPDATE of {} pages {:.0} µs ({:.0} µs/page: pin + VFIO map + RcvArray), TID_FREE {:.0} µs; cache acquire+release hit {:.1} µs vs miss {:.0} µs ({:.0}x)\n",
            f("mmio_read_us"),
            f("mmio_write_us"),
            at(c, "bar_mapped"),
            pages,
            f("tid_update_us"),
            f("tid_update_us") / pages,
            f("tid_free_us"),
            f("cache_hit_us"),
            f("cache_miss_us"),
            f("cache_miss_us") / f("cache_hit_us").max(1e-9),
        ));
    }
    let srv = &at(&r.server, "server");
    s.push_str(&format!(
        "server: {} DMA maps, {} unmaps ({} of unknown ranges), {} MMIO reads, {} MMIO writes, {} interrupts\n",
        u(srv, "dma_map_count"),
        u(srv, "dma_unmap_count"),
        u(srv, "dma_unmap_unknown_count"),
        u(srv, "mmio_read_count"),
        u(srv, "mmio_write_count"),
        u(srv, "irq_trigger_count"),
    ));
    if r.failures.is_empty() {
        s.push_str("qemu end-to-end: PASS\n");
    } else {
        for f in &r.failures {
            s.push_str(&format!("FAIL: {f}\n"));
        }
    }
    s
}
