//! A slab of values threaded by an intrusive doubly linked list: the TID cache's LRU idle queue
//! (facts §9.3). Values live in slots addressed by `u32` indices; a slot is either free or
//! holds a value, and a value is either on the list or not. Push at the head, pop victims from
//! the tail, unlink from anywhere: all O(1), no scans.

/// The "no slot" link.
const NIL: u32 = u32::MAX;

/// One slot: a value (or none when free) and its list links.
#[derive(Clone, Debug)]
struct Slot<T> {
    value: Option<T>,
    prev: u32,
    next: u32,
    linked: bool,
}

/// The slab plus the list over (some of) its values.
#[derive(Clone, Debug)]
pub(crate) struct LruSlab<T> {
    slots: Vec<Slot<T>>,
    /// Indices of free slots, reused last-in first-out.
    free: Vec<u32>,
    head: u32,
    tail: u32,
    /// Values on the list.
    linked: usize,
    /// Values in the slab.
    live: usize,
}

impl<T> Default for LruSlab<T> {
    fn default() -> Self {
        Self { slots: Vec::new(), free: Vec::new(), head: NIL, tail: NIL, linked: 0, live: 0 }
    }
}

impl<T> LruSlab<T> {
    /// Store `value` in a free slot (not on the list). `None` when the slab has `u32::MAX`
    /// slots already.
    pub(crate) fn insert(&mut self, value: T) -> Option<u32> {
        let slot = Slot { value: Some(value), prev: NIL, next: NIL, linked: false };
        let idx = match self.free.pop() {
            Some(idx) => {
                *self.slots.get_mut(idx as usize)? = slot;
                idx
            }
            None => {
                let idx = u32::try_from(self.slots.len()).ok().filter(|&i| i != NIL)?;
                self.slots.push(slot);
                idx
            }
        };
        self.live += 1;
        Some(idx)
    }

    /// Take the value out of slot `idx` (unlinking it first). `None` for a free slot.
    pub(crate) fn remove(&mut self, idx: u32) -> Option<T> {
        self.unlink(idx);
        let value = self.slots.get_mut(idx as usize)?.value.take()?;
        self.free.push(idx);
        self.live -= 1;
        Some(value)
    }

    /// The value in slot `idx`.
    pub(crate) fn get(&self, idx: u32) -> Option<&T> {
        self.slots.get(idx as usize)?.value.as_ref()
    }

    /// The value in slot `idx`, mutably.
    pub(crate) fn get_mut(&mut self, idx: u32) -> Option<&mut T> {
        self.slots.get_mut(idx as usize)?.value.as_mut()
    }

    /// Whether slot `idx` holds a value that is on the list.
    pub(crate) fn is_linked(&self, idx: u32) -> bool {
        self.slots.get(idx as usize).is_some_and(|s| s.linked)
    }

    /// Put the value in slot `idx` at the head of the list. No-op (false) for a free slot or
    /// a value already on the list.
    pub(crate) fn push_front(&mut self, idx: u32) -> bool {
        let old_head = self.head;
        match self.slots.get_mut(idx as usize) {
            Some(s) if s.value.is_some() && !s.linked => {
                s.linked = true;
                s.prev = NIL;
                s.next = old_head;
            }
            _ => return false,
        }
        match self.slots.get_mut(old_head as usize) {
            Some(h) => h.prev = idx,
            None => self.tail = idx,
        }
        self.head = idx;
        self.linked += 1;
        true
    }

    /// Take the value in slot `idx` off the list. No-op (false) when it is not on it.
    pub(crate) fn unlink(&mut self, idx: u32) -> bool {
        let (prev, next) = match self.slots.get_mut(idx as usize) {
            Some(s) if s.linked => {
                s.linked = false;
                let links = (s.prev, s.next);
                s.prev = NIL;
                s.next = NIL;
                links
            }
            _ => return false,
        };
        match self.slots.get_mut(prev as usize) {
            Some(p) => p.next = next,
            None => self.head = next,
        }
        match self.slots.get_mut(next as usize) {
            Some(n) => n.prev = prev,
            None => self.tail = prev,
        }
        self.linked -= 1;
        true
    }

