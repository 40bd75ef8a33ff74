//! The generic CSR file: every 8-byte CSR of the UC spaces hfi1 maps (BAR0 below the RcvArray,
//! and from the end of the RcvArray window to the PIO space: RXE user pages, TXE) that no
//! table models reads back what was last written (reset value 0). It is the fallback after the
//! register tables, so a driver that programs registers the model gives no behaviour (error
//! masks, QP maps, SDMA rings, LCB and DCC set-up, ...) sees plain storage instead of
//! "unknown".
//!
//! It also keeps the CSR access census: which 8-byte CSR offsets (modelled or not, below the
//! PIO space, RcvArray entries excluded) were read or written, and which fell through to the
//! generic storage, so a run can report how many CSRs a driver touched and where.
//!
//! Storage is sparse (a zero value is not stored) and bounded by [`GENERIC_CAPACITY`]
//! non-zero offsets; a non-zero write to a new offset beyond it is dropped and counted
//! (`csr_generic_full_drops`). The census is three bitmaps of one bit per 8-byte offset.

use std::collections::BTreeMap;

use hfi_abi::bar0;

use crate::counters::Counters;

/// Largest number of non-zero generic CSRs kept (a guest writing every offset of the generic
/// ranges would otherwise need ~4 M entries).
pub const GENERIC_CAPACITY: usize = 1 << 20;

/// 8-byte CSR offsets below the PIO space.
const CSR_SLOTS: usize = (bar0::TXE_PIO_SEND / 8) as usize;

#[derive(Clone, Debug)]
struct Bitmap(Vec<u64>);

impl Bitmap {
    fn new(bits: usize) -> Self {
        Self(vec![0; bits.div_ceil(64)])
    }

    /// Sets bit `i`; true if it was clear.
    fn set(&mut self, i: usize) -> bool {
        let Some(w) = self.0.get_mut(i / 64) else {
            return false;
        };
        let b = 1u64 << (i % 64);
        let was = *w & b != 0;
        *w |= b;
        !was
    }

    fn get(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|w| w & (1u64 << (i % 64)) != 0)
    }

    fn ones(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().enumerate().flat_map(|(wi, &w)| {
            let mut bits = w;
            std::iter::from_fn(move || {
                if bits == 0 {
                    return None;
                }
                let b = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                Some(wi * 64 + b)
            })
        })
    }
}

/// One CSR offset of the census.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CsrTouch {
    /// BAR0 offset (8-byte aligned).
    pub offset: u64,
    /// Read at least once.
    pub read: bool,
    /// Written at least once.
    pub written: bool,
    /// Served by the generic storage (no modelled register there).
    pub generic: bool,
}

/// Census totals of one BAR0 block.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct BlockCensus {
    /// Distinct offsets read or written.
    pub touched: u64,
    /// Distinct offsets read.
    pub read: u64,
    /// Distinct offsets written.
    pub written: u64,
    /// Distinct offsets served by the generic storage.
    pub generic: u64,
}

/// Generic storage plus the access census.
#[derive(Clone, Debug)]
pub struct CsrFile {
    store: BTreeMap<u64, u64>,
    read_seen: Bitmap,
    written_seen: Bitmap,
    generic_seen: Bitmap,
}

impl Default for CsrFile {
    fn default() -> Self {
        Self::new()
    }
}

impl CsrFile {
    /// Empty storage, empty census.
    pub fn new() -> Self {
        Self {
            store: BTreeMap::new(),
            read_seen: Bitmap::new(CSR_SLOTS),
            written_seen: Bitmap::new(CSR_SLOTS),
            generic_seen: Bitmap::new(CSR_SLOTS),
        }
    }

    /// True when the 8-byte aligned `off` lies in a range the generic storage serves: below
    /// the RcvArray, or from the end of the RcvArray window (the chip's 64 Ki entries, or the
    /// device's `rcv_array_cnt` if larger) up to the PIO space.
    pub fn in_generic_range(off: u64, rcv_array_cnt: u32) -> bool {
        let ra_end = bar0::RCV_ARRAY.end().max(bar0::RCV_ARRAY.base + u64::from(rcv_array_cnt) * 8);
        off < bar0::RCV_ARRAY.base || (ra_end..bar0::TXE_PIO_SEND).contains(&off)
    }

