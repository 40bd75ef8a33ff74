//! The range and cross-field rules of a scenario ([`Scenario::validate`]): the first broken
//! one is a [`FieldError`] naming its key.

use std::fmt;

use driver::Policy;

use super::schema::{Contiguity, Memory, Scenario, ScenarioWorkload, PAGE};
use super::units::{ByteSize, GIB, MIB};
use super::{Fault, FaultKind, FaultPoint};

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
