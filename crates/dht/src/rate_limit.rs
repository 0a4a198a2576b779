//! Per-address rate limiting: a token bucket per source IP, so one address (or a spoofer using
//! a victim's address) cannot make this node send more than a trickle of replies, and a flood
//! costs us little.
//!
//! Implementation notes: the table of buckets is capped. Buckets that have refilled (their
//! source has been quiet long enough to be a stranger again) are forgotten, at most once per
//! [`IDLE_SWEEP_INTERVAL`], so the table holds the recently active sources only (a long-running
//! node, or a simulator running 100,000 of them, does not keep every address it ever heard);
//! if it is full, messages from new addresses are dropped. Evicting a busy bucket instead would
//! hand a fresh burst to every new address, so a flood from many (spoofed) addresses would
//! bypass the limit, and a scan per message would make such a flood expensive.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use sansio::Timestamp;

/// Least time between two sweeps of refilled buckets when the table is full.
pub const IDLE_SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Token-bucket parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained messages per second accepted from one IP.
    pub per_second: u32,
    /// Burst size.
    pub burst: u32,
    /// Most source addresses tracked at once.
    pub addresses_max: usize,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            per_second: 20,
            burst: 60,
            addresses_max: 4096,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    /// Tokens in thousandths, to refill smoothly with integer arithmetic.
    milli_tokens: u64,
    updated: Timestamp,
}

/// The buckets of all recently seen addresses.
#[derive(Clone, Debug)]
pub struct RateLimiter {
    limit: RateLimit,
    buckets: BTreeMap<IpAddr, Bucket>,
    dropped: u64,
    last_sweep: Option<Timestamp>,
}

impl RateLimiter {
    /// A limiter with the given parameters.
    pub fn new(limit: RateLimit) -> RateLimiter {
        RateLimiter {
            limit,
            buckets: BTreeMap::new(),
            dropped: 0,
            last_sweep: None,
        }
    }

    /// Takes one token for `ip`; false means the message must be dropped.
    pub fn allow(&mut self, now: Timestamp, ip: IpAddr) -> bool {
        let burst_milli = u64::from(self.limit.burst) * 1000;
        // A refilled bucket behaves exactly like a new one: forgetting them (at most once per
        // sweep interval) keeps only recently active sources, not every address ever seen.
        self.forget_refilled(now);
        if !self.buckets.contains_key(&ip) && self.buckets.len() >= self.limit.addresses_max {
            self.dropped += 1;
            return false;
        }
        let bucket = self.buckets.entry(ip).or_insert(Bucket {
            milli_tokens: burst_milli,
            updated: now,
        });
        let refill_milli = refill_milli_tokens(now.saturating_since(bucket.updated), self.limit);
        // Time that refilled less than a thousandth of a token is kept for the next message:
        // a source sending faster than that must still earn its sustained rate.
        if refill_milli > 0 {
            bucket.milli_tokens = (bucket.milli_tokens + refill_milli).min(burst_milli);
            bucket.updated = now;
        }
        if bucket.milli_tokens >= 1000 {
            bucket.milli_tokens -= 1000;
            true
        } else {
            self.dropped += 1;
            false
        }
    }

    /// Messages dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Forgets the buckets that are full again (at most once per [`IDLE_SWEEP_INTERVAL`]).
    fn forget_refilled(&mut self, now: Timestamp) {
        if self
            .last_sweep
            .is_some_and(|at| now.saturating_since(at) < IDLE_SWEEP_INTERVAL)
        {
            return;
        }
        self.last_sweep = Some(now);
        let burst_milli = u64::from(self.limit.burst) * 1000;
        let limit = self.limit;
        self.buckets.retain(|_, b| {
            b.milli_tokens + refill_milli_tokens(now.saturating_since(b.updated), limit)
                < burst_milli
        });
    }
}

/// Thousandths of a token earned in `elapsed`.
fn refill_milli_tokens(elapsed: Duration, limit: RateLimit) -> u64 {
    let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    micros.saturating_mul(u64::from(limit.per_second)) / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 10 a second after a burst of 5, at most 2 sources; and the source to flood it from.
    fn small_limiter() -> (RateLimiter, IpAddr) {
        let limiter = RateLimiter::new(RateLimit {
            per_second: 10,
            burst: 5,
            addresses_max: 2,
        });
        (limiter, "10.0.0.1".parse().unwrap())
    }

    #[test]
    fn a_flood_is_cut_to_the_sustained_rate() {
        let (mut limiter, ip) = small_limiter();
        let mut now = Timestamp::ZERO;
        let mut allowed = 0;
        for _ in 0..1000 {
            // 1000 messages in one second.
            now = now + Duration::from_millis(1);
            allowed += u32::from(limiter.allow(now, ip));
        }
        assert!((10..=20).contains(&allowed), "allowed {allowed}");
        assert!(
            limiter.allow(now, "10.0.0.2".parse().unwrap()),
            "others unaffected"
        );
        // The table is full of active sources: a new one waits until one of them is quiet.
        assert!(!limiter.allow(now, "10.0.0.3".parse().unwrap()));
        now = now + IDLE_SWEEP_INTERVAL;
        assert!(limiter.allow(now, "10.0.0.3".parse().unwrap()));
        assert_eq!(limiter.buckets.len(), 1, "refilled buckets were forgotten");
    }

    #[test]
    fn quiet_sources_are_forgotten_before_the_table_is_full() {
        let mut limiter = RateLimiter::new(RateLimit::default());
        let mut now = Timestamp::ZERO;
        // One message a second, each from a new address, for an hour.
        for i in 0..3600u32 {
            now = now + Duration::from_secs(1);
            let ip = IpAddr::from((10u32 << 24 | i).to_be_bytes());
            assert!(limiter.allow(now, ip));
        }
        // Only the sources of the last few seconds (until their bucket refills) are kept.
        assert!(limiter.buckets.len() <= 4, "{}", limiter.buckets.len());
    }

    #[test]
    fn a_flood_faster_than_a_message_per_millisecond_still_gets_the_sustained_rate() {
        let (mut limiter, ip) = small_limiter();
        let mut now = Timestamp::ZERO;
        let mut allowed = 0;
        // 20,000 messages, one every 100 µs, for 2 s: the burst plus 2 s at 10 a second.
        for _ in 0..20_000 {
            now = now + Duration::from_micros(100);
            allowed += u32::from(limiter.allow(now, ip));
        }
        assert!((24..=26).contains(&allowed), "allowed {allowed}");
    }

    #[test]
    fn many_sources_cannot_bypass_the_limit() {
        let mut limiter = RateLimiter::new(RateLimit {
            per_second: 1,
            burst: 1,
            addresses_max: 100,
        });
        let mut now = Timestamp::ZERO;
        let mut allowed = 0u32;
        // 100,000 messages from 10,000 rotating addresses within 100 ms: only the first message
        // of each address that fits in the table gets through.
        for i in 0..100_000u32 {
            now = now + Duration::from_micros(1);
            let ip = IpAddr::from((10u32 << 24 | (i % 10_000)).to_be_bytes());
            allowed += u32::from(limiter.allow(now, ip));
        }
        assert_eq!(allowed, 100);
        assert!(limiter.buckets.len() <= 100);
    }
}
