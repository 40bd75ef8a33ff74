//! PIO send space and the credit-return word (hfi1 `chip.h`, `pio.c`, `pio_copy.c`; PSM
//! `psm_hal_gen1_spio.[ch]`). Line numbers are Debian linux-source-6.1 6.1.172 and opa-psm2
//! 11.2.185.
//!
//! - The PIO space starts at [`crate::bar0::TXE_PIO_SEND`]; hardware send context `c` owns the
//!   64 KiB window `TXE_PIO_SEND + (c & 0xff) << 16` (`pio.c` 717-721) and its start-of-packet
//!   alias 16 MiB higher (`pio_copy.c` SOP_DISTANCE = TXE_PIO_SIZE / 2; `file_ops.c` 341-347
//!   maps the same two windows for PSM).
//! - The window is a ring of `SEND_CTXT_CTRL.CtxtDepth` 64-byte blocks starting at window
//!   offset 0 whatever `CtxtBase` is; a packet is whole blocks, PBC first, its first block
//!   through the SOP alias (`pio_copy.c` pio_copy; PSM `psm_hal_gen1_spio.c` 802-917).
//! - The chip returns credits by DMA-writing one little-endian u64 into the context's slot of a
//!   64-byte group: `SEND_CTXT_CREDIT_RETURN_ADDR + 8 * (hw_context & 7)` (`pio.c` 519-527: the
//!   driver programs the group's address and reads `cr[hw_context & 7]`).

use crate::bar0::{PIO_SOP_DISTANCE, TXE_PIO_SEND, TXE_PIO_SIZE};
use crate::field::Field;

/// Bytes per PIO block, one credit (`chip.h` PIO_BLOCK_SIZE).
pub const PIO_BLOCK_BYTES: u64 = 64;
/// 8-byte stores per block.
pub const PIO_BLOCK_QWS: u64 = PIO_BLOCK_BYTES / 8;
/// Bytes of one hardware context's window (and its SOP alias).
pub const PIO_CTXT_WINDOW_BYTES: u64 = 0x1_0000;
/// Largest context hfi1 configures: the window's worth of blocks (`pio.c` 385 PIO_MAX_BLOCKS).
pub const PIO_MAX_BLOCKS: u64 = PIO_CTXT_WINDOW_BYTES / PIO_BLOCK_BYTES;
/// Hardware send contexts addressable in the PIO space (8 bits of context number).
pub const PIO_NUM_WINDOWS: u64 = PIO_SOP_DISTANCE / PIO_CTXT_WINDOW_BYTES;

/// Modulus of the free and fill counters (`chip.h` PIO_CMASK = 0x7ff).
pub const PIO_COUNTER_MODULUS: u64 = 2048;

// ---- Credit-return word (`chip.h` 86-118; PSM `psm_hal_gen1_spio.h` 110-115) -----------------

/// Counter: blocks freed since the context was enabled, mod 2048.
pub const CR_COUNTER: Field = Field::new(0, 11);
/// Status: the context is halted (PSM resets the context when it sees it, spio.c 463-466).
pub const CR_STATUS: Field = Field::bit(11);
/// Returned because of a packet's PBC.CreditReturn.
pub const CR_DUE_TO_PBC: Field = Field::bit(12);
/// Returned because the unreturned count reached SEND_CTXT_CREDIT_CTRL.Threshold.
pub const CR_DUE_TO_THRESHOLD: Field = Field::bit(13);
/// Returned because of an error (the context halted).
pub const CR_DUE_TO_ERR: Field = Field::bit(14);
/// Returned because of SEND_CTXT_CREDIT_FORCE.
pub const CR_DUE_TO_FORCE: Field = Field::bit(15);

/// Bytes of one credit-return group (`pio.h` struct credit_return: 8 × le64).
pub const CREDIT_RETURN_GROUP_BYTES: u64 = 64;

/// Byte offset of hardware context `hw_ctxt`'s u64 inside its credit-return group.
pub const fn credit_return_slot(hw_ctxt: u32) -> u64 {
    (hw_ctxt as u64 & 7) * 8
}

/// A BAR0 offset inside the PIO space, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PioAddr {
    /// Hardware send context whose window this is.
    pub ctxt: u32,
    /// Through the start-of-packet alias.
    pub sop: bool,
    /// Byte offset inside the context's 64 KiB window.
    pub offset: u64,
}

impl PioAddr {
    /// Decodes BAR0 offset `bar0_off`; `None` outside the PIO space.
    pub const fn decode(bar0_off: u64) -> Option<PioAddr> {
        if bar0_off < TXE_PIO_SEND || bar0_off >= TXE_PIO_SEND + TXE_PIO_SIZE {
            return None;
        }
        let rel = bar0_off - TXE_PIO_SEND;
        let sop = rel >= PIO_SOP_DISTANCE;
        let rel = rel % PIO_SOP_DISTANCE;
        Some(PioAddr {
            ctxt: (rel / PIO_CTXT_WINDOW_BYTES) as u32,
            sop,
            offset: rel % PIO_CTXT_WINDOW_BYTES,
        })
    }

    /// The BAR0 offset of this address.
    pub const fn bar0(self) -> u64 {
        TXE_PIO_SEND
            + if self.sop { PIO_SOP_DISTANCE } else { 0 }
            + self.ctxt as u64 * PIO_CTXT_WINDOW_BYTES
            + self.offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `pio.c` 717-721: base = piobase + ((hw_context & 0xff) << 16); SOP = +TXE_PIO_SIZE / 2.
    #[test]
    fn window_layout() {
        let a = PioAddr::decode(0x300_0000 + 159 * 0x1_0000 + 0x48);
        assert_eq!(a, Some(PioAddr { ctxt: 159, sop: true, offset: 0x48 }));
        assert_eq!(a.map(PioAddr::bar0), Some(0x300_0000 + 159 * 0x1_0000 + 0x48));
        assert_eq!(PioAddr::decode(0x200_0000), Some(PioAddr { ctxt: 0, sop: false, offset: 0 }));
        assert_eq!(PioAddr::decode(0x1FF_FFFF), None);
        assert_eq!(PioAddr::decode(0x400_0000), None);
        assert_eq!(PIO_NUM_WINDOWS, 256);
        assert_eq!(PIO_MAX_BLOCKS, 1024);
    }

    /// `pio.c` 519-527: the CSR holds the group address, the context reads `cr[hw_ctxt & 7]`.
    #[test]
    fn credit_return_slot_is_hw_context_mod_8() {
        assert_eq!(credit_return_slot(0), 0);
        assert_eq!(credit_return_slot(159), 7 * 8);
        assert_eq!(credit_return_slot(152), 0);
    }

    /// `chip.h` 86-118 and PSM `psm_hal_gen1_spio.h` 110-115 agree on the layout.
    #[test]
    fn credit_return_word() {
        let w = CR_COUNTER.encode(0x7FF) | CR_STATUS.smask() | CR_DUE_TO_FORCE.smask();
        assert_eq!(w, 0x8FFF);
        assert_eq!(CR_DUE_TO_PBC.smask(), 1 << 12);
        assert_eq!(CR_DUE_TO_THRESHOLD.smask(), 1 << 13);
        assert_eq!(CR_DUE_TO_ERR.smask(), 1 << 14);
        assert_eq!(CR_COUNTER.mask() + 1, PIO_COUNTER_MODULUS);
    }
}
