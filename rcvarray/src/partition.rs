//! How hfi1 divides the RcvArray among receive contexts, and each context's share into eager and
//! expected entries (facts §2.3; hfi1 `set_up_context_variables`, `hfi1_create_ctxtdata`,
//! `hfi1_setup_eagerbufs`, and the RcvEgrCtrl / RcvTidCtrl values `hfi1_rcvctrl` writes).
//!
//! Everything is in RcvArray entries (absolute indices), in whole 8-entry groups.

use hfi_abi::rxe::{
    MAX_EAGER_ENTRIES, MAX_TID_PAIR_ENTRIES, RCV_EGR_CTRL_EGR_BASE_INDEX, RCV_EGR_CTRL_EGR_CNT,
    RCV_INCREMENT, RCV_SHIFT, RCV_TID_CTRL_TID_BASE_INDEX, RCV_TID_CTRL_TID_PAIR_CNT,
};
use thiserror::Error;

/// Entries per RcvArray group (RCV_INCREMENT). Context bases and sizes are multiples of it.
pub const GROUP_SIZE: u32 = RCV_INCREMENT as u32;
/// Most eager entries a context may have (MAX_EAGER_ENTRIES).
pub const MAX_EAGER: u32 = MAX_EAGER_ENTRIES as u32;
/// Most expected entries a context may have (2 × MAX_TID_PAIR_ENTRIES).
pub const MAX_EXPECTED: u32 = 2 * MAX_TID_PAIR_ENTRIES as u32;
/// Largest RcvArray the 13-bit EgrBaseIndex / TidBaseIndex fields can address (8192 groups).
pub const MAX_RCV_ARRAY_CNT: u32 = 8192 * GROUP_SIZE;

/// Failure to lay out the RcvArray.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum PartitionError {
    /// `ChipPartition` was asked to split the array among zero contexts.
    #[error("No receive contexts to partition the RcvArray among")]
    NoContexts,
    /// More kernel contexts than contexts.
    #[error("Kernel context count {n_kernel} exceeds the {num_ctxts} receive contexts")]
    KernelContextsExceedTotal {
        /// Kernel contexts asked for.
        n_kernel: u32,
        /// All receive contexts.
        num_ctxts: u32,
    },
    /// The array is larger than the CSR base-index fields can address.
    #[error("RcvArray of {0} entries exceeds the {MAX_RCV_ARRAY_CNT} entries the CSRs address")]
    RcvArrayTooLarge(u32),
    /// Not even one group per context.
    #[error(
        "RcvArray of {rcv_array_cnt} entries leaves no group for each of {num_ctxts} contexts"
    )]
    TooFewGroups {
        /// RcvArray entries on the chip.
        rcv_array_cnt: u32,
        /// Receive contexts.
        num_ctxts: u32,
    },
    /// A context range that does not start or end on a group boundary.
    #[error(
        "Context range at entry {base} of {total_entries} entries is not whole 8-entry groups"
    )]
    RangeMisaligned {
        /// First entry.
        base: u32,
        /// Entry count.
        total_entries: u32,
    },
    /// A context range that runs past the addressable RcvArray.
    #[error("Context range at entry {base} of {total_entries} entries runs past the RcvArray")]
    RangeTooLarge {
        /// First entry.
        base: u32,
        /// Entry count.
        total_entries: u32,
    },
    /// rcvarr_split above 100 %.
    #[error("RcvArray eager split of {0}% is above 100%")]
    SplitPercentInvalid(u32),
    /// More eager entries allocated than the context's eager target.
    #[error("Eager entries allocated ({alloced}) exceed the context's target of {target}")]
    EagerAllocedAboveTarget {
        /// Entries said to be allocated.
        alloced: u32,
        /// The target (rcvarr_split % of the context, rounded down to 8, at most 2048).
        target: u32,
    },
}

/// One context's share of the RcvArray: `total_entries` entries from absolute index `base`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ContextRange {
    /// First entry of the context (hfi1 `eager_base`), a multiple of 8.
    pub base: u32,
    /// Entries of the context (hfi1 `rcv_array_groups * 8`).
    pub total_entries: u32,
}

