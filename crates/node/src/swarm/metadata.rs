//! Magnet links: fetch the info dictionary from peers (BEP 9) before the swarm starts.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ::swarm::{MetadataFetch, PeerKey};
use metainfo::{Info, Magnet, Torrent};
use tokio::sync::mpsc;
use wire::{ExtendedHandshake, Handshake, Message, MetadataMessage};

use super::peer_book::{PeerBook, REDIAL_INTERVAL};
use super::peer_conn::{self, PeerReport, OUTBOX_LEN_MAX};
use super::transport::Transport;
use super::{peer_id, Error, Options};

/// How long to wait for the metadata.
const METADATA_TIMEOUT: Duration = Duration::from_secs(60);

/// Most peers dialled for the metadata.
const METADATA_PEERS_MAX: usize = 64;

/// Connects to the magnet's, the configured and the discovered peers and returns the verified
/// torrent.
pub async fn fetch(
    magnet: &Magnet,
    options: &Options,
    discovered: &mut mpsc::Receiver<SocketAddr>,
) -> Result<Torrent, Error> {
    let Some(v1) = magnet.info_hashes.v1 else {
        return Err(Error::Unsupported(
            "v2-only magnet links (their piece layers need BEP 52 hash requests)",
        ));
    };
    let ours = Handshake {
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
    let mut fetch = MetadataFetch::new(v1.0);
    let mut outboxes: BTreeMap<u64, (SocketAddr, mpsc::Sender<Vec<u8>>)> = BTreeMap::new();
    let mut next_key = 0u64;
    let mut discovery_open = true;
    let mut redial = tokio::time::interval(REDIAL_INTERVAL);
    let deadline = tokio::time::sleep(METADATA_TIMEOUT);
    tokio::pin!(deadline);
    let info_bytes = loop {
        tokio::select! {
            // A connection's outbox must be known before its first message is handled (the
            // dial task registers it before it starts reading): take dials first.
            biased;
            () = &mut deadline => return Err(Error::MetadataTimeout(METADATA_TIMEOUT)),
            Some(dialled) = dials_rx.recv() => {
                book.dial_ended(dialled.addr);
                if let Some((key, outbox)) = dialled.outbox {
                    book.on_connected(dialled.addr);
                    outboxes.insert(key, (dialled.addr, outbox));
                }
            }
            Some(report) = reports_rx.recv() => {
                let (key, messages) = match report {
                    PeerReport::Closed(key) => {
                        if let Some((addr, _)) = outboxes.remove(&key) {
                            book.on_disconnected(addr);
                        }
                        fetch.handle_disconnect(PeerKey(key));
                        (key, Vec::new())
                    }
                    PeerReport::Messages(key, messages) => (key, messages),
                };
                let mut done = None;
                for message in messages {
                    done = match message {
                        Message::Extended { id: 0, payload } => {
                            if let Ok(hs) = ExtendedHandshake::parse(&payload) {
                                fetch.handle_handshake(PeerKey(key), &hs);
                            }
                            None
                        }
                        Message::Extended { id: ::swarm::UT_METADATA_ID, payload } => {
                            match MetadataMessage::parse(&payload) {
                                Ok(message) => {
                                    if matches!(message, MetadataMessage::Reject { .. }) {
                                        // It may not have the metadata yet (still starting):
                                        // close so that the redial asks again later.
                                        if let Some((addr, _)) = outboxes.remove(&key) {
                                            book.on_disconnected(addr);
                                        }
                                    }
                                    fetch.handle_message(PeerKey(key), &message)
                                }
                                Err(_) => None,
                            }
                        }
                        _ => None,
                    };
                    if done.is_some() {
                        break;
                    }
                }
                if let Some(info) = done {
                    break info;
                }
                while let Some((peer, message)) = fetch.poll_transmit() {
                    if let Some((_, tx)) = outboxes.get(&peer.0) {
                        let _ = tx.try_send(message.to_bytes());
                    }
                }
            }
            _ = redial.tick() => {
                let room = METADATA_PEERS_MAX.saturating_sub(outboxes.len());
                for addr in book.next_dials(room, |_| false) {
                    next_key += 1;
                    let dial = dial(next_key, addr, ours, options.local_ip, reports_tx.clone(), dials_tx.clone());
                    tokio::spawn(dial);
                }
            }
            addr = discovered.recv(), if discovery_open => match addr {
                Some(addr) => {
                    if book.add_discovered(addr) {
                        // Dial at once rather than at the next tick.
                        redial.reset_immediately();
                    }
                }
                None => discovery_open = false,
            },
        }
    };
    // Dropping the outboxes closes the metadata connections; the swarm dials afresh.
    drop(outboxes);
    let info = Info::from_bytes(&info_bytes)?;
    let v2 = info.version().has_v2();
    Torrent::new(info, BTreeMap::new()).map_err(|error| match error {
        metainfo::Error::PieceLayers(_) if v2 => Error::Unsupported(
            "v2 and hybrid magnet links for files over one piece (their piece layers need BEP 52 \
             hash requests); use the .torrent file",
        ),
        other => other.into(),
    })
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
        let (_, decoder) = peer_conn::handshake(&mut stream, ours, true).await.ok()?;
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
