//! The DCC's logical link state (DCC_CFG_PORT_CONFIG.LinkState), which the hardware and the
//! host drive together:
//!
//! - the hardware sets **Init** when the physical link reaches LinkUp and **Down** when it
//!   leaves it (the 8051's [`crate::link::dc8051::LinkChange`]);
//! - the host moves an up port **Init → Armed → Active** by writing the field (hfi1's
//!   `set_logical_state`, after the subnet manager's PortInfo set). Writing the current state
//!   is a no-op (hfi1 read-modify-writes the register for the MTU capability); any other write
//!   of the field is ignored and counted (`dcc_link_state_write_ignored_count`).
//!
//! The register (the chip CSR table) holds the state; these are its transitions. The reset
//! state is Down ([`RESET_STATE`], **choice**: the port has no link).

use hfi_abi::dc::lstate;

use crate::counters::Counters;
use crate::link::dc8051::LinkChange;

/// LinkState after reset (the register table's reset value).
pub const RESET_STATE: u64 = crate::regs::chip::PORT_RESET_LINK_STATE;

/// The logical state after the physical link changed (a [`lstate`] value).
pub fn on_link(state: u64, change: LinkChange) -> u64 {
    match change {
        LinkChange::Up => lstate::INIT,
        LinkChange::Down => lstate::DOWN,
        LinkChange::None => state,
    }
}

/// The logical state after the host wrote `want` into the LinkState field in `state`.
pub fn host_write(state: u64, want: u64, c: &mut Counters) -> u64 {
    let allowed =
        matches!((state, want), (lstate::INIT, lstate::ARMED) | (lstate::ARMED, lstate::ACTIVE));
    if allowed {
        want
    } else {
        if want != state {
            c.dcc_link_state_write_ignored_count += 1;
        }
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hardware_and_host_transitions() {
        let mut c = Counters::default();
        let mut p = RESET_STATE;
        assert_eq!(p, lstate::DOWN);
        p = host_write(p, lstate::ARMED, &mut c);
        assert_eq!(p, lstate::DOWN, "no Armed without a link");
        p = on_link(p, LinkChange::Up);
        assert_eq!(p, lstate::INIT);
        p = host_write(p, lstate::INIT, &mut c);
        p = host_write(p, lstate::ACTIVE, &mut c);
        assert_eq!(p, lstate::INIT, "Active only from Armed");
        p = host_write(p, lstate::ARMED, &mut c);
        p = host_write(p, lstate::ACTIVE, &mut c);
        assert_eq!(p, lstate::ACTIVE);
        assert_eq!(on_link(p, LinkChange::None), lstate::ACTIVE);
        p = host_write(p, lstate::DOWN, &mut c);
        assert_eq!(p, lstate::ACTIVE, "the host cannot take the link down here");
        assert_eq!(c.dcc_link_state_write_ignored_count, 3);
        assert_eq!(on_link(p, LinkChange::Down), lstate::DOWN);
    }
}
