//! `hfi-sim qemu --kernel-driver`: the unmodified upstream `hfi1.ko` probes the served model
//! (issue #8, tier A), its port comes up to Active (tier B), and its TID ioctls are checked
//! against our driver.
//!
//! The bookworm generic kernel boots on q35 with the HFI (device 0x24f1, B-step, functional
//! simulator) behind a `pcie-root-port` and no vIOMMU (the kernel driver uses the DMA API;
//! QEMU DMA-maps all of the shared guest RAM). The guest insmods `ib_core ib_uverbs rdmavt
//! i2c-algo-bit hfi1` (and `ib_umad`) with `loopback=1 num_vls=1 num_sdma=1 krcvqs=1 num_user_contexts=4`,
//! waits for the port to come up (tier B: the model's 8051 brings the link up in LCB loopback),
//! takes it to Active with `hfi-guest sm-bringup` (a minimal subnet manager over `ib_umad`),
//! runs `hfi-guest tid-script` on `/dev/hfi1_0`, prints the hfi1 kernel log and restarts
//! without device shutdown ([`GuestEnd::Restart`]).
//! Soft lock-ups and hung tasks panic the guest (`panic=-1` ends QEMU); the whole run has a
//! deadline. The host then replays the script through our driver and compares
//! ([`crate::qemu::kdrv_diff`]), and reports the probe time, the CSRs the driver touched (the
//! model's census) and the RcvArray state the kernel left.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::boot::{boot, default_accel, Machine};
use super::env::{build_image, GuestEnd, ImageSpec, QemuEnv};
use super::kdrv_diff::{self, DiffReport};
use super::run::{prepare, u, QemuOptions};
use crate::world::node::NodeConfig;
use crate::world::serve::{served_config, ServerThread};
use guest_proto::tidscript::{ScriptCtxtInfo, StepResult};

/// hfi1 module parameters (hfi1-probe.md's recommendation).
pub const HFI1_PARAMS: &str = "loopback=1 num_vls=1 num_sdma=1 krcvqs=1 num_user_contexts=4";

/// Waits up to 5 s for the port to leave Down, then reports its logical and physical state
/// (sysfs, e.g. "2: INIT | 5: LinkUp").
pub(crate) const PORT_STATE_CMD: &str = "p=/sys/class/infiniband/hfi1_0/ports/1; \
    for i in $(seq 1 25); do case \"$(cat $p/state)\" in *INIT*|*ARMED*|*ACTIVE*) break;; esac; \
    sleep 0.2; done; echo \"HFI-GUEST port $(cat $p/state) | $(cat $p/phys_state)\"";

/// The port's state after the subnet manager (e.g. "4: ACTIVE | 5: LinkUp").
pub(crate) const PORT_FINAL_CMD: &str = "p=/sys/class/infiniband/hfi1_0/ports/1; \
    echo \"HFI-GUEST port-final $(cat $p/state) | $(cat $p/phys_state)\"";

/// The SDMA engines' software states (hfi1's debugfs `sdes`, one "SDE n ... STE state" line
/// per engine).
pub(crate) const SDMA_STATE_CMD: &str = "mount -t debugfs none /sys/kernel/debug 2>/dev/null; \
    grep '^SDE' /sys/kernel/debug/hfi1/hfi1_0/sdes | sed 's/^/HFI-GUEST sdma /'";

/// Everything the kernel-driver run found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct KdrvReport {
    /// Seconds from QEMU start to init.
    pub boot_s: f64,
    /// Seconds from QEMU start to the end of `insmod hfi1` (the probe).
    pub probe_s: f64,
    /// Seconds from QEMU start to its exit.
    pub total_s: f64,
    /// `/dev/hfi1_0` existed after the probe.
    pub cdev: bool,
    /// The port's logical state in sysfs after the probe (e.g. "2: INIT").
    pub port_state: String,
    /// The port's physical state in sysfs after the probe (e.g. "5: LinkUp").
    pub phys_state: String,
    /// What `hfi-guest sm-bringup` saw (logical/physical states per step).
    pub sm: Option<Value>,
    /// The port's logical state in sysfs after the subnet manager (e.g. "4: ACTIVE").
    pub port_final: String,
    /// Each SDMA engine's state in hfi1 (e.g. "s99_Running"), after the subnet manager.
    pub sdma_states: Vec<String>,
    /// The hfi1 lines of the kernel log.
    pub dmesg: Vec<String>,
    /// CTXT_INFO of the context the script got.
    pub ctxt: Option<ScriptCtxtInfo>,
    /// The script's steps as the kernel answered.
    pub steps: Vec<StepResult>,
    /// The comparison with our driver.
    pub diff: Option<DiffReport>,
    /// Distinct BAR0 CSR offsets the driver touched (the model's census, all blocks).
    pub csrs_touched: u64,
    /// The census per block.
    pub census: Value,
    /// RcvArray writes the model recorded; valid entries left after the script (before the
    /// disconnect's reset).
    pub rcv_array_writes: usize,
    /// Valid RcvArray entries when the guest finished (eager and expected, all contexts).
    pub rcv_array_valid_at_end: usize,
    /// The model's DC and SDMA counters at the end (8051 commands, interrupts).
    pub link_counters: Value,
    /// Guest errors.
    pub errors: Vec<String>,
    /// Failed checks.
    pub failures: Vec<String>,
}

