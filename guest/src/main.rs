//! `hfi-guest`: runs inside the QEMU guest (as init's test program). Finds the HFI on the PCI
//! bus, binds it to vfio-pci, and runs the demo workload and the cost probes with the real
//! driver, printing `HFI-GUEST` result lines for the host.
//!
//! Usage: `hfi-guest [--sizes 65536,262144] [--repeats N] [--buffers N] [--seed N]
//! [--probe-rounds N] [--bdf DDDD:BB:DD.F]`; `hfi-guest tid-script [DEV]` (the upstream
//! driver's TID ioctls); `hfi-guest sm-bringup [DEV]` (Init → Armed → Active through umad).

use driver::endpoint::demo::DemoConfig;
use driver::Policy;
use guest::workload;
use guest_proto::report;

fn parse_args() -> Result<(DemoConfig, u32, Option<String>), String> {
    let mut w = DemoConfig::small();
    let mut rounds = 200;
    let mut bdf = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or_else(|| format!("{a} needs a value"));
        let num = |s: String| s.parse::<u64>().map_err(|_| format!("{a}: not a number: {s}"));
        match a.as_str() {
            "--sizes" => {
                w.sizes = val()?
                    .split(',')
                    .map(|s| s.parse::<u64>().map_err(|_| format!("--sizes: bad size {s}")))
                    .collect::<Result<_, _>>()?;
                if w.sizes.iter().any(|&s| s == 0 || s > (16 << 20)) {
                    return Err("--sizes: each size must be in 1..=16 MiB".into());
                }
            }
            "--repeats" => w.repeats = num(val()?)?.clamp(1, 10_000) as u32,
            "--buffers" => w.buffers = num(val()?)?.clamp(1, 64) as u32,
            "--seed" => w.seed = num(val()?)?,
            "--probe-rounds" => rounds = num(val()?)?.clamp(1, 100_000) as u32,
            "--bdf" => bdf = Some(val()?),
            _ => return Err(format!("unknown argument {a}")),
        }
    }
    Ok((w, rounds, bdf))
}

/// `hfi-guest tid-script [DEV]`: the differential check's TID script against the upstream
/// hfi1 driver's character device (default `/dev/hfi1_0`).
fn tid_script(dev: &str) -> bool {
    use guest_proto::tidscript::{self, ScriptFd};
    let mut fd = match guest::hfi1_cdev::Hfi1Cdev::open(dev) {
        Ok(f) => f,
        Err(e) => {
            report::line("error", &format!("open/assign {dev}: {e}"));
            return false;
        }
    };
    report::line("hfi1-version", &fd.version);
    match fd.ctxt_info() {
        Ok(ci) => report::line("ctxt-info", &ci),
        Err(e) => {
            report::line("error", &format!("CTXT_INFO: errno {e}"));
            return false;
        }
    }
    let mem = match guest::process::ScriptMem::new() {
        Ok(m) => m,
        Err(e) => {
            report::line("error", &format!("pagemap: {e}"));
            return false;
        }
    };
    let mut target = guest::process::KernelTarget { fd, mem };
    for r in tidscript::run(&tidscript::standard(), &mut target) {
        report::line("tidstep", &r);
    }
    true
}

/// `hfi-guest sm-bringup [DEV]`: a minimal subnet manager takes the local OPA port from Init
/// to Armed and Active through its SMA (umad device, default `/dev/infiniband/umad0`).
fn sm_bringup(dev: &str) -> bool {
    let r = guest::opa_sm::Sm::open(dev).and_then(|mut sm| sm.bring_up());
    match r {
        Ok(rep) => {
            report::line("sm", &rep);
            true
        }
        Err(e) => {
            let mut msg = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg.push_str(&format!(": {s}"));
                src = s.source();
            }
            report::line("error", &format!("sm-bringup: {msg}"));
            false
        }
    }
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("sm-bringup") {
        let ok = sm_bringup(argv.get(2).map_or("/dev/infiniband/umad0", String::as_str));
        report::done(ok);
        std::process::exit(if ok { 0 } else { 1 });
    }
    if argv.get(1).map(String::as_str) == Some("tid-script") {
        let ok = tid_script(argv.get(2).map_or("/dev/hfi1_0", String::as_str));
        report::done(ok);
        std::process::exit(if ok { 0 } else { 1 });
    }
    let (w, rounds, bdf) = match parse_args() {
        Ok(x) => x,
        Err(e) => {
            report::line("error", &e);
            report::done(false);
            std::process::exit(2);
        }
    };
    let bdf = match bdf
        .or_else(|| driver::transport::linux_vfio::find_devices(&[0x24f0]).into_iter().next())
    {
        Some(b) => b,
        None => {
            report::line("error", &"no HFI (8086:24f0) on the PCI bus");
            report::done(false);
            std::process::exit(1);
        }
    };
    report::line("device", &bdf);
    report::line("workload", &w);
    let mut ok = true;
    let fail = |what: &str, e: &dyn std::error::Error| {
        let mut msg = format!("{what}: {e}");
        let mut src = e.source();
        while let Some(s) = src {
            msg.push_str(&format!(": {s}"));
            src = s.source();
        }
        report::line("error", &msg);
    };
    match workload::measure(&bdf, rounds) {
        Ok(c) => report::line("costs", &c),
        Err(e) => {
            ok = false;
            fail("cost probe", &e);
        }
    }
    for p in Policy::ALL {
        match workload::reuse(&bdf, p, &w, "reuse", false) {
            Ok(r) => {
                ok &= r.passed();
                report::line("row", &r);
            }
            Err(e) => {
                ok = false;
                fail(&format!("reuse {}", p.name()), &e);
            }
        }
    }
    match workload::reuse(&bdf, Policy::V2023, &w, "reuse-intr", true) {
        Ok(r) => {
            ok &= r.passed() && r.irq_wakeups > 0;
            report::line("row", &r);
        }
        Err(e) => {
            ok = false;
            fail("reuse-intr v2023", &e);
        }
    }
    for p in Policy::ALL {
        match workload::free_in_flight(&bdf, p, &w) {
            Ok(r) => {
                ok &= r.passed();
                report::line("row", &r);
            }
            Err(e) => {
                ok = false;
                fail(&format!("free-in-flight {}", p.name()), &e);
            }
        }
    }
    report::done(ok);
    if !ok {
        std::process::exit(1);
    }
}
