//! DC block: DCC, LCB and the 8051 micro-controller's host interface (hfi1
//! `chip_registers.h`, `chip.h`, `firmware.c`).

use crate::bar0::{DC_8051, DC_LCB, DC_TOP};
use crate::field::Field;

/// DCC_CFG_RESET: reset controls of the LCB and the receive/transmit flit processing engines.
pub const DCC_CFG_RESET: u64 = DC_TOP;
/// DCC_CFG_RESET.ResetLcb.
pub const DCC_CFG_RESET_RESET_LCB: Field = Field::bit(0);
/// DCC_CFG_RESET.ResetRxFpe.
pub const DCC_CFG_RESET_RESET_RX_FPE: Field = Field::bit(2);
/// DCC_CFG_PORT_CONFIG: MTU capability and the port's logical link state.
pub const DCC_CFG_PORT_CONFIG: u64 = DC_TOP + 0x8;
/// DCC_CFG_PORT_CONFIG.MtuCap.
pub const DCC_CFG_PORT_CONFIG_MTU_CAP: Field = Field::new(32, 3);
/// DCC_CFG_PORT_CONFIG.LinkState (one of [`lstate`]).
pub const DCC_CFG_PORT_CONFIG_LINK_STATE: Field = Field::new(48, 3);
/// DCC_CFG_LED_CNTRL (storage; hfi1 writes 0 to hand the LEDs to the DC).
pub const DCC_CFG_LED_CNTRL: u64 = DC_TOP + 0x40;
/// DCC_ERR_FLG (read-only flags; cleared through DCC_ERR_FLG_CLR).
pub const DCC_ERR_FLG: u64 = DC_TOP + 0x50;

/// DC_LCB_CFG_RUN: the LCB runs (transmits and trains) while En is set.
pub const DC_LCB_CFG_RUN: u64 = DC_LCB;
/// DC_LCB_CFG_RUN.En.
pub const DC_LCB_CFG_RUN_EN: Field = Field::bit(0);
/// DC_LCB_CFG_TX_FIFOS_RESET: the transmit FIFOs are held in reset while Val is set.
pub const DC_LCB_CFG_TX_FIFOS_RESET: u64 = DC_LCB + 0x8;
/// DC_LCB_CFG_TX_FIFOS_RESET.Val.
pub const DC_LCB_CFG_TX_FIFOS_RESET_VAL: Field = Field::bit(0);
/// DC_LCB_CFG_LOOPBACK: LCB loopback mode (hfi1 writes 2 for LCB loopback, 0 for none).
pub const DC_LCB_CFG_LOOPBACK: u64 = DC_LCB + 0xF8;
/// DC_LCB_CFG_LOOPBACK.Val.
pub const DC_LCB_CFG_LOOPBACK_VAL: Field = Field::new(0, 2);
/// DC_LCB_CFG_LANE_WIDTH.
pub const DC_LCB_CFG_LANE_WIDTH: u64 = DC_LCB + 0x100;
/// DC_LCB_CFG_ALLOW_LINK_UP: the LCB may report the link up to the 8051.
pub const DC_LCB_CFG_ALLOW_LINK_UP: u64 = DC_LCB + 0x128;
/// DC_LCB_ERR_FLG (read-only flags).
pub const DC_LCB_ERR_FLG: u64 = DC_LCB + 0x300;
/// DC_LCB_ERR_CLR (write 1 to clear DC_LCB_ERR_FLG bits).
pub const DC_LCB_ERR_CLR: u64 = DC_LCB + 0x308;
/// DC_LCB_ERR_EN.
pub const DC_LCB_ERR_EN: u64 = DC_LCB + 0x310;
/// DC_LCB_STS_LINK_TRANSFER_ACTIVE (LCB link transfer active; polled on quick link-up).
pub const DC_LCB_STS_LINK_TRANSFER_ACTIVE: u64 = DC_LCB + 0x468;
/// DC_LCB_STS_ROUND_TRIP_LTP_CNT (read-only).
pub const DC_LCB_STS_ROUND_TRIP_LTP_CNT: u64 = DC_LCB + 0x4B0;

