//! Sans-IO Mainline DHT core: KRPC (BEP 5), routing table, iterative lookups, BEP 32 (IPv6
//! fields), BEP 42 (node ids from IP), BEP 43 (read-only nodes), BEP 44 (put/get of immutable and
//! mutable items) and BEP 51 (`sample_infohashes`).
//!
//! [`Dht`] is a plain state machine: it never opens a socket, reads a clock or spawns a task.
//! A driver (the tokio node, the simulator, a test) feeds it datagrams, timeouts and commands and
//! drains what it wants to send and to report:
//!
//! - inputs: [`Dht::handle_input`] (a datagram arrived), [`Dht::handle_timeout`] (the time from
//!   [`Dht::poll_timeout`] came), [`Dht::command`] (the user asks for something);
//! - outputs: [`Dht::poll_transmit`] (a datagram to send), [`Dht::poll_event`] (something the
//!   application should know), [`Dht::poll_timeout`] (when to call `handle_timeout` next).
//!
//! **After every `handle_*` or `command` call, drain `poll_transmit` and `poll_event` until they
//! return `None`, then ask `poll_timeout` again.** Given the same inputs, times and seed the core
//! does exactly the same thing.
//!
//! Implementation notes: there is one wake-up per node ([`Dht::poll_timeout`] is the earlier of
//! the next query deadline and the next maintenance tick), so a simulator can run many cores
//! without ticking each of them every step. Maintenance (token rotation, store expiry, bucket
//! refresh, pinging questionable nodes, republishing) runs every [`MAINTENANCE_INTERVAL`].

mod bep42;
mod bep44;
mod error;
mod item_store;
pub mod krpc;
mod lookup;
mod node_id;
mod peer_store;
mod rate_limit;
mod routing_table;
mod rtt;
mod running_lookup;
mod server;
mod state;
mod tokens;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use sansio::{Rng, RngExt, Timestamp};

pub use bep42::{crc32c, is_valid as bep42_is_valid, node_id_for_ip, Policy as Bep42Policy};
pub use bep44::{
    check_value, immutable_target, mutable_target, public_key, signature_buffer, Item, MutableItem,
    SALT_BYTES_MAX, VALUE_BYTES_MAX,
};
pub use error::Error;
pub use item_store::ItemStoreLimits;
pub use krpc::{ErrorReply, NodeInfo};
pub use lookup::Lookup;
pub use node_id::{Distance, NodeId};
pub use peer_store::PeerStoreLimits;
pub use rate_limit::RateLimit;
pub use routing_table::{NodeState, RoutingTable, K};

use krpc::{Body, Message, Method, MutableFields, PutRequest, Query, Response, Want};
use rtt::RttEstimator;
use running_lookup::{LookupKind, RunningLookup};

/// How often maintenance runs.
pub const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(30);
/// How long before our own BEP 44 items are put again (they expire after 2 hours elsewhere).
pub const REPUBLISH_ITEMS_INTERVAL: Duration = Duration::from_secs(60 * 60);
/// How long before our own announces are sent again.
pub const REANNOUNCE_INTERVAL: Duration = Duration::from_secs(15 * 60);
/// Hard timeout of one query: a reply after this is dropped.
pub const QUERY_HARD_TIMEOUT: Duration = Duration::from_secs(5);
/// Most questionable nodes pinged per maintenance tick.
const PINGS_PER_TICK_MAX: usize = 4;
/// Most bucket-refresh lookups started per maintenance tick.
const REFRESHES_PER_TICK_MAX: usize = 2;

