//! What a QEMU run needs from the host: the cache that `tools/qemu/setup.sh` fills (QEMU,
//! kernels, busybox, the PSM2 user space), the static guest binary, and the guest image built
//! from them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::initramfs::{Archive, Entry};

/// The repository root (this crate's parent directory).
pub fn repo_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map_or(manifest.clone(), Path::to_path_buf)
}

/// The default cache: `$HFI_SIM_QEMU_CACHE` or `<repo>/.cache/qemu`.
pub fn default_cache() -> PathBuf {
    std::env::var_os("HFI_SIM_QEMU_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".cache/qemu"))
}

/// The cache's contents, from the `env` file setup.sh writes.
#[derive(Clone, Debug)]
pub struct QemuEnv {
    /// The prefix's dynamic loader.
    pub loader: PathBuf,
    /// Its library path.
    pub library_path: String,
    /// qemu-system-x86_64.
    pub binary: PathBuf,
    /// Firmware directory (`-L`).
    pub firmware: PathBuf,
    /// `QEMU emulator version …`.
    pub version: String,
    /// Extracted cloud kernel package.
    pub kernel_cloud: PathBuf,
    /// Extracted generic kernel package.
    pub kernel_generic: PathBuf,
    /// busybox (static).
    pub busybox: PathBuf,
    /// The PSM2 / libfabric user space (bookworm packages) and the list of its files the
    /// guest takes; `None` for a cache written before setup.sh had that stage.
    pub psm2: Option<GuestTree>,
}

/// A part of a host directory tree copied into the guest at the same paths.
#[derive(Clone, Debug)]
pub struct GuestTree {
    /// The tree's root on the host.
    pub root: PathBuf,
    /// The file that lists the paths (relative to `root`, one a line) the guest takes.
    pub files: PathBuf,
}

impl GuestTree {
    /// The listed paths.
    pub fn list(&self) -> Result<Vec<String>, String> {
        let text = std::fs::read_to_string(&self.files)
            .map_err(|e| format!("cannot read {}: {e}", self.files.display()))?;
        Ok(text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect())
    }
}

impl QemuEnv {
    /// Runs `tools/qemu/setup.sh CACHE` (a no-op when the cache is complete) and reads the
    /// result.
    pub fn setup(cache: &Path) -> Result<Self, String> {
        let script = repo_root().join("tools/qemu/setup.sh");
        let st = Command::new("bash")
            .arg(&script)
            .arg(cache)
            .stdout(std::process::Stdio::null())
            .status()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        if !st.success() {
            return Err(format!("{} failed ({st}); see its messages above", script.display()));
        }
        Self::load(cache)
    }

    /// Reads `CACHE/env`.
    pub fn load(cache: &Path) -> Result<Self, String> {
        let path = cache.join("env");
        let text = std::fs::read_to_string(&path).map_err(|e| {
            format!("cannot read {} (run tools/qemu/setup.sh): {e}", path.display())
        })?;
        let kv: BTreeMap<&str, &str> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .collect();
        let get = |k: &str| {
            kv.get(k).map(|v| v.to_string()).ok_or_else(|| format!("{}: no {k}", path.display()))
        };
        Ok(Self {
            loader: get("QEMU_LOADER")?.into(),
            library_path: get("QEMU_LIBRARY_PATH")?,
            binary: get("QEMU_BINARY")?.into(),
            firmware: get("QEMU_FIRMWARE")?.into(),
            version: get("QEMU_VERSION")?,
            kernel_cloud: get("KERNEL_CLOUD")?.into(),
            kernel_generic: get("KERNEL_GENERIC")?.into(),
            busybox: get("BUSYBOX")?.into(),
            psm2: match (kv.get("PSM2_ROOT"), kv.get("PSM2_FILES")) {
                (Some(r), Some(f)) => Some(GuestTree { root: r.into(), files: f.into() }),
                _ => None,
            },
        })
    }

    /// A command running QEMU through the prefix's loader, under coreutils `timeout` (killed
    /// `deadline_s` + 5 s after it starts even if `hfi-sim` itself dies first; `hfi-sim`
    /// kills it at its own deadline anyway).
    pub fn qemu_command(&self, deadline_s: u64) -> Command {
        let mut c = Command::new("timeout");
        c.args(["--kill-after=5", &format!("{}", deadline_s.saturating_add(5))]);
        c.arg(&self.loader);
        c.arg("--library-path").arg(&self.library_path).arg(&self.binary);
        c.arg("-L").arg(&self.firmware);
        c
    }
}

/// Builds `hfi-guest` as a static x86_64 binary (its own target directory, so the flags never
/// invalidate the workspace's build) and returns its path.
pub fn build_guest_binary(target_dir: &Path) -> Result<PathBuf, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target = "x86_64-unknown-linux-gnu";
    let st = Command::new(cargo)
        .current_dir(repo_root())
        .args(["build", "--quiet", "--release", "--locked", "-p", "guest", "--bin", "hfi-guest"])
        .args(["--target", target, "--target-dir"])
        .arg(target_dir)
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .env_remove("CARGO_TARGET_DIR")
        .status()
        .map_err(|e| format!("cannot run cargo to build the guest binary: {e}"))?;
    if !st.success() {
        return Err(format!("building the guest binary failed ({st})"));
    }
    let bin = target_dir.join(target).join("release/hfi-guest");
    if !bin.is_file() {
        return Err(format!("{} was not built", bin.display()));
    }
    Ok(bin)
}

