//! The begin phases of the operations that remove or change a mapping: munmap, shrink, mremap
//! (grow in place, move, shrink), madvise(DONTNEED), and faked invalidations that change no
//! mapping (mprotect, migration). Each validates its request and returns a [`PendingUnmap`]
//! listing the invalidations to deliver; nothing changes until the commit (`pending.rs`).
//! The `_with` helpers run begin → callback per invalidation → commit.

use crate::error::UnmapError;
use crate::types::{page_align_up, Va};

use super::pending::PendingOp;
use super::{AddressSpace, InvalidateEvent, Invalidation, PendingUnmap, TASK_SIZE};

impl AddressSpace {
    /// Begin `munmap(va, len)`. Unmapping a range with nothing mapped is allowed and produces
    /// no invalidations (Linux returns 0).
    pub fn begin_munmap(&mut self, va: Va, len: u64) -> Result<PendingUnmap, UnmapError> {
        if self.pending.is_some() {
            return Err(UnmapError::Busy);
        }
        let (start, end) = checked_range(va, len)?;
        let Some((s, e)) = self.mapped_span(start, end) else {
            return Ok(self.start_pending(PendingOp::Nop { result: start }, 0, 0, None));
        };
        let op = PendingOp::Unmap { start, end, result: start };
        Ok(self.start_pending(op, s, e, Some(InvalidateEvent::Unmap)))
    }

    /// Begin shrinking the mapping `[va, va+old_len)` to `new_len` bytes: the tail is unmapped
    /// (mremap to a smaller size). `[va, va+old_len)` must lie in one mapping; `new_len` must be
    /// non-zero and not larger than `old_len`.
    pub fn begin_shrink(
        &mut self,
        va: Va,
        old_len: u64,
        new_len: u64,
    ) -> Result<PendingUnmap, UnmapError> {
        if self.pending.is_some() {
            return Err(UnmapError::Busy);
        }
        let (start, old_end) = checked_range(va, old_len)?;
        let new_alen = page_align_up(new_len)
            .filter(|&l| l > 0 && l <= old_end - start)
            .ok_or(UnmapError::InvalidLength(new_len))?;
        if !self.in_one_vma(start, old_end) {
            return Err(UnmapError::NotMapped(va));
        }
        Ok(self.shrink_op(start, start + new_alen, old_end))
    }

    /// Begin `mremap(old_va, old_len, new_len, may_move ? MREMAP_MAYMOVE : 0)`. The old range
    /// must lie in one mapping. Shrinking unmaps the tail; growing extends in place when the
    /// following range is free and the old range ends its mapping, otherwise moves (if allowed)
    /// to a free range, sending [`InvalidateEvent::Unmap`] for the old range. [`Self::commit`]
    /// returns the resulting address.
    pub fn begin_mremap(
        &mut self,
        old_va: Va,
        old_len: u64,
        new_len: u64,
        may_move: bool,
    ) -> Result<PendingUnmap, UnmapError> {
        if self.pending.is_some() {
            return Err(UnmapError::Busy);
        }
        let (old, old_end) = checked_range(old_va, old_len)?;
        let new_alen =
            page_align_up(new_len).filter(|&l| l > 0).ok_or(UnmapError::InvalidLength(new_len))?;
        let Some((vma_start, vma)) = self.vma_containing(old) else {
            return Err(UnmapError::NotMapped(old_va));
        };
        if old_end > vma.end {
            return Err(UnmapError::NotMapped(old_va));
        }
        let old_alen = old_end - old;
        if new_alen < old_alen {
            return Ok(self.shrink_op(old, old + new_alen, old_end));
        }
        if new_alen == old_alen {
            return Ok(self.start_pending(PendingOp::Nop { result: old }, 0, 0, None));
        }
        let contiguity = vma.contiguity;
        let grow_end = old.checked_add(new_alen).filter(|&e| e <= TASK_SIZE);
        if let Some(ge) = grow_end {
            if old_end == vma.end && self.range_free(old_end, ge) {
                let op = PendingOp::Grow {
                    vma_start,
                    start: old,
                    old_len: old_alen,
                    new_len: new_alen,
                    contiguity,
                };
                return Ok(self.start_pending(op, 0, 0, None));
            }
        }
        if !may_move {
            return Err(UnmapError::NoSpace(old_va));
        }
        let new = self.find_gap(new_alen).ok_or(UnmapError::NoSpace(old_va))?;
        let op = PendingOp::Move { old, old_len: old_alen, new, new_len: new_alen, contiguity };
        Ok(self.start_pending(op, old, old_end, Some(InvalidateEvent::Unmap)))
    }

