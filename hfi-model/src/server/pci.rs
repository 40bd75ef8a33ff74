//! PCI configuration space of the served HFI: a 4 KiB (PCI Express) space with a type 0
//! header and a capability list 0x34 → PCI Express (0x70, [`super::pcie_cap`]) → MSI-X (0xB0,
//! [`super::msix`]) → end; no extended capabilities (0x100 reads 0).
//!
//! Vendor 0x8086, device 0x24f0 (hfi1 `PCI_DEVICE_ID_INTEL0`, the default; our driver's) or
//! 0x24f1 (`PCI_DEVICE_ID_INTEL1`, the integrated part: hfi1 then skips the EPROM), class
//! 0x028000 ("network controller, other"; **choice**: the facts leave the class unconfirmed),
//! BAR0 a 64-bit non-prefetchable 64 MiB memory BAR, interrupt pin INTA. COMMAND: memory space
//! (bit 1), bus master (bit 2), parity (bit 6) and SERR (bit 8) are writable; INTx disable
//! (bit 10) is read-only 0, so a guest's PCI 2.3 masking never needs STATUS bit 3 (qemu-facts
//! trap 6). STATUS reports the capability list and has no writable bits.
//!
//! Writable storage besides: the capabilities' control registers and the DesignWare
//! port-logic window 0x700..0x900 (hfi1's ASPM code read-modify-writes PL3 at 0x70C). A write
//! setting PCIe DevCtl.InitiateFLR is reported to the caller ([`CfgWrite::flr`]); the bit
//! itself reads 0. Every other byte is read-only; writes to it are counted.

use hfi_abi::bar0::BAR0_SIZE;
use hfi_abi::pcicfg::{self, BAR0_HI, BAR0_LO, COMMAND, INT_LINE, STATUS};
use hfi_abi::uapi::pci;

use super::pcie_cap::put;
use super::{msix, pcie_cap};

/// Size of the configuration space region.
pub const CONFIG_SIZE: usize = pcicfg::CONFIG_SPACE_SIZE;
/// Class code (base class 0x02 network, subclass 0x80 other, prog-if 0).
pub const CLASS_CODE: u32 = 0x02_8000;
/// Revision ID.
pub const REVISION: u8 = 0x11;

/// COMMAND bits a guest may change.
pub const COMMAND_WRITABLE: u16 = 0x0002 | 0x0004 | 0x0040 | 0x0100;
/// BAR0 type bits: memory, 64-bit (0b10 << 1), non-prefetchable.
const BAR0_FLAGS: u32 = 0x4;

/// What a configuration write did beyond storing bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CfgWrite {
    /// PCIe DevCtl.InitiateFLR was written 1: the function must be reset.
    pub flr: bool,
}

/// The configuration space.
#[derive(Clone, Debug)]
pub struct ConfigSpace {
    bytes: Vec<u8>,
    wmask: Vec<u8>,
    /// Writes dropped (read-only bits or bytes).
    pub read_only_writes: u64,
}

impl Default for ConfigSpace {
    fn default() -> Self {
        Self::new(pci::DEVICE_ID_INTEL0)
    }
}

