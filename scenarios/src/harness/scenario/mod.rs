//! Scenario files: one TOML file describes one scenario of the regression harness — a
//! workload, the node's memory, the driver policies to compare, faults injected at named
//! points, and the outcomes each policy must show. The library lives in `scenarios/library/`.
//!
//! Load with [`load_file`], [`load_dir`] or [`parse_str`]. A bad file gives a
//! [`ScenarioError`] whose `Display` is one line naming the file, the line and the key:
//!
//! ```text
//! scenarios/library/x.toml:12: workload.buffers: 0 is out of range 1..=64
//! x.toml:3: unknown key `bufers` in [workload] (expected one of `buffers`, `buffer_size`, …)
//! x.toml:7: fault[0].corrupt: unknown value `bad-tidd` (expected one of `bad-tid`, …)
//! ```
//!
//! # Example
//!
//! ```toml
//! name = "reuse-stale-cache"
//! description = "free + re-mmap the same VA between receives"
//! seed = 7
//! policies = ["seed", "v2023", "nocache"]
//!
//! [memory]
//! mem_mib = 512
//! memlock = "unlimited"
//! cache_size_mb = 256
//! contiguity = "random"
//!
//! [workload]
//! buffers = 2
//! buffer_size = "1MiB"
//! window = "128KiB"
//! realloc_every = 4
//!
//! [[workload.messages]]
//! size = "64KiB"
//! count = 8
//!
//! [[fault]]
//! kind = "munmap"
//! at = "after-packets"
//! message = 3
//! packets = 5
//! buffer = 1
//!
//! [expect]
//! v2023 = { tid_errors = "some", violations = 0 }
//! ```
//!
//! # Schema
//!
//! Every table rejects keys it does not know. Byte sizes are an integer (bytes) or a string
//! `"<integer><unit>"` with unit `B`, `KiB`/`K`, `MiB`/`M` or `GiB`/`G` (binary, case-sensitive;
//! a space before the unit is allowed; no fractions, no `KB`/`MB`).
//!
//! ## Top level
//!
//! | key | type | default | rule |
//! |---|---|---|---|
//! | `name` | string | required | `[a-z0-9-]+`, unique within a directory ([`load_dir`]) |
//! | `description` | string | `""` | free text for reports |
//! | `seed` | integer | `1` | `0..=2^63-1`; seeds every random choice (contiguity, `reuse = "random"`) |
//! | `policies` | array of strings | `["nocache", "seed", "v2023"]` | non-empty, each of `seed`, `v2023`, `nocache` at most once; run in this order |
//!
//! ## `[memory]` (optional)
//!
//! | key | type | default | rule |
//! |---|---|---|---|
//! | `mem_mib` | integer | `512` | guest memory, MiB, `256..=4096` |
//! | `memlock` | `"unlimited"` or byte size | `"unlimited"` | RLIMIT_MEMLOCK of the receiver |
//! | `cache_size_mb` | integer | `256` | hfi1 `cache_size` (per-fd pin cap), MiB, `1..=65536` |
//! | `contiguity` | string | `"random"` | physical layout of new mappings: `"contiguous"`, `"scattered"`, `"random"` (seeded mixture) or `"runs:N"` (runs of N pages, `N` in `1..=512`) |
//!
//! ## `[workload]`
//!
//! | key | type | default | rule |
//! |---|---|---|---|
//! | `buffers` | integer | `1` | receive buffers, `1..=64` |
//! | `buffer_size` | byte size | `"1MiB"` | each buffer; `4KiB..=64MiB`, a multiple of 4 KiB |
//! | `in_flight` | integer | `buffers` | receives outstanding at once, `1..=buffers` |
//! | `window` | byte size | `"128KiB"` | rendezvous window (PSM2_MQ_RNDV_HFI_WINDOW), `4KiB..=4MiB` |
//! | `rndv_threshold` | byte size | `64000` | messages of at least this size go by rendezvous (expected receive with TIDs), smaller ones eager; `0..=4GiB-1` |
//! | `reuse` | string | `"round-robin"` | which buffer message `i` lands in: `"round-robin"` (`i % buffers`) or `"random"` (seeded) |
//! | `realloc_every` | integer | `0` | every this many messages, free each buffer and mmap it again at the same VA (other frames: the stale-cache trap); `0` = never |
//! | `subcontexts` | integer | `1` | subcontexts (fds) sharing the receive context, `1..=8` |
//!
//! `[[workload.messages]]` (at least one) — the messages, received in file order; message
//! indices (`fault.message`) count over all of them, each repeated `count` times:
//!
//! | key | type | default | rule |
//! |---|---|---|---|
//! | `size` | byte size | required | `1..=buffer_size` |
//! | `count` | integer | `1` | `1..=100000` |
//!
//! ## `[[fault]]` (zero or more)
//!
//! | key | type | default | rule |
//! |---|---|---|---|
//! | `kind` | string | required | see the kinds below |
//! | `at` | string | required | see the points below; packet faults only at `before-first-packet` or `after-packets` |
//! | `message` | integer | required | 0-based index of the message whose receive the point belongs to, `< total messages` (`1..` for `between-messages`) |
//! | `packets` | integer | — | required with `at = "after-packets"`, not allowed otherwise: packets of the message delivered before the fault (`≥ 0`) |
//! | `buffer` | integer | — | required for memory faults, not allowed otherwise: the buffer, `< buffers` |
//! | `corrupt` | string | — | required for `corrupt-kdeth`, not allowed otherwise: `"bad-tid"` (a TID the context does not own), `"tidctrl-0"`, `"tidctrl-3"` (invalid TIDCtrl), `"offset-past-end"` |
//! | `count` | integer | `1` | packet faults only: how many packets, `1..=1024` |
//!
//! Kinds — memory faults (need `buffer`):
//! - `munmap`: munmap of the whole buffer;
//! - `shrink`: partial munmap, the buffer's upper half;
//! - `mremap`: the buffer moves to another VA (its old range is unmapped);
//! - `madvise`: madvise(MADV_DONTNEED) of the whole buffer;
//! - `remap-same-va`: munmap, then mmap at the same VA backed by other frames.
//!
//! Packet faults (take `count`; the packets are the message's next ones after the point):
//! - `drop-packet`: lost; `duplicate-packet`: delivered twice; `reorder-packets`: each swaps
//!   places with the message's next packet; `corrupt-kdeth`: KDETH corrupted as `corrupt` says.
//!
//! Other faults (the next event of that kind after the point is affected):
//! - `memlock-exhaust`: the memlock headroom is used up, so the next pins fail;
//! - `rcvarray-write-lost`: the next RcvArray write (program or unprogram) is lost;
//! - `interrupt-lost`: the next receive interrupt is lost.
//!
//! Points, all within the receive of message `message`:
//! - `after-pin`: the first window's pages are pinned, the RcvArray not yet programmed;
//! - `before-first-packet`: programmed, no packet delivered yet;
//! - `after-packets`: `packets` packets of the message delivered;
//! - `during-tid-free`: inside the first TID_FREE batch at or after the message's start;
//! - `between-free-and-recheck`: in the user library's first free at or after the message's
//!   start, between its TID_FREE and its re-check of the event word;
//! - `between-messages`: after message `message - 1` completed, before `message` starts.
//!
//! ## `[expect]` (optional)
//!
//! One entry per policy (`seed`, `v2023`, `nocache`; each must be in `policies`), a table of
//! counters, each `"none"` (zero), `"some"` (at least one) or an exact integer. Defaults when
//! left out: `violations` and `data_mismatches` must be `"none"`, `failed_messages` must be
//! `"none"` when the scenario has no fault; the others are not checked. Teardown must always be
//! clean (no pin, TID, RcvArray entry or DMA map left).
//!
//! | key | counts |
//! |---|---|
//! | `violations` | oracle verdicts: DMA into a free, foreign or unpinned page |
//! | `tid_errors` | packets that took a TID error |
//! | `failed_messages` | messages that did not complete |
//! | `dma_to_freed_pinned` | DMA writes into pages the process freed but the driver still pins |
//! | `data_mismatches` | completed messages whose bytes differ from what was sent |
//!
//! ```toml
//! [expect]
//! seed = { dma_to_freed_pinned = "some", violations = "none" }
//! v2023 = { tid_errors = "some", violations = 0 }
//! ```

mod expect;
mod fault;
mod load;
mod schema;
mod spans;
pub mod units;
mod validate;

pub use driver::Policy;
pub use expect::{Count, Expect, Expectation};
pub use fault::{Corruption, Fault, FaultKind, FaultPoint};
pub use load::{load_dir, load_file, parse_str, ErrorKind, ScenarioError};
pub(crate) use load::{parse_checked, read_text};
pub use schema::{Contiguity, Memlock, Memory, MessageSpec, Reuse, Scenario, ScenarioWorkload};
pub use units::{ByteSize, GIB, KIB, MIB};
pub use validate::FieldError;
