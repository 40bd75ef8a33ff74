//! One receiving endpoint of the simulated world: the driver's generic
//! [`Endpoint`] (HFI, receive context, kernel-side TID state, the
//! user library's receiver and TID cache) for the simulated [`Process`] whose buffers receive
//! the data, over the in-process transport (the world: device + remote sender) or the
//! vfio-user socket. [`Node`] only chooses those, and adds the world's hooks ([`NodeHooks`]:
//! host-cost ledger, trace) and, in process, the DMA oracle's handles.

use std::sync::Arc;

use std::cell::RefCell;
use std::ops::{Deref, DerefMut};
use std::rc::Rc;

use driver::endpoint::{Endpoint, EndpointConfig, EndpointError, EndpointHooks, Pacing};
use driver::hw::CtxtConfig;
use driver::recv::{Completion, Receiver, RecvError, RemoteAddr};
use driver::transport::Transport;
use driver::user::RndvConfig;
use driver::Policy;
use hfi_model::{Dest, DeviceConfig, PeerConfig};
use mmu::{Contiguity, SharedFramePool, Va};
use serde::{Deserialize, Serialize};

use crate::world::dma_watch::{DmaWatch, DmaWatchStats, Verdict};
use crate::world::host_costs::{HostCosts, HostLedger, HostWork, SharedLedger};
use crate::world::inproc::InProcTransport;
use crate::world::process::{MemOp, Process, ProcessError};
use crate::world::trace::TraceLog;
use crate::world::{World, WorldError};

/// Host memory layout: DMA-coherent driver memory below `PROCESS_BASE`, process frames above.
pub const DMA_BASE: u64 = 0x10_0000;
/// First byte of the process frame pool.
pub const PROCESS_BASE: u64 = 128 << 20;

/// Everything configurable about a node.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// Driver caching policy.
    pub policy: Policy,
    /// Device configuration.
    pub device: DeviceConfig,
    /// Link peer (remote sender) configuration.
    pub peer: PeerConfig,
    /// Receive context configuration.
    pub ctxt: CtxtConfig,
    /// Rendezvous configuration.
    pub rndv: RndvConfig,
    /// Host cost table.
    pub host: HostCosts,
    /// Host memory in MiB (process frames get everything above 128 MiB).
    pub mem_mib: u64,
    /// RLIMIT_MEMLOCK in bytes (`None` = unlimited).
    pub memlock: Option<u64>,
    /// hfi1 `cache_size` module parameter (MiB).
    pub cache_size_mb: u64,
    /// User-library TID cache size in TIDs (`None` = PSM's: the fd's `tid_limit`; a value
    /// above it is capped there).
    pub tid_cache_entries: Option<u32>,
    /// User-library TID cache eviction order (PSM: LRU).
    pub tid_cache_eviction: driver::user::Eviction,
    /// Record a trace (DMA writes, RcvArray stores, invalidations, faults); in process only.
    #[serde(skip)]
    pub trace: bool,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            policy: Policy::V2023,
            device: DeviceConfig { num_contexts: 8, rcv_array_cnt: 16384, ..Default::default() },
            peer: PeerConfig::default(),
            ctxt: CtxtConfig::default(),
            rndv: RndvConfig::default(),
            host: HostCosts::default(),
            mem_mib: 1024,
            memlock: None,
            cache_size_mb: 256,
            tid_cache_entries: None,
            tid_cache_eviction: driver::user::Eviction::Lru,
            trace: false,
        }
    }
}

