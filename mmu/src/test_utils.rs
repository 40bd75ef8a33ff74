//! Error injection for driver tests (feature `test-utils`, never in a production build):
//! [`FailingPinDma`] wraps any [`PinDma`] and fails chosen calls on demand (the Cloud Hypervisor
//! `MockVfio` pattern, style guide §7.4/§7.8). It builds on [`PinFaults`] (short pins and the
//! after-pin hook, which production probes use too) and dereferences to it, so `pin_cap` and
//! `after_pin` are set on a `FailingPinDma` directly.

use std::fmt;
use std::ops::{Deref, DerefMut};

use crate::error::{DmaMapError, NotifierError, PinError};
use crate::fault::PinFaults;
use crate::ops::PinDma;
use crate::types::{Iova, NotifierId, Pfn, Va};

/// When an injected failure fires.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Trigger {
    /// Never (the default).
    #[default]
    Never,
    /// Let `n` calls through, fail the next one, then disarm. `After(0)` fails the next call.
    After(u64),
    /// Fail every call.
    Always,
}

impl Trigger {
    /// Fail the next call only.
    pub const NEXT: Trigger = Trigger::After(0);

    /// Advance by one call; true when this call must fail.
    fn fire(&mut self) -> bool {
        match *self {
            Trigger::Never => false,
            Trigger::Always => true,
            Trigger::After(0) => {
                *self = Trigger::Never;
                true
            }
            Trigger::After(n) => {
                *self = Trigger::After(n - 1);
                false
            }
        }
    }
}

/// Calls seen and failures injected by a [`FailingPinDma`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FailingStats {
    /// `pin_pages` calls.
    pub pin_calls: u64,
    /// `pin_pages` calls failed by injection.
    pub pin_failures: u64,
    /// `pin_pages` results shortened by `pin_cap`.
    pub pins_capped: u64,
    /// `dma_map` calls.
    pub dma_map_calls: u64,
    /// `dma_map` calls failed by injection.
    pub dma_map_failures: u64,
    /// `notifier_insert` calls.
    pub notifier_insert_calls: u64,
    /// `notifier_insert` calls failed by injection.
    pub notifier_insert_failures: u64,
}

/// A [`PinDma`] that forwards to a [`PinFaults`] over `inner` except where a switch says to
/// fail. Dereferences to the [`PinFaults`] (its `pin_cap` and `after_pin`).
pub struct FailingPinDma<T> {
    faults: PinFaults<T>,
    /// Fail `pin_pages` with [`PinError::NoMemory`] (ENOMEM) without pinning anything.
    pub fail_pin: Trigger,
    /// Fail `dma_map` with [`DmaMapError::MappingFailed`].
    pub fail_dma_map: Trigger,
    /// Fail `notifier_insert` with [`NotifierError::NoMemory`].
    pub fail_notifier_insert: Trigger,
    stats: FailingStats,
}

impl<T> FailingPinDma<T> {
    /// Wrap `inner` with every switch off.
    pub fn new(inner: T) -> FailingPinDma<T> {
        FailingPinDma {
            faults: PinFaults::new(inner),
            fail_pin: Trigger::Never,
            fail_dma_map: Trigger::Never,
            fail_notifier_insert: Trigger::Never,
            stats: FailingStats::default(),
        }
    }
    /// The wrapped backend.
    pub fn inner(&self) -> &T {
        self.faults.inner()
    }
    /// The wrapped backend, mutably (for munmap and other process-side actions).
    pub fn inner_mut(&mut self) -> &mut T {
        self.faults.inner_mut()
    }
    /// Unwrap.
    pub fn into_inner(self) -> T {
        self.faults.into_inner()
    }
    /// Calls and injected failures so far.
    pub fn stats(&self) -> FailingStats {
        FailingStats { pins_capped: self.faults.pins_capped(), ..self.stats }
    }
}

impl<T> Deref for FailingPinDma<T> {
    type Target = PinFaults<T>;
    fn deref(&self) -> &PinFaults<T> {
        &self.faults
    }
}

impl<T> DerefMut for FailingPinDma<T> {
    fn deref_mut(&mut self) -> &mut PinFaults<T> {
        &mut self.faults
    }
}

impl<T: fmt::Debug> fmt::Debug for FailingPinDma<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FailingPinDma")
            .field("faults", &self.faults)
            .field("fail_pin", &self.fail_pin)
            .field("fail_dma_map", &self.fail_dma_map)
            .field("fail_notifier_insert", &self.fail_notifier_insert)
            .field("stats", &self.stats())
            .finish()
    }
}

