//! Tests of the parent module.

use super::*;
use hfi_abi::sdma::{SdmaDesc, DESC1_HEAD_TO_HOST, DESC1_INT_REQ};
use hfi_abi::wire;
use proptest::prelude::*;
use vm_memory::GuestMemoryMmap;

const RING: u64 = 0x1_0000;
const HEAD_ADDR: u64 = 0x8_0000;
const DATA: u64 = 0x10_0000;

fn memory() -> GuestMemoryMmap<()> {
    GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x40_0000)]).unwrap()
}

/// sdma_sendctrl's value for an op set (`sdma.c` 1899-1946).
fn op(p: u64, e: bool, i: bool, h: bool, cl: bool) -> u64 {
    let f = |on, f: Field| if on { f.smask() } else { 0 };
    let keep = p & !(txe::SEND_DMA_CTRL_SDMA_ENABLE.smask()
        | txe::SEND_DMA_CTRL_SDMA_INT_ENABLE.smask()
        | txe::SEND_DMA_CTRL_SDMA_HALT.smask());
    keep | f(e, txe::SEND_DMA_CTRL_SDMA_ENABLE)
        | f(i, txe::SEND_DMA_CTRL_SDMA_INT_ENABLE)
        | f(h, txe::SEND_DMA_CTRL_SDMA_HALT)
        | f(cl, txe::SEND_DMA_CTRL_SDMA_CLEANUP)
}

/// hfi1's side of one engine: init_sdma_regs, the start-up state machine, submit_tx with
/// add_gen and the tail write (`sdma.c` 2009-2039, 2518-2975, 2239-2310, 1967-1972).
struct Hfi1 {
    e: SdmaEngine,
    c: TxCounters,
    mem: GuestMemoryMmap<()>,
    cnt: u64,
    /// hfi1's free-running descq_tail.
    descq_tail: u64,
    ctrl: u64,
    data_at: u64,
    out: Vec<TxEffect>,
    /// The time of hfi1's CSR writes.
    now: SimTime,
}

