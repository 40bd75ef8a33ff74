//! userfaultfd as the invalidation source: non-cooperative events (`UNMAP`, `REMOVE`,
//! `REMAP`) on registered ranges, read by a monitor thread and handed to the driver through a
//! channel. Missing-page faults on registered ranges (after `madvise(DONTNEED)`) are resolved
//! with the zero page, as the kernel itself would for anonymous memory.

use std::fs::File;
use std::io::{self, Read};
use std::sync::mpsc;
use std::sync::Arc;

use super::sys;

/// `UFFD_EVENT_*` codes.
const EVENT_PAGEFAULT: u8 = 0x12;
const EVENT_REMAP: u8 = 0x14;
const EVENT_REMOVE: u8 = 0x15;
const EVENT_UNMAP: u8 = 0x16;
/// Size of `struct uffd_msg`.
pub const MSG_SIZE: usize = 32;

/// One event, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UffdEvent {
    /// A missing-page fault at `addr`.
    PageFault {
        /// Faulting address.
        addr: u64,
    },
    /// `munmap` of `[start, end)` (already unmapped when read).
    Unmap {
        /// Start.
        start: u64,
        /// End (exclusive).
        end: u64,
    },
    /// `madvise(DONTNEED/REMOVE)` of `[start, end)`.
    Remove {
        /// Start.
        start: u64,
        /// End (exclusive).
        end: u64,
    },
    /// `mremap` moved `len` bytes from `from` to `to`.
    Remap {
        /// Old address.
        from: u64,
        /// New address.
        to: u64,
        /// Length.
        len: u64,
    },
    /// An event this backend does not use (the raw code).
    Other(u8),
}

fn u64_at(m: &[u8; MSG_SIZE], off: usize) -> u64 {
    let mut b = [0u8; 8];
    if let Some(s) = m.get(off..off + 8) {
        b.copy_from_slice(s);
    }
    u64::from_le_bytes(b)
}

impl UffdEvent {
    /// Decodes a `struct uffd_msg` (event byte, 7 reserved bytes, 24 bytes of argument).
    pub fn decode(m: &[u8; MSG_SIZE]) -> UffdEvent {
        match m[0] {
            EVENT_PAGEFAULT => UffdEvent::PageFault { addr: u64_at(m, 16) },
            EVENT_UNMAP => UffdEvent::Unmap { start: u64_at(m, 8), end: u64_at(m, 16) },
            EVENT_REMOVE => UffdEvent::Remove { start: u64_at(m, 8), end: u64_at(m, 16) },
            EVENT_REMAP => {
                UffdEvent::Remap { from: u64_at(m, 8), to: u64_at(m, 16), len: u64_at(m, 24) }
            }
            e => UffdEvent::Other(e),
        }
    }
}

/// A userfaultfd with the non-cooperative events this backend needs.
#[derive(Debug)]
pub struct Userfaultfd {
    fd: File,
}

impl Userfaultfd {
    /// Opens one with `EVENT_UNMAP | EVENT_REMOVE | EVENT_REMAP`.
    pub fn new() -> io::Result<Self> {
        let f = sys::FEATURE_EVENT_UNMAP | sys::FEATURE_EVENT_REMOVE | sys::FEATURE_EVENT_REMAP;
        Ok(Self { fd: File::from(sys::userfaultfd(f)?) })
    }

    /// Registers `[start, start + len)` (page aligned, mapped).
    pub fn register(&self, start: u64, len: u64) -> io::Result<()> {
        sys::uffd_register(&self.fd, start, len)
    }

    /// Unregisters `[start, start + len)`.
    pub fn unregister(&self, start: u64, len: u64) -> io::Result<()> {
        sys::uffd_unregister(&self.fd, start, len)
    }

    /// Reads the next event (blocks).
    pub fn read_event(&self) -> io::Result<UffdEvent> {
        let mut m = [0u8; MSG_SIZE];
        (&self.fd).read_exact(&mut m)?;
        Ok(UffdEvent::decode(&m))
    }

    /// Resolves a missing-page fault at `addr` with the zero page.
    pub fn zeropage(&self, addr: u64) -> io::Result<()> {
        let page = addr & !(crate::types::PAGE_SIZE - 1);
        match sys::uffd_zeropage(&self.fd, page, crate::types::PAGE_SIZE) {
            // Another fault on the same page won the race: it is mapped now.
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            r => r,
        }
    }
}

/// The monitor: a thread that reads events, resolves faults, and forwards the rest.
#[derive(Debug)]
pub struct UffdMonitor {
    /// Events for the driver, in order.
    pub events: mpsc::Receiver<UffdEvent>,
    _thread: std::thread::JoinHandle<()>,
}

impl UffdMonitor {
    /// Starts the monitor thread on `uffd`. It runs until the process exits (a blocked read
    /// cannot be interrupted portably; the thread owns only a clone of the fd).
    pub fn spawn(uffd: Arc<Userfaultfd>) -> io::Result<Self> {
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new().name("uffd-monitor".into()).spawn(move || {
            while let Ok(ev) = uffd.read_event() {
                let forward = match ev {
                    UffdEvent::PageFault { addr } => uffd.zeropage(addr).is_err(),
                    _ => true,
                };
                if forward && tx.send(ev).is_err() {
                    break;
                }
            }
        })?;
        Ok(Self { events: rx, _thread: thread })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(ev: u8, a: u64, b: u64, c: u64) -> [u8; MSG_SIZE] {
        let mut m = [0u8; MSG_SIZE];
        m[0] = ev;
        m[8..16].copy_from_slice(&a.to_le_bytes());
        m[16..24].copy_from_slice(&b.to_le_bytes());
        m[24..32].copy_from_slice(&c.to_le_bytes());
        m
    }

    #[test]
    fn decode_messages() {
        assert_eq!(UffdEvent::decode(&msg(0x16, 1, 2, 0)), UffdEvent::Unmap { start: 1, end: 2 });
        assert_eq!(UffdEvent::decode(&msg(0x15, 3, 4, 0)), UffdEvent::Remove { start: 3, end: 4 });
        assert_eq!(
            UffdEvent::decode(&msg(0x14, 5, 6, 7)),
            UffdEvent::Remap { from: 5, to: 6, len: 7 }
        );
        assert_eq!(
            UffdEvent::decode(&msg(0x12, 0, 0x7000, 0)),
            UffdEvent::PageFault { addr: 0x7000 }
        );
        assert_eq!(UffdEvent::decode(&msg(0x13, 0, 0, 0)), UffdEvent::Other(0x13));
    }
}
