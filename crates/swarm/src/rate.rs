//! Transfer rates over a sliding window of whole seconds (the choker's 20-second rates).
//!
//! A meter younger than the window averages over the seconds it has seen: a new connection's
//! rate is its real rate from its first second on, not a twentieth of it (request pipelines are
//! sized from it, and a 1 GiB download on loopback is over in a second).

use sansio::Timestamp;

/// Width of the window in seconds.
const WINDOW_SECS: usize = 20;

/// Bytes per second averaged over the last 20 seconds (or since the first record, if later).
#[derive(Clone, Debug, Default)]
pub struct RateMeter {
    buckets: [u64; WINDOW_SECS],
    /// Second (since the epoch) of the newest bucket.
    newest_second: u64,
    /// Second of the first record, if any.
    first_second: Option<u64>,
    total: u64,
}

impl RateMeter {
    fn advance(&mut self, now: Timestamp) {
        let second = now.as_micros() / 1_000_000;
        let gap = second.saturating_sub(self.newest_second);
        for step in 1..=gap.min(WINDOW_SECS as u64) {
            let slot = ((self.newest_second + step) % WINDOW_SECS as u64) as usize;
            self.buckets[slot] = 0;
        }
        self.newest_second = self.newest_second.max(second);
    }

    /// Counts `bytes` transferred at `now`.
    pub fn record(&mut self, now: Timestamp, bytes: u64) {
        self.advance(now);
        self.first_second.get_or_insert(self.newest_second);
        self.buckets[(self.newest_second % WINDOW_SECS as u64) as usize] += bytes;
        self.total += bytes;
    }

    /// Average bytes per second over the window ending at `now`.
    pub fn rate(&mut self, now: Timestamp) -> u64 {
        self.advance(now);
        let seconds_seen = self
            .first_second
            .map_or(WINDOW_SECS as u64, |first| self.newest_second - first + 1);
        self.buckets.iter().sum::<u64>() / seconds_seen.clamp(1, WINDOW_SECS as u64)
    }

    /// Bytes ever recorded.
    pub fn total(&self) -> u64 {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_young_meter_averages_over_the_seconds_it_has_seen() {
        let mut meter = RateMeter::default();
        assert_eq!(meter.rate(Timestamp::from_millis(100)), 0);
        meter.record(Timestamp::from_millis(30_200), 5_000);
        meter.record(Timestamp::from_millis(30_900), 5_000);
        assert_eq!(meter.rate(Timestamp::from_millis(30_950)), 10_000);
        meter.record(Timestamp::from_millis(31_500), 10_000);
        assert_eq!(meter.rate(Timestamp::from_millis(31_600)), 10_000);
        // Past the window, the plain 20-second average.
        meter.record(Timestamp::from_millis(52_000), 40_000);
        assert_eq!(meter.rate(Timestamp::from_millis(52_000)), 2_000);
    }

    #[test]
    fn window_forgets_old_seconds() {
        let mut meter = RateMeter::default();
        meter.record(Timestamp::from_millis(500), 20_000);
        assert_eq!(meter.rate(Timestamp::from_millis(19_000)), 1_000);
        assert_eq!(meter.rate(Timestamp::from_millis(25_000)), 0);
        assert_eq!(meter.total(), 20_000);
    }
}
