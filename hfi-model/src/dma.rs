//! Device → host DMA, only through vm-memory (`GuestAddressSpace` → `Bytes<GuestAddress>`).
//!
//! A write to an address no region covers is a counted device error (`dma_write_fails`), never a
//! panic. Every write is shown to the optional [`DmaObserver`] first, with what the device was
//! doing, so an oracle can judge it against the memory owner's view at that simulated instant.

use vm_memory::{Bytes, GuestAddress, GuestAddressSpace};

use crate::counters::Counters;
use crate::time::SimTime;

/// What a DMA write is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DmaKind {
    /// Expected-packet payload into a TID buffer.
    ExpectedPayload {
        /// Absolute RcvArray index used.
        rcv_entry: u32,
    },
    /// Eager payload into an eager buffer.
    EagerPayload {
        /// Eager index (relative to the context's eager base).
        egr_index: u32,
    },
    /// An RHQ entry (header copy + RHF).
    RhqEntry,
    /// The RHQ tail write-back (DMA_RTAIL).
    RhqTail,
    /// A transmit write-back: a credit return or an SDMA head (`DmaTag::ctxt` is the send
    /// context or the engine).
    Transmit(crate::transmit::TxDmaKind),
}

/// Identification of one DMA write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmaTag {
    /// Simulated time of the write.
    pub time: SimTime,
    /// Receive context.
    pub ctxt: u32,
    /// Packet id (as given by its sender).
    pub packet_id: u64,
    /// Purpose of the write.
    pub kind: DmaKind,
}

/// Sees every DMA write before it lands (oracle, trace).
pub trait DmaObserver {
    /// `len` bytes are about to be written at `addr`.
    fn dma_write(&mut self, tag: &DmaTag, addr: u64, len: usize);
}

/// Writes into host memory with error accounting.
#[derive(Debug, Clone)]
pub struct Dma<M> {
    mem: M,
}

impl<M: GuestAddressSpace> Dma<M> {
    /// DMA into `mem`.
    pub fn new(mem: M) -> Self {
        Self { mem }
    }

    /// The address space (tests and adapters).
    pub fn memory(&self) -> &M {
        &self.mem
    }

    /// Writes the concatenation of `parts` at `addr`. Returns false (and counts a failure) when
    /// any byte is not backed by memory; nothing is written past the first unbacked byte.
    pub fn write(
        &self,
        counters: &mut Counters,
        observer: Option<&mut (dyn DmaObserver + 'static)>,
        tag: &DmaTag,
        addr: u64,
        parts: &[&[u8]],
    ) -> bool {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len == 0 {
            return true;
        }
        if let Some(obs) = observer {
            obs.dma_write(tag, addr, len);
        }
        counters.dma_write_count += 1;
        let mem = self.mem.memory();
        let mut at = addr;
        for part in parts {
            if part.is_empty() {
                continue;
            }
            let ok = at.checked_add(part.len() as u64).is_some()
                && mem.write_slice(part, GuestAddress(at)).is_ok();
            if !ok {
                counters.dma_write_fails += 1;
                return false;
            }
            counters.dma_write_bytes += part.len() as u64;
            at += part.len() as u64;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use vm_memory::GuestMemoryMmap;

    struct Log(Vec<(u64, usize)>);
    impl DmaObserver for Log {
        fn dma_write(&mut self, _tag: &DmaTag, addr: u64, len: usize) {
            self.0.push((addr, len));
        }
    }

    fn tag() -> DmaTag {
        DmaTag { time: SimTime::ZERO, ctxt: 0, packet_id: 1, kind: DmaKind::RhqTail }
    }

    #[test]
    fn write_lands_and_unbacked_is_counted() {
        let mem = Arc::new(
            GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0x1000), 0x2000)]).unwrap(),
        );
        let dma = Dma::new(mem.clone());
        let mut c = Counters::default();
        let mut log = Log(vec![]);
        assert!(dma.write(&mut c, Some(&mut log), &tag(), 0x1ffe, &[&[1, 2], &[3, 4]]));
        let mut back = [0u8; 4];
        mem.read_slice(&mut back, GuestAddress(0x1ffe)).unwrap();
        assert_eq!(back, [1, 2, 3, 4]);
        // Past the end of the only region: a counted failure, not a panic.
        assert!(!dma.write(&mut c, Some(&mut log), &tag(), 0x2ffe, &[&[0; 8]]));
        assert!(!dma.write(&mut c, None, &tag(), u64::MAX - 1, &[&[0; 8]]));
        assert_eq!(c.dma_write_fails, 2);
        assert_eq!(c.dma_write_bytes, 4);
        assert_eq!(log.0, vec![(0x1ffe, 4), (0x2ffe, 8)]);
    }
}
