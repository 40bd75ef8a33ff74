//! The pending state between a begin phase and its commit or abort: the [`PendingUnmap`] token
//! and the [`Invalidation`]s it carries, the layout lock (`Busy` while a token is out), the
//! sequence bumps at begin and at commit, and the commit that applies the change to the page
//! table (see the parent module for the protocol and the sequence-number rules).

use crate::error::UnmapError;
use crate::frames::Contiguity;
use crate::types::{NotifierId, OwnerId, Pfn, Va};

use super::layout::Vma;
use super::AddressSpace;

/// Why a range is being invalidated (the subset of `enum mmu_notifier_event` this model
/// produces or lets callers fake).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvalidateEvent {
    /// `MMU_NOTIFY_UNMAP`: munmap, shrink, the old range of a moving mremap. The memory is gone.
    Unmap,
    /// `MMU_NOTIFY_CLEAR`: page-table entries cleared (madvise DONTNEED); the range stays mapped
    /// and faults fresh pages on the next touch.
    Clear,
    /// `MMU_NOTIFY_PROTECTION_VMA`/`_PAGE`: permissions changed (mprotect).
    Protection,
    /// `MMU_NOTIFY_MIGRATE`: pages migrated to other frames.
    Migrate,
}

impl InvalidateEvent {
    /// True for [`InvalidateEvent::Unmap`], the only event hfi1 (2023+) acts on.
    pub const fn is_unmap(self) -> bool {
        matches!(self, InvalidateEvent::Unmap)
    }
}

/// One notifier callback to deliver: `mmu_interval_notifier_ops.invalidate(mni, range, seq)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Invalidation {
    /// The notifier to call.
    pub notifier: NotifierId,
    /// Start of the invalidated range (page aligned).
    pub start: Va,
    /// End of the invalidated range (exclusive, page aligned).
    pub end: Va,
    /// Why.
    pub event: InvalidateEvent,
    /// The notifier's new sequence number (`mmu_interval_set_seq`).
    pub seq: u64,
}

/// The begin phase of an unmap-like operation: the invalidations to deliver before
/// [`AddressSpace::commit`]. While it exists, the address space's layout is locked.
#[must_use = "deliver the invalidations, then commit (or abort) the token"]
#[derive(Debug)]
pub struct PendingUnmap {
    owner: OwnerId,
    id: u64,
    op: PendingOp,
    invalidations: Vec<Invalidation>,
}

impl PendingUnmap {
    /// The invalidations to deliver, ordered by notifier id.
    pub fn invalidations(&self) -> &[Invalidation] {
        &self.invalidations
    }
}

#[derive(Clone, Copy, Debug)]
pub(super) enum PendingOp {
    /// Remove `[start, end)` (munmap, shrink). `result` is what commit returns.
    Unmap { start: u64, end: u64, result: u64 },
    /// Drop the frames of `[start, end)`, keep the mapping (madvise DONTNEED).
    Clear { start: u64, end: u64 },
    /// Move `[old, old+old_len)` to `[new, new+new_len)` (mremap with MREMAP_MAYMOVE).
    Move { old: u64, old_len: u64, new: u64, new_len: u64, contiguity: Contiguity },
    /// Extend `[start, start+old_len)`, the tail of the VMA at `vma_start`, to `new_len` in
    /// place.
    Grow { vma_start: u64, start: u64, old_len: u64, new_len: u64, contiguity: Contiguity },
    /// Nothing to change.
    Nop { result: u64 },
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Pending {
    id: u64,
    /// The range being invalidated (`start == end` when nothing is).
    pub(super) start: u64,
    pub(super) end: u64,
}

impl AddressSpace {
    /// Apply a begun operation: page-table entries go, frames are freed or orphaned, moved pages
    /// move, grown ranges are populated, and the sequence numbers of the notifiers that were
    /// being invalidated are retired. Returns the resulting address (the new address for
    /// mremap, the start of the range otherwise).
    ///
    /// On [`UnmapError::NoMemory`] (growth could not be populated) the layout is unchanged and
    /// the pending state is cleared, as after [`Self::abort`].
    pub fn commit(&mut self, token: PendingUnmap) -> Result<Va, UnmapError> {
        self.check_token(&token)?;
        let result = self.apply(token.op);
        self.finish_pending();
        result.map(Va)
    }

