//! One receiving endpoint, as a process opens it and drives it: the receive context (hfi1's
//! `assign_ctxt`), the fd's kernel-side TID state with its CTXT_INFO, the user library's TID
//! cache and receiver on top, and the process whose buffers receive the data.
//!
//! [`Endpoint`] is generic over the transport (in process, vfio-user socket, Linux VFIO in a
//! guest) and the process ([`EndpointProcess`]: simulated memory in process, real memory in a
//! guest); the nodes of `scenarios` and `guest` are thin wrappers that choose those two (and,
//! in process, the world's [`EndpointHooks`]: host-cost ledger and trace). It requests
//! messages, makes receive progress, delivers MMU-notifier invalidations to the driver's
//! callback, runs until the posted receives ended, closes, and reports what teardown left.
//! [`demo`] is the demo workload on it, the same in process and in a guest.

pub mod demo;
mod host;

use mmu::Invalidation;

use crate::hw::{CtxtConfig, Hfi, HwError, MmioRcvArray};
use crate::recv::{Completion, Env, Receiver, RecvError, RemoteAddr};
use crate::tid::{TidConfig, TidContext};
use crate::transport::Transport;
use crate::user::{Eviction, RndvConfig, TidCache};
use crate::{CtxtInfo, Policy};

pub use host::{Delivery, EndpointHooks, EndpointProcess, Held};

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

/// How long the receive loop sleeps between progress rounds that completed nothing: the
/// recovery poll when interrupt-driven, the poll step otherwise. Each node picks the values of
/// its clock (simulated device steps in process, real time in a guest).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pacing {
    /// Polling: the wait between rounds (ns).
    pub poll_ns: u64,
    /// Interrupt-driven: the longest sleep on RcvAvail (ns; a lost interrupt costs latency,
    /// not data).
    pub irq_ns: u64,
}

