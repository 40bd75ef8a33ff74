//! [`PinDma`]: the memory operations the driver needs, as one object-safe trait, so the same
//! driver code runs on this crate's simulated [`AddressSpace`] and later on a real backend
//! (mlock + pagemap + userfaultfd on Linux, or VFIO maps inside a guest).
//!
//! Every method is required (no default bodies): a backend that forgets one must not compile,
//! rather than panic at run time (style guide §7.4, the Cloud Hypervisor `unimplemented!()`
//! pitfall).

use crate::error::{DmaMapError, NotifierError, PinError};
use crate::space::AddressSpace;
use crate::types::{Iova, NotifierId, Pfn, Va};

/// Pin, DMA-map and watch user memory: what hfi1's expected-receive path asks of the kernel.
pub trait PinDma {
    /// Pin up to `npages` consecutive pages from `va` (`pin_user_pages_fast`). Partial pins are
    /// normal: the result stops at the first page that cannot be pinned. Errors only when
    /// nothing was pinned ([`PinError::Fault`] when `va` is not mapped).
    fn pin_pages(&mut self, va: Va, npages: usize) -> Result<Vec<Pfn>, PinError>;
    /// Drop one pin from each frame (`unpin_user_pages_dirty_lock`); `dirty` marks them written.
    fn unpin_pages(&mut self, pfns: &[Pfn], dirty: bool);
    /// Map the physically contiguous run `pfn .. pfn+npages` for device DMA
    /// (`dma_map_single` of `npages * 4 KiB`, FROM_DEVICE).
    fn dma_map(&mut self, pfn: Pfn, npages: usize) -> Result<Iova, DmaMapError>;
    /// Undo one [`PinDma::dma_map`] with the same IOVA and length.
    fn dma_unmap(&mut self, iova: Iova, npages: usize);
    /// Subscribe an interval notifier to `[start, start+len)` (`mmu_interval_notifier_insert`).
    fn notifier_insert(&mut self, start: Va, len: u64) -> Result<NotifierId, NotifierError>;
    /// Unsubscribe (`mmu_interval_notifier_remove`); unknown ids are ignored (and counted).
    fn notifier_remove(&mut self, id: NotifierId);
    /// The notifier's sequence number (`mmu_interval_read_begin`).
    fn read_begin(&self, id: NotifierId) -> u64;
    /// True if an invalidation happened (or is in progress) since `read_begin` returned `seq`
    /// (`mmu_interval_read_retry`).
    fn read_retry(&self, id: NotifierId, seq: u64) -> bool;
    /// `mm->pinned_vm` in pages; signed like the kernel's `atomic64_t`.
    fn pinned_vm(&self) -> i64;
    /// Add `delta` pages to `mm->pinned_vm` (negative to release). Pinning does not do this by
    /// itself: hfi1 accounts after `pin_user_pages_fast` returns, and so must the driver.
    fn account_pinned(&mut self, delta: i64);
    /// `RLIMIT_MEMLOCK` in bytes; `None` = unlimited.
    fn rlimit_memlock(&self) -> Option<u64>;
    /// The process has CAP_IPC_LOCK.
    fn cap_ipc_lock(&self) -> bool;
}

impl PinDma for AddressSpace {
    fn pin_pages(&mut self, va: Va, npages: usize) -> Result<Vec<Pfn>, PinError> {
        AddressSpace::pin_pages(self, va, npages)
    }
    fn unpin_pages(&mut self, pfns: &[Pfn], dirty: bool) {
        AddressSpace::unpin_pages(self, pfns, dirty);
    }
    fn dma_map(&mut self, pfn: Pfn, npages: usize) -> Result<Iova, DmaMapError> {
        AddressSpace::dma_map(self, pfn, npages)
    }
    fn dma_unmap(&mut self, iova: Iova, npages: usize) {
        AddressSpace::dma_unmap(self, iova, npages);
    }
    fn notifier_insert(&mut self, start: Va, len: u64) -> Result<NotifierId, NotifierError> {
        AddressSpace::notifier_insert(self, start, len)
    }
    fn notifier_remove(&mut self, id: NotifierId) {
        AddressSpace::notifier_remove(self, id);
    }
    fn read_begin(&self, id: NotifierId) -> u64 {
        AddressSpace::read_begin(self, id)
    }
    fn read_retry(&self, id: NotifierId, seq: u64) -> bool {
        AddressSpace::read_retry(self, id, seq)
    }
    fn pinned_vm(&self) -> i64 {
        AddressSpace::pinned_vm(self)
    }
    fn account_pinned(&mut self, delta: i64) {
        AddressSpace::account_pinned(self, delta);
    }
    fn rlimit_memlock(&self) -> Option<u64> {
        AddressSpace::rlimit_memlock(self)
    }
    fn cap_ipc_lock(&self) -> bool {
        AddressSpace::cap_ipc_lock(self)
    }
}

