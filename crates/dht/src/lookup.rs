//! Iterative Kademlia lookups (BEP 5): ask the `alpha` closest not-yet-asked nodes, learn closer
//! nodes from their replies, and stop once the K closest nodes that are still alive have all
//! answered (or nobody is left to ask).
//!
//! A lookup is a pure state machine over candidates: the core asks it for the next queries,
//! and reports each reply, slow reply and failure. A *slow* query (past its adaptive short
//! timeout) stops occupying a parallelism slot, so one dead node cannot stall the lookup, but its
//! late answer is still welcome until the hard timeout.
//!
//! Invariants: at most `alpha` queries in flight that are not slow; at most
//! [`CANDIDATES_MAX`] candidates, the farthest forgotten first; a candidate is never asked twice.
//!
//! Hops: a seed is one hop away, a node learned from a reply one hop farther than the node that
//! replied (the fewest, if several named it). A lookup's hop count is that of the closest node
//! that answered.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use crate::krpc::NodeInfo;
use crate::node_id::{Distance, NodeId};

/// Most candidates remembered by one lookup.
pub const CANDIDATES_MAX: usize = 64;

/// Where a candidate stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Waiting,
    InFlight,
    Slow,
    Responded,
    Failed,
}

#[derive(Clone, Debug)]
struct Candidate {
    /// `None` for a bootstrap address whose id we do not know yet.
    id: Option<NodeId>,
    state: State,
    token: Option<Vec<u8>>,
    /// Hops from us (seeds are 1).
    hop: u32,
}

/// Candidates are ordered by distance, then address (unknown ids sort last).
type Key = (Distance, SocketAddr);

/// One iterative lookup.
#[derive(Clone, Debug)]
pub struct Lookup {
    target: NodeId,
    k: usize,
    alpha: usize,
    candidates: BTreeMap<Key, Candidate>,
    in_flight: usize,
    queried: usize,
}

impl Lookup {
    /// A lookup for `target` starting from `seeds` (ids may be unknown for bootstrap addresses).
    pub fn new(
        target: NodeId,
        seeds: &[(Option<NodeId>, SocketAddr)],
        k: usize,
        alpha: usize,
    ) -> Lookup {
        let mut lookup = Lookup {
            target,
            k,
            alpha,
            candidates: BTreeMap::new(),
            in_flight: 0,
            queried: 0,
        };
        for (id, addr) in seeds {
            lookup.add(*id, *addr, 1);
        }
        lookup
    }

    /// The key sought.
    pub fn target(&self) -> NodeId {
        self.target
    }

    fn key(&self, id: Option<NodeId>, addr: SocketAddr) -> Key {
        let distance = id.map_or(Distance([0xff; 20]), |id| self.target.distance(&id));
        (distance, addr)
    }

    fn add(&mut self, id: Option<NodeId>, addr: SocketAddr, hop: u32) {
        if let Some((_, known)) = self.candidates.iter_mut().find(|((_, a), _)| *a == addr) {
            known.hop = known.hop.min(hop);
            return;
        }
        let key = self.key(id, addr);
        if self.candidates.len() >= CANDIDATES_MAX {
            // Forget the farthest candidate that is not in flight, if the newcomer is closer.
            let farthest = self
                .candidates
                .iter()
                .rev()
                .find(|(_, c)| !matches!(c.state, State::InFlight | State::Slow))
                .map(|(k, _)| *k);
            match farthest {
                Some(far) if far > key => {
                    self.candidates.remove(&far);
                }
                _ => return,
            }
        }
        self.candidates.insert(
            key,
            Candidate {
                id,
                state: State::Waiting,
                token: None,
                hop,
            },
        );
    }

    fn find(&self, addr: SocketAddr) -> Option<Key> {
        self.candidates.keys().find(|(_, a)| *a == addr).copied()
    }

    /// The next nodes to query (marked in flight); empty when the slots are full or done.
    pub fn next_queries(&mut self) -> Vec<(Option<NodeId>, SocketAddr)> {
        let mut out = Vec::new();
        if self.is_done() {
            return out;
        }
        let free = self.alpha.saturating_sub(self.in_flight);
        for ((_, addr), candidate) in self.candidates.iter_mut() {
            if out.len() >= free {
                break;
            }
            if candidate.state == State::Waiting {
                candidate.state = State::InFlight;
                out.push((candidate.id, *addr));
            }
        }
        self.in_flight += out.len();
        self.queried += out.len();
        out
    }

    /// `addr` answered as `id` with `nodes` and maybe a write token.
    pub fn on_response(
        &mut self,
        addr: SocketAddr,
        id: NodeId,
        nodes: &[NodeInfo],
        token: Option<Vec<u8>>,
    ) {
        let mut hop = 1;
        if let Some(key) = self.find(addr) {
            if let Some(mut candidate) = self.candidates.remove(&key) {
                hop = candidate.hop;
                if candidate.state == State::InFlight {
                    self.in_flight -= 1;
                }
                candidate.state = State::Responded;
                candidate.id = Some(id);
                candidate.token = token;
                let key = self.key(Some(id), addr);
                self.candidates.insert(key, candidate);
            }
        }
        for node in nodes {
            self.add(Some(node.id), node.addr, hop + 1);
        }
    }

    /// The query to `addr` passed its short timeout: free its slot but wait for a late answer.
    pub fn on_slow(&mut self, addr: SocketAddr) {
        if let Some(c) = self.find(addr).and_then(|k| self.candidates.get_mut(&k)) {
            if c.state == State::InFlight {
                c.state = State::Slow;
                self.in_flight -= 1;
            }
        }
    }

