//! hfi-sim's PSM-like protocol on top of KDETH: the 28-byte header after KDETH and the payload
//! of a rendezvous grant (CTS). Modelled on PSM2's LONG_RTS / LONG_CTS / EXPTID exchange (facts
//! PIO sheet §3) but not bit-compatible with PSM's header union (see `DESIGN.md`).
//!
//! Header (little-endian, byte offsets from the start of the packet, after LRH+BTH+KDETH):
//! flags/connidx u32 @28, message id u32 @32, byte offset of this packet's payload in the
//! message (or, in a CTS, of the window) u32 @36, message length (CTS: window length) u32 @40,
//! tag 12 bytes @44.

/// Byte offset of flags/connidx.
pub const HDR_FLAGS_CONNIDX: usize = 28;
/// Byte offset of the message id.
pub const HDR_MSG_ID: usize = 32;
/// Byte offset of the payload's (or window's) offset in the message.
pub const HDR_MSG_OFFSET: usize = 36;
/// Byte offset of the message (or window) length.
pub const HDR_MSG_LEN: usize = 40;
/// Byte offset of the 12-byte tag.
pub const HDR_TAG: usize = 44;

/// Fixed part of a CTS payload: tid offset u32, flow u32, generation u32, first sequence u32,
/// tid count u32 (20 bytes), then `tid count` u32 tidinfo words.
pub const CTS_FIXED_BYTES: usize = 20;
/// Most tidinfo words one CTS may carry (PSM_TIDLIST_BUFSIZE / 4).
pub const CTS_MAX_TIDS: usize = 1024;

/// A rendezvous grant: where the sender must put one window of the message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cts {
    /// Byte offset of the window's first byte into the first TID.
    pub tid_offset: u32,
    /// TID flow index.
    pub flow: u32,
    /// TID flow generation.
    pub gen: u32,
    /// First TID flow sequence number.
    pub seq: u32,
    /// The TIDs covering the window, in order.
    pub tids: Vec<crate::TidInfo>,
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

impl Cts {
    /// Payload bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(CTS_FIXED_BYTES + 4 * self.tids.len());
        for w in [self.tid_offset, self.flow, self.gen, self.seq, self.tids.len() as u32] {
            v.extend_from_slice(&w.to_le_bytes());
        }
        for t in &self.tids {
            v.extend_from_slice(&t.raw().to_le_bytes());
        }
        v
    }

    /// Parses a payload; `None` when it is truncated or claims too many TIDs.
    pub fn decode(b: &[u8]) -> Option<Cts> {
        let n = u32_at(b, 16)? as usize;
        if n > CTS_MAX_TIDS {
            return None;
        }
        let tids = (0..n)
            .map(|i| u32_at(b, CTS_FIXED_BYTES + 4 * i).map(crate::TidInfo))
            .collect::<Option<Vec<_>>>()?;
        Some(Cts {
            tid_offset: u32_at(b, 0)?,
            flow: u32_at(b, 4)?,
            gen: u32_at(b, 8)?,
            seq: u32_at(b, 12)?,
            tids,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cts_roundtrip_and_truncation() {
        let c = Cts {
            tid_offset: 4096,
            flow: 3,
            gen: 9,
            seq: 2040,
            tids: vec![crate::TidInfo::for_entry(5, 16).unwrap()],
        };
        let b = c.encode();
        assert_eq!(b.len(), 24);
        assert_eq!(Cts::decode(&b), Some(c));
        assert_eq!(Cts::decode(&b[..23]), None);
        let mut huge = b.clone();
        huge[16..20].copy_from_slice(&5000u32.to_le_bytes());
        assert_eq!(Cts::decode(&huge), None);
    }
}
