//! The announcer's decisions, without I/O: which tracker to ask next (BEP 12 tiers) and when to
//! announce with which event (BEP 3 `started`, `completed`, `stopped` and regular re-announces
//! that respect `interval` and `min interval`).
//!
//! [`Tiers`] keeps the trackers in BEP 12 order: tiers in the torrent's order, each tier shuffled
//! once at start, and a tracker that answers moves to the front of its tier. [`Schedule`] is a
//! small state machine fed the outcome of each announce ([`Schedule::handle_success`],
//! [`Schedule::handle_failure`]) and the download's completion
//! ([`Schedule::handle_completed`]); [`Schedule::poll_announce`] says what is due and
//! [`Schedule::poll_timeout`] when to ask again.
//!
//! Invariants: `completed` is sent at most once, only after `started` was acknowledged, and
//! only when the download was not already complete at start; `stopped` is sent only to a swarm
//! that acknowledged us; a regular announce is never sooner than the tracker's `min interval`
//! nor than [`INTERVAL_MIN`] after the previous one (events go out at once, as BEP 3 clients do).

use std::time::Duration;

use sansio::{Rng, SliceRandom, Timestamp};
use tracker::Event;

/// The shortest re-announce interval honoured, whatever the tracker says.
pub const INTERVAL_MIN: Duration = Duration::from_secs(30);
/// The longest re-announce interval honoured, so a tracker cannot make us vanish for days.
pub const INTERVAL_MAX: Duration = Duration::from_secs(2 * 3600);
/// The first retry delay after every tracker failed; it doubles with each further failure.
pub const RETRY_FIRST: Duration = Duration::from_secs(15);
/// The longest retry delay after failures.
pub const RETRY_MAX: Duration = Duration::from_secs(30 * 60);

/// Trackers in BEP 12 order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tiers {
    tiers: Vec<Vec<String>>,
}

impl Tiers {
    /// The torrent's tiers (empty tiers and repeated URLs dropped), each shuffled with `rng`.
    pub fn new(tiers: Vec<Vec<String>>, rng: &mut Rng) -> Tiers {
        let mut seen = std::collections::BTreeSet::new();
        let mut out = Vec::new();
        for tier in tiers {
            let mut tier: Vec<String> = tier
                .into_iter()
                .map(|url| url.trim().to_owned())
                .filter(|url| !url.is_empty() && seen.insert(url.clone()))
                .collect();
            if !tier.is_empty() {
                tier.shuffle(rng);
                out.push(tier);
            }
        }
        Tiers { tiers: out }
    }

    /// Whether there is no tracker at all.
    pub fn is_empty(&self) -> bool {
        self.tiers.is_empty()
    }

    /// Every tracker as `(tier, position, url)`, in the order to try them.
    pub fn in_order(&self) -> Vec<(usize, usize, String)> {
        self.tiers
            .iter()
            .enumerate()
            .flat_map(|(t, tier)| {
                tier.iter()
                    .enumerate()
                    .map(move |(i, url)| (t, i, url.clone()))
            })
            .collect()
    }

    /// Records that the tracker at `(tier, position)` answered: it moves to the front of its
    /// tier, the others keep their order.
    pub fn promote(&mut self, tier: usize, position: usize) {
        if let Some(tier) = self.tiers.get_mut(tier) {
            if position < tier.len() {
                let url = tier.remove(position);
                tier.insert(0, url);
            }
        }
    }

    /// The tiers as they stand.
    pub fn tiers(&self) -> &[Vec<String>] {
        &self.tiers
    }
}

/// When to announce, and with which event.
#[derive(Clone, Debug)]
pub struct Schedule {
    /// A tracker has acknowledged our `started`.
    started: bool,
    /// The download completed during this run and no tracker has been told yet.
    completed_pending: bool,
    /// The download was complete when the run began (a seeder never sends `completed`).
    complete_at_start: bool,
    /// When the next announce is due.
    next_at: Timestamp,
    /// Announces in a row that no tracker answered.
    failures: u32,
}

