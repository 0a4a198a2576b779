//! Magnet links: fetch the info dictionary from peers (BEP 9), then the piece layers of v2
//! and hybrid torrents (BEP 52 hash requests), before the swarm starts.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};

use ::swarm::{MetadataFetch, PeerKey, PieceLayerFetch};
use metainfo::{Info, InfoHashes, Magnet, Torrent};
use tokio::sync::mpsc;
use wire::{ExtendedHandshake, Handshake, Message, MetadataMessage};

use super::peer_book::{PeerBook, REDIAL_INTERVAL};
use super::peer_conn::{self, PeerReport, OUTBOX_LEN_MAX};
use super::transport::Transport;
use super::{peer_id, Error, Options};
use crate::clock::Clock;

/// Most peers dialled for the metadata.
const METADATA_PEERS_MAX: usize = 64;

/// What the fetch is waiting for.
enum Stage {
    /// The info dictionary (BEP 9).
    Metadata(MetadataFetch),
    /// The piece layers of the info dictionary's v2 files (BEP 52).
    Layers(Box<Info>, PieceLayerFetch),
}

/// Connects to the magnet's, the configured and the discovered peers and returns the verified
/// torrent: the info dictionary (BEP 9) and, for v2 and hybrid torrents, the piece layers that
/// files longer than one piece need (BEP 52 hash requests, each answer checked against its
/// file's `pieces root`). A hybrid torrent's metadata is fetched under its v1 id (which every
/// client knows), its piece layers under its v2 id (libtorrent serves hashes only there). Also
/// returns the peers for the swarm to dial: the configured ones and
/// those discovery reported meanwhile (the channel gives each one once), without any whose
/// hashes failed their proof.
pub async fn fetch(
    magnet: &Magnet,
    options: &Options,
    discovered: &mut mpsc::Receiver<SocketAddr>,
    clock: Clock,
) -> Result<(Torrent, Vec<SocketAddr>), Error> {
    let metadata = match magnet.info_hashes {
        InfoHashes { v2: Some(v2), .. } => MetadataFetch::new_v2(v2.0),
        InfoHashes { v1: Some(v1), .. } => MetadataFetch::new(v1.0),
        InfoHashes { .. } => return Err(Error::Unsupported("magnet links without an info-hash")),
    };
    // The metadata is fetched under the id every client knows (v1 for hybrid torrents).
    let mut ours = Handshake {
        reserved: peer_conn::our_reserved(),
        info_hash: magnet.info_hashes.wire_id(),
        peer_id: peer_id(options.seed ^ 0x3a9e),
    };
    let mut book = PeerBook::new(None, options.local_ip);
    for &addr in options.peers.iter().chain(&magnet.peers) {
        book.add_configured(addr);
    }
    let (reports_tx, mut reports_rx) = mpsc::channel::<PeerReport>(1024);
    let (dials_tx, mut dials_rx) = mpsc::channel::<Dialled>(METADATA_PEERS_MAX);
    let mut stage = Stage::Metadata(metadata);
    let mut outboxes: BTreeMap<u64, (SocketAddr, mpsc::Sender<Vec<u8>>)> = BTreeMap::new();
    // Peers whose hashes failed their proof are not dialled again.
    let mut liars: BTreeSet<IpAddr> = BTreeSet::new();
    let mut found: Vec<SocketAddr> = options.peers.iter().chain(&magnet.peers).copied().collect();
    let mut next_key = 0u64;
    let mut discovery_open = true;
    let mut redial = tokio::time::interval(REDIAL_INTERVAL);
    let deadline = tokio::time::sleep(options.metadata_timeout);
    tokio::pin!(deadline);
    loop {
        if let Stage::Layers(info, layers) = &stage {
            if let Some(piece_layers) = layers.piece_layers() {
                // Dropping the outboxes closes these connections; the swarm dials afresh.
                drop(outboxes);
                found.retain(|addr| !liars.contains(&addr.ip()));
                return Ok((Torrent::new(*info.clone(), piece_layers)?, found));
            }
        }
        let wake = match &stage {
            Stage::Layers(_, layers) => layers.poll_timeout().map(|t| clock.instant(t)),
            Stage::Metadata(_) => None,
        };
        tokio::select! {
            // A connection's outbox must be known before its first message is handled (the
            // dial task registers it before it starts reading): take dials first.
            biased;
            () = &mut deadline => return Err(match stage {
                Stage::Metadata(_) => Error::MetadataTimeout(options.metadata_timeout),
                Stage::Layers(..) => Error::PieceLayersTimeout(options.metadata_timeout),
            }),
            Some(dialled) = dials_rx.recv() => {
                book.dial_ended(dialled.addr, dialled.outbox.is_some());
                if let Some((key, outbox)) = dialled.outbox {
                    book.on_connected(dialled.addr);
                    outboxes.insert(key, (dialled.addr, outbox));
                    if let Stage::Layers(_, layers) = &mut stage {
                        layers.handle_peer_connected(clock.now(), PeerKey(key));
                    }
                }
            }
            Some(report) = reports_rx.recv() => {
                let now = clock.now();
                let (key, messages) = match report {
                    PeerReport::Closed(key) => {
                        if let Some((addr, _)) = outboxes.remove(&key) {
                            book.on_disconnected(addr);
                        }
                        match &mut stage {
                            Stage::Metadata(fetch) => fetch.handle_disconnect(PeerKey(key)),
                            Stage::Layers(_, layers) => layers.handle_peer_disconnected(now, PeerKey(key)),
                        }
                        (key, Vec::new())
                    }
                    PeerReport::Messages(key, messages) => (key, messages),
                };
                for message in messages {
                    let fetch = match &mut stage {
                        Stage::Metadata(fetch) => fetch,
                        Stage::Layers(_, layers) => {
                            layers.handle_message(now, PeerKey(key), &message);
                            continue;
                        }
                    };
                    let Some(info_bytes) = on_metadata_message(fetch, key, &message, &mut outboxes, &mut book) else {
                        continue;
                    };
                    let info = Info::from_bytes(&info_bytes)?;
                    let mut layers = PieceLayerFetch::new(&info);
                    let v2_id = magnet.info_hashes.v2.map(|v2| v2.truncated());
                    match v2_id {
                        Some(v2_id) if !layers.is_complete() && v2_id != ours.info_hash => {
                            // libtorrent answers hash requests only on connections that named
                            // the v2 id: reconnect under it.
                            ours.info_hash = v2_id;
                            for (addr, _) in std::mem::take(&mut outboxes).into_values() {
                                book.on_disconnected(addr);
                            }
                            redial.reset_immediately();
                        }
                        _ => {
                            for &key in outboxes.keys() {
                                layers.handle_peer_connected(now, PeerKey(key));
                            }
                        }
                    }
                    stage = Stage::Layers(Box::new(info), layers);
                    deadline.as_mut().reset(clock.instant(now + options.metadata_timeout));
                }
            }
            () = async { tokio::time::sleep_until(wake.expect("guarded by the condition")).await }, if wake.is_some() => {
                if let Stage::Layers(_, layers) = &mut stage {
                    layers.handle_timeout(clock.now());
                }
            }
            _ = redial.tick() => {
                let room = METADATA_PEERS_MAX.saturating_sub(outboxes.len());
                // Still fetching metadata: nothing is complete yet.
                for addr in book.next_dials(room, false, |ip| liars.contains(&ip)) {
                    next_key += 1;
                    let dial = dial(next_key, addr, ours, options.local_ip, reports_tx.clone(), dials_tx.clone());
                    tokio::spawn(dial);
                }
            }
            addr = discovered.recv(), if discovery_open => match addr {
                Some(addr) => {
                    if book.add_discovered(addr) {
                        found.push(addr);
                        // Dial at once rather than at the next tick.
                        redial.reset_immediately();
                    }
                }
                None => discovery_open = false,
            },
        }
        let transmits: Vec<(PeerKey, Message<'static>)> = match &mut stage {
            Stage::Metadata(fetch) => std::iter::from_fn(|| fetch.poll_transmit()).collect(),
            Stage::Layers(_, layers) => {
                while let Some((peer, why)) = layers.poll_drop() {
                    if let Some((addr, _)) = outboxes.remove(&peer.0) {
                        tracing::info!(%addr, why, "dropping peer");
                        book.on_disconnected(addr);
                        liars.insert(addr.ip());
                    }
                }
                std::iter::from_fn(|| layers.poll_transmit()).collect()
            }
        };
        for (peer, message) in transmits {
            if let Some((_, tx)) = outboxes.get(&peer.0) {
                let _ = tx.try_send(message.to_bytes());
            }
        }
    }
}