/// Why an endpoint operation failed.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// Bring-up or a hardware access failed.
    #[error("Driver hardware layer failed")]
    Hw(#[from] HwError),
    /// The receiver failed.
    #[error("Receiver failed")]
    Recv(#[from] RecvError),
}

/// One receiving endpoint over transport `T`, for process `P`, with host hooks `H`.
#[derive(Debug)]
pub struct Endpoint<T: Transport, P, H = ()> {
    /// The device behind the transport.
    pub hfi: Hfi<T>,
    /// Kernel-side TID state of the context.
    pub tid: TidContext,
    /// The receiver (user library).
    pub rx: Receiver,
    /// The receiving process.
    pub proc: P,
    /// What the host adds around the driver calls.
    pub hooks: H,
    /// Sleeps of the receive loop.
    pub pacing: Pacing,
    /// Waits ended by an interrupt.
    pub irq_wakeups: u64,
}

impl<T: Transport, P: EndpointProcess, H: EndpointHooks> Endpoint<T, P, H> {
    /// Probes the HFI behind `transport` and opens the endpoint `cfg` for `proc`.
    pub fn open(
        transport: T,
        cfg: &EndpointConfig,
        proc: P,
        hooks: H,
        pacing: Pacing,
    ) -> Result<Self, HwError> {
        let mut hfi = Hfi::probe(transport)?;
        let (tid, rx) = open_endpoint(&mut hfi, cfg)?;
        Ok(Self { hfi, tid, rx, proc, hooks, pacing, irq_wakeups: 0 })
    }

    /// The transport's current time in nanoseconds (simulated in process).
    pub fn now_ns(&mut self) -> u64 {
        self.hfi.transport().now_ns()
    }

    /// Posts a receive into `[va, va + len)` and asks the remote application, through the
    /// device, to send `hfi_abi::psm::pattern(seed, msg_id, len)`.
    pub fn request(
        &mut self,
        msg_id: u32,
        va: u64,
        len: u32,
        seed: u32,
    ) -> Result<(), EndpointError> {
        let mut env = Env { hfi: &mut self.hfi, tid: &mut self.tid, fd: 0, proc: &mut self.proc };
        self.rx.request(&mut env, msg_id, va, len, seed)?;
        Ok(())
    }

    /// One round of receive progress, with the process's reported invalidations delivered
    /// where [`EndpointProcess::DELIVERY`] puts them, then the hooks' accounting.
    pub fn progress(&mut self) -> Result<Vec<Completion>, EndpointError> {
        if P::DELIVERY == Delivery::BeforeCalls {
            self.deliver_reported(0);
        }
        let mut env = Env { hfi: &mut self.hfi, tid: &mut self.tid, fd: 0, proc: &mut self.proc };
        let done = self.rx.progress(&mut env)?;
        if P::DELIVERY == Delivery::AfterCalls {
            self.deliver_reported(0);
        }
        self.proc.after_progress();
        self.hooks.after_progress(&self.rx);
        Ok(done)
    }

    /// Waits for the device: until an interrupt or `ns` (simulated in process).
    pub fn wait(&mut self, ns: u64) -> Result<(), EndpointError> {
        let vectors = self.hfi.transport().wait_irq(ns).map_err(HwError::from)?;
        self.irq_wakeups += vectors.len() as u64;
        Ok(())
    }

    /// Runs until every posted receive ended or `budget_ns` passed on the transport's clock;
    /// between rounds that completed nothing it sleeps as [`Endpoint::pacing`] says.
    pub fn run(&mut self, budget_ns: u64) -> Result<Vec<Completion>, EndpointError> {
        let end = self.now_ns().saturating_add(budget_ns);
        let step = if self.rx.ctx.cfg.intr { self.pacing.irq_ns } else { self.pacing.poll_ns };
        let mut out = Vec::new();
        while self.rx.pending() > 0 && self.now_ns() < end {
            let done = self.progress()?;
            if done.is_empty() {
                self.wait(step)?;
            }
            out.extend(done);
        }
        Ok(out)
    }

    /// Delivers `invs` to the driver's MMU-notifier callback (each announced to the hooks
    /// first).
    pub fn deliver(&mut self, invs: &[Invalidation]) {
        let mut wc = self.rx.ctx.wc;
        for inv in invs {
            let now_ns = self.hfi.transport().now_ns();
            self.hooks.on_invalidation(inv, now_ns);
            let mut hw = MmioRcvArray::new(self.hfi.transport(), &mut wc);
            self.tid.invalidate(&mut hw, self.proc.pin_dma(), inv);
        }
        self.rx.ctx.wc = wc;
    }

    /// Delivers the invalidations the process reported (waiting up to `wait_ms` for one in a
    /// real process); returns how many.
    pub fn deliver_reported(&mut self, wait_ms: u64) -> usize {
        let invs = self.proc.take_invalidations(wait_ms);
        if !invs.is_empty() {
            self.deliver(&invs);
        }
        invs.len()
    }

    /// Tears the endpoint down: the cache frees its TIDs, the fd is closed, the context
    /// disabled.
    pub fn close(&mut self) -> Result<(), EndpointError> {
        if P::DELIVERY == Delivery::BeforeCalls {
            self.deliver_reported(0);
        }
        self.rx.shutdown(&mut self.hfi, &mut self.tid, 0, self.proc.pin_dma())?;
        Ok(())
    }

    /// What is left after [`Endpoint::close`]: pins, pinned_vm, used TID slots, valid
    /// RcvArray entries (read back through the transport), live DMA maps. All zero when clean.
    pub fn teardown_report(&mut self) -> TeardownReport {
        let valid_entries = self.hfi.valid_entries(&self.rx.ctx);
        let held = self.proc.held();
        TeardownReport {
            pins: held.pins,
            pinned_vm: held.pinned_vm,
            used_tid_slots: self.tid.groups().used_entries() as u64,
            valid_entries,
            dma_maps: held.dma_maps,
        }
    }
}