macro_rules! forward_pin_dma {
    ($($ty:ty),*) => {$(
        impl<T: PinDma + ?Sized> PinDma for $ty {
            fn pin_pages(&mut self, va: Va, npages: usize) -> Result<Vec<Pfn>, PinError> {
                (**self).pin_pages(va, npages)
            }
            fn unpin_pages(&mut self, pfns: &[Pfn], dirty: bool) {
                (**self).unpin_pages(pfns, dirty);
            }
            fn dma_map(&mut self, pfn: Pfn, npages: usize) -> Result<Iova, DmaMapError> {
                (**self).dma_map(pfn, npages)
            }
            fn dma_unmap(&mut self, iova: Iova, npages: usize) {
                (**self).dma_unmap(iova, npages);
            }
            fn notifier_insert(&mut self, start: Va, len: u64) -> Result<NotifierId, NotifierError> {
                (**self).notifier_insert(start, len)
            }
            fn notifier_remove(&mut self, id: NotifierId) {
                (**self).notifier_remove(id);
            }
            fn read_begin(&self, id: NotifierId) -> u64 {
                (**self).read_begin(id)
            }
            fn read_retry(&self, id: NotifierId, seq: u64) -> bool {
                (**self).read_retry(id, seq)
            }
            fn pinned_vm(&self) -> i64 {
                (**self).pinned_vm()
            }
            fn account_pinned(&mut self, delta: i64) {
                (**self).account_pinned(delta);
            }
            fn rlimit_memlock(&self) -> Option<u64> {
                (**self).rlimit_memlock()
            }
            fn cap_ipc_lock(&self) -> bool {
                (**self).cap_ipc_lock()
            }
        }
    )*};
}

forward_pin_dma!(&mut T, Box<T>);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frames::{Contiguity, SharedFramePool};
    use crate::types::{OwnerId, PAGE_SIZE};

    fn space() -> AddressSpace {
        let pool = SharedFramePool::new(0x100_0000, 64 * PAGE_SIZE).unwrap();
        AddressSpace::new(OwnerId(1), pool)
    }

    /// What a driver does through the trait object: pin, account, map, then tear down.
    fn setup_and_teardown(mm: &mut dyn PinDma, va: Va) {
        let pfns = mm.pin_pages(va, 4).unwrap();
        mm.account_pinned(pfns.len() as i64);
        assert_eq!(mm.pinned_vm(), 4);
        let iova = mm.dma_map(pfns[0], 4).unwrap();
        assert_eq!(iova, Iova(pfns[0].addr()));
        let n = mm.notifier_insert(va, 4 * PAGE_SIZE).unwrap();
        let seq = mm.read_begin(n);
        assert!(!mm.read_retry(n, seq));
        mm.notifier_remove(n);
        mm.dma_unmap(iova, 4);
        mm.unpin_pages(&pfns, true);
        mm.account_pinned(-(pfns.len() as i64));
        assert_eq!(mm.rlimit_memlock(), None);
        assert!(!mm.cap_ipc_lock());
    }

    #[test]
    fn trait_object_round_trip() {
        let mut s = space();
        let va = s.mmap(4 * PAGE_SIZE, Contiguity::Contiguous).unwrap();
        setup_and_teardown(&mut s, va);
        assert_eq!(s.dma_maps_live(), 0);
        assert_eq!(s.total_pins(), 0);
        assert_eq!(s.pinned_vm(), 0);
        let mut boxed: Box<dyn PinDma> = Box::new(space());
        assert_eq!(boxed.pin_pages(Va(0x10_0000), 1), Err(PinError::Fault(Va(0x10_0000))));
        let mut r = &mut s;
        setup_and_teardown(&mut r, va);
        assert_eq!(s.stats().pages_dirtied, 8);
    }
}
