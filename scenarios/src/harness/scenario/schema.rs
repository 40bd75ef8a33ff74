//! The typed scenario: what a scenario file deserializes into, its defaults, and the range and
//! cross-field rules ([`Scenario::validate`]). The file format is documented in the
//! [parent module](super).

use std::fmt;

use driver::user::RndvConfig;
use driver::Policy;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::units::{ByteSize, GIB, KIB, MIB};

/// Page size every buffer size is a multiple of.
const PAGE: u64 = 4 * KIB;

/// One scenario: a workload run under each of `policies`, with faults injected at named points
/// and the outcomes each policy must show.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Scenario name, `[a-z0-9-]+` (required).
    pub name: String,
    /// Free text shown in reports (default empty).
    #[serde(default)]
    pub description: String,
    /// Seed of every random choice in the run (default 1).
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Driver policies to run the scenario under, in order (default: all three, in
    /// [`Policy::ALL`] order).
    #[serde(default = "default_policies")]
    pub policies: Vec<Policy>,
    /// Memory of the simulated node (`[memory]`).
    #[serde(default)]
    pub memory: Memory,
    /// What the receiver does (`[workload]`).
    #[serde(default)]
    pub workload: ScenarioWorkload,
    /// Faults to inject (`[[fault]]`), in file order.
    #[serde(default, rename = "fault", skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<Fault>,
    /// Expected outcomes per policy (`[expect]`).
    #[serde(default)]
    pub expect: Expect,
}

fn default_seed() -> u64 {
    1
}

fn default_policies() -> Vec<Policy> {
    Policy::ALL.to_vec()
}

/// `[memory]`: the simulated node's memory and the driver's pin limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Memory {
    /// Guest memory in MiB, `256..=4096` (default 512).
    pub mem_mib: u32,
    /// RLIMIT_MEMLOCK of the receiving process (default unlimited).
    pub memlock: Memlock,
    /// hfi1's `cache_size` module parameter in MiB, `1..=65536` (default 256).
    pub cache_size_mb: u32,
    /// Physical layout of the frames backing each new mapping (default random).
    pub contiguity: Contiguity,
}

impl Default for Memory {
    fn default() -> Self {
        Memory {
            mem_mib: 512,
            memlock: Memlock::Unlimited,
            cache_size_mb: 256,
            contiguity: Contiguity::Random,
        }
    }
}

/// RLIMIT_MEMLOCK: `"unlimited"` or a byte size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Memlock {
    /// No limit (`RLIM_INFINITY`).
    #[default]
    Unlimited,
    /// At most this many bytes pinned.
    Limit(ByteSize),
}

impl Memlock {
    /// The limit in bytes, `None` when unlimited.
    pub fn bytes(self) -> Option<u64> {
        match self {
            Memlock::Unlimited => None,
            Memlock::Limit(b) => Some(b.bytes()),
        }
    }
}

