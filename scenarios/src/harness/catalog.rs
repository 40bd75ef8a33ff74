//! The historical-bug catalog: every hfi1 fix of facts §6.8 (and PSM2's "free, then re-check the
//! event word" ordering) can be re-introduced behind a named switch
//! (`driver::tid::BugSwitches`, `driver::user::BugSwitches`). Each entry names the probe
//! scenario that must catch it; the catalog runs every probe with the switch off (the correct
//! driver: no finding allowed) and on (at least one finding required) and reports the first
//! evidence.

use driver::put_tid::RecordingWriter;
use driver::tid::standalone::KernelSide;
use driver::tid::{BugSwitches, TidConfig};
use driver::user::model_fd::ModelFd;
use driver::user::TidCache;
use driver::{Errno, HfiFd, Policy};
use hfi_abi::TidInfo;
use mmu::{Contiguity, PinDma, Va, PAGE_SIZE};
use serde::Serialize;

/// One catalog entry.
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    /// Switch name.
    pub bug: &'static str,
    /// The fix it undoes.
    pub fix: &'static str,
    /// The probe scenario that must catch it.
    pub scenario: &'static str,
    probe: fn(bool) -> Vec<String>,
}

/// One row of the catalog report.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// Switch name.
    pub bug: &'static str,
    /// The fix it undoes.
    pub fix: &'static str,
    /// Probe scenario.
    pub scenario: &'static str,
    /// The bug was caught (findings with the switch on).
    pub caught: bool,
    /// Findings with the switch off (false positives; must be empty).
    pub false_positives: Vec<String>,
    /// First evidence with the switch on.
    pub evidence: String,
}

fn rig(policy: Policy, bugs: BugSwitches, expected: u32, subctxts: u32) -> Option<KernelSide> {
    KernelSide::new(TidConfig::new(policy).with_bugs(bugs), expected, subctxts, 4096).ok()
}

fn on(bug: bool, set: impl FnOnce(&mut BugSwitches)) -> BugSwitches {
    let mut b = BugSwitches::NONE;
    if bug {
        set(&mut b);
    }
    b
}

fn probe_pinned_count(bug: bool) -> Vec<String> {
    let Some(mut r) = rig(Policy::V2023, on(bug, |b| b.pinned_count_npages = true), 256, 1) else {
        return vec!["rig setup failed".into()];
    };
    let va = r.mmap(16, Contiguity::Contiguous);
    // Unmap the upper half: TID_UPDATE of 16 pages pins only 8 (partial pin).
    let _ = r.munmap(Va(va.0 + 8 * PAGE_SIZE), 8 * PAGE_SIZE);
    let mut out = vec![];
    if let Ok(u) = r.update(0, va, (16 * PAGE_SIZE) as u32) {
        let _ = r.free(0, &u.tidlist);
    }
    let n = r.ctx.tid_n_pinned(0);
    if n != 0 {
        out.push(format!("tid_n_pinned is {n} pages after every TID was freed (partial pin counted as requested)"));
    }
    out
}

fn probe_copyout(bug: bool) -> Vec<String> {
    let Some(mut r) = rig(Policy::V2023, on(bug, |b| b.copyout_bad_clear = true), 256, 1) else {
        return vec!["rig setup failed".into()];
    };
    let va = r.mmap(8, Contiguity::Scattered);
    r.ctx.fail_next_copyout(0);
    let res = r.update(0, va, (8 * PAGE_SIZE) as u32);
    let mut out = vec![];
    if res != Err(Errno::Fault) {
        out.push(format!("failed copy-out returned {res:?}, not EFAULT"));
    }
    let pins = r.space().total_pins();
    let used = r.ctx.tid_used(0);
    if pins != 0 || used != 0 {
        out.push(format!(
            "after a failed copy-out {pins} pages stay pinned and {used} TIDs stay used"
        ));
    }
    out
}

