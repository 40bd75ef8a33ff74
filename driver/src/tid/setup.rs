//! TID_UPDATE (`hfi1_user_exp_rcv_setup`, facts §6.2), in two halves so that tests can put
//! another call or an munmap between pinning and programming:
//!
//! - [`TidContext::tid_update_begin`]: steps 1–5. Validate, insert the cover notifier (2023),
//!   check the pin limit and pin (`pin_rcv_pages`), cut pagesets (`find_phys_blocks`), reserve
//!   TIDs under `tid_lock` (2023).
//! - [`TidContext::tid_update_finish`]: steps 6–13. Program groups through
//!   [`rcvarray::TidGroupAllocator::setup`] (`set_rcvarray_entry` is [`Programmer`]), settle
//!   `tid_used`, unpin the pages no TID covers, the cover retry (EBUSY), the copy-out (EFAULT).
//!
//! [`TidContext::tid_update`] runs both; in hfi1 they are one call, and the window between
//! them is where a concurrent TID_UPDATE on the same fd (the reservation fix) or an munmap (the
//! cover-notifier fix) lands.

use std::collections::BTreeMap;

use hfi_abi::rcv_array::PtType;
use hfi_abi::{BufSize, TidInfo};
use mmu::{
    can_pin_pages, CanPinParams, NotifierError, NotifierId, Pfn, PinDma, PinError, Va, PAGE_SIZE,
};
use rcvarray::SlotProgrammer;

use super::node::TidNode;
use super::pagesets::{find_phys_blocks, PageSet};
use super::stats::CountingWriter;
use super::{TidContext, Watch};
use crate::errno::Errno;
use crate::put_tid::{put_tid, wc_fill, RcvArrayWriter};
use crate::uapi::TidUpdate;

/// A TID_UPDATE between its pinning half ([`TidContext::tid_update_begin`]) and its
/// programming half ([`TidContext::tid_update_finish`]). It holds pinned pages, a TID
/// reservation and (2023) a cover notifier: finish it or abort it
/// ([`TidContext::tid_update_abort`]); dropping it leaks them.
#[must_use = "finish or abort the setup: it holds pinned pages"]
#[derive(Debug)]
pub struct PendingSetup {
    fd: u32,
    vaddr: u64,
    length: u32,
    cover: Option<(NotifierId, u64)>,
    pfns: Vec<Pfn>,
    psets: Vec<PageSet>,
    pageset_count: u32,
    reserved: u32,
    done: Option<TidUpdate>,
}

impl PendingSetup {
    /// The fd the setup runs on.
    pub fn fd(&self) -> u32 {
        self.fd
    }
    /// Pages pinned.
    pub fn pinned(&self) -> usize {
        self.pfns.len()
    }
    /// Pagesets found.
    pub fn n_psets(&self) -> usize {
        self.psets.len()
    }
    /// Pagesets this setup may program (`pageset_count`, after the tid_limit headroom).
    pub fn pageset_count(&self) -> u32 {
        self.pageset_count
    }
    /// The cover notifier watching the buffer (2023, caching on).
    pub fn cover_notifier(&self) -> Option<NotifierId> {
        self.cover.map(|(id, _)| id)
    }
    /// True when the first half already decided the result (only the `setup_error_exit`
    /// bug's early "success").
    pub fn is_done(&self) -> bool {
        self.done.is_some()
    }
}

/// hfi1 `num_user_pages`: pages spanned by `[addr, addr + len)`, computed in 64 bits and
/// truncated to 32 as the kernel's `unsigned int` return does (so `len == 0` at an aligned
/// address gives 0).
pub(crate) fn num_user_pages(addr: u64, len: u64) -> u32 {
    let mask = !(PAGE_SIZE - 1);
    let spage = addr & mask;
    let epage = addr.wrapping_add(len).wrapping_sub(1) & mask;
    1u64.wrapping_add(epage.wrapping_sub(spage) >> 12) as u32
}

fn notifier_errno(e: NotifierError) -> Errno {
    match e {
        NotifierError::NoMemory => Errno::NoMem,
        NotifierError::InvalidRange { .. } => Errno::Inval,
    }
}

fn pin_errno(e: PinError) -> Errno {
    match e {
        PinError::Fault(_) => Errno::Fault,
        PinError::NoMemory => Errno::NoMem,
        PinError::Busy => Errno::Busy,
    }
}

