//! Behaviour behind the chip CSRs of [`crate::regs::chip::CHIP_REGS`]: the read hooks and
//! write side effects the table names by [`ReadHook`] and [`Side`] tags, and the state that is
//! not plain storage (SBus, the 8051). The table of what each register does is in
//! [`crate::regs::chip`]. The per-engine SDMA and per-send-context CSRs of the engines and
//! contexts the device has are served by the transmit units (`device/tx.rs`) before this table
//! is consulted; only the blocks of engines or contexts beyond the configured counts reach it.

use hfi_abi::{asic, dc, txe};
use vm_memory::GuestAddressSpace;

use crate::counters::Counters;
use crate::device::HfiDevice;
use crate::link::dc8051::{Dc8051, LinkChange};
use crate::link::dcc;
use crate::link::lcb::LcbCfg;
use crate::regs::chip::{CHIP_REGS, PIO_INIT_TRIGGERS};
use crate::regs::{Access, ReadHook, RegSpec, Side, Slot};

/// State behind the chip registers that is not plain storage.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChipState {
    /// ASIC_STS_SBUS_RESULT.
    pub sbus_result: u64,
    /// ASIC_STS_SBUS_COUNTERS.ExecuteCnt (16 bits, wraps).
    pub sbus_execute_cnt: u16,
    /// ASIC_STS_SBUS_COUNTERS.RcvDataValidCnt (16 bits, wraps).
    pub sbus_valid_cnt: u16,
    /// The 8051.
    pub dc8051: Dc8051,
}

impl ChipState {
    /// Runs one SBus request: the result the chip reports for it.
    fn sbus_execute(&mut self, request: u64, c: &mut Counters) {
        let cmd = asic::ASIC_CFG_SBUS_REQUEST_COMMAND.get(request);
        // Result codes: a read completes with SBUS_READ_COMPLETE (firmware.c checks it); the
        // codes of writes (1) and resets (0) are a choice (hfi1 does not look at them).
        let code = match cmd {
            asic::sbus_cmd::READ => asic::SBUS_READ_COMPLETE,
            asic::sbus_cmd::WRITE => 1,
            _ => 0,
        };
        self.sbus_result = asic::ASIC_STS_SBUS_RESULT_DONE.encode(1)
            | asic::ASIC_STS_SBUS_RESULT_RCV_DATA_VALID.encode(1)
            | asic::ASIC_STS_SBUS_RESULT_RESULT_CODE.encode(code)
            | asic::ASIC_STS_SBUS_RESULT_DATA_OUT.encode(0);
        self.sbus_execute_cnt = self.sbus_execute_cnt.wrapping_add(1);
        self.sbus_valid_cnt = self.sbus_valid_cnt.wrapping_add(1);
        c.sbus_request_count += 1;
    }

    fn sbus_counters(&self) -> u64 {
        asic::ASIC_STS_SBUS_COUNTERS_EXECUTE_CNT.encode(u64::from(self.sbus_execute_cnt))
            | asic::ASIC_STS_SBUS_COUNTERS_RCV_DATA_VALID_CNT.encode(u64::from(self.sbus_valid_cnt))
    }
}

/// ASIC_QSFPn_IN for the host's OE and OUT: no module is plugged, so ModPrsN and IntN read 1
/// (deasserted); the host-driven pins (I2C clock/data, ResetN) read the driven level where the
/// output is enabled and 1 (pulled up) where it is not.
pub fn qsfp_in(oe: u64, out: u64) -> u64 {
    use asic::qsfp_pin::*;
    let host = I2CCLK.smask() | I2CDAT.smask() | RESET_N.smask();
    let driven = (out & oe) | !oe;
    (driven & host) | INT_N.smask() | MODPRST_N.smask()
}

impl<M: GuestAddressSpace> HfiDevice<M> {
    fn chip_stored(&self, off: u64) -> u64 {
        self.dec
            .chip
            .decode(off)
            .and_then(|s| self.chip.get(usize::from(s.slot)))
            .copied()
            .unwrap_or(0)
    }

