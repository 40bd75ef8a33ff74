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
//! | SEND_DMA_CTRL/STATUS/ENG_ERR_STATUS/ENG_ERR_MASK/ENG_ERR_CLEAR\[16\] | served by [`crate::transmit::SdmaEngine`] for the configured engines (`device/tx.rs`); storage here only for engines beyond `sdma_engines` |
//! | CCE/MISC/SEND*/SEND_CTXT _ERR_STATUS, DCC/LCB _ERR_FLG, SEND_CM_CREDIT_USED_STATUS | read-only 0 |
//!
//! Everything else in these blocks is the generic CSR file ([`crate::regs::csr_file`]).

use hfi_abi::dc::lstate;
use hfi_abi::{asic, bar0, cce, dc, misc, txe};

use crate::regs::{array, reg, ro, rw, side, Access, ReadHook, RegSpec, Side};

/// DCC_CFG_PORT_CONFIG.LinkState at reset: Down (**choice**: the port has no link; the
/// logical-state machine in [`crate::link::dcc`] starts here).
pub const PORT_RESET_LINK_STATE: u64 = lstate::DOWN;

const HOST_CMD_0_WRITABLE: u64 = dc::DC_DC8051_CFG_HOST_CMD_0_REQ_NEW.smask()
    | dc::DC_DC8051_CFG_HOST_CMD_0_REQ_TYPE.smask()
    | dc::DC_DC8051_CFG_HOST_CMD_0_REQ_DATA.smask();
const RAM_ACCESS_CTRL_WRITABLE: u64 = dc::DC_DC8051_CFG_RAM_ACCESS_CTRL_ADDRESS.smask()
    | dc::DC_DC8051_CFG_RAM_ACCESS_CTRL_READ_ENA.smask()
    | dc::DC_DC8051_CFG_RAM_ACCESS_CTRL_WRITE_ENA.smask();
const PIO_INIT_WRITABLE: u64 = txe::SEND_PIO_INIT_CTXT_PIO_ALL_CTXT_INIT.smask()
    | txe::SEND_PIO_INIT_CTXT_PIO_SINGLE_CTXT_INIT.smask()
    | txe::SEND_PIO_INIT_CTXT_PIO_CTXT_NUM.smask();
/// SEND_PIO_INIT_CTXT bits that start an init (they self-clear).
pub const PIO_INIT_TRIGGERS: u64 = txe::SEND_PIO_INIT_CTXT_PIO_ALL_CTXT_INIT.smask()
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
            dc::DCC_CFG_PORT_CONFIG_LINK_STATE.encode(PORT_RESET_LINK_STATE),
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
