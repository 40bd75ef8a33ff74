//! The demo workload in the guest (the same shape as `hfi-sim demo`): buffer reuse under each
//! caching policy, a buffer freed with `munmap` while its transfer is in flight, and the cost
//! probes (guest MMIO, TID_UPDATE miss vs cache hit). Every completed payload is compared
//! byte for byte with `hfi_abi::psm::pattern`.

use std::time::Instant;

use driver::hw::MmioRcvArray;
use driver::tid::FdBinding;
use driver::transport::Transport;
use driver::{HfiFd, Policy};
use mmu::PinDma;
use serde::Serialize;

use driver::endpoint::TeardownReport;

use crate::node::{GuestConfig, GuestError, GuestNode};

/// Workload parameters.
#[derive(Clone, Debug, Serialize)]
pub struct GuestWorkload {
    /// Message sizes (bytes), each received `repeats` times.
    pub sizes: Vec<u64>,
    /// Messages per size.
    pub repeats: u32,
    /// Buffers reused round-robin (= messages in flight).
    pub buffers: u32,
    /// Payload seed.
    pub seed: u64,
}

impl Default for GuestWorkload {
    fn default() -> Self {
        Self { sizes: vec![64 << 10, 256 << 10, 1 << 20], repeats: 8, buffers: 1, seed: 1 }
    }
}

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

fn finish(node: &mut GuestNode, row: &mut GuestRow, t0: Instant) -> Result<(), GuestError> {
    row.elapsed_us = t0.elapsed().as_secs_f64() * 1e6;
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
    row.leftovers = node.leftovers();
    Ok(())
}

/// Buffer reuse: `repeats` messages of each size into `buffers` buffers, round-robin.
/// With `intr`, the receive context raises RcvAvail interrupts (INTx through vfio-pci's
/// eventfd) and the receive loop sleeps on them.
pub fn reuse(
    bdf: &str,
    policy: Policy,
    w: &GuestWorkload,
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
    let max = w.sizes.iter().copied().max().unwrap_or(1 << 20);
    let bufs: Vec<u64> =
        (0..w.buffers.max(1)).map(|_| node.proc.alloc(max)).collect::<Result<_, _>>()?;
    let mut row =
        GuestRow { policy: policy.name().into(), workload: name.into(), ..Default::default() };
    let t0 = now();
    let mut msg = 0u32;
    let nbuf = bufs.len() as u32;
    for &size in &w.sizes {
        for batch in 0..w.repeats.div_ceil(nbuf) {
            let mut sent = Vec::new();
            for (b, &va) in bufs.iter().enumerate() {
                if batch * nbuf + b as u32 >= w.repeats {
                    break;
                }
                node.request(msg, va, size as u32, w.seed as u32)?;
                sent.push((msg, va));
                msg += 1;
            }
            let done = node.run(60_000)?;
            for (id, va) in sent {
                match done.iter().find(|c| c.msg_id == id) {
                    Some(c) if c.ok => {
                        row.messages += 1;
                        row.bytes += size;
                        let want = hfi_abi::psm::pattern(w.seed as u32, id, size as usize);
                        let same = node.proc.read(va, size as usize).as_deref() == Some(&want[..]);
                        row.data_ok = Some(row.data_ok.unwrap_or(true) && same);
                    }
                    Some(c) => row.failed.push(format!("msg {id}: {}", c.reason)),
                    None => row.failed.push(format!("msg {id}: did not complete")),
                }
            }
        }
    }
    finish(&mut node, &mut row, t0)?;
    Ok(row)
}

/// A 2 MiB message whose buffer the application munmaps after two windows landed.
pub fn free_in_flight(
    bdf: &str,
    policy: Policy,
    w: &GuestWorkload,
) -> Result<GuestRow, GuestError> {
    let mut node = GuestNode::open(bdf, &GuestConfig::new(policy))?;
    let len = 2u64 << 20;
    let va = node.proc.alloc(len)?;
    let mut row = GuestRow {
        policy: policy.name().into(),
        workload: "free-in-flight".into(),
        ..Default::default()
    };
    let t0 = now();
    node.request(7, va, len as u32, w.seed as u32)?;
    let mut done = Vec::new();
    let deadline = node.hfi.transport().now_ns() + 60_000_000_000;
    while node.rx.stats.windows < 2
        && node.rx.pending() > 0
        && node.hfi.transport().now_ns() < deadline
    {
        done.extend(node.progress()?);
    }
    // The application frees the buffer; userfaultfd reports the unmap to the driver.
    node.proc.free(va)?;
    let delivered = node.deliver_invalidations(if policy == Policy::NoCache { 0 } else { 2_000 });
    if delivered == 0 && policy != Policy::NoCache {
        row.failed.push("no invalidation arrived for the munmap".into());
    }
    done.extend(node.run(60_000)?);
    match done.iter().find(|c| c.msg_id == 7) {
        Some(c) if c.ok => {
            row.messages = 1;
            row.bytes = c.bytes;
            row.failed.push("completed into pages the application had freed".into());
        }
        Some(c) => row.failed.push(c.reason.clone()),
        None => row.failed.push("did not complete".into()),
    }
    finish(&mut node, &mut row, t0)?;
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
    let mut node = GuestNode::open(bdf, &GuestConfig::new(Policy::V2023))?;
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
        node.deliver_invalidations(0);
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
