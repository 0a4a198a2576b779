//! Magnet links: fetch the info dictionary from peers (BEP 9) before the swarm starts.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use ::swarm::{MetadataFetch, PeerKey};
use metainfo::{Info, Magnet, Torrent};
use tokio::sync::mpsc;
use wire::{ExtendedHandshake, Handshake, Message, MetadataMessage};

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
    let mut peers: Vec<SocketAddr> = options.peers.clone();
    peers.extend(magnet.peers.iter().copied());
    let (reports_tx, mut reports_rx) = mpsc::channel::<PeerReport>(1024);
    let (out_tx, mut out_rx) = mpsc::channel::<(u64, mpsc::Sender<Vec<u8>>)>(64);
    let mut dialled: BTreeSet<SocketAddr> = BTreeSet::new();
    let dial = |addr: SocketAddr, dialled: &mut BTreeSet<SocketAddr>| {
        if dialled.len() >= METADATA_PEERS_MAX || !dialled.insert(addr) {
            return;
        }
        let key = dialled.len() as u64;
        let (reports_tx, out_tx, local_ip) = (reports_tx.clone(), out_tx.clone(), options.local_ip);
        tokio::spawn(async move {
            let Ok(mut stream) = Transport::Tcp.connect(addr, local_ip).await else {
                return;
            };
            let Ok((_, decoder)) = peer_conn::handshake(&mut stream, ours, true).await else {
                return;
            };
            let (tx, rx) = mpsc::channel(OUTBOX_LEN_MAX);
            if tx
                .send(MetadataFetch::our_handshake().to_bytes())
                .await
                .is_err()
                || out_tx.send((key, tx)).await.is_err()
            {
                return;
            }
            peer_conn::run(key, addr, stream, decoder, reports_tx, rx).await;
        });
    };
    for addr in peers {
        dial(addr, &mut dialled);
    }
    let mut discovery_open = true;
    let mut fetch = MetadataFetch::new(v1.0);
    let mut outboxes: BTreeMap<u64, mpsc::Sender<Vec<u8>>> = BTreeMap::new();
    let deadline = tokio::time::sleep(METADATA_TIMEOUT);
    tokio::pin!(deadline);
    let info_bytes = loop {
        tokio::select! {
            () = &mut deadline => return Err(Error::MetadataTimeout(METADATA_TIMEOUT)),
            Some((key, tx)) = out_rx.recv() => { outboxes.insert(key, tx); }
            addr = discovered.recv(), if discovery_open => match addr {
                Some(addr) => dial(addr, &mut dialled),
                None => discovery_open = false,
            },
            Some(report) = reports_rx.recv() => {
                let done = match report {
                    PeerReport::Closed(key) => {
                        outboxes.remove(&key);
                        fetch.handle_disconnect(PeerKey(key));
                        None
                    }
                    PeerReport::Message(key, Message::Extended { id: 0, payload }) => {
                        if let Ok(hs) = ExtendedHandshake::parse(&payload) {
                            fetch.handle_handshake(PeerKey(key), &hs);
                        }
                        None
                    }
                    PeerReport::Message(key, Message::Extended { id: ::swarm::UT_METADATA_ID, payload }) => {
                        match MetadataMessage::parse(&payload) {
                            Ok(message) => fetch.handle_message(PeerKey(key), &message),
                            Err(_) => None,
                        }
                    }
                    PeerReport::Message(..) => None,
                };
                if let Some(info) = done {
                    break info;
                }
                while let Some((peer, message)) = fetch.poll_transmit() {
                    if let Some(tx) = outboxes.get(&peer.0) {
                        let _ = tx.try_send(message.to_bytes());
                    }
                }
            }
        }
    };
    // Dropping the outboxes closes the metadata connections; the swarm dials afresh.
    drop(outboxes);
    let info = Info::from_bytes(&info_bytes)?;
    Ok(Torrent::new(info, BTreeMap::new())?)
}
