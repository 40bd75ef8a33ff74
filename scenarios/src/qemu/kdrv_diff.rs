//! The differential check: the TID script the guest ran against the upstream hfi1 driver,
//! replayed through our kernel-side TID code (policy `v2023`: Debian's 6.1.192 `hfi1.ko`
//! carries the 2023 fixes — its symbol table has `tid_cover_invalidate` and
//! `__clear_tid_node`) on a simulated process whose buffers have the guest's physical page
//! layout (the same runs of contiguous frames), then compared step by step.

use std::collections::{BTreeMap, VecDeque};

use driver::tid::standalone::KernelSide;
use driver::tid::TidConfig;
use driver::{HfiFd, Policy};
use guest_proto::tidscript::{self, ScriptCtxtInfo, ScriptFd, ScriptMemory, Step, StepResult};
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
    rig: KernelSide,
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
        let rig = KernelSide::new(TidConfig::new(Policy::V2023), expected, 1, pages)
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

    /// Our RcvArray stores as the model would log them: flushes and WC fills (WRITE_ENABLE
    /// clear, ignored by the hardware) left out.
    pub fn rcv_array_log(&self) -> Vec<(u32, u64)> {
        self.rig
            .hw
            .ops
            .iter()
            .copied()
            .filter(|&(i, v)| i != u32::MAX && hfi_abi::RcvArrayEntry(v).write_enable())
            .collect()
    }

    /// The context's first expected RcvArray entry.
    pub fn expected_base(&self) -> u32 {
        self.rig.ctx.expected_base()
    }
}

/// One change of an expected RcvArray entry of the context: relative entry, and what it maps
/// now (size code, buffer, page in the buffer) or `None` for invalid. Addresses are compared
/// as page identities (the physical frames differ between the guest and the replay).
pub type EntryChange = (u32, Option<(u8, usize, u64)>);

/// The changes of entries `[base, base + count)` in `log` (after the last reset before the
/// first change; writes that leave an entry as it was are not changes), with DMA addresses
/// mapped to (buffer, page) through `frames` (each buffer's frames in page order).
pub fn entry_changes(
    log: &[(u32, u64)],
    base: u32,
    count: u32,
    frames: &[Vec<u64>],
) -> Vec<EntryChange> {
    let mut page_of = BTreeMap::new();
    for (b, fs) in frames.iter().enumerate() {
        for (p, &f) in fs.iter().enumerate() {
            page_of.entry(f).or_insert((b, p as u64));
        }
    }
    let mut state: BTreeMap<u32, u64> = BTreeMap::new();
    let mut out = Vec::new();
    for &(i, raw) in log {
        if i == u32::MAX {
            state.clear();
            out.clear();
            continue;
        }
        if i < base || i >= base + count {
            continue;
        }
        let e = hfi_abi::RcvArrayEntry(raw);
        let now = if e.is_valid() { Some(raw) } else { None };
        let before = state.get(&i).copied().filter(|&v| hfi_abi::RcvArrayEntry(v).is_valid());
        if now == before {
            continue;
        }
        match now {
            Some(v) => state.insert(i, v),
            None => state.remove(&i),
        };
        let what = now.map(|_| {
            let (b, p) = page_of.get(&(e.dma_addr() >> 12)).copied().unwrap_or((usize::MAX, 0));
            (e.buf_size().code(), b, p)
        });
        out.push((i - base, what));
    }
    out
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
    /// Expected-entry changes compared (kernel, ours); 0 / 0 when no kernel log was given.
    pub entry_changes: (usize, usize),
    /// First differing entry change (index into the lists), if any.
    pub first_entry_difference: Option<usize>,
    /// The changes around the first difference (kernel, ours), up to 4 either side.
    pub around_difference: (Vec<EntryChange>, Vec<EntryChange>),
}

fn decode(tids: &[u32]) -> Vec<(u32, u32, u32)> {
    tids.iter().map(|&w| (TidInfo(w).idx(), TidInfo(w).ctrl(), TidInfo(w).npages())).collect()
}

