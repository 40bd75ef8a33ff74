//! Packet headers on the wire for a PSM packet on WFR (9B, no GRH): PBC, LRH, BTH, KDETH, and the
//! PSM opcodes (PIO/headers sheet §1, §3; facts §4.1).
//!
//! LRH and BTH are big-endian; KDETH and the PSM header are little-endian. A packet after the PBC
//! is LRH 8 B + BTH 12 B + KDETH 8 B + PSM 28 B = 56 B of header, then payload, then a 4-B ICRC.

use crate::field::{Field, Field32};

// ---- PBC ---------------------------------------------------------------------------------------

/// PBC.LengthDWs: packet length in DWs, PBC included, ICRC excluded.
pub const PBC_LENGTH_DWS: Field = Field::new(0, 12);
/// PBC.VL.
pub const PBC_VL: Field = Field::new(12, 4);
/// PBC.FECN: force FECN (`chip.h` 59).
pub const PBC_FECN: Field = Field::bit(22);
/// PBC.TestBadIcrc: test mode, corrupt the ICRC (`chip.h` 58).
pub const PBC_TEST_BAD_ICRC: Field = Field::bit(23);
/// PBC.InsertBypassIcrc (16B packets, `chip.h` 57).
pub const PBC_INSERT_BYPASS_ICRC: Field = Field::bit(24);
/// PBC.CreditReturn: return credits once this packet's blocks are freed (`chip.h` 56).
pub const PBC_CREDIT_RETURN: Field = Field::bit(25);
/// PBC.InsertHCRC.
pub const PBC_INSERT_HCRC: Field = Field::new(26, 2);
/// PBC.InsertHCRC value: at the local (9B, no GRH) KDETH offset (`chip.h` PBC_IHCRC_LKDETH).
pub const PBC_IHCRC_LKDETH: u64 = 0;
/// PBC.InsertHCRC value: at the global (GRH) KDETH offset.
pub const PBC_IHCRC_GKDETH: u64 = 1;
/// PBC.InsertHCRC value: no HCRC.
pub const PBC_IHCRC_NONE: u64 = 2;
/// PBC.PacketBypass.
pub const PBC_PACKET_BYPASS: Field = Field::bit(28);
/// PBC.TestEbp: test mode, end the packet with a bad-packet marker (`chip.h` 54).
pub const PBC_TEST_EBP: Field = Field::bit(29);
/// PBC.DCInfo (SC bit 4).
pub const PBC_DC_INFO: Field = Field::bit(30);
/// PBC.Intr.
pub const PBC_INTR: Field = Field::bit(31);
/// PBC.StaticRateControlCnt.
pub const PBC_STATIC_RATE_CONTROL_CNT: Field = Field::new(32, 16);
/// Bytes of the PBC.
pub const PBC_BYTES: usize = 8;
/// DWs of the PBC (counted in PBC.LengthDWs).
pub const PBC_DWS: u64 = 2;

// ---- Header sizes ------------------------------------------------------------------------------

/// LRH bytes.
pub const LRH_BYTES: usize = 8;
/// BTH bytes.
pub const BTH_BYTES: usize = 12;
/// KDETH bytes.
pub const KDETH_BYTES: usize = 8;
/// PSM header bytes after KDETH.
pub const PSM_HDR_BYTES: usize = 28;
/// Byte offset of KDETH in a packet (after LRH and BTH).
pub const KDETH_OFFSET: usize = LRH_BYTES + BTH_BYTES;
/// Full PSM header: LRH + BTH + KDETH + PSM = 56 bytes (14 DW).
pub const PSM_PACKET_HDR_BYTES: usize = LRH_BYTES + BTH_BYTES + KDETH_BYTES + PSM_HDR_BYTES;
/// ICRC bytes appended by the chip.
pub const ICRC_BYTES: usize = 4;

// ---- LRH (4 big-endian u16) --------------------------------------------------------------------

/// lrh[0]: SC[3:0] (bits 15:12).
pub const LRH0_SC: Field32 = Field32::new(12, 4);
/// lrh[0]: LVer (bits 11:8).
pub const LRH0_LVER: Field32 = Field32::new(8, 4);
/// lrh[0]: SL (bits 7:4).
pub const LRH0_SL: Field32 = Field32::new(4, 4);
/// lrh[0]: LNH (bits 1:0); 2 = BTH follows, 3 = GRH follows.
pub const LRH0_LNH: Field32 = Field32::new(0, 2);
/// LNH value: BTH follows (no GRH).
pub const LRH_LNH_BTH: u32 = 2;
/// lrh[2]: PktLen in DWs, LRH through ICRC (bits 11:0).
pub const LRH2_PKT_LEN: Field32 = Field32::new(0, 12);

// ---- BTH (3 big-endian u32) --------------------------------------------------------------------

