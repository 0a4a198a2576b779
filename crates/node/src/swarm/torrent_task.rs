//! The torrent task: owns the swarm core and routes its actions to peers and the disk.
//!
//! Peers learned through peer exchange (BEP 11, reported by the core) join the peer book like
//! those from trackers and the DHT, and are dialled within the same connection limits.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ::swarm::{Action, Bitfield, Config, Event, Geometry, PeerInfo, PeerKey, PickMode, Swarm};
use metainfo::Torrent;
use storage::Storage;
use tokio::sync::{mpsc, watch};
use wire::{Decoder, Handshake, Message};

use super::block_pool;
use super::disk::{self, Disk, DiskDone};
use super::peer_book::{PeerBook, REDIAL_INTERVAL};
use super::peer_conn::{self, PeerReport, OUTBOX_LEN_MAX};
use super::transport::{Listener, PeerStreamBox, Transport};
use super::{peer_id, Error, Options, Phase, Status, Summary};
use crate::clock::Clock;

/// How often the status and the resume data are refreshed.
const STATUS_INTERVAL: Duration = Duration::from_millis(250);
const RESUME_INTERVAL: Duration = Duration::from_secs(5);
/// Handshakes in progress at once.
const PENDING_HANDSHAKES_MAX: usize = 64;
/// Reports queued from all peers to the torrent task.
const REPORTS_LEN_MAX: usize = 4096;

/// A connection whose handshake succeeded.
struct Connected {
    /// We dialled it.
    outgoing: bool,
    handshake: Handshake,
    stream: Box<dyn PeerStreamBox>,
    decoder: Decoder,
}

/// The end of a dial or of an incoming connection's handshake.
struct HandshakeDone {
    addr: SocketAddr,
    outgoing: bool,
    connected: Option<Connected>,
}

struct State {
    swarm: Swarm,
    disk: Disk,
    clock: Clock,
    outboxes: BTreeMap<u64, Outbox>,
    book: PeerBook,
    summary: Summary,
    /// The core reported new addresses (peer exchange): dial when the actions are drained.
    dial_wanted: bool,
}

/// The torrent task's handle on one connected peer.
struct Outbox {
    addr: SocketAddr,
    /// We dialled it.
    outgoing: bool,
    peer_id: [u8; 20],
    sender: mpsc::Sender<Vec<u8>>,
}

