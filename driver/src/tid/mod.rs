//! The kernel side of hfi1's user expected receive with TID caching (facts §5, §6): TID_UPDATE,
//! TID_FREE, TID_INVAL_READ, the MMU-notifier callbacks, close, and the per-fd event word, for
//! one hardware receive context shared by its subcontexts (one fd each).
//!
//! # Map
//!
//! | file | hfi1 | owns |
//! |---|---|---|
//! | `mod.rs` | `hfi1_ctxtdata` (expected part), `hfi1_user_exp_rcv_init` | [`TidContext`], CTXT_INFO, events, open |
//! | `config.rs` | module params, history | [`TidConfig`], [`BugSwitches`], the resolved behaviour |
//! | `pagesets.rs` | `find_phys_blocks` | [`PageSet`], [`find_phys_blocks`] |
//! | `setup.rs` | `hfi1_user_exp_rcv_setup`, `pin_rcv_pages`, `set_rcvarray_entry` | TID_UPDATE, [`PendingSetup`] |
//! | `clear.rs` | `hfi1_user_exp_rcv_clear`, `unprogram_rcvarray`, `clear_tid_node`, `hfi1_user_exp_rcv_free` | TID_FREE, close |
//! | `invalidate.rs` | `tid_rb_invalidate`, `tid_cover_invalidate`, `hfi1_user_exp_rcv_invalid` | callbacks, TID_INVAL_READ |
//! | `node.rs` | `tid_rb_node` | the node, [`LiveTid`] |
//! | `fd.rs` | `hfi1_filedata` (expected part) | per-fd state, [`tid_limit`] |
//! | `stats.rs` | | [`TidStats`] |
//! | `binding.rs` | the ioctls of one fd | [`FdBinding`] (`HfiFd`) |
//! | `check.rs` | | [`TidContext::check_invariants`] |
//! | `standalone.rs` | | [`standalone::KernelSide`]: the context on a recording RcvArray and a simulated process |
//! | `test_utils.rs` | | `test_utils::TidRig` (feature `test-utils`): the same over an error-injecting memory |
//!
//! The group walk of `program_rcvarray` lives in [`rcvarray::TidGroupAllocator`]; this module
//! implements its [`rcvarray::SlotProgrammer`] (pin → DMA map → notifier → `put_tid`).
//!
//! # Policies
//!
//! - [`Policy::V2023`]: the current code. Cover notifier around setup (an UNMAP between pinning
//!   and the end of programming gives EBUSY with everything undone), TIDs reserved before
//!   programming, per-TID callback acting on UNMAP only and releasing the entry and pages at
//!   once (`__clear_tid_node`); the group slot and the node stay until TID_FREE.
//! - [`Policy::Seed`]: the 2016 design. Any invalidation event queues the tidinfo (once) and
//!   sets TID_MMU_NOTIFY; the entry stays programmed and the pages pinned until TID_FREE; no
//!   cover notifier; no reservation.
//! - [`Policy::NoCache`]: HFI1_CAP_TID_UNMAP set. No notifiers, no invalid queue, every fd may
//!   use the whole expected range.
//!
//! [`BugSwitches`] put single historical bugs back on top of a policy.
//!
//! # Invariants (checked by [`TidContext::check_invariants`] and the model test)
//!
//! - The group allocator's used entries are exactly the nodes' entries.
//! - Every valid RcvArray entry of the expected range belongs to a node not yet released and
//!   carries its DMA address and size; every such node's frames are pinned.
//! - `pinned_vm` = Σ pages of unreleased nodes = Σ fds' `tid_n_pinned` (without bug switches).
//! - Between calls no cover notifier is registered.

mod binding;
mod check;
mod clear;
mod config;
mod fd;
mod hook;
mod invalidate;
mod node;
mod pagesets;
mod setup;
pub mod standalone;
mod stats;
#[cfg(any(test, feature = "test-utils"))]
pub mod test_utils;

use std::collections::BTreeMap;

use hfi_abi::uapi::{cap, event, HFI1_MAX_SHARED_CTXTS};
use mmu::NotifierId;
use rcvarray::TidGroupAllocator;

pub use binding::FdBinding;
pub use config::{BugSwitches, TidConfig};
pub use fd::tid_limit;
pub use hook::FreeHook;
pub use node::LiveTid;
pub use pagesets::{find_phys_blocks, PageSet, MAX_PAGESET_PAGES};
pub use setup::PendingSetup;
pub use stats::{FdStats, TidStats};

