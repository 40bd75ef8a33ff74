//! The driver's side of the in-process hfi1 replays (`hfi1_probe.rs`, `hfi1_link.rs`): MMIO and
//! config cycles against a served device, a record of every poll, and the multi-register
//! sequences of Debian 6.1's `hfi1.ko` the replays share (each names its source function).

#![allow(dead_code)] // each test crate uses a subset

use std::fs::File;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;

use hfi_abi::pcicfg;
use hfi_abi::{asic, bar0, cce, dc, txe};
use hfi_model::server::{ServedConfig, ServedDevice};
use hfi_model::PeerConfig;

/// hfi1 module parameters of the probe (hfi1-probe placement recommendation).
pub const NUM_VLS: u64 = 1;
pub const NUM_SDMA: u64 = 1;
pub const KRCVQS: u64 = 1;
pub const NUM_USER_CONTEXTS: u64 = 4;

pub fn served(device_id: u16) -> ServedDevice {
    let device = hfi_model::test_utils::functional_config(8, 16384);
    let mut cfg = ServedConfig::new(device, PeerConfig::default(), 64000);
    cfg.device_id = device_id;
    ServedDevice::new(cfg).unwrap()
}

/// A write end the test can read back, standing in for an eventfd.
pub fn eventfd() -> (File, UnixStream) {
    let (a, b) = UnixStream::pair().unwrap();
    b.set_nonblocking(true).unwrap();
    (File::from(OwnedFd::from(a)), b)
}

pub fn signals(r: &mut UnixStream) -> usize {
    let mut b = [0u8; 256];
    r.read(&mut b).map_or(0, |n| n / 8)
}

/// The driver's side of the replay: MMIO, config cycles, and a record of every poll.
pub struct Hfi1 {
    pub d: ServedDevice,
    pub polls: Vec<(&'static str, u32)>,
}

impl Hfi1 {
    pub fn r(&mut self, off: u64) -> u64 {
        let mut b = [0u8; 8];
        self.d.bar_read(off, &mut b);
        u64::from_le_bytes(b)
    }
    pub fn w(&mut self, off: u64, v: u64) {
        self.d.bar_write(off, &v.to_le_bytes());
    }
    /// A 64-bit store arriving as two 4-byte writes (a guest pwrite through vfio-pci).
    pub fn w_halves(&mut self, off: u64, v: u64) {
        self.d.bar_write(off, &(v as u32).to_le_bytes());
        self.d.bar_write(off + 4, &((v >> 32) as u32).to_le_bytes());
    }
    /// A read loop of the driver: up to 100 reads until `done`.
    pub fn poll(&mut self, what: &'static str, off: u64, done: impl Fn(u64) -> bool) -> u64 {
        for n in 1..=100 {
            let v = self.r(off);
            if done(v) {
                self.polls.push((what, n));
                return v;
            }
        }
        panic!("{what}: never completed");
    }
    pub fn cfg_r(&self, off: usize, len: usize) -> u64 {
        let mut b = [0u8; 8];
        assert!(self.d.config.read(off as u64, &mut b[..len]));
        u64::from_le_bytes(b)
    }
    pub fn cfg_w(&mut self, off: usize, v: u64, len: usize) {
        assert_eq!(self.d.cfg_write(off as u64, &v.to_le_bytes()[..len]), 0);
    }
    pub fn find_cap(&self, id: u8) -> Option<usize> {
        let mut pos = self.cfg_r(pcicfg::CAP_PTR, 1) as usize & !3;
        for _ in 0..48 {
            if pos < 0x40 {
                return None;
            }
            if self.cfg_r(pos, 1) as u8 == id {
                return Some(pos);
            }
            pos = self.cfg_r(pos + 1, 1) as usize & !3;
        }
        None
    }
    pub fn kctxt(c: u64, reg: u64) -> u64 {
        bar0::RXE_PER_CONTEXT_KERNEL.offset(c).unwrap() + reg
    }
    pub fn sctxt(c: u64, reg: u64) -> u64 {
        bar0::TXE_PER_CONTEXT.offset(c).unwrap() + reg
    }
    pub fn sdma(e: u64, reg: u64) -> u64 {
        bar0::TXE_PER_SDMA.offset(e).unwrap() + reg
    }

