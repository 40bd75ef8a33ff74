//! VMAs and the page table: mmap (first fit from the mmap base, or fixed with
//! `MAP_FIXED_NOREPLACE` semantics), populated at map time; `touch` and the pin path fault
//! pages in after madvise(DONTNEED) with the VMA's [`Contiguity`]; translation and frame
//! queries; and the page-table and VMA edits the commit phase applies (drop, split, grow).

use crate::error::{MmapError, UnmapError};
use crate::frames::{Contiguity, FrameState};
use crate::types::{page_align_up, OwnerId, Pfn, Va, PAGE_SHIFT, PAGE_SIZE};

use super::{AddressSpace, MMAP_MIN_ADDR, TASK_SIZE};

#[derive(Clone, Copy, Debug)]
pub(super) struct Vma {
    pub(super) end: u64,
    pub(super) contiguity: Contiguity,
}

impl AddressSpace {
    /// Set where `mmap` starts searching (clamped to the user range, page aligned down).
    pub fn set_mmap_base(&mut self, base: Va) {
        self.mmap_base = base.page().0.clamp(MMAP_MIN_ADDR, TASK_SIZE);
    }

    /// The frame backing `va`, if the page is present.
    pub fn translate(&self, va: Va) -> Option<Pfn> {
        self.ptes.get(&va.page().0).copied()
    }

    /// True when `va` lies in a mapping (present or not).
    pub fn is_mapped(&self, va: Va) -> bool {
        self.vma_containing(va.0).is_some()
    }

    /// Present pages in this space.
    pub fn mapped_pages(&self) -> u64 {
        self.ptes.len() as u64
    }

    /// The mappings as `(start, len)`, ascending.
    pub fn vmas(&self) -> Vec<(Va, u64)> {
        self.vmas.iter().map(|(&s, v)| (Va(s), v.end.saturating_sub(s))).collect()
    }

    /// State of a frame of the shared pool.
    pub fn frame_state(&self, pfn: Pfn) -> Option<FrameState> {
        self.pool.with(|p| p.state(pfn))
    }

    /// Owner of a mapped or orphaned frame.
    pub fn owner_of(&self, pfn: Pfn) -> Option<OwnerId> {
        self.pool.with(|p| p.owner_of(pfn))
    }

    /// Map `len` bytes (rounded up to pages) at a free address chosen first-fit from the mmap
    /// base, populated with frames laid out per `contiguity`.
    pub fn mmap(&mut self, len: u64, contiguity: Contiguity) -> Result<Va, MmapError> {
        if self.pending.is_some() {
            return Err(MmapError::Busy);
        }
        let alen = map_len(len)?;
        let start = self.find_gap(alen).ok_or(MmapError::NoSpace(alen))?;
        self.map_new(start, alen, contiguity)?;
        Ok(Va(start))
    }

    /// Map `len` bytes at exactly `va` (`MAP_FIXED_NOREPLACE`: the range must be free).
    pub fn mmap_fixed(
        &mut self,
        va: Va,
        len: u64,
        contiguity: Contiguity,
    ) -> Result<Va, MmapError> {
        if self.pending.is_some() {
            return Err(MmapError::Busy);
        }
        if !va.is_page_aligned() {
            return Err(MmapError::Unaligned(va));
        }
        let alen = map_len(len)?;
        let end = va.0.checked_add(alen).ok_or(MmapError::OutOfRange(va))?;
        if va.0 < MMAP_MIN_ADDR || end > TASK_SIZE {
            return Err(MmapError::OutOfRange(va));
        }
        if !self.range_free(va.0, end) {
            return Err(MmapError::Overlaps(va));
        }
        self.map_new(va.0, alen, contiguity)?;
        Ok(va)
    }

    /// Fault in every non-present page of `[va, va+len)` (rounded out to pages), as a user
    /// touching the memory would after madvise(DONTNEED). Returns the pages faulted in. The
    /// whole range must be mapped. Running out of frames part way leaves the pages faulted so
    /// far in place.
    pub fn touch(&mut self, va: Va, len: u64) -> Result<u64, MmapError> {
        if self.pending.is_some() {
            return Err(MmapError::Busy);
        }
        if len == 0 {
            return Ok(0);
        }
        let start = va.page().0;
        let end =
            va.0.checked_add(len).and_then(page_align_up).ok_or(MmapError::InvalidLength(len))?;
        if let Some(hole) = self.first_unmapped(start, end) {
            return Err(MmapError::NotMapped(Va(hole)));
        }
        let mut faulted = 0u64;
        let mut cur = start;
        while cur < end {
            if self.ptes.contains_key(&cur) {
                cur += PAGE_SIZE;
                continue;
            }
            let n = self.fault_run(cur, (end - cur) >> PAGE_SHIFT);
            if n == 0 {
                return Err(MmapError::NoMemory);
            }
            faulted += n;
            cur += n << PAGE_SHIFT;
        }
        Ok(faulted)
    }

