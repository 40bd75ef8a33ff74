//! One 8-entry TID group (hfi1 `struct tid_group`, facts §6.1): its absolute base, its size, how
//! many of its slots are in use, and which ones.

use bitvec::prelude::{BitArray, Lsb0};

/// Slots per TID group (the RcvArray group size).
pub const TID_GROUP_SIZE: u8 = 8;

/// Used-slot map of a group: bit `i` set when slot `i` (entry `base + i`) is programmed.
pub type SlotMap = BitArray<[u8; 1], Lsb0>;

/// An 8-entry RcvArray group of a context's expected range.
///
/// `used` always equals the number of set bits in `map`; only the allocator changes either.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TidGroup {
    base: u32,
    size: u8,
    used: u8,
    map: SlotMap,
}

impl TidGroup {
    /// An empty group of [`TID_GROUP_SIZE`] slots starting at absolute entry `base`.
    pub(crate) fn new(base: u32) -> Self {
        Self { base, size: TID_GROUP_SIZE, used: 0, map: SlotMap::ZERO }
    }

    /// Absolute RcvArray index of slot 0.
    pub fn base(&self) -> u32 {
        self.base
    }

    /// Slots in the group (8).
    pub fn size(&self) -> u8 {
        self.size
    }

    /// Slots in use.
    pub fn used(&self) -> u8 {
        self.used
    }

    /// The used-slot map.
    pub fn map(&self) -> &SlotMap {
        &self.map
    }

    /// The used-slot map as hfi1's `u8 map` (bit `i` = slot `i`).
    pub fn map_bits(&self) -> u8 {
        let [bits] = self.map.data;
        bits
    }

    /// True when every slot is in use.
    pub fn is_full(&self) -> bool {
        self.used >= self.size
    }

    /// True when no slot is in use.
    pub fn is_empty(&self) -> bool {
        self.used == 0
    }

    /// True when slot `slot` is in use; false for a slot past the end.
    pub fn is_slot_used(&self, slot: u8) -> bool {
        slot < self.size && self.map.get(usize::from(slot)).is_some_and(|b| *b)
    }

    /// The slot that holds absolute entry `abs_entry`, if the group covers it.
    pub fn slot_of(&self, abs_entry: u32) -> Option<u8> {
        let rel = abs_entry.checked_sub(self.base)?;
        if rel < u32::from(self.size) {
            Some(rel as u8)
        } else {
            None
        }
    }

    /// Absolute entry of slot `slot` (no range check beyond overflow).
    pub(crate) fn entry(&self, slot: u8) -> Option<u32> {
        self.base.checked_add(u32::from(slot))
    }

    /// Absolute entries in use, ascending.
    pub fn used_entries(&self) -> impl Iterator<Item = u32> + '_ {
        self.map.iter_ones().filter_map(|slot| self.base.checked_add(slot as u32))
    }

    /// Marks `slot` used. Returns false (and changes nothing) when it already was or is out of
    /// range.
    pub(crate) fn mark_used(&mut self, slot: u8) -> bool {
        if slot >= self.size {
            return false;
        }
        match self.map.get_mut(usize::from(slot)) {
            Some(mut bit) if !*bit => {
                *bit = true;
                self.used += 1;
                true
            }
            _ => false,
        }
    }

    /// Marks `slot` free. Returns false (and changes nothing) when it already was or is out of
    /// range.
    pub(crate) fn mark_free(&mut self, slot: u8) -> bool {
        if slot >= self.size {
            return false;
        }
        match self.map.get_mut(usize::from(slot)) {
            Some(mut bit) if *bit => {
                *bit = false;
                self.used -= 1;
                true
            }
            _ => false,
        }
    }

    /// Back to no slot in use.
    pub(crate) fn reset(&mut self) {
        self.used = 0;
        self.map = SlotMap::ZERO;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mark_and_query() {
        let mut g = TidGroup::new(1040);
        assert_eq!((g.base(), g.size(), g.used()), (1040, 8, 0));
        assert!(g.is_empty() && !g.is_full());
        assert!(g.mark_used(0));
        assert!(g.mark_used(5));
        assert!(!g.mark_used(5), "already used");
        assert!(!g.mark_used(8), "past the end");
        assert_eq!(g.used(), 2);
        assert_eq!(g.map_bits(), 0b0010_0001);
        assert_eq!(g.map().count_ones(), 2);
        assert!(g.is_slot_used(5) && !g.is_slot_used(4) && !g.is_slot_used(200));
        assert_eq!(g.used_entries().collect::<Vec<_>>(), [1040, 1045]);
        assert_eq!(g.slot_of(1047), Some(7));
        assert_eq!(g.slot_of(1048), None);
        assert_eq!(g.slot_of(1039), None);
        assert!(g.mark_free(0));
        assert!(!g.mark_free(0), "already free");
        assert!(!g.mark_free(9));
        assert_eq!(g.used(), 1);
        for s in 0..8 {
            g.mark_used(s);
        }
        assert!(g.is_full());
        assert_eq!(g.map_bits(), 0xFF);
        g.reset();
        assert!(g.is_empty());
        assert_eq!(g.map_bits(), 0);
    }
}
