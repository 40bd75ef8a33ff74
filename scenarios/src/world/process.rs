//! A simulated user process: an `mmu::AddressSpace` whose frames live in the world's host
//! memory, with helpers to write and read its buffers through the page table (as the
//! application would), and a fresh-frame zeroing step so recycled frames never leak old data.

use driver::endpoint::{Delivery, EndpointProcess, Held};
use mmu::{
    AddressSpace, Contiguity, DmaMapError, Iova, NotifierError, NotifierId, OwnerId, Pfn, PinDma,
    PinError, SharedFramePool, Va, PAGE_SIZE,
};
use vm_memory::{Bytes, GuestAddress};

use crate::world::host_costs::SharedLedger;
use crate::world::Mem;

/// Why a process memory operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// mmap failed.
    #[error("mmap failed")]
    Mmap(#[from] mmu::MmapError),
    /// A page of the range is not mapped.
    #[error("Address {0} is not mapped")]
    NotMapped(Va),
    /// Host memory access failed.
    #[error("Host memory access at {0:#x} failed")]
    Memory(u64),
}

/// One simulated process. It implements `mmu::PinDma` for the driver by delegating to its
/// address space and charging the host-time ledger for pins, unpins and DMA maps.
#[derive(Debug)]
pub struct Process {
    /// Its address space.
    pub space: AddressSpace,
    mem: Mem,
    ledger: Option<SharedLedger>,
    /// Highest `pinned_vm` seen (pages).
    pub pinned_peak: i64,
    /// Fault injection: a memory operation to run right after the next pin that touches its
    /// range (the "after pin, before programming" point, inside TID_UPDATE).
    pub after_pin: Option<(Va, u64, MemOp)>,
    /// Invalidations raised by faults inside the driver's calls, delivered when they return.
    pub pending_invalidations: Vec<mmu::Invalidation>,
    /// Fault injection: right after the next pin, RLIMIT_MEMLOCK drops to what is pinned then
    /// (memlock exhaustion).
    pub exhaust_memlock_after_pin: bool,
    /// Fault injection: a memory operation to run at the next unpin (inside TID_FREE); its
    /// invalidations go to `free_queue`, delivered by a [`FreePathHook`].
    pub free_fault: Option<(Va, u64, MemOp)>,
    /// Invalidations raised inside TID_FREE, waiting for the driver's hook.
    pub free_queue: std::rc::Rc<std::cell::RefCell<Vec<mmu::Invalidation>>>,
}

/// When the invalidations of a fault inside TID_FREE reach the driver's callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FreeStage {
    /// Between two TIDs of the TID_FREE batch.
    During,
    /// When TID_FREE returned, before the user library re-checks the event word.
    After,
}

/// Delivers the invalidations of a fault inside TID_FREE at its stage (leftovers at the end of
/// the call, so none is lost).
#[derive(Debug)]
pub struct FreePathHook {
    /// Shared with the process.
    pub queue: std::rc::Rc<std::cell::RefCell<Vec<mmu::Invalidation>>>,
    /// When to deliver.
    pub stage: FreeStage,
    /// Invalidations delivered.
    pub delivered: std::rc::Rc<std::cell::Cell<u32>>,
}

impl FreePathHook {
    fn deliver(
        &mut self,
        ctx: &mut driver::tid::TidContext,
        hw: &mut dyn driver::put_tid::RcvArrayWriter,
        mm: &mut dyn PinDma,
    ) {
        let invs = std::mem::take(&mut *self.queue.borrow_mut());
        for inv in &invs {
            ctx.invalidate(hw, mm, inv);
        }
        self.delivered.set(self.delivered.get() + invs.len() as u32);
    }
}

impl driver::tid::FreeHook for FreePathHook {
    fn during_free(
        &mut self,
        ctx: &mut driver::tid::TidContext,
        hw: &mut dyn driver::put_tid::RcvArrayWriter,
        mm: &mut dyn PinDma,
        _freed: u32,
    ) {
        if self.stage == FreeStage::During {
            self.deliver(ctx, hw, mm);
        }
    }
    fn after_free(
        &mut self,
        ctx: &mut driver::tid::TidContext,
        hw: &mut dyn driver::put_tid::RcvArrayWriter,
        mm: &mut dyn PinDma,
    ) {
        self.deliver(ctx, hw, mm);
    }
}

