//! The model side of the server: the device, its DMA memory, the remote peer and the interrupt
//! line, owned by one thread that serves requests from the socket side over a crossbeam
//! channel.
//!
//! Time: after every request the thread pumps the remote peer and runs the device's events to
//! idle (simulated time runs freely, it is not paced to wall time), so the device is settled
//! whenever a reply goes back. One wall-clock timer exists: while the 8051 trains a quick
//! link-up, the thread ends the training after [`ServedConfig::link_training`] (as a real
//! link's training takes time, hfi1's probe finishes before the link comes up). Server-mode
//! runs are deterministic only given the same order of guest requests and training ends
//! (DESIGN.md, "Determinism").

use std::fs::File;
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};

pub use super::protocol::{irq_flags, libc_errno, ERR_IRQ_INDEX, MSIX_IRQ_INDEX};
pub use super::served::{
    DmaMem, ServedConfig, ServedDevice, ServedError, LINK_TRAINING_DEFAULT, MAX_DMA_MAP,
};

/// A request from the socket side (fields as in the vfio-user message).
#[allow(missing_docs)]
#[derive(Debug)]
pub enum Request {
    /// Config space read.
    CfgRead { offset: u64, len: usize },
    /// Config space write.
    CfgWrite { offset: u64, data: Vec<u8> },
    /// BAR0 read.
    BarRead { offset: u64, len: usize },
    /// BAR0 write.
    BarWrite { offset: u64, data: Vec<u8> },
    /// DMA_MAP.
    DmaMap { addr: u64, size: u64, offset: u64, file: Option<File> },
    /// DMA_UNMAP.
    DmaUnmap { addr: u64, size: u64, all: bool },
    /// SET_IRQS.
    SetIrqs { index: u32, flags: u32, start: u32, count: u32, fd: Option<File> },
    /// DEVICE_RESET.
    Reset,
    /// The connection ended (cleanly or not).
    Disconnect,
    /// Counters as JSON.
    Stats,
    /// Stop the model thread.
    Shutdown,
}

/// A reply from the model thread.
#[derive(Debug)]
pub enum Reply {
    /// Done (errno 0) or failed with an errno.
    Status(i32),
    /// Read data.
    Data(Vec<u8>),
    /// Counters.
    Stats(serde_json::Value),
}

/// Handle to the model thread.
#[derive(Debug)]
pub struct ModelThread {
    tx: Sender<(Request, Sender<Reply>)>,
    reply_tx: Sender<Reply>,
    reply_rx: Receiver<Reply>,
    join: Option<JoinHandle<()>>,
}

/// Try-receive iterations before blocking. A request/reply handoff between the socket thread
/// and the model thread then costs a few hundred nanoseconds instead of a futex wake-up
/// (several microseconds, tens on a VM); the spin yields every 64 tries so a single CPU still
/// runs the other side. Wall time only: the model's simulated time is unaffected.
const SPIN_TRIES: u32 = 4_000;

fn recv_spinning<T>(rx: &Receiver<T>) -> Option<T> {
    for i in 0..SPIN_TRIES {
        match rx.try_recv() {
            Ok(v) => return Some(v),
            Err(crossbeam_channel::TryRecvError::Disconnected) => return None,
            Err(crossbeam_channel::TryRecvError::Empty) => {
                if i % 64 == 63 {
                    std::thread::yield_now();
                } else {
                    std::hint::spin_loop();
                }
            }
        }
    }
    rx.recv().ok()
}

/// The wall clock of the link-training timer: the served model's only wall-clock input. It
/// decides when an external event (the training's end) is applied; given the order of
/// requests and events the model stays deterministic (DESIGN.md, "Determinism").
#[allow(clippy::disallowed_methods)]
fn wall_now() -> Instant {
    Instant::now()
}