impl State {
    fn drain(&mut self) {
        let mut reads = Vec::new();
        while let Some(action) = self.swarm.poll_action() {
            match action {
                Action::Send { peer, message } => {
                    let Some(outbox) = self.outboxes.get(&peer.0) else {
                        continue;
                    };
                    if matches!(message, Message::Hashes { .. }) {
                        self.summary.hash_requests_served += 1;
                    }
                    // A block's data travels apart from its head: no copy on the way out.
                    let (head, data) = message.into_frames();
                    let queued = outbox.sender.try_send(head).is_ok()
                        && data.is_none_or(|data| outbox.sender.try_send(data).is_ok());
                    if !queued {
                        // Too slow to keep up (or gone): drop it rather than buffer without bound.
                        self.forget_peer(peer.0);
                        self.swarm.handle_peer_disconnected(self.clock.now(), peer);
                    }
                }
                Action::ReadBlock { peer, block } => reads.push((peer.0, block)),
                Action::WriteBlock { block, data } => {
                    self.disk.write_block(block, &data);
                    block_pool::give(data);
                }
                Action::VerifyPiece(index) => {
                    let digests = self.swarm.wants_block_digests(index);
                    self.disk.verify_piece(index, digests);
                }
                Action::Disconnect { peer, reason } => {
                    if let Some(addr) = self.forget_peer(peer.0) {
                        tracing::info!(%addr, ?reason, "disconnecting peer");
                    }
                }
            }
        }
        self.disk.read_blocks(reads);
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
                Event::PeersDiscovered(addrs) => {
                    tracing::debug!(count = addrs.len(), "peers learned through peer exchange");
                    for addr in addrs {
                        self.dial_wanted |= self.book.add_discovered(addr);
                    }
                }
                Event::PieceVerified(_) | Event::Complete | Event::DhtPort { .. } => {}
            }
        }
    }

    /// Drops our handle on a peer (which closes its connection); returns its address.
    fn forget_peer(&mut self, key: u64) -> Option<SocketAddr> {
        let outbox = self.outboxes.remove(&key)?;
        self.book.on_disconnected(outbox.addr);
        Some(outbox.addr)
    }

    /// Takes a connection whose handshake succeeded, unless it is banned, unwanted, ourselves
    /// or a second connection to a peer we already have. When two peers dialled each other at
    /// once (peer exchange tells both of each other at the same moment), both ends keep the
    /// connection dialled by the smaller peer id, so that they never close both.
    fn admit(
        &mut self,
        addr: SocketAddr,
        conn: Connected,
        our_id: [u8; 20],
        piece_count: u32,
        next_key: &mut u64,
        reports: &mpsc::Sender<PeerReport>,
    ) {
        let peer_id = conn.handshake.peer_id;
        if peer_id == our_id || self.swarm.is_banned(addr.ip()) {
            return;
        }
        let existing = self.outboxes.iter().find(|(_, o)| o.peer_id == peer_id);
        if let Some((&old_key, old)) = existing {
            if !replaces_duplicate(our_id, peer_id, old.outgoing, conn.outgoing) {
                return;
            }
            self.forget_peer(old_key);
            self.swarm
                .handle_peer_disconnected(self.clock.now(), PeerKey(old_key));
        }
        if !self.swarm.wants_peers() {
            return;
        }
        *next_key += 1;
        let key = *next_key;
        let (sender, out_rx) = mpsc::channel(OUTBOX_LEN_MAX);
        self.outboxes.insert(
            key,
            Outbox {
                addr,
                outgoing: conn.outgoing,
                peer_id,
                sender,
            },
        );
        self.book.on_connected(addr);
        let mut decoder = conn.decoder;
        decoder.set_piece_count(piece_count);
        tracing::info!(%addr, "peer connected");
        tokio::spawn(peer_conn::run(
            key,
            addr,
            conn.stream,
            decoder,
            reports.clone(),
            out_rx,
        ));
        let info = PeerInfo {
            addr,
            reserved: conn.handshake.reserved,
            outgoing: conn.outgoing,
        };
        self.swarm
            .handle_peer_connected(self.clock.now(), PeerKey(key), info);
    }

    /// Dials known peers while there is room for more connections.
    fn dial_more(
        &mut self,
        ours: OurIds,
        local_ip: Option<IpAddr>,
        done: &mpsc::Sender<HandshakeDone>,
    ) {
        let room = if self.swarm.wants_peers() {
            PENDING_HANDSHAKES_MAX
        } else {
            0
        };
        let swarm = &self.swarm;
        let seeding = swarm.is_complete();
        for addr in self
            .book
            .next_dials(room, seeding, |ip| swarm.is_banned(ip))
        {
            let done = done.clone();
            tokio::spawn(async move {
                match Transport::Tcp.connect(addr, local_ip).await {
                    Ok(stream) => handshake_then_report(stream, addr, ours, true, done).await,
                    Err(error) => {
                        tracing::debug!(%addr, %error, "connect failed");
                        let _ = done
                            .send(HandshakeDone {
                                addr,
                                outgoing: true,
                                connected: None,
                            })
                            .await;
                    }
                }
            });
        }
    }

    fn verified(&self) -> Vec<bool> {
        let have = self.swarm.have();
        (0..have.len()).map(|i| have.get(i)).collect()
    }
}

/// Our handshake, and the other id incoming peers may name (a hybrid torrent's v2 id).
#[derive(Clone, Copy)]
struct OurIds {
    handshake: Handshake,
    also: Option<[u8; 20]>,
}

/// Whether a new connection to a peer we are already connected to replaces the old one: only
/// when they go opposite ways and the new one was dialled by the peer with the smaller id.
/// Both ends reach the same verdict on the same pair, whatever order the two arrive in.
fn replaces_duplicate(our_id: [u8; 20], their_id: [u8; 20], old_out: bool, new_out: bool) -> bool {
    old_out != new_out && new_out == (our_id < their_id)
}

async fn handshake_then_report(
    mut stream: Box<dyn PeerStreamBox>,
    addr: SocketAddr,
    ours: OurIds,
    outgoing: bool,
    done: mpsc::Sender<HandshakeDone>,
) {
    let connected =
        match peer_conn::handshake(&mut stream, ours.handshake, ours.also, outgoing).await {
            Ok((handshake, decoder)) => Some(Connected {
                outgoing,
                handshake,
                stream,
                decoder,
            }),
            Err(error) => {
                tracing::debug!(%addr, %error, "handshake failed");
                None
            }
        };
    let _ = done
        .send(HandshakeDone {
            addr,
            outgoing,
            connected,
        })
        .await;
}

