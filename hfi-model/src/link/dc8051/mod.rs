//! The DC's 8051 micro-controller as the hfi1 driver sees it in functional-simulator mode
//! (tier B): the host command interface, the 8051 data RAM (where the configuration fields
//! live), the physical link state and the host messages that raise the DC 8051 interrupt.
//! No firmware runs; every command completes at once, in the write that issues it.
//!
//! - **Host commands** (DC_DC8051_CFG_HOST_CMD_0/1): a ReqNew 0 → 1 write runs the command and
//!   sets HOST_CMD_1 = Completed | ReturnCode | RspData. Clearing ReqNew (hfi1 writes 0 after
//!   taking the answer) clears HOST_CMD_1. While the 8051 is held in reset (CFG_RST.M8051W) a
//!   command never completes. The commands:
//!   - LOAD_CONFIG_DATA / READ_CONFIG_DATA: a 32-bit field stored at its data-RAM address
//!     ([`hfi_abi::dc::config::address`]); a field or lane that does not exist answers INVALID.
//!   - CHANGE_PHY_STATE: OFFLINE → offline.quiet (the link goes down; from LinkUp the firmware
//!     records LINK_DOWN_REASON = host offline request), DISABLED → disabled (down),
//!     POLLING → polling (no link partner trains with the model, so it stays there),
//!     QUICK_LINKUP → if the LCB transfers flits and may bring the link up (the caller's
//!     `lcb_ready`; hfi1's LCB-loopback sequence): polling while the link trains, then LinkUp
//!     when the training time has passed ([`Dc8051::finish_training`], called by whoever owns
//!     time; the LCB must still be ready; in loopback the firmware records the receive lanes,
//!     LOCAL_LNI_INFO.EnableLaneRx = TX_SETTINGS.EnableLaneTx); else INVALID. LINKUP (the end
//!     of LNI, which is not modelled) and other targets → INVALID. Any other state change
//!     ends a training.
//!   - MISC REQUEST/GRANT_LCB_ACCESS: SUCCESS (the LCB CSRs are plain storage to both sides).
//!   - SEND_LCB_IDLE_MSG: on an up link in LCB loopback the message arrives back at this port
//!     (queued, BC_SMA_MSG or BC_IDLE_UNKNOWN_MSG posted); READ_LCB_IDLE_MSG takes the oldest
//!     queued message of the asked type (INVALID when there is none).
//!   - INTERFACE_TEST echoes its data; READ/WRITE_LCB_CSR (hfi1 uses them only with loaded
//!     firmware) and unknown types answer INVALID.
//! - **Host messages**: reaching LinkUp posts LINKUP_ACHIEVED: the HostMsg bit in
//!   DC_DC8051_DBG_ERR_INFO_SET_BY_8051 and DC_DC8051_ERR_FLG.SetBy8051. The flag is cleared by
//!   the host (DC_DC8051_ERR_CLR, write 1 to clear); the message bits are cleared by the next
//!   host command (as hfi1's comment on HOST_REQ_DONE describes the firmware). The caller raises
//!   the DC 8051 interrupt source on a new ERR_FLG & ERR_EN bit. HOST_REQ_DONE is not posted:
//!   commands complete through HOST_CMD_1 only (**choice**: no interrupt per command).
//! - **RAM access** (DC_DC8051_CFG_RAM_ACCESS_*, in `ram`): AccessCompleted reads 1 while a
//!   read or write enable is set. Reads return the 8 bytes of the data RAM at the control
//!   register's address (bits 2:0 ignored); a write of WR_DATA while WriteEna is set stores at
//!   the access pointer (loaded from the address on every control write, advanced by 8 with
//!   AutoIncrAddr). Code RAM writes (RamSel) and addresses past the 4 KiB data RAM are dropped
//!   and counted.
//! - **Physical state** (DC_DC8051_STS_CUR_STATE): Port is the physical link state, Firmware
//!   reads ready (0xA0) while the 8051 is out of reset. The 8051 starts in offline.quiet; a
//!   release of CFG_RST.M8051W restarts it there (link down, messages cleared), with
//!   CFG_RST.Dram the data RAM is cleared too.