impl Serialize for Memlock {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Memlock::Unlimited => s.serialize_str("unlimited"),
            Memlock::Limit(b) => b.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Memlock {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Memlock, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Memlock;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "\"unlimited\" or {}", super::units::EXPECTED)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Memlock, E> {
                Ok(Memlock::Limit(ByteSize(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Memlock, E> {
                u64::try_from(v)
                    .map(|v| Memlock::Limit(ByteSize(v)))
                    .map_err(|_| E::custom(format!("invalid memlock {v}: must not be negative")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Memlock, E> {
                if v == "unlimited" {
                    Ok(Memlock::Unlimited)
                } else {
                    ByteSize::parse(v).map(Memlock::Limit).map_err(|_| {
                        E::custom(format!(
                            "invalid memlock {v:?}: expected \"unlimited\" or a byte size \
                             like \"64MiB\""
                        ))
                    })
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// How the frames of a new mapping are laid out physically (`mmu::Contiguity`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Contiguity {
    /// `"contiguous"`: one physically contiguous run where the free frames allow it.
    Contiguous,
    /// `"scattered"`: no two virtually adjacent pages physically adjacent.
    Scattered,
    /// `"random"`: a deterministic mixture of runs, seeded from the scenario seed.
    #[default]
    Random,
    /// `"runs:N"`: runs of N pages, `N` in `1..=512`.
    Runs(u32),
}

impl Contiguity {
    /// The mmu allocation policy; `seed` seeds [`Contiguity::Random`].
    pub fn to_mmu(self, seed: u64) -> mmu::Contiguity {
        match self {
            Contiguity::Contiguous => mmu::Contiguity::Contiguous,
            Contiguity::Scattered => mmu::Contiguity::Scattered,
            Contiguity::Random => mmu::Contiguity::Random { seed },
            Contiguity::Runs(pages) => mmu::Contiguity::Runs { pages },
        }
    }
}

impl fmt::Display for Contiguity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Contiguity::Contiguous => f.write_str("contiguous"),
            Contiguity::Scattered => f.write_str("scattered"),
            Contiguity::Random => f.write_str("random"),
            Contiguity::Runs(n) => write!(f, "runs:{n}"),
        }
    }
}

impl Serialize for Contiguity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Contiguity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Contiguity, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Contiguity;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"contiguous\", \"scattered\", \"random\" or \"runs:N\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Contiguity, E> {
                match v {
                    "contiguous" => Ok(Contiguity::Contiguous),
                    "scattered" => Ok(Contiguity::Scattered),
                    "random" => Ok(Contiguity::Random),
                    _ => v
                        .strip_prefix("runs:")
                        .and_then(|n| n.parse::<u32>().ok())
                        .map(Contiguity::Runs)
                        .ok_or_else(|| {
                            E::custom(format!(
                                "invalid contiguity {v:?}: expected \"contiguous\", \
                                 \"scattered\", \"random\" or \"runs:N\" (N in 1..=512)"
                            ))
                        }),
                }
            }
        }
        d.deserialize_str(V)
    }
}

/// `[workload]`: the receiver's buffers and the messages it receives into them.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScenarioWorkload {
    /// Receive buffers, `1..=64` (default 1).
    pub buffers: u32,
    /// Size of each buffer: a multiple of 4 KiB in `4KiB..=64MiB` (default 1 MiB).
    pub buffer_size: ByteSize,
    /// Receives outstanding at once, `1..=buffers` (default: `buffers`); see
    /// [`ScenarioWorkload::in_flight`].
    #[serde(rename = "in_flight", skip_serializing_if = "Option::is_none")]
    pub in_flight_limit: Option<u32>,
    /// Rendezvous window, `4KiB..=4MiB` (default 128 KiB, PSM2_MQ_RNDV_HFI_WINDOW).
    pub window: ByteSize,
    /// Messages of at least this size go by rendezvous (expected receive), smaller ones eager;
    /// `0..=4GiB-1` (default 64000, PSM2_MQ_RNDV_HFI_THRESH).
    pub rndv_threshold: ByteSize,
    /// Which buffer each message lands in (default round-robin).
    pub reuse: Reuse,
    /// Free and re-mmap the same VA (other frames) every this many messages; 0 = never.
    pub realloc_every: u32,
    /// Subcontexts (fds) sharing the receive context, `1..=8` (default 1).
    pub subcontexts: u32,
    /// The messages, received in order (`[[workload.messages]]`, at least one).
    pub messages: Vec<MessageSpec>,
}

impl Default for ScenarioWorkload {
    fn default() -> Self {
        ScenarioWorkload {
            buffers: 1,
            buffer_size: ByteSize(MIB),
            in_flight_limit: None,
            window: ByteSize(u64::from(driver::user::rendezvous::DEFAULT_WINDOW)),
            rndv_threshold: ByteSize(u64::from(driver::user::rendezvous::DEFAULT_THRESHOLD)),
            reuse: Reuse::RoundRobin,
            realloc_every: 0,
            subcontexts: 1,
            messages: Vec::new(),
        }
    }
}

impl ScenarioWorkload {
    /// Receives outstanding at once: `in_flight`, or `buffers` when not given.
    pub fn in_flight(&self) -> u32 {
        self.in_flight_limit.unwrap_or(self.buffers)
    }

    /// Messages in the whole run: the sum of every `count`.
    pub fn total_messages(&self) -> u64 {
        self.messages.iter().map(|m| u64::from(m.count)).sum()
    }

    /// The size of every message in receive order (each [`MessageSpec`] repeated `count`
    /// times); message indices in [`Fault::message`] index this sequence.
    pub fn message_sizes(&self) -> impl Iterator<Item = ByteSize> + '_ {
        self.messages.iter().flat_map(|m| std::iter::repeat_n(m.size, m.count as usize))
    }

