//! Chip CSRs the hfi1 probe needs answered (tier A, hfi1-probe §2): identity and size
//! constants, the ASIC SBus/mutex/scratch/QSFP registers, the 8051 host interface, the TXE
//! controls with completion semantics, and the error-status registers that read 0.
//!
//! Behaviour, all completing at once (the model has no clock for these engines):
//!
//! | register | behaviour |
//! |---|---|
//! | SEND_CONTEXTS, SEND_DMA_ENGINES, SEND_PIO_MEM_SIZE, SEND_DMA_MEM_SIZE | constants from [`crate::DeviceConfig`] |
//! | DC_DC8051_CFG_LOCAL_GUID | `DeviceConfig::node_guid` |
//! | SEND_CTRL | storage; CmReset self-clears |
//! | SEND_PIO_INIT_CTXT | storage of PioCtxtNum; the init bits self-clear, InProgress and InitErr read 0 |
//! | ASIC_CFG_SBUS_EXECUTE / ASIC_STS_SBUS_RESULT / _COUNTERS | Execute 0 → 1: Done, RcvDataValid, result code (read: SBUS_READ_COMPLETE), DataOut 0, both counters + 1; Execute 1 → 0: result 0 |
//! | ASIC_CFG_MUTEX | a non-zero write takes it only when it reads 0; 0 releases |
//! | ASIC_CFG_SCRATCH\[4\], ASIC_QSFPn_OE/OUT | storage |
//! | ASIC_QSFPn_IN | no module: ModPrsN = IntN = 1; I2C and ResetN pins read what the host drives (pulled up when not driven) |
//! | DC_DC8051_CFG_HOST_CMD_0/1, RAM_ACCESS_*, CFG_RST, STS_CUR_STATE | the 8051 ([`crate::link::dc8051`]) |
//! | DC_DC8051_ERR_FLG/CLR/EN, DBG_ERR_INFO_SET_BY_8051 | the 8051's host messages; a new enabled flag raises interrupt source 250 (DC 8051) |
//! | DC_DC8051_STS_REMOTE_GUID/PORT_NO | the neighbour while the link is up in LCB loopback: this node's GUID, port 1; else 0 |
//! | DCC_CFG_PORT_CONFIG | storage; LinkState is the logical state, moved by the link and the host ([`crate::link::dcc`]) |
//! | DC_LCB_CFG_RUN/TX_FIFOS_RESET/LOOPBACK/ALLOW_LINK_UP, DCC_CFG_RESET | storage read by the LCB status ([`crate::link::lcb`]) |
//! | DC_LCB_STS_LINK_TRANSFER_ACTIVE | [`crate::link::lcb::LcbCfg::transfer_active`] |
//! | SEND_DMA_CTRL/STATUS/ENG_ERR_STATUS/ENG_ERR_MASK/ENG_ERR_CLEAR\[16\] | halt, clean-up, enable ([`crate::transmit::sdma_status`]); a new unmasked engine error raises source 16 + engine |
//! | CCE/MISC/SEND*/SEND_CTXT _ERR_STATUS, DCC/LCB _ERR_FLG, SEND_CM_CREDIT_USED_STATUS | read-only 0 |
//!
//! Everything else in these blocks is the generic CSR file ([`crate::regs::csr_file`]).

use hfi_abi::{asic, bar0, cce, dc, misc, txe};
use vm_memory::GuestAddressSpace;

use crate::counters::Counters;
use crate::link::dc8051::Dc8051;
use crate::link::dc8051::LinkChange;
use crate::link::dcc;
use crate::device::HfiDevice;
use crate::link::lcb::LcbCfg;
use crate::regs::{array, reg, ro, rw, side, Access, ReadHook, RegSpec, Side, Slot};
use crate::transmit::sdma_status::SdmaEngine;

const HOST_CMD_0_WRITABLE: u64 = dc::DC_DC8051_CFG_HOST_CMD_0_REQ_NEW.smask()
    | dc::DC_DC8051_CFG_HOST_CMD_0_REQ_TYPE.smask()
    | dc::DC_DC8051_CFG_HOST_CMD_0_REQ_DATA.smask();
const RAM_ACCESS_CTRL_WRITABLE: u64 = dc::DC_DC8051_CFG_RAM_ACCESS_CTRL_ADDRESS.smask()
    | dc::DC_DC8051_CFG_RAM_ACCESS_CTRL_READ_ENA.smask()
    | dc::DC_DC8051_CFG_RAM_ACCESS_CTRL_WRITE_ENA.smask();
