//! Interrupt eventfds, as both real transports use them: drain one, or wait until it is
//! readable with a timeout (`ppoll(2)`).
#![allow(unsafe_code)]

use std::fs::File;
use std::io::Read;
use std::os::fd::AsRawFd;

use super::{Result, TransportError};

/// Reads the counter if the (non-blocking) eventfd was signalled; true if it was.
pub fn drain(f: &mut File) -> bool {
    let mut b = [0u8; 8];
    matches!(f.read(&mut b), Ok(8))
}

/// Waits until `f` is readable or `timeout_ns` passes; true if readable. A signal ends the
/// wait early (false).
pub fn wait(f: &File, timeout_ns: u64) -> Result<bool> {
    let mut pfd = libc::pollfd { fd: f.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    let ts = libc::timespec {
        tv_sec: (timeout_ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (timeout_ns % 1_000_000_000) as libc::c_long,
    };
    // SAFETY: one valid pollfd, a valid timespec, no signal mask; all live for the call.
    let n = unsafe { libc::ppoll(&mut pfd, 1, &ts, std::ptr::null()) };
    if n < 0 {
        if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            return Ok(false);
        }
        return Err(TransportError::IrqWaitFailed);
    }
    Ok(n > 0)
}

/// `wait_irq` of a transport with one INTx eventfd: vector 0 if it fired (already or within
/// `timeout_ns`), nothing on timeout. `before_wait` runs when the wait is needed (e.g. an INTx
/// unmask).
pub fn wait_intx(
    f: &mut File,
    timeout_ns: u64,
    before_wait: impl FnOnce() -> Result<()>,
) -> Result<Vec<u16>> {
    if drain(f) {
        return Ok(vec![0]);
    }
    before_wait()?;
    Ok(if wait(f, timeout_ns)? && drain(f) { vec![0] } else { Vec::new() })
}
