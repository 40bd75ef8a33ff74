//! The chip CSRs the hfi1 probe needs (tier A, hfi1-probe §2), through MMIO: identity and
//! sizes, the interrupt-register check, the ASIC mutex/scratch, SBus, QSFP, PIO init, CM reset,
//! the 8051 host interface and the error registers that read 0.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)] // test code: a panic is a failure

use hfi_abi::{asic, bar0, cce, dc, misc, rxe, txe};
use hfi_model::test_utils::guest_memory;
use hfi_model::{DeviceConfig, HfiDevice};

type Dev = HfiDevice<std::sync::Arc<vm_memory::GuestMemoryMmap>>;

fn dev() -> Dev {
    hfi_model::test_utils::functional_device(8, 16384, 1 << 20).unwrap()
}

#[test]
fn identity_and_sizes() {
    let mut d = dev();
    let r = d.read64(cce::CCE_REVISION);
    assert_ne!(cce::CCE_REVISION_CHIP_REV_MINOR.get(r) >> 4, 0, "B-step: is_ax() is false");
    let r2 = d.read64(cce::CCE_REVISION2);
    assert_eq!(cce::CCE_REVISION2_IMPL_CODE.get(r2), cce::icode::FUNCTIONAL_SIMULATOR);
    assert_eq!(cce::CCE_REVISION2_HFI_ID.get(r2), 0);
    assert_eq!(d.read64(rxe::RCV_CONTEXTS), 8);
    assert_eq!(d.read64(rxe::RCV_ARRAY_CNT), 16384);
    assert_eq!(d.read64(txe::SEND_CONTEXTS), 160);
    assert_eq!(d.read64(txe::SEND_DMA_ENGINES), 16);
    let pio = d.read64(txe::SEND_PIO_MEM_SIZE);
    assert!(pio >= 64 * 64 && pio % txe::PIO_BLOCK_SIZE == 0, "{pio}");
    let sdma = d.read64(txe::SEND_DMA_MEM_SIZE);
    assert!(sdma / (16 * txe::SDMA_BLOCK_SIZE) >= 1, "every engine gets credits");
    let guid = d.read64(dc::DC_DC8051_CFG_LOCAL_GUID);
    assert_ne!(guid, 0);
    assert_eq!(guid >> 40, 0x00_1175, "Omni-Path OUI");
    assert_eq!(guid & (1 << 39), 0, "HFI index 0");
    // The constants are read-only.
    d.write64(txe::SEND_CONTEXTS, 3);
    d.write64(dc::DC_DC8051_CFG_LOCAL_GUID, 3);
    assert_eq!(d.read64(txe::SEND_CONTEXTS), 160);
    assert_eq!(d.read64(dc::DC_DC8051_CFG_LOCAL_GUID), guid);
    assert_eq!(d.counters().mmio_read_only_write_count, 2);
}

#[test]
fn bad_configurations_are_refused() {
    let bad = [
        DeviceConfig { send_contexts: 0, ..Default::default() },
        DeviceConfig { send_contexts: 161, ..Default::default() },
        DeviceConfig { sdma_engines: 17, ..Default::default() },
        DeviceConfig { pio_mem_size: 100, ..Default::default() },
        DeviceConfig { pio_mem_size: 2 << 20, ..Default::default() },
        DeviceConfig { sdma_mem_size: 0, ..Default::default() },
        DeviceConfig { node_guid: 0, ..Default::default() },
    ];
    for cfg in bad {
        assert!(HfiDevice::new(cfg.clone(), guest_memory(4096)).is_err(), "{cfg:?}");
    }
}

/// hfi1's `check_int_registers` (chip.c), run when the HFI has no parent bridge.
fn check_int_registers(d: &mut Dev) -> Result<(), &'static str> {
    let all = u64::MAX;
    let mask = d.read64(cce::CCE_INT_MASK.base);
    d.write64(cce::CCE_INT_MASK.base, 0);
    if d.read64(cce::CCE_INT_MASK.base) != 0 {
        return Err("mask does not read back");
    }
    d.write64(cce::CCE_INT_CLEAR.base, all);
    if d.read64(cce::CCE_INT_STATUS.base) != 0 {
        return Err("clear(all) leaves status bits");
    }
    d.write64(cce::CCE_INT_FORCE.base, all);
    if d.read64(cce::CCE_INT_STATUS.base) != all {
        return Err("force(all) does not set every status bit");
    }
    d.write64(cce::CCE_INT_CLEAR.base, all);
    d.write64(cce::CCE_INT_MASK.base, mask);
    Ok(())
}

