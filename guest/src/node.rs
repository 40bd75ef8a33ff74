//! [`GuestNode`]: one receiving endpoint in a real process: the driver's generic
//! [`Endpoint`] over Linux VFIO, for the [`RealProcess`] (real memory, userfaultfd
//! invalidations). The same endpoint as `scenarios::world::node::Node`; only the transport and
//! the memory differ.

use std::ops::{Deref, DerefMut};

use driver::endpoint::{Endpoint, EndpointConfig, Pacing};
use driver::hw::CtxtConfig;
use driver::recv::RemoteAddr;
use driver::transport::linux_vfio::LinuxVfioTransport;
use driver::user::RndvConfig;
use driver::Policy;
use mmu::linux::LinuxMemory;

pub use crate::error::GuestError;
use crate::process::RealProcess;

/// Coherent DMA memory IOVAs (RHQ, eager buffers): the same window as the other transports.
pub const DMA_BASE: u64 = 0x10_0000;
/// End of the coherent window.
pub const DMA_END: u64 = 128 << 20;
/// The receive context used.
pub const RX_CTXT: u32 = 1;
/// The receive loop's sleeps in real time: a 20 µs poll, a 10 ms recovery poll when
/// interrupt-driven.
pub const PACING: Pacing = Pacing { poll_ns: 20_000, irq_ns: 10_000_000 };

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
    /// Defaults for `policy`, matching `scenarios::world::node::NodeConfig::default()`.
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

/// The endpoint of a guest node.
pub type GuestEndpoint = Endpoint<LinuxVfioTransport, RealProcess>;

/// One endpoint in a real process. It dereferences to its [`Endpoint`].
#[derive(Debug)]
pub struct GuestNode {
    /// The endpoint.
    pub ep: GuestEndpoint,
}

impl Deref for GuestNode {
    type Target = GuestEndpoint;
    fn deref(&self) -> &GuestEndpoint {
        &self.ep
    }
}

impl DerefMut for GuestNode {
    fn deref_mut(&mut self) -> &mut GuestEndpoint {
        &mut self.ep
    }
}

impl GuestNode {
    /// Opens `bdf` through VFIO, probes the HFI and brings up the receive context.
    pub fn open(bdf: &str, cfg: &GuestConfig) -> Result<Self, GuestError> {
        let t = LinuxVfioTransport::open(bdf, DMA_BASE, DMA_END)
            .map_err(|source| GuestError::Open { bdf: bdf.into(), source })?;
        let mem = LinuxMemory::new(t.container()).map_err(GuestError::Memory)?;
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
        let ep = Endpoint::open(t, &ep, RealProcess::new(mem), (), PACING)?;
        Ok(Self { ep })
    }

    /// Delivers the invalidations userfaultfd reported (waiting up to `wait_ms` for one) to
    /// the driver's notifier callback; returns how many.
    pub fn deliver_invalidations(&mut self, wait_ms: u64) -> usize {
        self.ep.deliver_reported(wait_ms)
    }
}
