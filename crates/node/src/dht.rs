//! The DHT driver: one UDP socket and one task that runs the sans-IO [`::dht::Dht`] core (BEP 5,
//! 32, 42, 43, 44, 51), with [`DhtHandle`] for the rest of the node to talk to it.
//!
//! The task owns the socket, the core and the clock. It feeds the core datagrams, timeouts and
//! commands, sends what the core wants sent, and routes the core's events to the callers that
//! asked. The routing table is saved to a file (if configured) every few minutes and on exit, and
//! restored at start, so a restarted node rejoins without the public routers.
//!
//! Implementation notes: callers reach the task through a bounded channel; each request carries
//! a oneshot for its answer. Bootstrap host names are resolved in the caller's task, never in
//! the actor, so a slow DNS server cannot stall the DHT.

pub mod peer_finder;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ::dht::{
    Command, Config, Dht, ErrorReply, Event, Item, LookupResult, MutableItem, NodeId, NodeInfo,
    QueryId, Stats,
};
use sansio::Rng;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::clock::Clock;

/// Public routers, used only as the default bootstrap of `spore dht node` on the real Internet.
pub const PUBLIC_ROUTERS: [&str; 2] = ["router.bittorrent.com:6881", "dht.transmissionbt.com:6881"];
/// How often the routing table is written to the state file.
const SAVE_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// Requests queued for the task before callers wait.
const REQUESTS_QUEUE_MAX: usize = 64;
/// Peer batches buffered for a slow get_peers reader before batches are dropped.
const PEER_BATCHES_QUEUE_MAX: usize = 64;

/// Errors of the DHT driver.
#[derive(Debug, thiserror::Error)]
pub enum DhtError {
    /// The socket could not be opened or used.
    #[error("DHT socket error: {0}")]
    Io(#[from] std::io::Error),
    /// The DHT task has stopped.
    #[error("the DHT task has stopped")]
    Stopped,
    /// The node did not answer.
    #[error("no answer from {0}")]
    NoAnswer(SocketAddr),
    /// The node answered with a KRPC error.
    #[error("{addr} answered with error {code}: {message}")]
    Remote {
        /// Who answered.
        addr: SocketAddr,
        /// The KRPC error code.
        code: i64,
        /// The error message.
        message: String,
    },
    /// A bootstrap address that does not resolve.
    #[error("cannot resolve bootstrap address {0}")]
    Resolve(String),
    /// A value or key the DHT rejects.
    #[error(transparent)]
    Item(#[from] ::dht::Error),
    /// The saved state file could not be read.
    #[error("cannot read DHT state file {path}: {source}")]
    State {
        /// The file.
        path: PathBuf,
        /// Why.
        source: ::dht::Error,
    },
}

/// How to run a DHT node.
#[derive(Clone, Debug)]
pub struct DhtOptions {
    /// Address to bind the UDP socket to.
    pub bind: SocketAddr,
    /// The core's settings.
    pub core: Config,
    /// Where to save the routing table (and read it at start).
    pub state_file: Option<PathBuf>,
    /// Seed of the core's random generator; `None` draws one.
    pub seed: Option<u64>,
}

impl DhtOptions {
    /// Options binding `bind`, with default core settings and no state file.
    pub fn new(bind: SocketAddr) -> DhtOptions {
        DhtOptions {
            bind,
            core: Config::default(),
            state_file: None,
            seed: None,
        }
    }
}

/// A BEP 51 reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SampleReply {
    /// Who answered.
    pub node: NodeInfo,
    /// Sampled info-hashes.
    pub samples: Vec<NodeId>,
    /// How many info-hashes the node stores.
    pub num: i64,
    /// Seconds before asking it again.
    pub interval: i64,
    /// Nodes near the target.
    pub nodes: Vec<NodeInfo>,
}

enum Waiter {
    Lookup(
        oneshot::Sender<LookupResult>,
        Option<mpsc::Sender<Vec<SocketAddr>>>,
    ),
    Ping(SocketAddr, oneshot::Sender<Result<NodeInfo, DhtError>>),
    Sample(SocketAddr, oneshot::Sender<Result<SampleReply, DhtError>>),
}

enum Request {
    Lookup(
        Command,
        Option<mpsc::Sender<Vec<SocketAddr>>>,
        oneshot::Sender<LookupResult>,
    ),
    Ping(SocketAddr, oneshot::Sender<Result<NodeInfo, DhtError>>),
    Sample(
        SocketAddr,
        NodeId,
        oneshot::Sender<Result<SampleReply, DhtError>>,
    ),
    Stats(oneshot::Sender<Stats>),
    Table(oneshot::Sender<Vec<NodeInfo>>),
}

/// A handle to a running DHT node; cheap to clone. The node stops when every handle is dropped.
#[derive(Clone, Debug)]
pub struct DhtHandle {
    requests: mpsc::Sender<Request>,
    local_addr: SocketAddr,
    id: NodeId,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Request")
    }
}

