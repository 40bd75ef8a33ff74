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
use std::io::Write;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use vm_memory::{FileOffset, GuestAddress, GuestMemoryAtomic, GuestMemoryMmap, GuestRegionMmap};

use super::msix::MsixVectors;
use super::pci::ConfigSpace;
use super::stats::ServerStats;
use crate::link::remote::RemotePeer;
use crate::{DeviceConfig, HfiDevice, Peer, PeerConfig};

/// DMA memory of the served device: the client's DMA_MAP regions.
pub type DmaMem = GuestMemoryAtomic<GuestMemoryMmap>;

/// `VFIO_PCI_MSIX_IRQ_INDEX`.
pub const MSIX_IRQ_INDEX: u32 = 2;
/// `VFIO_PCI_ERR_IRQ_INDEX`.
pub const ERR_IRQ_INDEX: u32 = 3;

/// `VFIO_IRQ_SET_*` flag bits.
pub mod irq_flags {
    /// No data.
    pub const DATA_NONE: u32 = 1 << 0;
    /// A bool array follows.
    pub const DATA_BOOL: u32 = 1 << 1;
    /// Eventfds follow (ancillary data).
    pub const DATA_EVENTFD: u32 = 1 << 2;
    /// Mask.
    pub const ACTION_MASK: u32 = 1 << 3;
    /// Unmask (with DATA_EVENTFD: the resample/unmask fd).
    pub const ACTION_UNMASK: u32 = 1 << 4;
    /// Trigger (with DATA_EVENTFD: the trigger fd).
    pub const ACTION_TRIGGER: u32 = 1 << 5;
}

/// The model configuration of a served device.
#[derive(Clone, Debug)]
pub struct ServedConfig {
    /// Device configuration.
    pub device: DeviceConfig,
    /// Remote peer (link) configuration.
    pub peer: PeerConfig,
    /// Rendezvous threshold of the remote sender.
    pub rndv_threshold: usize,
    /// PCI device ID: 0x24f0 (discrete, the default) or 0x24f1 (integrated; what hfi1.ko is
    /// probed with, it skips the EPROM).
    pub device_id: u16,
    /// Record every RcvArray write and reset (reported as `rcv_array_log` in the stats).
    pub record_rcv_array: bool,
    /// Wall-clock time a quick link-up takes to train (the 8051 reports LinkUp after it).
    pub link_training: Duration,
}

/// Default [`ServedConfig::link_training`]: about a real link's LNI time, so that, as on
/// hardware, hfi1 finishes its probe (IB device registration) before the link comes up.
pub const LINK_TRAINING_DEFAULT: Duration = Duration::from_secs(1);

impl ServedConfig {
    /// A configuration with the default device ID (0x24f0), not recording.
    pub fn new(device: DeviceConfig, peer: PeerConfig, rndv_threshold: usize) -> Self {
        Self {
            device,
            peer,
            rndv_threshold,
            device_id: hfi_abi::uapi::pci::DEVICE_ID_INTEL0,
            record_rcv_array: false,
            link_training: LINK_TRAINING_DEFAULT,
        }
    }
}

/// Largest DMA_MAP accepted (64 GiB).
pub const MAX_DMA_MAP: u64 = 64 << 30;

struct Mapping {
    addr: u64,
    size: u64,
    region: Arc<GuestRegionMmap>,
}

/// Device + DMA memory + remote peer + config space + INTx line + MSI-X vectors.
pub struct ServedDevice {
    cfg: ServedConfig,
    /// The device.
    pub dev: HfiDevice<DmaMem>,
    mem: DmaMem,
    maps: Vec<Mapping>,
    remote: RemotePeer,
    /// PCI configuration space.
    pub config: ConfigSpace,
    trigger: Option<File>,
    unmask_fd: Option<File>,
    err_fd: Option<File>,
    masked: bool,
    pending: bool,
    msix: MsixVectors,
    /// Server counters (model side).
    pub stats: ServerStats,
}

