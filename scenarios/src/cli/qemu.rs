//! `hfi-sim qemu [--cache DIR] [--guest-bin FILE] [--out DIR] [--timeout S] [--accel kvm|tcg]
//! [--sizes A,B,..] [--repeats N] [--buffers N] [--kernel-driver | --psm2] [--verbose]`: the
//! driver in a QEMU guest against the served model, or (`--kernel-driver`) the upstream hfi1.ko
//! with the differential check of its TID caching, or (`--psm2`) Debian's PSM2 and libfabric
//! over hfi1.ko (the discovery run, `docs/qemu.md`).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::say;
use crate::qemu::{self, kdrv, psm2, QemuOptions};

/// Flags of `hfi-sim qemu`.
#[derive(Clone, Debug, Args)]
#[command(args_override_self = true)]
pub struct QemuArgs {
    /// The setup cache of `tools/qemu/setup.sh` (default: the repository's `.cache/qemu`).
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// A prebuilt static `hfi-guest` (built when not given).
    #[arg(long, value_name = "FILE")]
    pub guest_bin: Option<PathBuf>,
    /// Work directory: socket, image, logs, the JSON report (default `out/qemu`, or
    /// `out/qemu-kdrv` with `--kernel-driver`).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Whole-run deadline for QEMU in seconds (default 240, or 300 with `--kernel-driver`).
    #[arg(long, value_name = "S")]
    pub timeout: Option<u64>,
    /// Accelerator (default: KVM when it works here).
    #[arg(long, value_parser = ["kvm", "tcg"])]
    pub accel: Option<String>,
    /// Message sizes of the guest workload in bytes, each in 1..=16 MiB.
    #[arg(long, value_name = "A,B,..", value_parser = parse_sizes)]
    pub sizes: Option<Sizes>,
    /// Messages per size (clamped to 1..=10000).
    #[arg(long, value_name = "N")]
    pub repeats: Option<u64>,
    /// Buffers reused (clamped to 1..=64).
    #[arg(long, value_name = "N")]
    pub buffers: Option<u64>,
    /// Boot the upstream hfi1.ko instead (tier B, and the TID script's differential check).
    #[arg(long, conflicts_with = "psm2")]
    pub kernel_driver: bool,
    /// Run Debian's PSM2 and libfabric (`fi_info`, `fi_pingpong -p psm2`) over hfi1.ko in the
    /// guest and report how far they get (default work dir `out/qemu-psm2`, deadline 480 s).
    #[arg(long)]
    pub psm2: bool,
    /// Echo every console line, not only the result lines.
    #[arg(long)]
    pub verbose: bool,
}

/// The message sizes of `--sizes`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sizes(pub Vec<u64>);

/// `A,B,..`: a non-empty list of sizes in bytes, each in `1..=16 MiB`.
pub fn parse_sizes(v: &str) -> Result<Sizes, String> {
    let sizes = v
        .split(',')
        .map(|s| s.parse::<u64>().map_err(|_| format!("not a number: {s}")))
        .collect::<Result<Vec<_>, _>>()?;
    if sizes.is_empty() || sizes.iter().any(|&s| s == 0 || s > 16 << 20) {
        return Err("each size must be in 1..=16 MiB".into());
    }
    Ok(Sizes(sizes))
}

impl QemuArgs {
    /// The run's options (the defaults of the chosen run where a flag is absent).
    pub fn options(&self) -> QemuOptions {
        let mut o = QemuOptions::new();
        if self.kernel_driver {
            o.work = kdrv::default_work();
            o.timeout = kdrv::DEFAULT_TIMEOUT;
        }
        if self.psm2 {
            o.work = psm2::default_work();
            o.timeout = psm2::DEFAULT_TIMEOUT;
        }
        if let Some(c) = &self.cache {
            o.cache = c.clone();
        }
        o.guest_bin = self.guest_bin.clone();
        if let Some(w) = &self.out {
            o.work = w.clone();
        }
        if let Some(t) = self.timeout {
            o.timeout = Duration::from_secs(t.max(1));
        }
        if let Some(a) = &self.accel {
            o.accel = Some(a.clone());
        }
        if let Some(Sizes(s)) = &self.sizes {
            o.sizes = s.clone();
        }
        if let Some(r) = self.repeats {
            o.repeats = r.clamp(1, 10_000) as u32;
        }
        if let Some(b) = self.buffers {
            o.buffers = b.clamp(1, 64) as u32;
        }
        o.verbose = self.verbose;
        o
    }

    /// Runs QEMU; fails on any failed check.
    pub fn run(self) -> Result<bool, String> {
        let o = self.options();
        let mut stdout = std::io::stdout();
        if self.psm2 {
            let r = psm2::run(&o, &mut stdout)?;
            say(&psm2::summary(&r));
            return Ok(r.failures.is_empty());
        }
        if self.kernel_driver {
            let r = kdrv::run(&o, &mut stdout)?;
            say(&kdrv::summary(&r));
            return Ok(r.failures.is_empty());
        }
        let r = qemu::run(&o, &mut stdout)?;
        say(&qemu::run::summary(&r));
        Ok(r.passed())
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn parse(args: &[&str]) -> Result<QemuArgs, clap::Error> {
        let argv = ["hfi-sim", "qemu"].iter().chain(args).copied();
        match Cli::try_parse_from(argv)?.command {
            Command::Qemu(a) => Ok(a),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn defaults_follow_the_chosen_run() {
        let o = parse(&[]).unwrap().options();
        assert_eq!((o.work, o.timeout), (PathBuf::from("out/qemu"), Duration::from_secs(240)));
        let o = parse(&["--kernel-driver"]).unwrap().options();
        assert_eq!((o.work, o.timeout), (kdrv::default_work(), kdrv::DEFAULT_TIMEOUT));
        let o = parse(&["--psm2"]).unwrap().options();
        assert_eq!((o.work, o.timeout), (psm2::default_work(), psm2::DEFAULT_TIMEOUT));
        assert!(parse(&["--psm2", "--kernel-driver"]).is_err());
        let o = parse(&["--out", "x", "--kernel-driver", "--timeout", "0"]).unwrap().options();
        assert_eq!((o.work, o.timeout), (PathBuf::from("x"), Duration::from_secs(1)));
    }

    #[test]
    fn values_are_checked_and_clamped() {
        let o = parse(&["--sizes", "4096,65536", "--repeats", "0", "--buffers", "99"]).unwrap();
        let o = o.options();
        assert_eq!((o.sizes, o.repeats, o.buffers), (vec![4096, 65536], 1, 64));
        for bad in
            [["--sizes", "0"], ["--sizes", "16777217"], ["--sizes", "1,x"], ["--accel", "hvf"]]
        {
            assert_eq!(parse(&bad).unwrap_err().exit_code(), 2, "{bad:?}");
        }
        assert_eq!(parse(&["--accel", "tcg"]).unwrap().options().accel.as_deref(), Some("tcg"));
        // The last of a repeated flag wins.
        let o = parse(&["--sizes", "1", "--sizes", "2"]).unwrap().options();
        assert_eq!(o.sizes, vec![2]);
    }
}
