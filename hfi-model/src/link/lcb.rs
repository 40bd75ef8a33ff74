//! The LCB (link control block) as far as link bring-up needs it: whether it transfers flits
//! (DC_LCB_STS_LINK_TRANSFER_ACTIVE) and whether it may report the link up to the 8051.
//!
//! The LCB's configuration CSRs are host storage; the status is a function of them:
//! **LinkTransferActive** = DC_LCB_CFG_RUN.En, transmit FIFOs out of reset
//! (DC_LCB_CFG_TX_FIFOS_RESET.Val = 0), the LCB out of reset (DCC_CFG_RESET.ResetLcb = 0), and
//! a far end to train with: in LCB loopback (DC_LCB_CFG_LOOPBACK.Val ≠ 0) that is this LCB
//! itself. Without loopback the far end is a link partner after LNI, which the model does not
//! train, so the status then follows the 8051's LinkUp. The 8051 may bring the link up when
//! the transfer is active and DC_LCB_CFG_ALLOW_LINK_UP is set (hfi1's quick link-up order).

use hfi_abi::dc;

/// The LCB-related configuration CSRs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LcbCfg {
    /// DC_LCB_CFG_RUN.
    pub run: u64,
    /// DC_LCB_CFG_TX_FIFOS_RESET.
    pub tx_fifos_reset: u64,
    /// DCC_CFG_RESET.
    pub dcc_reset: u64,
    /// DC_LCB_CFG_LOOPBACK.
    pub loopback: u64,
    /// DC_LCB_CFG_ALLOW_LINK_UP.
    pub allow_link_up: u64,
}

impl LcbCfg {
    /// The LCB loops its transmitter back to its receiver.
    pub fn loopback(&self) -> bool {
        dc::DC_LCB_CFG_LOOPBACK_VAL.get(self.loopback) != 0
    }

    /// DC_LCB_STS_LINK_TRANSFER_ACTIVE; `phys_up`: the 8051 is in LinkUp.
    pub fn transfer_active(&self, phys_up: bool) -> bool {
        let running = dc::DC_LCB_CFG_RUN_EN.get(self.run) == 1
            && dc::DC_LCB_CFG_TX_FIFOS_RESET_VAL.get(self.tx_fifos_reset) == 0
            && dc::DCC_CFG_RESET_RESET_LCB.get(self.dcc_reset) == 0;
        running && (self.loopback() || phys_up)
    }

    /// The 8051 may take the link to LinkUp now (quick link-up).
    pub fn ready_for_link_up(&self) -> bool {
        self.transfer_active(false) && self.allow_link_up & 1 == 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_linkup_loopback_sequence() {
        // do_quick_linkup in sim loopback: lcb_shutdown leaves RUN 0 and the FIFOs in reset.
        let mut l = LcbCfg { tx_fifos_reset: 1, ..Default::default() };
        assert!(!l.transfer_active(false));
        l.loopback = 2;
        l.tx_fifos_reset = 0;
        assert!(!l.transfer_active(false), "not running yet");
        l.run = 1;
        assert!(l.transfer_active(false));
        assert!(!l.ready_for_link_up(), "ALLOW_LINK_UP not yet written");
        l.allow_link_up = 1;
        assert!(l.ready_for_link_up());
        // An LCB held in reset by the DCC does not transfer.
        l.dcc_reset = 1;
        assert!(!l.transfer_active(true));
    }

    #[test]
    fn without_loopback_the_far_end_is_the_link() {
        let l = LcbCfg { run: 1, allow_link_up: 1, ..Default::default() };
        assert!(!l.transfer_active(false));
        assert!(!l.ready_for_link_up());
        assert!(l.transfer_active(true));
    }
}
