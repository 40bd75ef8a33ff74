//! Runs a scenario file under each of its policies: buffers, messages in flight, reuse,
//! re-allocation at the same VA, faults at their points; then judges the run by the oracle's
//! verdicts, the byte-by-byte data check, the teardown report and the file's `[expect]` table.

use driver::Policy;
use mmu::Va;
use serde::Serialize;

use crate::harness::scenario::{
    Corruption, Count, Expectation, FaultKind, FaultPoint, Memlock, Reuse, Scenario,
};
use crate::world::link_faults::{self, PacketFault, PacketFaultKind};
use crate::world::node::{Node, NodeConfig, NodeError};
use crate::world::process::MemOp;

/// The verdict of one (scenario, policy) run.
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    /// Scenario name.
    pub scenario: String,
    /// Policy.
    pub policy: &'static str,
    /// Messages posted.
    pub messages: u64,
    /// Messages that completed.
    pub completed: u64,
    /// Messages that failed (faults make this expected).
    pub failed_messages: u64,
    /// Completed messages whose bytes differ from what was sent.
    pub data_mismatches: u64,
    /// Oracle violations (DMA into free, foreign or unpinned pages).
    pub violations: u64,
    /// DMA into freed-but-pinned pages.
    pub dma_to_freed_pinned: u64,
    /// Expected packets with TID errors.
    pub tid_errors: u64,
    /// Teardown left nothing behind.
    pub teardown_clean: bool,
    /// Hash of the DMA stream (determinism).
    pub trace_hash: u64,
    /// Simulated time of the run in microseconds.
    pub sim_us: f64,
    /// Problems: failed expectations, data mismatches, violations (unless expected), leaks.
    pub problems: Vec<String>,
    /// The first oracle verdicts, explained.
    pub evidence: Vec<String>,
    /// Trace events (with `trace`).
    #[serde(skip)]
    pub trace: Vec<crate::world::trace::TraceEvent>,
}

