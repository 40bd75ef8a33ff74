//! The differential check: the TID script the guest ran against the upstream hfi1 driver,
//! replayed through our kernel-side TID code (policy `v2023`: Debian's 6.1.192 `hfi1.ko`
//! carries the 2023 fixes — its symbol table has `tid_cover_invalidate` and
//! `__clear_tid_node`) on a simulated process whose buffers have the guest's physical page
//! layout (the same runs of contiguous frames), then compared step by step.

use std::collections::{BTreeMap, VecDeque};

use driver::tid::test_utils::TidRig;
use driver::tid::TidConfig;
use driver::{HfiFd, Policy};
use guest::tidscript::{self, ScriptCtxtInfo, ScriptFd, ScriptMemory, Step, StepResult};
use hfi_abi::TidInfo;
use mmu::{Contiguity, Va, PAGE_SIZE};
use serde::Serialize;

/// Where replayed buffers are placed, and their spacers (one page each, far away, so that
/// consecutive runs are never physically adjacent).
const BUF_BASE: u64 = 0x7f00_0000_0000;
const SPACER_BASE: u64 = 0x6f00_0000_0000;

/// Runs of consecutive ascending frames in `frames` (frame 0 = unknown, a run of its own).
pub fn runs(frames: &[u64]) -> Vec<u64> {
    let mut out: Vec<u64> = Vec::new();
    let mut prev: Option<u64> = None;
    for &f in frames {
        match (prev, out.last_mut()) {
            (Some(p), Some(n)) if f != 0 && p != 0 && f == p + 1 => *n += 1,
            _ => out.push(1),
        }
        prev = Some(f);
    }
    out
}

/// Our driver on a simulated process shaped like the guest's.
#[derive(Debug)]
pub struct Replay {
    rig: TidRig,
    layouts: VecDeque<Vec<u64>>,
    bufs: BTreeMap<u64, u64>,
    next_va: u64,
    next_spacer: u64,
}

impl Replay {
    /// A context with the kernel context's expected-TID count, and the guest's frame layouts
    /// (one list per `Alloc`, in order).
    pub fn new(ci: &ScriptCtxtInfo, layouts: Vec<Vec<u64>>) -> Result<Self, String> {
        let expected = ci.rcvtids.saturating_sub(ci.egrtids.next_multiple_of(8));
        if expected == 0 {
            return Err(format!("the kernel context has no expected TIDs: {ci:?}"));
        }
        let pages: u64 = layouts.iter().map(|l| 2 * l.len() as u64 + 8).sum::<u64>() + 64;
        let rig = TidRig::new(TidConfig::new(Policy::V2023), expected, 1, pages)
            .map_err(|e| e.to_string())?;
        Ok(Self {
            rig,
            layouts: layouts.into(),
            bufs: BTreeMap::new(),
            next_va: BUF_BASE,
            next_spacer: SPACER_BASE,
        })
    }

    /// Valid RcvArray entries our side left programmed.
    pub fn live_entries(&self) -> usize {
        self.rig.hw.entries.values().filter(|&&e| hfi_abi::RcvArrayEntry(e).is_valid()).count()
    }

    /// Page pins our side left.
    pub fn pins(&self) -> u64 {
        self.rig.space().total_pins()
    }
}

impl ScriptFd for Replay {
    fn ctxt_info(&mut self) -> Result<ScriptCtxtInfo, i32> {
        let c = self.rig.fd(0).ctxt_info();
        Ok(ScriptCtxtInfo {
            runtime_flags: c.runtime_flags,
            ctxt: c.ctxt,
            subctxt: c.subctxt,
            rcvtids: c.rcvtids,
            egrtids: c.egrtids,
            rcvegr_size: c.rcvegr_size,
            rcvhdrq_cnt: c.rcvhdrq_cnt,
            rcvhdrq_entsize: c.rcvhdrq_entsize,
        })
    }
    fn tid_update(&mut self, va: u64, len: u32) -> Result<(Vec<u32>, u32), i32> {
        self.rig
            .update(0, Va(va), len)
            .map(|u| (u.tidlist.iter().map(|t| t.raw()).collect(), u.length))
            .map_err(|e| e.code())
    }
    fn tid_free(&mut self, tids: &[u32]) -> Result<u32, i32> {
        let t: Vec<TidInfo> = tids.iter().map(|&w| TidInfo(w)).collect();
        self.rig.free(0, &t).map_err(|e| e.code())
    }
    fn tid_inval_read(&mut self) -> Result<Vec<u32>, i32> {
        self.rig.inval_read(0).map(|v| v.iter().map(|t| t.raw()).collect()).map_err(|e| e.code())
    }
}