    pub(crate) fn read_chip(&self, s: Slot) -> u64 {
        let Some(spec) = CHIP_REGS.get(usize::from(s.spec)) else {
            return 0;
        };
        let elt = u64::from(s.elt);
        match spec.read {
            ReadHook::SendContexts => u64::from(self.cfg.send_contexts),
            ReadHook::SdmaEngines => u64::from(self.cfg.sdma_engines),
            ReadHook::PioMemSize => self.cfg.pio_mem_size,
            ReadHook::SdmaMemSize => self.cfg.sdma_mem_size,
            ReadHook::LocalGuid => self.cfg.node_guid,
            ReadHook::SbusResult => self.chip_state.sbus_result,
            ReadHook::SbusCounters => self.chip_state.sbus_counters(),
            ReadHook::QsfpIn => {
                let oe = asic::ASIC_QSFP_OE.offset(elt).map_or(0, |o| self.chip_stored(o));
                let out = asic::ASIC_QSFP_OUT.offset(elt).map_or(0, |o| self.chip_stored(o));
                qsfp_in(oe, out)
            }
            ReadHook::HostCmd1 => self.chip_state.dc8051.host_cmd_1(),
            ReadHook::RamAccessStatus => {
                Dc8051::ram_access_status(self.chip_stored(dc::DC_DC8051_CFG_RAM_ACCESS_CTRL))
            }
            ReadHook::RamRdData => self.chip_state.dc8051.ram_rd_data(
                self.chip_stored(dc::DC_DC8051_CFG_RAM_ACCESS_SETUP),
                self.chip_stored(dc::DC_DC8051_CFG_RAM_ACCESS_CTRL),
            ),
            ReadHook::CurState => self.chip_state.dc8051.cur_state(),
            ReadHook::Dc8051ErrFlg => self.chip_state.dc8051.err_flg(),
            ReadHook::Dc8051ErrInfo => self.chip_state.dc8051.err_info(),
            ReadHook::RemoteGuid if self.chip_state.dc8051.link_up_in_loopback() => {
                self.cfg.node_guid
            }
            ReadHook::RemotePortNo if self.chip_state.dc8051.link_up_in_loopback() => 1,
            ReadHook::RemoteGuid | ReadHook::RemotePortNo => 0,
            ReadHook::LcbTransferActive => {
                u64::from(self.lcb_cfg().transfer_active(self.chip_state.dc8051.link_up()))
            }
            _ => self.chip.get(usize::from(s.slot)).copied().unwrap_or(0),
        }
    }

    /// The LCB configuration CSRs.
    pub(crate) fn lcb_cfg(&self) -> LcbCfg {
        LcbCfg {
            run: self.chip_stored(dc::DC_LCB_CFG_RUN),
            tx_fifos_reset: self.chip_stored(dc::DC_LCB_CFG_TX_FIFOS_RESET),
            dcc_reset: self.chip_stored(dc::DCC_CFG_RESET),
            loopback: self.chip_stored(dc::DC_LCB_CFG_LOOPBACK),
            allow_link_up: self.chip_stored(dc::DC_LCB_CFG_ALLOW_LINK_UP),
        }
    }

    /// True while the 8051 trains a quick link-up: [`Self::finish_link_training`] is due once
    /// the training time has passed (the owner of time calls it; the vfio-user server after a
    /// wall-clock delay, tests directly).
    pub fn link_training_pending(&self) -> bool {
        self.chip_state.dc8051.training()
    }

    /// Ends the 8051's link training: LinkUp (logical Init, LINKUP_ACHIEVED and the DC 8051
    /// interrupt) if the LCB is still ready.
    pub fn finish_link_training(&mut self) {
        let pending = self.dc8051_pending();
        let ready = self.lcb_cfg().ready_for_link_up();
        let change = self.chip_state.dc8051.finish_training(ready, &mut self.counters);
        self.link_changed(change);
        if self.dc8051_pending() & !pending != 0 {
            self.counters.dc8051_intr_count += 1;
            self.raise_source(dc::IS_DC8051_INT);
        }
    }

    /// The physical link changed: the hardware moves the logical state (DCC_CFG_PORT_CONFIG).
    fn link_changed(&mut self, change: LinkChange) {
        let slot = self.dec.chip.decode(dc::DCC_CFG_PORT_CONFIG).map(|s| usize::from(s.slot));
        if let Some(r) = slot.and_then(|i| self.chip.get_mut(i)) {
            let f = dc::DCC_CFG_PORT_CONFIG_LINK_STATE;
            *r = f.set(*r, dcc::on_link(f.get(*r), change));
        }
    }

    /// DC_DC8051_ERR_FLG bits that raise the DC 8051 interrupt (enabled in DC_DC8051_ERR_EN).
    fn dc8051_pending(&self) -> u64 {
        self.chip_state.dc8051.err_flg() & self.chip_stored(dc::DC_DC8051_ERR_EN)
    }