    pub(super) fn vma_containing(&self, addr: u64) -> Option<(u64, Vma)> {
        let (&s, v) = self.vmas.range(..=addr).next_back()?;
        (addr < v.end).then_some((s, *v))
    }

    pub(super) fn range_free(&self, start: u64, end: u64) -> bool {
        match self.vmas.range(..end).next_back() {
            Some((_, v)) => v.end <= start,
            None => true,
        }
    }

    /// `[start, end)` lies inside a single VMA.
    pub(super) fn in_one_vma(&self, start: u64, end: u64) -> bool {
        self.vma_containing(start).is_some_and(|(_, v)| end <= v.end)
    }

    /// First address of `[start, end)` not covered by a VMA.
    pub(super) fn first_unmapped(&self, start: u64, end: u64) -> Option<u64> {
        let mut cur = start;
        while cur < end {
            match self.vma_containing(cur) {
                Some((_, v)) => cur = v.end,
                None => return Some(cur),
            }
        }
        None
    }

    /// `[start, end)` clipped to the span of the VMAs overlapping it.
    pub(super) fn mapped_span(&self, start: u64, end: u64) -> Option<(u64, u64)> {
        let mut lo: Option<u64> = None;
        let mut hi = 0u64;
        let first = self.vma_containing(start).map_or(start, |(s, _)| s);
        for (&s, v) in self.vmas.range(first..end) {
            if v.end <= start {
                continue;
            }
            lo.get_or_insert(s.max(start));
            hi = v.end.min(end);
        }
        lo.map(|l| (l, hi))
    }

    /// First-fit free range of `len` bytes at or above the mmap base.
    pub(super) fn find_gap(&self, len: u64) -> Option<u64> {
        let mut cur = self.mmap_base;
        for (&s, v) in &self.vmas {
            if v.end <= cur {
                continue;
            }
            if s >= cur && s - cur >= len {
                return Some(cur);
            }
            cur = cur.max(v.end);
        }
        let end = cur.checked_add(len)?;
        (end <= TASK_SIZE).then_some(cur)
    }

    fn map_new(&mut self, start: u64, alen: u64, contiguity: Contiguity) -> Result<(), MmapError> {
        let n = alen >> PAGE_SHIFT;
        let owner = self.owner;
        let pfns = self
            .pool
            .with(|p| p.alloc(owner, Va(start), n, contiguity))
            .map_err(|_| MmapError::NoMemory)?;
        self.vmas.insert(start, Vma { end: start + alen, contiguity });
        self.insert_ptes(start, &pfns);
        Ok(())
    }

    pub(super) fn insert_ptes(&mut self, start: u64, pfns: &[Pfn]) {
        for (i, &pfn) in pfns.iter().enumerate() {
            self.ptes.insert(start + ((i as u64) << PAGE_SHIFT), pfn);
        }
    }

    /// Fault in the run of consecutive non-present pages starting at `page` (at most
    /// `max_pages`, inside its VMA, limited by the free frames). Returns the pages faulted.
    pub(super) fn fault_run(&mut self, page: u64, max_pages: u64) -> u64 {
        let Some((_, vma)) = self.vma_containing(page) else {
            return 0;
        };
        let mut n = 0u64;
        while n < max_pages {
            let p = page + (n << PAGE_SHIFT);
            if p >= vma.end || self.ptes.contains_key(&p) {
                break;
            }
            n += 1;
        }
        let owner = self.owner;
        let pfns = self.pool.with(|p| {
            let n = n.min(p.free_frames());
            p.alloc(owner, Va(page), n, vma.contiguity)
        });
        let Ok(pfns) = pfns else {
            return 0;
        };
        self.insert_ptes(page, &pfns);
        let got = pfns.len() as u64;
        self.stats.pages_faulted += got;
        got
    }

