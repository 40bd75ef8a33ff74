//! The user ABI of the expected-receive path as one fd sees it: what the PSM-like user library
//! calls (the hfi1 ioctls CTXT_INFO, TID_UPDATE, TID_FREE, TID_INVAL_READ, ACK_EVENT and the
//! mmap'd event word). The kernel-side implementation is [`crate::tid`]; the user library
//! ([`crate::user`]) is written against [`HfiFd`] only, so it runs unchanged over any binding.

use hfi_abi::TidInfo;
use serde::{Deserialize, Serialize};

use crate::errno::Errno;

/// Which generation of hfi1's TID caching the driver reproduces.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// 2016 TID caching: an invalidation only queues the tidinfo and sets TID_MMU_NOTIFY;
    /// entries stay programmed and pages stay pinned until user space calls TID_FREE.
    Seed,
    /// 2023 (1c7edde1b572, b3deec25847b, …): UNMAP-only callback that unprograms and unpins at
    /// once; a cover notifier turns a setup race into EBUSY; TIDs are reserved before
    /// programming; the 2023 validity and pin-limit fixes.
    #[default]
    V2023,
    /// HFI1_CAP_TID_UNMAP set: no caching; user space pins and programs per receive and frees
    /// right after.
    NoCache,
}

impl Policy {
    /// All policies, in report order.
    pub const ALL: [Policy; 3] = [Policy::NoCache, Policy::Seed, Policy::V2023];

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Policy::Seed => "seed",
            Policy::V2023 => "v2023",
            Policy::NoCache => "nocache",
        }
    }
}

/// `struct hfi1_ctxt_info` (the fields this driver fills).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CtxtInfo {
    /// Capability bits in force for this fd; HFI1_CAP_TID_UNMAP set = no caching.
    pub runtime_flags: u64,
    /// RcvArray entries of the context: round_up(egrtids, 8) + expected_count.
    pub rcvtids: u32,
    /// Eager entries allocated.
    pub egrtids: u32,
    /// RHQ entries.
    pub rcvhdrq_cnt: u32,
    /// RHQ entry size in bytes.
    pub rcvhdrq_entsize: u32,
    /// Eager buffer size in bytes.
    pub rcvegr_size: u32,
    /// Hardware receive context.
    pub ctxt: u32,
    /// Subcontext of this fd.
    pub subctxt: u32,
    /// Expected TIDs this fd may hold at once (tid_limit).
    pub tid_limit: u32,
}

/// Result of TID_UPDATE: the programmed TIDs and the bytes they map (≤ the request).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TidUpdate {
    /// tidinfo list, in virtual-address order.
    pub tidlist: Vec<TidInfo>,
    /// Bytes mapped: mapped pages × 4096.
    pub length: u32,
}

/// One open hfi1 fd, as user space sees it.
pub trait HfiFd {
    /// CTXT_INFO.
    fn ctxt_info(&self) -> CtxtInfo;
    /// TID_UPDATE: pin, DMA-map and program `[vaddr, vaddr + length)`; partial success is normal.
    fn tid_update(&mut self, vaddr: u64, length: u32) -> Result<TidUpdate, Errno>;
    /// TID_FREE: unprogram and release; returns how many were freed.
    fn tid_free(&mut self, tids: &[TidInfo]) -> Result<u32, Errno>;
    /// TID_INVAL_READ: the invalidated TIDs queued since the last call (clears TID_MMU_NOTIFY).
    fn tid_inval_read(&mut self) -> Result<Vec<TidInfo>, Errno>;
    /// The event word of this (context, subcontext), as mapped by the EVENTS mmap.
    fn event_word(&self) -> u64;
    /// ACK_EVENT: clear the given event bits.
    fn ack_event(&mut self, bits: u64) -> Result<(), Errno>;
}
