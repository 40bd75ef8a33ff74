//! A stub of the DC's 8051 micro-controller, as far as the hfi1 probe needs it (tier A).
//!
//! - **Host commands** (DC_DC8051_CFG_HOST_CMD_0/1): a ReqNew 0 → 1 write completes the command
//!   at once: HOST_CMD_1 reads Completed with ReturnCode [`STUB_RETURN_CODE`] and RspData 0.
//!   Clearing ReqNew (hfi1 writes HOST_CMD_0 = 0 after taking the answer) clears Completed.
//!   The stub carries out no command: no link state, no configuration RAM. The return code is
//!   therefore not SUCCESS, so hfi1's link bring-up fails at once with a logged error instead
//!   of waiting seconds for physical-state changes the stub never makes (hfi1-probe §2.3:
//!   a failed bring-up does not fail the probe).
//! - **RAM access** (DC_DC8051_CFG_RAM_ACCESS_*): AccessCompleted reads 1 while a read or write
//!   enable is set; the RAM is not modelled (RD_DATA reads 0, writes are dropped).
//!
//! What a full fake 8051 needs (tier B: state machine, config RAM filled by LOAD_CONFIG_DATA,
//! physical state, LCB transfer-active, host-message interrupt) is listed in DESIGN.md.

use hfi_abi::dc;

use crate::counters::Counters;

/// ReturnCode every stub command completes with (0x1, "invalid" in the later Omni-Path
/// drivers' naming; anything but SUCCESS = 0x2 makes hfi1 give up the command's purpose).
pub const STUB_RETURN_CODE: u64 = dc::hcmd_ret::INVALID;

/// The 8051 stub.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dc8051 {
    host_cmd_1: u64,
    last_type: Option<u64>,
}

impl Dc8051 {
    /// HOST_CMD_0 changed from `old` to `new`.
    pub fn host_cmd_0_written(&mut self, old: u64, new: u64, c: &mut Counters) {
        let req_new = dc::DC_DC8051_CFG_HOST_CMD_0_REQ_NEW;
        match (req_new.get(old) == 1, req_new.get(new) == 1) {
            (false, true) => {
                let ty = dc::DC_DC8051_CFG_HOST_CMD_0_REQ_TYPE.get(new);
                self.last_type = Some(ty);
                self.host_cmd_1 = dc::DC_DC8051_CFG_HOST_CMD_1_COMPLETED.encode(1)
                    | dc::DC_DC8051_CFG_HOST_CMD_1_RETURN_CODE.encode(STUB_RETURN_CODE)
                    | dc::DC_DC8051_CFG_HOST_CMD_1_RSP_DATA.encode(0);
                c.dc8051_host_cmd_count += 1;
            }
            (true, false) => self.host_cmd_1 = 0,
            _ => {}
        }
    }

    /// DC_DC8051_CFG_HOST_CMD_1.
    pub fn host_cmd_1(&self) -> u64 {
        self.host_cmd_1
    }

    /// ReqType of the last command run (tests, reports).
    pub fn last_type(&self) -> Option<u64> {
        self.last_type
    }

    /// DC_DC8051_CFG_RAM_ACCESS_STATUS for the current RAM_ACCESS_CTRL value.
    pub fn ram_access_status(ctrl: u64) -> u64 {
        let enabled = dc::DC_DC8051_CFG_RAM_ACCESS_CTRL_READ_ENA.get(ctrl) == 1
            || dc::DC_DC8051_CFG_RAM_ACCESS_CTRL_WRITE_ENA.get(ctrl) == 1;
        dc::DC_DC8051_CFG_RAM_ACCESS_STATUS_ACCESS_COMPLETED.encode(u64::from(enabled))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hfi_abi::dc::*;

    #[test]
    fn command_completes_and_clears() {
        let mut d = Dc8051::default();
        let mut c = Counters::default();
        let ty = DC_DC8051_CFG_HOST_CMD_0_REQ_TYPE.encode(hcmd::CHANGE_PHY_STATE)
            | DC_DC8051_CFG_HOST_CMD_0_REQ_DATA.encode(0x90);
        // First write stabilises type and data: nothing happens yet.
        d.host_cmd_0_written(0, ty, &mut c);
        assert_eq!(d.host_cmd_1(), 0);
        let go = ty | DC_DC8051_CFG_HOST_CMD_0_REQ_NEW.encode(1);
        d.host_cmd_0_written(ty, go, &mut c);
        let r = d.host_cmd_1();
        assert_eq!(DC_DC8051_CFG_HOST_CMD_1_COMPLETED.get(r), 1);
        assert_eq!(DC_DC8051_CFG_HOST_CMD_1_RETURN_CODE.get(r), STUB_RETURN_CODE);
        assert_ne!(DC_DC8051_CFG_HOST_CMD_1_RETURN_CODE.get(r), hcmd_ret::SUCCESS);
        assert_eq!(d.last_type(), Some(hcmd::CHANGE_PHY_STATE));
        // Writing the same value again is no new request.
        d.host_cmd_0_written(go, go, &mut c);
        assert_eq!(c.dc8051_host_cmd_count, 1);
        d.host_cmd_0_written(go, 0, &mut c);
        assert_eq!(d.host_cmd_1(), 0);
    }

    #[test]
    fn ram_access_completes_while_enabled() {
        assert_eq!(Dc8051::ram_access_status(0x40), 0);
        let rd = DC_DC8051_CFG_RAM_ACCESS_CTRL_READ_ENA.encode(1) | 0x40;
        assert_eq!(Dc8051::ram_access_status(rd), 0x1_0000);
        let wr = DC_DC8051_CFG_RAM_ACCESS_CTRL_WRITE_ENA.encode(1);
        assert_eq!(Dc8051::ram_access_status(wr), 0x1_0000);
    }
}
