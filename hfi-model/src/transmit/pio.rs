//! PIO send capture: the driver writes a packet (PBC first) into a send context's 64 KiB window
//! of the PIO space, the start-of-packet block through the SOP alias (PIO sheet §2.1–2.2). Once
//! `ceil(PBC.LengthDWs·4 / 64)` blocks have been written the packet leaves the device: it is
//! queued for the link (the remote peer) without its PBC.
//!
//! Scope (see `docs/transmit.md`): send contexts need no enable, credits are not returned, and the
//! window is a 64 KiB ring; only whole-packet assembly and its errors are modelled.
//!
//! Transitional: the device sends a store here only while its send context has not been
//! enabled since reset; once enabled, the context's [`super::SendContext`] takes its stores
//! (`docs/transmit.md` "Routing"). The queue [`PioSend::tx`] is also where the device puts
//! every packet of the send units that does not loop back.

use std::collections::BTreeMap;

use hfi_abi::{bar0, wire};

use crate::counters::Counters;
use crate::time::SimTime;

/// A packet that left through a PIO send context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxPacket {
    /// When its last block was written.
    pub time: SimTime,
    /// Hardware send context (window index); the engine number for an SDMA packet.
    pub send_ctxt: u32,
    /// The send unit it left through.
    pub source: super::TxSource,
    /// The PBC.
    pub pbc: u64,
    /// Packet bytes after the PBC (LRH .. payload, no ICRC).
    pub bytes: Vec<u8>,
}

#[derive(Clone, Debug)]
struct Assembly {
    start: u64,
    pbc: u64,
    total: usize,
    buf: Vec<u8>,
    written: usize,
}

/// PIO send state of all contexts.
#[derive(Clone, Debug, Default)]
pub struct PioSend {
    open: BTreeMap<u32, Assembly>,
    /// Low dwords waiting for their high half (write combining of 4-byte stores).
    half: BTreeMap<u64, u32>,
    /// Packets sent and not yet taken.
    pub tx: Vec<TxPacket>,
}

/// Window size of one send context.
const WINDOW: u64 = 0x1_0000;

impl PioSend {
    /// Handles a store of `len` bytes of `value` at BAR0 `offset` (inside the PIO space).
    /// A 4-byte store is combined with its other half (low dword first, as a split 8-byte
    /// store arrives) into one 8-byte store, as the CPU's write-combining buffer would.
    pub fn write(&mut self, now: SimTime, offset: u64, value: u64, len: usize, c: &mut Counters) {
        let (offset, value) = match (len, offset % 8) {
            (8, 0) => (offset, value),
            (4, 0) => {
                self.half.insert(offset, value as u32);
                return;
            }
            (4, 4) => match self.half.remove(&(offset - 4)) {
                Some(lo) => (offset - 4, u64::from(lo) | (value << 32)),
                None => {
                    c.tx_pio_error_count += 1;
                    return;
                }
            },
            _ => {
                c.tx_pio_error_count += 1;
                return;
            }
        };
        let rel = offset - bar0::TXE_PIO_SEND;
        let sop = rel >= bar0::PIO_SOP_DISTANCE;
        let rel = rel % bar0::PIO_SOP_DISTANCE;
        let ctxt = (rel / WINDOW) as u32;
        let ring = rel % WINDOW;
        if sop && ring % 64 == 0 {
            if self.open.contains_key(&ctxt) {
                // A new start of packet while one is open: PioInconsistentSop.
                c.tx_pio_error_count += 1;
            }
            let len_dws = wire::PBC_LENGTH_DWS.get(value) as usize;
            if len_dws < 2 {
                c.tx_pio_error_count += 1;
                self.open.remove(&ctxt);
                return;
            }
            let total = (len_dws * 4).div_ceil(64) * 64;
            let mut buf = vec![0u8; total];
            if let Some(d) = buf.get_mut(..8) {
                d.copy_from_slice(&value.to_le_bytes());
            }
            let a = Assembly { start: ring, pbc: value, total: len_dws * 4, buf, written: 8 };
            self.open.insert(ctxt, a);
            self.finish_if_complete(now, ctxt, c);
            return;
        }
        let Some(a) = self.open.get_mut(&ctxt) else {
            c.tx_pio_error_count += 1;
            return;
        };
        let pos = ((ring + WINDOW - a.start) % WINDOW) as usize;
        match a.buf.get_mut(pos..pos + 8) {
            Some(d) => {
                d.copy_from_slice(&value.to_le_bytes());
                a.written += 8;
            }
            None => {
                // Past the end of the packet: PioWriteOverflow.
                c.tx_pio_error_count += 1;
                return;
            }
        }
        self.finish_if_complete(now, ctxt, c);
    }

