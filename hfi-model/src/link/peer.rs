//! The link peer: turns a message into the packet stream a PSM sender would emit.
//!
//! - Eager messages (below the rendezvous threshold): MTU-sized EAGER packets, no TID.
//! - Expected messages: from the receiver's tidlist (the CTS), EXPTID packets that walk the TIDs
//!   in order, never crossing a TID buffer's end, with KDETH TID/TIDCtrl/Offset and OM chosen as
//!   PSM does (OM=0 below 128 KiB into the TID, OM=1 above, where the offset must be 64-byte
//!   aligned); SH on all but every Nth packet, never on the last packet nor on packets with ≤ 32
//!   bytes of payload; TID-flow generation and sequence in BTH[2].
//!
//! The 28-byte PSM header is PSM-like, not PSM's exact union (see `docs/link.md`): flags/connidx,
//! message id, byte offset of this packet's payload in the message, message length, tag.

use std::sync::Arc;

use hfi_abi::wire::{self, opcode, Kdeth0};
use hfi_abi::{psm, TidInfo, PAGE_SIZE};
use serde::{Deserialize, Serialize};

use crate::packet::Packet;

/// Peer parameters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PeerConfig {
    /// Payload bytes per packet (the MTU; 2048, 4096, 8192 or 10240).
    pub mtu: u32,
    /// KDETH QP prefix the peer puts in BTH[1] (must match the receiver's RcvBthQp).
    pub kdeth_qp: u32,
    /// Every Nth expected packet carries a header (PSM_DEFAULT_EXPECTED_HEADER 16).
    pub expected_header_interval: u32,
    /// Source LID.
    pub slid: u16,
    /// Destination LID.
    pub dlid: u16,
    /// Partition key.
    pub pkey: u16,
    /// J_KEY in KDETH word 1.
    pub jkey: u16,
}

impl Default for PeerConfig {
    fn default() -> Self {
        Self {
            mtu: 10240,
            kdeth_qp: hfi_abi::rxe::DEFAULT_KDETH_QP as u32,
            expected_header_interval: 16,
            slid: 2,
            dlid: 1,
            pkey: 0xFFFF,
            jkey: 0,
        }
    }
}

/// Addressing of a message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dest {
    /// Receive context.
    pub ctxt: u8,
    /// Subcontext.
    pub subctxt: u8,
    /// Message id (PSM-like header).
    pub msg_id: u32,
}

/// A TID-flow position for an expected message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowPos {
    /// Flow index (0..32).
    pub flow: u8,
    /// Generation (20 bits).
    pub gen: u32,
    /// First sequence number (11 bits, wraps).
    pub seq: u32,
}

/// Why a message could not be turned into packets.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PeerError {
    /// The tidlist does not cover the message.
    #[error("Tidlist covers {covered} bytes from offset {offset}, message needs {needed}")]
    TidlistTooShort {
        /// Bytes the tidlist covers after the offset.
        covered: u64,
        /// Offset into the first TID.
        offset: u64,
        /// Message length.
        needed: u64,
    },
    /// An offset in a TID cannot be encoded in KDETH (not 64-byte aligned past 128 KiB).
    #[error("Offset {0} into a TID cannot be encoded in KDETH")]
    OffsetNotEncodable(u64),
    /// The window does not lie inside the message.
    #[error("Window {offset}+{len} outside a message of {msg_len} bytes")]
    WindowOutsideMessage {
        /// Window offset.
        offset: u64,
        /// Window length.
        len: u64,
        /// Message length.
        msg_len: u64,
    },
    /// The MTU is not a multiple of 64 in 64..=10240.
    #[error("Invalid MTU {0}")]
    InvalidMtu(u32),
}

#[derive(Clone, Copy)]
struct HdrArgs {
    op: u8,
    dest: Dest,
    flow: u8,
    kdeth0: Kdeth0,
    bth2: u32,
    payload_len: usize,
    msg_off: u64,
    msg_len: u64,
}

/// The peer: builds packets; the caller hands them to the link in order.
#[derive(Clone, Debug)]
pub struct Peer {
    cfg: PeerConfig,
    next_packet_id: u64,
}

impl Peer {
    /// A peer; `None` for an invalid MTU.
    pub fn new(cfg: PeerConfig) -> Result<Self, PeerError> {
        if cfg.mtu < 64 || cfg.mtu > 10240 || cfg.mtu % 64 != 0 {
            return Err(PeerError::InvalidMtu(cfg.mtu));
        }
        Ok(Self { cfg, next_packet_id: 1 })
    }

    /// The configuration.
    pub fn config(&self) -> &PeerConfig {
        &self.cfg
    }

