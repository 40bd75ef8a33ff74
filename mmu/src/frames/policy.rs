//! Allocation policies: how the frames backing a new mapping are laid out physically
//! ([`Contiguity`]), the first-fit walk over the free runs that serves them, and the small
//! PRNG behind [`Contiguity::Random`].

use crate::error::FrameError;
use crate::types::{OwnerId, Pfn, Va, PAGES_PER_2M, PAGE_SHIFT};

use super::{FramePool, FrameState};

/// How the frames backing a new mapping are laid out physically. Virtual order is always the
/// order of the returned frames; the policy decides which physical runs `find_phys_blocks`
/// will see.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Contiguity {
    /// One physically contiguous run if a free run is long enough; otherwise the longest runs
    /// available.
    Contiguous,
    /// No two virtually adjacent pages are physically adjacent (frame `i+1 != i + 1`), where
    /// the free frames allow it.
    Scattered,
    /// Runs of `pages` contiguous frames (the last may be shorter), no run physically adjacent
    /// to the previous one. `pages == 0` is treated as 1.
    Runs {
        /// Frames per run.
        pages: u32,
    },
    /// A deterministic mixture from `seed`: mostly power-of-two runs of 1..=512 frames, some
    /// odd-length runs. The same seed and pool state give the same frames.
    Random {
        /// PRNG seed.
        seed: u64,
    },
}

impl FramePool {
    /// Hand out `n` frames to back `owner`'s pages `va, va+4K, ...` (frame `i` backs page `i`),
    /// laid out per `policy`. All or nothing: fails with [`FrameError::OutOfFrames`] and changes
    /// nothing when fewer than `n` frames are free. Deterministic for a given pool state.
    pub fn alloc(
        &mut self,
        owner: OwnerId,
        va: Va,
        n: u64,
        policy: Contiguity,
    ) -> Result<Vec<Pfn>, FrameError> {
        if n > self.free_count {
            return Err(FrameError::OutOfFrames { wanted: n, free: self.free_count });
        }
        // The last page's address must exist; checked before anything changes.
        if n > 0 {
            va.add_pages(n - 1)
                .ok_or(FrameError::OutOfFrames { wanted: n, free: self.free_count })?;
        }
        let mut out: Vec<Pfn> = Vec::with_capacity(n as usize);
        let mut prev_last: Option<u64> = None;
        let mut rng = SplitMix64::new(match policy {
            Contiguity::Random { seed } => seed,
            _ => 0,
        });
        let mut remaining = n;
        while remaining > 0 {
            let (want, avoid) = match policy {
                Contiguity::Contiguous => (remaining, None),
                Contiguity::Scattered => (1, prev_last),
                Contiguity::Runs { pages } => (remaining.min(u64::from(pages.max(1))), prev_last),
                Contiguity::Random { .. } => (remaining.min(rng.run_length()), prev_last),
            };
            // free_count >= remaining > 0, so a run of at least one frame exists.
            let Some((start, got)) = self.pick_run(want, avoid) else {
                break;
            };
            self.take(start, got);
            for p in start..start + got {
                out.push(Pfn(p));
            }
            prev_last = Some(start + got - 1);
            remaining -= got;
        }
        for (i, pfn) in out.iter().enumerate() {
            let page_va = Va(va.0 + ((i as u64) << PAGE_SHIFT));
            if let Some(idx) = self.index(*pfn) {
                if let Some(m) = self.frames.get_mut(idx) {
                    m.state = FrameState::Mapped { owner, va: page_va };
                    self.stats.frames_allocated += 1;
                    if m.ever_used {
                        self.stats.frames_reused += 1;
                    }
                    m.ever_used = true;
                }
            }
            self.fresh.insert(pfn.0);
        }
        Ok(out)
    }

    /// Remove `[start, start+len)` from the free runs; the range must lie in one run.
    fn take(&mut self, start: u64, len: u64) {
        let Some((&rs, &rl)) = self.free_runs.range(..=start).next_back() else {
            return;
        };
        if start + len > rs + rl {
            return;
        }
        self.free_runs.remove(&rs);
        if start > rs {
            self.free_runs.insert(rs, start - rs);
        }
        let end = start + len;
        if end < rs + rl {
            self.free_runs.insert(end, rs + rl - end);
        }
        self.free_count -= len;
    }

