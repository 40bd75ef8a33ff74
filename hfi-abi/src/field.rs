//! Bit fields of 64-bit CSRs and wire words, and arrays of registers.

/// A bit field `[shift, shift + width)` of a 64-bit word.
///
/// All helpers are `const fn`, so field layouts are checked at compile time where used in
/// `const` context and cost nothing at run time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Field {
    /// Position of the least significant bit.
    pub shift: u32,
    /// Width in bits (1..=64).
    pub width: u32,
}

impl Field {
    /// A field of `width` bits starting at bit `shift`.
    pub const fn new(shift: u32, width: u32) -> Self {
        assert!(width >= 1 && shift + width <= 64, "field outside a 64-bit word");
        Self { shift, width }
    }

    /// A one-bit field at `bit`.
    pub const fn bit(bit: u32) -> Self {
        Self::new(bit, 1)
    }

    /// The unshifted mask (`width` low bits set).
    pub const fn mask(self) -> u64 {
        if self.width == 64 {
            u64::MAX
        } else {
            (1u64 << self.width) - 1
        }
    }

    /// The mask in place (`mask() << shift`), the `_SMASK` of the hfi1 headers.
    pub const fn smask(self) -> u64 {
        self.mask() << self.shift
    }

    /// Extracts the field from `word`.
    pub const fn get(self, word: u64) -> u64 {
        (word >> self.shift) & self.mask()
    }

    /// Returns `word` with the field replaced by `value` (truncated to the field's width).
    pub const fn set(self, word: u64, value: u64) -> u64 {
        (word & !self.smask()) | ((value & self.mask()) << self.shift)
    }

    /// `value` (truncated) placed in the field of an otherwise zero word.
    pub const fn encode(self, value: u64) -> u64 {
        self.set(0, value)
    }

    /// True when `value` fits the field without truncation.
    pub const fn fits(self, value: u64) -> bool {
        value & !self.mask() == 0
    }
}

/// A field of a 32-bit wire word (KDETH, tidinfo, RHF halves).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Field32 {
    /// Position of the least significant bit.
    pub shift: u32,
    /// Width in bits (1..=32).
    pub width: u32,
}

impl Field32 {
    /// A field of `width` bits starting at bit `shift`.
    pub const fn new(shift: u32, width: u32) -> Self {
        assert!(width >= 1 && shift + width <= 32, "field outside a 32-bit word");
        Self { shift, width }
    }

    /// The unshifted mask.
    pub const fn mask(self) -> u32 {
        if self.width == 32 {
            u32::MAX
        } else {
            (1u32 << self.width) - 1
        }
    }

    /// The mask in place.
    pub const fn smask(self) -> u32 {
        self.mask() << self.shift
    }

    /// Extracts the field from `word`.
    pub const fn get(self, word: u32) -> u32 {
        (word >> self.shift) & self.mask()
    }

    /// Returns `word` with the field replaced by `value` (truncated).
    pub const fn set(self, word: u32, value: u32) -> u32 {
        (word & !self.smask()) | ((value & self.mask()) << self.shift)
    }

    /// True when `value` fits the field without truncation.
    pub const fn fits(self, value: u32) -> bool {
        value & !self.mask() == 0
    }
}

/// An array of equally spaced registers or register blocks in BAR0 (`base + i * stride`).
///
/// Decoding goes through [`RegArray::index`] so that no hand-written range chain can slip.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RegArray {
    /// BAR0 offset of element 0.
    pub base: u64,
    /// Distance between elements in bytes.
    pub stride: u64,
    /// Number of elements.
    pub count: u64,
}

impl RegArray {
    /// A register array.
    pub const fn new(base: u64, stride: u64, count: u64) -> Self {
        assert!(stride > 0, "zero stride");
        Self { base, stride, count }
    }

    /// BAR0 offset of element `i`, or `None` past the end.
    pub const fn offset(&self, i: u64) -> Option<u64> {
        if i < self.count {
            Some(self.base + i * self.stride)
        } else {
            None
        }
    }

    /// First byte past the array.
    pub const fn end(&self) -> u64 {
        self.base + self.count * self.stride
    }

    /// Element index and the offset inside that element, for a BAR0 offset in the array.
    pub const fn index(&self, off: u64) -> Option<(u64, u64)> {
        if off < self.base || off >= self.end() {
            return None;
        }
        let rel = off - self.base;
        Some((rel / self.stride, rel % self.stride))
    }

    /// The same array with another element count (for sizes read from CSRs).
    pub const fn with_count(self, count: u64) -> Self {
        Self { count, ..self }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_get_set_roundtrip() {
        let f = Field::new(36, 4);
        assert_eq!(f.smask(), 0xF0_0000_0000);
        let w = f.set(0x8000_0000_0000_0000, 0xA);
        assert_eq!(w, 0x8000_00A0_0000_0000);
        assert_eq!(f.get(w), 0xA);
        // Truncation: 0x1F keeps only the low 4 bits.
        assert_eq!(f.get(f.set(0, 0x1F)), 0xF);
        assert!(!f.fits(0x10));
        assert_eq!(Field::new(0, 64).mask(), u64::MAX);
    }

    #[test]
    fn field32_get_set() {
        let f = Field32::new(22, 10);
        assert_eq!(f.smask(), 0xFFC0_0000);
        assert_eq!(f.get(f.set(0, 0x3FF)), 0x3FF);
        assert_eq!(Field32::new(0, 32).mask(), u32::MAX);
    }

    #[test]
    fn reg_array_decode() {
        let a = RegArray::new(0x1100000, 0x100, 160);
        assert_eq!(a.offset(2), Some(0x1100200));
        assert_eq!(a.offset(160), None);
        assert_eq!(a.index(0x1100208), Some((2, 8)));
        assert_eq!(a.index(0x10FFFFF), None);
        assert_eq!(a.index(a.end()), None);
    }
}