    /// The tail of the list (the least recently pushed value).
    pub(crate) fn back(&self) -> Option<u32> {
        (self.tail != NIL).then_some(self.tail)
    }

    /// The head of the list (the most recently pushed value).
    pub(crate) fn front(&self) -> Option<u32> {
        (self.head != NIL).then_some(self.head)
    }

    /// The neighbour of `idx` towards the tail.
    pub(crate) fn next_of(&self, idx: u32) -> Option<u32> {
        let s = self.slots.get(idx as usize)?;
        (s.linked && s.next != NIL).then_some(s.next)
    }

    /// The neighbour of `idx` towards the head.
    pub(crate) fn prev_of(&self, idx: u32) -> Option<u32> {
        let s = self.slots.get(idx as usize)?;
        (s.linked && s.prev != NIL).then_some(s.prev)
    }

    /// Values on the list.
    pub(crate) fn linked_len(&self) -> usize {
        self.linked
    }

    /// Values in the slab.
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// Slot indices on the list from head to tail, following `next` links; stops after as many
    /// steps as there are slots, so a corrupted list cannot loop forever.
    pub(crate) fn list_from_head(&self) -> Vec<u32> {
        let mut out = Vec::with_capacity(self.linked);
        let mut cur = self.head;
        while cur != NIL && out.len() <= self.slots.len() {
            out.push(cur);
            cur = self.slots.get(cur as usize).map_or(NIL, |s| s.next);
        }
        out
    }

    /// Slot indices on the list from tail to head, following `prev` links (bounded likewise).
    pub(crate) fn list_from_tail(&self) -> Vec<u32> {
        let mut out = Vec::with_capacity(self.linked);
        let mut cur = self.tail;
        while cur != NIL && out.len() <= self.slots.len() {
            out.push(cur);
            cur = self.slots.get(cur as usize).map_or(NIL, |s| s.prev);
        }
        out
    }

    /// Every stored value with its slot index, in slot order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, &T)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| Some((u32::try_from(i).ok()?, s.value.as_ref()?)))
    }

    /// Drop every value and reset the list.
    pub(crate) fn clear(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_unlink_back_order() {
        let mut s = LruSlab::default();
        let a = s.insert('a').unwrap();
        let b = s.insert('b').unwrap();
        let c = s.insert('c').unwrap();
        assert!(s.push_front(a) && s.push_front(b) && s.push_front(c));
        assert!(!s.push_front(b), "already linked");
        assert_eq!(s.list_from_head(), vec![c, b, a]);
        assert_eq!(s.back(), Some(a));
        assert_eq!(s.prev_of(a), Some(b));
        assert!(s.unlink(b));
        assert!(!s.unlink(b));
        assert_eq!(s.list_from_head(), vec![c, a]);
        assert_eq!(s.list_from_tail(), vec![a, c]);
        assert_eq!(s.linked_len(), 2);
        assert_eq!(s.remove(a), Some('a'));
        assert_eq!(s.back(), Some(c));
        assert_eq!(s.remove(c), Some('c'));
        assert_eq!(s.back(), None);
        assert_eq!(s.linked_len(), 0);
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn free_slots_are_reused_and_free_slots_refuse() {
        let mut s = LruSlab::default();
        let a = s.insert(1).unwrap();
        assert_eq!(s.remove(a), Some(1));
        assert_eq!(s.remove(a), None);
        assert!(!s.push_front(a));
        assert_eq!(s.get(a), None);
        let b = s.insert(2).unwrap();
        assert_eq!(a, b);
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![(b, &2)]);
        s.clear();
        assert_eq!(s.len(), 0);
        assert_eq!(s.get(b), None);
    }
}
