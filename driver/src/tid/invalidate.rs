//! The MMU-notifier callbacks (facts §6.4) and TID_INVAL_READ (§6.5).
//!
//! | policy | per-TID callback (`tid_rb_invalidate`) |
//! |---|---|
//! | V2023 | UNMAP only; `__clear_tid_node` at once (entry invalidated + flushed, DMA unmapped, pages unpinned), then queue the tidinfo; the slot and the node stay until TID_FREE |
//! | Seed, or `lazy_invalidate` | any event; queue the tidinfo; the entry stays programmed and the pages pinned until TID_FREE |
//! | NoCache | no notifiers |
//!
//! Each TID is queued at most once (the node's flag). The first TID queued on an empty queue
//! sets TID_MMU_NOTIFY in the fd's event word; TID_INVAL_READ drains the queue and clears the
//! bit in the same step.

use hfi_abi::uapi::event;
use hfi_abi::TidInfo;
use mmu::{InvalidateEvent, Invalidation, PinDma};

use super::clear::clear_tid_hw;
use super::stats::CountingWriter;
use super::{TidContext, Watch};
use crate::errno::Errno;
use crate::put_tid::RcvArrayWriter;

impl TidContext {
    /// The MMU-notifier callback, for whoever delivers invalidations (between the address
    /// space's begin and commit): `tid_rb_invalidate` for a TID's notifier,
    /// `tid_cover_invalidate` for the cover notifier of a setup in flight. Invalidations of
    /// notifiers this context does not know (already removed, or someone else's) are ignored
    /// and counted.
    pub fn invalidate(
        &mut self,
        hw: &mut dyn RcvArrayWriter,
        mm: &mut dyn PinDma,
        inv: &Invalidation,
    ) {
        match self.notifiers.get_mut(&inv.notifier) {
            None => self.stats.unknown_notifier_count += 1,
            Some(Watch::Cover { unmap_seen, other_seen }) => {
                self.stats.cover_invalidations += 1;
                if inv.event.is_unmap() {
                    *unmap_seen = true;
                } else {
                    *other_seen = true;
                }
            }
            Some(&mut Watch::Node(rel)) => {
                let mut w = CountingWriter::new(hw);
                self.tid_rb_invalidate(rel, &mut w, mm, inv.event);
                self.stats.add_traffic(&w);
            }
        }
    }

    fn tid_rb_invalidate(
        &mut self,
        rel: u32,
        hw: &mut dyn RcvArrayWriter,
        mm: &mut dyn PinDma,
        ev: InvalidateEvent,
    ) {
        let Some(node) = self.nodes.get_mut(&rel) else {
            self.stats.unknown_notifier_count += 1;
            return;
        };
        if self.beh.immediate_invalidate {
            if node.released || !ev.is_unmap() {
                self.stats.invalidations_ignored += 1;
                return;
            }
            clear_tid_hw(node, &mut self.fds, hw, mm);
        } else if node.invalidated {
            self.stats.invalidations_ignored += 1;
            return;
        }
        node.invalidated = true;
        let (fd, tidinfo) = (node.fd, node.tidinfo());
        self.stats.invalidations += 1;
        self.queue_invalid(fd, tidinfo);
    }

    /// Append to `invalid_tids` if there is room (there always is: each TID is queued once);
    /// the first entry of an empty queue raises TID_MMU_NOTIFY.
    fn queue_invalid(&mut self, fd: u32, tidinfo: TidInfo) {
        let cap = self.expected_count as usize;
        let Some(st) = self.fds.get_mut(fd as usize) else {
            return;
        };
        if st.invalid_tids.len() >= cap {
            self.stats.inval_queue_drops += 1;
            return;
        }
        if st.invalid_tids.is_empty() {
            st.events |= event::TID_MMU_NOTIFY;
        }
        st.invalid_tids.push(tidinfo);
    }

    /// TID_INVAL_READ on `fd`: the TIDs invalidated since the last call, in callback order,
    /// and TID_MMU_NOTIFY cleared with the drain. The TIDs stay allocated until TID_FREE. An
    /// fd without caching always reads an empty list. EBADF if the fd is not open.
    pub fn tid_inval_read(&mut self, fd: u32) -> Result<Vec<TidInfo>, Errno> {
        self.stats.inval_reads += 1;
        let st = match self.open_fd_mut(fd) {
            Ok(st) => st,
            Err(e) => return Err(self.stats.count_err(e)),
        };
        let list = std::mem::take(&mut st.invalid_tids);
        if !list.is_empty() {
            st.events &= !event::TID_MMU_NOTIFY;
        }
        self.stats.inval_tids_read += list.len() as u64;
        Ok(list)
    }
}
