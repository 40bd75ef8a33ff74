//! MSI-X: the capability at config offset 0xB0 and the server side of its vectors.
//!
//! **Capability.** 256 vectors (the chip's CCE_NUM_MSIX_VECTORS), table in BAR0 at
//! CCE_MSIX_TABLE (0x100000) and PBA at CCE_MSIX_PBA (0x110000), both BIR 0, as on the WFR.
//! hfi1 reads the dword at 0xB0 (`PCI_CFG_MSIX0`) without walking the list, so the capability
//! must sit exactly there. MessageControl.Enable and FunctionMask are writable storage; the
//! table and PBA are emulated by QEMU for vfio devices (a guest never reaches the model's
//! CCE_MSIX_TABLE CSRs through QEMU), the model signals vectors, not memory writes.
//!
//! **Vectors.** `VFIO_PCI_MSIX_IRQ_INDEX` (2) reports 256 vectors with EVENTFD (no NORESIZE:
//! vectors are set one at a time). The server's one-fd framing (`max_msg_fds` = 1) is enough
//! because QEMU's vfio-user client splits a SET_IRQS into messages of at most `max_msg_fds`
//! fds, and sends a run of unused vectors (fd −1) as one message with DATA_EVENTFD and no fd.
//! Accepted SET_IRQS on index 2:
//!
//! | flags | count, fds | effect |
//! |---|---|---|
//! | TRIGGER \| EVENTFD | count 1, one fd | vector `start` signals that fd; MSI-X mode on |
//! | TRIGGER \| EVENTFD | count n ≥ 1, no fd | vectors `start..start+n` have no fd; MSI-X mode on |
//! | TRIGGER \| NONE or EVENTFD | count 0 | every vector dropped; MSI-X mode off (INTx again) |
//! | TRIGGER \| NONE | count n ≥ 1 | vectors `start..start+n` signalled now (loopback test) |
//!
//! Anything else (MASK/UNMASK, more than one vector with an fd, a range past 256) is EINVAL.
//! While MSI-X mode is on, every vector the device signals (CceIntMap byte of the source)
//! writes that vector's eventfd; a vector without one is a counted drop; INTx stays quiet.

use std::fs::File;
use std::io::Write;

use hfi_abi::cce;
use hfi_abi::pcicfg::{cap_id, msix};

use super::pcie_cap::put;
use super::protocol::{irq_flags, libc_errno};
use super::stats::ServerStats;

/// Offset of the capability.
pub const POS: usize = hfi_abi::pcicfg::PCI_CFG_MSIX0;
/// Vectors.
pub const VECTORS: u32 = cce::NUM_MSIX_VECTORS as u32;

/// Writes the capability at [`POS`] into `bytes` and its writable bits into `wmask`.
pub fn install(bytes: &mut [u8], wmask: &mut [u8], next: u8) {
    let ctrl = msix::FLAGS_QSIZE.encode(u64::from(VECTORS) - 1) as u16;
    let wctrl = (msix::FLAGS_ENABLE.smask() | msix::FLAGS_MASKALL.smask()) as u16;
    put(bytes, POS, &[cap_id::MSIX, next]);
    put(bytes, POS + msix::FLAGS, &ctrl.to_le_bytes());
    put(bytes, POS + msix::TABLE, &(cce::CCE_MSIX_TABLE.base as u32).to_le_bytes());
    put(bytes, POS + msix::PBA, &(cce::CCE_MSIX_PBA.base as u32).to_le_bytes());
    put(wmask, POS + msix::FLAGS, &wctrl.to_le_bytes());
}

/// The MSI-X vectors' eventfds.
#[derive(Debug, Default)]
pub struct MsixVectors {
    fds: Vec<Option<File>>,
    enabled: bool,
}

impl MsixVectors {
    /// True while MSI-X is the interrupt mode (some SET_IRQS configured vectors).
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Vectors with an eventfd.
    pub fn with_fd(&self) -> usize {
        self.fds.iter().filter(|f| f.is_some()).count()
    }

    /// Drops every vector (disconnect).
    pub fn clear(&mut self) {
        self.fds.clear();
        self.enabled = false;
    }

    /// SET_IRQS on the MSI-X index; returns an errno (0 = done).
    pub fn set_irqs(
        &mut self,
        flags: u32,
        start: u32,
        count: u32,
        fd: Option<File>,
        st: &mut ServerStats,
    ) -> i32 {
        use irq_flags::*;
        let data = flags & (DATA_NONE | DATA_BOOL | DATA_EVENTFD);
        let action = flags & (ACTION_MASK | ACTION_UNMASK | ACTION_TRIGGER);
        if action != ACTION_TRIGGER || !(data == DATA_NONE || data == DATA_EVENTFD) {
            return libc_errno::EINVAL;
        }
        let Some(end) = start.checked_add(count).filter(|&e| e <= VECTORS) else {
            return libc_errno::EINVAL;
        };
        if count == 0 {
            if fd.is_some() {
                return libc_errno::EINVAL;
            }
            self.clear();
            st.irq_msix_disable_count += 1;
            return 0;
        }
        if data == DATA_NONE {
            if fd.is_some() {
                return libc_errno::EINVAL;
            }
            for v in start..end {
                self.signal(v as u16, st);
            }
            return 0;
        }
        if fd.is_some() && count != 1 {
            return libc_errno::EINVAL;
        }
        if self.fds.len() < VECTORS as usize {
            self.fds.resize_with(VECTORS as usize, || None);
        }
        let mut fd = fd;
        for slot in self.fds.iter_mut().take(end as usize).skip(start as usize) {
            *slot = fd.take();
        }
        self.enabled = true;
        st.irq_msix_set_count += 1;
        0
    }