/// A memory operation the application (or a fault) applies to a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum MemOp {
    /// munmap of the whole range.
    Munmap,
    /// Partial munmap: shrink the mapping to half its length.
    Shrink,
    /// mremap to a new address (the old range goes away).
    Mremap,
    /// madvise(DONTNEED): frames dropped, range stays mapped.
    Madvise,
}

impl Process {
    /// Starts `op` on `[va, va + len)`: returns the token whose invalidations must be delivered
    /// to the driver before [`AddressSpace::commit`].
    pub fn begin_op(
        &mut self,
        va: Va,
        len: u64,
        op: MemOp,
    ) -> Result<mmu::PendingUnmap, mmu::UnmapError> {
        match op {
            MemOp::Munmap => self.space.begin_munmap(va, len),
            MemOp::Shrink => {
                self.space.begin_shrink(va, len, (len / 2).next_multiple_of(PAGE_SIZE))
            }
            MemOp::Mremap => {
                // Force a real move (the kernel's MREMAP_MAYMOVE when it cannot grow in place):
                // occupy the page after the buffer, then grow by one page.
                let _ = self.space.mmap_fixed(Va(va.0 + len), PAGE_SIZE, Contiguity::Contiguous);
                self.space.begin_mremap(va, len, len + PAGE_SIZE, true)
            }
            MemOp::Madvise => self.space.begin_madvise_dontneed(va, len),
        }
    }
}

impl Process {
    /// A process `owner` drawing frames from `pool` in `mem`, charging host time to `ledger`.
    pub fn new(owner: u32, pool: SharedFramePool, mem: Mem, ledger: Option<SharedLedger>) -> Self {
        Self {
            space: AddressSpace::new(OwnerId(owner), pool),
            mem,
            ledger,
            pinned_peak: 0,
            after_pin: None,
            pending_invalidations: Vec::new(),
            exhaust_memlock_after_pin: false,
            free_fault: None,
            free_queue: std::rc::Rc::new(std::cell::RefCell::new(Vec::new())),
        }
    }

    fn charge(&self, f: impl FnOnce(&mut crate::world::host_costs::HostLedger)) {
        if let Some(l) = &self.ledger {
            f(&mut l.borrow_mut());
        }
    }

    /// Zeroes frames handed out since the last call (the kernel zeroes anonymous pages).
    fn zero_fresh(&mut self) -> Result<(), ProcessError> {
        let fresh = self.space.pool().with(|p| p.take_fresh());
        mmu::zero_frames(&*self.mem, &fresh).map_err(|_| ProcessError::Memory(0))
    }

    /// mmap of `len` bytes.
    pub fn mmap(&mut self, len: u64, c: Contiguity) -> Result<Va, ProcessError> {
        let va = self.space.mmap(len, c)?;
        self.zero_fresh()?;
        Ok(va)
    }

    /// mmap at a fixed address (re-use of a freed VA).
    pub fn mmap_fixed(&mut self, va: Va, len: u64, c: Contiguity) -> Result<Va, ProcessError> {
        let va = self.space.mmap_fixed(va, len, c)?;
        self.zero_fresh()?;
        Ok(va)
    }

    fn for_pages(
        &self,
        va: Va,
        len: usize,
        mut f: impl FnMut(u64, std::ops::Range<usize>) -> Result<(), ProcessError>,
    ) -> Result<(), ProcessError> {
        let mut done = 0usize;
        while done < len {
            let cur = Va(va.0 + done as u64);
            let pfn: Pfn = self.space.translate(cur).ok_or(ProcessError::NotMapped(cur))?;
            let in_page = (cur.0 % PAGE_SIZE) as usize;
            let n = (PAGE_SIZE as usize - in_page).min(len - done);
            f(pfn.addr() + in_page as u64, done..done + n)?;
            done += n;
        }
        Ok(())
    }

    /// Writes `data` at `va` through the page table.
    pub fn write(&self, va: Va, data: &[u8]) -> Result<(), ProcessError> {
        self.for_pages(va, data.len(), |pa, r| {
            let src = data.get(r).unwrap_or(&[]);
            self.mem.write_slice(src, GuestAddress(pa)).map_err(|_| ProcessError::Memory(pa))
        })
    }

