//! A simulated DHT node: the real [`dht::Dht`] core, wrapped for the engine.
//!
//! The wrapper adds what the simulator needs and the core must not know about:
//! - adversarial behaviour, as rewriting of the node's own datagrams (the core stays honest and
//!   unmodified): silence, dropped queries, poisoned `nodes` lists, a Sybil flock that hides items;
//! - hop counting for the lookups the workload issues: each contact learned in a reply is one hop
//!   further than the node that named it, and a lookup's hop count is the depth of the closest
//!   node it found (nodes from the routing table are one hop away).

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use dht::krpc::{Body, Message, Method};
use dht::{Command, Dht, Event, NodeId, NodeInfo, QueryId};
use sansio::Timestamp;

use crate::engine::{Core, NODE_PORT};

/// How a node behaves towards others.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Behaviour {
    /// Follows the protocol.
    Honest,
    /// Sends its own queries but never answers anyone (a firewalled node).
    Silent,
    /// Answers pings (so it stays in routing tables) and drops every other query.
    DropQueries,
    /// Answers every lookup with made-up contacts very close to the target that do not exist.
    WrongNodes,
    /// One of a flock surrounding a key: answers `get` with flock members only and never with
    /// the value, and claims to store every `put`.
    Sybil,
}

/// Most contacts a poisoned reply carries.
const POISON_NODES: usize = 8;

/// A DHT core plus the simulator's hooks.
pub struct SimNode {
    dht: Dht,
    behaviour: Behaviour,
    /// Contacts a Sybil hands out: the flock (shared by all of its members).
    flock: std::sync::Arc<[NodeInfo]>,
    hops: Option<Box<HopTracker>>,
    out: VecDeque<(SocketAddr, Vec<u8>)>,
}

/// What the node reports to the scenario runner.
#[derive(Clone, Debug)]
pub struct Finished {
    /// The command.
    pub query: QueryId,
    /// How many hops the lookup took (0 if it was not tracked or found nothing).
    pub hops: u32,
    /// The closest nodes that answered, closest first.
    pub closest: Vec<NodeId>,
    /// Whether an item was found (gets) .
    pub item_found: bool,
    /// How many nodes acknowledged a put.
    pub stored: usize,
}

#[derive(Default)]
struct HopTracker {
    /// Lookups being counted: their target and the depth of each contact seen.
    lookups: BTreeMap<QueryId, (NodeId, BTreeMap<SocketAddr, u32>)>,
    /// Our outgoing queries: transaction id to the target they serve.
    sent: BTreeMap<Vec<u8>, NodeId>,
}

impl SimNode {
    /// Wraps `dht` with the given behaviour; `flock` is used by Sybils only.
    pub fn new(dht: Dht, behaviour: Behaviour, flock: std::sync::Arc<[NodeInfo]>) -> SimNode {
        SimNode {
            dht,
            behaviour,
            flock,
            hops: None,
            out: VecDeque::new(),
        }
    }

    /// The wrapped core.
    pub fn dht(&self) -> &Dht {
        &self.dht
    }

    /// How the node behaves.
    pub fn behaviour(&self) -> Behaviour {
        self.behaviour
    }

    /// Issues a command; with `count_hops` a lookup's hops are counted.
    pub fn command(&mut self, now: Timestamp, command: Command, count_hops: bool) -> QueryId {
        let target = match &command {
            Command::FindNode(target) | Command::GetImmutable(target) => Some(*target),
            Command::Put { item, .. } => Some(item.target()),
            _ => None,
        };
        let query = self.dht.command(now, command);
        if let (true, Some(target)) = (count_hops, target) {
            let tracker = self.hops.get_or_insert_with(Default::default);
            tracker.lookups.insert(query, (target, BTreeMap::new()));
        }
        self.collect_transmits();
        query
    }

    fn collect_transmits(&mut self) {
        while let Some(transmit) = self.dht.poll_transmit() {
            let bytes = match self.behaviour {
                Behaviour::Honest | Behaviour::DropQueries | Behaviour::Silent => transmit.bytes,
                Behaviour::WrongNodes | Behaviour::Sybil => self.rewrite(transmit.bytes),
            };
            if let Some(tracker) = self.hops.as_deref_mut() {
                tracker.outgoing(&bytes);
            }
            self.out.push_back((transmit.to, bytes));
        }
    }

