//! The transmit side behind the MMIO dispatch, driven as hfi1 drives it: a send context
//! (PIO with credit return) and an SDMA engine (descriptor ring) send KDETH packets that, with
//! the link up in LCB loopback, land in a receive context of the same device; a bad descriptor
//! halts the engine with an error interrupt and the device keeps serving; random writes to the
//! transmit CSR blocks and the PIO space never panic.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)] // test code: a panic is a failure

use std::sync::Arc;

use hfi_abi::sdma::{SdmaDesc, DESC1_HEAD_TO_HOST};
use hfi_abi::{bar0, cce, dc, txe, wire, RcvType};
use hfi_model::test_utils::*;
use hfi_model::{Dest, HfiDevice, Peer, PeerConfig};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

type Dev = HfiDevice<Arc<GuestMemoryMmap>>;

const RX_CTXT: u32 = 1;
const SC: u64 = 2;
const CR_ADDR: u64 = 0x90_0000;
const RING: u64 = 0xA0_0000;
const HEAD_ADDR: u64 = 0xA1_0000;
const DATA: u64 = 0xB0_0000;

fn sctxt(c: u64, reg: u64) -> u64 {
    bar0::TXE_PER_CONTEXT.offset(c).unwrap() + reg
}

fn sdma(e: u64, reg: u64) -> u64 {
    bar0::TXE_PER_SDMA.offset(e).unwrap() + reg
}

/// do_8051_command.
fn dc8051_command(d: &mut Dev, ty: u64, data: u64) -> u64 {
    let reg = dc::DC_DC8051_CFG_HOST_CMD_0_REQ_TYPE.encode(ty)
        | dc::DC_DC8051_CFG_HOST_CMD_0_REQ_DATA.encode(data);
    d.write64(dc::DC_DC8051_CFG_HOST_CMD_0, reg);
    d.write64(dc::DC_DC8051_CFG_HOST_CMD_0, reg | dc::DC_DC8051_CFG_HOST_CMD_0_REQ_NEW.smask());
    let r = d.read64(dc::DC_DC8051_CFG_HOST_CMD_1);
    assert_eq!(dc::DC_DC8051_CFG_HOST_CMD_1_COMPLETED.get(r), 1);
    d.write64(dc::DC_DC8051_CFG_HOST_CMD_0, 0);
    dc::DC_DC8051_CFG_HOST_CMD_1_RETURN_CODE.get(r)
}

/// hfi1's do_quick_linkup in LCB loopback (as `hfi1_common::Hfi1::do_quick_linkup`), then
/// the end of the training: the link is up and transmitted packets loop back.
fn link_up_in_lcb_loopback(d: &mut Dev) {
    d.write64(dc::DC_LCB_CFG_RUN, 0);
    d.write64(dc::DC_LCB_CFG_TX_FIFOS_RESET, 1);
    let reg = d.read64(dc::DCC_CFG_RESET);
    d.write64(dc::DCC_CFG_RESET, reg | 0x5);
    d.write64(dc::DCC_CFG_RESET, reg);
    d.write64(dc::DC_LCB_CFG_LOOPBACK, 2);
    d.write64(dc::DC_LCB_CFG_LANE_WIDTH, 0);
    d.write64(dc::DC_LCB_CFG_TX_FIFOS_RESET, 0);
    d.write64(dc::DC_LCB_CFG_RUN, dc::DC_LCB_CFG_RUN_EN.smask());
    assert_ne!(d.read64(dc::DC_LCB_STS_LINK_TRANSFER_ACTIVE), 0);
    d.write64(dc::DC_LCB_CFG_ALLOW_LINK_UP, 1);
    d.write64(dc::DC_LCB_ERR_EN, 0);
    d.write64(dc::DC_DC8051_CFG_CSR_ACCESS_SEL, 0x2);
    let code = dc8051_command(d, dc::hcmd::CHANGE_PHY_STATE, dc::pls::QUICK_LINKUP);
    assert_eq!(code, dc::hcmd_ret::SUCCESS);
    assert!(!d.tx_loopback(), "not before the training ends");
    d.finish_link_training();
    assert!(d.tx_loopback());
}

/// A device with receive context RX_CTXT enabled (KDETH routing) and the link up in LCB
/// loopback. Receive timing is functional; transmit timing is the default (non-zero).
fn device() -> (Dev, CtxtSetup) {
    let mut d = functional_device(4, 1024, 32 << 20).unwrap();
    init_kdeth_qp(&mut d);
    let s = CtxtSetup { one_packet: true, ..CtxtSetup::small(RX_CTXT) };
    enable_context(&mut d, &s);
    link_up_in_lcb_loopback(&mut d);
    (d, s)
}

