//! One SDMA engine: its per-engine CSRs (TXE + 0x200000 + 0x100 · engine), the descriptor
//! ring walk on a TAIL write, the DMA reads of the packets, SEND_DMA_HEAD and its write-back,
//! the engine's interrupts, and halting on error with hfi1's recovery sequence.
//!
//! Sources (Debian linux-source-6.1 6.1.172):
//! - **Ring.** `LEN_GEN.Length · 64` descriptors at SEND_DMA_BASE_ADDR; hfi1 writes LEN_GEN
//!   twice, the second time with Generation bit 2 set, "to enable generation checking and load
//!   the internal generation counter" (`sdma.c` sdma_setlengen 1948-1965): the 0 → 1 edge of
//!   that bit loads the counter from Generation bits 1:0; it steps at every wrap
//!   ([`super::descriptor::RingPos`]). hfi1 advances SEND_DMA_TAIL after writing descriptors
//!   (`sdma.c` sdma_update_tail 1967-1972) and reads SEND_DMA_HEAD to complete requests
//!   (`sdma.c` sdma_gethead 1660-1715, sdma_make_progress 1784-1845: a request is done once
//!   the head passes its last descriptor).
//! - **Head.** The head moves past a packet once the packet is read, at the packet's ready
//!   time; a read of SEND_DMA_HEAD at time `t` sees the completions up to `t`. When a completed
//!   packet has a HEAD_TO_HOST descriptor the new head is DMA-written (a u64) to
//!   SEND_DMA_HEAD_ADDR (`sdma.c` 2027; hfi1 reads it only with USE_SDMA_HEAD, 1672-1676,
//!   and sets HEAD_TO_HOST on every last descriptor when the idle timeout is on, 1365-1371).
//! - **Interrupts** (all gated by SEND_DMA_CTRL.SDmaIntEnable, which hfi1 sets in the idle and
//!   running states, `sdma.c` action table 114-188): INT_REQ on a completed packet →
//!   SDma (192 + engine); every SEND_DMA_DESC_CNT descriptors → SDmaProgress (208 + engine;
//!   hfi1 rewrites DESC_CNT in each engine interrupt, 1853-1867, which restarts the count);
//!   when the ring drains, RELOAD_CNT cclocks later → SDmaIdle (224 + engine; RELOAD_CNT 0 means
//!   none, and hfi1 then puts INT_REQ on every packet instead, 1365-1371). `chip.c`
//!   is_sdma_eng_int 8135-8155 decodes the three groups.
//! - **Errors.** A bad descriptor, a TAIL beyond the ring or a read of unbacked memory halts
//!   the engine: SEND_DMA_STATUS.EngHalted and the SEND_DMA_ENG_ERR_STATUS bit
//!   ([`super::descriptor`] lists the mapping), and source 16 + engine when the bit is in
//!   SEND_DMA_ENG_ERR_MASK (not gated by SDmaIntEnable: hfi1 takes the start-up halt error with
//!   interrupts disabled). hfi1 then (`sdma.c` sdma_engine_error 1873-1897, state machine
//!   2964-2975, 2680-2690, sdma_err_halt_wait 418-445, sdma_sw_clean_up_task 566-611,
//!   sdma_hw_clean_up_task 506-526, sdma_hw_start_up 1978-1995) writes CTRL with everything off
//!   (the halt stays), polls EngHalted, reads HEAD for what completed, sets SDmaCleanup and
//!   polls EngCleanedUp, rewrites LEN_GEN, sets TAIL 0 and enables again. Clean-up therefore
//!   clears the halt, sets EngCleanedUp and resets the head to 0 ("a hardware clean … will
//!   reset the hardware head", 586-587); SDmaEnable 0 → 1 clears EngCleanedUp. SDmaHalt 0 → 1
//!   halts with SDmaHaltErr (the start-up sequence s10 → s15 → s20 → s99 of the former
//!   `sdma.rs` is kept bit for bit).
//! - **Checks.** SEND_DMA_CHECK_* are stored only (no packet check is modelled on SDMA).

use std::collections::VecDeque;

use hfi_abi::{txe, Field};
use vm_memory::{Bytes, GuestAddress};

use super::descriptor::{self, DescError, Gathered, Ring, RingPos};
use super::effects::{TxCounters, TxDmaKind, TxEffect, TxPacket, TxSource, TxTiming};
use crate::time::SimTime;

