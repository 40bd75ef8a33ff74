//! [`GuestNode`]: one receiving endpoint in a real process: the HFI over VFIO, one receive
//! context, the kernel-side TID state, the receiver with its TID cache, and the process.
//! The same driver calls as `scenarios::node::Node`; only the transport and the memory differ.

use driver::endpoint::{open_endpoint, EndpointConfig, TeardownReport};
use driver::hw::{CtxtConfig, Hfi, HwError, MmioRcvArray};
use driver::recv::{Completion, Env, Receiver, RecvError, RemoteAddr};
use driver::tid::TidContext;
use driver::transport::linux_vfio::LinuxVfioTransport;
use driver::transport::Transport;
use driver::user::RndvConfig;
use driver::Policy;
use mmu::linux::LinuxMemory;
use mmu::PinDma;

use crate::process::RealProcess;

/// Coherent DMA memory IOVAs (RHQ, eager buffers): the same window as the other transports.
pub const DMA_BASE: u64 = 0x10_0000;
/// End of the coherent window.
pub const DMA_END: u64 = 128 << 20;
/// The receive context used.
pub const RX_CTXT: u32 = 1;

/// What a guest node is built with.
#[derive(Clone, Debug)]
pub struct GuestConfig {
    /// Driver caching policy.
    pub policy: Policy,
    /// Receive context configuration.
    pub ctxt: CtxtConfig,
    /// Rendezvous configuration.
    pub rndv: RndvConfig,
    /// hfi1 `cache_size` (MiB).
    pub cache_size_mb: u64,
    /// The remote peer's LID and ours (the served model's defaults: 2 and 1).
    pub lids: (u16, u16),
}

impl GuestConfig {
    /// Defaults for `policy`, matching `scenarios::NodeConfig::default()`.
    pub fn new(policy: Policy) -> Self {
        Self {
            policy,
            ctxt: CtxtConfig::default(),
            rndv: RndvConfig::default(),
            cache_size_mb: 256,
            lids: (2, 1),
        }
    }
}

/// Why a guest node failed.
#[derive(Debug, thiserror::Error)]
pub enum GuestError {
    /// Opening the device through VFIO failed.
    #[error("VFIO open of {bdf} failed")]
    Open {
        /// The device.
        bdf: String,
        /// Why.
        #[source]
        source: driver::transport::TransportError,
    },
    /// The memory backend could not start (pagemap, userfaultfd).
    #[error("Memory backend setup failed")]
    Memory(#[source] std::io::Error),
    /// Bring-up or a hardware access failed.
    #[error("Driver hardware layer failed")]
    Hw(#[from] HwError),
    /// The receiver failed.
    #[error("Receiver failed")]
    Recv(#[from] RecvError),
    /// A buffer operation failed.
    #[error("Buffer operation failed")]
    Buffer(#[from] crate::process::BufferError),
}

/// One endpoint in a real process.
#[derive(Debug)]
pub struct GuestNode {
    /// The device.
    pub hfi: Hfi<LinuxVfioTransport>,
    /// Kernel-side TID state.
    pub tid: TidContext,
    /// The receiver (user library).
    pub rx: Receiver,
    /// The process.
    pub proc: RealProcess,
    /// Waits ended by an interrupt.
    pub irq_wakeups: u64,
}

impl GuestNode {
    /// Opens `bdf` through VFIO, probes the HFI and brings up the receive context.
    pub fn open(bdf: &str, cfg: &GuestConfig) -> Result<Self, GuestError> {
        let t = LinuxVfioTransport::open(bdf, DMA_BASE, DMA_END)
            .map_err(|source| GuestError::Open { bdf: bdf.into(), source })?;
        let mem = LinuxMemory::new(t.container()).map_err(GuestError::Memory)?;
        let mut hfi = Hfi::probe(t)?;
        let ep = EndpointConfig {
            ctxt: RX_CTXT,
            ctxt_cfg: cfg.ctxt.clone(),
            policy: cfg.policy,
            cache_size_mb: cfg.cache_size_mb,
            rndv: cfg.rndv,
            remote: RemoteAddr { ctxt: 0, lid: cfg.lids.0, own_lid: cfg.lids.1 },
            cache_entries: None,
            cache_eviction: driver::user::Eviction::Lru,
        };
        let (tid, rx) = open_endpoint(&mut hfi, &ep)?;
        Ok(Self { hfi, tid, rx, proc: RealProcess::new(mem), irq_wakeups: 0 })
    }

    /// Delivers the invalidations userfaultfd reported (waiting up to `wait_ms` for one) to
    /// the driver's notifier callback; returns how many.
    pub fn deliver_invalidations(&mut self, wait_ms: u64) -> usize {
        let invs = self.proc.mem.take_invalidations(wait_ms);
        let mut wc = self.rx.ctx.wc;
        for inv in &invs {
            let mut hw = MmioRcvArray::new(self.hfi.transport(), &mut wc);
            self.tid.invalidate(&mut hw, &mut self.proc.mem, inv);
        }
        self.rx.ctx.wc = wc;
        invs.len()
    }

    /// Posts a receive into `[va, va + len)` and asks the remote to send message `msg_id`.
    pub fn request(&mut self, msg_id: u32, va: u64, len: u32, seed: u32) -> Result<(), GuestError> {
        let mut env = Env { hfi: &mut self.hfi, tid: &mut self.tid, fd: 0, proc: &mut self.proc };
        self.rx.request(&mut env, msg_id, va, len, seed)?;
        Ok(())
    }

    /// One round of progress (invalidations first, as the notifier would have run already).
    pub fn progress(&mut self) -> Result<Vec<Completion>, GuestError> {
        self.deliver_invalidations(0);
        let mut env = Env { hfi: &mut self.hfi, tid: &mut self.tid, fd: 0, proc: &mut self.proc };
        let done = self.rx.progress(&mut env)?;
        self.proc.sample();
        Ok(done)
    }

    /// Runs until every posted receive ended or `budget_ms` of wall time passed.
    pub fn run(&mut self, budget_ms: u64) -> Result<Vec<Completion>, GuestError> {
        let end = self.hfi.transport().now_ns() + budget_ms * 1_000_000;
        let mut out = Vec::new();
        // Interrupt-driven: sleep until RcvAvail (a 10 ms recovery poll); polling: 20 µs.
        let step = if self.rx.ctx.cfg.intr { 10_000_000 } else { 20_000 };
        while self.rx.pending() > 0 && self.hfi.transport().now_ns() < end {
            let done = self.progress()?;
            if done.is_empty() {
                let v = self.hfi.transport().wait_irq(step).map_err(HwError::from)?;
                self.irq_wakeups += v.len() as u64;
            }
            out.extend(done);
        }
        Ok(out)
    }

    /// Tears down: the cache frees its TIDs, the fd closes, the context is disabled.
    pub fn close(&mut self) -> Result<(), GuestError> {
        self.deliver_invalidations(0);
        self.rx.shutdown(&mut self.hfi, &mut self.tid, 0, &mut self.proc.mem)?;
        Ok(())
    }

    /// What is left after [`GuestNode::close`] (all zero when clean).
    pub fn leftovers(&mut self) -> TeardownReport {
        let valid_entries = self.hfi.valid_entries(&self.rx.ctx);
        TeardownReport {
            pins: self.proc.mem.total_pins(),
            pinned_vm: self.proc.mem.pinned_vm(),
            used_tid_slots: self.tid.groups().used_entries() as u64,
            valid_entries,
            dma_maps: self.proc.mem.live_maps() as u64,
        }
    }
}
