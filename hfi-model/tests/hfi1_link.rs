//! Tier B: the served device against an in-process replay of Debian 6.1 `hfi1.ko`'s link
//! bring-up in functional-simulator mode with `loopback=1` (chip.c `set_link_state`,
//! `do_quick_linkup`, `handle_8051_interrupt`, `handle_link_up`, `handle_linkup_change`,
//! `goto_offline`; mad.c `set_port_states` for Armed/Active), in driver order with the values
//! the driver checks. Every poll must complete on its first or second read, and the 8051's
//! LINKUP_ACHIEVED must arrive as exactly one MSI-X message on the general vector. Also the
//! SDMA engine start-up (`sdma.c`) the probe runs once the engine-error source is unmasked.

#![cfg(feature = "server")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)] // test code: a panic is a failure

use std::os::unix::net::UnixStream;

mod hfi1_common;
use hfi1_common::*;

use hfi_abi::uapi::pci::DEVICE_ID_INTEL1;
use hfi_abi::{bar0, cce, dc, pcicfg, txe};
use hfi_model::server::model::{irq_flags, MSIX_IRQ_INDEX};

const GENERAL: u64 = dc::config::GENERAL_CONFIG;

/// A device past the probe's interrupt set-up: MSI-X on with vector 0 (general) wired, the DC
/// sources unmasked (enable_general_intr) and every 8051 error flag enabled (init_other).
fn probed() -> (Hfi1, UnixStream) {
    let mut h = Hfi1 { d: served(DEVICE_ID_INTEL1), polls: Vec::new() };
    let flags = h.cfg_r(pcicfg::PCI_CFG_MSIX0 + pcicfg::msix::FLAGS, 2);
    h.cfg_w(pcicfg::PCI_CFG_MSIX0 + pcicfg::msix::FLAGS, flags | 0x8000, 2);
    let (f, general) = eventfd();
    let trig = irq_flags::ACTION_TRIGGER | irq_flags::DATA_EVENTFD;
    assert_eq!(h.d.set_irqs(MSIX_IRQ_INDEX, trig, 0, 1, Some(f)), 0);
    h.w(cce::CCE_INT_MASK.offset(3).unwrap(), 0xFF << 56); // IS_DC_START..IS_DC_END
    h.w(dc::DC_DC8051_ERR_EN, u64::MAX);
    h.w(dc::DC_DC8051_CFG_MODE, 0x2); // init_loopback: DISABLE_SELF_GUID_CHECK
    (h, general)
}

/// set_link_state(HLS_DN_POLL) from Offline with quick_linkup (sim loopback), then the
/// interrupt and handle_link_up → set_link_state(HLS_UP_INIT).
fn link_up(h: &mut Hfi1, general: &mut UnixStream) {
    h.w(dc::DCC_CFG_LED_CNTRL, 0); // LEDs to the DC
    h.set_local_link_attributes();
    assert_eq!(h.do_quick_linkup(), dc::hcmd_ret::SUCCESS);
    // log_physical_state(PLS_POLLING): the link trains in polling.
    assert_eq!(h.phys_state(), dc::pls::POLLING);
    assert_eq!(h.d.link_training(), Some(hfi_model::server::model::LINK_TRAINING_DEFAULT));
    assert_eq!(signals(general), 0, "nothing before the training time has passed");
    h.d.link_training_done();
    assert_eq!(h.d.link_training(), None);
    assert_eq!(signals(general), 1, "one MSI-X message on the general vector");
    assert_eq!(h.general_interrupt_8051(), dc::host_msg::LINKUP_ACHIEVED);
    assert_eq!(signals(general), 0, "clearing the flag raises nothing");
    // handle_link_up: wait_physical_linkstate(LINKUP), wait_logical_linkstate(INIT)
    h.poll("phys LinkUp", dc::DC_DC8051_STS_CUR_STATE, |v| {
        dc::DC_DC8051_STS_CUR_STATE_PORT.get(v) == dc::pls::LINKUP
    });
    h.poll("logical Init", dc::DCC_CFG_PORT_CONFIG, |v| {
        dc::DCC_CFG_PORT_CONFIG_LINK_STATE.get(v) == dc::lstate::INIT
    });
}

