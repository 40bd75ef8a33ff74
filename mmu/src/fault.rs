//! [`PinFaults`]: the fault points a simulated process offers at the pin seam, for scenario
//! probes (the bug catalog) and tests. It wraps any [`PinDma`] and, when told to, pins fewer
//! pages than asked (`pin_user_pages_fast` returning short) or runs an action of the process
//! right after a pin returns (an munmap racing TID_UPDATE). Every switch is off by default,
//! and then it only forwards.
//!
//! Error injection (ENOMEM from pinning, a failing DMA map or notifier insert) is for tests
//! only: `test_utils::FailingPinDma`, feature `test-utils`, builds on this type.

use std::fmt;

use crate::error::{DmaMapError, NotifierError, PinError};
use crate::ops::PinDma;
use crate::types::{Iova, NotifierId, Pfn, Va};

/// Hook run after a successful `pin_pages`, with the inner backend, the start address and the
/// frames pinned: the place to inject "an invalidation arrives right after pinning".
pub type AfterPinHook<T> = Box<dyn FnMut(&mut T, Va, &[Pfn]) + Send>;

/// A [`PinDma`] that forwards to `inner`, with short pins and an after-pin hook on demand.
pub struct PinFaults<T> {
    inner: T,
    /// Pin at most this many pages per call (forces partial pins).
    pub pin_cap: Option<usize>,
    /// Run after every successful `pin_pages`.
    pub after_pin: Option<AfterPinHook<T>>,
    pins_capped: u64,
}

impl<T> PinFaults<T> {
    /// Wrap `inner` with every switch off.
    pub fn new(inner: T) -> PinFaults<T> {
        PinFaults { inner, pin_cap: None, after_pin: None, pins_capped: 0 }
    }
    /// The wrapped backend.
    pub fn inner(&self) -> &T {
        &self.inner
    }
    /// The wrapped backend, mutably (for munmap and other process-side actions).
    pub fn inner_mut(&mut self) -> &mut T {
        &mut self.inner
    }
    /// Unwrap.
    pub fn into_inner(self) -> T {
        self.inner
    }
    /// `pin_pages` results shortened by `pin_cap` so far.
    pub fn pins_capped(&self) -> u64 {
        self.pins_capped
    }
}

impl<T: fmt::Debug> fmt::Debug for PinFaults<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PinFaults")
            .field("inner", &self.inner)
            .field("pin_cap", &self.pin_cap)
            .field("after_pin", &self.after_pin.is_some())
            .field("pins_capped", &self.pins_capped)
            .finish()
    }
}

impl<T: PinDma> PinDma for PinFaults<T> {
    fn pin_pages(&mut self, va: Va, npages: usize) -> Result<Vec<Pfn>, PinError> {
        let n = match self.pin_cap {
            Some(cap) if cap < npages => {
                self.pins_capped += 1;
                cap
            }
            _ => npages,
        };
        let pfns = self.inner.pin_pages(va, n)?;
        if let Some(hook) = self.after_pin.as_mut() {
            hook(&mut self.inner, va, &pfns);
        }
        Ok(pfns)
    }
    fn unpin_pages(&mut self, pfns: &[Pfn], dirty: bool) {
        self.inner.unpin_pages(pfns, dirty);
    }
    fn dma_map(&mut self, pfn: Pfn, npages: usize) -> Result<Iova, DmaMapError> {
        self.inner.dma_map(pfn, npages)
    }
    fn dma_unmap(&mut self, iova: Iova, npages: usize) {
        self.inner.dma_unmap(iova, npages);
    }
    fn notifier_insert(&mut self, start: Va, len: u64) -> Result<NotifierId, NotifierError> {
        self.inner.notifier_insert(start, len)
    }
    fn notifier_remove(&mut self, id: NotifierId) {
        self.inner.notifier_remove(id);
    }
    fn read_begin(&self, id: NotifierId) -> u64 {
        self.inner.read_begin(id)
    }
    fn read_retry(&self, id: NotifierId, seq: u64) -> bool {
        self.inner.read_retry(id, seq)
    }
    fn pinned_vm(&self) -> i64 {
        self.inner.pinned_vm()
    }
    fn account_pinned(&mut self, delta: i64) {
        self.inner.account_pinned(delta);
    }
    fn rlimit_memlock(&self) -> Option<u64> {
        self.inner.rlimit_memlock()
    }
    fn cap_ipc_lock(&self) -> bool {
        self.inner.cap_ipc_lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frames::{Contiguity, SharedFramePool};
    use crate::space::AddressSpace;
    use crate::types::{OwnerId, PAGE_SIZE};

    fn wrapped() -> (PinFaults<AddressSpace>, Va) {
        let pool = SharedFramePool::new(0x100_0000, 64 * PAGE_SIZE).unwrap();
        let mut s = AddressSpace::new(OwnerId(1), pool);
        let va = s.mmap(8 * PAGE_SIZE, Contiguity::Contiguous).unwrap();
        (PinFaults::new(s), va)
    }

    #[test]
    fn pin_cap_forces_partial_pins() {
        let (mut f, va) = wrapped();
        f.pin_cap = Some(3);
        let p = f.pin_pages(va, 8).unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(f.pins_capped(), 1);
        assert_eq!(f.pin_pages(va, 2).unwrap().len(), 2);
        assert_eq!(f.pins_capped(), 1);
    }

    #[test]
    fn after_pin_hook_can_invalidate_mid_setup() {
        // The 2023 setup race: the range is unmapped right after pinning. The cover notifier's
        // read_retry must report it.
        let (mut f, va) = wrapped();
        let cover = f.notifier_insert(va, 8 * PAGE_SIZE).unwrap();
        let seq = f.read_begin(cover);
        f.after_pin = Some(Box::new(|s: &mut AddressSpace, va, _pfns: &[Pfn]| {
            s.munmap_with(va, 8 * PAGE_SIZE, |_, _| {}).unwrap();
        }));
        let pfns = f.pin_pages(va, 8).unwrap();
        assert!(f.read_retry(cover, seq));
        // The pinned frames are orphans now: still pinned, no longer mapped.
        assert_eq!(f.inner().translate(va), None);
        assert_eq!(f.inner().pin_count(pfns[0]), 1);
        f.after_pin = None;
        f.unpin_pages(&pfns, false);
        assert_eq!(f.inner().total_pins(), 0);
        f.into_inner().check_invariants().unwrap();
    }

    #[test]
    fn switches_off_only_forward() {
        let (mut f, va) = wrapped();
        let p = f.pin_pages(va, 8).unwrap();
        assert_eq!(p.len(), 8);
        let iova = f.dma_map(p[0], 1).unwrap();
        f.dma_unmap(iova, 1);
        let n = f.notifier_insert(va, PAGE_SIZE).unwrap();
        assert!(!f.read_retry(n, f.read_begin(n)));
        f.notifier_remove(n);
        f.account_pinned(8);
        assert_eq!(f.pinned_vm(), 8);
        assert_eq!((f.rlimit_memlock(), f.cap_ipc_lock()), (None, false));
        f.unpin_pages(&p, false);
        assert_eq!(f.pins_capped(), 0);
        assert_eq!(f.inner().dma_maps_live(), 0);
        assert!(format!("{f:?}").contains("PinFaults"));
        f.inner_mut().account_pinned(-8);
        assert_eq!(f.into_inner().total_pins(), 0);
    }
}