/// One eager KDETH packet for RX_CTXT: LRH .. payload (no PBC, no ICRC) and its payload.
fn eager_packet(n: usize, seed: u8, msg_id: u32) -> (Vec<u8>, Vec<u8>) {
    let data: Arc<[u8]> =
        Arc::from((0..n).map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed)).collect::<Vec<_>>());
    let mut p = Peer::new(PeerConfig { mtu: 8192, ..Default::default() }).unwrap();
    let pk = p.eager_message(Dest { ctxt: RX_CTXT as u8, subctxt: 0, msg_id }, &data);
    assert_eq!(pk.len(), 1);
    let mut bytes = pk[0].header().to_vec();
    bytes.extend_from_slice(pk[0].payload());
    (bytes, data.to_vec())
}

fn pbc_for(bytes: &[u8]) -> u64 {
    wire::PBC_LENGTH_DWS.encode(2 + bytes.len() as u64 / 4)
}

/// sc_enable with a credit return address and threshold (`pio.c` 714-789, 1243-1331).
fn enable_send_context(d: &mut Dev, depth: u64, threshold: u64) {
    let pio = txe::SEND_PIO_INIT_CTXT_PIO_CTXT_NUM.encode(SC)
        | txe::SEND_PIO_INIT_CTXT_PIO_SINGLE_CTXT_INIT.smask();
    d.write64(txe::SEND_PIO_INIT_CTXT, pio);
    d.write64(sctxt(SC, txe::SEND_CTXT_CREDIT_RETURN_ADDR), CR_ADDR);
    d.write64(
        sctxt(SC, txe::SEND_CTXT_CREDIT_CTRL),
        txe::SEND_CTXT_CREDIT_CTRL_THRESHOLD.encode(threshold),
    );
    d.write64(sctxt(SC, txe::SEND_CTXT_ERR_MASK), u64::MAX);
    let ctrl =
        txe::SEND_CTXT_CTRL_CTXT_DEPTH.encode(depth) | txe::SEND_CTXT_CTRL_CTXT_ENABLE.smask();
    d.write64(sctxt(SC, txe::SEND_CTXT_CTRL), ctrl);
    assert_eq!(d.read64(sctxt(SC, txe::SEND_CTXT_CTRL)), ctrl);
    assert!(d.send_context(SC as u32).unwrap().enabled());
}

/// pio_copy: the PBC and the rest of the first block through the SOP alias, the later blocks
/// at their normal addresses, padded to whole 64-byte blocks, from ring block `block`.
fn pio_send(d: &mut Dev, block: u64, pbc: u64, bytes: &[u8]) {
    let mut all = pbc.to_le_bytes().to_vec();
    all.extend_from_slice(bytes);
    all.resize(all.len().next_multiple_of(64), 0);
    let base = bar0::TXE_PIO_SEND + SC * 0x1_0000 + block * 64;
    for (i, q) in all.chunks(8).enumerate() {
        let sop = if i < 8 { bar0::PIO_SOP_DISTANCE } else { 0 };
        d.write64(base + sop + i as u64 * 8, u64::from_le_bytes(q.try_into().unwrap()));
    }
}

fn read_u64(d: &Dev, addr: u64) -> u64 {
    u64::from_le_bytes(read_mem(d, addr, 8).try_into().unwrap())
}

fn int_status(d: &mut Dev, src: u64) -> bool {
    d.read64(cce::CCE_INT_STATUS.offset(src / 64).unwrap()) >> (src % 64) & 1 == 1
}

/// The packet landed in RHQ entry `index` of the receive context with `payload`.
fn assert_landed(d: &Dev, s: &CtxtSetup, index: u32, payload: &[u8]) {
    let (hdr, rhf) = read_rhq_entry(d, s, index);
    assert_eq!(rhf.seq(), u64::from(index) + 1);
    assert_eq!(rhf.rcv_type(), Some(RcvType::Eager));
    assert!(rhf.use_egr_bfr() && !rhf.has_error(), "{rhf:?}");
    assert_eq!(hdr[8], wire::opcode::EAGER);
    let at = s.egr_addr + rhf.egr_index() * s.egr_buf_size + rhf.egr_offset_bytes();
    assert_eq!(read_mem(d, at, payload.len()), payload);
}

