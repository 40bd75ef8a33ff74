//! DC block: DCC, LCB and the 8051 micro-controller's host interface (hfi1
//! `chip_registers.h`, `chip.h`, `firmware.c`).

use crate::bar0::{DC_8051, DC_LCB, DC_TOP};
use crate::field::Field;

/// DCC_ERR_FLG (read-only flags; cleared through DCC_ERR_FLG_CLR).
pub const DCC_ERR_FLG: u64 = DC_TOP + 0x50;
/// DC_LCB_ERR_FLG (read-only flags).
pub const DC_LCB_ERR_FLG: u64 = DC_LCB + 0x300;
/// DC_LCB_STS_LINK_TRANSFER_ACTIVE (LCB link transfer active; polled on quick link-up).
pub const DC_LCB_STS_LINK_TRANSFER_ACTIVE: u64 = DC_LCB + 0x468;

/// DC_DC8051_CFG_RAM_ACCESS_SETUP: RAM select and auto-increment.
pub const DC_DC8051_CFG_RAM_ACCESS_SETUP: u64 = DC_8051;
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
/// DC_DC8051_STS_CUR_STATE (read-only): physical port state and firmware state.
pub const DC_DC8051_STS_CUR_STATE: u64 = DC_8051 + 0x60;
/// DC_DC8051_ERR_FLG (read-only flags; SetBy8051 signals host messages).
pub const DC_DC8051_ERR_FLG: u64 = DC_8051 + 0xE0;

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
        let cmd = DC_DC8051_CFG_HOST_CMD_0_REQ_TYPE.encode(hcmd::CHANGE_PHY_STATE)
            | DC_DC8051_CFG_HOST_CMD_0_REQ_DATA.encode(0x90)
            | DC_DC8051_CFG_HOST_CMD_0_REQ_NEW.encode(1);
        assert_eq!(cmd, 0x0090_0301);
        assert_eq!(DC_DC8051_CFG_RAM_ACCESS_CTRL_READ_ENA.smask(), 0x1_0000);
        assert_eq!(DC_DC8051_CFG_RAM_ACCESS_STATUS_ACCESS_COMPLETED.smask(), 0x1_0000);
    }
}