    fn header(&self, a: &HdrArgs) -> [u8; wire::PSM_PACKET_HDR_BYTES] {
        psm::PsmHeader {
            opcode: a.op,
            dlid: self.cfg.dlid,
            slid: self.cfg.slid,
            pkey: self.cfg.pkey,
            kdeth_qp: self.cfg.kdeth_qp,
            ctxt: u32::from(a.dest.ctxt),
            subctxt: u32::from(a.dest.subctxt),
            flow: u32::from(a.flow),
            bth2: a.bth2,
            kdeth0: a.kdeth0,
            jkey: self.cfg.jkey,
            msg_id: a.dest.msg_id,
            msg_offset: a.msg_off as u32,
            msg_len: a.msg_len as u32,
            payload_len: a.payload_len as u32,
            connidx: 0,
        }
        .encode()
    }

    fn take_id(&mut self) -> u64 {
        let id = self.next_packet_id;
        self.next_packet_id += 1;
        id
    }

    /// Eager packets for `data` (MTU-sized, the last one shorter). A zero-length message is one
    /// header-only packet.
    pub fn eager_message(&mut self, dest: Dest, data: &Arc<[u8]>) -> Vec<Packet> {
        let mtu = self.cfg.mtu as usize;
        let total = data.len();
        let mut out = Vec::with_capacity(total.div_ceil(mtu).max(1));
        let mut off = 0usize;
        loop {
            let len = (total - off).min(mtu);
            let k = Kdeth0::new(0, 0, 0, false, false, false);
            let h = self.header(&HdrArgs {
                op: opcode::EAGER,
                dest,
                flow: 0,
                kdeth0: k,
                bth2: 0,
                payload_len: len,
                msg_off: off as u64,
                msg_len: total as u64,
            });
            let id = self.take_id();
            out.push(Packet::new(&h, Some((data.clone(), off, len)), id));
            off += len;
            if off >= total {
                break;
            }
        }
        out
    }

    /// A header-only control packet (e.g. LONG_RTS) with the message id, an offset and a
    /// length in the PSM-like header.
    pub fn control_packet(&mut self, op: u8, dest: Dest, msg_off: u64, msg_len: u64) -> Packet {
        let k = Kdeth0::new(0, 0, 0, false, false, false);
        let h = self.header(&HdrArgs {
            op,
            dest,
            flow: 0,
            kdeth0: k,
            bth2: 0,
            payload_len: 0,
            msg_off,
            msg_len,
        });
        let id = self.take_id();
        Packet::new(&h, None, id)
    }

    /// Expected packets delivering `data` into the TIDs of `tidlist`, starting `tid_offset`
    /// bytes into the first TID (PSM's tsess_tidoffset).
    pub fn expected_message(
        &mut self,
        dest: Dest,
        flow: FlowPos,
        tidlist: &[TidInfo],
        tid_offset: u64,
        data: &Arc<[u8]>,
    ) -> Result<Vec<Packet>, PeerError> {
        self.expected_window(dest, flow, tidlist, tid_offset, data, 0, data.len() as u64)
    }

