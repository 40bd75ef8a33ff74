//! The physical frame pool: which frames of the simulated physical memory are free, mapped by a
//! process, or orphaned (unmapped while pinned), and how many pins each holds.
//!
//! The pool only manages frame numbers. The bytes live in a vm-memory `GuestMemoryMmap` owned by
//! whoever built the simulation; [`zero_frames`] clears frames handed out since the last
//! [`FramePool::take_fresh`], so new mappings read as zero like fresh anonymous memory.
//!
//! Frames are handed out first-fit in ascending order, so a freed frame is soon handed to another
//! mapping or another owner: the "freed page reused" half of the stale-cache trap.
//!
//! `mod.rs` holds the frame states, pins and the free runs; `policy.rs` the allocation policies
//! ([`Contiguity`]) that decide which free runs a new mapping gets.

mod policy;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};

use vm_memory::{Bytes, GuestAddress};

use crate::error::{FrameError, InvariantViolation};
use crate::types::{OwnerId, Pfn, Va, PAGE_SHIFT, PAGE_SIZE};

pub use policy::Contiguity;

/// Largest pool accepted (64 GiB of 4 KiB frames): a bad configuration must not allocate
/// unbounded metadata.
pub const MAX_FRAMES: u64 = 1 << 24;

/// The state of one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameState {
    /// In the free pool.
    Free,
    /// Mapped at `va` in `owner`'s address space (exactly one mapping: no sharing is modelled).
    Mapped {
        /// The owning process.
        owner: OwnerId,
        /// The virtual page it backs.
        va: Va,
    },
    /// Unmapped while pinned: no page table points at it, but a pin keeps it out of the pool.
    /// It is freed when the last pin drops.
    Orphan {
        /// The process that last mapped it.
        owner: OwnerId,
    },
}

/// What [`FramePool::unmap`] did with the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnmapOutcome {
    /// Unpinned: back in the free pool.
    Freed,
    /// Pinned: now an orphan.
    Orphaned,
}

/// What [`FramePool::unpin`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnpinOutcome {
    /// The frame still has pins.
    StillPinned,
    /// Last pin dropped; the frame stays mapped.
    Released,
    /// Last pin dropped on an orphan: the frame went back to the pool.
    Freed,
}

/// Pool counters (monotonic).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Frames handed out.
    pub frames_allocated: u64,
    /// Frames handed out that had been handed out before (page reuse after free).
    pub frames_reused: u64,
    /// Frames returned to the pool.
    pub frames_freed: u64,
    /// Frames that became orphans (unmapped while pinned).
    pub frames_orphaned: u64,
    /// Orphans freed by their last unpin.
    pub orphans_freed: u64,
    /// Unpins of a frame with pin count 0 (a caller bug, counted and ignored).
    pub unbalanced_unpin_count: u64,
}

#[derive(Clone, Copy, Debug)]
struct FrameMeta {
    state: FrameState,
    pins: u32,
    ever_used: bool,
}

/// The physical frame pool over `[base, base + len)`.
#[derive(Debug)]
pub struct FramePool {
    base_pfn: u64,
    frames: Vec<FrameMeta>,
    /// Free frames as maximal runs: start pfn → length. Adjacent runs are always coalesced.
    free_runs: BTreeMap<u64, u64>,
    free_count: u64,
    total_pins: u64,
    fresh: BTreeSet<u64>,
    stats: PoolStats,
}

impl FramePool {
    /// A pool of every frame in `[base, base + len)`, all free. `base` and `len` must be page
    /// aligned, `len > 0`, and the range must not wrap.
    pub fn new(base: u64, len: u64) -> Result<FramePool, FrameError> {
        let bad = FrameError::InvalidRange { base, len };
        if len == 0 || base % PAGE_SIZE != 0 || len % PAGE_SIZE != 0 {
            return Err(bad);
        }
        // The last frame's address + PAGE_SIZE must be representable, so `Pfn::addr` and every
        // `pfn + n` inside the pool stay in range.
        base.checked_add(len).ok_or(bad)?;
        let count = len >> PAGE_SHIFT;
        if count > MAX_FRAMES {
            return Err(FrameError::TooLarge { frames: count });
        }
        let base_pfn = base >> PAGE_SHIFT;
        let meta = FrameMeta { state: FrameState::Free, pins: 0, ever_used: false };
        let mut free_runs = BTreeMap::new();
        free_runs.insert(base_pfn, count);
        Ok(FramePool {
            base_pfn,
            frames: vec![meta; count as usize],
            free_runs,
            free_count: count,
            total_pins: 0,
            fresh: BTreeSet::new(),
            stats: PoolStats::default(),
        })
    }