use std::collections::VecDeque;

use hfi_abi::dc::{self, config, hcmd, hcmd_misc, hcmd_ret, host_msg, idle, pls};

use crate::counters::Counters;

mod ram;

/// Idle messages kept for READ_LCB_IDLE_MSG before further ones are dropped.
pub const IDLE_QUEUE_MAX: usize = 16;

/// What a command or reset did to the physical link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkChange {
    /// Nothing.
    None,
    /// The link reached LinkUp (the logical state enters Init).
    Up,
    /// The link left LinkUp (the logical state returns to Down).
    Down,
}

/// The 8051.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dc8051 {
    host_cmd_1: u64,
    last_type: Option<u64>,
    ram: Vec<u8>,
    ram_ptr: u64,
    phys: u64,
    in_reset: bool,
    host_msg: u64,
    err_flg: u64,
    idle_msgs: VecDeque<u64>,
    loopback: bool,
    training: bool,
}

impl Default for Dc8051 {
    fn default() -> Self {
        Self {
            host_cmd_1: 0,
            last_type: None,
            ram: vec![0; dc::DC8051_DATA_MEM_SIZE as usize],
            ram_ptr: 0,
            phys: pls::OFFLINE,
            in_reset: false,
            host_msg: 0,
            err_flg: 0,
            idle_msgs: VecDeque::new(),
            loopback: false,
            training: false,
        }
    }
}

/// A command's answer: return code and response data.
type Answer = (u64, u64);

const INVALID: Answer = (hcmd_ret::INVALID, 0);

impl Dc8051 {
    /// HOST_CMD_0 changed from `old` to `new`. `lcb_ready`: the LCB transfers flits and may
    /// bring the link up; `lcb_loopback`: it does so in loopback (the neighbour is this port).
    pub fn host_cmd_0_written(
        &mut self,
        old: u64,
        new: u64,
        lcb_ready: bool,
        lcb_loopback: bool,
        c: &mut Counters,
    ) -> LinkChange {
        let req_new = dc::DC_DC8051_CFG_HOST_CMD_0_REQ_NEW;
        match (req_new.get(old) == 1, req_new.get(new) == 1) {
            (false, true) if self.in_reset => {
                c.dc8051_cmd_in_reset_drops += 1;
                LinkChange::None
            }
            (false, true) => {
                let ty = dc::DC_DC8051_CFG_HOST_CMD_0_REQ_TYPE.get(new);
                let data = dc::DC_DC8051_CFG_HOST_CMD_0_REQ_DATA.get(new);
                self.last_type = Some(ty);
                c.dc8051_host_cmd_count += 1;
                // The firmware clears the host message information on the next command.
                self.host_msg = 0;
                let (answer, change) = self.run(ty, data, lcb_ready, lcb_loopback, c);
                if answer.0 != hcmd_ret::SUCCESS {
                    c.dc8051_cmd_invalid_count += 1;
                }
                self.host_cmd_1 = dc::DC_DC8051_CFG_HOST_CMD_1_COMPLETED.encode(1)
                    | dc::DC_DC8051_CFG_HOST_CMD_1_RETURN_CODE.encode(answer.0)
                    | dc::DC_DC8051_CFG_HOST_CMD_1_RSP_DATA.encode(answer.1);
                change
            }
            (true, false) => {
                self.host_cmd_1 = 0;
                LinkChange::None
            }
            _ => LinkChange::None,
        }
    }

