//! The Linux VFIO transport: the driver in a (guest) user process drives the HFI through
//! `vfio-pci`, exactly as it drives the model in process or over the socket.
//!
//! - Container and group: `/dev/vfio/vfio` with the type1 v2 IOMMU, the device's group from
//!   sysfs; [`bind_vfio_pci`] moves the device to `vfio-pci` (`driver_override` +
//!   `drivers_probe`).
//! - MMIO: BAR0 mmap'ed from the device fd when the region allows it, so 8-byte loads and
//!   stores reach the device whole (as `readq`/`writeq` do for hfi1) and writes are posted;
//!   otherwise `pread`/`pwrite` at BAR0's region offset (the guest kernel's vfio-pci splits an
//!   8-byte `pwrite` into two 4-byte writes).
//! - Interrupts: INTx through an eventfd (`VFIO_DEVICE_SET_IRQS`); vfio-pci masks the line
//!   when it fires, so [`Transport::wait_irq`] unmasks it before waiting (the driver has acked
//!   the cause in between).
//! - DMA-coherent memory: anonymous memory mapped at IOVAs from a bump window
//!   (`VFIO_IOMMU_MAP_DMA`, which pins it); user buffers are mapped by the real memory backend
//!   ([`mmu::linux::LinuxMemory`]) through the same container ([`VfioContainer`] is its
//!   [`IommuMap`]).
//! - Reset: `VFIO_DEVICE_RESET`. `now_ns`: monotonic wall time.
//!
//! With `transport::vfio_user` and `transport::eventfd` (`ppoll`), the driver's only unsafe code:
//! here the VFIO ioctls, the BAR0 mapping and its volatile loads and stores, and the eventfd.
#![allow(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use mmu::linux::{AnonBuffer, IommuMap};
use mmu::Iova;

use super::bump::BumpAllocator;
use super::{Result, Transport, TransportError};

const VFIO_API_VERSION: libc::c_int = 0;
const VFIO_TYPE1V2_IOMMU: libc::c_ulong = 3;
// _IO(';', 100 + n)
const VFIO_GET_API_VERSION: libc::c_ulong = 0x3B64;
const VFIO_CHECK_EXTENSION: libc::c_ulong = 0x3B65;
const VFIO_SET_IOMMU: libc::c_ulong = 0x3B66;
const VFIO_GROUP_GET_STATUS: libc::c_ulong = 0x3B67;
const VFIO_GROUP_SET_CONTAINER: libc::c_ulong = 0x3B68;
const VFIO_GROUP_GET_DEVICE_FD: libc::c_ulong = 0x3B6A;
const VFIO_DEVICE_GET_REGION_INFO: libc::c_ulong = 0x3B6C;
const VFIO_DEVICE_SET_IRQS: libc::c_ulong = 0x3B6E;
const VFIO_DEVICE_RESET: libc::c_ulong = 0x3B6F;
const VFIO_IOMMU_MAP_DMA: libc::c_ulong = 0x3B71;
const VFIO_IOMMU_UNMAP_DMA: libc::c_ulong = 0x3B72;
const VFIO_GROUP_FLAGS_VIABLE: u32 = 1;
const VFIO_DMA_MAP_FLAG_READ_WRITE: u32 = 3;
const VFIO_IRQ_SET_DATA_NONE: u32 = 1;
const VFIO_IRQ_SET_DATA_EVENTFD: u32 = 1 << 2;
const VFIO_IRQ_SET_ACTION_UNMASK: u32 = 1 << 4;
const VFIO_IRQ_SET_ACTION_TRIGGER: u32 = 1 << 5;
const VFIO_PCI_INTX_IRQ_INDEX: u32 = 0;
const VFIO_PCI_BAR0_REGION_INDEX: u32 = 0;
const VFIO_REGION_INFO_FLAG_MMAP: u32 = 1 << 2;

/// BAR0 mapped into this process: MMIO by volatile loads and stores.
#[derive(Debug)]
struct MappedBar {
    addr: u64,
    len: u64,
}