    /// Choose a free run of up to `want` frames that does not start right after `avoid_after`
    /// (so it is not physically contiguous with the previous run). First fit for the full
    /// length; else the longest usable piece; else (only the adjacent frame is free) that frame.
    fn pick_run(&self, want: u64, avoid_after: Option<u64>) -> Option<(u64, u64)> {
        let usable = |s: u64, l: u64| -> (u64, u64) {
            match avoid_after {
                Some(prev) if prev.checked_add(1) == Some(s) => (s + 1, l - 1),
                _ => (s, l),
            }
        };
        let mut best: Option<(u64, u64)> = None;
        for (&s, &l) in &self.free_runs {
            let (us, ul) = usable(s, l);
            if ul >= want {
                return Some((us, want));
            }
            if ul > 0 && best.is_none_or(|(_, bl)| ul > bl) {
                best = Some((us, ul));
            }
        }
        if best.is_some() {
            return best;
        }
        self.free_runs.iter().next().map(|(&s, _)| (s, 1))
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny deterministic PRNG, enough to mix run lengths.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A run length for [`Contiguity::Random`]: three times in four a power of two 1..=512, else
    /// an odd-sized run of 1..=700 frames (which `find_phys_blocks` must split).
    fn run_length(&mut self) -> u64 {
        let r = self.next_u64();
        if r % 4 == 0 {
            1 + (r >> 2) % 700
        } else {
            let max_shift = PAGES_PER_2M.trailing_zeros() as u64; // 9
            1 << ((r >> 2) % (max_shift + 1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{pool, O};
    use super::*;

    /// Lengths of the physically contiguous runs in virtual order (find_phys_blocks' view).
    fn runs(pfns: &[Pfn]) -> Vec<u64> {
        let mut out: Vec<u64> = Vec::new();
        for (i, p) in pfns.iter().enumerate() {
            if i > 0 && pfns[i - 1].0 + 1 == p.0 {
                *out.last_mut().unwrap() += 1;
            } else {
                out.push(1);
            }
        }
        out
    }

    #[test]
    fn contiguous_is_one_run_first_fit() {
        let mut p = pool(64);
        let a = p.alloc(O, Va(0x1000), 8, Contiguity::Contiguous).unwrap();
        assert_eq!(a, (0x100..0x108).map(Pfn).collect::<Vec<_>>());
        assert_eq!(p.state(Pfn(0x101)), Some(FrameState::Mapped { owner: O, va: Va(0x2000) }));
        let b = p.alloc(O, Va(0x9000), 4, Contiguity::Contiguous).unwrap();
        assert_eq!(b[0], Pfn(0x108));
        assert_eq!(runs(&b), vec![4]);
        p.check_invariants().unwrap();
    }

    #[test]
    fn contiguous_falls_back_to_longest_runs() {
        let mut p = pool(8);
        let a = p.alloc(O, Va(0), 8, Contiguity::Contiguous).unwrap();
        // Free frames 1, 3,4 and 6: no run of 4 exists.
        for i in [1, 3, 4, 6] {
            p.unmap(a[i]).unwrap();
        }
        let b = p.alloc(O, Va(0x10_0000), 4, Contiguity::Contiguous).unwrap();
        assert_eq!(b, vec![Pfn(0x103), Pfn(0x104), Pfn(0x101), Pfn(0x106)]);
        p.check_invariants().unwrap();
    }

    #[test]
    fn scattered_has_no_adjacent_pages() {
        let mut p = pool(64);
        let a = p.alloc(O, Va(0), 40, Contiguity::Scattered).unwrap();
        // Worked sequence: 0,2,1,3,5,4,6,8,7,... (offsets from the base pfn).
        let offs: Vec<u64> = a.iter().take(9).map(|f| f.0 - 0x100).collect();
        assert_eq!(offs, vec![0, 2, 1, 3, 5, 4, 6, 8, 7]);
        assert!(runs(&a).iter().all(|&r| r == 1), "{:?}", runs(&a));
        p.check_invariants().unwrap();
    }

    #[test]
    fn runs_policy_gives_exact_runs_for_every_power_of_two() {
        for shift in 0..=9u32 {
            let pages = 1u32 << shift;
            let mut p = pool(4096);
            let n = u64::from(pages) * 3;
            let a = p.alloc(O, Va(0), n, Contiguity::Runs { pages }).unwrap();
            assert_eq!(runs(&a), vec![u64::from(pages); 3], "pages {pages}");
            p.check_invariants().unwrap();
        }
    }

    #[test]
    fn random_is_deterministic_and_mixed() {
        let mut p1 = pool(8192);
        let mut p2 = pool(8192);
        let a = p1.alloc(O, Va(0), 4000, Contiguity::Random { seed: 42 }).unwrap();
        let b = p2.alloc(O, Va(0), 4000, Contiguity::Random { seed: 42 }).unwrap();
        assert_eq!(a, b);
        let r = runs(&a);
        assert!(r.len() > 10);
        assert!(r.contains(&1));
        assert!(r.iter().any(|&x| x >= 64));
        assert!(r.iter().any(|&x| !x.is_power_of_two()));
        let mut p3 = pool(8192);
        let c = p3.alloc(O, Va(0), 4000, Contiguity::Random { seed: 43 }).unwrap();
        assert_ne!(a, c);
        p1.check_invariants().unwrap();
    }

    #[test]
    fn alloc_is_all_or_nothing() {
        let mut p = pool(4);
        assert_eq!(
            p.alloc(O, Va(0), 5, Contiguity::Contiguous),
            Err(FrameError::OutOfFrames { wanted: 5, free: 4 })
        );
        assert_eq!(p.free_frames(), 4);
        assert_eq!(p.alloc(O, Va(0), 0, Contiguity::Contiguous), Ok(vec![]));
        // The last page would overflow the VA space.
        assert!(p.alloc(O, Va(!0xfff), 2, Contiguity::Contiguous).is_err());
        assert_eq!(p.free_frames(), 4);
    }

    #[test]
    fn splitmix_reference_values() {
        // First outputs of SplitMix64 seeded with 0 (reference implementation).
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(r.next_u64(), 0x6e78_9e6a_a1b9_65f4);
    }
}
