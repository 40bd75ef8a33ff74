//! RcvArray entry format and buffer size codes (facts §2.1, §2.2).

use crate::field::Field;

/// RT_ADDR: DMA address >> 12 (bits 35:0).
pub const RCV_ARRAY_RT_ADDR: Field = Field::new(0, 36);
/// BUF_SIZE: size code (bits 39:36; the 4-bit width is inferred from codes 0x0..0xF).
pub const RCV_ARRAY_RT_BUF_SIZE: Field = Field::new(36, 4);
/// WRITE_ENABLE (bit 63). A write with this bit clear is ignored by the hardware.
pub const RCV_ARRAY_RT_WRITE_ENABLE: Field = Field::bit(63);

/// Size codes shared by RcvArray entries and RcvCtxtCtrl.EgrBufSize:
/// code = log2(bytes / 4096) + 1, 0 = invalid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BufSize(u8);

impl BufSize {
    /// Code 0: invalid / unused entry.
    pub const INVALID: BufSize = BufSize(0);
    /// 4 KiB, the smallest buffer.
    pub const SIZE_4K: BufSize = BufSize(1);
    /// 256 KiB, the largest eager buffer (code 7).
    pub const MAX_EAGER: BufSize = BufSize(7);
    /// 2 MiB, the largest expected buffer (code 0xA).
    pub const MAX_EXPECTED: BufSize = BufSize(0xA);

    /// The code for a power-of-two size in bytes between 4 KiB and 2 MiB.
    pub const fn from_bytes(bytes: u64) -> Option<BufSize> {
        if !bytes.is_power_of_two() || bytes < 4096 || bytes > (2 << 20) {
            return None;
        }
        Some(BufSize((bytes.trailing_zeros() - 12 + 1) as u8))
    }

    /// The code for `npages` 4 KiB pages (a power of two 1..=512): ilog2(npages) + 1.
    pub const fn from_pages(npages: u64) -> Option<BufSize> {
        match npages.checked_mul(4096) {
            Some(b) => Self::from_bytes(b),
            None => None,
        }
    }

    /// A raw code as stored in hardware (any 4-bit value; reserved codes are kept as they are).
    pub const fn from_code(code: u8) -> BufSize {
        BufSize(code & 0xF)
    }

    /// The raw 4-bit code.
    pub const fn code(self) -> u8 {
        self.0
    }

    /// Buffer size in bytes; `None` for code 0 and reserved codes 0xB..0xF.
    pub const fn bytes(self) -> Option<u64> {
        match self.0 {
            1..=0xA => Some(4096u64 << (self.0 - 1)),
            _ => None,
        }
    }

    /// True for codes usable as an eager buffer size (1..=7).
    pub const fn is_eager_size(self) -> bool {
        matches!(self.0, 1..=7)
    }
}

/// One 64-bit RcvArray entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RcvArrayEntry(pub u64);

impl RcvArrayEntry {
    /// An entry as hfi1_put_tid writes it: WRITE_ENABLE | code << 36 | (dma >> 12).
    pub const fn new(dma_addr: u64, size: BufSize) -> Self {
        let w = RCV_ARRAY_RT_WRITE_ENABLE.encode(1)
            | RCV_ARRAY_RT_BUF_SIZE.encode(size.code() as u64)
            | RCV_ARRAY_RT_ADDR.encode(dma_addr >> 12);
        RcvArrayEntry(w)
    }

    /// The invalidating write (PT_INVALID / PT_INVALID_FLUSH): address 0, code 0, WRITE_ENABLE.
    pub const fn invalid() -> Self {
        RcvArrayEntry(RCV_ARRAY_RT_WRITE_ENABLE.encode(1))
    }

    /// The WC padding write (rcv_array_wc_fill): all zero, so WRITE_ENABLE is clear.
    pub const fn wc_fill() -> Self {
        RcvArrayEntry(0)
    }

    /// Buffer DMA address (4 KiB aligned).
    pub const fn dma_addr(self) -> u64 {
        RCV_ARRAY_RT_ADDR.get(self.0) << 12
    }

