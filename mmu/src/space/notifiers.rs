//! Interval notifiers (`mmu_interval_notifier`): insert, remove, and the sequence protocol
//! `read_begin` / `read_retry` (see the parent module, *Sequence numbers*). The begin and
//! commit phases bump the sequences (`pending.rs`).

use crate::error::NotifierError;
use crate::types::{NotifierId, Va};

use super::AddressSpace;

#[derive(Clone, Copy, Debug)]
pub(super) struct Notifier {
    pub(super) start: u64,
    pub(super) end: u64,
    pub(super) seq: u64,
    pub(super) invalidating: bool,
}

impl AddressSpace {
    /// Subscribe an interval notifier to `[start, start+len)` (`mmu_interval_notifier_insert`).
    pub fn notifier_insert(&mut self, start: Va, len: u64) -> Result<NotifierId, NotifierError> {
        let bad = NotifierError::InvalidRange { start, len };
        if len == 0 {
            return Err(bad);
        }
        let end = start.0.checked_add(len).ok_or(bad)?;
        let id = NotifierId(self.next_notifier);
        self.next_notifier += 1;
        let invalidating = self.pending.is_some_and(|p| p.start < end && start.0 < p.end);
        self.notifiers.insert(id, Notifier { start: start.0, end, seq: 0, invalidating });
        Ok(id)
    }

    /// Unsubscribe (`mmu_interval_notifier_remove`). Safe at any time, including while an
    /// invalidation for it sits in an uncommitted token: ids are never reused, so the stale
    /// invalidation names no live notifier. Unknown ids are counted.
    pub fn notifier_remove(&mut self, id: NotifierId) {
        if self.notifiers.remove(&id).is_none() {
            self.stats.notifier_remove_unknown_count += 1;
        }
    }

    /// The notifier's current sequence (`mmu_interval_read_begin`); 0 for an unknown id.
    pub fn read_begin(&self, id: NotifierId) -> u64 {
        self.notifiers.get(&id).map_or(0, |n| n.seq)
    }

    /// True when an invalidation started since `read_begin` returned `seq`, or one is in
    /// progress (`mmu_interval_read_retry`). Unknown ids report true.
    pub fn read_retry(&self, id: NotifierId, seq: u64) -> bool {
        self.notifiers.get(&id).is_none_or(|n| n.invalidating || n.seq != seq)
    }

    /// The range `[start, end)` of a live notifier.
    pub fn notifier_range(&self, id: NotifierId) -> Option<(Va, Va)> {
        self.notifiers.get(&id).map(|n| (Va(n.start), Va(n.end)))
    }

    /// Live notifiers.
    pub fn notifier_count(&self) -> usize {
        self.notifiers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::space;
    use super::*;

    #[test]
    fn notifier_api_edges() {
        let mut s = space(4);
        assert_eq!(
            s.notifier_insert(Va(0x1000), 0),
            Err(NotifierError::InvalidRange { start: Va(0x1000), len: 0 })
        );
        assert!(s.notifier_insert(Va(u64::MAX), 2).is_err());
        let a = s.notifier_insert(Va(0x1000), 10).unwrap();
        let b = s.notifier_insert(Va(0x1000), 10).unwrap();
        assert_ne!(a, b);
        assert_eq!(s.notifier_range(a), Some((Va(0x1000), Va(0x100a))));
        assert_eq!(s.notifier_count(), 2);
        s.notifier_remove(a);
        s.notifier_remove(a);
        assert_eq!(s.stats().notifier_remove_unknown_count, 1);
        assert_eq!(s.read_begin(a), 0);
        assert!(s.read_retry(a, 0));
        assert!(!s.read_retry(b, 0));
        // Ids are never reused.
        let c = s.notifier_insert(Va(0x1000), 10).unwrap();
        assert!(c > b);
    }
}