    /// Signals vector `v` (an eventfd write of 1).
    pub fn signal(&mut self, v: u16, st: &mut ServerStats) {
        match self.fds.get_mut(usize::from(v)).and_then(Option::as_mut) {
            Some(f) => match f.write_all(&1u64.to_ne_bytes()) {
                Ok(()) => st.irq_msix_trigger_count += 1,
                Err(_) => st.irq_trigger_fails += 1,
            },
            None => st.irq_msix_no_eventfd_drops += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::fd::OwnedFd;
    use std::os::unix::net::UnixStream;

    /// A write end the test can read back (stands in for an eventfd).
    fn pipe() -> (File, UnixStream) {
        let (a, b) = UnixStream::pair().unwrap();
        b.set_nonblocking(true).unwrap();
        (File::from(OwnedFd::from(a)), b)
    }

    fn got(r: &mut UnixStream) -> usize {
        let mut b = [0u8; 64];
        r.read(&mut b).map_or(0, |n| n / 8)
    }

    const TRIG_FD: u32 = irq_flags::ACTION_TRIGGER | irq_flags::DATA_EVENTFD;
    const TRIG_NONE: u32 = irq_flags::ACTION_TRIGGER | irq_flags::DATA_NONE;

    #[test]
    fn qemu_style_enable_use_and_disable() {
        let mut m = MsixVectors::default();
        let mut st = ServerStats::default();
        // vfio_enable_msix_no_vec: vector 0 with fd -1 = no fd.
        assert_eq!(m.set_irqs(TRIG_FD, 0, 1, None, &mut st), 0);
        assert!(m.enabled());
        assert_eq!(m.with_fd(), 0);
        // Per-vector fds, one per message.
        let (f0, mut r0) = pipe();
        let (f5, mut r5) = pipe();
        assert_eq!(m.set_irqs(TRIG_FD, 0, 1, Some(f0), &mut st), 0);
        assert_eq!(m.set_irqs(TRIG_FD, 5, 1, Some(f5), &mut st), 0);
        assert_eq!(m.with_fd(), 2);
        m.signal(5, &mut st);
        m.signal(5, &mut st);
        m.signal(0, &mut st);
        m.signal(3, &mut st);
        assert_eq!((got(&mut r0), got(&mut r5)), (1, 2));
        assert_eq!(st.irq_msix_trigger_count, 3);
        assert_eq!(st.irq_msix_no_eventfd_drops, 1);
        // A run of -1 fds releases vectors 4..6.
        assert_eq!(m.set_irqs(TRIG_FD, 4, 2, None, &mut st), 0);
        m.signal(5, &mut st);
        assert_eq!(got(&mut r5), 0);
        // Loopback trigger.
        assert_eq!(m.set_irqs(TRIG_NONE, 0, 1, None, &mut st), 0);
        assert_eq!(got(&mut r0), 1);
        // Disable.
        assert_eq!(m.set_irqs(TRIG_NONE, 0, 0, None, &mut st), 0);
        assert!(!m.enabled());
        assert_eq!(m.with_fd(), 0);
    }

    #[test]
    fn bad_requests_are_refused() {
        let mut m = MsixVectors::default();
        let mut st = ServerStats::default();
        let mask = irq_flags::ACTION_MASK | irq_flags::DATA_NONE;
        assert_eq!(m.set_irqs(mask, 0, 1, None, &mut st), libc_errno::EINVAL);
        assert_eq!(m.set_irqs(TRIG_FD, 255, 2, None, &mut st), libc_errno::EINVAL);
        assert_eq!(m.set_irqs(TRIG_FD, u32::MAX, 2, None, &mut st), libc_errno::EINVAL);
        let (f, _r) = pipe();
        assert_eq!(m.set_irqs(TRIG_FD, 0, 2, Some(f), &mut st), libc_errno::EINVAL);
        let bool_flags = irq_flags::ACTION_TRIGGER | irq_flags::DATA_BOOL;
        assert_eq!(m.set_irqs(bool_flags, 0, 1, None, &mut st), libc_errno::EINVAL);
        assert!(!m.enabled());
        assert_eq!(m.set_irqs(TRIG_FD, 255, 1, None, &mut st), 0, "the last vector");
    }

    #[test]
    fn capability_layout() {
        let mut b = vec![0u8; 256];
        let mut w = vec![0u8; 256];
        install(&mut b, &mut w, 0);
        let dw = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
        assert_eq!(dw(POS) & 0xffff, 0x0011, "ID 0x11, end of the list");
        assert_eq!(dw(POS) >> 16 & 0x7ff, 255, "256 vectors");
        assert_eq!(dw(POS + 4), 0x10_0000, "table at CCE_MSIX_TABLE, BIR 0");
        assert_eq!(dw(POS + 8), 0x11_0000, "PBA at CCE_MSIX_PBA, BIR 0");
        assert_eq!(u16::from_le_bytes([w[POS + 2], w[POS + 3]]), 0xC000);
    }
}
