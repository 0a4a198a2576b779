//! The shared vocabulary of spore's sans-IO protocol cores (see docs/ARCHITECTURE.md).
//!
//! A core never reads a clock or a global random generator. It is handed a [`Timestamp`] with
//! every input and owns a [`Rng`] seeded by its creator; a child's generator is derived from its
//! parent's ([`Rng::child`]), so one `u64` seed fixes a whole run, in the node and in the
//! simulator alike.

use std::time::Duration;

use rand::{RngCore, SeedableRng};

/// A point in (real or virtual) time: microseconds since an epoch the driver chooses.
///
/// Only drivers convert it to and from the real clock. Arithmetic saturates, so a core never
/// panics on a far-away deadline.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The driver's epoch.
    pub const ZERO: Timestamp = Timestamp(0);
    /// A time that never comes.
    pub const NEVER: Timestamp = Timestamp(u64::MAX);

    /// The timestamp `micros` microseconds after the epoch.
    pub const fn from_micros(micros: u64) -> Timestamp {
        Timestamp(micros)
    }

    /// The timestamp `millis` milliseconds after the epoch.
    pub const fn from_millis(millis: u64) -> Timestamp {
        Timestamp(millis.saturating_mul(1000))
    }

    /// Microseconds since the epoch.
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// Time elapsed since `earlier`, zero if `earlier` is later.
    pub fn saturating_since(self, earlier: Timestamp) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }
}

impl std::ops::Add<Duration> for Timestamp {
    type Output = Timestamp;
    fn add(self, d: Duration) -> Timestamp {
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        Timestamp(self.0.saturating_add(micros))
    }
}

impl std::ops::Sub<Duration> for Timestamp {
    type Output = Timestamp;
    fn sub(self, d: Duration) -> Timestamp {
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        Timestamp(self.0.saturating_sub(micros))
    }
}

/// A seeded, reproducible random generator owned by one core.
#[derive(Clone, Debug)]
pub struct Rng(rand_chacha::ChaCha8Rng);

impl Rng {
    /// A generator fixed by `seed`.
    pub fn from_seed(seed: u64) -> Rng {
        Rng(rand_chacha::ChaCha8Rng::seed_from_u64(seed))
    }

    /// A generator for a child component, derived from (and advancing) this one.
    pub fn child(&mut self) -> Rng {
        Rng::from_seed(self.0.next_u64())
    }
}

impl RngCore for Rng {
    fn next_u32(&mut self) -> u32 {
        self.0.next_u32()
    }
    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill_bytes(dest)
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
        self.0.try_fill_bytes(dest)
    }
}

pub use rand::seq::SliceRandom;
pub use rand::Rng as RngExt;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_children_differ() {
        let mut a = Rng::from_seed(7);
        let mut b = Rng::from_seed(7);
        assert_eq!(a.next_u64(), b.next_u64());
        let mut child = a.child();
        assert_ne!(child.next_u64(), a.next_u64());
    }

    #[test]
    fn time_arithmetic_saturates() {
        let t = Timestamp::from_millis(5);
        assert_eq!((t + Duration::from_millis(1)).as_micros(), 6000);
        assert_eq!(t - Duration::from_secs(1), Timestamp::ZERO);
        assert_eq!(Timestamp::NEVER + Duration::from_secs(1), Timestamp::NEVER);
        assert_eq!(t.saturating_since(Timestamp::NEVER), Duration::ZERO);
    }
}