    fn finish_if_complete(&mut self, now: SimTime, ctxt: u32, c: &mut Counters) {
        let done = self.open.get(&ctxt).is_some_and(|a| a.written >= a.buf.len());
        if !done {
            return;
        }
        if let Some(a) = self.open.remove(&ctxt) {
            let bytes = a.buf.get(8..a.total).unwrap_or(&[]).to_vec();
            self.tx.push(TxPacket {
                time: now,
                send_ctxt: ctxt,
                source: super::TxSource::Pio { ctxt },
                pbc: a.pbc,
                bytes,
            });
            c.tx_pio_packet_count += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(p: &mut PioSend, c: &mut Counters, ctxt: u64, start: u64, pkt: &[u8]) {
        let len_dws = (8 + pkt.len()) / 4;
        let pbc = wire::PBC_LENGTH_DWS.encode(len_dws as u64);
        let base = bar0::TXE_PIO_SEND + ctxt * WINDOW;
        let mut bytes = pbc.to_le_bytes().to_vec();
        bytes.extend_from_slice(pkt);
        bytes.resize(bytes.len().div_ceil(64) * 64, 0);
        for (i, q) in bytes.chunks(8).enumerate() {
            let off = (start + i as u64 * 8) % WINDOW;
            let sop = if i < 8 { bar0::PIO_SOP_DISTANCE } else { 0 };
            p.write(SimTime(5), base + sop + off, u64::from_le_bytes(q.try_into().unwrap()), 8, c);
        }
    }

    #[test]
    fn packet_assembles_across_the_ring_end() {
        let mut p = PioSend::default();
        let mut c = Counters::default();
        let pkt: Vec<u8> = (0..200u8).collect();
        send(&mut p, &mut c, 3, WINDOW - 128, &pkt);
        assert_eq!(p.tx.len(), 1);
        assert_eq!(p.tx[0].send_ctxt, 3);
        assert_eq!(p.tx[0].bytes, pkt);
        assert_eq!(c.tx_pio_error_count, 0);
    }

    #[test]
    fn stray_and_bad_writes_are_counted() {
        let mut p = PioSend::default();
        let mut c = Counters::default();
        p.write(SimTime(0), bar0::TXE_PIO_SEND + 64, 1, 8, &mut c);
        // A high half without its low half, and a 2-byte store.
        p.write(SimTime(0), bar0::TXE_PIO_SEND + 4, 1, 4, &mut c);
        p.write(SimTime(0), bar0::TXE_PIO_SEND + 8, 1, 2, &mut c);
        // PBC with length 0.
        p.write(SimTime(0), bar0::TXE_PIO_SEND + bar0::PIO_SOP_DISTANCE, 0, 8, &mut c);
        assert_eq!(c.tx_pio_error_count, 4);
        assert!(p.tx.is_empty());
    }

    #[test]
    fn split_stores_combine() {
        let mut p = PioSend::default();
        let mut c = Counters::default();
        let pkt: Vec<u8> = (0..120u8).collect();
        let pbc = wire::PBC_LENGTH_DWS.encode((8 + pkt.len() as u64) / 4);
        let mut bytes = pbc.to_le_bytes().to_vec();
        bytes.extend_from_slice(&pkt);
        bytes.resize(128, 0);
        for (i, d) in bytes.chunks(4).enumerate() {
            let sop = if i < 16 { bar0::PIO_SOP_DISTANCE } else { 0 };
            let v = u64::from(u32::from_le_bytes(d.try_into().unwrap()));
            p.write(SimTime(1), bar0::TXE_PIO_SEND + sop + i as u64 * 4, v, 4, &mut c);
        }
        assert_eq!(c.tx_pio_error_count, 0);
        assert_eq!(p.tx.len(), 1);
        assert_eq!(p.tx[0].bytes, pkt);
    }
}