    pub(super) fn alloc_extra(
        &mut self,
        at: u64,
        bytes: u64,
        contiguity: Contiguity,
    ) -> Result<Vec<Pfn>, UnmapError> {
        let owner = self.owner;
        self.pool
            .with(|p| p.alloc(owner, Va(at), bytes >> PAGE_SHIFT, contiguity))
            .map_err(|_| UnmapError::NoMemory)
    }

    /// Remove the present pages of `[start, end)`, freeing or orphaning their frames.
    pub(super) fn drop_ptes(&mut self, start: u64, end: u64) {
        let gone: Vec<(u64, Pfn)> =
            self.ptes.range(start..end).map(|(&va, &pfn)| (va, pfn)).collect();
        for &(va, _) in &gone {
            self.ptes.remove(&va);
        }
        self.pool.with(|p| {
            for &(_, pfn) in &gone {
                // Present pages are Mapped (invariant); unmap cannot fail.
                let _ = p.unmap(pfn);
            }
        });
    }

    /// Cut `[start, end)` out of the VMAs, splitting those that straddle it.
    pub(super) fn remove_vma_range(&mut self, start: u64, end: u64) {
        let first = self.vma_containing(start).map_or(start, |(s, _)| s);
        let hit: Vec<(u64, Vma)> = self
            .vmas
            .range(first..end)
            .filter(|(_, v)| v.end > start)
            .map(|(&s, &v)| (s, v))
            .collect();
        for (s, v) in hit {
            self.vmas.remove(&s);
            if s < start {
                self.vmas.insert(s, Vma { end: start, contiguity: v.contiguity });
            }
            if v.end > end {
                self.vmas.insert(end, Vma { end: v.end, contiguity: v.contiguity });
            }
        }
    }
}

