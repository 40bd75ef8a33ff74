//! The typed scenario: what a scenario file deserializes into, and its defaults. Its faults
//! ([`super::fault`]), expectations ([`super::expect`]) and range and cross-field rules
//! ([`super::validate`]) are beside it; the file format is documented in the
//! [parent module](super).

use std::fmt;

use driver::user::RndvConfig;
use driver::Policy;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::units::{ByteSize, KIB, MIB};
use super::{Expect, Fault};

/// Page size every buffer size is a multiple of.
pub(super) const PAGE: u64 = 4 * KIB;

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