impl DhtHandle {
    /// Binds the socket, restores saved state and starts the node's task.
    pub async fn start(options: DhtOptions) -> Result<DhtHandle, DhtError> {
        let socket = UdpSocket::bind(options.bind).await?;
        let local_addr = socket.local_addr()?;
        let clock = Clock::start();
        let rng = Rng::from_seed(options.seed.unwrap_or_else(crate::random_seed));
        let mut core_config = options.core.clone();
        core_config.ipv6 = local_addr.is_ipv6();
        let saved = match &options.state_file {
            Some(path) => tokio::fs::read(path).await.ok(),
            None => None,
        };
        let core = match saved {
            Some(bytes) => {
                Dht::restore(core_config, clock.now(), rng, &bytes).map_err(|source| {
                    DhtError::State {
                        path: options.state_file.clone().unwrap_or_default(),
                        source,
                    }
                })?
            }
            None => Dht::new(core_config, clock.now(), rng),
        };
        let id = core.id();
        let (requests, inbox) = mpsc::channel(REQUESTS_QUEUE_MAX);
        let task = Task {
            socket,
            core,
            clock,
            inbox,
            waiters: BTreeMap::new(),
            state_file: options.state_file,
        };
        tokio::spawn(task.run());
        Ok(DhtHandle {
            requests,
            local_addr,
            id,
        })
    }

