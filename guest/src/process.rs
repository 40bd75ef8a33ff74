//! The guest process's memory: buffers it owns, and its pages as the TID code pins them.

use std::collections::BTreeMap;
use std::sync::Arc;

use driver::endpoint::demo::DemoProcess;
use driver::endpoint::{Delivery, Endpoint, EndpointHooks, EndpointProcess, Held};
use driver::transport::linux_vfio::VfioContainer;
use driver::transport::Transport;
use mmu::linux::{AnonBuffer, LinuxMemory};
use mmu::{Contiguity, PinDma};

pub use crate::error::BufferError;
use crate::error::GuestError;

/// The real memory backend over the device's VFIO container.
pub type Memory = LinuxMemory<Arc<VfioContainer>>;

/// Buffers and memory of the process.
#[derive(Debug)]
pub struct RealProcess {
    /// Pins, maps and notifiers.
    pub mem: Memory,
    buffers: BTreeMap<u64, AnonBuffer>,
    /// Highest `pinned_vm` seen (pages).
    pub pinned_peak: i64,
}

impl RealProcess {
    /// A process whose DMA maps go through `mem`.
    pub fn new(mem: Memory) -> Self {
        Self { mem, buffers: BTreeMap::new(), pinned_peak: 0 }
    }

    /// Allocates a buffer of `len` bytes, touched so its pages exist.
    pub fn alloc(&mut self, len: u64) -> Result<u64, BufferError> {
        let b = AnonBuffer::new(len)?;
        let zero = vec![0u8; b.len() as usize];
        b.write(0, &zero)?;
        let a = b.addr();
        self.buffers.insert(a, b);
        Ok(a)
    }

    /// Frees (munmaps) the buffer at `va`.
    pub fn free(&mut self, va: u64) -> Result<(), BufferError> {
        let b = self.buffers.remove(&va).ok_or(BufferError::Unknown(va))?;
        Ok(b.unmap()?)
    }

    /// `madvise(DONTNEED)` of the whole buffer at `va`.
    pub fn dontneed(&mut self, va: u64) -> Result<(), BufferError> {
        let b = self.buffers.get(&va).ok_or(BufferError::Unknown(va))?;
        Ok(b.dontneed(0, b.len())?)
    }

    fn find(&self, va: u64, len: usize) -> Option<(&AnonBuffer, u64)> {
        let (_, b) = self.buffers.range(..=va).next_back()?;
        let off = va - b.addr();
        (off + len as u64 <= b.len()).then_some((b, off))
    }

    /// Reads `len` bytes at `va`, if a live buffer holds them.
    pub fn read(&self, va: u64, len: usize) -> Option<Vec<u8>> {
        let (b, off) = self.find(va, len)?;
        let mut v = vec![0u8; len];
        b.read(off, &mut v).ok()?;
        Some(v)
    }

    /// Samples `pinned_vm` for the peak.
    pub fn sample(&mut self) {
        self.pinned_peak = self.pinned_peak.max(self.mem.pinned_vm());
    }
}

impl EndpointProcess for RealProcess {
    const DELIVERY: Delivery = Delivery::BeforeCalls;
    fn take_invalidations(&mut self, wait_ms: u64) -> Vec<mmu::Invalidation> {
        self.mem.take_invalidations(wait_ms)
    }
    fn held(&self) -> Held {
        Held {
            pins: self.mem.total_pins(),
            pinned_vm: self.mem.pinned_vm(),
            dma_maps: self.mem.live_maps() as u64,
        }
    }
    fn after_progress(&mut self) {
        self.sample();
    }
}

impl DemoProcess for RealProcess {
    type Error = GuestError;
    fn alloc(&mut self, len: u64, _layout: Contiguity) -> Result<u64, GuestError> {
        Ok(RealProcess::alloc(self, len)?)
    }
    fn holds(&self, va: u64, data: &[u8]) -> Result<bool, GuestError> {
        Ok(self.read(va, data.len()).as_deref() == Some(data))
    }
    fn free<T: Transport, H: EndpointHooks>(
        ep: &mut Endpoint<T, Self, H>,
        va: u64,
        _len: u64,
        notice_ms: u64,
    ) -> Result<usize, GuestError> {
        // The application frees the buffer; userfaultfd reports the unmap to the driver.
        RealProcess::free(&mut ep.proc, va)?;
        Ok(ep.deliver_reported(notice_ms))
    }
}

impl driver::recv::UserProcess for RealProcess {
    fn pin_dma(&mut self) -> &mut dyn PinDma {
        &mut self.mem
    }
    fn write_user(&mut self, va: u64, data: &[u8]) -> bool {
        self.find(va, data.len()).is_some_and(|(b, off)| b.write(off, data).is_ok())
    }
}

/// The TID script's memory in a real process: buffers it owns, frames from the pagemap.
#[derive(Debug)]
pub struct ScriptMem {
    pagemap: mmu::linux::Pagemap,
    buffers: BTreeMap<u64, AnonBuffer>,
}

impl ScriptMem {
    /// Opens the pagemap.
    pub fn new() -> std::io::Result<Self> {
        Ok(Self { pagemap: mmu::linux::Pagemap::open()?, buffers: BTreeMap::new() })
    }
}

impl guest_proto::tidscript::ScriptMemory for ScriptMem {
    fn alloc(&mut self, pages: u64) -> Result<u64, String> {
        let b = AnonBuffer::new(pages * 4096).map_err(|e| e.to_string())?;
        for p in 0..pages {
            b.write(p * 4096, &[1]).map_err(|e| e.to_string())?;
        }
        let a = b.addr();
        self.buffers.insert(a, b);
        Ok(a)
    }
    fn unmap(&mut self, va: u64) -> Result<(), String> {
        let b = self.buffers.remove(&va).ok_or("unknown buffer")?;
        b.unmap().map_err(|e| e.to_string())
    }
    fn frames(&self, va: u64, pages: u64) -> Vec<u64> {
        self.pagemap
            .frames(mmu::Va(va), pages as usize)
            .map(|f| f.into_iter().map(|p| p.map_or(0, |p| p.0)).collect())
            .unwrap_or_default()
    }
}

/// The upstream driver's fd and this process's memory, as one script target.
#[derive(Debug)]
pub struct KernelTarget {
    /// The fd.
    pub fd: crate::hfi1_cdev::Hfi1Cdev,
    /// The memory.
    pub mem: ScriptMem,
}

impl guest_proto::tidscript::ScriptFd for KernelTarget {
    fn ctxt_info(&mut self) -> Result<guest_proto::tidscript::ScriptCtxtInfo, i32> {
        self.fd.ctxt_info()
    }
    fn tid_update(&mut self, va: u64, len: u32) -> Result<(Vec<u32>, u32), i32> {
        self.fd.tid_update(va, len)
    }
    fn tid_free(&mut self, tids: &[u32]) -> Result<u32, i32> {
        self.fd.tid_free(tids)
    }
    fn tid_inval_read(&mut self) -> Result<Vec<u32>, i32> {
        self.fd.tid_inval_read()
    }
}

impl guest_proto::tidscript::ScriptMemory for KernelTarget {
    fn alloc(&mut self, pages: u64) -> Result<u64, String> {
        self.mem.alloc(pages)
    }
    fn unmap(&mut self, va: u64) -> Result<(), String> {
        self.mem.unmap(va)
    }
    fn frames(&self, va: u64, pages: u64) -> Vec<u64> {
        self.mem.frames(va, pages)
    }
}
