//! Simulated time. The model never reads a wall clock: the runner owns time and passes it in.

use serde::Serialize;

/// A point in simulated time, in picoseconds since the device was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct SimTime(pub u64);

impl SimTime {
    /// Time zero.
    pub const ZERO: SimTime = SimTime(0);

    /// `self + ps`, saturating (simulated time never wraps).
    pub const fn plus(self, ps: u64) -> SimTime {
        SimTime(self.0.saturating_add(ps))
    }

    /// Picoseconds from `earlier` to `self` (0 if `earlier` is later).
    pub const fn since(self, earlier: SimTime) -> u64 {
        self.0.saturating_sub(earlier.0)
    }

    /// The later of two times.
    pub fn max(self, other: SimTime) -> SimTime {
        if other.0 > self.0 {
            other
        } else {
            self
        }
    }

    /// Nanoseconds as a float, for reports.
    pub fn as_ns(self) -> f64 {
        self.0 as f64 / 1_000.0
    }

    /// From nanoseconds.
    pub const fn from_ns(ns: u64) -> SimTime {
        SimTime(ns.saturating_mul(1_000))
    }

    /// From microseconds.
    pub const fn from_us(us: u64) -> SimTime {
        SimTime(us.saturating_mul(1_000_000))
    }
}

impl std::fmt::Display for SimTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.3}ns", self.as_ns())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        assert_eq!(SimTime(u64::MAX).plus(1), SimTime(u64::MAX));
        assert_eq!(SimTime(5).since(SimTime(9)), 0);
        assert_eq!(SimTime::from_ns(3).since(SimTime(1000)), 2000);
        assert_eq!(SimTime::from_us(1).to_string(), "1000.000ns");
        assert_eq!(SimTime(4).max(SimTime(7)), SimTime(7));
    }
}
