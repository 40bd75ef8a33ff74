//! Counters of a context's TID caching ([`TidStats`]), and [`CountingWriter`], which counts the
//! RcvArray traffic on its way to the hardware.
//!
//! Monotonic counters are named after the event (`_count` for anomalies that a correct caller
//! never causes); the `*_live` fields and [`FdStats`] are filled when the snapshot is taken.

use hfi_abi::RcvArrayEntry;
use serde::Serialize;

use crate::errno::Errno;
use crate::put_tid::RcvArrayWriter;
use crate::uapi::Policy;

/// Per-fd snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FdStats {
    /// The fd (subcontext).
    pub fd: u32,
    /// Open.
    pub open: bool,
    /// Caching on for this fd.
    pub use_mn: bool,
    /// `tid_limit`.
    pub tid_limit: u32,
    /// `tid_used`.
    pub tid_used: u32,
    /// `tid_n_pinned` (pages).
    pub tid_n_pinned: u64,
    /// TIDs waiting in the invalid queue.
    pub invalid_queued: u32,
    /// The event word.
    pub event_word: u64,
}

/// Counters and a live snapshot of one [`crate::tid::TidContext`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TidStats {
    /// The policy in force.
    pub policy: Policy,
    /// TID_UPDATE calls.
    pub updates: u64,
    /// TID_UPDATE calls that succeeded.
    pub updates_ok: u64,
    /// Successful TID_UPDATEs that mapped less than asked.
    pub partial_updates: u64,
    /// Pages mapped by successful TID_UPDATEs.
    pub update_pages: u64,
    /// TIDs returned by successful TID_UPDATEs.
    pub update_tids: u64,
    /// TID_FREE calls.
    pub frees: u64,
    /// TIDs freed by TID_FREE.
    pub tids_freed: u64,
    /// Per-TID notifier callbacks that acted (queued the TID, and under 2023 released it).
    pub invalidations: u64,
    /// Per-TID notifier callbacks ignored (already handled, or not an UNMAP under 2023).
    pub invalidations_ignored: u64,
    /// Cover-notifier callbacks (setup in flight).
    pub cover_invalidations: u64,
    /// Invalidations for a notifier this context does not know (removed or foreign).
    pub unknown_notifier_count: u64,
    /// TID_INVAL_READ calls.
    pub inval_reads: u64,
    /// TIDs handed out by TID_INVAL_READ.
    pub inval_tids_read: u64,
    /// Invalidated TIDs dropped because the queue was full (cannot happen: each TID is queued
    /// at most once).
    pub inval_queue_drops: u64,
    /// Calls failed with EINVAL.
    pub einval: u64,
    /// Calls failed with ENOMEM.
    pub enomem: u64,
    /// Calls failed with ENOSPC.
    pub enospc: u64,
    /// Calls failed with EBUSY.
    pub ebusy: u64,
    /// Calls failed with EFAULT.
    pub efault: u64,
    /// Calls failed with EBADF.
    pub ebadf: u64,
    /// TID_UPDATE copy-outs that failed (injected).
    pub copyout_failures: u64,
    /// Pages left pinned with nothing referencing them (only with the `setup_error_exit` bug).
    pub leaked_pinned_pages: u64,
    /// TID_FREE lookups outside the entry table (kernel: out-of-bounds read; only with
    /// `weak_tid_validity`).
    pub tid_oob_lookup_count: u64,
    /// Setups that found `tid_used > tid_limit` (kernel: unsigned wrap; only possible without
    /// the reservation fix).
    pub tid_limit_overshoot_count: u64,
    /// Nodes freed at close that hfi1's list walk would have missed (groups on the empty list
    /// with slots in use after a failed whole-group programming).
    pub close_unlisted_nodes: u64,
    /// Group releases the allocator refused (a bookkeeping bug here).
    pub group_clear_errors: u64,
    /// RcvArray stores with WRITE_ENABLE (programs and invalidations).
    pub rcvarray_writes: u64,
    /// WC zero-fill stores (ignored by the hardware).
    pub wc_fills: u64,
    /// WC flushes.
    pub wc_flushes: u64,
    /// Snapshot: nodes held (programmed or invalidated-but-not-freed).
    pub nodes_live: u64,
    /// Snapshot: nodes whose RcvArray entry is programmed.
    pub programmed_entries_live: u64,
    /// Snapshot: pages pinned by programmed nodes.
    pub pinned_pages_live: u64,
    /// Snapshot: group allocator entries in use.
    pub group_entries_used: u64,
    /// Snapshot: per fd.
    pub fds: Vec<FdStats>,
}

impl TidStats {
    /// Count a failed call.
    pub(crate) fn count_err(&mut self, e: Errno) -> Errno {
        let c = match e {
            Errno::Inval => &mut self.einval,
            Errno::NoMem => &mut self.enomem,
            Errno::NoSpc => &mut self.enospc,
            Errno::Busy => &mut self.ebusy,
            Errno::Fault => &mut self.efault,
            // EPERM is never returned by this path; counted with EBADF if it ever is.
            Errno::BadF | Errno::Perm => &mut self.ebadf,
        };
        *c += 1;
        e
    }

    /// Add the traffic a [`CountingWriter`] saw.
    pub(crate) fn add_traffic(&mut self, w: &CountingWriter<'_>) {
        self.rcvarray_writes += w.writes;
        self.wc_fills += w.fills;
        self.wc_flushes += w.flushes;
    }
}

/// Forwards to an [`RcvArrayWriter`] and counts stores, fills and flushes.
pub(crate) struct CountingWriter<'a> {
    inner: &'a mut dyn RcvArrayWriter,
    pub(crate) writes: u64,
    pub(crate) fills: u64,
    pub(crate) flushes: u64,
}

impl<'a> CountingWriter<'a> {
    pub(crate) fn new(inner: &'a mut dyn RcvArrayWriter) -> Self {
        CountingWriter { inner, writes: 0, fills: 0, flushes: 0 }
    }
}

impl RcvArrayWriter for CountingWriter<'_> {
    fn write_entry(&mut self, index: u32, raw: u64) {
        if RcvArrayEntry(raw).write_enable() {
            self.writes += 1;
        } else {
            self.fills += 1;
        }
        self.inner.write_entry(index, raw);
    }
    fn flush_wc(&mut self) {
        self.flushes += 1;
        self.inner.flush_wc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::put_tid::{put_tid, wc_fill, RecordingWriter};
    use hfi_abi::rcv_array::PtType;
    use hfi_abi::BufSize;

    #[test]
    fn counting_writer_counts_and_forwards() {
        let mut rec = RecordingWriter::default();
        let mut w = CountingWriter::new(&mut rec);
        put_tid(&mut w, 3, PtType::Expected, 0x1000, BufSize::SIZE_4K);
        wc_fill(&mut w, 4);
        put_tid(&mut w, 5, PtType::InvalidFlush, 0, BufSize::INVALID);
        let mut s = TidStats::default();
        s.add_traffic(&w);
        assert_eq!((s.rcvarray_writes, s.wc_fills, s.wc_flushes), (2, 1, 2));
        assert_eq!(rec.ops.len(), 5);
        assert_eq!(s.count_err(Errno::Busy), Errno::Busy);
        assert_eq!(s.ebusy, 1);
        assert!(serde_json::to_string(&s).unwrap().contains("\"policy\":\"v2023\""));
    }
}