impl RunReport {
    /// True when the run met every check.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Why a scenario could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The node failed.
    #[error("Node failed")]
    Node(#[from] NodeError),
    /// Process memory failed.
    #[error("Process memory failed")]
    Process(#[from] crate::world::process::ProcessError),
    /// The scenario asks for something the runner does not support yet.
    #[error("Unsupported in {scenario}: {what}")]
    Unsupported {
        /// Scenario.
        scenario: String,
        /// What.
        what: String,
    },
}

/// The node configuration of a scenario under `policy`.
pub fn node_config(s: &Scenario, policy: Policy) -> NodeConfig {
    NodeConfig {
        policy,
        mem_mib: u64::from(s.memory.mem_mib),
        memlock: match s.memory.memlock {
            Memlock::Unlimited => None,
            Memlock::Limit(b) => Some(b.bytes()),
        },
        cache_size_mb: u64::from(s.memory.cache_size_mb),
        rndv: s.workload.rndv_config(),
        ..NodeConfig::default()
    }
}

fn mem_op(kind: FaultKind) -> Option<MemOp> {
    match kind {
        FaultKind::Munmap | FaultKind::RemapSameVa => Some(MemOp::Munmap),
        FaultKind::Shrink => Some(MemOp::Shrink),
        FaultKind::Mremap => Some(MemOp::Mremap),
        FaultKind::Madvise => Some(MemOp::Madvise),
        _ => None,
    }
}

fn packet_kind(kind: FaultKind, c: Option<Corruption>) -> Option<PacketFaultKind> {
    Some(match kind {
        FaultKind::DropPacket => PacketFaultKind::Drop,
        FaultKind::DuplicatePacket => PacketFaultKind::Duplicate,
        FaultKind::ReorderPackets => PacketFaultKind::Reorder,
        FaultKind::CorruptKdeth => PacketFaultKind::Corrupt(match c? {
            Corruption::BadTid => link_faults::Corruption::BadTid,
            Corruption::TidCtrl0 => link_faults::Corruption::TidCtrl0,
            Corruption::TidCtrl3 => link_faults::Corruption::TidCtrl3,
            Corruption::OffsetPastEnd => link_faults::Corruption::OffsetPastEnd,
        }),
        _ => return None,
    })
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Marks an injected fault: the oracle's verdicts name it, and the trace shows it.
fn mark<T: driver::transport::Transport>(n: &mut Node<T>, label: String) {
    if let Some(i) = &n.injection {
        *i.borrow_mut() = Some(label.clone());
    }
    if let Some(t) = n.hooks.trace.clone() {
        let now = n.now_ps();
        t.instant("fault", label, now, 0, serde_json::Value::Null);
    }
}

fn fault_label(f: &crate::harness::scenario::Fault) -> String {
    format!("{} at {} of message {}", f.kind.name(), f.at.name(), f.message)
}

/// Runs `s` under `policy`.
pub fn run_one(s: &Scenario, policy: Policy) -> Result<RunReport, RunError> {
    run_traced(s, policy, false)
}

/// Runs `s` under `policy`, optionally recording a trace.
pub fn run_traced(s: &Scenario, policy: Policy, trace: bool) -> Result<RunReport, RunError> {
    let unsupported = |what: String| RunError::Unsupported { scenario: s.name.clone(), what };
    for f in &s.faults {
        let free_point =
            matches!(f.at, FaultPoint::DuringTidFree | FaultPoint::BetweenFreeAndRecheck);
        if free_point && mem_op(f.kind).is_none() {
            return Err(unsupported(format!(
                "{} at {} (only memory operations)",
                f.kind.name(),
                f.at.name()
            )));
        }
    }
    let mut cfg = NodeConfig { trace, ..node_config(s, policy) };
    if s.faults.iter().any(|f| f.kind == FaultKind::InterruptLost) {
        // A scenario about lost interrupts runs the receive side interrupt-driven: RcvAvail on
        // every RHQ entry, with the RcvAvailTimeOut timer (≈ 0.8 µs) behind it.
        cfg.ctxt.intr = true;
        cfg.ctxt.intr_count = 1;
        cfg.ctxt.intr_timeout = 10;
    }
    let mut n = Node::new(&cfg)?;
    let len = s.workload.buffer_size.bytes();
    let bufs: Vec<Va> = (0..s.workload.buffers)
        .map(|i| n.alloc(len, s.memory.contiguity.to_mmu(s.seed.wrapping_add(u64::from(i)))))
        .collect::<Result<_, _>>()?;
    let sizes: Vec<u64> = s.workload.message_sizes().map(|b| b.bytes()).collect();
    let seed = s.seed as u32;
    let mut rng = Rng(s.seed);
    let t0 = n.now_ps();
    let mut rep = RunReport {
        scenario: s.name.clone(),
        policy: policy.name(),
        messages: sizes.len() as u64,
        completed: 0,
        failed_messages: 0,
        data_mismatches: 0,
        violations: 0,
        dma_to_freed_pinned: 0,
        tid_errors: 0,
        teardown_clean: false,
        trace_hash: 0,
        sim_us: 0.0,
        problems: vec![],
        evidence: vec![],
        trace: vec![],
    };
    let in_flight = s.workload.in_flight().max(1) as usize;
    let mut next = 0usize;
    let mut rr = 0usize;
    while next < sizes.len() {
        let batch_end = (next + in_flight).min(sizes.len());
        let mut posted = Vec::new();
        // Messages in flight together go to distinct buffers.
        let mut free_bufs: Vec<usize> = (0..bufs.len()).collect();
        for k in next..batch_end {
            let msg = k as u32;
            if s.workload.realloc_every > 0
                && k > 0
                && k as u64 % u64::from(s.workload.realloc_every) == 0
                && k == next
            {
                for &va in &bufs {
                    n.munmap(va, len)?;
                    n.proc.mmap_fixed(va, len, s.memory.contiguity.to_mmu(rng.next()))?;
                }
            }
            for f in s.faults.iter().filter(|f| f.message == k as u64) {
                mark(&mut n, fault_label(f));
                let b = f.buffer.and_then(|b| bufs.get(b as usize).copied());
                match (f.at, mem_op(f.kind), b) {
                    (FaultPoint::BetweenMessages, Some(op), Some(va)) => {
                        n.mem_op(va, len, op)?;
                        if op != MemOp::Madvise {
                            // The application allocates again at the same VA (other frames).
                            if n.proc.space.is_mapped(va) {
                                n.munmap(va, len)?;
                            }
                            n.proc.mmap_fixed(va, len, s.memory.contiguity.to_mmu(rng.next()))?;
                        }
                    }
                    (FaultPoint::AfterPin, Some(op), Some(va)) => {
                        n.proc.after_pin = Some((va, len, op))
                    }
                    (
                        FaultPoint::DuringTidFree | FaultPoint::BetweenFreeAndRecheck,
                        Some(op),
                        Some(va),
                    ) => {
                        use crate::world::process::{FreePathHook, FreeStage};
                        let stage = if f.at == FaultPoint::DuringTidFree {
                            FreeStage::During
                        } else {
                            FreeStage::After
                        };
                        n.proc.free_fault = Some((va, len, op));
                        let queue = n.proc.free_queue.clone();
                        let hook = FreePathHook { queue, stage, delivered: Default::default() };
                        n.tid.set_free_hook(Some(Box::new(hook)));
                    }
                    _ => {}
                }
                if let Some(kind) = packet_kind(f.kind, f.corrupt) {
                    let skip =
                        if f.at == FaultPoint::AfterPackets { f.packets.unwrap_or(0) } else { 0 };
                    n.world().link_faults.push(PacketFault::new(msg, skip, f.count(), kind));
                }
                match f.kind {
                    FaultKind::MemlockExhaust if f.at == FaultPoint::AfterPin => {
                        n.proc.exhaust_memlock_after_pin = true;
                    }
                    FaultKind::MemlockExhaust => {
                        let pinned = n.proc.space.pinned_vm().max(0) as u64;
                        n.proc.space.set_rlimit_memlock(Some(pinned * mmu::PAGE_SIZE));
                    }
                    FaultKind::RcvarrayWriteLost => n.hfi.transport().lose_rcvarray_writes += 1,
                    FaultKind::InterruptLost => n.world().lose_interrupts += 1,
                    _ => {}
                }
            }
            let pick = match s.workload.reuse {
                Reuse::RoundRobin => {
                    rr += 1;
                    let want = (rr - 1) % bufs.len();
                    free_bufs.iter().position(|&b| b == want).unwrap_or(0)
                }
                Reuse::Random => (rng.next() % free_bufs.len().max(1) as u64) as usize,
            };
            if free_bufs.is_empty() {
                break;
            }
            let buf = free_bufs.remove(pick.min(free_bufs.len() - 1));
            let Some(&va) = bufs.get(buf) else { continue };
            let size = sizes.get(k).copied().unwrap_or(0);
            n.request(msg, va, size as u32, seed)?;
            posted.push((msg, va, size));
            // In-flight memory faults of this message.
            for f in s.faults.iter().filter(|f| f.message == k as u64) {
                let (Some(op), Some(fva)) =
                    (mem_op(f.kind), f.buffer.and_then(|b| bufs.get(b as usize).copied()))
                else {
                    continue;
                };
                match f.at {
                    FaultPoint::BeforeFirstPacket => {
                        n.run_until_granted(msg, 50_000_000)?;
                        mark(&mut n, format!("{} (fired)", fault_label(f)));
                        n.mem_op(fva, len, op)?;
                    }
                    FaultPoint::AfterPackets => {
                        n.run_until_packets(msg, f.packets.unwrap_or(0) as usize, 50_000_000)?;
                        mark(&mut n, format!("{} (fired)", fault_label(f)));
                        n.mem_op(fva, len, op)?;
                    }
                    _ => {}
                }
            }
        }
        let done = n.run(200_000_000)?;
        for (msg, va, size) in posted {
            match done.iter().find(|c| c.msg_id == msg) {
                Some(c) if c.ok => {
                    rep.completed += 1;
                    // The application reads its buffer: pages dropped by madvise fault in anew.
                    let _ = n.proc.space.touch(va, size);
                    let live = n.proc.read(va, size as usize).ok();
                    if live.is_none_or(|d| d != hfi_abi::psm::pattern(seed, msg, size as usize)) {
                        rep.data_mismatches += 1;
                    }
                }
                _ => rep.failed_messages += 1,
            }
        }
        // Re-map buffers a fault unmapped (wholly or partly), so later messages have somewhere
        // to go.
        for &va in &bufs {
            let last = Va(va.0 + len - mmu::PAGE_SIZE);
            if !n.proc.space.is_mapped(va) || !n.proc.space.is_mapped(last) {
                if n.proc.space.is_mapped(va) {
                    n.munmap(va, len / 2)?;
                }
                n.proc.mmap_fixed(va, len, s.memory.contiguity.to_mmu(rng.next()))?;
            }
        }
        next = batch_end;
    }
    if n.proc.free_fault.is_some() {
        rep.problems
            .push("a TID_FREE fault never fired (no TID was freed after it was armed)".into());
    }
    if n.proc.after_pin.is_some() || n.proc.exhaust_memlock_after_pin {
        rep.problems.push("an after-pin fault never fired (no TID_UPDATE pinned its range)".into());
    }
    if n.world().lose_interrupts > 0 {
        rep.problems
            .push("an interrupt-lost fault never fired (no interrupt after it was armed)".into());
    }
    if n.hfi.transport().lose_rcvarray_writes > 0 {
        rep.problems
            .push("an rcvarray-write-lost fault never fired (nothing was programmed)".into());
    }
    rep.sim_us = n.now_ps().saturating_sub(t0) as f64 / 1e6;
    let d = n.dma.as_ref().map(|d| *d.borrow()).unwrap_or_default();
    rep.violations = d.to_free + d.to_other_owner + d.to_unpinned;
    rep.dma_to_freed_pinned = d.to_orphan;
    rep.trace_hash = d.trace_hash;
    rep.tid_errors = n.rx.stats.tid_errors;
    if let Some(v) = &n.verdicts {
        rep.evidence = v
            .borrow()
            .iter()
            .filter(|v| v.kind.is_violation())
            .take(3)
            .map(|v| v.detail.clone())
            .collect();
    }
    if let Some(t) = &n.hooks.trace {
        rep.trace = t.events();
    }
    n.close()?;
    let t = n.teardown_report();
    rep.teardown_clean = t.is_clean();
    if !rep.teardown_clean {
        rep.problems.push(format!("teardown left {t:?}"));
    }
    judge(s, policy, &mut rep);
    Ok(rep)
}

fn check(rep: &mut RunReport, key: &str, want: Option<Count>, default: Option<Count>, got: u64) {
    if let Some(c) = want.or(default) {
        if !c.matches(got) {
            rep.problems.push(format!("{key}: expected {c}, observed {got}"));
        }
    }
}

fn judge(s: &Scenario, policy: Policy, rep: &mut RunReport) {
    let e: Expectation = s.expect.get(policy).cloned().unwrap_or_default();
    let (v, t, f, o) =
        (rep.violations, rep.tid_errors, rep.failed_messages, rep.dma_to_freed_pinned);
    check(rep, "violations", e.violations, Some(Count::Zero), v);
    check(rep, "tid_errors", e.tid_errors, None, t);
    check(
        rep,
        "failed_messages",
        e.failed_messages,
        if s.faults.is_empty() { Some(Count::Zero) } else { None },
        f,
    );
    check(rep, "dma_to_freed_pinned", e.dma_to_freed_pinned, None, o);
    let m = rep.data_mismatches;
    check(rep, "data_mismatches", e.data_mismatches, Some(Count::Zero), m);
}

/// Runs every policy of every scenario, `jobs` at a time.
pub fn run_all(scenarios: &[Scenario], jobs: usize) -> Vec<Result<RunReport, String>> {
    run_all_traced(scenarios, jobs, false)
}

/// As [`run_all`], recording traces when `trace` is set.
pub fn run_all_traced(
    scenarios: &[Scenario],
    jobs: usize,
    trace: bool,
) -> Vec<Result<RunReport, String>> {
    let work: Vec<(usize, &Scenario, Policy)> = scenarios
        .iter()
        .flat_map(|s| s.policies.iter().map(move |&p| (s, p)))
        .enumerate()
        .map(|(i, (s, p))| (i, s, p))
        .collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|sc| {
        for _ in 0..jobs.max(1) {
            sc.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(&(idx, s, p)) = work.get(i) else { break };
                let r = run_traced(s, p, trace)
                    .map_err(|e| format!("{} [{}]: {e} ({e:?})", s.name, p.name()));
                if let Ok(mut v) = results.lock() {
                    v.push((idx, r));
                }
            });
        }
    });
    let mut v = results.into_inner().unwrap_or_default();
    v.sort_by_key(|(i, _)| *i);
    v.into_iter().map(|(_, r)| r).collect()
}

