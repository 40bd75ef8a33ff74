//! The receiver's rendezvous window planning (facts §9.1, §9.4): how a message above the
//! eager threshold is cut into windows, each registered with TIDs and granted with one CTS.
//! Pure arithmetic, no I/O; the receive loop lives elsewhere.
//!
//! The cut follows ips_tid_pendtids_timer_callback (opa-psm2): with `w` the window and `r`
//! the bytes left, a window is `w` while `r ≥ 2w`, `r/2` while `w < r < 2w` (so the last
//! window is never tiny) and `r` at the end; when more follows and the window is over one page,
//! it is shortened so the next window starts on a page boundary of the receive buffer. The
//! window itself is `min(window, message length rounded up to a page)`.

use hfi_abi::PAGE_SIZE;
use serde::Deserialize;

/// Default eager→rendezvous switch on Xeon (PSM2_MQ_RNDV_HFI_THRESH), bytes.
pub const DEFAULT_THRESHOLD: u32 = 64000;
/// Default rendezvous window on Xeon (PSM2_MQ_RNDV_HFI_WINDOW), bytes.
pub const DEFAULT_WINDOW: u32 = 131072;
/// Largest rendezvous window PSM accepts (PSM_MQ_NIC_MAX_RNDV_WINDOW), bytes.
pub const MAX_WINDOW: u32 = 4 << 20;
/// Default header interval with header suppression (PSM2_EXPECTED_HEADERS).
pub const DEFAULT_EXPECTED_HEADERS: u32 = 16;
/// Most packets per TID window (PSM_TID_MAX_PKTS): the per-peer window is ≤ MTU × this.
pub const TID_MAX_PKTS: u32 = 2048;

/// Rendezvous parameters of the receiver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RndvConfig {
    /// Window in bytes (PSM2_MQ_RNDV_HFI_WINDOW); used clamped to one page ..= 4 MiB.
    pub window: u32,
    /// Messages of at least this many bytes go by rendezvous (PSM2_MQ_RNDV_HFI_THRESH).
    pub threshold: u32,
    /// With header suppression, one packet in this many keeps its header
    /// (PSM2_EXPECTED_HEADERS; used as at least 1).
    pub expected_headers: u32,
}

impl Default for RndvConfig {
    fn default() -> Self {
        Self {
            window: DEFAULT_WINDOW,
            threshold: DEFAULT_THRESHOLD,
            expected_headers: DEFAULT_EXPECTED_HEADERS,
        }
    }
}

impl RndvConfig {
    /// The window in force: `window` clamped to `PAGE_SIZE ..= MAX_WINDOW`.
    pub fn effective_window(&self) -> u32 {
        clamp_window(self.window)
    }

    /// The per-peer window: `min(mtu × TID_MAX_PKTS, effective window)` (ips_proto_connect).
    pub fn peer_window(&self, mtu: u32) -> u32 {
        clamp_window(mtu.saturating_mul(TID_MAX_PKTS).min(self.effective_window()))
    }

    /// Whether a message of `len` bytes uses rendezvous (expected receive) rather than eager.
    pub fn is_rendezvous(&self, len: u64) -> bool {
        len >= u64::from(self.threshold)
    }

    /// [`RndvConfig::expected_headers`], at least 1.
    pub fn header_interval(&self) -> u32 {
        self.expected_headers.max(1)
    }
}

/// Window clamp: at least one page (a zero window would never finish), at most 4 MiB.
fn clamp_window(window: u32) -> u32 {
    window.clamp(PAGE_SIZE as u32, MAX_WINDOW)
}

/// The windows `(offset, len)` of a `msg_len`-byte message received into a page-aligned
/// buffer, with `window` (clamped like [`RndvConfig::effective_window`]). Empty for an empty
/// message; the windows tile `[0, msg_len)` in order.
pub fn plan_windows(msg_len: u64, window: u32) -> Vec<(u64, u32)> {
    plan_windows_at(0, msg_len, window)
}

/// [`plan_windows`] for a receive buffer at `buf_va` (any alignment): windows after the first
/// start on page boundaries of the buffer's address space.
pub fn plan_windows_at(buf_va: u64, msg_len: u64, window: u32) -> Vec<(u64, u32)> {
    let rounded = msg_len.div_ceil(PAGE_SIZE).saturating_mul(PAGE_SIZE);
    let w = u64::from(clamp_window(window)).min(rounded);
    let in_page = buf_va % PAGE_SIZE;
    let mut out = Vec::new();
    let mut off = 0u64;
    while off < msg_len {
        let left = msg_len - off;
        let mut this = if left >= 2 * w {
            w
        } else if left > w {
            left / 2
        } else {
            left
        };
        if off + this < msg_len && this > PAGE_SIZE {
            this -= (in_page + off + this) % PAGE_SIZE;
        }
        // `this` ≤ w ≤ 4 MiB, so it fits.
        out.push((off, this as u32));
        off += this;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiles(plan: &[(u64, u32)], len: u64) -> bool {
        let mut at = 0;
        for &(off, l) in plan {
            if off != at || l == 0 {
                return false;
            }
            at += u64::from(l);
        }
        at == len
    }

    #[test]
    fn defaults_match_facts() {
        let c = RndvConfig::default();
        assert_eq!((c.window, c.threshold, c.expected_headers), (131072, 64000, 16));
        assert!(c.is_rendezvous(64000) && !c.is_rendezvous(63999));
        assert_eq!(c.peer_window(10240), 131072);
        assert_eq!(c.peer_window(8), 16384);
        let big = RndvConfig { window: 64 << 20, ..c };
        assert_eq!(big.effective_window(), MAX_WINDOW);
        let zero = RndvConfig { window: 0, expected_headers: 0, ..c };
        assert_eq!((zero.effective_window(), zero.header_interval()), (4096, 1));
    }

    #[test]
    fn deserialize_with_defaults() {
        let c: RndvConfig = serde_json::from_str(r#"{"window": 4194304}"#).unwrap();
        assert_eq!(c, RndvConfig { window: 4194304, ..RndvConfig::default() });
        assert!(serde_json::from_str::<RndvConfig>(r#"{"windw": 1}"#).is_err());
    }

    #[test]
    fn exact_multiples_and_small_messages() {
        assert_eq!(plan_windows(0, 131072), vec![]);
        assert_eq!(plan_windows(100_000, 131072), vec![(0, 100_000)]);
        assert_eq!(plan_windows(262_144, 131072), vec![(0, 131072), (131072, 131072)]);
    }

    #[test]
    fn last_window_never_tiny() {
        // 300 000 = 131072 + 168928: the remainder is split in halves, page aligned.
        let p = plan_windows(300_000, 131072);
        assert_eq!(p, vec![(0, 131072), (131072, 81920), (212992, 87008)]);
        assert!(tiles(&p, 300_000));
        assert!(p.iter().all(|&(_, l)| l <= 131072));
    }

    #[test]
    fn unaligned_buffer_windows_start_on_pages() {
        let buf = 0x7000_0100;
        let p = plan_windows_at(buf, 1_000_000, 131072);
        assert!(tiles(&p, 1_000_000));
        for &(off, _) in p.iter().skip(1) {
            assert_eq!((buf + off) % 4096, 0);
        }
    }

    #[test]
    fn window_clamped() {
        let p = plan_windows(10_000, 0);
        assert_eq!(p, vec![(0, 4096), (4096, 2952), (7048, 2952)]);
        assert!(plan_windows(64 << 20, u32::MAX).iter().all(|&(_, l)| l == MAX_WINDOW));
    }
}
