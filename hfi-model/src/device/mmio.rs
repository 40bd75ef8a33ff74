//! MMIO entry and dispatch for BAR0, driven by the register tables in [`crate::regs`] (the
//! offset map is [`crate::regs::Decoders::bar0`]).
//!
//! Policy (see `docs/registers.md`, "Unknown and bad accesses"): accesses must be 4 or 8 bytes, aligned
//! to their size and inside BAR0; anything else is counted and ignored (reads return 0). An
//! 8-byte register may be accessed as two 4-byte halves: a half write merges into the current
//! value for storage registers and into zero for action registers (clear/force). Writes to
//! read-only registers or read-only bits are counted and those bits kept. Offsets no table
//! decodes fall back to the generic CSR file ([`crate::regs::csr_file`]) in the UC CSR ranges; only
//! what lies outside them (the unused RcvArray window, the PIO space outside a packet) reads 0
//! and drops writes, counted. RcvArray entries take 8-byte writes; a low-half 4-byte write is
//! latched and committed together with the following high half (WRITE_ENABLE is bit 63).
//! The per-send-context and per-SDMA-engine CSR blocks and the PIO space go to the transmit
//! units first (`device/tx.rs`); offsets they do not decode fall through to the tables.

use hfi_abi::{bar0, rxe};
use rcvarray::WriteOutcome;
use vm_memory::GuestAddressSpace;

use crate::device::{HfiDevice, RCV_ARRAY_LOG_MAX};
use crate::regs::chip::CHIP_REGS;
use crate::regs::{
    kreg, Access, ReadHook, RegSpec, Side, Slot, Target, GLOBAL_REGS, KERNEL_REGS, USER_REGS,
};

impl<M: GuestAddressSpace> HfiDevice<M> {
    fn decode(&self, reg_off: u64) -> Target {
        self.dec.bar0(reg_off, self.cfg.num_contexts, self.cfg.rcv_array_cnt)
    }

    /// CSR census of one decoded access.
    fn note_csr(&mut self, reg_off: u64, t: Target, write: bool) {
        if !matches!(t, Target::RcvArray(_) | Target::Pio) {
            self.csr.note(reg_off, write, &mut self.counters);
        }
    }

    /// Checks size, alignment and range; counts and returns false when the access is bad.
    fn access_ok(&mut self, offset: u64, len: usize) -> bool {
        if len != 4 && len != 8 {
            self.counters.mmio_bad_size_count += 1;
            return false;
        }
        if offset.checked_add(len as u64).is_none_or(|end| end > bar0::BAR0_SIZE) {
            self.counters.mmio_out_of_range_count += 1;
            return false;
        }
        if offset % len as u64 != 0 {
            self.counters.mmio_misaligned_count += 1;
            return false;
        }
        true
    }

    /// MMIO read of `data.len()` bytes (4 or 8) at BAR0 `offset`, little-endian.
    pub fn mmio_read(&mut self, offset: u64, data: &mut [u8]) {
        data.fill(0);
        if !self.access_ok(offset, data.len()) {
            return;
        }
        let reg_off = offset & !7;
        let target = self.decode(reg_off);
        self.note_csr(reg_off, target, false);
        let tx = match target {
            Target::Chip(_) | Target::Generic => self.tx_read(reg_off),
            _ => None,
        };
        let v = match target {
            _ if tx.is_some() => tx.unwrap_or(0),
            Target::Global(s) => self.read_global(s),
            Target::Chip(s) => self.read_chip(s),
            Target::Generic => self.csr.read(reg_off, &mut self.counters),
            Target::Kernel(c, s) => self.read_ctxt(c, s, KERNEL_REGS, true),
            Target::User(c, s) => self.read_ctxt(c, s, USER_REGS, false),
            Target::RcvArray(i) => self.rcv_array.read(i).map_or(0, |e| e.raw()),
            Target::Pio | Target::Unknown => {
                self.counters.mmio_unknown_read_count += 1;
                0
            }
        };
        let bytes = if data.len() == 4 {
            let half = if offset & 4 != 0 { v >> 32 } else { v };
            (half as u32).to_le_bytes().to_vec()
        } else {
            v.to_le_bytes().to_vec()
        };
        data.copy_from_slice(bytes.get(..data.len()).unwrap_or(&[]));
    }