use crate::errno::Errno;
use crate::uapi::{CtxtInfo, Policy};
use config::Behaviour;
use fd::FdState;
use node::TidNode;

/// The TID_UNMAP capability as CTXT_INFO reports it: the kernel bit (10) and its user copy
/// (bit 34, `<< HFI1_CAP_USER_SHIFT`). hfi1 sets only the kernel bit in `runtime_flags` when an
/// fd cannot cache; both are set here so a reader of either convention sees "caching off".
pub const RUNTIME_TID_UNMAP: u64 = cap::TID_UNMAP | (cap::TID_UNMAP << cap::USER_SHIFT);

/// What a registered interval notifier watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Watch {
    /// A TID node, by relative entry.
    Node(u32),
    /// The cover notifier of a setup in flight, and what its callback saw.
    Cover { unmap_seen: bool, other_seen: bool },
}

/// The expected-receive state of one hardware receive context, shared by its subcontexts
/// (= fds `0..subctxt_cnt`): the expected RcvArray range and its group allocator (the
/// `exp_mutex` domain), the per-fd state, and the TID nodes.
#[derive(Debug)]
pub struct TidContext {
    ctxt: u32,
    expected_base: u32,
    expected_count: u32,
    subctxt_cnt: u32,
    cfg: TidConfig,
    beh: Behaviour,
    base_info: CtxtInfo,
    groups: TidGroupAllocator,
    fds: Vec<FdState>,
    /// `entry_to_rb` of every fd: relative entry → node (the owner is in the node).
    nodes: BTreeMap<u32, TidNode>,
    notifiers: BTreeMap<NotifierId, Watch>,
    /// Frames pinned and then forgotten (only the `setup_error_exit` bug does this).
    leaked: Vec<mmu::Pfn>,
    stats: TidStats,
    /// Fault-injection hook of the TID_FREE path (none by default).
    pub(crate) free_hook: Option<Box<dyn hook::FreeHook>>,
}

impl TidContext {
    /// The context `ctxt` with expected entries `[expected_base, expected_base +
    /// expected_count)` and `subctxt_cnt` subcontexts (0 = none; fds `0..max(1, subctxt_cnt)`,
    /// at most 8, all open).
    ///
    /// `expected_count` is rounded down to whole groups and capped at 2048 as by
    /// [`TidGroupAllocator::new`]. `base_info` carries what bring-up knows (rcvtids, egrtids,
    /// rcvhdrq_*, rcvegr_size); CTXT_INFO fills in ctxt, subctxt, tid_limit and the TID_UNMAP
    /// bits of runtime_flags.
    pub fn new(
        ctxt: u32,
        expected_base: u32,
        expected_count: u32,
        subctxt_cnt: u32,
        cfg: TidConfig,
        base_info: CtxtInfo,
    ) -> Self {
        let groups = TidGroupAllocator::new(expected_base, expected_count);
        let expected_count = groups.expected_count();
        let subctxt_cnt = subctxt_cnt.min(HFI1_MAX_SHARED_CTXTS);
        let beh = Behaviour::resolve(&cfg);
        let fds = (0..subctxt_cnt.max(1))
            .map(|s| {
                FdState::opened(beh.caching, tid_limit(expected_count, subctxt_cnt, s, beh.caching))
            })
            .collect();
        TidContext {
            ctxt,
            expected_base,
            expected_count,
            subctxt_cnt,
            cfg,
            beh,
            base_info,
            groups,
            fds,
            nodes: BTreeMap::new(),
            notifiers: BTreeMap::new(),
            leaked: Vec::new(),
            stats: TidStats { policy: cfg.policy, ..TidStats::default() },
            free_hook: None,
        }
    }

    /// The hardware context number.
    pub fn ctxt(&self) -> u32 {
        self.ctxt
    }

    /// First expected entry (absolute RcvArray index).
    pub fn expected_base(&self) -> u32 {
        self.expected_base
    }

    /// Expected entries in effect (a multiple of 8, ≤ 2048).
    pub fn expected_count(&self) -> u32 {
        self.expected_count
    }

    /// Subcontexts as configured (0 = none).
    pub fn subctxt_cnt(&self) -> u32 {
        self.subctxt_cnt
    }

