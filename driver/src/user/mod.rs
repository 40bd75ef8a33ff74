//! The PSM2-like user library's expected-receive side: the user-space TID cache
//! (opa-psm2 ips_tidcache, facts §9.3) with its non-cached fallback (ips_tid, §9.2), and the
//! receiver's rendezvous window planning (§9.1, §9.4).
//!
//! Everything here is written against [`crate::uapi::HfiFd`] only (TID_UPDATE, TID_FREE,
//! TID_INVAL_READ and the event word), so it runs over the in-process kernel side, any other
//! binding, or [`model_fd::ModelFd`].
//!
//! # Map
//!
//! - [`TidCache`] (`cache.rs`): state, release, cleanup; `acquire.rs` the lookup / extend
//!   walk and the 128 KiB offset-mode rule; `register.rs` TID_UPDATE, LRU eviction and the
//!   free-then-recheck removal; `invalidate.rs` TID_INVAL_READ processing; `nocache.rs` the
//!   TID_UNMAP path; `invariants.rs` the checker used by tests; `lru.rs` the intrusive idle
//!   queue over a slab.
//! - [`rendezvous`]: [`RndvConfig`] and [`plan_windows`].
//! - [`model_fd`]: [`model_fd::ModelFd`], an fd backed by a simple in-memory kernel model
//!   (workloads, perf fixtures, benches, catalog probes).
//! - `mock` (feature `test-utils`, never in a production build): `mock::MockFd`, the model
//!   fd with fault switches for tests.
//!
//! # Invariants
//!
//! - Entries never overlap; each is indexed by start VA and by [`tid_key`].
//! - The idle queue holds exactly the entries with refcount 0 that are not invalidated; an
//!   invalidated entry is freed as soon as its refcount is 0.
//! - Every TID the kernel holds for this fd is an entry of the cache (or, non-cached, a TID
//!   handed out and not released), so [`TidCache::cleanup`] leaves nothing registered.
//! - Deterministic: ordered maps only, no clock, no randomness.

mod acquire;
mod cache;
mod entry;
mod error;
mod hash;
mod invalidate;
mod invariants;
mod lru;
#[cfg(any(test, feature = "test-utils"))]
pub mod mock;
pub mod model_fd;
mod nocache;
mod register;
pub mod rendezvous;
mod stats;

pub use acquire::{OM_ALIGN, OM_THRESHOLD};
pub use cache::{Acquired, BugSwitches, Eviction, TidCache};
pub use entry::{tid_key, CacheEntry};
pub use error::CacheError;
pub use rendezvous::{plan_windows, plan_windows_at, RndvConfig};
pub use stats::CacheStats;
