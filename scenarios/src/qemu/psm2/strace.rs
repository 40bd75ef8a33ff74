//! The guest's `strace -f` lines of the PSM2 programs: device opens, hfi1 ioctls by name,
//! hfi1 mmaps decoded from the mmap token, user-SDMA `writev` calls.

use serde::Serialize;

/// The syscalls of interest of one program (all its processes), from `strace -f`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Syscalls {
    /// strace lines recorded in the guest (the report sees at most 6000 of them, reads of
    /// /proc/kallsyms left out).
    pub total_lines: u64,
    /// Files under /dev and /sys it opened, with the result, in order.
    pub opens: Vec<String>,
    /// hfi1 ioctls in order: name and result.
    pub ioctls: Vec<String>,
    /// mmaps of the hfi1 device, decoded from hfi1's mmap token: type, context, length,
    /// result.
    pub mmaps: Vec<String>,
    /// writev calls on the hfi1 device (user SDMA submissions).
    pub writev: u64,
    /// The last lines of the strace.
    pub tail: Vec<String>,
}

/// hfi1's ioctl names by command number (`rdma_user_ioctl.h`, magic 0x1b).
pub(crate) fn hfi1_ioctl_name(nr: u64) -> Option<&'static str> {
    Some(match nr {
        0xE1 => "ASSIGN_CTXT",
        0xE2 => "CTXT_INFO",
        0xE3 => "USER_INFO",
        0xE4 => "TID_UPDATE",
        0xE5 => "TID_FREE",
        0xE6 => "CREDIT_UPD",
        0xE8 => "RECV_CTRL",
        0xE9 => "POLL_TYPE",
        0xEA => "ACK_EVENT",
        0xEB => "SET_PKEY",
        0xEC => "CTXT_RESET",
        0xED => "TID_INVAL_READ",
        0xEE => "GET_VERS",
        _ => return None,
    })
}

/// hfi1's mmap token (file_ops.c): magic 0xdabbad00 in bits 63:32, type 27:24, context
/// 23:16, subcontext 15:12, offset in page 11:0. Returns "TYPE ctxt C sub S".
pub fn decode_mmap_token(token: u64) -> Option<String> {
    if token >> 32 != 0xdabb_ad00 {
        return None;
    }
    let ty = match (token >> 24) & 0xf {
        1 => "PIO_BUFS",
        2 => "PIO_BUFS_SOP",
        3 => "PIO_CRED",
        4 => "RCV_HDRQ",
        5 => "RCV_EGRBUF",
        6 => "UREGS",
        7 => "EVENTS",
        8 => "STATUS",
        9 => "RTAIL",
        10 => "SUBCTXT_UREGS",
        11 => "SUBCTXT_RCV_HDRQ",
        12 => "SUBCTXT_EGRBUF",
        13 => "SDMA_COMP",
        _ => "?",
    };
    Some(format!(
        "{ty} ctxt {} sub {} off {:#x}",
        (token >> 16) & 0xff,
        (token >> 12) & 0xf,
        token & 0xfff
    ))
}

pub(crate) fn parse_num(s: &str) -> Option<u64> {
    let s = s.trim();
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// The call part of an strace line ("PID HH:MM:SS.us call(...) = ret"): (call, result).
pub(crate) fn strace_call(line: &str) -> Option<(&str, &str)> {
    let mut rest = line.trim_start();
    // Leading pid and time stamp.
    for _ in 0..2 {
        if let Some((w, r)) = rest.split_once(' ') {
            if w.chars().all(|c| c.is_ascii_digit() || c == ':' || c == '.') {
                rest = r.trim_start();
            }
        }
    }
    let (call, ret) = rest.rsplit_once(") = ").map_or((rest, ""), |(c, r)| (c, r));
    Some((call, ret))
}

/// Adds one strace line to the summary.
pub(crate) fn note_strace(s: &mut Syscalls, line: &str) {
    s.tail.push(line.to_string());
    if s.tail.len() > 40 {
        s.tail.remove(0);
    }
    let Some((call, ret)) = strace_call(line) else { return };
    if let Some(args) = call.strip_prefix("openat(") {
        if let Some(path) = args.split('"').nth(1) {
            if path.starts_with("/dev/") || path.starts_with("/sys/") {
                s.opens.push(format!("{path} = {ret}"));
            }
        }
    } else if let Some(args) = call.strip_prefix("ioctl(") {
        // Decoded by strace (HFI1_IOCTL_…) or raw: _IOC(dir, 0x1b, nr, size).
        let name = if let Some(i) = args.find("HFI1_IOCTL_") {
            args.get(i + 11..).map(|n| {
                n.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .next()
                    .unwrap_or("")
                    .to_string()
            })
        } else if let Some(i) = args.find("_IOC(") {
            let f: Vec<&str> = args.get(i + 5..).unwrap_or("").split(',').collect();
            match (f.get(1).and_then(|m| parse_num(m)), f.get(2).and_then(|n| parse_num(n))) {
                (Some(0x1b), Some(nr)) => hfi1_ioctl_name(nr).map(String::from),
                _ => None,
            }
        } else {
            None
        };
        if let Some(n) = name {
            s.ioctls.push(format!("{n} = {ret}"));
        }
    } else if let Some(args) = call.strip_prefix("mmap(") {
        let f: Vec<&str> = args.split(", ").collect();
        if let (Some(len), Some(off)) = (f.get(1), f.get(5).and_then(|o| parse_num(o))) {
            if let Some(d) = decode_mmap_token(off) {
                s.mmaps.push(format!("{d} len {len} = {ret}"));
            }
        }
    } else if call.starts_with("writev(") {
        s.writev += 1;
    }
}
