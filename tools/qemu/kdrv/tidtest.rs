//! Guest-side check of hfi1's user TID ioctls on `/dev/hfi1_0` (issue #8, tier A): assign a
//! user context, read its info, then TID_UPDATE / TID_FREE / TID_INVAL_READ on anonymous
//! buffers of several sizes, and close. Prints `TIDTEST:` lines; exits non-zero on the first
//! unexpected result.
//!
//! A standalone program (no crate, std only) so the kernel-driver tooling stays in
//! `tools/qemu/kdrv/`: `rustc --edition 2021 -O -C target-feature=+crt-static tidtest.rs`.
//! Layouts and ioctl numbers are those of Linux 6.1's `rdma/hfi/hfi1_user.h` and
//! `rdma/rdma_user_ioctl.h` (user ABI major 6).

use std::fs::OpenOptions;
use std::os::fd::AsRawFd;
use std::process::ExitCode;

extern "C" {
    fn ioctl(fd: i32, req: u64, ...) -> i32;
    fn mmap(addr: *mut u8, len: usize, prot: i32, flags: i32, fd: i32, off: i64) -> *mut u8;
    fn munmap(addr: *mut u8, len: usize) -> i32;
    fn __errno_location() -> *mut i32;
}

const MAGIC: u64 = 0x1b;
const fn ioc(dir: u64, nr: u64, size: u64) -> u64 {
    dir << 30 | size << 16 | MAGIC << 8 | nr
}
const W: u64 = 1;
const R: u64 = 2;
const ASSIGN_CTXT: u64 = ioc(R | W, 0xE1, 28);
const CTXT_INFO: u64 = ioc(W, 0xE2, 40);
const TID_UPDATE: u64 = ioc(R | W, 0xE4, 24);
const TID_FREE: u64 = ioc(R | W, 0xE5, 24);
const TID_INVAL_READ: u64 = ioc(R | W, 0xED, 24);
const GET_VERS: u64 = ioc(R, 0xEE, 4);

#[repr(C)]
#[derive(Default)]
struct UserInfo {
    userversion: u32,
    pad: u32,
    subctxt_cnt: u16,
    subctxt_id: u16,
    uuid: [u8; 16],
}

#[repr(C)]
#[derive(Default, Debug)]
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

#[repr(C)]
#[derive(Default, Debug)]
struct TidInfo {
    vaddr: u64,
    tidlist: u64,
    tidcnt: u32,
    length: u32,
}

fn errno() -> i32 {
    // SAFETY: __errno_location returns this thread's errno slot, always valid.
    unsafe { *__errno_location() }
}

/// ioctl with a pointer argument; Err(errno) on failure.
fn ioctl_ptr<T>(fd: i32, req: u64, arg: &mut T) -> Result<i32, i32> {
    // SAFETY: `arg` is a live, exclusively borrowed #[repr(C)] value whose size matches the
    // size encoded in `req`; the kernel reads and writes only that many bytes.
    let r = unsafe { ioctl(fd, req, arg as *mut T) };
    if r < 0 {
        Err(errno())
    } else {
        Ok(r)
    }
}

struct Anon {
    ptr: *mut u8,
    len: usize,
}

impl Anon {
    fn new(len: usize) -> Option<Anon> {
        const PROT_RW: i32 = 0x1 | 0x2;
        const MAP_PRIVATE_ANON_POPULATE: i32 = 0x02 | 0x20 | 0x8000;
        // SAFETY: a fresh anonymous mapping at a kernel-chosen address; no Rust object aliases it.
        let p =
            unsafe { mmap(std::ptr::null_mut(), len, PROT_RW, MAP_PRIVATE_ANON_POPULATE, -1, 0) };
        (p as isize != -1).then_some(Anon { ptr: p, len })
    }
}

impl Drop for Anon {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`, no reference into it outlives self.
        unsafe { munmap(self.ptr, self.len) };
    }
}

fn run() -> Result<(), String> {
    let dev = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/hfi1_0")
        .map_err(|e| format!("open /dev/hfi1_0: {e}"))?;
    let fd = dev.as_raw_fd();
    let mut vers = 0i32;
    let v = ioctl_ptr(fd, GET_VERS, &mut vers).map_err(|e| format!("GET_VERS errno {e}"))?;
    println!("TIDTEST: GET_VERS returned {v} value {vers:#x}");

    let mut ui = UserInfo { userversion: 6 << 16 | 3, ..Default::default() };
    ui.uuid[0] = 0x42;
    ioctl_ptr(fd, ASSIGN_CTXT, &mut ui).map_err(|e| format!("ASSIGN_CTXT errno {e}"))?;
    let mut ci = CtxtInfo::default();
    ioctl_ptr(fd, CTXT_INFO, &mut ci).map_err(|e| format!("CTXT_INFO errno {e}"))?;
    println!(
        "TIDTEST: ctxt {} send_ctxt {} rcvtids {} egrtids {} credits {} rcvhdrq {}x{} flags {:#x}",
        ci.ctxt,
        ci.send_ctxt,
        ci.rcvtids,
        ci.egrtids,
        ci.credits,
        ci.rcvhdrq_cnt,
        ci.rcvhdrq_entsize,
        ci.runtime_flags
    );
    if ci.rcvtids == 0 {
        return Err("no expected TIDs in this context".into());
    }

    let mut total = 0u32;
    for pages in [1usize, 16, 64, 256] {
        let len = pages * 4096;
        let buf = Anon::new(len).ok_or("mmap failed")?;
        let mut tids = vec![0u32; 2048];
        let mut ti = TidInfo {
            vaddr: buf.ptr as u64,
            tidlist: tids.as_mut_ptr() as u64,
            tidcnt: 0,
            length: len as u32,
        };
        ioctl_ptr(fd, TID_UPDATE, &mut ti).map_err(|e| format!("TID_UPDATE {len} errno {e}"))?;
        let n = ti.tidcnt as usize;
        println!(
            "TIDTEST: TID_UPDATE {len} bytes -> {} tids, length {}, first {:#010x}",
            n,
            ti.length,
            tids.first().copied().unwrap_or(0)
        );
        if n == 0 || ti.length as usize != len {
            return Err(format!("TID_UPDATE {len}: {n} tids for {} bytes", ti.length));
        }
        total += ti.tidcnt;
        let mut tf =
            TidInfo { tidlist: tids.as_mut_ptr() as u64, tidcnt: ti.tidcnt, ..Default::default() };
        ioctl_ptr(fd, TID_FREE, &mut tf).map_err(|e| format!("TID_FREE errno {e}"))?;
        println!("TIDTEST: TID_FREE {} tids ok", tf.tidcnt);
        let mut inval = vec![0u32; 2048];
        let mut tr =
            TidInfo { tidlist: inval.as_mut_ptr() as u64, tidcnt: 0, ..Default::default() };
        ioctl_ptr(fd, TID_INVAL_READ, &mut tr).map_err(|e| format!("TID_INVAL_READ errno {e}"))?;
        println!("TIDTEST: TID_INVAL_READ {} invalidated", tr.tidcnt);
    }
    println!("TIDTEST: ok, {total} TIDs programmed and freed");
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            println!("TIDTEST: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
