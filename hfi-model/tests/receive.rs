//! End-to-end receive: the link peer's eager and expected traffic lands in vm-memory guest
//! memory with correct RHQ entries; TID errors, flows, header suppression, full rings,
//! interrupts and timing behave as documented.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)] // test code: a panic is a failure

use std::sync::Arc;

use hfi_abi::{rxe, wire, RcvType, TidInfo};
use hfi_model::test_utils::*;
use hfi_model::{Dest, DeviceConfig, FlowPos, HfiDevice, Peer, PeerConfig, SimTime, TimingParams};
use vm_memory::GuestMemoryMmap;

type Dev = HfiDevice<Arc<GuestMemoryMmap>>;

const TID_AREA: u64 = 0x80_0000;

fn dev_with(timing: TimingParams) -> Dev {
    let cfg = DeviceConfig { num_contexts: 4, rcv_array_cnt: 1024, timing, ..Default::default() };
    let mut d = HfiDevice::new(cfg, guest_memory(32 << 20)).unwrap();
    init_kdeth_qp(&mut d);
    d
}

fn dev() -> Dev {
    dev_with(TimingParams::functional())
}

fn msg(n: usize, seed: u8) -> Arc<[u8]> {
    Arc::from((0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect::<Vec<_>>())
}

fn peer(mtu: u32) -> Peer {
    Peer::new(PeerConfig { mtu, ..Default::default() }).unwrap()
}

#[test]
fn eager_message_lands_in_eager_buffers_with_rhq_entries() {
    let mut d = dev();
    let s = CtxtSetup { one_packet: true, ..CtxtSetup::small(1) };
    enable_context(&mut d, &s);
    let data = msg(20_000, 1);
    let mut p = peer(8192);
    for pkt in p.eager_message(Dest { ctxt: 1, subctxt: 0, msg_id: 7 }, &data) {
        d.link_send(pkt);
    }
    d.run_until_idle();
    let mut got = Vec::new();
    for i in 0..3 {
        let (hdr, rhf) = read_rhq_entry(&d, &s, i);
        assert_eq!(rhf.seq(), u64::from(i) + 1);
        assert_eq!(rhf.rcv_type(), Some(RcvType::Eager));
        assert!(rhf.use_egr_bfr() && !rhf.has_error());
        assert_eq!(rhf.egr_index(), u64::from(i), "one packet per buffer");
        assert_eq!(hdr.len(), 56);
        assert_eq!(hdr[8], wire::opcode::EAGER);
        let payload_len = rhf.pkt_len_bytes() as usize - 56 - 4;
        let at = s.egr_addr + rhf.egr_index() * s.egr_buf_size + rhf.egr_offset_bytes();
        got.extend(read_mem(&d, at, payload_len));
    }
    assert_eq!(&got[..], &data[..]);
    // Tail in memory (DMA_RTAIL) and in the register agree: 3 entries of 32 DW.
    assert_eq!(read_mem(&d, s.tail_addr, 8), (96u64).to_le_bytes());
    assert_eq!(d.read64(s.u(rxe::RCV_HDR_TAIL)), 96);
    assert_eq!(d.counters().rx_eager_count, 3);
    assert_eq!(d.counters().total_drops_and_fails(), 0);
}

#[test]
fn eager_packing_uses_64_byte_offsets() {
    let mut d = dev();
    let s = CtxtSetup::small(2);
    enable_context(&mut d, &s);
    let mut p = peer(4096);
    for i in 0..5 {
        for pkt in p.eager_message(
            Dest { ctxt: 2, subctxt: 0, msg_id: i },
            &msg(100 * (i as usize + 1), i as u8),
        ) {
            d.receive_now(pkt);
        }
    }
    let offs: Vec<_> = (0..5).map(|i| read_rhq_entry(&d, &s, i).1.egr_offset_bytes()).collect();
    // 100, 200, 300, 400, 500 bytes rounded up to 64.
    assert_eq!(offs, vec![0, 128, 384, 704, 1152]);
    assert_eq!(d.read64(s.u(rxe::RCV_EGR_OFFSET_TAIL)), (1152 + 512) / 64);
}

fn expected_setup(d: &mut Dev, ctxt: u32, flows: bool) -> CtxtSetup {
    let s = CtxtSetup { flow_enable: flows, ..CtxtSetup::small(ctxt) };
    enable_context(d, &s);
    s
}

/// Programs `sizes` (bytes) as consecutive expected entries; returns their tidinfo.
fn program_tids(d: &mut Dev, s: &CtxtSetup, sizes: &[u64]) -> Vec<TidInfo> {
    let mut addr = TID_AREA;
    let mut out = vec![];
    for (rel, &size) in sizes.iter().enumerate() {
        addr = addr.next_multiple_of(size);
        program_tid(d, s.tid_base + rel as u32, addr, size);
        out.push(TidInfo::for_entry(rel as u32, (size / 4096) as u32).unwrap());
        addr += size;
    }
    out
}

#[test]
fn expected_message_places_payload_by_tid() {
    let mut d = dev();
    let s = expected_setup(&mut d, 1, false);
    let tids = program_tids(&mut d, &s, &[256 * 1024, 4096, 8192]);
    let data = msg(256 * 1024 + 4096 + 5000, 9);
    let mut p = peer(10240);
    let pk = p
        .expected_message(
            Dest { ctxt: 1, subctxt: 0, msg_id: 1 },
            FlowPos::default(),
            &tids,
            0,
            &data,
        )
        .unwrap();
    let n = pk.len();
    for pkt in pk {
        d.link_send(pkt);
    }
    d.run_until_idle();
    assert_eq!(read_mem(&d, TID_AREA, 256 * 1024), &data[..256 * 1024]);
    assert_eq!(read_mem(&d, TID_AREA + 256 * 1024, 4096), &data[256 * 1024..256 * 1024 + 4096]);
    assert_eq!(read_mem(&d, TID_AREA + 256 * 1024 + 8192, 5000), &data[256 * 1024 + 4096..]);
    // Without TID flows every packet has an RHQ entry.
    assert_eq!(d.counters().rhq_entry_count, n as u64);
    assert_eq!(d.counters().rx_expected_count, n as u64);
    let (_, rhf) = read_rhq_entry(&d, &s, 0);
    assert_eq!(rhf.rcv_type(), Some(RcvType::Expected));
    assert!(!rhf.use_egr_bfr() && !rhf.has_error());
}

fn set_flow(d: &mut Dev, s: &CtxtSetup, flow: u64, gen: u64, seq: u64, supp: bool) {
    let v = rxe::TID_FLOW_VALID.encode(1)
        | rxe::TID_FLOW_HDR_SUPP_ENABLE.encode(u64::from(supp))
        | rxe::TID_FLOW_GEN.encode(gen)
        | rxe::TID_FLOW_SEQ.encode(seq)
        | rxe::TID_FLOW_KEEP_AFTER_SEQ_ERR.encode(1)
        | rxe::TID_FLOW_KEEP_ON_GEN_ERR.encode(1);
    d.write64(s.u(rxe::RCV_TID_FLOW_TABLE.offset(flow).unwrap()), v);
}

#[test]
fn tid_flow_suppresses_headers_and_catches_sequence_errors() {
    let mut d = dev();
    let s = expected_setup(&mut d, 1, true);
    let tids = program_tids(&mut d, &s, &[128 * 1024]);
    set_flow(&mut d, &s, 3, 77, 10, true);
    let data = msg(128 * 1024, 3);
    let mut p =
        Peer::new(PeerConfig { mtu: 8192, expected_header_interval: 4, ..Default::default() })
            .unwrap();
    let pk = p
        .expected_message(
            Dest { ctxt: 1, ..Default::default() },
            FlowPos { flow: 3, gen: 77, seq: 10 },
            &tids,
            0,
            &data,
        )
        .unwrap();
    assert_eq!(pk.len(), 16);
    // Deliver all but packet 5 (lost), then 5 late: it is out of sequence.
    for (i, pkt) in pk.iter().enumerate() {
        if i != 5 {
            d.receive_now(pkt.clone());
        }
    }
    // Packets 0..5 matched; 3 carried a header. Packet 6 broke the sequence (RTE 2) and every
    // later one too (the flow keeps expecting 15): all those deliver headers and drop payloads.
    let c = d.counters().clone();
    assert_eq!(c.rx_hdr_suppressed_count, 4); // packets 0,1,2,4
    assert_eq!(c.rx_flow_seq_err_count, 10); // packets 6..=15
    let (_, rhf) = read_rhq_entry(&d, &s, 1);
    assert_eq!(rhf.rcv_type_err(), hfi_abi::rhf::rte::EXPECTED_FLOW_SEQ_ERR);
    let flow = d.read64(s.u(rxe::RCV_TID_FLOW_TABLE.offset(3).unwrap()));
    assert_eq!(rxe::TID_FLOW_SEQ_MISMATCH.get(flow), 1);
    assert_eq!(rxe::TID_FLOW_SEQ.get(flow), 15);
    // The payload of packets 0..=4 landed, nothing after packet 4.
    assert_eq!(read_mem(&d, TID_AREA, 5 * 8192), &data[..5 * 8192]);
    assert_eq!(read_mem(&d, TID_AREA + 6 * 8192, 8192), vec![0u8; 8192]);
    // A generation mismatch is reported with RTE 4.
    set_flow(&mut d, &s, 3, 78, 0, true);
    d.receive_now(pk[0].clone());
    assert_eq!(d.counters().rx_flow_gen_err_count, 1);
}

#[test]
fn tid_errors_deliver_header_and_drop_payload() {
    let mut d = dev();
    let s = expected_setup(&mut d, 1, false);
    let tids = program_tids(&mut d, &s, &[8192, 4096]);
    let mut p = peer(8192);
    let dest = Dest { ctxt: 1, ..Default::default() };
    let mut cases = vec![];
    // 1. Overflow: a 8192+4 byte message into the 8 KiB TID alone.
    let big = p
        .expected_message(dest, FlowPos::default(), &[tids[0], tids[1]], 0, &msg(8192 + 4, 1))
        .unwrap();
    let mut over = big[0].clone();
    let kd = hfi_abi::Kdeth0::new(0, 1, 1, false, false, false); // offset 4 bytes: 4 + 8192 > 8192
    over.header_mut()[20..24].copy_from_slice(&kd.0.to_le_bytes());
    cases.push((over, "overflow"));
    // 2. TIDCtrl 0 on an EXPTID packet, 3. TIDCtrl 3, 4. TID beyond the context's range, 5. an
    // entry never programmed.
    for (tid, ctrl, name) in [(0, 0, "ctrl0"), (0, 3, "ctrl3"), (40, 1, "range"), (5, 1, "invalid")]
    {
        let mut pk = big[1].clone();
        let kd = hfi_abi::Kdeth0::new(tid, ctrl, 0, false, false, false);
        pk.header_mut()[20..24].copy_from_slice(&kd.0.to_le_bytes());
        cases.push((pk, name));
    }
    for (i, (pk, name)) in cases.into_iter().enumerate() {
        d.receive_now(pk);
        let (_, rhf) = read_rhq_entry(&d, &s, i as u32);
        assert!(rhf.tid_err(), "{name}");
        assert_eq!(rhf.rcv_type(), Some(RcvType::Expected), "{name}");
    }
    let c = d.counters();
    assert_eq!(c.rx_tid_err_count, 5);
    assert_eq!(
        (
            c.rx_tid_overflow_count,
            c.rx_tid_bad_ctrl_count,
            c.rx_tid_out_of_range_count,
            c.rx_tid_invalid_entry_count
        ),
        (1, 2, 1, 1)
    );
    assert_eq!(c.rx_payload_bytes, 0);
    assert_eq!(read_mem(&d, TID_AREA, 3 * 4096), vec![0u8; 3 * 4096]);
}

#[test]
fn eager_full_drops_payload_or_holds_with_dont_drop() {
    let mut d = dev();
    let s = CtxtSetup { one_packet: true, egr_count: 8, ..CtxtSetup::small(1) };
    enable_context(&mut d, &s);
    let mut p = peer(4096);
    let dest = Dest { ctxt: 1, ..Default::default() };
    // 8 buffers, one kept empty: the 8th packet finds the ring full.
    for i in 0..8u32 {
        for pk in p.eager_message(Dest { msg_id: i, ..dest }, &msg(1000, i as u8)) {
            d.receive_now(pk);
        }
    }
    assert_eq!(d.counters().rx_egr_full_drops, 1);
    let (_, rhf) = read_rhq_entry(&d, &s, 7);
    assert!(rhf.tid_err() && !rhf.use_egr_bfr());
    // Software frees buffers 0..3: the next packet lands in buffer 7.
    d.write64(s.u(rxe::RCV_EGR_INDEX_HEAD), 4);
    d.receive_now(p.eager_message(dest, &msg(10, 0)).remove(0));
    let r8 = read_rhq_entry(&d, &s, 8).1;
    assert_eq!(r8.egr_index(), 7);

    // With DontDropEgrFull the packet is held and lands once software frees a buffer.
    let ctrl = d.read64(s.k(rxe::RCV_CTXT_CTRL));
    d.write64(s.k(rxe::RCV_CTXT_CTRL), rxe::RCV_CTXT_CTRL_DONT_DROP_EGR_FULL.set(ctrl, 1));
    for i in 0..4 {
        d.receive_now(p.eager_message(dest, &msg(10, i)).remove(0));
    }
    assert_eq!(d.counters().rx_egr_full_drops, 1);
    assert_eq!(d.counters().rx_backlog_count, 1);
    assert_eq!(d.context(1).unwrap().backlog.len(), 1);
    d.write64(s.u(rxe::RCV_EGR_INDEX_HEAD), 6);
    d.run_until_idle();
    assert!(d.context(1).unwrap().backlog.is_empty());
    assert_eq!(d.counters().rhq_entry_count, 13);
}

#[test]
fn rhq_full_drops_whole_packet() {
    let mut d = dev();
    let s = CtxtSetup { rhq_entries: 32, ..CtxtSetup::small(1) };
    enable_context(&mut d, &s);
    let mut p = peer(4096);
    for i in 0..40u32 {
        d.receive_now(
            p.eager_message(Dest { ctxt: 1, subctxt: 0, msg_id: i }, &msg(0, 0)).remove(0),
        );
    }
    // 32 entries, one kept empty.
    assert_eq!(d.counters().rhq_entry_count, 31);
    assert_eq!(d.counters().rx_rhq_full_drops, 9);
    assert_eq!(d.read64(s.k(rxe::RCV_HDR_OVFL_CNT)), 9);
    // RHF sequence wraps 13 → 1.
    assert_eq!(read_rhq_entry(&d, &s, 12).1.seq(), 13);
    assert_eq!(read_rhq_entry(&d, &s, 13).1.seq(), 1);
}

#[test]
fn routing_drops_are_counted() {
    let mut d = dev();
    let s = CtxtSetup::small(1);
    enable_context(&mut d, &s);
    let mut p = peer(4096);
    d.receive_now(p.eager_message(Dest { ctxt: 2, ..Default::default() }, &msg(10, 0)).remove(0));
    d.receive_now(p.eager_message(Dest { ctxt: 200, ..Default::default() }, &msg(10, 0)).remove(0));
    let mut wrong_qp = Peer::new(PeerConfig { kdeth_qp: 0x81, ..Default::default() }).unwrap();
    d.receive_now(
        wrong_qp.eager_message(Dest { ctxt: 1, ..Default::default() }, &msg(10, 0)).remove(0),
    );
    d.receive_now(hfi_model::Packet::from_bytes(&[0u8; 10], 0));
    let mut bad_len =
        p.eager_message(Dest { ctxt: 1, ..Default::default() }, &msg(10, 0)).remove(0);
    bad_len.header_mut()[5] ^= 1;
    d.receive_now(bad_len);
    let c = d.counters();
    assert_eq!(
        (
            c.rx_context_disabled_drops,
            c.rx_bad_context_drops,
            c.rx_non_kdeth_drops,
            c.rx_short_packet_drops
        ),
        (1, 1, 1, 1)
    );
    assert_eq!(c.rx_len_err_count, 1);
    assert!(read_rhq_entry(&d, &s, 0).1.len_err());
}

#[test]
fn dma_to_unbacked_memory_is_a_counted_device_error() {
    let mut d = dev();
    let s = expected_setup(&mut d, 1, false);
    // A TID pointing past the end of guest memory (32 MiB).
    program_tid(&mut d, s.tid_base, 64 << 20, 8192);
    let mut p = peer(8192);
    let pk = p
        .expected_message(
            Dest { ctxt: 1, ..Default::default() },
            FlowPos::default(),
            &[TidInfo::for_entry(0, 2).unwrap()],
            0,
            &msg(8192, 1),
        )
        .unwrap();
    d.receive_now(pk[0].clone());
    assert_eq!(d.counters().dma_write_fails, 1);
    // The header still arrived.
    assert_eq!(d.counters().rhq_entry_count, 1);
}

#[test]
fn rcvavail_moderation_counter_and_timeout() {
    let mut d = dev_with(TimingParams::default());
    let s =
        CtxtSetup { intr_avail: true, intr_count: 4, timeout_reload: 10, ..CtxtSetup::small(1) };
    enable_context(&mut d, &s);
    let src = hfi_abi::cce::IS_RCVAVAIL_START + 1;
    let (reg, bit) = hfi_abi::cce::int_source_bit(src);
    d.write64(hfi_abi::cce::CCE_INT_MASK.offset(reg).unwrap(), bit);
    let mut p = peer(4096);
    let dest = Dest { ctxt: 1, ..Default::default() };
    for _ in 0..4 {
        d.link_send(p.eager_message(dest, &msg(64, 0)).remove(0));
    }
    d.run_until_idle();
    assert_eq!(d.counters().intr_rcvavail_count, 1, "counter reached");
    assert_eq!(d.take_interrupts(), vec![0]);
    d.write64(hfi_abi::cce::CCE_INT_CLEAR.offset(reg).unwrap(), bit);
    // One more packet: the timer (10 × 64 cclocks ≈ 795 ns) fires it.
    let t0 = d.now();
    d.link_send(p.eager_message(dest, &msg(64, 0)).remove(0));
    let end = d.run_until_idle();
    assert_eq!(d.counters().intr_timeout_count, 1);
    assert_eq!(d.counters().intr_rcvavail_count, 2);
    assert!(end.since(t0) >= 10 * 64 * 1242);
    // A head write restarts moderation: a stale timer does not fire.
    d.link_send(p.eager_message(dest, &msg(64, 0)).remove(0));
    let t = d.next_event_time().unwrap();
    d.step_until(t);
    d.step_until(d.next_event_time().unwrap());
    d.write64(s.u(rxe::RCV_HDR_HEAD), rxe::RCV_HDR_HEAD_COUNTER.encode(4));
    d.run_until_idle();
    assert_eq!(d.counters().intr_timeout_count, 1);
}

#[test]
fn timing_link_bound_bandwidth_and_determinism() {
    let run = || {
        let mut d = dev_with(TimingParams::default());
        let s = expected_setup(&mut d, 1, false);
        let tids = program_tids(&mut d, &s, &[2 << 20, 2 << 20]);
        let data = msg(4 << 20, 5);
        let mut p = peer(10240);
        let pk = p
            .expected_message(
                Dest { ctxt: 1, ..Default::default() },
                FlowPos::default(),
                &tids,
                0,
                &data,
            )
            .unwrap();
        for pkt in pk {
            d.link_send_at(SimTime::ZERO, pkt);
        }
        let end = d.run_until_idle();
        (end, d.counters().clone(), read_mem(&d, TID_AREA, 64))
    };
    let (end, c, head) = run();
    let gbps = (4u64 << 20) as f64 / (end.0 as f64 / 1e12) / 1e9;
    // Link-bound: ~12.3–12.5 GB/s of payload at 10 KiB MTU (header + ICRC + framing overhead).
    assert!((12.0..12.5).contains(&gbps), "{gbps} GB/s");
    assert_eq!(run(), (end, c, head), "same inputs, same outputs");
}
