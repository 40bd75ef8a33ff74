//! BAR0 layout of the WFR HFI (facts §1): block bases and the big regions.

use crate::field::RegArray;

/// BAR0 size. `hfi1_pcie_ddinit` refuses anything other than `TXE_PIO_SEND + TXE_PIO_SIZE`.
pub const BAR0_SIZE: u64 = 0x400_0000;

/// CCE block (chip configuration: revision, interrupts, MSI-X table).
pub const CCE: u64 = 0x000_0000;
/// ASIC block (mutexes, scratch, QSFP, SBus).
pub const ASIC: u64 = 0x040_0000;
/// MISC block.
pub const MISC: u64 = 0x050_0000;
/// DC top: DCC at +0, LCB at +0x1000, 8051 at +0x2000.
pub const DC_TOP: u64 = 0x060_0000;
/// DC LCB CSRs.
pub const DC_LCB: u64 = DC_TOP + 0x1000;
/// DC 8051 CSRs.
pub const DC_8051: u64 = DC_TOP + 0x2000;
/// RXE block: global receive CSRs.
pub const RXE: u64 = 0x100_0000;
/// TXE block: global send CSRs.
pub const TXE: u64 = 0x180_0000;

/// Kernel-only per-context receive CSRs, 0x100 apart (`RXE + 0x100000 + ctxt * 0x100`).
/// The count is the chip maximum; the modelled device exposes `RCV_CONTEXTS` of them.
pub const RXE_PER_CONTEXT_KERNEL: RegArray = RegArray::new(RXE + 0x10_0000, 0x100, 160);

/// RcvArray: one 8-byte entry per index (`RXE + 0x200000`). Mapped write-combining by hfi1.
/// The count is a real chip's 65536; the device exposes `RCV_ARRAY_CNT` entries.
pub const RCV_ARRAY: RegArray = RegArray::new(RXE + 0x20_0000, 8, 65536);

/// Per-context user CSR pages, 4 KiB each (`RXE + 0x300000 + ctxt * 0x1000`), mmap-able by user
/// space.
pub const RXE_PER_CONTEXT_USER: RegArray = RegArray::new(RXE + 0x30_0000, 0x1000, 160);

/// TXE per-send-context CSRs (`TXE + 0x100000 + ctxt * 0x100`).
pub const TXE_PER_CONTEXT: RegArray = RegArray::new(TXE + 0x10_0000, 0x100, 160);

/// TXE per-SDMA-engine CSRs (`TXE + 0x200000 + engine * 0x100`; hfi1 reaches them with its
/// kernel-context accessor, hence the same 0x100 stride).
pub const TXE_PER_SDMA: RegArray = RegArray::new(TXE + 0x20_0000, 0x100, 16);

/// PIO send buffers (WC): 64 KiB window per hardware send context.
pub const TXE_PIO_SEND: u64 = 0x200_0000;
/// Size of the PIO send space, normal windows plus the SOP alias.
pub const TXE_PIO_SIZE: u64 = 0x200_0000;
/// One send context's PIO window.
pub const PIO_CTXT_WINDOW: RegArray = RegArray::new(TXE_PIO_SEND, 0x1_0000, 256);
/// Distance of the start-of-packet alias from the normal window.
pub const PIO_SOP_DISTANCE: u64 = TXE_PIO_SIZE / 2;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bar0_is_pio_end() {
        assert_eq!(TXE_PIO_SEND + TXE_PIO_SIZE, BAR0_SIZE);
        assert_eq!(BAR0_SIZE, 64 << 20);
    }

    #[test]
    fn worked_offsets() {
        assert_eq!(RXE_PER_CONTEXT_KERNEL.offset(3), Some(0x110_0300));
        assert_eq!(RXE_PER_CONTEXT_USER.offset(3), Some(0x130_3000));
        assert_eq!(RCV_ARRAY.base, 0x120_0000);
        // A real chip's RcvArray is 0x80000 bytes.
        assert_eq!(RCV_ARRAY.end() - RCV_ARRAY.base, 0x8_0000);
        assert_eq!(PIO_CTXT_WINDOW.offset(2), Some(0x202_0000));
        assert_eq!(TXE_PIO_SEND + PIO_SOP_DISTANCE, 0x300_0000);
        assert_eq!(TXE_PER_CONTEXT.offset(159), Some(0x190_9F00));
        assert_eq!(TXE_PER_SDMA.offset(15), Some(0x1A0_0F00));
    }
}
