//! The SDMA descriptor ring as an engine walks it: fetching descriptors, gathering one packet
//! (FIRST … LAST) with the framing and generation checks, and reading its bytes.
//!
//! Sources (Debian linux-source-6.1 6.1.172): the descriptor layout `sdma.h` 56-102 (in
//! [`hfi_abi::sdma`]); the ring is `LEN_GEN.Length · 64` descriptors at SEND_DMA_BASE_ADDR
//! (`sdma.c` 1960-1964, 2022); hfi1 writes descriptors at its tail with generation
//! `(descq_tail / descq_cnt) & 3` (`sdma.c` add_gen 2239-2247, submit_tx 2265-2310), FIRST on a
//! packet's first descriptor and LAST on its last (`sdma.h` 522, 639-649). The first descriptor
//! holds the PBC and the headers (`user_sdma.c` 689: the 64-byte `hfi1_pkt_header`), the
//! packet's total length is PBC + headers + data rounded up to whole DWs by a pad descriptor
//! (`sdma.h` 651-681), at most 64 descriptors and 16383 bytes (`sdma.h` 19-22).
//!
//! Error mapping to SEND_DMA_ENG_ERR_STATUS (**choices** where the driver only names the bit;
//! every one is in hfi1's ALL_SDMA_ENG_HALT_ERRS, `sdma.c` 50-62, so hfi1 runs its halt
//! recovery on each): wrong generation → SDmaGenMismatchErr; a packet not starting with FIRST,
//! or FIRST inside a packet → SDmaFirstDescErr; more than 64 descriptors → SDmaPacketDescOverflowErr;
//! an AHG header mode other than none / copy → SDmaHeaderSelectErr (AHG updates are not
//! modelled); a first descriptor shorter than the 8-byte PBC → SDmaHeaderLengthErr; more than
//! 16383 bytes → SDmaTooLongErr; a total that is not whole DWs → SDmaWrongDwErr; a total that
//! differs from PBC.LengthDWs · 4 → SDmaLengthMismatchErr; a descriptor or buffer read of
//! unbacked memory → SDmaMemReadErr; a descriptor with byte count 0 → SDmaLengthMismatchErr
//! (hfi1 never posts one: `sdma.h` 508 refuses a 0-byte packet, the pad descriptor is 1-3
//! bytes, `sdma.c` 3157-3175, and every `sdma_txadd_*` piece is non-empty). Errors found on a
//! descriptor carry its ring index; the DW and total-length checks at LAST carry the first's.

use hfi_abi::sdma::{ahg, SdmaDesc, SDMA_DESC_BYTES, SDMA_MAX_DESC_PER_PACKET, SDMA_MAX_PKT_BYTES};
use hfi_abi::{txe, wire, Field};
use vm_memory::{Bytes, GuestAddress};

/// The ring as the engine sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ring {
    /// SEND_DMA_BASE_ADDR.
    pub base: u64,
    /// Descriptors in the ring (`LEN_GEN.Length · 64`).
    pub count: u64,
    /// LEN_GEN.Generation bit 2: descriptors' generations are checked.
    pub gen_check: bool,
}

/// A ring index and the generation the engine expects there.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingPos {
    /// Descriptor index.
    pub index: u64,
    /// Expected generation (2 bits).
    pub gen: u64,
}

impl RingPos {
    /// The next position: the generation steps when the index wraps to 0.
    pub fn next(self, count: u64) -> RingPos {
        let index = self.index + 1;
        if index >= count {
            RingPos { index: 0, gen: (self.gen + 1) & 3 }
        } else {
            RingPos { index, gen: self.gen }
        }
    }
}

/// An engine error found on the ring: the SEND_DMA_ENG_ERR_STATUS bit and the descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DescError {
    /// The SEND_DMA_ENG_ERR_STATUS bit.
    pub bit: Field,
    /// Ring index of the offending descriptor (the packet's first for packet-level errors).
    pub index: u64,
}

/// The descriptors of one packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PacketDescs {
    /// FIRST … LAST, in ring order.
    pub descs: Vec<SdmaDesc>,
    /// Where the packet starts.
    pub start: RingPos,
    /// The position after its LAST descriptor (the engine's head once it completes).
    pub next: RingPos,
    /// Descriptors in the ring it was gathered from.
    pub ring_count: u64,
}

