//! The per-context TID group allocator of hfi1's user expected receive (facts §6.1–6.3, §6.6):
//! the three ordered group lists (`tid_group_list` = empty, `tid_used_list` = partly used,
//! `tid_full_list` = full), the placement of pagesets into groups done by TID_UPDATE
//! (`hfi1_user_exp_rcv_setup` + `program_rcvarray`), and the release done by TID_FREE
//! (`clear_tid_node`).
//!
//! The allocator decides *which* RcvArray entry each pageset goes to and keeps the lists. The
//! caller does the hardware and memory work through [`SlotProgrammer`]: pinning, DMA mapping,
//! node bookkeeping and the actual RcvArray writes.
//!
//! # Fidelity notes (checked against the hfi1 source, all versions 2016–2023)
//!
//! - When programming a whole group fails (the programmer returns an error), hfi1 puts the
//!   group back at the **tail** of the empty list (`tid_group_add_tail`) and jumps to `unlock`:
//!   the whole setup stops, the partial phase does not run. Entries programmed in that group
//!   before the error stay programmed and are returned to the caller, so an "empty-list" group
//!   can have `used > 0` (the source comment says it resets the group, but the code does not).
//! - In the partial phase a group is moved empty → used *before* it is programmed, so an error
//!   on its first slot leaves a group with no slot in use on the used list; the next setup
//!   walks it like any other used group.
//! - When such a group later drops to `used == 0`, hfi1 calls `tid_group_move(used → empty)` on
//!   a group that is not on the used list. The kernel's list counts go wrong at that point. Here
//!   the group is moved from the list it is actually on (to the tail of the empty list, the same
//!   place the kernel's `list_del` + `list_add_tail` put it) and the event is counted in
//!   [`TidGroupAllocator::list_mismatches`].
//! - `program_rcvarray` is called with a count above the group size only by a bug; hfi1 returns
//!   `-EINVAL` there, this returns 0 programmed (the caller's error type cannot express it).
//!   Neither can happen from [`TidGroupAllocator::setup`].

use std::collections::VecDeque;

use thiserror::Error;

use crate::group::{TidGroup, TID_GROUP_SIZE};
use crate::partition::MAX_EXPECTED;

/// Failure to release an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Error)]
pub enum AllocError {
    /// The entry is not in the context's expected range.
    #[error("RcvArray entry {0} is outside the context's expected range")]
    EntryOutOfRange(u32),
    /// The entry is in range but not programmed.
    #[error("RcvArray entry {0} is not in use")]
    SlotNotUsed(u32),
}

/// The three group lists of a context.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ListKind {
    /// `tid_group_list`: groups taken whole (normally with no slot in use).
    Empty,
    /// `tid_used_list`: groups with some slots in use.
    Used,
    /// `tid_full_list`: groups with every slot in use.
    Full,
}

/// Number of groups on each list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ListCounts {
    /// Groups on the empty list.
    pub empty: usize,
    /// Groups on the partly-used list.
    pub used: usize,
    /// Groups on the full list.
    pub full: usize,
}

/// The hardware side of placing pagesets, implemented by the driver.
///
/// Each `program_rcvarray` call of the allocator makes, in slot order, exactly one call per
/// slot of the group: [`SlotProgrammer::program`] for a slot it fills with a pageset and
/// [`SlotProgrammer::fill`] for every other slot, so that the CPU can emit one 64-byte
/// write-combined line. A call stops early only when `program` fails.
pub trait SlotProgrammer {
    /// Why programming one entry failed (hfi1: ENOMEM, EFAULT from the DMA map, a notifier
    /// insert error).
    type Error;

    /// WC zero-fill write to absolute RcvArray index `abs_entry` (`rcv_array_wc_fill`): a slot
    /// of the group not programmed by this call.
    fn fill(&mut self, abs_entry: u32);

    /// Program pageset number `pset` (index into the caller's pageset list) into absolute
    /// entry `abs_entry` (`set_rcvarray_entry`).
    fn program(&mut self, abs_entry: u32, pset: usize) -> Result<(), Self::Error>;
}

