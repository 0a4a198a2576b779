//! The tracker server: drives [`tracker::server::Tracker`] with a UDP socket (BEP 15), an HTTP
//! listener (BEP 3 announce, BEP 48 scrape, the JSON API and the web page; `http_server`) and a
//! timer, and keeps the searchable index in SQLite ([`store`]).

pub mod api;
mod http_server;
pub mod store;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use sansio::Rng;
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;
use tracker::index::{FileEntry, TorrentRecord};
use tracker::server::{Config, Tracker};
use tracker::InfoHash;

use self::store::{Store, StoreError};
use crate::clock::Clock;

/// Most tasks serving one socket.
const SOCKET_WORKERS_MAX: usize = 8;

/// How to run a tracker.
#[derive(Clone, Debug, Default)]
pub struct TrackerOptions {
    /// Where to serve HTTP (announce, scrape, API, page); `None` for no HTTP.
    pub http: Option<SocketAddr>,
    /// Where to serve UDP announces; `None` for no UDP.
    pub udp: Option<SocketAddr>,
    /// The index database file; `None` keeps the index in memory.
    pub db: Option<PathBuf>,
    /// The core's settings.
    pub config: Config,
    /// Seed for the core's randomness (connection-id secrets, peer selection).
    pub seed: u64,
}

/// Why a tracker could not start.
#[derive(Debug, thiserror::Error)]
pub enum TrackerError {
    /// A socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The index database could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// State shared by the sockets' tasks.
pub(crate) struct Shared {
    pub(crate) clock: Clock,
    pub(crate) core: Mutex<Tracker>,
    pub(crate) store: Mutex<Store>,
}

impl Shared {
    /// A tracker with default settings and an in-memory index, for unit tests.
    #[cfg(test)]
    pub(crate) fn for_tests() -> Shared {
        let clock = Clock::start();
        Shared {
            clock,
            core: Mutex::new(Tracker::new(
                Config::default(),
                Rng::from_seed(1),
                clock.now(),
            )),
            store: Mutex::new(Store::open(None).expect("an in-memory database")),
        }
    }

    pub(crate) fn core(&self) -> MutexGuard<'_, Tracker> {
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running tracker; dropping it (or [`RunningTracker::shutdown`]) stops it.
pub struct RunningTracker {
    /// The bound HTTP address, if serving HTTP.
    pub http_addr: Option<SocketAddr>,
    /// The bound UDP address, if serving UDP.
    pub udp_addr: Option<SocketAddr>,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningTracker {
    /// Stops every task and waits for them, so the database is closed when this returns.
    pub async fn shutdown(mut self) {
        for task in &self.tasks {
            task.abort();
        }
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
    }

    /// Runs until one of the server tasks ends (they only end on a fatal socket error).
    pub async fn wait(mut self) {
        if let Some(first) = self.tasks.first_mut() {
            let _ = first.await;
        }
    }
}

impl Drop for RunningTracker {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Binds the sockets and starts serving. Ports may be 0; the bound ones are reported.
pub async fn start(options: TrackerOptions) -> Result<RunningTracker, TrackerError> {
    let clock = Clock::start();
    let store = Store::open(options.db.as_deref())?;
    let core = Tracker::new(options.config, Rng::from_seed(options.seed), clock.now());
    let shared = Arc::new(Shared {
        clock,
        core: Mutex::new(core),
        store: Mutex::new(store),
    });
    let mut running = RunningTracker {
        http_addr: None,
        udp_addr: None,
        tasks: Vec::new(),
    };
    if let Some(addr) = options.udp {
        let socket = UdpSocket::bind(addr)
            .await
            .map_err(|source| TrackerError::Bind { addr, source })?;
        running.udp_addr = socket.local_addr().ok();
        // Several tasks on one socket: the core's lock is held only while a datagram is
        // handled, so receiving and sending run on every core.
        let socket = Arc::new(socket);
        for _ in 0..workers() {
            running
                .tasks
                .push(tokio::spawn(serve_udp(socket.clone(), shared.clone())));
        }
    }
    if let Some(addr) = options.http {
        let listener = std::net::TcpListener::bind(addr)
            .map_err(|source| TrackerError::Bind { addr, source })?;
        running.http_addr = listener.local_addr().ok();
        let router = api::router(shared.clone());
        let acceptors = http_server::spawn(listener, &shared, &router, workers())
            .map_err(|source| TrackerError::Bind { addr, source })?;
        running.tasks.extend(acceptors);
    }
    running.tasks.push(tokio::spawn(run_timer(shared)));
    Ok(running)
}

/// Tasks per socket: one per core, at most [`SOCKET_WORKERS_MAX`].
fn workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(SOCKET_WORKERS_MAX))
}

async fn serve_udp(socket: Arc<UdpSocket>, shared: Arc<Shared>) {
    let mut buf = vec![0u8; tracker::udp::PACKET_BYTES_MAX];
    loop {
        let (len, from) = match socket.recv_from(&mut buf).await {
            Ok(got) => got,
            Err(err) => {
                // ICMP errors from an earlier send surface here on some systems: keep serving.
                tracing::debug!("tracker UDP receive: {err}");
                continue;
            }
        };
        let reply = shared
            .core()
            .handle_udp(shared.clock.now(), from, &buf[..len]);
        if let Some(reply) = reply {
            if let Err(err) = socket.send_to(&reply, from).await {
                tracing::debug!("tracker UDP send to {from}: {err}");
            }
        }
    }
}

async fn run_timer(shared: Arc<Shared>) {
    loop {
        let (now, due) = {
            let core = shared.core();
            (shared.clock.now(), core.poll_timeout())
        };
        let wait = Duration::from_micros(due.as_micros().saturating_sub(now.as_micros()));
        tokio::time::sleep(wait.max(Duration::from_millis(10))).await;
        shared.core().handle_timeout(shared.clock.now());
    }
}

/// The index record for a parsed torrent: name, files (pad files left out), sizes,
/// info-hashes and magnet link.
pub fn record_from_torrent(torrent: &metainfo::Torrent) -> TorrentRecord {
    let info = &torrent.info;
    let files: Vec<FileEntry> = info
        .files()
        .iter()
        .filter(|f| !f.is_pad())
        .map(|f| FileEntry {
            path: f.display_path(),
            size: f.length,
        })
        .collect();
    let hashes = info.info_hashes();
    TorrentRecord {
        info_hash_v1: hashes.v1.map(|h| InfoHash(h.0)),
        info_hash_v2: hashes.v2.map(|h| h.0),
        name: info.name().to_string(),
        total_size: files.iter().map(|f| f.size).sum(),
        files,
        magnet: torrent.magnet().to_string(),
    }
}
