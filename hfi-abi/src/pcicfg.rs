//! PCI configuration space of the HFI: the standard header and capability registers hfi1
//! touches, where the WFR places its capabilities, and the DesignWare port-logic registers
//! hfi1 reads and writes (hfi1 `chip_registers.h` PCIE_CFG_*, `pcie.c`, `aspm.c`; the PCI
//! Express Base Specification for the standard layouts).

use crate::field::Field;

/// Size of the (PCI Express) configuration space.
pub const CONFIG_SPACE_SIZE: usize = 4096;

/// Vendor ID.
pub const VENDOR_ID: usize = 0x00;
/// Device ID.
pub const DEVICE_ID: usize = 0x02;
/// COMMAND.
pub const COMMAND: usize = 0x04;
/// STATUS.
pub const STATUS: usize = 0x06;
/// STATUS.CapabilitiesList.
pub const STATUS_CAP_LIST: u16 = 1 << 4;
/// Revision ID / class code.
pub const CLASS_REVISION: usize = 0x08;
/// BAR0 (low dword of the 64-bit BAR).
pub const BAR0_LO: usize = 0x10;
/// BAR0 high dword.
pub const BAR0_HI: usize = 0x14;
/// Capabilities pointer.
pub const CAP_PTR: usize = 0x34;
/// Interrupt line.
pub const INT_LINE: usize = 0x3c;
/// Interrupt pin.
pub const INT_PIN: usize = 0x3d;
/// First extended capability header.
pub const EXT_CAP_START: usize = 0x100;

/// Capability IDs.
pub mod cap_id {
    /// PCI Express.
    pub const EXP: u8 = 0x10;
    /// MSI-X.
    pub const MSIX: u8 = 0x11;
}

/// Where the WFR's PCI Express capability sits (the standard capability list starts here).
pub const PCIE_CAP: usize = 0x70;
/// Where hfi1 expects the MSI-X capability (`PCI_CFG_MSIX0`): it saves and restores this
/// dword around the FLR without walking the capability list.
pub const PCI_CFG_MSIX0: usize = 0xB0;

/// PCI Express capability registers (offsets from the capability).
pub mod exp {
    use crate::field::Field;
    /// PCI Express Capabilities register (16 bits).
    pub const FLAGS: usize = 0x02;
    /// FLAGS.Version.
    pub const FLAGS_VERSION: Field = Field::new(0, 4);
    /// FLAGS.DevicePortType (0 = PCI Express endpoint).
    pub const FLAGS_TYPE: Field = Field::new(4, 4);
    /// Device Capabilities (32 bits).
    pub const DEVCAP: usize = 0x04;
    /// DEVCAP.MaxPayloadSizeSupported (0 = 128 B, 1 = 256 B, ...).
    pub const DEVCAP_PAYLOAD: Field = Field::new(0, 3);
    /// DEVCAP.ExtendedTagFieldSupported.
    pub const DEVCAP_EXT_TAG: Field = Field::bit(5);
    /// DEVCAP.FunctionLevelResetCapability.
    pub const DEVCAP_FLR: Field = Field::bit(28);
    /// Device Control (16 bits).
    pub const DEVCTL: usize = 0x08;
    /// DEVCTL.InitiateFunctionLevelReset: write 1 to reset the function; reads 0.
    pub const DEVCTL_BCR_FLR: Field = Field::bit(15);
    /// Device Status (16 bits).
    pub const DEVSTA: usize = 0x0A;
    /// Link Capabilities (32 bits).
    pub const LNKCAP: usize = 0x0C;
    /// LNKCAP.MaxLinkSpeed (1 = 2.5, 2 = 5, 3 = 8 GT/s).
    pub const LNKCAP_SLS: Field = Field::new(0, 4);
    /// LNKCAP.MaxLinkWidth.
    pub const LNKCAP_MLW: Field = Field::new(4, 6);
    /// Link Control (16 bits).
    pub const LNKCTL: usize = 0x10;
    /// Link Status (16 bits).
    pub const LNKSTA: usize = 0x12;
    /// LNKSTA.CurrentLinkSpeed.
    pub const LNKSTA_CLS: Field = Field::new(0, 4);
    /// LNKSTA.NegotiatedLinkWidth.
    pub const LNKSTA_NLW: Field = Field::new(4, 6);
    /// LNKSTA.SlotClockConfiguration.
    pub const LNKSTA_SLC: Field = Field::bit(12);
    /// Device Capabilities 2 (32 bits).
    pub const DEVCAP2: usize = 0x24;
    /// Device Control 2 (16 bits).
    pub const DEVCTL2: usize = 0x28;
    /// Link Capabilities 2 (32 bits).
    pub const LNKCAP2: usize = 0x2C;
    /// Link Control 2 (16 bits).
    pub const LNKCTL2: usize = 0x30;
    /// Size of a version-2 endpoint capability.
    pub const SIZE_V2: usize = 0x3C;
    /// Link speed code for 8 GT/s (Gen3).
    pub const SPEED_8GT: u64 = 3;
}

/// MSI-X capability registers (offsets from the capability).
pub mod msix {
    use crate::field::Field;
    /// Message Control (16 bits).
    pub const FLAGS: usize = 0x02;
    /// FLAGS.TableSize (N − 1).
    pub const FLAGS_QSIZE: Field = Field::new(0, 11);
    /// FLAGS.FunctionMask.
    pub const FLAGS_MASKALL: Field = Field::bit(14);
    /// FLAGS.MsixEnable.
    pub const FLAGS_ENABLE: Field = Field::bit(15);
    /// Table offset and BIR (32 bits).
    pub const TABLE: usize = 0x04;
    /// PBA offset and BIR (32 bits).
    pub const PBA: usize = 0x08;
    /// BIR bits of TABLE and PBA.
    pub const BIR_MASK: u32 = 0x7;
    /// Capability size.
    pub const SIZE: usize = 0x0C;
}

/// DesignWare PCIe port-logic registers in the extended configuration space; hfi1's ASPM code
/// read-modify-writes PL3 (`PCIE_CFG_REG_PL3`) and its Gen3 code PL100..PL106.
pub const PCIE_CFG_REG_PL2: usize = 0x708;
/// `PCIE_CFG_REG_PL3`.
pub const PCIE_CFG_REG_PL3: usize = 0x70C;
/// PCIE_CFG_REG_PL3.L1EntranceLatency.
pub const PCIE_CFG_REG_PL3_L1_ENT_LATENCY: Field = Field::new(27, 3);
/// `PCIE_CFG_REG_PL106`, the last port-logic register hfi1 names.
pub const PCIE_CFG_REG_PL106: usize = 0x8A8;
/// The port-logic window the model keeps as plain storage.
pub const PORT_LOGIC: std::ops::Range<usize> = 0x700..0x900;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_fit_before_msix0() {
        const { assert!(PCIE_CAP + exp::SIZE_V2 <= PCI_CFG_MSIX0) };
        const { assert!(PCI_CFG_MSIX0 + msix::SIZE <= 0x100) };
        assert!(PORT_LOGIC.contains(&PCIE_CFG_REG_PL3));
        assert!(PORT_LOGIC.contains(&PCIE_CFG_REG_PL106));
        assert_eq!(exp::DEVCTL_BCR_FLR.smask(), 0x8000);
    }
}