pub(super) async fn run(
    torrent: Arc<Torrent>,
    options: Options,
    listener: Option<Listener>,
    status: watch::Sender<Status>,
    mut discovered: mpsc::Receiver<SocketAddr>,
    shutdown: impl std::future::Future<Output = ()> + Send,
    clock: Clock,
) -> Result<Summary, Error> {
    let (storage, verified) = open_with_progress(&torrent, &options, &status).await?;
    if options.seed_only && verified.iter().any(|ok| !ok) {
        return Err(Error::DataMismatch {
            valid: verified.iter().filter(|ok| **ok).count() as u32,
            pieces: verified.len() as u32,
        });
    }
    if options.seed_only {
        // The next start of this seed trusts the record (while the files stay unchanged)
        // instead of hashing everything again; saved now, so a killed seeder has it too.
        save_seed_resume(&storage, &verified, &options).await;
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
    let config = Config {
        listen_port: listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
            .map(|a| a.port()),
        // BEP 27: a private torrent gets its peers from its trackers only (no peer exchange).
        private: info.is_private(),
        ..Config::default()
    };
    let mut swarm = Swarm::new(geometry, have, config, rng.child())
        .map_err(|e| Error::Internal(e.to_string()))?;
    swarm.set_metadata(info.info_bytes().to_vec());
    swarm.set_piece_layers(info.piece_length(), torrent.piece_layers());
    if options.sequential {
        swarm.set_pick_mode(PickMode::Sequential { position: 0 });
    }
    let (disk_tx, mut disk_rx) = mpsc::channel(1024);
    let pieces_in_progress_max = swarm.pieces_in_progress_max();
    let mut state = State {
        summary: Summary {
            name: info.name().to_owned(),
            pieces_at_start: swarm.have().count(),
            piece_count: geometry.piece_count(),
            ..Summary::default()
        },
        dial_wanted: false,
        swarm,
        disk: Disk::new(
            torrent.clone(),
            storage.clone(),
            disk_tx,
            pieces_in_progress_max,
        ),
        clock,
        outboxes: BTreeMap::new(),
        book: PeerBook::new(
            listener.as_ref().and_then(|l| l.local_addr().ok()),
            options.local_ip,
        ),
    };
    for &addr in &options.peers {
        state.book.add_configured(addr);
    }
    let info_hashes = info.info_hashes();
    let ours = OurIds {
        handshake: Handshake {
            reserved: peer_conn::our_reserved(),
            info_hash: info_hashes.wire_id(),
            peer_id: peer_id(options.seed ^ 0x5eed),
        },
        also: info_hashes
            .v2
            .map(|v2| v2.truncated())
            .filter(|id| *id != info_hashes.wire_id()),
    };
    let (reports_tx, mut reports_rx) = mpsc::channel::<PeerReport>(REPORTS_LEN_MAX);
    let (handshakes_tx, mut handshakes_rx) = mpsc::channel::<HandshakeDone>(PENDING_HANDSHAKES_MAX);
    let mut discovery_open = true;
    let mut next_key = 0u64;
    let mut redial = tokio::time::interval(REDIAL_INTERVAL);
    let mut status_tick = tokio::time::interval(STATUS_INTERVAL);
    let mut resume_tick = tokio::time::interval(RESUME_INTERVAL);
    let verified_at_start = state.swarm.is_complete();
    tokio::pin!(shutdown);
    loop {
        state.drain();
        if std::mem::take(&mut state.dial_wanted) {
            state.dial_more(ours, options.local_ip, &handshakes_tx);
        }
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
                    PeerReport::Messages(key, messages) => {
                        for message in messages {
                            // A message may get the peer dropped: ignore the rest of its batch.
                            if !state.outboxes.contains_key(&key) {
                                break;
                            }
                            state.swarm.handle_message(now, PeerKey(key), message);
                        }
                    }
                    PeerReport::Closed(key) => {
                        state.forget_peer(key);
                        state.swarm.handle_peer_disconnected(now, PeerKey(key));
                    }
                }
            }
            Some(done) = disk_rx.recv() => {
                let now = clock.now();
                match done {
                    DiskDone::BlocksRead(blocks) => {
                        for (peer, block, data) in blocks {
                            state.swarm.handle_block_read(now, PeerKey(peer), block, data);
                        }
                    }
                    DiskDone::PieceChecked { index, valid, block_digests, buffer } => {
                        match block_digests {
                            Some(digests) => state.swarm.handle_piece_checked_with_digests(now, index, valid, &digests),
                            None => state.swarm.handle_piece_checked(now, index, valid),
                        }
                        state.disk.recycle(buffer);
                    }
                    DiskDone::Failed(why) => return Err(Error::Internal(format!("writing to disk failed: {why}"))),
                }
            }
            Some(done) = handshakes_rx.recv() => {
                if done.outgoing {
                    state.book.dial_ended(done.addr, done.connected.is_some());
                }
                if let Some(conn) = done.connected {
                    state.admit(done.addr, conn, ours.handshake.peer_id, geometry.piece_count(), &mut next_key, &reports_tx);
                }
            }
            accepted = async { listener.as_ref().expect("guarded by the condition").accept().await }, if listener.is_some() => {
                if let Ok((stream, addr)) = accepted {
                    if !state.swarm.is_banned(addr.ip()) {
                        tokio::spawn(handshake_then_report(stream, addr, ours, false, handshakes_tx.clone()));
                    }
                }
            }
            addr = discovered.recv(), if discovery_open => {
                match addr {
                    Some(addr) => {
                        if state.book.add_discovered(addr) {
                            state.dial_more(ours, options.local_ip, &handshakes_tx);
                        }
                    }
                    None => discovery_open = false,
                }
            }
            _ = redial.tick() => state.dial_more(ours, options.local_ip, &handshakes_tx),
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
    // A seed's record was saved when its check ended and still holds: saving it again would
    // stamp files changed behind its back since then as verified.
    if let Some(path) = options.resume_file.as_ref().filter(|_| !options.seed_only) {
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

/// Opens the storage (see [`disk::open`]) in the checking phase, reporting how much of the data
/// already on disk has been hashed as it goes (a recheck of a large torrent takes minutes).
async fn open_with_progress(
    torrent: &Arc<Torrent>,
    options: &Options,
    status: &watch::Sender<Status>,
) -> Result<(Arc<Storage>, Vec<bool>), Error> {
    let info = &torrent.info;
    let total = info.total_size();
    status.send_modify(|s| {
        s.phase = Phase::Checking;
        s.progress.bytes_total = total;
    });
    let pieces_checked = Arc::new(AtomicU32::new(0));
    let report = |pieces: u32| {
        let bytes = (u64::from(pieces) * info.piece_length()).min(total);
        status.send_if_modified(|s| std::mem::replace(&mut s.bytes_checked, bytes) != bytes);
    };
    let open = disk::open(
        torrent.clone(),
        &options.out_dir,
        options.resume_file.as_deref(),
        options.seed_only,
        pieces_checked.clone(),
    );
    tokio::pin!(open);
    let mut tick = tokio::time::interval(STATUS_INTERVAL);
    loop {
        tokio::select! {
            opened = &mut open => {
                report(pieces_checked.load(Ordering::Relaxed));
                return opened;
            }
            _ = tick.tick() => report(pieces_checked.load(Ordering::Relaxed)),
        }
    }
}

/// Saves a seed's resume record if it has a place for one. Not being able to is no reason to
/// stop seeding (the data may sit on a read-only disk): the next start rechecks.
async fn save_seed_resume(storage: &Arc<Storage>, verified: &[bool], options: &Options) {
    let Some(path) = &options.resume_file else {
        return;
    };
    if let Err(error) = disk::save_resume(storage.clone(), verified.to_vec(), path).await {
        tracing::warn!(path = %path.display(), %error, "cannot save resume data");
    }
}

#[cfg(test)]
mod tests {
    use super::replaces_duplicate;

    #[test]
    fn both_ends_keep_the_same_one_of_two_crossing_connections() {
        let (a, b) = ([1u8; 20], [2u8; 20]);
        // Connection 1 is dialled by a, connection 2 by b; each end sees either first.
        for (x, y) in [(a, b), (b, a)] {
            // x's view: 1 is outgoing for x when x == a.
            let x_dialled_1 = x == a;
            let x_keeps_1_if_1_first = !replaces_duplicate(x, y, x_dialled_1, !x_dialled_1);
            let x_keeps_1_if_2_first = replaces_duplicate(x, y, !x_dialled_1, x_dialled_1);
            assert_eq!(x_keeps_1_if_1_first, x_keeps_1_if_2_first);
            // The connection kept is the one the smaller id (a) dialled: connection 1.
            assert!(x_keeps_1_if_1_first);
        }
        // Two connections the same way: the second is a plain duplicate.
        for out in [false, true] {
            assert!(!replaces_duplicate(a, b, out, out));
            assert!(!replaces_duplicate(b, a, out, out));
        }
    }
}