impl ModelThread {
    /// Starts the model thread; the device is built on it (it holds a non-`Send` observer slot).
    pub fn spawn(cfg: ServedConfig) -> Result<Self, String> {
        let (tx, rx) = crossbeam_channel::unbounded::<(Request, Sender<Reply>)>();
        let (ready_tx, ready_rx) = crossbeam_channel::bounded::<Result<(), String>>(1);
        let join = std::thread::Builder::new()
            .name("hfi-model".into())
            .spawn(move || {
                let mut dev = match ServedDevice::new(cfg) {
                    Ok(d) => {
                        let _ = ready_tx.send(Ok(()));
                        d
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                // A link training under way ends at a wall-clock deadline (the only timer).
                let mut deadline: Option<Instant> = None;
                loop {
                    let next = match deadline {
                        None => recv_spinning(&rx),
                        Some(d) => match rx.recv_timeout(d.saturating_duration_since(wall_now())) {
                            Ok(r) => Some(r),
                            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                                dev.link_training_done();
                                deadline = None;
                                continue;
                            }
                            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => None,
                        },
                    };
                    let Some((req, reply)) = next else { break };
                    let stop = matches!(req, Request::Shutdown);
                    let _ = reply.send(handle(&mut dev, req));
                    if stop {
                        break;
                    }
                    deadline = match (deadline, dev.link_training()) {
                        (_, None) => None,
                        (Some(d), Some(_)) => Some(d),
                        (None, Some(t)) => Some(wall_now() + t),
                    };
                }
            })
            .map_err(|e| e.to_string())?;
        ready_rx.recv().map_err(|e| e.to_string())??;
        let (reply_tx, reply_rx) = crossbeam_channel::bounded(1);
        Ok(Self { tx, reply_tx, reply_rx, join: Some(join) })
    }

    /// Sends a request and waits for its reply (`None`: the model thread is gone).
    pub fn call(&self, req: Request) -> Option<Reply> {
        self.tx.send((req, self.reply_tx.clone())).ok()?;
        recv_spinning(&self.reply_rx)
    }

    /// Stops the thread; false if it had panicked.
    pub fn shutdown(mut self) -> bool {
        let _ = self.call(Request::Shutdown);
        self.join.take().is_none_or(|j| j.join().is_ok())
    }
}

fn handle(dev: &mut ServedDevice, req: Request) -> Reply {
    match req {
        Request::CfgRead { offset, len } => {
            let mut d = vec![0u8; len];
            if dev.config.read(offset, &mut d) {
                Reply::Data(d)
            } else {
                Reply::Status(libc_errno::EINVAL)
            }
        }
        Request::CfgWrite { offset, data } => Reply::Status(dev.cfg_write(offset, &data)),
        Request::BarRead { offset, len } => {
            let mut d = vec![0u8; len];
            dev.bar_read(offset, &mut d);
            Reply::Data(d)
        }
        Request::BarWrite { offset, data } => {
            dev.bar_write(offset, &data);
            Reply::Status(0)
        }
        Request::DmaMap { addr, size, offset, file } => {
            Reply::Status(dev.dma_map(addr, size, offset, file))
        }
        Request::DmaUnmap { addr, size, all } => {
            dev.dma_unmap(addr, size, all);
            Reply::Status(0)
        }
        Request::SetIrqs { index, flags, start, count, fd } => {
            Reply::Status(dev.set_irqs(index, flags, start, count, fd))
        }
        Request::Reset => {
            dev.reset();
            Reply::Status(0)
        }
        Request::Disconnect => {
            dev.disconnect();
            Reply::Status(0)
        }
        Request::Stats | Request::Shutdown => Reply::Stats(dev.stats_json()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DeviceConfig, PeerConfig};
    use hfi_abi::dc;
    use std::time::Duration;

    fn w(t: &ModelThread, offset: u64, v: u64) {
        let r = t.call(Request::BarWrite { offset, data: v.to_le_bytes().to_vec() });
        assert!(matches!(r, Some(Reply::Status(0))), "{r:?}");
    }

    fn r(t: &ModelThread, offset: u64) -> u64 {
        match t.call(Request::BarRead { offset, len: 8 }) {
            Some(Reply::Data(d)) => u64::from_le_bytes(d.try_into().unwrap_or([0; 8])),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_model_thread_ends_a_link_training_after_its_wall_clock_time() {
        let mut cfg = ServedConfig::new(DeviceConfig::default(), PeerConfig::default(), 64000);
        cfg.link_training = Duration::from_millis(30);
        let t = ModelThread::spawn(cfg).unwrap();
        // The LCB in loopback, then QUICK_LINKUP.
        w(&t, dc::DC_LCB_CFG_LOOPBACK, 2);
        w(&t, dc::DC_LCB_CFG_RUN, 1);
        w(&t, dc::DC_LCB_CFG_ALLOW_LINK_UP, 1);
        let cmd = dc::DC_DC8051_CFG_HOST_CMD_0_REQ_TYPE.encode(dc::hcmd::CHANGE_PHY_STATE)
            | dc::DC_DC8051_CFG_HOST_CMD_0_REQ_DATA.encode(dc::pls::QUICK_LINKUP);
        let start = wall_now();
        w(&t, dc::DC_DC8051_CFG_HOST_CMD_0, cmd);
        w(&t, dc::DC_DC8051_CFG_HOST_CMD_0, cmd | 1);
        let port = |t: &ModelThread| r(t, dc::DC_DC8051_STS_CUR_STATE) & 0xFF;
        assert_eq!(port(&t), dc::pls::POLLING, "training");
        while port(&t) != dc::pls::LINKUP {
            assert!(start.elapsed() < Duration::from_secs(5), "the training never ended");
            #[allow(clippy::disallowed_methods)] // waiting for the server's wall-clock timer
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(start.elapsed() >= Duration::from_millis(30));
        assert_eq!(r(&t, dc::DC_DC8051_ERR_FLG), 1, "LINKUP_ACHIEVED posted");
        let stats = match t.call(Request::Stats) {
            Some(Reply::Stats(s)) => s,
            other => panic!("{other:?}"),
        };
        assert_eq!(stats["server"]["link_training_count"], 1);
        assert!(t.shutdown());
    }
}