/// `len` rounded up to pages; 0 or overflowing lengths are invalid.
fn map_len(len: u64) -> Result<u64, MmapError> {
    page_align_up(len).filter(|&l| l > 0).ok_or(MmapError::InvalidLength(len))
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{frames_of, pool, space, PS};
    use super::super::DEFAULT_MMAP_BASE;
    use super::*;

    #[test]
    fn mmap_first_fit_and_populated() {
        let mut s = space(64);
        let a = s.mmap(3 * PS - 1, Contiguity::Contiguous).unwrap();
        assert_eq!(a, Va(DEFAULT_MMAP_BASE));
        let b = s.mmap(PS, Contiguity::Contiguous).unwrap();
        assert_eq!(b, Va(DEFAULT_MMAP_BASE + 3 * PS));
        assert_eq!(s.mapped_pages(), 4);
        assert_eq!(
            frames_of(&s, a, 3),
            vec![Some(Pfn(0x1000)), Some(Pfn(0x1001)), Some(Pfn(0x1002))]
        );
        assert_eq!(s.translate(Va(a.0 + 0x1234)), Some(Pfn(0x1001)));
        assert_eq!(s.owner_of(Pfn(0x1000)), Some(OwnerId(1)));
        assert_eq!(s.vmas(), vec![(a, 3 * PS), (b, PS)]);
        assert_eq!(s.mmap(0, Contiguity::Contiguous), Err(MmapError::InvalidLength(0)));
        assert_eq!(
            s.mmap(u64::MAX, Contiguity::Contiguous),
            Err(MmapError::InvalidLength(u64::MAX))
        );
        assert_eq!(s.mmap(61 * PS, Contiguity::Contiguous), Err(MmapError::NoMemory));
        // Free the first mapping: the gap is reused first-fit.
        s.munmap_with(a, 3 * PS, |_, _| {}).unwrap();
        assert_eq!(s.mmap(2 * PS, Contiguity::Contiguous).unwrap(), a);
        s.check_invariants().unwrap();
    }

    #[test]
    fn mmap_fixed_is_noreplace() {
        let mut s = space(16);
        let va = Va(0x4000_0000);
        assert_eq!(
            s.mmap_fixed(Va(0x4000_0001), PS, Contiguity::Contiguous),
            Err(MmapError::Unaligned(Va(0x4000_0001)))
        );
        assert_eq!(
            s.mmap_fixed(Va(0x1000), PS, Contiguity::Contiguous),
            Err(MmapError::OutOfRange(Va(0x1000)))
        );
        assert_eq!(
            s.mmap_fixed(Va(TASK_SIZE), PS, Contiguity::Contiguous),
            Err(MmapError::OutOfRange(Va(TASK_SIZE)))
        );
        assert_eq!(s.mmap_fixed(va, 2 * PS, Contiguity::Contiguous), Ok(va));
        assert_eq!(
            s.mmap_fixed(Va(va.0 + PS), 2 * PS, Contiguity::Contiguous),
            Err(MmapError::Overlaps(Va(va.0 + PS)))
        );
        assert_eq!(
            s.mmap_fixed(Va(va.0 - PS), 2 * PS, Contiguity::Contiguous),
            Err(MmapError::Overlaps(Va(va.0 - PS)))
        );
        assert_eq!(
            s.mmap_fixed(Va(va.0 + 2 * PS), PS, Contiguity::Contiguous),
            Ok(Va(va.0 + 2 * PS))
        );
        s.check_invariants().unwrap();
    }

    /// The stale-cache trap: pin a buffer, munmap it, re-mmap the same VA. The VA now has other
    /// frames; the pinned ones are orphans until unpinned, and then get reused.
    #[test]
    fn remap_same_va_gets_other_frames() {
        let mut s = space(8);
        let va = s.mmap(4 * PS, Contiguity::Contiguous).unwrap();
        let pinned = s.pin_pages(va, 4).unwrap();
        assert_eq!(pinned, (0x1000..0x1004).map(Pfn).collect::<Vec<_>>());
        s.munmap_with(va, 4 * PS, |_, _| {}).unwrap();
        for &p in &pinned {
            assert_eq!(s.frame_state(p), Some(FrameState::Orphan { owner: OwnerId(1) }));
            assert_eq!(s.pin_count(p), 1);
        }
        s.mmap_fixed(va, 4 * PS, Contiguity::Contiguous).unwrap();
        let now: Vec<Pfn> = frames_of(&s, va, 4).into_iter().flatten().collect();
        assert_eq!(now, (0x1004..0x1008).map(Pfn).collect::<Vec<_>>());
        // Pool exhausted while the orphans are pinned.
        assert_eq!(s.mmap(PS, Contiguity::Contiguous), Err(MmapError::NoMemory));
        s.unpin_pages(&pinned, true);
        assert_eq!(s.frame_state(pinned[0]), Some(FrameState::Free));
        // ... and the freed frames are handed out again.
        let b = s.mmap(PS, Contiguity::Contiguous).unwrap();
        assert_eq!(s.translate(b), Some(pinned[0]));
        assert_eq!(s.pool().with(|p| p.stats().frames_reused), 1);
        s.check_invariants().unwrap();
    }

    #[test]
    fn freed_frame_goes_to_another_owner() {
        let shared = pool(4);
        let mut p1 = AddressSpace::new(OwnerId(1), shared.clone());
        let mut p2 = AddressSpace::new(OwnerId(2), shared.clone());
        let a = p1.mmap(4 * PS, Contiguity::Contiguous).unwrap();
        let f = p1.translate(a).unwrap();
        p1.munmap_with(a, PS, |_, _| {}).unwrap();
        let b = p2.mmap(PS, Contiguity::Contiguous).unwrap();
        assert_eq!(p2.translate(b), Some(f));
        assert_eq!(p1.owner_of(f), Some(OwnerId(2)));
        p1.check_invariants().unwrap();
        p2.check_invariants().unwrap();
        // Dropping a process returns its frames.
        drop(p1);
        assert_eq!(shared.with(|p| p.free_frames()), 3);
    }

    #[test]
    fn touch_faults_in_with_the_vma_policy() {
        let mut s = space(16);
        let va = s.mmap(4 * PS, Contiguity::Scattered).unwrap();
        s.madvise_dontneed_with(va, 4 * PS, |_, _| {}).unwrap();
        assert_eq!(s.mapped_pages(), 0);
        assert_eq!(s.touch(va, 4 * PS), Ok(4));
        assert_eq!(s.touch(va, 4 * PS), Ok(0));
        assert_eq!(s.touch(va, 0), Ok(0));
        let f: Vec<u64> = frames_of(&s, va, 4).into_iter().flatten().map(|p| p.0).collect();
        assert_eq!(f, vec![0x1000, 0x1002, 0x1001, 0x1003]);
        // A touch of one byte faults one page.
        s.madvise_dontneed_with(Va(va.0 + PS), PS, |_, _| {}).unwrap();
        assert_eq!(s.touch(Va(va.0 + PS + 10), 1), Ok(1));
        assert_eq!(s.touch(va, 5 * PS), Err(MmapError::NotMapped(Va(va.0 + 4 * PS))));
        s.check_invariants().unwrap();
    }
}
