//! One PIO send context: its per-context CSRs (TXE + 0x100000 + 0x100 · ctxt), its 64 KiB
//! window of the PIO space (and the start-of-packet alias), packet assembly from the stores,
//! the send-side checks, halting on error, and credit return ([`super::credit`]).
//!
//! Sources (Debian linux-source-6.1 6.1.172, opa-psm2 11.2.185):
//! - **Window and ring.** The window is a ring of SEND_CTXT_CTRL.CtxtDepth 64-byte blocks from
//!   window offset 0 (`pio.c` 714-728 base_addr and CTRL; sc_buffer_alloc 1455-1491 wraps the
//!   fill index at `credits`). A packet is whole blocks: the PBC as one 8-byte store at the SOP
//!   alias, the rest of the first block through the SOP alias, later blocks at their normal
//!   addresses, a trailing partial block padded with zero qwords (`pio_copy.c` pio_copy; PSM
//!   `psm_hal_gen1_spio.c` 802-917 writes the same sequence). Its length is PBC.LengthDWs
//!   (PBC included, ICRC excluded): ceil(LengthDWs · 4 / 64) blocks (`pio.c` 1395-1396).
//! - **4-byte stores.** A 4-byte store is half a qword; the two halves are combined (in either
//!   order) into one 8-byte store, as the CPU's write-combining buffer would (the transport can
//!   split an 8-byte `pwrite`; `docs/transmit.md`). 8·n-byte stores (vfio-user may pass 16, 32 or
//!   64 bytes) are split into qwords.
//! - **Enable / halt.** CtxtEnable 0 → 1 or SEND_PIO_INIT_CTXT of this context restarts the
//!   context: free counter 0, not halted, nothing open (`pio.c` sc_enable 1243-1331: "only
//!   clear free and fill if transitioning 0 -> 1"; "the halt will not clear until after the
//!   PIO init engine runs"). A send error sets its SEND_CTXT_ERR_STATUS bit, raises source
//!   32 + ctxt when unmasked (`chip.c` is_sendctxt_err_int 5945-6003 reads ERR_STATUS there),
//!   halts the context (SEND_CTXT_STATUS.CtxtHalted, `pio.c` is_sc_halted 948-952; sc_restart
//!   1031-1112 waits for it) and makes a credit return with Status set, which is how PSM learns
//!   of the halt (`psm_hal_gen1_spio.c` 468-470). Stores to a halted or disabled context are
//!   dropped.
//! - **Egress status.** SEND_EGRESS_CTXT_STATUS reads 0: a packet leaves the context when its
//!   last block is written, and a non-zero occupancy would make hfi1 bounce the link
//!   (`pio.c` sc_wait_for_packet_egress 970-1007).
//!
//! Error mapping (**choices**; the hardware manual is not public): a store outside
//! `CtxtDepth · 64` → PioWriteOutOfBounds; a multi-qword store crossing a 64-byte block →
//! PioWriteCrossesBoundary; a PBC whose packet does not fit the ring or lands on blocks of a
//! packet still being written → PioWriteOverflow; a PBC store into an open packet, a SOP-alias
//! store into a packet's later block, or a store outside any open packet → PioInconsistentSop;
//! PBC.LengthDWs < 2 or a failed check → PioDisallowedPacket. Checks modelled (each only when
//! its SEND_CTXT_CHECK_ENABLE bit is set, the Check* ones also need CheckEnable; 16B bypass
//! packets are not checked): DisallowPbcTest, DisallowPbcStaticRateControl, CheckVl against
//! SEND_CTXT_CHECK_VL (a set bit forbids that VL, `pio.c` 791-795), DisallowRaw / RawIpv6 / Grh
//! by LRH.LNH, DisallowTooSmallIbPackets (LRH + BTH), DisallowBadPktLen (PBC.LengthDWs =
//! LRH.PktLen + 1, `hfi1-facts` PIO §1), CheckOpcode (`(op & mask) == (value & mask)`). Not
//! modelled (stored only): JobKey, PartitionKey, Slid, VlMapping, KDETH / non-KDETH, bypass
//! and too-long checks.

use std::collections::BTreeMap;

