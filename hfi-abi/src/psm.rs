//! hfi-sim's PSM-like protocol on top of KDETH: the 28-byte header after KDETH and the payload
//! of a rendezvous grant (CTS). Modelled on PSM2's LONG_RTS / LONG_CTS / EXPTID exchange (facts
//! PIO sheet §3) but not bit-compatible with PSM's header union (see `docs/link.md`).
//!
//! Header (little-endian, byte offsets from the start of the packet, after LRH+BTH+KDETH):
//! flags/connidx u32 @28, message id u32 @32, byte offset of this packet's payload in the
//! message (or, in a CTS, of the window) u32 @36, message length (CTS: window length) u32 @40,
//! tag 12 bytes @44.

use crate::wire;

/// Byte offset of flags/connidx.
pub const HDR_FLAGS_CONNIDX: usize = 28;
/// Byte offset of the message id.
pub const HDR_MSG_ID: usize = 32;
/// Byte offset of the payload's (or window's) offset in the message.
pub const HDR_MSG_OFFSET: usize = 36;
/// Byte offset of the message (or window) length.
pub const HDR_MSG_LEN: usize = 40;
/// Byte offset of the 12-byte tag.
pub const HDR_TAG: usize = 44;

/// Fixed part of a CTS payload: tid offset u32, flow u32, generation u32, first sequence u32,
/// tid count u32 (20 bytes), then `tid count` u32 tidinfo words.
pub const CTS_FIXED_BYTES: usize = 20;
/// Most tidinfo words one CTS may carry (PSM_TIDLIST_BUFSIZE / 4).
pub const CTS_MAX_TIDS: usize = 1024;

/// A rendezvous grant: where the sender must put one window of the message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cts {
    /// Byte offset of the window's first byte into the first TID.
    pub tid_offset: u32,
    /// TID flow index.
    pub flow: u32,
    /// TID flow generation.
    pub gen: u32,
    /// First TID flow sequence number.
    pub seq: u32,
    /// The TIDs covering the window, in order.
    pub tids: Vec<crate::TidInfo>,
}

/// All header fields of a PSM-like packet (LRH, BTH, KDETH and the 28-byte PSM header).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PsmHeader {
    /// BTH opcode.
    pub opcode: u8,
    /// LRH destination LID.
    pub dlid: u16,
    /// LRH source LID.
    pub slid: u16,
    /// BTH partition key.
    pub pkey: u16,
    /// BTH[1] KDETH QP prefix.
    pub kdeth_qp: u32,
    /// BTH[1] receive context.
    pub ctxt: u32,
    /// BTH[1] subcontext.
    pub subctxt: u32,
    /// BTH[1] TID-flow index.
    pub flow: u32,
    /// BTH[2] (TID-flow generation and sequence).
    pub bth2: u32,
    /// KDETH word 0.
    pub kdeth0: crate::Kdeth0,
    /// KDETH J_KEY.
    pub jkey: u16,
    /// Message id.
    pub msg_id: u32,
    /// Byte offset of the payload (or window) in the message.
    pub msg_offset: u32,
    /// Message (or window) length.
    pub msg_len: u32,
    /// Payload bytes that follow the header (for LRH.PktLen and BTH.PadCnt).
    pub payload_len: u32,
    /// flags/connidx word; a send request puts the reply context (bits 7:0) and subcontext
    /// (bits 10:8) here.
    pub connidx: u32,
}

impl PsmHeader {
    /// The 56 header bytes: LRH and BTH big-endian, KDETH and the PSM part little-endian;
    /// LRH.PktLen counts header, payload padded to a DW, and the ICRC.
    pub fn encode(&self) -> [u8; wire::PSM_PACKET_HDR_BYTES] {
        let mut h = [0u8; wire::PSM_PACKET_HDR_BYTES];
        let pad = (4 - self.payload_len % 4) % 4;
        let dws =
            (wire::PSM_PACKET_HDR_BYTES as u32 + self.payload_len + pad + wire::ICRC_BYTES as u32)
                / 4;
        let lrh0 = wire::LRH0_LNH.set(0, wire::LRH_LNH_BTH) as u16;
        let bth0 = wire::BTH0_OPCODE.set(0, u32::from(self.opcode))
            | wire::BTH0_PAD_CNT.set(0, pad)
            | wire::BTH0_PKEY.set(0, u32::from(self.pkey));
        let bth1 = wire::BTH1_QP_KDETH.set(0, self.kdeth_qp)
            | wire::BTH1_FLOW.set(0, self.flow)
            | wire::BTH1_SUBCTXT.set(0, self.subctxt)
            | wire::BTH1_CTXT.set(0, self.ctxt);
        let fields: [(usize, &[u8]); 13] = [
            (0, &lrh0.to_be_bytes()),
            (2, &self.dlid.to_be_bytes()),
            (4, &((dws & 0xFFF) as u16).to_be_bytes()),
            (6, &self.slid.to_be_bytes()),
            (8, &bth0.to_be_bytes()),
            (12, &bth1.to_be_bytes()),
            (16, &self.bth2.to_be_bytes()),
            (20, &self.kdeth0.0.to_le_bytes()),
            (24, &u32::from(self.jkey).to_le_bytes()),
            (HDR_MSG_ID, &self.msg_id.to_le_bytes()),
            (HDR_MSG_OFFSET, &self.msg_offset.to_le_bytes()),
            (HDR_MSG_LEN, &self.msg_len.to_le_bytes()),
            (HDR_FLAGS_CONNIDX, &self.connidx.to_le_bytes()),
        ];
        for (at, b) in fields {
            if let Some(d) = h.get_mut(at..at + b.len()) {
                d.copy_from_slice(b);
            }
        }
        h
    }