    /// Physical base address.
    pub fn base(&self) -> u64 {
        self.base_pfn << PAGE_SHIFT
    }
    /// Length in bytes.
    pub fn len(&self) -> u64 {
        self.frame_count() << PAGE_SHIFT
    }
    /// Always false: a pool has at least one frame.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }
    /// Number of frames.
    pub fn frame_count(&self) -> u64 {
        self.frames.len() as u64
    }
    /// The first frame.
    pub fn first_pfn(&self) -> Pfn {
        Pfn(self.base_pfn)
    }
    /// Frames currently free.
    pub fn free_frames(&self) -> u64 {
        self.free_count
    }
    /// True when `pfn` belongs to the pool.
    pub fn contains(&self, pfn: Pfn) -> bool {
        self.index(pfn).is_some()
    }
    /// Sum of all pin counts.
    pub fn total_pins(&self) -> u64 {
        self.total_pins
    }
    /// Counters.
    pub fn stats(&self) -> PoolStats {
        self.stats
    }
    /// Number of free runs (a fragmentation measure).
    pub fn free_run_count(&self) -> usize {
        self.free_runs.len()
    }

    /// State of `pfn`, `None` outside the pool.
    pub fn state(&self, pfn: Pfn) -> Option<FrameState> {
        self.meta(pfn).map(|m| m.state)
    }
    /// Pin count of `pfn` (0 outside the pool).
    pub fn pin_count(&self, pfn: Pfn) -> u32 {
        self.meta(pfn).map_or(0, |m| m.pins)
    }
    /// The owner of a mapped or orphaned frame; `None` for free frames and outside the pool.
    pub fn owner_of(&self, pfn: Pfn) -> Option<OwnerId> {
        match self.meta(pfn)?.state {
            FrameState::Free => None,
            FrameState::Mapped { owner, .. } | FrameState::Orphan { owner } => Some(owner),
        }
    }

    /// Add one pin to a mapped frame. Pinning a free or orphaned frame is refused: a pin is only
    /// taken through a page table.
    pub fn pin(&mut self, pfn: Pfn) -> Result<(), FrameError> {
        let m = self.meta_mut(pfn)?;
        if !matches!(m.state, FrameState::Mapped { .. }) {
            return Err(FrameError::NotMapped(pfn));
        }
        m.pins = m.pins.checked_add(1).ok_or(FrameError::PinOverflow(pfn))?;
        self.total_pins += 1;
        Ok(())
    }

    /// Drop one pin. An orphan whose last pin drops goes back to the pool. Unpinning a frame with
    /// no pins is counted in [`PoolStats::unbalanced_unpin_count`] and reported as
    /// [`FrameError::NotPinned`]; nothing changes.
    pub fn unpin(&mut self, pfn: Pfn) -> Result<UnpinOutcome, FrameError> {
        let m = self.meta_mut(pfn)?;
        if m.pins == 0 {
            self.stats.unbalanced_unpin_count += 1;
            return Err(FrameError::NotPinned(pfn));
        }
        m.pins -= 1;
        let now_zero = m.pins == 0;
        let orphan = matches!(m.state, FrameState::Orphan { .. });
        self.total_pins -= 1;
        if !now_zero {
            return Ok(UnpinOutcome::StillPinned);
        }
        if orphan {
            self.release(pfn);
            self.stats.orphans_freed += 1;
            return Ok(UnpinOutcome::Freed);
        }
        Ok(UnpinOutcome::Released)
    }