/// Number of SEND_DMA_CHECK_* registers (0x80 ..= 0xA8).
const NUM_CHECKS: usize = 6;

/// One SDMA engine.
#[derive(Clone, Debug)]
pub struct SdmaEngine {
    idx: u32,
    timing: TxTiming,
    ctrl: u64,
    base_addr: u64,
    len_gen: u64,
    tail: u64,
    head_addr: u64,
    priority_thld: u64,
    reload_cnt: u64,
    desc_cnt: u64,
    memory: u64,
    err_mask: u64,
    err_status: u64,
    checks: [u64; NUM_CHECKS],
    halted: bool,
    cleaned_up: bool,
    /// Where the engine continues: the head after the last completed packet.
    pos: RingPos,
    /// SEND_DMA_HEAD as of the completions already taken off `completions`.
    visible_head: u64,
    /// (ready time, head after that packet), in time order.
    completions: VecDeque<(SimTime, u64)>,
    /// Descriptors completed since DESC_CNT was written or the last SDmaProgress.
    progress: u64,
    /// Descriptors fetched (SEND_DMA_DESC_FETCHED_CNT).
    desc_fetched: u64,
    /// When the engine finishes what it has been given.
    busy_until: SimTime,
}

fn flag(word: u64, f: Field) -> bool {
    f.get(word) == 1
}

impl SdmaEngine {
    /// Engine `idx` in its reset state.
    pub fn new(idx: u32, timing: TxTiming) -> Self {
        Self {
            idx,
            timing,
            ctrl: 0,
            base_addr: 0,
            len_gen: 0,
            tail: 0,
            head_addr: 0,
            priority_thld: 0,
            reload_cnt: 0,
            desc_cnt: 0,
            memory: 0,
            err_mask: 0,
            err_status: 0,
            checks: [0; NUM_CHECKS],
            halted: false,
            cleaned_up: false,
            pos: RingPos::default(),
            visible_head: 0,
            completions: VecDeque::new(),
            progress: 0,
            desc_fetched: 0,
            busy_until: SimTime::ZERO,
        }
    }

    /// The engine number.
    pub fn index(&self) -> u32 {
        self.idx
    }

    /// Replaces the timing parameters.
    pub fn set_timing(&mut self, timing: TxTiming) {
        self.timing = timing;
    }

    /// SEND_DMA_STATUS.EngHalted.
    pub fn halted(&self) -> bool {
        self.halted
    }

    /// Enabled and not halted: descriptors are processed.
    pub fn running(&self) -> bool {
        flag(self.ctrl, txe::SEND_DMA_CTRL_SDMA_ENABLE) && !self.halted
    }

    /// Descriptors in the ring (`LEN_GEN.Length · 64`).
    pub fn ring_count(&self) -> u64 {
        txe::SEND_DMA_LEN_GEN_LENGTH.get(self.len_gen) * txe::SEND_DMA_LEN_GEN_UNIT
    }

    /// SEND_DMA_HEAD as seen at `now`.
    pub fn read_head(&self, now: SimTime) -> u64 {
        let mut head = self.visible_head;
        for (t, h) in &self.completions {
            if *t > now {
                break;
            }
            head = *h;
        }
        head
    }

    /// Where the engine will continue (the head once every issued completion has landed).
    pub fn committed_head(&self) -> u64 {
        self.pos.index
    }

    /// SEND_DMA_STATUS.
    pub fn status(&self) -> u64 {
        txe::SEND_DMA_STATUS_ENG_HALTED.encode(self.halted.into())
            | txe::SEND_DMA_STATUS_ENG_CLEANED_UP.encode(self.cleaned_up.into())
    }

    /// SEND_DMA_ENG_ERR_STATUS.
    pub fn err_status(&self) -> u64 {
        self.err_status
    }