    pub(crate) fn write_chip(&mut self, s: Slot, spec: &RegSpec, v: u64) {
        let i = usize::from(s.slot);
        let Some(mut cur) = self.chip.get(i).copied() else {
            return;
        };
        let (old, new) = self.masked_store(spec, &mut cur, v);
        if spec.access == Access::Ro {
            return;
        }
        let pending = self.dc8051_pending();
        let stored = match spec.side {
            Side::SendCtrl => txe::SEND_CTRL_CM_RESET.set(new, 0),
            Side::PioInitCtxt => {
                if new & PIO_INIT_TRIGGERS != 0 {
                    self.counters.tx_pio_init_count += 1;
                    self.tx_pio_init(new);
                }
                new & !PIO_INIT_TRIGGERS
            }
            Side::SbusRequest => {
                let exec = self.chip_stored(asic::ASIC_CFG_SBUS_EXECUTE);
                if asic::ASIC_CFG_SBUS_EXECUTE_FAST_MODE.get(exec) == 1 {
                    self.chip_state.sbus_execute(new, &mut self.counters);
                }
                new
            }
            Side::SbusExecute => {
                let go = asic::ASIC_CFG_SBUS_EXECUTE_EXECUTE;
                match (go.get(old) == 1, go.get(new) == 1) {
                    (false, true) => {
                        let req = self.chip_stored(asic::ASIC_CFG_SBUS_REQUEST);
                        self.chip_state.sbus_execute(req, &mut self.counters);
                    }
                    (true, false) => self.chip_state.sbus_result = 0,
                    _ => {}
                }
                new
            }
            Side::AsicMutex => {
                if old != 0 && new != 0 && new != old {
                    // Held by the other HFI: the write does not take it.
                    self.counters.asic_mutex_busy_count += 1;
                    old
                } else {
                    new
                }
            }
            Side::HostCmd0 => {
                let lcb = self.lcb_cfg();
                let change = self.chip_state.dc8051.host_cmd_0_written(
                    old,
                    new,
                    lcb.ready_for_link_up(),
                    lcb.loopback(),
                    &mut self.counters,
                );
                self.link_changed(change);
                new
            }
            Side::RamAccessCtrl => {
                self.chip_state.dc8051.ram_ctrl_written(new);
                new
            }
            Side::RamWrData => {
                let setup = self.chip_stored(dc::DC_DC8051_CFG_RAM_ACCESS_SETUP);
                let ctrl = self.chip_stored(dc::DC_DC8051_CFG_RAM_ACCESS_CTRL);
                self.chip_state.dc8051.ram_wr_data_written(setup, ctrl, new, &mut self.counters);
                new
            }
            Side::Dc8051Rst => {
                let change = self.chip_state.dc8051.rst_written(old, new);
                self.link_changed(change);
                new
            }
            Side::Dc8051ErrClr => {
                self.chip_state.dc8051.clear_flags(v);
                0
            }
            Side::SdmaEngErrClear => 0,
            Side::PortConfig => {
                let f = dc::DCC_CFG_PORT_CONFIG_LINK_STATE;
                let state = dcc::host_write(f.get(old), f.get(new), &mut self.counters);
                f.set(new, state)
            }
            _ => new,
        };
        if let Some(dst) = self.chip.get_mut(i) {
            *dst = stored;
        }
        // The DC 8051 source follows ERR_FLG & ERR_EN: a newly set bit raises it.
        if self.dc8051_pending() & !pending != 0 {
            self.counters.dc8051_intr_count += 1;
            self.raise_source(dc::IS_DC8051_INT);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qsfp_pins_without_a_module() {
        use asic::qsfp_pin::*;
        // Nothing driven: everything reads high, i.e. no module and no interrupt.
        assert_eq!(qsfp_in(0, 0), ALL);
        // The host drives clock low and reset high: IN follows.
        let oe = I2CCLK.smask() | RESET_N.smask();
        let out = RESET_N.smask();
        let v = qsfp_in(oe, out);
        assert_eq!(I2CCLK.get(v), 0);
        assert_eq!(RESET_N.get(v), 1);
        assert_eq!(MODPRST_N.get(v), 1, "module absent");
        // The module pins cannot be driven by the host.
        assert_eq!(qsfp_in(ALL, 0) & (INT_N.smask() | MODPRST_N.smask()), 0x18);
    }

    #[test]
    fn sbus_codes_and_counters() {
        let mut s = ChipState::default();
        let mut c = Counters::default();
        let read = asic::ASIC_CFG_SBUS_REQUEST_COMMAND.encode(asic::sbus_cmd::READ);
        s.sbus_execute(read, &mut c);
        assert_eq!(asic::ASIC_STS_SBUS_RESULT_RESULT_CODE.get(s.sbus_result), 4);
        assert_eq!(s.sbus_counters(), 0x1_0001);
        s.sbus_execute_cnt = u16::MAX;
        s.sbus_valid_cnt = u16::MAX;
        s.sbus_execute(read, &mut c);
        assert_eq!(s.sbus_counters(), 0, "16-bit counters wrap together");
        assert_eq!(c.sbus_request_count, 2);
    }
}
