//! The transport: the only way the driver touches the device. Three implementations share it:
//! in process (in `scenarios`, calling the model directly on virtual time), a vfio-user client
//! and Linux VFIO inside a guest (`linux_vfio`). Every method is required.

pub mod bump;
#[cfg(any(feature = "vfio-user", all(feature = "linux-vfio", target_os = "linux")))]
pub mod eventfd;
#[cfg(all(feature = "linux-vfio", target_os = "linux"))]
pub mod linux_vfio;
#[cfg(any(test, feature = "test-utils"))]
pub mod mock;
#[cfg(feature = "vfio-user")]
pub mod vfio_user;

/// Why a transport operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The device is gone (socket closed, device removed).
    #[error("Device disconnected")]
    Disconnected,
    /// An MMIO access failed.
    #[error("MMIO access at {offset:#x} failed")]
    MmioFailed {
        /// BAR0 offset.
        offset: u64,
    },
    /// DMA memory could not be allocated.
    #[error("DMA allocation of {len} bytes failed")]
    DmaAllocFailed {
        /// Requested length.
        len: u64,
    },
    /// A DMA memory access fell outside the allocated memory.
    #[error("DMA access at {iova:#x}+{len} outside allocated memory")]
    DmaOutOfRange {
        /// IOVA.
        iova: u64,
        /// Length.
        len: usize,
    },
    /// Waiting for an interrupt failed.
    #[error("Interrupt wait failed")]
    IrqWaitFailed,
    /// Reset failed.
    #[error("Device reset failed")]
    ResetFailed,
    /// An I/O error of the underlying channel.
    #[error("Transport I/O error")]
    Io(#[from] std::io::Error),
}

/// Result of transport operations.
pub type Result<T> = std::result::Result<T, TransportError>;

/// Device access for the driver: BAR0 MMIO, DMA-coherent memory, interrupts, reset, time.
pub trait Transport {
    /// 32-bit MMIO read of BAR0.
    fn read32(&mut self, offset: u64) -> Result<u32>;
    /// 64-bit MMIO read of BAR0.
    fn read64(&mut self, offset: u64) -> Result<u64>;
    /// 32-bit MMIO write of BAR0.
    fn write32(&mut self, offset: u64, value: u32) -> Result<()>;
    /// 64-bit MMIO write of BAR0.
    fn write64(&mut self, offset: u64, value: u64) -> Result<()>;
    /// Allocates `len` bytes of zeroed DMA-coherent memory aligned to `align` (a power of two);
    /// returns the device (IOVA) address.
    fn dma_alloc(&mut self, len: u64, align: u64) -> Result<u64>;
    /// Reads DMA memory (the CPU view of what the device wrote).
    fn dma_read(&mut self, iova: u64, buf: &mut [u8]) -> Result<()>;
    /// Writes DMA memory.
    fn dma_write(&mut self, iova: u64, data: &[u8]) -> Result<()>;
    /// Waits until an interrupt is signalled or `timeout_ns` passes (simulated time in process,
    /// real time otherwise); returns the vectors signalled (empty on timeout). In process this
    /// is also how time advances while the driver polls.
    fn wait_irq(&mut self, timeout_ns: u64) -> Result<Vec<u16>>;
    /// Resets the device (function-level reset).
    fn reset(&mut self) -> Result<()>;
    /// Current time in nanoseconds on the transport's clock (simulated in process).
    fn now_ns(&self) -> u64;
}

impl<T: Transport + ?Sized> Transport for &mut T {
    fn read32(&mut self, offset: u64) -> Result<u32> {
        (**self).read32(offset)
    }
    fn read64(&mut self, offset: u64) -> Result<u64> {
        (**self).read64(offset)
    }
    fn write32(&mut self, offset: u64, value: u32) -> Result<()> {
        (**self).write32(offset, value)
    }
    fn write64(&mut self, offset: u64, value: u64) -> Result<()> {
        (**self).write64(offset, value)
    }
    fn dma_alloc(&mut self, len: u64, align: u64) -> Result<u64> {
        (**self).dma_alloc(len, align)
    }
    fn dma_read(&mut self, iova: u64, buf: &mut [u8]) -> Result<()> {
        (**self).dma_read(iova, buf)
    }
    fn dma_write(&mut self, iova: u64, data: &[u8]) -> Result<()> {
        (**self).dma_write(iova, data)
    }
    fn wait_irq(&mut self, timeout_ns: u64) -> Result<Vec<u16>> {
        (**self).wait_irq(timeout_ns)
    }
    fn reset(&mut self) -> Result<()> {
        (**self).reset()
    }
    fn now_ns(&self) -> u64 {
        (**self).now_ns()
    }
}