    /// Drop a begun operation without changing the layout. The invalidations already delivered
    /// become spurious (allowed by the notifier contract); sequence numbers are retired as by a
    /// commit.
    pub fn abort(&mut self, token: PendingUnmap) -> Result<(), UnmapError> {
        self.check_token(&token)?;
        self.finish_pending();
        Ok(())
    }

    /// Deliver each invalidation of `token` to `f` (which may call back into this space), then
    /// commit.
    pub fn complete_with<F>(&mut self, token: PendingUnmap, mut f: F) -> Result<Va, UnmapError>
    where
        F: FnMut(&mut AddressSpace, &Invalidation),
    {
        for inv in &token.invalidations {
            f(self, inv);
        }
        self.commit(token)
    }

    /// Enter the pending state and produce the invalidations for `[start, end)`.
    pub(super) fn start_pending(
        &mut self,
        op: PendingOp,
        start: u64,
        end: u64,
        event: Option<InvalidateEvent>,
    ) -> PendingUnmap {
        let id = self.next_token;
        self.next_token += 1;
        let mut invalidations = Vec::new();
        if let Some(event) = event {
            for (&nid, n) in self.notifiers.iter_mut() {
                if n.start < end && start < n.end {
                    n.seq += 1;
                    n.invalidating = true;
                    invalidations.push(Invalidation {
                        notifier: nid,
                        start: Va(start),
                        end: Va(end),
                        event,
                        seq: n.seq,
                    });
                }
            }
        }
        self.stats.invalidations_sent += invalidations.len() as u64;
        let (start, end) = if event.is_some() { (start, end) } else { (0, 0) };
        self.pending = Some(Pending { id, start, end });
        PendingUnmap { owner: self.owner, id, op, invalidations }
    }

    fn check_token(&self, token: &PendingUnmap) -> Result<(), UnmapError> {
        match self.pending {
            Some(p) if p.id == token.id && token.owner == self.owner => Ok(()),
            _ => Err(UnmapError::StaleToken),
        }
    }

    fn finish_pending(&mut self) {
        for n in self.notifiers.values_mut() {
            if n.invalidating {
                n.seq += 1;
                n.invalidating = false;
            }
        }
        self.pending = None;
    }