impl Hfi1 {
    fn new(idx: u32, cnt: u64, idle_cnt: u64) -> Self {
        let mut h = Hfi1 {
            e: SdmaEngine::new(idx, TxTiming::functional()),
            c: TxCounters::default(),
            mem: memory(),
            cnt,
            descq_tail: 0,
            ctrl: 0,
            data_at: DATA,
            out: vec![],
            now: SimTime::ZERO,
        };
        h.w(txe::SEND_DMA_BASE_ADDR, RING);
        h.setlengen();
        h.w(txe::SEND_DMA_TAIL, 0);
        h.w(txe::SEND_DMA_RELOAD_CNT, idle_cnt);
        h.w(txe::SEND_DMA_DESC_CNT, 0);
        h.w(txe::SEND_DMA_HEAD_ADDR, HEAD_ADDR);
        h.w(txe::SEND_DMA_ENG_ERR_MASK, u64::MAX);
        h.start_up();
        h
    }
    fn w(&mut self, reg: u64, v: u64) {
        let out = self.e.write_csr(self.now, reg, v, &self.mem, &mut self.c).unwrap();
        self.out.extend(out);
    }
    fn r(&self, reg: u64) -> u64 {
        self.e.read_csr(reg, SimTime(u64::MAX)).unwrap()
    }
    fn sendctrl(&mut self, e: bool, i: bool, hl: bool, cl: bool) {
        let v = op(self.ctrl, e, i, hl, cl);
        self.ctrl = v & !txe::SEND_DMA_CTRL_SDMA_CLEANUP.smask();
        self.w(txe::SEND_DMA_CTRL, v);
    }
    fn setlengen(&mut self) {
        let len = txe::SEND_DMA_LEN_GEN_LENGTH.encode(self.cnt / 64);
        self.w(txe::SEND_DMA_LEN_GEN, len);
        self.w(txe::SEND_DMA_LEN_GEN, len | txe::SEND_DMA_LEN_GEN_GENERATION.encode(4));
    }
    /// s10 → s15 → s20/s99 (halt, poll halted, clean-up, poll cleaned, hw_start_up, run).
    fn start_up(&mut self) {
        self.sendctrl(false, false, true, false);
        assert_eq!(self.r(txe::SEND_DMA_STATUS) & txe::SEND_DMA_STATUS_ENG_HALTED.smask(), 1 << 56);
        self.recover_from_halt_wait();
    }
    /// From a halted engine: clean-up, hw_start_up, running (`sdma.c` 506-526, 1978-1995).
    fn recover_from_halt_wait(&mut self) {
        let st = self.r(txe::SEND_DMA_ENG_ERR_STATUS);
        self.w(txe::SEND_DMA_ENG_ERR_CLEAR, st);
        self.sendctrl(false, true, false, true);
        assert_eq!(
            self.r(txe::SEND_DMA_STATUS) & txe::SEND_DMA_STATUS_ENG_CLEANED_UP.smask(),
            1 << 57
        );
        self.descq_tail = 0;
        self.setlengen();
        self.w(txe::SEND_DMA_TAIL, 0);
        self.sendctrl(true, true, false, false);
    }
    /// Writes a packet's descriptors at the tail (hfi1's header descriptor, then pieces of
    /// at most 4096 bytes; HEAD_TO_HOST on the last as default_desc1 does).
    fn post(&mut self, payload: u64, last_flags: u64) -> Vec<u8> {
        let total = 64 + payload;
        let pbc = wire::PBC_LENGTH_DWS.encode(total / 4);
        let mut bytes = pbc.to_le_bytes().to_vec();
        bytes.extend((8..total).map(|i| (i as u8) ^ (self.descq_tail as u8)));
        let at = self.data_at;
        self.mem.write_slice(&bytes, GuestAddress(at)).unwrap();
        self.data_at = DATA + (self.data_at - DATA + total.next_multiple_of(64)) % 0x20_0000;
        let mut pieces = vec![(at, 64)];
        let mut off = 64;
        while off < total {
            let n = (total - off).min(4096);
            pieces.push((at + off, n));
            off += n;
        }
        let np = pieces.len();
        for (k, (a, n)) in pieces.into_iter().enumerate() {
            let gen = (self.descq_tail / self.cnt) & 3;
            let mut d = SdmaDesc::new(a, n, k == 0, k + 1 == np, gen);
            if k + 1 == np {
                d = d.with_qw1(last_flags);
            }
            let idx = self.descq_tail % self.cnt;
            self.mem.write_slice(&d.to_le_bytes(), GuestAddress(RING + 16 * idx)).unwrap();
            self.descq_tail += 1;
        }
        bytes.split_off(8)
    }
    fn ring_tail(&mut self) {
        let t = self.descq_tail % self.cnt;
        self.w(txe::SEND_DMA_TAIL, t);
    }
    fn take(&mut self) -> Vec<TxEffect> {
        std::mem::take(&mut self.out)
    }
}

fn packets(out: &[TxEffect]) -> Vec<&TxPacket> {
    out.iter().filter_map(|e| if let TxEffect::Packet(p) = e { Some(p) } else { None }).collect()
}

fn sources(out: &[TxEffect]) -> Vec<u64> {
    out.iter()
        .filter_map(
            |e| {
                if let TxEffect::Interrupt { source, .. } = e {
                    Some(*source)
                } else {
                    None
                }
            },
        )
        .collect()
}

