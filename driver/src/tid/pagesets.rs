//! `find_phys_blocks` (facts §6.2 step 4): split the pinned pages of a buffer into pagesets, the
//! units one RcvArray entry can describe: physically contiguous, a power of two pages, at most
//! 2 MiB (512 pages).

use mmu::Pfn;
use serde::Serialize;

/// The largest pageset: MAX_EXPECTED_BUFFER (2 MiB) in 4 KiB pages.
pub const MAX_PAGESET_PAGES: u32 = 512;

/// hfi1 `struct tid_pageset`: `count` pages starting at page `idx` of the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct PageSet {
    /// First page, as an index into the buffer's pinned pages.
    pub idx: u32,
    /// Pages: a power of two, 1..=512.
    pub count: u32,
}

impl PageSet {
    /// One past the last page index.
    pub fn end(&self) -> u32 {
        self.idx.saturating_add(self.count)
    }
}

/// hfi1 `find_phys_blocks`: walk `pfns` (the pinned pages, in virtual order) and cut every
/// physically contiguous run into pagesets, in order, repeating until the run is used up:
/// a run of more than 512 pages gives 512; a run that is not a power of two gives the largest
/// power of two below it; otherwise the whole run.
///
/// Example: runs of 3, 1 and 600 pages give `(0,2) (2,1) (3,1) (4,512) (516,64) (580,16)
/// (596,8)`.
pub fn find_phys_blocks(pfns: &[Pfn]) -> Vec<PageSet> {
    let mut out = Vec::new();
    let mut start = 0usize;
    while start < pfns.len() {
        let mut end = start + 1;
        while let (Some(prev), Some(next)) = (pfns.get(end - 1), pfns.get(end)) {
            if prev.add(1) != Some(*next) {
                break;
            }
            end += 1;
        }
        let mut idx = start as u32;
        let mut remaining = (end - start) as u32;
        while remaining > 0 {
            let count = if remaining > MAX_PAGESET_PAGES {
                MAX_PAGESET_PAGES
            } else if !remaining.is_power_of_two() {
                1 << remaining.ilog2()
            } else {
                remaining
            };
            out.push(PageSet { idx, count });
            idx += count;
            remaining -= count;
        }
        start = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(start: u64, n: u64) -> impl Iterator<Item = Pfn> {
        (start..start + n).map(Pfn)
    }

    fn sets(v: &[(u32, u32)]) -> Vec<PageSet> {
        v.iter().map(|&(idx, count)| PageSet { idx, count }).collect()
    }

    #[test]
    fn empty_and_single() {
        assert!(find_phys_blocks(&[]).is_empty());
        assert_eq!(find_phys_blocks(&[Pfn(7)]), sets(&[(0, 1)]));
    }

    #[test]
    fn contiguous_16_pages_is_one_set() {
        // A 64 KiB buffer on contiguous frames: one 16-page TID.
        let pfns: Vec<Pfn> = run(0x1000, 16).collect();
        assert_eq!(find_phys_blocks(&pfns), sets(&[(0, 16)]));
    }

    #[test]
    fn scattered_pages_are_single_sets() {
        let pfns = [Pfn(10), Pfn(12), Pfn(11), Pfn(20), Pfn(30)];
        // 11 follows 12? No: 12 → 11 is not +1. 10 → 12 not +1. Each page alone.
        assert_eq!(find_phys_blocks(&pfns), sets(&[(0, 1), (1, 1), (2, 1), (3, 1), (4, 1)]));
        // Descending frames are not contiguous either.
        let desc = [Pfn(5), Pfn(4), Pfn(3)];
        assert_eq!(find_phys_blocks(&desc).len(), 3);
    }

    #[test]
    fn non_power_of_two_runs_split_down() {
        // 7 pages → 4 + 2 + 1.
        let pfns: Vec<Pfn> = run(100, 7).collect();
        assert_eq!(find_phys_blocks(&pfns), sets(&[(0, 4), (4, 2), (6, 1)]));
        // 3 + 1 + 600 (the doc example).
        let pfns: Vec<Pfn> = run(100, 3).chain(run(200, 1)).chain(run(1000, 600)).collect();
        assert_eq!(
            find_phys_blocks(&pfns),
            sets(&[(0, 2), (2, 1), (3, 1), (4, 512), (516, 64), (580, 16), (596, 8)])
        );
    }

    #[test]
    fn runs_above_2m_take_512() {
        let pfns: Vec<Pfn> = run(0, 1024).collect();
        assert_eq!(find_phys_blocks(&pfns), sets(&[(0, 512), (512, 512)]));
        let pfns: Vec<Pfn> = run(0, 513).collect();
        assert_eq!(find_phys_blocks(&pfns), sets(&[(0, 512), (512, 1)]));
        let pfns: Vec<Pfn> = run(0, 512).collect();
        assert_eq!(find_phys_blocks(&pfns), sets(&[(0, 512)]));
    }

    #[test]
    fn sets_tile_the_buffer() {
        // Any input: sets are in order, contiguous in index space, powers of two ≤ 512, and
        // each set is physically contiguous.
        let pfns: Vec<Pfn> =
            run(50, 5).chain(run(56, 9)).chain(run(7, 1)).chain(run(8, 700)).collect();
        let out = find_phys_blocks(&pfns);
        let mut next = 0;
        for s in &out {
            assert_eq!(s.idx, next);
            assert!(s.count.is_power_of_two() && s.count <= MAX_PAGESET_PAGES);
            let first = pfns[s.idx as usize];
            for k in 0..s.count {
                assert_eq!(pfns[(s.idx + k) as usize], Pfn(first.0 + u64::from(k)));
            }
            next = s.end();
        }
        assert_eq!(next as usize, pfns.len());
    }
}
