//! `hfi-sim qemu --psm2`: Debian's unmodified PSM2 (libpsm2-2) and libfabric (`fi_info`,
//! `fi_pingpong -p psm2 -e rdm`) in the guest, over the unmodified `hfi1.ko`, against the
//! served model — a discovery run: it records how far PSM2 gets, not a pass/fail test of the
//! data path (the model has no transmit engine yet).
//!
//! The guest is the kernel-driver run's ([`super::kdrv`]: generic kernel, the same modules and
//! parameters, `hfi-guest sm-bringup` to Active), plus the PSM2 user space that
//! `tools/qemu/setup.sh` extracted (programs, libraries, loader: [`super::env::QemuEnv::psm2`]),
//! a tmpfs on `/dev/shm`, `lo` up, and QEMU's `-cpu max` (Debian's libpsm2 is built with AVX2;
//! TCG's `max` CPU has it). A generated script ([`guest_script`]) then prints the sysfs values
//! PSM2 reads and runs, with PSM2's and libfabric's debug output on and each program under
//! `strace` and `timeout`: `fi_info -p psm2`, then a `fi_pingpong` server and client
//! (127.0.0.1). While the script runs, QEMU traces every BAR access (`vfio_region_read` /
//! `vfio_region_write`, switched on and off through the HMP monitor at the script's phase
//! markers), so the report lists the CSRs, user registers and PIO stores of that phase.
//!
//! Everything is bounded: each program has its own timeout, the script's total is below the
//! run's deadline, QEMU is killed at the deadline. The report (`psm2.json`, the console and
//! the trace log in the work directory) carries the programs' output, the syscalls of
//! interest (device opens, sysfs reads, hfi1 ioctls, mmaps decoded from hfi1's mmap token,
//! writev), the MMIO summary, the model's counters and census, and the hfi1 kernel log.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

mod mmio_trace;
mod strace;

pub use mmio_trace::{csr_name, summarize_trace, MmioSummary, PioUse, RegisterUse};
use strace::note_strace;
pub use strace::{decode_mmap_token, Syscalls};

use crate::qemu::boot::{boot_with, default_accel};
use crate::qemu::env::{build_image_with, GuestEnd, ImageExtras, ImageSpec};
use crate::qemu::kdrv::{self, PORT_FINAL_CMD, PORT_STATE_CMD, SDMA_STATE_CMD};
use crate::qemu::run::{prepare, QemuOptions};

/// Default work directory of the PSM2 run.
pub fn default_work() -> PathBuf {
    PathBuf::from("out/qemu-psm2")
}

/// Default deadline: boot and bring-up (~20 s under TCG) plus the script's own bound
/// ([`Psm2Knobs::script_bound_s`]) with room to spare.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(480);

/// What the guest script runs with.
#[derive(Clone, Debug, Serialize)]
pub struct Psm2Knobs {
    /// `PSM2_TRACEMASK` (PSM2's debug classes: 0x1 info, 0x2 debug, 0x40 verbose, 0x80
    /// packets, 0x100 process, 0x200 mmap, 0x400 environment, 0x800 error packets).
    pub tracemask: String,
    /// Seconds for `fi_info`.
    pub fi_info_s: u64,
    /// Seconds for the `fi_pingpong` server (the client gets 20 s less).
    pub pingpong_s: u64,
    /// `fi_pingpong` iterations per size.
    pub iterations: u32,
    /// `fi_pingpong -S` (a single size; `None` = its default list).
    pub size: Option<u64>,
    /// Further `NAME=value` settings for the programs (e.g. `PSM2_SDMA=0`), from
    /// `HFI_SIM_PSM2_ENV` (space-separated).
    pub extra_env: Vec<String>,
    /// Trace BAR accesses in QEMU during the script.
    pub trace_mmio: bool,
}

impl Default for Psm2Knobs {
    fn default() -> Self {
        Self {
            tracemask: "0xf83".into(),
            fi_info_s: 90,
            pingpong_s: 100,
            iterations: 10,
            size: None,
            extra_env: Vec::new(),
            trace_mmio: true,
        }
    }
}

impl Psm2Knobs {
    /// Defaults with `HFI_SIM_PSM2_ENV` (extra settings) and `HFI_SIM_PSM2_SIZE` (one
    /// fi_pingpong size) applied.
    pub fn from_env() -> Self {
        let mut k = Self::default();
        if let Some(v) = std::env::var_os("HFI_SIM_PSM2_ENV") {
            k.extra_env = v
                .to_string_lossy()
                .split_whitespace()
                .filter(|s| valid_setting(s))
                .map(String::from)
                .collect();
        }
        if let Some(s) = std::env::var("HFI_SIM_PSM2_SIZE").ok().and_then(|v| v.parse().ok()) {
            k.size = Some(s);
        }
        k
    }

