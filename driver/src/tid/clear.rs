//! Releasing TIDs (facts §6.3, §6.6): TID_FREE (`hfi1_user_exp_rcv_clear` →
//! `unprogram_rcvarray` → `clear_tid_node`), the release of the hardware entry and the pages
//! (`__clear_tid_node`, shared with the 2023 invalidate callback), and close
//! (`hfi1_user_exp_rcv_free`).

use std::collections::BTreeSet;

use hfi_abi::rcv_array::PtType;
use hfi_abi::{BufSize, TidInfo};
use mmu::PinDma;

use super::fd::FdState;
use super::node::TidNode;
use super::stats::CountingWriter;
use super::TidContext;
use crate::errno::Errno;
use crate::put_tid::{put_tid, RcvArrayWriter};

/// `__clear_tid_node`: once per node, invalidate the entry with a flush (the device must see it
/// before the pages go), DMA-unmap, unpin dirty, and give back `pinned_vm` and `tid_n_pinned`.
pub(crate) fn clear_tid_hw(
    node: &mut TidNode,
    fds: &mut [FdState],
    hw: &mut dyn RcvArrayWriter,
    mm: &mut dyn PinDma,
) {
    if node.released {
        return;
    }
    node.released = true;
    put_tid(hw, node.rcventry, PtType::InvalidFlush, 0, BufSize::INVALID);
    mm.dma_unmap(node.dma, node.npages as usize);
    mm.unpin_pages(&node.pfns, true);
    mm.account_pinned(-i64::from(node.npages));
    if let Some(st) = fds.get_mut(node.fd as usize) {
        st.tid_n_pinned = st.tid_n_pinned.saturating_sub(u64::from(node.npages));
    }
}

impl TidContext {
    /// TID_FREE on `fd`: unprogram each tidinfo in order, stopping at the first bad one, and
    /// return how many were freed.
    ///
    /// Errors: EBADF (fd not open; a tidinfo naming no TID of this fd), EINVAL (more tidinfos
    /// than the fd holds; CTRL 0 or 3; an entry outside the expected range). On an error the
    /// TIDs before the bad one stay freed (hfi1 writes the count back only on success).
    pub fn tid_free(
        &mut self,
        fd: u32,
        hw: &mut dyn RcvArrayWriter,
        mm: &mut dyn PinDma,
        tids: &[TidInfo],
    ) -> Result<u32, Errno> {
        self.stats.frees += 1;
        let mut w = CountingWriter::new(hw);
        let r = self.user_exp_rcv_clear(fd, &mut w, mm, tids);
        self.stats.add_traffic(&w);
        let (freed, err) = r;
        self.stats.tids_freed += u64::from(freed);
        match err {
            None => Ok(freed),
            Some(e) => Err(self.stats.count_err(e)),
        }
    }

    /// hfi1 `hfi1_user_exp_rcv_clear`.
    fn user_exp_rcv_clear(
        &mut self,
        fd: u32,
        hw: &mut dyn RcvArrayWriter,
        mm: &mut dyn PinDma,
        tids: &[TidInfo],
    ) -> (u32, Option<Errno>) {
        let tid_used = match self.open_fd_mut(fd) {
            Ok(st) => st.tid_used,
            Err(e) => return (0, Some(e)),
        };
        if tids.len() as u64 > u64::from(tid_used) {
            return (0, Some(Errno::Inval));
        }
        self.clear_tids(fd, hw, mm, tids)
    }

