//! What a context's TID caching does: the [`Policy`] (which generation of hfi1) and the
//! [`BugSwitches`] that put single historical bugs back (facts §6.8), resolved once into the
//! internal [`Behaviour`] the algorithm reads.

use mmu::{CanPinVariant, DEFAULT_CACHE_SIZE_MB};
use serde::{Deserialize, Serialize};

use crate::uapi::Policy;

/// Re-introduce historical bugs of hfi1's expected-receive path (facts §6.8). Every switch
/// defaults to `false`, the fixed behaviour; each one undoes exactly one fix.
///
/// The [`Policy::Seed`] *design* (queue-only callback on any event, no cover notifier, no TID
/// reservation) is implied by the policy, not by these switches; the 2016 pin arithmetic and the
/// 2016 pinned-count bug stay switches even under `Seed`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct BugSwitches {
    /// 2016: `tid_n_pinned += npages` (pages asked for) instead of `+= pinned` (pages actually
    /// pinned). A partial pin inflates the fd's pinned count for good, so the pin limit refuses
    /// too early.
    pub pinned_count_npages: bool,
    /// Before "Restore allocated resources on failed copyout" (2023): the clear after a failed
    /// copy-out was handed the address of the list pointer, so it cleared nothing: the TIDs stay
    /// programmed, pinned and counted in `tid_used`, and user space never learns their tidinfo.
    pub copyout_bad_clear: bool,
    /// Before 97736f36dbeb "Validate page aligned for a given virtual address": an unaligned
    /// vaddr is accepted; the TIDs start at the page boundary below it.
    pub allow_unaligned_vaddr: bool,
    /// Before "Reject a zero-length user expected buffer" (2023): length 0 is accepted (hfi1's
    /// `num_user_pages` then truncates to 0 pages; see `setup_error_exit` for what follows).
    pub allow_zero_length: bool,
    /// Before "Reserve user expected TIDs" (2023): `tid_used` is raised only after programming,
    /// so two setups in flight on one fd can both take the same headroom and overshoot
    /// `tid_limit` (see [`crate::tid::TidContext::tid_update_begin`]).
    pub no_tid_reservation: bool,
    /// Before "Fix expected receive setup error exit issues" (2023): 0 pages pinned or no TID
    /// headroom returns *success* with tidcnt and length left as user space passed them (no TID,
    /// length echoed); the headroom case and a failed copy-out also leave pages pinned for good.
    pub setup_error_exit: bool,
    /// Before 1c7edde1b572 "Immediately remove invalid memory from hardware" (2023), under
    /// [`Policy::V2023`]: the per-TID callback reacts to any event but only queues the tidinfo;
    /// the entry stays programmed and the pages pinned until TID_FREE.
    pub lazy_invalidate: bool,
    /// Before b3deec25847b "Remove user expected buffer invalidate race" (2023), under
    /// [`Policy::V2023`]: no cover notifier, so an unmap between pinning and programming goes
    /// unseen and the TIDs point at orphaned pages.
    pub no_cover_notifier: bool,
    /// Before "Improve TID validity checking" (2023): CTRL 0 is accepted (it names the odd entry
    /// of the previous pair) and the range is checked on `IDX*2` instead of the final entry.
    pub weak_tid_validity: bool,
    /// Before a0d198f79a8d "Fix arithmetic and logic errors in hfi1_can_pin_pages": the 2016
    /// arithmetic ([`CanPinVariant::Seed2016`]).
    pub pin_limit_2016: bool,
}

impl BugSwitches {
    /// Every switch off: the fixed code.
    pub const NONE: BugSwitches = BugSwitches {
        pinned_count_npages: false,
        copyout_bad_clear: false,
        allow_unaligned_vaddr: false,
        allow_zero_length: false,
        no_tid_reservation: false,
        setup_error_exit: false,
        lazy_invalidate: false,
        no_cover_notifier: false,
        weak_tid_validity: false,
        pin_limit_2016: false,
    };

    /// Every switch on: all the fixed bugs at once (the 2016–2020 code path by path).
    pub const ALL: BugSwitches = BugSwitches {
        pinned_count_npages: true,
        copyout_bad_clear: true,
        allow_unaligned_vaddr: true,
        allow_zero_length: true,
        no_tid_reservation: true,
        setup_error_exit: true,
        lazy_invalidate: true,
        no_cover_notifier: true,
        weak_tid_validity: true,
        pin_limit_2016: true,
    };

    /// `(name, on)` for every switch, in declaration order (for reports).
    pub fn list(&self) -> [(&'static str, bool); 10] {
        [
            ("pinned_count_npages", self.pinned_count_npages),
            ("copyout_bad_clear", self.copyout_bad_clear),
            ("allow_unaligned_vaddr", self.allow_unaligned_vaddr),
            ("allow_zero_length", self.allow_zero_length),
            ("no_tid_reservation", self.no_tid_reservation),
            ("setup_error_exit", self.setup_error_exit),
            ("lazy_invalidate", self.lazy_invalidate),
            ("no_cover_notifier", self.no_cover_notifier),
            ("weak_tid_validity", self.weak_tid_validity),
            ("pin_limit_2016", self.pin_limit_2016),
        ]
    }

    /// True when any switch is on.
    pub fn any(&self) -> bool {
        self.list().iter().any(|&(_, on)| on)
    }
}

/// Configuration of one context's TID caching.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TidConfig {
    /// Which generation of hfi1 to reproduce.
    pub policy: Policy,
    /// The `cache_size` module parameter in MiB (default 256): the per-fd pin cap.
    pub cache_size_mb: u64,
    /// User contexts on the device (`num_rcv_contexts - first_dyn_alloc_ctxt`), the divisor of
    /// the RLIMIT_MEMLOCK share in `hfi1_can_pin_pages` (default 1).
    pub user_ctxts: u32,
    /// Historical bugs to put back (default: none).
    pub bugs: BugSwitches,
}