    /// Upper bound of the script's run time in seconds (programs' timeouts plus waits).
    pub fn script_bound_s(&self) -> u64 {
        self.fi_info_s + self.pingpong_s + 60
    }
}

/// `NAME=value` with a shell-safe name and value.
fn valid_setting(s: &str) -> bool {
    let Some((n, v)) = s.split_once('=') else { return false };
    !n.is_empty()
        && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && v.chars().all(|c| c.is_ascii_alphanumeric() || "_.,:/-".contains(c))
}

/// The guest's discovery script (POSIX sh for busybox), written into the image.
pub fn guest_script(k: &Psm2Knobs) -> String {
    let size = k.size.map_or(String::new(), |s| format!(" -S {s}"));
    let extra = if k.extra_env.is_empty() {
        String::new()
    } else {
        format!("export {}\n", k.extra_env.join(" "))
    };
    let client_s = k.pingpong_s.saturating_sub(20).max(10);
    format!(
        r#"#!/bin/sh
# PSM2 / libfabric discovery in the guest, generated by scenarios/src/qemu/psm2.rs.
say() {{ echo "HFI-GUEST $*"; }}
out() {{ sed "s/^/HFI-GUEST out $1 /"; }}
up() {{ cut -d' ' -f1 /proc/uptime; }}
P=/sys/class/infiniband/hfi1_0
export PATH=/usr/bin:/bin
if grep -q -w avx2 /proc/cpuinfo; then say cpu avx2; else say cpu no-avx2; fi
for f in ports/1/state ports/1/phys_state ports/1/lid ports/1/lid_mask_count ports/1/rate \
         ports/1/sm_lid ports/1/sm_sl ports/1/gids/0 ports/1/pkeys/0 ports/1/pkeys/1 \
         ports/1/sl2sc/0 ports/1/sc2vl/0 ports/1/vl2mtu/0 ports/1/vl2mtu/15 \
         nctxts nfreectxts hw_rev board_id serial boardversion chip_reset; do
    say sysfs "$f" "$(cat $P/$f 2>&1 | head -1)"
done
ls -l /dev/hfi1* /dev/infiniband /dev/shm 2>&1 | out dev
export LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu:/lib/x86_64-linux-gnu
export PSM2_DEVICES=self,hfi PSM2_HFI_LOOPBACK=1 HFI_NO_CPUAFFINITY=1 PSM2_RCVTHREAD=0
export PSM2_VERBOSE_ENV=1 PSM2_IDENTIFY=1 PSM2_TRACEMASK={mask}
export PSM2_CONNECT_TIMEOUT=0 PSM2_ERRCHK_TIMEOUT=2000:8000:2 FI_PSM2_CONN_TIMEOUT=60
export FI_LOG_LEVEL=debug FI_PROVIDER=psm2
{extra}# Line-buffered stdout into the pipes (coreutils' stdbuf preload): a program killed at its
# timeout keeps the lines it printed.
PRE="LD_PRELOAD=/usr/libexec/coreutils/libstdbuf.so _STDBUF_O=L"
ST="strace -f -tt -s 160 -e trace=!sched_yield,clock_nanosleep,nanosleep"
say phase psm2 $(up)
sleep 1
say step fi_info $(up)
( env $PRE $ST -o /tmp/fi_info.st timeout {fi_info_s} fi_info -p psm2 -v 2>&1; echo $? >/tmp/fi_info.rc ) | out fi_info
say rc fi_info "$(cat /tmp/fi_info.rc)" $(up)
say step server $(up)
( env $PRE $ST -o /tmp/server.st timeout {srv_s} fi_pingpong -v -p psm2 -e rdm -I {iters}{size} 2>&1; echo $? >/tmp/server.rc ) | out server &
i=0
while [ $i -lt 300 ] && ! netstat -ltn 2>/dev/null | grep -q ':47592 '; do sleep 0.2; i=$((i+1)); done
say step client $(up)
( env $PRE $ST -o /tmp/client.st timeout {cli_s} fi_pingpong -v -p psm2 -e rdm -I {iters}{size} 127.0.0.1 2>&1; echo $? >/tmp/client.rc ) | out client
say rc client "$(cat /tmp/client.rc)" $(up)
wait
say rc server "$(cat /tmp/server.rc 2>/dev/null)" $(up)
say phase end $(up)
for t in fi_info server client; do
    say strace-lines $t $(wc -l < /tmp/$t.st)
    # Drop reads of /proc/kallsyms (a library scans it at start: thousands of lines).
    grep -v -e 'ffffffff[0-9a-f]\{{8\}} [tTrRdDbBaAwW] ' /tmp/$t.st | head -n 6000 | out strace-$t
done
"#,
        mask = k.tracemask,
        extra = extra,
        fi_info_s = k.fi_info_s,
        srv_s = k.pingpong_s,
        cli_s = client_s,
        iters = k.iterations,
        size = size,
    )
}