    /// The receiver's rendezvous parameters (other fields at their defaults).
    pub fn rndv_config(&self) -> RndvConfig {
        RndvConfig {
            window: u32::try_from(self.window.bytes()).unwrap_or(u32::MAX),
            threshold: u32::try_from(self.rndv_threshold.bytes()).unwrap_or(u32::MAX),
            ..RndvConfig::default()
        }
    }
}

/// Which buffer each message is received into.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reuse {
    /// `"round-robin"`: message `i` goes to buffer `i % buffers`.
    #[default]
    RoundRobin,
    /// `"random"`: a buffer drawn from the scenario seed (among the free ones).
    Random,
}

/// `[[workload.messages]]`: `count` messages of `size` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MessageSpec {
    /// Message size, `1..=buffer_size` (required).
    pub size: ByteSize,
    /// How many such messages, `1..=100000` (default 1).
    #[serde(default = "default_count")]
    pub count: u32,
}

fn default_count() -> u32 {
    1
}

/// `[[fault]]`: one fault injected at a named point of one message's receive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// What happens (required).
    pub kind: FaultKind,
    /// When it happens (required); must be one of [`FaultKind::points`].
    pub at: FaultPoint,
    /// Index (0-based, over all messages in receive order) of the message whose receive the
    /// point belongs to (required; `1..` for `between-messages`).
    pub message: u64,
    /// For `after-packets` (and only there, where it is required): packets of the message
    /// delivered before the fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packets: Option<u32>,
    /// For memory faults (and only there, where it is required): the buffer, `< buffers`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buffer: Option<u32>,
    /// For `corrupt-kdeth` (and only there, where it is required): the corruption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrupt: Option<Corruption>,
    /// For packet faults only: how many packets, `1..=1024`; see [`Fault::count`].
    #[serde(default, rename = "count", skip_serializing_if = "Option::is_none")]
    pub packet_count: Option<u32>,
}

impl Fault {
    /// Packets affected by a packet fault: `count`, default 1; 0 for other faults.
    pub fn count(&self) -> u32 {
        if self.kind.is_packet() {
            self.packet_count.unwrap_or(1)
        } else {
            0
        }
    }
}

/// What a fault does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// munmap of the whole buffer.
    Munmap,
    /// Partial munmap: the buffer's upper half is unmapped.
    Shrink,
    /// mremap of the buffer to another VA (the old range is unmapped).
    Mremap,
    /// madvise(MADV_DONTNEED) of the whole buffer.
    Madvise,
    /// munmap, then mmap at the same VA backed by other frames (the stale-cache trap).
    RemapSameVa,
    /// Packets lost on the wire.
    DropPacket,
    /// Packets delivered twice.
    DuplicatePacket,
    /// Each affected packet swaps places with the next packet of the message.
    ReorderPackets,
    /// Packets with a corrupted KDETH header.
    CorruptKdeth,
    /// The memlock headroom is used up: the next pins fail.
    MemlockExhaust,
    /// The next RcvArray write (program or unprogram) is lost.
    RcvarrayWriteLost,
    /// The next receive interrupt is lost.
    InterruptLost,
}

impl FaultKind {
    /// Every kind, in documentation order.
    pub const ALL: [FaultKind; 12] = [
        FaultKind::Munmap,
        FaultKind::Shrink,
        FaultKind::Mremap,
        FaultKind::Madvise,
        FaultKind::RemapSameVa,
        FaultKind::DropPacket,
        FaultKind::DuplicatePacket,
        FaultKind::ReorderPackets,
        FaultKind::CorruptKdeth,
        FaultKind::MemlockExhaust,
        FaultKind::RcvarrayWriteLost,
        FaultKind::InterruptLost,
    ];

