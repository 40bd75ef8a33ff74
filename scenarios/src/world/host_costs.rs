//! Host-side costs on the simulated clock: what the driver and the user library spend on the
//! CPU (syscalls, pinning, DMA mapping, RcvArray WC stores, MMU-notifier callbacks, cache
//! lookups). The runner converts counter deltas into picoseconds and lets the device run for
//! that long before the host acts again. Defaults and sources: `shared/reference/timing-params.md`
//! §1b (listed in docs/studies.md, "Host cost model").

use serde::{Deserialize, Serialize};

/// How device DMA addresses are translated (the IOMMU mode of the host kernel).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IommuMode {
    /// No IOMMU (or passthrough): dma-direct, IOVA = PA.
    #[default]
    Off,
    /// IOMMU, lazy (deferred) invalidation: unmaps go to a flush queue, one IOTLB flush per
    /// `iommu_fq_batch` unmaps.
    Lazy,
    /// IOMMU, strict: every unmap waits for its IOTLB invalidation.
    Strict,
}

impl IommuMode {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            IommuMode::Off => "off",
            IommuMode::Lazy => "lazy",
            IommuMode::Strict => "strict",
        }
    }
}

/// Per-operation host costs in nanoseconds. Sources: docs/studies.md (cost-model table).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HostCosts {
    /// ioctl entry + exit (measured 190 ns).
    pub ioctl_ns: f64,
    /// pin_user_pages fixed cost per call (~0.45 µs).
    pub pin_call_ns: f64,
    /// pin per 4 KiB page (65–80 ns).
    pub pin_page_ns: f64,
    /// unpin per 4 KiB page (20–26 ns).
    pub unpin_page_ns: f64,
    /// pin of one 2 MiB transparent huge page (measured 2.7 µs), charged per 4 KiB part
    /// (`/ 512`) when the buffers are THP-backed.
    pub pin_2m_ns: f64,
    /// unpin of one 2 MiB huge page (measured ≈ 0).
    pub unpin_2m_ns: f64,
    /// dma_map_single without an IOMMU (20–50 ns, EST).
    pub dma_map_ns: f64,
    /// dma_unmap without an IOMMU (dma-direct on a coherent x86 host: nothing to do; EST 0).
    pub dma_unmap_ns: f64,
    /// IOMMU mode: `off`, `lazy` or `strict`.
    pub iommu: IommuMode,
    /// dma_map with an IOMMU: IOVA allocation + page-table writes (0.3–0.6 µs, EST).
    pub iommu_map_ns: f64,
    /// dma_unmap with an IOMMU, without the IOTLB invalidation: page-table clear + IOVA free
    /// (EST).
    pub iommu_unmap_ns: f64,
    /// One IOTLB invalidation, waited for (strict: every unmap, ~1–2 µs EST; lazy: one per
    /// flush-queue batch).
    pub iotlb_inval_ns: f64,
    /// Lazy mode: unmaps per IOTLB flush (the flush queue's 250 entries).
    pub iommu_fq_batch: u32,
    /// One 8-byte WC store to the RcvArray (5–10 ns, EST).
    pub wc_store_ns: f64,
    /// One WC flush / sfence (50–100 ns, EST).
    pub wc_flush_ns: f64,
    /// MMU-notifier invalidate callback (100–300 ns, EST).
    pub notifier_ns: f64,
    /// User-library cache lookup per acquire (0.1–0.3 µs, EST).
    pub cache_lookup_ns: f64,
    /// UC MMIO write (100–300 ns).
    pub mmio_write_ns: f64,
    /// Eager copy-out bandwidth (memcpy from the eager buffer into the user buffer, GB/s;
    /// measured 45–52 GB/s in cache). 0 = free.
    pub copy_gbps: f64,
    /// The application's munmap of a buffer (measured 3.4 µs for 4 KiB without a second
    /// thread), charged when a study invalidates a buffer.
    pub munmap_ns: f64,
    /// Handling one RHQ entry: the poll loop's read of the RHF and header lines the device just
    /// wrote (EST); charged by study workloads (`Node::charge_rhf_polls`).
    pub rhf_poll_ns: f64,
}

