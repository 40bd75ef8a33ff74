//! Per-fd state of hfi1's expected receive (facts §6.1): `tid_used`, `tid_limit`,
//! `tid_n_pinned`, the invalid-TID queue (`invalid_tids` / `invalid_tid_idx`) and the fd's
//! event word. `entry_to_rb` is the context-wide node map, filtered by owner.

use hfi_abi::TidInfo;

/// `fd->tid_limit` (hfi1_user_exp_rcv_init): with caching and `subctxt_cnt` subcontexts each
/// gets `expected_count / subctxt_cnt`, and the first `expected_count % subctxt_cnt` one more;
/// without caching or without subcontexts the whole expected range.
pub fn tid_limit(expected_count: u32, subctxt_cnt: u32, subctxt: u32, caching: bool) -> u32 {
    if subctxt_cnt == 0 || !caching {
        return expected_count;
    }
    let share = expected_count / subctxt_cnt;
    let remainder = expected_count % subctxt_cnt;
    if remainder != 0 && subctxt < remainder {
        share + 1
    } else {
        share
    }
}

/// One open fd (one subcontext of the hardware context).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FdState {
    /// Open (between ASSIGN_CTXT and close).
    pub(crate) open: bool,
    /// `fd->use_mn`: caching on for this fd (notifiers, invalid queue).
    pub(crate) use_mn: bool,
    /// Expected TIDs this fd may hold.
    pub(crate) tid_limit: u32,
    /// Expected TIDs this fd holds (or has reserved).
    pub(crate) tid_used: u32,
    /// Pages this fd has pinned (the pin limit's `nlocked`).
    pub(crate) tid_n_pinned: u64,
    /// `invalid_tids[0..invalid_tid_idx]`.
    pub(crate) invalid_tids: Vec<TidInfo>,
    /// The event word of (context, subcontext).
    pub(crate) events: u64,
    /// Fault injection: the next TID_UPDATE copy-out fails.
    pub(crate) fail_next_copyout: bool,
}

impl FdState {
    /// A freshly opened fd.
    pub(crate) fn opened(use_mn: bool, tid_limit: u32) -> Self {
        FdState {
            open: true,
            use_mn,
            tid_limit,
            tid_used: 0,
            tid_n_pinned: 0,
            invalid_tids: Vec::new(),
            events: 0,
            fail_next_copyout: false,
        }
    }

    /// A closed fd: everything released.
    pub(crate) fn closed(use_mn: bool, tid_limit: u32) -> Self {
        FdState { open: false, ..FdState::opened(use_mn, tid_limit) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tid_limit_split() {
        // No subcontexts, or no caching: everything.
        assert_eq!(tid_limit(2048, 0, 0, true), 2048);
        assert_eq!(tid_limit(2048, 3, 1, false), 2048);
        assert_eq!(tid_limit(2048, 1, 0, true), 2048);
        // 2048 / 3 = 682 rem 2: subcontexts 0 and 1 get 683, 2 gets 682.
        assert_eq!(
            (0..3).map(|s| tid_limit(2048, 3, s, true)).collect::<Vec<_>>(),
            [683, 683, 682]
        );
        assert_eq!((0..3).map(|s| tid_limit(2048, 3, s, true)).sum::<u32>(), 2048);
        assert_eq!(tid_limit(64, 8, 7, true), 8);
    }
}
