//! Byte sizes in scenario files: an integer (bytes) or a string `"<integer><suffix>"`.
//!
//! Suffixes: `B` (bytes), `KiB`/`K` (2^10), `MiB`/`M` (2^20), `GiB`/`G` (2^30), case-sensitive;
//! no suffix means bytes. Spaces between the number and the suffix are allowed (`"64 KiB"`);
//! `_` separators (`"1_048_576"`), fractions, negative values and decimal units (`KB`, `MB`)
//! are not.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// One KiB.
pub const KIB: u64 = 1 << 10;
/// One MiB.
pub const MIB: u64 = 1 << 20;
/// One GiB.
pub const GIB: u64 = 1 << 30;

/// A size in bytes, as written in a scenario file (see the [module docs](self)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

/// The suffixes a byte-size string may carry, longest first so that `KiB` wins over `K`.
const SUFFIXES: [(&str, u64); 7] =
    [("KiB", KIB), ("MiB", MIB), ("GiB", GIB), ("B", 1), ("K", KIB), ("M", MIB), ("G", GIB)];

/// What a byte size must look like, for error messages.
pub(crate) const EXPECTED: &str =
    "an integer number of bytes or a string like \"64KiB\" (suffix B, KiB, MiB, GiB, K, M or G)";

impl ByteSize {
    /// The size in bytes.
    pub fn bytes(self) -> u64 {
        self.0
    }

    /// Parses a byte-size string (`"1MiB"`, `"4096"`, `"64 K"`); the error says why not.
    pub fn parse(text: &str) -> Result<ByteSize, String> {
        let t = text.trim();
        let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (number, rest) = t.split_at(digits_end);
        let suffix = rest.trim_start();
        if number.is_empty() {
            return Err(format!("invalid byte size {text:?}: expected {EXPECTED}"));
        }
        let multiplier = if suffix.is_empty() {
            1
        } else {
            match SUFFIXES.iter().find(|(s, _)| *s == suffix) {
                Some(&(_, m)) => m,
                None => {
                    return Err(format!(
                        "invalid byte size {text:?}: unknown unit {suffix:?} (expected B, KiB, \
                         MiB, GiB, K, M or G)"
                    ))
                }
            }
        };
        number
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(multiplier))
            .map(ByteSize)
            .ok_or_else(|| format!("invalid byte size {text:?}: too large"))
    }
}

impl fmt::Display for ByteSize {
    /// The largest binary unit that divides the size exactly: `1MiB`, `12KiB`, `4097B`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        if n == 0 {
            return write!(f, "0B");
        }
        for (unit, size) in [("GiB", GIB), ("MiB", MIB), ("KiB", KIB)] {
            if n % size == 0 {
                return write!(f, "{}{unit}", n / size);
            }
        }
        write!(f, "{n}B")
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ByteSize, D::Error> {
        d.deserialize_any(ByteSizeVisitor)
    }
}

/// Accepts a non-negative integer or a byte-size string.
struct ByteSizeVisitor;

impl Visitor<'_> for ByteSizeVisitor {
    type Value = ByteSize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(EXPECTED)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
        Ok(ByteSize(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
        u64::try_from(v)
            .map(ByteSize)
            .map_err(|_| E::custom(format!("invalid byte size {v}: must not be negative")))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
        ByteSize::parse(v).map_err(E::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_suffixes() {
        let ok = [
            ("0", 0),
            ("4096", 4096),
            ("12B", 12),
            ("4KiB", 4096),
            ("4K", 4096),
            ("64 KiB", 65536),
            ("1MiB", MIB),
            ("3M", 3 * MIB),
            ("2GiB", 2 * GIB),
            ("1G", GIB),
            (" 8KiB ", 8192),
        ];
        for (text, bytes) in ok {
            assert_eq!(ByteSize::parse(text), Ok(ByteSize(bytes)), "{text}");
        }
    }

    #[test]
    fn rejects_bad_sizes() {
        for text in ["", "KiB", "12 parsecs", "1.5MiB", "-4K", "4kb", "4KB", "1_000", "0x1000"] {
            assert!(ByteSize::parse(text).is_err(), "{text}");
        }
        assert_eq!(
            ByteSize::parse("99999999999999999999G"),
            Err("invalid byte size \"99999999999999999999G\": too large".to_string())
        );
        assert_eq!(
            ByteSize::parse("17179869184G"),
            Err("invalid byte size \"17179869184G\": too large".to_string())
        );
    }

    #[test]
    fn displays_in_the_largest_exact_unit() {
        let cases = [(0, "0B"), (4096, "4KiB"), (4097, "4097B"), (MIB, "1MiB"), (3 * GIB, "3GiB")];
        for (bytes, text) in cases {
            assert_eq!(ByteSize(bytes).to_string(), text);
            assert_eq!(ByteSize::parse(text), Ok(ByteSize(bytes)));
        }
    }
}