    /// MMIO write of `data.len()` bytes (4 or 8) at BAR0 `offset`, little-endian.
    pub fn mmio_write(&mut self, offset: u64, data: &[u8]) {
        if !self.access_ok(offset, data.len()) {
            return;
        }
        let reg_off = offset & !7;
        let half = if data.len() == 4 { Some(offset & 4 != 0) } else { None };
        let raw = match data.len() {
            4 => u64::from(u32::from_le_bytes(data.try_into().unwrap_or([0; 4]))),
            _ => u64::from_le_bytes(data.try_into().unwrap_or([0; 8])),
        };
        let target = self.decode(reg_off);
        self.note_csr(reg_off, target, true);
        if matches!(target, Target::Chip(_) | Target::Generic) && self.tx_write(reg_off, raw, half)
        {
            return;
        }
        match target {
            Target::Chip(s) => {
                if let Some(spec) = CHIP_REGS.get(usize::from(s.spec)).copied() {
                    let cur = self.chip.get(usize::from(s.slot)).copied().unwrap_or(0);
                    let v = merge_half(&spec, cur, raw, half);
                    self.write_chip(s, &spec, v);
                }
            }
            Target::Generic => {
                let cur = self.csr.peek(reg_off);
                let v = match half {
                    None => raw,
                    Some(false) => (cur & 0xFFFF_FFFF_0000_0000) | raw,
                    Some(true) => (cur & 0xFFFF_FFFF) | (raw << 32),
                };
                self.csr.write(reg_off, v, &mut self.counters);
            }
            Target::Global(s) => {
                let spec = GLOBAL_REGS.get(usize::from(s.spec)).copied();
                let cur = self.global.get(usize::from(s.slot)).copied().unwrap_or(0);
                if let Some(spec) = spec {
                    let v = merge_half(&spec, cur, raw, half);
                    self.write_global(s, &spec, v);
                }
            }
            Target::Kernel(c, s) => {
                let cur = self
                    .ctxts
                    .get(c as usize)
                    .and_then(|x| x.kregs.get(usize::from(s.slot)))
                    .copied();
                if let (Some(spec), Some(cur)) =
                    (KERNEL_REGS.get(usize::from(s.spec)).copied(), cur)
                {
                    let v = merge_half(&spec, cur, raw, half);
                    self.write_ctxt(c, s, &spec, v, true);
                }
            }
            Target::User(c, s) => {
                let cur = self
                    .ctxts
                    .get(c as usize)
                    .and_then(|x| x.uregs.get(usize::from(s.slot)))
                    .copied();
                if let (Some(spec), Some(cur)) = (USER_REGS.get(usize::from(s.spec)).copied(), cur)
                {
                    let v = merge_half(&spec, cur, raw, half);
                    self.write_ctxt(c, s, &spec, v, false);
                }
            }
            Target::RcvArray(i) => self.write_rcv_array(i, raw, half),
            Target::Pio => self.tx_pio_write(offset, raw, data.len()),
            Target::Unknown => self.counters.mmio_unknown_write_count += 1,
        }
    }

    /// 32-bit MMIO read.
    pub fn read32(&mut self, offset: u64) -> u32 {
        let mut b = [0u8; 4];
        self.mmio_read(offset, &mut b);
        u32::from_le_bytes(b)
    }

    /// 64-bit MMIO read.
    pub fn read64(&mut self, offset: u64) -> u64 {
        let mut b = [0u8; 8];
        self.mmio_read(offset, &mut b);
        u64::from_le_bytes(b)
    }

    /// 32-bit MMIO write.
    pub fn write32(&mut self, offset: u64, v: u32) {
        self.mmio_write(offset, &v.to_le_bytes());
    }

    /// 64-bit MMIO write.
    pub fn write64(&mut self, offset: u64, v: u64) {
        self.mmio_write(offset, &v.to_le_bytes());
    }

