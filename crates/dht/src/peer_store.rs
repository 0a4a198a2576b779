//! Peers announced to this node (BEP 5 `announce_peer`), served to `get_peers`, and the
//! info-hashes sampled by BEP 51 `sample_infohashes`. Entries expire; both the number of
//! info-hashes and the peers per info-hash are capped.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use sansio::{Rng, SliceRandom, Timestamp};

use crate::node_id::NodeId;

/// Caps and lifetimes of the peer store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerStoreLimits {
    /// Most info-hashes tracked; announces for new ones are ignored beyond it.
    pub info_hashes_max: usize,
    /// Most peers kept per info-hash; the oldest is replaced beyond it.
    pub peers_per_info_hash_max: usize,
    /// How long an announce is kept.
    pub peer_ttl: Duration,
    /// Most peers put in one `get_peers` reply (50 compact IPv4 peers keep it under 1 KiB).
    pub peers_per_reply_max: usize,
}

impl Default for PeerStoreLimits {
    fn default() -> Self {
        PeerStoreLimits {
            info_hashes_max: 5000,
            peers_per_info_hash_max: 200,
            peer_ttl: Duration::from_secs(45 * 60),
            peers_per_reply_max: 50,
        }
    }
}

/// The stored peers.
#[derive(Clone, Debug)]
pub struct PeerStore {
    limits: PeerStoreLimits,
    torrents: BTreeMap<NodeId, Vec<(SocketAddr, Timestamp)>>,
}

impl PeerStore {
    /// An empty store.
    pub fn new(limits: PeerStoreLimits) -> PeerStore {
        PeerStore {
            limits,
            torrents: BTreeMap::new(),
        }
    }

    /// Records that `peer` has `info_hash` (refreshing an existing entry).
    pub fn announce(&mut self, now: Timestamp, info_hash: NodeId, peer: SocketAddr) {
        if !self.torrents.contains_key(&info_hash)
            && self.torrents.len() >= self.limits.info_hashes_max
        {
            return;
        }
        let peers = self.torrents.entry(info_hash).or_default();
        if let Some(entry) = peers.iter_mut().find(|(addr, _)| *addr == peer) {
            entry.1 = now;
        } else if peers.len() < self.limits.peers_per_info_hash_max {
            peers.push((peer, now));
        } else if let Some(oldest) = peers.iter_mut().min_by_key(|(_, t)| *t) {
            *oldest = (peer, now);
        }
    }

    /// Up to `peers_per_reply_max` random peers for `info_hash`.
    pub fn peers(&self, info_hash: &NodeId, rng: &mut Rng) -> Vec<SocketAddr> {
        let Some(peers) = self.torrents.get(info_hash) else {
            return Vec::new();
        };
        peers
            .choose_multiple(rng, self.limits.peers_per_reply_max)
            .map(|(addr, _)| *addr)
            .collect()
    }

    /// Up to `count` random stored info-hashes (BEP 51) and how many there are in all.
    pub fn sample(&self, count: usize, rng: &mut Rng) -> (Vec<NodeId>, usize) {
        let keys: Vec<NodeId> = self.torrents.keys().copied().collect();
        let sample = keys.choose_multiple(rng, count).copied().collect();
        (sample, keys.len())
    }

    /// Drops expired announces and empty info-hashes.
    pub fn expire(&mut self, now: Timestamp) {
        let ttl = self.limits.peer_ttl;
        self.torrents.retain(|_, peers| {
            peers.retain(|(_, at)| now.saturating_since(*at) < ttl);
            !peers.is_empty()
        });
    }

    /// Number of stored (info-hash, peer) pairs.
    pub fn len(&self) -> usize {
        self.torrents.values().map(Vec::len).sum()
    }

    /// Number of info-hashes stored.
    pub fn info_hashes(&self) -> usize {
        self.torrents.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_and_expiry_hold() {
        let limits = PeerStoreLimits {
            info_hashes_max: 2,
            peers_per_info_hash_max: 3,
            peer_ttl: Duration::from_secs(60),
            peers_per_reply_max: 2,
        };
        let mut store = PeerStore::new(limits);
        let mut rng = Rng::from_seed(1);
        let t0 = Timestamp::ZERO;
        for port in 1..=5 {
            store.announce(t0, NodeId([1; 20]), SocketAddr::from(([10, 0, 0, 1], port)));
        }
        store.announce(t0, NodeId([2; 20]), "10.0.0.2:1".parse().unwrap());
        store.announce(t0, NodeId([3; 20]), "10.0.0.3:1".parse().unwrap());
        assert_eq!(store.info_hashes(), 2, "third info-hash refused");
        assert_eq!(store.len(), 4);
        assert_eq!(store.peers(&NodeId([1; 20]), &mut rng).len(), 2);
        let (sample, total) = store.sample(20, &mut rng);
        assert_eq!((sample.len(), total), (2, 2));
        store.announce(
            t0 + Duration::from_secs(50),
            NodeId([2; 20]),
            "10.0.0.2:1".parse().unwrap(),
        );
        store.expire(t0 + Duration::from_secs(61));
        assert_eq!(store.len(), 1, "only the refreshed announce survives");
    }
}
