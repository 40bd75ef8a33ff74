//! Shared helpers of the `serve_*` tests: spawning `hfi-sim serve` in a temp dir.
#![allow(dead_code, clippy::disallowed_methods)] // tests wait on a real server process
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `hfi-sim serve`.
pub struct Server {
    pub child: Child,
    pub socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    pub fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("hfi.sock");
        let child = Command::new(env!("CARGO_BIN_EXE_hfi-sim"))
            .args(["serve", "--socket"])
            .arg(&socket)
            .arg("--stats")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_for(&socket);
        Server { child, socket, _dir: dir }
    }

    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// SIGTERM, then the `--stats` JSON it printed.
    pub fn stop(mut self) -> serde_json::Value {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let out = std::mem::replace(&mut self.child, Command::new("true").spawn().unwrap())
            .wait_with_output()
            .unwrap();
        assert!(out.status.success(), "serve failed: {}", String::from_utf8_lossy(&out.stderr));
        assert!(!self.socket.exists(), "socket removed at exit");
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

pub fn wait_for(p: &Path) {
    let t0 = Instant::now();
    while !p.exists() {
        assert!(t0.elapsed() < Duration::from_secs(10), "server did not come up");
        std::thread::sleep(Duration::from_millis(5));
    }
}
