//! The Kademlia routing table of BEP 5: buckets of at most K = 8 nodes, indexed by how many
//! leading bits a node's id shares with ours. Only the bucket holding our own id splits, so the
//! table knows the neighbourhood of our id well and the far key space coarsely.
//!
//! Node states (BEP 5): *good* if it answered one of our queries within the last 15 minutes, or
//! answered once and queried us within the last 15 minutes; *bad* after failing to answer
//! [`FAILURES_BAD`] queries in a row; *questionable* otherwise.
//!
//! Invariants: at most one entry per IP address in the whole table (Sybil hygiene); our own id
//! is never an entry; a bucket holds at most K nodes and K replacements; every node lives in the
//! bucket its id maps to.
//!
//! Implementation notes: nodes that merely queried us enter a bucket only when it has room, and
//! are the first to be replaced by a node that answered ("prefer nodes that answer"). A full
//! bucket with a questionable node asks the caller to ping it; the newcomer waits in the
//! replacement cache and takes over when the old node turns bad. Lookups over the table scan it
//! (a few hundred entries), which keeps each table small: no secondary index.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use sansio::{Rng, Timestamp};

use crate::bep42::{self, Policy};
use crate::krpc::NodeInfo;
use crate::node_id::NodeId;

/// Bucket size.
pub const K: usize = 8;
/// Consecutive unanswered queries after which a node is bad.
pub const FAILURES_BAD: u8 = 2;
/// How long an answer keeps a node good, and how long a bucket may stay untouched.
pub const GOOD_FOR: Duration = Duration::from_secs(15 * 60);

/// One routing-table entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The node.
    pub node: NodeInfo,
    /// When it last answered a query of ours.
    pub last_response: Option<Timestamp>,
    /// When it last sent us anything.
    pub last_seen: Timestamp,
    /// When we last pinged it to check on it.
    pub last_pinged: Option<Timestamp>,
    /// Unanswered queries in a row.
    pub failures: u8,
}

/// The state of a node (BEP 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeState {
    /// Recently active.
    Good,
    /// Not heard of lately.
    Questionable,
    /// Failed to answer repeatedly.
    Bad,
}

impl Entry {
    /// When [`RoutingTable::nodes_to_ping`] will first pick this entry, as it stands: once it
    /// is questionable and was not pinged within [`GOOD_FOR`]; never while it is bad.
    fn ping_due(&self) -> Timestamp {
        if self.failures >= FAILURES_BAD {
            return Timestamp::NEVER;
        }
        // Good until GOOD_FOR after the last message if it ever answered, else questionable.
        let questionable_at = match self.last_response {
            Some(answered) => self.last_seen.max(answered) + GOOD_FOR,
            None => Timestamp::ZERO,
        };
        let ping_allowed_at = self.last_pinged.map_or(Timestamp::ZERO, |t| t + GOOD_FOR);
        questionable_at.max(ping_allowed_at)
    }

    /// The BEP 5 state at `now`.
    pub fn state(&self, now: Timestamp) -> NodeState {
        if self.failures >= FAILURES_BAD {
            return NodeState::Bad;
        }
        match self.last_response {
            Some(t) if now.saturating_since(t) < GOOD_FOR => NodeState::Good,
            Some(_) if now.saturating_since(self.last_seen) < GOOD_FOR => NodeState::Good,
            _ => NodeState::Questionable,
        }
    }
}

#[derive(Clone, Debug)]
struct Bucket {
    nodes: Vec<Entry>,
    replacements: Vec<Entry>,
    last_changed: Timestamp,
    /// None of `nodes` is due a ping before this: [`RoutingTable::nodes_to_ping`] skips the
    /// bucket until then (a lower bound, lowered whenever an entry is added or heard from).
    ping_check_at: Timestamp,
}

/// What became of a node offered to the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Insert {
    /// It is in the table now (new or refreshed).
    Added,
    /// The bucket is full: the node waits in the replacement cache; ping this questionable node
    /// to find out whether it should make room.
    PingNeeded(NodeInfo),
    /// Kept in the replacement cache only.
    Cached,
    /// Not accepted (our own id, an IP already in the table under another id, a moved id).
    Rejected,
}