/// acquire_lcb_access / read / release_lcb_access (read_lcb_via_8051 in sim, link up).
fn read_lcb_csr(h: &mut Hfi1, off: u64) -> u64 {
    let req = dc::config::REQ_FIELD_ID.encode(dc::hcmd_misc::REQUEST_LCB_ACCESS);
    assert_eq!(h.dc8051_command(dc::hcmd::MISC, req).0, dc::hcmd_ret::SUCCESS);
    h.w(dc::DC_DC8051_CFG_CSR_ACCESS_SEL, 0x3); // set_host_lcb_access
    let v = h.r(off);
    h.w(dc::DC_DC8051_CFG_CSR_ACCESS_SEL, 0x2); // set_8051_lcb_access
    let grant = dc::config::REQ_FIELD_ID.encode(dc::hcmd_misc::GRANT_LCB_ACCESS);
    assert_eq!(h.dc8051_command(dc::hcmd::MISC, grant).0, dc::hcmd_ret::SUCCESS);
    v
}

/// goto_offline (the 8051 part): OFFLINE with the remote reason, offline substates, host LCB
/// access, logical Down.
fn goto_offline(h: &mut Hfi1) {
    let (code, _) = h.dc8051_command(dc::hcmd::CHANGE_PHY_STATE, (3 << 8) | dc::pls::OFFLINE);
    assert_eq!(code, dc::hcmd_ret::SUCCESS);
    h.poll("offline substates", dc::DC_DC8051_STS_CUR_STATE, |v| {
        dc::pls::major(dc::DC_DC8051_STS_CUR_STATE_PORT.get(v)) == dc::pls::OFFLINE
    });
    h.w(dc::DC_DC8051_CFG_CSR_ACCESS_SEL, 0x3);
    h.w(dc::DC_LCB_ERR_EN, u64::MAX);
    h.poll("logical Down", dc::DCC_CFG_PORT_CONFIG, |v| {
        dc::DCC_CFG_PORT_CONFIG_LINK_STATE.get(v) == dc::lstate::DOWN
    });
}

