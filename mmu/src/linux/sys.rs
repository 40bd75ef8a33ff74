//! The crate's only unsafe code: `mlock`/`munlock` (attribute changes, never a dereference),
//! [`AnonBuffer`] (an owned anonymous mapping with bounds-checked copies; `munmap`, `madvise`
//! and `mremap` only on itself), `getrlimit`, and the `userfaultfd(2)` syscall and ioctls.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

fn check(ret: libc::c_int) -> io::Result<()> {
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `mlock(2)` of `[addr, addr + len)`.
pub fn mlock(addr: u64, len: u64) -> io::Result<()> {
    // SAFETY: mlock only changes the VMA flags and faults pages in; it never writes through
    // the pointer on our behalf and fails with ENOMEM on unmapped ranges.
    check(unsafe { libc::mlock(addr as *const libc::c_void, len as usize) })
}

/// `munlock(2)` of `[addr, addr + len)`.
pub fn munlock(addr: u64, len: u64) -> io::Result<()> {
    // SAFETY: as for mlock: attribute change only, checked by the kernel.
    check(unsafe { libc::munlock(addr as *const libc::c_void, len as usize) })
}

/// An anonymous private read/write mapping this process owns: user buffers and DMA-coherent
/// memory. Accesses are bounds-checked copies (never references, so device DMA changing the
/// bytes underneath is harmless); unmapping consumes the buffer.
#[derive(Debug)]
pub struct AnonBuffer {
    addr: u64,
    len: u64,
}

impl AnonBuffer {
    /// Maps `len` bytes (rounded up to pages) at an address of the kernel's choice.
    pub fn new(len: u64) -> io::Result<Self> {
        let len = len.max(1).next_multiple_of(4096);
        // SAFETY: a fresh anonymous mapping at an address of the kernel's choice: no existing
        // memory is affected.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Self { addr: p as u64, len })
    }

    /// Start address.
    pub fn addr(&self) -> u64 {
        self.addr
    }

    /// Length in bytes (whole pages).
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Never true (a mapping has at least one page).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn check(&self, off: u64, n: usize) -> io::Result<u64> {
        let end = off.checked_add(n as u64).filter(|&e| e <= self.len);
        end.map(|_| self.addr + off)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "outside the buffer"))
    }

    /// Copies `data` to offset `off`.
    pub fn write(&self, off: u64, data: &[u8]) -> io::Result<()> {
        let dst = self.check(off, data.len())?;
        // SAFETY: [dst, dst + len) lies inside this live mapping (checked above), which is
        // writable and cannot overlap the Rust slice `data`.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), dst as *mut u8, data.len()) };
        Ok(())
    }

    /// Copies from offset `off` into `buf`.
    pub fn read(&self, off: u64, buf: &mut [u8]) -> io::Result<()> {
        let src = self.check(off, buf.len())?;
        // SAFETY: [src, src + len) lies inside this live, readable mapping (checked above).
        // The device may write it concurrently: bytes are copied, never referenced.
        unsafe { std::ptr::copy_nonoverlapping(src as *const u8, buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }

    /// `madvise(MADV_DONTNEED)` of `[off, off + len)` (page aligned): the pages are dropped and
    /// read back as zeros.
    pub fn dontneed(&self, off: u64, len: u64) -> io::Result<()> {
        let a = self.check(off, len as usize)?;
        // SAFETY: inside this mapping (checked); DONTNEED drops contents, which no Rust
        // reference observes (all accesses are copies).
        check(unsafe { libc::madvise(a as *mut libc::c_void, len as usize, libc::MADV_DONTNEED) })
    }

    /// `munmap` of the whole buffer.
    pub fn unmap(self) -> io::Result<()> {
        let (addr, len) = (self.addr, self.len);
        std::mem::forget(self);
        // SAFETY: the mapping is ours and `self` is consumed, so nothing can access it again.
        check(unsafe { libc::munmap(addr as *mut libc::c_void, len as usize) })
    }

    /// `munmap` of the tail `[keep, len)` (page aligned); the buffer shrinks to `keep` bytes.
    pub fn unmap_tail(&mut self, keep: u64) -> io::Result<()> {
        if keep == 0 || keep >= self.len || keep % 4096 != 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "bad tail"));
        }
        // SAFETY: [addr + keep, addr + len) is ours; the buffer no longer covers it afterwards.
        check(unsafe {
            libc::munmap((self.addr + keep) as *mut libc::c_void, (self.len - keep) as usize)
        })?;
        self.len = keep;
        Ok(())
    }

    /// `mremap(MREMAP_MAYMOVE)` to `new_len` bytes (whole pages); the buffer may move.
    pub fn remap(&mut self, new_len: u64) -> io::Result<()> {
        let new_len = new_len.max(1).next_multiple_of(4096);
        // SAFETY: the old range is ours; on success the buffer describes the new range only.
        let p = unsafe {
            libc::mremap(
                self.addr as *mut libc::c_void,
                self.len as usize,
                new_len as usize,
                libc::MREMAP_MAYMOVE,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        self.addr = p as u64;
        self.len = new_len;
        Ok(())
    }
}

impl Drop for AnonBuffer {
    fn drop(&mut self) {
        // SAFETY: the mapping is ours and is being dropped: nothing can access it afterwards.
        unsafe { libc::munmap(self.addr as *mut libc::c_void, self.len as usize) };
    }
}

/// `getrlimit(RLIMIT_MEMLOCK)` soft limit in bytes; `None` = unlimited.
pub fn rlimit_memlock() -> Option<u64> {
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: valid resource id and a valid out-pointer for the call's duration.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut r) } == 0;
    (ok && r.rlim_cur != libc::RLIM_INFINITY).then_some(r.rlim_cur)
}

// userfaultfd ABI (include/uapi/linux/userfaultfd.h).
const UFFD_API: u64 = 0xAA;
const UFFDIO_API: libc::c_ulong = 0xC018_AA3F;
const UFFDIO_REGISTER: libc::c_ulong = 0xC020_AA00;
const UFFDIO_UNREGISTER: libc::c_ulong = 0x8010_AA01;
const UFFDIO_ZEROPAGE: libc::c_ulong = 0xC020_AA04;
const UFFDIO_REGISTER_MODE_MISSING: u64 = 1;
/// `UFFD_FEATURE_EVENT_REMAP`.
pub const FEATURE_EVENT_REMAP: u64 = 1 << 2;
/// `UFFD_FEATURE_EVENT_REMOVE`.
pub const FEATURE_EVENT_REMOVE: u64 = 1 << 3;
/// `UFFD_FEATURE_EVENT_UNMAP`.
pub const FEATURE_EVENT_UNMAP: u64 = 1 << 6;

#[repr(C)]
struct UffdioApi {
    api: u64,
    features: u64,
    ioctls: u64,
}

#[repr(C)]
struct UffdioRange {
    start: u64,
    len: u64,
}

#[repr(C)]
struct UffdioRegister {
    range: UffdioRange,
    mode: u64,
    ioctls: u64,
}

#[repr(C)]
struct UffdioZeropage {
    range: UffdioRange,
    mode: u64,
    zeropage: i64,
}

/// Opens a userfaultfd (blocking reads) and negotiates `features`.
pub fn userfaultfd(features: u64) -> io::Result<OwnedFd> {
    // SAFETY: the userfaultfd syscall takes one flags argument and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh fd returned to us alone.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) };
    let mut api = UffdioApi { api: UFFD_API, features, ioctls: 0 };
    // SAFETY: UFFDIO_API with a valid, live uffdio_api struct of the size the number encodes.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), UFFDIO_API, &mut api) })?;
    if api.features & features != features {
        return Err(io::Error::new(io::ErrorKind::Unsupported, "userfaultfd features missing"));
    }
    Ok(fd)
}

/// `UFFDIO_REGISTER` (missing-page mode) of `[start, start + len)`.
pub fn uffd_register(fd: &impl AsRawFd, start: u64, len: u64) -> io::Result<()> {
    let mut r = UffdioRegister {
        range: UffdioRange { start, len },
        mode: UFFDIO_REGISTER_MODE_MISSING,
        ioctls: 0,
    };
    // SAFETY: valid fd and a live struct of the encoded size; the kernel validates the range.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), UFFDIO_REGISTER, &mut r) })
}

/// `UFFDIO_UNREGISTER` of `[start, start + len)`.
pub fn uffd_unregister(fd: &impl AsRawFd, start: u64, len: u64) -> io::Result<()> {
    let r = UffdioRange { start, len };
    // SAFETY: valid fd and a live struct of the encoded size.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), UFFDIO_UNREGISTER, &r) })
}

/// `UFFDIO_ZEROPAGE` of one page at `addr` (resolves a missing-page fault).
pub fn uffd_zeropage(fd: &impl AsRawFd, addr: u64, len: u64) -> io::Result<()> {
    let mut z = UffdioZeropage { range: UffdioRange { start: addr, len }, mode: 0, zeropage: 0 };
    // SAFETY: valid fd and a live struct of the encoded size.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), UFFDIO_ZEROPAGE, &mut z) })
}
