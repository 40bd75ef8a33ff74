//! Booting QEMU for a run: the command line every run shares (q35, shared memfd RAM, serial
//! console, the private QEMU under coreutils `timeout`), the accelerator choice, and a
//! deadline-bounded console stream with QEMU killed and reaped on every path.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::env::QemuEnv;

/// `kvm` when `/dev/kvm` exists and the CPU has vmx/svm, else `tcg`.
pub fn default_accel() -> &'static str {
    if kvm_works() {
        "kvm"
    } else {
        "tcg"
    }
}

fn kvm_works() -> bool {
    let cpu = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    Path::new("/dev/kvm").exists()
        && cpu.lines().any(|l| l.starts_with("flags") && (l.contains(" vmx") || l.contains(" svm")))
}

/// Kills the child (and reaps it) when dropped: no QEMU is left behind on any path.
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

#[allow(clippy::disallowed_methods)] // orchestration of real processes runs on wall time
fn wall() -> Instant {
    Instant::now()
}

/// What to boot: kernel, command line and the devices besides the defaults.
#[derive(Clone, Debug)]
pub struct Machine {
    /// The kernel image.
    pub kernel: PathBuf,
    /// Kernel command line.
    pub append: String,
    /// `-device` arguments, in order.
    pub devices: Vec<String>,
}

/// How a boot ended.
#[derive(Clone, Debug, Default)]
pub struct Boot {
    /// Every console line (QEMU's stderr prefixed with `qemu stderr: `).
    pub console: Vec<String>,
    /// Seconds from QEMU start to its exit (or the kill).
    pub total_s: f64,
    /// Killed at the deadline.
    pub timed_out: bool,
}

/// Boots `machine` with `initrd` under a deadline; each console line goes to `on_line` with
/// the seconds since QEMU started. QEMU is killed and reaped on every path.
pub fn boot(
    env: &QemuEnv,
    accel: &str,
    timeout: Duration,
    machine: &Machine,
    initrd: &Path,
    on_line: &mut dyn FnMut(&str, f64),
) -> Result<Boot, String> {
    boot_with(env, accel, timeout, machine, &[], initrd, on_line)
}

/// [`boot`] with further QEMU arguments after the shared ones (e.g. `-cpu max`, a monitor
/// socket, a trace log).
pub fn boot_with(
    env: &QemuEnv,
    accel: &str,
    timeout: Duration,
    machine: &Machine,
    extra_args: &[String],
    initrd: &Path,
    on_line: &mut dyn FnMut(&str, f64),
) -> Result<Boot, String> {
    let mut cmd: Command = env.qemu_command(timeout.as_secs());
    cmd.args(["-accel", accel, "-m", "512M", "-smp", "1", "-nodefaults", "-no-user-config"])
        .args(["-display", "none", "-serial", "stdio", "-no-reboot", "-bios", "qboot.rom"])
        .args(["-object", "memory-backend-memfd,id=mem,size=512M,share=on"])
        .args(["-machine", "q35,memory-backend=mem"])
        .arg("-kernel")
        .arg(&machine.kernel)
        .arg("-initrd")
        .arg(initrd)
        .arg("-append")
        .arg(&machine.append);
    for d in &machine.devices {
        cmd.arg("-device").arg(d);
    }
    cmd.args(extra_args);
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let t0 = wall();
    let mut child = Reaper(cmd.spawn().map_err(|e| format!("cannot start QEMU: {e}"))?);
    let (tx, rx) = mpsc::channel::<String>();
    let mut readers = Vec::new();
    if let Some(o) = child.0.stdout.take() {
        let tx = tx.clone();
        readers.push(std::thread::spawn(move || {
            for l in BufReader::new(o).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        }));
    }
    if let Some(e) = child.0.stderr.take() {
        let tx = tx.clone();
        readers.push(std::thread::spawn(move || {
            for l in BufReader::new(e).lines().map_while(Result::ok) {
                let _ = tx.send(format!("qemu stderr: {l}"));
            }
        }));
    }
    drop(tx);
    let mut b = Boot::default();
    let deadline = t0 + timeout;
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                on_line(&line, t0.elapsed().as_secs_f64());
                b.console.push(line);
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if wall() > deadline {
            b.timed_out = true;
            break;
        }
    }
    drop(child); // kills QEMU if still running, reaps it
    for r in readers {
        let _ = r.join();
    }
    b.total_s = t0.elapsed().as_secs_f64();
    Ok(b)
}
