//! Adaptive query timeouts from measured round-trip times (Jacobson/Karels, as in TCP): the short
//! timeout after which a lookup stops waiting for a node is `srtt + 4 * rttvar`, clamped.

use std::time::Duration;

/// Shortest short timeout.
pub const TIMEOUT_MIN: Duration = Duration::from_millis(250);
/// Longest short timeout.
pub const TIMEOUT_MAX: Duration = Duration::from_secs(3);
/// The short timeout before any measurement.
pub const TIMEOUT_INITIAL: Duration = Duration::from_secs(1);

/// Smoothed RTT and its variation, in microseconds.
#[derive(Clone, Copy, Debug, Default)]
pub struct RttEstimator {
    srtt_us: Option<u64>,
    rttvar_us: u64,
}

impl RttEstimator {
    /// Folds in one measured round trip.
    pub fn sample(&mut self, rtt: Duration) {
        let rtt_us = rtt.as_micros().min(u128::from(u32::MAX)) as u64;
        match self.srtt_us {
            None => {
                self.srtt_us = Some(rtt_us);
                self.rttvar_us = rtt_us / 2;
            }
            Some(srtt) => {
                self.rttvar_us = (3 * self.rttvar_us + srtt.abs_diff(rtt_us)) / 4;
                self.srtt_us = Some((7 * srtt + rtt_us) / 8);
            }
        }
    }

    /// A query went unanswered: widen the variation a little so a congested path gets slack.
    pub fn timed_out(&mut self) {
        self.rttvar_us = (self.rttvar_us + self.rttvar_us / 8 + 1000).min(1_000_000);
    }

    /// The current short timeout.
    pub fn timeout(&self) -> Duration {
        match self.srtt_us {
            None => TIMEOUT_INITIAL,
            Some(srtt) => {
                Duration::from_micros(srtt + 4 * self.rttvar_us).clamp(TIMEOUT_MIN, TIMEOUT_MAX)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_follows_measurements_within_bounds() {
        let mut rtt = RttEstimator::default();
        assert_eq!(rtt.timeout(), TIMEOUT_INITIAL);
        for _ in 0..20 {
            rtt.sample(Duration::from_millis(100));
        }
        let t = rtt.timeout();
        assert!(t >= TIMEOUT_MIN && t < Duration::from_millis(400), "{t:?}");
        for _ in 0..20 {
            rtt.sample(Duration::from_secs(10));
        }
        assert_eq!(rtt.timeout(), TIMEOUT_MAX);
    }
}