    /// Reads the CSR at offset `reg` of the engine's 0x100-byte block at `now`; `None` for
    /// offsets this unit does not decode.
    pub fn read_csr(&self, reg: u64, now: SimTime) -> Option<u64> {
        Some(match reg {
            txe::SEND_DMA_CTRL => self.ctrl,
            txe::SEND_DMA_STATUS => self.status(),
            txe::SEND_DMA_BASE_ADDR => self.base_addr,
            txe::SEND_DMA_LEN_GEN => self.len_gen,
            txe::SEND_DMA_TAIL => self.tail,
            txe::SEND_DMA_HEAD => self.read_head(now),
            txe::SEND_DMA_HEAD_ADDR => self.head_addr,
            txe::SEND_DMA_PRIORITY_THLD => self.priority_thld,
            txe::SEND_DMA_IDLE_CNT => 0,
            txe::SEND_DMA_RELOAD_CNT => self.reload_cnt,
            txe::SEND_DMA_DESC_CNT => self.desc_cnt,
            txe::SEND_DMA_DESC_FETCHED_CNT => self.desc_fetched,
            txe::SEND_DMA_ENG_ERR_STATUS => self.err_status,
            txe::SEND_DMA_ENG_ERR_MASK => self.err_mask,
            txe::SEND_DMA_ENG_ERR_CLEAR => 0,
            txe::SEND_DMA_MEMORY => self.memory,
            r => return check_slot(r).and_then(|i| self.checks.get(i).copied()),
        })
    }

    /// Writes the CSR at offset `reg` of the engine's block at `now`. A TAIL write (or an
    /// enable) makes the engine walk its ring, reading descriptors and data from `mem`.
    /// `None` for offsets this unit does not decode.
    pub fn write_csr<M: Bytes<GuestAddress> + ?Sized>(
        &mut self,
        now: SimTime,
        reg: u64,
        value: u64,
        mem: &M,
        c: &mut TxCounters,
    ) -> Option<Vec<TxEffect>> {
        let mut out = Vec::new();
        self.prune(now);
        match reg {
            txe::SEND_DMA_CTRL => self.write_ctrl(now, value, mem, c, &mut out),
            txe::SEND_DMA_BASE_ADDR => self.base_addr = value,
            txe::SEND_DMA_LEN_GEN => {
                let msb = |v: u64| txe::SEND_DMA_LEN_GEN_GENERATION.get(v) & 4 != 0;
                if msb(value) && !msb(self.len_gen) {
                    self.pos.gen = txe::SEND_DMA_LEN_GEN_GENERATION.get(value) & 3;
                }
                self.len_gen = value
                    & (txe::SEND_DMA_LEN_GEN_LENGTH.smask()
                        | txe::SEND_DMA_LEN_GEN_GENERATION.smask());
            }
            txe::SEND_DMA_TAIL => return Some(self.write_tail(now, value, mem, c)),
            txe::SEND_DMA_HEAD_ADDR => self.head_addr = value,
            txe::SEND_DMA_PRIORITY_THLD => self.priority_thld = value,
            txe::SEND_DMA_RELOAD_CNT => self.reload_cnt = value,
            txe::SEND_DMA_DESC_CNT => {
                self.desc_cnt = value;
                self.progress = 0;
            }
            txe::SEND_DMA_MEMORY => self.memory = value,
            txe::SEND_DMA_ENG_ERR_MASK => {
                let before = self.err_status & self.err_mask;
                self.err_mask = value;
                self.raise_err_if_new(now, before, c, &mut out);
            }
            txe::SEND_DMA_ENG_ERR_CLEAR => self.err_status &= !value,
            txe::SEND_DMA_STATUS
            | txe::SEND_DMA_HEAD
            | txe::SEND_DMA_IDLE_CNT
            | txe::SEND_DMA_DESC_FETCHED_CNT
            | txe::SEND_DMA_ENG_ERR_STATUS => c.tx_csr_read_only_write_count += 1,
            r => {
                let slot = check_slot(r).and_then(|i| self.checks.get_mut(i))?;
                *slot = value;
            }
        }
        Some(out)
    }

    /// SEND_DMA_TAIL = `value`: the engine processes the descriptors up to it if it runs.
    pub fn write_tail<M: Bytes<GuestAddress> + ?Sized>(
        &mut self,
        now: SimTime,
        value: u64,
        mem: &M,
        c: &mut TxCounters,
    ) -> Vec<TxEffect> {
        let mut out = Vec::new();
        self.prune(now);
        self.tail = txe::SEND_DMA_TAIL_TAIL.get(value);
        self.run(now, mem, c, &mut out);
        out
    }

