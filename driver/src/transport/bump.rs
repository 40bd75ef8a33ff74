//! The DMA-coherent memory allocator shared by transports that carve driver memory out of a
//! fixed window (in process: low host memory; over a socket: the low part of the shared arena):
//! a bump allocator, never freed (the driver allocates its rings once per context).

use super::{Result, TransportError};

/// Bump allocation in `[next, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BumpAllocator {
    next: u64,
    end: u64,
}

impl BumpAllocator {
    /// Allocations come from `[base, end)`.
    pub fn new(base: u64, end: u64) -> Self {
        Self { next: base, end }
    }

    /// `len` bytes aligned to `align` (a power of two; 0 counts as 1).
    pub fn alloc(&mut self, len: u64, align: u64) -> Result<u64> {
        let start = self.next.checked_next_multiple_of(align.max(1));
        let end = start.and_then(|s| s.checked_add(len)).filter(|&e| e <= self.end);
        let (Some(start), Some(end)) = (start, end) else {
            return Err(TransportError::DmaAllocFailed { len });
        };
        self.next = end;
        Ok(start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_and_runs_out() {
        let mut b = BumpAllocator::new(0x1000, 0x3000);
        assert_eq!(b.alloc(10, 64).unwrap(), 0x1000);
        assert_eq!(b.alloc(0x100, 0x1000).unwrap(), 0x2000);
        assert!(b.alloc(0x1000, 1).is_err());
        assert!(BumpAllocator::new(u64::MAX - 1, u64::MAX).alloc(8, 4096).is_err());
    }
}