    fn run(
        &mut self,
        ty: u64,
        data: u64,
        lcb_ready: bool,
        lcb_loopback: bool,
        c: &mut Counters,
    ) -> (Answer, LinkChange) {
        let ok = |rsp| (hcmd_ret::SUCCESS, rsp);
        match ty {
            hcmd::LOAD_CONFIG_DATA => match self.field_addr(data) {
                Some(a) => {
                    self.ram_store32(a, config::REQ_DATA.get(data) as u32);
                    (ok(0), LinkChange::None)
                }
                None => (INVALID, LinkChange::None),
            },
            hcmd::READ_CONFIG_DATA => match self.field_addr(data) {
                Some(a) => (ok(u64::from(self.ram_load32(a))), LinkChange::None),
                None => (INVALID, LinkChange::None),
            },
            hcmd::CHANGE_PHY_STATE => self.change_phy_state(data & 0xFF, lcb_ready, lcb_loopback),
            hcmd::MISC => match config::REQ_FIELD_ID.get(data) {
                hcmd_misc::REQUEST_LCB_ACCESS | hcmd_misc::GRANT_LCB_ACCESS => {
                    (ok(0), LinkChange::None)
                }
                _ => (INVALID, LinkChange::None),
            },
            hcmd::SEND_LCB_IDLE_MSG => {
                self.send_idle(data, c);
                (ok(0), LinkChange::None)
            }
            hcmd::READ_LCB_IDLE_MSG => {
                let want = idle::MSG_TYPE.get(data);
                match self.idle_msgs.iter().position(|&m| idle::MSG_TYPE.get(m) == want) {
                    Some(i) => (ok(self.idle_msgs.remove(i).unwrap_or(0)), LinkChange::None),
                    None => (INVALID, LinkChange::None),
                }
            }
            hcmd::INTERFACE_TEST => (ok(data), LinkChange::None),
            _ => (INVALID, LinkChange::None),
        }
    }

    fn change_phy_state(
        &mut self,
        target: u64,
        lcb_ready: bool,
        lcb_loopback: bool,
    ) -> (Answer, LinkChange) {
        let ok = (hcmd_ret::SUCCESS, 0);
        match target {
            pls::OFFLINE | pls::DISABLED => {
                if self.link_up() {
                    let ldr = self.field(config::LINK_DOWN_REASON);
                    let ldr = (ldr & !0xFF) | config::LDR_RECEIVED_HOST_OFFLINE_REQ;
                    self.set_field(config::LINK_DOWN_REASON, ldr);
                }
                (ok, self.set_phys(target))
            }
            pls::POLLING => (ok, self.set_phys(pls::POLLING)),
            pls::QUICK_LINKUP if lcb_ready => {
                // Training starts; LinkUp comes with finish_training.
                self.loopback = lcb_loopback;
                let change = self.set_phys(pls::POLLING);
                self.training = true;
                (ok, change)
            }
            _ => (INVALID, LinkChange::None),
        }
    }

    /// True while a quick link-up trains (between QUICK_LINKUP and [`Self::finish_training`]).
    pub fn training(&self) -> bool {
        self.training
    }

    /// The quick link-up's training time has passed: LinkUp if the LCB is still ready
    /// (`lcb_ready`), else the link stays in polling (counted).
    pub fn finish_training(&mut self, lcb_ready: bool, c: &mut Counters) -> LinkChange {
        if !self.training {
            return LinkChange::None;
        }
        self.training = false;
        if !lcb_ready {
            c.dc8051_link_training_fails += 1;
            return LinkChange::None;
        }
        if self.loopback {
            // The receive lanes are the transmit lanes looped back.
            let tx = self.field(config::TX_SETTINGS);
            let lanes = config::ENABLE_LANE_TX.get(tx);
            let lni = self.field(config::LOCAL_LNI_INFO);
            self.set_field(config::LOCAL_LNI_INFO, config::ENABLE_LANE_RX.set(lni, lanes));
        }
        self.set_phys(pls::LINKUP)
    }

    /// Moves the physical state (ending any training); posts LINKUP_ACHIEVED on reaching
    /// LinkUp.
    fn set_phys(&mut self, to: u64) -> LinkChange {
        let was_up = self.phys == pls::LINKUP;
        self.training = false;
        self.phys = to;
        match (was_up, to == pls::LINKUP) {
            (false, true) => {
                self.post(host_msg::LINKUP_ACHIEVED);
                LinkChange::Up
            }
            (true, false) => {
                self.idle_msgs.clear();
                LinkChange::Down
            }
            _ => LinkChange::None,
        }
    }

