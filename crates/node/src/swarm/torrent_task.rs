//! The torrent task: owns the swarm core and routes its actions to peers and the disk.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ::swarm::{Action, Bitfield, Config, Event, Geometry, PeerInfo, PeerKey, Swarm};
use metainfo::Torrent;
use storage::Storage;
use tokio::sync::{mpsc, watch};
use wire::{Decoder, Handshake};

use super::disk::{self, Disk, DiskDone};
use super::peer_conn::{self, PeerReport, OUTBOX_LEN_MAX};
use super::transport::{Listener, PeerStreamBox, Transport};
use super::{peer_id, Clock, Error, Options, Phase, Status, Summary};

/// How often configured peers that are not connected are dialled again.
const REDIAL_INTERVAL: Duration = Duration::from_secs(3);
/// Dial attempts per configured peer.
const DIAL_ATTEMPTS_MAX: u32 = 40;
/// How often the status and the resume data are refreshed.
const STATUS_INTERVAL: Duration = Duration::from_millis(250);
const RESUME_INTERVAL: Duration = Duration::from_secs(5);
/// Handshakes in progress at once.
const PENDING_HANDSHAKES_MAX: usize = 64;
/// Reports queued from all peers to the torrent task.
const REPORTS_LEN_MAX: usize = 4096;

/// A connection whose handshake succeeded.
struct Connected {
    addr: SocketAddr,
    handshake: Handshake,
    stream: Box<dyn PeerStreamBox>,
    decoder: Decoder,
}

struct State {
    swarm: Swarm,
    disk: Disk,
    clock: Clock,
    outboxes: BTreeMap<u64, (SocketAddr, mpsc::Sender<Vec<u8>>)>,
    summary: Summary,
}

impl State {
    fn drain(&mut self) {
        while let Some(action) = self.swarm.poll_action() {
            match action {
                Action::Send { peer, message } => {
                    let Some((_, outbox)) = self.outboxes.get(&peer.0) else {
                        continue;
                    };
                    if outbox.try_send(message.to_bytes()).is_err() {
                        // Too slow to keep up (or gone): drop it rather than buffer without bound.
                        self.outboxes.remove(&peer.0);
                        self.swarm.handle_peer_disconnected(self.clock.now(), peer);
                    }
                }
                Action::ReadBlock { peer, block } => self.disk.read_block(peer.0, block),
                Action::WriteBlock { block, data } => self.disk.write_block(block, &data),
                Action::VerifyPiece(index) => self.disk.verify_piece(index),
                Action::Disconnect { peer, reason } => {
                    if let Some((addr, _)) = self.outboxes.remove(&peer.0) {
                        tracing::info!(%addr, ?reason, "disconnecting peer");
                    }
                }
            }
        }
        while let Some(event) = self.swarm.poll_event() {
            match event {
                Event::PeerBanned(ip) => {
                    tracing::warn!(%ip, "banned peer for corrupt data");
                    self.summary.peers_banned.push(ip);
                }
                Event::PieceFailed(index) => {
                    tracing::info!(index, "piece failed its hash check");
                    self.summary.hash_failures += 1;
                }
                Event::PieceVerified(_) | Event::Complete | Event::DhtPort { .. } => {}
            }
        }
    }

    fn verified(&self) -> Vec<bool> {
        let have = self.swarm.have();
        (0..have.len()).map(|i| have.get(i)).collect()
    }
}

fn spawn_handshake(
    stream: Box<dyn PeerStreamBox>,
    addr: SocketAddr,
    ours: Handshake,
    outgoing: bool,
    connected: mpsc::Sender<Connected>,
) {
    tokio::spawn(async move {
        let mut stream = stream;
        match peer_conn::handshake(&mut stream, ours, outgoing).await {
            Ok((handshake, decoder)) => {
                let _ = connected
                    .send(Connected {
                        addr,
                        handshake,
                        stream,
                        decoder,
                    })
                    .await;
            }
            Err(error) => tracing::debug!(%addr, %error, "handshake failed"),
        }
    });
}

