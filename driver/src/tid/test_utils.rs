//! [`TidRig`]: a [`TidContext`] with a recording RcvArray and a simulated process, wired so that
//! munmap / mremap / madvise deliver their invalidations to the context. For the driver's own
//! tests and for scenarios that exercise the kernel side alone.

use mmu::{
    AddressSpace, Contiguity, FailingPinDma, FrameError, InvariantViolation, OwnerId,
    SharedFramePool, UnmapError, Va, PAGE_SIZE,
};

use super::{FdBinding, PendingSetup, TidConfig, TidContext};
use crate::errno::Errno;
use crate::put_tid::RecordingWriter;
use crate::uapi::{CtxtInfo, TidUpdate};
use hfi_abi::TidInfo;

/// Physical base of the rig's frame pool (256 MiB; DMA addresses are physical).
pub const RIG_POOL_BASE: u64 = 0x1000_0000;

/// A context on a recording RcvArray and one simulated process (wrapped in [`FailingPinDma`],
/// all switches off, for fault injection).
pub struct TidRig {
    /// The context under test.
    pub ctx: TidContext,
    /// The RcvArray as written.
    pub hw: RecordingWriter,
    /// The process memory.
    pub mm: FailingPinDma<AddressSpace>,
}

impl std::fmt::Debug for TidRig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TidRig").field("ctx", &self.ctx).field("mm", &self.mm).finish()
    }
}

impl TidRig {
    /// Context 1, expected range `[2048, 2048 + expected_count)`, `subctxts` subcontexts, and a
    /// process with `pool_pages` frames of physical memory.
    pub fn new(
        cfg: TidConfig,
        expected_count: u32,
        subctxts: u32,
        pool_pages: u64,
    ) -> Result<TidRig, FrameError> {
        let pool = SharedFramePool::new(RIG_POOL_BASE, pool_pages.saturating_mul(PAGE_SIZE))?;
        let space = AddressSpace::new(OwnerId(1), pool);
        let info = CtxtInfo {
            rcvtids: 512 + expected_count,
            egrtids: 512,
            rcvhdrq_cnt: 2048,
            rcvhdrq_entsize: 128,
            rcvegr_size: 8192,
            ..CtxtInfo::default()
        };
        Ok(TidRig {
            ctx: TidContext::new(1, 2048, expected_count, subctxts, cfg, info),
            hw: RecordingWriter::default(),
            mm: FailingPinDma::new(space),
        })
    }

    /// The process memory.
    pub fn space(&self) -> &AddressSpace {
        self.mm.inner()
    }

    /// The process memory, mutably (mapping; unmapping should go through [`TidRig::munmap`]).
    pub fn space_mut(&mut self) -> &mut AddressSpace {
        self.mm.inner_mut()
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
        self.mm.inner_mut().munmap_with(va, len, |space, inv| ctx.invalidate(hw, space, inv))
    }

    /// mremap (may move), delivering every invalidation to the context.
    pub fn mremap(&mut self, va: Va, old_len: u64, new_len: u64) -> Result<Va, UnmapError> {
        let (ctx, hw) = (&mut self.ctx, &mut self.hw);
        self.mm
            .inner_mut()
            .mremap_with(va, old_len, new_len, true, |space, inv| ctx.invalidate(hw, space, inv))
    }

    /// madvise(MADV_DONTNEED), delivering every invalidation to the context.
    pub fn madvise_dontneed(&mut self, va: Va, len: u64) -> Result<(), UnmapError> {
        let (ctx, hw) = (&mut self.ctx, &mut self.hw);
        self.mm
            .inner_mut()
            .madvise_dontneed_with(va, len, |space, inv| ctx.invalidate(hw, space, inv))
    }

    /// [`TidContext::check_invariants`] against this rig's RcvArray and memory.
    pub fn check(&self) -> Result<(), InvariantViolation> {
        self.ctx.check_invariants(&self.hw, self.mm.inner())
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
    fn rig_round_trip() {
        let mut rig = TidRig::new(TidConfig::new(Policy::V2023), 64, 1, 256).unwrap();
        let va = rig.mmap(16, Contiguity::Contiguous);
        let u = rig.fd(0).tid_update(va.0, 16 * 4096).unwrap();
        assert_eq!((u.tidlist.len(), u.length), (1, 65536));
        rig.check().unwrap();
        assert_eq!(rig.fd(0).tid_free(&u.tidlist), Ok(1));
        rig.check().unwrap();
        assert!(format!("{rig:?}").contains("TidRig"));
        assert!(format!("{:?}", rig.fd(0)).contains("FdBinding"));
    }
}
