//! The RcvArray itself: one 64-bit word per entry, as the device stores it (facts §2.1, §2.2).
//!
//! The store keeps the raw words the driver wrote. It does not decode them: readers get an
//! [`RcvArrayEntry`] and decide from the context's RcvEgrCtrl / RcvTidCtrl ranges whether an
//! index is an eager or an expected entry (the type is not stored in the entry).
//!
//! The one hardware rule applied here is the WRITE_ENABLE rule (facts §2.2 rule 6): a write whose
//! bit 63 is clear, such as the zero qword `rcv_array_wc_fill` pads a 64-byte group line with, is
//! ignored and leaves the stored entry unchanged.

use hfi_abi::rcv_array::{RcvArrayEntry, RCV_ARRAY_RT_WRITE_ENABLE};

/// What a write to the RcvArray did.
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WriteOutcome {
    /// WRITE_ENABLE was set: the raw value is now the entry.
    Stored,
    /// WRITE_ENABLE was clear (a WC padding write): the entry is unchanged.
    IgnoredWriteDisabled,
    /// The index is past the end of the array: nothing was written.
    OutOfRange,
}

/// Storage for the chip's RcvArray (RCV_ARRAY_CNT entries of 8 bytes).
///
/// Reads and writes are bounds-checked and cost one `Vec` access; they never panic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RcvArrayStore {
    entries: Vec<u64>,
}

impl RcvArrayStore {
    /// An all-zero array of `len` entries (a real WFR has 65536).
    pub fn new(len: u32) -> Self {
        Self { entries: vec![0; len as usize] }
    }

    /// Number of entries (RCV_ARRAY_CNT).
    pub fn len(&self) -> u32 {
        // The length came from a u32 in `new`, so this never truncates.
        self.entries.len() as u32
    }

    /// True for an array of zero entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// One 64-bit write to entry `idx`. The value is stored as it is only when bit 63
    /// (WRITE_ENABLE) is set; otherwise the entry keeps its old value.
    pub fn write(&mut self, idx: u32, raw: u64) -> WriteOutcome {
        let Some(slot) = self.entries.get_mut(idx as usize) else {
            return WriteOutcome::OutOfRange;
        };
        if RCV_ARRAY_RT_WRITE_ENABLE.get(raw) == 0 {
            return WriteOutcome::IgnoredWriteDisabled;
        }
        *slot = raw;
        WriteOutcome::Stored
    }

    /// Entry `idx`, or `None` past the end.
    pub fn read(&self, idx: u32) -> Option<RcvArrayEntry> {
        self.read_raw(idx).map(RcvArrayEntry)
    }

    /// The raw word of entry `idx`, or `None` past the end.
    pub fn read_raw(&self, idx: u32) -> Option<u64> {
        self.entries.get(idx as usize).copied()
    }

    /// Every entry back to zero (the reset value).
    pub fn reset(&mut self) {
        self.entries.fill(0);
    }

    /// Writes the invalidating word (PT_INVALID: WRITE_ENABLE, size code 0, address 0) to
    /// entries `start .. start + count`, as hfi1_clear_tids does for a context. The part of the
    /// range past the end of the array is ignored. Returns the number of entries written.
    pub fn invalidate_range(&mut self, start: u32, count: u32) -> u32 {
        let len = self.len();
        let start = start.min(len);
        let end = start.saturating_add(count).min(len);
        let invalid = RcvArrayEntry::invalid().raw();
        if let Some(range) = self.entries.get_mut(start as usize..end as usize) {
            range.fill(invalid);
        }
        end - start
    }