impl<T: PinDma> PinDma for FailingPinDma<T> {
    fn pin_pages(&mut self, va: Va, npages: usize) -> Result<Vec<Pfn>, PinError> {
        self.stats.pin_calls += 1;
        if self.fail_pin.fire() {
            self.stats.pin_failures += 1;
            return Err(PinError::NoMemory);
        }
        self.faults.pin_pages(va, npages)
    }
    fn unpin_pages(&mut self, pfns: &[Pfn], dirty: bool) {
        self.faults.unpin_pages(pfns, dirty);
    }
    fn dma_map(&mut self, pfn: Pfn, npages: usize) -> Result<Iova, DmaMapError> {
        self.stats.dma_map_calls += 1;
        if self.fail_dma_map.fire() {
            self.stats.dma_map_failures += 1;
            return Err(DmaMapError::MappingFailed);
        }
        self.faults.dma_map(pfn, npages)
    }
    fn dma_unmap(&mut self, iova: Iova, npages: usize) {
        self.faults.dma_unmap(iova, npages);
    }
    fn notifier_insert(&mut self, start: Va, len: u64) -> Result<NotifierId, NotifierError> {
        self.stats.notifier_insert_calls += 1;
        if self.fail_notifier_insert.fire() {
            self.stats.notifier_insert_failures += 1;
            return Err(NotifierError::NoMemory);
        }
        self.faults.notifier_insert(start, len)
    }
    fn notifier_remove(&mut self, id: NotifierId) {
        self.faults.notifier_remove(id);
    }
    fn read_begin(&self, id: NotifierId) -> u64 {
        self.faults.read_begin(id)
    }
    fn read_retry(&self, id: NotifierId, seq: u64) -> bool {
        self.faults.read_retry(id, seq)
    }
    fn pinned_vm(&self) -> i64 {
        self.faults.pinned_vm()
    }
    fn account_pinned(&mut self, delta: i64) {
        self.faults.account_pinned(delta);
    }
    fn rlimit_memlock(&self) -> Option<u64> {
        self.faults.rlimit_memlock()
    }
    fn cap_ipc_lock(&self) -> bool {
        self.faults.cap_ipc_lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frames::{Contiguity, SharedFramePool};
    use crate::space::AddressSpace;
    use crate::types::{OwnerId, PAGE_SIZE};

    fn wrapped() -> (FailingPinDma<AddressSpace>, Va) {
        let pool = SharedFramePool::new(0x100_0000, 64 * PAGE_SIZE).unwrap();
        let mut s = AddressSpace::new(OwnerId(1), pool);
        let va = s.mmap(8 * PAGE_SIZE, Contiguity::Contiguous).unwrap();
        (FailingPinDma::new(s), va)
    }

    #[test]
    fn trigger_semantics() {
        let mut t = Trigger::After(2);
        assert!(!t.fire());
        assert!(!t.fire());
        assert!(t.fire());
        assert!(!t.fire());
        let mut a = Trigger::Always;
        assert!(a.fire() && a.fire());
        let mut n = Trigger::NEXT;
        assert!(n.fire());
        assert_eq!(n, Trigger::Never);
    }

    #[test]
    fn injected_pin_failure_pins_nothing() {
        let (mut f, va) = wrapped();
        f.fail_pin = Trigger::NEXT;
        assert_eq!(f.pin_pages(va, 4), Err(PinError::NoMemory));
        assert_eq!(f.inner().total_pins(), 0);
        assert_eq!(f.pin_pages(va, 4).unwrap().len(), 4);
        assert_eq!(f.stats().pin_calls, 2);
        assert_eq!(f.stats().pin_failures, 1);
    }

    #[test]
    fn dma_and_notifier_failures() {
        let (mut f, va) = wrapped();
        let p = f.pin_pages(va, 1).unwrap();
        f.fail_dma_map = Trigger::Always;
        assert_eq!(f.dma_map(p[0], 1), Err(DmaMapError::MappingFailed));
        assert_eq!(f.dma_map(p[0], 1), Err(DmaMapError::MappingFailed));
        f.fail_dma_map = Trigger::Never;
        let iova = f.dma_map(p[0], 1).unwrap();
        f.dma_unmap(iova, 1);
        f.fail_notifier_insert = Trigger::After(1);
        let n = f.notifier_insert(va, PAGE_SIZE).unwrap();
        assert_eq!(f.notifier_insert(va, PAGE_SIZE), Err(NotifierError::NoMemory));
        f.notifier_remove(n);
        let s = f.stats();
        assert_eq!((s.dma_map_calls, s.dma_map_failures), (3, 2));
        assert_eq!((s.notifier_insert_calls, s.notifier_insert_failures), (2, 1));
        assert_eq!(f.inner().dma_maps_live(), 0);
        assert!(format!("{f:?}").contains("FailingPinDma"));
    }

    #[test]
    fn pin_faults_are_reached_through_deref() {
        let (mut f, va) = wrapped();
        f.pin_cap = Some(3);
        assert_eq!(f.pin_pages(va, 8).unwrap().len(), 3);
        f.fail_pin = Trigger::NEXT;
        assert_eq!(f.pin_pages(va, 8), Err(PinError::NoMemory));
        assert_eq!(f.stats().pins_capped, 1);
        assert_eq!(f.pins_capped(), 1);
        assert_eq!((f.stats().pin_calls, f.stats().pin_failures), (2, 1));
    }
}
