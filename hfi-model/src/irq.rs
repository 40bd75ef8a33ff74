//! Interrupts: the CceInt status/mask/clear/force CSRs, CceIntMap routing to MSI-X vectors, and
//! RcvAvail moderation (RcvHdrHead.Counter and RcvAvailTimeOut).
//!
//! Semantics (facts PIO sheet §5): a source whose status bit goes 0 → 1 while its mask bit is set
//! signals the vector in its CceIntMap byte; unmasking a pending source signals it too.
//! Signalled vectors collect in a deterministic pending set that the transport drains
//! ([`crate::HfiDevice::take_interrupts`]).

use std::collections::BTreeSet;

use hfi_abi::cce::{int_source_bit, NUM_INT_CSRS, NUM_INT_SOURCES};

use crate::counters::Counters;

/// Interrupt status and routing.
#[derive(Clone, Debug, Default)]
pub struct IntState {
    /// CceIntStatus.
    pub status: [u64; NUM_INT_CSRS as usize],
    /// Vectors signalled and not yet taken by the host side.
    pub pending: BTreeSet<u16>,
}

impl IntState {
    /// Raises source `src`; returns the vector to signal if it must be signalled.
    pub fn raise(&mut self, src: u64, mask: &[u64], map: &[u64], c: &mut Counters) {
        if src >= NUM_INT_SOURCES {
            return;
        }
        let (reg, bit) = int_source_bit(src);
        let Some(st) = self.status.get_mut(reg as usize) else {
            return;
        };
        let was = *st & bit != 0;
        *st |= bit;
        if !was && mask.get(reg as usize).is_some_and(|m| m & bit != 0) {
            self.signal(src, map, c);
        }
    }

    /// Clears status bits of CSR `reg`.
    pub fn clear(&mut self, reg: usize, bits: u64) {
        if let Some(st) = self.status.get_mut(reg) {
            *st &= !bits;
        }
    }

    /// Called after CceIntMask[reg] changed from `old` to `new`: newly enabled pending sources
    /// are signalled.
    pub fn mask_changed(&mut self, reg: usize, old: u64, new: u64, map: &[u64], c: &mut Counters) {
        let st = self.status.get(reg).copied().unwrap_or(0);
        let mut fire = st & new & !old;
        while fire != 0 {
            let b = u64::from(fire.trailing_zeros());
            fire &= fire - 1;
            self.signal(reg as u64 * 64 + b, map, c);
        }
    }

    fn signal(&mut self, src: u64, map: &[u64], c: &mut Counters) {
        let byte = map.get((src / 8) as usize).map_or(0, |m| (m >> ((src % 8) * 8)) & 0xFF);
        self.pending.insert(byte as u16);
        c.intr_msix_count += 1;
    }

    /// Whether a source's status bit is set.
    pub fn is_set(&self, src: u64) -> bool {
        let (reg, bit) = int_source_bit(src);
        self.status.get(reg as usize).is_some_and(|s| s & bit != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raise_routes_through_map_and_mask() {
        let mut s = IntState::default();
        let mut c = Counters::default();
        let mut mask = [0u64; 12];
        let mut map = [0u64; 96];
        // Source 259 (RcvAvail ctxt 3) → map byte 3 of CSR 32 → vector 5.
        map[32] = 5 << 24;
        s.raise(259, &mask, &map, &mut c);
        assert!(s.is_set(259) && s.pending.is_empty());
        // Unmasking a pending source signals it.
        mask[4] = 1 << 3;
        s.mask_changed(4, 0, mask[4], &map, &mut c);
        assert_eq!(s.pending.iter().copied().collect::<Vec<_>>(), vec![5]);
        // Raising again while set does not signal again; after clear it does.
        s.pending.clear();
        s.raise(259, &mask, &map, &mut c);
        assert!(s.pending.is_empty());
        s.clear(4, 1 << 3);
        s.raise(259, &mask, &map, &mut c);
        assert!(s.pending.contains(&5));
        // Out-of-range sources are ignored.
        s.raise(10_000, &mask, &map, &mut c);
        assert_eq!(c.intr_msix_count, 2);
    }
}
