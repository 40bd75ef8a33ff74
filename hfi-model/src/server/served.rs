//! The served device: the model device, its DMA memory (the client's DMA_MAP regions), the
//! remote peer, the configuration space and the interrupt line (INTx or MSI-X eventfds). The
//! model thread ([`super::model`]) owns one and settles it after every request.

use std::fs::File;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use vm_memory::{FileOffset, GuestAddress, GuestMemoryAtomic, GuestMemoryMmap, GuestRegionMmap};

use super::msix::MsixVectors;
use super::pci::ConfigSpace;
use super::protocol::{irq_flags, libc_errno, ERR_IRQ_INDEX, MSIX_IRQ_INDEX};
use super::stats::ServerStats;
use crate::link::remote::RemotePeer;
use crate::{DeviceConfig, HfiDevice, Peer, PeerConfig};

/// DMA memory of the served device: the client's DMA_MAP regions.
pub type DmaMem = GuestMemoryAtomic<GuestMemoryMmap>;

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