#[test]
fn quick_linkup_in_lcb_loopback_reaches_init_then_armed_active_and_back() {
    let (mut h, mut general) = probed();
    assert_eq!(h.phys_state(), dc::pls::OFFLINE, "the 8051 starts offline");
    assert_eq!(h.logical_state(), dc::lstate::DOWN);
    assert_eq!(h.r(dc::DC_LCB_STS_LINK_TRANSFER_ACTIVE), 0);

    link_up(&mut h, &mut general);

    // handle_link_up: read_ltp_rtt through the 8051's LCB access hand-over
    read_lcb_csr(&mut h, dc::DC_LCB_STS_ROUND_TRIP_LTP_CNT);
    // handle_linkup_change: the neighbour in LCB loopback is this port
    let guid = h.r(dc::DC_DC8051_CFG_LOCAL_GUID);
    assert_eq!(h.r(dc::DC_DC8051_STS_REMOTE_GUID), guid);
    assert_eq!(h.r(dc::DC_DC8051_STS_REMOTE_NODE_TYPE) & 0x3, 0, "an HFI");
    assert_eq!(h.r(dc::DC_DC8051_STS_REMOTE_PORT_NO) & 0xFF, 1);
    // get_linkup_link_widths: the configuration the driver loaded, rx lanes = tx lanes
    assert_eq!(h.read_8051_config(dc::config::VERIFY_CAP_LOCAL_LINK_MODE, GENERAL), 0x8);
    let tx = h.read_8051_config(dc::config::TX_SETTINGS, GENERAL);
    let lni = h.read_8051_config(dc::config::LOCAL_LNI_INFO, GENERAL);
    assert_eq!(dc::config::ENABLE_LANE_RX.get(lni), dc::config::ENABLE_LANE_TX.get(tx));
    assert_eq!(dc::config::ENABLE_LANE_TX.get(tx), 0xF);
    // set_send_length: the MTU capability is storage next to the logical state
    let cfg = h.r(dc::DCC_CFG_PORT_CONFIG);
    h.w(dc::DCC_CFG_PORT_CONFIG, dc::DCC_CFG_PORT_CONFIG_MTU_CAP.set(cfg, 5));
    assert_eq!(dc::DCC_CFG_PORT_CONFIG_MTU_CAP.get(h.r(dc::DCC_CFG_PORT_CONFIG)), 5);
    assert_eq!(h.logical_state(), dc::lstate::INIT);

    // SubnSet(BufferControlTable): VL0 and VL15 credits, then the credit-return status.
    h.w(txe::SEND_CM_CREDIT_VL.offset(0).unwrap(), 0x100);
    h.poll("credit change", txe::SEND_CM_CREDIT_USED_STATUS, |v| v == 0);
    // SubnSet(PortInfo) Armed: set_logical_state + wait_logical_linkstate, send_idle_sma(ARM).
    h.set_logical_state(dc::lstate::ARMED);
    h.poll("logical Armed", dc::DCC_CFG_PORT_CONFIG, |v| {
        dc::DCC_CFG_PORT_CONFIG_LINK_STATE.get(v) == dc::lstate::ARMED
    });
    let arm = dc::idle::PAYLOAD.encode(1) | dc::idle::SMA;
    assert_eq!(h.dc8051_command(dc::hcmd::SEND_LCB_IDLE_MSG, arm).0, dc::hcmd_ret::SUCCESS);
    // In LCB loopback the idle message comes back: BC_SMA_MSG, then handle_sma_message.
    assert_eq!(signals(&mut general), 1);
    assert_eq!(h.general_interrupt_8051(), dc::host_msg::BC_SMA_MSG);
    let (code, msg) = h.dc8051_command(dc::hcmd::READ_LCB_IDLE_MSG, dc::idle::SMA);
    assert_eq!((code, dc::idle::PAYLOAD.get(msg)), (dc::hcmd_ret::SUCCESS, 1), "SMA_IDLE_ARM");
    // SubnSet(PortInfo) Active.
    h.set_logical_state(dc::lstate::ACTIVE);
    assert_eq!(h.logical_state(), dc::lstate::ACTIVE);
    h.set_logical_state(dc::lstate::INIT);
    assert_eq!(h.logical_state(), dc::lstate::ACTIVE, "the host cannot step back");

    // set_link_state(HLS_DN_OFFLINE): goto_offline, and the firmware's link-down reason.
    goto_offline(&mut h);
    assert_eq!(signals(&mut general), 0, "a host-requested offline posts no message");
    let ldr = h.read_8051_config(dc::config::LINK_DOWN_REASON, GENERAL) & 0xFF;
    assert_eq!(ldr, dc::config::LDR_RECEIVED_HOST_OFFLINE_REQ);
    assert_eq!(h.r(dc::DC_DC8051_STS_REMOTE_GUID), 0, "no neighbour while down");

    // start_link again: the same bring-up works a second time.
    link_up(&mut h, &mut general);

    // dc_shutdown / dc_start: the 8051 held in reset and restarted offline.
    goto_offline(&mut h);
    h.lcb_shutdown(true);
    h.w(dc::DC_DC8051_CFG_RST, 0x1);
    assert_eq!(h.r(dc::DC_DC8051_STS_CUR_STATE), 0, "no firmware state in reset");
    h.w(dc::DC_DC8051_CFG_RST, 0);
    let cur = h.r(dc::DC_DC8051_STS_CUR_STATE);
    assert_eq!(dc::DC_DC8051_STS_CUR_STATE_FIRMWARE.get(cur), dc::FIRMWARE_READY);
    assert_eq!(dc::DC_DC8051_STS_CUR_STATE_PORT.get(cur), dc::pls::OFFLINE);
    h.w(dc::DCC_CFG_RESET, 0);
    link_up(&mut h, &mut general);

    // ---- the verdict --------------------------------------------------------------------------
    let slow: Vec<_> = h.polls.iter().filter(|&&(_, n)| n > 2).collect();
    assert!(slow.is_empty(), "polls needing more than two reads: {slow:?}");
    let c = h.d.dev.counters();
    assert_eq!(c.dc8051_cmd_invalid_count, 0, "every command the driver sends succeeds");
    assert_eq!(c.dc8051_intr_count, 4, "three link-ups and one SMA message");
    assert_eq!(c.dcc_link_state_write_ignored_count, 1);
    assert_eq!(c.mmio_unknown_read_count + c.mmio_unknown_write_count, 0);
}