fn probe_unaligned(bug: bool) -> Vec<String> {
    let Some(mut r) = rig(Policy::V2023, on(bug, |b| b.allow_unaligned_vaddr = true), 256, 1)
    else {
        return vec!["rig setup failed".into()];
    };
    let va = r.mmap(4, Contiguity::Contiguous);
    match r.update(0, Va(va.0 + 8), (2 * PAGE_SIZE) as u32) {
        Err(Errno::Inval) => vec![],
        other => vec![format!("TID_UPDATE of an unaligned vaddr returned {other:?}, not EINVAL")],
    }
}

fn probe_zero_length(bug: bool) -> Vec<String> {
    let Some(mut r) = rig(Policy::V2023, on(bug, |b| b.allow_zero_length = true), 256, 1) else {
        return vec!["rig setup failed".into()];
    };
    let va = r.mmap(4, Contiguity::Contiguous);
    match r.update(0, va, 0) {
        Err(Errno::Inval) => vec![],
        other => vec![format!("TID_UPDATE of length 0 returned {other:?}, not EINVAL")],
    }
}

fn probe_reservation(bug: bool) -> Vec<String> {
    // 64 expected entries, 2 subcontexts: tid_limit 32 per fd. Two setups of 32 one-page TIDs
    // on fd 0 run concurrently (begin, begin, finish, finish).
    let Some(mut r) = rig(Policy::V2023, on(bug, |b| b.no_tid_reservation = true), 64, 2) else {
        return vec!["rig setup failed".into()];
    };
    let a = r.mmap(32, Contiguity::Scattered);
    let b = r.mmap(32, Contiguity::Scattered);
    let pa = r.update_begin(0, a, (32 * PAGE_SIZE) as u32);
    let pb = r.update_begin(0, b, (32 * PAGE_SIZE) as u32);
    for p in [pa, pb].into_iter().flatten() {
        let _ = r.update_finish(p);
    }
    let used = r.ctx.tid_used(0);
    let limit = r.ctx.ctxt_info(0).tid_limit;
    if used > limit {
        vec![format!("fd 0 holds {used} TIDs, over its tid_limit of {limit}")]
    } else {
        vec![]
    }
}

fn probe_setup_error_exit(bug: bool) -> Vec<String> {
    let Some(mut r) = rig(Policy::V2023, on(bug, |b| b.setup_error_exit = true), 256, 1) else {
        return vec!["rig setup failed".into()];
    };
    let va = r.mmap(4, Contiguity::Contiguous);
    r.mm.pin_cap = Some(0);
    match r.update(0, va, (4 * PAGE_SIZE) as u32) {
        Err(Errno::NoSpc) => vec![],
        other => vec![format!("TID_UPDATE with nothing pinned returned {other:?}, not ENOSPC")],
    }
}

fn probe_immediate_removal(bug: bool) -> Vec<String> {
    let Some(mut r) = rig(Policy::V2023, on(bug, |b| b.lazy_invalidate = true), 256, 1) else {
        return vec!["rig setup failed".into()];
    };
    let va = r.mmap(8, Contiguity::Contiguous);
    let Ok(u) = r.update(0, va, (8 * PAGE_SIZE) as u32) else {
        return vec!["setup failed".into()];
    };
    let _ = r.munmap(va, 8 * PAGE_SIZE);
    let live = programmed(&r.hw, &r);
    let mut out = vec![];
    if live > 0 {
        out.push(format!("{live} RcvArray entries still valid after the buffer was unmapped (DMA would land in freed pages)"));
    }
    if r.space().total_pins() > 0 {
        out.push(format!("{} pages still pinned after the UNMAP callback", r.space().total_pins()));
    }
    let _ = r.free(0, &u.tidlist);
    out
}

fn programmed(hw: &RecordingWriter, r: &KernelSide) -> usize {
    let base = r.ctx.expected_base();
    (base..base + r.ctx.expected_count()).filter(|&i| hw.entry(i).is_some()).count()
}

