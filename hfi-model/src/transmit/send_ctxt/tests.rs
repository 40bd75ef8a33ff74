//! Tests of the parent module.

use super::*;
use hfi_abi::pio::{CR_COUNTER, CR_DUE_TO_PBC, CR_DUE_TO_THRESHOLD, CR_STATUS};
use proptest::prelude::*;

pub(crate) const CR_ADDR: u64 = 0x10_0000;

/// A context set up the way hfi1's sc_alloc + sc_enable leave a user context
/// (`pio.c` 722-795, 1243-1331): depth, check mask, all errors unmasked, credit return
/// address and threshold, VL15 disallowed, then the PIO init and the enable.
pub(crate) fn hfi1_user_context(hw: u32, depth: u64, threshold: u64) -> SendContext {
    let mut s = SendContext::new(hw, TxTiming::functional());
    let mut c = TxCounters::default();
    let t = SimTime::ZERO;
    let w = |s: &mut SendContext, r, v, c: &mut TxCounters| {
        assert_eq!(s.write_csr(t, r, v, c), Some(vec![]));
    };
    w(&mut s, txe::SEND_CTXT_CTRL, txe::SEND_CTXT_CTRL_CTXT_DEPTH.encode(depth), &mut c);
    let checks = check::CHECK_ENABLE.smask()
        | check::CHECK_VL.smask()
        | check::CHECK_OPCODE.smask()
        | check::DISALLOW_BAD_PKT_LEN.smask()
        | check::DISALLOW_PBC_TEST.smask()
        | check::DISALLOW_TOO_SMALL_IB_PACKETS.smask()
        | check::DISALLOW_RAW.smask()
        | check::DISALLOW_GRH.smask();
    w(&mut s, txe::SEND_CTXT_CHECK_ENABLE, checks, &mut c);
    w(&mut s, txe::SEND_CTXT_ERR_MASK, u64::MAX, &mut c);
    let op = txe::SEND_CTXT_CHECK_OPCODE_MASK.encode(0xC0)
        | txe::SEND_CTXT_CHECK_OPCODE_VALUE.encode(0xC0);
    w(&mut s, txe::SEND_CTXT_CHECK_OPCODE, op, &mut c);
    w(&mut s, txe::SEND_CTXT_CREDIT_RETURN_ADDR, CR_ADDR, &mut c);
    w(&mut s, txe::SEND_CTXT_CREDIT_CTRL, threshold, &mut c);
    w(&mut s, txe::SEND_CTXT_CHECK_VL, 1 << 15, &mut c);
    s.pio_init(&mut c);
    let en = txe::SEND_CTXT_CTRL_CTXT_DEPTH.encode(depth) | 1;
    w(&mut s, txe::SEND_CTXT_CTRL, en, &mut c);
    s
}

/// A PSM-like packet: LRH (LNH = BTH, PktLen), BTH opcode 0xC1, then `payload` bytes of
/// header+payload filler; returns (PBC, bytes after the PBC).
pub(crate) fn psm_packet(vl: u64, body_len: usize, seed: u8) -> (u64, Vec<u8>) {
    assert!(body_len >= 12 && body_len % 4 == 0);
    let mut b: Vec<u8> = (0..body_len).map(|i| (i as u8).wrapping_mul(7) ^ seed).collect();
    let pkt_len_dws = (body_len / 4 + 1) as u16; // + ICRC
    b[0] = 0;
    b[1] = wire::LRH_LNH_BTH as u8;
    b[4..6].copy_from_slice(&pkt_len_dws.to_be_bytes());
    b[8] = 0xC1;
    let pbc = wire::PBC_LENGTH_DWS.encode((8 + body_len as u64) / 4) | wire::PBC_VL.encode(vl);
    (pbc, b)
}