/// The modules the guest loads, in order, with their parameters.
pub(crate) fn modules() -> Vec<(String, String)> {
    vec![
        ("ib_core".into(), String::new()),
        ("ib_uverbs".into(), String::new()),
        ("ib_umad".into(), String::new()),
        ("rdmavt".into(), String::new()),
        ("i2c-algo-bit".into(), String::new()),
        ("hfi1".into(), HFI1_PARAMS.into()),
    ]
}

/// Serves the device on `socket`: 0x24f1 (integrated), the RcvArray log recorded.
pub(crate) fn start_server(socket: &Path) -> Result<ServerThread, String> {
    let mut served = served_config(&NodeConfig::default());
    served.device_id = hfi_abi::uapi::pci::DEVICE_ID_INTEL1;
    served.record_rcv_array = true;
    ServerThread::start_served(socket, served)
}

/// q35 with the HFI behind a root port, no vIOMMU, the generic kernel.
pub(crate) fn machine(env: &QemuEnv, socket: &Path) -> Machine {
    let device = serde_json::json!({
        "driver": "vfio-user-pci",
        "socket": { "path": socket.to_string_lossy(), "type": "unix" },
        "bus": "rp0",
    });
    Machine {
        kernel: env.kernel_generic.join("vmlinuz"),
        // preempt=full: with the link up, hfi1 in functional-simulator mode reads LCB counters
        // through acquire_lcb_access, which busy-waits (udelay) on hls_lock; on one vCPU a
        // holder that reached a voluntary preemption point never runs again unless the spinner
        // can be preempted (docs/hfi1ko.md, "Tier B: link bring-up").
        append: "console=ttyS0 quiet panic=-1 softlockup_panic=1 hung_task_panic=1 \
                 hung_task_timeout_secs=60 nmi_watchdog=0 preempt=full"
            .into(),
        devices: vec!["pcie-root-port,id=rp0,chassis=1,slot=1".into(), device.to_string()],
    }
}

/// Runs the kernel-driver end-to-end check.
pub fn run(opts: &QemuOptions, out: &mut dyn Write) -> Result<KdrvReport, String> {
    let (env, guest_bin) = prepare(opts, out)?;
    let spec = ImageSpec {
        kernel: env.kernel_generic.clone(),
        modules: modules(),
        programs: vec![("hfi-guest".into(), guest_bin)],
        commands: vec![
            "echo \"HFI-GUEST probed $(cut -d' ' -f1 /proc/uptime)\"".into(),
            "test -c /dev/hfi1_0 && echo \"HFI-GUEST cdev present\"".into(),
            PORT_STATE_CMD.into(),
            "/bin/hfi-guest sm-bringup /dev/infiniband/umad0".into(),
            PORT_FINAL_CMD.into(),
            SDMA_STATE_CMD.into(),
            "/bin/hfi-guest tid-script /dev/hfi1_0".into(),
            "dmesg | grep -i hfi1 | sed 's/^/HFI-GUEST dmesg /'".into(),
        ],
        // hfi1 cannot take its up link down in functional-simulator mode (it deadlocks on
        // its link-state mutex in goto_offline), so the guest ends without device shutdown.
        end: GuestEnd::Restart,
    };
    let initrd = opts.work.join("initrd-kdrv.cpio");
    std::fs::write(&initrd, build_image(&env, &spec)?)
        .map_err(|e| format!("cannot write the image: {e}"))?;
    let socket = opts.work.join(format!("hfi-kdrv-{}.sock", std::process::id()));
    let server = start_server(&socket)?;
    let machine = machine(&env, &socket);
    let accel = opts.accel.clone().unwrap_or_else(|| default_accel().into());
    let mut r = KdrvReport::default();
    let verbose = opts.verbose;
    let booted = boot(&env, &accel, opts.timeout, &machine, &initrd, &mut |line, t| {
        on_line(line, t, &mut r, verbose, out)
    });
    let stats = server.stop().unwrap_or_else(Value::String);
    let b = booted?;
    r.total_s = b.total_s;
    let log = opts.work.join("console-kdrv.log");
    let _ = std::fs::write(&log, b.console.join("\n"));
    if b.timed_out {
        r.failures.push(format!(
            "QEMU did not finish within {} s (killed); console in {}",
            opts.timeout.as_secs(),
            log.display()
        ));
    }
    let log = census(&stats, &mut r);
    check(&mut r, &log);
    let json = serde_json::to_string_pretty(&r).map_err(|e| e.to_string())?;
    let path = opts.work.join("kdrv.json");
    std::fs::write(&path, json).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(r)
}

