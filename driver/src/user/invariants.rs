//! The consistency checker for tests: every structure of the cache agrees with the others.

use std::collections::BTreeSet;

use super::cache::TidCache;
use super::entry::tid_key;

impl TidCache {
    /// Check the cache's invariants; the first violation is described in the error.
    ///
    /// - the VA map, its start index, the key map and the slab hold the same entries, each
    ///   indexed by its own start and key; entries have `npages` ≥ 1 equal to the tidinfo LEN;
    /// - entries do not overlap;
    /// - the idle queue, walked both ways, is exactly the set of entries with refcount 0 that
    ///   are not invalidated, with consistent links;
    /// - no entry is invalidated with refcount 0 (those are freed at once);
    /// - in non-cached mode the cache holds no entries.
    pub fn check_invariants(&self) -> Result<(), String> {
        let live = self.slab.len();
        if self.by_va.len() != live || self.by_key.len() != live {
            return Err(format!(
                "sizes differ: slab {live}, va map {}, key map {}",
                self.by_va.len(),
                self.by_key.len()
            ));
        }
        if self.by_start.len() != live {
            return Err(format!("start index has {} entries, slab {live}", self.by_start.len()));
        }
        if let Some((start, _)) = self.by_va.iter().find(|(k, v)| self.by_start.get(k) != Some(v)) {
            return Err(format!("start index disagrees at {start:#x}"));
        }
        if !self.caching && live != 0 {
            return Err(format!("non-cached mode with {live} entries"));
        }
        if let Some((slot, e)) = self.slab.iter().find(|(s, e)| self.by_va.get(&e.start) != Some(s))
        {
            return Err(format!("slot {slot} ({:#x}) is not indexed by its start", e.start));
        }
        let mut prev_end = 0u64;
        let mut should_idle = BTreeSet::new();
        for (&start, &slot) in &self.by_va {
            let e = self.slab.get(slot).ok_or(format!("va {start:#x} -> free slot {slot}"))?;
            if e.start != start {
                return Err(format!("slot {slot} start {:#x} indexed at {start:#x}", e.start));
            }
            if self.by_key.get(&tid_key(e.tid)) != Some(&slot) {
                return Err(format!("slot {slot} tid {:#x} not indexed by key", e.tid.raw()));
            }
            if e.npages == 0 || e.npages != e.tid.npages() {
                return Err(format!("slot {slot}: npages {} vs tidinfo", e.npages));
            }
            if start < prev_end {
                return Err(format!(
                    "entry at {start:#x} overlaps the previous (end {prev_end:#x})"
                ));
            }
            prev_end = e.end();
            if e.invalidated && e.refcount == 0 {
                return Err(format!("slot {slot}: invalidated and idle but still cached"));
            }
            if e.is_idle() {
                should_idle.insert(slot);
            }
            if e.is_idle() != self.slab.is_linked(slot) {
                return Err(format!(
                    "slot {slot}: idle {} but linked {}",
                    e.is_idle(),
                    !e.is_idle()
                ));
            }
        }
        let fwd = self.slab.list_from_head();
        let mut back = self.slab.list_from_tail();
        back.reverse();
        if fwd != back {
            return Err("idle queue links disagree between directions".to_string());
        }
        if fwd.len() != self.slab.linked_len() {
            return Err(format!(
                "idle queue walks {} but counts {}",
                fwd.len(),
                self.slab.linked_len()
            ));
        }
        let on_queue: BTreeSet<u32> = fwd.iter().copied().collect();
        if on_queue.len() != fwd.len() || on_queue != should_idle {
            return Err(format!("idle queue {on_queue:?} != idle entries {should_idle:?}"));
        }
        Ok(())
    }
}