    fn read_global(&self, s: Slot) -> u64 {
        let Some(spec) = GLOBAL_REGS.get(usize::from(s.spec)) else {
            return 0;
        };
        match spec.read {
            ReadHook::Revision => {
                use hfi_abi::cce::*;
                CCE_REVISION_CHIP_REV_MINOR.encode(u64::from(self.cfg.chip_rev_minor))
                    | CCE_REVISION_CHIP_REV_MAJOR.encode(u64::from(self.cfg.chip_rev_major))
            }
            ReadHook::Revision2 => {
                use hfi_abi::cce::*;
                CCE_REVISION2_IMPL_CODE.encode(icode::FUNCTIONAL_SIMULATOR)
                    | CCE_REVISION2_IMPL_REVISION.encode(u64::from(self.cfg.impl_revision))
            }
            ReadHook::RcvContexts => u64::from(self.cfg.num_contexts),
            ReadHook::RcvArrayCnt => u64::from(self.cfg.rcv_array_cnt),
            ReadHook::RcvStatus => {
                rxe::RCV_STATUS_RX_RBUF_INIT_DONE.encode(u64::from(self.rbuf_init_done))
            }
            ReadHook::IntStatus => self.ints.status.get(usize::from(s.elt)).copied().unwrap_or(0),
            _ => self.global.get(usize::from(s.slot)).copied().unwrap_or(0),
        }
    }

    fn read_ctxt(&self, c: u32, s: Slot, table: &[RegSpec], kernel: bool) -> u64 {
        let (Some(ctx), Some(spec)) = (self.ctxts.get(c as usize), table.get(usize::from(s.spec)))
        else {
            return 0;
        };
        match spec.read {
            ReadHook::CtxtStatus => {
                rxe::RCV_CTXT_STATUS_BLOCKED_RHQ_FULL.encode(u64::from(ctx.blocked_rhq_full))
            }
            ReadHook::HdrOvflCnt => ctx.hdr_ovfl,
            ReadHook::HdrTail => u64::from(ctx.rhq_tail_visible),
            ReadHook::EgrIndexTail => u64::from(ctx.egr_cur),
            ReadHook::EgrOffsetTail => ctx.egr_used / 64,
            _ => {
                let regs: &[u64] = if kernel { &ctx.kregs } else { &ctx.uregs };
                regs.get(usize::from(s.slot)).copied().unwrap_or(0)
            }
        }
    }

    /// Applies the writable mask; returns (old, new) or None for non-storage registers.
    pub(crate) fn masked_store(&mut self, spec: &RegSpec, slot: &mut u64, v: u64) -> (u64, u64) {
        let old = *slot;
        match spec.access {
            Access::Rw => {
                if (v ^ old) & !spec.writable != 0 {
                    self.counters.mmio_read_only_write_count += 1;
                }
                *slot = (old & !spec.writable) | (v & spec.writable);
            }
            Access::Ro => self.counters.mmio_read_only_write_count += 1,
            Access::W1c | Access::Wo => {}
        }
        (old, *slot)
    }

    fn write_global(&mut self, s: Slot, spec: &RegSpec, v: u64) {
        let i = usize::from(s.slot);
        let Some(mut cur) = self.global.get(i).copied() else {
            return;
        };
        let (old, new) = self.masked_store(spec, &mut cur, v);
        if let Some(dst) = self.global.get_mut(i) {
            *dst = cur;
        }
        if spec.access == Access::Ro {
            return;
        }
        let elt = usize::from(s.elt);
        match spec.side {
            Side::None => {}
            Side::RcvCtrl if rxe::RCV_CTRL_RX_RBUF_INIT.get(new) == 1 => {
                // RxRbufInit completes at once and self-clears.
                self.rbuf_init_done = true;
                if let Some(dst) = self.global.get_mut(i) {
                    *dst = rxe::RCV_CTRL_RX_RBUF_INIT.set(new, 0);
                }
            }
            Side::RcvErrClear => {
                if let Some(st) = self.global.get_mut(self.gslots.rcv_err_status) {
                    *st &= !v;
                }
            }
            Side::IntMask => {
                let map =
                    self.global.get(self.gslots.int_map..self.gslots.int_map + 96).unwrap_or(&[]);
                self.ints.mask_changed(elt, old, new, map, &mut self.counters);
            }
            Side::IntClear => self.ints.clear(elt, v),
            Side::IntForce => {
                let mut bits = v;
                while bits != 0 {
                    let b = u64::from(bits.trailing_zeros());
                    bits &= bits - 1;
                    self.raise_source(elt as u64 * 64 + b);
                }
            }
            _ => {}
        }
    }