/// Result of [`TidGroupAllocator::setup`].
#[must_use]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetupOutcome<E> {
    /// Absolute entries in pageset order: pageset `i` went to `placed[i]`. Its length is
    /// hfi1's `tididx`; it is shorter than the request when groups ran out or on an error.
    pub placed: Vec<u32>,
    /// The first programming error, after which the setup stopped.
    pub error: Option<E>,
}

/// One context's TID groups and their three lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TidGroupAllocator {
    expected_base: u32,
    expected_count: u32,
    groups: Vec<TidGroup>,
    on_list: Vec<ListKind>,
    empty: VecDeque<usize>,
    used: VecDeque<usize>,
    full: VecDeque<usize>,
    used_entries: usize,
    list_mismatches: u64,
}

impl TidGroupAllocator {
    /// The groups of the expected range `[expected_base, expected_base + expected_count)`,
    /// all on the empty list in ascending order (hfi1_alloc_ctxt_rcv_groups).
    ///
    /// `expected_count` is rounded down to a multiple of 8 and capped at 2048 (the most a
    /// context can have) and so that no entry index overflows a u32;
    /// [`TidGroupAllocator::expected_count`] reports the count in effect.
    pub fn new(expected_base: u32, expected_count: u32) -> Self {
        let room = u32::MAX - expected_base;
        let count = expected_count.min(MAX_EXPECTED).min(room);
        let count = count - count % u32::from(TID_GROUP_SIZE);
        let ngroups = count / u32::from(TID_GROUP_SIZE);
        let groups: Vec<TidGroup> = (0..ngroups)
            .map(|i| TidGroup::new(expected_base + i * u32::from(TID_GROUP_SIZE)))
            .collect();
        let n = groups.len();
        Self {
            expected_base,
            expected_count: count,
            groups,
            on_list: vec![ListKind::Empty; n],
            empty: (0..n).collect(),
            used: VecDeque::new(),
            full: VecDeque::new(),
            used_entries: 0,
            list_mismatches: 0,
        }
    }

    /// First expected entry of the context.
    pub fn expected_base(&self) -> u32 {
        self.expected_base
    }

    /// Expected entries managed (a multiple of 8).
    pub fn expected_count(&self) -> u32 {
        self.expected_count
    }

    /// All groups, ascending by base.
    pub fn groups(&self) -> &[TidGroup] {
        &self.groups
    }

    /// The group holding absolute entry `abs_entry`.
    pub fn group_of(&self, abs_entry: u32) -> Option<&TidGroup> {
        let (g, _) = self.locate(abs_entry)?;
        self.groups.get(g)
    }

    /// The list the group holding `abs_entry` is on.
    pub fn list_of(&self, abs_entry: u32) -> Option<ListKind> {
        let (g, _) = self.locate(abs_entry)?;
        self.on_list.get(g).copied()
    }

    /// True when `abs_entry` is in the expected range and programmed.
    pub fn is_used(&self, abs_entry: u32) -> bool {
        self.locate(abs_entry)
            .and_then(|(g, slot)| self.groups.get(g).map(|grp| grp.is_slot_used(slot)))
            .unwrap_or(false)
    }

    /// Groups on each list.
    pub fn counts(&self) -> ListCounts {
        ListCounts { empty: self.empty.len(), used: self.used.len(), full: self.full.len() }
    }

    /// Entries in use.
    pub fn used_entries(&self) -> usize {
        self.used_entries
    }