impl PacketDescs {
    /// The ring size the packet's indices wrap at (at least 1).
    fn next_count(&self) -> u64 {
        self.ring_count.max(1)
    }
    /// Sum of the descriptors' byte counts.
    pub fn total_bytes(&self) -> u64 {
        self.descs.iter().map(|d| d.len()).sum()
    }
    /// Some descriptor asks for an SDMA interrupt.
    pub fn int_req(&self) -> bool {
        self.descs.iter().any(|d| d.int_req())
    }
    /// Some descriptor asks for the head to be written to host memory.
    pub fn head_to_host(&self) -> bool {
        self.descs.iter().any(|d| d.head_to_host())
    }
}

/// What walking from a position found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Gathered {
    /// A complete packet.
    Packet(PacketDescs),
    /// The tail was reached before a LAST descriptor: wait for more.
    Incomplete,
    /// A descriptor error (the engine halts).
    Error(DescError),
}

/// Reads descriptor `index` of `ring`; `None` when the memory is not backed.
pub fn fetch<M: Bytes<GuestAddress> + ?Sized>(
    mem: &M,
    ring: &Ring,
    index: u64,
) -> Option<SdmaDesc> {
    let addr = index.checked_mul(SDMA_DESC_BYTES).and_then(|o| ring.base.checked_add(o))?;
    addr.checked_add(SDMA_DESC_BYTES)?;
    let mut b = [0u8; 16];
    mem.read_slice(&mut b, GuestAddress(addr)).ok()?;
    Some(SdmaDesc::from_le_bytes(b))
}

/// Gathers the packet starting at `start`, reading no further than `tail` (exclusive).
pub fn gather<M: Bytes<GuestAddress> + ?Sized>(
    mem: &M,
    ring: &Ring,
    start: RingPos,
    tail: u64,
) -> Gathered {
    let err = |bit: Field, index: u64| Gathered::Error(DescError { bit, index });
    let mut descs = Vec::new();
    let mut pos = start;
    loop {
        if pos.index == tail {
            return Gathered::Incomplete;
        }
        let Some(d) = fetch(mem, ring, pos.index) else {
            return err(txe::SEND_DMA_ENG_ERR_STATUS_SDMA_MEM_READ_ERR, pos.index);
        };
        if ring.gen_check && d.generation() != pos.gen {
            return err(txe::SEND_DMA_ENG_ERR_STATUS_SDMA_GEN_MISMATCH_ERR, pos.index);
        }
        if d.first() != descs.is_empty() {
            return err(txe::SEND_DMA_ENG_ERR_STATUS_SDMA_FIRST_DESC_ERR, pos.index);
        }
        if descs.is_empty() && !matches!(d.header_mode(), ahg::NO_AHG | ahg::COPY) {
            return err(txe::SEND_DMA_ENG_ERR_STATUS_SDMA_HEADER_SELECT_ERR, pos.index);
        }
        descs.push(d);
        if descs.len() > SDMA_MAX_DESC_PER_PACKET {
            return err(txe::SEND_DMA_ENG_ERR_STATUS_SDMA_PACKET_DESC_OVERFLOW_ERR, start.index);
        }
        pos = pos.next(ring.count);
        if d.last() {
            return Gathered::Packet(PacketDescs {
                descs,
                start,
                next: pos,
                ring_count: ring.count,
            });
        }
    }
}