#[test]
fn pio_eager_packet_loops_back_and_returns_credits() {
    let (mut d, s) = device();
    enable_send_context(&mut d, 64, 1);
    let (bytes, payload) = eager_packet(200, 3, 11);
    pio_send(&mut d, 0, pbc_for(&bytes), &bytes);
    d.run_until_idle();
    assert_landed(&d, &s, 0, &payload);
    let blocks = (8 + bytes.len() as u64).div_ceil(64);
    // cr[hw_context & 7] of the 64-byte group at CREDIT_RETURN_ADDR: Counter = freed blocks.
    let cr = read_u64(&d, CR_ADDR + 8 * (SC & 7));
    assert_eq!(cr & 0x7FF, blocks, "{cr:#x}");
    let c = d.counters();
    assert_eq!(c.tx_pio_packet_count, 1);
    assert_eq!(c.tx_loopback_count, 1);
    assert_eq!(c.tx_credit_return_count, 1);
    assert_eq!(c.tx_pio_error_count, 0);
    assert_eq!(c.rx_eager_count, 1);
    assert_eq!(c.rx_len_err_count, 0);
    assert!(d.take_tx_packets().is_empty(), "looped back, not queued for the peer");
    // A second packet continues at the fill index.
    let (bytes2, payload2) = eager_packet(100, 9, 12);
    pio_send(&mut d, blocks, pbc_for(&bytes2), &bytes2);
    d.run_until_idle();
    assert_landed(&d, &s, 1, &payload2);
    let blocks2 = (8 + bytes2.len() as u64).div_ceil(64);
    assert_eq!(read_u64(&d, CR_ADDR + 8 * (SC & 7)) & 0x7FF, blocks + blocks2);
}

#[test]
fn without_loopback_packets_go_to_the_outbound_queue() {
    let mut d = functional_device(4, 1024, 32 << 20).unwrap();
    init_kdeth_qp(&mut d);
    enable_send_context(&mut d, 64, 1);
    let (bytes, _) = eager_packet(64, 1, 3);
    pio_send(&mut d, 0, pbc_for(&bytes), &bytes);
    d.run_until_idle();
    let tx = d.take_tx_packets();
    assert_eq!(tx.len(), 1);
    assert_eq!(tx[0].bytes, bytes);
    assert_eq!(tx[0].send_ctxt, SC as u32);
    assert_eq!(d.counters().tx_outbound_count, 1);
    assert_eq!(d.counters().rx_packet_count, 0);
}

#[test]
fn never_enabled_context_keeps_the_pio_capture() {
    let mut d = functional_device(4, 1024, 32 << 20).unwrap();
    let (bytes, _) = eager_packet(64, 1, 3);
    pio_send(&mut d, 0, pbc_for(&bytes), &bytes);
    let tx = d.take_tx_packets();
    assert_eq!(tx.len(), 1, "captured without an enable");
    assert_eq!(tx[0].bytes, bytes);
    assert_eq!(d.counters().tx_pio_store_count, 0, "the send context saw nothing");
    assert_eq!(d.counters().tx_credit_return_count, 0);
}

/// init_sdma_regs + sdma_setlengen + the start-up state machine up to Running.
fn start_engine(d: &mut Dev, e: u64, cnt: u64, reload: u64, desc_cnt: u64) {
    d.write64(sdma(e, txe::SEND_DMA_BASE_ADDR), RING);
    let len = txe::SEND_DMA_LEN_GEN_LENGTH.encode(cnt / 64);
    d.write64(sdma(e, txe::SEND_DMA_LEN_GEN), len);
    d.write64(sdma(e, txe::SEND_DMA_LEN_GEN), len | txe::SEND_DMA_LEN_GEN_GENERATION.encode(4));
    d.write64(sdma(e, txe::SEND_DMA_TAIL), 0);
    d.write64(sdma(e, txe::SEND_DMA_RELOAD_CNT), reload);
    d.write64(sdma(e, txe::SEND_DMA_DESC_CNT), desc_cnt);
    d.write64(sdma(e, txe::SEND_DMA_HEAD_ADDR), HEAD_ADDR);
    d.write64(sdma(e, txe::SEND_DMA_ENG_ERR_MASK), u64::MAX);
    // Halt (s10), clean-up (s15), enable (s99).
    d.write64(sdma(e, txe::SEND_DMA_CTRL), txe::SEND_DMA_CTRL_SDMA_HALT.smask());
    let st = d.read64(sdma(e, txe::SEND_DMA_ENG_ERR_STATUS));
    d.write64(sdma(e, txe::SEND_DMA_ENG_ERR_CLEAR), st);
    let int_en = txe::SEND_DMA_CTRL_SDMA_INT_ENABLE.smask();
    d.write64(sdma(e, txe::SEND_DMA_CTRL), int_en | txe::SEND_DMA_CTRL_SDMA_CLEANUP.smask());
    assert_eq!(txe::SEND_DMA_STATUS_ENG_CLEANED_UP.get(d.read64(sdma(e, txe::SEND_DMA_STATUS))), 1);
    d.write64(sdma(e, txe::SEND_DMA_CTRL), int_en | txe::SEND_DMA_CTRL_SDMA_ENABLE.smask());
    assert_eq!(d.read64(sdma(e, txe::SEND_DMA_STATUS)), 0, "running");
    assert!(d.sdma_engine(e as u32).unwrap().running());
}