/// The former `sdma.rs` start-up test, unchanged in substance: s10 halt → halt error,
/// s15 clean-up (the action bit does not stick), s20 idle, s99 running
/// (`sdma.c` 2518-2975, action table 114-188).
#[test]
fn hfi1_engine_start_up() {
    let mem = memory();
    let mut c = TxCounters::default();
    let mut e = SdmaEngine::new(0, TxTiming::functional());
    let t = SimTime::ZERO;
    e.write_csr(t, txe::SEND_DMA_ENG_ERR_MASK, u64::MAX, &mem, &mut c);
    assert_eq!(e.status(), 0);
    let out = e.write_csr(t, txe::SEND_DMA_CTRL, op(0, false, false, true, false), &mem, &mut c);
    assert_eq!(out, Some(vec![TxEffect::Interrupt { time: t, source: 16 }]));
    assert_eq!(txe::SEND_DMA_STATUS_ENG_HALTED.get(e.status()), 1);
    assert_eq!(e.err_status(), txe::SEND_DMA_ENG_ERR_STATUS_SDMA_HALT_ERR.smask());
    e.write_csr(t, txe::SEND_DMA_ENG_ERR_CLEAR, u64::MAX, &mem, &mut c);
    assert_eq!(e.err_status(), 0);
    let mut ctrl = e.read_csr(txe::SEND_DMA_CTRL, t).unwrap();
    e.write_csr(t, txe::SEND_DMA_CTRL, op(ctrl, false, true, false, true), &mem, &mut c);
    ctrl = e.read_csr(txe::SEND_DMA_CTRL, t).unwrap();
    assert_eq!(txe::SEND_DMA_CTRL_SDMA_CLEANUP.get(ctrl), 0, "the action bit does not stick");
    assert_eq!(txe::SEND_DMA_STATUS_ENG_CLEANED_UP.get(e.status()), 1);
    assert_eq!(txe::SEND_DMA_STATUS_ENG_HALTED.get(e.status()), 0);
    e.write_csr(t, txe::SEND_DMA_CTRL, op(ctrl, false, true, false, false), &mem, &mut c);
    assert_eq!(txe::SEND_DMA_STATUS_ENG_CLEANED_UP.get(e.status()), 1);
    let run = op(ctrl, true, true, false, false);
    e.write_csr(t, txe::SEND_DMA_CTRL, run, &mem, &mut c);
    assert_eq!(e.read_csr(txe::SEND_DMA_CTRL, t), Some(run));
    assert_eq!(e.status(), 0, "running: neither halted nor cleaned up");
    assert!(e.running());
}

/// User SDMA packets (64-byte header + page pieces, `user_sdma.c` 689/1513) go out in
/// order; the head passes them, is written back for HEAD_TO_HOST and the idle interrupt
/// (224 + engine) follows (`sdma.c` 1365-1371, 1784-1845).
#[test]
fn packets_head_and_idle_interrupt() {
    let mut h = Hfi1::new(3, 2048, 201);
    h.take();
    let b1 = h.post(4096, DESC1_HEAD_TO_HOST.smask());
    let b2 = h.post(10_000, DESC1_HEAD_TO_HOST.smask());
    h.ring_tail();
    let out = h.take();
    let p = packets(&out);
    assert_eq!(p.len(), 2);
    assert_eq!(p[0].bytes, b1);
    assert_eq!(p[1].bytes, b2);
    assert_eq!(p[1].source, TxSource::Sdma { engine: 3 });
    assert_eq!(h.r(txe::SEND_DMA_HEAD), 2 + 4);
    let heads: Vec<_> = out
        .iter()
        .filter_map(|e| match e {
            TxEffect::DmaWrite { addr, value, .. } => Some((*addr, *value)),
            _ => None,
        })
        .collect();
    assert_eq!(heads, vec![(HEAD_ADDR, 2), (HEAD_ADDR, 6)]);
    assert_eq!(sources(&out), vec![224 + 3], "DESC_CNT 0: no progress interrupt");
    assert_eq!(h.c.tx_sdma_desc_count, 6);
    assert_eq!(h.r(txe::SEND_DMA_DESC_FETCHED_CNT), 6);
    h.e.check_invariants().unwrap();
}

/// DESC_CNT descriptors → SDmaProgress (208 + engine); INT_REQ → SDma (192 + engine);
/// SDmaIntEnable off → neither (`chip.c` is_sdma_eng_int 8135-8155).
#[test]
fn progress_and_int_req_interrupts() {
    let mut h = Hfi1::new(1, 64, 0);
    h.w(txe::SEND_DMA_DESC_CNT, 4);
    h.take();
    for _ in 0..4 {
        h.post(0, 0);
    }
    h.post(0, DESC1_INT_REQ.smask());
    h.ring_tail();
    let out = h.take();
    assert_eq!(sources(&out), vec![208 + 1, 192 + 1], "RELOAD_CNT 0: no idle interrupt");
    h.sendctrl(true, false, false, false);
    h.post(0, DESC1_INT_REQ.smask());
    h.ring_tail();
    assert!(sources(&h.take()).is_empty());
    assert_eq!(packets(&h.out).len(), 0);
}