    /// Absolute entries in use, ascending.
    pub fn iter_used_entries(&self) -> impl Iterator<Item = u32> + '_ {
        self.groups.iter().flat_map(TidGroup::used_entries)
    }

    /// Bases of the groups on the empty list, head first.
    pub fn empty_list(&self) -> impl Iterator<Item = u32> + '_ {
        self.list_bases(&self.empty)
    }

    /// Bases of the groups on the partly-used list, head first.
    pub fn used_list(&self) -> impl Iterator<Item = u32> + '_ {
        self.list_bases(&self.used)
    }

    /// Bases of the groups on the full list, head first.
    pub fn full_list(&self) -> impl Iterator<Item = u32> + '_ {
        self.list_bases(&self.full)
    }

    /// How many times a release moved a group from a list it was not on, where hfi1's list
    /// counts would have gone wrong (see the module notes).
    pub fn list_mismatches(&self) -> u64 {
        self.list_mismatches
    }

    /// Everything back to the state of [`TidGroupAllocator::new`].
    pub fn reset(&mut self) {
        self.groups.iter_mut().for_each(TidGroup::reset);
        self.on_list.fill(ListKind::Empty);
        self.empty = (0..self.groups.len()).collect();
        self.used.clear();
        self.full.clear();
        self.used_entries = 0;
        self.list_mismatches = 0;
    }

    /// Places `count` pagesets (hfi1's `pageset_count`, after the tid_limit reservation),
    /// in order, calling `p` for every RcvArray write.
    ///
    /// 1. Whole groups: for each 8 pagesets, while the empty list has groups, pop its head and
    ///    program the next 8 pagesets into it. On success the group goes to the tail of the full
    ///    list; on failure back to the tail of the empty list, and the setup ends.
    /// 2. The rest: while pagesets remain, take the head of the empty list onto the tail of the
    ///    used list when the used list is empty (or a group programmed nothing), then walk the
    ///    used list head to tail putting `min(remaining, free slots)` pagesets in each group,
    ///    moving groups that become full to the tail of the full list. The setup ends when all
    ///    pagesets are placed, when no group is left, or at the first error.
    pub fn setup<P: SlotProgrammer>(&mut self, count: usize, p: &mut P) -> SetupOutcome<P::Error> {
        let mut placed = Vec::with_capacity(count.min(self.expected_count as usize));
        let error = self.place(count, &mut placed, p).err();
        self.used_entries += placed.len();
        SetupOutcome { placed, error }
    }

    /// The two phases of [`TidGroupAllocator::setup`]; `Err` is the error that stopped it.
    fn place<P: SlotProgrammer>(
        &mut self,
        count: usize,
        placed: &mut Vec<u32>,
        p: &mut P,
    ) -> Result<(), P::Error> {
        let size = usize::from(TID_GROUP_SIZE);
        let mut ngroups = count / size;
        while ngroups > 0 {
            let Some(g) = self.empty.pop_front() else {
                break;
            };
            match self.program_group(g, size, placed, p) {
                Ok(n) if n > 0 => {
                    self.push(g, ListKind::Full);
                    ngroups -= 1;
                }
                Ok(_) => {
                    self.push(g, ListKind::Empty);
                    return Ok(());
                }
                Err(e) => {
                    self.push(g, ListKind::Empty);
                    return Err(e);
                }
            }
        }

        let mut need_group = false;
        while placed.len() < count {
            if self.used.is_empty() || need_group {
                let Some(g) = self.empty.pop_front() else {
                    return Ok(());
                };
                self.push(g, ListKind::Used);
                need_group = false;
            }
            // list_for_each_entry_safe: only the current group can leave the list.
            let mut i = 0;
            while let Some(&g) = self.used.get(i) {
                let free = self.groups.get(g).map_or(0, |grp| usize::from(grp.size() - grp.used()));
                let take = (count - placed.len()).min(free);
                let n = self.program_group(g, take, placed, p)?;
                if n > 0 {
                    need_group = false;
                    if self.groups.get(g).is_some_and(TidGroup::is_full) {
                        self.used.remove(i);
                        self.push(g, ListKind::Full);
                    } else {
                        i += 1;
                    }
                    if placed.len() >= count {
                        break;
                    }
                } else {
                    // hfi1 WARN_ON: an accounting bug; take a fresh group next time round.
                    need_group = true;
                    i += 1;
                }
            }
        }
        Ok(())
    }

    /// hfi1 `program_rcvarray` on group `g`: returns how many pagesets it programmed.
    fn program_group<P: SlotProgrammer>(
        &mut self,
        g: usize,
        count: usize,
        placed: &mut Vec<u32>,
        p: &mut P,
    ) -> Result<usize, P::Error> {
        let Some(grp) = self.groups.get_mut(g) else {
            return Ok(0);
        };
        program_rcvarray(grp, count, placed, p)
    }

    /// Releases entry `abs_entry` (the group half of hfi1 `clear_tid_node`): the slot is
    /// freed; a group that was full moves to the tail of the used list, a group that becomes
    /// empty moves to the tail of the empty list.
    pub fn clear(&mut self, abs_entry: u32) -> Result<(), AllocError> {
        let (g, slot) = self.locate(abs_entry).ok_or(AllocError::EntryOutOfRange(abs_entry))?;
        let grp = self.groups.get_mut(g).ok_or(AllocError::EntryOutOfRange(abs_entry))?;
        if !grp.mark_free(slot) {
            return Err(AllocError::SlotNotUsed(abs_entry));
        }
        self.used_entries = self.used_entries.saturating_sub(1);
        if grp.used() == grp.size() - 1 {
            self.move_group(g, ListKind::Full, ListKind::Used);
        } else if grp.used() == 0 {
            self.move_group(g, ListKind::Used, ListKind::Empty);
        }
        Ok(())
    }

    /// Group index and slot of `abs_entry`.
    fn locate(&self, abs_entry: u32) -> Option<(usize, u8)> {
        let rel = abs_entry.checked_sub(self.expected_base)?;
        if rel >= self.expected_count {
            return None;
        }
        let size = u32::from(TID_GROUP_SIZE);
        Some(((rel / size) as usize, (rel % size) as u8))
    }

    fn list_bases<'a>(&'a self, list: &'a VecDeque<usize>) -> impl Iterator<Item = u32> + 'a {
        list.iter().filter_map(|&g| self.groups.get(g).map(TidGroup::base))
    }

    fn list_mut(&mut self, kind: ListKind) -> &mut VecDeque<usize> {
        match kind {
            ListKind::Empty => &mut self.empty,
            ListKind::Used => &mut self.used,
            ListKind::Full => &mut self.full,
        }
    }

    /// Appends group `g` (already off every list) to the tail of `to`.
    fn push(&mut self, g: usize, to: ListKind) {
        self.list_mut(to).push_back(g);
        if let Some(k) = self.on_list.get_mut(g) {
            *k = to;
        }
    }

    /// hfi1 `tid_group_move(g, from, to)`: off its list, onto the tail of `to`.
    fn move_group(&mut self, g: usize, from: ListKind, to: ListKind) {
        let Some(&actual) = self.on_list.get(g) else {
            return;
        };
        if actual != from {
            self.list_mismatches += 1;
        }
        let list = self.list_mut(actual);
        if let Some(pos) = list.iter().position(|&x| x == g) {
            list.remove(pos);
        }
        self.push(g, to);
    }
}

