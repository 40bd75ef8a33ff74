//! The RcvArray as a [`RcvArrayWriter`] over the transport: one 64-bit MMIO store per entry
//! at `0x1200000 + index * 8`; WC flushes are counted (the timing model of the host side costs
//! them; over a real mapping the store order already makes them visible).

use hfi_abi::bar0;

use crate::put_tid::RcvArrayWriter;
use crate::transport::{Transport, TransportError};

/// Stores and flushes issued.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct WcStats {
    /// 64-bit stores to the RcvArray.
    pub stores: u64,
    /// WC flushes.
    pub flushes: u64,
    /// Stores that failed in the transport (the device is gone).
    pub failed: u64,
}

/// RcvArray writer over a transport.
#[derive(Debug)]
pub struct MmioRcvArray<'a, T: Transport> {
    t: &'a mut T,
    stats: &'a mut WcStats,
    /// First transport error seen, if any.
    pub error: Option<TransportError>,
}

impl<'a, T: Transport> MmioRcvArray<'a, T> {
    /// A writer over `t` accumulating into `stats`.
    pub fn new(t: &'a mut T, stats: &'a mut WcStats) -> Self {
        Self { t, stats, error: None }
    }
}

impl<T: Transport> RcvArrayWriter for MmioRcvArray<'_, T> {
    fn write_entry(&mut self, index: u32, raw: u64) {
        self.stats.stores += 1;
        if let Err(e) = self.t.write64(bar0::RCV_ARRAY.base + u64::from(index) * 8, raw) {
            self.stats.failed += 1;
            self.error.get_or_insert(e);
        }
    }
    fn flush_wc(&mut self) {
        self.stats.flushes += 1;
    }
}