/// The routing table.
#[derive(Clone, Debug)]
pub struct RoutingTable {
    own_id: NodeId,
    buckets: Vec<Bucket>,
    policy: Policy,
    /// A fingerprint of the IP of every entry in `nodes` (in no order): the one-entry-per-IP
    /// check reads these few hundred bytes instead of every entry of the table.
    ip_fingerprints: Vec<u32>,
}

impl RoutingTable {
    /// An empty table around `own_id`.
    pub fn new(own_id: NodeId, policy: Policy, now: Timestamp) -> RoutingTable {
        RoutingTable {
            own_id,
            buckets: vec![Bucket {
                nodes: Vec::new(),
                replacements: Vec::new(),
                last_changed: now,
                ping_check_at: Timestamp::NEVER,
            }],
            policy,
            ip_fingerprints: Vec::new(),
        }
    }

    /// Our own id.
    pub fn own_id(&self) -> NodeId {
        self.own_id
    }

    fn bucket_index(&self, id: &NodeId) -> usize {
        self.own_id
            .common_prefix_len(id)
            .min(self.buckets.len() - 1)
    }

    fn find(&self, id: &NodeId) -> Option<(usize, usize)> {
        let b = self.bucket_index(id);
        self.buckets[b]
            .nodes
            .iter()
            .position(|e| e.node.id == *id)
            .map(|i| (b, i))
    }

    fn ip_taken_by_other(&self, ip: IpAddr, id: &NodeId) -> bool {
        self.ip_fingerprints.contains(&ip_fingerprint(ip))
            && self
                .buckets
                .iter()
                .flat_map(|b| b.nodes.iter())
                .any(|e| e.node.addr.ip() == ip && e.node.id != *id)
    }

    /// Records that `node` sent us a message: a reply to our query when `responded`, else a query.
    pub fn heard_from(&mut self, now: Timestamp, node: NodeInfo, responded: bool) -> Insert {
        if node.id == self.own_id {
            return Insert::Rejected;
        }
        let conforming = bep42::is_valid(&node.id, node.addr.ip());
        if self.policy == Policy::Require && !conforming {
            return Insert::Rejected;
        }
        if let Some((b, i)) = self.find(&node.id) {
            let entry = &mut self.buckets[b].nodes[i];
            if entry.node.addr != node.addr {
                // An id seen at a new address: keep the one we know (libtorrent does the same).
                return Insert::Rejected;
            }
            entry.last_seen = now;
            if responded {
                entry.last_response = Some(now);
                entry.failures = 0;
            }
            let due = entry.ping_due();
            let bucket = &mut self.buckets[b];
            bucket.ping_check_at = bucket.ping_check_at.min(due);
            if responded {
                bucket.last_changed = now;
            }
            return Insert::Added;
        }
        if self.ip_taken_by_other(node.addr.ip(), &node.id) {
            return Insert::Rejected;
        }
        let entry = Entry {
            node,
            last_response: responded.then_some(now),
            last_seen: now,
            last_pinged: None,
            failures: 0,
        };
        let due = entry.ping_due();
        loop {
            let b = self.bucket_index(&node.id);
            let splittable = b == self.buckets.len() - 1 && self.buckets.len() < 160;
            let bucket = &mut self.buckets[b];
            if bucket.nodes.len() < K {
                bucket.nodes.push(entry);
                bucket.replacements.retain(|e| e.node.id != node.id);
                bucket.last_changed = now;
                bucket.ping_check_at = bucket.ping_check_at.min(due);
                self.ip_fingerprints.push(ip_fingerprint(node.addr.ip()));
                return Insert::Added;
            }
            if splittable {
                self.split_last(now);
                continue;
            }
            let victim = bucket
                .nodes
                .iter()
                .position(|e| e.state(now) == NodeState::Bad)
                .or_else(|| {
                    responded
                        .then(|| bucket.nodes.iter().position(|e| e.last_response.is_none()))
                        .flatten()
                })
                .or_else(|| {
                    (self.policy == Policy::Prefer && conforming)
                        .then(|| {
                            bucket
                                .nodes
                                .iter()
                                .position(|e| !bep42::is_valid(&e.node.id, e.node.addr.ip()))
                        })
                        .flatten()
                });
            if let Some(i) = victim {
                let old = std::mem::replace(&mut bucket.nodes[i], entry);
                bucket.last_changed = now;
                bucket.ping_check_at = bucket.ping_check_at.min(due);
                forget_ip(&mut self.ip_fingerprints, old.node.addr.ip());
                self.ip_fingerprints.push(ip_fingerprint(node.addr.ip()));
                return Insert::Added;
            }
            let questionable = bucket
                .nodes
                .iter_mut()
                .filter(|e| e.state(now) == NodeState::Questionable && e.last_pinged.is_none())
                .min_by_key(|e| e.last_seen);
            let ping = questionable.map(|e| {
                e.last_pinged = Some(now);
                e.node
            });
            bucket.replacements.retain(|e| e.node.id != node.id);
            if bucket.replacements.len() >= K {
                bucket.replacements.remove(0);
            }
            bucket.replacements.push(entry);
            return match ping {
                Some(node) => Insert::PingNeeded(node),
                None => Insert::Cached,
            };
        }
    }

