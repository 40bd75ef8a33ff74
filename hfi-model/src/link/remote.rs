//! The remote side of the link: a PSM-like sender that answers the receiver's rendezvous
//! protocol. Small messages go out as eager packets at once; large ones as a LONG_RTS, and each
//! LONG_CTS the receiver sends back (through its PIO send context) is answered with the EXPTID
//! packets of that window.

use std::collections::BTreeMap;
use std::sync::Arc;

use hfi_abi::psm::{self, Cts};
use hfi_abi::wire::opcode;
use serde::Serialize;

use crate::link::peer::{Dest, FlowPos, Peer, PeerError};
use crate::packet::{Packet, ParsedHeader};

/// Largest message a send request may ask for (64 MiB).
pub const MAX_REQUEST_BYTES: u32 = 64 << 20;

/// What the remote peer did (for reports and tests).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RemoteStats {
    /// Messages posted.
    pub sends_posted: u64,
    /// Messages sent eagerly.
    pub eager_sends: u64,
    /// Rendezvous requests sent.
    pub rts_sent: u64,
    /// Send requests received (the receiver asked for a message).
    pub requests: u64,
    /// CTS grants received and answered.
    pub cts_answered: u64,
    /// Expected packets emitted.
    pub expected_packets: u64,
    /// Packets from the receiver that were not a valid CTS for a known message (ignored).
    pub bad_packets: u64,
}

#[derive(Clone, Debug)]
struct PendingSend {
    dest: Dest,
    data: Arc<[u8]>,
}

/// The remote sender.
#[derive(Debug)]
pub struct RemotePeer {
    peer: Peer,
    rndv_threshold: usize,
    sends: BTreeMap<u32, PendingSend>,
    /// Statistics.
    pub stats: RemoteStats,
}

impl RemotePeer {
    /// A remote sender; messages of `rndv_threshold` bytes or more use rendezvous.
    pub fn new(peer: Peer, rndv_threshold: usize) -> Self {
        Self { peer, rndv_threshold, sends: BTreeMap::new(), stats: RemoteStats::default() }
    }

    /// Posts a send of `data` to `dest` (message id in `dest.msg_id`): returns the packets to
    /// put on the link now (eager packets, or one LONG_RTS).
    pub fn post_send(&mut self, dest: Dest, data: Arc<[u8]>) -> Vec<Packet> {
        self.stats.sends_posted += 1;
        if data.len() < self.rndv_threshold {
            self.stats.eager_sends += 1;
            return self.peer.eager_message(dest, &data);
        }
        self.stats.rts_sent += 1;
        let rts = self.peer.control_packet(opcode::LONG_RTS, dest, 0, data.len() as u64);
        self.sends.insert(dest.msg_id, PendingSend { dest, data });
        vec![rts]
    }

    /// Messages still waiting for CTS grants.
    pub fn pending_sends(&self) -> usize {
        self.sends.len()
    }

    /// Handles a packet the receiver sent (bytes after the PBC): a LONG_CTS is answered with
    /// the expected packets of its window; anything else is counted and ignored.
    pub fn on_packet(&mut self, bytes: &[u8]) -> Result<Vec<Packet>, PeerError> {
        let Some(h) = ParsedHeader::parse(bytes) else {
            self.stats.bad_packets += 1;
            return Ok(vec![]);
        };
        let word = |at: usize| {
            bytes.get(at..at + 4).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes)
        };
        if h.opcode() == psm::OPCODE_SEND_REQUEST {
            let (Some(reply), Some(msg_id), Some(seed), Some(len)) = (
                word(psm::HDR_FLAGS_CONNIDX),
                word(psm::HDR_MSG_ID),
                word(psm::HDR_MSG_OFFSET),
                word(psm::HDR_MSG_LEN),
            ) else {
                self.stats.bad_packets += 1;
                return Ok(vec![]);
            };
            if len > MAX_REQUEST_BYTES {
                self.stats.bad_packets += 1;
                return Ok(vec![]);
            }
            self.stats.requests += 1;
            let dest = Dest { ctxt: reply as u8, subctxt: ((reply >> 8) & 7) as u8, msg_id };
            let data: Arc<[u8]> = Arc::from(psm::pattern(seed, msg_id, len as usize));
            return Ok(self.post_send(dest, data));
        }
        let payload = bytes.get(hfi_abi::wire::PSM_PACKET_HDR_BYTES..).unwrap_or(&[]);
        let (Some(msg_id), Some(win_off), Some(win_len), Some(cts)) = (
            word(psm::HDR_MSG_ID),
            word(psm::HDR_MSG_OFFSET),
            word(psm::HDR_MSG_LEN),
            Cts::decode(payload),
        ) else {
            self.stats.bad_packets += 1;
            return Ok(vec![]);
        };
        if h.opcode() != opcode::LONG_CTS {
            self.stats.bad_packets += 1;
            return Ok(vec![]);
        }
        let Some(send) = self.sends.get(&msg_id).cloned() else {
            self.stats.bad_packets += 1;
            return Ok(vec![]);
        };
        let flow = FlowPos { flow: cts.flow as u8, gen: cts.gen, seq: cts.seq };
        let pk = self.peer.expected_window(
            send.dest,
            flow,
            &cts.tids,
            u64::from(cts.tid_offset),
            &send.data,
            u64::from(win_off),
            u64::from(win_len),
        )?;
        self.stats.cts_answered += 1;
        self.stats.expected_packets += pk.len() as u64;
        if u64::from(win_off) + u64::from(win_len) >= send.data.len() as u64 {
            self.sends.remove(&msg_id);
        }
        Ok(pk)
    }
}