/// Why a node failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// Building the world failed.
    #[error("World setup failed")]
    World(#[from] WorldError),
    /// Bring-up or receive failed.
    #[error("Driver hardware layer failed")]
    Hw(#[from] driver::hw::HwError),
    /// The receiver failed.
    #[error("Receiver failed")]
    Recv(#[from] RecvError),
    /// Process memory failed.
    #[error("Process memory failed")]
    Process(#[from] ProcessError),
    /// The frame pool could not be built.
    #[error("Frame pool setup failed: {0}")]
    Frames(String),
    /// Unmapping failed.
    #[error("munmap failed: {0}")]
    Unmap(String),
}

pub use driver::endpoint::TeardownReport;

impl From<EndpointError> for NodeError {
    fn from(e: EndpointError) -> Self {
        match e {
            EndpointError::Hw(e) => NodeError::Hw(e),
            EndpointError::Recv(e) => NodeError::Recv(e),
        }
    }
}

/// The receive context used by nodes.
pub const RX_CTXT: u32 = 1;

/// The receive loop's sleeps on the model's clock: a 2 µs poll step, a 100 µs recovery poll
/// when interrupt-driven.
pub const PACING: Pacing = Pacing { poll_ns: 2_000, irq_ns: 100_000 };

/// The world's hooks around the endpoint's driver calls: host costs on the ledger (notifier
/// callbacks, TID_FREE ioctls, cache lookups, RHF polls) and the trace of invalidations.
#[derive(Debug)]
pub struct NodeHooks {
    /// Host time ledger.
    pub ledger: SharedLedger,
    /// Trace of invalidations and faults, when tracing.
    pub trace: Option<TraceLog>,
    /// Charge `host.rhf_poll_ns` for every RHQ entry the receiver handles (studies turn it on;
    /// off by default, as before the cost existed).
    pub charge_rhf_polls: bool,
    cache_seen: (u64, u64),
    rhq_seen: u64,
}

impl NodeHooks {
    /// Hooks charging `ledger`, not tracing.
    pub fn new(ledger: SharedLedger) -> Self {
        Self { ledger, trace: None, charge_rhf_polls: false, cache_seen: (0, 0), rhq_seen: 0 }
    }
}

impl EndpointHooks for NodeHooks {
    fn on_invalidation(&mut self, inv: &mmu::Invalidation, now_ns: u64) {
        if let Some(t) = &self.trace {
            let now = now_ns.saturating_mul(1000);
            let args = serde_json::json!({ "start": inv.start.to_string(), "end": inv.end.to_string(), "event": format!("{:?}", inv.event), "seq": inv.seq });
            t.instant("invalidate", format!("MMU notifier {:?}", inv.event), now, 0, args);
        }
        self.ledger.borrow_mut().notifier();
    }

    fn after_progress(&mut self, rx: &Receiver) {
        let s = rx.cache.stats();
        {
            let mut l = self.ledger.borrow_mut();
            for _ in self.cache_seen.0..s.tid_free_calls {
                l.ioctl();
            }
            let lookups = s.acquires.saturating_sub(self.cache_seen.1);
            l.work.cache_lookups += lookups;
            let ns = lookups as f64 * l.costs.cache_lookup_ns;
            l.charge_ns(ns);
            let entries = rx.stats.rhq_entries.saturating_sub(self.rhq_seen);
            if self.charge_rhf_polls && entries > 0 {
                l.rhf_poll(entries);
            }
        }
        self.rhq_seen = rx.stats.rhq_entries;
        self.cache_seen = (s.tid_free_calls, s.acquires);
    }
}

/// The endpoint of a node.
pub type NodeEndpoint<T> = Endpoint<T, Process, NodeHooks>;

/// Applies `op` to `[va, va + len)` with the driver's notifier callbacks delivered between the
/// invalidation and the page-table change; returns how many were delivered.
pub fn apply_mem_op<T: Transport, H: EndpointHooks>(
    ep: &mut Endpoint<T, Process, H>,
    va: Va,
    len: u64,
    op: MemOp,
) -> Result<usize, NodeError> {
    let token = ep.proc.begin_op(va, len, op).map_err(|e| NodeError::Unmap(e.to_string()))?;
    let invs = token.invalidations().to_vec();
    ep.deliver(&invs);
    ep.proc.space.commit(token).map_err(|e| NodeError::Unmap(e.to_string()))?;
    Ok(invs.len())
}

/// One endpoint, over any transport (in process by default). It dereferences to its
/// [`Endpoint`] (`hfi`, `tid`, `rx`, `proc`, `hooks`).
#[derive(Debug)]
pub struct Node<T: Transport = InProcTransport> {
    /// The endpoint.
    pub ep: NodeEndpoint<T>,
    /// Where device DMA into the process pool landed (in process only: the oracle needs the
    /// device model).
    pub dma: Option<Rc<RefCell<DmaWatchStats>>>,
    /// The oracle's explained findings (in process only).
    pub verdicts: Option<Rc<RefCell<Vec<Verdict>>>>,
    /// The oracle's current injection-point label (in process only).
    pub injection: Option<Rc<RefCell<Option<String>>>>,
}

impl<T: Transport> Deref for Node<T> {
    type Target = NodeEndpoint<T>;
    fn deref(&self) -> &Self::Target {
        &self.ep
    }
}

impl<T: Transport> DerefMut for Node<T> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.ep
    }
}

impl Node<InProcTransport> {
    /// Builds and brings up a node in process: a world with host memory, the in-process
    /// transport, and a DMA watcher over the process frame pool.
    pub fn new(cfg: &NodeConfig) -> Result<Node, NodeError> {
        let mem_bytes = (cfg.mem_mib << 20) as usize;
        let world = World::new(
            cfg.device.clone(),
            cfg.peer.clone(),
            cfg.rndv.threshold as usize,
            mem_bytes,
        )?;
        let mem = world.mem.clone();
        let ledger = HostLedger::shared(cfg.host.clone());
        let transport = InProcTransport::new(world, DMA_BASE, PROCESS_BASE, ledger.clone());
        let pool = Self::pool(cfg)?;
        let mut watch = DmaWatch::new(pool.clone(), mmu::OwnerId(1));
        let log = cfg.trace.then(|| TraceLog::new(1));
        watch.trace = log.clone();
        let dma = watch.stats.clone();
        let verdicts = watch.verdicts.clone();
        let injection = watch.injection.clone();
        let mut node = Node::with_transport(transport, mem, pool, ledger, cfg)?;
        node.world().dev.set_dma_observer(Some(Box::new(watch)));
        node.dma = Some(dma);
        node.verdicts = Some(verdicts);
        node.injection = Some(injection);
        if let Some(log) = log {
            node.enable_trace(log);
        }
        node.ep.hfi.transport().block_on_irq = cfg.ctxt.intr;
        Ok(node)
    }

    /// The world.
    pub fn world(&mut self) -> &mut World {
        &mut self.ep.hfi.transport().world
    }

    /// Starts tracing DMA writes, RcvArray stores, invalidations and faults into `log`.
    pub fn enable_trace(&mut self, log: TraceLog) {
        self.ep.hfi.transport().trace = Some(log.clone());
        self.ep.hooks.trace = Some(log);
    }

    /// Progresses until `n` expected packets of `msg_id` have arrived at the device (their DMA
    /// may still be in flight), or the message ended, or `budget_ns` passed.
    pub fn run_until_packets(
        &mut self,
        msg_id: u32,
        n: usize,
        budget_ns: u64,
    ) -> Result<Vec<Completion>, NodeError> {
        let end = self.now_ps().saturating_add(budget_ns.saturating_mul(1000));
        let mut out = Vec::new();
        loop {
            let now = self.world().now();
            let arrived = self
                .world()
                .arrivals
                .get(&msg_id)
                .map_or(0, |v| v.iter().filter(|&&t| t <= now).count());
            if arrived >= n || self.ep.rx.pending() == 0 || self.now_ps() >= end {
                return Ok(out);
            }
            out.extend(self.progress()?);
            self.wait(200)?;
        }
    }

    /// Posts a receive and has the remote peer send `data` as message `msg_id` (in process:
    /// straight into the remote peer, bypassing the device).
    pub fn post(&mut self, msg_id: u32, va: Va, data: Arc<[u8]>) {
        self.ep.rx.post_recv(msg_id, va.0, data.len() as u64);
        let dest = Dest { ctxt: RX_CTXT as u8, subctxt: 0, msg_id };
        self.world().post_send(dest, data);
    }
}

impl<T: Transport> Node<T> {
    /// The process frame pool: host memory from `PROCESS_BASE` to the end.
    pub fn pool(cfg: &NodeConfig) -> Result<SharedFramePool, NodeError> {
        let pool_len = (cfg.mem_mib << 20).saturating_sub(PROCESS_BASE);
        SharedFramePool::new(PROCESS_BASE, pool_len).map_err(|e| NodeError::Frames(e.to_string()))
    }

    /// Brings up a node over `transport`; the process frames are `pool` inside `mem` (the
    /// memory the device DMAs into: host memory in process, the shared arena over a socket).
    pub fn with_transport(
        transport: T,
        mem: crate::world::Mem,
        pool: SharedFramePool,
        ledger: SharedLedger,
        cfg: &NodeConfig,
    ) -> Result<Node<T>, NodeError> {
        let ep = EndpointConfig {
            ctxt: RX_CTXT,
            ctxt_cfg: cfg.ctxt.clone(),
            policy: cfg.policy,
            cache_size_mb: cfg.cache_size_mb,
            rndv: cfg.rndv,
            remote: RemoteAddr { ctxt: 0, lid: cfg.peer.slid, own_lid: cfg.peer.dlid },
            cache_entries: cfg.tid_cache_entries,
            cache_eviction: cfg.tid_cache_eviction,
        };
        let mut proc = Process::new(1, pool, mem, Some(ledger.clone()));
        proc.space.set_rlimit_memlock(cfg.memlock);
        let ep = Endpoint::open(transport, &ep, proc, NodeHooks::new(ledger), PACING)?;
        Ok(Node { ep, dma: None, verdicts: None, injection: None })
    }

    /// Host time ledger.
    pub fn ledger(&self) -> &SharedLedger {
        &self.ep.hooks.ledger
    }

    /// The transport's current time in picoseconds (simulated in process).
    pub fn now_ps(&mut self) -> u64 {
        self.ep.now_ns().saturating_mul(1000)
    }

    /// Allocates a user buffer.
    pub fn alloc(&mut self, len: u64, c: Contiguity) -> Result<Va, NodeError> {
        Ok(self.ep.proc.mmap(len, c)?)
    }

    /// Posts a receive and asks the remote application, through the device, to send
    /// `hfi_abi::psm::pattern(seed, msg_id, len)`.
    pub fn request(&mut self, msg_id: u32, va: Va, len: u32, seed: u32) -> Result<(), NodeError> {
        Ok(self.ep.request(msg_id, va.0, len, seed)?)
    }

    /// One round of receive progress (host costs accrue on the simulated clock).
    pub fn progress(&mut self) -> Result<Vec<Completion>, NodeError> {
        Ok(self.ep.progress()?)
    }

    /// Waits (simulated) for the device: until the next event or `ns`.
    pub fn wait(&mut self, ns: u64) -> Result<(), NodeError> {
        Ok(self.ep.wait(ns)?)
    }

    /// Runs until every posted receive ended or `budget_ns` of simulated time passed.
    pub fn run(&mut self, budget_ns: u64) -> Result<Vec<Completion>, NodeError> {
        Ok(self.ep.run(budget_ns)?)
    }

    /// The application frees `[va, va + len)`: munmap, with the driver's MMU-notifier callback
    /// run between the invalidation and the unmap.
    pub fn munmap(&mut self, va: Va, len: u64) -> Result<(), NodeError> {
        self.mem_op(va, len, MemOp::Munmap)
    }

    /// Applies `op` to `[va, va + len)` with the driver's notifier callbacks delivered between
    /// the invalidation and the page-table change.
    pub fn mem_op(&mut self, va: Va, len: u64, op: MemOp) -> Result<(), NodeError> {
        apply_mem_op(&mut self.ep, va, len, op).map(|_| ())
    }

    /// Delivers invalidations raised by faults inside driver calls (see `Process::after_pin`).
    pub fn deliver_pending(&mut self) {
        self.ep.deliver_reported(0);
    }

    /// Progresses until the receiver has granted a window for `msg_id` (its CTS is sent, no
    /// packet of it has arrived yet), or the message ended, or `budget_ns` passed. Returns the
    /// completions seen meanwhile.
    pub fn run_until_granted(
        &mut self,
        msg_id: u32,
        budget_ns: u64,
    ) -> Result<Vec<Completion>, NodeError> {
        let end = self.now_ps().saturating_add(budget_ns.saturating_mul(1000));
        let mut out = Vec::new();
        while self.ep.rx.window(msg_id).is_none() && self.ep.rx.pending() > 0 && self.now_ps() < end
        {
            out.extend(self.progress()?);
            if self.ep.rx.window(msg_id).is_none() {
                self.wait(500)?;
            }
        }
        Ok(out)
    }

    /// Host work so far.
    pub fn host_work(&self) -> HostWork {
        self.ledger().borrow().work
    }

    /// Tears the endpoint down: the cache frees its TIDs, the fd is closed, the context
    /// disabled.
    pub fn close(&mut self) -> Result<(), NodeError> {
        Ok(self.ep.close()?)
    }
}