fn on_line(line: &str, t: f64, r: &mut KdrvReport, verbose: bool, out: &mut dyn Write) {
    let Some((kind, rest)) = guest_proto::report::parse(line) else {
        if verbose || line.starts_with("qemu stderr") || line.contains("hfi1") {
            let _ = writeln!(out, "  | {line}");
        }
        return;
    };
    match kind {
        "boot" => r.boot_s = t,
        "probed" => r.probe_s = t,
        "cdev" => r.cdev = true,
        "sm" => r.sm = serde_json::from_str(rest).ok(),
        "sdma" => {
            let ste = rest.split_whitespace().skip_while(|w| *w != "STE").nth(1);
            r.sdma_states.push(ste.unwrap_or("?").to_string());
        }
        "port-final" => {
            let (l, _) = rest.split_once(" | ").unwrap_or((rest, ""));
            r.port_final = l.trim().to_string();
        }
        "port" => {
            let (l, p) = rest.split_once(" | ").unwrap_or((rest, ""));
            r.port_state = l.trim().to_string();
            r.phys_state = p.trim().to_string();
        }
        "dmesg" => r.dmesg.push(rest.to_string()),
        "ctxt-info" => r.ctxt = serde_json::from_str(rest).ok(),
        "tidstep" => {
            if let Ok(s) = serde_json::from_str(rest) {
                r.steps.push(s);
            }
        }
        "error" => r.errors.push(rest.to_string()),
        _ => {}
    }
    if kind != "dmesg" || verbose {
        let _ = writeln!(out, "guest: {kind} {rest}");
    }
}

/// Fills the census and the RcvArray figures from the server's counters; returns the log.
fn census(stats: &Value, r: &mut KdrvReport) -> Vec<(u32, u64)> {
    let dev = stats.get("device").cloned().unwrap_or(Value::Null);
    let keep =
        |k: &String| k.starts_with("dc8051_") || k.starts_with("dcc_") || k.starts_with("sdma_");
    r.link_counters = dev
        .as_object()
        .map(|o| o.iter().filter(|(k, _)| keep(k)).map(|(k, v)| (k.clone(), v.clone())).collect())
        .map_or(Value::Null, Value::Object);
    let c = stats.get("csr_census").cloned().unwrap_or(Value::Null);
    r.csrs_touched = c.as_object().map_or(0, |o| o.values().map(|b| u(b, "touched")).sum::<u64>());
    r.census = c;
    let log: Vec<(u32, u64)> = stats
        .get("rcv_array_log")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    r.rcv_array_writes = log.iter().filter(|e| e.0 != u32::MAX).count();
    // The state when the guest finished: replay up to the last reset, which is the
    // disconnect at QEMU's exit (the probe's FLR comes before everything else).
    let last = log.iter().rposition(|e| e.0 == u32::MAX).unwrap_or(log.len());
    let mut state = std::collections::BTreeMap::new();
    for &(i, v) in log.get(..last).unwrap_or(&[]) {
        if i == u32::MAX {
            state.clear();
        } else {
            state.insert(i, v);
        }
    }
    r.rcv_array_valid_at_end =
        state.values().filter(|&&v| hfi_abi::RcvArrayEntry(v).is_valid()).count();
    log
}