impl ConfigSpace {
    /// The reset state of a device with PCI device ID `device_id`.
    pub fn new(device_id: u16) -> Self {
        let mut b = vec![0u8; CONFIG_SIZE];
        let mut w = vec![0u8; CONFIG_SIZE];
        put(&mut b, pcicfg::VENDOR_ID, &pci::VENDOR_ID.to_le_bytes());
        put(&mut b, pcicfg::DEVICE_ID, &device_id.to_le_bytes());
        put(&mut b, STATUS, &pcicfg::STATUS_CAP_LIST.to_le_bytes());
        let class = (CLASS_CODE << 8) | u32::from(REVISION);
        put(&mut b, pcicfg::CLASS_REVISION, &class.to_le_bytes());
        put(&mut b, BAR0_LO, &BAR0_FLAGS.to_le_bytes());
        put(&mut b, pcicfg::INT_PIN, &[1]); // INTA
        put(&mut b, pcicfg::CAP_PTR, &[pcie_cap::POS as u8]);
        pcie_cap::install(&mut b, &mut w, msix::POS as u8);
        msix::install(&mut b, &mut w, 0);
        put(&mut w, COMMAND, &COMMAND_WRITABLE.to_le_bytes());
        put(&mut w, INT_LINE, &[0xff]);
        // BAR0: address bits 26..63 (64 MiB).
        let size_mask = !(BAR0_SIZE - 1);
        put(&mut w, BAR0_LO, &((size_mask as u32) & !0xf).to_le_bytes());
        put(&mut w, BAR0_HI, &((size_mask >> 32) as u32).to_le_bytes());
        if let Some(pl) = w.get_mut(pcicfg::PORT_LOGIC) {
            pl.fill(0xff);
        }
        Self { bytes: b, wmask: w, read_only_writes: 0 }
    }

    /// Reads `data.len()` bytes at `offset`. Returns false (data zeroed) if the access is out
    /// of range.
    pub fn read(&self, offset: u64, data: &mut [u8]) -> bool {
        data.fill(0);
        let Some(src) = range(offset, data.len()).and_then(|r| self.bytes.get(r)) else {
            return false;
        };
        data.copy_from_slice(src);
        true
    }

    /// Writes bytes, keeping read-only bits; `None` if out of range.
    pub fn write(&mut self, offset: u64, data: &[u8]) -> Option<CfgWrite> {
        let r = range(offset, data.len())?;
        let flr = pcie_cap::starts_flr(r.start, data);
        for (i, &v) in r.zip(data.iter()) {
            let mask = self.wmask.get(i).copied().unwrap_or(0);
            let action = if flr && i == pcie_cap::POS + pcicfg::exp::DEVCTL + 1 { 0x80 } else { 0 };
            if let Some(b) = self.bytes.get_mut(i) {
                if (v ^ *b) & !mask & !action != 0 {
                    self.read_only_writes += 1;
                }
                *b = (*b & !mask) | (v & mask);
            }
        }
        Some(CfgWrite { flr })
    }

    /// COMMAND register.
    pub fn command(&self) -> u16 {
        self.read16(COMMAND)
    }

    /// The 16-bit register at `off` (0 past the end).
    pub fn read16(&self, off: usize) -> u16 {
        let mut b = [0u8; 2];
        self.read(off as u64, &mut b);
        u16::from_le_bytes(b)
    }

