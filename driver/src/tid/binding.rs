//! [`FdBinding`]: one fd of a [`TidContext`] with the hardware and memory handles it works on,
//! as the [`HfiFd`] the user library is written against.

use std::fmt;

use hfi_abi::TidInfo;
use mmu::PinDma;

use super::TidContext;
use crate::errno::Errno;
use crate::put_tid::RcvArrayWriter;
use crate::uapi::{CtxtInfo, HfiFd, TidUpdate};

/// A context, an fd and the RcvArray / process-memory handles, bound into an [`HfiFd`]: each
/// method is the matching ioctl of that fd.
pub struct FdBinding<'a> {
    /// The receive context.
    pub ctx: &'a mut TidContext,
    /// The fd (subcontext).
    pub fd: u32,
    /// The RcvArray.
    pub hw: &'a mut dyn RcvArrayWriter,
    /// The calling process's memory.
    pub mm: &'a mut dyn PinDma,
}

impl<'a> FdBinding<'a> {
    /// Bind `fd` of `ctx` to `hw` and `mm`.
    pub fn new(
        ctx: &'a mut TidContext,
        fd: u32,
        hw: &'a mut dyn RcvArrayWriter,
        mm: &'a mut dyn PinDma,
    ) -> Self {
        FdBinding { ctx, fd, hw, mm }
    }
}

impl fmt::Debug for FdBinding<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FdBinding").field("ctxt", &self.ctx.ctxt()).field("fd", &self.fd).finish()
    }
}

impl HfiFd for FdBinding<'_> {
    fn ctxt_info(&self) -> CtxtInfo {
        self.ctx.ctxt_info(self.fd)
    }
    fn tid_update(&mut self, vaddr: u64, length: u32) -> Result<TidUpdate, Errno> {
        self.ctx.tid_update(self.fd, self.hw, self.mm, vaddr, length)
    }
    fn tid_free(&mut self, tids: &[TidInfo]) -> Result<u32, Errno> {
        let r = self.ctx.tid_free(self.fd, self.hw, self.mm, tids);
        self.ctx.run_after_free(self.hw, self.mm);
        r
    }
    fn tid_inval_read(&mut self) -> Result<Vec<TidInfo>, Errno> {
        self.ctx.tid_inval_read(self.fd)
    }
    fn event_word(&self) -> u64 {
        self.ctx.event_word(self.fd)
    }
    fn ack_event(&mut self, bits: u64) -> Result<(), Errno> {
        self.ctx.ack_event(self.fd, bits)
    }
}