/// Writes a packet as PSM's ips_spio_transfer_frame does (`psm_hal_gen1_spio.c` 802-917):
/// SOP block through the SOP alias, whole blocks, wrap at `depth`, zero padding.
/// Returns the next block index.
pub(crate) fn psm_write(
    s: &mut SendContext,
    c: &mut TxCounters,
    now: SimTime,
    block: u64,
    pbc: u64,
    body: &[u8],
    out: &mut Vec<TxEffect>,
) -> u64 {
    let depth = s.depth();
    let mut bytes = pbc.to_le_bytes().to_vec();
    bytes.extend_from_slice(body);
    bytes.resize(bytes.len().div_ceil(64) * 64, 0);
    let mut b = block;
    for (i, blk) in bytes.chunks(64).enumerate() {
        for (j, q) in blk.chunks(8).enumerate() {
            let v = u64::from_le_bytes(q.try_into().unwrap());
            out.extend(s.pio_store(now, i == 0, b * 64 + j as u64 * 8, v, 8, c));
        }
        b = (b + 1) % depth;
    }
    b
}

fn packets(out: &[TxEffect]) -> Vec<&TxPacket> {
    out.iter().filter_map(|e| if let TxEffect::Packet(p) = e { Some(p) } else { None }).collect()
}

fn credit_words(out: &[TxEffect]) -> Vec<(u64, u64)> {
    out.iter()
        .filter_map(|e| match e {
            TxEffect::DmaWrite { addr, value, .. } => Some((*addr, *value)),
            _ => None,
        })
        .collect()
}

/// PSM's SOP block + payload blocks come out as one packet without its PBC, and a
/// threshold return carries the freed-block counter to `cr[hw & 7]` (`pio.c` 519-527).
#[test]
fn psm_packet_is_assembled_and_credits_return_at_threshold() {
    let mut s = hfi1_user_context(157, 64, 4);
    let mut c = TxCounters::default();
    let mut out = vec![];
    let (pbc, body) = psm_packet(0, 56 + 100, 1);
    let next = psm_write(&mut s, &mut c, SimTime(5), 0, pbc, &body, &mut out);
    assert_eq!(next, 3); // 8 + 156 = 164 bytes: 3 blocks
    let p = packets(&out);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].bytes, body);
    assert_eq!(p[0].pbc, pbc);
    assert_eq!(p[0].source, TxSource::Pio { ctxt: 157 });
    assert_eq!(p[0].ready, SimTime(5));
    // 3 blocks freed, threshold 4: nothing returned yet.
    assert!(credit_words(&out).is_empty());
    assert_eq!(s.credits().counter(), 3);
    let mut out2 = vec![];
    psm_write(&mut s, &mut c, SimTime(6), 3, pbc, &body, &mut out2);
    let w = credit_words(&out2);
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].0, CR_ADDR + 8 * (157 & 7));
    assert_eq!(CR_COUNTER.get(w[0].1), 6);
    assert_eq!(w[0].1 & CR_DUE_TO_THRESHOLD.smask(), CR_DUE_TO_THRESHOLD.smask());
    assert_eq!(c.tx_pio_error_count, 0);
    s.check_invariants().unwrap();
}

/// The ring wraps at CtxtDepth blocks, on a block boundary (`pio_copy.c` pio_copy;
/// `pio.c` 1458-1461).
#[test]
fn packet_wraps_at_the_ring_end() {
    let mut s = hfi1_user_context(3, 10, 0);
    let mut c = TxCounters::default();
    let mut out = vec![];
    let (pbc, body) = psm_packet(1, 56 + 200, 9);
    let next = psm_write(&mut s, &mut c, SimTime(1), 8, pbc, &body, &mut out);
    assert_eq!(next, 3); // 264 bytes = 5 blocks: 8, 9, 0, 1, 2
    assert_eq!(packets(&out).len(), 1);
    assert_eq!(packets(&out)[0].bytes, body);
    assert_eq!(packets(&out)[0].vl(), 1);
    s.check_invariants().unwrap();
}