    /// All raw words, index 0 first.
    pub fn as_slice(&self) -> &[u64] {
        &self.entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hfi_abi::rcv_array::BufSize;
    use proptest::prelude::*;

    #[test]
    fn write_enable_rule() {
        let mut s = RcvArrayStore::new(16);
        let e = RcvArrayEntry::new(0x1_2345_6000, BufSize::SIZE_4K);
        assert_eq!(s.write(3, e.raw()), WriteOutcome::Stored);
        assert_eq!(s.read(3), Some(e));
        // A WC fill (all zero) and any other write with bit 63 clear leave the entry alone.
        assert_eq!(s.write(3, RcvArrayEntry::wc_fill().raw()), WriteOutcome::IgnoredWriteDisabled);
        assert_eq!(s.write(3, 0x7FFF_FFFF_FFFF_FFFF), WriteOutcome::IgnoredWriteDisabled);
        assert_eq!(s.read(3), Some(e));
        // The invalidating write has WRITE_ENABLE set and does replace the entry.
        assert_eq!(s.write(3, RcvArrayEntry::invalid().raw()), WriteOutcome::Stored);
        assert_eq!(s.read_raw(3), Some(0x8000_0000_0000_0000));
        assert!(!s.read(3).is_some_and(RcvArrayEntry::is_valid));
    }

    #[test]
    fn out_of_range() {
        let mut s = RcvArrayStore::new(8);
        assert_eq!(s.len(), 8);
        assert!(!s.is_empty());
        assert_eq!(s.write(8, u64::MAX), WriteOutcome::OutOfRange);
        assert_eq!(s.write(u32::MAX, u64::MAX), WriteOutcome::OutOfRange);
        assert_eq!(s.read(8), None);
        assert_eq!(s.read_raw(u32::MAX), None);
        assert!(RcvArrayStore::new(0).is_empty());
        assert_eq!(RcvArrayStore::new(0).write(0, u64::MAX), WriteOutcome::OutOfRange);
    }

    #[test]
    fn invalidate_and_reset() {
        let mut s = RcvArrayStore::new(16);
        let e = RcvArrayEntry::new(0x4000, BufSize::SIZE_4K).raw();
        for i in 0..16 {
            let _ = s.write(i, e);
        }
        assert_eq!(s.invalidate_range(12, 10), 4);
        assert_eq!(s.invalidate_range(2, 3), 3);
        assert_eq!(s.invalidate_range(16, 1), 0);
        assert_eq!(s.invalidate_range(u32::MAX, u32::MAX), 0);
        for i in 0..16u32 {
            let want =
                if (2..5).contains(&i) || i >= 12 { RcvArrayEntry::invalid().raw() } else { e };
            assert_eq!(s.read_raw(i), Some(want), "entry {i}");
        }
        s.reset();
        assert!(s.as_slice().iter().all(|&w| w == 0));
    }

    #[derive(Clone, Debug)]
    enum StoreOp {
        Write(u32, u64),
        Invalidate(u32, u32),
        Reset,
    }

    fn store_op(len: u32) -> impl Strategy<Value = StoreOp> {
        let idx = 0..len + 4;
        let raw = prop_oneof![
            any::<u64>(),
            any::<u64>().prop_map(|w| w | (1 << 63)),
            any::<u64>().prop_map(|w| w & !(1 << 63)),
            Just(0u64),
        ];
        prop_oneof![
            8 => (idx.clone(), raw).prop_map(|(i, w)| StoreOp::Write(i, w)),
            1 => (idx, 0..len + 4).prop_map(|(i, n)| StoreOp::Invalidate(i, n)),
            1 => Just(StoreOp::Reset),
        ]
    }

    proptest! {
        /// The store against a naive model of the WRITE_ENABLE rule.
        #[test]
        fn store_matches_naive_model(
            ops in proptest::collection::vec(store_op(24), 0..200)
        ) {
            let mut s = RcvArrayStore::new(24);
            let mut model = vec![0u64; 24];
            for op in ops {
                match op {
                    StoreOp::Write(i, w) => {
                        let got = s.write(i, w);
                        let want = match model.get_mut(i as usize) {
                            None => WriteOutcome::OutOfRange,
                            Some(_) if w >> 63 == 0 => WriteOutcome::IgnoredWriteDisabled,
                            Some(m) => {
                                *m = w;
                                WriteOutcome::Stored
                            }
                        };
                        prop_assert_eq!(got, want);
                    }
                    StoreOp::Invalidate(start, n) => {
                        let mut written = 0;
                        for i in start..start.saturating_add(n) {
                            if let Some(m) = model.get_mut(i as usize) {
                                *m = 1 << 63;
                                written += 1;
                            }
                        }
                        prop_assert_eq!(s.invalidate_range(start, n), written);
                    }
                    StoreOp::Reset => {
                        s.reset();
                        model.fill(0);
                    }
                }
                prop_assert_eq!(s.as_slice(), model.as_slice());
            }
        }
    }
}