impl MappedBar {
    fn map(device: &File, offset: u64, len: u64) -> io::Result<Self> {
        // SAFETY: a new shared mapping of the device fd's BAR0 region at an address of the
        // kernel's choice; no existing memory is affected.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                device.as_raw_fd(),
                offset as libc::off_t,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Self { addr: p as u64, len })
    }

    /// The address of an aligned `n`-byte register at `off`, if inside the BAR.
    fn at(&self, off: u64, n: u64) -> Option<u64> {
        (off % n == 0 && off.checked_add(n).is_some_and(|e| e <= self.len)).then(|| self.addr + off)
    }

    fn read32(&self, off: u64) -> Option<u32> {
        // SAFETY: `at` checked alignment and bounds inside the live BAR mapping.
        self.at(off, 4).map(|a| unsafe { std::ptr::read_volatile(a as *const u32) })
    }
    fn read64(&self, off: u64) -> Option<u64> {
        // SAFETY: as for read32, for an aligned 8-byte register.
        self.at(off, 8).map(|a| unsafe { std::ptr::read_volatile(a as *const u64) })
    }
    fn write32(&self, off: u64, v: u32) -> Option<()> {
        // SAFETY: as for read32; device memory, never a Rust object.
        self.at(off, 4).map(|a| unsafe { std::ptr::write_volatile(a as *mut u32, v) })
    }
    fn write64(&self, off: u64, v: u64) -> Option<()> {
        // SAFETY: as for read64; device memory, never a Rust object.
        self.at(off, 8).map(|a| unsafe { std::ptr::write_volatile(a as *mut u64, v) })
    }
}

impl Drop for MappedBar {
    fn drop(&mut self) {
        // SAFETY: our own mapping, no longer used after drop.
        unsafe { libc::munmap(self.addr as *mut libc::c_void, self.len as usize) };
    }
}

#[repr(C)]
struct GroupStatus {
    argsz: u32,
    flags: u32,
}

#[repr(C)]
struct RegionInfo {
    argsz: u32,
    flags: u32,
    index: u32,
    cap_offset: u32,
    size: u64,
    offset: u64,
}

#[repr(C)]
struct IrqSetEventfd {
    argsz: u32,
    flags: u32,
    index: u32,
    start: u32,
    count: u32,
    fd: i32,
}

#[repr(C)]
struct IrqSetNone {
    argsz: u32,
    flags: u32,
    index: u32,
    start: u32,
    count: u32,
}

#[repr(C)]
struct DmaMap {
    argsz: u32,
    flags: u32,
    vaddr: u64,
    iova: u64,
    size: u64,
}

#[repr(C)]
struct DmaUnmap {
    argsz: u32,
    flags: u32,
    iova: u64,
    size: u64,
}