    fn post(&mut self, msg: u64) {
        self.host_msg |= msg;
        self.err_flg |= dc::DC_DC8051_ERR_FLG_SET_BY_8051.smask();
    }

    fn send_idle(&mut self, data: u64, c: &mut Counters) {
        if self.phys != pls::LINKUP || !self.loopback {
            // Sent to a neighbour that is not this port: it leaves the model.
            c.dc8051_idle_msg_sent_count += 1;
            return;
        }
        if self.idle_msgs.len() >= IDLE_QUEUE_MAX {
            c.dc8051_idle_msg_drops += 1;
            return;
        }
        self.idle_msgs.push_back(data & dc::DC_DC8051_CFG_HOST_CMD_1_RSP_DATA.mask());
        self.post(if idle::MSG_TYPE.get(data) == idle::SMA {
            host_msg::BC_SMA_MSG
        } else {
            host_msg::BC_IDLE_UNKNOWN_MSG
        });
    }

    /// DC_DC8051_CFG_RST changed from `old` to `new`.
    pub fn rst_written(&mut self, old: u64, new: u64) -> LinkChange {
        let m = dc::DC_DC8051_CFG_RST_M8051W;
        if dc::DC_DC8051_CFG_RST_DRAM.get(new) == 1 {
            self.ram.fill(0);
        }
        match (m.get(old) == 1, m.get(new) == 1) {
            (false, true) => {
                self.in_reset = true;
                self.host_cmd_1 = 0;
                let change = self.set_phys(pls::OFFLINE);
                self.host_msg = 0;
                change
            }
            (true, false) => {
                // Restart: the firmware comes up offline with no messages.
                self.in_reset = false;
                self.host_msg = 0;
                self.idle_msgs.clear();
                self.set_phys(pls::OFFLINE)
            }
            _ => LinkChange::None,
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

    /// The physical link state (a [`pls`] value).
    pub fn phys_state(&self) -> u64 {
        self.phys
    }

    /// True in LinkUp.
    pub fn link_up(&self) -> bool {
        self.phys == pls::LINKUP
    }

    /// True when the link is up in LCB loopback (the neighbour is this port).
    pub fn link_up_in_loopback(&self) -> bool {
        self.link_up() && self.loopback
    }

    /// DC_DC8051_STS_CUR_STATE: 0 while held in reset.
    pub fn cur_state(&self) -> u64 {
        if self.in_reset {
            return 0;
        }
        dc::DC_DC8051_STS_CUR_STATE_PORT.encode(self.phys)
            | dc::DC_DC8051_STS_CUR_STATE_FIRMWARE.encode(dc::FIRMWARE_READY)
    }

    /// DC_DC8051_ERR_FLG.
    pub fn err_flg(&self) -> u64 {
        self.err_flg
    }

    /// DC_DC8051_ERR_CLR: clears the flag bits set in `bits`.
    pub fn clear_flags(&mut self, bits: u64) {
        self.err_flg &= !bits;
    }

    /// DC_DC8051_DBG_ERR_INFO_SET_BY_8051.
    pub fn err_info(&self) -> u64 {
        dc::DC_DC8051_DBG_ERR_INFO_SET_BY_8051_HOST_MSG.encode(self.host_msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hfi_abi::dc::*;

    /// Issues one command the way hfi1's do_8051_command does; returns (code, rsp, change).
    fn cmd(d: &mut Dc8051, ty: u64, data: u64, lcb: bool) -> (u64, u64, LinkChange) {
        let mut c = Counters::default();
        let reg = DC_DC8051_CFG_HOST_CMD_0_REQ_TYPE.encode(ty)
            | DC_DC8051_CFG_HOST_CMD_0_REQ_DATA.encode(data);
        assert_eq!(d.host_cmd_0_written(0, reg, lcb, lcb, &mut c), LinkChange::None);
        let go = reg | DC_DC8051_CFG_HOST_CMD_0_REQ_NEW.smask();
        let change = d.host_cmd_0_written(reg, go, lcb, lcb, &mut c);
        let r = d.host_cmd_1();
        assert_eq!(DC_DC8051_CFG_HOST_CMD_1_COMPLETED.get(r), 1);
        d.host_cmd_0_written(go, 0, lcb, lcb, &mut c);
        assert_eq!(d.host_cmd_1(), 0, "cleared for the next user");
        (
            DC_DC8051_CFG_HOST_CMD_1_RETURN_CODE.get(r),
            DC_DC8051_CFG_HOST_CMD_1_RSP_DATA.get(r),
            change,
        )
    }

    fn load(field: u64, lane: u64, v: u64) -> u64 {
        config::REQ_FIELD_ID.encode(field) | config::REQ_LANE_ID.encode(lane) | v
    }

    #[test]
    fn config_fields_are_stored_where_the_ram_reads_them() {
        let mut d = Dc8051::default();
        let gen = config::GENERAL_CONFIG;
        let (rc, _, _) =
            cmd(&mut d, hcmd::LOAD_CONFIG_DATA, load(config::TX_SETTINGS, gen, 0x0100_000F), false);
        assert_eq!(rc, hcmd_ret::SUCCESS);
        cmd(&mut d, hcmd::LOAD_CONFIG_DATA, load(0x07, gen, 0x10), false);
        // read_8051_config of TX_SETTINGS: the 8 bytes at 0x18, low word (address bit 2 clear).
        assert_eq!(d.ram_read(0x18) as u32, 0x0100_000F);
        assert_eq!((d.ram_read(0x1C) >> 32) as u32, 0x10, "field 7 is the high word");
        let (rc, rsp, _) =
            cmd(&mut d, hcmd::READ_CONFIG_DATA, load(config::TX_SETTINGS, gen, 0), false);
        assert_eq!((rc, rsp), (hcmd_ret::SUCCESS, 0x0100_000F));
        // Lane fields, and ids that do not exist.
        cmd(&mut d, hcmd::LOAD_CONFIG_DATA, load(0, 2, 0xABCD), false);
        assert_eq!(d.ram_read(0x5C + 64) >> 32, 0xABCD, "0x9C: the high word of 0x98");
        let (rc, _, _) = cmd(&mut d, hcmd::LOAD_CONFIG_DATA, load(0x17, gen, 1), false);
        assert_eq!(rc, hcmd_ret::INVALID);
        let (rc, _, _) = cmd(&mut d, hcmd::READ_CONFIG_DATA, load(0, 7, 0), false);
        assert_eq!(rc, hcmd_ret::INVALID);
    }

    #[test]
    fn physical_state_follows_the_commands() {
        let mut d = Dc8051::default();
        assert_eq!(DC_DC8051_STS_CUR_STATE_PORT.get(d.cur_state()), pls::OFFLINE);
        assert_eq!(DC_DC8051_STS_CUR_STATE_FIRMWARE.get(d.cur_state()), FIRMWARE_READY);
        let (rc, _, ch) = cmd(&mut d, hcmd::CHANGE_PHY_STATE, pls::POLLING, false);
        assert_eq!((rc, ch), (hcmd_ret::SUCCESS, LinkChange::None));
        assert_eq!(d.phys_state(), pls::POLLING, "no partner: polling until told otherwise");
        // goto_offline passes the remote reason in bits 15:8.
        let (rc, _, _) = cmd(&mut d, hcmd::CHANGE_PHY_STATE, (5 << 8) | pls::OFFLINE, false);
        assert_eq!(rc, hcmd_ret::SUCCESS);
        assert_eq!(pls::major(d.phys_state()), pls::OFFLINE);
        // Quick link-up needs a ready LCB.
        let (rc, _, ch) = cmd(&mut d, hcmd::CHANGE_PHY_STATE, pls::QUICK_LINKUP, false);
        assert_eq!((rc, ch), (hcmd_ret::INVALID, LinkChange::None));
        assert_eq!(d.err_flg(), 0);
        let tx = config::REQ_FIELD_ID.encode(config::TX_SETTINGS)
            | config::REQ_LANE_ID.encode(config::GENERAL_CONFIG)
            | 0xF;
        cmd(&mut d, hcmd::LOAD_CONFIG_DATA, tx, false);
        let (rc, _, ch) = cmd(&mut d, hcmd::CHANGE_PHY_STATE, pls::QUICK_LINKUP, true);
        assert_eq!((rc, ch), (hcmd_ret::SUCCESS, LinkChange::None));
        assert_eq!((d.phys_state(), d.training()), (pls::POLLING, true), "training");
        assert_eq!(d.err_flg(), 0, "nothing posted while training");
        let mut c = Counters::default();
        assert_eq!(d.finish_training(true, &mut c), LinkChange::Up);
        assert_eq!(d.finish_training(true, &mut c), LinkChange::None, "once");
        assert_eq!(d.phys_state(), pls::LINKUP);
        assert_eq!(
            config::ENABLE_LANE_RX.get(d.field(config::LOCAL_LNI_INFO)),
            0xF,
            "rx = tx lanes"
        );
        // LINKUP_ACHIEVED is posted: the flag and the message.
        assert_eq!(d.err_flg(), DC_DC8051_ERR_FLG_SET_BY_8051.smask());
        assert_eq!(
            DC_DC8051_DBG_ERR_INFO_SET_BY_8051_HOST_MSG.get(d.err_info()),
            host_msg::LINKUP_ACHIEVED
        );
        d.clear_flags(u64::MAX);
        assert_eq!(d.err_flg(), 0);
        assert_eq!(
            d.err_info(),
            DC_DC8051_DBG_ERR_INFO_SET_BY_8051_HOST_MSG.encode(host_msg::LINKUP_ACHIEVED),
            "the message stays until the next command"
        );
        let (_, _, ch) = cmd(&mut d, hcmd::CHANGE_PHY_STATE, pls::OFFLINE, false);
        assert_eq!(ch, LinkChange::Down);
        assert_eq!(d.field(config::LINK_DOWN_REASON) & 0xFF, config::LDR_RECEIVED_HOST_OFFLINE_REQ);
        assert_eq!(d.err_info(), 0, "cleared by the next command");
        assert_eq!(d.err_flg(), 0, "a host-requested offline posts nothing");
        // LinkUp through LNI and unknown targets are refused.
        for t in [pls::LINKUP, pls::INTERNAL_SERDES_LOOPBACK, 0x77] {
            assert_eq!(cmd(&mut d, hcmd::CHANGE_PHY_STATE, t, true).0, hcmd_ret::INVALID, "{t:#x}");
        }
        let (_, _, ch) = cmd(&mut d, hcmd::CHANGE_PHY_STATE, pls::DISABLED, false);
        assert_eq!((ch, d.phys_state()), (LinkChange::None, pls::DISABLED));
        // A training whose LCB went away fails; one interrupted by OFFLINE ends.
        cmd(&mut d, hcmd::CHANGE_PHY_STATE, pls::QUICK_LINKUP, true);
        assert_eq!(d.finish_training(false, &mut c), LinkChange::None);
        assert_eq!((d.phys_state(), c.dc8051_link_training_fails), (pls::POLLING, 1));
        cmd(&mut d, hcmd::CHANGE_PHY_STATE, pls::QUICK_LINKUP, true);
        cmd(&mut d, hcmd::CHANGE_PHY_STATE, pls::OFFLINE, false);
        assert!(!d.training());
        assert_eq!(d.finish_training(true, &mut c), LinkChange::None);
        assert_eq!(d.phys_state(), pls::OFFLINE);
    }

    #[test]
    fn idle_messages_loop_back_on_an_up_link() {
        let mut d = Dc8051::default();
        let sma_arm = idle::PAYLOAD.encode(1) | idle::SMA;
        // Link down: the message leaves, nothing comes back.
        assert_eq!(cmd(&mut d, hcmd::SEND_LCB_IDLE_MSG, sma_arm, false).0, hcmd_ret::SUCCESS);
        assert_eq!(cmd(&mut d, hcmd::READ_LCB_IDLE_MSG, idle::SMA, false).0, hcmd_ret::INVALID);
        cmd(&mut d, hcmd::CHANGE_PHY_STATE, pls::QUICK_LINKUP, true);
        d.finish_training(true, &mut Counters::default());
        d.clear_flags(u64::MAX);
        cmd(&mut d, hcmd::SEND_LCB_IDLE_MSG, sma_arm, true);
        assert_eq!(d.err_flg(), 1);
        assert_eq!(
            DC_DC8051_DBG_ERR_INFO_SET_BY_8051_HOST_MSG.get(d.err_info()),
            host_msg::BC_SMA_MSG
        );
        let (rc, rsp, _) = cmd(&mut d, hcmd::READ_LCB_IDLE_MSG, idle::SMA, true);
        assert_eq!((rc, idle::PAYLOAD.get(rsp)), (hcmd_ret::SUCCESS, 1));
        assert_eq!(cmd(&mut d, hcmd::READ_LCB_IDLE_MSG, idle::SMA, true).0, hcmd_ret::INVALID);
        // The queue is bounded.
        let mut c = Counters::default();
        for _ in 0..IDLE_QUEUE_MAX + 3 {
            d.send_idle(sma_arm, &mut c);
        }
        assert_eq!(c.dc8051_idle_msg_drops, 3);
    }

    #[test]
    fn misc_interface_test_and_unknown_commands() {
        let mut d = Dc8051::default();
        let req = config::REQ_FIELD_ID.encode(hcmd_misc::REQUEST_LCB_ACCESS);
        assert_eq!(cmd(&mut d, hcmd::MISC, req, false).0, hcmd_ret::SUCCESS);
        let grant = config::REQ_FIELD_ID.encode(hcmd_misc::GRANT_LCB_ACCESS);
        assert_eq!(cmd(&mut d, hcmd::MISC, grant, false).0, hcmd_ret::SUCCESS);
        assert_eq!(
            cmd(&mut d, hcmd::MISC, config::REQ_FIELD_ID.encode(9), false).0,
            hcmd_ret::INVALID
        );
        assert_eq!(
            cmd(&mut d, hcmd::INTERFACE_TEST, 0x1234, false),
            (hcmd_ret::SUCCESS, 0x1234, LinkChange::None)
        );
        for ty in [hcmd::READ_LCB_CSR, hcmd::WRITE_LCB_CSR, 0x42] {
            assert_eq!(cmd(&mut d, ty, 0, false).0, hcmd_ret::INVALID);
        }
        assert_eq!(d.last_type(), Some(0x42));
    }

    #[test]
    fn reset_holds_commands_and_restarts_offline() {
        let mut d = Dc8051::default();
        let mut c = Counters::default();
        cmd(&mut d, hcmd::LOAD_CONFIG_DATA, load(3, config::GENERAL_CONFIG, 7), false);
        cmd(&mut d, hcmd::CHANGE_PHY_STATE, pls::QUICK_LINKUP, true);
        d.finish_training(true, &mut c);
        let rst = DC_DC8051_CFG_RST_M8051W.smask();
        assert_eq!(d.rst_written(0, rst), LinkChange::Down);
        assert_eq!(d.cur_state(), 0);
        let go = DC_DC8051_CFG_HOST_CMD_0_REQ_NEW.smask();
        d.host_cmd_0_written(0, go, false, false, &mut c);
        assert_eq!(d.host_cmd_1(), 0, "no answer while in reset");
        assert_eq!(c.dc8051_cmd_in_reset_drops, 1);
        assert_eq!(d.rst_written(rst, 0), LinkChange::None);
        assert_eq!(d.phys_state(), pls::OFFLINE);
        assert_eq!(d.ram_read(8) >> 32, 7, "data RAM kept without Dram");
        d.rst_written(0, DC_DC8051_CFG_RST_DRAM.smask());
        assert_eq!(d.ram_read(8), 0);
    }
}