    /// Reads `len` bytes at `va` through the page table.
    pub fn read(&self, va: Va, len: usize) -> Result<Vec<u8>, ProcessError> {
        let mut out = vec![0u8; len];
        let mem = self.mem.clone();
        self.for_pages(va, len, |pa, r| {
            let dst = out.get_mut(r).unwrap_or(&mut []);
            mem.read_slice(dst, GuestAddress(pa)).map_err(|_| ProcessError::Memory(pa))
        })?;
        Ok(out)
    }
}

impl PinDma for Process {
    fn pin_pages(&mut self, va: Va, npages: usize) -> Result<Vec<Pfn>, PinError> {
        let r = self.space.pin_pages(va, npages);
        let n = r.as_ref().map_or(0, Vec::len) as u64;
        self.charge(|l| l.pin(n));
        if std::mem::take(&mut self.exhaust_memlock_after_pin) {
            let pinned = self.space.pinned_vm().max(0) as u64 + n;
            self.space.set_rlimit_memlock(Some(pinned * PAGE_SIZE));
        }
        let end = va.0 + npages as u64 * PAGE_SIZE;
        if let Some((fva, flen, op)) = self.after_pin {
            if va.0 < fva.0 + flen && fva.0 < end {
                self.after_pin = None;
                // The fault runs between pin and programming; the notifier callbacks are
                // delivered to the driver when its call returns (it cannot be re-entered).
                if let Ok(token) = self.begin_op(fva, flen, op) {
                    self.pending_invalidations.extend_from_slice(token.invalidations());
                    let _ = self.space.commit(token);
                }
            }
        }
        r
    }
    fn unpin_pages(&mut self, pfns: &[Pfn], dirty: bool) {
        self.charge(|l| l.unpin(pfns.len() as u64));
        self.space.unpin_pages(pfns, dirty);
        if let Some((va, len, op)) = self.free_fault.take() {
            // The application's operation lands while the driver is inside TID_FREE.
            if let Ok(token) = self.begin_op(va, len, op) {
                self.free_queue.borrow_mut().extend_from_slice(token.invalidations());
                let _ = self.space.commit(token);
            }
        }
    }
    fn dma_map(&mut self, pfn: Pfn, npages: usize) -> Result<Iova, DmaMapError> {
        self.charge(|l| l.dma_map());
        self.space.dma_map(pfn, npages)
    }
    fn dma_unmap(&mut self, iova: Iova, npages: usize) {
        self.charge(|l| l.dma_unmap());
        self.space.dma_unmap(iova, npages);
    }
    fn notifier_insert(&mut self, start: Va, len: u64) -> Result<NotifierId, NotifierError> {
        self.space.notifier_insert(start, len)
    }
    fn notifier_remove(&mut self, id: NotifierId) {
        self.space.notifier_remove(id);
    }
    fn read_begin(&self, id: NotifierId) -> u64 {
        self.space.read_begin(id)
    }
    fn read_retry(&self, id: NotifierId, seq: u64) -> bool {
        self.space.read_retry(id, seq)
    }
    fn pinned_vm(&self) -> i64 {
        self.space.pinned_vm()
    }
    fn account_pinned(&mut self, delta: i64) {
        self.space.account_pinned(delta);
        self.pinned_peak = self.pinned_peak.max(self.space.pinned_vm());
    }
    fn rlimit_memlock(&self) -> Option<u64> {
        self.space.rlimit_memlock()
    }
    fn cap_ipc_lock(&self) -> bool {
        self.space.cap_ipc_lock()
    }
}

/// The simulated process raises invalidations inside the driver's calls (fault injection at a
/// pin); they are delivered when the call returns.
impl EndpointProcess for Process {
    const DELIVERY: Delivery = Delivery::AfterCalls;
    fn take_invalidations(&mut self, _wait_ms: u64) -> Vec<mmu::Invalidation> {
        std::mem::take(&mut self.pending_invalidations)
    }
    fn held(&self) -> Held {
        Held {
            pins: self.space.total_pins(),
            pinned_vm: self.space.pinned_vm(),
            dma_maps: self.space.dma_maps_live(),
        }
    }
}

impl driver::recv::UserProcess for Process {
    fn pin_dma(&mut self) -> &mut dyn PinDma {
        self
    }
    fn write_user(&mut self, va: u64, data: &[u8]) -> bool {
        self.charge(|l| l.copy(data.len() as u64));
        self.write(Va(va), data).is_ok()
    }
}
