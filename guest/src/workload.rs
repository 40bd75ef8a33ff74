//! The demo workload in the guest: the same workload as `hfi-sim demo`
//! ([`driver::endpoint::demo`]: buffer reuse under each caching policy, a buffer freed with
//! `munmap` while its transfer is in flight) on a [`GuestNode`] in real time, with its rows in
//! the guest's terms; and the cost probes (guest MMIO, TID_UPDATE miss vs cache hit). Every
//! completed payload is compared byte for byte with `hfi_abi::psm::pattern`.

use std::time::Instant;

use driver::endpoint::demo::{self as demo, DemoConfig, DemoPacing, Tally};
use driver::endpoint::TeardownReport;
use driver::hw::MmioRcvArray;
use driver::tid::FdBinding;
use driver::transport::Transport;
use driver::{HfiFd, Policy};
use mmu::PinDma;
use serde::Serialize;

use crate::node::{GuestConfig, GuestError, GuestNode};

/// The demo's pacing in real time: a minute per receive loop and for the freed message's
/// first two windows (polled back to back), up to 2 s for userfaultfd to report the munmap.
pub const PACING: DemoPacing = DemoPacing {
    run_budget_ns: 60_000_000_000,
    windows_budget_ns: 60_000_000_000,
    pause_ns: None,
    settle_rounds: 0,
    notice_ms: 2_000,
};

/// One run's result.
#[derive(Clone, Debug, Default, Serialize)]
pub struct GuestRow {
    /// Policy.
    pub policy: String,
    /// Workload name.
    pub workload: String,
    /// Messages completed.
    pub messages: u64,
    /// Bytes completed.
    pub bytes: u64,
    /// Wall time in the guest (µs).
    pub elapsed_us: f64,
    /// TID_UPDATE ioctls.
    pub tid_updates: u64,
    /// TID_FREE ioctls.
    pub tid_frees: u64,
    /// TIDs found in the cache.
    pub hits: u64,
    /// TIDs registered.
    pub misses: u64,
    /// Invalidations the user library processed.
    pub invalidations: u64,
    /// Invalidations userfaultfd delivered to the driver's notifier callback.
    pub notifier_calls: u64,
    /// Peak pinned pages.
    pub pinned_peak: i64,
    /// Expected packets with TID errors.
    pub tid_errors: u64,
    /// Receive waits ended by an interrupt.
    pub irq_wakeups: u64,
    /// IOMMU maps of user pages.
    pub iommu_maps: u64,
    /// IOMMU unmaps of user pages.
    pub iommu_unmaps: u64,
    /// Failed messages.
    pub failed: Vec<String>,
    /// Every completed payload matched (None: nothing compared).
    pub data_ok: Option<bool>,
    /// Left after teardown.
    pub leftovers: TeardownReport,
}

impl GuestRow {
    /// The checks a row must pass: data verified, teardown clean, and for buffer reuse no
    /// failures.
    pub fn passed(&self) -> bool {
        let clean = self.leftovers.is_clean();
        if self.workload == "free-in-flight" {
            clean
        } else {
            clean && self.failed.is_empty() && self.data_ok == Some(true)
        }
    }
}

#[allow(clippy::disallowed_methods)] // the guest measures real time
fn now() -> Instant {
    Instant::now()
}

fn finish(node: &mut GuestNode, t: Tally, row: &mut GuestRow) -> Result<(), GuestError> {
    row.elapsed_us = node.now_ns().saturating_sub(t.start_ns) as f64 / 1e3;
    row.messages = t.messages;
    row.bytes = t.bytes;
    row.failed = t.failed;
    row.data_ok = t.data_ok;
    let s = node.rx.cache.stats();
    row.tid_updates = s.tid_update_calls;
    row.tid_frees = s.tid_free_calls;
    row.hits = s.hits;
    row.misses = s.misses;
    row.invalidations = s.invalidations_processed;
    row.tid_errors = node.rx.stats.tid_errors;
    row.pinned_peak = node.proc.pinned_peak;
    row.irq_wakeups = node.irq_wakeups;
    node.close()?;
    row.notifier_calls = node.proc.mem.stats.invalidations;
    row.iommu_maps = node.proc.mem.stats.iommu_maps;
    row.iommu_unmaps = node.proc.mem.stats.iommu_unmaps;
    row.leftovers = node.teardown_report();
    Ok(())
}

/// Buffer reuse: `repeats` messages of each size into `buffers` buffers, round-robin.
/// With `intr`, the receive context raises RcvAvail interrupts (INTx through vfio-pci's
/// eventfd) and the receive loop sleeps on them.
pub fn reuse(
    bdf: &str,
    policy: Policy,
    w: &DemoConfig,
    name: &str,
    intr: bool,
) -> Result<GuestRow, GuestError> {
    let mut cfg = GuestConfig::new(policy);
    if intr {
        // hfi1's defaults moderate by 16 entries and a timeout; a rendezvous window ends in
        // one header, so interrupt on every RHQ entry (with a timeout as a backstop).
        cfg.ctxt.intr = true;
        cfg.ctxt.intr_count = 1;
        cfg.ctxt.intr_timeout = 10;
    }
    let mut node = GuestNode::open(bdf, &cfg)?;
    let t = demo::reuse(&mut node.ep, w, &PACING)?;
    let mut row =
        GuestRow { policy: policy.name().into(), workload: name.into(), ..Default::default() };
    finish(&mut node, t, &mut row)?;
    Ok(row)
}