pub(super) async fn run(
    torrent: Arc<Torrent>,
    options: Options,
    listener: Option<Listener>,
    status: watch::Sender<Status>,
    shutdown: impl std::future::Future<Output = ()> + Send,
    clock: Clock,
) -> Result<Summary, Error> {
    status.send_modify(|s| s.phase = Phase::Checking);
    let (storage, verified) = disk::open(
        torrent.clone(),
        &options.out_dir,
        options.resume_file.as_deref(),
        options.seed_only,
    )
    .await?;
    if options.seed_only && verified.iter().any(|ok| !ok) {
        return Err(Error::DataMismatch {
            valid: verified.iter().filter(|ok| **ok).count() as u32,
            pieces: verified.len() as u32,
        });
    }
    let info = &torrent.info;
    let geometry = Geometry::new(info.piece_length() as u32, info.total_size())
        .map_err(|_| Error::Unsupported("piece length above 4 GiB"))?;
    let mut have = Bitfield::new(geometry.piece_count());
    for (i, ok) in verified.iter().enumerate() {
        if *ok {
            have.set(i as u32);
        }
    }
    let mut rng = sansio::Rng::from_seed(options.seed);
    let mut swarm = Swarm::new(geometry, have, Config::default(), rng.child())
        .map_err(|e| Error::Internal(e.to_string()))?;
    swarm.set_metadata(info.info_bytes().to_vec());
    let (disk_tx, mut disk_rx) = mpsc::channel(1024);
    let mut state = State {
        summary: Summary {
            name: info.name().to_owned(),
            pieces_at_start: swarm.have().count(),
            piece_count: geometry.piece_count(),
            ..Summary::default()
        },
        swarm,
        disk: Disk::new(torrent.clone(), storage.clone(), disk_tx),
        clock,
        outboxes: BTreeMap::new(),
    };
    let ours = Handshake {
        reserved: peer_conn::our_reserved(),
        info_hash: info.info_hashes().wire_id(),
        peer_id: peer_id(options.seed ^ 0x5eed),
    };
    let (reports_tx, mut reports_rx) = mpsc::channel::<PeerReport>(REPORTS_LEN_MAX);
    let (connected_tx, mut connected_rx) = mpsc::channel::<Connected>(PENDING_HANDSHAKES_MAX);
    let mut dial_attempts: BTreeMap<SocketAddr, u32> = BTreeMap::new();
    let mut next_key = 0u64;
    let mut redial = tokio::time::interval(REDIAL_INTERVAL);
    let mut status_tick = tokio::time::interval(STATUS_INTERVAL);
    let mut resume_tick = tokio::time::interval(RESUME_INTERVAL);
    let verified_at_start = state.swarm.is_complete();
    tokio::pin!(shutdown);
    loop {
        state.drain();
        let complete = state.swarm.is_complete();
        if complete && !options.seed_after {
            break;
        }
        let wake = state.swarm.poll_timeout().map(|t| clock.instant(t));
        tokio::select! {
            () = &mut shutdown => break,
            Some(report) = reports_rx.recv() => {
                let now = clock.now();
                match report {
                    PeerReport::Message(key, message) => {
                        if state.outboxes.contains_key(&key) {
                            state.swarm.handle_message(now, PeerKey(key), message);
                        }
                    }
                    PeerReport::Closed(key) => {
                        state.outboxes.remove(&key);
                        state.swarm.handle_peer_disconnected(now, PeerKey(key));
                    }
                }
            }
            Some(done) = disk_rx.recv() => {
                let now = clock.now();
                match done {
                    DiskDone::BlockRead(peer, block, data) => state.swarm.handle_block_read(now, PeerKey(peer), block, data),
                    DiskDone::PieceChecked(index, ok) => state.swarm.handle_piece_checked(now, index, ok),
                    DiskDone::Failed(why) => return Err(Error::Internal(format!("writing to disk failed: {why}"))),
                }
            }
            Some(conn) = connected_rx.recv() => {
                let now = clock.now();
                if state.swarm.is_banned(conn.addr.ip()) || !state.swarm.wants_peers() {
                    continue;
                }
                next_key += 1;
                let key = next_key;
                let (out_tx, out_rx) = mpsc::channel(OUTBOX_LEN_MAX);
                state.outboxes.insert(key, (conn.addr, out_tx));
                let mut decoder = conn.decoder;
                decoder.set_piece_count(geometry.piece_count());
                tracing::info!(addr = %conn.addr, "peer connected");
                tokio::spawn(peer_conn::run(key, conn.addr, conn.stream, decoder, reports_tx.clone(), out_rx));
                state.swarm.handle_peer_connected(now, PeerKey(key), PeerInfo { addr: conn.addr, reserved: conn.handshake.reserved });
            }
            accepted = async { listener.as_ref().expect("guarded by the condition").accept().await }, if listener.is_some() => {
                if let Ok((stream, addr)) = accepted {
                    if !state.swarm.is_banned(addr.ip()) {
                        spawn_handshake(stream, addr, ours, false, connected_tx.clone());
                    }
                }
            }
            _ = redial.tick(), if !complete => {
                let connected: BTreeSet<SocketAddr> = state.outboxes.values().map(|(a, _)| *a).collect();
                for &addr in &options.peers {
                    let attempts = dial_attempts.entry(addr).or_default();
                    if connected.contains(&addr) || *attempts >= DIAL_ATTEMPTS_MAX || state.swarm.is_banned(addr.ip()) {
                        continue;
                    }
                    *attempts += 1;
                    let (connected_tx, local_ip) = (connected_tx.clone(), options.local_ip);
                    tokio::spawn(async move {
                        match Transport::Tcp.connect(addr, local_ip).await {
                            Ok(stream) => spawn_handshake(stream, addr, ours, true, connected_tx),
                            Err(error) => tracing::debug!(%addr, %error, "connect failed"),
                        }
                    });
                }
            }
            _ = status_tick.tick() => {
                let progress = state.swarm.progress(clock.now());
                let phase = if complete { Phase::Seeding } else { Phase::Downloading };
                status.send_modify(|s| { s.progress = progress; s.phase = phase; });
            }
            _ = resume_tick.tick(), if options.resume_file.is_some() && !verified_at_start => {
                if let Some(path) = &options.resume_file {
                    disk::save_resume(storage.clone(), state.verified(), path).await?;
                }
            }
            () = async { tokio::time::sleep_until(wake.expect("guarded by the condition")).await }, if wake.is_some() => {
                state.swarm.handle_timeout(clock.now());
            }
        }
    }
    finish(state, &options, storage, &status, clock).await
}

async fn finish(
    mut state: State,
    options: &Options,
    storage: Arc<Storage>,
    status: &watch::Sender<Status>,
    clock: Clock,
) -> Result<Summary, Error> {
    // Dropping the outboxes closes every connection.
    state.outboxes.clear();
    if let Some(path) = &options.resume_file {
        disk::save_resume(storage, state.verified(), path).await?;
    }
    let progress = state.swarm.progress(clock.now());
    status.send_modify(|s| s.progress = progress);
    let mut summary = state.summary;
    summary.complete = state.swarm.is_complete();
    summary.bytes_downloaded = progress.bytes_downloaded;
    summary.bytes_uploaded = progress.bytes_uploaded;
    summary.seconds = clock.now().as_micros() as f64 / 1e6;
    Ok(summary)
}
