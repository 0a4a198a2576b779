//! The swarm driver: downloads and seeds one torrent over real sockets (BEP 3/6/9/10, and
//! BEP 11 peer exchange: peers that connected peers tell us of are dialled like discovered ones).
//!
//! [`run`] opens the storage (keeping every verified piece: resume data when the files are
//! unchanged, else a full recheck), fetches the metadata first for a magnet link (BEP 9), then
//! runs the [`::swarm::Swarm`] core in one task: one task per peer connection feeds decoded
//! messages in, blocks are verified in memory on the blocking pool and only verified pieces are
//! written, so a crash (even kill -9) never leaves unverified data that counts.
//!
//! Implementation notes: peer tasks and the torrent task talk over bounded channels; a peer that
//! cannot keep up with its outbox is dropped rather than buffered without bound.

mod block_pool;
mod disk;
mod metadata;
mod peer_book;
mod peer_conn;
mod torrent_task;
pub mod transport;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use metainfo::{InfoHashes, Magnet, Torrent};
use tokio::sync::{mpsc, watch};

use crate::clock::Clock;

pub use ::swarm::Progress;

/// What to download or seed.
#[derive(Clone, Debug)]
pub enum Source {
    /// A parsed .torrent file.
    Torrent(Box<Torrent>),
    /// A magnet link: the metadata comes from peers (BEP 9).
    Magnet(Box<Magnet>),
}

/// How to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Download directory (the torrent's files go under it).
    pub out_dir: PathBuf,
    /// Peers to connect to.
    pub peers: Vec<SocketAddr>,
    /// Address to accept peers on (`None`: no listener).
    pub listen: Option<SocketAddr>,
    /// Keep seeding after the download completes (until shut down).
    pub seed_after: bool,
    /// Local address for outgoing connections (one loopback address per peer in tests).
    pub local_ip: Option<IpAddr>,
    /// Where resume data is kept (`None`: no resume file; a full recheck at start).
    pub resume_file: Option<PathBuf>,
    /// Seed for the core's random choices.
    pub seed: u64,
    /// Seeding existing data: never create or resize files, and fail unless every piece checks.
    pub seed_only: bool,
    /// Streaming: fetch pieces in order from the first one missing (for playback while
    /// downloading) rather than rarest first. Costs the swarm some diversity; off by default.
    pub sequential: bool,
    /// For a magnet link: how long to wait for the metadata, and then again for the piece
    /// layers ([`METADATA_TIMEOUT_DEFAULT`] unless a caller knows better).
    pub metadata_timeout: Duration,
}

/// The usual wait for a magnet link's metadata (and for its piece layers).
pub const METADATA_TIMEOUT_DEFAULT: Duration = Duration::from_secs(60);

/// Where the run is: for a progress display, and for announcers (tracker, DHT) that feed
/// peers back through the `discovered` channel of [`run`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    /// What is happening.
    pub phase: Phase,
    /// The torrent's identities (known from the start, also for a magnet link).
    pub info_hashes: InfoHashes,
    /// Transfer counters (`bytes_downloaded`, `bytes_uploaded`, `bytes_have`, `bytes_total`).
    pub progress: Progress,
    /// Where the listener is bound (the port to announce), once bound.
    pub listen_addr: Option<SocketAddr>,
    /// While [`Phase::Checking`] hashes data already on disk: how much of it is done (of
    /// `progress.bytes_total`).
    pub bytes_checked: u64,
}

impl Status {
    /// Bytes still missing (what a tracker announce calls `left`); unknown totals count as 0
    /// until the metadata is there.
    pub fn bytes_left(&self) -> u64 {
        self.progress
            .bytes_total
            .saturating_sub(self.progress.bytes_have)
    }

    /// Whether every piece is verified (false until the metadata is known).
    pub fn is_complete(&self) -> bool {
        self.progress.piece_count > 0 && self.progress.pieces_have == self.progress.piece_count
    }

    /// The port peers should connect to, once the listener is bound.
    pub fn listen_port(&self) -> Option<u16> {
        self.listen_addr.map(|a| a.port())
    }
}

/// Stages of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Phase {
    /// Opening files and checking existing data.
    #[default]
    Checking,
    /// Fetching the info dictionary from peers.
    FetchingMetadata,
    /// Downloading.
    Downloading,
    /// Complete and serving.
    Seeding,
}