/// One program's run in the guest.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ProgramRun {
    /// Seconds from QEMU start when it started.
    pub start_s: f64,
    /// Exit status (124/143: killed at its timeout).
    pub rc: Option<i32>,
    /// Seconds from QEMU start when its exit status was printed.
    pub end_s: f64,
    /// Its output lines (stdout and stderr, PSM2's and libfabric's debug output included).
    pub lines: Vec<String>,
    /// What its strace showed.
    pub syscalls: Syscalls,
}

/// Everything the PSM2 run found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Psm2Report {
    /// QEMU version.
    pub qemu: String,
    /// Accelerator.
    pub accel: String,
    /// The knobs the script ran with.
    pub knobs: Option<Psm2Knobs>,
    /// Seconds from QEMU start to init.
    pub boot_s: f64,
    /// ... to the end of `insmod hfi1`.
    pub probe_s: f64,
    /// ... to the port Active (after the subnet manager).
    pub active_s: f64,
    /// ... to the start of the PSM2 phase.
    pub psm2_s: f64,
    /// ... to the end of the PSM2 phase.
    pub psm2_end_s: f64,
    /// ... to QEMU's exit.
    pub total_s: f64,
    /// The port after the probe (e.g. "2: INIT | 5: LinkUp").
    pub port: String,
    /// The port after the subnet manager.
    pub port_final: String,
    /// What `hfi-guest sm-bringup` saw.
    pub sm: Option<Value>,
    /// SDMA engine states after the subnet manager.
    pub sdma_states: Vec<String>,
    /// The guest CPU has AVX2 (`-cpu max`).
    pub cpu_avx2: Option<bool>,
    /// sysfs values as the guest read them (relative to /sys/class/infiniband/hfi1_0).
    pub sysfs: BTreeMap<String, String>,
    /// Programs: fi_info, server, client.
    pub programs: BTreeMap<String, ProgramRun>,
    /// Other tagged output (e.g. the device listing).
    pub other_output: BTreeMap<String, Vec<String>>,
    /// BAR accesses during the PSM2 phase (QEMU trace).
    pub mmio: Option<MmioSummary>,
    /// The model's non-zero device counters at the end.
    pub device_counters: BTreeMap<String, u64>,
    /// The model's CSR census per block (whole run).
    pub census: Value,
    /// The hfi1 lines of the kernel log at the end.
    pub dmesg: Vec<String>,
    /// Kernel warnings, BUGs and oopses with the lines after them (none expected).
    pub kernel_warnings: Vec<String>,
    /// Guest error lines.
    pub errors: Vec<String>,
    /// Problems of the run itself (no boot, port not Active, script not finished); PSM2's
    /// own failures are findings, not failures of the run.
    pub failures: Vec<String>,
}

/// Runs the discovery.
pub fn run(opts: &QemuOptions, out: &mut dyn Write) -> Result<Psm2Report, String> {
    run_with(opts, &Psm2Knobs::from_env(), out)
}