impl Default for HostCosts {
    fn default() -> Self {
        Self {
            ioctl_ns: 190.0,
            pin_call_ns: 450.0,
            pin_page_ns: 75.0,
            unpin_page_ns: 22.0,
            pin_2m_ns: 2700.0,
            unpin_2m_ns: 0.0,
            dma_map_ns: 35.0,
            dma_unmap_ns: 0.0,
            iommu: IommuMode::Off,
            iommu_map_ns: 450.0,
            iommu_unmap_ns: 150.0,
            iotlb_inval_ns: 1500.0,
            iommu_fq_batch: 250,
            wc_store_ns: 7.0,
            wc_flush_ns: 75.0,
            notifier_ns: 200.0,
            cache_lookup_ns: 150.0,
            mmio_write_ns: 150.0,
            copy_gbps: 45.0,
            munmap_ns: 3400.0,
            rhf_poll_ns: 100.0,
        }
    }
}

/// Host work done, as counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HostWork {
    /// ioctls (TID_UPDATE, TID_FREE, TID_INVAL_READ, ACK_EVENT).
    pub ioctls: u64,
    /// pin calls.
    pub pin_calls: u64,
    /// 4 KiB pages pinned (on 4 KiB mappings).
    pub pages_pinned: u64,
    /// 4 KiB pages unpinned (on 4 KiB mappings).
    pub pages_unpinned: u64,
    /// 4 KiB parts of 2 MiB huge pages pinned.
    pub thp_pages_pinned: u64,
    /// 4 KiB parts of 2 MiB huge pages unpinned.
    pub thp_pages_unpinned: u64,
    /// DMA maps.
    pub dma_maps: u64,
    /// DMA unmaps.
    pub dma_unmaps: u64,
    /// IOTLB invalidations waited for (strict: one per unmap; lazy: one per batch).
    pub iotlb_invalidations: u64,
    /// RcvArray stores.
    pub wc_stores: u64,
    /// WC flushes.
    pub wc_flushes: u64,
    /// Notifier callbacks that hit a TID.
    pub notifier_calls: u64,
    /// Cache acquires.
    pub cache_lookups: u64,
    /// Other MMIO writes (heads, flows, PIO).
    pub mmio_writes: u64,
    /// Eager payload bytes copied into user buffers.
    pub copy_bytes: u64,
    /// Application munmaps charged (study invalidations).
    pub munmaps: u64,
    /// RHQ entries handled by a charged poll.
    pub rhf_polls: u64,
}

impl HostWork {
    /// Field-wise `self - earlier` (saturating).
    pub fn since(&self, e: &HostWork) -> HostWork {
        HostWork {
            ioctls: self.ioctls.saturating_sub(e.ioctls),
            pin_calls: self.pin_calls.saturating_sub(e.pin_calls),
            pages_pinned: self.pages_pinned.saturating_sub(e.pages_pinned),
            pages_unpinned: self.pages_unpinned.saturating_sub(e.pages_unpinned),
            thp_pages_pinned: self.thp_pages_pinned.saturating_sub(e.thp_pages_pinned),
            thp_pages_unpinned: self.thp_pages_unpinned.saturating_sub(e.thp_pages_unpinned),
            dma_maps: self.dma_maps.saturating_sub(e.dma_maps),
            dma_unmaps: self.dma_unmaps.saturating_sub(e.dma_unmaps),
            iotlb_invalidations: self.iotlb_invalidations.saturating_sub(e.iotlb_invalidations),
            wc_stores: self.wc_stores.saturating_sub(e.wc_stores),
            wc_flushes: self.wc_flushes.saturating_sub(e.wc_flushes),
            notifier_calls: self.notifier_calls.saturating_sub(e.notifier_calls),
            cache_lookups: self.cache_lookups.saturating_sub(e.cache_lookups),
            mmio_writes: self.mmio_writes.saturating_sub(e.mmio_writes),
            copy_bytes: self.copy_bytes.saturating_sub(e.copy_bytes),
            munmaps: self.munmaps.saturating_sub(e.munmaps),
            rhf_polls: self.rhf_polls.saturating_sub(e.rhf_polls),
        }
    }
}

impl HostCosts {
    /// Cost of one DMA map in the configured IOMMU mode.
    pub fn map_ns(&self) -> f64 {
        match self.iommu {
            IommuMode::Off => self.dma_map_ns,
            IommuMode::Lazy | IommuMode::Strict => self.iommu_map_ns,
        }
    }

    /// Cost of one DMA unmap in the configured IOMMU mode, without IOTLB invalidations.
    pub fn unmap_ns(&self) -> f64 {
        match self.iommu {
            IommuMode::Off => self.dma_unmap_ns,
            IommuMode::Lazy | IommuMode::Strict => self.iommu_unmap_ns,
        }
    }