    /// The query to `addr` failed (timeout or error).
    pub fn on_failure(&mut self, addr: SocketAddr) {
        if let Some(c) = self.find(addr).and_then(|k| self.candidates.get_mut(&k)) {
            if c.state == State::InFlight {
                self.in_flight -= 1;
            }
            if matches!(c.state, State::InFlight | State::Slow) {
                c.state = State::Failed;
            }
        }
    }

    /// Whether the K closest live candidates have all answered, or nothing is left to try. A
    /// candidate past its short timeout counts as gone here: one silent node among the closest
    /// must not hold the lookup until the hard timeout (its late answer is still taken while
    /// the lookup lasts).
    pub fn is_done(&self) -> bool {
        let mut closest_answered = 0;
        for candidate in self.candidates.values() {
            match candidate.state {
                State::Failed | State::Slow => continue,
                State::Responded => closest_answered += 1,
                _ => break,
            }
            if closest_answered >= self.k {
                return true;
            }
        }
        self.candidates
            .values()
            .all(|c| matches!(c.state, State::Responded | State::Failed))
    }

    /// The closest nodes that answered, with the tokens they gave, closest first.
    pub fn closest_responded(&self) -> Vec<(NodeInfo, Option<Vec<u8>>)> {
        self.candidates
            .iter()
            .filter(|(_, c)| c.state == State::Responded)
            .filter_map(|((_, addr), c)| {
                Some((
                    NodeInfo {
                        id: c.id?,
                        addr: *addr,
                    },
                    c.token.clone(),
                ))
            })
            .take(self.k)
            .collect()
    }

    /// How many queries this lookup sent.
    pub fn queried(&self) -> usize {
        self.queried
    }

    /// Hops to the closest node that answered (0 if none did).
    pub fn hops(&self) -> u32 {
        self.candidates
            .values()
            .find(|c| c.state == State::Responded)
            .map_or(0, |c| c.hop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(byte: u8) -> NodeInfo {
        NodeInfo {
            id: NodeId([byte; 20]),
            addr: SocketAddr::from(([10, 0, 0, byte], 1)),
        }
    }

    #[test]
    fn alpha_bounds_parallelism_and_slow_frees_a_slot() {
        let seeds: Vec<_> = (1..=5).map(|b| (Some(info(b).id), info(b).addr)).collect();
        let mut lookup = Lookup::new(NodeId([0; 20]), &seeds, 2, 2);
        let first = lookup.next_queries();
        assert_eq!(first.len(), 2);
        assert!(lookup.next_queries().is_empty());
        lookup.on_slow(first[0].1);
        assert_eq!(lookup.next_queries().len(), 1);
    }

    #[test]
    fn terminates_when_k_closest_answered() {
        let target = NodeId([0; 20]);
        let mut lookup = Lookup::new(target, &[(None, info(200).addr)], 2, 3);
        let q = lookup.next_queries();
        assert_eq!(q, vec![(None, info(200).addr)]);
        lookup.on_response(
            info(200).addr,
            info(200).id,
            &[info(1), info(2), info(3)],
            None,
        );
        assert!(!lookup.is_done());
        let q = lookup.next_queries();
        assert_eq!(q.len(), 3);
        lookup.on_failure(info(1).addr);
        lookup.on_response(info(2).addr, info(2).id, &[], Some(b"t".to_vec()));
        assert!(!lookup.is_done(), "3 still pending");
        lookup.on_response(info(3).addr, info(3).id, &[], None);
        assert!(lookup.is_done());
        let closest = lookup.closest_responded();
        assert_eq!(closest[0], (info(2), Some(b"t".to_vec())));
        assert_eq!(closest.len(), 2);
        assert_eq!(lookup.hops(), 2, "the seed named the closest node");
    }

    #[test]
    fn a_silent_node_among_the_closest_does_not_hold_the_lookup() {
        let target = NodeId([0; 20]);
        let mut lookup = Lookup::new(target, &[(None, info(200).addr)], 2, 3);
        lookup.next_queries();
        lookup.on_response(
            info(200).addr,
            info(200).id,
            &[info(1), info(2), info(3)],
            None,
        );
        assert_eq!(lookup.next_queries().len(), 3);
        lookup.on_response(info(2).addr, info(2).id, &[], None);
        lookup.on_response(info(3).addr, info(3).id, &[], None);
        assert!(
            !lookup.is_done(),
            "the closest is still within its short timeout"
        );
        // Past its short timeout the closest counts as gone: two of the rest answered.
        lookup.on_slow(info(1).addr);
        assert!(lookup.is_done());
        // A late answer is still taken while the lookup's owner has not finished it.
        lookup.on_response(info(1).addr, info(1).id, &[], None);
        assert_eq!(lookup.closest_responded()[0].0, info(1));
    }

    #[test]
    fn candidates_stay_capped_keeping_the_closest() {
        let mut lookup = Lookup::new(NodeId([0; 20]), &[], 8, 3);
        let nodes: Vec<NodeInfo> = (1..=255).map(info).collect();
        lookup.on_response(info(1).addr, info(1).id, &nodes, None);
        assert_eq!(lookup.candidates.len(), CANDIDATES_MAX);
        let q = lookup.next_queries();
        assert_eq!(q[0].0, Some(info(1).id));
    }
}
