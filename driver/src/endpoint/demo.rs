//! The demo workload on one [`Endpoint`], the same for `hfi-sim demo` (in process), the
//! in-process half of `hfi-sim qemu` and `hfi-guest` (a Linux process in the QEMU guest):
//!
//! - [`reuse`]: buffer reuse (osu_bw-like: many receives into a few buffers, round-robin, as
//!   many messages in flight as buffers), every completed payload compared byte for byte with
//!   what the remote sent (`hfi_abi::psm::pattern`);
//! - [`free_in_flight`]: a 2 MiB message whose buffer the application munmaps after two
//!   rendezvous windows landed.
//!
//! What differs between hosts is the process ([`DemoProcess`]: buffers, the munmap and how its
//! invalidations reach the driver) and the clock ([`DemoPacing`]); each host turns the
//! [`Tally`] and the endpoint's counters into its own result row.

use mmu::Contiguity;
use serde::Serialize;

use super::{Endpoint, EndpointError, EndpointHooks, EndpointProcess};
use crate::transport::Transport;
use crate::Policy;

/// Demo parameters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DemoConfig {
    /// Message sizes (bytes), each received `repeats` times.
    pub sizes: Vec<u64>,
    /// Messages per size.
    pub repeats: u32,
    /// Receive buffers reused round-robin (also the number of messages in flight).
    pub buffers: u32,
    /// Seed for buffer layout and payload bytes.
    pub seed: u64,
}

impl Default for DemoConfig {
    /// `hfi-sim demo`'s: four sizes up to 4 MiB, 16 messages each, four buffers.
    fn default() -> Self {
        Self {
            sizes: vec![64 << 10, 256 << 10, 1 << 20, 4 << 20],
            repeats: 16,
            buffers: 4,
            seed: 1,
        }
    }
}

impl DemoConfig {
    /// The QEMU run's (a guest is slow): three sizes up to 1 MiB, 8 messages each, one buffer.
    pub fn small() -> Self {
        Self { sizes: vec![64 << 10, 256 << 10, 1 << 20], repeats: 8, buffers: 1, seed: 1 }
    }
}

/// How a host's clock paces the demo.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DemoPacing {
    /// Budget of each receive loop ([`Endpoint::run`]), ns.
    pub run_budget_ns: u64,
    /// Budget for the first two windows of the message freed in flight, ns.
    pub windows_budget_ns: u64,
    /// Wait after each progress round while the freed message's windows land (`None`: poll
    /// back to back).
    pub pause_ns: Option<u64>,
    /// Progress rounds between the second window and the munmap (in process: the next window
    /// is granted and partly on the wire when the buffer goes).
    pub settle_rounds: u32,
    /// How long a real process waits for the munmap's invalidation to be reported, ms
    /// (caching policies only: `nocache` registers no notifier).
    pub notice_ms: u64,
}

/// The process side of the demo.
pub trait DemoProcess: EndpointProcess + Sized {
    /// Why an operation failed (an endpoint failure among them).
    type Error: From<EndpointError>;
    /// Maps a receive buffer of `len` bytes, with physical layout `layout` where the host
    /// chooses frames (a real process gets what the kernel gives).
    fn alloc(&mut self, len: u64, layout: Contiguity) -> Result<u64, Self::Error>;
    /// True when `[va, va + data.len())` holds `data`.
    fn holds(&self, va: u64, data: &[u8]) -> Result<bool, Self::Error>;
    /// The application munmaps `[va, va + len)`; returns how many invalidations reached the
    /// driver's callback (a real process waits up to `notice_ms` for the first).
    fn free<T: Transport, H: EndpointHooks>(
        ep: &mut Endpoint<T, Self, H>,
        va: u64,
        len: u64,
        notice_ms: u64,
    ) -> Result<usize, Self::Error>;
}

/// What one run received.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// The transport's clock when the first message was requested (after the buffers were
    /// mapped), ns.
    pub start_ns: u64,
    /// Messages completed.
    pub messages: u64,
    /// Payload bytes completed.
    pub bytes: u64,
    /// Failed messages (and why), and failed checks.
    pub failed: Vec<String>,
    /// Every completed payload matched (`None`: nothing compared).
    pub data_ok: Option<bool>,
}

