//! Opening one receiving endpoint as a process does: the receive context (hfi1's
//! `assign_ctxt`), the fd's kernel-side TID state with its CTXT_INFO, and the user library's
//! TID cache and receiver on top. Every transport's node (in process, socket, guest) opens its
//! endpoint here; [`Receiver::shutdown`] closes it.

use crate::hw::{CtxtConfig, Hfi, HwError};
use crate::recv::{Receiver, RemoteAddr};
use crate::tid::{TidConfig, TidContext};
use crate::transport::Transport;
use crate::user::{Eviction, RndvConfig, TidCache};
use crate::{CtxtInfo, Policy};

/// What an endpoint is opened with.
#[derive(Clone, Debug)]
pub struct EndpointConfig {
    /// Hardware receive context.
    pub ctxt: u32,
    /// Its configuration.
    pub ctxt_cfg: CtxtConfig,
    /// Kernel-side caching policy.
    pub policy: Policy,
    /// hfi1 `cache_size` (MiB).
    pub cache_size_mb: u64,
    /// Rendezvous configuration of the receiver.
    pub rndv: RndvConfig,
    /// The remote sender.
    pub remote: RemoteAddr,
    /// User-library cache size in TIDs (`None`: the fd's TID limit).
    pub cache_entries: Option<u32>,
    /// User-library eviction order.
    pub cache_eviction: Eviction,
}

/// Opens the context and returns its kernel-side TID state (one fd, subcontext 0) and the
/// receiver.
pub fn open_endpoint<T: Transport>(
    hfi: &mut Hfi<T>,
    cfg: &EndpointConfig,
) -> Result<(TidContext, Receiver), HwError> {
    let ctx = hfi.open_context(cfg.ctxt, cfg.ctxt_cfg.clone())?;
    let base_info = CtxtInfo {
        runtime_flags: 0,
        rcvtids: ctx.layout.egrtop + ctx.layout.expected_count,
        egrtids: ctx.egr_count,
        rcvhdrq_cnt: cfg.ctxt_cfg.rhq_entries,
        rcvhdrq_entsize: cfg.ctxt_cfg.ent_dws * 4,
        rcvegr_size: cfg.ctxt_cfg.egr_buf_size,
        ctxt: cfg.ctxt,
        subctxt: 0,
        tid_limit: 0,
    };
    let mut tcfg = TidConfig::new(cfg.policy);
    tcfg.cache_size_mb = cfg.cache_size_mb;
    let (base, count) = (ctx.layout.expected_base, ctx.layout.expected_count);
    let tid = TidContext::new(cfg.ctxt, base, count, 1, tcfg, base_info);
    let mut info = tid.ctxt_info(0);
    if let Some(n) = cfg.cache_entries {
        info.tid_limit = info.tid_limit.min(n);
    }
    let mut cache = TidCache::new(info);
    cache.set_eviction(cfg.cache_eviction);
    let rx = Receiver::new(ctx, cache, cfg.rndv, 0, cfg.remote);
    Ok((tid, rx))
}

/// Resources left after an endpoint's teardown; all zero when clean.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct TeardownReport {
    /// Page pins.
    pub pins: u64,
    /// `pinned_vm` (pages).
    pub pinned_vm: i64,
    /// RcvArray slots the TID group allocator still holds.
    pub used_tid_slots: u64,
    /// Valid RcvArray entries of the context, read back from the device.
    pub valid_entries: u64,
    /// DMA mappings (IOMMU maps) still live.
    pub dma_maps: u64,
}

impl TeardownReport {
    /// True when nothing is left.
    pub fn is_clean(&self) -> bool {
        *self == TeardownReport::default()
    }
}