/// DC_DC8051_CFG_RAM_ACCESS_SETUP: RAM select and auto-increment.
pub const DC_DC8051_CFG_RAM_ACCESS_SETUP: u64 = DC_8051;
/// DC_DC8051_CFG_RAM_ACCESS_SETUP.RamSel (0: data RAM, 1: code RAM).
pub const DC_DC8051_CFG_RAM_ACCESS_SETUP_RAM_SEL: Field = Field::bit(0);
/// DC_DC8051_CFG_RAM_ACCESS_SETUP.AutoIncrAddr.
pub const DC_DC8051_CFG_RAM_ACCESS_SETUP_AUTO_INCR_ADDR: Field = Field::bit(8);
/// DC_DC8051_CFG_RAM_ACCESS_CTRL: address and read/write enables.
pub const DC_DC8051_CFG_RAM_ACCESS_CTRL: u64 = DC_8051 + 0x8;
/// DC_DC8051_CFG_RAM_ACCESS_CTRL.Address (byte address; bits 2:0 ignored on reads).
pub const DC_DC8051_CFG_RAM_ACCESS_CTRL_ADDRESS: Field = Field::new(0, 15);
/// DC_DC8051_CFG_RAM_ACCESS_CTRL.ReadEna.
pub const DC_DC8051_CFG_RAM_ACCESS_CTRL_READ_ENA: Field = Field::bit(16);
/// DC_DC8051_CFG_RAM_ACCESS_CTRL.WriteEna.
pub const DC_DC8051_CFG_RAM_ACCESS_CTRL_WRITE_ENA: Field = Field::bit(24);
/// DC_DC8051_CFG_RAM_ACCESS_WR_DATA.
pub const DC_DC8051_CFG_RAM_ACCESS_WR_DATA: u64 = DC_8051 + 0x10;
/// DC_DC8051_CFG_RAM_ACCESS_STATUS (read-only).
pub const DC_DC8051_CFG_RAM_ACCESS_STATUS: u64 = DC_8051 + 0x18;
/// DC_DC8051_CFG_RAM_ACCESS_STATUS.AccessCompleted.
pub const DC_DC8051_CFG_RAM_ACCESS_STATUS_ACCESS_COMPLETED: Field = Field::bit(16);
/// DC_DC8051_CFG_RAM_ACCESS_RD_DATA (read-only).
pub const DC_DC8051_CFG_RAM_ACCESS_RD_DATA: u64 = DC_8051 + 0x20;

