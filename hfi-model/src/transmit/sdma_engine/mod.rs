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
mod tests;