/// hfi1 `program_rcvarray`: puts up to `count` pagesets (numbered from `placed.len()`) into the
/// free slots of `grp`, in slot order, and writes every other slot with a WC fill. Returns the
/// number programmed; on an error, the slots programmed before it stay programmed and the
/// remaining slots get no write.
fn program_rcvarray<P: SlotProgrammer>(
    grp: &mut TidGroup,
    count: usize,
    placed: &mut Vec<u32>,
    p: &mut P,
) -> Result<usize, P::Error> {
    let size = grp.size();
    if count > usize::from(size) {
        return Ok(0);
    }
    // Used slots before the first free one get a fill. If no slot is free, hfi1 leaves
    // useidx at 0 (the loop below then fills every slot a second time); kept as it is.
    let mut useidx: u8 = 0;
    for idx in 0..size {
        if !grp.is_slot_used(idx) {
            useidx = idx;
            break;
        }
        fill(grp, idx, p);
    }
    let mut programmed = 0;
    while programmed < count {
        if useidx >= size {
            break;
        }
        if grp.is_slot_used(useidx) {
            fill(grp, useidx, p);
            useidx += 1;
            continue;
        }
        let Some(abs) = grp.entry(useidx) else {
            break;
        };
        p.program(abs, placed.len())?;
        placed.push(abs);
        grp.mark_used(useidx);
        useidx += 1;
        programmed += 1;
    }
    // Fill the rest of the group with blank writes.
    for idx in useidx..size {
        fill(grp, idx, p);
    }
    Ok(programmed)
}