    /// Cost of copying `bytes` at `copy_gbps`.
    pub fn copy_ns(&self, bytes: u64) -> f64 {
        if self.copy_gbps > 0.0 {
            bytes as f64 / self.copy_gbps
        } else {
            0.0
        }
    }

    /// Simulated nanoseconds of `w`.
    pub fn ns(&self, w: &HostWork) -> u64 {
        let t = w.ioctls as f64 * self.ioctl_ns
            + w.pin_calls as f64 * self.pin_call_ns
            + w.pages_pinned as f64 * self.pin_page_ns
            + w.pages_unpinned as f64 * self.unpin_page_ns
            + w.thp_pages_pinned as f64 * self.pin_2m_ns / 512.0
            + w.thp_pages_unpinned as f64 * self.unpin_2m_ns / 512.0
            + w.dma_maps as f64 * self.map_ns()
            + w.dma_unmaps as f64 * self.unmap_ns()
            + w.iotlb_invalidations as f64 * self.iotlb_inval_ns
            + w.wc_stores as f64 * self.wc_store_ns
            + w.wc_flushes as f64 * self.wc_flush_ns
            + w.notifier_calls as f64 * self.notifier_ns
            + w.cache_lookups as f64 * self.cache_lookup_ns
            + w.mmio_writes as f64 * self.mmio_write_ns
            + self.copy_ns(w.copy_bytes)
            + w.munmaps as f64 * self.munmap_ns
            + w.rhf_polls as f64 * self.rhf_poll_ns;
        t.round().max(0.0) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn miss_of_a_128k_window_costs_a_few_microseconds() {
        // timing-params §4: ≈3–4 µs for a 128 KiB miss on 4 KiB pages without an IOMMU.
        let w = HostWork {
            ioctls: 1,
            pin_calls: 1,
            pages_pinned: 32,
            dma_maps: 4,
            wc_stores: 8,
            wc_flushes: 2,
            ..Default::default()
        };
        let ns = HostCosts::default().ns(&w);
        assert!((3000..4000).contains(&ns), "{ns}");
        assert_eq!(w.since(&w), HostWork::default());
    }

    fn ledger(iommu: IommuMode) -> HostLedger {
        HostLedger { costs: HostCosts { iommu, ..Default::default() }, ..Default::default() }
    }

    /// A deterministic mixture of every charged operation.
    fn exercise(l: &mut HostLedger, rounds: u64) {
        for i in 0..rounds {
            l.pin(1 + i % 40);
            l.dma_map();
            l.mmio_write(Some(((i * 7) as u32, hfi_abi::RcvArrayEntry::invalid().raw())));
            let e = hfi_abi::RcvArrayEntry::new(i << 12, hfi_abi::BufSize::SIZE_4K);
            l.mmio_write(Some(((i * 5) as u32, e.raw())));
            l.mmio_write(None);
            l.pio_store();
            l.dma_unmap();
            l.unpin(1 + i % 40);
            l.ioctl();
            l.notifier();
            l.copy(100 * i);
            if i % 9 == 0 {
                l.munmap();
                l.rhf_poll(2);
            }
        }
    }

    #[test]
    fn the_ledger_charges_what_the_cost_table_says_for_its_work() {
        for mode in [IommuMode::Off, IommuMode::Lazy, IommuMode::Strict] {
            for thp in [false, true] {
                let mut l = ledger(mode);
                l.thp = thp;
                exercise(&mut l, 600);
                let from_work = l.costs.ns(&l.work) as f64;
                assert!(
                    (l.total_ns - from_work).abs() < 1.0,
                    "{mode:?}: {} vs {from_work}",
                    l.total_ns
                );
                assert_eq!(l.take_pending_ps(), (l.total_ns * 1000.0).round() as u64);
                assert_eq!(l.take_pending_ps(), 0);
            }
        }
    }

    #[test]
    fn strict_costs_more_than_lazy_which_costs_more_than_none() {
        let total = |mode| {
            let mut l = ledger(mode);
            for _ in 0..1000 {
                l.dma_map();
                l.dma_unmap();
            }
            (l.total_ns, l.work.iotlb_invalidations)
        };
        let (off, off_inv) = total(IommuMode::Off);
        let (lazy, lazy_inv) = total(IommuMode::Lazy);
        let (strict, strict_inv) = total(IommuMode::Strict);
        assert!(off < lazy && lazy < strict, "{off} {lazy} {strict}");
        assert_eq!((off_inv, lazy_inv, strict_inv), (0, 4, 1000));
        // Per pair: 35 ns off; 450 + 150 + 1500/250 ns lazy; 450 + 150 + 1500 ns strict.
        assert!((off - 35_000.0).abs() < 1.0);
        assert!((lazy - 606_000.0).abs() < 1.0);
        assert!((strict - 2_100_000.0).abs() < 1.0);
    }

    #[test]
    fn huge_pages_pin_for_a_fraction_of_the_4k_cost() {
        let mut small = HostLedger::default();
        let mut huge = HostLedger { thp: true, ..Default::default() };
        small.pin(512);
        huge.pin(512);
        // 2 MiB: 190 + 450 + 512 × 75 ns on 4 KiB pages; 190 + 450 + 2700 ns on one THP.
        assert!((small.total_ns - 39_040.0).abs() < 1e-6, "{}", small.total_ns);
        assert!((huge.total_ns - 3_340.0).abs() < 1e-6, "{}", huge.total_ns);
        assert_eq!((huge.work.thp_pages_pinned, huge.work.pages_pinned), (512, 0));
    }

    #[test]
    fn rcvarray_flush_rule() {
        let mut l = HostLedger::default();
        let program = hfi_abi::RcvArrayEntry::new(0x10_0000, hfi_abi::BufSize::SIZE_4K).raw();
        for i in 100..108 {
            l.mmio_write(Some((i, program)));
        }
        // Programming: one flush per four entries (103 and 107).
        assert_eq!((l.work.wc_stores, l.work.wc_flushes), (8, 2));
        // A WC fill (WRITE_ENABLE clear) is never flushed on its own; an invalidation is.
        l.mmio_write(Some((200, hfi_abi::RcvArrayEntry::wc_fill().raw())));
        assert_eq!(l.work.wc_flushes, 2);
        l.mmio_write(Some((201, hfi_abi::RcvArrayEntry::invalid().raw())));
        assert_eq!(l.work.wc_flushes, 3);
    }
}

/// Host time accrued in program order and not yet given to the device. Shared (single thread)
/// by the simulated process (pins, unpins, DMA maps, ioctls) and the in-process transport (MMIO
/// stores); the transport lets the device run for the pending time before the next access.
#[derive(Clone, Debug, Default)]
pub struct HostLedger {
    /// The cost table.
    pub costs: HostCosts,
    /// Work done so far.
    pub work: HostWork,
    /// The process's buffers are backed by 2 MiB transparent huge pages: pins and unpins cost
    /// `pin_2m_ns` / `unpin_2m_ns` per 2 MiB instead of the 4 KiB per-page costs.
    pub thp: bool,
    pending_ns: f64,
    /// Lazy IOMMU: unmaps queued since the last IOTLB flush.
    fq_pending: u32,
    /// Total host time charged.
    pub total_ns: f64,
}

/// The ledger shared between the process and the transport.
pub type SharedLedger = std::rc::Rc<std::cell::RefCell<HostLedger>>;

impl HostLedger {
    /// A shared ledger with these costs.
    pub fn shared(costs: HostCosts) -> SharedLedger {
        std::rc::Rc::new(std::cell::RefCell::new(HostLedger { costs, ..Default::default() }))
    }

