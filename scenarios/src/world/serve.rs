//! `hfi-sim serve`: the device model as a vfio-user server, and the client side used by the
//! tests and benches (a [`Node`] over [`VfioUserTransport`]).

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use driver::transport::vfio_user::VfioUserTransport;
use hfi_model::server::{serve, ModelThread, ServedConfig, ServerStats};

use crate::world::host_costs::HostLedger;
use crate::world::node::{Node, NodeConfig, NodeError, DMA_BASE, PROCESS_BASE};

/// Set by SIGTERM/SIGINT.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    STOP.store(true, Ordering::Relaxed);
}

/// The served model's configuration for a node configuration (device, peer, rendezvous).
pub fn served_config(cfg: &NodeConfig) -> ServedConfig {
    ServedConfig::new(cfg.device.clone(), cfg.peer.clone(), cfg.rndv.threshold as usize)
}

/// Binds the listening socket at `path` with mode 0600: bound under a temporary name, chmod'ed,
/// then renamed into place (so it is never reachable with wider permissions, and a client
/// seeing the path can connect). An existing `path` is replaced only if it is a socket (never
/// a regular file, a directory or a symlink, whose target is never followed).
pub fn bind_socket(path: &Path) -> Result<UnixListener, String> {
    if let Ok(md) = std::fs::symlink_metadata(path) {
        if !md.file_type().is_socket() {
            return Err(format!("{} exists and is not a socket; not replacing it", path.display()));
        }
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    let listener =
        UnixListener::bind(&tmp).map_err(|e| format!("cannot bind {}: {e}", tmp.display()))?;
    let done = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = done {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!("cannot place socket at {}: {e}", path.display()));
    }
    Ok(listener)
}

/// Serves `cfg`'s device at `socket` until SIGTERM/SIGINT; returns the counters (server and
/// device) as JSON.
pub fn run(socket: &Path, cfg: &NodeConfig) -> Result<serde_json::Value, String> {
    run_served(socket, served_config(cfg))
}

/// As [`run`], for a served configuration (e.g. another PCI device ID).
pub fn run_served(socket: &Path, served: ServedConfig) -> Result<serde_json::Value, String> {
    for sig in [libc::SIGTERM, libc::SIGINT] {
        vmm_sys_util::signal::register_signal_handler(sig, on_signal)
            .map_err(|e| format!("cannot install a signal handler: {e}"))?;
    }
    let listener = bind_socket(socket)?;
    let model = ModelThread::spawn(served)?;
    let mut stats = ServerStats::default();
    let served = serve(&listener, &model, &STOP, &mut stats);
    finish(socket, model, stats, served.map_err(|e| e.to_string()))
}

/// Stops the model thread and merges the socket side's counters with the model's.
fn finish(
    socket: &Path,
    model: ModelThread,
    stats: ServerStats,
    served: Result<(), String>,
) -> Result<serde_json::Value, String> {
    let dev = match model.call(hfi_model::server::model::Request::Stats) {
        Some(hfi_model::server::model::Reply::Stats(v)) => v,
        _ => serde_json::Value::Null,
    };
    let model_ok = model.shutdown();
    let _ = std::fs::remove_file(socket);
    served.map_err(|e| format!("server failed: {e}"))?;
    if !model_ok {
        return Err("the model thread panicked".into());
    }
    // The socket side's counters, then the model side's (server part merged) and the device's.
    let mut all = stats;
    if let Some(m) =
        dev.get("server").and_then(|v| serde_json::from_value::<ServerStats>(v.clone()).ok())
    {
        all.merge(&m);
    }
    Ok(serde_json::json!({
        "server": all.to_json(),
        "device": dev.get("device"),
        "csr_census": dev.get("csr_census"),
        "rcv_array_log": dev.get("rcv_array_log"),
    }))
}

/// A server on its own thread, stopped by [`ServerThread::stop`] (used by `hfi-sim qemu`).
#[derive(Debug)]
pub struct ServerThread {
    socket: PathBuf,
    stop: std::sync::Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Result<serde_json::Value, String>>,
}

impl ServerThread {
    /// Binds `socket` (listening when this returns) and serves `cfg`'s device on a thread.
    pub fn start(socket: &Path, cfg: &NodeConfig) -> Result<Self, String> {
        Self::start_served(socket, served_config(cfg))
    }

    /// As [`ServerThread::start`], for a served configuration (device ID, recording).
    pub fn start_served(socket: &Path, served: ServedConfig) -> Result<Self, String> {
        let listener = bind_socket(socket)?;
        let model = ModelThread::spawn(served)?;
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let path = socket.to_path_buf();
        let thread = std::thread::Builder::new()
            .name("hfi-sim-serve".into())
            .spawn(move || {
                let mut stats = ServerStats::default();
                let served = serve(&listener, &model, &flag, &mut stats);
                finish(&path, model, stats, served.map_err(|e| e.to_string()))
            })
            .map_err(|e| format!("cannot start the server thread: {e}"))?;
        Ok(Self { socket: socket.to_path_buf(), stop, thread })
    }

    /// The socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Stops serving and returns the counters (as [`run`] does).
    pub fn stop(self) -> Result<serde_json::Value, String> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().map_err(|_| "the server thread panicked".to_string())?
    }
}

/// Brings a node up over the socket: an arena of `cfg.mem_mib` MiB shared with the server,
/// driver DMA memory in `[DMA_BASE, PROCESS_BASE)`, process frames above (the same layout as
/// in process).
pub fn connect_node(socket: &Path, cfg: &NodeConfig) -> Result<Node<VfioUserTransport>, NodeError> {
    let arena = cfg.mem_mib << 20;
    let t = VfioUserTransport::connect(socket, arena, DMA_BASE, PROCESS_BASE)
        .map_err(driver::hw::HwError::from)?;
    let mem = t.memory();
    let ledger = HostLedger::shared(cfg.host.clone());
    let pool = Node::<VfioUserTransport>::pool(cfg)?;
    Node::with_transport(t, mem, pool, ledger, cfg)
}