/// Writes a packet as hfi1's user SDMA does: one descriptor for PBC + header (64 bytes in
/// the header buffer), then payload pieces of a page at most, HEAD_TO_HOST on the last.
fn post_sdma(d: &Dev, at_desc: u64, data_at: u64, bytes: &[u8], gen: u64) -> u64 {
    let mut all = pbc_for(bytes).to_le_bytes().to_vec();
    all.extend_from_slice(bytes);
    d.memory().write_slice(&all, GuestAddress(data_at)).unwrap();
    let hdr = 64.min(all.len() as u64);
    let mut pieces = vec![(data_at, hdr)];
    let mut off = hdr;
    while off < all.len() as u64 {
        let n = (all.len() as u64 - off).min(4096);
        pieces.push((data_at + off, n));
        off += n;
    }
    let np = pieces.len();
    for (k, (a, n)) in pieces.into_iter().enumerate() {
        let mut desc = SdmaDesc::new(a, n, k == 0, k + 1 == np, gen);
        if k + 1 == np {
            desc = desc.with_qw1(DESC1_HEAD_TO_HOST.smask());
        }
        let at = RING + 16 * (at_desc + k as u64);
        d.memory().write_slice(&desc.to_le_bytes(), GuestAddress(at)).unwrap();
    }
    np as u64
}

#[test]
fn sdma_packet_arrives_head_advances_and_interrupts_fire() {
    let (mut d, s) = device();
    let e = 0;
    // Unmask the engine's error (16), progress (208) and idle (224) sources.
    for src in [txe::IS_SDMAENG_ERR_START, 208, 224] {
        let r = cce::CCE_INT_MASK.offset(src / 64).unwrap();
        let m = d.read64(r);
        d.write64(r, m | 1 << (src % 64));
    }
    start_engine(&mut d, e, 64, 100, 2);
    // The start-up halt error raised source 16; clear it.
    assert!(int_status(&mut d, txe::IS_SDMAENG_ERR_START));
    d.write64(cce::CCE_INT_CLEAR.offset(0).unwrap(), 1 << txe::IS_SDMAENG_ERR_START);
    d.take_interrupts();
    let (bytes, payload) = eager_packet(5000, 5, 21);
    let n = post_sdma(&d, 0, DATA, &bytes, 0);
    assert_eq!(n, 3, "header + two payload pieces");
    d.write64(sdma(e, txe::SEND_DMA_TAIL), n);
    assert_eq!(d.read64(sdma(e, txe::SEND_DMA_HEAD)), 0, "nothing completed at the TAIL write");
    d.run_until_idle();
    assert_landed(&d, &s, 0, &payload);
    assert_eq!(d.read64(sdma(e, txe::SEND_DMA_HEAD)), n);
    assert_eq!(read_u64(&d, HEAD_ADDR), n, "HEAD_TO_HOST write-back");
    assert!(int_status(&mut d, 208), "SDmaProgress");
    assert!(int_status(&mut d, 224), "SDmaIdle");
    assert!(!d.take_interrupts().is_empty(), "MSI-X signalled");
    let c = d.counters();
    assert_eq!(c.tx_sdma_packet_count, 1);
    assert_eq!(c.tx_sdma_desc_count, 3);
    assert_eq!(c.tx_sdma_head_writeback_count, 1);
    assert!(c.tx_sdma_progress_intr_count >= 1);
    assert_eq!(c.tx_sdma_idle_intr_count, 1);
    assert_eq!(c.tx_loopback_count, 1);
    assert_eq!(c.dma_write_fails, 0);
}