    /// Internal consistency: what a proptest checks after every step.
    pub fn check_invariants(&self) -> Result<(), String> {
        if self.halted && self.cleaned_up {
            return Err("halted and cleaned up at once".into());
        }
        if self.err_status & !txe::SDMA_ENG_HALT_ERRS != 0 {
            return Err(format!("undefined error bits {:#x}", self.err_status));
        }
        if self.pos.gen > 3 {
            return Err("generation out of range".into());
        }
        if self.desc_cnt != 0 && self.progress >= self.desc_cnt {
            return Err(format!("progress {} ≥ DESC_CNT {}", self.progress, self.desc_cnt));
        }
        let mut last = SimTime::ZERO;
        for (t, h) in &self.completions {
            if *t < last || *h > txe::SEND_DMA_TAIL_TAIL.mask() {
                return Err("completions out of order".into());
            }
            last = *t;
        }
        if let Some((_, h)) = self.completions.back() {
            if *h != self.pos.index {
                return Err(format!("last completion {h} ≠ position {}", self.pos.index));
            }
        }
        Ok(())
    }

    // ---- internals ------------------------------------------------------------------------

    fn ring(&self) -> Ring {
        Ring {
            base: self.base_addr,
            count: self.ring_count(),
            gen_check: txe::SEND_DMA_LEN_GEN_GENERATION.get(self.len_gen) & 4 != 0,
        }
    }

    /// Takes the completions that have landed by `now` off the queue.
    fn prune(&mut self, now: SimTime) {
        while let Some((t, h)) = self.completions.front().copied() {
            if t > now {
                break;
            }
            self.visible_head = h;
            self.completions.pop_front();
        }
    }

    fn write_ctrl<M: Bytes<GuestAddress> + ?Sized>(
        &mut self,
        now: SimTime,
        new: u64,
        mem: &M,
        c: &mut TxCounters,
        out: &mut Vec<TxEffect>,
    ) {
        let old = self.ctrl;
        let rising = |f: Field| flag(new, f) && !flag(old, f);
        if rising(txe::SEND_DMA_CTRL_SDMA_HALT) {
            self.halt(now, txe::SEND_DMA_ENG_ERR_STATUS_SDMA_HALT_ERR, c, out);
        }
        if flag(new, txe::SEND_DMA_CTRL_SDMA_CLEANUP) {
            self.clean_up();
        }
        if rising(txe::SEND_DMA_CTRL_SDMA_ENABLE) {
            self.cleaned_up = false;
        }
        // The clean-up bit is an action: it does not stick.
        self.ctrl = txe::SEND_DMA_CTRL_SDMA_CLEANUP.set(new, 0);
        if rising(txe::SEND_DMA_CTRL_SDMA_ENABLE) {
            self.run(now, mem, c, out);
        }
    }

    fn clean_up(&mut self) {
        self.halted = false;
        self.cleaned_up = true;
        self.pos = RingPos::default();
        self.visible_head = 0;
        self.completions.clear();
        self.progress = 0;
    }

    fn halt(&mut self, time: SimTime, bit: Field, c: &mut TxCounters, out: &mut Vec<TxEffect>) {
        let before = self.err_status & self.err_mask;
        self.err_status |= bit.smask();
        self.halted = true;
        self.cleaned_up = false;
        self.raise_err_if_new(time, before, c, out);
    }

    fn hw_error(
        &mut self,
        time: SimTime,
        e: DescError,
        c: &mut TxCounters,
        out: &mut Vec<TxEffect>,
    ) {
        c.tx_sdma_error_count += 1;
        if e.bit == txe::SEND_DMA_ENG_ERR_STATUS_SDMA_MEM_READ_ERR {
            c.tx_sdma_mem_read_fails += 1;
        }
        if e.bit == txe::SEND_DMA_ENG_ERR_STATUS_SDMA_HEADER_SELECT_ERR {
            c.tx_sdma_ahg_unsupported_count += 1;
        }
        self.halt(time, e.bit, c, out);
    }

    fn raise_err_if_new(
        &mut self,
        time: SimTime,
        before: u64,
        c: &mut TxCounters,
        out: &mut Vec<TxEffect>,
    ) {
        if self.err_status & self.err_mask & !before != 0 {
            c.tx_sdma_eng_err_intr_count += 1;
            let source = txe::IS_SDMAENG_ERR_START + u64::from(self.idx);
            out.push(TxEffect::Interrupt { time, source });
        }
    }

    fn interrupt(&self, time: SimTime, base: u64, out: &mut Vec<TxEffect>) -> bool {
        if flag(self.ctrl, txe::SEND_DMA_CTRL_SDMA_INT_ENABLE) {
            out.push(TxEffect::Interrupt { time, source: base + u64::from(self.idx) });
            true
        } else {
            false
        }
    }