/// DC_DC8051_CFG_HOST_CMD_0: the host's command to the 8051.
pub const DC_DC8051_CFG_HOST_CMD_0: u64 = DC_8051 + 0x28;
/// DC_DC8051_CFG_HOST_CMD_0.ReqNew: 0 → 1 hands the command to the 8051.
pub const DC_DC8051_CFG_HOST_CMD_0_REQ_NEW: Field = Field::bit(0);
/// DC_DC8051_CFG_HOST_CMD_0.ReqType (one of [`hcmd`]).
pub const DC_DC8051_CFG_HOST_CMD_0_REQ_TYPE: Field = Field::new(8, 8);
/// DC_DC8051_CFG_HOST_CMD_0.ReqData.
pub const DC_DC8051_CFG_HOST_CMD_0_REQ_DATA: Field = Field::new(16, 48);
/// DC_DC8051_CFG_HOST_CMD_1 (read-only): the 8051's answer.
pub const DC_DC8051_CFG_HOST_CMD_1: u64 = DC_8051 + 0x30;
/// DC_DC8051_CFG_HOST_CMD_1.Completed.
pub const DC_DC8051_CFG_HOST_CMD_1_COMPLETED: Field = Field::bit(0);
/// DC_DC8051_CFG_HOST_CMD_1.ReturnCode (one of [`hcmd_ret`]).
pub const DC_DC8051_CFG_HOST_CMD_1_RETURN_CODE: Field = Field::new(8, 8);
/// DC_DC8051_CFG_HOST_CMD_1.RspData.
pub const DC_DC8051_CFG_HOST_CMD_1_RSP_DATA: Field = Field::new(16, 48);
/// DC_DC8051_CFG_LOCAL_GUID (read-only): the node GUID the 8051 reports.
pub const DC_DC8051_CFG_LOCAL_GUID: u64 = DC_8051 + 0x38;
/// DC_DC8051_STS_REMOTE_GUID (read-only): the link neighbour's node GUID.
pub const DC_DC8051_STS_REMOTE_GUID: u64 = DC_8051 + 0x40;
/// DC_DC8051_STS_REMOTE_NODE_TYPE (read-only): the neighbour's node type (0: HFI).
pub const DC_DC8051_STS_REMOTE_NODE_TYPE: u64 = DC_8051 + 0x48;
/// DC_DC8051_STS_LOCAL_FM_SECURITY (read-only).
pub const DC_DC8051_STS_LOCAL_FM_SECURITY: u64 = DC_8051 + 0x50;
/// DC_DC8051_STS_REMOTE_FM_SECURITY (read-only).
pub const DC_DC8051_STS_REMOTE_FM_SECURITY: u64 = DC_8051 + 0x58;
/// DC_DC8051_STS_CUR_STATE (read-only): physical port state and firmware state.
pub const DC_DC8051_STS_CUR_STATE: u64 = DC_8051 + 0x60;
/// DC_DC8051_STS_CUR_STATE.Port (one of [`pls`]).
pub const DC_DC8051_STS_CUR_STATE_PORT: Field = Field::new(0, 8);
/// DC_DC8051_STS_CUR_STATE.Firmware ([`FIRMWARE_READY`] once the 8051 takes host requests).
pub const DC_DC8051_STS_CUR_STATE_FIRMWARE: Field = Field::new(16, 8);
/// Firmware state of an 8051 ready for host requests (`wait_fm_ready`).
pub const FIRMWARE_READY: u64 = 0xA0;
/// DC_DC8051_CFG_RST: 8051 reset controls.
pub const DC_DC8051_CFG_RST: u64 = DC_8051 + 0x68;
/// DC_DC8051_CFG_RST.M8051W: the 8051 core is held in reset while set.
pub const DC_DC8051_CFG_RST_M8051W: Field = Field::bit(0);
/// DC_DC8051_CFG_RST.Cram (code RAM reset).
pub const DC_DC8051_CFG_RST_CRAM: Field = Field::bit(1);
/// DC_DC8051_CFG_RST.Dram (data RAM reset).
pub const DC_DC8051_CFG_RST_DRAM: Field = Field::bit(2);
/// DC_DC8051_CFG_MODE (general mode bits; 0x2 disables the self-GUID check in loopback).
pub const DC_DC8051_CFG_MODE: u64 = DC_8051 + 0x70;
/// DC_DC8051_DBG_ERR_INFO_SET_BY_8051 (read-only): what the last SetBy8051 flag was about.
pub const DC_DC8051_DBG_ERR_INFO_SET_BY_8051: u64 = DC_8051 + 0xD8;
/// DC_DC8051_DBG_ERR_INFO_SET_BY_8051.HostMsg (bits of [`host_msg`]).
pub const DC_DC8051_DBG_ERR_INFO_SET_BY_8051_HOST_MSG: Field = Field::new(0, 16);
/// DC_DC8051_DBG_ERR_INFO_SET_BY_8051.Error (error flags).
pub const DC_DC8051_DBG_ERR_INFO_SET_BY_8051_ERROR: Field = Field::new(16, 32);
/// DC_DC8051_ERR_FLG (read-only flags; SetBy8051 signals host messages).
pub const DC_DC8051_ERR_FLG: u64 = DC_8051 + 0xE0;
/// DC_DC8051_ERR_FLG.SetBy8051: the 8051 posted a host message or error.
pub const DC_DC8051_ERR_FLG_SET_BY_8051: Field = Field::bit(0);
/// DC_DC8051_ERR_FLG.Lost8051HeartBeat.
pub const DC_DC8051_ERR_FLG_LOST_8051_HEART_BEAT: Field = Field::bit(1);
/// DC_DC8051_ERR_CLR (write 1 to clear DC_DC8051_ERR_FLG bits).
pub const DC_DC8051_ERR_CLR: u64 = DC_8051 + 0xE8;
/// DC_DC8051_ERR_EN: which DC_DC8051_ERR_FLG bits raise the DC 8051 interrupt source.
pub const DC_DC8051_ERR_EN: u64 = DC_8051 + 0xF0;
/// DC_DC8051_CFG_CSR_ACCESS_SEL: who may access the LCB (Lcb) and DCC (Dcc) CSRs.
pub const DC_DC8051_CFG_CSR_ACCESS_SEL: u64 = DC_8051 + 0x110;
/// DC_DC8051_CFG_EXT_DEV_0: the host's answer to an 8051 request.
pub const DC_DC8051_CFG_EXT_DEV_0: u64 = DC_8051 + 0x118;
/// DC_DC8051_CFG_EXT_DEV_1: an 8051 request to the host.
pub const DC_DC8051_CFG_EXT_DEV_1: u64 = DC_8051 + 0x120;
/// DC_DC8051_STS_REMOTE_PORT_NO (read-only): the neighbour's port number.
pub const DC_DC8051_STS_REMOTE_PORT_NO: u64 = DC_8051 + 0x130;

