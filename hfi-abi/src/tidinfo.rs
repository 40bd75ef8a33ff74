//! The u32 tidinfo that TID_UPDATE returns and TID_FREE / TID_INVAL_READ carry (facts §5.2).

use crate::field::Field32;

/// LEN: length in 4 KiB pages (bits 10:0).
pub const EXP_TID_LEN: Field32 = Field32::new(0, 11);
/// CTRL: 1 = even entry of the pair, 2 = odd entry (bits 21:20).
pub const EXP_TID_CTRL: Field32 = Field32::new(20, 2);
/// IDX: pair index relative to the context's expected base (bits 31:22).
pub const EXP_TID_IDX: Field32 = Field32::new(22, 10);

/// One tidinfo word.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TidInfo(pub u32);

impl TidInfo {
    /// tidinfo for entry `rel_entry` (relative to expected_base) of `npages` pages, as
    /// rcventry2tidinfo / create_tid build it. `None` when a value does not fit.
    pub const fn for_entry(rel_entry: u32, npages: u32) -> Option<TidInfo> {
        let idx = rel_entry >> 1;
        let ctrl = 1u32 << (rel_entry & 1);
        if !EXP_TID_IDX.fits(idx) || !EXP_TID_LEN.fits(npages) {
            return None;
        }
        Some(TidInfo(
            EXP_TID_IDX.set(0, idx) | EXP_TID_CTRL.set(0, ctrl) | EXP_TID_LEN.set(0, npages),
        ))
    }

    /// LEN in pages.
    pub const fn npages(self) -> u32 {
        EXP_TID_LEN.get(self.0)
    }
    /// CTRL (0..3; only 1 and 2 are valid).
    pub const fn ctrl(self) -> u32 {
        EXP_TID_CTRL.get(self.0)
    }
    /// IDX (pair index).
    pub const fn idx(self) -> u32 {
        EXP_TID_IDX.get(self.0)
    }
    /// The relative entry this tidinfo names, `IDX*2 + CTRL - 1`, or `None` for CTRL 0 or 3.
    pub const fn rel_entry(self) -> Option<u32> {
        match self.ctrl() {
            1 | 2 => Some(self.idx() * 2 + self.ctrl() - 1),
            _ => None,
        }
    }
    /// The raw word.
    pub const fn raw(self) -> u32 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worked_tidinfo() {
        // Relative entry 13 (pair 6, odd half), 16 pages.
        let t = TidInfo::for_entry(13, 16).unwrap();
        assert_eq!(t.raw(), (6 << 22) | (2 << 20) | 16);
        assert_eq!(t.raw(), 0x01A0_0010);
        assert_eq!((t.idx(), t.ctrl(), t.npages()), (6, 2, 16));
        assert_eq!(t.rel_entry(), Some(13));
        let even = TidInfo::for_entry(12, 1).unwrap();
        assert_eq!(even.ctrl(), 1);
        assert_eq!(even.rel_entry(), Some(12));
    }

    #[test]
    fn bad_ctrl_has_no_entry() {
        assert_eq!(TidInfo(EXP_TID_CTRL.set(0, 0)).rel_entry(), None);
        assert_eq!(TidInfo(EXP_TID_CTRL.set(0, 3)).rel_entry(), None);
        assert_eq!(TidInfo::for_entry(2048, 1), None);
        assert_eq!(TidInfo::for_entry(0, 2048), None);
    }
}
