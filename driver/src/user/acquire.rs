//! Acquire (ips_tidcache_acquire, facts §9.3): find or register the TIDs covering a range.

use hfi_abi::{TidInfo, PAGE_SIZE};

use super::cache::{Acquired, TidCache};
use super::error::CacheError;
use crate::uapi::HfiFd;

/// The KDETH offset-mode switch-over (facts §4.1): offsets at or beyond 128 KiB into a TID
/// must be expressed in 64-byte units.
pub const OM_THRESHOLD: u64 = 128 << 10;

/// Offset-mode granule: with OM=1 the offset must be a multiple of 64 bytes.
pub const OM_ALIGN: u64 = 64;

/// What the first search of an acquire found.
enum Start {
    /// An entry containing the page of the requested address.
    Hit(u32),
    /// A gap of this many bytes to register at the requested page.
    Gap(u64),
}

impl TidCache {
    /// Acquire TIDs covering `[va, va + len)`.
    ///
    /// In order: (1) if the event word has TID_MMU_NOTIFY, process invalidations; (2) search:
    /// an overlapping invalidated entry gives [`CacheError::NoProgress`]; an entry whose needed
    /// start is ≥ 128 KiB into it while `va` is not 64-byte aligned is removed (or NoProgress
    /// if in use) and the search repeated; a gap before the first entry is registered; (3)
    /// extend through successors while contiguous, registering gaps, stopping at an
    /// invalidated entry; each entry used gets a reference and leaves the idle queue; (4) if a
    /// registration fails after the first TID, the result is partial. `va` need not be page
    /// aligned: registration starts at the page below it and `tid_offset` says where `va` is.
    pub fn acquire(
        &mut self,
        fd: &mut dyn HfiFd,
        va: u64,
        len: u32,
    ) -> Result<Acquired, CacheError> {
        self.stats.acquires += 1;
        let (page_va, end) = page_span(va, len).ok_or(CacheError::InvalidRange { va, len })?;
        let result = if self.caching {
            self.acquire_cached(fd, va, len, page_va, end)
        } else {
            self.acquire_nocache(fd, va, len, page_va, end)
        };
        match &result {
            Ok(acq) => {
                self.stats.hits += u64::from(acq.hits);
                self.stats.misses += u64::from(acq.misses);
            }
            Err(CacheError::NoProgress) => self.stats.no_progress += 1,
            Err(_) => {}
        }
        result
    }

    fn acquire_cached(
        &mut self,
        fd: &mut dyn HfiFd,
        va: u64,
        len: u32,
        page_va: u64,
        end: u64,
    ) -> Result<Acquired, CacheError> {
        self.check_events(fd)?;
        let in_page = va - page_va;
        let mut misses = 0u32;
        let first = match self.find_start(fd, page_va, in_page, end)? {
            Start::Hit(slot) => slot,
            Start::Gap(nbytes) => {
                misses += self.register(fd, page_va, nbytes)?;
                self.by_va.get(&page_va).copied().ok_or(CacheError::BadUpdate)?
            }
        };
        let Some(e) = self.slab.get(first).copied() else { return Err(CacheError::BadUpdate) };
        let mut acq = Acquired {
            tids: Vec::with_capacity(1),
            tid_offset: u32::try_from(page_va - e.start + in_page).unwrap_or(u32::MAX),
            ..Acquired::default()
        };
        self.take(first, &mut acq.tids);
        let mut cur_end = e.end();
        while cur_end < end {
            let next = match self.by_start.get(&cur_end) {
                Some(&slot) => Some((cur_end, slot)),
                None => self.by_va.range(cur_end..).next().map(|(&s, &slot)| (s, slot)),
            };
            let slot = match next {
                Some((s, slot)) if s == cur_end => {
                    if self.slab.get(slot).is_none_or(|e| e.invalidated) {
                        break;
                    }
                    slot
                }
                other => {
                    let gap_end = other.map_or(end, |(s, _)| s.min(end));
                    match self.register(fd, cur_end, gap_end - cur_end) {
                        Ok(n) => misses += n,
                        Err(e) if e.is_transient() => break,
                        Err(e) => {
                            self.unwind(fd, &acq.tids);
                            return Err(e);
                        }
                    }
                    match self.by_va.get(&cur_end) {
                        Some(&slot) => slot,
                        None => break,
                    }
                }
            };
            cur_end = self.slab.get(slot).map_or(cur_end, |e| e.end());
            self.take(slot, &mut acq.tids);
        }
        let covered = cur_end.min(va + u64::from(len)) - va;
        acq.length = u32::try_from(covered).unwrap_or(len);
        acq.misses = misses.min(acq.tids.len() as u32);
        acq.hits = acq.tids.len() as u32 - acq.misses;
        Ok(acq)
    }

    /// Step (2): the entry to start from, or the gap to register first.
    fn find_start(
        &mut self,
        fd: &mut dyn HfiFd,
        page_va: u64,
        in_page: u64,
        end: u64,
    ) -> Result<Start, CacheError> {
        loop {
            let Some(slot) = self.first_overlap(page_va, end) else {
                return Ok(Start::Gap(end - page_va));
            };
            let Some(e) = self.slab.get(slot).copied() else { return Err(CacheError::BadUpdate) };
            if e.invalidated {
                return Err(CacheError::NoProgress);
            }
            if e.start > page_va {
                return Ok(Start::Gap(e.start - page_va));
            }
            if page_va - e.start >= OM_THRESHOLD && in_page % OM_ALIGN != 0 {
                if e.refcount != 0 {
                    return Err(CacheError::NoProgress);
                }
                self.remove(fd, &[slot])?;
                continue;
            }
            return Ok(Start::Hit(slot));
        }
    }

    /// Add a reference to entry `slot` (leaving the idle queue on the first) and append its
    /// tidinfo.
    fn take(&mut self, slot: u32, tids: &mut Vec<TidInfo>) {
        if let Some(e) = self.slab.get_mut(slot) {
            e.refcount = e.refcount.saturating_add(1);
            tids.push(e.tid);
            self.slab.unlink(slot);
        }
    }

    /// Undo the references of a failed acquire (best effort: an invalidated entry reaching
    /// zero is freed, and a failure of that free is dropped in favour of the original error).
    fn unwind(&mut self, fd: &mut dyn HfiFd, tids: &[TidInfo]) {
        let mut batch = Vec::new();
        for &tid in tids {
            self.drop_ref(tid, &mut batch);
        }
        let _ = self.free_tids(fd, &batch);
    }
}

/// The page-aligned start below `va` and the page-aligned end above `va + len`; `None` for a
/// zero length or a range that wraps.
fn page_span(va: u64, len: u32) -> Option<(u64, u64)> {
    if len == 0 {
        return None;
    }
    let end = va.checked_add(u64::from(len))?.checked_add(PAGE_SIZE - 1)? & !(PAGE_SIZE - 1);
    Some((va & !(PAGE_SIZE - 1), end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_span_rounds_out() {
        assert_eq!(page_span(0x1064, 5000), Some((0x1000, 0x3000)));
        assert_eq!(page_span(0x1000, 4096), Some((0x1000, 0x2000)));
        assert_eq!(page_span(0x1000, 0), None);
        assert_eq!(page_span(u64::MAX - 10, 100), None);
    }
}
