//! The SDMA descriptor (hfi1 `sdma.h` 19-102, `sdma.c` 2239-2310). Line numbers are Debian
//! linux-source-6.1 6.1.172.
//!
//! A descriptor is two little-endian qwords in the ring at SEND_DMA_BASE_ADDR + 16 · index.
//! A packet is a run of descriptors from one with FIRST to one with LAST; its bytes are the
//! concatenation of the descriptors' buffers, PBC first. hfi1's user SDMA makes the first
//! descriptor the 64-byte `hfi1_pkt_header` (PBC, LRH, BTH, KDETH + 28 bytes; `user_sdma.c` 689,
//! uapi `hfi1_user.h` 229-245), then one descriptor per page piece; a 1-3 byte pad descriptor
//! rounds an odd length up to whole DWs (`sdma.h` 672-679).

use crate::field::Field;

/// Bytes per descriptor.
pub const SDMA_DESC_BYTES: u64 = 16;

/// qw0: buffer address (48 bits).
pub const DESC0_PHY_ADDR: Field = Field::new(0, 48);
/// qw0: byte count (14 bits).
pub const DESC0_BYTE_COUNT: Field = Field::new(48, 14);
/// qw0: last descriptor of a packet.
pub const DESC0_LAST_DESC: Field = Field::bit(62);
/// qw0: first descriptor of a packet.
pub const DESC0_FIRST_DESC: Field = Field::bit(63);

/// qw1: DMA-write the engine's head to SEND_DMA_HEAD_ADDR once this descriptor completes.
pub const DESC1_HEAD_TO_HOST: Field = Field::bit(0);
/// qw1: raise the engine's SDMA interrupt (source 192 + engine) once this descriptor completes.
pub const DESC1_INT_REQ: Field = Field::bit(1);
/// qw1: ring generation: bits 1:0 of `(ring index of the write) / ring size` (`sdma.c` add_gen).
pub const DESC1_GENERATION: Field = Field::new(2, 2);
/// qw1: AHG header DWs.
pub const DESC1_HEADER_DWS: Field = Field::new(4, 4);
/// qw1: AHG header index.
pub const DESC1_HEADER_INDEX: Field = Field::new(8, 5);
/// qw1: AHG header mode (see [`ahg`]).
pub const DESC1_HEADER_MODE: Field = Field::new(13, 3);
/// qw1: first AHG header update.
pub const DESC1_HEADER_UPDATE1: Field = Field::new(32, 32);

/// AHG modes of [`DESC1_HEADER_MODE`] (`sdma.h` 47-51).
pub mod ahg {
    /// No AHG.
    pub const NO_AHG: u64 = 0;
    /// Copy the header into the engine's AHG entry and send it unchanged.
    pub const COPY: u64 = 1;
    /// Send the stored header with one update word.
    pub const APPLY_UPDATE1: u64 = 2;
    /// Send the stored header with two update words (the next descriptor carries them).
    pub const APPLY_UPDATE2: u64 = 3;
    /// Send the stored header with three update words.
    pub const APPLY_UPDATE3: u64 = 4;
}

/// Hardware limit of descriptors in one packet (`sdma.h` 19-20 MAX_DESC).
pub const SDMA_MAX_DESC_PER_PACKET: usize = 64;
/// Hardware limit of bytes in one SDMA packet, PBC included (`sdma.h` 21-22).
pub const SDMA_MAX_PKT_BYTES: u64 = 16 * 1024 - 1;
/// hfi1's default ring size (`sdma.c` 23 SDMA_DESCQ_CNT; a power of 2, 64..=32768).
pub const SDMA_DEFAULT_DESCQ_CNT: u64 = 2048;

/// A descriptor as two qwords.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SdmaDesc {
    /// qw0: address, byte count, FIRST, LAST.
    pub qw0: u64,
    /// qw1: flags, generation, AHG fields.
    pub qw1: u64,
}