/// bth[0]: OpCode (bits 31:24).
pub const BTH0_OPCODE: Field32 = Field32::new(24, 8);
/// bth[0]: PadCnt (bits 21:20).
pub const BTH0_PAD_CNT: Field32 = Field32::new(20, 2);
/// bth[0]: TVer (bits 19:16).
pub const BTH0_TVER: Field32 = Field32::new(16, 4);
/// bth[0]: PKey (bits 15:0).
pub const BTH0_PKEY: Field32 = Field32::new(0, 16);
/// bth[1]: KDETH QP prefix (bits 23:16).
pub const BTH1_QP_KDETH: Field32 = Field32::new(16, 8);
/// bth[1]: TID-flow index (bits 15:11).
pub const BTH1_FLOW: Field32 = Field32::new(11, 5);
/// bth[1]: subcontext (bits 10:8).
pub const BTH1_SUBCTXT: Field32 = Field32::new(8, 3);
/// bth[1]: receive context (bits 7:0).
pub const BTH1_CTXT: Field32 = Field32::new(0, 8);
/// bth[2]: AckReq (bit 31).
pub const BTH2_ACK_REQ: Field32 = Field32::bit(31);
/// bth[2]: TID-flow sequence (bits 10:0).
pub const BTH2_FLOW_SEQ: Field32 = Field32::new(0, 11);
/// bth[2]: TID-flow generation (bits 30:11).
pub const BTH2_FLOW_GEN: Field32 = Field32::new(11, 20);

impl Field32 {
    /// A one-bit field at `bit`.
    pub const fn bit(bit: u32) -> Self {
        Self::new(bit, 1)
    }
}

// ---- KDETH (2 little-endian u32) ---------------------------------------------------------------

/// kdeth0: Offset, in 4-B units (OM=0) or 64-B units (OM=1) (bits 14:0).
pub const KDETH0_OFFSET: Field32 = Field32::new(0, 15);
/// kdeth0: OM, offset mode (bit 15).
pub const KDETH0_OM: Field32 = Field32::bit(15);
/// kdeth0: TID pair index (bits 25:16).
pub const KDETH0_TID: Field32 = Field32::new(16, 10);
/// kdeth0: TIDCtrl (bits 27:26); 1 = even entry, 2 = odd entry.
pub const KDETH0_TIDCTRL: Field32 = Field32::new(26, 2);
/// kdeth0: Intr (bit 28).
pub const KDETH0_INTR: Field32 = Field32::bit(28);
/// kdeth0: SH, header suppression (bit 29).
pub const KDETH0_SH: Field32 = Field32::bit(29);
/// kdeth0: KVer (bits 31:30).
pub const KDETH0_KVER: Field32 = Field32::new(30, 2);
/// kdeth1: J_KEY (bits 15:0).
pub const KDETH1_JKEY: Field32 = Field32::new(0, 16);
/// kdeth1: HCRC (bits 31:16), inserted by the chip.
pub const KDETH1_HCRC: Field32 = Field32::new(16, 16);
/// KVer that PSM sends (IPS_PROTO_VERSION).
pub const KDETH_KVER_PSM: u32 = 2;
/// Offset unit with OM=0.
pub const KDETH_OM_SMALL_UNIT: u64 = 4;
/// Offset unit with OM=1.
pub const KDETH_OM_LARGE_UNIT: u64 = 64;
/// KDETH_OM_MAX_SIZE: OM=0 reaches 2^15 × 4 = 128 KiB.
pub const KDETH_OM_MAX_SIZE: u64 = 1 << 17;

/// KDETH word 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Kdeth0(pub u32);

impl Kdeth0 {
    /// Encodes a byte offset into a TID buffer the way PSM does: OM=0 below 128 KiB, else OM=1
    /// (the offset must then be 64-byte aligned). `None` when it cannot be encoded.
    pub const fn encode_offset(byte_offset: u64) -> Option<(u32, bool)> {
        if byte_offset < KDETH_OM_MAX_SIZE {
            if byte_offset % KDETH_OM_SMALL_UNIT != 0 {
                return None;
            }
            Some(((byte_offset / KDETH_OM_SMALL_UNIT) as u32, false))
        } else {
            if byte_offset % KDETH_OM_LARGE_UNIT != 0 {
                return None;
            }
            let units = byte_offset / KDETH_OM_LARGE_UNIT;
            if units > KDETH0_OFFSET.mask() as u64 {
                return None;
            }
            Some((units as u32, true))
        }
    }

    /// Builds word 0 for an expected packet.
    pub const fn new(tid: u32, tidctrl: u32, offset: u32, om: bool, sh: bool, intr: bool) -> Self {
        let mut w = KDETH0_KVER.set(0, KDETH_KVER_PSM);
        w = KDETH0_TID.set(w, tid);
        w = KDETH0_TIDCTRL.set(w, tidctrl);
        w = KDETH0_OFFSET.set(w, offset);
        w = KDETH0_OM.set(w, om as u32);
        w = KDETH0_SH.set(w, sh as u32);
        Kdeth0(KDETH0_INTR.set(w, intr as u32))
    }