/// Interrupt source of the DC 8051 (CCE_INT_* bit): IS_DC_START (248) + 2; the DC sources
/// are DCC error 0, LCB error 1, 8051 2, LBM 3.
pub const IS_DC8051_INT: u64 = 248 + 2;

/// DC_DC8051_STS_CUR_STATE.Port: physical link states (PLS_*); bits 7:4 are the major state.
pub mod pls {
    /// Disabled.
    pub const DISABLED: u64 = 0x30;
    /// Offline (offline.quiet; any 0x9x is an offline substate).
    pub const OFFLINE: u64 = 0x90;
    /// Polling (polling.quiet).
    pub const POLLING: u64 = 0x20;
    /// ConfigLT.Configure.
    pub const CONFIGLT: u64 = 0x48;
    /// LinkUp.
    pub const LINKUP: u64 = 0x50;
    /// Internal SerDes loopback (a command target only).
    pub const INTERNAL_SERDES_LOOPBACK: u64 = 0xE1;
    /// Quick LinkUp (a command target only: LinkUp without LNI).
    pub const QUICK_LINKUP: u64 = 0xE2;
    /// The major state (bits 7:4) of a physical state.
    pub const fn major(state: u64) -> u64 {
        state & 0xF0
    }
}

/// DCC_CFG_PORT_CONFIG.LinkState: logical link states (LSTATE_*).
pub mod lstate {
    /// Down.
    pub const DOWN: u64 = 0x1;
    /// Init (the hardware enters it on link up).
    pub const INIT: u64 = 0x2;
    /// Armed (written by the host).
    pub const ARMED: u64 = 0x3;
    /// Active (written by the host).
    pub const ACTIVE: u64 = 0x4;
}

/// DC_DC8051_DBG_ERR_INFO_SET_BY_8051.HostMsg bits.
pub mod host_msg {
    /// A host request completed.
    pub const HOST_REQ_DONE: u64 = 1 << 0;
    /// An SMA idle message arrived (read it with READ_LCB_IDLE_MSG).
    pub const BC_SMA_MSG: u64 = 1 << 2;
    /// An idle message of another type arrived.
    pub const BC_IDLE_UNKNOWN_MSG: u64 = 1 << 4;
    /// VerifyCap frames were received.
    pub const VERIFY_CAP_FRAME: u64 = 1 << 6;
    /// The physical link reached LinkUp.
    pub const LINKUP_ACHIEVED: u64 = 1 << 7;
    /// The link is going down.
    pub const LINK_GOING_DOWN: u64 = 1 << 8;
}

