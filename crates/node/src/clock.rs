//! The node's clock: the one place where real time enters. Cores only ever see [`Timestamp`]s,
//! microseconds since the clock started; deadlines they return become tokio instants here.

use std::time::Duration;

use sansio::Timestamp;
use tokio::time::Instant;

/// Real time as the cores see it, from the moment [`Clock::start`] was called.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock(Instant);

impl Clock {
    /// A clock whose zero is now.
    pub(crate) fn start() -> Clock {
        Clock(Instant::now())
    }

    /// The time elapsed since the start.
    pub(crate) fn now(&self) -> Timestamp {
        Timestamp::from_micros(u64::try_from(self.0.elapsed().as_micros()).unwrap_or(u64::MAX))
    }

    /// The instant a core's deadline `at` falls on; "never" deadlines are capped far enough in
    /// the future that the addition cannot overflow.
    pub(crate) fn instant(&self, at: Timestamp) -> Instant {
        self.0 + Duration::from_micros(at.as_micros().min(u64::MAX / 4))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_map_back_to_instants_and_never_overflow() {
        let clock = Clock::start();
        let at = Timestamp::from_micros(1_500_000);
        assert_eq!(
            clock.instant(at) - clock.0,
            Duration::from_micros(1_500_000)
        );
        assert!(clock.instant(Timestamp::from_micros(u64::MAX)) > clock.0);
        assert!(clock.now() <= clock.now());
    }
}