/// Feeds a peer message to the metadata fetch; returns the verified info dictionary once
/// complete.
fn on_metadata_message(
    fetch: &mut MetadataFetch,
    key: u64,
    message: &Message<'_>,
    outboxes: &mut BTreeMap<u64, (SocketAddr, mpsc::Sender<Vec<u8>>)>,
    book: &mut PeerBook,
) -> Option<Vec<u8>> {
    match message {
        Message::Extended { id: 0, payload } => {
            if let Ok(hs) = ExtendedHandshake::parse(payload) {
                fetch.handle_handshake(PeerKey(key), &hs);
            }
            None
        }
        Message::Extended {
            id: ::swarm::UT_METADATA_ID,
            payload,
        } => {
            let message = MetadataMessage::parse(payload).ok()?;
            if matches!(message, MetadataMessage::Reject { .. }) {
                // It may not have the metadata yet (still starting): close so that the
                // redial asks again later.
                if let Some((addr, _)) = outboxes.remove(&key) {
                    book.on_disconnected(addr);
                }
            }
            fetch.handle_message(PeerKey(key), &message)
        }
        _ => None,
    }
}

/// The end of a dial for the metadata: the connection's outbox if it got through the handshake.
struct Dialled {
    addr: SocketAddr,
    outbox: Option<(u64, mpsc::Sender<Vec<u8>>)>,
}

/// Dials `addr`, shakes hands, announces `ut_metadata` and runs the connection as peer `key`.
async fn dial(
    key: u64,
    addr: SocketAddr,
    ours: Handshake,
    local_ip: Option<IpAddr>,
    reports: mpsc::Sender<PeerReport>,
    dialled: mpsc::Sender<Dialled>,
) {
    let connected = async {
        let mut stream = Transport::Tcp.connect(addr, local_ip).await.ok()?;
        let (_, decoder) = peer_conn::handshake(&mut stream, ours, None, true)
            .await
            .ok()?;
        let (tx, rx) = mpsc::channel(OUTBOX_LEN_MAX);
        tx.try_send(MetadataFetch::our_handshake().to_bytes())
            .ok()?;
        Some((stream, decoder, tx, rx))
    }
    .await;
    let Some((stream, decoder, tx, rx)) = connected else {
        let _ = dialled.send(Dialled { addr, outbox: None }).await;
        return;
    };
    let outbox = Some((key, tx));
    if dialled.send(Dialled { addr, outbox }).await.is_ok() {
        peer_conn::run(key, addr, stream, decoder, reports, rx).await;
    }
}
