//! The TID script of the differential check: one fixed sequence of TID_UPDATE / TID_FREE /
//! munmap / TID_INVAL_READ over real buffers, run against the upstream hfi1 driver in the guest
//! (`guest::hfi1_cdev::Hfi1Cdev`) and against our driver in process
//! (`scenarios::qemu::kdrv_diff`), with the same results recorded step by step so they can be
//! compared.

use serde::{Deserialize, Serialize};

/// The part of `hfi1_ctxt_info` the comparison uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptCtxtInfo {
    /// HFI1_CAP_* in force.
    pub runtime_flags: u64,
    /// Hardware context.
    pub ctxt: u32,
    /// Subcontext.
    pub subctxt: u32,
    /// RcvArray entries of the context (eager rounded up to a group + expected).
    pub rcvtids: u32,
    /// Eager entries.
    pub egrtids: u32,
    /// Eager buffer size.
    pub rcvegr_size: u32,
    /// RHQ entries.
    pub rcvhdrq_cnt: u32,
    /// RHQ entry size (bytes).
    pub rcvhdrq_entsize: u32,
}

/// An fd the script drives: errors are Linux errno numbers.
pub trait ScriptFd {
    /// CTXT_INFO.
    fn ctxt_info(&mut self) -> Result<ScriptCtxtInfo, i32>;
    /// TID_UPDATE: (tidinfo list, bytes mapped).
    fn tid_update(&mut self, va: u64, len: u32) -> Result<(Vec<u32>, u32), i32>;
    /// TID_FREE: how many were freed.
    fn tid_free(&mut self, tids: &[u32]) -> Result<u32, i32>;
    /// TID_INVAL_READ.
    fn tid_inval_read(&mut self) -> Result<Vec<u32>, i32>;
}

/// The process memory the script uses.
pub trait ScriptMemory {
    /// Maps a buffer of `pages` pages, touched; returns its address.
    fn alloc(&mut self, pages: u64) -> Result<u64, String>;
    /// munmaps it.
    fn unmap(&mut self, va: u64) -> Result<(), String>;
    /// The frames behind its pages (for the comparison's page identities).
    fn frames(&self, va: u64, pages: u64) -> Vec<u64>;
}

/// An fd and the memory of the process that owns it.
pub trait ScriptTarget: ScriptFd + ScriptMemory {}

impl<T: ScriptFd + ScriptMemory> ScriptTarget for T {}

/// One step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Step {
    /// Allocate buffer `buf` of `pages` pages.
    Alloc {
        /// Buffer number.
        buf: usize,
        /// Pages.
        pages: u64,
    },
    /// TID_UPDATE of `pages` pages of buffer `buf` from page `first`.
    Update {
        /// Buffer number.
        buf: usize,
        /// First page.
        first: u64,
        /// Pages.
        pages: u64,
    },
    /// TID_FREE of the TIDs step `step` returned.
    Free {
        /// The update step whose TIDs are freed.
        step: usize,
    },
    /// munmap of buffer `buf`.
    Unmap {
        /// Buffer number.
        buf: usize,
    },
    /// TID_INVAL_READ.
    InvalRead,
}

/// The script: buffers, updates, a munmap between an update and its free, and an invalidation
/// while the context holds other TIDs (a buffer unmapped while a second one is programmed and
/// a third update follows before the invalidation is read).
pub fn standard() -> Vec<Step> {
    use Step::*;
    vec![
        Alloc { buf: 0, pages: 256 },
        Alloc { buf: 1, pages: 64 },
        Alloc { buf: 2, pages: 32 },
        Alloc { buf: 3, pages: 16 },
        Update { buf: 0, first: 0, pages: 256 },
        Update { buf: 1, first: 0, pages: 64 },
        Free { step: 5 },
        Unmap { buf: 0 },
        InvalRead,
        Free { step: 4 },
        Update { buf: 2, first: 0, pages: 32 },
        Update { buf: 3, first: 0, pages: 16 },
        Unmap { buf: 2 },
        Update { buf: 3, first: 8, pages: 8 },
        Update { buf: 1, first: 0, pages: 64 },
        InvalRead,
        Free { step: 10 },
        Free { step: 11 },
        Free { step: 13 },
        Free { step: 14 },
        InvalRead,
    ]
}

/// What one step returned.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepResult {
    /// Step number.
    pub step: usize,
    /// The step.
    pub what: String,
    /// errno (0 = success).
    pub errno: i32,
    /// tidinfo list (update / inval read) as raw words.
    pub tids: Vec<u32>,
    /// Bytes mapped (update) or TIDs freed (free).
    pub value: u64,
    /// Buffer frames (alloc).
    pub frames: Vec<u64>,
}

/// Runs `steps`; a step referring to a missing buffer or update is recorded as errno -1.
pub fn run(steps: &[Step], t: &mut dyn ScriptTarget) -> Vec<StepResult> {
    let mut bufs: Vec<Option<(u64, u64)>> = Vec::new();
    let mut out: Vec<StepResult> = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        let mut r = StepResult { step: i, what: format!("{s:?}"), ..Default::default() };
        match *s {
            Step::Alloc { buf, pages } => match t.alloc(pages) {
                Ok(va) => {
                    if bufs.len() <= buf {
                        bufs.resize(buf + 1, None);
                    }
                    if let Some(b) = bufs.get_mut(buf) {
                        *b = Some((va, pages));
                    }
                    r.frames = t.frames(va, pages);
                }
                Err(_) => r.errno = -1,
            },
            Step::Update { buf, first, pages } => match bufs.get(buf).copied().flatten() {
                Some((va, n)) if first + pages <= n => {
                    match t.tid_update(va + first * 4096, (pages * 4096) as u32) {
                        Ok((tids, len)) => {
                            r.tids = tids;
                            r.value = u64::from(len);
                        }
                        Err(e) => r.errno = e,
                    }
                }
                _ => r.errno = -1,
            },
            Step::Free { step } => match out.get(step) {
                Some(u) => match t.tid_free(&u.tids) {
                    Ok(n) => r.value = u64::from(n),
                    Err(e) => r.errno = e,
                },
                None => r.errno = -1,
            },
            Step::Unmap { buf } => match bufs.get_mut(buf).and_then(Option::take) {
                Some((va, _)) => {
                    if t.unmap(va).is_err() {
                        r.errno = -1;
                    }
                }
                None => r.errno = -1,
            },
            Step::InvalRead => match t.tid_inval_read() {
                Ok(t) => r.tids = t,
                Err(e) => r.errno = e,
            },
        }
        out.push(r);
    }
    out
}