    /// acquire_hw_mutex + release around `f` (firmware.c).
    pub fn with_hw_mutex(&mut self, f: impl FnOnce(&mut Self)) {
        let mask = 1u64; // 1 << hfi1_id
        if self.r(asic::ASIC_CFG_MUTEX) as u8 != mask as u8 {
            self.w(asic::ASIC_CFG_MUTEX, mask);
            self.poll("hw mutex acquire", asic::ASIC_CFG_MUTEX, |v| v as u8 == mask as u8);
        }
        f(self);
        assert_eq!(self.r(asic::ASIC_CFG_MUTEX) as u8, mask as u8, "still ours at release");
        self.w(asic::ASIC_CFG_MUTEX, 0);
    }

    /// sc_enable (pio.c) of hardware send context `hw`.
    pub fn sc_enable(&mut self, hw: u64) {
        let ctrl = self.r(Self::sctxt(hw, txe::SEND_CTXT_CTRL));
        assert_eq!(txe::SEND_CTXT_CTRL_CTXT_ENABLE.get(ctrl), 0);
        assert_eq!(self.r(Self::sctxt(hw, txe::SEND_CTXT_ERR_STATUS)), 0);
        let pio = txe::SEND_PIO_INIT_CTXT_PIO_CTXT_NUM.encode(hw)
            | txe::SEND_PIO_INIT_CTXT_PIO_SINGLE_CTXT_INIT.smask();
        self.w(txe::SEND_PIO_INIT_CTXT, pio);
        let v = self.poll("pio init (sc_enable)", txe::SEND_PIO_INIT_CTXT, |v| {
            txe::SEND_PIO_INIT_CTXT_PIO_INIT_IN_PROGRESS.get(v) == 0
        });
        assert_eq!(txe::SEND_PIO_INIT_CTXT_PIO_INIT_ERR.get(v), 0, "no init error");
        let en = ctrl | txe::SEND_CTXT_CTRL_CTXT_ENABLE.smask();
        self.w_halves(Self::sctxt(hw, txe::SEND_CTXT_CTRL), en);
        assert_eq!(self.r(Self::sctxt(hw, txe::SEND_CTXT_CTRL)), en);
    }

    /// sbus_request_slow (firmware.c) of a read; returns the data.
    pub fn sbus_read(&mut self, receiver: u64, data_addr: u64) -> u64 {
        // clear_sbus_fast_mode
        self.poll("sbus counters equal", asic::ASIC_STS_SBUS_COUNTERS, |v| {
            asic::ASIC_STS_SBUS_COUNTERS_EXECUTE_CNT.get(v)
                == asic::ASIC_STS_SBUS_COUNTERS_RCV_DATA_VALID_CNT.get(v)
        });
        self.w(asic::ASIC_CFG_SBUS_EXECUTE, 0);
        let req = asic::ASIC_CFG_SBUS_REQUEST_RECEIVER_ADDR.encode(receiver)
            | asic::ASIC_CFG_SBUS_REQUEST_DATA_ADDR.encode(data_addr)
            | asic::ASIC_CFG_SBUS_REQUEST_COMMAND.encode(asic::sbus_cmd::READ);
        self.w(asic::ASIC_CFG_SBUS_REQUEST, req);
        self.w(asic::ASIC_CFG_SBUS_EXECUTE, asic::ASIC_CFG_SBUS_EXECUTE_EXECUTE.smask());
        let r = self.poll("sbus done", asic::ASIC_STS_SBUS_RESULT, |v| {
            asic::ASIC_STS_SBUS_RESULT_DONE.get(v) == 1
                && asic::ASIC_STS_SBUS_RESULT_RCV_DATA_VALID.get(v) == 1
        });
        assert_eq!(asic::ASIC_STS_SBUS_RESULT_RESULT_CODE.get(r), asic::SBUS_READ_COMPLETE);
        self.w(asic::ASIC_CFG_SBUS_EXECUTE, 0);
        self.poll("sbus done clears", asic::ASIC_STS_SBUS_RESULT, |v| {
            asic::ASIC_STS_SBUS_RESULT_DONE.get(v) == 0
        });
        asic::ASIC_STS_SBUS_RESULT_DATA_OUT.get(r)
    }

