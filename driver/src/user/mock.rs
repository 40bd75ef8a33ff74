//! [`MockFd`]: a [`ModelFd`] with fault switches, for the tests of the user library. Feature
//! `test-utils`; never in a production build.
//!
//! The switches: one-shot TID_UPDATE failures or partial mappings ([`UpdateFault`], applied in
//! order, one per call) and a failing TID_FREE. Everything else is the model's:
//! [`MockFd`] dereferences to its [`ModelFd`] (invalidations, counters, lookups).

use std::collections::VecDeque;
use std::ops::{Deref, DerefMut};

use hfi_abi::TidInfo;

use super::model_fd::ModelFd;
use crate::errno::Errno;
use crate::uapi::{CtxtInfo, HfiFd, TidUpdate};

/// A one-shot fault for the next TID_UPDATE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateFault {
    /// Fail with this errno, with no side effect.
    Fail(Errno),
    /// Map at most this many bytes (rounded down to pages; 0 pages gives ENOSPC), as when the
    /// pin or the TID reservation falls short.
    Partial(u32),
}

/// The programmable fd: a [`ModelFd`] and its fault switches.
#[derive(Clone, Debug)]
pub struct MockFd {
    model: ModelFd,
    update_faults: VecDeque<UpdateFault>,
    free_fault: Option<Errno>,
}

impl MockFd {
    /// [`ModelFd::new`] with every switch off.
    pub fn new(tid_limit: u32) -> Self {
        Self::from_model(ModelFd::new(tid_limit))
    }

    /// [`ModelFd::with_info`] with every switch off.
    pub fn with_info(info: CtxtInfo) -> Self {
        Self::from_model(ModelFd::with_info(info))
    }

    /// `model` with every switch off.
    pub fn from_model(model: ModelFd) -> Self {
        Self { model, update_faults: VecDeque::new(), free_fault: None }
    }

    /// [`ModelFd::nocache`].
    pub fn nocache(mut self) -> Self {
        self.model = self.model.nocache();
        self
    }

    /// [`ModelFd::max_pages_per_tid`].
    pub fn max_pages_per_tid(mut self, pages: u32) -> Self {
        self.model = self.model.max_pages_per_tid(pages);
        self
    }

    /// [`ModelFd::expected_count`].
    pub fn expected_count(mut self, pages: u32) -> Self {
        self.model = self.model.expected_count(pages);
        self
    }

    /// [`ModelFd::pin_limit_pages`].
    pub fn pin_limit_pages(mut self, limit: Option<u64>) -> Self {
        self.model = self.model.pin_limit_pages(limit);
        self
    }

    /// Queue a one-shot fault for a coming TID_UPDATE (faults apply in order, one per call).
    pub fn push_update_fault(&mut self, fault: UpdateFault) {
        self.update_faults.push_back(fault);
    }

    /// Make the next TID_FREE fail with `errno` (no TID freed).
    pub fn fail_next_free(&mut self, errno: Errno) {
        self.free_fault = Some(errno);
    }
}

impl Deref for MockFd {
    type Target = ModelFd;
    fn deref(&self) -> &ModelFd {
        &self.model
    }
}

impl DerefMut for MockFd {
    fn deref_mut(&mut self) -> &mut ModelFd {
        &mut self.model
    }
}

impl HfiFd for MockFd {
    fn ctxt_info(&self) -> CtxtInfo {
        self.model.ctxt_info()
    }

    fn tid_update(&mut self, vaddr: u64, length: u32) -> Result<TidUpdate, Errno> {
        let (refuse, cap_bytes) = match self.update_faults.pop_front() {
            Some(UpdateFault::Fail(e)) => (Some(e), None),
            Some(UpdateFault::Partial(bytes)) => (None, Some(bytes)),
            None => (None, None),
        };
        self.model.tid_update_with(vaddr, length, refuse, cap_bytes)
    }

    fn tid_free(&mut self, tids: &[TidInfo]) -> Result<u32, Errno> {
        let refuse = self.free_fault.take();
        self.model.tid_free_with(tids, refuse)
    }

    fn tid_inval_read(&mut self) -> Result<Vec<TidInfo>, Errno> {
        self.model.tid_inval_read()
    }

    fn event_word(&self) -> u64 {
        self.model.event_word()
    }

    fn ack_event(&mut self, bits: u64) -> Result<(), Errno> {
        self.model.ack_event(bits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_and_arguments() {
        let mut fd = MockFd::new(16).pin_limit_pages(Some(4));
        assert_eq!(fd.tid_update(0x1001, 4096), Err(Errno::Inval));
        assert_eq!(fd.tid_update(0x1000, 0), Err(Errno::Inval));
        assert_eq!(fd.tid_update(0x1000, 17 * 4096), Err(Errno::Inval));
        assert_eq!(fd.tid_update(0x1000, 5 * 4096), Err(Errno::NoMem));
        fd.push_update_fault(UpdateFault::Fail(Errno::Fault));
        assert_eq!(fd.tid_update(0x1000, 4096), Err(Errno::Fault));
        fd.push_update_fault(UpdateFault::Partial(8191));
        assert_eq!(fd.tid_update(0x1000, 4 * 4096).unwrap().length, 4096);
        fd.fail_next_free(Errno::Inval);
        let held: Vec<TidInfo> = fd.live_tids().iter().map(|m| m.tid).collect();
        assert_eq!(fd.tid_free(&held), Err(Errno::Inval));
        assert_eq!(fd.tid_free(&held), Ok(1));
        assert_eq!(fd.tid_free(&held), Err(Errno::Inval), "more than held");
        assert_eq!(fd.counters().tid_update_errors, 5);
    }

    #[test]
    fn switches_off_is_the_model() {
        let mut fd = MockFd::new(4).nocache().max_pages_per_tid(2).expected_count(8);
        let mut model = ModelFd::new(4).nocache().max_pages_per_tid(2).expected_count(8);
        assert_eq!(fd.ctxt_info(), model.ctxt_info());
        let a = fd.tid_update(0x1000, 3 * 4096);
        assert_eq!(a, model.tid_update(0x1000, 3 * 4096));
        let tids = a.unwrap().tidlist;
        assert_eq!(fd.invalidate_range(0x1000, 4096), model.invalidate_range(0x1000, 4096));
        assert_eq!(fd.tid_inval_read(), model.tid_inval_read());
        assert_eq!(fd.tid_free(&tids), model.tid_free(&tids));
        fd.raise_events(2);
        assert_eq!(fd.ack_event(2), Ok(()));
        assert_eq!(fd.event_word(), 0);
        assert_eq!(fd.counters().tid_update_calls, model.counters().tid_update_calls);
        let w = MockFd::with_info(CtxtInfo { tid_limit: 2, ..CtxtInfo::default() });
        assert_eq!(w.ctxt_info().tid_limit, 2);
        assert!(format!("{w:?}").contains("MockFd"));
    }
}
