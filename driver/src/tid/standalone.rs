//! [`KernelSide`]: the kernel side of hfi1's expected receive standing alone: a [`TidContext`]
//! on a recording RcvArray ([`RecordingWriter`]) and one simulated process, wired so that
//! munmap / mremap / madvise deliver their invalidations to the context. No device and no
//! transport. The bug catalog's probes run on it, and so does the replay of the real
//! `hfi1.ko`'s TID script (`scenarios::kdrv`).
//!
//! [`KernelSideOn`] is generic over the process memory ([`SimMemory`]): [`KernelSide`] runs on
//! [`PinFaults`] (short pins and an after-pin hook for the probes, off by default); the
//! driver's TID tests use `test_utils::TidRig` (feature `test-utils`), the same over
//! `mmu::FailingPinDma`.

use std::fmt;

use mmu::{
    AddressSpace, Contiguity, FrameError, InvariantViolation, OwnerId, PinDma, PinFaults,
    SharedFramePool, UnmapError, Va, PAGE_SIZE,
};

use super::{FdBinding, PendingSetup, TidConfig, TidContext};
use crate::errno::Errno;
use crate::put_tid::RecordingWriter;
use crate::uapi::{CtxtInfo, TidUpdate};
use hfi_abi::TidInfo;

/// Physical base of the process's frame pool (256 MiB; DMA addresses are physical).
pub const POOL_BASE: u64 = 0x1000_0000;

/// The process memory under a [`KernelSideOn`]: the [`PinDma`] the driver calls, over one
/// simulated [`AddressSpace`] (which the process side maps, unmaps and inspects directly).
pub trait SimMemory: PinDma {
    /// Wrap a fresh address space.
    fn from_space(space: AddressSpace) -> Self;
    /// The address space.
    fn space(&self) -> &AddressSpace;
    /// The address space, mutably.
    fn space_mut(&mut self) -> &mut AddressSpace;
}

impl SimMemory for PinFaults<AddressSpace> {
    fn from_space(space: AddressSpace) -> Self {
        PinFaults::new(space)
    }
    fn space(&self) -> &AddressSpace {
        self.inner()
    }
    fn space_mut(&mut self) -> &mut AddressSpace {
        self.inner_mut()
    }
}

/// A context on a recording RcvArray and one simulated process with memory `M`.
pub struct KernelSideOn<M> {
    /// The context.
    pub ctx: TidContext,
    /// The RcvArray as written.
    pub hw: RecordingWriter,
    /// The process memory.
    pub mm: M,
}

/// The kernel side over a simulated process with [`PinFaults`] (all switches off).
pub type KernelSide = KernelSideOn<PinFaults<AddressSpace>>;

impl<M: fmt::Debug> fmt::Debug for KernelSideOn<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KernelSideOn").field("ctx", &self.ctx).field("mm", &self.mm).finish()
    }
}

impl<M: SimMemory> KernelSideOn<M> {
    /// Context 1, expected range `[2048, 2048 + expected_count)`, `subctxts` subcontexts, and a
    /// process with `pool_pages` frames of physical memory.
    pub fn new(
        cfg: TidConfig,
        expected_count: u32,
        subctxts: u32,
        pool_pages: u64,
    ) -> Result<Self, FrameError> {
        let pool = SharedFramePool::new(POOL_BASE, pool_pages.saturating_mul(PAGE_SIZE))?;
        let space = AddressSpace::new(OwnerId(1), pool);
        let info = CtxtInfo {
            rcvtids: 512 + expected_count,
            egrtids: 512,
            rcvhdrq_cnt: 2048,
            rcvhdrq_entsize: 128,
            rcvegr_size: 8192,
            ..CtxtInfo::default()
        };
        Ok(KernelSideOn {
            ctx: TidContext::new(1, 2048, expected_count, subctxts, cfg, info),
            hw: RecordingWriter::default(),
            mm: M::from_space(space),
        })
    }

    /// The process memory.
    pub fn space(&self) -> &AddressSpace {
        self.mm.space()
    }

    /// The process memory, mutably (mapping; unmapping should go through
    /// [`KernelSideOn::munmap`]).
    pub fn space_mut(&mut self) -> &mut AddressSpace {
        self.mm.space_mut()
    }