    /// The bound UDP address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Our node id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    async fn lookup(
        &self,
        command: Command,
        peers: Option<mpsc::Sender<Vec<SocketAddr>>>,
    ) -> Result<LookupResult, DhtError> {
        let (tx, rx) = oneshot::channel();
        self.requests
            .send(Request::Lookup(command, peers, tx))
            .await
            .map_err(|_| DhtError::Stopped)?;
        rx.await.map_err(|_| DhtError::Stopped)
    }

    /// Joins the DHT through these addresses (and any saved nodes); returns when the lookup of
    /// our own id ends.
    pub async fn bootstrap(&self, addrs: Vec<SocketAddr>) -> Result<LookupResult, DhtError> {
        self.lookup(Command::Bootstrap(addrs), None).await
    }

    /// Pings one node.
    pub async fn ping(&self, addr: SocketAddr) -> Result<NodeInfo, DhtError> {
        let (tx, rx) = oneshot::channel();
        self.requests
            .send(Request::Ping(addr, tx))
            .await
            .map_err(|_| DhtError::Stopped)?;
        rx.await.map_err(|_| DhtError::Stopped)?
    }

    /// The K nodes closest to `target`.
    pub async fn find_node(&self, target: NodeId) -> Result<LookupResult, DhtError> {
        self.lookup(Command::FindNode(target), None).await
    }

    /// Starts a get_peers lookup whose peers arrive on the returned channel as nodes report them;
    /// the channel closes when the lookup ends.
    pub async fn get_peers_stream(
        &self,
        info_hash: NodeId,
    ) -> Result<mpsc::Receiver<Vec<SocketAddr>>, DhtError> {
        let (peers_tx, peers_rx) = mpsc::channel(PEER_BATCHES_QUEUE_MAX);
        let (tx, _rx) = oneshot::channel();
        self.requests
            .send(Request::Lookup(
                Command::GetPeers(info_hash),
                Some(peers_tx),
                tx,
            ))
            .await
            .map_err(|_| DhtError::Stopped)?;
        Ok(peers_rx)
    }

    /// All peers a get_peers lookup finds (deduplicated, in order of arrival).
    pub async fn get_peers(&self, info_hash: NodeId) -> Result<Vec<SocketAddr>, DhtError> {
        let (peers_tx, mut peers_rx) = mpsc::channel(PEER_BATCHES_QUEUE_MAX);
        let lookup = self.lookup(Command::GetPeers(info_hash), Some(peers_tx));
        let collect = async {
            let mut seen = BTreeSet::new();
            let mut peers = Vec::new();
            while let Some(batch) = peers_rx.recv().await {
                for peer in batch {
                    if seen.insert(peer) {
                        peers.push(peer);
                    }
                }
            }
            peers
        };
        let (result, peers) = tokio::join!(lookup, collect);
        result.map(|_| peers)
    }

    /// Announces that we have `info_hash` on `port` (`None`: the DHT socket's port), and keeps
    /// re-announcing it while the node runs.
    pub async fn announce(
        &self,
        info_hash: NodeId,
        port: Option<u16>,
    ) -> Result<LookupResult, DhtError> {
        self.lookup(Command::Announce { info_hash, port }, None)
            .await
    }

    /// Stores an immutable item (a bencoded value) and returns its target.
    pub async fn put_immutable(&self, value: Vec<u8>) -> Result<(NodeId, LookupResult), DhtError> {
        ::dht::check_value(&value)?;
        let target = ::dht::immutable_target(&value);
        let result = self
            .lookup(
                Command::Put {
                    item: Item::Immutable(value),
                    cas: None,
                },
                None,
            )
            .await?;
        Ok((target, result))
    }

    /// Fetches an immutable item's bencoded value.
    pub async fn get_immutable(&self, target: NodeId) -> Result<Option<Vec<u8>>, DhtError> {
        let result = self.lookup(Command::GetImmutable(target), None).await?;
        Ok(match result.item {
            Some(Item::Immutable(value)) => Some(value),
            _ => None,
        })
    }

    /// Stores a signed mutable item (with an optional compare-and-swap seq).
    pub async fn put_mutable(
        &self,
        item: MutableItem,
        cas: Option<i64>,
    ) -> Result<LookupResult, DhtError> {
        item.verify()?;
        self.lookup(
            Command::Put {
                item: Item::Mutable(item),
                cas,
            },
            None,
        )
        .await
    }

    /// Fetches the newest mutable item under `key` and `salt`.
    pub async fn get_mutable(
        &self,
        key: [u8; 32],
        salt: Vec<u8>,
        seq_min: Option<i64>,
    ) -> Result<Option<MutableItem>, DhtError> {
        let result = self
            .lookup(Command::GetMutable { key, salt, seq_min }, None)
            .await?;
        Ok(match result.item {
            Some(Item::Mutable(item)) => Some(item),
            _ => None,
        })
    }

    /// BEP 51: asks one node for a sample of the info-hashes it stores.
    pub async fn sample(&self, addr: SocketAddr, target: NodeId) -> Result<SampleReply, DhtError> {
        let (tx, rx) = oneshot::channel();
        self.requests
            .send(Request::Sample(addr, target, tx))
            .await
            .map_err(|_| DhtError::Stopped)?;
        rx.await.map_err(|_| DhtError::Stopped)?
    }

    /// The core's counters.
    pub async fn stats(&self) -> Result<Stats, DhtError> {
        let (tx, rx) = oneshot::channel();
        self.requests
            .send(Request::Stats(tx))
            .await
            .map_err(|_| DhtError::Stopped)?;
        rx.await.map_err(|_| DhtError::Stopped)
    }

    /// The nodes in the routing table.
    pub async fn routing_table(&self) -> Result<Vec<NodeInfo>, DhtError> {
        let (tx, rx) = oneshot::channel();
        self.requests
            .send(Request::Table(tx))
            .await
            .map_err(|_| DhtError::Stopped)?;
        rx.await.map_err(|_| DhtError::Stopped)
    }
}

/// Resolves `HOST:PORT` strings to addresses of the family of `local` (IPv4 or IPv6).
pub async fn resolve_bootstrap(
    hosts: &[String],
    local: SocketAddr,
) -> Result<Vec<SocketAddr>, DhtError> {
    let mut out = Vec::new();
    for host in hosts {
        let addrs = tokio::net::lookup_host(host.as_str())
            .await
            .map_err(|_| DhtError::Resolve(host.clone()))?;
        let before = out.len();
        out.extend(addrs.filter(|a| a.is_ipv6() == local.is_ipv6()));
        if out.len() == before {
            return Err(DhtError::Resolve(host.clone()));
        }
    }
    Ok(out)
}

struct Task {
    socket: UdpSocket,
    core: Dht,
    clock: Clock,
    inbox: mpsc::Receiver<Request>,
    waiters: BTreeMap<QueryId, Waiter>,
    state_file: Option<PathBuf>,
}