/// The "success" of the 2016–2020 error exits: no TID, tidcnt 0 and `length` as user space
/// passed it (the kernel never wrote them back).
fn unset_result(length: u32) -> TidUpdate {
    TidUpdate { tidlist: Vec::new(), length }
}

impl TidContext {
    /// TID_UPDATE on `fd`: pin, DMA-map and program `[vaddr, vaddr + length)`. Partial success
    /// is normal (pin stopped at a hole, tid_limit, groups ran out); the result says what was
    /// mapped.
    ///
    /// Errors: EBADF (fd not open), EINVAL (unaligned vaddr, length 0, more pages than the
    /// expected range), ENOMEM (pin limit, or the pin ran out of memory), EFAULT (first page not
    /// mapped, DMA map or notifier failure with nothing programmed, copy-out failure), ENOSPC
    /// (nothing pinned, no TID headroom, no entry programmed), EBUSY (2023: an unmap hit the
    /// buffer during setup; everything undone).
    pub fn tid_update(
        &mut self,
        fd: u32,
        hw: &mut dyn RcvArrayWriter,
        mm: &mut dyn PinDma,
        vaddr: u64,
        length: u32,
    ) -> Result<TidUpdate, Errno> {
        let p = self.tid_update_begin(fd, mm, vaddr, length)?;
        self.tid_update_finish(p, hw, mm)
    }

    /// First half of TID_UPDATE (steps 1–5): validate, cover notifier, pin limit, pin,
    /// pagesets, reservation. Errors as [`TidContext::tid_update`].
    pub fn tid_update_begin(
        &mut self,
        fd: u32,
        mm: &mut dyn PinDma,
        vaddr: u64,
        length: u32,
    ) -> Result<PendingSetup, Errno> {
        self.stats.updates += 1;
        self.setup_begin(fd, mm, vaddr, length).map_err(|e| self.stats.count_err(e))
    }

    /// Second half of TID_UPDATE (steps 6–13): program, settle, race check, copy-out. If the
    /// fd was closed in between, everything the setup holds is released and EBADF returned.
    pub fn tid_update_finish(
        &mut self,
        p: PendingSetup,
        hw: &mut dyn RcvArrayWriter,
        mm: &mut dyn PinDma,
    ) -> Result<TidUpdate, Errno> {
        let requested = p.length;
        let mut w = CountingWriter::new(hw);
        let r = self.setup_finish(p, &mut w, mm);
        self.stats.add_traffic(&w);
        match r {
            Ok(u) => {
                self.stats.updates_ok += 1;
                self.stats.update_tids += u.tidlist.len() as u64;
                self.stats.update_pages += u64::from(u.length) / PAGE_SIZE;
                if u.length < requested {
                    self.stats.partial_updates += 1;
                }
                Ok(u)
            }
            Err(e) => Err(self.stats.count_err(e)),
        }
    }

    /// Drop a setup between its halves: undo the reservation, remove the cover notifier,
    /// unpin everything it pinned.
    pub fn tid_update_abort(&mut self, mut p: PendingSetup, mm: &mut dyn PinDma) {
        self.release_setup(&mut p, mm);
    }