/// Many laps of a 64-entry ring: the generation follows hfi1's add_gen
/// (`sdma.c` 2239-2247) and every packet comes out.
#[test]
fn generations_over_many_laps() {
    let mut h = Hfi1::new(0, 64, 10);
    h.take();
    let mut sent = 0;
    for round in 0..40 {
        let mut want = vec![];
        for k in 0..(round % 7 + 1) {
            want.push(h.post(64 * k, 0));
        }
        h.ring_tail();
        let out = h.take();
        let got: Vec<_> = packets(&out).into_iter().map(|p| p.bytes.clone()).collect();
        assert_eq!(got, want, "round {round}");
        sent += want.len();
    }
    assert_eq!(h.c.tx_sdma_packet_count, sent as u64);
    assert_eq!(h.c.tx_sdma_error_count, 0);
    assert_eq!(h.r(txe::SEND_DMA_HEAD), h.descq_tail % 64);
}

/// A stale descriptor halts the engine with SDmaGenMismatchErr and source 16 + engine;
/// hfi1's recovery (halt wait with everything off, HEAD for what completed, clean-up,
/// hw_start_up, running) brings it back (`sdma.c` 1873-1897, 2964-2975, 418-445, 566-611,
/// 506-526, 1978-1995).
#[test]
fn error_halt_and_hfi1_recovery() {
    let mut h = Hfi1::new(2, 64, 10);
    h.take();
    h.post(100 * 4, 0);
    h.post(0, 0);
    // Corrupt the second packet's generation.
    let idx = (h.descq_tail - 1) % 64;
    let mut raw = [0u8; 16];
    h.mem.read_slice(&mut raw, GuestAddress(RING + 16 * idx)).unwrap();
    let d = SdmaDesc::from_le_bytes(raw);
    let bad = SdmaDesc { qw1: hfi_abi::sdma::DESC1_GENERATION.set(d.qw1, 3), ..d };
    h.mem.write_slice(&bad.to_le_bytes(), GuestAddress(RING + 16 * idx)).unwrap();
    h.ring_tail();
    let out = h.take();
    assert_eq!(packets(&out).len(), 1, "the packet before the bad one completes");
    assert_eq!(sources(&out), vec![16 + 2]);
    assert!(h.e.halted());
    assert_eq!(
        h.r(txe::SEND_DMA_ENG_ERR_STATUS),
        txe::SEND_DMA_ENG_ERR_STATUS_SDMA_GEN_MISMATCH_ERR.smask()
    );
    assert_eq!(h.r(txe::SEND_DMA_ENG_ERR_STATUS) & !txe::SDMA_ENG_HALT_ERRS, 0);
    // s50: everything off; the halt stays (sdma_err_halt_wait polls EngHalted).
    h.sendctrl(false, false, false, false);
    assert_eq!(txe::SEND_DMA_STATUS_ENG_HALTED.get(h.r(txe::SEND_DMA_STATUS)), 1);
    // s30: the software clean-up reads the hardware head: the first packet (2 descs).
    assert_eq!(h.r(txe::SEND_DMA_HEAD), 2);
    h.recover_from_halt_wait();
    assert_eq!(h.r(txe::SEND_DMA_HEAD), 0, "a hardware clean resets the head");
    assert!(h.e.running());
    let b = h.post(64, 0);
    h.ring_tail();
    let out = h.take();
    assert_eq!(packets(&out).len(), 1);
    assert_eq!(packets(&out)[0].bytes, b);
    assert_eq!(h.c.tx_sdma_error_count, 1);
    h.e.check_invariants().unwrap();
}

