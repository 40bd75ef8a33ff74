//! The upstream hfi1 driver's user character device (`/dev/hfi1_N`), for the differential
//! check: the ioctls the TID script needs (user ABI major 6). The only unsafe code of this
//! crate: `ioctl(2)` with `repr(C)` copies of the uapi structs.
#![allow(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;

use guest_proto::tidscript::{ScriptCtxtInfo, ScriptFd};

/// `IB_IOCTL_MAGIC` / `RDMA_IOCTL_MAGIC`.
const MAGIC: u64 = 0x1b;

const fn ioc(dir: u64, nr: u64, size: usize) -> u64 {
    (dir << 30) | ((size as u64) << 16) | (MAGIC << 8) | nr
}
const IOC_W: u64 = 1;
const IOC_R: u64 = 2;
const IOC_RW: u64 = 3;

/// `struct hfi1_user_info`.
#[repr(C)]
#[derive(Default)]
struct UserInfo {
    userversion: u32,
    pad: u32,
    subctxt_cnt: u16,
    subctxt_id: u16,
    uuid: [u8; 16],
}

/// `struct hfi1_ctxt_info`.
#[repr(C)]
#[derive(Default)]
struct CtxtInfo {
    runtime_flags: u64,
    rcvegr_size: u32,
    num_active: u16,
    unit: u16,
    ctxt: u16,
    subctxt: u16,
    rcvtids: u16,
    credits: u16,
    numa_node: u16,
    rec_cpu: u16,
    send_ctxt: u16,
    egrtids: u16,
    rcvhdrq_cnt: u16,
    rcvhdrq_entsize: u16,
    sdma_ring_size: u16,
}

/// `struct hfi1_tid_info`.
#[repr(C)]
#[derive(Default)]
struct TidInfo {
    vaddr: u64,
    tidlist: u64,
    tidcnt: u32,
    length: u32,
}

const ASSIGN_CTXT: u64 = ioc(IOC_RW, 0xE1, std::mem::size_of::<UserInfo>());
const CTXT_INFO: u64 = ioc(IOC_W, 0xE2, std::mem::size_of::<CtxtInfo>());
const TID_UPDATE: u64 = ioc(IOC_RW, 0xE4, std::mem::size_of::<TidInfo>());
const TID_FREE: u64 = ioc(IOC_RW, 0xE5, std::mem::size_of::<TidInfo>());
const TID_INVAL_READ: u64 = ioc(IOC_RW, 0xED, std::mem::size_of::<TidInfo>());
const GET_VERS: u64 = ioc(IOC_R, 0xEE, std::mem::size_of::<i32>());

/// Most TIDs one call returns (the kernel's per-context expected count is far below).
const MAX_TIDS: usize = 16384;

/// An open `/dev/hfi1_N` with an assigned context.
#[derive(Debug)]
pub struct Hfi1Cdev {
    file: File,
    /// GET_VERS.
    pub version: i32,
}

fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(5)
}

impl Hfi1Cdev {
    /// Opens `path`, reads the driver version and assigns a context (user ABI 6.3).
    pub fn open(path: &str) -> io::Result<Self> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let mut version: i32 = 0;
        // SAFETY: GET_VERS writes one int through the pointer, which is live for the call.
        if unsafe { libc::ioctl(file.as_raw_fd(), GET_VERS as _, &mut version) } < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut ui = UserInfo {
            userversion: (hfi_abi::uapi::HFI1_USER_SWMAJOR << 16)
                | hfi_abi::uapi::HFI1_USER_SWMINOR,
            subctxt_cnt: 0,
            ..Default::default()
        };
        // SAFETY: ASSIGN_CTXT reads (and may write back) a live hfi1_user_info of the encoded
        // size.
        if unsafe { libc::ioctl(file.as_raw_fd(), ASSIGN_CTXT as _, &mut ui) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self { file, version })
    }

    fn tid_call(
        &mut self,
        cmd: u64,
        va: u64,
        tids: &mut [u32],
        cnt: u32,
        len: u32,
    ) -> Result<TidInfo, i32> {
        let mut ti =
            TidInfo { vaddr: va, tidlist: tids.as_mut_ptr() as u64, tidcnt: cnt, length: len };
        // SAFETY: a live hfi1_tid_info whose tidlist points at `tids`, a live buffer of
        // tids.len() >= the kernel's limit for this context entries (MAX_TIDS); the kernel
        // copies at most tidcnt / its own count entries.
        if unsafe { libc::ioctl(self.file.as_raw_fd(), cmd as _, &mut ti) } < 0 {
            return Err(errno());
        }
        Ok(ti)
    }
}

impl ScriptFd for Hfi1Cdev {
    fn ctxt_info(&mut self) -> Result<ScriptCtxtInfo, i32> {
        let mut ci = CtxtInfo::default();
        // SAFETY: CTXT_INFO writes a hfi1_ctxt_info into the live struct.
        if unsafe { libc::ioctl(self.file.as_raw_fd(), CTXT_INFO as _, &mut ci) } < 0 {
            return Err(errno());
        }
        Ok(ScriptCtxtInfo {
            runtime_flags: ci.runtime_flags,
            ctxt: u32::from(ci.ctxt),
            subctxt: u32::from(ci.subctxt),
            rcvtids: u32::from(ci.rcvtids),
            egrtids: u32::from(ci.egrtids),
            rcvegr_size: ci.rcvegr_size,
            rcvhdrq_cnt: u32::from(ci.rcvhdrq_cnt),
            rcvhdrq_entsize: u32::from(ci.rcvhdrq_entsize),
        })
    }

    fn tid_update(&mut self, va: u64, len: u32) -> Result<(Vec<u32>, u32), i32> {
        let mut tids = vec![0u32; MAX_TIDS];
        let ti = self.tid_call(TID_UPDATE, va, &mut tids, MAX_TIDS as u32, len)?;
        tids.truncate((ti.tidcnt as usize).min(MAX_TIDS));
        Ok((tids, ti.length))
    }

    fn tid_free(&mut self, tids: &[u32]) -> Result<u32, i32> {
        let mut list = tids.to_vec();
        let n = list.len() as u32;
        let ti = self.tid_call(TID_FREE, 0, &mut list, n, 0)?;
        Ok(ti.tidcnt)
    }

    fn tid_inval_read(&mut self) -> Result<Vec<u32>, i32> {
        let mut tids = vec![0u32; MAX_TIDS];
        let ti = self.tid_call(TID_INVAL_READ, 0, &mut tids, MAX_TIDS as u32, 0)?;
        tids.truncate((ti.tidcnt as usize).min(MAX_TIDS));
        Ok(tids)
    }
}
