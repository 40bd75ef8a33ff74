//! Shadow-memory oracle: every expected packet's payload lands exactly at
//! `entry.base + offset` and nowhere else; TID-error packets write no payload.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)] // test code: a panic is a failure

use std::sync::Arc;

use hfi_abi::{rxe, Kdeth0, TidInfo};
use hfi_model::test_utils::*;
use hfi_model::{Dest, DeviceConfig, FlowPos, HfiDevice, Packet, Peer, PeerConfig, TimingParams};
use proptest::prelude::*;

const AREA: u64 = 0x80_0000;
const AREA_LEN: usize = 16 << 20;

#[derive(Clone, Debug)]
struct Pkt {
    tid: u32,
    ctrl: u32,
    offset: u64,
    len: usize,
    seed: u8,
}

fn pkt() -> impl Strategy<Value = Pkt> {
    (
        0u32..36,
        prop_oneof![8 => 1u32..=2, 1 => Just(0u32), 1 => Just(3u32)],
        0u64..((2 << 20) - 64),
        1usize..=2560,
        any::<u8>(),
    )
        .prop_map(|(tid, ctrl, off, dws, seed)| {
            let offset = if off < 128 * 1024 { off & !3 } else { off & !63 };
            Pkt { tid, ctrl, offset, len: dws * 4, seed }
        })
}

/// Entry sizes (pages, as log2) per relative entry; `None` = never programmed.
fn layout() -> impl Strategy<Value = Vec<Option<u32>>> {
    prop::collection::vec(prop_oneof![3 => (0u32..=9).prop_map(Some), 1 => Just(None)], 64)
}

fn header_for(len: usize, k: Kdeth0) -> Packet {
    let mut p = Peer::new(PeerConfig { mtu: 10240, ..Default::default() }).unwrap();
    let data: Arc<[u8]> = Arc::from(vec![0u8; len]);
    let big = [TidInfo::for_entry(0, 512).unwrap()];
    let mut pk = p
        .expected_message(
            Dest { ctxt: 1, ..Default::default() },
            FlowPos::default(),
            &big,
            0,
            &data,
        )
        .unwrap()
        .remove(0);
    pk.header_mut()[20..24].copy_from_slice(&k.0.to_le_bytes());
    pk
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn payload_lands_exactly_at_entry_base_plus_offset(sizes in layout(), pkts in prop::collection::vec(pkt(), 1..120)) {
        let cfg = DeviceConfig { num_contexts: 4, rcv_array_cnt: 1024, timing: TimingParams::functional(), ..Default::default() };
        let mut d = HfiDevice::new(cfg, guest_memory(AREA as usize + AREA_LEN)).unwrap();
        init_kdeth_qp(&mut d);
        let s = CtxtSetup::small(1);
        enable_context(&mut d, &s);
        // Program the entries: each at a naturally aligned address inside the area.
        let mut shadow = vec![0u8; AREA_LEN];
        let mut entries: Vec<Option<(u64, u64)>> = vec![None; 64];
        let mut next = AREA;
        for (rel, sz) in sizes.iter().enumerate() {
            if let Some(log) = sz {
                let bytes = 4096u64 << log;
                let addr = next.next_multiple_of(bytes);
                if addr + bytes > AREA + AREA_LEN as u64 { continue; }
                program_tid(&mut d, s.tid_base + rel as u32, addr, bytes);
                entries[rel] = Some((addr, bytes));
                next = addr + bytes;
            }
        }
        let mut want_errs = 0u64;
        for p in &pkts {
            let (units, om) = Kdeth0::encode_offset(p.offset).unwrap();
            let k = Kdeth0::new(p.tid, p.ctrl, units, om, false, false);
            let payload: Vec<u8> = (0..p.len).map(|i| (i as u8).wrapping_mul(13).wrapping_add(p.seed) | 1).collect();
            let mut pk = header_for(p.len, k);
            let hdr = pk.header().to_vec();
            let data: Arc<[u8]> = Arc::from(payload.clone());
            pk = Packet::new(&hdr, Some((data, 0, p.len)), 1);
            // The oracle's own reading of the placement rule.
            let ok = (p.ctrl == 1 || p.ctrl == 2) && 2 * p.tid + p.ctrl - 1 < 64;
            let rel = if ok { 2 * p.tid + p.ctrl - 1 } else { 0 };
            match (ok, entries.get(rel as usize).copied().flatten()) {
                (true, Some((addr, bytes))) if p.offset + p.len as u64 <= bytes => {
                    let at = (addr - AREA + p.offset) as usize;
                    shadow[at..at + p.len].copy_from_slice(&payload);
                }
                _ => want_errs += 1,
            }
            d.receive_now(pk);
            let tail = d.read64(s.u(rxe::RCV_HDR_TAIL));
            d.write64(s.u(rxe::RCV_HDR_HEAD), tail);
        }
        prop_assert_eq!(d.counters().rx_tid_err_count, want_errs);
        prop_assert_eq!(d.counters().rhq_entry_count, pkts.len() as u64);
        let mem = read_mem(&d, AREA, AREA_LEN);
        if mem != shadow {
            let first = mem.iter().zip(&shadow).position(|(a, b)| a != b).unwrap();
            prop_assert!(false, "memory differs from shadow at area offset {:#x}", first);
        }
        // Eager buffers are untouched by expected traffic.
        prop_assert!(read_mem(&d, s.egr_addr, 16 * 16 * 1024).iter().all(|&b| b == 0));
    }
}