/// TAIL beyond the ring → SDmaTailOutOfBoundsErr; unbacked memory → SDmaMemReadErr; both
/// are in hfi1's ALL_SDMA_ENG_HALT_ERRS (`sdma.c` 50-62), so the recovery of
/// `sdma.c` 1873-1897 applies.
#[test]
fn tail_out_of_bounds_and_unbacked_memory() {
    let mut h = Hfi1::new(0, 64, 0);
    h.take();
    h.w(txe::SEND_DMA_TAIL, 64);
    assert_eq!(
        h.r(txe::SEND_DMA_ENG_ERR_STATUS),
        txe::SEND_DMA_ENG_ERR_STATUS_SDMA_TAIL_OUT_OF_BOUNDS_ERR.smask()
    );
    h.sendctrl(false, false, false, false);
    h.recover_from_halt_wait();
    let d = SdmaDesc::new(0x100_0000, 64, true, true, 0);
    h.mem.write_slice(&d.to_le_bytes(), GuestAddress(RING)).unwrap();
    h.w(txe::SEND_DMA_TAIL, 1);
    assert_eq!(
        h.r(txe::SEND_DMA_ENG_ERR_STATUS),
        txe::SEND_DMA_ENG_ERR_STATUS_SDMA_MEM_READ_ERR.smask()
    );
    assert_eq!(h.c.tx_sdma_mem_read_fails, 1);
    assert!(packets(&h.take()).is_empty());
}

/// A TAIL inside a packet (before its LAST) waits; the packet goes once the rest is
/// posted (hfi1 moves TAIL only past whole requests, `sdma.c` submit_tx 2265-2310 and
/// sdma_update_tail 1967-1972, so this is a robustness case). A TAIL written while
/// disabled is taken at the enable (s20 idle → s99 running, `sdma.c` action table 114-188).
#[test]
fn partial_packet_and_tail_before_enable() {
    let mut h = Hfi1::new(0, 64, 0);
    h.take();
    h.post(8192, 0); // 3 descriptors
    h.w(txe::SEND_DMA_TAIL, 2);
    assert!(packets(&h.take()).is_empty());
    assert_eq!(h.r(txe::SEND_DMA_HEAD), 0);
    h.ring_tail();
    assert_eq!(packets(&h.take()).len(), 1);
    h.sendctrl(false, true, false, false);
    h.post(0, 0);
    h.ring_tail();
    assert!(packets(&h.take()).is_empty());
    h.sendctrl(true, true, false, false);
    assert_eq!(packets(&h.take()).len(), 1);
}

/// With timing: the first packet of a burst pays the descriptor fetch and the read
/// latency; the head moves at each packet's ready time (`sdma.c` sdma_make_progress
/// 1784-1845 reads HEAD; costs from `shared/reference/timing-params.md` §1a, see
/// [`TxTiming`]).
#[test]
fn timing_and_head_visibility() {
    let mut h = Hfi1::new(0, 64, 201);
    let tm = TxTiming::default();
    h.e.set_timing(tm);
    h.take();
    h.post(4032, 0); // 4096 bytes, 2 descriptors
    h.post(4032, 0);
    let now = SimTime(1_000_000);
    let tail = h.descq_tail % 64;
    let out = h.e.write_tail(now, tail, &h.mem, &mut h.c);
    let p = packets(&out);
    let per = tm.read_ps(4096) + tm.cycles_ps(tm.sdma_packet_cycles + 2 * tm.sdma_desc_cycles);
    let first = now.plus(tm.sdma_desc_fetch_ps + tm.pcie_read_latency_ps + per);
    assert_eq!(p[0].ready, first);
    assert_eq!(p[1].ready, first.plus(per));
    assert_eq!(h.e.read_head(now), 0);
    assert_eq!(h.e.read_head(first), 2);
    assert_eq!(h.e.read_head(first.plus(per)), 4);
    let idle = out.iter().find(|e| matches!(e, TxEffect::Interrupt { source: 224, .. }));
    assert_eq!(idle.map(TxEffect::time), Some(first.plus(per).plus(201 * 1242)));
}