    /// Walks the ring from the current position to the tail.
    fn run<M: Bytes<GuestAddress> + ?Sized>(
        &mut self,
        now: SimTime,
        mem: &M,
        c: &mut TxCounters,
        out: &mut Vec<TxEffect>,
    ) {
        if !self.running() || self.pos.index == self.tail {
            return;
        }
        let ring = self.ring();
        if self.tail >= ring.count || self.pos.index >= ring.count {
            let e = DescError {
                bit: txe::SEND_DMA_ENG_ERR_STATUS_SDMA_TAIL_OUT_OF_BOUNDS_ERR,
                index: self.tail,
            };
            self.hw_error(now, e, c, out);
            return;
        }
        let mut t = if self.busy_until > now {
            self.busy_until
        } else {
            now.plus(self.timing.sdma_desc_fetch_ps).plus(self.timing.pcie_read_latency_ps)
        };
        let mut completed = 0u64;
        while self.pos.index != self.tail {
            let p = match descriptor::gather(mem, &ring, self.pos, self.tail) {
                Gathered::Incomplete => break,
                Gathered::Error(e) => {
                    self.hw_error(t, e, c, out);
                    return;
                }
                Gathered::Packet(p) => p,
            };
            let ndesc = p.descs.len() as u64;
            self.desc_fetched += ndesc;
            let (pbc, bytes) = match descriptor::read_packet(mem, &p) {
                Ok(v) => v,
                Err(e) => {
                    self.hw_error(t, e, c, out);
                    return;
                }
            };
            let work = self.timing.sdma_packet_cycles + self.timing.sdma_desc_cycles * ndesc;
            t = t.plus(self.timing.read_ps(p.total_bytes())).plus(self.timing.cycles_ps(work));
            c.tx_sdma_packet_count += 1;
            c.tx_sdma_desc_count += ndesc;
            c.tx_sdma_bytes += bytes.len() as u64;
            out.push(TxEffect::Packet(TxPacket {
                ready: t,
                source: TxSource::Sdma { engine: self.idx },
                pbc,
                bytes,
            }));
            self.pos = p.next;
            self.completions.push_back((t, self.pos.index));
            completed += 1;
            if p.int_req() && self.interrupt(t, txe::IS_SDMA_START, out) {
                c.tx_sdma_int_req_count += 1;
            }
            if p.head_to_host() {
                if self.head_addr == 0 {
                    c.tx_sdma_head_no_addr_count += 1;
                } else {
                    c.tx_sdma_head_writeback_count += 1;
                    let kind = TxDmaKind::SdmaHead { engine: self.idx };
                    let (addr, value) = (self.head_addr, self.pos.index);
                    out.push(TxEffect::DmaWrite { time: t, addr, value, kind });
                }
            }
            if self.desc_cnt != 0 {
                self.progress += ndesc;
                if self.progress >= self.desc_cnt {
                    self.progress = 0;
                    if self.interrupt(t, txe::IS_SDMA_PROGRESS_START, out) {
                        c.tx_sdma_progress_intr_count += 1;
                    }
                }
            }
        }
        if completed > 0 {
            self.busy_until = t;
            if self.pos.index == self.tail && self.reload_cnt != 0 {
                let idle = t.plus(self.timing.cycles_ps(self.reload_cnt));
                if self.interrupt(idle, txe::IS_SDMA_IDLE_START, out) {
                    c.tx_sdma_idle_intr_count += 1;
                }
            }
        }
    }
}

/// Index of a SEND_DMA_CHECK_* register in the engine's check array.
fn check_slot(reg: u64) -> Option<usize> {
    if (txe::SEND_DMA_CHECK_ENABLE..=txe::SEND_DMA_CHECK_OPCODE).contains(&reg) && reg % 8 == 0 {
        Some(((reg - txe::SEND_DMA_CHECK_ENABLE) / 8) as usize)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
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
            assert_eq!(
                self.r(txe::SEND_DMA_STATUS) & txe::SEND_DMA_STATUS_ENG_HALTED.smask(),
                1 << 56
            );
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
        out.iter()
            .filter_map(|e| if let TxEffect::Packet(p) = e { Some(p) } else { None })
            .collect()
    }

    fn sources(out: &[TxEffect]) -> Vec<u64> {
        out.iter()
            .filter_map(|e| {
                if let TxEffect::Interrupt { source, .. } = e {
                    Some(*source)
                } else {
                    None
                }
            })
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
        let out =
            e.write_csr(t, txe::SEND_DMA_CTRL, op(0, false, false, true, false), &mem, &mut c);
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
}