#[test]
fn the_probe_interrupt_register_check_passes() {
    let mut d = dev();
    d.write64(cce::CCE_INT_MASK.base, 0x00F0);
    check_int_registers(&mut d).unwrap();
    assert_eq!(d.read64(cce::CCE_INT_MASK.base), 0x00F0, "mask restored");
    assert_eq!(d.read64(cce::CCE_INT_STATUS.base), 0, "status cleared at the end");
    assert!(d.take_interrupts().is_empty(), "nothing signalled while masked");
    // The mask reads back any pattern, in 4-byte halves too.
    d.write32(cce::CCE_INT_MASK.offset(3).unwrap() + 4, 0x8000_0001);
    assert_eq!(d.read64(cce::CCE_INT_MASK.offset(3).unwrap()), 0x8000_0001_0000_0000);
    // CceIntMap is storage (96 registers of 8 vector bytes).
    let last = cce::CCE_INT_MAP.offset(95).unwrap();
    d.write64(last, 0x0102_0304_0506_0708);
    assert_eq!(d.read64(last), 0x0102_0304_0506_0708);
}

#[test]
fn asic_mutex_and_scratch() {
    let mut d = dev();
    // acquire_hw_mutex: write the HFI's bit, read it back.
    assert_eq!(d.read64(asic::ASIC_CFG_MUTEX), 0);
    d.write64(asic::ASIC_CFG_MUTEX, 1);
    assert_eq!(d.read64(asic::ASIC_CFG_MUTEX) as u8, 1);
    // Held: the other HFI's write does not take it.
    d.write64(asic::ASIC_CFG_MUTEX, 2);
    assert_eq!(d.read64(asic::ASIC_CFG_MUTEX), 1);
    assert_eq!(d.counters().asic_mutex_busy_count, 1);
    // Released by writing 0, then the other HFI may take it.
    d.write64(asic::ASIC_CFG_MUTEX, 0);
    d.write64(asic::ASIC_CFG_MUTEX, 2);
    assert_eq!(d.read64(asic::ASIC_CFG_MUTEX), 2);
    // Scratch registers are plain 64-bit storage.
    for i in 0..4 {
        let off = asic::ASIC_CFG_SCRATCH.offset(i).unwrap();
        d.write64(off, 0xA5A5_0000_0000_0000 | i);
        assert_eq!(d.read64(off), 0xA5A5_0000_0000_0000 | i);
    }
    d.reset();
    assert_eq!(d.read64(asic::ASIC_CFG_MUTEX), 0);
    assert_eq!(d.read64(asic::ASIC_CFG_SCRATCH.base), 0);
}

#[test]
fn qsfp_reports_no_module() {
    let mut d = dev();
    for i in 0..2 {
        let v = d.read64(asic::ASIC_QSFP_IN.offset(i).unwrap());
        assert_eq!(asic::qsfp_pin::MODPRST_N.get(v), 1, "QSFP{} absent", i + 1);
        assert_eq!(asic::qsfp_pin::INT_N.get(v), 1);
    }
    // init_chip writes OUT = 0x1f; the IN register cannot be written.
    d.write64(asic::ASIC_QSFP_OUT.offset(0).unwrap(), 0x1f);
    d.write64(asic::ASIC_QSFP_IN.offset(0).unwrap(), 0);
    assert_eq!(d.read64(asic::ASIC_QSFP_IN.offset(0).unwrap()), 0x1f);
    // The i2c-algo-bit driver pulls the clock low through OE.
    d.write64(asic::ASIC_QSFP_OE.offset(0).unwrap(), asic::qsfp_pin::I2CCLK.smask());
    d.write64(asic::ASIC_QSFP_OUT.offset(0).unwrap(), 0);
    assert_eq!(d.read64(asic::ASIC_QSFP_IN.offset(0).unwrap()) & 1, 0);
}

