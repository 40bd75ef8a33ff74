//! [`TidRig`]: the [`KernelSideOn`] of the driver's TID tests, over `mmu::FailingPinDma` (all
//! switches off) for error injection. Feature `test-utils`; never in a production build.

use mmu::{AddressSpace, FailingPinDma};

use super::standalone::{KernelSideOn, SimMemory};

/// A context on a recording RcvArray and one simulated process wrapped in [`FailingPinDma`].
pub type TidRig = KernelSideOn<FailingPinDma<AddressSpace>>;

impl SimMemory for FailingPinDma<AddressSpace> {
    fn from_space(space: AddressSpace) -> Self {
        FailingPinDma::new(space)
    }
    fn space(&self) -> &AddressSpace {
        self.inner()
    }
    fn space_mut(&mut self) -> &mut AddressSpace {
        self.inner_mut()
    }
}

#[cfg(test)]
mod tests {
    use mmu::{Contiguity, Trigger};

    use super::*;
    use crate::tid::TidConfig;
    use crate::uapi::{HfiFd, Policy};

    #[test]
    fn rig_round_trip() {
        let mut rig = TidRig::new(TidConfig::new(Policy::V2023), 64, 1, 256).unwrap();
        let va = rig.mmap(16, Contiguity::Contiguous);
        let u = rig.fd(0).tid_update(va.0, 16 * 4096).unwrap();
        assert_eq!((u.tidlist.len(), u.length), (1, 65536));
        rig.check().unwrap();
        assert_eq!(rig.fd(0).tid_free(&u.tidlist), Ok(1));
        rig.check().unwrap();
        assert!(format!("{rig:?}").contains("FailingPinDma"));
        assert!(format!("{:?}", rig.fd(0)).contains("FdBinding"));
        // The error switches reach the driver through the rig's memory.
        rig.mm.fail_pin = Trigger::NEXT;
        assert!(rig.update(0, va, 4096).is_err());
        assert_eq!(rig.mm.stats().pin_failures, 1);
    }
}