    /// Number of fds (subcontext slots).
    pub fn fd_count(&self) -> u32 {
        self.fds.len() as u32
    }

    /// The configuration.
    pub fn config(&self) -> &TidConfig {
        &self.cfg
    }

    /// The policy.
    pub fn policy(&self) -> Policy {
        self.cfg.policy
    }

    /// True when `fd` is open.
    pub fn is_open(&self, fd: u32) -> bool {
        self.fd(fd).is_some_and(|s| s.open)
    }

    /// CTXT_INFO for `fd`: `base_info` with ctxt, subctxt, tid_limit, and
    /// [`RUNTIME_TID_UNMAP`] set in runtime_flags when the fd does not cache (policy NoCache)
    /// and cleared when it does. An unknown fd reports tid_limit 0 and TID_UNMAP.
    pub fn ctxt_info(&self, fd: u32) -> CtxtInfo {
        let mut info = self.base_info;
        info.ctxt = self.ctxt;
        info.subctxt = fd;
        let (use_mn, limit) = self.fd(fd).map_or((false, 0), |s| (s.use_mn, s.tid_limit));
        info.tid_limit = limit;
        if use_mn {
            info.runtime_flags &= !RUNTIME_TID_UNMAP;
        } else {
            info.runtime_flags |= RUNTIME_TID_UNMAP;
        }
        info
    }

    /// The event word of `fd` (0 for an unknown or closed fd).
    pub fn event_word(&self, fd: u32) -> u64 {
        self.open_fd(fd).map_or(0, |s| s.events)
    }

    /// ACK_EVENT: clear `bits` (only the defined event bits 0..=5) in `fd`'s event word.
    pub fn ack_event(&mut self, fd: u32, bits: u64) -> Result<(), Errno> {
        match self.open_fd_mut(fd) {
            Ok(s) => {
                s.events &= !(bits & event::ALL);
                Ok(())
            }
            Err(e) => Err(self.stats.count_err(e)),
        }
    }

    /// Re-open a closed fd (hfi1_user_exp_rcv_init): fresh per-fd state. EBUSY if it is open,
    /// EBADF if there is no such subcontext.
    pub fn open(&mut self, fd: u32) -> Result<(), Errno> {
        let caching = self.beh.caching;
        let limit = tid_limit(self.expected_count, self.subctxt_cnt, fd, caching);
        match self.fds.get_mut(fd as usize) {
            Some(s) if s.open => Err(Errno::Busy),
            Some(s) => {
                *s = FdState::opened(caching, limit);
                Ok(())
            }
            None => Err(Errno::BadF),
        }
    }

    /// Fault injection: the copy_to_user of `fd`'s next TID_UPDATE fails (facts §6.2 step 12).
    pub fn fail_next_copyout(&mut self, fd: u32) {
        if let Some(s) = self.fds.get_mut(fd as usize) {
            s.fail_next_copyout = true;
        }
    }

    /// `tid_used` of `fd` (0 for an unknown fd).
    pub fn tid_used(&self, fd: u32) -> u32 {
        self.fd(fd).map_or(0, |s| s.tid_used)
    }

    /// `tid_n_pinned` of `fd` (0 for an unknown fd).
    pub fn tid_n_pinned(&self, fd: u32) -> u64 {
        self.fd(fd).map_or(0, |s| s.tid_n_pinned)
    }

    /// TIDs waiting in `fd`'s invalid queue.
    pub fn invalid_queued(&self, fd: u32) -> usize {
        self.fd(fd).map_or(0, |s| s.invalid_tids.len())
    }

    /// Counters and a snapshot of the live state.
    pub fn stats(&self) -> TidStats {
        let mut s = self.stats.clone();
        s.nodes_live = self.nodes.len() as u64;
        let programmed = self.nodes.values().filter(|n| !n.released);
        s.programmed_entries_live = programmed.clone().count() as u64;
        s.pinned_pages_live = programmed.map(|n| u64::from(n.npages)).sum();
        s.group_entries_used = self.groups.used_entries() as u64;
        s.fds = self
            .fds
            .iter()
            .enumerate()
            .map(|(i, f)| FdStats {
                fd: i as u32,
                open: f.open,
                use_mn: f.use_mn,
                tid_limit: f.tid_limit,
                tid_used: f.tid_used,
                tid_n_pinned: f.tid_n_pinned,
                invalid_queued: f.invalid_tids.len() as u32,
                event_word: f.events,
            })
            .collect();
        s
    }