    fn write_ctxt(&mut self, c: u32, s: Slot, spec: &RegSpec, v: u64, kernel: bool) {
        let i = usize::from(s.slot);
        let Some(ctx) = self.ctxts.get(c as usize) else {
            return;
        };
        let regs: &[u64] = if kernel { &ctx.kregs } else { &ctx.uregs };
        let Some(mut cur) = regs.get(i).copied() else {
            return;
        };
        let (old, new) = self.masked_store(spec, &mut cur, v);
        let Some(ctx) = self.ctxts.get_mut(c as usize) else {
            return;
        };
        let regs: &mut [u64] = if kernel { &mut ctx.kregs } else { &mut ctx.uregs };
        if let Some(dst) = regs.get_mut(i) {
            *dst = cur;
        }
        match spec.side {
            Side::RcvCtxtCtrl => self.ctxt_ctrl_written(c, old, new),
            Side::RcvHdrHead => {
                if let Some(ctx) = self.ctxts.get_mut(c as usize) {
                    ctx.intr_pending = 0;
                    ctx.timer_armed = false;
                    ctx.timer_gen += 1;
                }
                self.retry_backlog(c);
            }
            Side::RcvEgrIndexHead => self.retry_backlog(c),
            _ => {}
        }
    }

    fn ctxt_ctrl_written(&mut self, c: u32, old: u64, new: u64) {
        let en = rxe::RCV_CTXT_CTRL_ENABLE;
        let Some(ctx) = self.ctxts.get_mut(c as usize) else {
            return;
        };
        match (en.get(old) == 1, en.get(new) == 1) {
            (false, true) => {
                if ctx.rhq().is_none() {
                    self.counters.ctxt_bad_config_count += 1;
                    ctx.kregs[kreg::CTRL] = en.set(new, 0);
                } else {
                    ctx.latch_enable();
                    self.counters.ctxt_enable_count += 1;
                }
            }
            (true, false) => {
                let dropped = ctx.disable();
                self.drop_packets(dropped);
            }
            _ => {}
        }
    }

    fn write_rcv_array(&mut self, i: u32, raw: u64, half: Option<bool>) {
        let value = match half {
            None => raw,
            Some(false) => {
                self.rcv_array_latch = Some((i, raw as u32));
                self.counters.rcvarray_half_write_count += 1;
                return;
            }
            Some(true) => {
                let low = match self.rcv_array_latch.take() {
                    Some((li, low)) if li == i => u64::from(low),
                    _ => self.rcv_array.read(i).map_or(0, |e| e.raw() & 0xFFFF_FFFF),
                };
                (raw << 32) | low
            }
        };
        match self.rcv_array.write(i, value) {
            WriteOutcome::Stored => {
                self.counters.rcvarray_write_count += 1;
                if let Some(log) =
                    self.rcv_array_log.as_mut().filter(|l| l.len() < RCV_ARRAY_LOG_MAX)
                {
                    log.push((i, value));
                }
            }
            WriteOutcome::IgnoredWriteDisabled => self.counters.rcvarray_write_disabled_count += 1,
            WriteOutcome::OutOfRange => self.counters.mmio_unknown_write_count += 1,
        }
    }
}

/// Merges a 4-byte half write into the value the 8-byte write will carry.
fn merge_half(spec: &RegSpec, cur: u64, raw: u64, half: Option<bool>) -> u64 {
    let base = match spec.access {
        Access::Rw | Access::Ro => cur,
        Access::W1c | Access::Wo => 0,
    };
    match half {
        None => raw,
        Some(false) => (base & 0xFFFF_FFFF_0000_0000) | (raw & 0xFFFF_FFFF),
        Some(true) => (base & 0xFFFF_FFFF) | (raw << 32),
    }
}