    fn split_last(&mut self, now: Timestamp) {
        let depth = self.buckets.len();
        let own = self.own_id;
        let last = self
            .buckets
            .last_mut()
            .expect("the table always has a bucket");
        let (stay, go): (Vec<Entry>, Vec<Entry>) = std::mem::take(&mut last.nodes)
            .into_iter()
            .partition(|e| own.common_prefix_len(&e.node.id) == depth - 1);
        let (stay_r, go_r): (Vec<Entry>, Vec<Entry>) = std::mem::take(&mut last.replacements)
            .into_iter()
            .partition(|e| own.common_prefix_len(&e.node.id) == depth - 1);
        last.nodes = stay;
        last.replacements = stay_r;
        // A lower bound for the whole bucket holds for each half.
        let ping_check_at = last.ping_check_at;
        self.buckets.push(Bucket {
            nodes: go,
            replacements: go_r,
            last_changed: now,
            ping_check_at,
        });
    }

    /// Records that `id` did not answer; a bad node makes room for its best replacement.
    pub fn failed(&mut self, now: Timestamp, id: &NodeId) {
        let Some((b, i)) = self.find(id) else {
            return;
        };
        let bucket = &mut self.buckets[b];
        bucket.nodes[i].failures = bucket.nodes[i].failures.saturating_add(1);
        if bucket.nodes[i].state(now) != NodeState::Bad {
            return;
        }
        // Newest replacement that answered, else the newest at all.
        let pick = bucket
            .replacements
            .iter()
            .rposition(|e| e.last_response.is_some())
            .or_else(|| bucket.replacements.len().checked_sub(1));
        if let Some(r) = pick {
            let replacement = bucket.replacements.remove(r);
            bucket.ping_check_at = bucket.ping_check_at.min(replacement.ping_due());
            self.ip_fingerprints
                .push(ip_fingerprint(replacement.node.addr.ip()));
            let old = std::mem::replace(&mut bucket.nodes[i], replacement);
            forget_ip(&mut self.ip_fingerprints, old.node.addr.ip());
            bucket.last_changed = now;
        } else if bucket.nodes[i].last_response.is_none() {
            let old = bucket.nodes.remove(i);
            forget_ip(&mut self.ip_fingerprints, old.node.addr.ip());
        }
    }

    /// Removes a node outright (it changed id or misbehaved).
    pub fn remove(&mut self, id: &NodeId) {
        if let Some((b, i)) = self.find(id) {
            let old = self.buckets[b].nodes.remove(i);
            forget_ip(&mut self.ip_fingerprints, old.node.addr.ip());
        }
    }

