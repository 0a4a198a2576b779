//! An in-memory network of DHT cores on a virtual clock: no sockets, no threads. Messages cross
//! the "network" as real encoded datagrams with a seeded latency, each core has one wake-up in a
//! single timer set (no global tick), and lookups are checked against the true K closest ids.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use dht::{Command, Config, Dht, Event, Item, LookupResult, MutableItem, NodeId, QueryId};
use sansio::{Rng, RngExt, Timestamp};

struct Network {
    nodes: Vec<Dht>,
    addrs: Vec<SocketAddr>,
    by_addr: BTreeMap<SocketAddr, usize>,
    /// Datagrams in flight: (arrival, sequence) -> (destination, source, bytes).
    in_flight: BTreeMap<(Timestamp, u64), (usize, SocketAddr, Vec<u8>)>,
    /// One wake-up per node.
    wakeups: BTreeSet<(Timestamp, usize)>,
    wakeup_of: Vec<Option<Timestamp>>,
    events: Vec<(usize, Event)>,
    now: Timestamp,
    sequence: u64,
    rng: Rng,
}

impl Network {
    fn new(count: usize, seed: u64) -> Network {
        let mut rng = Rng::from_seed(seed);
        let mut net = Network {
            nodes: Vec::new(),
            addrs: Vec::new(),
            by_addr: BTreeMap::new(),
            in_flight: BTreeMap::new(),
            wakeups: BTreeSet::new(),
            wakeup_of: vec![None; count],
            events: Vec::new(),
            now: Timestamp::ZERO,
            sequence: 0,
            rng: rng.child(),
        };
        for i in 0..count {
            let addr = SocketAddr::from(([10, 1, (i / 250) as u8, (i % 250 + 1) as u8], 6881));
            let config = Config::default();
            net.nodes
                .push(Dht::new(config, Timestamp::ZERO, rng.child()));
            net.addrs.push(addr);
            net.by_addr.insert(addr, i);
            net.flush(i);
        }
        net
    }

    /// Drains node `i`'s outputs and reschedules its wake-up.
    fn flush(&mut self, i: usize) {
        while let Some(t) = self.nodes[i].poll_transmit() {
            if let Some(&to) = self.by_addr.get(&t.to) {
                let latency = Duration::from_millis(self.rng.gen_range(5..60));
                self.sequence += 1;
                self.in_flight.insert(
                    (self.now + latency, self.sequence),
                    (to, self.addrs[i], t.bytes),
                );
            }
        }
        while let Some(e) = self.nodes[i].poll_event() {
            self.events.push((i, e));
        }
        if let Some(old) = self.wakeup_of[i].take() {
            self.wakeups.remove(&(old, i));
        }
        if let Some(at) = self.nodes[i].poll_timeout() {
            self.wakeups.insert((at, i));
            self.wakeup_of[i] = Some(at);
        }
    }

    fn command(&mut self, i: usize, command: Command) -> QueryId {
        let id = self.nodes[i].command(self.now, command);
        self.flush(i);
        id
    }

    /// Runs until `until`, processing deliveries and wake-ups in time order.
    fn run_until(&mut self, until: Timestamp) {
        loop {
            let next_msg = self.in_flight.keys().next().map(|k| k.0);
            let next_wake = self.wakeups.iter().next().map(|w| w.0);
            let next = match (next_msg, next_wake) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) | (None, Some(a)) => a,
                (None, None) => break,
            };
            if next > until {
                break;
            }
            self.now = next;
            if next_msg == Some(next) {
                let (key, _) = self
                    .in_flight
                    .iter()
                    .next()
                    .map(|(k, v)| (*k, v.0))
                    .unwrap();
                let (to, from, bytes) = self.in_flight.remove(&key).unwrap();
                self.nodes[to].handle_input(self.now, from, &bytes);
                self.flush(to);
            } else {
                let (at, i) = *self.wakeups.iter().next().unwrap();
                self.wakeups.remove(&(at, i));
                self.wakeup_of[i] = None;
                self.nodes[i].handle_timeout(self.now);
                self.flush(i);
            }
        }
        self.now = until;
    }

    /// Runs (bounded) until the command's LookupDone arrives.
    fn wait_done(&mut self, node: usize, query: QueryId) -> LookupResult {
        for _ in 0..600 {
            if let Some(pos) = self.events.iter().position(|(i, e)| {
                *i == node && matches!(e, Event::LookupDone { query: q, .. } if *q == query)
            }) {
                let (_, Event::LookupDone { result, .. }) = self.events.remove(pos) else {
                    unreachable!()
                };
                return result;
            }
            self.run_until(self.now + Duration::from_millis(100));
        }
        panic!("lookup {query:?} on node {node} did not finish in 60 virtual seconds");
    }

    fn true_closest(&self, target: &NodeId, k: usize) -> Vec<NodeId> {
        let mut ids: Vec<NodeId> = self.nodes.iter().map(Dht::id).collect();
        ids.sort_by_key(|id| target.distance(id));
        ids.truncate(k);
        ids
    }

    fn bootstrap_all(&mut self) {
        let first = self.addrs[0];
        for i in 1..self.nodes.len() {
            self.command(i, Command::Bootstrap(vec![first]));
            self.run_until(self.now + Duration::from_millis(50));
        }
        self.run_until(self.now + Duration::from_secs(60));
        self.events.clear();
    }
}

