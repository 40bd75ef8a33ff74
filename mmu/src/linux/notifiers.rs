//! Interval notifiers with sequence numbers, for the real backend: the bookkeeping half of
//! `mmu_interval_notifier` (the delivery half is userfaultfd).

use std::collections::BTreeMap;

use crate::space::{InvalidateEvent, Invalidation};
use crate::types::{NotifierId, Va};

#[derive(Clone, Copy, Debug)]
struct Interval {
    start: u64,
    end: u64,
    seq: u64,
}

/// The live notifiers of one process.
#[derive(Debug, Default)]
pub struct IntervalNotifiers {
    live: BTreeMap<NotifierId, Interval>,
    next: u64,
    /// Removals of unknown ids.
    pub unknown_removes: u64,
}

impl IntervalNotifiers {
    /// Adds a notifier over `[start, start + len)`.
    pub fn insert(&mut self, start: Va, len: u64) -> Option<NotifierId> {
        let end = start.0.checked_add(len).filter(|_| len > 0)?;
        self.next += 1;
        let id = NotifierId(self.next);
        self.live.insert(id, Interval { start: start.0, end, seq: 0 });
        Some(id)
    }

    /// Removes a notifier; unknown ids are counted.
    pub fn remove(&mut self, id: NotifierId) -> Option<(Va, u64)> {
        match self.live.remove(&id) {
            Some(i) => Some((Va(i.start), i.end - i.start)),
            None => {
                self.unknown_removes += 1;
                None
            }
        }
    }

    /// The current sequence number (`mmu_interval_read_begin`); 0 for unknown ids.
    pub fn read_begin(&self, id: NotifierId) -> u64 {
        self.live.get(&id).map_or(0, |i| i.seq)
    }

    /// True if an invalidation happened since `seq` was read (or the notifier is gone).
    pub fn read_retry(&self, id: NotifierId, seq: u64) -> bool {
        self.live.get(&id).is_none_or(|i| i.seq != seq)
    }

    /// Bumps every notifier overlapping `[start, end)` and returns one invalidation each.
    pub fn invalidate(
        &mut self,
        start: u64,
        end: u64,
        event: InvalidateEvent,
    ) -> Vec<Invalidation> {
        let mut out = Vec::new();
        for (&id, i) in self.live.iter_mut() {
            if i.start < end && start < i.end {
                i.seq += 1;
                out.push(Invalidation {
                    notifier: id,
                    start: Va(start.max(i.start)),
                    end: Va(end.min(i.end)),
                    event,
                    seq: i.seq,
                });
            }
        }
        out
    }

    /// True if any live notifier overlaps `[start, end)`.
    pub fn overlaps(&self, start: u64, end: u64) -> bool {
        self.live.values().any(|i| i.start < end && start < i.end)
    }

    /// Live notifiers.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// True if none is live.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_bumps_and_retry() {
        let mut n = IntervalNotifiers::default();
        let a = n.insert(Va(0x1000), 0x2000).unwrap();
        let b = n.insert(Va(0x4000), 0x1000).unwrap();
        assert!(n.insert(Va(0x1000), 0).is_none());
        let sa = n.read_begin(a);
        let sb = n.read_begin(b);
        let inv = n.invalidate(0x2000, 0x4000, InvalidateEvent::Unmap);
        assert_eq!(inv.len(), 1);
        assert_eq!(inv[0].notifier, a);
        assert_eq!((inv[0].start, inv[0].end), (Va(0x2000), Va(0x3000)));
        assert!(n.read_retry(a, sa));
        assert!(!n.read_retry(b, sb));
        assert_eq!(n.remove(a), Some((Va(0x1000), 0x2000)));
        assert!(n.read_retry(a, n.read_begin(a)));
        assert_eq!(n.remove(a), None);
        assert_eq!(n.unknown_removes, 1);
        assert!(n.overlaps(0x4fff, 0x6000));
        assert!(!n.overlaps(0x5000, 0x6000));
    }
}