impl Task {
    async fn run(mut self) {
        let mut buf = vec![0u8; ::dht::krpc::DATAGRAM_BYTES_MAX + 1];
        let mut next_save = Instant::now() + SAVE_INTERVAL;
        loop {
            let wake = self
                .core
                .poll_timeout()
                .map_or(next_save, |t| self.clock.instant(t))
                .min(next_save);
            tokio::select! {
                received = self.socket.recv_from(&mut buf) => {
                    match received {
                        Ok((len, from)) => self.core.handle_input(self.clock.now(), from, &buf[..len]),
                        Err(err) => tracing::debug!(%err, "DHT socket receive error"),
                    }
                }
                request = self.inbox.recv() => match request {
                    Some(request) => self.handle_request(request),
                    None => break,
                },
                () = tokio::time::sleep_until(wake) => {
                    self.core.handle_timeout(self.clock.now());
                    if Instant::now() >= next_save {
                        next_save = Instant::now() + SAVE_INTERVAL;
                        self.save().await;
                    }
                }
            }
            self.drain().await;
        }
        self.save().await;
    }

    fn handle_request(&mut self, request: Request) {
        let now = self.clock.now();
        match request {
            Request::Lookup(command, peers, reply) => {
                let query = self.core.command(now, command);
                self.waiters.insert(query, Waiter::Lookup(reply, peers));
            }
            Request::Ping(addr, reply) => {
                let query = self.core.command(now, Command::Ping(addr));
                self.waiters.insert(query, Waiter::Ping(addr, reply));
            }
            Request::Sample(addr, target, reply) => {
                let query = self
                    .core
                    .command(now, Command::SampleInfohashes { addr, target });
                self.waiters.insert(query, Waiter::Sample(addr, reply));
            }
            Request::Stats(reply) => {
                let _ = reply.send(self.core.stats());
            }
            Request::Table(reply) => {
                let nodes = self.core.routing_table().nodes().map(|e| e.node).collect();
                let _ = reply.send(nodes);
            }
        }
    }

    /// Sends what the core wants sent and hands its events to the waiting callers.
    async fn drain(&mut self) {
        while let Some(transmit) = self.core.poll_transmit() {
            if let Err(err) = self.socket.send_to(&transmit.bytes, transmit.to).await {
                tracing::debug!(%err, to = %transmit.to, "DHT send failed");
            }
        }
        while let Some(event) = self.core.poll_event() {
            self.dispatch(event);
        }
    }

    fn dispatch(&mut self, event: Event) {
        match event {
            Event::Peers { query, peers } => {
                if let Some(Waiter::Lookup(_, Some(stream))) = self.waiters.get(&query) {
                    // A reader that falls behind loses batches, never stalls the DHT.
                    let _ = stream.try_send(peers);
                }
            }
            Event::ItemFound { .. } => {}
            Event::LookupDone { query, result } => {
                if let Some(Waiter::Lookup(reply, _)) = self.waiters.remove(&query) {
                    let _ = reply.send(result);
                }
            }
            Event::Pong { query, node } => {
                if let Some(Waiter::Ping(_, reply)) = self.waiters.remove(&query) {
                    let _ = reply.send(Ok(node));
                }
            }
            Event::Samples {
                query,
                node,
                samples,
                num,
                interval,
                nodes,
            } => {
                if let Some(Waiter::Sample(_, reply)) = self.waiters.remove(&query) {
                    let _ = reply.send(Ok(SampleReply {
                        node,
                        samples,
                        num,
                        interval,
                        nodes,
                    }));
                }
            }
            Event::Failed { query, error } => match self.waiters.remove(&query) {
                Some(Waiter::Ping(addr, reply)) => {
                    let _ = reply.send(Err(failure(addr, error)));
                }
                Some(Waiter::Sample(addr, reply)) => {
                    let _ = reply.send(Err(failure(addr, error)));
                }
                _ => {}
            },
        }
    }

    async fn save(&self) {
        let Some(path) = &self.state_file else {
            return;
        };
        let temp = path.with_extension("tmp");
        let bytes = self.core.save_state();
        let written = async {
            tokio::fs::write(&temp, &bytes).await?;
            tokio::fs::rename(&temp, path).await
        };
        if let Err(err) = written.await {
            tracing::warn!(%err, path = %path.display(), "cannot save the DHT routing table");
        }
    }
}

fn failure(addr: SocketAddr, error: Option<ErrorReply>) -> DhtError {
    match error {
        Some(e) => DhtError::Remote {
            addr,
            code: e.code,
            message: e.message,
        },
        None => DhtError::NoAnswer(addr),
    }
}