/// Runs the discovery with explicit knobs.
pub fn run_with(
    opts: &QemuOptions,
    knobs: &Psm2Knobs,
    out: &mut dyn Write,
) -> Result<Psm2Report, String> {
    let (env, guest_bin) = prepare(opts, out)?;
    let tree = env.psm2.clone().ok_or_else(|| {
        "the QEMU cache has no PSM2 files (re-run tools/qemu/setup.sh to complete it)".to_string()
    })?;
    let script = opts.work.join("psm2-discovery.sh");
    std::fs::write(&script, guest_script(knobs))
        .map_err(|e| format!("cannot write {}: {e}", script.display()))?;
    let spec = ImageSpec {
        kernel: env.kernel_generic.clone(),
        modules: kdrv::modules(),
        programs: vec![("hfi-guest".into(), guest_bin), ("psm2-discovery".into(), script)],
        commands: vec![
            "echo \"HFI-GUEST probed $(cut -d' ' -f1 /proc/uptime)\"".into(),
            "test -c /dev/hfi1_0 && echo \"HFI-GUEST cdev present\"".into(),
            PORT_STATE_CMD.into(),
            "/bin/hfi-guest sm-bringup /dev/infiniband/umad0".into(),
            PORT_FINAL_CMD.into(),
            SDMA_STATE_CMD.into(),
            "/bin/psm2-discovery".into(),
            "dmesg | grep -i hfi1 | sed 's/^/HFI-GUEST dmesg /'".into(),
            // Kernel warnings and oopses with their context (the console runs `quiet`).
            "dmesg | grep -A 40 -e 'WARNING' -e 'BUG' -e 'Oops' -e 'Call Trace' \
             | head -n 400 | sed 's/^/HFI-GUEST kwarn /'"
                .into(),
        ],
        // As the kernel-driver run: hfi1 cannot take its up link down in functional-simulator
        // mode, so the guest ends without device shutdown.
        end: GuestEnd::Restart,
    };
    let extras = ImageExtras { trees: vec![tree], shm: true, loopback_net: true };
    let initrd = opts.work.join("initrd-psm2.cpio");
    std::fs::write(&initrd, build_image_with(&env, &spec, &extras)?)
        .map_err(|e| format!("cannot write the image: {e}"))?;
    let pid = std::process::id();
    let socket = opts.work.join(format!("hfi-psm2-{pid}.sock"));
    let monitor = opts.work.join(format!("hmp-psm2-{pid}.sock"));
    let trace_log = opts.work.join("qemu-trace.log");
    let _ = std::fs::remove_file(&trace_log);
    let _ = std::fs::remove_file(&monitor);
    let mut extra = vec!["-cpu".to_string(), "max".to_string()];
    if knobs.trace_mmio {
        extra.extend([
            "-monitor".to_string(),
            format!("unix:{},server=on,wait=off", monitor.display()),
            "-D".to_string(),
            trace_log.display().to_string(),
            "-msg".to_string(),
            "timestamp=on".to_string(),
        ]);
    }
    let server = kdrv::start_server(&socket)?;
    let machine = kdrv::machine(&env, &socket);
    let accel = opts.accel.clone().unwrap_or_else(|| default_accel().into());
    let mut r = Psm2Report {
        qemu: env.version.clone(),
        accel: accel.clone(),
        knobs: Some(knobs.clone()),
        ..Default::default()
    };
    let mut st = LineState { verbose: opts.verbose, monitor, hmp: None, current: None };
    let timeout = opts.timeout.max(Duration::from_secs(knobs.script_bound_s() + 60));
    let booted = boot_with(&env, &accel, timeout, &machine, &extra, &initrd, &mut |line, t| {
        on_line(line, t, &mut r, &mut st, out)
    });
    drop(st.hmp.take());
    let _ = std::fs::remove_file(&st.monitor);
    let stats = server.stop().unwrap_or_else(Value::String);
    let b = booted?;
    r.total_s = b.total_s;
    let log = opts.work.join("console-psm2.log");
    let _ = std::fs::write(&log, b.console.join("\n"));
    if b.timed_out {
        r.failures.push(format!(
            "QEMU did not finish within {} s (killed); console in {}",
            timeout.as_secs(),
            log.display()
        ));
    }
    if knobs.trace_mmio {
        r.mmio = std::fs::read_to_string(&trace_log).ok().map(|t| summarize_trace(&t));
    }
    finish(&mut r, &stats);
    let json = serde_json::to_string_pretty(&r).map_err(|e| e.to_string())?;
    let path = opts.work.join("psm2.json");
    std::fs::write(&path, json).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(r)
}

/// The console handler's state: the HMP connection that switches QEMU's trace on and off.
struct LineState {
    verbose: bool,
    monitor: PathBuf,
    hmp: Option<std::os::unix::net::UnixStream>,
    current: Option<String>,
}

impl LineState {
    /// Switches the BAR-access trace events on or off (no-op without a monitor socket).
    fn trace(&mut self, on: bool) {
        if self.hmp.is_none() && self.monitor.exists() {
            self.hmp = std::os::unix::net::UnixStream::connect(&self.monitor).ok();
        }
        if let Some(s) = self.hmp.as_mut() {
            let v = if on { "on" } else { "off" };
            let _ =
                write!(s, "trace-event vfio_region_write {v}\ntrace-event vfio_region_read {v}\n");
            let _ = s.flush();
        }
    }
}

