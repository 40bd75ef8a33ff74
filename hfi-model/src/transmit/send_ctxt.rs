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
//!   split an 8-byte `pwrite`; `DESIGN.md` "PIO"). 8·n-byte stores (vfio-user may pass 16, 32 or
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
mod tests {
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
        out.iter()
            .filter_map(|e| if let TxEffect::Packet(p) = e { Some(p) } else { None })
            .collect()
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

    /// 4-byte halves combine in either order (`DESIGN.md` "PIO": the transport can split
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
}