/// Buffer reuse: `repeats` messages of each size into `buffers` buffers, round-robin,
/// `buffers` messages in flight.
pub fn reuse<T: Transport, P: DemoProcess, H: EndpointHooks>(
    ep: &mut Endpoint<T, P, H>,
    cfg: &DemoConfig,
    pacing: &DemoPacing,
) -> Result<Tally, P::Error> {
    let max = cfg.sizes.iter().copied().max().unwrap_or(1 << 20);
    let nbuf = cfg.buffers.max(1);
    let bufs: Vec<u64> = (0..nbuf)
        .map(|i| ep.proc.alloc(max, Contiguity::Random { seed: cfg.seed + u64::from(i) }))
        .collect::<Result<_, _>>()?;
    let mut t = Tally { start_ns: ep.now_ns(), ..Tally::default() };
    let mut msg = 0u32;
    for &size in &cfg.sizes {
        for batch in 0..cfg.repeats.div_ceil(nbuf) {
            let mut sent = Vec::new();
            for (b, &va) in bufs.iter().enumerate() {
                if batch * nbuf + b as u32 >= cfg.repeats {
                    break;
                }
                // The receiver asks for the message through the device (a send request through
                // PIO); the remote sends the agreed pattern.
                ep.request(msg, va, size as u32, cfg.seed as u32)?;
                sent.push((msg, va));
                msg += 1;
            }
            let done = ep.run(pacing.run_budget_ns)?;
            for (id, va) in sent {
                match done.iter().find(|c| c.msg_id == id) {
                    Some(c) if c.ok => {
                        t.messages += 1;
                        t.bytes += size;
                        let want = hfi_abi::psm::pattern(cfg.seed as u32, id, size as usize);
                        let same = ep.proc.holds(va, &want)?;
                        t.data_ok = Some(t.data_ok.unwrap_or(true) && same);
                    }
                    Some(c) => t.failed.push(format!("msg {id}: {}", c.reason)),
                    None => t.failed.push(format!("msg {id}: did not complete")),
                }
            }
        }
    }
    Ok(t)
}

/// A 2 MiB message whose buffer the application frees (munmap) after two windows landed.
/// Whatever happens, the buffer is gone: nothing is compared byte for byte, and a completion
/// is itself a failure (data placed into pages the application had freed).
pub fn free_in_flight<T: Transport, P: DemoProcess, H: EndpointHooks>(
    ep: &mut Endpoint<T, P, H>,
    cfg: &DemoConfig,
    pacing: &DemoPacing,
) -> Result<Tally, P::Error> {
    let len = 2u64 << 20;
    let va = ep.proc.alloc(len, Contiguity::Contiguous)?;
    let mut t = Tally { start_ns: ep.now_ns(), ..Tally::default() };
    ep.request(7, va, len as u32, cfg.seed as u32)?;
    let mut done = Vec::new();
    let deadline = ep.now_ns().saturating_add(pacing.windows_budget_ns);
    let round = |ep: &mut Endpoint<T, P, H>, done: &mut Vec<_>| -> Result<(), P::Error> {
        done.extend(ep.progress()?);
        if let Some(ns) = pacing.pause_ns {
            ep.wait(ns)?;
        }
        Ok(())
    };
    while ep.rx.stats.windows < 2 && ep.rx.pending() > 0 && ep.now_ns() < deadline {
        round(ep, &mut done)?;
    }
    for _ in 0..pacing.settle_rounds {
        round(ep, &mut done)?;
    }
    let caching = ep.tid.policy() != Policy::NoCache;
    let notified = P::free(ep, va, len, if caching { pacing.notice_ms } else { 0 })?;
    if notified == 0 && caching {
        t.failed.push("no invalidation arrived for the munmap".into());
    }
    done.extend(ep.run(pacing.run_budget_ns)?);
    match done.iter().find(|c| c.msg_id == 7) {
        Some(c) if c.ok => {
            t.messages = 1;
            t.bytes = c.bytes;
            t.failed.push("completed into pages the application had freed".into());
        }
        Some(c) => t.failed.push(c.reason.clone()),
        None => t.failed.push("did not complete".into()),
    }
    Ok(t)
}
