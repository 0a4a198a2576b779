//! Per-address rate limiting: a token bucket per source IP, so one address (or a spoofer using
//! a victim's address) cannot make this node send more than a trickle of replies, and a flood
//! costs us little. The table of buckets is capped; when full, the stalest entry is dropped.

use std::collections::BTreeMap;
use std::net::IpAddr;

use sansio::Timestamp;

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
}

impl RateLimiter {
    /// A limiter with the given parameters.
    pub fn new(limit: RateLimit) -> RateLimiter {
        RateLimiter {
            limit,
            buckets: BTreeMap::new(),
            dropped: 0,
        }
    }

    /// Takes one token for `ip`; false means the message must be dropped.
    pub fn allow(&mut self, now: Timestamp, ip: IpAddr) -> bool {
        let burst_milli = u64::from(self.limit.burst) * 1000;
        if !self.buckets.contains_key(&ip) && self.buckets.len() >= self.limit.addresses_max {
            self.evict_stalest();
        }
        let bucket = self.buckets.entry(ip).or_insert(Bucket {
            milli_tokens: burst_milli,
            updated: now,
        });
        let elapsed_ms = now.saturating_since(bucket.updated).as_millis() as u64;
        bucket.milli_tokens =
            (bucket.milli_tokens + elapsed_ms * u64::from(self.limit.per_second)).min(burst_milli);
        bucket.updated = now;
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

    fn evict_stalest(&mut self) {
        // A full table is rare (thousands of distinct sources); a linear scan is fine then.
        if let Some(ip) = self
            .buckets
            .iter()
            .min_by_key(|(_, b)| b.updated)
            .map(|(ip, _)| *ip)
        {
            self.buckets.remove(&ip);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_flood_is_cut_to_the_sustained_rate() {
        let mut limiter = RateLimiter::new(RateLimit {
            per_second: 10,
            burst: 5,
            addresses_max: 2,
        });
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
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
        assert!(limiter.allow(now, "10.0.0.3".parse().unwrap()));
        assert_eq!(limiter.buckets.len(), 2, "table stays capped");
    }
}