    /// Up to `count` non-bad nodes closest to `target`, closest first.
    pub fn closest(&self, target: &NodeId, count: usize) -> Vec<NodeInfo> {
        // The buckets fall into groups that are wholly ordered by distance to `target`: with
        // `b` the target's bucket, first bucket `b` (ids sharing more than `b` bits with the
        // target), then every deeper bucket (sharing exactly `b`), then `b - 1`, `b - 2`, ...
        // (sharing exactly that many). So only the nearest groups are read and sorted, not the
        // whole table; ids in a table are distinct, so the order is that of a full sort.
        let b = self.bucket_index(target);
        let mut out: Vec<NodeInfo> = Vec::with_capacity(count + K);
        let groups = std::iter::once(b..b + 1)
            .chain(std::iter::once(b + 1..self.buckets.len()))
            .chain((0..b).rev().map(|i| i..i + 1));
        for group in groups {
            if out.len() >= count {
                break;
            }
            let start = out.len();
            out.extend(
                self.buckets[group]
                    .iter()
                    .flat_map(|bucket| bucket.nodes.iter())
                    .filter(|e| e.failures < FAILURES_BAD)
                    .map(|e| e.node),
            );
            out[start..].sort_unstable_by_key(|n| target.distance(&n.id));
        }
        out.truncate(count);
        out
    }

    /// Random targets in buckets untouched for 15 minutes (marking them refreshed now).
    pub fn buckets_to_refresh(&mut self, now: Timestamp, rng: &mut Rng) -> Vec<NodeId> {
        let own = self.own_id;
        let depth = self.buckets.len();
        let mut targets = Vec::new();
        for (index, bucket) in self.buckets.iter_mut().enumerate() {
            if now.saturating_since(bucket.last_changed) >= GOOD_FOR {
                bucket.last_changed = now;
                // The last bucket covers every longer prefix: aim at our own neighbourhood.
                let prefix = if index + 1 == depth {
                    depth.max(1) - 1
                } else {
                    index
                };
                targets.push(own.random_with_prefix(prefix, rng));
            }
        }
        targets
    }

    /// Nodes that have gone questionable and were not pinged since; marks them pinged.
    pub fn nodes_to_ping(&mut self, now: Timestamp, count: usize) -> Vec<NodeInfo> {
        let mut out = Vec::new();
        // Called every maintenance tick: only buckets with an entry that may be due are read.
        for bucket in self.buckets.iter_mut() {
            if now < bucket.ping_check_at {
                continue;
            }
            let mut next_check = Timestamp::NEVER;
            for entry in bucket.nodes.iter_mut() {
                if out.len() >= count {
                    // Entries not looked at may be due: look again next time.
                    next_check = now;
                    break;
                }
                // Due exactly when questionable and not pinged within GOOD_FOR.
                if entry.ping_due() <= now {
                    entry.last_pinged = Some(now);
                    out.push(entry.node);
                }
                next_check = next_check.min(entry.ping_due());
            }
            bucket.ping_check_at = next_check;
            if out.len() >= count {
                break;
            }
        }
        out
    }

    /// Every node in the table.
    pub fn nodes(&self) -> impl Iterator<Item = &Entry> {
        self.buckets.iter().flat_map(|b| b.nodes.iter())
    }

    /// Whether `addr` is the address of a node in the table.
    pub fn contains_addr(&self, addr: SocketAddr) -> bool {
        self.nodes().any(|e| e.node.addr == addr)
    }

    /// Number of nodes in the table.
    pub fn len(&self) -> usize {
        self.buckets.iter().map(|b| b.nodes.len()).sum()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of buckets.
    pub fn bucket_count(&self) -> usize {
        self.buckets.len()
    }
}

/// A 32-bit digest of an IP address: the address itself for IPv4. Equal addresses have equal
/// fingerprints; a match is confirmed against the entries.
fn ip_fingerprint(ip: IpAddr) -> u32 {
    match ip {
        IpAddr::V4(v4) => u32::from(v4),
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            (bits as u32) ^ ((bits >> 32) as u32) ^ ((bits >> 64) as u32) ^ ((bits >> 96) as u32)
        }
    }
}