    fn setup_begin(
        &mut self,
        fd: u32,
        mm: &mut dyn PinDma,
        vaddr: u64,
        length: u32,
    ) -> Result<PendingSetup, Errno> {
        let beh = self.beh;
        let use_mn = self.open_fd_mut(fd)?.use_mn;
        // Step 1.
        if !beh.allow_unaligned_vaddr && !Va(vaddr).is_page_aligned() {
            return Err(Errno::Inval);
        }
        if !beh.allow_zero_length && length == 0 {
            return Err(Errno::Inval);
        }
        let npages = num_user_pages(vaddr, u64::from(length));
        if npages > self.expected_count {
            return Err(Errno::Inval);
        }
        let mut p = PendingSetup {
            fd,
            vaddr,
            length,
            cover: None,
            pfns: Vec::new(),
            psets: Vec::new(),
            pageset_count: 0,
            reserved: 0,
            done: None,
        };
        // Step 2: the cover notifier, read_begin before pinning.
        if use_mn && beh.cover_notifier && npages > 0 {
            let id = mm
                .notifier_insert(Va(vaddr), u64::from(npages) * PAGE_SIZE)
                .map_err(notifier_errno)?;
            self.notifiers.insert(id, Watch::Cover { unmap_seen: false, other_seen: false });
            p.cover = Some((id, mm.read_begin(id)));
        }
        // Step 3.
        let pfns = match self.pin_rcv_pages(fd, mm, vaddr, npages) {
            Ok(pfns) => pfns,
            Err(e) => {
                self.remove_cover(&mut p, mm);
                return Err(e);
            }
        };
        if pfns.is_empty() {
            self.remove_cover(&mut p, mm);
            if beh.setup_error_exit {
                p.done = Some(unset_result(length));
                return Ok(p);
            }
            return Err(Errno::NoSpc);
        }
        // Step 4.
        p.psets = find_phys_blocks(&pfns);
        p.pfns = pfns;
        // Step 5: headroom under tid_lock, reserved at once since 2023.
        let n_psets = p.psets.len() as u32;
        let mut overshoot = false;
        if let Some(st) = self.fds.get_mut(fd as usize) {
            let room = st.tid_limit.checked_sub(st.tid_used).unwrap_or_else(|| {
                overshoot = true;
                0
            });
            p.pageset_count = n_psets.min(room);
            if beh.reserve {
                st.tid_used = st.tid_used.saturating_add(p.pageset_count);
                p.reserved = p.pageset_count;
            }
        }
        if overshoot {
            self.stats.tid_limit_overshoot_count += 1;
        }
        if p.pageset_count == 0 {
            self.remove_cover(&mut p, mm);
            if beh.setup_error_exit {
                // 2020: `goto bail` returned 0 and skipped every unpin.
                self.leak(std::mem::take(&mut p.pfns));
                p.done = Some(unset_result(length));
                return Ok(p);
            }
            let pfns = std::mem::take(&mut p.pfns);
            self.unpin_buffer(fd, mm, &pfns);
            return Err(Errno::NoSpc);
        }
        Ok(p)
    }

    /// `pin_rcv_pages`: the pin limit, then pin; accounts `pinned_vm` and `tid_n_pinned`.
    fn pin_rcv_pages(
        &mut self,
        fd: u32,
        mm: &mut dyn PinDma,
        vaddr: u64,
        npages: u32,
    ) -> Result<Vec<Pfn>, Errno> {
        let nlocked = self.fd(fd).map_or(0, |s| s.tid_n_pinned);
        let params = CanPinParams::from_mm(
            &*mm,
            nlocked,
            u64::from(npages),
            self.cfg.user_ctxts,
            self.cfg.cache_size_mb,
        );
        if !can_pin_pages(self.beh.pin_variant, &params) {
            return Err(Errno::NoMem);
        }
        if npages == 0 {
            return Ok(Vec::new());
        }
        let pfns = mm.pin_pages(Va(vaddr), npages as usize).map_err(pin_errno)?;
        if pfns.is_empty() {
            return Ok(pfns);
        }
        mm.account_pinned(pfns.len() as i64);
        let counted =
            if self.beh.pinned_count_npages { u64::from(npages) } else { pfns.len() as u64 };
        if let Some(st) = self.fds.get_mut(fd as usize) {
            st.tid_n_pinned = st.tid_n_pinned.saturating_add(counted);
        }
        Ok(pfns)
    }