    /// do_8051_command (chip.c); returns (return code, response data).
    pub fn dc8051_command(&mut self, ty: u64, data: u64) -> (u64, u64) {
        let reg = dc::DC_DC8051_CFG_HOST_CMD_0_REQ_TYPE.encode(ty)
            | dc::DC_DC8051_CFG_HOST_CMD_0_REQ_DATA.encode(data);
        self.w(dc::DC_DC8051_CFG_HOST_CMD_0, reg);
        self.w(dc::DC_DC8051_CFG_HOST_CMD_0, reg | dc::DC_DC8051_CFG_HOST_CMD_0_REQ_NEW.smask());
        let r = self.poll("8051 host command", dc::DC_DC8051_CFG_HOST_CMD_1, |v| {
            dc::DC_DC8051_CFG_HOST_CMD_1_COMPLETED.get(v) == 1
        });
        self.w(dc::DC_DC8051_CFG_HOST_CMD_0, 0);
        (
            dc::DC_DC8051_CFG_HOST_CMD_1_RETURN_CODE.get(r),
            dc::DC_DC8051_CFG_HOST_CMD_1_RSP_DATA.get(r),
        )
    }
}

/// The link bring-up sequences of hfi1 in functional-simulator mode with `loopback=1` (chip.c,
/// firmware.c).
impl Hfi1 {
    /// read_8051_config: one 32-bit field through an 8-byte 8051 data-RAM read.
    pub fn read_8051_config(&mut self, field: u64, lane: u64) -> u32 {
        let addr = dc::config::address(field, lane).expect("a field hfi1 reads");
        self.w(dc::DC_DC8051_CFG_RAM_ACCESS_SETUP, 0);
        self.w(dc::DC_DC8051_CFG_RAM_ACCESS_CTRL, addr);
        let rd = addr | dc::DC_DC8051_CFG_RAM_ACCESS_CTRL_READ_ENA.smask();
        self.w(dc::DC_DC8051_CFG_RAM_ACCESS_CTRL, rd);
        self.poll("8051 RAM read", dc::DC_DC8051_CFG_RAM_ACCESS_STATUS, |v| {
            dc::DC_DC8051_CFG_RAM_ACCESS_STATUS_ACCESS_COMPLETED.get(v) == 1
        });
        let big = self.r(dc::DC_DC8051_CFG_RAM_ACCESS_RD_DATA);
        self.w(dc::DC_DC8051_CFG_RAM_ACCESS_CTRL, 0);
        if addr & 4 != 0 {
            (big >> 32) as u32
        } else {
            big as u32
        }
    }

    /// load_8051_config; returns the command's return code.
    pub fn load_8051_config(&mut self, field: u64, lane: u64, data: u32) -> u64 {
        let req = dc::config::REQ_FIELD_ID.encode(field)
            | dc::config::REQ_LANE_ID.encode(lane)
            | u64::from(data);
        self.dc8051_command(dc::hcmd::LOAD_CONFIG_DATA, req).0
    }

    /// set_local_link_attributes (dc8051_ver 0): every LOAD_CONFIG_DATA must succeed.
    pub fn set_local_link_attributes(&mut self) {
        let gen = dc::config::GENERAL_CONFIG;
        let tx = self.read_8051_config(dc::config::TX_SETTINGS, gen);
        let tx = (tx & !0xFF00_00FF) | 0xF | (1 << 24); // four lanes, tx rate 25G
        assert_eq!(self.load_8051_config(dc::config::TX_SETTINGS, gen, tx), dc::hcmd_ret::SUCCESS);
        let rsv = self.read_8051_config(dc::config::RESERVED_REGISTERS, gen);
        let rsv = (rsv & !(0xFF << 16)) | (1 << 16); // HOST_INTERFACE_VERSION
        let code = self.load_8051_config(dc::config::RESERVED_REGISTERS, gen, rsv);
        assert_eq!(code, dc::hcmd_ret::SUCCESS);
        for (field, v) in [(0x07, 0x10), (0x08, 0x0030_0083), (0x09, 0x8), (0x0a, 0x24_F110)] {
            assert_eq!(self.load_8051_config(field, gen, v), dc::hcmd_ret::SUCCESS, "{field:#x}");
        }
    }