    /// Rewrites one of our replies according to our behaviour; queries pass unchanged.
    fn rewrite(&self, bytes: Vec<u8>) -> Vec<u8> {
        let Ok(mut message) = Message::decode(&bytes) else {
            return bytes;
        };
        let Body::Response(response) = &mut message.body else {
            return bytes;
        };
        if response.nodes.is_empty() {
            return bytes;
        }
        match self.behaviour {
            Behaviour::WrongNodes => {
                // Claim contacts right next to whatever was asked: ids copied from the real
                // answer's closest one with the last bytes changed, at addresses nobody uses.
                let base = response.nodes[0].id;
                response.nodes = (0..POISON_NODES)
                    .map(|i| {
                        let mut id = base;
                        id.0[19] ^= (i as u8) + 1;
                        NodeInfo {
                            id,
                            addr: void_addr(id.0[18], i as u8),
                        }
                    })
                    .collect();
            }
            Behaviour::Sybil => {
                response.nodes = self.flock.iter().take(POISON_NODES).copied().collect();
                response.value = None;
            }
            _ => return bytes,
        }
        message.encode()
    }

    fn drops_incoming(&self, bytes: &[u8]) -> bool {
        match self.behaviour {
            Behaviour::Honest | Behaviour::WrongNodes | Behaviour::Sybil => false,
            Behaviour::Silent | Behaviour::DropQueries => match Message::decode(bytes) {
                Ok(Message {
                    body: Body::Query(query),
                    ..
                }) => self.behaviour == Behaviour::Silent || query.method != Method::Ping,
                _ => false,
            },
        }
    }
}

/// An address inside the simulated range that no node ever has.
fn void_addr(a: u8, b: u8) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 255, a, b.max(1))), NODE_PORT)
}

impl HopTracker {
    fn outgoing(&mut self, bytes: &[u8]) {
        if self.lookups.is_empty() {
            return;
        }
        let Ok(message) = Message::decode(bytes) else {
            return;
        };
        let Body::Query(query) = message.body else {
            return;
        };
        let target = match query.method {
            Method::FindNode { target } | Method::Get { target, .. } => target,
            Method::GetPeers { info_hash } => info_hash,
            _ => return,
        };
        if self.lookups.values().any(|(t, _)| *t == target) {
            self.sent.insert(message.transaction_id, target);
        }
    }

    fn incoming(&mut self, from: SocketAddr, bytes: &[u8]) {
        if self.sent.is_empty() {
            return;
        }
        let Ok(message) = Message::decode(bytes) else {
            return;
        };
        let Some(target) = self.sent.remove(&message.transaction_id) else {
            return;
        };
        let Body::Response(response) = message.body else {
            return;
        };
        for (t, depths) in self.lookups.values_mut().filter(|(t, _)| *t == target) {
            debug_assert_eq!(*t, target);
            let depth = *depths.entry(from).or_insert(1);
            for node in &response.nodes {
                depths.entry(node.addr).or_insert(depth + 1);
            }
        }
    }

    fn finish(&mut self, query: QueryId, closest: Option<&NodeInfo>) -> u32 {
        let Some((target, depths)) = self.lookups.remove(&query) else {
            return 0;
        };
        if !self.lookups.values().any(|(t, _)| *t == target) {
            self.sent.retain(|_, t| *t != target);
        }
        closest.map_or(0, |node| depths.get(&node.addr).copied().unwrap_or(1))
    }
}

impl Core for SimNode {
    type Event = Finished;

    fn handle_input(&mut self, now: Timestamp, from: SocketAddr, bytes: &[u8]) {
        if self.drops_incoming(bytes) {
            return;
        }
        if let Some(tracker) = self.hops.as_deref_mut() {
            tracker.incoming(from, bytes);
        }
        self.dht.handle_input(now, from, bytes);
        self.collect_transmits();
    }

    fn handle_timeout(&mut self, now: Timestamp) {
        self.dht.handle_timeout(now);
        self.collect_transmits();
    }

    fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.out.pop_front()
    }

    fn poll_event(&mut self) -> Option<Finished> {
        loop {
            let Event::LookupDone { query, result } = self.dht.poll_event()? else {
                continue;
            };
            let hops = match self.hops.as_deref_mut() {
                Some(tracker) => tracker.finish(query, result.closest.first()),
                None => 0,
            };
            if self.hops.as_ref().is_some_and(|t| t.lookups.is_empty()) {
                self.hops = None;
            }
            return Some(Finished {
                query,
                hops,
                closest: result.closest.iter().map(|node| node.id).collect(),
                item_found: result.item.is_some(),
                stored: result.stored,
            });
        }
    }

    fn poll_timeout(&self) -> Option<Timestamp> {
        self.dht.poll_timeout()
    }
}
