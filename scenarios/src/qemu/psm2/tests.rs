//! Tests of the PSM2 run: the guest script, the strace and BAR-trace parsers, the report.

use super::mmio_trace::{parse_trace_line, trace_time};
use super::*;

#[test]
fn mmap_tokens_decode() {
    let t = (0xdabb_ad00u64 << 32) | (3 << 24) | (9 << 16) | 0x40;
    assert_eq!(decode_mmap_token(t).unwrap(), "PIO_CRED ctxt 9 sub 0 off 0x40");
    assert_eq!(decode_mmap_token(0x1000), None);
}

#[test]
fn strace_lines_summarize() {
    let mut s = Syscalls::default();
    for l in [
        r#"123 10:00:00.000001 openat(AT_FDCWD, "/dev/hfi1_0", O_RDWR|O_CLOEXEC) = 5"#,
        r#"123 10:00:00.000002 openat(AT_FDCWD, "/etc/ld.so.cache", O_RDONLY) = -1 ENOENT (No such file or directory)"#,
        "123 10:00:00.000003 ioctl(5, _IOC(_IOC_READ|_IOC_WRITE, 0x1b, 0xe1, 0x48), 0x7ffd) = 0",
        "123 10:00:00.000004 ioctl(5, HFI1_IOCTL_CTXT_INFO, 0x7ffd) = 0",
        "123 10:00:00.000005 mmap(NULL, 4096, PROT_READ, MAP_SHARED, 5, 0xdabbad0003090000) = 0x7f0000000000",
        "123 10:00:00.000006 writev(5, [{iov_base=0x1, iov_len=64}], 1) = 64",
    ] {
        note_strace(&mut s, l);
    }
    assert_eq!(s.opens, vec!["/dev/hfi1_0 = 5"]);
    assert_eq!(s.ioctls, vec!["ASSIGN_CTXT = 0", "CTXT_INFO = 0"]);
    assert_eq!(s.mmaps, vec!["PIO_CRED ctxt 9 sub 0 off 0x0 len 4096 = 0x7f0000000000"]);
    assert_eq!(s.writev, 1);
}

#[test]
fn trace_lines_parse_and_name() {
    let w = "vfio_region_write  (0000:01:00.0:region0+0x1300008, 0x5, 8)";
    assert_eq!(parse_trace_line(w), Some((true, 0, 0x130_0008, 5, 8)));
    let r = "12@1.000:vfio_region_read  (0000:01:00.0:region0+0x1900020, 8) = 0x1234";
    assert_eq!(parse_trace_line(r), Some((false, 0, 0x190_0020, 0x1234, 8)));
    assert_eq!(csr_name(0x130_0008 + 3 * 0x1000), "RCV_HDR_HEAD[ctxt 3]");
    assert_eq!(csr_name(0x190_0020 + 12 * 0x100), "SEND_CTXT_CREDIT_RETURN_ADDR[sc 12]");
    assert_eq!(csr_name(0x1a0_0020), "SEND_DMA_TAIL[engine 0]");
    let pio = |t: f64, off: u64, v: u64| {
        format!("7@{t:.6}:vfio_region_write  (x.sock:region0+{off:#x}, {v:#x}, 8)\n")
    };
    let mut t = format!("{w}\n{r}\n");
    t.push_str(&pio(100.5, 0x3000000, 0x38));
    t.push_str(&pio(100.75, 0x2000050, 0));
    t.push_str(&pio(101.0, 0x2000048, 0));
    let m = summarize_trace(&t);
    assert_eq!(m.accesses, 5);
    assert_eq!((m.pio.stores, m.pio.sop_stores, m.pio.packets), (3, 1, 1));
    assert_eq!(m.pio.pbcs["0x38"], 1);
    assert_eq!(m.pio.out_of_order_stores, 1);
    assert_eq!((m.pio.first_store_s, m.pio.last_store_s), (Some(99.5), Some(100.0)));
    assert_eq!(m.registers.len(), 2);
    assert_eq!(trace_time("12@1.5:vfio_region_read (a:region0+0x0, 8) = 0x0"), Some(1.5));
    let iso = "2026-12-02T01:02:03.250000Z vfio_region_read  (a:region0+0x0, 8) = 0x0";
    assert_eq!(trace_time(iso), Some(3723.25));
    assert_eq!(parse_trace_line(iso), Some((false, 0, 0, 0, 8)));
}

#[test]
fn script_is_bounded_and_settings_filtered() {
    let k = Psm2Knobs { extra_env: vec!["PSM2_SDMA=0".into()], ..Default::default() };
    let s = guest_script(&k);
    assert!(s.contains("timeout 90 fi_info -p psm2"));
    assert!(s.contains("timeout 100 fi_pingpong"));
    assert!(s.contains("timeout 80 fi_pingpong"));
    assert!(s.contains("export PSM2_SDMA=0\n"));
    assert!(valid_setting("PSM2_MTU=4096"));
    assert!(!valid_setting("X=$(reboot)"));
    assert!(!valid_setting("noequals"));
    assert!(k.script_bound_s() + 60 <= DEFAULT_TIMEOUT.as_secs());
}