fn probe_cover(bug: bool) -> Vec<String> {
    let Some(mut r) = rig(Policy::V2023, on(bug, |b| b.no_cover_notifier = true), 256, 1) else {
        return vec!["rig setup failed".into()];
    };
    let va = r.mmap(8, Contiguity::Contiguous);
    // The application unmaps the buffer right after the driver pinned it.
    r.mm.after_pin =
        Some(Box::new(move |space: &mut mmu::AddressSpace, _va, _pfns: &[mmu::Pfn]| {
            let _ = space.munmap_with(va, 8 * PAGE_SIZE, |_, _| {});
        }));
    let res = r.update(0, va, (8 * PAGE_SIZE) as u32);
    let mut out = vec![];
    match &res {
        Err(Errno::Busy) => {}
        other => out.push(format!("TID_UPDATE racing an munmap returned {other:?}, not EBUSY")),
    }
    let live = programmed(&r.hw, &r);
    if live > 0 {
        out.push(format!("{live} RcvArray entries point at pages the process no longer maps"));
    }
    if let Ok(u) = res {
        let _ = r.free(0, &u.tidlist);
    }
    out
}

fn probe_validity(bug: bool) -> Vec<String> {
    let Some(mut r) = rig(Policy::V2023, on(bug, |b| b.weak_tid_validity = true), 256, 1) else {
        return vec!["rig setup failed".into()];
    };
    let va = r.mmap(2, Contiguity::Scattered);
    let Ok(u) = r.update(0, va, (2 * PAGE_SIZE) as u32) else {
        return vec!["setup failed".into()];
    };
    let mut out = vec![];
    // TIDCtrl 0 names no entry: EINVAL.
    let Some(t) = u.tidlist.get(1) else { return vec!["setup gave one TID".into()] };
    let bad = TidInfo(hfi_abi::tidinfo::EXP_TID_CTRL.set(t.raw(), 0));
    match r.free(0, &[bad]) {
        Err(Errno::Inval) => {}
        other => {
            out.push(format!("TID_FREE of a TIDCtrl-0 tidinfo returned {other:?}, not EINVAL"))
        }
    }
    if r.ctx.tid_used(0) != 2 {
        out.push(format!(
            "a TID the caller did not name was freed ({} left of 2)",
            r.ctx.tid_used(0)
        ));
    }
    let _ = r.free(0, &u.tidlist);
    out
}

fn probe_pin_limit(bug: bool) -> Vec<String> {
    // hfi1 `cache_size` = 1 MiB (256 pages); the process has CAP_IPC_LOCK. The 2016 arithmetic
    // let CAP_IPC_LOCK bypass everything, the cache-size cap included; 2023 always applies it.
    let mut cfg = TidConfig::new(Policy::V2023).with_bugs(on(bug, |b| b.pin_limit_2016 = true));
    cfg.cache_size_mb = 1;
    let Ok(mut r) = KernelSide::new(cfg, 512, 1, 4096) else {
        return vec!["rig setup failed".into()];
    };
    r.space_mut().set_cap_ipc_lock(true);
    let va = r.mmap(384, Contiguity::Contiguous);
    let _ = r.update(0, va, (384 * PAGE_SIZE) as u32);
    let pinned = r.mm.pinned_vm();
    if pinned > 256 {
        vec![format!(
            "{pinned} pages pinned past hfi1 cache_size (256 pages): CAP_IPC_LOCK bypassed the cap"
        )]
    } else {
        vec![]
    }
}

fn probe_psm_recheck(bug: bool) -> Vec<String> {
    const BASE: u64 = 0x1000_0000;
    let page = |n: u64| BASE + n * PAGE_SIZE;
    let mut fd = ModelFd::new(2);
    let bugs = driver::user::BugSwitches { skip_recheck_after_free: bug };
    let mut cache = TidCache::with_bugs(fd.ctxt_info(), bugs);
    for p in [10, 1] {
        if let Ok(a) = cache.acquire(&mut fd, page(p), PAGE_SIZE as u32) {
            let _ = cache.release(&mut fd, &a);
        }
    }
    // The kernel invalidates page 1's TID while the cache frees its LRU victim to make room.
    fd.invalidate_on_next_free(page(1), PAGE_SIZE);
    match cache.acquire(&mut fd, page(0), 2 * PAGE_SIZE as u32) {
        Ok(a) => a
            .tids
            .iter()
            .filter(|t| !fd.is_valid(**t))
            .map(|t| {
                format!("acquire handed out TID {:#x}, which the kernel had invalidated", t.raw())
            })
            .collect(),
        Err(e) => vec![format!("acquire failed: {e}")],
    }
}