    /// Byte offset into the TID buffer (Offset × unit).
    pub const fn byte_offset(self) -> u64 {
        let unit = if self.om() { KDETH_OM_LARGE_UNIT } else { KDETH_OM_SMALL_UNIT };
        KDETH0_OFFSET.get(self.0) as u64 * unit
    }
    /// OM.
    pub const fn om(self) -> bool {
        KDETH0_OM.get(self.0) == 1
    }
    /// TID pair index.
    pub const fn tid(self) -> u32 {
        KDETH0_TID.get(self.0)
    }
    /// TIDCtrl.
    pub const fn tidctrl(self) -> u32 {
        KDETH0_TIDCTRL.get(self.0)
    }
    /// SH.
    pub const fn sh(self) -> bool {
        KDETH0_SH.get(self.0) == 1
    }
    /// Intr.
    pub const fn intr(self) -> bool {
        KDETH0_INTR.get(self.0) == 1
    }
    /// KVer.
    pub const fn kver(self) -> u32 {
        KDETH0_KVER.get(self.0)
    }
}

/// PSM opcodes (BTH bits 31:24).
pub mod opcode {
    /// TINY.
    pub const TINY: u8 = 0xC1;
    /// SHORT.
    pub const SHORT: u8 = 0xC2;
    /// EAGER.
    pub const EAGER: u8 = 0xC3;
    /// LONG_RTS (rendezvous request).
    pub const LONG_RTS: u8 = 0xC4;
    /// LONG_CTS (TID grant).
    pub const LONG_CTS: u8 = 0xC5;
    /// LONG_DATA.
    pub const LONG_DATA: u8 = 0xC6;
    /// EXPTID (expected TID data).
    pub const EXPTID: u8 = 0xC7;
    /// EXPTID_COMPLETION.
    pub const EXPTID_COMPLETION: u8 = 0xC8;
    /// ACK.
    pub const ACK: u8 = 0xC9;
    /// NAK.
    pub const NAK: u8 = 0xCA;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worked_kdeth0() {
        // TID 5, TIDCtrl 2, byte offset 8192 (OM=0 → 2048 units), SH, KVer 2.
        let (off, om) = Kdeth0::encode_offset(8192).unwrap();
        assert_eq!((off, om), (2048, false));
        let k = Kdeth0::new(5, 2, off, om, true, false);
        assert_eq!(k.0, (2 << 30) | (1 << 29) | (2 << 26) | (5 << 16) | 2048);
        assert_eq!(k.0, 0xA805_0800);
        assert_eq!(k.byte_offset(), 8192);
        assert_eq!((k.tid(), k.tidctrl(), k.sh(), k.intr(), k.kver()), (5, 2, true, false, 2));
    }

    #[test]
    fn om_switches_at_128k() {
        assert_eq!(Kdeth0::encode_offset(131068), Some((32767, false)));
        assert_eq!(Kdeth0::encode_offset(131072), Some((2048, true)));
        // Beyond 128 KiB the offset must be 64-byte aligned.
        assert_eq!(Kdeth0::encode_offset(131072 + 4), None);
        assert_eq!(Kdeth0::encode_offset(2), None);
        // 2 MiB - 64 still encodes with OM=1.
        let (units, om) = Kdeth0::encode_offset((2 << 20) - 64).unwrap();
        assert!(om);
        assert_eq!(
            Kdeth0(KDETH0_OFFSET.set(KDETH0_OM.set(0, 1), units)).byte_offset(),
            (2 << 20) - 64
        );
    }

    #[test]
    fn header_sizes() {
        assert_eq!(PSM_PACKET_HDR_BYTES, 56);
        assert_eq!(KDETH_OFFSET, 20);
        // PBC.LengthDWs = LRH.PktLen + 1 for a 9B packet.
        let payload = 8192usize;
        let lrh_pkt_len = (PSM_PACKET_HDR_BYTES + payload + ICRC_BYTES) / 4;
        let pbc_len = (8 + PSM_PACKET_HDR_BYTES + payload) / 4;
        assert_eq!(pbc_len, lrh_pkt_len + 1);
    }

    #[test]
    fn bth1_fields() {
        let w = BTH1_QP_KDETH.set(0, 0x80)
            | BTH1_FLOW.set(0, 3)
            | BTH1_SUBCTXT.set(0, 1)
            | BTH1_CTXT.set(0, 7);
        assert_eq!(w, 0x0080_1907);
        assert_eq!(BTH2_FLOW_GEN.get(BTH2_FLOW_GEN.set(0, 0xABCDE)), 0xABCDE);
    }
}