    /// The 32-bit register at `off` (0 past the end).
    pub fn read32(&self, off: usize) -> u32 {
        let mut b = [0u8; 4];
        self.read(off as u64, &mut b);
        u32::from_le_bytes(b)
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
    use hfi_abi::pcicfg::{cap_id, exp};

    fn rd32(c: &ConfigSpace, off: u64) -> u32 {
        let mut b = [0u8; 4];
        assert!(c.read(off, &mut b));
        u32::from_le_bytes(b)
    }

    #[test]
    fn identity_and_class() {
        let c = ConfigSpace::default();
        assert_eq!(rd32(&c, 0), 0x24f0_8086);
        assert_eq!(rd32(&c, 8) >> 8, 0x02_8000);
        assert_eq!(rd32(&c, 0x3c) >> 8 & 0xff, 1);
        let c = ConfigSpace::new(pci::DEVICE_ID_INTEL1);
        assert_eq!(rd32(&c, 0), 0x24f1_8086);
    }

    #[test]
    fn bar0_sizing() {
        let mut c = ConfigSpace::default();
        c.write(0x10, &u32::MAX.to_le_bytes());
        c.write(0x14, &u32::MAX.to_le_bytes());
        assert_eq!(rd32(&c, 0x10), 0xfc00_0004);
        assert_eq!(rd32(&c, 0x14), 0xffff_ffff);
        c.write(0x10, &0xfe00_0000u32.to_le_bytes());
        assert_eq!(rd32(&c, 0x10), 0xfc00_0004);
    }

    #[test]
    fn command_bits() {
        let mut c = ConfigSpace::default();
        c.write(4, &0xffffu16.to_le_bytes());
        assert_eq!(c.command(), COMMAND_WRITABLE);
        assert_eq!(c.command() & 0x400, 0, "INTx disable is read-only");
        assert!(c.read_only_writes > 0);
        assert!(c.write(4095, &[0, 0]).is_none());
        let mut b = [9u8; 2];
        assert!(!c.read(u64::MAX, &mut b));
        assert_eq!(b, [0, 0]);
    }

    /// Walks the capability list the way the Linux PCI core does: from 0x34, at most 48 hops.
    fn walk(c: &ConfigSpace) -> Vec<(usize, u8)> {
        let mut seen = Vec::new();
        let mut pos = usize::from(c.bytes[pcicfg::CAP_PTR] & !3);
        for _ in 0..48 {
            if pos < 0x40 {
                return seen;
            }
            assert!(!seen.iter().any(|&(p, _)| p == pos), "loop at {pos:#x}");
            let id = c.bytes[pos];
            seen.push((pos, id));
            pos = usize::from(c.bytes[pos + 1] & !3);
        }
        panic!("capability list does not terminate: {seen:x?}");
    }

    #[test]
    fn capability_list_is_well_formed() {
        let c = ConfigSpace::default();
        assert_ne!(c.read16(STATUS) & pcicfg::STATUS_CAP_LIST, 0);
        let caps = walk(&c);
        assert_eq!(caps, vec![(0x70, cap_id::EXP), (0xB0, cap_id::MSIX)]);
        // Capabilities do not overlap and stay in the legacy 256 bytes.
        const { assert!(0x70 + exp::SIZE_V2 <= 0xB0 && 0xB0 + pcicfg::msix::SIZE <= 0x100) };
        // No extended capabilities.
        assert_eq!(c.read32(pcicfg::EXT_CAP_START), 0);
        // hfi1 reads MSI-X at 0xB0 directly.
        assert_eq!(c.read32(pcicfg::PCI_CFG_MSIX0) & 0xff, u32::from(cap_id::MSIX));
        // A guest cannot rewire the list.
        let mut c = c;
        c.write(pcicfg::CAP_PTR as u64, &[0x40]);
        c.write(0x71, &[0x70]);
        c.write(0xB1, &[0x70]);
        assert_eq!(walk(&c), vec![(0x70, cap_id::EXP), (0xB0, cap_id::MSIX)]);
    }

    #[test]
    fn flr_is_an_action_and_control_bits_are_storage() {
        let mut c = ConfigSpace::default();
        let devctl = (pcie_cap::POS + exp::DEVCTL) as u64;
        let w = c.write(devctl, &(0x8000u16 | 0x0120).to_le_bytes()).unwrap();
        assert!(w.flr);
        assert_eq!(c.read16(devctl as usize), 0x0120, "InitiateFLR reads 0");
        assert_eq!(c.read_only_writes, 0);
        assert!(!c.write(devctl, &0x2810u16.to_le_bytes()).unwrap().flr);
        // MSI-X enable and mask are storage; the table size is not.
        let ctrl = (msix::POS + 2) as u64;
        c.write(ctrl, &0xffffu16.to_le_bytes());
        assert_eq!(c.read16(ctrl as usize), 0xC0FF);
        // hfi1's ASPM read-modify-write of PL3 sticks.
        c.write(pcicfg::PCIE_CFG_REG_PL3 as u64, &0x3800_0000u32.to_le_bytes());
        assert_eq!(c.read32(pcicfg::PCIE_CFG_REG_PL3), 0x3800_0000);
        // The extended space outside the port logic is read-only.
        c.write(0x100, &[0xff; 4]);
        assert_eq!(c.read32(0x100), 0);
    }
}