#[test]
fn quick_linkup_needs_a_running_lcb_and_flr_takes_the_link_down() {
    let (mut h, mut general) = probed();
    // QUICK_LINKUP without the LCB-loopback set-up: the 8051 refuses, nothing is posted.
    let (code, _) = h.dc8051_command(dc::hcmd::CHANGE_PHY_STATE, dc::pls::QUICK_LINKUP);
    assert_eq!(code, dc::hcmd_ret::INVALID);
    assert_eq!(h.phys_state(), dc::pls::OFFLINE);
    assert_eq!(signals(&mut general), 0);
    // Transfer active but ALLOW_LINK_UP not written: still refused.
    h.w(dc::DC_LCB_CFG_LOOPBACK, 2);
    h.w(dc::DC_LCB_CFG_RUN, 1);
    assert_eq!(h.r(dc::DC_LCB_STS_LINK_TRANSFER_ACTIVE), 1);
    let (code, _) = h.dc8051_command(dc::hcmd::CHANGE_PHY_STATE, dc::pls::QUICK_LINKUP);
    assert_eq!(code, dc::hcmd_ret::INVALID);
    // A training whose LCB stops before the training time has passed leaves the link polling.
    h.w(dc::DC_LCB_CFG_ALLOW_LINK_UP, 1);
    let (code, _) = h.dc8051_command(dc::hcmd::CHANGE_PHY_STATE, dc::pls::QUICK_LINKUP);
    assert_eq!(code, dc::hcmd_ret::SUCCESS);
    h.w(dc::DC_LCB_CFG_RUN, 0);
    h.d.link_training_done();
    assert_eq!((h.phys_state(), h.logical_state()), (dc::pls::POLLING, dc::lstate::DOWN));
    assert_eq!(signals(&mut general), 0);
    assert_eq!(h.d.dev.counters().dc8051_link_training_fails, 1);
    // A pending flag raises the interrupt when its enable is set, not before.
    h.w(dc::DC_DC8051_ERR_EN, 0);
    link_up_without_irq(&mut h);
    assert_eq!(signals(&mut general), 0, "masked in DC_DC8051_ERR_EN");
    h.w(dc::DC_DC8051_ERR_EN, u64::MAX);
    assert_eq!(signals(&mut general), 1, "enabling a set flag raises the source");
    assert_eq!(h.general_interrupt_8051(), dc::host_msg::LINKUP_ACHIEVED);
    assert_eq!(h.logical_state(), dc::lstate::INIT);
    // FLR: the DC is reset with everything else, the link is down.
    let exp = h.find_cap(pcicfg::cap_id::EXP).unwrap();
    let devctl = h.cfg_r(exp + pcicfg::exp::DEVCTL, 2);
    h.cfg_w(exp + pcicfg::exp::DEVCTL, devctl | pcicfg::exp::DEVCTL_BCR_FLR.smask(), 2);
    assert_eq!(h.phys_state(), dc::pls::OFFLINE);
    assert_eq!(h.logical_state(), dc::lstate::DOWN);
    assert_eq!(h.r(dc::DC_LCB_STS_LINK_TRANSFER_ACTIVE), 0);
    assert_eq!(h.read_8051_config(dc::config::TX_SETTINGS, GENERAL), 0, "config RAM reset");
}

