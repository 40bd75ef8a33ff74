//! Deterministic packet faults on the link between the remote peer and the device: drop,
//! duplicate, reorder (swap with the next packet of the message), or corrupt the KDETH of
//! chosen expected packets of a chosen message. The fault applies after `skip` matching
//! packets have passed, to the next `count` ones.

use hfi_abi::psm::PsmHeader;
use hfi_abi::wire::{self, opcode};
use hfi_abi::Kdeth0;
use hfi_model::Packet;
use serde::Serialize;

/// How a KDETH is corrupted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Corruption {
    /// A TID index past the context's range.
    BadTid,
    /// TIDCtrl 0.
    TidCtrl0,
    /// TIDCtrl 3.
    TidCtrl3,
    /// An offset running past the end of the TID buffer.
    OffsetPastEnd,
}

/// What happens to a matching packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum PacketFaultKind {
    /// The packet is lost.
    Drop,
    /// The packet arrives twice.
    Duplicate,
    /// The packet swaps places with the next packet of the same message.
    Reorder,
    /// The KDETH is corrupted.
    Corrupt(Corruption),
}

/// One planned packet fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct PacketFault {
    /// Message whose expected (EXPTID) packets are affected.
    pub msg_id: u32,
    /// Matching packets let through first.
    pub skip: u32,
    /// Packets affected.
    pub count: u32,
    /// What to do.
    pub kind: PacketFaultKind,
    /// Matching packets seen so far.
    pub seen: u32,
    /// Packets affected so far.
    pub applied: u32,
}

impl PacketFault {
    /// A fault on message `msg_id`: let `skip` expected packets through, then hit `count`.
    pub fn new(msg_id: u32, skip: u32, count: u32, kind: PacketFaultKind) -> Self {
        Self { msg_id, skip, count, kind, seen: 0, applied: 0 }
    }
}

fn corrupt(p: &mut Packet, c: Corruption) {
    let h = p.header_mut();
    let Some(word) = h.get_mut(wire::KDETH_OFFSET..wire::KDETH_OFFSET + 4) else { return };
    let mut b = [0u8; 4];
    b.copy_from_slice(word);
    let k = Kdeth0(u32::from_le_bytes(b));
    let new = match c {
        Corruption::BadTid => Kdeth0(wire::KDETH0_TID.set(k.0, 1023)),
        Corruption::TidCtrl0 => Kdeth0(wire::KDETH0_TIDCTRL.set(k.0, 0)),
        Corruption::TidCtrl3 => Kdeth0(wire::KDETH0_TIDCTRL.set(k.0, 3)),
        Corruption::OffsetPastEnd => {
            Kdeth0(wire::KDETH0_OM.set(wire::KDETH0_OFFSET.set(k.0, wire::KDETH0_OFFSET.mask()), 1))
        }
    };
    word.copy_from_slice(&new.0.to_le_bytes());
}

/// Applies `faults` to the packets the remote peer is about to put on the link.
pub fn apply(faults: &mut [PacketFault], packets: Vec<Packet>) -> Vec<Packet> {
    let mut out: Vec<Packet> = Vec::with_capacity(packets.len());
    let mut hold: Option<Packet> = None;
    for mut p in packets {
        let h = PsmHeader::decode(p.header());
        let mut action = None;
        if let Some(h) = h.filter(|h| h.opcode == opcode::EXPTID) {
            for f in faults.iter_mut().filter(|f| f.msg_id == h.msg_id) {
                f.seen += 1;
                if f.seen > f.skip && f.applied < f.count {
                    f.applied += 1;
                    action = Some(f.kind);
                    break;
                }
            }
        }
        match action {
            Some(PacketFaultKind::Drop) => continue,
            Some(PacketFaultKind::Duplicate) => {
                out.push(p.clone());
                out.push(p);
            }
            Some(PacketFaultKind::Reorder) => {
                if let Some(prev) = hold.take() {
                    out.push(prev);
                }
                hold = Some(p);
                continue;
            }
            Some(PacketFaultKind::Corrupt(c)) => {
                corrupt(&mut p, c);
                out.push(p);
            }
            None => out.push(p),
        }
        if let Some(h) = hold.take() {
            out.push(h);
        }
    }
    if let Some(h) = hold {
        out.push(h);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use hfi_abi::TidInfo;
    use hfi_model::{Dest, FlowPos, Peer, PeerConfig};
    use std::sync::Arc;

    fn packets(n: usize) -> Vec<Packet> {
        let mut p = Peer::new(PeerConfig { mtu: 4096, ..Default::default() }).unwrap();
        let data: Arc<[u8]> = Arc::from(vec![1u8; 4096 * n]);
        let tids = [TidInfo::for_entry(0, (n as u32).next_power_of_two()).unwrap()];
        p.expected_message(
            Dest { msg_id: 5, ..Default::default() },
            FlowPos::default(),
            &tids,
            0,
            &data,
        )
        .unwrap()
    }

    fn ids(v: &[Packet]) -> Vec<u64> {
        v.iter().map(|p| p.id).collect()
    }

    #[test]
    fn drop_duplicate_reorder_corrupt() {
        let base = packets(4);
        let first = base[0].id;
        let mut f = [PacketFault::new(5, 1, 1, PacketFaultKind::Drop)];
        assert_eq!(ids(&apply(&mut f, base.clone())), vec![first, first + 2, first + 3]);
        let mut f = [PacketFault::new(5, 0, 1, PacketFaultKind::Duplicate)];
        assert_eq!(
            ids(&apply(&mut f, base.clone())),
            vec![first, first, first + 1, first + 2, first + 3]
        );
        let mut f = [PacketFault::new(5, 1, 1, PacketFaultKind::Reorder)];
        assert_eq!(ids(&apply(&mut f, base.clone())), vec![first, first + 2, first + 1, first + 3]);
        let mut f = [PacketFault::new(5, 0, 1, PacketFaultKind::Corrupt(Corruption::TidCtrl3))];
        let out = apply(&mut f, base.clone());
        let k = PsmHeader::decode(out[0].header()).unwrap().kdeth0;
        assert_eq!(k.tidctrl(), 3);
        // Another message is untouched.
        let mut f = [PacketFault::new(6, 0, 9, PacketFaultKind::Drop)];
        assert_eq!(apply(&mut f, base).len(), 4);
    }
}