impl ScriptMemory for Replay {
    fn alloc(&mut self, pages: u64) -> Result<u64, String> {
        let layout = self.layouts.pop_front().unwrap_or_default();
        let runs =
            if layout.len() as u64 == pages { runs(&layout) } else { vec![1; pages as usize] };
        let start = self.next_va;
        let mut va = start;
        for n in runs {
            self.rig
                .space_mut()
                .mmap_fixed(Va(va), n * PAGE_SIZE, Contiguity::Contiguous)
                .map_err(|e| e.to_string())?;
            self.rig
                .space_mut()
                .mmap_fixed(Va(self.next_spacer), PAGE_SIZE, Contiguity::Contiguous)
                .map_err(|e| e.to_string())?;
            self.next_spacer += 2 * PAGE_SIZE;
            va += n * PAGE_SIZE;
        }
        self.next_va = va + (1 << 30);
        self.bufs.insert(start, pages);
        Ok(start)
    }
    fn unmap(&mut self, va: u64) -> Result<(), String> {
        let pages = self.bufs.remove(&va).ok_or("unknown buffer")?;
        self.rig.munmap(Va(va), pages * PAGE_SIZE).map_err(|e| e.to_string())
    }
    fn frames(&self, va: u64, pages: u64) -> Vec<u64> {
        (0..pages)
            .map(|i| self.rig.space().translate(Va(va + i * PAGE_SIZE)).map_or(0, |p| p.0))
            .collect()
    }
}

/// One compared step.
#[derive(Clone, Debug, Serialize)]
pub struct StepDiff {
    /// Step number.
    pub step: usize,
    /// The step.
    pub what: String,
    /// The kernel's result (errno, tidinfo words decoded as (idx, ctrl, npages), value).
    pub kernel: (i32, Vec<(u32, u32, u32)>, u64),
    /// Ours.
    pub ours: (i32, Vec<(u32, u32, u32)>, u64),
    /// Equal.
    pub same: bool,
}

/// The whole comparison.
#[derive(Clone, Debug, Serialize)]
pub struct DiffReport {
    /// The kernel context.
    pub kernel_ctxt: ScriptCtxtInfo,
    /// Per step.
    pub steps: Vec<StepDiff>,
    /// Steps that differ.
    pub differences: usize,
    /// Valid RcvArray entries and page pins our side left after the script.
    pub ours_left: (usize, u64),
}

fn decode(tids: &[u32]) -> Vec<(u32, u32, u32)> {
    tids.iter().map(|&w| (TidInfo(w).idx(), TidInfo(w).ctrl(), TidInfo(w).npages())).collect()
}

/// Replays the kernel's run and compares. `kernel` is the guest's step list (with the frames
/// of each allocation).
pub fn compare(ci: &ScriptCtxtInfo, kernel: &[StepResult]) -> Result<DiffReport, String> {
    let layouts: Vec<Vec<u64>> =
        kernel.iter().filter(|r| r.what.starts_with("Alloc")).map(|r| r.frames.clone()).collect();
    let mut replay = Replay::new(ci, layouts)?;
    let ours = tidscript::run(&tidscript::standard(), &mut replay);
    let steps: Vec<StepDiff> = tidscript::standard()
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let k = kernel.get(i).cloned().unwrap_or_default();
            let o = ours.get(i).cloned().unwrap_or_default();
            let alloc = matches!(s, Step::Alloc { .. });
            let kt = (k.errno, decode(&k.tids), if alloc { 0 } else { k.value });
            let ot = (o.errno, decode(&o.tids), if alloc { 0 } else { o.value });
            StepDiff { step: i, what: format!("{s:?}"), same: kt == ot, kernel: kt, ours: ot }
        })
        .collect();
    let differences = steps.iter().filter(|d| !d.same).count();
    Ok(DiffReport {
        kernel_ctxt: *ci,
        steps,
        differences,
        ours_left: (replay.live_entries(), replay.pins()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_of_frames() {
        assert_eq!(runs(&[5, 6, 7, 3, 2, 10, 11]), vec![3, 1, 1, 2]);
        assert_eq!(runs(&[0, 1, 2]), vec![1, 2]);
        assert!(runs(&[]).is_empty());
    }

    /// Our driver against itself: the replay of its own results has no difference, and a
    /// changed tidinfo is caught.
    #[test]
    fn self_comparison_and_a_planted_difference() {
        let ci = ScriptCtxtInfo { rcvtids: 2048 + 512, egrtids: 512, ..Default::default() };
        let layouts: Vec<Vec<u64>> = vec![
            (100..356).collect(),
            (1000..1064).rev().collect(),
            (2000..2032).collect(),
            vec![0; 16],
        ];
        let mut first = Replay::new(&ci, layouts.clone()).unwrap();
        let mut kernel = tidscript::run(&tidscript::standard(), &mut first);
        let mut n = 0;
        for (r, l) in kernel.iter_mut().filter(|r| r.what.starts_with("Alloc")).zip(&layouts) {
            r.frames = l.clone();
            n += 1;
        }
        assert_eq!(n, 4);
        let d = compare(&ci, &kernel).unwrap();
        assert_eq!(d.differences, 0, "{:#?}", d.steps);
        assert_eq!(d.ours_left, (0, 0));
        // Contiguous 256 pages: one 1 MiB pageset is split by hfi1's size limit into TIDs
        // whose lengths are powers of two.
        let upd = &d.steps[4].ours;
        assert_eq!(upd.0, 0);
        assert!(upd.1.iter().all(|t| t.2.is_power_of_two()));
        // The munmap between update and free is reported by the next TID_INVAL_READ.
        assert_eq!(d.steps[8].ours.1.len(), d.steps[4].ours.1.len());
        let mut planted = kernel.clone();
        planted[5].tids[0] ^= 1;
        assert_eq!(compare(&ci, &planted).unwrap().differences, 1);
    }
}