fn on_line(line: &str, t: f64, r: &mut Psm2Report, st: &mut LineState, out: &mut dyn Write) {
    let Some((kind, rest)) = guest_proto::report::parse(line) else {
        if st.verbose || line.starts_with("qemu stderr") {
            let _ = writeln!(out, "  | {line}");
        }
        return;
    };
    let rest = rest.trim_end();
    match kind {
        "boot" => r.boot_s = t,
        "probed" => r.probe_s = t,
        "port" => r.port = rest.to_string(),
        "port-final" => {
            r.port_final = rest.split(" | ").next().unwrap_or(rest).trim().to_string();
            r.active_s = t;
        }
        "sm" => r.sm = serde_json::from_str(rest).ok(),
        "sdma" => {
            let ste = rest.split_whitespace().skip_while(|w| *w != "STE").nth(1);
            r.sdma_states.push(ste.unwrap_or("?").to_string());
        }
        "cpu" => r.cpu_avx2 = Some(rest == "avx2"),
        "sysfs" => {
            let (k, v) = rest.split_once(' ').unwrap_or((rest, ""));
            r.sysfs.insert(k.to_string(), v.to_string());
        }
        "phase" => {
            if rest.starts_with("psm2") {
                r.psm2_s = t;
                st.trace(true);
            } else if rest.starts_with("end") {
                r.psm2_end_s = t;
                st.trace(false);
            }
        }
        "step" => {
            let name = rest.split_whitespace().next().unwrap_or("").to_string();
            r.programs.entry(name.clone()).or_default().start_s = t;
            st.current = Some(name);
        }
        "rc" => {
            let mut w = rest.split_whitespace();
            let name = w.next().unwrap_or("").to_string();
            let p = r.programs.entry(name).or_default();
            p.rc = w.next().and_then(|v| v.parse().ok());
            p.end_s = t;
        }
        "strace-lines" => {
            let mut w = rest.split_whitespace();
            let name = w.next().unwrap_or("").to_string();
            let n = w.next().and_then(|v| v.parse().ok()).unwrap_or(0);
            r.programs.entry(name).or_default().syscalls.total_lines = n;
        }
        "out" => {
            let (tag, text) = rest.split_once(' ').unwrap_or((rest, ""));
            let text = text.trim_end_matches('\r').to_string();
            if let Some(p) = tag.strip_prefix("strace-") {
                let s = &mut r.programs.entry(p.to_string()).or_default().syscalls;
                note_strace(s, &text);
            } else if let Some(p) = r.programs.get_mut(tag) {
                if p.lines.len() < 20_000 {
                    p.lines.push(text);
                }
            } else {
                r.other_output.entry(tag.to_string()).or_default().push(text);
            }
            if st.verbose && !tag.starts_with("strace-") {
                let _ = writeln!(out, "guest {tag}: {}", rest.split_once(' ').map_or("", |x| x.1));
            }
            return;
        }
        "dmesg" => {
            r.dmesg.push(rest.to_string());
            return;
        }
        "kwarn" => {
            r.kernel_warnings.push(rest.to_string());
            return;
        }
        "error" => r.errors.push(rest.to_string()),
        _ => {}
    }
    let _ = writeln!(out, "guest: {kind} {rest}");
}

/// Fills the counters, census and run checks.
fn finish(r: &mut Psm2Report, stats: &Value) {
    if let Some(dev) = stats.get("device").and_then(Value::as_object) {
        for (k, v) in dev {
            if let Some(n) = v.as_u64().filter(|n| *n > 0) {
                r.device_counters.insert(k.clone(), n);
            }
        }
    }
    r.census = stats.get("csr_census").cloned().unwrap_or(Value::Null);
    if r.boot_s == 0.0 {
        r.failures.push("the guest did not boot".into());
    }
    if !r.port_final.ends_with("ACTIVE") {
        r.failures.push(format!("port not Active after the subnet manager: {:?}", r.port_final));
    }
    if r.psm2_end_s == 0.0 {
        r.failures.push("the PSM2 script did not finish".into());
    }
    if r.cpu_avx2 == Some(false) {
        r.failures.push("the guest CPU has no AVX2 (Debian's libpsm2 needs it)".into());
    }
    for e in &r.errors {
        r.failures.push(format!("guest error: {e}"));
    }
}