/// Removes one fingerprint of `ip` (an entry with that address left the table).
fn forget_ip(fingerprints: &mut Vec<u32>, ip: IpAddr) {
    let key = ip_fingerprint(ip);
    if let Some(at) = fingerprints.iter().position(|k| *k == key) {
        fingerprints.swap_remove(at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sansio::RngExt;

    fn node(id: NodeId, last_octet: u8) -> NodeInfo {
        NodeInfo {
            id,
            addr: SocketAddr::from(([10, 0, 1, last_octet], 6881)),
        }
    }

    #[test]
    fn own_bucket_splits_and_far_buckets_hold_k() {
        let mut rng = Rng::from_seed(5);
        let own = NodeId::random(&mut rng);
        let now = Timestamp::ZERO;
        let mut table = RoutingTable::new(own, Policy::Off, now);
        for i in 0..200u8 {
            table.heard_from(now, node(NodeId::random(&mut rng), i), true);
        }
        assert!(table.bucket_count() > 3);
        for b in &table.buckets {
            assert!(b.nodes.len() <= K && b.replacements.len() <= K);
        }
        for (index, b) in table.buckets.iter().enumerate() {
            for e in &b.nodes {
                assert_eq!(
                    own.common_prefix_len(&e.node.id)
                        .min(table.buckets.len() - 1),
                    index
                );
            }
        }
        // Roughly half the ids land in bucket 0, which holds only K.
        assert_eq!(table.buckets[0].nodes.len(), K);
    }

    #[test]
    fn one_entry_per_ip_and_no_own_id() {
        let mut rng = Rng::from_seed(6);
        let own = NodeId::random(&mut rng);
        let now = Timestamp::ZERO;
        let mut table = RoutingTable::new(own, Policy::Off, now);
        assert_eq!(table.heard_from(now, node(own, 1), true), Insert::Rejected);
        assert_eq!(
            table.heard_from(now, node(NodeId::random(&mut rng), 1), true),
            Insert::Added
        );
        assert_eq!(
            table.heard_from(now, node(NodeId::random(&mut rng), 1), true),
            Insert::Rejected
        );
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn full_bucket_pings_questionable_and_bad_nodes_are_replaced() {
        let mut rng = Rng::from_seed(7);
        let own = NodeId([0; 20]);
        let t0 = Timestamp::ZERO;
        let mut table = RoutingTable::new(own, Policy::Off, t0);
        // Fill bucket 0 (ids with top bit set) only after the own bucket split once.
        let far = |rng: &mut Rng| {
            let mut id = NodeId::random(rng);
            id.0[0] |= 0x80;
            id
        };
        table.heard_from(t0, node(NodeId([0x01; 20]), 200), true);
        let mut first = Vec::new();
        for i in 0..K as u8 {
            let n = node(far(&mut rng), i);
            first.push(n);
            table.heard_from(t0, n, true);
        }
        let later = t0 + GOOD_FOR + Duration::from_secs(1);
        let newcomer = node(far(&mut rng), 100);
        let outcome = table.heard_from(later, newcomer, true);
        let Insert::PingNeeded(to_ping) = outcome else {
            panic!("expected a ping request, got {outcome:?}")
        };
        assert!(first.contains(&to_ping));
        table.failed(later, &to_ping.id);
        table.failed(later, &to_ping.id);
        let ids: Vec<NodeId> = table.nodes().map(|e| e.node.id).collect();
        assert!(ids.contains(&newcomer.id), "replacement promoted");
        assert!(!ids.contains(&to_ping.id));
    }

    #[test]
    fn stale_buckets_are_refreshed_and_closest_is_sorted() {
        let mut rng = Rng::from_seed(8);
        let own = NodeId::random(&mut rng);
        let t0 = Timestamp::ZERO;
        let mut table = RoutingTable::new(own, Policy::Off, t0);
        for i in 0..50u8 {
            table.heard_from(t0, node(NodeId::random(&mut rng), i), true);
        }
        assert!(table.buckets_to_refresh(t0, &mut rng).is_empty());
        let targets = table.buckets_to_refresh(t0 + GOOD_FOR, &mut rng);
        assert_eq!(targets.len(), table.bucket_count());
        let target = NodeId::random(&mut rng);
        let closest = table.closest(&target, K);
        assert_eq!(closest.len(), K);
        assert!(closest
            .windows(2)
            .all(|w| target.distance(&w[0].id) <= target.distance(&w[1].id)));
        // And they are the closest of all.
        let farthest = target.distance(&closest[K - 1].id);
        assert!(table
            .nodes()
            .filter(|e| !closest.contains(&e.node))
            .all(|e| target.distance(&e.node.id) > farthest));
    }

    #[test]
    fn closest_reads_few_buckets_but_matches_a_full_sort() {
        let mut rng = Rng::from_seed(9);
        let own = NodeId::random(&mut rng);
        let t0 = Timestamp::ZERO;
        let mut table = RoutingTable::new(own, Policy::Off, t0);
        for i in 0..=255u8 {
            // Half of them near our own id, so the table is deep.
            let id = if i % 2 == 0 {
                own.random_with_prefix(usize::from(i % 24), &mut rng)
            } else {
                NodeId::random(&mut rng)
            };
            table.heard_from(t0, node(id, i), true);
        }
        let some: Vec<NodeId> = table.nodes().map(|e| e.node.id).step_by(5).collect();
        for id in &some {
            // Bad nodes are never handed out.
            table.failed(t0, id);
            table.failed(t0, id);
        }
        assert!(table.bucket_count() > 8);
        for round in 0..400 {
            let target = match round % 4 {
                0 => NodeId::random(&mut rng),
                1 => own.random_with_prefix(round % 30, &mut rng),
                2 => own,
                _ => table.nodes().nth(round % table.len()).unwrap().node.id,
            };
            for count in [1, K, 2 * K, 500] {
                let mut all: Vec<NodeInfo> = table
                    .nodes()
                    .filter(|e| e.failures < FAILURES_BAD)
                    .map(|e| e.node)
                    .collect();
                all.sort_by_key(|n| target.distance(&n.id));
                all.truncate(count);
                assert_eq!(table.closest(&target, count), all, "round {round}");
            }
        }
    }

    #[test]
    fn pings_go_exactly_to_questionable_nodes_and_the_ip_index_follows_the_entries() {
        let mut rng = Rng::from_seed(10);
        let own = NodeId::random(&mut rng);
        let mut now = Timestamp::ZERO;
        let mut table = RoutingTable::new(own, Policy::Off, now);
        let mut known = Vec::new();
        let mut pinged = 0;
        for step in 0..3000u32 {
            now = now + Duration::from_secs(rng.gen_range(0..90));
            match rng.gen_range(0..10) {
                0..=3 => {
                    let n = node(NodeId::random(&mut rng), (step % 250) as u8);
                    known.push(n);
                    table.heard_from(now, n, rng.gen());
                }
                4..=6 if !known.is_empty() => {
                    let n = known[rng.gen_range(0..known.len())];
                    table.heard_from(now, n, rng.gen());
                }
                7 if !known.is_empty() => {
                    let n = known[rng.gen_range(0..known.len())];
                    table.failed(now, &n.id);
                }
                8 if !known.is_empty() && step % 7 == 0 => {
                    let n = known[rng.gen_range(0..known.len())];
                    table.remove(&n.id);
                }
                _ => {
                    let count = rng.gen_range(1..6);
                    // What a scan of the whole table would pick.
                    let expected: Vec<NodeInfo> = table
                        .nodes()
                        .filter(|e| {
                            e.state(now) == NodeState::Questionable
                                && e.last_pinged
                                    .is_none_or(|t| now.saturating_since(t) >= GOOD_FOR)
                        })
                        .take(count)
                        .map(|e| e.node)
                        .collect();
                    pinged += expected.len();
                    assert_eq!(table.nodes_to_ping(now, count), expected, "step {step}");
                }
            }
            // The IP index matches the entries.
            let mut want: Vec<u32> = table
                .nodes()
                .map(|e| ip_fingerprint(e.node.addr.ip()))
                .collect();
            let mut have = table.ip_fingerprints.clone();
            want.sort_unstable();
            have.sort_unstable();
            assert_eq!(have, want, "step {step}");
        }
        assert!(pinged > 100, "the test exercised pings: {pinged}");
    }
}
