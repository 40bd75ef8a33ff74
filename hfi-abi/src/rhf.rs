//! Receive Header Flags: the last 2 DWs of each RHQ entry, WFR gen1 layout (facts §3.4).
//!
//! Not the hfi2/JKR layout (which puts EgrIndex at bit 12).

use crate::field::Field;

/// PktLen in DWs, header included (bits 11:0).
pub const RHF_PKT_LEN: Field = Field::new(0, 12);
/// RcvType (bits 14:12).
pub const RHF_RCV_TYPE: Field = Field::new(12, 3);
/// UseEgrBfr (bit 15).
pub const RHF_USE_EGR_BFR: Field = Field::bit(15);
/// EgrIndex (bits 26:16).
pub const RHF_EGR_INDEX: Field = Field::new(16, 11);
/// DcInfo (bit 27).
pub const RHF_DC_INFO: Field = Field::bit(27);
/// RcvSeq, 1..13 (bits 31:28).
pub const RHF_RCV_SEQ: Field = Field::new(28, 4);
/// EgrOffset in 64-byte blocks (bits 43:32).
pub const RHF_EGR_OFFSET: Field = Field::new(32, 12);
/// HdrqOffset in DWs (bits 52:44).
pub const RHF_HDRQ_OFFSET: Field = Field::new(44, 9);
/// KHdrLenErr (bit 53).
pub const RHF_K_HDR_LEN_ERR: Field = Field::bit(53);
/// DcUncErr (bit 54).
pub const RHF_DC_UNC_ERR: Field = Field::bit(54);
/// DcErr (bit 55).
pub const RHF_DC_ERR: Field = Field::bit(55);
/// RcvTypeErr (bits 58:56); meaning depends on RcvType.
pub const RHF_RCV_TYPE_ERR: Field = Field::new(56, 3);
/// TidErr (bit 59).
pub const RHF_TID_ERR: Field = Field::bit(59);
/// LenErr (bit 60).
pub const RHF_LEN_ERR: Field = Field::bit(60);
/// EccErr (bit 61).
pub const RHF_ECC_ERR: Field = Field::bit(61);
/// VCrcErr (bit 62).
pub const RHF_VCRC_ERR: Field = Field::bit(62);
/// IcrcErr (bit 63).
pub const RHF_ICRC_ERR: Field = Field::bit(63);
/// All error bits (63:53).
pub const RHF_ERROR_SMASK: u64 = 0xFFE0_0000_0000_0000;

/// RHF.RcvType values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RcvType {
    /// 0: expected (TID) packet.
    Expected = 0,
    /// 1: eager packet.
    Eager = 1,
    /// 2: IB (normal/raw/IPv6).
    Ib = 2,
    /// 3: error.
    Error = 3,
    /// 4: bypass.
    Bypass = 4,
}

impl RcvType {
    /// Decodes a 3-bit RcvType; 5..7 are invalid.
    pub const fn from_bits(v: u64) -> Option<RcvType> {
        match v {
            0 => Some(RcvType::Expected),
            1 => Some(RcvType::Eager),
            2 => Some(RcvType::Ib),
            3 => Some(RcvType::Error),
            4 => Some(RcvType::Bypass),
            _ => None,
        }
    }
}

/// RcvTypeErr codes.
pub mod rte {
    /// Expected: TID-flow sequence error.
    pub const EXPECTED_FLOW_SEQ_ERR: u64 = 2;
    /// Expected: TID-flow generation error.
    pub const EXPECTED_FLOW_GEN_ERR: u64 = 4;
    /// Error type: bad opcode.
    pub const ERROR_OP_CODE_ERR: u64 = 1;
    /// Error type: KDETH header too short.
    pub const ERROR_KHDR_MIN_LEN_ERR: u64 = 2;
    /// Error type: KDETH HCRC.
    pub const ERROR_KHDR_HCRC_ERR: u64 = 3;
    /// Error type: KDETH KVer.
    pub const ERROR_KHDR_KVER_ERR: u64 = 4;
    /// Error type: bad context.
    pub const ERROR_CONTEXT_ERR: u64 = 5;
    /// Error type: KDETH TID error.
    pub const ERROR_KHDR_TID_ERR: u64 = 6;
}

/// One RHF (two little-endian DWs in memory, low DW first).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Rhf(pub u64);