    /// Map `pages` pages with `contiguity`.
    pub fn mmap(&mut self, pages: u64, contiguity: Contiguity) -> Va {
        self.space_mut().mmap(pages * PAGE_SIZE, contiguity).unwrap_or_default()
    }

    /// `fd` as an [`crate::uapi::HfiFd`].
    pub fn fd(&mut self, fd: u32) -> FdBinding<'_> {
        FdBinding::new(&mut self.ctx, fd, &mut self.hw, &mut self.mm)
    }

    /// TID_UPDATE.
    pub fn update(&mut self, fd: u32, va: Va, len: u32) -> Result<TidUpdate, Errno> {
        self.ctx.tid_update(fd, &mut self.hw, &mut self.mm, va.0, len)
    }

    /// First half of TID_UPDATE.
    pub fn update_begin(&mut self, fd: u32, va: Va, len: u32) -> Result<PendingSetup, Errno> {
        self.ctx.tid_update_begin(fd, &mut self.mm, va.0, len)
    }

    /// Second half of TID_UPDATE.
    pub fn update_finish(&mut self, p: PendingSetup) -> Result<TidUpdate, Errno> {
        self.ctx.tid_update_finish(p, &mut self.hw, &mut self.mm)
    }

    /// TID_FREE.
    pub fn free(&mut self, fd: u32, tids: &[TidInfo]) -> Result<u32, Errno> {
        self.ctx.tid_free(fd, &mut self.hw, &mut self.mm, tids)
    }

    /// TID_INVAL_READ.
    pub fn inval_read(&mut self, fd: u32) -> Result<Vec<TidInfo>, Errno> {
        self.ctx.tid_inval_read(fd)
    }

    /// Close `fd`.
    pub fn close(&mut self, fd: u32) {
        self.ctx.close(fd, &mut self.hw, &mut self.mm);
    }

    /// munmap, delivering every invalidation to the context.
    pub fn munmap(&mut self, va: Va, len: u64) -> Result<(), UnmapError> {
        let (ctx, hw) = (&mut self.ctx, &mut self.hw);
        self.mm.space_mut().munmap_with(va, len, |space, inv| ctx.invalidate(hw, space, inv))
    }

    /// mremap (may move), delivering every invalidation to the context.
    pub fn mremap(&mut self, va: Va, old_len: u64, new_len: u64) -> Result<Va, UnmapError> {
        let (ctx, hw) = (&mut self.ctx, &mut self.hw);
        self.mm
            .space_mut()
            .mremap_with(va, old_len, new_len, true, |space, inv| ctx.invalidate(hw, space, inv))
    }

    /// madvise(MADV_DONTNEED), delivering every invalidation to the context.
    pub fn madvise_dontneed(&mut self, va: Va, len: u64) -> Result<(), UnmapError> {
        let (ctx, hw) = (&mut self.ctx, &mut self.hw);
        self.mm
            .space_mut()
            .madvise_dontneed_with(va, len, |space, inv| ctx.invalidate(hw, space, inv))
    }

    /// [`TidContext::check_invariants`] against this RcvArray and memory.
    pub fn check(&self) -> Result<(), InvariantViolation> {
        self.ctx.check_invariants(&self.hw, self.mm.space())
    }

    /// The frame backing `va`.
    pub fn frame(&self, va: Va) -> Option<mmu::Pfn> {
        self.space().translate(va)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uapi::{HfiFd, Policy};

    #[test]
    fn kernel_side_round_trip() {
        let mut k = KernelSide::new(TidConfig::new(Policy::V2023), 64, 1, 256).unwrap();
        let va = k.mmap(16, Contiguity::Contiguous);
        let u = k.fd(0).tid_update(va.0, 16 * 4096).unwrap();
        assert_eq!((u.tidlist.len(), u.length), (1, 65536));
        k.check().unwrap();
        assert_eq!(k.fd(0).tid_free(&u.tidlist), Ok(1));
        k.check().unwrap();
        assert!(format!("{k:?}").contains("KernelSideOn"));
        assert!(format!("{:?}", k.fd(0)).contains("FdBinding"));
    }
}
