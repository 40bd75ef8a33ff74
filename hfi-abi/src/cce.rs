//! CCE block: identity and the interrupt CSRs (facts §1, §7 and the PIO/interrupt sheet §5).

use crate::bar0::CCE;
use crate::field::{Field, RegArray};

/// CCE_REVISION: chip revision. Read at probe; all-ones fails the probe.
pub const CCE_REVISION: u64 = CCE;
/// CCE_REVISION.ChipRevMinor. High nibble 0 means A-step (`is_ax`); the model reports B-step.
pub const CCE_REVISION_CHIP_REV_MINOR: Field = Field::new(0, 8);
/// CCE_REVISION.ChipRevMajor.
pub const CCE_REVISION_CHIP_REV_MAJOR: Field = Field::new(8, 8);
/// CCE_REVISION.SW.
pub const CCE_REVISION_SW: Field = Field::new(24, 8);
/// CCE_REVISION.BoardIdLowerNibble.
pub const CCE_REVISION_BOARD_ID_LOWER_NIBBLE: Field = Field::new(32, 4);

/// CCE_REVISION2: implementation identity.
pub const CCE_REVISION2: u64 = CCE + 0x8;
/// CCE_REVISION2.HfiId (which HFI of a dual-ASIC part).
pub const CCE_REVISION2_HFI_ID: Field = Field::bit(0);
/// CCE_REVISION2.ImplCode (ICODE).
pub const CCE_REVISION2_IMPL_CODE: Field = Field::new(8, 8);
/// CCE_REVISION2.ImplRevision.
pub const CCE_REVISION2_IMPL_REVISION: Field = Field::new(16, 8);

/// ICODE values of CCE_REVISION2.ImplCode.
pub mod icode {
    /// RTL silicon (a real card).
    pub const RTL_SILICON: u64 = 0;
    /// RTL VCS simulation.
    pub const RTL_VCS_SIMULATION: u64 = 1;
    /// FPGA emulation.
    pub const FPGA_EMULATION: u64 = 2;
    /// Functional simulator: what hfi-sim reports.
    pub const FUNCTIONAL_SIMULATOR: u64 = 3;
}

/// CCE_CTRL.
pub const CCE_CTRL: u64 = CCE + 0x10;
/// CCE_STATUS (freeze/pause status, read-only).
pub const CCE_STATUS: u64 = CCE + 0x18;
/// CCE_SCRATCH[4].
pub const CCE_SCRATCH: RegArray = RegArray::new(CCE + 0x20, 8, 4);
/// CCE_DC_CTRL (DC reset).
pub const CCE_DC_CTRL: u64 = CCE + 0xB8;
/// CCE_DC_CTRL.DcReset: holds the DC (DCC, LCB, 8051) in reset. Set at chip reset.
pub const CCE_DC_CTRL_DC_RESET: Field = Field::bit(0);
/// CCE_ERR_STATUS (read-only; the model raises no CCE errors, so it reads 0).
pub const CCE_ERR_STATUS: u64 = CCE + 0x40;
/// CCE_ERR_MASK.
pub const CCE_ERR_MASK: u64 = CCE + 0x48;
/// CCE_ERR_CLEAR (write 1 to clear).
pub const CCE_ERR_CLEAR: u64 = CCE + 0x50;

/// Number of interrupt sources (12 × 64 bits).
pub const NUM_INT_SOURCES: u64 = 768;
/// Number of 64-bit interrupt status/mask/clear/force CSRs.
pub const NUM_INT_CSRS: u64 = 12;
/// CceIntStatus[12], read-only.
pub const CCE_INT_STATUS: RegArray = RegArray::new(0x11_0800, 8, NUM_INT_CSRS);
/// CceIntMask[12]: 1 = source enabled.
pub const CCE_INT_MASK: RegArray = RegArray::new(0x11_0900, 8, NUM_INT_CSRS);
/// CceIntClear[12]: write 1 to clear a status bit.
pub const CCE_INT_CLEAR: RegArray = RegArray::new(0x11_0A00, 8, NUM_INT_CSRS);
/// CceIntForce[12]: write 1 to raise a source.
pub const CCE_INT_FORCE: RegArray = RegArray::new(0x11_0B00, 8, NUM_INT_CSRS);
/// CceIntBlocked[12], read-only.
pub const CCE_INT_BLOCKED: RegArray = RegArray::new(0x11_0C00, 8, NUM_INT_CSRS);
/// CceIntMap[96]: one byte per source, the MSI-X vector it is routed to.
pub const CCE_INT_MAP: RegArray = RegArray::new(0x11_0500, 8, 96);
/// MSI-X vectors of the chip (CCE_NUM_MSIX_VECTORS).
pub const NUM_MSIX_VECTORS: u64 = 256;
/// MSI-X table (256 vectors of 16 bytes; the 16-byte stride is inferred). The PCI MSI-X
/// capability points here (BAR0, table BIR 0).
pub const CCE_MSIX_TABLE: RegArray = RegArray::new(0x10_0000, 16, NUM_MSIX_VECTORS);
/// MSI-X pending-bit array (4 qwords, one bit per vector), BAR0 (PBA BIR 0).
pub const CCE_MSIX_PBA: RegArray = RegArray::new(0x11_0000, 8, NUM_MSIX_VECTORS / 64);

/// First RcvAvail interrupt source (source = 256 + receive context).
pub const IS_RCVAVAIL_START: u64 = 256;
/// First RcvUrgent interrupt source (source = 416 + receive context).
pub const IS_RCVURGENT_START: u64 = 416;
/// First SendCredit interrupt source (source = 576 + hardware send context).
pub const IS_SENDCREDIT_START: u64 = 576;

/// CSR index and bit mask of interrupt source `src` in the 12 status/mask CSRs.
pub const fn int_source_bit(src: u64) -> (u64, u64) {
    (src / 64, 1u64 << (src % 64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rcvavail_source_of_context_3() {
        // Context 3: source 259 → CSR 4, bit 3 (facts §5.3: ireg = (256+ctxt)/64).
        assert_eq!(int_source_bit(IS_RCVAVAIL_START + 3), (4, 1 << 3));
        assert_eq!(CCE_INT_MASK.offset(4), Some(0x11_0920));
    }

    #[test]
    fn msix_table_and_pba_do_not_overlap_the_interrupt_csrs() {
        assert_eq!(CCE_MSIX_TABLE.end(), 0x10_1000);
        assert_eq!(CCE_MSIX_PBA.end(), 0x11_0020);
        assert!(CCE_MSIX_PBA.end() <= CCE_INT_MAP.base);
    }

    #[test]
    fn revision2_functional_simulator() {
        let r2 = CCE_REVISION2_IMPL_CODE.encode(icode::FUNCTIONAL_SIMULATOR);
        assert_eq!(r2, 0x300);
        assert_eq!(CCE_REVISION2_IMPL_CODE.get(r2), 3);
        assert_eq!(CCE_REVISION2_HFI_ID.get(r2), 0);
    }
}