fn check(r: &mut KdrvReport, log: &[(u32, u64)]) {
    if !r.cdev {
        r.failures.push("hfi1.ko did not create /dev/hfi1_0".into());
    }
    for e in &r.errors {
        r.failures.push(format!("guest error: {e}"));
    }
    // Tier B: the fake 8051's LCB-loopback quick link-up takes the port to Init, the guest's
    // subnet manager to Active.
    let up = ["INIT", "ARMED", "ACTIVE"].iter().any(|s| r.port_state.ends_with(s));
    if !up || !r.phys_state.ends_with("LinkUp") {
        r.failures.push(format!(
            "port did not come up: state {:?}, phys_state {:?}",
            r.port_state, r.phys_state
        ));
    }
    if !r.port_final.ends_with("ACTIVE") {
        r.failures.push(format!("port not Active after the subnet manager: {:?}", r.port_final));
    }
    // At Active hfi1 runs its SDMA engines (halt, clean-up, enable through the model).
    if r.sdma_states.is_empty() || r.sdma_states.iter().any(|s| s != "s99_Running") {
        r.failures.push(format!("SDMA engines not running: {:?}", r.sdma_states));
    }
    let n = guest_proto::tidscript::standard().len();
    if r.steps.len() != n {
        r.failures.push(format!("the guest ran {} of {n} script steps", r.steps.len()));
        return;
    }
    match &r.ctxt {
        Some(ci) => match kdrv_diff::compare(ci, &r.steps, Some(log)) {
            Ok(d) => {
                if d.differences > 0 {
                    r.failures.push(format!(
                        "{} script steps differ between hfi1.ko and our driver",
                        d.differences
                    ));
                }
                r.diff = Some(d);
            }
            Err(e) => r.failures.push(format!("replay failed: {e}")),
        },
        None => r.failures.push("no CTXT_INFO from the guest".into()),
    }
}

/// The report as text.
pub fn summary(r: &KdrvReport) -> String {
    let mut s = format!(
        "\nhfi1.ko: guest init after {:.1} s, probe done after {:.1} s, QEMU exit after {:.1} s; /dev/hfi1_0: {}\n",
        r.boot_s, r.probe_s, r.total_s, if r.cdev { "yes" } else { "NO" }
    );
    s.push_str(&format!(
        "port: after the probe {} / {}; after the subnet manager {}; SDMA engines {:?}\n",
        r.port_state, r.phys_state, r.port_final, r.sdma_states
    ));
    s.push_str(&format!(
        "CSRs touched by hfi1.ko: {} distinct offsets; RcvArray writes recorded: {}; valid entries when the guest finished: {}\n",
        r.csrs_touched, r.rcv_array_writes, r.rcv_array_valid_at_end
    ));
    if let Some(ci) = &r.ctxt {
        s.push_str(&format!("context: {ci:?}\n"));
    }
    if let Some(d) = &r.diff {
        for st in &d.steps {
            s.push_str(&format!(
                "{:>2} {:<40} kernel errno {:>3} tids {:>3} value {:>8} | ours errno {:>3} tids {:>3} value {:>8}  {}\n",
                st.step,
                st.what,
                st.kernel.0,
                st.kernel.1.len(),
                st.kernel.2,
                st.ours.0,
                st.ours.1.len(),
                st.ours.2,
                if st.same { "same" } else { "DIFFERENT" }
            ));
        }
        s.push_str(&format!(
            "RcvArray expected-entry changes: kernel {}, ours {}, first difference: {:?}\n",
            d.entry_changes.0, d.entry_changes.1, d.first_entry_difference
        ));
        if d.first_entry_difference.is_some() {
            s.push_str(&format!(
                "  kernel around it: {:?}\n  ours around it:   {:?}\n",
                d.around_difference.0, d.around_difference.1
            ));
        }
        s.push_str(&format!("differential: {} differences\n", d.differences));
    }
    if r.failures.is_empty() {
        s.push_str("hfi1.ko end-to-end: PASS\n");
    } else {
        for f in &r.failures {
            s.push_str(&format!("FAIL: {f}\n"));
        }
    }
    s
}

/// Default work directory of the kernel-driver run.
pub fn default_work() -> PathBuf {
    PathBuf::from("out/qemu-kdrv")
}

/// Default deadline (the generic kernel boots slower than the cloud one under TCG).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