#[test]
fn bad_descriptor_halts_the_engine_and_the_device_keeps_serving() {
    let (mut d, s) = device();
    let e = 1;
    let src = txe::IS_SDMAENG_ERR_START + e;
    d.write64(cce::CCE_INT_MASK.offset(0).unwrap(), 1 << src);
    start_engine(&mut d, e, 64, 0, 0);
    d.write64(cce::CCE_INT_CLEAR.offset(0).unwrap(), 1 << src);
    d.take_interrupts();
    let before = d.counters().sdma_eng_err_intr_count;
    // A FIRST|LAST descriptor with byte count 0.
    let bad = SdmaDesc::new(DATA, 0, true, true, 0);
    d.memory().write_slice(&bad.to_le_bytes(), GuestAddress(RING)).unwrap();
    d.write64(sdma(e, txe::SEND_DMA_TAIL), 1);
    d.run_until_idle();
    let st = d.read64(sdma(e, txe::SEND_DMA_STATUS));
    assert_eq!(txe::SEND_DMA_STATUS_ENG_HALTED.get(st), 1);
    assert_ne!(d.read64(sdma(e, txe::SEND_DMA_ENG_ERR_STATUS)), 0);
    assert!(int_status(&mut d, src), "engine error source");
    assert!(!d.take_interrupts().is_empty());
    assert_eq!(d.counters().sdma_eng_err_intr_count, before + 1);
    assert_eq!(d.counters().tx_sdma_error_count, 1);
    assert_eq!(d.read64(sdma(e, txe::SEND_DMA_HEAD)), 0);
    // The device keeps serving: a PIO send still loops back and lands.
    enable_send_context(&mut d, 64, 1);
    let (bytes, payload) = eager_packet(100, 2, 4);
    pio_send(&mut d, 0, pbc_for(&bytes), &bytes);
    d.run_until_idle();
    assert_landed(&d, &s, 0, &payload);
    // And an SDMA engine pointed at unbacked memory halts with a counted read failure.
    let e2 = 2;
    start_engine(&mut d, e2, 64, 0, 0);
    d.write64(sdma(e2, txe::SEND_DMA_BASE_ADDR), 1 << 40);
    d.write64(sdma(e2, txe::SEND_DMA_TAIL), 1);
    d.run_until_idle();
    assert!(d.sdma_engine(e2 as u32).unwrap().halted());
    assert_eq!(d.counters().tx_sdma_mem_read_fails, 1);
}

#[test]
fn credit_return_to_unbacked_memory_is_a_counted_device_error() {
    let (mut d, _s) = device();
    enable_send_context(&mut d, 64, 1);
    d.write64(sctxt(SC, txe::SEND_CTXT_CREDIT_RETURN_ADDR), 1 << 40);
    let (bytes, _) = eager_packet(64, 1, 3);
    pio_send(&mut d, 0, pbc_for(&bytes), &bytes);
    d.run_until_idle();
    assert_eq!(d.counters().tx_credit_return_count, 1);
    assert_eq!(d.counters().tx_dma_write_fails, 1);
    assert_eq!(d.counters().dma_write_fails, 1);
}

/// xorshift64*.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn random_transmit_writes_never_panic() {
    for seed in 1..=6u64 {
        let (mut d, _s) = device();
        let mut r = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        // Memory-like values for addresses, so rings and returns sometimes land in memory.
        for _ in 0..6000 {
            let value = match r.below(4) {
                0 => r.next(),
                1 => r.below(32 << 20) & !7,
                2 => r.below(256),
                _ => u64::MAX,
            };
            let off = match r.below(5) {
                0 => sctxt(r.below(4), r.below(0x100) & !7),
                1 => sdma(r.below(4), r.below(0x100) & !7),
                2 => sctxt(r.below(4), [0, 0x8, 0x10, 0x18, 0x20, 0x28, 0x30][r.below(7) as usize]),
                3 => (bar0::TXE_PIO_SEND + r.below(bar0::TXE_PIO_SIZE)) & !3,
                _ => txe::SEND_PIO_INIT_CTXT,
            };
            match r.below(10) {
                0 => d.write32(off, value as u32),
                1 => {
                    d.read64(off);
                }
                2 => {
                    d.step_until(d.now().plus(r.below(2_000_000)));
                }
                _ => d.write64(off & !7, value),
            }
        }
        d.run_until_idle();
        for c in 0..4 {
            d.send_context(c).unwrap().check_invariants().unwrap();
            d.sdma_engine(c).unwrap().check_invariants().unwrap();
        }
    }
}
