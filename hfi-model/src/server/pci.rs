//! PCI configuration space of the served HFI (type 0 header, 256 bytes, no capabilities).
//!
//! Vendor 0x8086, device 0x24f0 (hfi1 `PCI_DEVICE_ID_INTEL0`), class 0x028000 ("network
//! controller, other"; **choice**: the facts leave the class unconfirmed), BAR0 a 64-bit
//! non-prefetchable 64 MiB memory BAR, interrupt pin INTA. COMMAND: memory space (bit 1),
//! bus master (bit 2), parity (bit 6) and SERR (bit 8) are writable; INTx disable (bit 10) is
//! read-only 0, so a guest's PCI 2.3 masking never needs STATUS bit 3 (qemu-facts trap 6).
//! STATUS has no writable bits and no capability list (INTx only, see the module docs).

use hfi_abi::bar0::BAR0_SIZE;
use hfi_abi::uapi::pci;

/// Size of the configuration space region.
pub const CONFIG_SIZE: usize = 256;
/// Class code (base class 0x02 network, subclass 0x80 other, prog-if 0).
pub const CLASS_CODE: u32 = 0x02_8000;
/// Revision ID.
pub const REVISION: u8 = 0x11;

const COMMAND: usize = 0x04;
const BAR0_LO: usize = 0x10;
const BAR0_HI: usize = 0x14;
const INT_LINE: usize = 0x3c;
/// COMMAND bits a guest may change.
pub const COMMAND_WRITABLE: u16 = 0x0002 | 0x0004 | 0x0040 | 0x0100;
/// BAR0 type bits: memory, 64-bit (0b10 << 1), non-prefetchable.
const BAR0_FLAGS: u32 = 0x4;

/// The configuration space.
#[derive(Clone, Debug)]
pub struct ConfigSpace {
    bytes: [u8; CONFIG_SIZE],
    /// Writes dropped (read-only bits or bytes).
    pub read_only_writes: u64,
}

impl Default for ConfigSpace {
    fn default() -> Self {
        Self::new()
    }
}

impl ConfigSpace {
    /// The reset state.
    pub fn new() -> Self {
        let mut b = [0u8; CONFIG_SIZE];
        put(&mut b, 0x00, &pci::VENDOR_ID.to_le_bytes());
        put(&mut b, 0x02, &pci::DEVICE_ID_INTEL0.to_le_bytes());
        let class = (CLASS_CODE << 8) | u32::from(REVISION);
        put(&mut b, 0x08, &class.to_le_bytes());
        put(&mut b, BAR0_LO, &BAR0_FLAGS.to_le_bytes());
        put(&mut b, 0x3d, &[1]); // interrupt pin INTA
        Self { bytes: b, read_only_writes: 0 }
    }

    /// Reads `data.len()` bytes at `offset`; bytes past the end read as 0. Returns false if the
    /// access was out of range.
    pub fn read(&self, offset: u64, data: &mut [u8]) -> bool {
        data.fill(0);
        let Some(src) = range(offset, data.len()).and_then(|r| self.bytes.get(r)) else {
            return false;
        };
        data.copy_from_slice(src);
        true
    }

    /// Writes bytes, keeping read-only bits; returns false if out of range.
    pub fn write(&mut self, offset: u64, data: &[u8]) -> bool {
        let Some(r) = range(offset, data.len()) else {
            return false;
        };
        for (i, &v) in r.zip(data.iter()) {
            self.write_byte(i, v);
        }
        true
    }

    fn write_byte(&mut self, i: usize, v: u8) {
        let size_mask = !(BAR0_SIZE - 1); // 64 MiB: address bits 26..63
        let mask: u8 = match i {
            COMMAND => COMMAND_WRITABLE as u8,
            0x05 => (COMMAND_WRITABLE >> 8) as u8,
            BAR0_LO..=0x13 => {
                let sh = (i - BAR0_LO) * 8;
                (((size_mask as u32) & !0xf) >> sh) as u8
            }
            BAR0_HI..=0x17 => {
                let sh = (i - BAR0_HI) * 8;
                ((size_mask >> 32) as u32 >> sh) as u8
            }
            INT_LINE => 0xff,
            _ => 0,
        };
        if let Some(b) = self.bytes.get_mut(i) {
            if v & !mask != *b & !mask {
                self.read_only_writes += 1;
            }
            *b = (*b & !mask) | (v & mask);
        }
    }

    /// COMMAND register.
    pub fn command(&self) -> u16 {
        let mut b = [0u8; 2];
        self.read(COMMAND as u64, &mut b);
        u16::from_le_bytes(b)
    }
}

fn put(b: &mut [u8; CONFIG_SIZE], off: usize, v: &[u8]) {
    if let Some(d) = b.get_mut(off..off + v.len()) {
        d.copy_from_slice(v);
    }
}

fn range(offset: u64, len: usize) -> Option<std::ops::Range<usize>> {
    let start = usize::try_from(offset).ok()?;
    let end = start.checked_add(len)?;
    (end <= CONFIG_SIZE).then_some(start..end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rd32(c: &ConfigSpace, off: u64) -> u32 {
        let mut b = [0u8; 4];
        assert!(c.read(off, &mut b));
        u32::from_le_bytes(b)
    }

    #[test]
    fn identity_and_class() {
        let c = ConfigSpace::new();
        assert_eq!(rd32(&c, 0), 0x24f0_8086);
        assert_eq!(rd32(&c, 8) >> 8, 0x02_8000);
        assert_eq!(rd32(&c, 0x3c) >> 8 & 0xff, 1);
    }

    #[test]
    fn bar0_sizing() {
        let mut c = ConfigSpace::new();
        c.write(0x10, &u32::MAX.to_le_bytes());
        c.write(0x14, &u32::MAX.to_le_bytes());
        assert_eq!(rd32(&c, 0x10), 0xfc00_0004);
        assert_eq!(rd32(&c, 0x14), 0xffff_ffff);
        c.write(0x10, &0xfe00_0000u32.to_le_bytes());
        assert_eq!(rd32(&c, 0x10), 0xfc00_0004);
    }

    #[test]
    fn command_bits() {
        let mut c = ConfigSpace::new();
        c.write(4, &0xffffu16.to_le_bytes());
        assert_eq!(c.command(), COMMAND_WRITABLE);
        assert_eq!(c.command() & 0x400, 0, "INTx disable is read-only");
        assert!(c.read_only_writes > 0);
        assert!(!c.write(255, &[0, 0]));
        let mut b = [9u8; 2];
        assert!(!c.read(u64::MAX, &mut b));
    }
}