#[test]
fn sbus_read_completes_at_once() {
    let mut d = dev();
    let req = asic::ASIC_CFG_SBUS_REQUEST_RECEIVER_ADDR.encode(0xfd)
        | asic::ASIC_CFG_SBUS_REQUEST_DATA_ADDR.encode(0x08)
        | asic::ASIC_CFG_SBUS_REQUEST_COMMAND.encode(asic::sbus_cmd::READ);
    d.write64(asic::ASIC_CFG_SBUS_REQUEST, req);
    d.write64(asic::ASIC_CFG_SBUS_EXECUTE, asic::ASIC_CFG_SBUS_EXECUTE_EXECUTE.smask());
    let r = d.read64(asic::ASIC_STS_SBUS_RESULT);
    assert_eq!(asic::ASIC_STS_SBUS_RESULT_DONE.get(r), 1);
    assert_eq!(asic::ASIC_STS_SBUS_RESULT_RCV_DATA_VALID.get(r), 1);
    assert_eq!(asic::ASIC_STS_SBUS_RESULT_RESULT_CODE.get(r), asic::SBUS_READ_COMPLETE);
    d.write64(asic::ASIC_CFG_SBUS_EXECUTE, 0);
    assert_eq!(asic::ASIC_STS_SBUS_RESULT_DONE.get(d.read64(asic::ASIC_STS_SBUS_RESULT)), 0);
    let cnt = d.read64(asic::ASIC_STS_SBUS_COUNTERS);
    assert_eq!(asic::ASIC_STS_SBUS_COUNTERS_EXECUTE_CNT.get(cnt), 1);
    assert_eq!(asic::ASIC_STS_SBUS_COUNTERS_RCV_DATA_VALID_CNT.get(cnt), 1);
    // Fast mode: every request write executes; the counters stay equal.
    d.write64(asic::ASIC_CFG_SBUS_EXECUTE, asic::ASIC_CFG_SBUS_EXECUTE_FAST_MODE.smask());
    for _ in 0..3 {
        d.write64(asic::ASIC_CFG_SBUS_REQUEST, req);
    }
    let cnt = d.read64(asic::ASIC_STS_SBUS_COUNTERS);
    assert_eq!(cnt & 0xffff, 4);
    assert_eq!(cnt >> 16 & 0xffff, 4);
    assert_eq!(d.counters().sbus_request_count, 4);
}

#[test]
fn pio_init_never_in_progress_and_cm_reset_self_clears() {
    let mut d = dev();
    let all = txe::SEND_PIO_INIT_CTXT_PIO_ALL_CTXT_INIT.smask();
    d.write64(txe::SEND_PIO_INIT_CTXT, all);
    let v = d.read64(txe::SEND_PIO_INIT_CTXT);
    assert_eq!(v & (all | txe::SEND_PIO_INIT_CTXT_PIO_INIT_IN_PROGRESS.smask()), 0);
    let single = txe::SEND_PIO_INIT_CTXT_PIO_CTXT_NUM.encode(155)
        | txe::SEND_PIO_INIT_CTXT_PIO_SINGLE_CTXT_INIT.smask();
    d.write64(txe::SEND_PIO_INIT_CTXT, single);
    let v = d.read64(txe::SEND_PIO_INIT_CTXT);
    assert_eq!(txe::SEND_PIO_INIT_CTXT_PIO_INIT_IN_PROGRESS.get(v), 0);
    assert_eq!(txe::SEND_PIO_INIT_CTXT_PIO_INIT_ERR.get(v), 0);
    assert_eq!(txe::SEND_PIO_INIT_CTXT_PIO_CTXT_NUM.get(v), 155);
    assert_eq!(d.counters().tx_pio_init_count, 2);
    // Writing the status bits does not set them.
    d.write64(txe::SEND_PIO_INIT_CTXT, 0xC);
    assert_eq!(d.read64(txe::SEND_PIO_INIT_CTXT) & 0xC, 0);

    // __cm_reset: write SEND_CTRL | CmReset, spin until CmReset reads 0.
    let ctrl = txe::SEND_CTRL_SEND_ENABLE.smask() | txe::SEND_CTRL_VL_ARBITER_ENABLE.smask();
    d.write64(txe::SEND_CTRL, ctrl | txe::SEND_CTRL_CM_RESET.smask());
    assert_eq!(d.read64(txe::SEND_CTRL), ctrl, "CmReset self-clears, the rest is kept");
}