/// The reports as a table.
pub fn table(rows: &[Result<RunReport, String>]) -> String {
    let mut s = format!(
        "{:<28} {:<8} {:>5} {:>5} {:>5} {:>6} {:>6} {:>8} {:<8} {:<16} {}\n",
        "scenario",
        "policy",
        "msgs",
        "done",
        "fail",
        "viol",
        "tiderr",
        "dma>frd",
        "teardown",
        "trace",
        "verdict"
    );
    for r in rows {
        match r {
            Ok(r) => {
                s.push_str(&format!(
                    "{:<28} {:<8} {:>5} {:>5} {:>5} {:>6} {:>6} {:>8} {:<8} {:016x} {}\n",
                    r.scenario,
                    r.policy,
                    r.messages,
                    r.completed,
                    r.failed_messages,
                    r.violations,
                    r.tid_errors,
                    r.dma_to_freed_pinned,
                    if r.teardown_clean { "clean" } else { "LEAK" },
                    r.trace_hash,
                    if r.ok() {
                        "PASS".to_string()
                    } else {
                        format!("FAIL: {}", r.problems.join("; "))
                    }
                ));
                for e in r.evidence.iter().filter(|_| !r.ok()) {
                    s.push_str(&format!("    evidence: {e}\n"));
                }
            }
            Err(e) => s.push_str(&format!("ERROR {e}\n")),
        }
    }
    s
}
