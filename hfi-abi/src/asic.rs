//! ASIC block: the SBus master interface, the hardware mutex and scratch registers shared by
//! the two HFIs of a dual-ASIC part, and the QSFP pin registers (hfi1 `chip_registers.h`,
//! `firmware.c`, `qsfp.h`).

use crate::bar0::ASIC;
use crate::field::{Field, RegArray};

/// ASIC_CFG_SBUS_REQUEST: the SBus request the next execute sends.
pub const ASIC_CFG_SBUS_REQUEST: u64 = ASIC;
/// ASIC_CFG_SBUS_REQUEST.ReceiverAddr.
pub const ASIC_CFG_SBUS_REQUEST_RECEIVER_ADDR: Field = Field::new(0, 8);
/// ASIC_CFG_SBUS_REQUEST.DataAddr.
pub const ASIC_CFG_SBUS_REQUEST_DATA_ADDR: Field = Field::new(8, 8);
/// ASIC_CFG_SBUS_REQUEST.Command.
pub const ASIC_CFG_SBUS_REQUEST_COMMAND: Field = Field::new(16, 8);
/// ASIC_CFG_SBUS_REQUEST.DataIn.
pub const ASIC_CFG_SBUS_REQUEST_DATA_IN: Field = Field::new(32, 32);

/// ASIC_CFG_SBUS_EXECUTE.
pub const ASIC_CFG_SBUS_EXECUTE: u64 = ASIC + 0x8;
/// ASIC_CFG_SBUS_EXECUTE.Execute: 0 → 1 sends the request.
pub const ASIC_CFG_SBUS_EXECUTE_EXECUTE: Field = Field::bit(0);
/// ASIC_CFG_SBUS_EXECUTE.FastMode: every request write executes (firmware downloads).
pub const ASIC_CFG_SBUS_EXECUTE_FAST_MODE: Field = Field::bit(1);

/// ASIC_STS_SBUS_RESULT (read-only).
pub const ASIC_STS_SBUS_RESULT: u64 = ASIC + 0x10;
/// ASIC_STS_SBUS_RESULT.Done.
pub const ASIC_STS_SBUS_RESULT_DONE: Field = Field::bit(0);
/// ASIC_STS_SBUS_RESULT.RcvDataValid.
pub const ASIC_STS_SBUS_RESULT_RCV_DATA_VALID: Field = Field::bit(1);
/// ASIC_STS_SBUS_RESULT.ResultCode.
pub const ASIC_STS_SBUS_RESULT_RESULT_CODE: Field = Field::new(2, 3);
/// ASIC_STS_SBUS_RESULT.DataOut.
pub const ASIC_STS_SBUS_RESULT_DATA_OUT: Field = Field::new(32, 32);

/// ASIC_STS_SBUS_COUNTERS (read-only).
pub const ASIC_STS_SBUS_COUNTERS: u64 = ASIC + 0x18;
/// ASIC_STS_SBUS_COUNTERS.ExecuteCnt.
pub const ASIC_STS_SBUS_COUNTERS_EXECUTE_CNT: Field = Field::new(0, 16);
/// ASIC_STS_SBUS_COUNTERS.RcvDataValidCnt.
pub const ASIC_STS_SBUS_COUNTERS_RCV_DATA_VALID_CNT: Field = Field::new(16, 16);

/// SBus commands (ASIC_CFG_SBUS_REQUEST.Command).
pub mod sbus_cmd {
    /// Reset a receiver.
    pub const RESET: u64 = 0x20;
    /// Write a receiver register.
    pub const WRITE: u64 = 0x21;
    /// Read a receiver register.
    pub const READ: u64 = 0x22;
}

/// ASIC_STS_SBUS_RESULT.ResultCode of a completed read (`SBUS_READ_COMPLETE`, firmware.c).
pub const SBUS_READ_COMPLETE: u64 = 0x4;

/// ASIC_CFG_SCRATCH\[4\]: scratch 0 holds the chip-resource lock bits; 1..3 the integrated
/// part's platform-configuration bitmap and checksum.
pub const ASIC_CFG_SCRATCH: RegArray = RegArray::new(ASIC + 0x20, 8, 4);
/// ASIC_CFG_MUTEX: the hardware mutex (one bit per HFI: `1 << hfi1_id`).
pub const ASIC_CFG_MUTEX: u64 = ASIC + 0x40;

/// ASIC_QSFPn_IN (read-only): pin levels of QSFP 1 and 2.
pub const ASIC_QSFP_IN: RegArray = RegArray::new(ASIC + 0x240, 0x40, 2);
/// ASIC_QSFPn_OE: output enables.
pub const ASIC_QSFP_OE: RegArray = RegArray::new(ASIC + 0x248, 0x40, 2);
/// ASIC_QSFPn_OUT: output levels.
pub const ASIC_QSFP_OUT: RegArray = RegArray::new(ASIC + 0x258, 0x40, 2);

/// QSFP pins (the same bits in IN, OE and OUT; `_N` = asserted low, qsfp.h).
pub mod qsfp_pin {
    use crate::field::Field;
    /// I2C clock (open drain, driven by the host).
    pub const I2CCLK: Field = Field::bit(0);
    /// I2C data (open drain).
    pub const I2CDAT: Field = Field::bit(1);
    /// Module reset, host output.
    pub const RESET_N: Field = Field::bit(2);
    /// Module interrupt, module output.
    pub const INT_N: Field = Field::bit(3);
    /// Module present, module output: 1 = no module.
    pub const MODPRST_N: Field = Field::bit(4);
    /// All five pins.
    pub const ALL: u64 = 0x1f;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worked_offsets() {
        assert_eq!(ASIC_STS_SBUS_RESULT, 0x40_0010);
        assert_eq!(ASIC_CFG_SCRATCH.offset(3), Some(0x40_0038));
        assert_eq!(ASIC_CFG_MUTEX, 0x40_0040);
        assert_eq!(ASIC_QSFP_IN.offset(1), Some(0x40_0280));
        assert_eq!(ASIC_QSFP_OUT.offset(1), Some(0x40_0298));
        assert_eq!(ASIC_QSFP_OE.offset(0), Some(0x40_0248));
    }

    #[test]
    fn read_complete_result() {
        let r = ASIC_STS_SBUS_RESULT_DONE.encode(1)
            | ASIC_STS_SBUS_RESULT_RCV_DATA_VALID.encode(1)
            | ASIC_STS_SBUS_RESULT_RESULT_CODE.encode(SBUS_READ_COMPLETE);
        assert_eq!(r, 0x13);
        assert_eq!(qsfp_pin::MODPRST_N.smask(), 0x10);
    }
}