    /// Reads generic CSR `off` (0 if never written since reset).
    pub fn read(&mut self, off: u64, c: &mut Counters) -> u64 {
        c.mmio_generic_read_count += 1;
        self.mark_generic(off, c);
        self.store.get(&off).copied().unwrap_or(0)
    }

    /// Current value of generic CSR `off`, without counting (half-write merges, tests).
    pub fn peek(&self, off: u64) -> u64 {
        self.store.get(&off).copied().unwrap_or(0)
    }

    /// Writes generic CSR `off`.
    pub fn write(&mut self, off: u64, v: u64, c: &mut Counters) {
        c.mmio_generic_write_count += 1;
        self.mark_generic(off, c);
        if v == 0 {
            self.store.remove(&off);
        } else if let Some(slot) = self.store.get_mut(&off) {
            *slot = v;
        } else if self.store.len() < GENERIC_CAPACITY {
            self.store.insert(off, v);
        } else {
            c.csr_generic_full_drops += 1;
        }
    }

    /// Number of non-zero generic CSRs held.
    pub fn stored(&self) -> usize {
        self.store.len()
    }

    /// Device reset: every generic CSR back to 0. The census is kept (like the counters).
    pub fn reset(&mut self) {
        self.store.clear();
    }

    fn mark_generic(&mut self, off: u64, c: &mut Counters) {
        if self.generic_seen.set((off / 8) as usize) {
            c.csr_generic_distinct_count += 1;
        }
    }

    /// Census: a CSR at `off` (any register below the PIO space except RcvArray entries) was
    /// read (`write` false) or written.
    pub fn note(&mut self, off: u64, write: bool, c: &mut Counters) {
        let i = (off / 8) as usize;
        if i >= CSR_SLOTS {
            return;
        }
        let first_touch = !self.read_seen.get(i) && !self.written_seen.get(i);
        let new = if write { self.written_seen.set(i) } else { self.read_seen.set(i) };
        if new {
            if write {
                c.csr_written_distinct_count += 1;
            } else {
                c.csr_read_distinct_count += 1;
            }
        }
        if first_touch {
            c.csr_touched_distinct_count += 1;
        }
    }

    /// Every CSR offset touched since the device was created, in offset order.
    pub fn touched(&self) -> Vec<CsrTouch> {
        let mut idx: Vec<usize> = self.read_seen.ones().chain(self.written_seen.ones()).collect();
        idx.sort_unstable();
        idx.dedup();
        idx.into_iter()
            .map(|i| CsrTouch {
                offset: i as u64 * 8,
                read: self.read_seen.get(i),
                written: self.written_seen.get(i),
                generic: self.generic_seen.get(i),
            })
            .collect()
    }

    /// Census per BAR0 block ([`block_name`]), in block order.
    pub fn census(&self) -> BTreeMap<&'static str, BlockCensus> {
        let mut m: BTreeMap<&'static str, BlockCensus> = BTreeMap::new();
        for t in self.touched() {
            let e = m.entry(block_name(t.offset)).or_default();
            e.touched += 1;
            e.read += u64::from(t.read);
            e.written += u64::from(t.written);
            e.generic += u64::from(t.generic);
        }
        m
    }
}