/// Settings of one DHT node. The defaults are safe on the open Internet.
#[derive(Clone, Debug)]
pub struct Config {
    /// Our id; `None` picks a random one (or the saved one from `saved_state`).
    pub node_id: Option<NodeId>,
    /// Nodes per bucket and the size of a lookup's result set.
    pub k: usize,
    /// Parallel queries per lookup.
    pub alpha: usize,
    /// How strictly BEP 42 is applied to others.
    pub bep42: Bep42Policy,
    /// BEP 43: never answer queries and ask others not to add us.
    pub read_only: bool,
    /// The socket is IPv6 (BEP 32): the table holds IPv6 nodes, sent in `nodes6`.
    pub ipv6: bool,
    /// Per-source-IP limit on the messages we process.
    pub rate_limit: RateLimit,
    /// Caps of the peer store.
    pub peer_store: PeerStoreLimits,
    /// Caps of the item store.
    pub item_store: ItemStoreLimits,
    /// The `v` we send: two client letters and two version bytes.
    pub version: [u8; 4],
    /// BEP 51 `interval`: how long others should wait before sampling us again, in seconds.
    pub sample_interval_secs: i64,
    /// Most lookups running at once; more commands fail at once.
    pub lookups_max: usize,
    /// Most queries awaiting a reply; more are not sent.
    pub pending_queries_max: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            node_id: None,
            k: K,
            alpha: 3,
            bep42: Bep42Policy::Prefer,
            read_only: false,
            ipv6: false,
            rate_limit: RateLimit::default(),
            peer_store: PeerStoreLimits::default(),
            item_store: ItemStoreLimits::default(),
            version: *b"SP\x00\x01",
            sample_interval_secs: 300,
            lookups_max: 64,
            pending_queries_max: 1024,
        }
    }
}

/// Identifies a command and the events it produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QueryId(pub u64);

/// What the user can ask of the DHT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Join through these addresses (and the nodes already in the table): look up our own id.
    Bootstrap(Vec<SocketAddr>),
    /// Ping one address.
    Ping(SocketAddr),
    /// Find the K nodes closest to a key.
    FindNode(NodeId),
    /// Find peers of a torrent; [`Event::Peers`] reports them as they arrive.
    GetPeers(NodeId),
    /// Find peers and announce ourselves on the closest nodes (port `None`: BEP 5 implied port),
    /// and keep announcing every [`REANNOUNCE_INTERVAL`].
    Announce {
        /// The torrent.
        info_hash: NodeId,
        /// Our peer port, or `None` to use the DHT socket's port.
        port: Option<u16>,
    },
    /// Stop re-announcing a torrent.
    StopAnnouncing(NodeId),
    /// Get an immutable item.
    GetImmutable(NodeId),
    /// Get the newest mutable item of a key and salt, newer than `seq_min` if given.
    GetMutable {
        /// The public key.
        key: [u8; 32],
        /// The salt (may be empty).
        salt: Vec<u8>,
        /// Only items with a higher seq.
        seq_min: Option<i64>,
    },
    /// Store an item on the closest nodes and republish it hourly.
    Put {
        /// The item (already signed if mutable).
        item: Item,
        /// BEP 44 compare-and-swap: the seq we expect to replace.
        cas: Option<i64>,
    },
    /// BEP 51: ask one node for a sample of its info-hashes.
    SampleInfohashes {
        /// The node.
        addr: SocketAddr,
        /// Where to look for nodes in the reply.
        target: NodeId,
    },
}

/// The final outcome of a lookup command.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LookupResult {
    /// The closest nodes that answered, closest first.
    pub closest: Vec<NodeInfo>,
    /// How many queries the lookup sent.
    pub queried: usize,
    /// Hops from us to the closest node that answered (its seeds are 1 hop away).
    pub hops: u32,
    /// Announces or puts acknowledged by the nodes that got them.
    pub stored: usize,
    /// The item found (gets) or put.
    pub item: Option<Item>,
    /// Peers found (get_peers and announce).
    pub peers: usize,
}

/// What the DHT tells the application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A ping was answered.
    Pong {
        /// The command.
        query: QueryId,
        /// Who answered.
        node: NodeInfo,
    },
    /// Peers from one `get_peers` reply (may repeat peers of earlier replies).
    Peers {
        /// The command.
        query: QueryId,
        /// The peers.
        peers: Vec<SocketAddr>,
    },
    /// An item was found (mutable: each time a newer one is).
    ItemFound {
        /// The command.
        query: QueryId,
        /// The item, verified.
        item: Item,
    },
    /// A BEP 51 reply.
    Samples {
        /// The command.
        query: QueryId,
        /// Who answered.
        node: NodeInfo,
        /// The sampled info-hashes.
        samples: Vec<NodeId>,
        /// How many info-hashes the node stores.
        num: i64,
        /// Seconds before sampling it again.
        interval: i64,
        /// Nodes close to the target.
        nodes: Vec<NodeInfo>,
    },
    /// A lookup command (bootstrap, find_node, get_peers, announce, get, put) finished.
    LookupDone {
        /// The command.
        query: QueryId,
        /// What it found.
        result: LookupResult,
    },
    /// A ping or sample command got no answer, or an error.
    Failed {
        /// The command.
        query: QueryId,
        /// The error reply, if the node sent one.
        error: Option<ErrorReply>,
    },
}