    /// The loop of `hfi1_user_exp_rcv_clear`: unprogram in order, stop at the first error,
    /// `tid_used -= freed`.
    pub(crate) fn clear_tids(
        &mut self,
        fd: u32,
        hw: &mut dyn RcvArrayWriter,
        mm: &mut dyn PinDma,
        tids: &[TidInfo],
    ) -> (u32, Option<Errno>) {
        let mut freed = 0u32;
        let mut err = None;
        for &t in tids {
            if freed > 0 && self.free_hook.is_some() {
                self.run_during_free(hw, mm, freed);
            }
            match self.unprogram_rcvarray(fd, hw, mm, t) {
                Ok(()) => freed += 1,
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        if let Some(st) = self.fds.get_mut(fd as usize) {
            st.tid_used = st.tid_used.saturating_sub(freed);
        }
        (freed, err)
    }

    /// The relative entry a tidinfo names, with the 2023 checks (CTRL 1 or 2, final entry in
    /// range) or, with `weak_tid_validity`, the old ones (IDX*2 in range, CTRL 3 rejected, CTRL
    /// 0 taken as "IDX*2 − 1").
    fn tidinfo_entry(&self, t: TidInfo) -> Result<u32, Errno> {
        if self.beh.weak_tid_validity {
            let idx2 = t.idx() * 2;
            if idx2 >= self.expected_count || t.ctrl() == 3 {
                return Err(Errno::Inval);
            }
            Ok((idx2 + t.ctrl()).wrapping_sub(1))
        } else {
            let rel = t.rel_entry().ok_or(Errno::Inval)?;
            if rel >= self.expected_count {
                return Err(Errno::Inval);
            }
            Ok(rel)
        }
    }

    /// hfi1 `unprogram_rcvarray`: check the tidinfo, find this fd's node, remove its notifier
    /// and clear it.
    fn unprogram_rcvarray(
        &mut self,
        fd: u32,
        hw: &mut dyn RcvArrayWriter,
        mm: &mut dyn PinDma,
        t: TidInfo,
    ) -> Result<(), Errno> {
        let rel = self.tidinfo_entry(t)?;
        if rel >= self.expected_count {
            // Only CTRL 0 on pair 0 under the old checks: the kernel indexed entry_to_rb[-1].
            self.stats.tid_oob_lookup_count += 1;
            return Err(Errno::BadF);
        }
        match self.nodes.get(&rel) {
            Some(n) if n.fd == fd => {}
            _ => return Err(Errno::BadF),
        }
        let Some(node) = self.nodes.remove(&rel) else {
            return Err(Errno::BadF);
        };
        self.remove_node(node, hw, mm);
        Ok(())
    }

    /// Remove the node's notifier, then `clear_tid_node`: release the hardware entry and the
    /// pages if that is not done yet, and give the group slot back.
    fn remove_node(&mut self, mut node: TidNode, hw: &mut dyn RcvArrayWriter, mm: &mut dyn PinDma) {
        if let Some(id) = node.notifier.take() {
            mm.notifier_remove(id);
            self.notifiers.remove(&id);
        }
        clear_tid_hw(&mut node, &mut self.fds, hw, mm);
        if self.groups.clear(node.rcventry).is_err() {
            self.stats.group_clear_errors += 1;
        }
    }

    /// Close `fd` (`hfi1_user_exp_rcv_free`): walk the full list, then the used list, and
    /// release every node this fd owns (notifier removed, entry invalidated, pages unpinned,
    /// slot freed); then drop the invalid queue and the event word. Nodes of this fd in groups
    /// on neither list (hfi1 would miss them) are released afterwards, ascending, and counted.
    /// Closing a closed or unknown fd does nothing.
    pub fn close(&mut self, fd: u32, hw: &mut dyn RcvArrayWriter, mm: &mut dyn PinDma) {
        if !self.is_open(fd) {
            return;
        }
        let mut w = CountingWriter::new(hw);
        let base = self.expected_base;
        let mut order: Vec<u32> = Vec::new();
        let bases: Vec<u32> = self.groups.full_list().chain(self.groups.used_list()).collect();
        for gbase in bases {
            if let Some(grp) = self.groups.group_of(gbase) {
                order.extend(
                    grp.used_entries()
                        .filter_map(|abs| abs.checked_sub(base))
                        .filter(|rel| self.nodes.get(rel).is_some_and(|n| n.fd == fd)),
                );
            }
        }
        let listed: BTreeSet<u32> = order.iter().copied().collect();
        let unlisted: Vec<u32> = self
            .nodes
            .iter()
            .filter(|(rel, n)| n.fd == fd && !listed.contains(rel))
            .map(|(&rel, _)| rel)
            .collect();
        self.stats.close_unlisted_nodes += unlisted.len() as u64;
        order.extend(unlisted);
        for rel in order {
            if let Some(node) = self.nodes.remove(&rel) {
                self.remove_node(node, &mut w, mm);
            }
        }
        self.stats.add_traffic(&w);
        if let Some(st) = self.fds.get_mut(fd as usize) {
            *st = FdState::closed(st.use_mn, st.tid_limit);
        }
    }
}