    fn setup_finish(
        &mut self,
        mut p: PendingSetup,
        hw: &mut dyn RcvArrayWriter,
        mm: &mut dyn PinDma,
    ) -> Result<TidUpdate, Errno> {
        if let Some(done) = p.done.take() {
            return Ok(done);
        }
        let fd = p.fd;
        let Some(use_mn) = self.open_fd(fd).map(|s| s.use_mn) else {
            self.release_setup(&mut p, mm);
            return Err(Errno::BadF);
        };
        let beh = self.beh;
        // Steps 6–10: program under exp_mutex.
        let (tidlist, error) = {
            let mut prog = Programmer {
                hw: &mut *hw,
                mm: &mut *mm,
                fd,
                use_mn,
                expected_base: self.expected_base,
                vaddr: p.vaddr,
                pfns: &p.pfns,
                psets: &p.psets,
                nodes: &mut self.nodes,
                notifiers: &mut self.notifiers,
                tidlist: Vec::new(),
            };
            let out = self.groups.setup(p.pageset_count as usize, &mut prog);
            (prog.tidlist, out.error)
        };
        let tididx = tidlist.len() as u32;
        // Pagesets are placed in order, so the TIDs cover pages [0, mapped_pages).
        let mapped_pages: u32 = p.psets.iter().take(tididx as usize).map(|s| s.count).sum();
        if tididx == 0 {
            // fail_unreserve / fail_unpin (2023); 2020 unpinned everything and returned `ret`,
            // which was 0 when the groups had simply run out.
            self.release_setup(&mut p, mm);
            if let Some(e) = error {
                return Err(e);
            }
            if beh.setup_error_exit {
                return Ok(unset_result(p.length));
            }
            return Err(Errno::NoSpc);
        }
        if let Some(st) = self.fds.get_mut(fd as usize) {
            if beh.reserve {
                st.tid_used = st.tid_used.saturating_sub(p.reserved.saturating_sub(tididx));
            } else {
                st.tid_used = st.tid_used.saturating_add(tididx);
            }
        }
        p.reserved = 0;
        let uncovered = p.pfns.split_off((mapped_pages as usize).min(p.pfns.len()));
        // 2023 unpins the uncovered pages before the race check; 2020 after the copy-out,
        // skipped when it failed.
        let mut uncovered = Some(uncovered);
        if !beh.setup_error_exit {
            self.unpin_uncovered(fd, mm, &mut uncovered);
        }
        // Step 11: did an invalidation hit the buffer during setup?
        if let Some((cover, seq)) = p.cover {
            let busy = self.cover_retry(&*mm, cover, seq);
            self.remove_cover(&mut p, mm);
            if busy {
                self.unpin_uncovered(fd, mm, &mut uncovered);
                let _ = self.clear_tids(fd, hw, mm, &tidlist);
                return Err(Errno::Busy);
            }
        }
        // Step 12: copy_to_user.
        let copyout_fails =
            self.fds.get_mut(fd as usize).is_some_and(|s| std::mem::take(&mut s.fail_next_copyout));
        if copyout_fails {
            self.stats.copyout_failures += 1;
            if !beh.copyout_bad_clear {
                let _ = self.clear_tids(fd, hw, mm, &tidlist);
            }
            if let Some(pages) = uncovered.take() {
                self.leak(pages);
            }
            return Err(Errno::Fault);
        }
        self.unpin_uncovered(fd, mm, &mut uncovered);
        let length = mapped_pages.saturating_mul(PAGE_SIZE as u32);
        Ok(TidUpdate { tidlist, length })
    }

    /// Undo everything a setup holds: reservation, cover notifier, pins.
    fn release_setup(&mut self, p: &mut PendingSetup, mm: &mut dyn PinDma) {
        if let Some(st) = self.fds.get_mut(p.fd as usize) {
            st.tid_used = st.tid_used.saturating_sub(p.reserved);
        }
        p.reserved = 0;
        self.remove_cover(p, mm);
        let pfns = std::mem::take(&mut p.pfns);
        self.unpin_buffer(p.fd, mm, &pfns);
    }

    /// 2023 `tid_cover_invalidate` only moves the sequence on UNMAP. The address space moves
    /// it on every event, so a retry is discounted when the callbacks this context received
    /// for the cover were all non-UNMAP. With no callback delivered (the invalidation ran where
    /// it could not reach this context, as in `PinFaults::after_pin`) the retry stands:
    /// a spurious EBUSY is allowed, a missed one is not.
    fn cover_retry(&self, mm: &dyn PinDma, cover: NotifierId, seq: u64) -> bool {
        let retry = mm.read_retry(cover, seq);
        match self.notifiers.get(&cover) {
            Some(Watch::Cover { unmap_seen, other_seen }) => retry && (*unmap_seen || !*other_seen),
            _ => retry,
        }
    }

    fn remove_cover(&mut self, p: &mut PendingSetup, mm: &mut dyn PinDma) {
        if let Some((id, _)) = p.cover.take() {
            mm.notifier_remove(id);
            self.notifiers.remove(&id);
        }
    }

    fn unpin_uncovered(&mut self, fd: u32, mm: &mut dyn PinDma, pages: &mut Option<Vec<Pfn>>) {
        if let Some(pages) = pages.take() {
            self.unpin_buffer(fd, mm, &pages);
        }
    }

    /// `unpin_rcv_pages(.., mapped = false)`: pages of the buffer that no TID holds.
    fn unpin_buffer(&mut self, fd: u32, mm: &mut dyn PinDma, pfns: &[Pfn]) {
        if pfns.is_empty() {
            return;
        }
        mm.unpin_pages(pfns, false);
        mm.account_pinned(-(pfns.len() as i64));
        if let Some(st) = self.fds.get_mut(fd as usize) {
            st.tid_n_pinned = st.tid_n_pinned.saturating_sub(pfns.len() as u64);
        }
    }