use hfi_abi::pio::{PIO_BLOCK_BYTES, PIO_BLOCK_QWS, PIO_CTXT_WINDOW_BYTES};
use hfi_abi::txe::{self, check};
use hfi_abi::{wire, Field};

use super::credit::{self, Credits, ReturnReasons};
use super::effects::{TxCounters, TxDmaKind, TxEffect, TxPacket, TxSource, TxTiming};
use crate::time::SimTime;

/// A packet whose PBC has been written and whose blocks are being filled.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Assembly {
    /// Blocks the packet occupies.
    nblocks: u64,
    /// Its PBC.
    pbc: u64,
    /// `nblocks · 64` bytes, PBC first.
    bytes: Vec<u8>,
    /// Which qwords have been written.
    written: Vec<bool>,
    /// Qwords not written yet.
    remaining: u64,
}

/// A qword of which one 4-byte half has arrived.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Half {
    lo: Option<u32>,
    hi: Option<u32>,
}

const CTRL_WRITABLE: u64 = txe::SEND_CTXT_CTRL_CTXT_ENABLE.smask()
    | txe::SEND_CTXT_CTRL_CTXT_BASE.smask()
    | txe::SEND_CTXT_CTRL_CTXT_DEPTH.smask();
const CREDIT_CTRL_WRITABLE: u64 = txe::SEND_CTXT_CREDIT_CTRL_THRESHOLD.smask()
    | txe::SEND_CTXT_CREDIT_CTRL_EARLY_RETURN.smask()
    | txe::SEND_CTXT_CREDIT_CTRL_CREDIT_INTR.smask();
/// DWs of LRH + BTH: the smallest IB (9B) packet after the PBC.
const IB_MIN_HDR_DWS: u64 = 5;
/// Bytes of a GRH (LRH.LNH = 3).
const GRH_BYTES: usize = 40;

/// One hardware PIO send context.
#[derive(Clone, Debug)]
pub struct SendContext {
    hw_ctxt: u32,
    timing: TxTiming,
    ctrl: u64,
    credit_ctrl: u64,
    credit_return_addr: u64,
    credit_force: u64,
    err_status: u64,
    err_mask: u64,
    check_enable: u64,
    check_vl: u64,
    check_job_key: u64,
    check_partition_key: u64,
    check_slid: u64,
    check_opcode: u64,
    halted: bool,
    credits: Credits,
    /// Packets being written, by first block.
    open: BTreeMap<u64, Assembly>,
    /// Pending 4-byte halves, by (SOP alias, qword offset in the window).
    halves: BTreeMap<(bool, u64), Half>,
}

fn flag(word: u64, f: Field) -> bool {
    f.get(word) == 1
}

impl SendContext {
    /// Hardware send context `hw_ctxt` in its reset state (all CSRs 0, disabled).
    pub fn new(hw_ctxt: u32, timing: TxTiming) -> Self {
        Self {
            hw_ctxt,
            timing,
            ctrl: 0,
            credit_ctrl: 0,
            credit_return_addr: 0,
            credit_force: 0,
            err_status: 0,
            err_mask: 0,
            check_enable: 0,
            check_vl: 0,
            check_job_key: 0,
            check_partition_key: 0,
            check_slid: 0,
            check_opcode: 0,
            halted: false,
            credits: Credits::default(),
            open: BTreeMap::new(),
            halves: BTreeMap::new(),
        }
    }

    /// The hardware context number.
    pub fn hw_ctxt(&self) -> u32 {
        self.hw_ctxt
    }

    /// Replaces the timing parameters.
    pub fn set_timing(&mut self, timing: TxTiming) {
        self.timing = timing;
    }

    /// SEND_CTXT_CTRL.CtxtEnable.
    pub fn enabled(&self) -> bool {
        flag(self.ctrl, txe::SEND_CTXT_CTRL_CTXT_ENABLE)
    }

    /// SEND_CTXT_STATUS.CtxtHalted.
    pub fn halted(&self) -> bool {
        self.halted
    }

    /// Ring size in blocks (SEND_CTXT_CTRL.CtxtDepth).
    pub fn depth(&self) -> u64 {
        txe::SEND_CTXT_CTRL_CTXT_DEPTH.get(self.ctrl)
    }

    /// The credit state.
    pub fn credits(&self) -> &Credits {
        &self.credits
    }