fn ioctl_ret(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn err(msg: impl Into<String>) -> TransportError {
    TransportError::Io(io::Error::other(msg.into()))
}

/// The PCI functions in sysfs with vendor 0x8086 and one of `device_ids`, as `DDDD:BB:DD.F`.
pub fn find_devices(device_ids: &[u16]) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/sys/bus/pci/devices") else { return out };
    for e in rd.flatten() {
        let p = e.path();
        let id = |f: &str| {
            std::fs::read_to_string(p.join(f))
                .ok()
                .and_then(|s| u16::from_str_radix(s.trim().trim_start_matches("0x"), 16).ok())
        };
        if id("vendor") == Some(0x8086) && id("device").is_some_and(|d| device_ids.contains(&d)) {
            out.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    out.sort();
    out
}

/// Binds PCI function `bdf` to `vfio-pci` (unbinding any other driver) and returns its IOMMU
/// group number.
pub fn bind_vfio_pci(bdf: &str) -> io::Result<u32> {
    let dev = PathBuf::from("/sys/bus/pci/devices").join(bdf);
    let current = std::fs::read_link(dev.join("driver")).ok();
    let bound_to_vfio = current
        .as_ref()
        .and_then(|p| p.file_name())
        .is_some_and(|n| n.to_string_lossy() == "vfio-pci");
    if !bound_to_vfio {
        std::fs::write(dev.join("driver_override"), "vfio-pci")?;
        if current.is_some() {
            std::fs::write(dev.join("driver/unbind"), bdf)?;
        }
        std::fs::write("/sys/bus/pci/drivers_probe", bdf)?;
    }
    let group = std::fs::read_link(dev.join("iommu_group"))?;
    group
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| io::Error::other(format!("{bdf}: no IOMMU group")))
}

/// A VFIO container with one group, using the type1 v2 IOMMU.
#[derive(Debug)]
pub struct VfioContainer {
    container: File,
    group: File,
}

impl VfioContainer {
    /// Opens `/dev/vfio/vfio` and `/dev/vfio/<group>`, checks the API and the group's
    /// viability, and sets the type1 v2 IOMMU.
    pub fn open(group: u32) -> Result<Self> {
        let rw = |p: &Path| OpenOptions::new().read(true).write(true).open(p);
        let container = rw(Path::new("/dev/vfio/vfio"))?;
        // SAFETY: VFIO_GET_API_VERSION takes no argument.
        let v = ioctl_ret(unsafe { libc::ioctl(container.as_raw_fd(), VFIO_GET_API_VERSION) })?;
        if v != VFIO_API_VERSION {
            return Err(err(format!("VFIO API version {v}, expected {VFIO_API_VERSION}")));
        }
        // SAFETY: VFIO_CHECK_EXTENSION takes an integer argument.
        let ext =
            unsafe { libc::ioctl(container.as_raw_fd(), VFIO_CHECK_EXTENSION, VFIO_TYPE1V2_IOMMU) };
        if ext <= 0 {
            return Err(err("the VFIO container has no type1 v2 IOMMU"));
        }
        let group = rw(&PathBuf::from(format!("/dev/vfio/{group}")))?;
        let mut st = GroupStatus { argsz: std::mem::size_of::<GroupStatus>() as u32, flags: 0 };
        // SAFETY: a live vfio_group_status of the size given in argsz.
        ioctl_ret(unsafe { libc::ioctl(group.as_raw_fd(), VFIO_GROUP_GET_STATUS, &mut st) })?;
        if st.flags & VFIO_GROUP_FLAGS_VIABLE == 0 {
            return Err(err("VFIO group not viable (other devices of the group not bound)"));
        }
        let cfd: libc::c_int = container.as_raw_fd();
        // SAFETY: VFIO_GROUP_SET_CONTAINER takes a pointer to the container fd, live here.
        ioctl_ret(unsafe { libc::ioctl(group.as_raw_fd(), VFIO_GROUP_SET_CONTAINER, &cfd) })?;
        // SAFETY: VFIO_SET_IOMMU takes the IOMMU type as an integer.
        ioctl_ret(unsafe {
            libc::ioctl(container.as_raw_fd(), VFIO_SET_IOMMU, VFIO_TYPE1V2_IOMMU)
        })?;
        Ok(Self { container, group })
    }

    /// The device fd of `bdf` in this group.
    pub fn device(&self, bdf: &str) -> Result<File> {
        let name = std::ffi::CString::new(bdf).map_err(|_| err("bad device name"))?;
        // SAFETY: a NUL-terminated name, live for the call; the result is a new fd or -1.
        let fd = ioctl_ret(unsafe {
            libc::ioctl(self.group.as_raw_fd(), VFIO_GROUP_GET_DEVICE_FD, name.as_ptr())
        })?;
        // SAFETY: `fd` is a fresh fd returned to us alone.
        Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
    }
}

impl IommuMap for VfioContainer {
    fn map(&self, va: u64, len: u64, iova: Iova) -> io::Result<()> {
        let m = DmaMap {
            argsz: std::mem::size_of::<DmaMap>() as u32,
            flags: VFIO_DMA_MAP_FLAG_READ_WRITE,
            vaddr: va,
            iova: iova.0,
            size: len,
        };
        // SAFETY: a live vfio_iommu_type1_dma_map; the kernel pins and validates the range.
        ioctl_ret(unsafe { libc::ioctl(self.container.as_raw_fd(), VFIO_IOMMU_MAP_DMA, &m) })
            .map(drop)
    }
    fn unmap(&self, iova: Iova, len: u64) -> io::Result<()> {
        let mut u = DmaUnmap {
            argsz: std::mem::size_of::<DmaUnmap>() as u32,
            flags: 0,
            iova: iova.0,
            size: len,
        };
        // SAFETY: a live vfio_iommu_type1_dma_unmap of the size given in argsz.
        ioctl_ret(unsafe { libc::ioctl(self.container.as_raw_fd(), VFIO_IOMMU_UNMAP_DMA, &mut u) })
            .map(drop)
    }
}

/// One DMA-coherent allocation: its memory and where the device sees it.
#[derive(Debug)]
struct Coherent {
    iova: u64,
    buf: AnonBuffer,
}

/// The driver's transport in a Linux process over `vfio-pci`.
pub struct LinuxVfioTransport {
    container: Arc<VfioContainer>,
    device: File,
    bar0: u64,
    bar0_size: u64,
    mapped: Option<MappedBar>,
    irq: File,
    coherent: Vec<Coherent>,
    dma: BumpAllocator,
    start: Instant,
    /// MMIO reads issued.
    pub mmio_reads: u64,
    /// MMIO writes issued.
    pub mmio_writes: u64,
}

impl std::fmt::Debug for LinuxVfioTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinuxVfioTransport")
            .field("bar0", &self.bar0)
            .field("dma", &self.dma)
            .field("mmio_reads", &self.mmio_reads)
            .field("mmio_writes", &self.mmio_writes)
            .finish_non_exhaustive()
    }
}