/// A 2 MiB message whose buffer the application munmaps after two windows landed.
pub fn free_in_flight(bdf: &str, policy: Policy, w: &DemoConfig) -> Result<GuestRow, GuestError> {
    let mut node = GuestNode::open(bdf, &GuestConfig::new(policy))?;
    let t = demo::free_in_flight(&mut node.ep, w, &PACING)?;
    let mut row = GuestRow {
        policy: policy.name().into(),
        workload: "free-in-flight".into(),
        ..Default::default()
    };
    finish(&mut node, t, &mut row)?;
    Ok(row)
}

/// Measured costs in the guest.
#[derive(Clone, Debug, Default, Serialize)]
pub struct GuestCosts {
    /// Mean guest MMIO read (µs; a full round trip to the server).
    pub mmio_read_us: f64,
    /// Mean guest MMIO write (µs; posted by QEMU).
    pub mmio_write_us: f64,
    /// Pages per TID_UPDATE probe.
    pub update_pages: u64,
    /// Mean TID_UPDATE of a fresh buffer (pin + VFIO map + RcvArray programming), µs.
    pub tid_update_us: f64,
    /// Mean TID_FREE of it (clear + VFIO unmap + unpin), µs.
    pub tid_free_us: f64,
    /// Mean cache acquire + release that hits, µs.
    pub cache_hit_us: f64,
    /// Mean cache acquire + release that misses (TID_UPDATE inside), µs.
    pub cache_miss_us: f64,
    /// VFIO maps made by the probe.
    pub iommu_maps: u64,
    /// BAR0 is mmap'ed (MMIO by loads/stores rather than pread/pwrite).
    pub bar_mapped: bool,
}

/// Measures guest MMIO and TID registration costs on a fresh node.
pub fn measure(bdf: &str, rounds: u32) -> Result<GuestCosts, GuestError> {
    let rounds = rounds.max(1);
    let mut guest = GuestNode::open(bdf, &GuestConfig::new(Policy::V2023))?;
    let node = &mut guest.ep;
    let mut c = GuestCosts { bar_mapped: node.hfi.transport().bar_mapped(), ..Default::default() };
    let t = now();
    for _ in 0..rounds {
        node.hfi
            .transport()
            .read64(hfi_abi::cce::CCE_REVISION)
            .map_err(driver::hw::HwError::from)?;
    }
    c.mmio_read_us = t.elapsed().as_secs_f64() * 1e6 / f64::from(rounds);
    // Writes: an INVALID entry into the context's last expected RcvArray slot (unused here).
    let l = node.rx.ctx.layout;
    let slot =
        hfi_abi::bar0::RCV_ARRAY.base + u64::from(l.expected_base + l.expected_count - 1) * 8;
    let t = now();
    for _ in 0..rounds {
        node.hfi.transport().write64(slot, 0).map_err(driver::hw::HwError::from)?;
    }
    c.mmio_write_us = t.elapsed().as_secs_f64() * 1e6 / f64::from(rounds);

    let len = 256u64 << 10;
    c.update_pages = len / 4096;
    let (mut upd, mut free) = (0.0, 0.0);
    let mut wc = node.rx.ctx.wc;
    for _ in 0..rounds.min(16) {
        let va = node.proc.alloc(len)?;
        let mut hw = MmioRcvArray::new(node.hfi.transport(), &mut wc);
        let mut b = FdBinding { ctx: &mut node.tid, fd: 0, hw: &mut hw, mm: &mut node.proc.mem };
        let t = now();
        let r = b.tid_update(va, len as u32);
        upd += t.elapsed().as_secs_f64();
        if let Ok(u) = r {
            let t = now();
            let _ = b.tid_free(&u.tidlist);
            free += t.elapsed().as_secs_f64();
        }
        node.proc.free(va)?;
        node.deliver_reported(0);
    }
    let n = f64::from(rounds.min(16));
    c.tid_update_us = upd * 1e6 / n;
    c.tid_free_us = free * 1e6 / n;

    let va = node.proc.alloc(len)?;
    let (mut hit, mut miss, mut nh, mut nm) = (0.0, 0.0, 0u32, 0u32);
    for i in 0..rounds.min(16) {
        let mut hw = MmioRcvArray::new(node.hfi.transport(), &mut wc);
        let mut b = FdBinding { ctx: &mut node.tid, fd: 0, hw: &mut hw, mm: &mut node.proc.mem };
        let t = now();
        let a = node.rx.cache.acquire(&mut b, va, len as u32);
        if let Ok(a) = &a {
            let _ = node.rx.cache.release(&mut b, a);
        }
        let dt = t.elapsed().as_secs_f64();
        if i == 0 {
            miss += dt;
            nm += 1;
        } else {
            hit += dt;
            nh += 1;
        }
    }
    node.rx.ctx.wc = wc;
    c.cache_miss_us = miss * 1e6 / f64::from(nm.max(1));
    c.cache_hit_us = hit * 1e6 / f64::from(nh.max(1));
    c.iommu_maps = node.proc.mem.stats.iommu_maps;
    node.close()?;
    let _ = node.proc.mem.pinned_vm();
    Ok(c)
}