/// 8051 configuration fields ("firmware registers") in the 8051 data RAM: general fields at
/// `4 * field`, lane fields at `4 * NUM_GENERAL_FIELDS + lane * 4 * NUM_LANE_FIELDS + 4 * field`.
pub mod config {
    /// Number of general fields.
    pub const NUM_GENERAL_FIELDS: u64 = 0x17;
    /// Number of fields per lane.
    pub const NUM_LANE_FIELDS: u64 = 0x8;
    /// Number of lanes with lane fields.
    pub const NUM_LANES: u64 = 4;
    /// Lane id naming the general fields.
    pub const GENERAL_CONFIG: u64 = 4;
    /// TX_SETTINGS.
    pub const TX_SETTINGS: u64 = 0x06;
    /// VERIFY_CAP_LOCAL_LINK_MODE (written as VERIFY_CAP_LOCAL_LINK_WIDTH).
    pub const VERIFY_CAP_LOCAL_LINK_MODE: u64 = 0x09;
    /// RESERVED_REGISTERS (holds the host interface version).
    pub const RESERVED_REGISTERS: u64 = 0x0b;
    /// LOCAL_LNI_INFO.
    pub const LOCAL_LNI_INFO: u64 = 0x0c;
    /// LINK_DOWN_REASON (byte 0 of field 0x16).
    pub const LINK_DOWN_REASON: u64 = 0x16;
    /// TX_SETTINGS.EnableLaneTx.
    pub const ENABLE_LANE_TX: crate::field::Field32 = crate::field::Field32::new(0, 8);
    /// LOCAL_LNI_INFO.EnableLaneRx.
    pub const ENABLE_LANE_RX: crate::field::Field32 = crate::field::Field32::new(16, 8);
    /// LINK_DOWN_REASON: the host asked for offline.
    pub const LDR_RECEIVED_HOST_OFFLINE_REQ: u32 = 0xc;
    /// LOAD/READ_CONFIG_DATA request data: field id.
    pub const REQ_FIELD_ID: crate::field::Field = crate::field::Field::new(40, 8);
    /// LOAD/READ_CONFIG_DATA request data: lane id.
    pub const REQ_LANE_ID: crate::field::Field = crate::field::Field::new(32, 8);
    /// LOAD/READ_CONFIG_DATA request data: the 32-bit value.
    pub const REQ_DATA: crate::field::Field = crate::field::Field::new(0, 32);

    /// Byte address of a field in the 8051 data RAM; `None` for a field or lane that does not
    /// exist.
    pub const fn address(field: u64, lane: u64) -> Option<u64> {
        if lane == GENERAL_CONFIG {
            if field < NUM_GENERAL_FIELDS {
                Some(4 * field)
            } else {
                None
            }
        } else if lane < NUM_LANES && field < NUM_LANE_FIELDS {
            Some(4 * NUM_GENERAL_FIELDS + lane * 4 * NUM_LANE_FIELDS + 4 * field)
        } else {
            None
        }
    }
}

/// 8051 data memory size in bytes (DC8051_DATA_MEM_SIZE).
pub const DC8051_DATA_MEM_SIZE: u64 = 0x1000;

/// MISC host command functions (REQ_DATA bits 47:40).
pub mod hcmd_misc {
    /// The host asks for the LCB CSRs.
    pub const REQUEST_LCB_ACCESS: u64 = 0x1;
    /// The host hands the LCB CSRs to the 8051.
    pub const GRANT_LCB_ACCESS: u64 = 0x2;
}

/// Idle flit messages (SEND/READ_LCB_IDLE_MSG request data).
pub mod idle {
    /// Message type (bits 3:0).
    pub const MSG_TYPE: crate::field::Field = crate::field::Field::new(0, 4);
    /// Payload (bits 47:8).
    pub const PAYLOAD: crate::field::Field = crate::field::Field::new(8, 40);
    /// SMA message type.
    pub const SMA: u64 = 0x3;
}