    fn add(&mut self, ns: f64) {
        self.pending_ns += ns;
        self.total_ns += ns;
    }

    /// Charges `ns` of other host work.
    pub fn charge_ns(&mut self, ns: f64) {
        self.add(ns);
    }

    /// A TID_UPDATE ioctl pinning `pages` 4 KiB pages (parts of huge pages with `thp`).
    pub fn pin(&mut self, pages: u64) {
        self.work.ioctls += 1;
        self.work.pin_calls += 1;
        let c = &self.costs;
        let per_page = if self.thp { c.pin_2m_ns / 512.0 } else { c.pin_page_ns };
        let ns = c.ioctl_ns + c.pin_call_ns + pages as f64 * per_page;
        if self.thp {
            self.work.thp_pages_pinned += pages;
        } else {
            self.work.pages_pinned += pages;
        }
        self.add(ns);
    }

    /// Unpinning `pages` 4 KiB pages (TID_FREE, an invalidation, close).
    pub fn unpin(&mut self, pages: u64) {
        let ns = if self.thp {
            self.work.thp_pages_unpinned += pages;
            pages as f64 * self.costs.unpin_2m_ns / 512.0
        } else {
            self.work.pages_unpinned += pages;
            pages as f64 * self.costs.unpin_page_ns
        };
        self.add(ns);
    }

