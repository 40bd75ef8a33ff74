//! The served device against a replay, in process, of the register and config-space sequence
//! of Debian 6.1's `hfi1.ko` probe (hfi1-probe §2.1–2.3, in driver order, with the values the
//! driver checks), plus FLR and MSI-X behaviour of the server. Every poll the driver makes
//! must complete on its first or second read.

#![cfg(feature = "server")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)] // test code: a panic is a failure

use std::fs::File;

mod hfi1_common;
use hfi1_common::*;

use hfi_abi::pcicfg::{self, cap_id, exp};
use hfi_abi::uapi::pci::DEVICE_ID_INTEL1;
use hfi_abi::{asic, bar0, cce, dc, misc, rxe, txe, BufSize, RcvArrayEntry};
use hfi_model::server::model::{irq_flags, MSIX_IRQ_INDEX};
use hfi_model::server::{ServedConfig, ServedDevice};
use hfi_model::{DeviceConfig, PeerConfig};

#[test]
fn hfi1_probe_sequence_completes_every_poll_at_once() {
    let mut h = Hfi1 { d: served(DEVICE_ID_INTEL1), polls: Vec::new() };

    // ---- §2.1 PCI / PCIe and BAR layout ------------------------------------------------------
    assert_eq!(h.cfg_r(pcicfg::VENDOR_ID, 4), 0x24f1_8086);
    // BAR0 sizing by the PCI core: 64-bit, 64 MiB = TXE_PIO_SEND + TXE_PIO_SIZE.
    h.cfg_w(pcicfg::BAR0_LO, 0xffff_ffff, 4);
    h.cfg_w(pcicfg::BAR0_HI, 0xffff_ffff, 4);
    let lo = h.cfg_r(pcicfg::BAR0_LO, 4) & !0xf;
    let hi = h.cfg_r(pcicfg::BAR0_HI, 4);
    assert_eq!(!((hi << 32) | lo) + 1, bar0::TXE_PIO_SEND + bar0::TXE_PIO_SIZE);
    h.cfg_w(pcicfg::BAR0_LO, 0x0000_0004, 4);
    h.cfg_w(pcicfg::BAR0_HI, 0x0000_0040, 4);
    h.cfg_w(pcicfg::COMMAND, 0x0006, 2); // memory space, bus master
                                         // hfi1_pcie_ddinit
    let rev = h.r(cce::CCE_REVISION);
    assert_ne!(rev, u64::MAX, "all-ones fails the probe");
    let rcv_array_cnt = h.r(rxe::RCV_ARRAY_CNT);
    assert!(
        bar0::RCV_ARRAY.base + rcv_array_cnt * 8 <= bar0::RXE_PER_CONTEXT_USER.base,
        "the second UC map must cover the user CSRs"
    );
    // save_pci_variables
    let exp_pos = h.find_cap(cap_id::EXP).expect("pcie_speeds needs a PCI Express capability");
    let devctl = h.cfg_r(exp_pos + exp::DEVCTL, 2);
    let lnkctl = h.cfg_r(exp_pos + exp::LNKCTL, 2);
    let devctl2 = h.cfg_r(exp_pos + exp::DEVCTL2, 2);
    let msix0 = h.cfg_r(pcicfg::PCI_CFG_MSIX0, 4);
    assert_eq!(msix0 as u8, cap_id::MSIX, "MSI-X at PCI_CFG_MSIX0");
    assert_eq!(h.find_cap(cap_id::MSIX), Some(pcicfg::PCI_CFG_MSIX0));
    // check_int_registers (no parent bridge)
    let mask = h.r(cce::CCE_INT_MASK.base);
    h.w(cce::CCE_INT_MASK.base, 0);
    assert_eq!(h.r(cce::CCE_INT_MASK.base), 0);
    h.w(cce::CCE_INT_CLEAR.base, u64::MAX);
    assert_eq!(h.r(cce::CCE_INT_STATUS.base), 0);
    h.w(cce::CCE_INT_FORCE.base, u64::MAX);
    assert_eq!(
        h.r(cce::CCE_INT_STATUS.base),
        u64::MAX,
        "Interrupt registers not properly mapped by VMM"
    );
    h.w(cce::CCE_INT_CLEAR.base, u64::MAX);
    h.w(cce::CCE_INT_MASK.base, mask);

    // ---- §2.2 identification, init_chip with FLR ---------------------------------------------
    let r2 = h.r(cce::CCE_REVISION2);
    assert_eq!(cce::CCE_REVISION2_HFI_ID.get(r2), 0);
    assert_eq!(cce::CCE_REVISION2_IMPL_CODE.get(r2), cce::icode::FUNCTIONAL_SIMULATOR);
    assert_ne!(cce::CCE_REVISION_CHIP_REV_MINOR.get(rev) & 0xf0, 0, "is_ax() false: one FLR");
    // read_guid
    h.w(cce::CCE_DC_CTRL, 0);
    let guid = h.r(dc::DC_DC8051_CFG_LOCAL_GUID);
    assert_ne!(guid, 0);
    // init_chip
    let send_ctxts = h.r(txe::SEND_CONTEXTS);
    let sdma_engines = h.r(txe::SEND_DMA_ENGINES);
    let rcv_ctxts = h.r(rxe::RCV_CONTEXTS);
    h.w(txe::SEND_CTRL, 0);
    for i in 0..send_ctxts {
        h.w(Hfi1::sctxt(i, txe::SEND_CTXT_CTRL), 0);
    }
    for i in 0..sdma_engines {
        h.w(Hfi1::sdma(i, txe::SEND_DMA_CTRL), 0);
    }
    h.w(rxe::RCV_CTRL, 0);
    for _ in 0..rcv_ctxts {
        h.w(Hfi1::kctxt(0, rxe::RCV_CTXT_CTRL), 0);
    }
    for i in 0..cce::NUM_INT_CSRS {
        h.w(cce::CCE_INT_MASK.offset(i).unwrap(), 0);
    }
    // State the FLR must clear: a modelled CSR, a generic one, the mutex.
    h.w(rxe::RCV_BTH_QP, 0x80 << 16);
    h.w(bar0::TXE + 0x508, 0x1234);
    h.w(cce::CCE_DC_CTRL, cce::CCE_DC_CTRL_DC_RESET.smask());
    h.r(cce::CCE_DC_CTRL);
    // pcie_flr: DevCtl |= InitiateFLR, then wait for the function to answer.
    h.cfg_w(exp_pos + exp::DEVCTL, devctl | exp::DEVCTL_BCR_FLR.smask(), 2);
    assert_ne!(h.cfg_r(pcicfg::COMMAND, 2), 0xffff);
    assert_eq!(h.d.stats.flr_count, 1);
    assert_eq!(h.r(rxe::RCV_BTH_QP), 0, "CSRs reset by the FLR");
    assert_eq!(h.r(bar0::TXE + 0x508), 0, "generic CSRs reset by the FLR");
    assert_eq!(h.r(cce::CCE_DC_CTRL), cce::CCE_DC_CTRL_DC_RESET.smask(), "DC reset remains");
    assert_eq!(h.cfg_r(pcicfg::VENDOR_ID, 4), 0x24f1_8086, "identity kept");
    assert_eq!(h.cfg_r(pcicfg::PCI_CFG_MSIX0, 4), msix0, "capabilities kept");
    // restore_pci_variables
    h.cfg_w(pcicfg::COMMAND, 0x0006, 2);
    h.cfg_w(pcicfg::BAR0_LO, 0x0000_0004, 4);
    h.cfg_w(pcicfg::BAR0_HI, 0x0000_0040, 4);
    h.cfg_w(exp_pos + exp::DEVCTL, devctl, 2);
    h.cfg_w(exp_pos + exp::LNKCTL, lnkctl, 2);
    h.cfg_w(exp_pos + exp::DEVCTL2, devctl2, 2);
    h.cfg_w(pcicfg::PCI_CFG_MSIX0, msix0, 4);
    assert_eq!(h.d.stats.flr_count, 1, "restoring DevCtl is no second FLR");
    // clear the DC reset, LED off, QSFP OUT all high
    h.w(cce::CCE_DC_CTRL, 0);
    h.w(asic::ASIC_QSFP_OUT.offset(0).unwrap(), 0x1f);
    h.w(asic::ASIC_QSFP_OUT.offset(1).unwrap(), 0x1f);
    // init_chip_resources: clear this HFI's resource bits under the hardware mutex
    h.with_hw_mutex(|h| {
        let s0 = h.r(asic::ASIC_CFG_SCRATCH.base);
        h.w(asic::ASIC_CFG_SCRATCH.base, s0 & !0xff);
        h.r(asic::ASIC_CFG_SCRATCH.base);
    });
    // pcie_speeds
    let lnkcap = h.cfg_r(exp_pos + exp::LNKCAP, 4);
    assert_eq!(exp::LNKCAP_SLS.get(lnkcap), exp::SPEED_8GT, "Gen3 capable");
    let lnksta = h.cfg_r(exp_pos + exp::LNKSTA, 2);
    assert_eq!((exp::LNKSTA_CLS.get(lnksta), exp::LNKSTA_NLW.get(lnksta)), (3, 16));

    // chip sizes: set_up_context_variables and init_sc_pools_and_sizes must find room
    let n_krcv = 1 + KRCVQS; // control context + kernel receive queues
    assert!(n_krcv + NUM_USER_CONTEXTS <= h.r(rxe::RCV_CONTEXTS));
    let total_blocks = h.r(txe::SEND_PIO_MEM_SIZE) / txe::PIO_BLOCK_SIZE - 1;
    let fixed = 2 * NUM_VLS * (3 * (256 + 128) / 64) + n_krcv * 32 + 102;
    assert!(fixed < total_blocks, "pool 0 left for user send contexts");
    let user_blocks = (total_blocks - fixed) / (h.r(rxe::RCV_CONTEXTS) - n_krcv);
    assert!(user_blocks >= 8, "{user_blocks}");
    let engines = NUM_SDMA.max(NUM_VLS);
    assert!(h.r(txe::SEND_DMA_MEM_SIZE) / (engines * txe::SDMA_BLOCK_SIZE) >= 1);
    assert!(NUM_SDMA <= h.r(txe::SEND_DMA_ENGINES));
    // get_platform_config on 0x24F1: the scratch checksum
    for i in 1..4 {
        assert_eq!(h.r(asic::ASIC_CFG_SCRATCH.offset(i).unwrap()), 0);
    }

    // init_early_variables / write_uninitialized_csrs_and_memories, init_rxe/txe/other
    for i in 0..96 {
        h.w(cce::CCE_INT_MAP.offset(i).unwrap(), 0);
    }
    for c in 0..rcv_ctxts {
        h.w(Hfi1::kctxt(c, rxe::RCV_HDR_TAIL_ADDR), 0);
        h.w(Hfi1::kctxt(c, rxe::RCV_HDR_ADDR), 0);
        for f in 0..rxe::RXE_NUM_TID_FLOWS {
            h.w(bar0::RXE_PER_CONTEXT_USER.offset(c).unwrap() + 0x800 + 8 * f, 0);
        }
    }
    for i in 0..rcv_array_cnt {
        h.w(bar0::RCV_ARRAY.offset(i).unwrap(), RcvArrayEntry::invalid().raw());
    }
    h.w(rxe::RCV_ERR_MASK, u64::MAX);
    for i in 0..32 {
        h.w(rxe::RCV_QP_MAP_TABLE.offset(i).unwrap(), 0x0101_0101_0101_0101);
    }
    for (off, v) in [
        (txe::SEND_PIO_ERR_STATUS + 8, u64::MAX), // SEND_PIO_ERR_MASK
        (txe::SEND_DMA_ERR_STATUS + 8, u64::MAX),
        (txe::SEND_ERR_STATUS + 8, u64::MAX),
        (txe::SEND_EGRESS_ERR_STATUS + 8, u64::MAX),
        (cce::CCE_ERR_MASK, u64::MAX),
        (misc::MISC_ERR_MASK, 0x1f),
        (dc::DCC_ERR_FLG + 8, u64::MAX),          // DCC_ERR_FLG_EN
        (dc::DC_DC8051_ERR_FLG + 0x10, u64::MAX), // DC_DC8051_ERR_EN
    ] {
        h.w(off, v);
        assert_eq!(h.r(off), v, "mask {off:#x} reads back");
    }
    for i in 0..send_ctxts {
        h.w(Hfi1::sctxt(i, txe::SEND_CTXT_ERR_STATUS + 8), u64::MAX);
    }
    // init_kdeth_qp
    h.w(bar0::TXE + 0xA0, 0x80 << 16); // SEND_BTH_QP
    h.w(rxe::RCV_BTH_QP, 0x80 << 16);
    assert_eq!(h.r(rxe::RCV_BTH_QP), 0x80 << 16);
    assert_eq!(h.r(bar0::TXE + 0xA0), 0x80 << 16);

    // hfi1_firmware_init loads nothing in sim; load_firmware still dumps versions over SBus
    let cr_sbus = 0x01;
    h.with_hw_mutex(|h| {
        let s0 = h.r(asic::ASIC_CFG_SCRATCH.base);
        assert_eq!(s0 & (cr_sbus | cr_sbus << 8), 0, "CR_SBUS free");
        h.w(asic::ASIC_CFG_SCRATCH.base, s0 | cr_sbus);
        assert_ne!(h.r(asic::ASIC_CFG_SCRATCH.base) & cr_sbus, 0);
    });
    for (ra, da) in [(0xfd, 0x08), (0x01, 0x08), (0x02, 0x08)] {
        h.sbus_read(ra, da);
    }
    h.with_hw_mutex(|h| {
        let s0 = h.r(asic::ASIC_CFG_SCRATCH.base);
        h.w(asic::ASIC_CFG_SCRATCH.base, s0 & !cr_sbus);
    });

    // init_send_contexts / hfi1_create_kctxts / init_pervl_scs: kernel send contexts
    for k in 0..3 {
        h.sc_enable(send_ctxts - 1 - k);
    }
    // sdma_init: per-engine CSRs are write-only here; the engines keep the writable fields
    // (LEN_GEN: Length and Generation; TAIL: the 16-bit tail).
    for e in 0..NUM_SDMA {
        for reg in [0x10, 0x18, 0x20, 0x30, 0x38, 0x48, 0x50, 0xB0] {
            h.w(Hfi1::sdma(e, reg), 0x1000 + reg);
            let kept = match reg {
                txe::SEND_DMA_LEN_GEN => {
                    txe::SEND_DMA_LEN_GEN_LENGTH.smask() | txe::SEND_DMA_LEN_GEN_GENERATION.smask()
                }
                txe::SEND_DMA_TAIL => txe::SEND_DMA_TAIL_TAIL.smask(),
                _ => u64::MAX,
            };
            assert_eq!(h.r(Hfi1::sdma(e, reg)), (0x1000 + reg) & kept);
        }
    }

    // set_up_interrupts / msix_initialize: exactly 1 + num_sdma + n_krcv vectors
    let vectors = 1 + NUM_SDMA + n_krcv;
    let msix_ctrl = h.cfg_r(pcicfg::PCI_CFG_MSIX0 + pcicfg::msix::FLAGS, 2);
    let table_size = pcicfg::msix::FLAGS_QSIZE.get(msix_ctrl) + 1;
    assert!(table_size >= vectors.max(20), "{table_size} vectors");
    // The guest enables MSI-X; QEMU sets the vectors' eventfds one message each.
    h.cfg_w(pcicfg::PCI_CFG_MSIX0 + pcicfg::msix::FLAGS, msix_ctrl | 0x8000, 2);
    let trig_fd = irq_flags::ACTION_TRIGGER | irq_flags::DATA_EVENTFD;
    assert_eq!(h.d.set_irqs(MSIX_IRQ_INDEX, trig_fd, 0, 1, None), 0);
    let mut ends = Vec::new();
    for v in 0..vectors as u32 {
        let (f, r) = eventfd();
        assert_eq!(h.d.set_irqs(MSIX_IRQ_INDEX, trig_fd, v, 1, Some(f)), 0);
        ends.push(r);
    }
    assert!(h.d.msix_enabled());
    // Route RcvAvail of kernel context 1 to vector 3 (hfi1: CceIntMap byte per source).
    let src = cce::IS_RCVAVAIL_START + 1;
    let map_off = cce::CCE_INT_MAP.offset(src / 8).unwrap();
    h.w(map_off, 3 << ((src % 8) * 8));
    let (reg, bit) = cce::int_source_bit(src);
    h.w(cce::CCE_INT_MASK.offset(reg).unwrap(), bit);
    h.w(cce::CCE_INT_FORCE.offset(reg).unwrap(), bit);
    assert_eq!(signals(&mut ends[3]), 1, "RcvAvail(1) arrives as MSI-X vector 3");
    assert_eq!(signals(&mut ends[0]), 0);
    assert_eq!(h.d.stats.irq_trigger_count, 0, "no INTx while MSI-X is on");
    h.w(cce::CCE_INT_CLEAR.offset(reg).unwrap(), bit);

    // ---- §2.3 hfi1_init: enable_chip, bringup_serdes ------------------------------------------
    let send_ctrl = txe::SEND_CTRL_SEND_ENABLE.smask() | txe::SEND_CTRL_VL_ARBITER_ENABLE.smask();
    h.w(txe::SEND_CTRL, send_ctrl);
    // __cm_reset (reset_link_credits): unbounded spin on CmReset in the driver
    h.w(txe::SEND_CTRL, send_ctrl | txe::SEND_CTRL_CM_RESET.smask());
    let v = h.poll("SEND_CTRL.CmReset", txe::SEND_CTRL, |v| txe::SEND_CTRL_CM_RESET.get(v) == 0);
    assert_eq!(v, send_ctrl);
    h.poll("credits returned", txe::SEND_CM_CREDIT_USED_STATUS, |v| v == 0);
    // tune_serdes: no QSFP module
    let qsfp = h.r(asic::ASIC_QSFP_IN.offset(0).unwrap());
    assert_eq!(asic::qsfp_pin::MODPRST_N.get(qsfp), 1, "module absent");
    // enable_general_intr: the DC sources (248..255) among others
    h.w(cce::CCE_INT_MASK.offset(3).unwrap(), 0xFF << 56);
    // bringup_serdes, sim with loopback: init_loopback disables the self-GUID check, then
    // set_link_state(POLL) → set_local_link_attributes and do_quick_linkup.
    let mode = h.r(dc::DC_DC8051_CFG_MODE);
    h.w(dc::DC_DC8051_CFG_MODE, mode | 0x2);
    h.set_local_link_attributes();
    assert_eq!(h.do_quick_linkup(), dc::hcmd_ret::SUCCESS, "the quick link-up succeeds");
    // The link trains (polling) until the server's training time has passed; then
    // LINKUP_ACHIEVED arrives on the general vector (CceIntMap byte 0 for source 250).
    assert_eq!(h.phys_state(), dc::pls::POLLING);
    h.d.link_training_done();
    assert_eq!(signals(&mut ends[0]), 1, "the 8051 interrupt on MSI-X vector 0");
    assert_eq!(h.general_interrupt_8051(), dc::host_msg::LINKUP_ACHIEVED);
    // handle_link_up → set_link_state(INIT): LinkUp and Init at once.
    h.poll("phys LinkUp", dc::DC_DC8051_STS_CUR_STATE, |v| v & 0xFF == dc::pls::LINKUP);
    h.poll("logical Init", dc::DCC_CFG_PORT_CONFIG, |v| {
        dc::DCC_CFG_PORT_CONFIG_LINK_STATE.get(v) == dc::lstate::INIT
    });

    // ---- §2.5 /dev/hfi1_0: a user context and its TIDs ---------------------------------------
    h.sc_enable(send_ctxts - 1 - 3);
    let e = RcvArrayEntry::new(0x12_3400_0000, BufSize::SIZE_4K);
    let tid = bar0::RCV_ARRAY.offset(4096).unwrap();
    h.w(tid, e.raw());
    assert_eq!(h.r(tid), e.raw());
    h.w_halves(tid + 8, e.raw()); // WC stores may split
    assert_eq!(h.r(tid + 8), e.raw());

    // ---- the verdict --------------------------------------------------------------------------
    let slow: Vec<_> = h.polls.iter().filter(|&&(_, n)| n > 2).collect();
    assert!(slow.is_empty(), "polls needing more than two reads: {slow:?}");
    assert!(h.polls.len() >= 20, "{} polls replayed", h.polls.len());
    for off in [
        cce::CCE_ERR_STATUS,
        misc::MISC_ERR_STATUS,
        rxe::RCV_ERR_STATUS,
        txe::SEND_ERR_STATUS,
        txe::SEND_PIO_ERR_STATUS,
        txe::SEND_DMA_ERR_STATUS,
        txe::SEND_EGRESS_ERR_STATUS,
    ] {
        assert_eq!(h.r(off), 0, "{off:#x}");
    }
    let c = h.d.dev.counters();
    assert_eq!(c.mmio_unknown_read_count + c.mmio_unknown_write_count, 0);
    assert_eq!(c.mmio_bad_size_count + c.mmio_misaligned_count + c.mmio_out_of_range_count, 0);
    assert!(c.csr_touched_distinct_count > 500, "{}", c.csr_touched_distinct_count);
    assert_eq!(c.csr_touched_distinct_count, h.d.dev.csr_touched().len() as u64);
    assert!(c.csr_generic_distinct_count > 0);
    assert_eq!(c.tx_pio_init_count, 4);
    assert_eq!(c.dc8051_host_cmd_count, 7);
}