    /// The page table stopped pointing at a mapped frame: free it, or orphan it if pinned.
    pub fn unmap(&mut self, pfn: Pfn) -> Result<UnmapOutcome, FrameError> {
        let m = self.meta_mut(pfn)?;
        let FrameState::Mapped { owner, .. } = m.state else {
            return Err(FrameError::NotMapped(pfn));
        };
        if m.pins > 0 {
            m.state = FrameState::Orphan { owner };
            self.stats.frames_orphaned += 1;
            return Ok(UnmapOutcome::Orphaned);
        }
        self.release(pfn);
        Ok(UnmapOutcome::Freed)
    }

    /// A mapped frame moved to another virtual page of the same owner (mremap).
    pub fn remap(&mut self, pfn: Pfn, new_va: Va) -> Result<(), FrameError> {
        let m = self.meta_mut(pfn)?;
        let FrameState::Mapped { owner, .. } = m.state else {
            return Err(FrameError::NotMapped(pfn));
        };
        m.state = FrameState::Mapped { owner, va: new_va };
        Ok(())
    }

    /// Frames handed out since the last call, ascending, for the memory owner to zero (see
    /// [`zero_frames`]). Bounded by the pool size; frames freed since are included (zeroing a
    /// free frame is harmless).
    pub fn take_fresh(&mut self) -> Vec<Pfn> {
        std::mem::take(&mut self.fresh).into_iter().map(Pfn).collect()
    }

    /// Check the pool's internal consistency: free runs match the free frames exactly and are
    /// coalesced, counts add up, orphans are pinned, free frames are unpinned.
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        let fail = |s: String| Err(InvariantViolation(s));
        let mut in_runs = BTreeSet::new();
        let mut prev_end: Option<u64> = None;
        for (&s, &l) in &self.free_runs {
            if l == 0 {
                return fail(format!("empty free run at {s:#x}"));
            }
            if let Some(pe) = prev_end {
                if s <= pe {
                    return fail(format!("free run at {s:#x} overlaps or touches previous"));
                }
            }
            prev_end = Some(s + l);
            for p in s..s + l {
                in_runs.insert(p);
            }
        }
        let mut free = 0u64;
        let mut pins = 0u64;
        for (i, m) in self.frames.iter().enumerate() {
            let pfn = self.base_pfn + i as u64;
            pins += u64::from(m.pins);
            match m.state {
                FrameState::Free => {
                    free += 1;
                    if m.pins != 0 {
                        return fail(format!("free frame {pfn:#x} has {} pins", m.pins));
                    }
                    if !in_runs.contains(&pfn) {
                        return fail(format!("free frame {pfn:#x} missing from free runs"));
                    }
                }
                FrameState::Orphan { .. } => {
                    if m.pins == 0 {
                        return fail(format!("orphan frame {pfn:#x} has no pins"));
                    }
                    if in_runs.contains(&pfn) {
                        return fail(format!("orphan frame {pfn:#x} is in the free runs"));
                    }
                }
                FrameState::Mapped { .. } => {
                    if in_runs.contains(&pfn) {
                        return fail(format!("mapped frame {pfn:#x} is in the free runs"));
                    }
                }
            }
        }
        if free != self.free_count || in_runs.len() as u64 != free {
            return fail(format!(
                "free count {} but {free} free frames and {} in runs",
                self.free_count,
                in_runs.len()
            ));
        }
        if pins != self.total_pins {
            return fail(format!("total_pins {} but sum {pins}", self.total_pins));
        }
        Ok(())
    }

    fn index(&self, pfn: Pfn) -> Option<usize> {
        let off = pfn.0.checked_sub(self.base_pfn)?;
        if off < self.frames.len() as u64 {
            Some(off as usize)
        } else {
            None
        }
    }

    fn meta(&self, pfn: Pfn) -> Option<&FrameMeta> {
        self.frames.get(self.index(pfn)?)
    }

    fn meta_mut(&mut self, pfn: Pfn) -> Result<&mut FrameMeta, FrameError> {
        let idx = self.index(pfn).ok_or(FrameError::OutOfRange(pfn))?;
        self.frames.get_mut(idx).ok_or(FrameError::OutOfRange(pfn))
    }

    /// Mark a frame free and put it back into the runs, coalescing with its neighbours.
    fn release(&mut self, pfn: Pfn) {
        let Some(idx) = self.index(pfn) else {
            return;
        };
        if let Some(m) = self.frames.get_mut(idx) {
            m.state = FrameState::Free;
            m.pins = 0;
        }
        self.free_count += 1;
        self.stats.frames_freed += 1;
        let p = pfn.0;
        let mut start = p;
        let mut len = 1u64;
        if let Some((&ps, &pl)) = self.free_runs.range(..p).next_back() {
            if ps + pl == p {
                start = ps;
                len += pl;
                self.free_runs.remove(&ps);
            }
        }
        if let Some(nl) = self.free_runs.remove(&(p + 1)) {
            len += nl;
        }
        self.free_runs.insert(start, len);
    }
}