/// 4-byte halves combine in either order (`docs/transmit.md`: the transport can split
/// 8-byte stores).
#[test]
fn halves_combine_in_either_order() {
    let mut s = hfi1_user_context(0, 16, 0);
    let mut c = TxCounters::default();
    let (pbc, body) = psm_packet(0, 56, 3);
    let mut bytes = pbc.to_le_bytes().to_vec();
    bytes.extend_from_slice(&body);
    let mut out = vec![];
    for (i, q) in bytes.chunks(8).enumerate() {
        let lo = u64::from(u32::from_le_bytes(q[..4].try_into().unwrap()));
        let hi = u64::from(u32::from_le_bytes(q[4..].try_into().unwrap()));
        let off = i as u64 * 8;
        if i % 2 == 0 {
            out.extend(s.pio_store(SimTime(0), true, off, lo, 4, &mut c));
            out.extend(s.pio_store(SimTime(0), true, off + 4, hi, 4, &mut c));
        } else {
            out.extend(s.pio_store(SimTime(0), true, off + 4, hi, 4, &mut c));
            out.extend(s.pio_store(SimTime(0), true, off, lo, 4, &mut c));
        }
    }
    assert_eq!(packets(&out).len(), 1);
    assert_eq!(packets(&out)[0].bytes, body);
    assert_eq!(c.tx_pio_store_count, 8);
}

/// A 64-byte store (one whole block) is taken; a 16-byte store crossing a block is a
/// PioWriteCrossesBoundary error.
#[test]
fn wide_stores() {
    let mut s = hfi1_user_context(0, 16, 0);
    let mut c = TxCounters::default();
    let (pbc, body) = psm_packet(0, 56, 3);
    let mut bytes = pbc.to_le_bytes().to_vec();
    bytes.extend_from_slice(&body);
    let out = s.pio_write(SimTime(0), true, 64, &bytes, &mut c);
    assert_eq!(packets(&out).len(), 1);
    let out = s.pio_write(SimTime(0), false, 56, &[0; 16], &mut c);
    assert!(s.halted());
    assert_eq!(
        s.read_csr(txe::SEND_CTXT_ERR_STATUS),
        Some(txe::SEND_CTXT_ERR_STATUS_PIO_WRITE_CROSSES_BOUNDARY.smask())
    );
    assert!(out.iter().any(|e| matches!(e, TxEffect::Interrupt { source: 32, .. })));
}

/// A store outside an open packet halts the context: ERR_STATUS bit, source 32 + ctxt,
/// CtxtHalted, and a credit return with Status (`chip.c` 5945-6003; PSM spio.c 468-470).
#[test]
fn stray_store_halts_and_reports() {
    let mut s = hfi1_user_context(150, 16, 0);
    let mut c = TxCounters::default();
    let out = s.pio_store(SimTime(7), false, 64, 1, 8, &mut c);
    assert!(s.halted());
    assert_eq!(s.read_csr(txe::SEND_CTXT_STATUS), Some(1));
    assert_eq!(
        s.read_csr(txe::SEND_CTXT_ERR_STATUS),
        Some(txe::SEND_CTXT_ERR_STATUS_PIO_INCONSISTENT_SOP.smask())
    );
    assert_eq!(out[0], TxEffect::Interrupt { time: SimTime(7), source: 32 + 150 });
    let w = credit_words(&out);
    assert_eq!(w.len(), 1);
    assert_eq!(CR_STATUS.get(w[0].1), 1);
    // Further stores are dropped; sc_restart: disable, clear errors, PIO init, enable.
    assert!(s.pio_store(SimTime(8), true, 0, 0, 8, &mut c).is_empty());
    assert_eq!(c.tx_pio_halted_drops, 1);
    let ctrl = s.read_csr(txe::SEND_CTXT_CTRL).unwrap();
    s.write_csr(SimTime(9), txe::SEND_CTXT_CTRL, ctrl & !1, &mut c);
    s.write_csr(SimTime(9), txe::SEND_CTXT_ERR_CLEAR, u64::MAX, &mut c);
    s.pio_init(&mut c);
    s.write_csr(SimTime(9), txe::SEND_CTXT_CTRL, ctrl, &mut c);
    assert!(!s.halted());
    assert_eq!(s.read_csr(txe::SEND_CTXT_ERR_STATUS), Some(0));
    // file_ops.c ctxt_reset ends with a forced return: counter 0, Status 0 (PSM asserts it,
    // psm_hal_gen1_spio.c 337-345).
    let out = s.write_csr(SimTime(10), txe::SEND_CTXT_CREDIT_FORCE, 1, &mut c).unwrap();
    let w = credit_words(&out);
    assert_eq!(w, vec![(CR_ADDR + 8 * (150 & 7), CR_DUE_TO_FORCE_BIT)]);
    s.check_invariants().unwrap();
}
const CR_DUE_TO_FORCE_BIT: u64 = 1 << 15;