#[test]
fn flr_resets_csrs_but_not_config_identity_maps_or_vectors() {
    let mut d = served(DEVICE_ID_INTEL1);
    // A DMA map (a plain file stands in for the guest-RAM memfd).
    let path = std::env::temp_dir().join(format!("hfi1-probe-flr-{}", std::process::id()));
    let f = File::options().read(true).write(true).create(true).truncate(true).open(&path).unwrap();
    f.set_len(1 << 20).unwrap();
    let _ = std::fs::remove_file(&path);
    assert_eq!(d.dma_map(0x1000_0000, 1 << 20, 0, Some(f)), 0);
    // An MSI-X vector.
    let (fd, mut rd) = eventfd();
    let trig_fd = irq_flags::ACTION_TRIGGER | irq_flags::DATA_EVENTFD;
    assert_eq!(d.set_irqs(MSIX_IRQ_INDEX, trig_fd, 7, 1, Some(fd)), 0);
    // Device state and config state.
    d.bar_write(rxe::RCV_BTH_QP, &(0x80u64 << 16).to_le_bytes());
    d.bar_write(asic::ASIC_CFG_SCRATCH.base, &5u64.to_le_bytes());
    d.bar_write(bar0::TXE + 0x600, &9u64.to_le_bytes()); // generic (SEND_CM_CREDIT_VL)
    assert_eq!(d.cfg_write(0x04, &6u16.to_le_bytes()), 0);
    assert_eq!(d.cfg_write(0x10, &0xfc00_0004u32.to_le_bytes()), 0);
    let before: Vec<u8> = (0..0x100).map(|i| cfg8(&d, i)).collect();

    let devctl = (pcicfg::PCIE_CAP + exp::DEVCTL) as u64;
    assert_eq!(d.cfg_write(devctl, &0x8000u16.to_le_bytes()), 0);

    let mut b = [0u8; 8];
    for off in [rxe::RCV_BTH_QP, asic::ASIC_CFG_SCRATCH.base, bar0::TXE + 0x600] {
        d.bar_read(off, &mut b);
        assert_eq!(u64::from_le_bytes(b), 0, "{off:#x} back to its reset value");
    }
    let after: Vec<u8> = (0..0x100).map(|i| cfg8(&d, i)).collect();
    let devctl_lo = pcicfg::PCIE_CAP + exp::DEVCTL;
    for i in 0..0x100 {
        if i == devctl_lo || i == devctl_lo + 1 {
            continue; // the FLR write itself changed DevCtl
        }
        assert_eq!(before[i], after[i], "config byte {i:#x} changed by the FLR");
    }
    assert_eq!(d.stats.flr_count, 1);
    assert_eq!(d.dev.counters().reset_count, 1);
    assert_eq!(d.dma_maps(), 1, "DMA maps survive an FLR");
    assert!(d.msix_enabled(), "vectors survive an FLR");
    // The vector still works: route a forced source to it.
    let src = 5; // a general (error) source
    d.bar_write(cce::CCE_INT_MAP.base, &(7u64 << (src * 8)).to_le_bytes());
    d.bar_write(cce::CCE_INT_MASK.base, &(1u64 << src).to_le_bytes());
    d.bar_write(cce::CCE_INT_FORCE.base, &(1u64 << src).to_le_bytes());
    assert_eq!(signals(&mut rd), 1);
}

