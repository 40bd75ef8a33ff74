//! The socket transport: the driver talks to `hfi-sim serve` (or any vfio-user server of the
//! HFI) through `vfio_user::Client`.
//!
//! - DMA memory is a memfd arena of the caller's size, mapped here and DMA_MAP'd to the server
//!   at IOVA 0 with its fd; `dma_alloc` bump-allocates in `[dma_base, dma_end)` and
//!   `dma_read`/`dma_write` use this process's own mapping ([`VfioUserTransport::memory`]
//!   gives it to callers that place process frames in the rest of the arena).
//! - MMIO is REGION_READ/REGION_WRITE on region 0 (BAR0).
//! - Interrupts: one eventfd set as the INTx trigger (SET_IRQS index 0); `wait_irq` waits on
//!   it with `ppoll(2)` and a real timeout, and reports vector 0 (INTx carries no vector).
//! - `now_ns` is monotonic wall time since the transport was created.
//!
//! Its unsafe code (memfd, eventfd) is, with `transport::linux_vfio` and `transport::eventfd`
//! (`ppoll`), all the driver has; each call has a SAFETY note.
#![allow(unsafe_code)]

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use vm_memory::{Bytes, FileOffset, GuestAddress, GuestMemoryMmap};

use super::{Result, Transport, TransportError};

/// BAR0 region index.
const BAR0: u32 = 0;
/// SET_IRQS flags: DATA_EVENTFD | ACTION_TRIGGER.
const IRQ_TRIGGER_EVENTFD: u32 = (1 << 2) | (1 << 5);

/// Shared DMA memory of the transport (the memfd arena, at address 0).
pub type ArenaMem = Arc<GuestMemoryMmap>;

/// A vfio-user client transport.
pub struct VfioUserTransport {
    client: vfio_user::Client,
    mem: ArenaMem,
    _memfd: File,
    irq: File,
    dma: super::bump::BumpAllocator,
    start: Instant,
    /// MMIO operations issued.
    pub mmio_ops: u64,
}

impl std::fmt::Debug for VfioUserTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VfioUserTransport")
            .field("dma", &self.dma)
            .field("mmio_ops", &self.mmio_ops)
            .finish_non_exhaustive()
    }
}

fn io(e: vfio_user::Error) -> TransportError {
    TransportError::Io(std::io::Error::other(e.to_string()))
}

fn last_os_error() -> TransportError {
    TransportError::Io(std::io::Error::last_os_error())
}

impl VfioUserTransport {
    /// Connects to the server at `socket`, creates an arena of `arena_bytes`, DMA-maps it at
    /// IOVA 0 and sets up the INTx eventfd. DMA allocations come from `[dma_base, dma_end)`.
    pub fn connect(socket: &Path, arena_bytes: u64, dma_base: u64, dma_end: u64) -> Result<Self> {
        if dma_base > dma_end || dma_end > arena_bytes {
            return Err(TransportError::DmaAllocFailed { len: dma_end.saturating_sub(dma_base) });
        }
        // SAFETY: memfd_create with a NUL-terminated literal name and valid flags; the returned
        // fd (checked below) is owned by nobody else.
        let fd = unsafe { libc::memfd_create(c"hfi-sim-arena".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(last_os_error());
        }
        // SAFETY: `fd` is a fresh, valid fd that we own exclusively.
        let memfd = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        memfd.set_len(arena_bytes)?;
        let region = FileOffset::new(memfd.try_clone()?, 0);
        let mem = GuestMemoryMmap::<()>::from_ranges_with_files([(
            GuestAddress(0),
            arena_bytes as usize,
            Some(region),
        )])
        .map_err(|e| TransportError::Io(std::io::Error::other(e.to_string())))?;

        let mut client = vfio_user::Client::new(socket).map_err(io)?;
        client.dma_map(0, 0, arena_bytes, memfd.as_raw_fd()).map_err(io)?;

        // SAFETY: eventfd with valid flags; the returned fd (checked below) is ours alone.
        let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if efd < 0 {
            return Err(last_os_error());
        }
        // SAFETY: `efd` is a fresh, valid fd that we own exclusively.
        let irq = File::from(unsafe { OwnedFd::from_raw_fd(efd) });
        client.set_irqs(0, IRQ_TRIGGER_EVENTFD, 0, 1, &[irq.as_raw_fd()]).map_err(io)?;

        #[allow(clippy::disallowed_methods)] // the socket transport's clock is wall time
        let start = Instant::now();
        Ok(Self {
            client,
            mem: Arc::new(mem),
            _memfd: memfd,
            irq,
            dma: super::bump::BumpAllocator::new(dma_base, dma_end),
            start,
            mmio_ops: 0,
        })
    }

    /// The arena as this process sees it (shared with the server).
    pub fn memory(&self) -> ArenaMem {
        self.mem.clone()
    }

    /// Closes the connection (the server resets the device).
    pub fn shutdown(&self) {
        let _ = self.client.shutdown();
    }

    fn read<const N: usize>(&mut self, offset: u64) -> Result<[u8; N]> {
        self.mmio_ops += 1;
        let mut b = [0u8; N];
        self.client
            .region_read(BAR0, offset, &mut b)
            .map_err(|_| TransportError::MmioFailed { offset })?;
        Ok(b)
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        self.mmio_ops += 1;
        self.client
            .region_write(BAR0, offset, data)
            .map_err(|_| TransportError::MmioFailed { offset })
    }
}

impl Transport for VfioUserTransport {
    fn read32(&mut self, offset: u64) -> Result<u32> {
        self.read::<4>(offset).map(u32::from_le_bytes)
    }
    fn read64(&mut self, offset: u64) -> Result<u64> {
        self.read::<8>(offset).map(u64::from_le_bytes)
    }
    fn write32(&mut self, offset: u64, value: u32) -> Result<()> {
        self.write(offset, &value.to_le_bytes())
    }
    fn write64(&mut self, offset: u64, value: u64) -> Result<()> {
        self.write(offset, &value.to_le_bytes())
    }
    fn dma_alloc(&mut self, len: u64, align: u64) -> Result<u64> {
        let start = self.dma.alloc(len, align)?;
        let zero = vec![0u8; len as usize];
        self.mem
            .write_slice(&zero, GuestAddress(start))
            .map_err(|_| TransportError::DmaAllocFailed { len })?;
        Ok(start)
    }
    fn dma_read(&mut self, iova: u64, buf: &mut [u8]) -> Result<()> {
        self.mem
            .read_slice(buf, GuestAddress(iova))
            .map_err(|_| TransportError::DmaOutOfRange { iova, len: buf.len() })
    }
    fn dma_write(&mut self, iova: u64, data: &[u8]) -> Result<()> {
        self.mem
            .write_slice(data, GuestAddress(iova))
            .map_err(|_| TransportError::DmaOutOfRange { iova, len: data.len() })
    }
    fn wait_irq(&mut self, timeout_ns: u64) -> Result<Vec<u16>> {
        super::eventfd::wait_intx(&mut self.irq, timeout_ns, || Ok(()))
    }
    fn reset(&mut self) -> Result<()> {
        self.client.reset().map_err(|_| TransportError::ResetFailed)
    }
    fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }
}