    /// Begin `madvise(va, len, MADV_DONTNEED)`: the frames go (orphaned if pinned), the range
    /// stays mapped, the next touch or pin faults fresh zero frames in. The whole range must be
    /// mapped (else ENOMEM, nothing done). Sends [`InvalidateEvent::Clear`]. `len == 0` is a
    /// no-op.
    pub fn begin_madvise_dontneed(&mut self, va: Va, len: u64) -> Result<PendingUnmap, UnmapError> {
        if self.pending.is_some() {
            return Err(UnmapError::Busy);
        }
        if !va.is_page_aligned() {
            return Err(UnmapError::Unaligned(va));
        }
        if len == 0 {
            return Ok(self.start_pending(PendingOp::Nop { result: va.0 }, 0, 0, None));
        }
        let (start, end) = checked_range(va, len)?;
        if self.first_unmapped(start, end).is_some() {
            return Err(UnmapError::NotMapped(va));
        }
        let op = PendingOp::Clear { start, end };
        Ok(self.start_pending(op, start, end, Some(InvalidateEvent::Clear)))
    }

    /// Fake an invalidation of `[va, va+len)` with `event` that changes no mapping (mprotect,
    /// page migration, a spurious notifier call). Commit changes nothing but retires the
    /// sequence numbers.
    pub fn begin_invalidate(
        &mut self,
        va: Va,
        len: u64,
        event: InvalidateEvent,
    ) -> Result<PendingUnmap, UnmapError> {
        if self.pending.is_some() {
            return Err(UnmapError::Busy);
        }
        let (start, end) = checked_range(va, len)?;
        Ok(self.start_pending(PendingOp::Nop { result: start }, start, end, Some(event)))
    }

    /// `munmap` with `f` as the notifier callback: begin, deliver, commit.
    pub fn munmap_with<F>(&mut self, va: Va, len: u64, f: F) -> Result<(), UnmapError>
    where
        F: FnMut(&mut AddressSpace, &Invalidation),
    {
        let token = self.begin_munmap(va, len)?;
        self.complete_with(token, f).map(|_| ())
    }

    /// Shrink with `f` as the notifier callback.
    pub fn shrink_with<F>(
        &mut self,
        va: Va,
        old_len: u64,
        new_len: u64,
        f: F,
    ) -> Result<(), UnmapError>
    where
        F: FnMut(&mut AddressSpace, &Invalidation),
    {
        let token = self.begin_shrink(va, old_len, new_len)?;
        self.complete_with(token, f).map(|_| ())
    }

    /// mremap with `f` as the notifier callback; returns the resulting address.
    pub fn mremap_with<F>(
        &mut self,
        old_va: Va,
        old_len: u64,
        new_len: u64,
        may_move: bool,
        f: F,
    ) -> Result<Va, UnmapError>
    where
        F: FnMut(&mut AddressSpace, &Invalidation),
    {
        let token = self.begin_mremap(old_va, old_len, new_len, may_move)?;
        self.complete_with(token, f)
    }

    /// madvise(DONTNEED) with `f` as the notifier callback.
    pub fn madvise_dontneed_with<F>(&mut self, va: Va, len: u64, f: F) -> Result<(), UnmapError>
    where
        F: FnMut(&mut AddressSpace, &Invalidation),
    {
        let token = self.begin_madvise_dontneed(va, len)?;
        self.complete_with(token, f).map(|_| ())
    }

    fn shrink_op(&mut self, start: u64, cut: u64, old_end: u64) -> PendingUnmap {
        if cut >= old_end {
            return self.start_pending(PendingOp::Nop { result: start }, 0, 0, None);
        }
        let op = PendingOp::Unmap { start: cut, end: old_end, result: start };
        self.start_pending(op, cut, old_end, Some(InvalidateEvent::Unmap))
    }
}