    /// Packets whose PBC was written and whose blocks are not all written yet.
    pub fn open_packets(&self) -> usize {
        self.open.len()
    }

    /// SEND_EGRESS_CTXT_STATUS\[hw_ctxt\]: always 0 (no occupancy, not halted in egress).
    pub fn egress_status(&self) -> u64 {
        0
    }

    /// Reads the CSR at offset `reg` of the context's 0x100-byte block; `None` for offsets
    /// this unit does not decode.
    pub fn read_csr(&self, reg: u64) -> Option<u64> {
        Some(match reg {
            txe::SEND_CTXT_CTRL => self.ctrl,
            txe::SEND_CTXT_STATUS => txe::SEND_CTXT_STATUS_CTXT_HALTED.encode(self.halted.into()),
            txe::SEND_CTXT_CREDIT_CTRL => self.credit_ctrl,
            txe::SEND_CTXT_CREDIT_STATUS => self.credits.status_csr(),
            txe::SEND_CTXT_CREDIT_RETURN_ADDR => self.credit_return_addr,
            txe::SEND_CTXT_CREDIT_FORCE => self.credit_force,
            txe::SEND_CTXT_ERR_STATUS => self.err_status,
            txe::SEND_CTXT_ERR_MASK => self.err_mask,
            txe::SEND_CTXT_ERR_CLEAR => 0,
            txe::SEND_CTXT_CHECK_ENABLE => self.check_enable,
            txe::SEND_CTXT_CHECK_VL => self.check_vl,
            txe::SEND_CTXT_CHECK_JOB_KEY => self.check_job_key,
            txe::SEND_CTXT_CHECK_PARTITION_KEY => self.check_partition_key,
            txe::SEND_CTXT_CHECK_SLID => self.check_slid,
            txe::SEND_CTXT_CHECK_OPCODE => self.check_opcode,
            _ => return None,
        })
    }

    /// Writes the CSR at offset `reg` of the context's block at simulated time `now`;
    /// `None` for offsets this unit does not decode.
    pub fn write_csr(
        &mut self,
        now: SimTime,
        reg: u64,
        value: u64,
        c: &mut TxCounters,
    ) -> Option<Vec<TxEffect>> {
        let mut out = Vec::new();
        match reg {
            txe::SEND_CTXT_CTRL => self.write_ctrl(value, c),
            txe::SEND_CTXT_STATUS | txe::SEND_CTXT_CREDIT_STATUS | txe::SEND_CTXT_ERR_STATUS => {
                c.tx_csr_read_only_write_count += 1;
            }
            txe::SEND_CTXT_CREDIT_CTRL => self.credit_ctrl = value & CREDIT_CTRL_WRITABLE,
            txe::SEND_CTXT_CREDIT_RETURN_ADDR => {
                self.credit_return_addr = value & txe::SEND_CTXT_CREDIT_RETURN_ADDR_ADDRESS.smask();
            }
            txe::SEND_CTXT_CREDIT_FORCE => {
                self.credit_force = value & txe::SEND_CTXT_CREDIT_FORCE_FORCE_RETURN.smask();
                let why = self.credits.force_written(value);
                if why != 0 {
                    self.credit_return(now, why, c, &mut out);
                }
            }
            txe::SEND_CTXT_ERR_MASK => {
                let before = self.err_status & self.err_mask;
                self.err_mask = value;
                self.raise_err_if_new(now, before, c, &mut out);
            }
            txe::SEND_CTXT_ERR_CLEAR => self.err_status &= !value,
            txe::SEND_CTXT_CHECK_ENABLE => self.check_enable = value,
            txe::SEND_CTXT_CHECK_VL => self.check_vl = value,
            txe::SEND_CTXT_CHECK_JOB_KEY => self.check_job_key = value,
            txe::SEND_CTXT_CHECK_PARTITION_KEY => self.check_partition_key = value,
            txe::SEND_CTXT_CHECK_SLID => self.check_slid = value,
            txe::SEND_CTXT_CHECK_OPCODE => self.check_opcode = value,
            _ => return None,
        }
        Some(out)
    }