impl Default for TidConfig {
    fn default() -> Self {
        TidConfig {
            policy: Policy::default(),
            cache_size_mb: DEFAULT_CACHE_SIZE_MB,
            user_ctxts: 1,
            bugs: BugSwitches::NONE,
        }
    }
}

impl TidConfig {
    /// The default configuration with `policy`.
    pub fn new(policy: Policy) -> Self {
        TidConfig { policy, ..TidConfig::default() }
    }

    /// This configuration with `bugs`.
    pub fn with_bugs(self, bugs: BugSwitches) -> Self {
        TidConfig { bugs, ..self }
    }
}

/// The policy and the switches resolved into what the code paths ask.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Behaviour {
    /// Caching on (`fd->use_mn`): interval notifiers per TID, the invalid-TID queue, the
    /// tid_limit split between subcontexts.
    pub(crate) caching: bool,
    /// 2023 cover notifier around setup (`tid_cover_invalidate` + read_retry → EBUSY).
    pub(crate) cover_notifier: bool,
    /// 2023 reservation of `tid_used` before programming.
    pub(crate) reserve: bool,
    /// 2023 callback: UNMAP only, `__clear_tid_node` at once. Otherwise: any event, queue only.
    pub(crate) immediate_invalidate: bool,
    /// Which `hfi1_can_pin_pages` arithmetic.
    pub(crate) pin_variant: CanPinVariant,
    pub(crate) pinned_count_npages: bool,
    pub(crate) copyout_bad_clear: bool,
    pub(crate) allow_unaligned_vaddr: bool,
    pub(crate) allow_zero_length: bool,
    pub(crate) setup_error_exit: bool,
    pub(crate) weak_tid_validity: bool,
}

impl Behaviour {
    /// Resolve `cfg`: `Seed` implies the 2016 design, `NoCache` turns caching off (on the 2023
    /// code otherwise), the switches add single bugs.
    pub(crate) fn resolve(cfg: &TidConfig) -> Behaviour {
        let b = cfg.bugs;
        let caching = cfg.policy != Policy::NoCache;
        let v2023 = cfg.policy == Policy::V2023;
        Behaviour {
            caching,
            cover_notifier: caching && v2023 && !b.no_cover_notifier,
            reserve: cfg.policy != Policy::Seed && !b.no_tid_reservation,
            immediate_invalidate: v2023 && !b.lazy_invalidate,
            pin_variant: if b.pin_limit_2016 {
                CanPinVariant::Seed2016
            } else {
                CanPinVariant::V2023
            },
            pinned_count_npages: b.pinned_count_npages,
            copyout_bad_clear: b.copyout_bad_clear,
            allow_unaligned_vaddr: b.allow_unaligned_vaddr,
            allow_zero_length: b.allow_zero_length,
            setup_error_exit: b.setup_error_exit,
            weak_tid_validity: b.weak_tid_validity,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_resolve() {
        let v = Behaviour::resolve(&TidConfig::new(Policy::V2023));
        assert!(v.caching && v.cover_notifier && v.reserve && v.immediate_invalidate);
        assert_eq!(v.pin_variant, CanPinVariant::V2023);
        let s = Behaviour::resolve(&TidConfig::new(Policy::Seed));
        assert!(s.caching && !s.cover_notifier && !s.reserve && !s.immediate_invalidate);
        assert_eq!(s.pin_variant, CanPinVariant::V2023, "2016 arithmetic is a switch");
        assert!(!s.pinned_count_npages);
        let n = Behaviour::resolve(&TidConfig::new(Policy::NoCache));
        assert!(!n.caching && !n.cover_notifier && n.reserve && !n.immediate_invalidate);
    }

    #[test]
    fn switches_undo_single_fixes() {
        let cfg = TidConfig::new(Policy::V2023).with_bugs(BugSwitches {
            lazy_invalidate: true,
            no_cover_notifier: true,
            pin_limit_2016: true,
            ..BugSwitches::NONE
        });
        let b = Behaviour::resolve(&cfg);
        assert!(b.caching && !b.cover_notifier && b.reserve && !b.immediate_invalidate);
        assert_eq!(b.pin_variant, CanPinVariant::Seed2016);
        assert!(!BugSwitches::NONE.any());
        assert!(BugSwitches::ALL.list().iter().all(|&(_, on)| on));
        assert_eq!(BugSwitches::default(), BugSwitches::NONE);
    }

    #[test]
    fn config_defaults_and_serde() {
        let c = TidConfig::default();
        assert_eq!((c.policy, c.cache_size_mb, c.user_ctxts), (Policy::V2023, 256, 1));
        let json = serde_json::to_string(&TidConfig::new(Policy::Seed)).unwrap();
        let back: TidConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, TidConfig::new(Policy::Seed));
        let partial: TidConfig =
            serde_json::from_str(r#"{"policy":"nocache","bugs":{"weak_tid_validity":true}}"#)
                .unwrap();
        assert_eq!(partial.policy, Policy::NoCache);
        assert!(partial.bugs.weak_tid_validity && !partial.bugs.pin_limit_2016);
        assert_eq!(partial.cache_size_mb, 256);
    }
}