/// Validate an unmap-style `(va, len)`: aligned start, non-zero length, no wrap, inside the user
/// range's addressable span. Returns `[start, end)` with `end` page aligned.
fn checked_range(va: Va, len: u64) -> Result<(u64, u64), UnmapError> {
    if !va.is_page_aligned() {
        return Err(UnmapError::Unaligned(va));
    }
    let alen = page_align_up(len).filter(|&l| l > 0).ok_or(UnmapError::InvalidLength(len))?;
    let end = va.0.checked_add(alen).ok_or(UnmapError::InvalidLength(len))?;
    Ok((va.0, end))
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{frames_of, space, PS};
    use super::*;
    use crate::frames::{Contiguity, FrameState};
    use crate::types::{NotifierId, OwnerId, Pfn};

    #[test]
    fn munmap_invalidates_exactly_overlapping_notifiers() {
        let mut s = space(64);
        let va = s.mmap(16 * PS, Contiguity::Contiguous).unwrap();
        let n_head = s.notifier_insert(va, 4 * PS).unwrap();
        let n_mid = s.notifier_insert(Va(va.0 + 6 * PS), 2 * PS).unwrap();
        let n_tail = s.notifier_insert(Va(va.0 + 12 * PS), 4 * PS).unwrap();
        // Partial overlap by one byte counts.
        let n_edge = s.notifier_insert(Va(va.0 + 8 * PS - 1), 1).unwrap();
        let seqs: Vec<u64> =
            [n_head, n_mid, n_tail, n_edge].iter().map(|&n| s.read_begin(n)).collect();
        let token = s.begin_munmap(Va(va.0 + 5 * PS), 3 * PS).unwrap();
        let got: Vec<(NotifierId, InvalidateEvent)> =
            token.invalidations().iter().map(|i| (i.notifier, i.event)).collect();
        assert_eq!(got, vec![(n_mid, InvalidateEvent::Unmap), (n_edge, InvalidateEvent::Unmap)]);
        let inv = token.invalidations()[0];
        assert_eq!((inv.start, inv.end), (Va(va.0 + 5 * PS), Va(va.0 + 8 * PS)));
        assert_eq!(inv.seq, seqs[1] + 1);
        // Begin changed nothing yet, but readers already see the invalidation.
        assert!(s.translate(Va(va.0 + 6 * PS)).is_some());
        assert!(s.read_retry(n_mid, seqs[1]));
        assert!(!s.read_retry(n_head, seqs[0]));
        assert_eq!(s.commit(token), Ok(Va(va.0 + 5 * PS)));
        assert!(s.read_retry(n_mid, seqs[1]));
        assert!(s.read_retry(n_edge, seqs[3]));
        assert!(!s.read_retry(n_head, seqs[0]));
        assert!(!s.read_retry(n_tail, seqs[2]));
        assert_eq!(s.vmas(), vec![(va, 5 * PS), (Va(va.0 + 8 * PS), 8 * PS)]);
        assert_eq!(s.mapped_pages(), 13);
        assert_eq!(s.stats().invalidations_sent, 2);
        s.check_invariants().unwrap();
    }

    #[test]
    fn munmap_range_is_clipped_to_mappings() {
        let mut s = space(16);
        let va = Va(0x2000_0000);
        s.mmap_fixed(Va(va.0 + 2 * PS), 2 * PS, Contiguity::Contiguous).unwrap();
        let n = s.notifier_insert(va, 16 * PS).unwrap();
        let lonely = s.notifier_insert(Va(0x3000_0000), PS).unwrap();
        let t = s.begin_munmap(va, 8 * PS).unwrap();
        assert_eq!(t.invalidations().len(), 1);
        let i = t.invalidations()[0];
        assert_eq!((i.notifier, i.start, i.end), (n, Va(va.0 + 2 * PS), Va(va.0 + 4 * PS)));
        s.commit(t).unwrap();
        // Nothing mapped under the lonely notifier: no invalidation at all.
        let seq = s.read_begin(lonely);
        let t = s.begin_munmap(Va(0x3000_0000), PS).unwrap();
        assert!(t.invalidations().is_empty());
        s.commit(t).unwrap();
        assert!(!s.read_retry(lonely, seq));
        assert_eq!(s.begin_munmap(Va(1), PS).unwrap_err(), UnmapError::Unaligned(Va(1)));
        assert_eq!(s.begin_munmap(va, 0).unwrap_err(), UnmapError::InvalidLength(0));
        assert_eq!(
            s.begin_munmap(Va(!0xfff), 2 * PS).unwrap_err(),
            UnmapError::InvalidLength(2 * PS)
        );
    }

    #[test]
    fn shrink_unmaps_the_tail_only() {
        let mut s = space(16);
        let va = s.mmap(8 * PS, Contiguity::Contiguous).unwrap();
        let head = s.notifier_insert(va, 2 * PS).unwrap();
        let tail = s.notifier_insert(Va(va.0 + 6 * PS), 2 * PS).unwrap();
        let mut seen = Vec::new();
        s.shrink_with(va, 8 * PS, 3 * PS, |_, inv| seen.push(*inv)).unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].notifier, tail);
        assert_eq!((seen[0].start, seen[0].end), (Va(va.0 + 3 * PS), Va(va.0 + 8 * PS)));
        assert!(seen[0].event.is_unmap());
        assert_eq!(s.vmas(), vec![(va, 3 * PS)]);
        assert_eq!(s.read_begin(head), 0);
        assert_eq!(s.pool().with(|p| p.free_frames()), 13);
        assert_eq!(
            s.begin_shrink(va, 3 * PS, 4 * PS).unwrap_err(),
            UnmapError::InvalidLength(4 * PS)
        );
        assert_eq!(s.begin_shrink(va, 3 * PS, 0).unwrap_err(), UnmapError::InvalidLength(0));
        assert_eq!(s.begin_shrink(va, 4 * PS, PS).unwrap_err(), UnmapError::NotMapped(va));
        // Same size: nothing to do.
        s.shrink_with(va, 3 * PS, 3 * PS, |_, _| panic!("no invalidation expected")).unwrap();
        s.check_invariants().unwrap();
    }

    #[test]
    fn mremap_grow_in_place_sends_nothing() {
        let mut s = space(16);
        let va = s.mmap(2 * PS, Contiguity::Contiguous).unwrap();
        let n = s.notifier_insert(va, 2 * PS).unwrap();
        let got =
            s.mremap_with(va, 2 * PS, 4 * PS, false, |_, _| panic!("no invalidation")).unwrap();
        assert_eq!(got, va);
        assert_eq!(s.vmas(), vec![(va, 4 * PS)]);
        assert_eq!(frames_of(&s, va, 4).iter().flatten().count(), 4);
        assert!(!s.read_retry(n, 0));
        s.check_invariants().unwrap();
    }

    #[test]
    fn mremap_move_sends_unmap_for_old_range_and_moves_frames() {
        let mut s = space(32);
        let va = s.mmap(4 * PS, Contiguity::Contiguous).unwrap();
        let blocker = s.mmap(PS, Contiguity::Contiguous).unwrap();
        assert_eq!(blocker, Va(va.0 + 4 * PS));
        let old_frames = frames_of(&s, va, 4);
        let pinned = s.pin_pages(va, 1).unwrap();
        let n = s.notifier_insert(Va(va.0 + 3 * PS), PS).unwrap();
        assert_eq!(s.begin_mremap(va, 4 * PS, 6 * PS, false).unwrap_err(), UnmapError::NoSpace(va));
        let mut seen = Vec::new();
        let new = s.mremap_with(va, 4 * PS, 6 * PS, true, |_, inv| seen.push(*inv)).unwrap();
        assert_eq!(new, Va(blocker.0 + PS));
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].notifier, n);
        assert_eq!(seen[0].event, InvalidateEvent::Unmap);
        assert_eq!((seen[0].start, seen[0].end), (va, Va(va.0 + 4 * PS)));
        // Frames moved with the mapping; the pinned one is still mapped (at its new address).
        assert_eq!(frames_of(&s, new, 4), old_frames);
        assert_eq!(frames_of(&s, new, 6).iter().flatten().count(), 6);
        assert_eq!(frames_of(&s, va, 4), vec![None; 4]);
        assert_eq!(
            s.frame_state(pinned[0]),
            Some(FrameState::Mapped { owner: OwnerId(1), va: new })
        );
        assert_eq!(s.vmas(), vec![(blocker, PS), (new, 6 * PS)]);
        s.check_invariants().unwrap();
    }

    #[test]
    fn mremap_edge_cases() {
        let mut s = space(8);
        let va = s.mmap(4 * PS, Contiguity::Contiguous).unwrap();
        let b = s.mmap(2 * PS, Contiguity::Contiguous).unwrap();
        // Not in one VMA.
        assert_eq!(
            s.begin_mremap(va, 6 * PS, 8 * PS, true).unwrap_err(),
            UnmapError::NotMapped(va)
        );
        assert_eq!(
            s.begin_mremap(Va(0x1000_0000), PS, 2 * PS, true).unwrap_err(),
            UnmapError::NotMapped(Va(0x1000_0000))
        );
        assert_eq!(s.begin_mremap(va, PS, 0, true).unwrap_err(), UnmapError::InvalidLength(0));
        // Shrinking is a tail munmap.
        let n = s.notifier_insert(Va(va.0 + 3 * PS), PS).unwrap();
        let t = s.begin_mremap(va, 4 * PS, 2 * PS, true).unwrap();
        assert_eq!(t.invalidations().len(), 1);
        assert_eq!(s.commit(t), Ok(va));
        assert!(s.read_retry(n, 0));
        // Same size: no-op.
        let t = s.begin_mremap(va, 2 * PS, 2 * PS, true).unwrap();
        assert!(t.invalidations().is_empty());
        assert_eq!(s.commit(t), Ok(va));
        // Growth that cannot be populated fails at commit and changes nothing. In place: 4
        // frames in use, 4 free, 6 more wanted; no invalidation is sent for in-place growth.
        let n2 = s.notifier_insert(b, PS).unwrap();
        let t = s.begin_mremap(b, 2 * PS, 8 * PS, true).unwrap();
        assert!(t.invalidations().is_empty());
        assert_eq!(s.commit(t), Err(UnmapError::NoMemory));
        assert!(!s.has_pending());
        assert!(!s.read_retry(n2, 0));
        // Moving (a blocker sits right after b): the old range's notifier hears Unmap, the
        // commit fails, the layout is unchanged, and the invalidation was merely spurious.
        let blocker = Va(b.0 + 2 * PS);
        s.mmap_fixed(blocker, PS, Contiguity::Contiguous).unwrap();
        let t = s.begin_mremap(b, 2 * PS, 8 * PS, true).unwrap();
        assert_eq!(t.invalidations().len(), 1);
        assert_eq!(s.commit(t), Err(UnmapError::NoMemory));
        assert!(!s.has_pending());
        assert!(s.read_retry(n2, 0));
        assert_eq!(s.vmas(), vec![(va, 2 * PS), (b, 2 * PS), (blocker, PS)]);
        assert_eq!(s.mapped_pages(), 5);
        s.check_invariants().unwrap();
    }

    #[test]
    fn madvise_dontneed_clears_and_refaults() {
        let mut s = space(16);
        let va = s.mmap(4 * PS, Contiguity::Contiguous).unwrap();
        let old = frames_of(&s, va, 4);
        let pinned = s.pin_pages(Va(va.0 + PS), 1).unwrap();
        let n = s.notifier_insert(va, 4 * PS).unwrap();
        let mut seen = Vec::new();
        s.madvise_dontneed_with(va, 2 * PS, |_, inv| seen.push(*inv)).unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].notifier, n);
        assert_eq!(seen[0].event, InvalidateEvent::Clear);
        assert!(!seen[0].event.is_unmap());
        // Still mapped, not present; the pinned frame is an orphan, the other one is free.
        assert!(s.is_mapped(va));
        assert_eq!(s.translate(va), None);
        assert_eq!(s.translate(Va(va.0 + PS)), None);
        assert_eq!(s.frame_state(pinned[0]), Some(FrameState::Orphan { owner: OwnerId(1) }));
        assert_eq!(s.frame_state(old[0].unwrap()), Some(FrameState::Free));
        assert_eq!(s.vmas(), vec![(va, 4 * PS)]);
        // A pin faults fresh frames in (one contiguous run of 2, first fit: old[0] is alone
        // between the base and the orphan, so the run comes from after the mapping), never the
        // orphan the driver still holds.
        let again = s.pin_pages(va, 4).unwrap();
        assert_eq!(again.len(), 4);
        assert_eq!(&again[..2], &[Pfn(0x1004), Pfn(0x1005)]);
        assert!(!again.contains(&pinned[0]));
        assert_eq!(&again[2..], &[old[2].unwrap(), old[3].unwrap()]);
        assert_eq!(s.stats().pages_faulted, 2);
        // Unmapped part of the range: ENOMEM, nothing done.
        assert_eq!(s.begin_madvise_dontneed(va, 8 * PS).unwrap_err(), UnmapError::NotMapped(va));
        assert_eq!(
            s.begin_madvise_dontneed(Va(va.0 + 1), PS).unwrap_err(),
            UnmapError::Unaligned(Va(va.0 + 1))
        );
        let t = s.begin_madvise_dontneed(va, 0).unwrap();
        assert!(t.invalidations().is_empty());
        s.commit(t).unwrap();
        s.unpin_pages(&again, false);
        s.unpin_pages(&pinned, false);
        assert_eq!(s.total_pins(), 0);
        s.check_invariants().unwrap();
    }
}