    /// SEND_PIO_INIT_CTXT initialised this context (single-context init naming it, or the
    /// all-contexts init): free counter 0, halt cleared, nothing open (`pio.c` 1289-1316).
    pub fn pio_init(&mut self, c: &mut TxCounters) {
        self.restart(c);
    }

    /// A store of the low `len` bytes (4 or 8) of `value` at window offset `offset`
    /// (through the SOP alias when `sop`), as an MMIO write hands it over.
    pub fn pio_store(
        &mut self,
        now: SimTime,
        sop: bool,
        offset: u64,
        value: u64,
        len: usize,
        c: &mut TxCounters,
    ) -> Vec<TxEffect> {
        let bytes = value.to_le_bytes();
        match bytes.get(..len) {
            Some(data) if len == 4 || len == 8 => self.pio_write(now, sop, offset, data, c),
            _ => {
                c.tx_pio_bad_store_drops += 1;
                Vec::new()
            }
        }
    }

    /// A store of `data` (4 bytes, or a multiple of 8 bytes, naturally aligned) at window
    /// offset `offset` of this context's window (through the SOP alias when `sop`).
    pub fn pio_write(
        &mut self,
        now: SimTime,
        sop: bool,
        offset: u64,
        data: &[u8],
        c: &mut TxCounters,
    ) -> Vec<TxEffect> {
        let mut out = Vec::new();
        let len = data.len() as u64;
        let in_window = offset.checked_add(len).is_some_and(|end| end <= PIO_CTXT_WINDOW_BYTES);
        if len == 0 || !in_window {
            c.tx_pio_bad_store_drops += 1;
            return out;
        }
        if len == 4 {
            if offset % 4 != 0 {
                c.tx_pio_bad_store_drops += 1;
                return out;
            }
            let Ok(dw) = <[u8; 4]>::try_from(data) else {
                c.tx_pio_bad_store_drops += 1;
                return out;
            };
            let dw = u32::from_le_bytes(dw);
            let qoff = offset & !7;
            let half = self.halves.entry((sop, qoff)).or_default();
            if offset % 8 == 0 {
                half.lo = Some(dw);
            } else {
                half.hi = Some(dw);
            }
            if let Half { lo: Some(lo), hi: Some(hi) } = *half {
                self.halves.remove(&(sop, qoff));
                let value = u64::from(lo) | (u64::from(hi) << 32);
                self.store_qword(now, sop, qoff, value, c, &mut out);
            }
            return out;
        }
        if len % 8 != 0 || offset % 8 != 0 {
            c.tx_pio_bad_store_drops += 1;
            return out;
        }
        if len > 8 && (offset % PIO_BLOCK_BYTES) + len > PIO_BLOCK_BYTES {
            if self.accepting(c) {
                self.error(now, txe::SEND_CTXT_ERR_STATUS_PIO_WRITE_CROSSES_BOUNDARY, c, &mut out);
            }
            return out;
        }
        for (i, chunk) in data.chunks_exact(8).enumerate() {
            let Ok(q) = <[u8; 8]>::try_from(chunk) else { continue };
            let qoff = offset + 8 * i as u64;
            self.halves.remove(&(sop, qoff));
            self.store_qword(now, sop, qoff, u64::from_le_bytes(q), c, &mut out);
        }
        out
    }

