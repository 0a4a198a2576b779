//! The choker: who may download from us (BEP 3 tit-for-tat, as in the mainline client).
//!
//! Every [`RECHOKE_INTERVAL`] the [`REGULAR_SLOTS`] interested peers with the best 20-second rate
//! are unchoked: while downloading, the rate at which they send to us (reciprocation); while
//! seeding, the rate at which we send to them (spread to those who take fastest). Snubbed peers
//! (no block from them for [`SNUB_TIMEOUT`] although we want some) get no regular slot. One more
//! peer, chosen at random among the choked interested ones, is unchoked optimistically and rotated
//! every [`OPTIMISTIC_INTERVAL`], so newcomers get a chance to prove themselves.

use std::collections::BTreeSet;
use std::time::Duration;

use sansio::{Rng, RngExt, Timestamp};

use crate::PeerKey;

/// Regular unchoke slots.
pub const REGULAR_SLOTS: usize = 4;
/// How often the regular slots are re-evaluated.
pub const RECHOKE_INTERVAL: Duration = Duration::from_secs(10);
/// How often the optimistic unchoke moves on.
pub const OPTIMISTIC_INTERVAL: Duration = Duration::from_secs(30);
/// Time without a block, while we are interested and unchoked, after which a peer is snubbed.
pub const SNUB_TIMEOUT: Duration = Duration::from_secs(60);

/// What the choker needs to know of a peer.
#[derive(Clone, Copy, Debug)]
pub struct Candidate {
    /// The peer.
    pub peer: PeerKey,
    /// Whether it wants data from us.
    pub interested: bool,
    /// Its 20-second rate by the current policy (from it while leeching, to it while seeding).
    pub rate: u64,
    /// Whether it is snubbing us.
    pub snubbed: bool,
}

/// Choker state: the optimistic slot and when to act next.
#[derive(Clone, Debug, Default)]
pub struct Choker {
    optimistic: Option<PeerKey>,
    optimistic_until: Timestamp,
    next_rechoke: Timestamp,
}

impl Choker {
    /// When [`Choker::rechoke`] should run next.
    pub fn next_rechoke(&self) -> Timestamp {
        self.next_rechoke
    }

    /// Asks for a rechoke at the next opportunity (a peer became interested).
    pub fn rechoke_soon(&mut self) {
        self.next_rechoke = Timestamp::ZERO;
    }

    /// The peers to unchoke now; everyone else is choked.
    pub fn rechoke(
        &mut self,
        now: Timestamp,
        candidates: &[Candidate],
        rng: &mut Rng,
    ) -> BTreeSet<PeerKey> {
        self.next_rechoke = now + RECHOKE_INTERVAL;
        let mut regular: Vec<&Candidate> = candidates
            .iter()
            .filter(|c| c.interested && !c.snubbed)
            .collect();
        // Highest rate first; the key order breaks ties deterministically.
        regular.sort_by(|a, b| b.rate.cmp(&a.rate).then(a.peer.cmp(&b.peer)));
        let mut unchoked: BTreeSet<PeerKey> =
            regular.iter().take(REGULAR_SLOTS).map(|c| c.peer).collect();
        let still_valid = self
            .optimistic
            .filter(|p| candidates.iter().any(|c| c.peer == *p && c.interested));
        let rotate = now >= self.optimistic_until || still_valid.is_none();
        self.optimistic = if rotate {
            let choked: Vec<PeerKey> = candidates
                .iter()
                .filter(|c| c.interested && !unchoked.contains(&c.peer))
                .map(|c| c.peer)
                .collect();
            self.optimistic_until = now + OPTIMISTIC_INTERVAL;
            (!choked.is_empty()).then(|| choked[rng.gen_range(0..choked.len())])
        } else {
            still_valid
        };
        unchoked.extend(self.optimistic);
        unchoked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(peer: u64, rate: u64) -> Candidate {
        Candidate {
            peer: PeerKey(peer),
            interested: true,
            rate,
            snubbed: false,
        }
    }

    #[test]
    fn four_fastest_plus_one_optimistic() {
        let mut choker = Choker::default();
        let mut rng = Rng::from_seed(5);
        let mut peers: Vec<Candidate> = (0..8).map(|i| candidate(i, i * 100)).collect();
        peers[7].snubbed = true;
        peers[0].interested = false;
        let unchoked = choker.rechoke(Timestamp::ZERO, &peers, &mut rng);
        assert_eq!(unchoked.len(), 5);
        for fast in [3, 4, 5, 6] {
            assert!(unchoked.contains(&PeerKey(fast)));
        }
        assert!(!unchoked.contains(&PeerKey(0)));
        let optimistic = *unchoked.iter().find(|p| p.0 < 3 || p.0 == 7).unwrap();
        // Within 30 s the optimistic peer keeps its slot.
        let again = choker.rechoke(Timestamp::ZERO + RECHOKE_INTERVAL, &peers, &mut rng);
        assert!(again.contains(&optimistic));
        assert_eq!(
            choker.next_rechoke(),
            Timestamp::ZERO + 2 * RECHOKE_INTERVAL
        );
    }
}