/// A [`FramePool`] shared by every simulated process of one machine, so a frame one process
/// frees can back another process's mapping.
///
/// Single-threaded use is the norm (the simulation is deterministic); the mutex only keeps the
/// handle `Send` so an address space can live on the thread that runs the driver.
#[derive(Clone, Debug)]
pub struct SharedFramePool(Arc<Mutex<FramePool>>);

impl SharedFramePool {
    /// A new shared pool over `[base, base + len)`.
    pub fn new(base: u64, len: u64) -> Result<SharedFramePool, FrameError> {
        Ok(SharedFramePool::from_pool(FramePool::new(base, len)?))
    }
    /// Share an existing pool.
    pub fn from_pool(pool: FramePool) -> SharedFramePool {
        SharedFramePool(Arc::new(Mutex::new(pool)))
    }
    /// Run `f` with the pool locked. Do not nest calls (the lock is not re-entrant). A poisoned
    /// lock (a panic in a test while locked) is recovered: the pool has no multi-step state that
    /// a panic could tear.
    pub fn with<R>(&self, f: impl FnOnce(&mut FramePool) -> R) -> R {
        let mut guard = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard)
    }
}

/// Zero each frame in `mem` (a vm-memory view of the simulated physical memory), as the kernel
/// clears a page before it backs a new anonymous mapping. Typical use:
/// `zero_frames(&mem, &pool.with(|p| p.take_fresh()))`.
pub fn zero_frames<M: Bytes<GuestAddress>>(mem: &M, pfns: &[Pfn]) -> Result<(), M::E> {
    const ZERO: [u8; PAGE_SIZE as usize] = [0; PAGE_SIZE as usize];
    for pfn in pfns {
        mem.write_slice(&ZERO, pfn.guest_addr())?;
    }
    Ok(())
}

/// What the unit tests of the pool and of its policies build on.
#[cfg(test)]
mod fixture {
    use super::FramePool;
    use crate::types::{OwnerId, PAGE_SIZE};

    pub(super) const O: OwnerId = OwnerId(1);
    pub(super) const BASE: u64 = 0x10_0000; // 1 MiB → pfn 0x100

