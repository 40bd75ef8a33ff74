//! Writing RcvArray entries the way `hfi1_put_tid` does (facts §2.2), over any
//! [`RcvArrayWriter`]: the device's WC-mapped RcvArray through the transport, or a recorder in
//! tests.

use hfi_abi::rcv_array::PtType;
use hfi_abi::{BufSize, RcvArrayEntry};

/// The RcvArray as the driver sees it: 64-bit stores into a write-combining mapping and a WC
/// flush (sfence). Implementations count both (the timing model costs them).
pub trait RcvArrayWriter {
    /// One 64-bit store to absolute entry `index`.
    fn write_entry(&mut self, index: u32, raw: u64);
    /// `flush_wc()`: make earlier WC stores visible to the device.
    fn flush_wc(&mut self);
}

/// `hfi1_put_tid`: PT_INVALID and PT_INVALID_FLUSH force address 0 and size code 0; the entry
/// is written with WRITE_ENABLE; a WC flush follows for eager entries, PT_INVALID_FLUSH, and
/// every entry whose `index & 3 == 3` (expected entries are pushed every 4).
pub fn put_tid(w: &mut dyn RcvArrayWriter, index: u32, ty: PtType, dma_addr: u64, size: BufSize) {
    let entry = match ty {
        PtType::Invalid | PtType::InvalidFlush => RcvArrayEntry::invalid(),
        PtType::Expected | PtType::Eager => RcvArrayEntry::new(dma_addr, size),
    };
    w.write_entry(index, entry.raw());
    if matches!(ty, PtType::Eager | PtType::InvalidFlush) || index & 3 == 3 {
        w.flush_wc();
    }
}

/// `rcv_array_wc_fill`: a zero store (WRITE_ENABLE clear) so the CPU emits whole 64-byte WC
/// lines; the hardware ignores it.
pub fn wc_fill(w: &mut dyn RcvArrayWriter, index: u32) {
    w.write_entry(index, RcvArrayEntry::wc_fill().raw());
}

/// A recorder for tests: every store and flush in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordingWriter {
    /// `(index, raw)` for stores, `(u32::MAX, 0)` for flushes.
    pub ops: Vec<(u32, u64)>,
    /// Current entry values (a write with bit 63 clear is ignored, as by the hardware).
    pub entries: std::collections::BTreeMap<u32, u64>,
}

impl RcvArrayWriter for RecordingWriter {
    fn write_entry(&mut self, index: u32, raw: u64) {
        self.ops.push((index, raw));
        if RcvArrayEntry(raw).write_enable() {
            self.entries.insert(index, raw);
        }
    }
    fn flush_wc(&mut self) {
        self.ops.push((u32::MAX, 0));
    }
}

impl RecordingWriter {
    /// The valid entry at `index`, if any.
    pub fn entry(&self, index: u32) -> Option<RcvArrayEntry> {
        self.entries.get(&index).map(|&r| RcvArrayEntry(r)).filter(|e| e.is_valid())
    }

    /// Number of flushes.
    pub fn flushes(&self) -> usize {
        self.ops.iter().filter(|(i, _)| *i == u32::MAX).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flush_rule() {
        let mut w = RecordingWriter::default();
        for i in 0..8 {
            put_tid(&mut w, 100 + i, PtType::Expected, 0x1000 * u64::from(i), BufSize::SIZE_4K);
        }
        // Entries 103 and 107 have index & 3 == 3.
        assert_eq!(w.flushes(), 2);
        put_tid(&mut w, 200, PtType::Eager, 0x8000, BufSize::SIZE_4K);
        put_tid(&mut w, 100, PtType::InvalidFlush, 0x1234_5000, BufSize::SIZE_4K);
        assert_eq!(w.flushes(), 4);
        assert!(w.entry(100).is_none(), "invalidated");
        wc_fill(&mut w, 101);
        assert!(w.entry(101).is_some(), "a fill leaves the entry unchanged");
    }
}