/// A datagram to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Destination.
    pub to: SocketAddr,
    /// Payload.
    pub bytes: Vec<u8>,
}

/// Counters and sizes, for `spore dht node` and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Nodes in the routing table.
    pub routing_table_nodes: usize,
    /// Buckets in the routing table.
    pub buckets: usize,
    /// Stored (info-hash, peer) pairs.
    pub peers_stored: usize,
    /// Stored info-hashes.
    pub info_hashes_stored: usize,
    /// Stored BEP 44 items.
    pub items_stored: usize,
    /// Queries awaiting a reply.
    pub pending_queries: usize,
    /// Lookups running.
    pub lookups_running: usize,
    /// Queries received and answered.
    pub queries_answered: u64,
    /// Messages dropped by the rate limiter.
    pub dropped_rate_limited: u64,
    /// Datagrams dropped as malformed or unexpected.
    pub dropped_invalid: u64,
}

/// What a pending query is for.
#[derive(Clone, Debug)]
enum Purpose {
    Lookup(QueryId),
    Store(QueryId),
    Ping(Option<QueryId>),
    Sample(QueryId),
}

#[derive(Clone, Debug)]
struct Pending {
    addr: SocketAddr,
    expected_id: Option<NodeId>,
    sent: Timestamp,
    /// The query's entry in `Dht::deadlines` (the short timeout, then the hard one).
    deadline: Timestamp,
    hard_deadline: Timestamp,
    slow: bool,
    purpose: Purpose,
}

/// One Mainline DHT node (see the crate docs for how to drive it).
#[derive(Debug)]
pub struct Dht {
    config: Config,
    rng: Rng,
    table: RoutingTable,
    tokens: tokens::Tokens,
    peers: peer_store::PeerStore,
    items: item_store::ItemStore,
    limiter: rate_limit::RateLimiter,
    rtt: RttEstimator,
    pending: BTreeMap<u16, Pending>,
    deadlines: BTreeSet<(Timestamp, u16)>,
    next_transaction: u16,
    lookups: BTreeMap<QueryId, RunningLookup>,
    next_query: u64,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    next_maintenance: Timestamp,
    own_announces: BTreeMap<NodeId, (Option<u16>, Timestamp)>,
    own_items: BTreeMap<NodeId, (Item, Timestamp)>,
    external_addr: Option<SocketAddr>,
    stats: Stats,
}

impl Dht {
    /// A node that has not joined yet (send [`Command::Bootstrap`]).
    pub fn new(config: Config, now: Timestamp, mut rng: Rng) -> Dht {
        let id = config.node_id.unwrap_or_else(|| NodeId::random(&mut rng));
        let table = RoutingTable::new(id, config.bep42, now);
        let tokens = tokens::Tokens::new(now, &mut rng);
        let next_transaction = rng.gen();
        Dht {
            table,
            tokens,
            peers: peer_store::PeerStore::new(config.peer_store),
            items: item_store::ItemStore::new(config.item_store),
            limiter: rate_limit::RateLimiter::new(config.rate_limit),
            rtt: RttEstimator::default(),
            pending: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            next_transaction,
            lookups: BTreeMap::new(),
            next_query: 1,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            next_maintenance: now + MAINTENANCE_INTERVAL,
            own_announces: BTreeMap::new(),
            own_items: BTreeMap::new(),
            external_addr: None,
            stats: Stats::default(),
            config,
            rng,
        }
    }

    /// Our node id.
    pub fn id(&self) -> NodeId {
        self.table.own_id()
    }

    /// The routing table (read-only).
    pub fn routing_table(&self) -> &RoutingTable {
        &self.table
    }

    /// Our address as the last replier saw it (BEP 42 `ip`), if any reported it.
    pub fn external_addr(&self) -> Option<SocketAddr> {
        self.external_addr
    }