/// The outcome of a run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    /// The torrent's name.
    pub name: String,
    /// Whether every piece is verified.
    pub complete: bool,
    /// Pieces already verified on disk at start.
    pub pieces_at_start: u32,
    /// Pieces in the torrent.
    pub piece_count: u32,
    /// Payload bytes received.
    pub bytes_downloaded: u64,
    /// Payload bytes sent.
    pub bytes_uploaded: u64,
    /// Peers banned for corrupt data.
    pub peers_banned: Vec<IpAddr>,
    /// Pieces that failed their hash check.
    pub hash_failures: u32,
    /// Hash requests (BEP 52) answered with hashes.
    pub hash_requests_served: u32,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// Errors of a run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The files could not be opened, read or written.
    #[error(transparent)]
    Storage(#[from] storage::Error),
    /// The torrent or the fetched metadata is invalid.
    #[error(transparent)]
    Metainfo(#[from] metainfo::Error),
    /// The listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// No peer delivered valid metadata in time.
    #[error("no peer sent the metadata for this magnet link within {0:?}; add peers with --peer")]
    MetadataTimeout(Duration),
    /// No peer delivered the v2 piece layers (BEP 52 hash requests) in time.
    #[error(
        "no peer sent the piece layers of this v2 torrent within {0:?}: the connected peers \
         do not answer BEP 52 hash requests (or send hashes that fail their proof); add peers \
         that seed it with --peer, or use the .torrent file"
    )]
    PieceLayersTimeout(Duration),
    /// Seeding data that does not match the torrent.
    #[error("the data does not match the torrent: {valid} of {pieces} pieces check out")]
    DataMismatch {
        /// Pieces that verified.
        valid: u32,
        /// Pieces in the torrent.
        pieces: u32,
    },
    /// What a magnet link needs that is not supported yet.
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
    /// A blocking task failed.
    #[error("internal error: {0}")]
    Internal(String),
}

/// A fresh peer id: `-SP0001-` and twelve random bytes.
pub(crate) fn peer_id(seed: u64) -> [u8; 20] {
    use sansio::RngExt;
    let mut rng = sansio::Rng::from_seed(seed);
    let mut id = [0u8; 20];
    id[..8].copy_from_slice(b"-SP0001-");
    for byte in &mut id[8..] {
        *byte = rng.gen_range(b'0'..=b'z');
    }
    id
}

/// Downloads (and/or seeds) a torrent until it is complete (or, with `seed_after`, until
/// `shutdown` resolves). `status` is updated a few times per second.
///
/// `discovered` is the peer-discovery seam: tracker and DHT announcers send the addresses they
/// learn into it (a bounded channel the caller creates), and the torrent task dials each new one
/// once (deduplicated, within its connection limits, never itself). The run goes on when every
/// sender is gone.
pub async fn run(
    source: Source,
    mut options: Options,
    status: watch::Sender<Status>,
    mut discovered: mpsc::Receiver<SocketAddr>,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<Summary, Error> {
    let clock = Clock::start();
    let info_hashes = match &source {
        Source::Torrent(torrent) => torrent.info.info_hashes(),
        Source::Magnet(magnet) => magnet.info_hashes,
    };
    status.send_modify(|s| s.info_hashes = info_hashes);
    let listener = match options.listen {
        Some(addr) => {
            let listener = transport::Listener::bind(addr)
                .await
                .map_err(|source| Error::Listen { addr, source })?;
            let bound = listener.local_addr().ok();
            status.send_modify(|s| s.listen_addr = bound);
            Some(listener)
        }
        None => None,
    };
    tokio::pin!(shutdown);
    let torrent = match source {
        Source::Torrent(torrent) => Arc::new(*torrent),
        Source::Magnet(magnet) => {
            status.send_modify(|s| s.phase = Phase::FetchingMetadata);
            tokio::select! {
                fetched = metadata::fetch(&magnet, &options, &mut discovered, clock) => {
                    let (torrent, peers) = fetched?;
                    options.peers = peers;
                    Arc::new(torrent)
                }
                () = &mut shutdown => {
                    return Ok(Summary {
                        name: magnet.display_name.clone().unwrap_or_default(),
                        seconds: clock.now().as_micros() as f64 / 1e6,
                        ..Summary::default()
                    });
                }
            }
        }
    };
    torrent_task::run(
        torrent, options, listener, status, discovered, shutdown, clock,
    )
    .await
}
