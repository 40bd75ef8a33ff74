//! A packet on the link: header bytes (owned, inline) and a payload that shares its sender's
//! buffer (`Arc<[u8]>` + range), so a multi-MiB message becomes packets without copying.
//!
//! On the wire a packet is LRH..(PSM header) + payload + a 4-byte ICRC slot. The device splits it
//! at `RcvHdrSize` DWs (see `docs/receive.md`), which need not equal the sender's header length, so
//! byte ranges are addressed over the logical concatenation `header ++ payload`.

use std::sync::Arc;

use hfi_abi::wire::{self, Kdeth0};

/// Largest header this model carries inline (bytes).
pub const MAX_HDR_BYTES: usize = 64;

/// A received or sent packet (PBC stripped, ICRC not stored).
#[derive(Clone)]
pub struct Packet {
    hdr: [u8; MAX_HDR_BYTES],
    hdr_len: u8,
    payload: Option<Arc<[u8]>>,
    payload_off: usize,
    payload_len: usize,
    /// Identifier chosen by the sender (trace and oracle only; not on the wire).
    pub id: u64,
}

impl std::fmt::Debug for Packet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Packet")
            .field("id", &self.id)
            .field("hdr_len", &self.hdr_len)
            .field("payload_len", &self.payload_len)
            .finish()
    }
}

impl Packet {
    /// A packet from header bytes (truncated to [`MAX_HDR_BYTES`]) and a payload slice of a shared
    /// buffer. An out-of-range payload slice is clamped to the buffer.
    pub fn new(header: &[u8], payload: Option<(Arc<[u8]>, usize, usize)>, id: u64) -> Self {
        let mut hdr = [0u8; MAX_HDR_BYTES];
        let n = header.len().min(MAX_HDR_BYTES);
        if let (Some(dst), Some(src)) = (hdr.get_mut(..n), header.get(..n)) {
            dst.copy_from_slice(src);
        }
        let (payload, payload_off, payload_len) = match payload {
            Some((buf, off, len)) => {
                let off = off.min(buf.len());
                let len = len.min(buf.len() - off);
                (Some(buf), off, len)
            }
            None => (None, 0, 0),
        };
        Self { hdr, hdr_len: n as u8, payload, payload_off, payload_len, id }
    }

    /// A packet made of raw bytes only (fuzzing, malformed input): everything is "header" up to
    /// [`MAX_HDR_BYTES`], the rest becomes the payload.
    pub fn from_bytes(bytes: &[u8], id: u64) -> Self {
        let n = bytes.len().min(MAX_HDR_BYTES);
        let rest: Arc<[u8]> = Arc::from(bytes.get(n..).unwrap_or(&[]));
        let len = rest.len();
        Self::new(bytes.get(..n).unwrap_or(&[]), Some((rest, 0, len)), id)
    }

    /// Header bytes as sent.
    pub fn header(&self) -> &[u8] {
        self.hdr.get(..usize::from(self.hdr_len)).unwrap_or(&[])
    }

    /// Payload bytes as sent.
    pub fn payload(&self) -> &[u8] {
        match &self.payload {
            Some(p) => p.get(self.payload_off..self.payload_off + self.payload_len).unwrap_or(&[]),
            None => &[],
        }
    }

    /// Total length (header + payload), ICRC excluded.
    pub fn len(&self) -> usize {
        usize::from(self.hdr_len) + self.payload_len
    }

    /// True for an empty packet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes on the wire: header + payload padded to a DW (BTH.PadCnt) + ICRC.
    pub fn wire_len(&self) -> usize {
        self.len().next_multiple_of(4) + wire::ICRC_BYTES
    }

    /// The bytes `[start, start+len)` of `header ++ payload` as at most two slices.
    pub fn range(&self, start: usize, len: usize) -> (&[u8], &[u8]) {
        let h = self.header();
        let p = self.payload();
        let end = start.saturating_add(len).min(h.len() + p.len());
        let start = start.min(end);
        let h_part = h.get(start.min(h.len())..end.min(h.len())).unwrap_or(&[]);
        let p_start = start.saturating_sub(h.len());
        let p_end = end.saturating_sub(h.len());
        let p_part = p.get(p_start..p_end).unwrap_or(&[]);
        (h_part, p_part)
    }

    /// Mutable access to the header (fault injection: corrupt a field).
    pub fn header_mut(&mut self) -> &mut [u8] {
        let n = usize::from(self.hdr_len);
        self.hdr.get_mut(..n).unwrap_or(&mut [])
    }

