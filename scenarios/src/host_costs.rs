//! Host-side costs on the simulated clock: what the driver and the user library spend on the
//! CPU (syscalls, pinning, DMA mapping, RcvArray WC stores, MMU-notifier callbacks, cache
//! lookups). The runner converts counter deltas into picoseconds and lets the device run for
//! that long before the host acts again. Defaults and sources: `shared/reference/timing-params.md`
//! §1b (listed in DESIGN.md, "Host cost model").

use serde::{Deserialize, Serialize};

/// Per-operation host costs in nanoseconds.
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
    /// dma_map_single without an IOMMU (20–50 ns, EST).
    pub dma_map_ns: f64,
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
}

impl Default for HostCosts {
    fn default() -> Self {
        Self {
            ioctl_ns: 190.0,
            pin_call_ns: 450.0,
            pin_page_ns: 75.0,
            unpin_page_ns: 22.0,
            dma_map_ns: 35.0,
            wc_store_ns: 7.0,
            wc_flush_ns: 75.0,
            notifier_ns: 200.0,
            cache_lookup_ns: 150.0,
            mmio_write_ns: 150.0,
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
    /// Pages pinned.
    pub pages_pinned: u64,
    /// Pages unpinned.
    pub pages_unpinned: u64,
    /// DMA maps.
    pub dma_maps: u64,
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
}

impl HostWork {
    /// Field-wise `self - earlier` (saturating).
    pub fn since(&self, e: &HostWork) -> HostWork {
        HostWork {
            ioctls: self.ioctls.saturating_sub(e.ioctls),
            pin_calls: self.pin_calls.saturating_sub(e.pin_calls),
            pages_pinned: self.pages_pinned.saturating_sub(e.pages_pinned),
            pages_unpinned: self.pages_unpinned.saturating_sub(e.pages_unpinned),
            dma_maps: self.dma_maps.saturating_sub(e.dma_maps),
            wc_stores: self.wc_stores.saturating_sub(e.wc_stores),
            wc_flushes: self.wc_flushes.saturating_sub(e.wc_flushes),
            notifier_calls: self.notifier_calls.saturating_sub(e.notifier_calls),
            cache_lookups: self.cache_lookups.saturating_sub(e.cache_lookups),
            mmio_writes: self.mmio_writes.saturating_sub(e.mmio_writes),
        }
    }
}

impl HostCosts {
    /// Simulated nanoseconds of `w`.
    pub fn ns(&self, w: &HostWork) -> u64 {
        let t = w.ioctls as f64 * self.ioctl_ns
            + w.pin_calls as f64 * self.pin_call_ns
            + w.pages_pinned as f64 * self.pin_page_ns
            + w.pages_unpinned as f64 * self.unpin_page_ns
            + w.dma_maps as f64 * self.dma_map_ns
            + w.wc_stores as f64 * self.wc_store_ns
            + w.wc_flushes as f64 * self.wc_flush_ns
            + w.notifier_calls as f64 * self.notifier_ns
            + w.cache_lookups as f64 * self.cache_lookup_ns
            + w.mmio_writes as f64 * self.mmio_write_ns;
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
    pending_ns: f64,
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

    /// A TID_UPDATE ioctl pinning `pages` pages.
    pub fn pin(&mut self, pages: u64) {
        self.work.ioctls += 1;
        self.work.pin_calls += 1;
        self.work.pages_pinned += pages;
        let c = &self.costs;
        let ns = c.ioctl_ns + c.pin_call_ns + pages as f64 * c.pin_page_ns;
        self.add(ns);
    }

    /// Unpinning `pages` pages (TID_FREE, an invalidation, close).
    pub fn unpin(&mut self, pages: u64) {
        self.work.pages_unpinned += pages;
        let ns = pages as f64 * self.costs.unpin_page_ns;
        self.add(ns);
    }

    /// A TID_FREE / TID_INVAL_READ / ACK_EVENT ioctl.
    pub fn ioctl(&mut self) {
        self.work.ioctls += 1;
        let ns = self.costs.ioctl_ns;
        self.add(ns);
    }

    /// One DMA map.
    pub fn dma_map(&mut self) {
        self.work.dma_maps += 1;
        let ns = self.costs.dma_map_ns;
        self.add(ns);
    }

    /// One MMU-notifier callback.
    pub fn notifier(&mut self) {
        self.work.notifier_calls += 1;
        let ns = self.costs.notifier_ns;
        self.add(ns);
    }

    /// An MMIO store: RcvArray stores are WC (with hfi1's flush every 4th entry), others UC.
    pub fn mmio_write(&mut self, rcvarray_index: Option<u32>) {
        let c = self.costs.clone();
        match rcvarray_index {
            Some(i) => {
                self.work.wc_stores += 1;
                let mut ns = c.wc_store_ns;
                if i & 3 == 3 {
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

    /// Takes the pending host time in picoseconds.
    pub fn take_pending_ps(&mut self) -> u64 {
        let ps = (self.pending_ns * 1000.0).round().max(0.0) as u64;
        self.pending_ns = 0.0;
        ps
    }
}
