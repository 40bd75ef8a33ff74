//! Device bring-up and the hardware side of the driver: probe from the identity CSRs, receive
//! contexts (RHQ, eager buffers, the hfi1 enable sequence), the receive loop, the RcvArray over
//! MMIO and PIO send. Everything goes through [`Transport`].

pub mod context;
pub mod pio;
pub mod rcvarray_mmio;

use hfi_abi::{cce, rxe};
use rcvarray::ChipPartition;

use crate::transport::{Transport, TransportError};

pub use context::{CtxtConfig, RcvCtxt, RxEntry};
pub use pio::PioSender;
pub use rcvarray_mmio::{MmioRcvArray, WcStats};

/// Why bring-up or a receive operation failed.
#[derive(Debug, thiserror::Error)]
pub enum HwError {
    /// The transport failed.
    #[error("Transport failed")]
    Transport(#[from] TransportError),
    /// CCE_REVISION reads all-ones: no device behind the BAR.
    #[error("No device: CCE_REVISION reads all-ones")]
    NoDevice,
    /// The identity CSRs describe a chip this driver cannot drive.
    #[error("Unsupported chip: {0}")]
    Unsupported(&'static str),
    /// The context number is not available.
    #[error("Receive context {0} is out of range")]
    BadContext(u32),
    /// The context configuration is invalid.
    #[error("Invalid context configuration: {0}")]
    BadConfig(&'static str),
    /// The RcvArray partition could not be computed.
    #[error("RcvArray partition failed")]
    Partition(#[from] rcvarray::PartitionError),
}

/// What the identity CSRs say.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ChipInfo {
    /// CCE_REVISION.
    pub revision: u64,
    /// CCE_REVISION2.ImplCode (3 = functional simulator).
    pub impl_code: u64,
    /// RCV_CONTEXTS.
    pub num_contexts: u32,
    /// RCV_ARRAY_CNT.
    pub rcv_array_cnt: u32,
}

/// A probed HFI.
#[derive(Debug)]
pub struct Hfi<T: Transport> {
    t: T,
    /// Identity.
    pub chip: ChipInfo,
    /// RcvArray split among contexts.
    pub partition: ChipPartition,
}

impl<T: Transport> Hfi<T> {
    /// Probes the device: reads CCE_REVISION, CCE_REVISION2, RCV_CONTEXTS and RCV_ARRAY_CNT,
    /// initialises the receive buffer and the KDETH QP prefix, and partitions the RcvArray.
    pub fn probe(mut t: T) -> Result<Self, HwError> {
        let revision = t.read64(cce::CCE_REVISION)?;
        if revision == u64::MAX {
            return Err(HwError::NoDevice);
        }
        let impl_code = cce::CCE_REVISION2_IMPL_CODE.get(t.read64(cce::CCE_REVISION2)?);
        let num_contexts = t.read64(rxe::RCV_CONTEXTS)?;
        let rcv_array_cnt = t.read64(rxe::RCV_ARRAY_CNT)?;
        if num_contexts == 0 || num_contexts > rxe::RXE_NUM_CONTEXTS {
            return Err(HwError::Unsupported("RCV_CONTEXTS outside 1..=160"));
        }
        if rcv_array_cnt < 8 || rcv_array_cnt % 8 != 0 || rcv_array_cnt > 65536 {
            return Err(HwError::Unsupported("RCV_ARRAY_CNT not a multiple of 8 in 8..=65536"));
        }
        let chip = ChipInfo {
            revision,
            impl_code,
            num_contexts: num_contexts as u32,
            rcv_array_cnt: rcv_array_cnt as u32,
        };
        t.write64(rxe::RCV_BTH_QP, rxe::RCV_BTH_QP_KDETH_QP.encode(rxe::DEFAULT_KDETH_QP))?;
        t.write64(
            rxe::RCV_CTRL,
            rxe::RCV_CTRL_RX_RBUF_INIT.encode(1) | rxe::RCV_CTRL_RCV_PORT_ENABLE.encode(1),
        )?;
        if rxe::RCV_STATUS_RX_RBUF_INIT_DONE.get(t.read64(rxe::RCV_STATUS)?) == 0 {
            return Err(HwError::Unsupported("receive buffer init did not complete"));
        }
        let partition = ChipPartition::new(chip.rcv_array_cnt, chip.num_contexts)?;
        Ok(Self { t, chip, partition })
    }

    /// The transport.
    pub fn transport(&mut self) -> &mut T {
        &mut self.t
    }

    /// Consumes the HFI, returning the transport.
    pub fn into_transport(self) -> T {
        self.t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::mock::MockTransport;

    fn mock() -> MockTransport {
        let mut t = MockTransport::new(0);
        t.regs.insert(cce::CCE_REVISION2, cce::CCE_REVISION2_IMPL_CODE.encode(3));
        t.regs.insert(rxe::RCV_CONTEXTS, 16);
        t.regs.insert(rxe::RCV_ARRAY_CNT, 16384);
        t.regs.insert(rxe::RCV_STATUS, rxe::RCV_STATUS_RX_RBUF_INIT_DONE.encode(1));
        t
    }

    #[test]
    fn probe_reads_identity_and_partitions() {
        let h = Hfi::probe(mock()).unwrap();
        assert_eq!(h.chip.impl_code, 3);
        assert_eq!(h.chip.num_contexts, 16);
        assert_eq!(h.partition.context(1).map(|r| r.total_entries), Some(1024));
    }

    #[test]
    fn probe_fails_cleanly() {
        let mut t = mock();
        t.regs.insert(cce::CCE_REVISION, u64::MAX);
        assert!(matches!(Hfi::probe(t), Err(HwError::NoDevice)));
        let mut t = mock();
        t.regs.insert(rxe::RCV_ARRAY_CNT, 12);
        assert!(matches!(Hfi::probe(t), Err(HwError::Unsupported(_))));
        let mut t = mock();
        t.fail_mmio_after = Some(2);
        assert!(matches!(Hfi::probe(t), Err(HwError::Transport(_))));
    }
}
