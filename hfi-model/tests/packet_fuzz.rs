//! Random and malformed packets never panic the device, and every packet is accounted for:
//! delivered (an RHQ entry or a suppressed header) or counted as dropped.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)] // test code: a panic is a failure

use std::sync::Arc;

use hfi_abi::{rxe, Kdeth0, TidInfo};
use hfi_model::test_utils::*;
use hfi_model::{Dest, DeviceConfig, FlowPos, HfiDevice, Packet, Peer, PeerConfig, TimingParams};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Pkt {
    Raw(Vec<u8>),
    Mutated { base: u8, at: usize, xor: u8, kdeth: u32 },
}

fn pkt() -> impl Strategy<Value = Pkt> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200).prop_map(Pkt::Raw),
        (0u8..3, 0usize..56, any::<u8>(), any::<u32>())
            .prop_map(|(base, at, xor, kdeth)| Pkt::Mutated { base, at, xor, kdeth }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_packets_never_panic_and_are_accounted(pkts in prop::collection::vec(pkt(), 1..200), flows in any::<bool>()) {
        let cfg = DeviceConfig { num_contexts: 4, rcv_array_cnt: 1024, timing: TimingParams::default(), ..Default::default() };
        let mut d = HfiDevice::new(cfg, guest_memory(16 << 20)).unwrap();
        init_kdeth_qp(&mut d);
        let s = CtxtSetup { flow_enable: flows, ..CtxtSetup::small(1) };
        enable_context(&mut d, &s);
        program_tid(&mut d, s.tid_base, 0x80_0000, 64 << 10);
        let mut peer = Peer::new(PeerConfig { mtu: 4096, ..Default::default() }).unwrap();
        let data: Arc<[u8]> = Arc::from(vec![7u8; 64 << 10]);
        let tids = [TidInfo::for_entry(0, 16).unwrap()];
        let templates = [
            peer.eager_message(Dest { ctxt: 1, ..Default::default() }, &data).remove(0),
            peer.expected_message(Dest { ctxt: 1, ..Default::default() }, FlowPos::default(), &tids, 0, &data).unwrap().remove(0),
            peer.control_packet(hfi_abi::wire::opcode::LONG_RTS, Dest { ctxt: 1, ..Default::default() }, 0, 9),
        ];
        let n = pkts.len() as u64;
        for (i, p) in pkts.into_iter().enumerate() {
            let pk = match p {
                Pkt::Raw(b) => Packet::from_bytes(&b, i as u64),
                Pkt::Mutated { base, at, xor, kdeth } => {
                    let mut pk = templates[usize::from(base)].clone();
                    if let Some(b) = pk.header_mut().get_mut(at) {
                        *b ^= xor;
                    }
                    if kdeth & 1 == 1 {
                        pk.header_mut()[20..24].copy_from_slice(&Kdeth0(kdeth).0.to_le_bytes());
                    }
                    pk
                }
            };
            d.link_send(pk);
            if i % 16 == 15 {
                d.run_until_idle();
                let tail = d.read64(s.u(rxe::RCV_HDR_TAIL));
                d.write64(s.u(rxe::RCV_HDR_HEAD), tail);
                let egr = d.read64(s.u(rxe::RCV_EGR_INDEX_TAIL));
                d.write64(s.u(rxe::RCV_EGR_INDEX_HEAD), egr);
            }
        }
        d.run_until_idle();
        let c = d.counters();
        prop_assert_eq!(c.rx_packet_count, n);
        let dropped = c.rx_short_packet_drops + c.rx_non_kdeth_drops + c.rx_bad_context_drops
            + c.rx_context_disabled_drops + c.rx_rhq_full_drops + c.rx_backlog_overflow_drops;
        prop_assert_eq!(c.rhq_entry_count + c.rx_hdr_suppressed_count + dropped, n, "{:?}", c);
        prop_assert_eq!(d.packets_in_device(), 0);
    }
}