#[derive(Clone, Debug)]
enum Op {
    Csr(u64, u64),
    Desc(u64, u64, u64),
    Tail(u64),
    Post(u64),
    Recover,
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let regs = prop::sample::select(vec![
        0x00u64, 0x08, 0x10, 0x18, 0x20, 0x28, 0x30, 0x48, 0x50, 0x60, 0x68, 0x70, 0x80, 0xB0,
        0x58, 0xC0,
    ]);
    prop_oneof![
        (regs, any::<u64>()).prop_map(|(r, v)| Op::Csr(r, v)),
        (0u64..80, any::<u64>(), any::<u64>()).prop_map(|(i, a, b)| Op::Desc(i, a, b)),
        (0u64..80).prop_map(Op::Tail),
        (0u64..9000).prop_map(|n| Op::Post(n & !3)),
        Just(Op::Recover),
    ]
}

proptest! {
    /// Random CSR writes, random descriptors and tails never panic and leave the engine
    /// consistent: every effect at or after the access, every packet's PBC length equal
    /// to its bytes, the head inside the ring whenever packets went out, and a halted
    /// engine sends nothing until a clean-up (`sdma.c` 2782-2800: hfi1 reads the head of a
    /// halted engine and expects it to stay).
    #[test]
    fn random_rings_keep_the_engine_consistent(ops in prop::collection::vec(op_strategy(), 1..80)) {
        let mut h = Hfi1::new(5, 64, 3);
        h.take();
        for (i, o) in ops.into_iter().enumerate() {
            let now = SimTime(i as u64);
            h.now = now;
            let was_halted = h.e.halted();
            let head_before = h.e.read_head(now);
            let cleans = match &o {
                Op::Recover => true,
                Op::Csr(r, v) => *r == txe::SEND_DMA_CTRL && txe::SEND_DMA_CTRL_SDMA_CLEANUP.get(*v) == 1,
                _ => false,
            };
            let out = match o {
                Op::Csr(r, v) => h.e.write_csr(now, r, v, &h.mem, &mut h.c).unwrap_or_default(),
                Op::Desc(i, a, b) => {
                    let d = SdmaDesc { qw0: a & !(0xFFF << 36) | (a & 0x3F), qw1: b };
                    h.mem.write_slice(&d.to_le_bytes(), GuestAddress(RING + 16 * i)).unwrap();
                    vec![]
                }
                Op::Tail(t) => h.e.write_tail(now, t, &h.mem, &mut h.c),
                Op::Post(n) => { h.post(n, DESC1_HEAD_TO_HOST.smask()); vec![] }
                Op::Recover => {
                    h.sendctrl(false, false, false, false);
                    h.recover_from_halt_wait();
                    h.take()
                }
            };
            let sent = packets(&out).len();
            for e in &out {
                prop_assert!(e.time() >= now);
                if let TxEffect::Packet(p) = e {
                    prop_assert_eq!(wire::PBC_LENGTH_DWS.get(p.pbc) * 4, p.bytes.len() as u64 + 8);
                }
            }
            if was_halted && !cleans {
                prop_assert_eq!(sent, 0, "a halted engine sent");
                prop_assert_eq!(h.e.read_head(now), head_before, "a halted engine's head moved");
            }
            if sent > 0 {
                prop_assert!(h.e.committed_head() < h.e.ring_count(), "head past the ring");
            }
            if let Err(e) = h.e.check_invariants() {
                return Err(TestCaseError::fail(e));
            }
        }
    }

    /// hfi1-like traffic of any sizes comes out byte for byte, in order.
    #[test]
    fn hfi1_traffic_roundtrips(batches in prop::collection::vec(prop::collection::vec(0u64..12_000, 1..6), 1..30)) {
        let mut h = Hfi1::new(7, 128, 50);
        h.take();
        for b in batches {
            let want: Vec<_> = b.iter().map(|n| h.post(n & !3, DESC1_HEAD_TO_HOST.smask())).collect();
            h.ring_tail();
            let out = h.take();
            let got: Vec<_> = packets(&out).into_iter().map(|p| p.bytes.clone()).collect();
            prop_assert_eq!(got, want);
            prop_assert_eq!(h.r(txe::SEND_DMA_HEAD), h.descq_tail % 128);
        }
        prop_assert_eq!(h.c.tx_sdma_error_count, 0);
    }
}