impl LinuxVfioTransport {
    /// Binds `bdf` to vfio-pci, opens its group and device, reads BAR0's region, and sets up
    /// INTx. Coherent DMA memory gets IOVAs in `[dma_base, dma_end)`.
    pub fn open(bdf: &str, dma_base: u64, dma_end: u64) -> Result<Self> {
        let group = bind_vfio_pci(bdf)?;
        let container = Arc::new(VfioContainer::open(group)?);
        let device = container.device(bdf)?;
        let mut ri = RegionInfo {
            argsz: std::mem::size_of::<RegionInfo>() as u32,
            flags: 0,
            index: VFIO_PCI_BAR0_REGION_INDEX,
            cap_offset: 0,
            size: 0,
            offset: 0,
        };
        // SAFETY: a live vfio_region_info of the size given in argsz.
        ioctl_ret(unsafe {
            libc::ioctl(device.as_raw_fd(), VFIO_DEVICE_GET_REGION_INFO, &mut ri)
        })?;
        if ri.size == 0 {
            return Err(err("BAR0 has size 0"));
        }
        let mapped = if ri.flags & VFIO_REGION_INFO_FLAG_MMAP != 0 {
            MappedBar::map(&device, ri.offset, ri.size).ok()
        } else {
            None
        };
        // SAFETY: eventfd with valid flags; the result is a new fd or -1 (checked).
        let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        let efd = ioctl_ret(efd)?;
        // SAFETY: `efd` is a fresh fd returned to us alone.
        let irq = File::from(unsafe { OwnedFd::from_raw_fd(efd) });
        let set = IrqSetEventfd {
            argsz: std::mem::size_of::<IrqSetEventfd>() as u32,
            flags: VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
            index: VFIO_PCI_INTX_IRQ_INDEX,
            start: 0,
            count: 1,
            fd: irq.as_raw_fd(),
        };
        // SAFETY: a live vfio_irq_set with one eventfd, argsz covering it.
        ioctl_ret(unsafe { libc::ioctl(device.as_raw_fd(), VFIO_DEVICE_SET_IRQS, &set) })?;
        #[allow(clippy::disallowed_methods)] // a real device's transport runs on wall time
        let start = Instant::now();
        Ok(Self {
            container,
            device,
            bar0: ri.offset,
            bar0_size: ri.size,
            mapped,
            irq,
            coherent: Vec::new(),
            dma: BumpAllocator::new(dma_base, dma_end),
            start,
            mmio_reads: 0,
            mmio_writes: 0,
        })
    }

    /// True when BAR0 is mmap'ed (MMIO by loads and stores, not syscalls).
    pub fn bar_mapped(&self) -> bool {
        self.mapped.is_some()
    }

    /// The container, for the memory backend's user-buffer maps.
    pub fn container(&self) -> Arc<VfioContainer> {
        self.container.clone()
    }

    fn mmio_at(&self, offset: u64, n: u64) -> Result<u64> {
        if offset.checked_add(n).is_none_or(|e| e > self.bar0_size) {
            return Err(TransportError::MmioFailed { offset });
        }
        Ok(self.bar0 + offset)
    }

    fn read<const N: usize>(&mut self, offset: u64) -> Result<[u8; N]> {
        self.mmio_reads += 1;
        let at = self.mmio_at(offset, N as u64)?;
        let mut b = [0u8; N];
        self.device.read_exact_at(&mut b, at).map_err(|_| TransportError::MmioFailed { offset })?;
        Ok(b)
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        self.mmio_writes += 1;
        let at = self.mmio_at(offset, data.len() as u64)?;
        self.device.write_all_at(data, at).map_err(|_| TransportError::MmioFailed { offset })
    }