    /// Parses the fixed LRH/BTH/KDETH fields, `None` when the packet is too short.
    pub fn parse(&self) -> Option<ParsedHeader> {
        ParsedHeader::parse(self.header())
    }
}

/// The fields of LRH, BTH and KDETH the receive engine uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParsedHeader {
    /// lrh[0] (SC, LVer, SL, LNH).
    pub lrh0: u16,
    /// DLID.
    pub dlid: u16,
    /// LRH.PktLen in DWs (LRH through ICRC).
    pub lrh_pkt_len_dws: u16,
    /// SLID.
    pub slid: u16,
    /// bth[0].
    pub bth0: u32,
    /// bth[1].
    pub bth1: u32,
    /// bth[2].
    pub bth2: u32,
    /// KDETH word 0.
    pub kdeth0: Kdeth0,
    /// KDETH word 1.
    pub kdeth1: u32,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

impl ParsedHeader {
    /// Bytes needed to parse LRH + BTH + KDETH.
    pub const MIN_BYTES: usize = wire::LRH_BYTES + wire::BTH_BYTES + wire::KDETH_BYTES;

    /// Parses a header; `None` when shorter than [`Self::MIN_BYTES`].
    pub fn parse(h: &[u8]) -> Option<Self> {
        Some(Self {
            lrh0: be16(h, 0)?,
            dlid: be16(h, 2)?,
            lrh_pkt_len_dws: be16(h, 4)? & 0xFFF,
            slid: be16(h, 6)?,
            bth0: be32(h, 8)?,
            bth1: be32(h, 12)?,
            bth2: be32(h, 16)?,
            kdeth0: Kdeth0(le32(h, 20)?),
            kdeth1: le32(h, 24)?,
        })
    }

    /// BTH opcode.
    pub fn opcode(&self) -> u8 {
        wire::BTH0_OPCODE.get(self.bth0) as u8
    }
    /// Receive context (bth[1] bits 7:0).
    pub fn ctxt(&self) -> u32 {
        wire::BTH1_CTXT.get(self.bth1)
    }
    /// Subcontext (bth[1] bits 10:8).
    pub fn subctxt(&self) -> u32 {
        wire::BTH1_SUBCTXT.get(self.bth1)
    }
    /// KDETH QP prefix (bth[1] bits 23:16).
    pub fn qp_prefix(&self) -> u32 {
        wire::BTH1_QP_KDETH.get(self.bth1)
    }
    /// TID-flow index.
    pub fn flow(&self) -> u32 {
        wire::BTH1_FLOW.get(self.bth1)
    }
    /// TID-flow generation (bth[2] bits 30:11).
    pub fn flow_gen(&self) -> u32 {
        wire::BTH2_FLOW_GEN.get(self.bth2)
    }
    /// TID-flow sequence (bth[2] bits 10:0).
    pub fn flow_seq(&self) -> u32 {
        wire::BTH2_FLOW_SEQ.get(self.bth2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_spans_header_and_payload() {
        let buf: Arc<[u8]> = Arc::from((0u8..=255).collect::<Vec<_>>());
        let p = Packet::new(&[1, 2, 3, 4], Some((buf, 10, 6)), 7);
        assert_eq!(p.len(), 10);
        assert_eq!(p.payload(), &[10, 11, 12, 13, 14, 15]);
        assert_eq!(p.range(2, 4), (&[3u8, 4][..], &[10u8, 11][..]));
        assert_eq!(p.range(4, 100), (&[][..], &[10u8, 11, 12, 13, 14, 15][..]));
        assert_eq!(p.range(100, 4), (&[][..], &[][..]));
        assert_eq!(p.wire_len(), 16);
    }

    #[test]
    fn out_of_range_payload_is_clamped() {
        let buf: Arc<[u8]> = Arc::from(vec![0u8; 8]);
        let p = Packet::new(&[], Some((buf, 6, 100)), 0);
        assert_eq!(p.payload().len(), 2);
        let q = Packet::from_bytes(&[0u8; 300], 0);
        assert_eq!((q.header().len(), q.payload().len()), (64, 236));
    }

    #[test]
    fn short_header_does_not_parse() {
        assert!(ParsedHeader::parse(&[0u8; 27]).is_none());
        assert!(ParsedHeader::parse(&[0u8; 28]).is_some());
    }
}