    /// Buffer size code.
    pub const fn buf_size(self) -> BufSize {
        BufSize::from_code(RCV_ARRAY_RT_BUF_SIZE.get(self.0) as u8)
    }

    /// True when the entry describes a buffer (a size code with a defined size).
    pub const fn is_valid(self) -> bool {
        self.buf_size().bytes().is_some()
    }

    /// WRITE_ENABLE bit of a write.
    pub const fn write_enable(self) -> bool {
        RCV_ARRAY_RT_WRITE_ENABLE.get(self.0) == 1
    }

    /// The raw value.
    pub const fn raw(self) -> u64 {
        self.0
    }
}

/// Driver-side entry types (PT_*). The type is not stored in the entry: the hardware tells eager
/// from expected by which range of the context the index falls in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PtType {
    /// PT_EXPECTED (0).
    Expected = 0,
    /// PT_EAGER (1).
    Eager = 1,
    /// PT_INVALID_FLUSH (2): invalidate and flush at once.
    InvalidFlush = 2,
    /// PT_INVALID (3).
    Invalid = 3,
}

/// Smallest eager buffer (MIN_EAGER_BUFFER).
pub const MIN_EAGER_BUFFER: u64 = 4096;
/// Largest eager buffer (MAX_EAGER_BUFFER).
pub const MAX_EAGER_BUFFER: u64 = 256 << 10;
/// Largest expected buffer (MAX_EXPECTED_BUFFER).
pub const MAX_EXPECTED_BUFFER: u64 = 2 << 20;
/// Largest eager buffer total per context (MAX_EAGER_BUFFER_TOTAL).
pub const MAX_EAGER_BUFFER_TOTAL: u64 = 64 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_code_table() {
        let table = [
            (4096u64, 1u8),
            (8 << 10, 2),
            (16 << 10, 3),
            (32 << 10, 4),
            (64 << 10, 5),
            (128 << 10, 6),
            (256 << 10, 7),
            (512 << 10, 8),
            (1 << 20, 9),
            (2 << 20, 0xA),
        ];
        for (bytes, code) in table {
            let s = BufSize::from_bytes(bytes).unwrap();
            assert_eq!(s.code(), code);
            assert_eq!(s.bytes(), Some(bytes));
        }
        assert_eq!(BufSize::from_bytes(4 << 20), None);
        assert_eq!(BufSize::from_bytes(12 << 10), None);
        assert_eq!(BufSize::from_bytes(2048), None);
        assert_eq!(BufSize::from_code(0xB).bytes(), None);
        assert_eq!(BufSize::INVALID.bytes(), None);
        assert_eq!(BufSize::from_pages(512), Some(BufSize::MAX_EXPECTED));
        assert_eq!(BufSize::from_pages(8).map(BufSize::code), Some(4));
        assert!(BufSize::MAX_EAGER.is_eager_size() && !BufSize::from_code(8).is_eager_size());
    }

    #[test]
    fn worked_entry() {
        // A 64 KiB TID at DMA address 0x1_2345_6000.
        let e = RcvArrayEntry::new(0x1_2345_6000, BufSize::from_bytes(64 << 10).unwrap());
        assert_eq!(e.raw(), 0x8000_0050_0012_3456);
        assert_eq!(e.dma_addr(), 0x1_2345_6000);
        assert_eq!(e.buf_size().code(), 5);
        assert!(e.is_valid() && e.write_enable());
        // The invalidating write keeps WRITE_ENABLE and zeroes the rest.
        assert_eq!(RcvArrayEntry::invalid().raw(), 0x8000_0000_0000_0000);
        assert!(!RcvArrayEntry::invalid().is_valid());
        assert!(!RcvArrayEntry::wc_fill().write_enable());
    }

    #[test]
    fn address_truncated_to_48_bits() {
        let e = RcvArrayEntry::new(0xFFFF_0001_0000_0000, BufSize::SIZE_4K);
        assert_eq!(e.dma_addr(), 0x0001_0000_0000);
    }
}
