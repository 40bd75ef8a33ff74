//! The DMA map table: identity mapping (IOVA = PA, no IOMMU) of pinned frames, counted per
//! `(IOVA, pages)` so that an unbalanced or unknown unmap is counted, never a panic, and
//! teardown tests can check every map is gone.

use crate::error::DmaMapError;
use crate::types::{Iova, Pfn, PAGE_SIZE};

use super::AddressSpace;

impl AddressSpace {
    /// Identity DMA map of the physically contiguous frames `pfn .. pfn+npages`: IOVA = PA.
    /// Every frame must be in physical memory and pinned.
    pub fn dma_map(&mut self, pfn: Pfn, npages: usize) -> Result<Iova, DmaMapError> {
        if npages == 0 {
            return Err(DmaMapError::InvalidLength(npages));
        }
        self.pool.with(|p| {
            for i in 0..npages as u64 {
                let f = pfn.add(i).ok_or(DmaMapError::InvalidLength(npages))?;
                if !p.contains(f) {
                    return Err(DmaMapError::OutOfRange(f));
                }
                if p.pin_count(f) == 0 {
                    return Err(DmaMapError::NotPinned(f));
                }
            }
            Ok(())
        })?;
        let count = self.dma.entry((pfn.addr(), npages)).or_insert(0);
        *count = count.saturating_add(1);
        self.stats.dma_maps += 1;
        Ok(Iova(pfn.addr()))
    }

    /// Undo one [`Self::dma_map`] of the same IOVA and length. Unknown pairs are counted in
    /// [`SpaceStats::dma_unmap_unknown_count`](super::SpaceStats::dma_unmap_unknown_count).
    pub fn dma_unmap(&mut self, iova: Iova, npages: usize) {
        let key = (iova.0, npages);
        match self.dma.get_mut(&key) {
            Some(c) if *c > 1 => {
                *c -= 1;
                self.stats.dma_unmaps += 1;
            }
            Some(_) => {
                self.dma.remove(&key);
                self.stats.dma_unmaps += 1;
            }
            None => self.stats.dma_unmap_unknown_count += 1,
        }
    }

    /// Live DMA maps (each `dma_map` not yet undone counts once).
    pub fn dma_maps_live(&self) -> u64 {
        self.dma.values().map(|&c| u64::from(c)).sum()
    }

    /// Live DMA maps as `(iova, pages, count)`, ascending.
    pub fn dma_mappings(&self) -> Vec<(Iova, usize, u32)> {
        self.dma.iter().map(|(&(i, n), &c)| (Iova(i), n, c)).collect()
    }

    /// True when some live DMA map covers `pfn`.
    pub fn is_dma_mapped(&self, pfn: Pfn) -> bool {
        let pa = pfn.addr();
        self.dma.keys().any(|&(iova, n)| {
            (n as u64)
                .checked_mul(PAGE_SIZE)
                .and_then(|len| iova.checked_add(len))
                .is_some_and(|end| iova <= pa && pa < end)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::space;
    use super::*;
    use crate::frames::{Contiguity, FrameState};
    use crate::types::OwnerId;

    #[test]
    fn dma_map_table_is_counted() {
        let mut s = space(64);
        let va = s.mmap(4 * PAGE_SIZE, Contiguity::Contiguous).unwrap();
        let p = s.translate(va).unwrap();
        // Not pinned yet: refused.
        assert_eq!(s.dma_map(p, 1), Err(DmaMapError::NotPinned(p)));
        assert_eq!(s.dma_map(p, 0), Err(DmaMapError::InvalidLength(0)));
        assert_eq!(s.dma_map(Pfn(1), 1), Err(DmaMapError::OutOfRange(Pfn(1))));
        let pfns = s.pin_pages(va, 4).unwrap();
        let a = s.dma_map(pfns[0], 4).unwrap();
        let b = s.dma_map(pfns[0], 4).unwrap();
        let c = s.dma_map(pfns[0], 2).unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(s.dma_maps_live(), 3);
        assert!(s.is_dma_mapped(pfns[3]));
        assert_eq!(s.dma_mappings(), vec![(a, 2, 1), (a, 4, 2)]);
        s.dma_unmap(a, 4);
        s.dma_unmap(a, 4);
        assert!(s.is_dma_mapped(pfns[1]));
        assert!(!s.is_dma_mapped(pfns[3]));
        s.dma_unmap(a, 4); // unknown now
        s.dma_unmap(Iova(0x1234_5000), 1); // never mapped
        s.dma_unmap(c, 2);
        assert_eq!(s.dma_maps_live(), 0);
        assert_eq!(s.stats().dma_unmap_unknown_count, 2);
        assert_eq!(s.stats().dma_maps, 3);
        assert_eq!(s.stats().dma_unmaps, 3);
        s.unpin_pages(&pfns, false);
        assert_eq!(s.frame_state(pfns[0]), Some(FrameState::Mapped { owner: OwnerId(1), va }));
    }
}