/// The chip-wide split of the RcvArray into per-context ranges (hfi1 `rcv_entries`).
///
/// `ngroups = (cnt / 8) / num_ctxts`, `nctxt_extra` = the remainder. When `ngroups * 8` exceeds
/// `2 * MAX_EAGER_ENTRIES`, ngroups is cut to 512 and `nctxt_extra` to 0. The extra groups go
/// to the first dynamic (user) contexts; kernel contexts get one only when there are more extra
/// groups than dynamic contexts (hfi1 `kctxt_ngroups`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ChipPartition {
    rcv_array_cnt: u32,
    num_ctxts: u32,
    n_kernel: u32,
    ngroups: u32,
    nctxt_extra: u32,
    capped: bool,
}

impl ChipPartition {
    /// Splits `rcv_array_cnt` entries among `num_ctxts` contexts, all treated as one class, so
    /// that context `c` starts at entry `8 * (c * ngroups + min(c, nctxt_extra))` and the first
    /// `nctxt_extra` contexts get one extra group. This is hfi1's layout with no kernel contexts.
    pub fn new(rcv_array_cnt: u32, num_ctxts: u32) -> Result<Self, PartitionError> {
        Self::with_kernel_contexts(rcv_array_cnt, num_ctxts, 0)
    }

    /// hfi1's layout with `n_kernel` kernel contexts (`n_krcv_queues` = `first_dyn_alloc_ctxt`)
    /// first and the dynamic contexts after them. The extra groups go to the first dynamic
    /// contexts; any left after every dynamic context has one go to the first kernel contexts.
    pub fn with_kernel_contexts(
        rcv_array_cnt: u32,
        num_ctxts: u32,
        n_kernel: u32,
    ) -> Result<Self, PartitionError> {
        if num_ctxts == 0 {
            return Err(PartitionError::NoContexts);
        }
        if n_kernel > num_ctxts {
            return Err(PartitionError::KernelContextsExceedTotal { n_kernel, num_ctxts });
        }
        if rcv_array_cnt > MAX_RCV_ARRAY_CNT {
            return Err(PartitionError::RcvArrayTooLarge(rcv_array_cnt));
        }
        let groups = rcv_array_cnt / GROUP_SIZE;
        let mut ngroups = groups / num_ctxts;
        let mut nctxt_extra = groups % num_ctxts;
        if ngroups == 0 {
            return Err(PartitionError::TooFewGroups { rcv_array_cnt, num_ctxts });
        }
        let mut capped = false;
        if ngroups * GROUP_SIZE > 2 * MAX_EAGER {
            ngroups = 2 * MAX_EAGER / GROUP_SIZE;
            nctxt_extra = 0;
            capped = true;
        }
        Ok(Self { rcv_array_cnt, num_ctxts, n_kernel, ngroups, nctxt_extra, capped })
    }

    /// RcvArray entries on the chip.
    pub fn rcv_array_cnt(&self) -> u32 {
        self.rcv_array_cnt
    }

    /// Receive contexts sharing the array.
    pub fn num_ctxts(&self) -> u32 {
        self.num_ctxts
    }

    /// Kernel contexts (the first `n_kernel` context numbers).
    pub fn n_kernel(&self) -> u32 {
        self.n_kernel
    }

    /// Groups every context gets (hfi1 `rcv_entries.ngroups`, after the cap).
    pub fn ngroups(&self) -> u32 {
        self.ngroups
    }

    /// Contexts that get one more group (hfi1 `rcv_entries.nctxt_extra`, after the cap).
    pub fn nctxt_extra(&self) -> u32 {
        self.nctxt_extra
    }

    /// True when the per-context group count was cut to 512.
    pub fn capped(&self) -> bool {
        self.capped
    }

    /// Extra groups that go to kernel contexts (hfi1 `kctxt_ngroups`).
    fn kernel_extra(&self) -> u32 {
        let n_dyn = self.num_ctxts - self.n_kernel;
        self.nctxt_extra.saturating_sub(n_dyn)
    }

    /// The range of context `ctxt`, or `None` for a context number past the last.
    pub fn context(&self, ctxt: u32) -> Option<ContextRange> {
        if ctxt >= self.num_ctxts {
            return None;
        }
        let ng = self.ngroups;
        let kx = self.kernel_extra();
        let (base_group, groups) = if ctxt < self.n_kernel {
            (ctxt * ng + ctxt.min(kx), ng + u32::from(ctxt < kx))
        } else {
            let ct = ctxt - self.n_kernel;
            let start = self.n_kernel * ng + kx;
            (start + ct * ng + ct.min(self.nctxt_extra), ng + u32::from(ct < self.nctxt_extra))
        };
        Some(ContextRange { base: base_group * GROUP_SIZE, total_entries: groups * GROUP_SIZE })
    }

