//! PIO send (PIO sheet §2.2): the PBC as one 64-bit store at the start-of-packet alias, the rest
//! of the first 64-byte block through the alias too, later blocks at their normal addresses,
//! zero padding to the block end, the 64 KiB window used as a ring.

use hfi_abi::{bar0, wire};

use crate::transport::{Result, Transport};

/// Ring size of one send context's window.
const WINDOW: u64 = 0x1_0000;

/// A PIO send context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PioSender {
    /// Hardware send context (window index).
    pub send_ctxt: u32,
    fill: u64,
    /// Packets sent.
    pub packets: u64,
}

impl PioSender {
    /// A sender on window `send_ctxt` (< 256).
    pub fn new(send_ctxt: u32) -> Self {
        Self { send_ctxt, fill: 0, packets: 0 }
    }

    /// Writes one packet (`bytes` = LRH .. payload, a multiple of 4 bytes) with a PBC on VL 0.
    pub fn send<T: Transport>(&mut self, t: &mut T, bytes: &[u8]) -> Result<()> {
        let len_dws = (8 + bytes.len()).div_ceil(4) as u64;
        let pbc = wire::PBC_LENGTH_DWS.encode(len_dws);
        let mut buf = Vec::with_capacity((8 + bytes.len()).div_ceil(64) * 64);
        buf.extend_from_slice(&pbc.to_le_bytes());
        buf.extend_from_slice(bytes);
        buf.resize(buf.len().div_ceil(64) * 64, 0);
        let base = bar0::TXE_PIO_SEND + u64::from(self.send_ctxt % 256) * WINDOW;
        for (i, q) in buf.chunks_exact(8).enumerate() {
            let off = (self.fill + i as u64 * 8) % WINDOW;
            let sop = if i < 8 { bar0::PIO_SOP_DISTANCE } else { 0 };
            let mut w = [0u8; 8];
            w.copy_from_slice(q);
            t.write64(base + sop + off, u64::from_le_bytes(w))?;
        }
        self.fill = (self.fill + buf.len() as u64) % WINDOW;
        self.packets += 1;
        Ok(())
    }
}