fn cfg8(d: &ServedDevice, off: usize) -> u8 {
    let mut b = [0u8; 1];
    assert!(d.config.read(off as u64, &mut b));
    b[0]
}

#[test]
fn intx_without_msix_and_after_msix_disable() {
    let mut d = served(hfi_abi::uapi::pci::DEVICE_ID_INTEL0);
    let (fd, mut rd) = eventfd();
    let trig_fd = irq_flags::ACTION_TRIGGER | irq_flags::DATA_EVENTFD;
    assert_eq!(d.set_irqs(0, trig_fd, 0, 1, Some(fd)), 0);
    let force = |d: &mut ServedDevice| {
        d.bar_write(cce::CCE_INT_CLEAR.base, &u64::MAX.to_le_bytes());
        d.bar_write(cce::CCE_INT_MASK.base, &1u64.to_le_bytes());
        d.bar_write(cce::CCE_INT_FORCE.base, &1u64.to_le_bytes());
    };
    force(&mut d);
    assert_eq!(signals(&mut rd), 1, "INTx by default");
    let (mfd, mut mrd) = eventfd();
    assert_eq!(d.set_irqs(MSIX_IRQ_INDEX, trig_fd, 0, 1, Some(mfd)), 0);
    force(&mut d);
    assert_eq!((signals(&mut rd), signals(&mut mrd)), (0, 1), "MSI-X replaces INTx");
    let disable = irq_flags::ACTION_TRIGGER | irq_flags::DATA_NONE;
    assert_eq!(d.set_irqs(MSIX_IRQ_INDEX, disable, 0, 0, None), 0);
    force(&mut d);
    assert_eq!((signals(&mut rd), signals(&mut mrd)), (1, 0), "back to INTx");
    // MSI (index 1) has no vectors.
    assert_ne!(d.set_irqs(1, trig_fd, 0, 1, None), 0);
    assert_eq!(d.set_irqs(1, disable, 0, 0, None), 0);
    // ERR (index 3) takes one eventfd (QEMU's error-recovery notifier) and never fires it.
    let (efd, mut erd) = eventfd();
    assert_eq!(d.set_irqs(3, trig_fd, 0, 1, Some(efd)), 0);
    assert_ne!(d.set_irqs(3, trig_fd, 1, 1, None), 0);
    force(&mut d);
    assert_eq!((signals(&mut rd), signals(&mut erd)), (1, 0));
    assert_eq!(d.set_irqs(3, disable, 0, 0, None), 0);
}

#[test]
fn device_ids_hfi1_binds_only() {
    for id in [0x24f0u16, 0x24f1] {
        let d = served(id);
        assert_eq!(d.config.read32(0), u32::from(id) << 16 | 0x8086);
    }
    let mut cfg = ServedConfig::new(DeviceConfig::default(), PeerConfig::default(), 64000);
    cfg.device_id = 0x1234;
    assert!(ServedDevice::new(cfg).is_err());
}