    /// Every context's range, context 0 first.
    pub fn contexts(&self) -> impl Iterator<Item = ContextRange> + '_ {
        (0..self.num_ctxts).filter_map(|c| self.context(c))
    }
}

/// One context's eager and expected ranges, as hfi1_setup_eagerbufs computes them.
///
/// Layout inside the context: `eager_count` eager entries from `eager_base`, padding up to
/// `egrtop`, then `expected_count` expected entries from `expected_base`; the rest (when the
/// 2048 cap bites) is unused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ContextLayout {
    /// The context's range.
    pub range: ContextRange,
    /// First eager entry (= `range.base`).
    pub eager_base: u32,
    /// Eager entry target: rcvarr_split % of the context, rounded down to 8, at most 2048
    /// (hfi1 `egrbufs.count`).
    pub eager_target: u32,
    /// Eager entries actually allocated (hfi1 `egrbufs.alloced`), at most `eager_target`.
    pub eager_count: u32,
    /// `eager_count` rounded up to a multiple of 8.
    pub egrtop: u32,
    /// First expected entry: `eager_base + egrtop`.
    pub expected_base: u32,
    /// Expected entries: `total_entries - egrtop`, at most 2048; a multiple of 8.
    pub expected_count: u32,
}

impl ContextLayout {
    /// The layout of context `range` with `rcvarr_split_percent` % eager entries (hfi1 default
    /// 25) and `eager_alloced` eager entries actually allocated (`None`: the whole target).
    pub fn new(
        range: ContextRange,
        rcvarr_split_percent: u32,
        eager_alloced: Option<u32>,
    ) -> Result<Self, PartitionError> {
        let ContextRange { base, total_entries } = range;
        if base % GROUP_SIZE != 0 || total_entries % GROUP_SIZE != 0 {
            return Err(PartitionError::RangeMisaligned { base, total_entries });
        }
        if u64::from(base) + u64::from(total_entries) > u64::from(MAX_RCV_ARRAY_CNT) {
            return Err(PartitionError::RangeTooLarge { base, total_entries });
        }
        if rcvarr_split_percent > 100 {
            return Err(PartitionError::SplitPercentInvalid(rcvarr_split_percent));
        }
        // total_entries <= 65536 and split <= 100, so the product fits a u32 comfortably.
        let by_split = total_entries * rcvarr_split_percent / 100;
        let eager_target = round_down(by_split).min(MAX_EAGER);
        let eager_count = eager_alloced.unwrap_or(eager_target);
        if eager_count > eager_target {
            return Err(PartitionError::EagerAllocedAboveTarget {
                alloced: eager_count,
                target: eager_target,
            });
        }
        // eager_target is a multiple of 8, so rounding up stays <= eager_target <= total.
        let egrtop = round_down(eager_count + GROUP_SIZE - 1);
        let expected_count = round_down((total_entries - egrtop).min(MAX_EXPECTED));
        Ok(Self {
            range,
            eager_base: base,
            eager_target,
            eager_count,
            egrtop,
            expected_base: base + egrtop,
            expected_count,
        })
    }

    /// RcvEgrCtrl as hfi1_rcvctrl writes it: EgrBaseIndex = eager_base / 8,
    /// EgrCnt = eager_count / 8 (the allocated count, rounded down as the driver's shift does).
    pub fn rcv_egr_ctrl(&self) -> u64 {
        RCV_EGR_CTRL_EGR_BASE_INDEX.encode(u64::from(self.eager_base >> RCV_SHIFT))
            | RCV_EGR_CTRL_EGR_CNT.encode(u64::from(self.eager_count >> RCV_SHIFT))
    }

    /// RcvTidCtrl as hfi1_rcvctrl writes it: TidBaseIndex = expected_base / 8,
    /// TidPairCnt = expected_count / 8.
    pub fn rcv_tid_ctrl(&self) -> u64 {
        RCV_TID_CTRL_TID_BASE_INDEX.encode(u64::from(self.expected_base >> RCV_SHIFT))
            | RCV_TID_CTRL_TID_PAIR_CNT.encode(u64::from(self.expected_count >> RCV_SHIFT))
    }

