//! The kernel's user MAD interface (`ib_umad`, `/dev/infiniband/umadN`): register a send-only
//! agent on QP0, send a MAD, read the answer. What a subnet manager uses to talk to the local
//! port's SMA; here for [`crate::opa_sm`]. The uapi (`rdma/ib_user_mad.h`): the 64-byte
//! `ib_user_mad_hdr` (after IB_USER_MAD_ENABLE_PKEY) precedes every MAD written or read.
#![allow(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;

/// `IB_IOCTL_MAGIC`.
const MAGIC: u64 = 0x1b;

const fn ioc(dir: u64, nr: u64, size: usize) -> u64 {
    (dir << 30) | ((size as u64) << 16) | (MAGIC << 8) | nr
}

/// `struct ib_user_mad_reg_req`.
#[repr(C)]
#[derive(Default)]
struct RegReq {
    id: u32,
    method_mask: [u32; 4],
    qpn: u8,
    mgmt_class: u8,
    mgmt_class_version: u8,
    oui: [u8; 3],
    rmpp_version: u8,
}

const REGISTER_AGENT: u64 = ioc(3, 1, std::mem::size_of::<RegReq>());
const ENABLE_PKEY: u64 = ioc(0, 3, 0);

/// Size of `struct ib_user_mad_hdr`.
pub const HDR_LEN: usize = 64;
/// Size of an OPA MAD.
pub const OPA_MAD_LEN: usize = 2048;

/// An open umad device with one send-only QP0 agent.
#[derive(Debug)]
pub struct Umad {
    f: File,
    agent: u32,
}

/// Why a MAD exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum UmadError {
    /// The device could not be opened or set up.
    #[error("{what}: {err}")]
    Io {
        /// The step.
        what: &'static str,
        /// The error.
        #[source]
        err: io::Error,
    },
    /// No answer within the timeout.
    #[error("no answer to the MAD within {0} ms")]
    Timeout(i32),
    /// The kernel reported a send error (the header's status, an errno).
    #[error("the MAD send failed with status {0}")]
    SendStatus(u32),
    /// The answer is shorter than a MAD header.
    #[error("short answer: {0} bytes")]
    Short(usize),
}

fn io_err(what: &'static str) -> impl FnOnce(io::Error) -> UmadError {
    move |err| UmadError::Io { what, err }
}

impl Umad {
    /// Opens `path`, switches to the header with a P_Key index and registers a send-only agent
    /// on QP0 (no management class: only answers to its own requests arrive).
    pub fn open(path: &str) -> Result<Self, UmadError> {
        let f = OpenOptions::new().read(true).write(true).open(path).map_err(io_err("open"))?;
        // SAFETY: ENABLE_PKEY takes no argument; `f` is an open umad descriptor.
        let r = unsafe { libc::ioctl(f.as_raw_fd(), ENABLE_PKEY as _) };
        if r < 0 {
            return Err(UmadError::Io {
                what: "IB_USER_MAD_ENABLE_PKEY",
                err: io::Error::last_os_error(),
            });
        }
        let mut req = RegReq::default();
        // SAFETY: `req` is a live, writable `repr(C)` copy of `ib_user_mad_reg_req` whose size
        // is encoded in the request number; the kernel writes back the agent id.
        let r = unsafe { libc::ioctl(f.as_raw_fd(), REGISTER_AGENT as _, &mut req as *mut RegReq) };
        if r < 0 {
            return Err(UmadError::Io {
                what: "IB_USER_MAD_REGISTER_AGENT",
                err: io::Error::last_os_error(),
            });
        }
        Ok(Self { f, agent: req.id })
    }

    /// Sends `mad` (a whole MAD, up to [`OPA_MAD_LEN`] bytes) on QP0 to the permissive LID
    /// with P_Key index `pkey_index` and returns the answer's MAD bytes.
    pub fn exchange(
        &mut self,
        mad: &[u8],
        pkey_index: u16,
        timeout_ms: i32,
    ) -> Result<Vec<u8>, UmadError> {
        let mut buf = vec![0u8; HDR_LEN + mad.len()];
        let (hdr, body) = buf.split_at_mut(HDR_LEN);
        put(hdr, 0, &self.agent.to_ne_bytes()); // id
        put(hdr, 8, &(timeout_ms as u32).to_ne_bytes()); // timeout_ms
        put(hdr, 16, &(mad.len() as u32).to_ne_bytes()); // length
        put(hdr, 28, &0xFFFFu16.to_be_bytes()); // lid: permissive (directed route)
        put(hdr, 56, &pkey_index.to_ne_bytes());
        body.copy_from_slice(mad);
        self.f.write_all(&buf).map_err(io_err("write MAD"))?;
        let mut pfd = libc::pollfd { fd: self.f.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd for the duration of the call.
        let n = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        if n < 0 {
            return Err(UmadError::Io { what: "poll", err: io::Error::last_os_error() });
        }
        if n == 0 {
            return Err(UmadError::Timeout(timeout_ms));
        }
        let mut ans = vec![0u8; HDR_LEN + OPA_MAD_LEN];
        let got = self.f.read(&mut ans).map_err(io_err("read MAD"))?;
        if got < HDR_LEN + 24 {
            return Err(UmadError::Short(got));
        }
        let status = ans.get(4..8).and_then(|b| b.try_into().ok()).map_or(0, u32::from_ne_bytes);
        if status != 0 {
            return Err(UmadError::SendStatus(status));
        }
        ans.truncate(got);
        Ok(ans.split_off(HDR_LEN))
    }
}

/// The RDMA device and port of umad device `name` (e.g. "umad0") from sysfs.
pub fn port_of(name: &str) -> Option<(String, u32)> {
    let dir = format!("/sys/class/infiniband_mad/{name}");
    let dev = std::fs::read_to_string(format!("{dir}/ibdev")).ok()?;
    let port = std::fs::read_to_string(format!("{dir}/port")).ok()?;
    Some((dev.trim().to_string(), port.trim().parse().ok()?))
}

/// The index of a management P_Key (0x7FFF limited or 0xFFFF full) in the port's table:
/// the SMA takes node-local SMPs only with one of those (OPA v1 9.10.26).
pub fn mgmt_pkey_index(dev: &str, port: u32) -> Option<u16> {
    (0..16u16).find(|i| {
        let p = format!("/sys/class/infiniband/{dev}/ports/{port}/pkeys/{i}");
        let v = std::fs::read_to_string(p).unwrap_or_default();
        let v = u16::from_str_radix(v.trim().trim_start_matches("0x"), 16).unwrap_or(0);
        v & 0x7FFF == 0x7FFF
    })
}

fn put(buf: &mut [u8], off: usize, bytes: &[u8]) {
    if let Some(d) = buf.get_mut(off..off + bytes.len()) {
        d.copy_from_slice(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uapi_sizes() {
        assert_eq!(std::mem::size_of::<RegReq>(), 28);
        assert_eq!(REGISTER_AGENT, 0xc01c_1b01);
        assert_eq!(ENABLE_PKEY, 0x1b03);
    }
}
