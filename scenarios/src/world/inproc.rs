//! The in-process transport: the driver calls the device model directly, on the model's
//! virtual clock. DMA-coherent memory is carved from the low part of host memory; the rest
//! belongs to the simulated processes' frame pool.

use driver::transport::{Result, Transport, TransportError};
use vm_memory::{Bytes, GuestAddress};

use crate::world::host_costs::{HostLedger, SharedLedger};
use crate::world::World;

/// In-process transport over a [`World`].
#[derive(Debug)]
pub struct InProcTransport {
    /// The world (device, memory, remote peer).
    pub world: World,
    dma: driver::transport::bump::BumpAllocator,
    /// MMIO operations issued.
    pub mmio_ops: u64,
    /// Host time accounting shared with the simulated process.
    pub ledger: SharedLedger,
    /// Fault injection: this many of the next RcvArray programming stores (WRITE_ENABLE set,
    /// valid entry) are lost on the way to the device.
    pub lose_rcvarray_writes: u32,
    /// RcvArray stores lost so far.
    pub lost_rcvarray_writes: u64,
    /// Trace of RcvArray stores, when tracing.
    pub trace: Option<crate::world::trace::TraceLog>,
    /// Interrupt-driven receive: `wait_irq` sleeps until an interrupt or the timeout (otherwise
    /// it returns after the next device event, the polling driver's cadence).
    pub block_on_irq: bool,
}

impl InProcTransport {
    /// DMA allocations come from `[dma_base, dma_end)` of host memory.
    pub fn new(world: World, dma_base: u64, dma_end: u64, ledger: SharedLedger) -> Self {
        Self {
            world,
            dma: driver::transport::bump::BumpAllocator::new(dma_base, dma_end),
            mmio_ops: 0,
            ledger,
            lose_rcvarray_writes: 0,
            lost_rcvarray_writes: 0,
            trace: None,
            block_on_irq: false,
        }
    }

    /// Lets the device run for the host time accrued since the last access.
    pub fn settle(&mut self) {
        let ps = self.ledger.borrow_mut().take_pending_ps();
        if ps > 0 {
            self.world.run_for_ps(ps);
        }
    }

    fn charge_write(&mut self, offset: u64, value: u64) {
        use hfi_abi::bar0;
        let mut l = self.ledger.borrow_mut();
        if let Some((i, _)) = bar0::RCV_ARRAY.index(offset) {
            l.mmio_write(Some((i as u32, value)));
        } else if offset >= bar0::TXE_PIO_SEND {
            l.pio_store();
        } else {
            l.mmio_write(None);
        }
    }
}

/// A ledger with default costs (convenience for tests).
pub fn default_ledger() -> SharedLedger {
    HostLedger::shared(crate::world::host_costs::HostCosts::default())
}

impl Transport for InProcTransport {
    fn read32(&mut self, offset: u64) -> Result<u32> {
        self.settle();
        self.mmio_ops += 1;
        Ok(self.world.dev.read32(offset))
    }
    fn read64(&mut self, offset: u64) -> Result<u64> {
        self.settle();
        self.mmio_ops += 1;
        Ok(self.world.dev.read64(offset))
    }
    fn write32(&mut self, offset: u64, value: u32) -> Result<()> {
        self.settle();
        self.charge_write(offset, u64::from(value));
        self.mmio_ops += 1;
        self.world.dev.write32(offset, value);
        Ok(())
    }
    fn write64(&mut self, offset: u64, value: u64) -> Result<()> {
        self.settle();
        self.charge_write(offset, value);
        self.mmio_ops += 1;
        if let (Some(t), Some((i, _))) = (&self.trace, hfi_abi::bar0::RCV_ARRAY.index(offset)) {
            let e = hfi_abi::RcvArrayEntry(value);
            if e.write_enable() {
                let name = if e.is_valid() { "program TID" } else { "invalidate TID" };
                let args = serde_json::json!({ "entry": i, "dma": format!("{:#x}", e.dma_addr()), "size_code": e.buf_size().code() });
                t.instant("rcvarray", name.to_string(), self.world.now().0, 0, args);
            }
        }
        if self.lose_rcvarray_writes > 0
            && hfi_abi::bar0::RCV_ARRAY.index(offset).is_some()
            && hfi_abi::RcvArrayEntry(value).is_valid()
        {
            self.lose_rcvarray_writes -= 1;
            self.lost_rcvarray_writes += 1;
            return Ok(());
        }
        self.world.dev.write64(offset, value);
        Ok(())
    }
    fn dma_alloc(&mut self, len: u64, align: u64) -> Result<u64> {
        let start = self.dma.alloc(len, align)?;
        let zero = vec![0u8; len as usize];
        self.world
            .mem
            .write_slice(&zero, GuestAddress(start))
            .map_err(|_| TransportError::DmaAllocFailed { len })?;
        Ok(start)
    }
    fn dma_read(&mut self, iova: u64, buf: &mut [u8]) -> Result<()> {
        self.world
            .mem
            .read_slice(buf, GuestAddress(iova))
            .map_err(|_| TransportError::DmaOutOfRange { iova, len: buf.len() })
    }
    fn dma_write(&mut self, iova: u64, data: &[u8]) -> Result<()> {
        self.world
            .mem
            .write_slice(data, GuestAddress(iova))
            .map_err(|_| TransportError::DmaOutOfRange { iova, len: data.len() })
    }
    fn wait_irq(&mut self, timeout_ns: u64) -> Result<Vec<u16>> {
        self.settle();
        if self.block_on_irq {
            return Ok(self.world.wait_for_interrupt(timeout_ns));
        }
        Ok(self.world.advance(timeout_ns))
    }
    fn reset(&mut self) -> Result<()> {
        self.world.dev.reset();
        Ok(())
    }
    fn now_ns(&self) -> u64 {
        self.world.now().0 / 1000
    }
}