/// The quick link-up with the 8051's flags not enabled (no interrupt expected).
fn link_up_without_irq(h: &mut Hfi1) {
    h.set_local_link_attributes();
    assert_eq!(h.do_quick_linkup(), dc::hcmd_ret::SUCCESS);
    h.d.link_training_done();
    assert_eq!(h.r(dc::DC_DC8051_ERR_FLG), 1, "SetBy8051 pending");
}

/// sdma.c's engine start-up (sdma_start → s10 halt wait → s15 clean wait → s20 idle → s99
/// running at port Active), engine 0: the halt is reported by the engine-error interrupt on
/// the general vector and the clean-up tasklet's unbounded spin ends on its first read.
#[test]
fn sdma_engine_halts_cleans_up_and_runs() {
    let (mut h, mut general) = probed();
    let e = |reg| bar0::TXE_PER_SDMA.offset(0).unwrap() + reg;
    // msix_request_irqs → enable_sdma_srcs: the engine's error source (16); init_sdma_regs
    h.w(cce::CCE_INT_MASK.offset(0).unwrap(), 1 << txe::IS_SDMAENG_ERR_START);
    h.w(e(txe::SEND_DMA_ENG_ERR_MASK), u64::MAX);
    // s10: sdma_sendctrl(HALT)
    let halt = txe::SEND_DMA_CTRL_SDMA_HALT.smask();
    h.w(e(txe::SEND_DMA_CTRL), halt);
    assert_eq!(signals(&mut general), 1, "the halt arrives as an engine-error interrupt");
    // general_interrupt → is_sdma_eng_err_int → interrupt_clear_down(SEND_DMA_ENG_ERR)
    let st = h.r(cce::CCE_INT_STATUS.offset(0).unwrap());
    assert_eq!(st, 1 << txe::IS_SDMAENG_ERR_START);
    h.w(cce::CCE_INT_CLEAR.offset(0).unwrap(), st);
    let err = h.r(e(txe::SEND_DMA_ENG_ERR_STATUS));
    assert_eq!(err, txe::SEND_DMA_ENG_ERR_STATUS_SDMA_HALT_ERR.smask());
    h.w(e(txe::SEND_DMA_ENG_ERR_CLEAR), err);
    assert_eq!(h.r(e(txe::SEND_DMA_ENG_ERR_STATUS)), 0);
    // e60 → sdma_err_halt_wait
    h.poll("SDMA EngHalted", e(txe::SEND_DMA_STATUS), |v| {
        txe::SEND_DMA_STATUS_ENG_HALTED.get(v) == 1
    });
    // e15 → s15: sdma_sendctrl(INTENABLE | CLEANUP), then the clean-up tasklet's spin
    let int_en = txe::SEND_DMA_CTRL_SDMA_INT_ENABLE.smask();
    h.w(e(txe::SEND_DMA_CTRL), int_en | txe::SEND_DMA_CTRL_SDMA_CLEANUP.smask());
    h.poll("SDMA EngCleanedUp", e(txe::SEND_DMA_STATUS), |v| {
        txe::SEND_DMA_STATUS_ENG_CLEANED_UP.get(v) == 1
    });
    // e25 → sdma_hw_start_up (clear the header-request FIFO error) → s20 Idle
    h.w(e(txe::SEND_DMA_ENG_ERR_CLEAR), 1 << 18);
    h.w(e(txe::SEND_DMA_CTRL), int_en);
    assert_eq!(h.r(e(txe::SEND_DMA_CTRL)), int_en, "the clean-up bit does not stick");
    // port Active → sdma_all_running → s99 Running
    h.w(e(txe::SEND_DMA_CTRL), int_en | txe::SEND_DMA_CTRL_SDMA_ENABLE.smask());
    assert_eq!(h.r(e(txe::SEND_DMA_STATUS)), 0, "running");
    assert_eq!(signals(&mut general), 0, "one interrupt in all");
    let slow: Vec<_> = h.polls.iter().filter(|&&(_, n)| n > 2).collect();
    assert!(slow.is_empty(), "polls needing more than two reads: {slow:?}");
    assert_eq!(h.d.dev.counters().sdma_eng_err_intr_count, 1);
}
