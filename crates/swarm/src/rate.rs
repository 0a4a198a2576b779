//! Transfer rates over a sliding window of whole seconds (the choker's 20-second rates).

use sansio::Timestamp;

/// Width of the window in seconds.
const WINDOW_SECS: usize = 20;

/// Bytes per second averaged over the last 20 seconds.
#[derive(Clone, Debug, Default)]
pub struct RateMeter {
    buckets: [u64; WINDOW_SECS],
    /// Second (since the epoch) of the newest bucket.
    newest_second: u64,
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
        self.buckets[(self.newest_second % WINDOW_SECS as u64) as usize] += bytes;
        self.total += bytes;
    }

    /// Average bytes per second over the window ending at `now`.
    pub fn rate(&mut self, now: Timestamp) -> u64 {
        self.advance(now);
        self.buckets.iter().sum::<u64>() / WINDOW_SECS as u64
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
    fn window_forgets_old_seconds() {
        let mut meter = RateMeter::default();
        meter.record(Timestamp::from_millis(500), 20_000);
        assert_eq!(meter.rate(Timestamp::from_millis(10_000)), 1_000);
        assert_eq!(meter.rate(Timestamp::from_millis(25_000)), 0);
        assert_eq!(meter.total(), 20_000);
    }
}