impl Schedule {
    /// A schedule whose first announce (`started`) is due at `now`.
    pub fn new(now: Timestamp, complete_at_start: bool) -> Schedule {
        Schedule {
            started: false,
            completed_pending: false,
            complete_at_start,
            next_at: now,
            failures: 0,
        }
    }

    /// The event of the announce due at `now`, if one is due.
    pub fn poll_announce(&self, now: Timestamp) -> Option<Event> {
        if now < self.next_at {
            None
        } else if !self.started {
            Some(Event::Started)
        } else if self.completed_pending {
            Some(Event::Completed)
        } else {
            Some(Event::None)
        }
    }

    /// When [`Schedule::poll_announce`] will next have something.
    pub fn poll_timeout(&self) -> Timestamp {
        self.next_at
    }

    /// A tracker answered the announce that carried `event`, asking for `interval` seconds
    /// between announces and at least `min_interval`.
    pub fn handle_success(
        &mut self,
        now: Timestamp,
        event: Event,
        interval_s: u32,
        min_interval_s: Option<u32>,
    ) {
        self.failures = 0;
        match event {
            Event::Started => self.started = true,
            Event::Completed => self.completed_pending = false,
            _ => {}
        }
        let min_interval = Duration::from_secs(min_interval_s.unwrap_or(0).into())
            .clamp(INTERVAL_MIN, INTERVAL_MAX);
        let interval = Duration::from_secs(interval_s.into()).clamp(min_interval, INTERVAL_MAX);
        self.next_at = now + interval;
        if self.completed_pending {
            // Completion came before this announce was answered: tell the tracker at once.
            self.next_at = now;
        }
    }

    /// No tracker answered: retry after a delay that doubles with each failure in a row.
    pub fn handle_failure(&mut self, now: Timestamp) {
        self.failures = self.failures.saturating_add(1);
        let doublings = (self.failures - 1).min(16);
        let delay = RETRY_FIRST.saturating_mul(1 << doublings).min(RETRY_MAX);
        self.next_at = now + delay;
    }

    /// The download completed: a `completed` event becomes due (unless it was complete from the
    /// start). Repeated calls change nothing.
    pub fn handle_completed(&mut self, now: Timestamp) {
        if self.complete_at_start || self.completed_pending {
            return;
        }
        self.complete_at_start = true;
        self.completed_pending = true;
        // An event is news: due at once, not at the next interval (`min interval` bounds
        // regular announces only); a failure's back-off still applies.
        if self.failures == 0 {
            self.next_at = self.next_at.min(now);
        }
    }

    /// Whether a tracker knows us, so that leaving deserves a `stopped` announce.
    pub fn needs_stopped(&self) -> bool {
        self.started
    }