const PIO_INIT_WRITABLE: u64 = txe::SEND_PIO_INIT_CTXT_PIO_ALL_CTXT_INIT.smask()
    | txe::SEND_PIO_INIT_CTXT_PIO_SINGLE_CTXT_INIT.smask()
    | txe::SEND_PIO_INIT_CTXT_PIO_CTXT_NUM.smask();
const PIO_INIT_TRIGGERS: u64 = txe::SEND_PIO_INIT_CTXT_PIO_ALL_CTXT_INIT.smask()
    | txe::SEND_PIO_INIT_CTXT_PIO_SINGLE_CTXT_INIT.smask();

/// Chip CSRs with behaviour (absolute BAR0 offsets).
pub static CHIP_REGS: &[RegSpec] = &[
    ro("CCE_ERR_STATUS", cce::CCE_ERR_STATUS, ReadHook::Stored),
    // ASIC
    side(rw("ASIC_CFG_SBUS_REQUEST", asic::ASIC_CFG_SBUS_REQUEST, u64::MAX), Side::SbusRequest),
    side(rw("ASIC_CFG_SBUS_EXECUTE", asic::ASIC_CFG_SBUS_EXECUTE, 0x3), Side::SbusExecute),
    ro("ASIC_STS_SBUS_RESULT", asic::ASIC_STS_SBUS_RESULT, ReadHook::SbusResult),
    ro("ASIC_STS_SBUS_COUNTERS", asic::ASIC_STS_SBUS_COUNTERS, ReadHook::SbusCounters),
    array(rw("ASIC_CFG_SCRATCH", asic::ASIC_CFG_SCRATCH.base, u64::MAX), 4, 8),
    side(rw("ASIC_CFG_MUTEX", asic::ASIC_CFG_MUTEX, 0x3), Side::AsicMutex),
    array(ro("ASIC_QSFP_IN", asic::ASIC_QSFP_IN.base, ReadHook::QsfpIn), 2, 0x40),
    array(rw("ASIC_QSFP_OE", asic::ASIC_QSFP_OE.base, asic::qsfp_pin::ALL), 2, 0x40),
    array(rw("ASIC_QSFP_OUT", asic::ASIC_QSFP_OUT.base, asic::qsfp_pin::ALL), 2, 0x40),
    // MISC
    ro("MISC_ERR_STATUS", misc::MISC_ERR_STATUS, ReadHook::Stored),
    // DC
    rw("DCC_CFG_RESET", dc::DCC_CFG_RESET, u64::MAX),
    side(
        reg(
            "DCC_CFG_PORT_CONFIG",
            dc::DCC_CFG_PORT_CONFIG,
            Access::Rw,
            u64::MAX,
            dc::DCC_CFG_PORT_CONFIG_LINK_STATE.encode(crate::link::dcc::RESET_STATE),
        ),
        Side::PortConfig,
    ),
    ro("DCC_ERR_FLG", dc::DCC_ERR_FLG, ReadHook::Stored),
    rw("DC_LCB_CFG_RUN", dc::DC_LCB_CFG_RUN, u64::MAX),
    rw("DC_LCB_CFG_TX_FIFOS_RESET", dc::DC_LCB_CFG_TX_FIFOS_RESET, u64::MAX),
    rw("DC_LCB_CFG_LOOPBACK", dc::DC_LCB_CFG_LOOPBACK, u64::MAX),
    rw("DC_LCB_CFG_ALLOW_LINK_UP", dc::DC_LCB_CFG_ALLOW_LINK_UP, u64::MAX),
    ro("DC_LCB_ERR_FLG", dc::DC_LCB_ERR_FLG, ReadHook::Stored),
    ro(
        "DC_LCB_STS_LINK_TRANSFER_ACTIVE",
        dc::DC_LCB_STS_LINK_TRANSFER_ACTIVE,
        ReadHook::LcbTransferActive,
    ),
    rw("DC_DC8051_CFG_RAM_ACCESS_SETUP", dc::DC_DC8051_CFG_RAM_ACCESS_SETUP, 0x101),
    side(
        rw(
            "DC_DC8051_CFG_RAM_ACCESS_CTRL",
            dc::DC_DC8051_CFG_RAM_ACCESS_CTRL,
            RAM_ACCESS_CTRL_WRITABLE,
        ),
        Side::RamAccessCtrl,
    ),
    side(
        rw("DC_DC8051_CFG_RAM_ACCESS_WR_DATA", dc::DC_DC8051_CFG_RAM_ACCESS_WR_DATA, u64::MAX),
        Side::RamWrData,
    ),
    ro(
        "DC_DC8051_CFG_RAM_ACCESS_STATUS",
        dc::DC_DC8051_CFG_RAM_ACCESS_STATUS,
        ReadHook::RamAccessStatus,
    ),
    ro(
        "DC_DC8051_CFG_RAM_ACCESS_RD_DATA",
        dc::DC_DC8051_CFG_RAM_ACCESS_RD_DATA,
        ReadHook::RamRdData,
    ),
    side(
        rw("DC_DC8051_CFG_HOST_CMD_0", dc::DC_DC8051_CFG_HOST_CMD_0, HOST_CMD_0_WRITABLE),
        Side::HostCmd0,
    ),
    ro("DC_DC8051_CFG_HOST_CMD_1", dc::DC_DC8051_CFG_HOST_CMD_1, ReadHook::HostCmd1),
    ro("DC_DC8051_CFG_LOCAL_GUID", dc::DC_DC8051_CFG_LOCAL_GUID, ReadHook::LocalGuid),
    ro("DC_DC8051_STS_REMOTE_GUID", dc::DC_DC8051_STS_REMOTE_GUID, ReadHook::RemoteGuid),
    // Node type 0: an HFI (the neighbour in LCB loopback is this HFI).
    ro("DC_DC8051_STS_REMOTE_NODE_TYPE", dc::DC_DC8051_STS_REMOTE_NODE_TYPE, ReadHook::Stored),
    ro("DC_DC8051_STS_LOCAL_FM_SECURITY", dc::DC_DC8051_STS_LOCAL_FM_SECURITY, ReadHook::Stored),
    ro("DC_DC8051_STS_REMOTE_FM_SECURITY", dc::DC_DC8051_STS_REMOTE_FM_SECURITY, ReadHook::Stored),
    ro("DC_DC8051_STS_CUR_STATE", dc::DC_DC8051_STS_CUR_STATE, ReadHook::CurState),
    side(rw("DC_DC8051_CFG_RST", dc::DC_DC8051_CFG_RST, 0x1F), Side::Dc8051Rst),
    ro(
        "DC_DC8051_DBG_ERR_INFO_SET_BY_8051",
        dc::DC_DC8051_DBG_ERR_INFO_SET_BY_8051,
        ReadHook::Dc8051ErrInfo,
    ),
    ro("DC_DC8051_ERR_FLG", dc::DC_DC8051_ERR_FLG, ReadHook::Dc8051ErrFlg),
    side(
        reg("DC_DC8051_ERR_CLR", dc::DC_DC8051_ERR_CLR, Access::W1c, u64::MAX, 0),
        Side::Dc8051ErrClr,
    ),
    side(rw("DC_DC8051_ERR_EN", dc::DC_DC8051_ERR_EN, u64::MAX), Side::Dc8051ErrEn),
    ro("DC_DC8051_STS_REMOTE_PORT_NO", dc::DC_DC8051_STS_REMOTE_PORT_NO, ReadHook::RemotePortNo),
    // TXE
    side(rw("SEND_CTRL", txe::SEND_CTRL, u64::MAX), Side::SendCtrl),
    ro("SEND_CONTEXTS", txe::SEND_CONTEXTS, ReadHook::SendContexts),
    ro("SEND_DMA_ENGINES", txe::SEND_DMA_ENGINES, ReadHook::SdmaEngines),
    ro("SEND_PIO_MEM_SIZE", txe::SEND_PIO_MEM_SIZE, ReadHook::PioMemSize),
    ro("SEND_DMA_MEM_SIZE", txe::SEND_DMA_MEM_SIZE, ReadHook::SdmaMemSize),
    side(rw("SEND_PIO_INIT_CTXT", txe::SEND_PIO_INIT_CTXT, PIO_INIT_WRITABLE), Side::PioInitCtxt),
    ro("SEND_PIO_ERR_STATUS", txe::SEND_PIO_ERR_STATUS, ReadHook::Stored),
    ro("SEND_DMA_ERR_STATUS", txe::SEND_DMA_ERR_STATUS, ReadHook::Stored),
    ro("SEND_EGRESS_ERR_STATUS", txe::SEND_EGRESS_ERR_STATUS, ReadHook::Stored),
    ro("SEND_ERR_STATUS", txe::SEND_ERR_STATUS, ReadHook::Stored),
    ro("SEND_CM_CREDIT_USED_STATUS", txe::SEND_CM_CREDIT_USED_STATUS, ReadHook::Stored),
    array(
        ro(
            "SEND_CTXT_ERR_STATUS",
            bar0::TXE_PER_CONTEXT.base + txe::SEND_CTXT_ERR_STATUS,
            ReadHook::Stored,
        ),
        bar0::TXE_PER_CONTEXT.count as u32,
        bar0::TXE_PER_CONTEXT.stride,
    ),
    sdma(side(rw("SEND_DMA_CTRL", SDMA + txe::SEND_DMA_CTRL, u64::MAX), Side::SdmaCtrl)),
    sdma(ro("SEND_DMA_STATUS", SDMA + txe::SEND_DMA_STATUS, ReadHook::SdmaStatus)),
    sdma(ro(
        "SEND_DMA_ENG_ERR_STATUS",
        SDMA + txe::SEND_DMA_ENG_ERR_STATUS,
        ReadHook::SdmaEngErrStatus,
    )),
    sdma(side(
        rw("SEND_DMA_ENG_ERR_MASK", SDMA + txe::SEND_DMA_ENG_ERR_MASK, u64::MAX),
        Side::SdmaEngErrMask,
    )),
    sdma(side(
        reg("SEND_DMA_ENG_ERR_CLEAR", SDMA + txe::SEND_DMA_ENG_ERR_CLEAR, Access::W1c, u64::MAX, 0),
        Side::SdmaEngErrClear,
    )),
];

