//! A fault-injection seam of the TID_FREE path (like `mmu::PinFaults` for pinning): a
//! harness can run an MMU invalidation *during* a TID_FREE batch (hfi1's invalidate callback
//! does not take `exp_mutex`, so it can run between two TIDs of a batch) or right *after*
//! TID_FREE returned to user space, before the user library looks at the event word again
//! (PSM's free-then-recheck window). Nothing is installed by default.

use std::fmt::Debug;

use mmu::PinDma;

use super::TidContext;
use crate::put_tid::RcvArrayWriter;

/// Called by the TID_FREE path at its two injection points.
pub trait FreeHook: Debug {
    /// Inside TID_FREE, after `freed` TIDs of the batch were unprogrammed, before the next.
    fn during_free(
        &mut self,
        ctx: &mut TidContext,
        hw: &mut dyn RcvArrayWriter,
        mm: &mut dyn PinDma,
        freed: u32,
    );
    /// TID_FREE has returned to user space; the caller has not done anything else yet.
    fn after_free(
        &mut self,
        ctx: &mut TidContext,
        hw: &mut dyn RcvArrayWriter,
        mm: &mut dyn PinDma,
    );
}

impl TidContext {
    /// Installs (or removes) the TID_FREE fault hook.
    pub fn set_free_hook(&mut self, hook: Option<Box<dyn FreeHook>>) {
        self.free_hook = hook;
    }

    /// The installed hook (to read its state back).
    pub fn free_hook(&self) -> Option<&dyn FreeHook> {
        self.free_hook.as_deref()
    }

    pub(crate) fn run_during_free(
        &mut self,
        hw: &mut dyn RcvArrayWriter,
        mm: &mut dyn PinDma,
        freed: u32,
    ) {
        if let Some(mut h) = self.free_hook.take() {
            h.during_free(self, hw, mm, freed);
            if self.free_hook.is_none() {
                self.free_hook = Some(h);
            }
        }
    }

    /// Runs the after-free hook (called by the fd binding when TID_FREE returns).
    pub fn run_after_free(&mut self, hw: &mut dyn RcvArrayWriter, mm: &mut dyn PinDma) {
        if let Some(mut h) = self.free_hook.take() {
            h.after_free(self, hw, mm);
            if self.free_hook.is_none() {
                self.free_hook = Some(h);
            }
        }
    }
}