/// Replays the kernel's run and compares. `kernel` is the guest's step list (with the frames
/// of each allocation).
///
/// With the kernel run's RcvArray log, the expected-entry changes (which entry, which size,
/// which page of which buffer, and when it is invalidated) are compared too; the kernel
/// context's expected base is found from the first TID_UPDATE (its first tidinfo's entry holds
/// the first page of buffer 0).
pub fn compare(
    ci: &ScriptCtxtInfo,
    kernel: &[StepResult],
    kernel_log: Option<&[(u32, u64)]>,
) -> Result<DiffReport, String> {
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
    let mut differences = steps.iter().filter(|d| !d.same).count();
    let (mut entry_counts, mut first_entry_difference) = ((0, 0), None);
    let mut around = (Vec::new(), Vec::new());
    if let Some(log) = kernel_log {
        let kframes: Vec<Vec<u64>> = kernel
            .iter()
            .filter(|r| r.what.starts_with("Alloc"))
            .map(|r| r.frames.clone())
            .collect();
        let oframes: Vec<Vec<u64>> =
            ours.iter().filter(|r| r.what.starts_with("Alloc")).map(|r| r.frames.clone()).collect();
        let count = replay.rig.ctx.expected_count();
        let kbase = kernel_base(log, kernel, &kframes)
            .ok_or("cannot find the kernel context's expected base in the RcvArray log")?;
        let k = entry_changes(segment(log), kbase, count, &kframes);
        let o = entry_changes(&replay.rcv_array_log(), replay.expected_base(), count, &oframes);
        entry_counts = (k.len(), o.len());
        first_entry_difference = (0..k.len().max(o.len())).find(|&i| k.get(i) != o.get(i));
        if let Some(i) = first_entry_difference {
            differences += 1;
            let r = i.saturating_sub(4)..i + 5;
            around = (
                k.get(r.start.min(k.len())..r.end.min(k.len())).unwrap_or(&[]).to_vec(),
                o.get(r.start.min(o.len())..r.end.min(o.len())).unwrap_or(&[]).to_vec(),
            );
        }
    }
    Ok(DiffReport {
        kernel_ctxt: *ci,
        steps,
        differences,
        ours_left: (replay.live_entries(), replay.pins()),
        entry_changes: entry_counts,
        first_entry_difference,
        around_difference: around,
    })
}

/// The part of a recorded log the script ran in: after the last reset, not counting a reset
/// at the very end (the disconnect when QEMU exits).
pub fn segment(log: &[(u32, u64)]) -> &[(u32, u64)] {
    let end = match log.last() {
        Some(&(u32::MAX, _)) => log.len() - 1,
        _ => log.len(),
    };
    let body = log.get(..end).unwrap_or(log);
    let start = body.iter().rposition(|e| e.0 == u32::MAX).map_or(0, |p| p + 1);
    body.get(start..).unwrap_or(body)
}

/// The kernel context's first expected entry: the entry whose first valid write maps the first
/// page of buffer 0, minus that TID's relative entry.
fn kernel_base(log: &[(u32, u64)], kernel: &[StepResult], frames: &[Vec<u64>]) -> Option<u32> {
    let first_update =
        kernel.iter().find(|r| r.what.starts_with("Update") && !r.tids.is_empty())?;
    let rel = TidInfo(*first_update.tids.first()?).rel_entry()?;
    let frame = *frames.first()?.first()?;
    segment(log)
        .iter()
        .find(|&&(i, v)| {
            i != u32::MAX
                && hfi_abi::RcvArrayEntry(v).is_valid()
                && hfi_abi::RcvArrayEntry(v).dma_addr() >> 12 == frame
        })
        .and_then(|&(i, _)| i.checked_sub(rel))
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
        let kernel = tidscript::run(&tidscript::standard(), &mut first);
        // The replay reproduced each layout's runs of contiguous frames.
        let allocs: Vec<&StepResult> =
            kernel.iter().filter(|r| r.what.starts_with("Alloc")).collect();
        assert_eq!(allocs.len(), 4);
        for (a, l) in allocs.iter().zip(&layouts) {
            assert_eq!(runs(&a.frames), runs(l));
        }
        let mut log = first.rcv_array_log();
        // As recorded by the model: an FLR before, the disconnect's reset after.
        log.insert(0, (u32::MAX, 0));
        log.push((u32::MAX, 0));
        let d = compare(&ci, &kernel, Some(&log)).unwrap();
        assert_eq!(d.differences, 0, "{:#?}", d.steps);
        assert_eq!(d.ours_left, (0, 0));
        assert!(d.entry_changes.0 > 20, "{:?}", d.entry_changes);
        assert_eq!(d.entry_changes.0, d.entry_changes.1);
        assert_eq!(d.first_entry_difference, None);
        // Contiguous 256 pages: one 1 MiB pageset is split by hfi1's size limit into TIDs
        // whose lengths are powers of two.
        let upd = &d.steps[4].ours;
        assert_eq!(upd.0, 0);
        assert!(upd.1.iter().all(|t| t.2.is_power_of_two()));
        // The munmap between update and free is reported by the next TID_INVAL_READ.
        assert_eq!(d.steps[8].ours.1.len(), d.steps[4].ours.1.len());
        let mut planted = kernel.clone();
        planted[5].tids[0] ^= 1;
        assert_eq!(compare(&ci, &planted, None).unwrap().differences, 1);
        // A kernel that programmed one entry with another page is caught too.
        let mut log2 = log.clone();
        let pos = log2.iter().rposition(|&(_, v)| hfi_abi::RcvArrayEntry(v).is_valid()).unwrap();
        log2[pos].1 += 1 << 12;
        let d2 = compare(&ci, &kernel, Some(&log2)).unwrap();
        assert!(d2.first_entry_difference.is_some());
    }
}