    /// What the hardware sees: `(eager_base, eager_count, expected_base, expected_count)` in
    /// entries, decoded from RcvEgrCtrl and RcvTidCtrl. `eager_count` is EgrCnt × 8, i.e. the
    /// allocated count rounded down to 8.
    pub fn from_csrs(rcv_egr_ctrl: u64, rcv_tid_ctrl: u64) -> (u32, u32, u32, u32) {
        // Each field is at most 13 bits wide, so the shifted values fit a u32.
        let field = |f: hfi_abi::Field, w: u64| (f.get(w) << RCV_SHIFT) as u32;
        (
            field(RCV_EGR_CTRL_EGR_BASE_INDEX, rcv_egr_ctrl),
            field(RCV_EGR_CTRL_EGR_CNT, rcv_egr_ctrl),
            field(RCV_TID_CTRL_TID_BASE_INDEX, rcv_tid_ctrl),
            field(RCV_TID_CTRL_TID_PAIR_CNT, rcv_tid_ctrl),
        )
    }

    /// The absolute entry a KDETH (TID, TIDCtrl) pair names in this context; see
    /// [`expected_entry`].
    pub fn expected_entry(&self, tid_pair: u32, tidctrl: u32) -> Option<u32> {
        expected_entry(self.expected_base, self.expected_count, tid_pair, tidctrl)
    }
}

/// The absolute RcvArray entry for KDETH TID `tid_pair` and TIDCtrl `tidctrl` in a context
/// whose expected range is `[expected_base, expected_base + expected_count)`:
/// `expected_base + 2 * tid_pair + tidctrl - 1`. `None` for TIDCtrl 0 or 3, and for an entry
/// outside the range.
pub fn expected_entry(
    expected_base: u32,
    expected_count: u32,
    tid_pair: u32,
    tidctrl: u32,
) -> Option<u32> {
    if !matches!(tidctrl, 1 | 2) {
        return None;
    }
    let rel = tid_pair.checked_mul(2)?.checked_add(tidctrl - 1)?;
    if rel >= expected_count {
        return None;
    }
    expected_base.checked_add(rel)
}