    /// The name used in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Munmap => "munmap",
            FaultKind::Shrink => "shrink",
            FaultKind::Mremap => "mremap",
            FaultKind::Madvise => "madvise",
            FaultKind::RemapSameVa => "remap-same-va",
            FaultKind::DropPacket => "drop-packet",
            FaultKind::DuplicatePacket => "duplicate-packet",
            FaultKind::ReorderPackets => "reorder-packets",
            FaultKind::CorruptKdeth => "corrupt-kdeth",
            FaultKind::MemlockExhaust => "memlock-exhaust",
            FaultKind::RcvarrayWriteLost => "rcvarray-write-lost",
            FaultKind::InterruptLost => "interrupt-lost",
        }
    }

    /// A fault on a registered buffer's memory (needs `buffer`).
    pub fn is_memory(self) -> bool {
        matches!(
            self,
            FaultKind::Munmap
                | FaultKind::Shrink
                | FaultKind::Mremap
                | FaultKind::Madvise
                | FaultKind::RemapSameVa
        )
    }

    /// A fault on the message's packets (takes `count`; only at packet points).
    pub fn is_packet(self) -> bool {
        matches!(
            self,
            FaultKind::DropPacket
                | FaultKind::DuplicatePacket
                | FaultKind::ReorderPackets
                | FaultKind::CorruptKdeth
        )
    }

    /// The points this kind may be injected at.
    pub fn points(self) -> &'static [FaultPoint] {
        if self.is_packet() {
            &[FaultPoint::BeforeFirstPacket, FaultPoint::AfterPackets]
        } else {
            &FaultPoint::ALL
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where in a message's receive a fault is injected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultPoint {
    /// After the pages of the message's first window are pinned, before the RcvArray is
    /// programmed.
    AfterPin,
    /// After programming, before the first packet of the message arrives.
    BeforeFirstPacket,
    /// After `packets` packets of the message have been delivered.
    AfterPackets,
    /// During the first TID_FREE batch issued at or after the start of the message.
    DuringTidFree,
    /// In the user library's first free at or after the start of the message, between its
    /// TID_FREE and its re-check of the event word.
    BetweenFreeAndRecheck,
    /// After message `message - 1` completed, before message `message` starts.
    BetweenMessages,
}

impl FaultPoint {
    /// Every point, in receive order.
    pub const ALL: [FaultPoint; 6] = [
        FaultPoint::AfterPin,
        FaultPoint::BeforeFirstPacket,
        FaultPoint::AfterPackets,
        FaultPoint::DuringTidFree,
        FaultPoint::BetweenFreeAndRecheck,
        FaultPoint::BetweenMessages,
    ];

    /// The name used in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            FaultPoint::AfterPin => "after-pin",
            FaultPoint::BeforeFirstPacket => "before-first-packet",
            FaultPoint::AfterPackets => "after-packets",
            FaultPoint::DuringTidFree => "during-tid-free",
            FaultPoint::BetweenFreeAndRecheck => "between-free-and-recheck",
            FaultPoint::BetweenMessages => "between-messages",
        }
    }
}

impl fmt::Display for FaultPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How `corrupt-kdeth` corrupts the KDETH header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
pub enum Corruption {
    /// `"bad-tid"`: a TID index the context does not own.
    #[serde(rename = "bad-tid")]
    BadTid,
    /// `"tidctrl-0"`: TIDCtrl 0 (invalid).
    #[serde(rename = "tidctrl-0")]
    TidCtrl0,
    /// `"tidctrl-3"`: TIDCtrl 3 (invalid).
    #[serde(rename = "tidctrl-3")]
    TidCtrl3,
    /// `"offset-past-end"`: an offset past the end of the TID's buffer.
    #[serde(rename = "offset-past-end")]
    OffsetPastEnd,
}

/// `[expect]`: the outcome each policy must show; a policy without an entry is only run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Expect {
    /// Under `seed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<Expectation>,
    /// Under `v2023`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub v2023: Option<Expectation>,
    /// Under `nocache`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nocache: Option<Expectation>,
}

impl Expect {
    /// The expectation for `policy`, if any.
    pub fn get(&self, policy: Policy) -> Option<&Expectation> {
        match policy {
            Policy::Seed => self.seed.as_ref(),
            Policy::V2023 => self.v2023.as_ref(),
            Policy::NoCache => self.nocache.as_ref(),
        }
    }
}

/// What one policy's run must show; a counter without an entry is not checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Expectation {
    /// Oracle violations (DMA into a freed, foreign or unpinned page; bad payload; leaks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub violations: Option<Count>,
    /// Packets that took a TID error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tid_errors: Option<Count>,
    /// Messages that did not complete.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_messages: Option<Count>,
    /// DMA writes that landed in pages freed by the process but still pinned by the driver.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dma_to_freed_pinned: Option<Count>,
    /// Completed messages whose bytes differ from what was sent (default `"none"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_mismatches: Option<Count>,
}