impl Rhf {
    /// Packet length in bytes (PktLen DWs × 4).
    pub const fn pkt_len_bytes(self) -> u64 {
        RHF_PKT_LEN.get(self.0) << 2
    }
    /// RcvType, `None` for 5..7.
    pub const fn rcv_type(self) -> Option<RcvType> {
        RcvType::from_bits(RHF_RCV_TYPE.get(self.0))
    }
    /// UseEgrBfr.
    pub const fn use_egr_bfr(self) -> bool {
        RHF_USE_EGR_BFR.get(self.0) == 1
    }
    /// EgrIndex.
    pub const fn egr_index(self) -> u64 {
        RHF_EGR_INDEX.get(self.0)
    }
    /// RcvSeq.
    pub const fn seq(self) -> u64 {
        RHF_RCV_SEQ.get(self.0)
    }
    /// EgrOffset in bytes (blocks × 64).
    pub const fn egr_offset_bytes(self) -> u64 {
        RHF_EGR_OFFSET.get(self.0) * 64
    }
    /// HdrqOffset in DWs.
    pub const fn hdrq_offset(self) -> u64 {
        RHF_HDRQ_OFFSET.get(self.0)
    }
    /// RcvTypeErr.
    pub const fn rcv_type_err(self) -> u64 {
        RHF_RCV_TYPE_ERR.get(self.0)
    }
    /// TidErr.
    pub const fn tid_err(self) -> bool {
        RHF_TID_ERR.get(self.0) == 1
    }
    /// LenErr.
    pub const fn len_err(self) -> bool {
        RHF_LEN_ERR.get(self.0) == 1
    }
    /// Any error bit (63:53).
    pub const fn has_error(self) -> bool {
        self.0 & RHF_ERROR_SMASK != 0
    }
    /// Little-endian bytes as stored at the end of an RHQ entry.
    pub const fn to_le_bytes(self) -> [u8; 8] {
        self.0.to_le_bytes()
    }
    /// Reads an RHF from its in-memory bytes.
    pub const fn from_le_bytes(b: [u8; 8]) -> Self {
        Rhf(u64::from_le_bytes(b))
    }
}

/// Next RHF sequence number after `seq` (1..13 then 1).
pub const fn next_seq(seq: u64) -> u64 {
    if seq >= crate::rxe::RHF_MAX_SEQ {
        1
    } else {
        seq + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worked_eager_rhf() {
        // Eager packet, 2100 bytes (525 DW), egr index 5, offset 2 blocks, seq 3, hdrq off 9.
        let v = RHF_PKT_LEN.encode(525)
            | RHF_RCV_TYPE.encode(RcvType::Eager as u64)
            | RHF_USE_EGR_BFR.encode(1)
            | RHF_EGR_INDEX.encode(5)
            | RHF_RCV_SEQ.encode(3)
            | RHF_EGR_OFFSET.encode(2)
            | RHF_HDRQ_OFFSET.encode(9);
        assert_eq!(v, 0x0000_9002_3005_920D);
        let r = Rhf(v);
        assert_eq!(r.pkt_len_bytes(), 2100);
        assert_eq!(r.rcv_type(), Some(RcvType::Eager));
        assert!(r.use_egr_bfr());
        assert_eq!(r.egr_index(), 5);
        assert_eq!(r.egr_offset_bytes(), 128);
        assert_eq!(r.seq(), 3);
        assert_eq!(r.hdrq_offset(), 9);
        assert!(!r.has_error());
        assert_eq!(Rhf::from_le_bytes(r.to_le_bytes()), r);
    }

    #[test]
    fn worked_tid_error() {
        let r = Rhf(RHF_TID_ERR.encode(1) | RHF_RCV_TYPE.encode(0));
        assert_eq!(r.0, 0x0800_0000_0000_0000);
        assert!(r.tid_err() && r.has_error());
        assert_eq!(r.rcv_type(), Some(RcvType::Expected));
        assert_eq!(RcvType::from_bits(5), None);
    }

    #[test]
    fn seq_wraps_after_13() {
        assert_eq!(next_seq(1), 2);
        assert_eq!(next_seq(13), 1);
        let mut s = 1;
        for _ in 0..13 {
            s = next_seq(s);
        }
        assert_eq!(s, 1);
    }
}