/// A packet larger than the ring, or one landing on an open packet, overflows.
#[test]
fn overflow_is_an_error() {
    let mut s = hfi1_user_context(1, 4, 0);
    let mut c = TxCounters::default();
    let big = wire::PBC_LENGTH_DWS.encode(5 * 16);
    s.pio_store(SimTime(0), true, 0, big, 8, &mut c);
    assert_eq!(
        s.read_csr(txe::SEND_CTXT_ERR_STATUS),
        Some(txe::SEND_CTXT_ERR_STATUS_PIO_WRITE_OVERFLOW.smask())
    );
    let mut s = hfi1_user_context(1, 4, 0);
    let three = wire::PBC_LENGTH_DWS.encode(3 * 16);
    s.pio_store(SimTime(0), true, 0, three, 8, &mut c);
    // A second SOP at block 3 claiming 3 blocks wraps onto blocks 0 and 1.
    s.pio_store(SimTime(0), true, 3 * 64, three, 8, &mut c);
    assert!(s.halted());
    assert_eq!(
        s.read_csr(txe::SEND_CTXT_ERR_STATUS),
        Some(txe::SEND_CTXT_ERR_STATUS_PIO_WRITE_OVERFLOW.smask())
    );
}

/// PBC.CreditReturn asks for a return when the packet's blocks are freed (`chip.h` 56).
#[test]
fn pbc_credit_return_bit() {
    let mut s = hfi1_user_context(2, 32, 0);
    let mut c = TxCounters::default();
    let (pbc, body) = psm_packet(0, 56, 0);
    let mut out = vec![];
    psm_write(
        &mut s,
        &mut c,
        SimTime(0),
        0,
        pbc | wire::PBC_CREDIT_RETURN.smask(),
        &body,
        &mut out,
    );
    let w = credit_words(&out);
    assert_eq!(w.len(), 1);
    assert_eq!(CR_COUNTER.get(w[0].1), 1);
    assert_eq!(w[0].1 & CR_DUE_TO_PBC.smask(), CR_DUE_TO_PBC.smask());
}

/// Checks: VL15 on a user context (`pio.c` 791-795) and a non-PSM opcode
/// (`hfi.h` USER_OPCODE_CHECK_VAL/MASK 0xC0) are PioDisallowedPacket; a PBC length that
/// disagrees with LRH.PktLen too.
#[test]
fn disallowed_packets() {
    for case in 0..3 {
        let mut s = hfi1_user_context(4, 32, 0);
        let mut c = TxCounters::default();
        let (mut pbc, mut body) = psm_packet(0, 64, 0);
        match case {
            0 => pbc = wire::PBC_VL.set(pbc, 15),
            1 => body[8] = 0x64,
            _ => body[5] ^= 1,
        }
        let mut out = vec![];
        psm_write(&mut s, &mut c, SimTime(0), 0, pbc, &body, &mut out);
        assert!(packets(&out).is_empty(), "case {case}");
        assert_eq!(
            s.read_csr(txe::SEND_CTXT_ERR_STATUS),
            Some(txe::SEND_CTXT_ERR_STATUS_PIO_DISALLOWED_PACKET.smask()),
            "case {case}"
        );
        assert_eq!(c.tx_pio_disallowed_count, 1);
    }
}

