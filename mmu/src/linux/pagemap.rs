//! `/proc/self/pagemap`: the frame behind each virtual page (needs CAP_SYS_ADMIN for real
//! frame numbers; without it the kernel reports frame 0, which [`Pagemap::frame`] refuses).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use crate::types::{Pfn, Va, PAGE_SHIFT};

/// Bit 63 of a pagemap entry: page present.
const PRESENT: u64 = 1 << 63;
/// Bits 0..=54: the frame number.
const PFN_MASK: u64 = (1 << 55) - 1;

/// An open pagemap.
#[derive(Debug)]
pub struct Pagemap {
    file: File,
}

impl Pagemap {
    /// Opens this process's pagemap.
    pub fn open() -> io::Result<Self> {
        Ok(Self { file: File::open("/proc/self/pagemap")? })
    }

    /// The frames of `n` pages from `va` (page aligned); `None` for pages that are not
    /// present or whose frame is hidden.
    pub fn frames(&self, va: Va, n: usize) -> io::Result<Vec<Option<Pfn>>> {
        let mut raw = vec![0u8; n * 8];
        let off = (va.0 >> PAGE_SHIFT) * 8;
        self.file.read_exact_at(&mut raw, off)?;
        Ok(raw
            .chunks_exact(8)
            .map(|c| {
                let mut b = [0u8; 8];
                b.copy_from_slice(c);
                decode(u64::from_le_bytes(b))
            })
            .collect())
    }
}

/// Decodes one pagemap entry.
pub fn decode(entry: u64) -> Option<Pfn> {
    let pfn = entry & PFN_MASK;
    (entry & PRESENT != 0 && pfn != 0).then_some(Pfn(pfn))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_entries() {
        assert_eq!(decode(0xa100_0000_0015_cebb), Some(Pfn(0x15cebb)));
        assert_eq!(decode(0x0100_0000_0015_cebb), None); // not present
        assert_eq!(decode(PRESENT), None); // frame hidden
    }

    #[test]
    fn own_pages_have_frames() {
        let b = super::super::sys::AnonBuffer::new(2 * 4096).unwrap();
        b.write(0, &[1]).unwrap();
        let pm = Pagemap::open().unwrap();
        let f = pm.frames(Va(b.addr()), 2).unwrap();
        // The written page is present (its frame is visible only with CAP_SYS_ADMIN); the
        // untouched one is not.
        assert_eq!(f[1], None);
        b.unmap().unwrap();
    }
}