    /// Expected packets for the window `[win_off, win_off + win_len)` of `data` (one CTS).
    #[allow(clippy::too_many_arguments)]
    pub fn expected_window(
        &mut self,
        dest: Dest,
        flow: FlowPos,
        tidlist: &[TidInfo],
        tid_offset: u64,
        data: &Arc<[u8]>,
        win_off: u64,
        win_len: u64,
    ) -> Result<Vec<Packet>, PeerError> {
        let msg_len = data.len() as u64;
        let end = win_off
            .checked_add(win_len)
            .filter(|&e| e <= msg_len)
            .ok_or(PeerError::WindowOutsideMessage { offset: win_off, len: win_len, msg_len })?;
        let covered: u64 = tidlist.iter().map(|t| u64::from(t.npages()) * PAGE_SIZE).sum();
        if covered.saturating_sub(tid_offset) < win_len {
            return Err(PeerError::TidlistTooShort {
                covered: covered.saturating_sub(tid_offset),
                offset: tid_offset,
                needed: win_len,
            });
        }
        let total = end;
        let mtu = u64::from(self.cfg.mtu);
        let interval = self.cfg.expected_header_interval.max(1);
        let mut chunks: Vec<(TidInfo, u64, u64, u64)> = Vec::new(); // (tid, off in tid, msg off, len)
        let mut msg_off = win_off;
        let mut skip = tid_offset;
        for t in tidlist {
            let size = u64::from(t.npages()) * PAGE_SIZE;
            if skip >= size {
                skip -= size;
                continue;
            }
            let mut off = skip;
            skip = 0;
            while off < size && msg_off < total {
                let len = (size - off).min(mtu).min(total - msg_off);
                chunks.push((*t, off, msg_off, len));
                off += len;
                msg_off += len;
            }
            if msg_off >= total {
                break;
            }
        }
        let n = chunks.len();
        let mut out = Vec::with_capacity(n);
        for (i, (t, off, moff, len)) in chunks.into_iter().enumerate() {
            let (units, om) =
                Kdeth0::encode_offset(off).ok_or(PeerError::OffsetNotEncodable(off))?;
            let last = i + 1 == n;
            let with_header = last || len <= 32 || (i as u32 + 1) % interval == 0;
            let k = Kdeth0::new(t.idx(), t.ctrl(), units, om, !with_header, false);
            let seq = (flow.seq + i as u32) & 0x7FF;
            let bth2 = wire::BTH2_FLOW_GEN.set(0, flow.gen) | wire::BTH2_FLOW_SEQ.set(0, seq);
            let h = self.header(&HdrArgs {
                op: opcode::EXPTID,
                dest,
                flow: flow.flow,
                kdeth0: k,
                bth2,
                payload_len: len as usize,
                msg_off: moff,
                msg_len,
            });
            let id = self.take_id();
            out.push(Packet::new(&h, Some((data.clone(), moff as usize, len as usize)), id));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::ParsedHeader;

    fn data(n: usize) -> Arc<[u8]> {
        Arc::from((0..n).map(|i| (i * 7 + 3) as u8).collect::<Vec<_>>())
    }

    #[test]
    fn eager_splits_at_mtu() {
        let mut p = Peer::new(PeerConfig { mtu: 4096, ..Default::default() }).unwrap();
        let pk = p.eager_message(Dest { ctxt: 3, subctxt: 0, msg_id: 9 }, &data(10000));
        assert_eq!(
            pk.iter().map(|p| p.payload().len()).collect::<Vec<_>>(),
            vec![4096, 4096, 1808]
        );
        let h = ParsedHeader::parse(pk[2].header()).unwrap();
        assert_eq!((h.ctxt(), h.opcode(), h.qp_prefix()), (3, opcode::EAGER, 0x80));
        assert_eq!(usize::from(h.lrh_pkt_len_dws) * 4, pk[2].wire_len());
        assert_eq!(h.kdeth0.tidctrl(), 0);
        assert_eq!(p.eager_message(Dest::default(), &data(0)).len(), 1);
    }

    #[test]
    fn expected_walks_tids_with_om_and_sh() {
        let mut p =
            Peer::new(PeerConfig { mtu: 8192, expected_header_interval: 4, ..Default::default() })
                .unwrap();
        // TID A: 64 pages (256 KiB) at pair 0 even; TID B: 1 page at pair 0 odd.
        let tids = [TidInfo::for_entry(0, 64).unwrap(), TidInfo::for_entry(1, 1).unwrap()];
        let msg = data(256 * 1024 + 4096);
        let pk = p
            .expected_message(
                Dest { ctxt: 1, ..Default::default() },
                FlowPos { flow: 2, gen: 5, seq: 2046 },
                &tids,
                0,
                &msg,
            )
            .unwrap();
        assert_eq!(pk.len(), 33);
        let hs: Vec<_> = pk.iter().map(|p| ParsedHeader::parse(p.header()).unwrap()).collect();
        // Packet 16 starts at 128 KiB: OM switches to 64-byte units.
        assert!(!hs[15].kdeth0.om() && hs[16].kdeth0.om());
        assert_eq!(hs[16].kdeth0.byte_offset(), 128 * 1024);
        // The last packet goes to the second TID (odd half of pair 0) with a header.
        assert_eq!(
            (hs[32].kdeth0.tid(), hs[32].kdeth0.tidctrl(), hs[32].kdeth0.sh()),
            (0, 2, false)
        );
        // SH on all but every 4th.
        assert!(hs[0].kdeth0.sh() && !hs[3].kdeth0.sh());
        // Sequence wraps at 11 bits, generation and flow carried.
        assert_eq!(
            (hs[0].flow_seq(), hs[2].flow_seq(), hs[2].flow_gen(), hs[2].flow()),
            (2046, 0, 5, 2)
        );
    }

    #[test]
    fn short_tidlist_and_bad_offset_are_errors() {
        let mut p = Peer::new(PeerConfig::default()).unwrap();
        let tids = [TidInfo::for_entry(0, 1).unwrap()];
        assert!(matches!(
            p.expected_message(Dest::default(), FlowPos::default(), &tids, 0, &data(5000)),
            Err(PeerError::TidlistTooShort { .. })
        ));
        let big = [TidInfo::for_entry(0, 64).unwrap()];
        assert_eq!(
            p.expected_message(Dest::default(), FlowPos::default(), &big, 131072 + 4, &data(100))
                .unwrap_err(),
            PeerError::OffsetNotEncodable(131076)
        );
        assert!(Peer::new(PeerConfig { mtu: 100, ..Default::default() }).is_err());
    }
}