    /// Current counters.
    pub fn stats(&self) -> Stats {
        Stats {
            routing_table_nodes: self.table.len(),
            buckets: self.table.bucket_count(),
            peers_stored: self.peers.len(),
            info_hashes_stored: self.peers.info_hashes(),
            items_stored: self.items.len(),
            pending_queries: self.pending.len(),
            lookups_running: self.lookups.len(),
            dropped_rate_limited: self.limiter.dropped(),
            ..self.stats
        }
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Dht::handle_timeout`] should be called next.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let next_deadline = self.deadlines.first().map(|(t, _)| *t);
        Some(next_deadline.map_or(self.next_maintenance, |t| t.min(self.next_maintenance)))
    }

    /// Starts a command; its events carry the returned id.
    pub fn command(&mut self, now: Timestamp, command: Command) -> QueryId {
        let query = QueryId(self.next_query);
        self.next_query += 1;
        match command {
            Command::Bootstrap(addrs) => {
                let mut seeds: Vec<(Option<NodeId>, SocketAddr)> =
                    addrs.into_iter().map(|a| (None, a)).collect();
                seeds.extend(self.table_seeds(&self.id()));
                self.start_lookup(now, query, self.id(), seeds, LookupKind::Bootstrap);
            }
            Command::Ping(addr) => {
                self.send_query(now, addr, None, Method::Ping, Purpose::Ping(Some(query)));
            }
            Command::FindNode(target) => {
                self.start_table_lookup(now, query, target, LookupKind::FindNode)
            }
            Command::GetPeers(info_hash) => self.start_table_lookup(
                now,
                query,
                info_hash,
                LookupKind::GetPeers {
                    announce_port: None,
                },
            ),
            Command::Announce { info_hash, port } => {
                self.own_announces.insert(info_hash, (port, now));
                self.start_table_lookup(
                    now,
                    query,
                    info_hash,
                    LookupKind::GetPeers {
                        announce_port: Some(port),
                    },
                );
            }
            Command::StopAnnouncing(info_hash) => {
                self.own_announces.remove(&info_hash);
                self.events.push_back(Event::LookupDone {
                    query,
                    result: LookupResult::default(),
                });
            }
            Command::GetImmutable(target) => self.start_table_lookup(
                now,
                query,
                target,
                LookupKind::Get {
                    key: None,
                    salt: Vec::new(),
                    seq_min: None,
                    put: None,
                },
            ),
            Command::GetMutable { key, salt, seq_min } => {
                let target = mutable_target(&key, &salt);
                self.start_table_lookup(
                    now,
                    query,
                    target,
                    LookupKind::Get {
                        key: Some(key),
                        salt,
                        seq_min,
                        put: None,
                    },
                );
            }
            Command::Put { item, cas } => {
                let target = item.target();
                let (key, salt) = match &item {
                    Item::Immutable(_) => (None, Vec::new()),
                    Item::Mutable(m) => (Some(m.key), m.salt.clone()),
                };
                self.own_items.insert(target, (item.clone(), now));
                self.start_table_lookup(
                    now,
                    query,
                    target,
                    LookupKind::Get {
                        key,
                        salt,
                        seq_min: None,
                        put: Some(Box::new((item, cas))),
                    },
                );
            }
            Command::SampleInfohashes { addr, target } => {
                let method = Method::SampleInfohashes { target };
                self.send_query(now, addr, None, method, Purpose::Sample(query));
            }
        }
        query
    }

    /// Sends one query; false when the pending table is full.
    fn send_query(
        &mut self,
        now: Timestamp,
        addr: SocketAddr,
        expected_id: Option<NodeId>,
        method: Method,
        purpose: Purpose,
    ) -> bool {
        if self.pending.len() >= self.config.pending_queries_max {
            if let Purpose::Ping(Some(query)) | Purpose::Sample(query) = purpose {
                self.events.push_back(Event::Failed { query, error: None });
            }
            return false;
        }
        let mut tid = self.next_transaction;
        while self.pending.contains_key(&tid) {
            tid = tid.wrapping_add(1);
        }
        self.next_transaction = tid.wrapping_add(1);
        let want = Want {
            v4: !self.config.ipv6,
            v6: self.config.ipv6,
        };
        let message = Message {
            transaction_id: tid.to_be_bytes().to_vec(),
            version: Some(self.config.version.to_vec()),
            requester_ip: None,
            read_only: self.config.read_only,
            body: Body::Query(Query {
                id: self.id(),
                method,
                want,
            }),
        };
        self.transmits.push_back(Transmit {
            to: addr,
            bytes: message.encode(),
        });
        let soft = now + self.rtt.timeout();
        self.pending.insert(
            tid,
            Pending {
                addr,
                expected_id,
                sent: now,
                deadline: soft,
                hard_deadline: now + QUERY_HARD_TIMEOUT,
                slow: false,
                purpose,
            },
        );
        self.deadlines.insert((soft, tid));
        true
    }

    /// A datagram arrived from `from`.
    pub fn handle_input(&mut self, now: Timestamp, from: SocketAddr, datagram: &[u8]) {
        if !self.limiter.allow(now, from.ip()) {
            return;
        }
        let message = match Message::decode(datagram) {
            Ok(m) => m,
            Err(err) => {
                self.stats.dropped_invalid += 1;
                if let (true, Some(tid)) = (err.was_query, err.transaction_id) {
                    if !self.config.read_only {
                        self.send_error(from, tid, krpc::error_code::PROTOCOL, err.reason);
                    }
                }
                return;
            }
        };
        match message.body {
            Body::Query(query) => {
                if self.config.read_only {
                    return;
                }
                if !message.read_only {
                    let node = NodeInfo {
                        id: query.id,
                        addr: from,
                    };
                    self.offer_to_table(now, node, false);
                }
                self.answer_query(now, from, message.transaction_id, query);
            }
            Body::Response(response) => {
                if let Some(ip) = message.requester_ip {
                    self.external_addr = Some(ip);
                }
                self.handle_reply(now, from, &message.transaction_id, Ok(response));
            }
            Body::Error(error) => self.handle_reply(now, from, &message.transaction_id, Err(error)),
        }
    }

    fn offer_to_table(&mut self, now: Timestamp, node: NodeInfo, responded: bool) {
        if node.addr.is_ipv6() != self.config.ipv6 {
            return;
        }
        if let routing_table::Insert::PingNeeded(old) = self.table.heard_from(now, node, responded)
        {
            self.send_query(
                now,
                old.addr,
                Some(old.id),
                Method::Ping,
                Purpose::Ping(None),
            );
        }
    }

    fn handle_reply(
        &mut self,
        now: Timestamp,
        from: SocketAddr,
        tid: &[u8],
        reply: Result<Response, ErrorReply>,
    ) {
        let key = match <[u8; 2]>::try_from(tid) {
            Ok(bytes) => u16::from_be_bytes(bytes),
            Err(_) => {
                self.stats.dropped_invalid += 1;
                return;
            }
        };
        // A reply must come from the address we asked: forged transaction ids are dropped.
        if self.pending.get(&key).is_none_or(|p| p.addr != from) {
            self.stats.dropped_invalid += 1;
            return;
        }
        let pending = self.pending.remove(&key).expect("checked just above");
        self.deadlines.remove(&(pending.deadline, key));
        let response = match reply {
            Ok(r) if r.id == self.id() => Err(None),
            Ok(r) if pending.expected_id.is_some_and(|id| id != r.id) => {
                // The node changed its id: drop it from the table, as libtorrent does.
                if let Some(id) = pending.expected_id {
                    self.table.remove(&id);
                }
                Err(None)
            }
            Ok(r) => Ok(r),
            Err(e) => Err(Some(e)),
        };
        match response {
            Ok(response) => {
                if !pending.slow {
                    self.rtt.sample(now.saturating_since(pending.sent));
                }
                let node = NodeInfo {
                    id: response.id,
                    addr: from,
                };
                self.offer_to_table(now, node, true);
                self.on_reply(now, pending.purpose, node, response);
            }
            Err(error) => self.on_failure(now, pending, error),
        }
    }

    fn on_reply(&mut self, now: Timestamp, purpose: Purpose, node: NodeInfo, response: Response) {
        match purpose {
            Purpose::Ping(Some(query)) => self.events.push_back(Event::Pong { query, node }),
            Purpose::Ping(None) => {}
            Purpose::Sample(query) => self.events.push_back(Event::Samples {
                query,
                node,
                samples: response.samples.unwrap_or_default(),
                num: response.num.unwrap_or(0),
                interval: response.interval.unwrap_or(0),
                nodes: self.usable_nodes(response.nodes, response.nodes6),
            }),
            Purpose::Store(query) => self.on_store_answered(now, query, true),
            Purpose::Lookup(query) => self.on_lookup_reply(now, query, node, response),
        }
    }

    /// The nodes of a reply that we could reach and may use (own family, not us, BEP 42 policy).
    fn usable_nodes(&self, nodes: Vec<NodeInfo>, nodes6: Vec<NodeInfo>) -> Vec<NodeInfo> {
        let own = self.id();
        let list = if self.config.ipv6 { nodes6 } else { nodes };
        list.into_iter()
            .filter(|n| n.id != own && n.addr.port() != 0 && !n.addr.ip().is_unspecified())
            .filter(|n| {
                self.config.bep42 != Bep42Policy::Require || bep42_is_valid(&n.id, n.addr.ip())
            })
            .collect()
    }

    fn on_failure(&mut self, now: Timestamp, pending: Pending, error: Option<ErrorReply>) {
        if let Some(id) = pending.expected_id {
            if error.is_none() {
                self.table.failed(now, &id);
            }
        }
        match pending.purpose {
            Purpose::Ping(Some(query)) | Purpose::Sample(query) => {
                self.events.push_back(Event::Failed { query, error })
            }
            Purpose::Ping(None) => {}
            Purpose::Store(query) => self.on_store_answered(now, query, false),
            Purpose::Lookup(query) => {
                self.update_lookup(now, query, |lookup| lookup.on_failure(pending.addr))
            }
        }
    }

    /// The time from [`Dht::poll_timeout`] has come.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        while let Some(&(deadline, tid)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_first();
            let Some(pending) = self.pending.get_mut(&tid) else {
                continue;
            };
            if !pending.slow && pending.hard_deadline > now {
                // Short timeout: free the lookup's slot, keep listening until the hard timeout.
                pending.slow = true;
                pending.deadline = pending.hard_deadline;
                let (addr, hard, purpose) =
                    (pending.addr, pending.hard_deadline, pending.purpose.clone());
                self.deadlines.insert((hard, tid));
                if let Purpose::Lookup(query) = purpose {
                    self.update_lookup(now, query, |lookup| lookup.on_slow(addr));
                }
                continue;
            }
            let pending = self.pending.remove(&tid).expect("present: checked above");
            self.rtt.timed_out();
            self.on_failure(now, pending, None);
        }
        if now >= self.next_maintenance {
            self.next_maintenance = now + MAINTENANCE_INTERVAL;
            self.maintain(now);
        }
    }

    fn maintain(&mut self, now: Timestamp) {
        self.tokens.rotate_if_due(now, &mut self.rng);
        self.peers.expire(now);
        self.items.expire(now);
        for node in self.table.nodes_to_ping(now, PINGS_PER_TICK_MAX) {
            self.send_query(
                now,
                node.addr,
                Some(node.id),
                Method::Ping,
                Purpose::Ping(None),
            );
        }
        let targets = self.table.buckets_to_refresh(now, &mut self.rng);
        for target in targets.into_iter().take(REFRESHES_PER_TICK_MAX) {
            let query = QueryId(self.next_query);
            self.next_query += 1;
            self.start_table_lookup(now, query, target, LookupKind::Refresh);
        }
        let due_announces: Vec<(NodeId, Option<u16>)> = self
            .own_announces
            .iter()
            .filter(|(_, (_, at))| now.saturating_since(*at) >= REANNOUNCE_INTERVAL)
            .map(|(ih, (port, _))| (*ih, *port))
            .collect();
        for (info_hash, port) in due_announces {
            self.command(now, Command::Announce { info_hash, port });
        }
        let due_items: Vec<Item> = self
            .own_items
            .values()
            .filter(|(_, at)| now.saturating_since(*at) >= REPUBLISH_ITEMS_INTERVAL)
            .map(|(item, _)| item.clone())
            .collect();
        for item in due_items {
            self.command(now, Command::Put { item, cas: None });
        }
    }

    fn send_error(&mut self, to: SocketAddr, tid: Vec<u8>, code: i64, message: &str) {
        let reply = Message {
            transaction_id: tid,
            version: Some(self.config.version.to_vec()),
            requester_ip: None,
            read_only: false,
            body: Body::Error(ErrorReply {
                code,
                message: message.to_string(),
            }),
        };
        self.transmits.push_back(Transmit {
            to,
            bytes: reply.encode(),
        });
    }
}