/// 8051 host command types (DC_DC8051_CFG_HOST_CMD_0.ReqType).
pub mod hcmd {
    /// LOAD_CONFIG_DATA.
    pub const LOAD_CONFIG_DATA: u64 = 0x01;
    /// READ_CONFIG_DATA.
    pub const READ_CONFIG_DATA: u64 = 0x02;
    /// CHANGE_PHY_STATE.
    pub const CHANGE_PHY_STATE: u64 = 0x03;
    /// SEND_LCB_IDLE_MSG.
    pub const SEND_LCB_IDLE_MSG: u64 = 0x04;
    /// MISC.
    pub const MISC: u64 = 0x05;
    /// READ_LCB_IDLE_MSG.
    pub const READ_LCB_IDLE_MSG: u64 = 0x06;
    /// READ_LCB_CSR.
    pub const READ_LCB_CSR: u64 = 0x07;
    /// WRITE_LCB_CSR.
    pub const WRITE_LCB_CSR: u64 = 0x08;
    /// INTERFACE_TEST.
    pub const INTERFACE_TEST: u64 = 0xff;
}

/// 8051 host command return codes (DC_DC8051_CFG_HOST_CMD_1.ReturnCode).
pub mod hcmd_ret {
    /// The command was not carried out. hfi1 (WFR) names only SUCCESS; the later Omni-Path
    /// drivers name 0x1 "invalid".
    pub const INVALID: u64 = 0x1;
    /// The command was carried out (`HCMD_SUCCESS`).
    pub const SUCCESS: u64 = 0x2;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worked_offsets_and_fields() {
        assert_eq!(DC_DC8051_CFG_HOST_CMD_0, 0x60_2028);
        assert_eq!(DC_DC8051_CFG_HOST_CMD_1, 0x60_2030);
        assert_eq!(DC_DC8051_CFG_LOCAL_GUID, 0x60_2038);
        assert_eq!(DC_LCB_STS_LINK_TRANSFER_ACTIVE, 0x60_1468);
        assert_eq!(DC_DC8051_ERR_CLR, 0x60_20E8);
        assert_eq!(DC_DC8051_DBG_ERR_INFO_SET_BY_8051, 0x60_20D8);
        assert_eq!(DC_DC8051_STS_REMOTE_PORT_NO, 0x60_2130);
        assert_eq!(DCC_CFG_PORT_CONFIG, 0x60_0008);
        assert_eq!(DC_LCB_CFG_ALLOW_LINK_UP, 0x60_1128);
        assert_eq!(DCC_CFG_PORT_CONFIG_LINK_STATE.smask(), 0x7_0000_0000_0000);
        assert_eq!(IS_DC8051_INT / 64, 3, "CCE_INT_STATUS[3]");
        // read_8051_config addressing (chip.c): TX_SETTINGS, a lane field, invalid ids.
        assert_eq!(config::address(config::TX_SETTINGS, config::GENERAL_CONFIG), Some(0x18));
        assert_eq!(config::address(0, 0), Some(0x5C));
        assert_eq!(config::address(7, 3), Some(0x5C + 3 * 32 + 28));
        assert_eq!(config::address(0x17, config::GENERAL_CONFIG), None);
        assert_eq!(config::address(8, 0), None);
        assert_eq!(config::address(0, 5), None);
        assert_eq!(pls::major(0x94), pls::OFFLINE);
        let cmd = DC_DC8051_CFG_HOST_CMD_0_REQ_TYPE.encode(hcmd::CHANGE_PHY_STATE)
            | DC_DC8051_CFG_HOST_CMD_0_REQ_DATA.encode(0x90)
            | DC_DC8051_CFG_HOST_CMD_0_REQ_NEW.encode(1);
        assert_eq!(cmd, 0x0090_0301);
        assert_eq!(DC_DC8051_CFG_RAM_ACCESS_CTRL_READ_ENA.smask(), 0x1_0000);
        assert_eq!(DC_DC8051_CFG_RAM_ACCESS_STATUS_ACCESS_COMPLETED.smask(), 0x1_0000);
    }
}