    fn find(&self, iova: u64, len: usize) -> Result<(&AnonBuffer, u64)> {
        self.coherent
            .iter()
            .find(|c| iova >= c.iova && iova + len as u64 <= c.iova + c.buf.len())
            .map(|c| (&c.buf, iova - c.iova))
            .ok_or(TransportError::DmaOutOfRange { iova, len })
    }
}

/// Unmasks INTx (vfio-pci masks the level-triggered line each time it fires).
fn unmask_intx(device: &File) -> Result<()> {
    let set = IrqSetNone {
        argsz: std::mem::size_of::<IrqSetNone>() as u32,
        flags: VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK,
        index: VFIO_PCI_INTX_IRQ_INDEX,
        start: 0,
        count: 1,
    };
    // SAFETY: a live vfio_irq_set without data, argsz covering it.
    ioctl_ret(unsafe { libc::ioctl(device.as_raw_fd(), VFIO_DEVICE_SET_IRQS, &set) })
        .map(drop)
        .map_err(|_| TransportError::IrqWaitFailed)
}

impl Drop for LinuxVfioTransport {
    fn drop(&mut self) {
        for c in &self.coherent {
            let _ = self.container.unmap(Iova(c.iova), c.buf.len());
        }
    }
}

impl Transport for LinuxVfioTransport {
    fn read32(&mut self, offset: u64) -> Result<u32> {
        if let Some(m) = &self.mapped {
            self.mmio_reads += 1;
            return m.read32(offset).ok_or(TransportError::MmioFailed { offset });
        }
        self.read::<4>(offset).map(u32::from_le_bytes)
    }
    fn read64(&mut self, offset: u64) -> Result<u64> {
        if let Some(m) = &self.mapped {
            self.mmio_reads += 1;
            return m.read64(offset).ok_or(TransportError::MmioFailed { offset });
        }
        self.read::<8>(offset).map(u64::from_le_bytes)
    }
    fn write32(&mut self, offset: u64, value: u32) -> Result<()> {
        if let Some(m) = &self.mapped {
            self.mmio_writes += 1;
            return m.write32(offset, value).ok_or(TransportError::MmioFailed { offset });
        }
        self.write(offset, &value.to_le_bytes())
    }
    fn write64(&mut self, offset: u64, value: u64) -> Result<()> {
        if let Some(m) = &self.mapped {
            self.mmio_writes += 1;
            return m.write64(offset, value).ok_or(TransportError::MmioFailed { offset });
        }
        self.write(offset, &value.to_le_bytes())
    }
    fn dma_alloc(&mut self, len: u64, align: u64) -> Result<u64> {
        let len = len.max(1).next_multiple_of(4096);
        let iova = self.dma.alloc(len, align.max(4096))?;
        let buf = AnonBuffer::new(len).map_err(|_| TransportError::DmaAllocFailed { len })?;
        self.container
            .map(buf.addr(), buf.len(), Iova(iova))
            .map_err(|_| TransportError::DmaAllocFailed { len })?;
        self.coherent.push(Coherent { iova, buf });
        Ok(iova)
    }
    fn dma_read(&mut self, iova: u64, buf: &mut [u8]) -> Result<()> {
        let (b, off) = self.find(iova, buf.len())?;
        b.read(off, buf).map_err(|_| TransportError::DmaOutOfRange { iova, len: buf.len() })
    }
    fn dma_write(&mut self, iova: u64, data: &[u8]) -> Result<()> {
        let (b, off) = self.find(iova, data.len())?;
        b.write(off, data).map_err(|_| TransportError::DmaOutOfRange { iova, len: data.len() })
    }
    fn wait_irq(&mut self, timeout_ns: u64) -> Result<Vec<u16>> {
        // vfio-pci masked INTx when it last fired; the driver has acked the cause since.
        let Self { irq, device, .. } = self;
        super::eventfd::wait_intx(irq, timeout_ns, || unmask_intx(device))
    }
    fn reset(&mut self) -> Result<()> {
        // SAFETY: VFIO_DEVICE_RESET takes no argument.
        ioctl_ret(unsafe { libc::ioctl(self.device.as_raw_fd(), VFIO_DEVICE_RESET) })
            .map(drop)
            .map_err(|_| TransportError::ResetFailed)
    }
    fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }
}