    fn apply(&mut self, op: PendingOp) -> Result<u64, UnmapError> {
        match op {
            PendingOp::Nop { result } => Ok(result),
            PendingOp::Unmap { start, end, result } => {
                self.drop_ptes(start, end);
                self.remove_vma_range(start, end);
                Ok(result)
            }
            PendingOp::Clear { start, end } => {
                self.drop_ptes(start, end);
                Ok(start)
            }
            PendingOp::Grow { vma_start, start, old_len, new_len, contiguity } => {
                let extra = self.alloc_extra(start + old_len, new_len - old_len, contiguity)?;
                if let Some(v) = self.vmas.get_mut(&vma_start) {
                    v.end = start + new_len;
                }
                self.insert_ptes(start + old_len, &extra);
                Ok(start)
            }
            PendingOp::Move { old, old_len, new, new_len, contiguity } => {
                let extra = self.alloc_extra(new + old_len, new_len - old_len, contiguity)?;
                let moved: Vec<(u64, Pfn)> =
                    self.ptes.range(old..old + old_len).map(|(&va, &pfn)| (va, pfn)).collect();
                for &(va, _) in &moved {
                    self.ptes.remove(&va);
                }
                self.remove_vma_range(old, old + old_len);
                self.vmas.insert(new, Vma { end: new + new_len, contiguity });
                self.pool.with(|p| {
                    for &(va, pfn) in &moved {
                        // The frame is Mapped by this owner (invariant); remap cannot fail.
                        let _ = p.remap(pfn, Va(va - old + new));
                    }
                });
                for (va, pfn) in moved {
                    self.ptes.insert(va - old + new, pfn);
                }
                self.insert_ptes(new + old_len, &extra);
                Ok(new)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{pool, space, PS};
    use super::*;
    use crate::error::{MmapError, PinError};
    use crate::frames::FrameState;

    #[test]
    fn pending_locks_layout_but_allows_driver_callbacks() {
        let mut s = space(32);
        let va = s.mmap(8 * PS, Contiguity::Contiguous).unwrap();
        let other = s.mmap(2 * PS, Contiguity::Contiguous).unwrap();
        s.begin_madvise_dontneed(other, PS).and_then(|t| s.commit(t)).unwrap();
        let n = s.notifier_insert(va, 8 * PS).unwrap();
        let pinned = s.pin_pages(va, 8).unwrap();
        let token = s.begin_munmap(va, 8 * PS).unwrap();
        assert!(s.has_pending());
        assert_eq!(s.mmap(PS, Contiguity::Contiguous), Err(MmapError::Busy));
        assert_eq!(s.mmap_fixed(Va(0x1000_0000), PS, Contiguity::Contiguous), Err(MmapError::Busy));
        assert_eq!(s.touch(other, PS), Err(MmapError::Busy));
        assert_eq!(s.begin_munmap(other, PS).unwrap_err(), UnmapError::Busy);
        assert_eq!(s.begin_shrink(other, 2 * PS, PS).unwrap_err(), UnmapError::Busy);
        assert_eq!(s.begin_mremap(other, PS, PS, true).unwrap_err(), UnmapError::Busy);
        assert_eq!(s.begin_madvise_dontneed(other, PS).unwrap_err(), UnmapError::Busy);
        assert_eq!(
            s.begin_invalidate(other, PS, InvalidateEvent::Migrate).unwrap_err(),
            UnmapError::Busy
        );
        // A pin needing a fault waits for the lock; present pages can still be pinned.
        assert_eq!(s.pin_pages(other, 1), Err(PinError::Busy));
        let extra = s.pin_pages(va, 2).unwrap();
        // read_begin during the invalidation returns a value the commit retires.
        let seq_during = s.read_begin(n);
        assert!(s.read_retry(n, seq_during));
        // A notifier inserted over the range while the unmap is pending counts as invalidated.
        let late = s.notifier_insert(Va(va.0 + PS), PS).unwrap();
        let late_seq = s.read_begin(late);
        let apart = s.notifier_insert(other, PS).unwrap();
        let apart_seq = s.read_begin(apart);
        // The driver's callback: unpin and drop the notifier (removal with the invalidation still
        // in the uncommitted token is safe).
        for inv in token.invalidations().to_vec() {
            assert_eq!(inv.notifier, n);
            s.unpin_pages(&pinned, true);
            s.notifier_remove(inv.notifier);
        }
        assert_eq!(s.commit(token), Ok(va));
        assert!(!s.has_pending());
        assert!(s.read_retry(late, late_seq));
        assert!(!s.read_retry(apart, apart_seq));
        assert!(s.read_retry(n, 0), "removed notifier reports retry");
        // The two extra pins hold orphans; everything else is free.
        for (i, &p) in pinned.iter().enumerate() {
            let want =
                if i < 2 { FrameState::Orphan { owner: OwnerId(1) } } else { FrameState::Free };
            assert_eq!(s.frame_state(p), Some(want), "page {i}");
        }
        s.unpin_pages(&extra, false);
        assert_eq!(s.frame_state(extra[0]), Some(FrameState::Free));
        assert_eq!(s.total_pins(), 0);
        s.check_invariants().unwrap();
    }

    #[test]
    fn tokens_are_checked() {
        let shared = pool(16);
        let mut a = AddressSpace::new(OwnerId(1), shared.clone());
        let mut b = AddressSpace::new(OwnerId(2), shared);
        let va = a.mmap(PS, Contiguity::Contiguous).unwrap();
        let vb = b.mmap(PS, Contiguity::Contiguous).unwrap();
        let ta = a.begin_munmap(va, PS).unwrap();
        let tb = b.begin_munmap(vb, PS).unwrap();
        assert_eq!(a.commit(tb), Err(UnmapError::StaleToken));
        // b's operation is still pending (the token was consumed): abort is the only way out,
        // and it needs the token, so b stays locked. a is unaffected.
        assert!(b.has_pending());
        let n = a.notifier_insert(va, PS).unwrap();
        let seq = a.read_begin(n);
        a.abort(ta).unwrap();
        assert!(!a.has_pending());
        assert!(a.translate(va).is_some());
        // An abort after begin_invalidate retires sequences too.
        let t = a.begin_invalidate(va, PS, InvalidateEvent::Protection).unwrap();
        assert_eq!(t.invalidations()[0].event, InvalidateEvent::Protection);
        assert!(!t.invalidations()[0].event.is_unmap());
        a.commit(t).unwrap();
        assert!(a.read_retry(n, seq));
        assert!(a.translate(va).is_some());
    }
}