impl SdmaDesc {
    /// From the 16 little-endian bytes of the ring.
    pub fn from_le_bytes(b: [u8; 16]) -> Self {
        let mut lo = [0u8; 8];
        let mut hi = [0u8; 8];
        lo.copy_from_slice(&b[..8]);
        hi.copy_from_slice(&b[8..]);
        Self { qw0: u64::from_le_bytes(lo), qw1: u64::from_le_bytes(hi) }
    }
    /// The 16 little-endian bytes of the ring.
    pub fn to_le_bytes(self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.qw0.to_le_bytes());
        b[8..].copy_from_slice(&self.qw1.to_le_bytes());
        b
    }
    /// Buffer address.
    pub const fn addr(self) -> u64 {
        DESC0_PHY_ADDR.get(self.qw0)
    }
    /// Byte count.
    pub const fn len(self) -> u64 {
        DESC0_BYTE_COUNT.get(self.qw0)
    }
    /// True when the byte count is 0.
    pub const fn is_empty(self) -> bool {
        self.len() == 0
    }
    /// FIRST flag.
    pub const fn first(self) -> bool {
        DESC0_FIRST_DESC.get(self.qw0) == 1
    }
    /// LAST flag.
    pub const fn last(self) -> bool {
        DESC0_LAST_DESC.get(self.qw0) == 1
    }
    /// Generation.
    pub const fn generation(self) -> u64 {
        DESC1_GENERATION.get(self.qw1)
    }
    /// INT_REQ flag.
    pub const fn int_req(self) -> bool {
        DESC1_INT_REQ.get(self.qw1) == 1
    }
    /// HEAD_TO_HOST flag.
    pub const fn head_to_host(self) -> bool {
        DESC1_HEAD_TO_HOST.get(self.qw1) == 1
    }
    /// AHG header mode.
    pub const fn header_mode(self) -> u64 {
        DESC1_HEADER_MODE.get(self.qw1)
    }
    /// Builds a descriptor the way hfi1's make_tx_sdma_desc/add_gen/_sdma_close_tx do
    /// (`sdma.h` 594-649, `sdma.c` 2239-2247).
    pub const fn new(addr: u64, len: u64, first: bool, last: bool, generation: u64) -> Self {
        let mut qw0 = DESC0_PHY_ADDR.encode(addr) | DESC0_BYTE_COUNT.encode(len);
        if first {
            qw0 |= DESC0_FIRST_DESC.smask();
        }
        if last {
            qw0 |= DESC0_LAST_DESC.smask();
        }
        Self { qw0, qw1: DESC1_GENERATION.encode(generation) }
    }
    /// The same descriptor with qw1 flags `bits` added.
    pub const fn with_qw1(self, bits: u64) -> Self {
        Self { qw0: self.qw0, qw1: self.qw1 | bits }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `_SMASK` values of `sdma.h` 56-102.
    #[test]
    fn masks_match_sdma_h() {
        assert_eq!(DESC0_BYTE_COUNT.smask(), 0x3FFF << 48);
        assert_eq!(DESC0_PHY_ADDR.smask(), (1 << 48) - 1);
        assert_eq!(DESC1_GENERATION.smask(), 0xC);
        assert_eq!(DESC1_HEADER_DWS.smask(), 0xF0);
        assert_eq!(DESC1_HEADER_INDEX.smask(), 0x1F00);
        assert_eq!(DESC1_HEADER_MODE.smask(), 0xE000);
        assert_eq!(DESC1_HEADER_UPDATE1.smask(), 0xFFFF_FFFF << 32);
        assert!(DESC0_BYTE_COUNT.fits(SDMA_MAX_PKT_BYTES));
    }

    #[test]
    fn descriptor_roundtrip() {
        let d = SdmaDesc::new(0x1234_5678_9ABC, 64, true, false, 3)
            .with_qw1(DESC1_HEAD_TO_HOST.smask() | DESC1_INT_REQ.smask());
        let back = SdmaDesc::from_le_bytes(d.to_le_bytes());
        assert_eq!(back, d);
        assert_eq!(back.addr(), 0x1234_5678_9ABC);
        assert_eq!(back.len(), 64);
        assert!(back.first() && !back.last() && back.int_req() && back.head_to_host());
        assert_eq!(back.generation(), 3);
        assert_eq!(back.header_mode(), ahg::NO_AHG);
    }
}