/// `n` rounded down to a multiple of [`GROUP_SIZE`].
const fn round_down(n: u32) -> u32 {
    n - n % GROUP_SIZE
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn real_wfr_35_contexts() {
        // 65536 entries = 8192 groups; 8192 / 35 = 234 rest 2; 234 * 8 = 1872 <= 4096: no cap.
        let p = ChipPartition::new(65536, 35).unwrap();
        assert_eq!((p.ngroups(), p.nctxt_extra(), p.capped()), (234, 2, false));
        assert_eq!(p.context(0), Some(ContextRange { base: 0, total_entries: 235 * 8 }));
        assert_eq!(p.context(1), Some(ContextRange { base: 235 * 8, total_entries: 235 * 8 }));
        assert_eq!(p.context(2), Some(ContextRange { base: 470 * 8, total_entries: 234 * 8 }));
        let last = p.context(34).unwrap();
        assert_eq!(last.base, (34 * 234 + 2) * 8);
        assert_eq!(last.base + last.total_entries, 65536);
        assert_eq!(p.context(35), None);
    }

    #[test]
    fn few_contexts_are_capped() {
        // 8192 / 8 = 1024 groups each, 8192 entries > 4096: cut to 512 groups, no extras.
        let p = ChipPartition::new(65536, 8).unwrap();
        assert_eq!((p.ngroups(), p.nctxt_extra(), p.capped()), (512, 0, true));
        assert_eq!(p.context(7), Some(ContextRange { base: 7 * 4096, total_entries: 4096 }));
        // The cap leaves the upper half of the array unused.
        let l = ContextLayout::new(p.context(7).unwrap(), 25, None).unwrap();
        assert_eq!((l.eager_count, l.expected_count), (1024, 2048));
        assert_eq!(l.expected_base, 7 * 4096 + 1024);
    }

    #[test]
    fn dmesg_27_contexts() {
        // timing-params dmesg: "RcvArray groups 303, ctxts extra 11".
        let p = ChipPartition::new(65536, 27).unwrap();
        assert_eq!((p.ngroups(), p.nctxt_extra()), (303, 11));
        assert_eq!(p.context(10).map(|r| r.total_entries), Some(304 * 8));
        assert_eq!(p.context(11).map(|r| r.total_entries), Some(303 * 8));
        assert_eq!(p.context(11).map(|r| r.base), Some(11 * 304 * 8));
        // Default 25 % split of 2432 entries: 608 eager, 1824 expected.
        let l = ContextLayout::new(p.context(0).unwrap(), 25, None).unwrap();
        assert_eq!((l.eager_target, l.egrtop, l.expected_count), (608, 608, 1824));
        assert_eq!(l.expected_base, 608);
    }

    #[test]
    fn extras_go_to_dynamic_contexts_first() {
        // 27 contexts of which 3 kernel: 24 dynamic >= 11 extras, so kernel contexts get none.
        let p = ChipPartition::with_kernel_contexts(65536, 27, 3).unwrap();
        assert_eq!(p.context(0).unwrap().total_entries, 303 * 8);
        assert_eq!(p.context(2).unwrap().base, 2 * 303 * 8);
        assert_eq!(p.context(3), Some(ContextRange { base: 3 * 303 * 8, total_entries: 304 * 8 }));
        assert_eq!(p.context(14).unwrap().total_entries, 303 * 8);
        // 4 contexts, 3 kernel, 9 groups: ngroups 2, extra 1 -> the one dynamic context.
        let p = ChipPartition::with_kernel_contexts(72, 4, 3).unwrap();
        let sizes: Vec<u32> = p.contexts().map(|r| r.total_entries / 8).collect();
        assert_eq!(sizes, [2, 2, 2, 3]);
        // 4 contexts, 3 kernel, 11 groups: extra 3 -> dynamic gets 1, first 2 kernel get 1.
        let p = ChipPartition::with_kernel_contexts(88, 4, 3).unwrap();
        let sizes: Vec<u32> = p.contexts().map(|r| r.total_entries / 8).collect();
        assert_eq!(sizes, [3, 3, 2, 3]);
        let bases: Vec<u32> = p.contexts().map(|r| r.base / 8).collect();
        assert_eq!(bases, [0, 3, 6, 8]);
    }

    #[test]
    fn partition_errors() {
        assert_eq!(ChipPartition::new(65536, 0), Err(PartitionError::NoContexts));
        assert_eq!(
            ChipPartition::new(64, 9),
            Err(PartitionError::TooFewGroups { rcv_array_cnt: 64, num_ctxts: 9 })
        );
        assert_eq!(ChipPartition::new(65544, 1), Err(PartitionError::RcvArrayTooLarge(65544)));
        assert!(matches!(
            ChipPartition::with_kernel_contexts(65536, 4, 5),
            Err(PartitionError::KernelContextsExceedTotal { .. })
        ));
    }

    #[test]
    fn layout_with_short_eager_allocation() {
        let r = ContextRange { base: 1880, total_entries: 1872 };
        // Target: 1872 * 25 / 100 = 468 -> 464. Only 461 allocated: egrtop 464.
        let l = ContextLayout::new(r, 25, Some(461)).unwrap();
        assert_eq!(l.eager_target, 464);
        assert_eq!((l.eager_count, l.egrtop), (461, 464));
        assert_eq!(l.expected_base, 1880 + 464);
        assert_eq!(l.expected_count, 1872 - 464);
        // EgrCnt is alloced >> 3 = 57 (the driver drops the 5 odd entries from the CSR).
        let egr = l.rcv_egr_ctrl();
        assert_eq!(egr, (57u64 << 32) | (1880 / 8));
        let tid = l.rcv_tid_ctrl();
        assert_eq!(tid, ((1408u64 / 8) << 32) | (2344 / 8));
        assert_eq!(ContextLayout::from_csrs(egr, tid), (1880, 456, 2344, 1408));
        assert!(matches!(
            ContextLayout::new(r, 25, Some(465)),
            Err(PartitionError::EagerAllocedAboveTarget { .. })
        ));
        assert_eq!(ContextLayout::new(r, 101, None), Err(PartitionError::SplitPercentInvalid(101)));
        assert!(matches!(
            ContextLayout::new(ContextRange { base: 4, total_entries: 8 }, 25, None),
            Err(PartitionError::RangeMisaligned { .. })
        ));
        assert!(matches!(
            ContextLayout::new(ContextRange { base: 65528, total_entries: 16 }, 25, None),
            Err(PartitionError::RangeTooLarge { .. })
        ));
    }

    #[test]
    fn eager_capped_at_2048() {
        let r = ContextRange { base: 0, total_entries: 4096 };
        let l = ContextLayout::new(r, 100, None).unwrap();
        assert_eq!((l.eager_target, l.egrtop, l.expected_count), (2048, 2048, 2048));
        let l = ContextLayout::new(r, 0, None).unwrap();
        assert_eq!((l.eager_count, l.expected_base, l.expected_count), (0, 0, 2048));
    }

    #[test]
    fn expected_entry_lookup() {
        let r = ContextRange { base: 1024, total_entries: 1024 };
        let l = ContextLayout::new(r, 25, None).unwrap();
        assert_eq!((l.expected_base, l.expected_count), (1280, 768));
        assert_eq!(l.expected_entry(0, 1), Some(1280));
        assert_eq!(l.expected_entry(0, 2), Some(1281));
        assert_eq!(l.expected_entry(5, 2), Some(1291));
        assert_eq!(l.expected_entry(383, 2), Some(1280 + 767));
        assert_eq!(l.expected_entry(384, 1), None);
        assert_eq!(l.expected_entry(0, 0), None);
        assert_eq!(l.expected_entry(0, 3), None);
        assert_eq!(l.expected_entry(u32::MAX, 1), None);
        assert_eq!(expected_entry(u32::MAX, 8, 0, 2), None);
    }

    proptest! {
        /// Partition invariants over random chips.
        #[test]
        fn partition_invariants(
            cnt in 0u32..=MAX_RCV_ARRAY_CNT,
            num_ctxts in 1u32..=160,
            kernel_frac in 0u32..=100,
            split in 0u32..=100,
            alloc_frac in 0u32..=100,
        ) {
            let n_kernel = num_ctxts * kernel_frac / 100;
            let Ok(p) = ChipPartition::with_kernel_contexts(cnt, num_ctxts, n_kernel) else {
                prop_assert!(cnt / GROUP_SIZE < num_ctxts);
                return Ok(());
            };
            prop_assert!(p.ngroups() * GROUP_SIZE <= 2 * MAX_EAGER);
            let mut next = 0;
            let mut extras = 0;
            for c in 0..num_ctxts {
                let r = p.context(c).unwrap();
                prop_assert_eq!(r.base, next, "contexts are contiguous and ascending");
                prop_assert_eq!(r.base % 8, 0);
                prop_assert_eq!(r.total_entries % 8, 0);
                let groups = r.total_entries / 8;
                prop_assert!(groups == p.ngroups() || groups == p.ngroups() + 1);
                extras += groups - p.ngroups();
                next = r.base + r.total_entries;
                prop_assert!(next <= cnt);

                let target = ContextLayout::new(r, split, None).unwrap().eager_target;
                let alloced = target * alloc_frac / 100;
                let l = ContextLayout::new(r, split, Some(alloced)).unwrap();
                prop_assert!(l.eager_count <= MAX_EAGER && l.eager_target % 8 == 0);
                prop_assert!(l.expected_count <= MAX_EXPECTED && l.expected_count % 8 == 0);
                prop_assert!(l.egrtop % 8 == 0 && l.egrtop >= l.eager_count);
                prop_assert!(l.egrtop < l.eager_count + 8 || l.eager_count == l.egrtop);
                prop_assert_eq!(l.expected_base, r.base + l.egrtop);
                prop_assert!(l.egrtop + l.expected_count <= r.total_entries);
                let (eb, ec, xb, xc) = ContextLayout::from_csrs(l.rcv_egr_ctrl(), l.rcv_tid_ctrl());
                prop_assert_eq!((eb, ec, xb, xc),
                    (l.eager_base, l.eager_count / 8 * 8, l.expected_base, l.expected_count));
                if l.expected_count > 0 {
                    let last = l.expected_count - 1;
                    prop_assert_eq!(l.expected_entry(last / 2, last % 2 + 1),
                        Some(l.expected_base + last));
                }
                prop_assert_eq!(l.expected_entry(l.expected_count / 2, 1), None);
            }
            prop_assert_eq!(extras, p.nctxt_extra());
            prop_assert_eq!(p.context(num_ctxts), None);
            if !p.capped() {
                prop_assert_eq!(next, cnt / 8 * 8, "uncapped partitions use every group");
            }
        }
    }
}