    /// A TID_FREE / TID_INVAL_READ / ACK_EVENT ioctl.
    pub fn ioctl(&mut self) {
        self.work.ioctls += 1;
        let ns = self.costs.ioctl_ns;
        self.add(ns);
    }

    /// One DMA map (one physically contiguous pageset, as hfi1's `pci_map_single`).
    pub fn dma_map(&mut self) {
        self.work.dma_maps += 1;
        let ns = self.costs.map_ns();
        self.add(ns);
    }

    /// One DMA unmap: with a strict IOMMU it waits for an IOTLB invalidation; with a lazy one
    /// it queues, and every `iommu_fq_batch`-th unmap flushes the queue (one invalidation).
    pub fn dma_unmap(&mut self) {
        self.work.dma_unmaps += 1;
        let mut ns = self.costs.unmap_ns();
        match self.costs.iommu {
            IommuMode::Off => {}
            IommuMode::Strict => {
                self.work.iotlb_invalidations += 1;
                ns += self.costs.iotlb_inval_ns;
            }
            IommuMode::Lazy => {
                self.fq_pending += 1;
                if self.fq_pending >= self.costs.iommu_fq_batch.max(1) {
                    self.fq_pending = 0;
                    self.work.iotlb_invalidations += 1;
                    ns += self.costs.iotlb_inval_ns;
                }
            }
        }
        self.add(ns);
    }

    /// One MMU-notifier callback.
    pub fn notifier(&mut self) {
        self.work.notifier_calls += 1;
        let ns = self.costs.notifier_ns;
        self.add(ns);
    }

    /// An MMIO store. RcvArray stores (`Some((index, raw entry))`) are WC, flushed as
    /// `hfi1_put_tid` does: every entry whose `index & 3 == 3`, and every invalidation written
    /// with WRITE_ENABLE (PT_INVALID_FLUSH, the TID free path). Eager entries (also flushed by
    /// hfi1) are only written at context set-up, outside what studies time, and are not told
    /// apart from expected ones. Other stores are UC writes.
    pub fn mmio_write(&mut self, rcvarray: Option<(u32, u64)>) {
        let c = self.costs.clone();
        match rcvarray {
            Some((i, raw)) => {
                self.work.wc_stores += 1;
                let mut ns = c.wc_store_ns;
                let e = hfi_abi::RcvArrayEntry(raw);
                if i & 3 == 3 || (e.write_enable() && !e.is_valid()) {
                    self.work.wc_flushes += 1;
                    ns += c.wc_flush_ns;
                }
                self.add(ns);
            }
            None => {
                self.work.mmio_writes += 1;
                self.add(c.mmio_write_ns);
            }
        }
    }

    /// A PIO store (WC, 8 bytes).
    pub fn pio_store(&mut self) {
        self.work.wc_stores += 1;
        let ns = self.costs.wc_store_ns;
        self.add(ns);
    }

    /// The user library copies `bytes` of eager payload into a user buffer.
    pub fn copy(&mut self, bytes: u64) {
        self.work.copy_bytes += bytes;
        let ns = self.costs.copy_ns(bytes);
        self.add(ns);
    }

    /// The application munmaps a buffer (a study's invalidation).
    pub fn munmap(&mut self) {
        self.work.munmaps += 1;
        let ns = self.costs.munmap_ns;
        self.add(ns);
    }

    /// The poll loop handles `entries` new RHQ entries.
    pub fn rhf_poll(&mut self, entries: u64) {
        self.work.rhf_polls += entries;
        let ns = entries as f64 * self.costs.rhf_poll_ns;
        self.add(ns);
    }

    /// Host time charged and not yet given to the device, in picoseconds.
    pub fn pending_ps(&self) -> u64 {
        (self.pending_ns * 1000.0).round().max(0.0) as u64
    }

    /// Takes the pending host time in picoseconds.
    pub fn take_pending_ps(&mut self) -> u64 {
        let ps = self.pending_ps();
        self.pending_ns = 0.0;
        ps
    }
}