fn fill<P: SlotProgrammer>(grp: &TidGroup, slot: u8, p: &mut P) {
    if let Some(abs) = grp.entry(slot) {
        p.fill(abs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One RcvArray write as the programmer saw it.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Write {
        Fill(u32),
        Program(u32, usize),
    }

    /// Records writes; the `fail_at`-th program call (0-based, counted over its life) fails.
    #[derive(Default)]
    struct Recorder {
        log: Vec<Write>,
        programs: usize,
        fail_at: Option<usize>,
    }

    impl SlotProgrammer for Recorder {
        type Error = &'static str;
        fn fill(&mut self, abs_entry: u32) {
            self.log.push(Write::Fill(abs_entry));
        }
        fn program(&mut self, abs_entry: u32, pset: usize) -> Result<(), &'static str> {
            let n = self.programs;
            self.programs += 1;
            if self.fail_at == Some(n) {
                return Err("dma map failed");
            }
            self.log.push(Write::Program(abs_entry, pset));
            Ok(())
        }
    }

    fn bases(it: impl Iterator<Item = u32>) -> Vec<u32> {
        it.collect()
    }

    #[test]
    fn fresh_allocator() {
        let a = TidGroupAllocator::new(2048, 64);
        assert_eq!((a.expected_base(), a.expected_count()), (2048, 64));
        assert_eq!(a.counts(), ListCounts { empty: 8, used: 0, full: 0 });
        assert_eq!(bases(a.empty_list()), (0..8).map(|i| 2048 + 8 * i).collect::<Vec<_>>());
        assert_eq!(a.used_entries(), 0);
        assert!(!a.is_used(2048));
        // Clamping: not a multiple of 8, above 2048, near u32::MAX.
        assert_eq!(TidGroupAllocator::new(0, 21).expected_count(), 16);
        assert_eq!(TidGroupAllocator::new(0, 4096).expected_count(), 2048);
        assert_eq!(TidGroupAllocator::new(u32::MAX - 20, 64).expected_count(), 16);
        assert_eq!(TidGroupAllocator::new(u32::MAX, 64).counts().empty, 0);
    }

    #[test]
    fn worked_setup_and_clear() {
        let mut a = TidGroupAllocator::new(2048, 64);
        let mut r = Recorder::default();

        // 11 pagesets: one whole group (2048..2056) to the full list, 3 into the next group.
        let out = a.setup(11, &mut r);
        assert_eq!(out.error, None);
        assert_eq!(out.placed, (2048..2059).collect::<Vec<_>>());
        let mut want: Vec<Write> = (0..8).map(|i| Write::Program(2048 + i, i as usize)).collect();
        want.extend((8..11).map(|i| Write::Program(2048 + i, i as usize)));
        want.extend((2059..2064).map(Write::Fill)); // the 5 slots not programmed
        assert_eq!(r.log, want);
        assert_eq!(bases(a.full_list()), [2048]);
        assert_eq!(bases(a.used_list()), [2056]);
        assert_eq!(a.counts().empty, 6);
        assert_eq!(a.used_entries(), 11);
        assert_eq!(a.group_of(2058).map(TidGroup::map_bits), Some(0b111));
        assert_eq!(a.list_of(2058), Some(ListKind::Used));

        // 2 more: into the used group; its used slots get fills first, then the tail.
        r.log.clear();
        let out = a.setup(2, &mut r);
        assert_eq!(out.placed, [2059, 2060]);
        assert_eq!(
            r.log,
            [
                Write::Fill(2056),
                Write::Fill(2057),
                Write::Fill(2058),
                Write::Program(2059, 0),
                Write::Program(2060, 1),
                Write::Fill(2061),
                Write::Fill(2062),
                Write::Fill(2063),
            ]
        );

        // Freeing one entry of the full group moves it to the tail of the used list.
        a.clear(2050).unwrap();
        assert_eq!(bases(a.full_list()), Vec::<u32>::new());
        assert_eq!(bases(a.used_list()), [2056, 2048]);
        assert_eq!(a.clear(2050), Err(AllocError::SlotNotUsed(2050)));
        assert_eq!(a.clear(2047), Err(AllocError::EntryOutOfRange(2047)));
        assert_eq!(a.clear(2112), Err(AllocError::EntryOutOfRange(2112)));

        // 4 pagesets: walk the used list from the head: 3 fill group 2056, 1 goes to 2048.
        r.log.clear();
        let out = a.setup(4, &mut r);
        assert_eq!(out.placed, [2061, 2062, 2063, 2050]);
        assert_eq!(bases(a.full_list()), [2056, 2048]);
        assert_eq!(a.counts().used, 0);
        // Every program_rcvarray call wrote each slot of its group once, in order.
        let written: Vec<u32> = r
            .log
            .iter()
            .map(|w| match *w {
                Write::Fill(e) | Write::Program(e, _) => e,
            })
            .collect();
        assert_eq!(written, (2056..2064).chain(2048..2056).collect::<Vec<_>>());

        // Free group 2056 completely: full -> used at the first free, used -> empty at the last.
        for e in 2056..2064 {
            a.clear(e).unwrap();
            let want = if e == 2063 { ListKind::Empty } else { ListKind::Used };
            assert_eq!(a.list_of(e), Some(want));
        }
        assert_eq!(a.empty_list().last(), Some(2056));
        assert_eq!(a.used_entries(), 8);
        assert_eq!(a.iter_used_entries().collect::<Vec<_>>(), (2048..2056).collect::<Vec<_>>());
        assert_eq!(a.list_mismatches(), 0);

        a.reset();
        assert_eq!(a, TidGroupAllocator::new(2048, 64));
    }

    #[test]
    fn runs_out_of_groups() {
        let mut a = TidGroupAllocator::new(0, 16);
        let mut r = Recorder::default();
        let out = a.setup(20, &mut r);
        assert_eq!(out.placed, (0..16).collect::<Vec<_>>());
        assert_eq!(out.error, None);
        assert_eq!(a.counts().full, 2);
        let out = a.setup(1, &mut r);
        assert!(out.placed.is_empty() && out.error.is_none());
        // A huge request is bounded by the groups, not by the count.
        let mut a = TidGroupAllocator::new(0, 16);
        let out = a.setup(usize::MAX, &mut r);
        assert_eq!(out.placed.len(), 16);
    }

    #[test]
    fn whole_group_failure_stops_setup() {
        let mut a = TidGroupAllocator::new(0, 32);
        // The 3rd program call fails: two entries of group 0 stay programmed.
        let mut r = Recorder { fail_at: Some(2), ..Recorder::default() };
        let out = a.setup(12, &mut r);
        assert_eq!(out.placed, [0, 1]);
        assert_eq!(out.error, Some("dma map failed"));
        assert_eq!(r.log, [Write::Program(0, 0), Write::Program(1, 1)]);
        // Group 0 went back to the tail of the empty list, and the partial phase did not run.
        assert_eq!(bases(a.empty_list()), [8, 16, 24, 0]);
        assert_eq!(a.counts().used, 0);
        assert_eq!(a.group_of(0).map(TidGroup::used), Some(2));
        // Whole-group phase on group 8, then the partial phase takes group 16 (head).
        let out = a.setup(9, &mut r);
        assert_eq!(out.placed, (8..17).collect::<Vec<_>>());
        assert_eq!(bases(a.empty_list()), [24, 0]);
        // Freeing the two entries: hfi1 would "move used -> empty" a group on the empty list.
        a.clear(1).unwrap();
        a.clear(0).unwrap();
        assert_eq!(a.list_mismatches(), 1);
        assert_eq!(bases(a.empty_list()), [24, 0]);
        assert_eq!(a.counts().empty, 2);
    }

    #[test]
    fn partial_phase_failure() {
        let mut a = TidGroupAllocator::new(0, 32);
        let mut r = Recorder { fail_at: Some(1), ..Recorder::default() };
        let out = a.setup(3, &mut r);
        assert_eq!(out.placed, [0]);
        assert!(out.error.is_some());
        // Slot 0 programmed, the failing slot 1 and the rest got no write.
        assert_eq!(r.log, [Write::Program(0, 0)]);
        assert_eq!(bases(a.used_list()), [0]);
        assert_eq!(a.used_entries(), 1);
    }

    #[test]
    fn partly_used_group_on_empty_list_is_reused_whole() {
        let mut a = TidGroupAllocator::new(0, 16);
        let mut r = Recorder { fail_at: Some(3), ..Recorder::default() };
        let _ = a.setup(8, &mut r);
        assert_eq!(bases(a.empty_list()), [8, 0]);
        // 16 pagesets: group 8 whole, then group 0 "whole" takes only its 5 free slots.
        let out = a.setup(16, &mut r);
        assert_eq!(out.placed, (8..16).chain(3..8).collect::<Vec<_>>());
        assert_eq!(bases(a.full_list()), [8, 0]);
        assert_eq!(a.used_entries(), 16);
    }
}