/// An expected counter value: `"none"`, `"some"` or an exact integer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Count {
    /// `"none"`: zero.
    Zero,
    /// `"some"`: at least one.
    AtLeastOne,
    /// An exact value.
    Exactly(u64),
}

impl Count {
    /// Whether an observed counter value satisfies the expectation.
    pub fn matches(self, observed: u64) -> bool {
        match self {
            Count::Zero => observed == 0,
            Count::AtLeastOne => observed > 0,
            Count::Exactly(n) => observed == n,
        }
    }
}

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Count::Zero => f.write_str("none"),
            Count::AtLeastOne => f.write_str("some"),
            Count::Exactly(n) => write!(f, "{n}"),
        }
    }
}

impl Serialize for Count {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Count::Zero => s.serialize_str("none"),
            Count::AtLeastOne => s.serialize_str("some"),
            Count::Exactly(n) => s.serialize_u64(*n),
        }
    }
}

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Count, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Count;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"none\", \"some\" or a non-negative integer")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Count, E> {
                Ok(Count::Exactly(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Count, E> {
                u64::try_from(v).map(Count::Exactly).map_err(|_| {
                    E::custom(format!(
                        "invalid count {v}: expected \"none\", \"some\" or a non-negative integer"
                    ))
                })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Count, E> {
                match v {
                    "none" => Ok(Count::Zero),
                    "some" => Ok(Count::AtLeastOne),
                    _ => Err(E::custom(format!(
                        "invalid count {v:?}: expected \"none\", \"some\" or a non-negative integer"
                    ))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// A scenario that deserialized but breaks a range or cross-field rule: the key (dotted path,
/// `[i]` for array elements, e.g. `fault[1].buffer`) and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// Dotted key path; for a missing key, the path it should have had.
    pub key: String,
    /// What is wrong, one line.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

impl std::error::Error for FieldError {}

fn field_error(key: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError { key: key.into(), message: message.into() }
}

/// `value` must lie in `lo..=hi`; `show` renders values in the message.
fn in_range<T: PartialOrd + Copy>(
    key: &str,
    value: T,
    lo: T,
    hi: T,
    show: impl Fn(T) -> String,
) -> Result<(), FieldError> {
    if value < lo || value > hi {
        Err(field_error(
            key,
            format!("{} is out of range {}..={}", show(value), show(lo), show(hi)),
        ))
    } else {
        Ok(())
    }
}

fn num<T: fmt::Display>(v: T) -> String {
    v.to_string()
}

fn size(v: ByteSize) -> String {
    v.to_string()
}

impl Scenario {
    /// Checks every range and cross-field rule of the schema; the first broken one is returned
    /// (file order). [`super::parse_str`] and [`super::load_file`] call this.
    pub fn validate(&self) -> Result<(), FieldError> {
        if self.name.is_empty()
            || !self.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(field_error(
                "name",
                format!("{:?} is not a valid name (expected [a-z0-9-]+)", self.name),
            ));
        }
        if self.policies.is_empty() {
            return Err(field_error("policies", "at least one policy is required"));
        }
        for (i, p) in self.policies.iter().enumerate() {
            if self.policies.iter().take(i).any(|q| q == p) {
                return Err(field_error(
                    format!("policies[{i}]"),
                    format!("policy `{}` is listed twice", p.name()),
                ));
            }
        }
        self.memory.validate()?;
        self.workload.validate()?;
        let total = self.workload.total_messages();
        for (i, fault) in self.faults.iter().enumerate() {
            fault.validate(&format!("fault[{i}]"), &self.workload, total)?;
        }
        for policy in Policy::ALL {
            if self.expect.get(policy).is_some() && !self.policies.contains(&policy) {
                return Err(field_error(
                    format!("expect.{}", policy.name()),
                    format!("policy `{}` is not in `policies`", policy.name()),
                ));
            }
        }
        Ok(())
    }
}

impl Memory {
    fn validate(&self) -> Result<(), FieldError> {
        in_range("memory.mem_mib", self.mem_mib, 256, 4096, num)?;
        in_range("memory.cache_size_mb", self.cache_size_mb, 1, 65536, num)?;
        if let Contiguity::Runs(n) = self.contiguity {
            in_range("memory.contiguity", n, 1, 512, |n| format!("runs:{n}"))?;
        }
        Ok(())
    }
}

impl ScenarioWorkload {
    fn validate(&self) -> Result<(), FieldError> {
        in_range("workload.buffers", self.buffers, 1, 64, num)?;
        in_range(
            "workload.buffer_size",
            self.buffer_size,
            ByteSize(PAGE),
            ByteSize(64 * MIB),
            size,
        )?;
        if self.buffer_size.bytes() % PAGE != 0 {
            return Err(field_error(
                "workload.buffer_size",
                format!("{} is not a multiple of 4KiB", self.buffer_size),
            ));
        }
        if let Some(n) = self.in_flight_limit {
            in_range("workload.in_flight", n, 1, self.buffers, num)?;
        }
        in_range("workload.window", self.window, ByteSize(PAGE), ByteSize(4 * MIB), size)?;
        in_range(
            "workload.rndv_threshold",
            self.rndv_threshold,
            ByteSize(0),
            ByteSize(4 * GIB - 1),
            size,
        )?;
        in_range("workload.subcontexts", self.subcontexts, 1, 8, num)?;
        if self.messages.is_empty() {
            return Err(field_error(
                "workload.messages",
                "at least one [[workload.messages]] is required",
            ));
        }
        for (i, m) in self.messages.iter().enumerate() {
            in_range(
                &format!("workload.messages[{i}].size"),
                m.size,
                ByteSize(1),
                self.buffer_size,
                size,
            )?;
            in_range(&format!("workload.messages[{i}].count"), m.count, 1, 100_000, num)?;
        }
        Ok(())
    }
}

impl Fault {
    fn validate(
        &self,
        at: &str,
        workload: &ScenarioWorkload,
        total: u64,
    ) -> Result<(), FieldError> {
        let kind = self.kind;
        if !kind.points().contains(&self.at) {
            let allowed: Vec<&str> = kind.points().iter().map(|p| p.name()).collect();
            return Err(field_error(
                format!("{at}.at"),
                format!(
                    "`{}` faults cannot be injected at `{}` (expected one of {})",
                    kind,
                    self.at,
                    allowed.join(", ")
                ),
            ));
        }
        let first = if self.at == FaultPoint::BetweenMessages { 1 } else { 0 };
        if total <= first {
            return Err(field_error(
                format!("{at}.message"),
                format!("no message can take a `{}` fault ({total} messages)", self.at),
            ));
        }
        in_range(&format!("{at}.message"), self.message, first, total - 1, num)?;
        match (self.at, self.packets) {
            (FaultPoint::AfterPackets, None) => {
                return Err(field_error(
                    format!("{at}.packets"),
                    "missing key `packets` (required with at = \"after-packets\")",
                ))
            }
            (FaultPoint::AfterPackets, Some(_)) | (_, None) => {}
            (point, Some(_)) => {
                return Err(field_error(
                    format!("{at}.packets"),
                    format!("`packets` only applies to at = \"after-packets\", not \"{point}\""),
                ))
            }
        }
        match (kind.is_memory(), self.buffer) {
            (true, None) => {
                return Err(field_error(
                    format!("{at}.buffer"),
                    format!("missing key `buffer` (required for `{kind}` faults)"),
                ))
            }
            (true, Some(b)) => {
                if b >= workload.buffers {
                    return Err(field_error(
                        format!("{at}.buffer"),
                        format!("{b} is out of range 0..={}", workload.buffers.saturating_sub(1)),
                    ));
                }
            }
            (false, Some(_)) => {
                return Err(field_error(
                    format!("{at}.buffer"),
                    format!("`buffer` only applies to memory faults, not `{kind}`"),
                ))
            }
            (false, None) => {}
        }
        match (kind == FaultKind::CorruptKdeth, self.corrupt) {
            (true, None) => {
                return Err(field_error(
                    format!("{at}.corrupt"),
                    "missing key `corrupt` (required for `corrupt-kdeth` faults)",
                ))
            }
            (false, Some(_)) => {
                return Err(field_error(
                    format!("{at}.corrupt"),
                    format!("`corrupt` only applies to `corrupt-kdeth` faults, not `{kind}`"),
                ))
            }
            _ => {}
        }
        match (kind.is_packet(), self.packet_count) {
            (false, Some(_)) => {
                return Err(field_error(
                    format!("{at}.count"),
                    format!("`count` only applies to packet faults, not `{kind}`"),
                ))
            }
            (true, Some(n)) => in_range(&format!("{at}.count"), n, 1, 1024, num)?,
            _ => {}
        }
        Ok(())
    }
}