    /// lcb_shutdown.
    pub fn lcb_shutdown(&mut self, abort: bool) {
        self.w(dc::DC_LCB_CFG_RUN, 0);
        self.w(dc::DC_LCB_CFG_TX_FIFOS_RESET, 1);
        let err_en = self.r(dc::DC_LCB_ERR_EN);
        let reg = self.r(dc::DCC_CFG_RESET);
        self.w(dc::DCC_CFG_RESET, reg | 0x5); // ResetLcb | ResetRxFpe
        self.r(dc::DCC_CFG_RESET);
        if !abort {
            self.w(dc::DCC_CFG_RESET, reg);
            self.w(dc::DC_LCB_ERR_EN, err_en);
        }
    }

    /// do_quick_linkup in sim with loopback; returns the QUICK_LINKUP command's code.
    pub fn do_quick_linkup(&mut self) -> u64 {
        self.lcb_shutdown(false);
        self.w(dc::DC_LCB_CFG_LOOPBACK, 2); // IB_PACKET_TYPE << VAL_SHIFT
        self.w(dc::DC_LCB_CFG_LANE_WIDTH, 0);
        self.w(dc::DC_LCB_CFG_TX_FIFOS_RESET, 0);
        self.w(dc::DC_LCB_CFG_RUN, dc::DC_LCB_CFG_RUN_EN.smask());
        self.poll("LINK_TRANSFER_ACTIVE", dc::DC_LCB_STS_LINK_TRANSFER_ACTIVE, |v| v != 0);
        self.w(dc::DC_LCB_CFG_ALLOW_LINK_UP, 1);
        self.w(dc::DC_LCB_ERR_EN, 0);
        self.w(dc::DC_DC8051_CFG_CSR_ACCESS_SEL, 0x2); // set_8051_lcb_access
        self.dc8051_command(dc::hcmd::CHANGE_PHY_STATE, dc::pls::QUICK_LINKUP).0
    }

    /// The physical state (read_physical_state).
    pub fn phys_state(&mut self) -> u64 {
        dc::DC_DC8051_STS_CUR_STATE_PORT.get(self.r(dc::DC_DC8051_STS_CUR_STATE))
    }

    /// The logical state (read_logical_state).
    pub fn logical_state(&mut self) -> u64 {
        dc::DCC_CFG_PORT_CONFIG_LINK_STATE.get(self.r(dc::DCC_CFG_PORT_CONFIG))
    }

    /// set_logical_state.
    pub fn set_logical_state(&mut self, state: u64) {
        let reg = self.r(dc::DCC_CFG_PORT_CONFIG);
        self.w(dc::DCC_CFG_PORT_CONFIG, dc::DCC_CFG_PORT_CONFIG_LINK_STATE.set(reg, state));
    }

    /// general_interrupt phase 1 (scan and clear), then the DC 8051 source's handler:
    /// interrupt_clear_down of DC_DC8051_ERR_FLG (read, write ERR_CLR, handle, until 0) and
    /// handle_8051_interrupt's read of the host message. Returns the host-message bits seen.
    pub fn general_interrupt_8051(&mut self) -> u64 {
        let (reg, bit) = cce::int_source_bit(dc::IS_DC8051_INT);
        let st = self.r(cce::CCE_INT_STATUS.offset(reg).unwrap());
        assert_ne!(st & bit, 0, "the DC 8051 source is pending");
        self.w(cce::CCE_INT_CLEAR.offset(reg).unwrap(), st);
        let mut msgs = 0;
        for _ in 0..=20 {
            let flg = self.r(dc::DC_DC8051_ERR_FLG);
            if flg == 0 {
                return msgs;
            }
            self.w(dc::DC_DC8051_ERR_CLR, flg);
            if dc::DC_DC8051_ERR_FLG_SET_BY_8051.get(flg) == 1 {
                let info = self.r(dc::DC_DC8051_DBG_ERR_INFO_SET_BY_8051);
                msgs |= dc::DC_DC8051_DBG_ERR_INFO_SET_BY_8051_HOST_MSG.get(info);
            }
        }
        panic!("Repeating DC8051 Interrupt bits - masking");
    }
}