/// The catalog.
pub const ENTRIES: [Entry; 11] = [
    Entry {
        bug: "pinned_count_npages",
        fix: "2016: tid_n_pinned counts pages pinned, not requested",
        scenario: "probe/partial-pin-then-free",
        probe: probe_pinned_count,
    },
    Entry {
        bug: "copyout_bad_clear",
        fix: "2023 Restore allocated resources on failed copyout",
        scenario: "probe/copyout-failure",
        probe: probe_copyout,
    },
    Entry {
        bug: "allow_unaligned_vaddr",
        fix: "97736f36dbeb Validate page aligned for a given virtual address",
        scenario: "probe/unaligned-vaddr",
        probe: probe_unaligned,
    },
    Entry {
        bug: "allow_zero_length",
        fix: "2023 Reject a zero-length user expected buffer",
        scenario: "probe/zero-length",
        probe: probe_zero_length,
    },
    Entry {
        bug: "no_tid_reservation",
        fix: "2023 Reserve user expected TIDs",
        scenario: "probe/concurrent-setups",
        probe: probe_reservation,
    },
    Entry {
        bug: "setup_error_exit",
        fix: "2023 Fix expected receive setup error exit issues",
        scenario: "probe/nothing-pinned",
        probe: probe_setup_error_exit,
    },
    Entry {
        bug: "lazy_invalidate",
        fix: "1c7edde1b572 Immediately remove invalid memory from hardware",
        scenario: "probe/munmap-registered",
        probe: probe_immediate_removal,
    },
    Entry {
        bug: "no_cover_notifier",
        fix: "b3deec25847b Remove user expected buffer invalidate race",
        scenario: "probe/munmap-after-pin",
        probe: probe_cover,
    },
    Entry {
        bug: "weak_tid_validity",
        fix: "2023 Improve TID validity checking",
        scenario: "probe/free-tidctrl-0",
        probe: probe_validity,
    },
    Entry {
        bug: "pin_limit_2016",
        fix: "a0d198f79a8d Fix arithmetic and logic errors in hfi1_can_pin_pages",
        scenario: "probe/cap-ipc-lock-cache-cap",
        probe: probe_pin_limit,
    },
    Entry {
        bug: "psm:skip_recheck_after_free",
        fix: "PSM2 ips_tidcache: TID_FREE, then re-check the event word",
        scenario: "probe/invalidate-during-evict",
        probe: probe_psm_recheck,
    },
];

/// Runs every entry: off (must be clean) and on (must be caught).
pub fn run() -> Vec<Row> {
    ENTRIES
        .iter()
        .map(|e| {
            let false_positives = (e.probe)(false);
            let found = (e.probe)(true);
            Row {
                bug: e.bug,
                fix: e.fix,
                scenario: e.scenario,
                caught: !found.is_empty(),
                false_positives,
                evidence: found.into_iter().next().unwrap_or_default(),
            }
        })
        .collect()
}

/// The report as a table.
pub fn table(rows: &[Row]) -> String {
    let mut s = format!("{:<28} {:<30} {:<7} {}\n", "bug", "scenario", "caught", "first evidence");
    for r in rows {
        s.push_str(&format!(
            "{:<28} {:<30} {:<7} {}\n",
            r.bug,
            r.scenario,
            if r.caught { "yes" } else { "NO" },
            r.evidence
        ));
        for fp in &r.false_positives {
            s.push_str(&format!("{:<28} FALSE POSITIVE with the correct driver: {fp}\n", ""));
        }
    }
    s
}