/// Finds `<name>.ko` under a kernel package's `modules/` tree.
pub fn find_module(kernel: &Path, name: &str) -> Result<PathBuf, String> {
    fn walk(dir: &Path, file: &str, depth: u32) -> Option<PathBuf> {
        let rd = std::fs::read_dir(dir).ok()?;
        let mut subdirs = Vec::new();
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                subdirs.push(p);
            } else if e.file_name().to_string_lossy() == file {
                return Some(p);
            }
        }
        subdirs.sort();
        (depth < 12).then(|| subdirs.iter().find_map(|d| walk(d, file, depth + 1))).flatten()
    }
    let root = kernel.join("modules/kernel");
    walk(&root, &format!("{name}.ko"), 0)
        .ok_or_else(|| format!("module {name}.ko not found under {}", root.display()))
}

/// What goes into a guest image.
#[derive(Clone, Debug)]
pub struct ImageSpec {
    /// Kernel package directory (for modules).
    pub kernel: PathBuf,
    /// Modules to load, in order, with their parameters.
    pub modules: Vec<(String, String)>,
    /// Programs to install in `/bin` (name, host path).
    pub programs: Vec<(String, PathBuf)>,
    /// The commands the init script runs after loading modules (each line printed with its
    /// exit status).
    pub commands: Vec<String>,
    /// How the guest ends after the commands.
    pub end: GuestEnd,
}

/// How the init script ends the guest (QEMU runs with `-no-reboot`, so both end QEMU).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GuestEnd {
    /// `poweroff -f`: the kernel shuts devices down first (drivers' shutdown callbacks run).
    #[default]
    PowerOff,
    /// An emergency restart through SysRq-b: no device shutdown. For a driver whose shutdown
    /// cannot complete against the model (hfi1 in functional-simulator mode with its link up
    /// deadlocks on its own link-state mutex; docs/hfi1ko.md, "Tier B: link bring-up").
    Restart,
}

/// Optional additions to a guest image (the PSM2 run's): host trees, a tmpfs on `/dev/shm`,
/// the loopback interface up.
#[derive(Clone, Debug, Default)]
pub struct ImageExtras {
    /// Trees copied in at their relative paths (e.g. [`QemuEnv::psm2`]: programs, their
    /// libraries and the dynamic loader).
    pub trees: Vec<GuestTree>,
    /// Mount a tmpfs on `/dev/shm` (POSIX shared memory: PSM2, libfabric).
    pub shm: bool,
    /// Bring `lo` up with 127.0.0.1 (fi_pingpong's address exchange runs over TCP).
    pub loopback_net: bool,
}

/// Builds the initramfs: busybox with its applets, `/dev/console`, the modules, the programs
/// and an init script that mounts proc/sys/dev, loads the modules, runs the commands and
/// ends the guest ([`GuestEnd`]).
pub fn build_image(env: &QemuEnv, spec: &ImageSpec) -> Result<Vec<u8>, String> {
    build_image_with(env, spec, &ImageExtras::default())
}

/// [`build_image`] with [`ImageExtras`]: the trees are added before the init script's
/// mounts, `/dev/shm` and `lo` set up right after them.
pub fn build_image_with(
    env: &QemuEnv,
    spec: &ImageSpec,
    extras: &ImageExtras,
) -> Result<Vec<u8>, String> {
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()));
    let mut a = Archive::new();
    a.add("bin/busybox", Entry::File { mode: 0o755, data: read(&env.busybox)? });
    for d in ["proc", "sys", "dev", "tmp", "etc", "lib/modules"] {
        a.add(d, Entry::Dir);
    }
    a.add("dev/console", Entry::CharDev { major: 5, minor: 1 });
    let mut init = String::from(
        "#!/bin/busybox sh\n/bin/busybox --install -s /bin\nexport PATH=/bin\n\
         mount -t proc proc /proc\nmount -t sysfs sysfs /sys\nmount -t devtmpfs devtmpfs /dev\n\
         echo \"HFI-GUEST boot $(cut -d' ' -f1 /proc/uptime)\"\n",
    );
    for t in &extras.trees {
        a.add_tree(&t.root, &t.list()?)?;
    }
    if extras.shm {
        init.push_str("mkdir -p /dev/shm && mount -t tmpfs -o mode=1777 tmpfs /dev/shm\n");
    }
    if extras.loopback_net {
        init.push_str("ip addr add 127.0.0.1/8 dev lo 2>/dev/null; ip link set lo up\n");
    }
    for (m, params) in &spec.modules {
        let path = find_module(&spec.kernel, m)?;
        a.add(&format!("lib/modules/{m}.ko"), Entry::File { mode: 0o644, data: read(&path)? });
        init.push_str(&format!(
            "insmod /lib/modules/{m}.ko {params} || echo \"HFI-GUEST error insmod {m} failed\"\n"
        ));
    }
    for (name, path) in &spec.programs {
        a.add(&format!("bin/{name}"), Entry::File { mode: 0o755, data: read(path)? });
    }
    for c in &spec.commands {
        init.push_str(&format!("{c}\necho \"HFI-GUEST exit $?\"\n"));
    }
    init.push_str("echo \"HFI-GUEST uptime $(cut -d' ' -f1 /proc/uptime)\"\n");
    init.push_str(match spec.end {
        GuestEnd::PowerOff => "poweroff -f\n",
        GuestEnd::Restart => "echo b > /proc/sysrq-trigger\n",
    });
    a.add("init", Entry::File { mode: 0o755, data: init.into_bytes() });
    Ok(a.finish())
}
