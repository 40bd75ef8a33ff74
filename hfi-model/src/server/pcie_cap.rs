//! The PCI Express capability of the served HFI (version 2, endpoint, at config offset 0x70).
//!
//! hfi1 needs one (`pcie_speeds` fails the probe without `pci_is_pcie`), reads LnkCap/LnkSta
//! for the link speed and width, tunes MPS/MRRS/ExtTag in DevCtl, clears ASPM L1 in LnkCtl, and
//! resets the function through DevCtl.InitiateFLR. Values (a plausible WFR on a Gen3 x16 link):
//!
//! | register | value | writable |
//! |---|---|---|
//! | Capabilities | version 2, endpoint | — |
//! | DevCap | MPS 256 B, ExtTag, role-based errors, FLR capable | — |
//! | DevCtl | reset 0x2810 (MRRS 512 B, no-snoop, relaxed ordering) | bits 14:0; bit 15 starts an FLR and reads 0 |
//! | LnkCap | 8 GT/s, x16, no ASPM | — |
//! | LnkCtl | 0 | ASPM control, RCB, common clock, extended sync, clock PM, HW width disable, BW interrupts |
//! | LnkSta | 8 GT/s, x16, slot clock | — |
//! | DevCap2 | completion-timeout ranges A–D, timeout disable | — |
//! | DevCtl2 | 0 | completion-timeout value and disable |
//! | LnkCap2 | 2.5, 5 and 8 GT/s supported | — |
//! | LnkCtl2 | target speed 8 GT/s | all |
//!
//! Device and link status have no error bits set and nothing writable.

use hfi_abi::pcicfg::{cap_id, exp};

/// Offset of the capability.
pub const POS: usize = hfi_abi::pcicfg::PCIE_CAP;

/// DevCtl reset value.
pub const DEVCTL_RESET: u16 = 0x2810;
/// DevCtl bits a guest may change (InitiateFLR is an action, not storage).
pub const DEVCTL_WRITABLE: u16 = 0x7FFF;
/// LnkCtl bits a guest may change.
pub const LNKCTL_WRITABLE: u16 = 0x0FCB;
/// DevCtl2 bits a guest may change.
pub const DEVCTL2_WRITABLE: u16 = 0x001F;

/// Writes the capability at [`POS`] into `bytes` and its writable bits into `wmask`; `next` is
/// the next capability pointer.
pub fn install(bytes: &mut [u8], wmask: &mut [u8], next: u8) {
    let devcap = exp::DEVCAP_PAYLOAD.encode(1)
        | exp::DEVCAP_EXT_TAG.encode(1)
        | (1 << 15) // role-based error reporting
        | exp::DEVCAP_FLR.encode(1);
    let lnkcap = exp::LNKCAP_SLS.encode(exp::SPEED_8GT) | exp::LNKCAP_MLW.encode(16);
    let lnksta = exp::LNKSTA_CLS.encode(exp::SPEED_8GT)
        | exp::LNKSTA_NLW.encode(16)
        | exp::LNKSTA_SLC.encode(1);
    let flags = exp::FLAGS_VERSION.encode(2) | exp::FLAGS_TYPE.encode(0);
    put(bytes, POS, &[cap_id::EXP, next]);
    put(bytes, POS + exp::FLAGS, &(flags as u16).to_le_bytes());
    put(bytes, POS + exp::DEVCAP, &(devcap as u32).to_le_bytes());
    put(bytes, POS + exp::DEVCTL, &DEVCTL_RESET.to_le_bytes());
    put(bytes, POS + exp::LNKCAP, &(lnkcap as u32).to_le_bytes());
    put(bytes, POS + exp::LNKSTA, &(lnksta as u16).to_le_bytes());
    put(bytes, POS + exp::DEVCAP2, &0x1Fu32.to_le_bytes());
    put(bytes, POS + exp::LNKCAP2, &0x0Eu32.to_le_bytes());
    put(bytes, POS + exp::LNKCTL2, &(exp::SPEED_8GT as u16).to_le_bytes());
    put(wmask, POS + exp::DEVCTL, &DEVCTL_WRITABLE.to_le_bytes());
    put(wmask, POS + exp::LNKCTL, &LNKCTL_WRITABLE.to_le_bytes());
    put(wmask, POS + exp::DEVCTL2, &DEVCTL2_WRITABLE.to_le_bytes());
    put(wmask, POS + exp::LNKCTL2, &0xFFFFu16.to_le_bytes());
}

/// True if a write of `data` at config `offset` sets DevCtl.InitiateFLR.
pub fn starts_flr(offset: usize, data: &[u8]) -> bool {
    let flr_byte = POS + exp::DEVCTL + 1;
    let flr_bit = (exp::DEVCTL_BCR_FLR.smask() >> 8) as u8;
    flr_byte.checked_sub(offset).and_then(|i| data.get(i)).is_some_and(|b| b & flr_bit != 0)
}

pub(crate) fn put(b: &mut [u8], off: usize, v: &[u8]) {
    if let Some(d) = b.get_mut(off..off + v.len()) {
        d.copy_from_slice(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flr_detection() {
        let devctl = POS + exp::DEVCTL;
        assert!(starts_flr(devctl, &0x8000u16.to_le_bytes()));
        assert!(starts_flr(devctl + 1, &[0x80]));
        assert!(starts_flr(devctl - 4, &0x8000_0000_0000u64.to_le_bytes()[..8]));
        assert!(!starts_flr(devctl, &0x7FFFu16.to_le_bytes()));
        assert!(!starts_flr(devctl, &[0xFF])); // the low byte only
        assert!(!starts_flr(devctl + 2, &[0xFF, 0xFF]));
        assert!(!starts_flr(0, &[0xFF; 4]));
    }

    #[test]
    fn gen3_x16() {
        let mut b = vec![0u8; 256];
        let mut w = vec![0u8; 256];
        install(&mut b, &mut w, 0xB0);
        let lnkcap = u32::from_le_bytes(b[POS + 0x0C..POS + 0x10].try_into().unwrap());
        assert_eq!(lnkcap & 0xF, 3);
        assert_eq!(lnkcap >> 4 & 0x3F, 16);
        let lnksta = u16::from_le_bytes([b[POS + 0x12], b[POS + 0x13]]);
        assert_eq!(lnksta, 0x1103);
        assert_eq!(b[POS], 0x10);
        assert_eq!(b[POS + 1], 0xB0);
        assert_eq!(w[POS + exp::DEVCTL + 1] & 0x80, 0, "InitiateFLR is not storage");
    }
}
