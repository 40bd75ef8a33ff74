//! MISC block: RSA/firmware control and the MISC error CSRs (hfi1 `chip_registers.h`).

use crate::bar0::MISC;

/// MISC_ERR_STATUS (read-only; the model raises no MISC errors, so it reads 0).
pub const MISC_ERR_STATUS: u64 = MISC + 0x2000;
/// MISC_ERR_MASK.
pub const MISC_ERR_MASK: u64 = MISC + 0x2008;
/// MISC_ERR_CLEAR (write 1 to clear).
pub const MISC_ERR_CLEAR: u64 = MISC + 0x2010;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worked_offsets() {
        assert_eq!(MISC_ERR_STATUS, 0x50_2000);
    }
}