    /// Every TID held, ascending by RcvArray entry.
    pub fn live_entries(&self) -> impl Iterator<Item = LiveTid> + '_ {
        self.nodes.values().map(TidNode::live)
    }

    /// The TID at absolute RcvArray entry `rcventry`, if one is held.
    pub fn live_entry(&self, rcventry: u32) -> Option<LiveTid> {
        let rel = rcventry.checked_sub(self.expected_base)?;
        self.nodes.get(&rel).map(TidNode::live)
    }

    /// The group allocator.
    pub fn groups(&self) -> &TidGroupAllocator {
        &self.groups
    }

    /// Frames pinned and never released by the `setup_error_exit` bug paths.
    pub fn leaked_pins(&self) -> &[mmu::Pfn] {
        &self.leaked
    }

    /// Cover notifiers registered (setups in flight).
    pub fn covers_in_flight(&self) -> usize {
        self.notifiers.values().filter(|w| matches!(w, Watch::Cover { .. })).count()
    }

    fn fd(&self, fd: u32) -> Option<&FdState> {
        self.fds.get(fd as usize)
    }

    fn open_fd(&self, fd: u32) -> Option<&FdState> {
        self.fd(fd).filter(|s| s.open)
    }

    fn open_fd_mut(&mut self, fd: u32) -> Result<&mut FdState, Errno> {
        self.fds.get_mut(fd as usize).filter(|s| s.open).ok_or(Errno::BadF)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(policy: Policy, subctxts: u32) -> TidContext {
        let base = CtxtInfo { rcvtids: 96, egrtids: 32, runtime_flags: 1, ..CtxtInfo::default() };
        TidContext::new(3, 1032, 64, subctxts, TidConfig::new(policy), base)
    }

    #[test]
    fn ctxt_info_per_policy() {
        let c = ctx(Policy::V2023, 3);
        assert_eq!(c.fd_count(), 3);
        let i = c.ctxt_info(1);
        assert_eq!((i.ctxt, i.subctxt, i.tid_limit, i.rcvtids, i.egrtids), (3, 1, 21, 96, 32));
        assert_eq!(i.runtime_flags, 1, "caching: TID_UNMAP clear, other bits kept");
        assert_eq!((c.ctxt_info(0).tid_limit, c.ctxt_info(2).tid_limit), (22, 21));
        let n = ctx(Policy::NoCache, 3);
        let i = n.ctxt_info(2);
        assert_eq!(i.tid_limit, 64);
        assert_eq!(i.runtime_flags, 1 | (1 << 10) | (1 << 34));
        // Unknown fd: nothing usable.
        let u = c.ctxt_info(9);
        assert_eq!(u.tid_limit, 0);
        assert_ne!(u.runtime_flags & RUNTIME_TID_UNMAP, 0);
    }

    #[test]
    fn geometry_is_clamped() {
        let c = TidContext::new(0, 8, 4100, 20, TidConfig::default(), CtxtInfo::default());
        assert_eq!(c.expected_count(), 2048);
        assert_eq!(c.fd_count(), 8);
        assert_eq!(c.subctxt_cnt(), 8);
        let c = TidContext::new(0, 8, 21, 0, TidConfig::default(), CtxtInfo::default());
        assert_eq!((c.expected_count(), c.fd_count(), c.ctxt_info(0).tid_limit), (16, 1, 16));
    }

    #[test]
    fn events_ack_and_open() {
        let mut c = ctx(Policy::Seed, 2);
        c.fds[0].events = event::TID_MMU_NOTIFY | event::LINKDOWN | (1 << 40);
        c.ack_event(0, event::TID_MMU_NOTIFY | (1 << 40)).unwrap();
        assert_eq!(c.event_word(0), event::LINKDOWN | (1 << 40));
        assert_eq!(c.ack_event(5, 1), Err(Errno::BadF));
        assert_eq!(c.stats().ebadf, 1);
        assert_eq!(c.open(0), Err(Errno::Busy));
        assert_eq!(c.open(2), Err(Errno::BadF));
        c.fds[1].open = false;
        assert!(!c.is_open(1));
        assert_eq!(c.event_word(1), 0);
        c.open(1).unwrap();
        assert!(c.is_open(1));
        assert_eq!(c.stats().fds.len(), 2);
    }
}