impl std::fmt::Debug for ServedDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServedDevice")
            .field("maps", &self.maps.len())
            .field("masked", &self.masked)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// Why a served device could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ServedError {
    /// Device configuration rejected.
    #[error("device configuration rejected")]
    Device(#[from] crate::DeviceError),
    /// Peer configuration rejected.
    #[error("peer configuration rejected")]
    Peer(#[from] crate::PeerError),
    /// Not a device ID hfi1 binds.
    #[error("device ID {0:#06x} is neither 0x24f0 nor 0x24f1")]
    DeviceId(u16),
}

impl ServedDevice {
    /// A device with no DMA memory mapped yet.
    pub fn new(cfg: ServedConfig) -> Result<Self, ServedError> {
        use hfi_abi::uapi::pci::{DEVICE_ID_INTEL0, DEVICE_ID_INTEL1};
        if cfg.device_id != DEVICE_ID_INTEL0 && cfg.device_id != DEVICE_ID_INTEL1 {
            return Err(ServedError::DeviceId(cfg.device_id));
        }
        let mem = GuestMemoryAtomic::new(GuestMemoryMmap::new());
        let mut dev = HfiDevice::new(cfg.device.clone(), mem.clone())?;
        dev.record_rcv_array(cfg.record_rcv_array);
        let remote = RemotePeer::new(Peer::new(cfg.peer.clone())?, cfg.rndv_threshold);
        let config = ConfigSpace::new(cfg.device_id);
        Ok(Self {
            cfg,
            dev,
            mem,
            maps: Vec::new(),
            remote,
            config,
            trigger: None,
            unmask_fd: None,
            err_fd: None,
            masked: false,
            pending: false,
            msix: MsixVectors::default(),
            stats: ServerStats::default(),
        })
    }

    /// Hands packets the driver sent to the remote peer and runs the device to idle, until
    /// nothing more happens (bounded).
    pub fn settle(&mut self) {
        for _ in 0..1024 {
            self.dev.run_until_idle();
            let tx = self.dev.take_tx_packets();
            if tx.is_empty() {
                break;
            }
            for p in tx {
                match self.remote.on_packet(&p.bytes) {
                    Ok(pk) => {
                        for k in pk {
                            self.dev.link_send_at(p.time, k);
                        }
                    }
                    Err(_) => self.stats.remote_bad_packet_count += 1,
                }
            }
        }
        self.deliver_interrupts();
    }

    fn deliver_interrupts(&mut self) {
        let vectors = self.dev.take_interrupts();
        if self.msix.enabled() {
            // MSI-X: each vector the device signalled (its CceIntMap byte) is its own message.
            for v in vectors {
                self.msix.signal(v, &mut self.stats);
            }
            return;
        }
        if !vectors.is_empty() {
            self.pending = true;
        }
        if self.pending && !self.masked {
            self.pending = false;
            if let Some(f) = self.trigger.as_mut() {
                match f.write_all(&1u64.to_ne_bytes()) {
                    Ok(()) => self.stats.irq_trigger_count += 1,
                    Err(_) => self.stats.irq_trigger_fails += 1,
                }
            } else {
                self.stats.irq_no_eventfd_drops += 1;
            }
        }
    }

    /// Reads BAR0.
    pub fn bar_read(&mut self, offset: u64, data: &mut [u8]) {
        self.stats.mmio_read_count += 1;
        self.dev.mmio_read(offset, data);
    }

    /// Writes BAR0, then settles.
    pub fn bar_write(&mut self, offset: u64, data: &[u8]) {
        self.stats.mmio_write_count += 1;
        self.dev.mmio_write(offset, data);
        self.settle();
    }

    /// DMA_MAP: maps `size` bytes of `file` at `offset` to IOVA `addr`; returns an errno.
    pub fn dma_map(&mut self, addr: u64, size: u64, offset: u64, file: Option<File>) -> i32 {
        let Some(file) = file else {
            // Without an fd the device cannot reach the memory (the crate has no DMA_READ/WRITE).
            self.stats.dma_map_without_fd_count += 1;
            return 0;
        };
        let end = addr.checked_add(size);
        let bad =
            size == 0 || size > MAX_DMA_MAP || end.is_none() || offset.checked_add(size).is_none();
        let overlaps =
            self.maps.iter().any(|m| addr < m.addr + m.size && m.addr < addr.saturating_add(size));
        if bad || overlaps {
            self.stats.dma_map_fails += 1;
            return libc_errno::EINVAL;
        }
        let region = match GuestRegionMmap::from_range(
            GuestAddress(addr),
            size as usize,
            Some(FileOffset::new(file, offset)),
        ) {
            Ok(r) => Arc::new(r),
            Err(_) => {
                self.stats.dma_map_fails += 1;
                return libc_errno::EFAULT;
            }
        };
        self.maps.push(Mapping { addr, size, region });
        self.maps.sort_by_key(|m| m.addr);
        self.publish();
        self.stats.dma_map_count += 1;
        0
    }

    /// DMA_UNMAP: quiesces (in-flight DMA completes into the still-mapped memory), then removes
    /// every mapping inside `[addr, addr + size)`; unknown ranges are ignored (counted).
    pub fn dma_unmap(&mut self, addr: u64, size: u64, all: bool) {
        let end = addr.saturating_add(size);
        let hit = |m: &Mapping| all || (m.addr >= addr && m.addr + m.size <= end);
        if !self.maps.iter().any(hit) {
            self.stats.dma_unmap_unknown_count += 1;
            return;
        }
        // Quiesce: the events in flight (writebacks of packets already past lookup) land now.
        self.settle();
        self.maps.retain(|m| !hit(m));
        self.publish();
        self.stats.dma_unmap_count += 1;
    }

    fn publish(&mut self) {
        let regions: Vec<Arc<GuestRegionMmap>> =
            self.maps.iter().map(|m| m.region.clone()).collect();
        let map = if regions.is_empty() {
            Ok(GuestMemoryMmap::new())
        } else {
            GuestMemoryMmap::from_arc_regions(regions)
        };
        match (map, self.mem.lock()) {
            (Ok(map), Ok(guard)) => guard.replace(map),
            _ => self.stats.dma_publish_fails += 1,
        }
    }

    /// Config-space write; returns an errno. A write of PCIe DevCtl.InitiateFLR resets the
    /// function ([`Self::flr`]).
    pub fn cfg_write(&mut self, offset: u64, data: &[u8]) -> i32 {
        match self.config.write(offset, data) {
            Some(w) => {
                if w.flr {
                    self.flr();
                }
                0
            }
            None => libc_errno::EINVAL,
        }
    }

    /// Function-level reset: the device model (every CSR, context, RcvArray entry, queued
    /// packet) and the remote peer go back to their reset state, a pending INTx is dropped.
    /// Kept: configuration space (identity, capabilities, BAR and COMMAND values: QEMU
    /// emulates those and the guest restores them), DMA maps, eventfds and the connection.
    pub fn flr(&mut self) {
        self.dev.reset();
        if let Ok(p) = Peer::new(self.cfg.peer.clone()) {
            self.remote = RemotePeer::new(p, self.cfg.rndv_threshold);
        }
        self.pending = false;
        self.stats.flr_count += 1;
    }

    /// The quick link-up's training time has passed: the 8051 takes the link up (or leaves it
    /// in polling), and the resulting interrupt is delivered.
    pub fn link_training_done(&mut self) {
        self.dev.finish_link_training();
        self.stats.link_training_count += 1;
        self.deliver_interrupts();
    }

    /// The link training's duration, while one is under way.
    pub fn link_training(&self) -> Option<Duration> {
        self.dev.link_training_pending().then_some(self.cfg.link_training)
    }

    /// Number of DMA_MAP regions held.
    pub fn dma_maps(&self) -> usize {
        self.maps.len()
    }

    /// True while MSI-X is the interrupt mode.
    pub fn msix_enabled(&self) -> bool {
        self.msix.enabled()
    }

    /// SET_IRQS; returns an errno. INTx (index 0, one vector) and MSI-X (index 2, 256 vectors,
    /// [`super::msix`]) exist; ERR (index 3) takes one eventfd, kept and never signalled (the
    /// model reports no uncorrectable PCIe errors; QEMU warns when it cannot register one); MSI
    /// and REQ have no vectors.
    pub fn set_irqs(
        &mut self,
        index: u32,
        flags: u32,
        start: u32,
        count: u32,
        fd: Option<File>,
    ) -> i32 {
        use irq_flags::*;
        if index == MSIX_IRQ_INDEX {
            let e = self.msix.set_irqs(flags, start, count, fd, &mut self.stats);
            if e == 0 {
                self.deliver_interrupts();
            }
            return e;
        }
        if index == ERR_IRQ_INDEX {
            return match (flags, start, count) {
                (f, 0, 1) if f == ACTION_TRIGGER | DATA_EVENTFD && fd.is_some() => {
                    self.err_fd = fd;
                    0
                }
                (f, 0, 0) if f & ACTION_TRIGGER != 0 && fd.is_none() => {
                    self.err_fd = None;
                    0
                }
                _ => libc_errno::EINVAL,
            };
        }
        if index != 0 {
            // MSI/REQ have no vectors: disabling them (count 0) is fine.
            return if count == 0 { 0 } else { libc_errno::EINVAL };
        }
        if start != 0 || count > 1 {
            return libc_errno::EINVAL;
        }
        let data = flags & (DATA_NONE | DATA_BOOL | DATA_EVENTFD);
        let action = flags & (ACTION_MASK | ACTION_UNMASK | ACTION_TRIGGER);
        if data.count_ones() != 1 || action.count_ones() != 1 {
            return libc_errno::EINVAL;
        }
        match (action, data) {
            (ACTION_TRIGGER, DATA_EVENTFD) => {
                self.trigger = if count == 0 { None } else { fd };
                self.stats.irq_set_trigger_count += 1;
            }
            // The INTx resample fd: kept, distinguished from the trigger, not needed (the
            // line is edge-like, see the module docs).
            (ACTION_UNMASK, DATA_EVENTFD) => {
                self.unmask_fd = if count == 0 { None } else { fd };
                self.stats.irq_set_unmask_fd_count += 1;
            }
            (ACTION_MASK, DATA_NONE) => self.masked = count == 1,
            (ACTION_UNMASK, DATA_NONE) => {
                if count == 1 {
                    self.masked = false;
                    self.deliver_interrupts();
                }
            }
            (ACTION_TRIGGER, DATA_NONE) => {
                if count == 1 {
                    self.pending = true;
                    self.deliver_interrupts();
                }
            }
            _ => return libc_errno::ENOTSUP,
        }
        0
    }

    /// DEVICE_RESET: device, config space and remote peer; DMA maps and eventfds stay.
    pub fn reset(&mut self) {
        self.dev.reset();
        self.config = ConfigSpace::new(self.cfg.device_id);
        if let Ok(p) = Peer::new(self.cfg.peer.clone()) {
            self.remote = RemotePeer::new(p, self.cfg.rndv_threshold);
        }
        self.masked = false;
        self.pending = false;
        self.stats.reset_count += 1;
    }

    /// The client went away: reset, drop every mapping and eventfd.
    pub fn disconnect(&mut self) {
        self.reset();
        self.maps.clear();
        self.publish();
        self.trigger = None;
        self.unmask_fd = None;
        self.err_fd = None;
        self.msix.clear();
    }

    /// Device and server counters, and the CSR census per BAR0 block, as JSON.
    pub fn stats_json(&self) -> serde_json::Value {
        serde_json::json!({
            "server": self.stats.to_json(),
            "device": self.dev.counters().to_json(),
            "csr_census": serde_json::to_value(self.dev.csr_census()).unwrap_or_default(),
            "rcv_array_log": self.dev.rcv_array_log(),
        })
    }
}

/// errno values (Linux), without a libc dependency in the model.
pub mod libc_errno {
    /// Bad file descriptor.
    pub const EBADF: i32 = 9;
    /// Bad address.
    pub const EFAULT: i32 = 14;
    /// Invalid argument.
    pub const EINVAL: i32 = 22;
    /// Argument list / message too long.
    pub const E2BIG: i32 = 7;
    /// Function not implemented (unknown command).
    pub const ENOSYS: i32 = 38;
    /// Operation not supported.
    pub const ENOTSUP: i32 = 95;
}

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
    use hfi_abi::dc;

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