    /// Internal consistency: what a proptest checks after every step.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.credits.check()?;
        if self.err_status & !txe::SEND_CTXT_ERR_STATUS_ALL != 0 {
            return Err(format!("undefined error bits {:#x}", self.err_status));
        }
        if (self.halted || !self.enabled()) && !self.open.is_empty() {
            return Err("open packets on a halted or disabled context".into());
        }
        let depth = self.depth();
        let ranges: Vec<(u64, u64)> = self.open.iter().map(|(s, a)| (*s, a.nblocks)).collect();
        for (start, a) in &self.open {
            if *start >= depth || a.nblocks == 0 || a.nblocks > depth {
                return Err(format!("packet at {start} of {} blocks, depth {depth}", a.nblocks));
            }
            let qws = a.nblocks * PIO_BLOCK_QWS;
            if a.bytes.len() as u64 != a.nblocks * PIO_BLOCK_BYTES || a.written.len() as u64 != qws
            {
                return Err("assembly buffer sizes".into());
            }
            let missing = a.written.iter().filter(|w| !**w).count() as u64;
            if missing != a.remaining || missing == 0 {
                return Err(format!("remaining {} vs missing {missing}", a.remaining));
            }
            for (s2, n2) in &ranges {
                if s2 != start && circular_overlap(*start, a.nblocks, *s2, *n2, depth) {
                    return Err(format!("packets at {start} and {s2} overlap"));
                }
            }
        }
        for ((_, qoff), h) in &self.halves {
            if *qoff >= PIO_CTXT_WINDOW_BYTES || qoff % 8 != 0 || (h.lo.is_some() == h.hi.is_some())
            {
                return Err(format!("bad pending half at {qoff:#x}"));
            }
        }
        Ok(())
    }

    // ---- internals ------------------------------------------------------------------------

    fn write_ctrl(&mut self, value: u64, c: &mut TxCounters) {
        let old = self.ctrl;
        let new = value & CTRL_WRITABLE;
        self.ctrl = new;
        let en = txe::SEND_CTXT_CTRL_CTXT_ENABLE;
        let depth = txe::SEND_CTXT_CTRL_CTXT_DEPTH;
        if flag(new, en) && !flag(old, en) {
            self.restart(c);
        } else if !flag(new, en) || depth.get(new) != depth.get(old) {
            self.drop_open(c);
        }
    }

    /// Power-on state of the datapath (CSRs other than the halt are kept).
    fn restart(&mut self, c: &mut TxCounters) {
        self.credits.reset();
        self.halted = false;
        self.drop_open(c);
    }

    fn drop_open(&mut self, c: &mut TxCounters) {
        c.tx_pio_packet_drops += self.open.len() as u64;
        self.open.clear();
        self.halves.clear();
    }

    /// True when stores are taken; counts the drop otherwise.
    fn accepting(&self, c: &mut TxCounters) -> bool {
        if !self.enabled() {
            c.tx_pio_disabled_drops += 1;
            false
        } else if self.halted {
            c.tx_pio_halted_drops += 1;
            false
        } else {
            true
        }
    }

    /// The open packet containing `block`: (its first block, `block`'s index in it).
    fn find_open(&self, block: u64) -> Option<(u64, u64)> {
        let depth = self.depth();
        self.open.iter().find_map(|(start, a)| {
            let rel = (block + depth - start) % depth;
            (rel < a.nblocks).then_some((*start, rel))
        })
    }

    fn store_qword(
        &mut self,
        now: SimTime,
        sop: bool,
        qoff: u64,
        value: u64,
        c: &mut TxCounters,
        out: &mut Vec<TxEffect>,
    ) {
        c.tx_pio_store_count += 1;
        if !self.accepting(c) {
            return;
        }
        let depth = self.depth();
        if qoff >= depth * PIO_BLOCK_BYTES {
            self.error(now, txe::SEND_CTXT_ERR_STATUS_PIO_WRITE_OUT_OF_BOUNDS, c, out);
            return;
        }
        let block = qoff / PIO_BLOCK_BYTES;
        let qw = (qoff % PIO_BLOCK_BYTES) / 8;
        let found = self.find_open(block);
        if sop && qw == 0 {
            if found.is_some() {
                self.error(now, txe::SEND_CTXT_ERR_STATUS_PIO_INCONSISTENT_SOP, c, out);
            } else {
                self.start_packet(now, block, value, c, out);
            }
            return;
        }
        let Some((start, rel)) = found else {
            self.error(now, txe::SEND_CTXT_ERR_STATUS_PIO_INCONSISTENT_SOP, c, out);
            return;
        };
        if sop && rel != 0 {
            self.error(now, txe::SEND_CTXT_ERR_STATUS_PIO_INCONSISTENT_SOP, c, out);
            return;
        }
        let complete = self.open.get_mut(&start).is_some_and(|a| {
            put_qword(a, rel * PIO_BLOCK_QWS + qw, value);
            a.remaining == 0
        });
        if complete {
            self.finish(now, start, c, out);
        }
    }

    fn start_packet(
        &mut self,
        now: SimTime,
        block: u64,
        pbc: u64,
        c: &mut TxCounters,
        out: &mut Vec<TxEffect>,
    ) {
        let len_dws = wire::PBC_LENGTH_DWS.get(pbc);
        if len_dws < wire::PBC_DWS {
            self.error(now, txe::SEND_CTXT_ERR_STATUS_PIO_DISALLOWED_PACKET, c, out);
            return;
        }
        let nblocks = (len_dws * 4).div_ceil(PIO_BLOCK_BYTES);
        let depth = self.depth();
        let overlaps =
            self.open.iter().any(|(s, a)| circular_overlap(block, nblocks, *s, a.nblocks, depth));
        if nblocks > depth || overlaps {
            self.error(now, txe::SEND_CTXT_ERR_STATUS_PIO_WRITE_OVERFLOW, c, out);
            return;
        }
        if !self.pbc_allowed(pbc) {
            c.tx_pio_disallowed_count += 1;
            self.error(now, txe::SEND_CTXT_ERR_STATUS_PIO_DISALLOWED_PACKET, c, out);
            return;
        }
        let qws = nblocks * PIO_BLOCK_QWS;
        let mut a = Assembly {
            nblocks,
            pbc,
            bytes: vec![0; (nblocks * PIO_BLOCK_BYTES) as usize],
            written: vec![false; qws as usize],
            remaining: qws,
        };
        put_qword(&mut a, 0, pbc);
        self.open.insert(block, a);
    }

    fn finish(&mut self, now: SimTime, start: u64, c: &mut TxCounters, out: &mut Vec<TxEffect>) {
        let Some(a) = self.open.remove(&start) else { return };
        let total = (wire::PBC_LENGTH_DWS.get(a.pbc) * 4) as usize;
        let bytes = a.bytes.get(wire::PBC_BYTES..total).unwrap_or_default().to_vec();
        if !self.header_allowed(a.pbc, &bytes) {
            c.tx_pio_disallowed_count += 1;
            self.error(now, txe::SEND_CTXT_ERR_STATUS_PIO_DISALLOWED_PACKET, c, out);
            return;
        }
        let ready = now.plus(self.timing.pio_launch_ps());
        c.tx_pio_packet_count += 1;
        c.tx_pio_bytes += bytes.len() as u64;
        out.push(TxEffect::Packet(TxPacket {
            ready,
            source: TxSource::Pio { ctxt: self.hw_ctxt },
            pbc: a.pbc,
            bytes,
        }));
        let pbc_return = flag(a.pbc, wire::PBC_CREDIT_RETURN);
        let why = self.credits.free_blocks(a.nblocks, pbc_return, self.credit_ctrl);
        if why != 0 {
            self.credit_return(ready, why, c, out);
        }
    }

    /// The checks that need only the PBC.
    fn pbc_allowed(&self, pbc: u64) -> bool {
        let ce = self.check_enable;
        if flag(pbc, wire::PBC_PACKET_BYPASS) {
            return true;
        }
        let test = flag(pbc, wire::PBC_TEST_BAD_ICRC) || flag(pbc, wire::PBC_TEST_EBP);
        if flag(ce, check::DISALLOW_PBC_TEST) && test {
            return false;
        }
        let rate = wire::PBC_STATIC_RATE_CONTROL_CNT.get(pbc) != 0;
        if flag(ce, check::DISALLOW_PBC_STATIC_RATE_CONTROL) && rate {
            return false;
        }
        let vl = wire::PBC_VL.get(pbc);
        let checking = flag(ce, check::CHECK_ENABLE);
        !(checking && flag(ce, check::CHECK_VL) && (self.check_vl >> vl) & 1 == 1)
    }

    /// The checks that need the packet's header (`bytes` from the LRH on).
    fn header_allowed(&self, pbc: u64, bytes: &[u8]) -> bool {
        let ce = self.check_enable;
        if flag(pbc, wire::PBC_PACKET_BYPASS) {
            return true;
        }
        let len_dws = wire::PBC_LENGTH_DWS.get(pbc);
        let lnh = bytes.get(1).map(|b| u32::from(*b) & wire::LRH0_LNH.mask());
        let forbidden = |f: Field, v: u32| flag(ce, f) && lnh == Some(v);
        if forbidden(check::DISALLOW_RAW, 0)
            || forbidden(check::DISALLOW_RAW_IPV6, 1)
            || forbidden(check::DISALLOW_GRH, 3)
        {
            return false;
        }
        let ib = lnh.is_some_and(|l| l >= wire::LRH_LNH_BTH);
        if flag(ce, check::DISALLOW_TOO_SMALL_IB_PACKETS)
            && ib
            && len_dws < wire::PBC_DWS + IB_MIN_HDR_DWS
        {
            return false;
        }
        if flag(ce, check::DISALLOW_BAD_PKT_LEN) {
            let pkt_len = match (bytes.get(4), bytes.get(5)) {
                (Some(hi), Some(lo)) => {
                    u64::from(u16::from_be_bytes([*hi, *lo])) & u64::from(wire::LRH2_PKT_LEN.mask())
                }
                _ => return false,
            };
            if pkt_len + 1 != len_dws {
                return false;
            }
        }
        if flag(ce, check::CHECK_ENABLE) && flag(ce, check::CHECK_OPCODE) && ib {
            let at = wire::LRH_BYTES + if lnh == Some(3) { GRH_BYTES } else { 0 };
            let Some(op) = bytes.get(at) else { return false };
            let mask = txe::SEND_CTXT_CHECK_OPCODE_MASK.get(self.check_opcode);
            let value = txe::SEND_CTXT_CHECK_OPCODE_VALUE.get(self.check_opcode);
            if u64::from(*op) & mask != value & mask {
                return false;
            }
        }
        true
    }

    /// A send error: status bit, interrupt if newly unmasked, halt.
    fn error(&mut self, now: SimTime, bit: Field, c: &mut TxCounters, out: &mut Vec<TxEffect>) {
        c.tx_pio_error_count += 1;
        let before = self.err_status & self.err_mask;
        self.err_status |= bit.smask();
        self.raise_err_if_new(now, before, c, out);
        if !self.halted {
            self.halted = true;
            c.tx_pio_halt_count += 1;
            self.drop_open(c);
            self.credit_return(now, 0, c, out);
        }
    }

    fn raise_err_if_new(
        &mut self,
        now: SimTime,
        before: u64,
        c: &mut TxCounters,
        out: &mut Vec<TxEffect>,
    ) {
        if self.err_status & self.err_mask & !before != 0 {
            c.tx_pio_err_intr_count += 1;
            let source = txe::IS_SENDCTXT_ERR_START + u64::from(self.hw_ctxt);
            out.push(TxEffect::Interrupt { time: now, source });
        }
    }

    fn credit_return(
        &mut self,
        time: SimTime,
        why: ReturnReasons,
        c: &mut TxCounters,
        out: &mut Vec<TxEffect>,
    ) {
        let value = self.credits.make_return(why, self.halted);
        match credit::return_address(self.credit_return_addr, self.hw_ctxt) {
            Some(addr) => {
                c.tx_credit_return_count += 1;
                let kind = TxDmaKind::CreditReturn { ctxt: self.hw_ctxt };
                out.push(TxEffect::DmaWrite { time, addr, value, kind });
            }
            None => c.tx_credit_return_no_addr_count += 1,
        }
        if flag(self.credit_ctrl, txe::SEND_CTXT_CREDIT_CTRL_CREDIT_INTR) {
            c.tx_credit_intr_count += 1;
            let source = txe::IS_SENDCREDIT_START + u64::from(self.hw_ctxt);
            out.push(TxEffect::Interrupt { time, source });
        }
    }
}

/// Writes qword `i` of an assembly (a rewrite of a written qword replaces it).
fn put_qword(a: &mut Assembly, i: u64, value: u64) {
    let at = (i * 8) as usize;
    if let Some(dst) = a.bytes.get_mut(at..at + 8) {
        dst.copy_from_slice(&value.to_le_bytes());
    }
    if let Some(w) = a.written.get_mut(i as usize) {
        if !*w {
            *w = true;
            a.remaining = a.remaining.saturating_sub(1);
        }
    }
}

/// Whether the ring intervals `[a, a + la)` and `[b, b + lb)` (mod `depth`) share a block.
fn circular_overlap(a: u64, la: u64, b: u64, lb: u64, depth: u64) -> bool {
    if depth == 0 {
        return false;
    }
    (b + depth - a % depth) % depth < la || (a + depth - b % depth) % depth < lb
}

#[cfg(test)]
mod tests;