#[test]
fn lookups_in_200_nodes_converge_to_the_true_closest() {
    let mut net = Network::new(200, 11);
    net.bootstrap_all();
    let sizes: Vec<usize> = net.nodes.iter().map(|n| n.routing_table().len()).collect();
    assert!(
        sizes.iter().all(|s| *s >= 8),
        "every table filled: {sizes:?}"
    );
    let mut rng = Rng::from_seed(99);
    let mut exact = 0;
    for _ in 0..20 {
        let target = NodeId::random(&mut rng);
        let from = rng.gen_range(0..200);
        let query = net.command(from, Command::FindNode(target));
        let result = net.wait_done(from, query);
        let found: Vec<NodeId> = result.closest.iter().map(|n| n.id).collect();
        let truth = net.true_closest(&target, 8);
        // The searcher never lists itself, so compare against the truth without it.
        let truth: Vec<NodeId> = truth
            .into_iter()
            .filter(|id| *id != net.nodes[from].id())
            .collect();
        let overlap = found.iter().filter(|id| truth.contains(id)).count();
        assert!(overlap >= 7, "lookup found {overlap} of the true closest");
        // Kademlia: O(log N) hops; with 200 nodes and full tables, a few at most.
        assert!(
            (1..=4).contains(&result.hops),
            "lookup took {} hops",
            result.hops
        );
        exact += usize::from(
            found[..truth.len().min(found.len())] == truth[..truth.len().min(found.len())],
        );
    }
    assert!(exact >= 18, "exact results: {exact}/20");
}

#[test]
fn announce_get_peers_and_items_across_the_network() {
    let mut net = Network::new(60, 12);
    net.bootstrap_all();
    let info_hash = NodeId([0x42; 20]);
    let q = net.command(
        5,
        Command::Announce {
            info_hash,
            port: Some(7000),
        },
    );
    let announced = net.wait_done(5, q);
    assert!(
        announced.stored >= 6,
        "announced to {} nodes",
        announced.stored
    );
    let q = net.command(50, Command::GetPeers(info_hash));
    net.wait_done(50, q);
    let peer = SocketAddr::new(net.addrs[5].ip(), 7000);
    assert!(net.events.iter().any(|(i, e)| *i == 50
        && matches!(e, Event::Peers { query, peers } if *query == q && peers.contains(&peer))));

    let value = b"12:Hello World!".to_vec();
    let q = net.command(
        7,
        Command::Put {
            item: Item::Immutable(value.clone()),
            cas: None,
        },
    );
    assert!(net.wait_done(7, q).stored >= 6);
    let target = dht::immutable_target(&value);
    let q = net.command(40, Command::GetImmutable(target));
    assert_eq!(net.wait_done(40, q).item, Some(Item::Immutable(value)));

    let seed = [3u8; 32];
    let item = MutableItem::sign(&seed, b"salt", 4, b"5:hello").unwrap();
    let q = net.command(
        9,
        Command::Put {
            item: Item::Mutable(item.clone()),
            cas: None,
        },
    );
    assert!(net.wait_done(9, q).stored >= 6);
    let q = net.command(
        33,
        Command::GetMutable {
            key: item.key,
            salt: b"salt".to_vec(),
            seq_min: None,
        },
    );
    assert_eq!(net.wait_done(33, q).item, Some(Item::Mutable(item)));
    // Wrong salt: a different target, nothing found.
    let q = net.command(
        33,
        Command::GetMutable {
            key: [3; 32],
            salt: b"other".to_vec(),
            seq_min: None,
        },
    );
    assert_eq!(net.wait_done(33, q).item, None);
}

#[test]
fn same_seed_same_run() {
    let run = |seed| {
        let mut net = Network::new(30, seed);
        net.bootstrap_all();
        net.nodes.iter().map(|n| n.save_state()).collect::<Vec<_>>()
    };
    assert_eq!(run(5), run(5));
}
