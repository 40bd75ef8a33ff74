//! The event queue: ordered by `(time, seq)` where `seq` increases on every schedule, so events
//! at the same time come out in the order they were scheduled (Rust's heap is not stable).

use std::collections::{BinaryHeap, VecDeque};

use crate::time::SimTime;

/// A slab: values addressed by a `u32` handle, slots reused through a free list, so that large
/// values stay in place while small handles move through queues.
#[derive(Debug)]
pub struct Slab<T> {
    slots: Vec<Option<T>>,
    free: Vec<u32>,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Self { slots: Vec::new(), free: Vec::new() }
    }
}

impl<T> Slab<T> {
    /// Stores `v`; returns its handle.
    pub fn insert(&mut self, v: T) -> u32 {
        if let Some(i) = self.free.pop() {
            if let Some(s) = self.slots.get_mut(i as usize) {
                *s = Some(v);
                return i;
            }
        }
        self.slots.push(Some(v));
        (self.slots.len() - 1) as u32
    }

    /// The value of a live handle.
    pub fn get(&self, h: u32) -> Option<&T> {
        self.slots.get(h as usize).and_then(Option::as_ref)
    }

    /// The value of a live handle, mutably.
    pub fn get_mut(&mut self, h: u32) -> Option<&mut T> {
        self.slots.get_mut(h as usize).and_then(Option::as_mut)
    }

    /// Removes and returns the value of a live handle.
    pub fn take(&mut self, h: u32) -> Option<T> {
        let v = self.slots.get_mut(h as usize).and_then(Option::take);
        if v.is_some() {
            self.free.push(h);
        }
        v
    }

    /// Drops the value of a live handle in place; returns whether it was live.
    pub fn remove(&mut self, h: u32) -> bool {
        match self.slots.get_mut(h as usize) {
            Some(slot @ Some(_)) => {
                *slot = None;
                self.free.push(h);
                true
            }
            _ => false,
        }
    }

    /// Number of live values.
    pub fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// True when no value is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every value.
    pub fn clear(&mut self) {
        self.slots.clear();
        self.free.clear();
    }
}

struct Entry<E> {
    time: SimTime,
    seq: u64,
    event: E,
}

impl<E> PartialEq for Entry<E> {
    fn eq(&self, other: &Self) -> bool {
        (self.time, self.seq) == (other.time, other.seq)
    }
}
impl<E> Eq for Entry<E> {}
impl<E> PartialOrd for Entry<E> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<E> Ord for Entry<E> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // Reversed: BinaryHeap is a max-heap and we pop the earliest.
        (other.time, other.seq).cmp(&(self.time, self.seq))
    }
}

/// A deterministic discrete-event queue.
///
/// Events are ordered by `(time, seq)`. Most events are scheduled in time order (link
/// arrivals, completions of a FIFO channel), so an event not earlier than the last one of the
/// FIFO lane is appended there in O(1); any other goes to a binary heap. Popping takes the
/// earlier head of the two, so the order is exactly that of a single heap. Events should be
/// small (handles into slabs), since they are moved on every sift.
pub struct EventQueue<E> {
    lane: VecDeque<Entry<E>>,
    heap: BinaryHeap<Entry<E>>,
    next_seq: u64,
}

impl<E> std::fmt::Debug for EventQueue<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventQueue")
            .field("len", &self.len())
            .field("next_seq", &self.next_seq)
            .finish()
    }
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        Self { lane: VecDeque::new(), heap: BinaryHeap::new(), next_seq: 0 }
    }
}

impl<E> EventQueue<E> {
    /// Schedules `event` at `time`.
    pub fn schedule(&mut self, time: SimTime, event: E) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let e = Entry { time, seq, event };
        match self.lane.back() {
            Some(last) if time < last.time => self.heap.push(e),
            _ => self.lane.push_back(e),
        }
    }

    /// `(time, from_heap)` of the earliest event.
    fn head(&self) -> Option<(SimTime, bool)> {
        match (self.lane.front(), self.heap.peek()) {
            (Some(l), Some(h)) if (h.time, h.seq) < (l.time, l.seq) => Some((h.time, true)),
            (Some(l), _) => Some((l.time, false)),
            (None, Some(h)) => Some((h.time, true)),
            (None, None) => None,
        }
    }

    /// Time of the earliest event.
    pub fn peek_time(&self) -> Option<SimTime> {
        self.head().map(|(t, _)| t)
    }

    /// Removes and returns the earliest event if it is due at or before `until`.
    pub fn pop_due(&mut self, until: SimTime) -> Option<(SimTime, E)> {
        let (t, from_heap) = self.head()?;
        if t > until {
            return None;
        }
        let e = if from_heap { self.heap.pop() } else { self.lane.pop_front() }?;
        Some((e.time, e.event))
    }

    /// Number of queued events.
    pub fn len(&self) -> usize {
        self.lane.len() + self.heap.len()
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every event.
    pub fn clear(&mut self) {
        self.lane.clear();
        self.heap.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_times_pop_in_schedule_order() {
        let mut q = EventQueue::default();
        for i in 0..100 {
            q.schedule(SimTime(5), i);
        }
        q.schedule(SimTime(1), 1000);
        assert_eq!(q.pop_due(SimTime(10)), Some((SimTime(1), 1000)));
        for i in 0..100 {
            assert_eq!(q.pop_due(SimTime(10)), Some((SimTime(5), i)));
        }
        assert!(q.is_empty());
    }

    #[test]
    fn matches_a_plain_sort_for_any_schedule() {
        // Pseudo-random times (including equal ones and out-of-order ones), interleaved pops.
        let mut q = EventQueue::default();
        let mut reference: Vec<(u64, u64)> = Vec::new();
        let mut x = 12345u64;
        let mut popped = Vec::new();
        let mut want = Vec::new();
        for seq in 0..5000u64 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let t = (seq / 3) + (x >> 60);
            q.schedule(SimTime(t), seq);
            reference.push((t, seq));
            if x & 7 == 0 {
                reference.sort();
                let (rt, rs) = reference.remove(0);
                want.push((SimTime(rt), rs));
                popped.push(q.pop_due(SimTime(u64::MAX)).unwrap());
            }
        }
        reference.sort();
        want.extend(reference.into_iter().map(|(t, s)| (SimTime(t), s)));
        while let Some(e) = q.pop_due(SimTime(u64::MAX)) {
            popped.push(e);
        }
        assert_eq!(popped, want);
    }

    #[test]
    fn pop_due_respects_deadline() {
        let mut q = EventQueue::default();
        q.schedule(SimTime(7), ());
        assert_eq!(q.pop_due(SimTime(6)), None);
        assert_eq!(q.peek_time(), Some(SimTime(7)));
        assert!(q.pop_due(SimTime(7)).is_some());
    }
}