/// The BAR0 block an offset belongs to (census reports).
pub fn block_name(off: u64) -> &'static str {
    use hfi_abi::bar0::*;
    if off >= TXE_PIO_SEND {
        "pio"
    } else if TXE_PER_SDMA.index(off).is_some() {
        "txe_sdma"
    } else if TXE_PER_CONTEXT.index(off).is_some() {
        "txe_ctxt"
    } else if off >= TXE {
        "txe"
    } else if RXE_PER_CONTEXT_USER.index(off).is_some() {
        "rxe_uctxt"
    } else if off >= RCV_ARRAY.base {
        "rcv_array"
    } else if RXE_PER_CONTEXT_KERNEL.index(off).is_some() {
        "rxe_kctxt"
    } else if off >= RXE {
        "rxe"
    } else if off >= DC_TOP {
        "dc"
    } else if off >= MISC {
        "misc"
    } else if off >= ASIC {
        "asic"
    } else {
        "cce"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let cnt = 16384;
        assert!(CsrFile::in_generic_range(0x0, cnt));
        assert!(CsrFile::in_generic_range(0x11_FFF8 + 0x10_0000, cnt)); // kernel ctxt space
        assert!(!CsrFile::in_generic_range(bar0::RCV_ARRAY.base, cnt));
        // The chip's RcvArray window stays reserved past the device's entries.
        assert!(!CsrFile::in_generic_range(bar0::RCV_ARRAY.base + u64::from(cnt) * 8, cnt));
        assert!(CsrFile::in_generic_range(bar0::RCV_ARRAY.end(), cnt));
        assert!(CsrFile::in_generic_range(bar0::RXE_PER_CONTEXT_USER.base + 0x28, cnt));
        assert!(CsrFile::in_generic_range(bar0::TXE + 0x1234 * 8, cnt));
        assert!(!CsrFile::in_generic_range(bar0::TXE_PIO_SEND, cnt));
        // A device with the largest RcvArray pushes the generic range up.
        let big = 131_072;
        assert!(!CsrFile::in_generic_range(bar0::RCV_ARRAY.end(), big));
        assert!(CsrFile::in_generic_range(bar0::RCV_ARRAY.base + u64::from(big) * 8, big));
    }

    #[test]
    fn storage_reads_back_and_resets() {
        let mut f = CsrFile::new();
        let mut c = Counters::default();
        f.write(0x1000, 7, &mut c);
        f.write(0x1008, 0, &mut c);
        assert_eq!(f.read(0x1000, &mut c), 7);
        assert_eq!(f.read(0x1008, &mut c), 0);
        assert_eq!(f.stored(), 1, "zero is not stored");
        assert_eq!(c.csr_generic_distinct_count, 2);
        assert_eq!((c.mmio_generic_read_count, c.mmio_generic_write_count), (2, 2));
        f.reset();
        assert_eq!(f.read(0x1000, &mut c), 0);
        assert_eq!(c.csr_generic_distinct_count, 2, "the census survives a reset");
    }

    #[test]
    fn capacity_is_bounded() {
        let mut f = CsrFile::new();
        let mut c = Counters::default();
        for i in 0..GENERIC_CAPACITY as u64 {
            f.store.insert(i * 8, 1);
        }
        f.write(0x0F0_0000, 5, &mut c);
        assert_eq!(c.csr_generic_full_drops, 1);
        assert_eq!(f.peek(0x0F0_0000), 0);
        // Overwriting a held offset and clearing one still work when full.
        f.write(8, 9, &mut c);
        assert_eq!(f.peek(8), 9);
        f.write(16, 0, &mut c);
        f.write(0x0F0_0000, 5, &mut c);
        assert_eq!(f.peek(0x0F0_0000), 5);
    }

    #[test]
    fn census_counts_distinct_offsets() {
        let mut f = CsrFile::new();
        let mut c = Counters::default();
        f.note(0x10, false, &mut c);
        f.note(0x10, false, &mut c);
        f.note(0x10, true, &mut c);
        f.note(0x40_0040, true, &mut c);
        f.note(bar0::TXE_PIO_SEND, true, &mut c); // outside the census
        assert_eq!(c.csr_touched_distinct_count, 2);
        assert_eq!(c.csr_read_distinct_count, 1);
        assert_eq!(c.csr_written_distinct_count, 2);
        let t = f.touched();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0], CsrTouch { offset: 0x10, read: true, written: true, generic: false });
        let census = f.census();
        assert_eq!(census["cce"].touched, 1);
        assert_eq!(census["asic"].written, 1);
    }

    #[test]
    fn block_names() {
        assert_eq!(block_name(0x60_2028), "dc");
        assert_eq!(block_name(0x50_2000), "misc");
        assert_eq!(block_name(0x110_0000), "rxe_kctxt");
        assert_eq!(block_name(0x130_1008), "rxe_uctxt");
        assert_eq!(block_name(0x120_0000), "rcv_array");
        assert_eq!(block_name(0x190_0040), "txe_ctxt");
        assert_eq!(block_name(0x1A0_0000), "txe_sdma");
        assert_eq!(block_name(0x180_0038), "txe");
        assert_eq!(block_name(0x100_0000), "rxe");
    }
}