    /// Forget pinned pages for good (the 2020 error exits).
    fn leak(&mut self, pfns: Vec<Pfn>) {
        self.stats.leaked_pinned_pages += pfns.len() as u64;
        self.leaked.extend(pfns);
    }
}

/// The driver half of `program_rcvarray`: `set_rcvarray_entry` for a programmed slot, the WC
/// fill for the others.
struct Programmer<'a> {
    hw: &'a mut dyn RcvArrayWriter,
    mm: &'a mut dyn PinDma,
    fd: u32,
    use_mn: bool,
    expected_base: u32,
    vaddr: u64,
    pfns: &'a [Pfn],
    psets: &'a [PageSet],
    nodes: &'a mut BTreeMap<u32, TidNode>,
    notifiers: &'a mut BTreeMap<NotifierId, Watch>,
    /// tidinfo of every entry programmed, in pageset order.
    tidlist: Vec<TidInfo>,
}

impl Programmer<'_> {
    /// `set_rcvarray_entry`: DMA-map the pageset, watch its range (caching on), record the
    /// node, write the entry. DMA-map and notifier failures are EFAULT, as in hfi1.
    fn set_rcvarray_entry(&mut self, rcventry: u32, pset: usize) -> Result<(), Errno> {
        let ps = *self.psets.get(pset).ok_or(Errno::Inval)?;
        let rel = rcventry.checked_sub(self.expected_base).ok_or(Errno::Inval)?;
        let pages = self.pfns.get(ps.idx as usize..ps.end() as usize).ok_or(Errno::Inval)?;
        let first = *pages.first().ok_or(Errno::Inval)?;
        let size = BufSize::from_pages(u64::from(ps.count)).ok_or(Errno::Inval)?;
        let tidinfo = TidInfo::for_entry(rel, ps.count).ok_or(Errno::Inval)?;
        let npages = ps.count as usize;
        let dma = self.mm.dma_map(first, npages).map_err(|_| Errno::Fault)?;
        let vaddr = self.vaddr.wrapping_add(u64::from(ps.idx) * PAGE_SIZE);
        let notifier = if self.use_mn {
            match self.mm.notifier_insert(Va(vaddr), u64::from(ps.count) * PAGE_SIZE) {
                Ok(id) => Some(id),
                Err(_) => {
                    self.mm.dma_unmap(dma, npages);
                    return Err(Errno::Fault);
                }
            }
        } else {
            None
        };
        if let Some(id) = notifier {
            self.notifiers.insert(id, Watch::Node(rel));
        }
        self.nodes.insert(
            rel,
            TidNode {
                fd: self.fd,
                rcventry,
                rel,
                vaddr,
                npages: ps.count,
                pfns: pages.to_vec(),
                dma,
                notifier,
                released: false,
                invalidated: false,
            },
        );
        put_tid(self.hw, rcventry, PtType::Expected, dma.raw(), size);
        self.tidlist.push(tidinfo);
        Ok(())
    }
}

impl SlotProgrammer for Programmer<'_> {
    type Error = Errno;

    fn fill(&mut self, abs_entry: u32) {
        wc_fill(self.hw, abs_entry);
    }

    fn program(&mut self, abs_entry: u32, pset: usize) -> Result<(), Errno> {
        self.set_rcvarray_entry(abs_entry, pset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn num_user_pages_matches_hfi1() {
        assert_eq!(num_user_pages(0x1000, 0x1000), 1);
        assert_eq!(num_user_pages(0x1000, 0x1001), 2);
        assert_eq!(num_user_pages(0x1fff, 2), 2);
        assert_eq!(num_user_pages(0x1000, 64 << 10), 16);
        // Length 0 at an aligned address: 1 + (2^64 - 4096) >> 12 = 2^52, truncated to 0.
        assert_eq!(num_user_pages(0x1000, 0), 0);
        // Length 0 inside a page: that page.
        assert_eq!(num_user_pages(0x1234, 0), 1);
    }

    #[test]
    fn errno_mapping() {
        assert_eq!(pin_errno(PinError::Fault(Va(0))), Errno::Fault);
        assert_eq!(pin_errno(PinError::NoMemory), Errno::NoMem);
        assert_eq!(pin_errno(PinError::Busy), Errno::Busy);
        assert_eq!(notifier_errno(NotifierError::NoMemory), Errno::NoMem);
        assert_eq!(
            notifier_errno(NotifierError::InvalidRange { start: Va(0), len: 0 }),
            Errno::Inval
        );
    }
}