    pub(super) fn pool(frames: u64) -> FramePool {
        FramePool::new(BASE, frames * PAGE_SIZE).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use vm_memory::GuestMemoryMmap;

    use super::fixture::{pool, BASE, O};
    use super::*;

    #[test]
    fn new_rejects_bad_ranges() {
        assert!(FramePool::new(0, 0).is_err());
        assert!(FramePool::new(1, PAGE_SIZE).is_err());
        assert!(FramePool::new(0, 100).is_err());
        assert!(FramePool::new(u64::MAX - 0xfff, PAGE_SIZE).is_err());
        assert_eq!(
            FramePool::new(0, (MAX_FRAMES + 1) * PAGE_SIZE).unwrap_err(),
            FrameError::TooLarge { frames: MAX_FRAMES + 1 }
        );
        let p = pool(16);
        assert_eq!(p.base(), BASE);
        assert_eq!(p.len(), 16 * PAGE_SIZE);
        assert_eq!(p.first_pfn(), Pfn(0x100));
        assert_eq!(p.free_frames(), 16);
        assert!(!p.is_empty());
        assert!(p.contains(Pfn(0x10f)));
        assert!(!p.contains(Pfn(0x110)));
        assert!(!p.contains(Pfn(0xff)));
    }

    #[test]
    fn pinned_unmap_orphans_until_last_unpin() {
        let mut p = pool(4);
        let a = p.alloc(O, Va(0), 2, Contiguity::Contiguous).unwrap();
        p.pin(a[0]).unwrap();
        p.pin(a[0]).unwrap();
        assert_eq!(p.pin_count(a[0]), 2);
        assert_eq!(p.total_pins(), 2);
        assert_eq!(p.unmap(a[0]), Ok(UnmapOutcome::Orphaned));
        assert_eq!(p.unmap(a[1]), Ok(UnmapOutcome::Freed));
        assert_eq!(p.state(a[0]), Some(FrameState::Orphan { owner: O }));
        assert_eq!(p.owner_of(a[0]), Some(O));
        assert_eq!(p.owner_of(a[1]), None);
        // An orphan cannot gain pins.
        assert_eq!(p.pin(a[0]), Err(FrameError::NotMapped(a[0])));
        assert_eq!(p.unpin(a[0]), Ok(UnpinOutcome::StillPinned));
        assert_eq!(p.state(a[0]), Some(FrameState::Orphan { owner: O }));
        assert_eq!(p.unpin(a[0]), Ok(UnpinOutcome::Freed));
        assert_eq!(p.state(a[0]), Some(FrameState::Free));
        assert_eq!(p.free_frames(), 4);
        // Unbalanced unpin is counted, not fatal.
        assert_eq!(p.unpin(a[0]), Err(FrameError::NotPinned(a[0])));
        assert_eq!(p.stats().unbalanced_unpin_count, 1);
        assert_eq!(p.stats().frames_orphaned, 1);
        assert_eq!(p.stats().orphans_freed, 1);
        assert_eq!(p.unpin(Pfn(0)), Err(FrameError::OutOfRange(Pfn(0))));
        p.check_invariants().unwrap();
    }

    #[test]
    fn freed_frames_are_reused_by_another_owner() {
        let mut p = pool(4);
        let a = p.alloc(O, Va(0), 4, Contiguity::Contiguous).unwrap();
        p.unmap(a[2]).unwrap();
        let b = p.alloc(OwnerId(2), Va(0x5000), 1, Contiguity::Scattered).unwrap();
        assert_eq!(b, vec![a[2]]);
        assert_eq!(p.owner_of(a[2]), Some(OwnerId(2)));
        assert_eq!(p.stats().frames_reused, 1);
        assert_eq!(p.stats().frames_allocated, 5);
    }

    #[test]
    fn remap_moves_va() {
        let mut p = pool(2);
        let a = p.alloc(O, Va(0), 1, Contiguity::Contiguous).unwrap();
        p.remap(a[0], Va(0x8000)).unwrap();
        assert_eq!(p.state(a[0]), Some(FrameState::Mapped { owner: O, va: Va(0x8000) }));
        assert_eq!(p.remap(Pfn(0x101), Va(0)), Err(FrameError::NotMapped(Pfn(0x101))));
    }

    #[test]
    fn fresh_frames_are_zeroed() {
        let shared = SharedFramePool::new(BASE, 4 * PAGE_SIZE).unwrap();
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(BASE), 4 * 4096)]).unwrap();
        mem.write_slice(&[0xaa; 4096], GuestAddress(BASE + 4096)).unwrap();
        let a = shared.with(|p| p.alloc(O, Va(0), 2, Contiguity::Contiguous)).unwrap();
        let fresh = shared.with(|p| p.take_fresh());
        assert_eq!(fresh, a);
        assert!(shared.with(|p| p.take_fresh()).is_empty());
        zero_frames(&mem, &fresh).unwrap();
        let mut buf = [1u8; 4096];
        mem.read_slice(&mut buf, GuestAddress(BASE + 4096)).unwrap();
        assert!(buf.iter().all(|&b| b == 0));
    }
}