/// A disabled context drops stores; enabling restarts the counter at 0 (`pio.c` 1266).
#[test]
fn disabled_context_drops_and_enable_resets_counter() {
    let mut s = hfi1_user_context(5, 32, 1);
    let mut c = TxCounters::default();
    let (pbc, body) = psm_packet(0, 56, 0);
    let mut out = vec![];
    psm_write(&mut s, &mut c, SimTime(0), 0, pbc, &body, &mut out);
    assert_eq!(s.credits().counter(), 1);
    let ctrl = s.read_csr(txe::SEND_CTXT_CTRL).unwrap();
    s.write_csr(SimTime(1), txe::SEND_CTXT_CTRL, ctrl & !1, &mut c);
    assert!(s.pio_store(SimTime(1), true, 0, pbc, 8, &mut c).is_empty());
    assert_eq!(c.tx_pio_disabled_drops, 1);
    s.write_csr(SimTime(2), txe::SEND_CTXT_CTRL, ctrl, &mut c);
    assert_eq!(s.credits().counter(), 0);
    assert_eq!(s.read_csr(txe::SEND_CTXT_CREDIT_STATUS), Some(0));
}

/// SendCredit (576 + ctxt) follows every return while CreditIntr is set
/// (`pio.c` sc_add_credit_return_intr 1510-1524; `chip.c` is_send_credit_int).
#[test]
fn credit_interrupt() {
    let mut s = hfi1_user_context(6, 32, 0);
    let mut c = TxCounters::default();
    let intr = txe::SEND_CTXT_CREDIT_CTRL_CREDIT_INTR.smask();
    s.write_csr(SimTime(0), txe::SEND_CTXT_CREDIT_CTRL, intr, &mut c);
    let out = s.write_csr(SimTime(3), txe::SEND_CTXT_CREDIT_FORCE, 1, &mut c).unwrap();
    assert!(out.contains(&TxEffect::Interrupt { time: SimTime(3), source: 576 + 6 }));
    assert_eq!(c.tx_credit_intr_count, 1);
}

/// Unknown offsets are not decoded; read-only ones ignore writes.
#[test]
fn csr_decode() {
    let mut s = SendContext::new(0, TxTiming::functional());
    let mut c = TxCounters::default();
    assert_eq!(s.read_csr(0x30), None);
    assert_eq!(s.write_csr(SimTime(0), 0x30, 1, &mut c), None);
    assert_eq!(s.write_csr(SimTime(0), txe::SEND_CTXT_STATUS, 1, &mut c), Some(vec![]));
    assert_eq!(c.tx_csr_read_only_write_count, 1);
    assert_eq!(s.read_csr(txe::SEND_CTXT_STATUS), Some(0));
    assert_eq!(s.egress_status(), 0);
}

/// With timing, the packet is ready pio_launch_cycles after its last store and the credit
/// return goes out then.
#[test]
fn launch_delay() {
    let mut s = hfi1_user_context(7, 32, 1);
    s.set_timing(TxTiming::default());
    let mut c = TxCounters::default();
    let (pbc, body) = psm_packet(0, 56, 0);
    let mut out = vec![];
    psm_write(&mut s, &mut c, SimTime(1000), 0, pbc, &body, &mut out);
    let ready = SimTime(1000 + TxTiming::default().pio_launch_ps());
    assert_eq!(packets(&out)[0].ready, ready);
    assert!(out.iter().all(|e| e.time() == ready));
}

#[derive(Clone, Debug)]
enum Op {
    Csr(u64, u64),
    Store { sop: bool, off: u64, len: usize, value: u64 },
    Wide { sop: bool, off: u64, len: usize },
    Packet { body_dws: usize, vl: u64 },
    Init,
}

