//! `[expect]`: the outcome each policy must show.

use std::fmt;

use driver::Policy;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

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