/// Reads a gathered packet's bytes and checks its framing: `(PBC, bytes after the PBC)`.
///
/// The PBC is read from the first descriptor's buffer before any payload, and every
/// descriptor is checked against it as the engine would walk them: a zero byte count, or a
/// running total past `PBC.LengthDWs · 4`, stops the packet at that descriptor.
pub fn read_packet<M: Bytes<GuestAddress> + ?Sized>(
    mem: &M,
    p: &PacketDescs,
) -> Result<(u64, Vec<u8>), DescError> {
    let err = |bit: Field, index: u64| DescError { bit, index };
    let Some(first) = p.descs.first() else {
        return Err(err(txe::SEND_DMA_ENG_ERR_STATUS_SDMA_FIRST_DESC_ERR, p.start.index));
    };
    if first.len() < wire::PBC_BYTES as u64 {
        return Err(err(txe::SEND_DMA_ENG_ERR_STATUS_SDMA_HEADER_LENGTH_ERR, p.start.index));
    }
    let mut pbc = [0u8; 8];
    if mem.read_slice(&mut pbc, GuestAddress(first.addr())).is_err() {
        return Err(err(txe::SEND_DMA_ENG_ERR_STATUS_SDMA_MEM_READ_ERR, p.start.index));
    }
    let pbc = u64::from_le_bytes(pbc);
    let want = wire::PBC_LENGTH_DWS.get(pbc) * 4;
    // Per-descriptor length checks, in ring order.
    let mut total = 0u64;
    let mut pos = p.start;
    let count = p.next_count();
    for d in &p.descs {
        if d.is_empty() {
            return Err(err(txe::SEND_DMA_ENG_ERR_STATUS_SDMA_LENGTH_MISMATCH_ERR, pos.index));
        }
        total += d.len();
        if total > SDMA_MAX_PKT_BYTES {
            return Err(err(txe::SEND_DMA_ENG_ERR_STATUS_SDMA_TOO_LONG_ERR, pos.index));
        }
        if total > want {
            return Err(err(txe::SEND_DMA_ENG_ERR_STATUS_SDMA_LENGTH_MISMATCH_ERR, pos.index));
        }
        pos = pos.next(count);
    }
    if total % 4 != 0 {
        return Err(err(txe::SEND_DMA_ENG_ERR_STATUS_SDMA_WRONG_DW_ERR, p.start.index));
    }
    if total != want {
        return Err(err(txe::SEND_DMA_ENG_ERR_STATUS_SDMA_LENGTH_MISMATCH_ERR, p.start.index));
    }
    let mut bytes = vec![0u8; total as usize];
    let mut at = 0usize;
    pos = p.start;
    for d in &p.descs {
        let len = d.len() as usize;
        let backed = d.addr().checked_add(d.len()).is_some()
            && bytes
                .get_mut(at..at + len)
                .is_some_and(|dst| mem.read_slice(dst, GuestAddress(d.addr())).is_ok());
        if !backed {
            return Err(err(txe::SEND_DMA_ENG_ERR_STATUS_SDMA_MEM_READ_ERR, pos.index));
        }
        at += len;
        pos = pos.next(count);
    }
    bytes.drain(..wire::PBC_BYTES);
    Ok((pbc, bytes))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use vm_memory::GuestMemoryMmap;

    pub(crate) const RING: u64 = 0x1_0000;
    pub(crate) const DATA: u64 = 0x2_0000;

    pub(crate) fn memory() -> GuestMemoryMmap<()> {
        GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x10_0000)]).unwrap()
    }

    fn ring(count: u64) -> Ring {
        Ring { base: RING, count, gen_check: true }
    }

    fn put(mem: &GuestMemoryMmap<()>, index: u64, d: SdmaDesc) {
        mem.write_slice(&d.to_le_bytes(), GuestAddress(RING + 16 * index)).unwrap();
    }

    /// A 64-byte header (PBC with the whole length) at DATA, `payload` bytes after it.
    fn header(mem: &GuestMemoryMmap<()>, payload: u64) -> u64 {
        let pbc = wire::PBC_LENGTH_DWS.encode((64 + payload) / 4);
        let mut h = [0x11u8; 64];
        h[..8].copy_from_slice(&pbc.to_le_bytes());
        mem.write_slice(&h, GuestAddress(DATA)).unwrap();
        pbc
    }

    /// hfi1 user SDMA: the 64-byte header descriptor, then a page descriptor
    /// (`user_sdma.c` 689, 1513; `sdma.h` 594-649).
    #[test]
    fn header_plus_page_descriptor() {
        let mem = memory();
        let pbc = header(&mem, 4096);
        put(&mem, 0, SdmaDesc::new(DATA, 64, true, false, 0));
        put(&mem, 1, SdmaDesc::new(DATA + 0x1000, 4096, false, true, 0));
        let Gathered::Packet(p) = gather(&mem, &ring(64), RingPos::default(), 2) else {
            panic!("no packet")
        };
        assert_eq!(p.next, RingPos { index: 2, gen: 0 });
        let (got_pbc, bytes) = read_packet(&mem, &p).unwrap();
        assert_eq!(got_pbc, pbc);
        assert_eq!(bytes.len(), 56 + 4096);
        assert_eq!(bytes[0], 0x11);
        // The tail before LAST: wait.
        assert_eq!(gather(&mem, &ring(64), RingPos::default(), 1), Gathered::Incomplete);
    }

    /// The generation steps when the index wraps (`sdma.c` add_gen 2239-2247).
    #[test]
    fn generation_across_the_wrap() {
        let mem = memory();
        header(&mem, 0);
        put(&mem, 63, SdmaDesc::new(DATA, 64, true, true, 0));
        put(&mem, 0, SdmaDesc::new(DATA, 64, true, true, 1));
        let r = ring(64);
        let start = RingPos { index: 63, gen: 0 };
        let Gathered::Packet(p) = gather(&mem, &r, start, 1) else { panic!() };
        assert_eq!(p.next, RingPos { index: 0, gen: 1 });
        let Gathered::Packet(q) = gather(&mem, &r, p.next, 1) else { panic!() };
        assert_eq!(q.next, RingPos { index: 1, gen: 1 });
        // A stale descriptor (generation 0 where 1 is expected) is a mismatch.
        put(&mem, 0, SdmaDesc::new(DATA, 64, true, true, 0));
        let e = gather(&mem, &r, p.next, 1);
        assert_eq!(
            e,
            Gathered::Error(DescError {
                bit: txe::SEND_DMA_ENG_ERR_STATUS_SDMA_GEN_MISMATCH_ERR,
                index: 0
            })
        );
        // Without the check (LEN_GEN.Generation bit 2 clear) it is accepted.
        let unchecked = Ring { gen_check: false, ..r };
        assert!(matches!(gather(&mem, &unchecked, p.next, 1), Gathered::Packet(_)));
    }

    /// Framing and length errors.
    #[test]
    fn framing_errors() {
        let mem = memory();
        let r = ring(64);
        let at0 = RingPos::default();
        let bit = |g: Gathered| match g {
            Gathered::Error(e) => e.bit,
            other => panic!("{other:?}"),
        };
        put(&mem, 0, SdmaDesc::new(DATA, 64, false, true, 0));
        assert_eq!(bit(gather(&mem, &r, at0, 1)), txe::SEND_DMA_ENG_ERR_STATUS_SDMA_FIRST_DESC_ERR);
        put(&mem, 0, SdmaDesc::new(DATA, 64, true, false, 0));
        put(&mem, 1, SdmaDesc::new(DATA, 64, true, true, 0));
        assert_eq!(bit(gather(&mem, &r, at0, 2)), txe::SEND_DMA_ENG_ERR_STATUS_SDMA_FIRST_DESC_ERR);
        // 65 descriptors without LAST in a 128-entry ring (`sdma.h` 19-20 MAX_DESC 64).
        let r128 = ring(128);
        for i in 1..=64 {
            put(&mem, i, SdmaDesc::new(DATA, 4, false, false, 0));
        }
        assert_eq!(
            bit(gather(&mem, &r128, at0, 100)),
            txe::SEND_DMA_ENG_ERR_STATUS_SDMA_PACKET_DESC_OVERFLOW_ERR
        );
        let ahg_update = SdmaDesc::new(DATA, 64, true, true, 0)
            .with_qw1(hfi_abi::sdma::DESC1_HEADER_MODE.encode(ahg::APPLY_UPDATE2));
        put(&mem, 0, ahg_update);
        assert_eq!(
            bit(gather(&mem, &r, at0, 1)),
            txe::SEND_DMA_ENG_ERR_STATUS_SDMA_HEADER_SELECT_ERR
        );
        // Descriptor fetch past memory.
        let far = Ring { base: 0xF_FFF8, ..r };
        assert_eq!(bit(gather(&mem, &far, at0, 1)), txe::SEND_DMA_ENG_ERR_STATUS_SDMA_MEM_READ_ERR);

        let pkt =
            |descs: Vec<SdmaDesc>| PacketDescs { descs, start: at0, next: at0, ring_count: 64 };
        let e = |r: Result<(u64, Vec<u8>), DescError>| r.unwrap_err().bit;
        header(&mem, 0);
        assert_eq!(
            e(read_packet(&mem, &pkt(vec![SdmaDesc::new(DATA, 4, true, true, 0)]))),
            txe::SEND_DMA_ENG_ERR_STATUS_SDMA_HEADER_LENGTH_ERR
        );
        assert_eq!(
            e(read_packet(&mem, &pkt(vec![SdmaDesc::new(DATA, 68, true, true, 0)]))),
            txe::SEND_DMA_ENG_ERR_STATUS_SDMA_LENGTH_MISMATCH_ERR,
            "68 bytes past a 64-byte PBC length"
        );
        // A zero byte count (hfi1 never posts one, `sdma.h` 508) and a running total past the
        // PBC length stop at that descriptor.
        let zero =
            vec![SdmaDesc::new(DATA, 64, true, false, 0), SdmaDesc::new(DATA, 0, false, true, 0)];
        let z = read_packet(&mem, &pkt(zero)).unwrap_err();
        assert_eq!((z.bit, z.index), (txe::SEND_DMA_ENG_ERR_STATUS_SDMA_LENGTH_MISMATCH_ERR, 1));
        let past = vec![
            SdmaDesc::new(DATA, 60, true, false, 0),
            SdmaDesc::new(DATA, 8, false, false, 0),
            SdmaDesc::new(0x20_0000, 4, false, true, 0),
        ];
        let q = read_packet(&mem, &pkt(past)).unwrap_err();
        assert_eq!(
            (q.bit, q.index),
            (txe::SEND_DMA_ENG_ERR_STATUS_SDMA_LENGTH_MISMATCH_ERR, 1),
            "found before the unbacked third buffer is read"
        );
        let pbc17 = wire::PBC_LENGTH_DWS.encode(17);
        mem.write_slice(&pbc17.to_le_bytes(), GuestAddress(DATA)).unwrap();
        assert_eq!(
            e(read_packet(&mem, &pkt(vec![SdmaDesc::new(DATA, 66, true, true, 0)]))),
            txe::SEND_DMA_ENG_ERR_STATUS_SDMA_WRONG_DW_ERR
        );
        header(&mem, 0);
        let long = vec![
            SdmaDesc::new(DATA, 64, true, false, 0),
            SdmaDesc::new(DATA, 16380, false, true, 0),
        ];
        assert_eq!(
            e(read_packet(&mem, &pkt(long))),
            txe::SEND_DMA_ENG_ERR_STATUS_SDMA_TOO_LONG_ERR
        );
        let pbc32 = wire::PBC_LENGTH_DWS.encode(32);
        mem.write_slice(&pbc32.to_le_bytes(), GuestAddress(DATA)).unwrap();
        let unbacked = vec![
            SdmaDesc::new(DATA, 64, true, false, 0),
            SdmaDesc::new(0x20_0000, 64, false, true, 0),
        ];
        assert_eq!(
            e(read_packet(&mem, &pkt(unbacked))),
            txe::SEND_DMA_ENG_ERR_STATUS_SDMA_MEM_READ_ERR
        );
        // The 1-3 byte pad descriptor of an odd length (sdma.h 672-679) is fine.
        let pbc = wire::PBC_LENGTH_DWS.encode(17);
        mem.write_slice(&pbc.to_le_bytes(), GuestAddress(DATA)).unwrap();
        let padded = vec![
            SdmaDesc::new(DATA, 64, true, false, 0),
            SdmaDesc::new(DATA + 64, 1, false, false, 0),
            SdmaDesc::new(DATA + 128, 3, false, true, 0),
        ];
        assert_eq!(read_packet(&mem, &pkt(padded)).unwrap().1.len(), 60);
    }
}