    /// Announces in a row that no tracker answered.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: u64) -> Timestamp {
        Timestamp::from_millis(s * 1000)
    }

    fn urls(tiers: &Tiers) -> Vec<Vec<&str>> {
        tiers
            .tiers()
            .iter()
            .map(|t| t.iter().map(String::as_str).collect())
            .collect()
    }

    #[test]
    fn tiers_shuffle_within_a_tier_only_and_promote_the_answering_tracker() {
        let input = vec![
            vec!["a1".into(), "a2".into(), "a3".into(), "a4".into()],
            vec![],
            vec!["b1".into(), "a1".into(), " ".into()],
        ];
        let mut shuffles = std::collections::BTreeSet::new();
        for seed in 0..20 {
            let tiers = Tiers::new(input.clone(), &mut Rng::from_seed(seed));
            let order = urls(&tiers);
            // Empty tiers and repeats are dropped; tiers keep their order.
            assert_eq!(order.len(), 2);
            assert_eq!(order[1], ["b1"]);
            let mut first = order[0].clone();
            shuffles.insert(first.join(","));
            first.sort_unstable();
            assert_eq!(first, ["a1", "a2", "a3", "a4"]);
        }
        assert!(shuffles.len() > 1, "tier order never shuffled");
        // Same seed, same order.
        assert_eq!(
            Tiers::new(input.clone(), &mut Rng::from_seed(3)),
            Tiers::new(input.clone(), &mut Rng::from_seed(3))
        );

        let mut tiers = Tiers::new(input, &mut Rng::from_seed(1));
        let before = urls(&tiers)[0]
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>();
        tiers.promote(0, 2);
        let after: Vec<String> = tiers.tiers()[0].clone();
        assert_eq!(after[0], before[2]);
        assert_eq!(after[1..], [&*before[0], &*before[1], &*before[3]]);
        assert_eq!(
            tiers
                .in_order()
                .first()
                .map(|(t, i, u)| (*t, *i, u.clone())),
            Some((0, 0, before[2].clone()))
        );
        // Out-of-range positions are ignored.
        tiers.promote(5, 0);
        tiers.promote(0, 9);
        assert_eq!(tiers.tiers()[0], after);
    }

    #[test]
    fn started_then_regular_announces_respect_interval_and_min_interval() {
        let mut s = Schedule::new(at(0), false);
        assert_eq!(s.poll_announce(at(0)), Some(Event::Started));
        s.handle_success(at(0), Event::Started, 1800, Some(900));
        assert_eq!(s.poll_announce(at(1799)), None);
        assert_eq!(s.poll_timeout(), at(1800));
        assert_eq!(s.poll_announce(at(1800)), Some(Event::None));
        // An interval below the min interval is raised to it; absurd ones are clamped.
        s.handle_success(at(1800), Event::None, 10, Some(600));
        assert_eq!(s.poll_timeout(), at(2400));
        s.handle_success(at(2400), Event::None, 1, None);
        assert_eq!(s.poll_timeout(), at(2400) + INTERVAL_MIN);
        s.handle_success(at(3000), Event::None, u32::MAX, None);
        assert_eq!(s.poll_timeout(), at(3000) + INTERVAL_MAX);
    }

    #[test]
    fn failures_back_off_exponentially_up_to_a_bound_and_keep_started_pending() {
        let mut s = Schedule::new(at(0), false);
        s.handle_failure(at(0));
        assert_eq!(s.poll_timeout(), at(15));
        assert_eq!(s.poll_announce(at(14)), None);
        assert_eq!(s.poll_announce(at(15)), Some(Event::Started));
        s.handle_failure(at(15));
        assert_eq!(s.poll_timeout(), at(45));
        for _ in 0..40 {
            s.handle_failure(at(100));
        }
        assert_eq!(s.poll_timeout(), at(100) + RETRY_MAX);
        assert_eq!(s.failures(), 42);
        assert!(!s.needs_stopped());
        s.handle_success(at(200), Event::Started, 60, None);
        assert_eq!(s.failures(), 0);
        assert!(s.needs_stopped());
    }

    #[test]
    fn completed_goes_out_once_at_once_and_never_for_a_seeder() {
        let mut s = Schedule::new(at(0), false);
        // Completion before any tracker answered: `started` comes first.
        s.handle_success(at(0), Event::Started, 1800, Some(60));
        s.handle_completed(at(10));
        assert_eq!(s.poll_timeout(), at(10));
        assert_eq!(s.poll_announce(at(10)), Some(Event::Completed));
        s.handle_success(at(10), Event::Completed, 1800, None);
        s.handle_completed(at(20));
        assert_eq!(s.poll_announce(at(20)), None);
        assert_eq!(s.poll_announce(at(1810)), Some(Event::None));

        let mut early = Schedule::new(at(0), false);
        early.handle_completed(at(0));
        assert_eq!(early.poll_announce(at(0)), Some(Event::Started));
        early.handle_success(at(0), Event::Started, 1800, None);
        assert_eq!(early.poll_announce(at(0)), Some(Event::Completed));

        let mut seeder = Schedule::new(at(0), true);
        seeder.handle_success(at(0), Event::Started, 1800, None);
        seeder.handle_completed(at(5));
        assert_eq!(seeder.poll_announce(at(5)), None);
        assert_eq!(seeder.poll_timeout(), at(1800));
    }
}