#[test]
fn dc8051_host_command_runs_and_the_config_ram_reads_back() {
    let mut d = dev();
    let field = dc::config::REQ_FIELD_ID.encode(dc::config::TX_SETTINGS)
        | dc::config::REQ_LANE_ID.encode(dc::config::GENERAL_CONFIG)
        | 0x1234;
    let ty = dc::DC_DC8051_CFG_HOST_CMD_0_REQ_TYPE.encode(dc::hcmd::LOAD_CONFIG_DATA)
        | dc::DC_DC8051_CFG_HOST_CMD_0_REQ_DATA.encode(field);
    d.write64(dc::DC_DC8051_CFG_HOST_CMD_0, ty);
    assert_eq!(d.read64(dc::DC_DC8051_CFG_HOST_CMD_1), 0, "no request yet");
    d.write64(dc::DC_DC8051_CFG_HOST_CMD_0, ty | dc::DC_DC8051_CFG_HOST_CMD_0_REQ_NEW.smask());
    let r = d.read64(dc::DC_DC8051_CFG_HOST_CMD_1);
    assert_eq!(dc::DC_DC8051_CFG_HOST_CMD_1_COMPLETED.get(r), 1);
    assert_eq!(dc::DC_DC8051_CFG_HOST_CMD_1_RETURN_CODE.get(r), dc::hcmd_ret::SUCCESS);
    assert_eq!(dc::DC_DC8051_CFG_HOST_CMD_1_RSP_DATA.get(r), 0);
    assert_eq!(d.dc8051_last_command(), Some(dc::hcmd::LOAD_CONFIG_DATA));
    d.write64(dc::DC_DC8051_CFG_HOST_CMD_0, 0);
    assert_eq!(d.read64(dc::DC_DC8051_CFG_HOST_CMD_1), 0, "cleared for the next user");
    assert_eq!(d.counters().dc8051_host_cmd_count, 1);
    // The 8051 RAM read of TX_SETTINGS (byte 0x18) completes at once and returns the field.
    d.write64(dc::DC_DC8051_CFG_RAM_ACCESS_SETUP, 0);
    d.write64(dc::DC_DC8051_CFG_RAM_ACCESS_CTRL, 0x18);
    assert_eq!(d.read64(dc::DC_DC8051_CFG_RAM_ACCESS_STATUS), 0);
    d.write64(
        dc::DC_DC8051_CFG_RAM_ACCESS_CTRL,
        0x18 | dc::DC_DC8051_CFG_RAM_ACCESS_CTRL_READ_ENA.smask(),
    );
    let st = d.read64(dc::DC_DC8051_CFG_RAM_ACCESS_STATUS);
    assert_eq!(dc::DC_DC8051_CFG_RAM_ACCESS_STATUS_ACCESS_COMPLETED.get(st), 1);
    assert_eq!(d.read64(dc::DC_DC8051_CFG_RAM_ACCESS_RD_DATA) as u32, 0x1234);
    // Offline after reset, firmware ready.
    let cur = d.read64(dc::DC_DC8051_STS_CUR_STATE);
    assert_eq!(dc::DC_DC8051_STS_CUR_STATE_PORT.get(cur), dc::pls::OFFLINE);
    assert_eq!(dc::DC_DC8051_STS_CUR_STATE_FIRMWARE.get(cur), dc::FIRMWARE_READY);
}

#[test]
fn error_status_registers_read_zero() {
    let mut d = dev();
    let mut offs = vec![
        cce::CCE_ERR_STATUS,
        misc::MISC_ERR_STATUS,
        rxe::RCV_ERR_STATUS,
        txe::SEND_ERR_STATUS,
        txe::SEND_PIO_ERR_STATUS,
        txe::SEND_DMA_ERR_STATUS,
        txe::SEND_EGRESS_ERR_STATUS,
        txe::SEND_CM_CREDIT_USED_STATUS,
        dc::DCC_ERR_FLG,
        dc::DC_LCB_ERR_FLG,
        dc::DC_DC8051_ERR_FLG,
    ];
    for c in [0, 1, 159] {
        offs.push(bar0::TXE_PER_CONTEXT.offset(c).unwrap() + txe::SEND_CTXT_ERR_STATUS);
    }
    for e in [0, 15] {
        offs.push(bar0::TXE_PER_SDMA.offset(e).unwrap() + txe::SEND_DMA_ENG_ERR_STATUS);
    }
    for &off in &offs {
        d.write64(off, u64::MAX);
        assert_eq!(d.read64(off), 0, "{off:#x}");
    }
    assert_eq!(d.counters().mmio_read_only_write_count, offs.len() as u64);
}

#[test]
fn csr_census_counts_what_a_driver_touched() {
    let mut d = dev();
    d.read64(cce::CCE_REVISION);
    d.read32(cce::CCE_REVISION + 4);
    d.write64(txe::SEND_CTRL, 0);
    d.write64(bar0::TXE + 0x508, 1); // generic
    d.read64(bar0::TXE + 0x508);
    d.write64(bar0::RCV_ARRAY.base, 0); // RcvArray entries are not CSRs
    d.write64(bar0::TXE_PIO_SEND, 0); // nor is the PIO space
    let c = d.counters();
    assert_eq!(c.csr_touched_distinct_count, 3);
    assert_eq!(c.csr_read_distinct_count, 2);
    assert_eq!(c.csr_written_distinct_count, 2);
    assert_eq!(c.csr_generic_distinct_count, 1);
    let census = d.csr_census();
    assert_eq!(census["txe"].touched, 2);
    assert_eq!(census["txe"].generic, 1);
    assert_eq!(census["cce"].read, 1);
    let t = d.csr_touched();
    assert_eq!(t.iter().map(|t| t.offset).collect::<Vec<_>>(), vec![0, 0x180_0000, 0x180_0508]);
}
