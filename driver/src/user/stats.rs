//! Counters of the user TID cache.

use serde::Serialize;

/// Counters and gauges of one [`super::TidCache`]. Counters only grow; `entries`, `idle` are
/// the state at the time of [`super::TidCache::stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CacheStats {
    /// `acquire` calls.
    pub acquires: u64,
    /// TIDs handed out from the cache (already registered).
    pub hits: u64,
    /// TIDs registered by an acquire (TID_UPDATE) and handed out.
    pub misses: u64,
    /// TID_UPDATE calls, failed ones included.
    pub tid_update_calls: u64,
    /// TID_FREE calls.
    pub tid_free_calls: u64,
    /// Idle TIDs removed by the cache itself: LRU victims (cache full, ENOMEM) and the
    /// 128 KiB offset-mode rule.
    pub evictions: u64,
    /// TIDs marked invalidated from TID_INVAL_READ.
    pub invalidations_processed: u64,
    /// TID_INVAL_READ entries naming a TID the cache does not hold, or holds already
    /// invalidated (ignored).
    pub stale_invalidations: u64,
    /// Acquires that returned [`super::CacheError::NoProgress`].
    pub no_progress: u64,
    /// Bytes mapped by successful TID_UPDATE calls.
    pub bytes_registered: u64,
    /// Entries in the cache now (in use, idle, and invalidated-in-use); non-cached: TIDs
    /// handed out and not released.
    pub entries: u64,
    /// Entries on the idle queue now.
    pub idle: u64,
    /// Most entries (non-cached: TIDs out) ever held at once.
    pub peak_entries: u64,
}
