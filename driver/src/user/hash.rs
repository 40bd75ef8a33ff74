//! A small deterministic hasher for the cache's point-lookup maps (keys are tidinfo keys and
//! page addresses). The std SipHash is slow for a u32 and randomly keyed; this one is a
//! multiply-fold (the wyhash / foldhash mixing step), fast and the same on every run. The maps
//! using it are never iterated, so their order never leaks into behaviour.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Odd multiplier (a 64-bit golden-ratio constant).
const K: u64 = 0x9E37_79B9_7F4A_7C15;

/// The hasher state.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct FoldHasher(u64);

impl FoldHasher {
    fn mix(&mut self, n: u64) {
        let p = u128::from(self.0 ^ n) * u128::from(K);
        self.0 = (p as u64) ^ ((p >> 64) as u64);
    }
}

impl Hasher for FoldHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            for (d, s) in word.iter_mut().zip(chunk) {
                *d = *s;
            }
            self.mix(u64::from_le_bytes(word));
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.mix(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.mix(n);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A `HashMap` with [`FoldHasher`].
pub(crate) type FoldMap<K, V> = HashMap<K, V, BuildHasherDefault<FoldHasher>>;

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::hash::BuildHasher;

    use super::*;

    #[test]
    fn page_addresses_spread_over_low_bits() {
        let b = BuildHasherDefault::<FoldHasher>::default();
        let low: BTreeSet<u64> =
            (0..1024u64).map(|i| b.hash_one(0x1000_0000 + i * 4096) & 1023).collect();
        assert!(low.len() > 600, "only {} distinct buckets", low.len());
        assert_eq!(b.hash_one(7u32), b.hash_one(7u32));
        let mut h = FoldHasher::default();
        h.write(&[1, 2, 3]);
        assert_ne!(h.finish(), 0);
    }
}