    /// Decodes the fields of a header; `None` if shorter than 56 bytes. `payload_len` is left 0
    /// (it is not carried explicitly).
    pub fn decode(b: &[u8]) -> Option<PsmHeader> {
        let be16 = |at: usize| Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?));
        let be32 = |at: usize| Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?));
        let bth0 = be32(8)?;
        let bth1 = be32(12)?;
        if b.len() < wire::PSM_PACKET_HDR_BYTES {
            return None;
        }
        Some(PsmHeader {
            opcode: wire::BTH0_OPCODE.get(bth0) as u8,
            dlid: be16(2)?,
            slid: be16(6)?,
            pkey: wire::BTH0_PKEY.get(bth0) as u16,
            kdeth_qp: wire::BTH1_QP_KDETH.get(bth1),
            ctxt: wire::BTH1_CTXT.get(bth1),
            subctxt: wire::BTH1_SUBCTXT.get(bth1),
            flow: wire::BTH1_FLOW.get(bth1),
            bth2: be32(16)?,
            kdeth0: crate::Kdeth0(u32_at(b, 20)?),
            jkey: u32_at(b, 24)? as u16,
            msg_id: u32_at(b, HDR_MSG_ID)?,
            msg_offset: u32_at(b, HDR_MSG_OFFSET)?,
            msg_len: u32_at(b, HDR_MSG_LEN)?,
            payload_len: 0,
            connidx: u32_at(b, HDR_FLAGS_CONNIDX)?,
        })
    }
}

/// Opcode of a send request (PSM's AM request): the receiver asks the remote application to send
/// message `msg_id` of `msg_len` bytes, filled with [`pattern_byte`] of `seed` (carried in the
/// header's offset field). This lets a workload be driven through the device alone (in a guest,
/// over a socket) while every byte stays checkable on both sides.
pub const OPCODE_SEND_REQUEST: u8 = 0xD3;

/// Byte `i` of the payload of message `msg_id` under `seed`: a SplitMix64 stream, 8 bytes per
/// step, so both ends compute the same payload without exchanging it.
pub fn pattern_byte(seed: u32, msg_id: u32, i: u64) -> u8 {
    let mut z = ((u64::from(seed) << 32) | u64::from(msg_id))
        .wrapping_add((i / 8 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> ((i % 8) * 8)) as u8
}

/// The whole payload of message `msg_id` under `seed`.
pub fn pattern(seed: u32, msg_id: u32, len: usize) -> Vec<u8> {
    (0..len as u64).map(|i| pattern_byte(seed, msg_id, i)).collect()
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

impl Cts {
    /// Payload bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(CTS_FIXED_BYTES + 4 * self.tids.len());
        for w in [self.tid_offset, self.flow, self.gen, self.seq, self.tids.len() as u32] {
            v.extend_from_slice(&w.to_le_bytes());
        }
        for t in &self.tids {
            v.extend_from_slice(&t.raw().to_le_bytes());
        }
        v
    }

    /// Parses a payload; `None` when it is truncated or claims too many TIDs.
    pub fn decode(b: &[u8]) -> Option<Cts> {
        let n = u32_at(b, 16)? as usize;
        if n > CTS_MAX_TIDS {
            return None;
        }
        let tids = (0..n)
            .map(|i| u32_at(b, CTS_FIXED_BYTES + 4 * i).map(crate::TidInfo))
            .collect::<Option<Vec<_>>>()?;
        Some(Cts {
            tid_offset: u32_at(b, 0)?,
            flow: u32_at(b, 4)?,
            gen: u32_at(b, 8)?,
            seq: u32_at(b, 12)?,
            tids,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_is_stable_and_distinct() {
        let a = pattern(1, 7, 64);
        assert_eq!(a, pattern(1, 7, 64));
        assert_ne!(a, pattern(1, 8, 64));
        assert_ne!(a, pattern(2, 7, 64));
        assert_eq!(pattern_byte(1, 7, 13), a[13]);
        // A worked value, so both ends agree across builds.
        assert_eq!(pattern(0, 0, 4), vec![0xAF, 0xCD, 0x1D, 0x7B]);
    }

    #[test]
    fn header_roundtrip() {
        let h = PsmHeader {
            opcode: wire::opcode::LONG_CTS,
            dlid: 2,
            slid: 1,
            pkey: 0xFFFF,
            kdeth_qp: 0x80,
            ctxt: 7,
            subctxt: 1,
            flow: 3,
            bth2: 0x1234,
            kdeth0: crate::Kdeth0::new(5, 1, 16, false, true, false),
            jkey: 9,
            msg_id: 42,
            msg_offset: 131072,
            msg_len: 65536,
            payload_len: 22,
            connidx: 0x107,
        };
        let b = h.encode();
        // 56 + 22 + 2 pad + 4 ICRC = 84 bytes = 21 DW; PadCnt 2.
        assert_eq!(u16::from_be_bytes([b[4], b[5]]), 21);
        assert_eq!((b[9] >> 4) & 3, 2);
        assert_eq!(PsmHeader::decode(&b), Some(PsmHeader { payload_len: 0, ..h }));
        assert_eq!(PsmHeader::decode(&b[..55]), None);
    }

    #[test]
    fn cts_roundtrip_and_truncation() {
        let c = Cts {
            tid_offset: 4096,
            flow: 3,
            gen: 9,
            seq: 2040,
            tids: vec![crate::TidInfo::for_entry(5, 16).unwrap()],
        };
        let b = c.encode();
        assert_eq!(b.len(), 24);
        assert_eq!(Cts::decode(&b), Some(c));
        assert_eq!(Cts::decode(&b[..23]), None);
        let mut huge = b.clone();
        huge[16..20].copy_from_slice(&5000u32.to_le_bytes());
        assert_eq!(Cts::decode(&huge), None);
    }
}