const SDMA: u64 = bar0::TXE_PER_SDMA.base;

/// One register per SDMA engine.
const fn sdma(r: RegSpec) -> RegSpec {
    array(r, bar0::TXE_PER_SDMA.count as u32, bar0::TXE_PER_SDMA.stride)
}

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
    /// The SDMA engines.
    pub sdma: [SdmaEngine; bar0::TXE_PER_SDMA.count as usize],
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
            ReadHook::SdmaStatus => {
                self.chip_state.sdma.get(s.elt as usize).map_or(0, SdmaEngine::status)
            }
            ReadHook::SdmaEngErrStatus => {
                self.chip_state.sdma.get(s.elt as usize).map_or(0, SdmaEngine::err_status)
            }
            ReadHook::LcbTransferActive => {
                u64::from(self.lcb_cfg().transfer_active(self.chip_state.dc8051.link_up()))
            }
            _ => self.chip.get(usize::from(s.slot)).copied().unwrap_or(0),
        }
    }

    /// The LCB configuration CSRs.
    fn lcb_cfg(&self) -> LcbCfg {
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

    /// SEND_DMA_ENG_ERR_STATUS bits of `engine` that raise its interrupt source.
    fn sdma_pending(&self, engine: usize) -> u64 {
        let mask = bar0::TXE_PER_SDMA
            .offset(engine as u64)
            .map_or(0, |b| self.chip_stored(b + txe::SEND_DMA_ENG_ERR_MASK));
        self.chip_state.sdma.get(engine).map_or(0, SdmaEngine::err_status) & mask
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
        let engine = usize::from(s.elt);
        let sdma_side =
            matches!(spec.side, Side::SdmaCtrl | Side::SdmaEngErrMask | Side::SdmaEngErrClear);
        let sdma_pending = if sdma_side { self.sdma_pending(engine) } else { 0 };
        let stored = match spec.side {
            Side::SendCtrl => txe::SEND_CTRL_CM_RESET.set(new, 0),
            Side::PioInitCtxt => {
                if new & PIO_INIT_TRIGGERS != 0 {
                    self.counters.tx_pio_init_count += 1;
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
            Side::SdmaCtrl => match self.chip_state.sdma.get_mut(engine) {
                Some(e) => e.ctrl_written(old, new),
                None => new,
            },
            Side::SdmaEngErrClear => {
                if let Some(e) = self.chip_state.sdma.get_mut(engine) {
                    e.clear_errors(v);
                }
                0
            }
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
        // An SDMA engine's error source follows ENG_ERR_STATUS & ENG_ERR_MASK the same way.
        if sdma_side && self.sdma_pending(engine) & !sdma_pending != 0 {
            self.counters.sdma_eng_err_intr_count += 1;
            self.raise_source(txe::IS_SDMAENG_ERR_START + engine as u64);
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