fn op() -> impl Strategy<Value = Op> {
    let regs = prop::sample::select(vec![
        0x00u64, 0x08, 0x10, 0x18, 0x20, 0x28, 0x40, 0x48, 0x50, 0x80, 0x88, 0xA8, 0x30,
    ]);
    prop_oneof![
        (regs, any::<u64>()).prop_map(|(r, v)| Op::Csr(r, v)),
        (
            any::<bool>(),
            0u64..0x1_0100,
            prop::sample::select(vec![1usize, 2, 4, 8, 8, 8]),
            any::<u64>()
        )
            .prop_map(|(sop, off, len, value)| Op::Store { sop, off, len, value }),
        (any::<bool>(), 0u64..0x1_0000, prop::sample::select(vec![16usize, 24, 32, 64]))
            .prop_map(|(sop, off, len)| Op::Wide { sop, off: off & !7, len }),
        (3usize..700, 0u64..16).prop_map(|(body_dws, vl)| Op::Packet { body_dws, vl }),
        Just(Op::Init),
    ]
}

proptest! {
    /// Random CSR writes and PIO stores never panic and leave the context consistent.
    #[test]
    fn random_accesses_keep_the_context_consistent(ops in prop::collection::vec(op(), 1..120)) {
        let mut s = hfi1_user_context(9, 64, 8);
        let mut c = TxCounters::default();
        let mut next_block = 0u64;
        for (i, o) in ops.into_iter().enumerate() {
            let now = SimTime(i as u64);
            let out = match o {
                Op::Csr(r, v) => s.write_csr(now, r, v, &mut c).unwrap_or_default(),
                Op::Store { sop, off, len, value } => s.pio_store(now, sop, off, value, len, &mut c),
                Op::Wide { sop, off, len } => s.pio_write(now, sop, off, &vec![0xA5; len], &mut c),
                Op::Packet { body_dws, vl } => {
                    let (pbc, body) = psm_packet(vl, body_dws * 4, i as u8);
                    let mut out = vec![];
                    let depth = s.depth();
                    if depth > 0 {
                        next_block = psm_write(&mut s, &mut c, now, next_block % depth, pbc, &body, &mut out);
                    }
                    out
                }
                Op::Init => { s.pio_init(&mut c); vec![] }
            };
            for e in &out {
                prop_assert!(e.time() >= now);
                if let TxEffect::DmaWrite { addr, value, .. } = e {
                    prop_assert_eq!(addr % 8, 0);
                    prop_assert_eq!(value & !0xFFFF, 0);
                }
            }
            if let Err(e) = s.check_invariants() {
                return Err(TestCaseError::fail(e));
            }
        }
    }

    /// Well-formed PSM traffic comes out packet for packet, and the credit counter is the
    /// number of blocks sent mod 2048.
    #[test]
    fn psm_stream_roundtrips(sizes in prop::collection::vec((5usize..400, 0u64..8), 1..60)) {
        let mut s = hfi1_user_context(11, 100, 30);
        let mut c = TxCounters::default();
        let mut block = 0;
        let mut blocks = 0u64;
        let mut last_word = None;
        for (i, (dws, vl)) in sizes.iter().enumerate() {
            let (pbc, body) = psm_packet(*vl, dws * 4, i as u8);
            let mut out = vec![];
            block = psm_write(&mut s, &mut c, SimTime(i as u64), block, pbc, &body, &mut out);
            blocks += (8 + body.len() as u64).div_ceil(64);
            let p = packets(&out);
            prop_assert_eq!(p.len(), 1);
            prop_assert_eq!(&p[0].bytes, &body);
            if let Some((_, w)) = credit_words(&out).last() { last_word = Some(*w); }
        }
        prop_assert_eq!(c.tx_pio_error_count, 0);
        prop_assert_eq!(s.credits().counter(), blocks % 2048);
        if let Some(w) = last_word {
            prop_assert!(CR_COUNTER.get(w) <= blocks % 2048 || blocks >= 2048);
        }
    }
}