/// The lines of a program's output that say most about where PSM2 stopped: errors,
/// warnings, and libfabric's / PSM2's own messages about the device, the link and the
/// connection.
pub fn key_lines(p: &ProgramRun, max: usize) -> Vec<String> {
    let keys = [
        "error",
        "Error",
        "ERROR",
        "fail",
        "Fail",
        "warn",
        "Warn",
        "timed out",
        "Timeout",
        "timeout",
        "psm2_",
        "hfi",
        "HFI",
        "unit",
        "context",
        "Network",
        "LID",
        "SMA",
        "credit",
        "Connect",
        "connect",
    ];
    let mut v: Vec<String> =
        p.lines.iter().filter(|l| keys.iter().any(|k| l.contains(k))).cloned().collect();
    if v.len() > max {
        v.drain(..v.len() - max);
    }
    v
}

/// The report as text.
pub fn summary(r: &Psm2Report) -> String {
    let mut s = format!(
        "\n{} ({}): init {:.1} s, probe {:.1} s, Active {:.1} s, PSM2 phase {:.1}–{:.1} s, QEMU exit {:.1} s\n",
        r.qemu, r.accel, r.boot_s, r.probe_s, r.active_s, r.psm2_s, r.psm2_end_s, r.total_s
    );
    s.push_str(&format!(
        "port: {} → {}; SDMA {:?}; guest AVX2: {:?}\n",
        r.port, r.port_final, r.sdma_states, r.cpu_avx2
    ));
    for (k, v) in &r.sysfs {
        s.push_str(&format!("  sysfs {k}: {v}\n"));
    }
    for (name, p) in &r.programs {
        s.push_str(&format!(
            "{name}: rc {:?} after {:.1} s, {} output lines; strace {} lines: {} opens, {} hfi1 ioctls, {} hfi1 mmaps, {} writev\n",
            p.rc,
            (p.end_s - p.start_s).max(0.0),
            p.lines.len(),
            p.syscalls.total_lines,
            p.syscalls.opens.len(),
            p.syscalls.ioctls.len(),
            p.syscalls.mmaps.len(),
            p.syscalls.writev
        ));
        for i in &p.syscalls.ioctls {
            s.push_str(&format!("    ioctl {i}\n"));
        }
        for m in &p.syscalls.mmaps {
            s.push_str(&format!("    mmap {m}\n"));
        }
        for l in key_lines(p, 12) {
            s.push_str(&format!("    | {l}\n"));
        }
    }
    if let Some(m) = &r.mmio {
        s.push_str(&format!(
            "BAR accesses in the PSM2 phase: {} ({:?}); PIO stores {} ({} bytes, {} SOP, sizes {:?}, per context {:?}); {} distinct CSRs\n",
            m.accesses,
            m.by_block,
            m.pio.stores,
            m.pio.bytes,
            m.pio.sop_stores,
            m.pio.sizes,
            m.pio.per_context,
            m.registers.len()
        ));
        s.push_str(&format!(
            "  PIO packets {} (PBCs {:?}), {} stores out of address order, first/last store at {:?}/{:?} s of a {:.1} s trace\n",
            m.pio.packets,
            m.pio.pbcs,
            m.pio.out_of_order_stores,
            m.pio.first_store_s,
            m.pio.last_store_s,
            m.span_s
        ));
        // Per-context tables (TID flows) are long and uniform: the first entry stands for all.
        let shown = m.registers.iter().filter(|g| {
            !g.name.starts_with("cce+")
                && (!g.name.starts_with("RCV_TID_FLOW_TABLE[")
                    || g.name.starts_with("RCV_TID_FLOW_TABLE[0]"))
        });
        for reg in shown.take(80) {
            s.push_str(&format!(
                "    {:<40} r {:>5} w {:>5} written {:?} last read {:?}\n",
                reg.name, reg.reads, reg.writes, reg.values_written, reg.last_read
            ));
        }
    }
    let keep = ["tx_", "rx_", "dma_", "intr_", "rhq_", "mmio_unknown", "sdma_"];
    let counters: Vec<String> = r
        .device_counters
        .iter()
        .filter(|(k, _)| keep.iter().any(|p| k.starts_with(p)))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    s.push_str(&format!("model counters: {}\n", counters.join(" ")));
    for l in r.kernel_warnings.iter().take(60) {
        s.push_str(&format!("  kernel: {l}\n"));
    }
    if r.failures.is_empty() {
        s.push_str("psm2 discovery: run complete (findings above; psm2.json has everything)\n");
    } else {
        for f in &r.failures {
            s.push_str(&format!("FAIL: {f}\n"));
        }
    }
    s
}

#[cfg(test)]
mod tests;
