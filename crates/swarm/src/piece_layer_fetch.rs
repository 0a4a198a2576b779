//! BEP 52: fetching the piece layers of a v2 or hybrid torrent from peers with hash requests,
//! after a magnet link's info dictionary (BEP 9) arrived without them.
//!
//! Every file longer than one piece needs its piece layer. The fetch cuts each layer into the
//! requests libtorrent uses (runs of 512 hashes with a proof up to the file's `pieces root`),
//! asks peers for them (at most [`HASH_REQUESTS_PER_PEER_MAX`] outstanding per peer), checks
//! every answer's merkle proof against the root before keeping it, and asks another peer after
//! a reject or [`HASH_REQUEST_TIMEOUT`]. A peer that rejected a request is not asked it again;
//! one that let it time out is asked again only when no other peer may be. A peer whose
//! hashes fail the proof is dropped.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use metainfo::merkle_proof::{piece_layer_requests, verify_piece_layer_hashes, HashRange};
use metainfo::{Info, Sha256Hash};
use sansio::Timestamp;
use wire::{HashRequest, Message};

use crate::PeerKey;

/// An unanswered hash request is given to another peer after this long.
pub const HASH_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Most hash requests outstanding at one peer.
pub const HASH_REQUESTS_PER_PEER_MAX: usize = 2;

/// One request's worth of a piece layer.
#[derive(Debug)]
struct Chunk {
    /// Index into `PieceLayerFetch::files`.
    file: usize,
    range: HashRange,
    state: ChunkState,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ChunkState {
    Missing,
    Asked { peer: PeerKey, at: Timestamp },
    Done,
}

/// A file whose piece layer is being fetched.
#[derive(Debug)]
struct FileLayer {
    root: Sha256Hash,
    pieces: u32,
    hashes: Vec<Sha256Hash>,
}

/// A peer that may be asked: how many requests it holds, the chunks it rejected (never asked
/// of it again) and those it let time out.
#[derive(Debug, Default)]
struct PeerState {
    asked: usize,
    refused: BTreeSet<usize>,
    timed_out: BTreeSet<usize>,
}

impl PeerState {
    fn may_ask(&self, id: usize) -> bool {
        !self.refused.contains(&id) && !self.timed_out.contains(&id)
    }
}

/// State of a piece-layer download. Drain [`PieceLayerFetch::poll_transmit`] and
/// [`PieceLayerFetch::poll_drop`] after every `handle_*` call.
#[derive(Debug)]
pub struct PieceLayerFetch {
    piece_length: u64,
    files: Vec<FileLayer>,
    chunks: Vec<Chunk>,
    peers: BTreeMap<PeerKey, PeerState>,
    outbox: VecDeque<(PeerKey, Message<'static>)>,
    drops: VecDeque<(PeerKey, &'static str)>,
}

impl PieceLayerFetch {
    /// A fetch of every piece layer `info` needs (none for a v1 torrent or small files).
    pub fn new(info: &Info) -> PieceLayerFetch {
        let piece_length = info.piece_length();
        let mut roots = BTreeSet::new();
        let files: Vec<FileLayer> = info
            .files()
            .iter()
            .filter(|f| !f.is_pad() && f.length > piece_length)
            .filter_map(|f| f.pieces_root.map(|root| (root, f.length)))
            // Files with the same content share a root: fetch its layer once.
            .filter(|(root, _)| roots.insert(*root))
            .map(|(root, length)| {
                let pieces = length.div_ceil(piece_length) as u32;
                FileLayer {
                    root,
                    pieces,
                    hashes: Vec::new(),
                }
            })
            .collect();
        let chunks = files
            .iter()
            .enumerate()
            .flat_map(|(file, layer)| {
                piece_layer_requests(layer.pieces, piece_length)
                    .into_iter()
                    .map(move |range| Chunk {
                        file,
                        range,
                        state: ChunkState::Missing,
                    })
            })
            .collect();
        PieceLayerFetch {
            piece_length,
            files,
            chunks,
            peers: BTreeMap::new(),
            outbox: VecDeque::new(),
            drops: VecDeque::new(),
        }
    }

    /// Whether every needed layer is here (at once for torrents that need none).
    pub fn is_complete(&self) -> bool {
        self.chunks.iter().all(|c| c.state == ChunkState::Done)
    }

    /// The piece layers keyed by `pieces root`, once complete.
    pub fn piece_layers(&self) -> Option<BTreeMap<Sha256Hash, Vec<Sha256Hash>>> {
        self.is_complete().then(|| {
            self.files
                .iter()
                .map(|f| (f.root, f.hashes.clone()))
                .collect()
        })
    }

    /// A peer that may answer hash requests connected.
    pub fn handle_peer_connected(&mut self, now: Timestamp, peer: PeerKey) {
        self.peers.entry(peer).or_default();
        self.request_more(now);
    }

    /// A peer left: its requests go to others.
    pub fn handle_peer_disconnected(&mut self, now: Timestamp, peer: PeerKey) {
        self.forget(peer);
        self.request_more(now);
    }

    fn forget(&mut self, peer: PeerKey) {
        self.peers.remove(&peer);
        for chunk in &mut self.chunks {
            if matches!(chunk.state, ChunkState::Asked { peer: p, .. } if p == peer) {
                chunk.state = ChunkState::Missing;
            }
        }
    }

    /// A message from a peer: `hashes` and `hash reject` are acted on, the rest ignored.
    pub fn handle_message(&mut self, now: Timestamp, peer: PeerKey, message: &Message<'_>) {
        match message {
            Message::Hashes { request, hashes } => self.on_hashes(peer, request, hashes),
            Message::HashReject(request) => {
                if let Some(id) = self.asked_of(peer, request) {
                    self.release(id, peer, false);
                }
            }
            _ => return,
        }
        self.request_more(now);
    }

    /// Gives requests unanswered for [`HASH_REQUEST_TIMEOUT`] to other peers.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        let expired: Vec<(usize, PeerKey)> = self
            .chunks
            .iter()
            .enumerate()
            .filter_map(|(id, c)| match c.state {
                ChunkState::Asked { peer, at } if now >= at + HASH_REQUEST_TIMEOUT => {
                    Some((id, peer))
                }
                _ => None,
            })
            .collect();
        for (id, peer) in expired {
            self.release(id, peer, true);
        }
        self.request_more(now);
    }

    /// When to call [`PieceLayerFetch::handle_timeout`].
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.chunks
            .iter()
            .filter_map(|c| match c.state {
                ChunkState::Asked { at, .. } => Some(at + HASH_REQUEST_TIMEOUT),
                _ => None,
            })
            .min()
    }

    /// Messages to send.
    pub fn poll_transmit(&mut self) -> Option<(PeerKey, Message<'static>)> {
        self.outbox.pop_front()
    }

    /// Peers to disconnect (they sent hashes that fail their proof), with the reason.
    pub fn poll_drop(&mut self) -> Option<(PeerKey, &'static str)> {
        self.drops.pop_front()
    }

    fn wire_request(&self, id: usize) -> HashRequest {
        let chunk = &self.chunks[id];
        HashRequest {
            pieces_root: self.files[chunk.file].root,
            base_layer: chunk.range.base_layer,
            index: chunk.range.index,
            length: chunk.range.count,
            proof_layers: chunk.range.proof_layers,
        }
    }

    /// The chunk that `request` asked of `peer`, if it is outstanding there.
    fn asked_of(&self, peer: PeerKey, request: &HashRequest) -> Option<usize> {
        (0..self.chunks.len()).find(|&id| {
            matches!(self.chunks[id].state, ChunkState::Asked { peer: p, .. } if p == peer)
                && self.wire_request(id) == *request
        })
    }

    /// Takes chunk `id` back from `peer`, which rejected it or let it time out.
    fn release(&mut self, id: usize, peer: PeerKey, timed_out: bool) {
        self.chunks[id].state = ChunkState::Missing;
        if let Some(state) = self.peers.get_mut(&peer) {
            state.asked = state.asked.saturating_sub(1);
            if timed_out {
                state.timed_out.insert(id);
            } else {
                state.refused.insert(id);
            }
        }
    }

    fn on_hashes(&mut self, peer: PeerKey, request: &HashRequest, bytes: &[u8]) {
        // Answers that come after a timeout or were never asked for are ignored.
        let Some(id) = self.asked_of(peer, request) else {
            return;
        };
        let chunk = &self.chunks[id];
        let file = &self.files[chunk.file];
        let hashes: Vec<Sha256Hash> = bytes
            .chunks_exact(32)
            .map(|h| h.try_into().expect("chunks of 32"))
            .collect();
        let verified = if bytes.len().is_multiple_of(32) {
            verify_piece_layer_hashes(
                &file.root,
                file.pieces,
                self.piece_length,
                &chunk.range,
                &hashes,
            )
            .ok()
        } else {
            None
        };
        let Some(verified) = verified else {
            self.forget(peer);
            self.drops
                .push_back((peer, "hashes that fail their merkle proof"));
            return;
        };
        let file = &mut self.files[chunk.file];
        let start = chunk.range.index as usize;
        if file.hashes.len() < start + verified.len() {
            file.hashes.resize(start + verified.len(), [0; 32]);
        }
        file.hashes[start..start + verified.len()].copy_from_slice(&verified);
        self.chunks[id].state = ChunkState::Done;
        if let Some(state) = self.peers.get_mut(&peer) {
            state.asked = state.asked.saturating_sub(1);
        }
    }

    fn request_more(&mut self, now: Timestamp) {
        self.assign(now);
        // A chunk that no connected peer may be asked for, but that some only let time out, is
        // asked again: a slow peer may be the only one that has it.
        let mut retry = false;
        for id in 0..self.chunks.len() {
            let stuck = self.chunks[id].state == ChunkState::Missing
                && self.peers.values().all(|p| !p.may_ask(id))
                && self.peers.values().any(|p| p.timed_out.contains(&id));
            if stuck {
                self.peers.values_mut().for_each(|p| {
                    p.timed_out.remove(&id);
                });
                retry = true;
            }
        }
        if retry {
            self.assign(now);
        }
    }

    /// Gives missing chunks to peers with room, in key order.
    fn assign(&mut self, now: Timestamp) {
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for peer in keys {
            while let Some(state) = self.peers.get(&peer) {
                if state.asked >= HASH_REQUESTS_PER_PEER_MAX {
                    break;
                }
                let Some(id) = (0..self.chunks.len())
                    .find(|id| self.chunks[*id].state == ChunkState::Missing && state.may_ask(*id))
                else {
                    break;
                };
                self.chunks[id].state = ChunkState::Asked { peer, at: now };
                if let Some(state) = self.peers.get_mut(&peer) {
                    state.asked += 1;
                }
                let request = self.wire_request(id);
                self.outbox.push_back((peer, Message::HashRequest(request)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use metainfo::merkle_proof::PieceTree;
    use metainfo::{create_torrent, CreateOptions, MetaVersion, Torrent};

    use super::*;

    /// A v2 torrent of two files of 40 and 3 pieces (plus one small file) at 16 KiB pieces.
    fn torrent() -> (tempfile::TempDir, Torrent) {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("content");
        std::fs::create_dir(&root).expect("mkdir");
        let big: Vec<u8> = (0..40 * 16 * 1024u32).map(|i| (i % 253) as u8).collect();
        std::fs::write(root.join("big"), &big).expect("write");
        std::fs::write(root.join("mid"), vec![5u8; 3 * 16 * 1024 - 7]).expect("write");
        std::fs::write(root.join("small"), b"tiny").expect("write");
        let options = CreateOptions {
            version: MetaVersion::V2,
            piece_length: Some(16 * 1024),
            ..CreateOptions::default()
        };
        let torrent = create_torrent(&root, &options, &|_, _| {}).expect("create");
        (dir, torrent)
    }

    /// Answers every request with `tamper` applied to the answer.
    fn serve(
        fetch: &mut PieceLayerFetch,
        torrent: &Torrent,
        now: Timestamp,
        tamper: impl Fn(&mut Vec<Sha256Hash>),
    ) {
        let trees: BTreeMap<Sha256Hash, PieceTree> = torrent
            .piece_layers()
            .iter()
            .map(|(root, layer)| (*root, PieceTree::new(layer, torrent.info.piece_length())))
            .collect();
        for _ in 0..1000 {
            let Some((peer, Message::HashRequest(request))) = fetch.poll_transmit() else {
                break;
            };
            let range = HashRange {
                base_layer: request.base_layer,
                index: request.index,
                count: request.length,
                proof_layers: request.proof_layers,
            };
            let mut answer = trees[&request.pieces_root].answer(&range).expect("served");
            tamper(&mut answer);
            let hashes = Cow::Owned(answer.concat());
            fetch.handle_message(now, peer, &Message::Hashes { request, hashes });
        }
    }

    #[test]
    fn fetches_every_layer_and_matches_the_torrent() {
        let (_dir, torrent) = torrent();
        let mut fetch = PieceLayerFetch::new(&torrent.info);
        assert!(!fetch.is_complete());
        fetch.handle_peer_connected(Timestamp::ZERO, PeerKey(1));
        serve(&mut fetch, &torrent, Timestamp::ZERO, |_| {});
        let layers = fetch.piece_layers().expect("complete");
        assert_eq!(&layers, torrent.piece_layers());
        let rebuilt = Torrent::new(torrent.info.clone(), layers).expect("valid torrent");
        assert_eq!(rebuilt.piece_layers(), torrent.piece_layers());
    }

    #[test]
    fn a_peer_sending_bad_hashes_is_dropped_and_another_asked() {
        let (_dir, torrent) = torrent();
        let mut fetch = PieceLayerFetch::new(&torrent.info);
        fetch.handle_peer_connected(Timestamp::ZERO, PeerKey(1));
        serve(&mut fetch, &torrent, Timestamp::ZERO, |a| a[0][5] ^= 1);
        assert_eq!(
            fetch.poll_drop(),
            Some((PeerKey(1), "hashes that fail their merkle proof"))
        );
        assert!(!fetch.is_complete());
        fetch.handle_peer_connected(Timestamp::ZERO, PeerKey(2));
        serve(&mut fetch, &torrent, Timestamp::ZERO, |_| {});
        assert!(fetch.is_complete());
        assert_eq!(fetch.poll_drop(), None);
    }

    #[test]
    fn rejects_and_timeouts_move_requests_to_other_peers() {
        let (_dir, torrent) = torrent();
        let mut fetch = PieceLayerFetch::new(&torrent.info);
        fetch.handle_peer_connected(Timestamp::ZERO, PeerKey(1));
        // Peer 1 rejects everything, and is not asked again.
        let mut rejected = 0;
        for _ in 0..10 {
            let Some((peer, Message::HashRequest(request))) = fetch.poll_transmit() else {
                break;
            };
            fetch.handle_message(Timestamp::ZERO, peer, &Message::HashReject(request));
            rejected += 1;
        }
        assert_eq!(rejected, 2, "each of the two requests once");
        assert_eq!(fetch.poll_timeout(), None);
        // Peer 2 is asked but stays silent until the timeout.
        fetch.handle_peer_connected(Timestamp::ZERO, PeerKey(2));
        let asked: Vec<PeerKey> = std::iter::from_fn(|| fetch.poll_transmit())
            .map(|(p, _)| p)
            .collect();
        assert_eq!(asked, vec![PeerKey(2), PeerKey(2)]);
        let deadline = fetch.poll_timeout().expect("requests outstanding");
        assert_eq!(deadline, Timestamp::ZERO + HASH_REQUEST_TIMEOUT);
        fetch.handle_timeout(deadline);
        // Being the only peer that did not reject them, peer 2 is asked again.
        let asked: Vec<PeerKey> = std::iter::from_fn(|| fetch.poll_transmit())
            .map(|(p, _)| p)
            .collect();
        assert_eq!(asked, vec![PeerKey(2), PeerKey(2)]);
        // Peer 3 comes; when peer 2 is silent again, peer 3 is asked instead.
        fetch.handle_peer_connected(deadline, PeerKey(3));
        assert!(fetch.poll_transmit().is_none(), "both requests are out");
        let deadline = fetch.poll_timeout().expect("requests outstanding");
        fetch.handle_timeout(deadline);
        serve(&mut fetch, &torrent, deadline, |_| {});
        assert!(fetch.is_complete());
    }

    #[test]
    fn unsolicited_and_malformed_answers_change_nothing_or_drop() {
        let (_dir, torrent) = torrent();
        let mut fetch = PieceLayerFetch::new(&torrent.info);
        let request = HashRequest {
            pieces_root: [1; 32],
            base_layer: 0,
            index: 0,
            length: 2,
            proof_layers: 0,
        };
        let hashes = Cow::Owned(vec![0u8; 64]);
        fetch.handle_message(
            Timestamp::ZERO,
            PeerKey(9),
            &Message::Hashes { request, hashes },
        );
        assert_eq!(fetch.poll_drop(), None);
        fetch.handle_peer_connected(Timestamp::ZERO, PeerKey(1));
        let Some((_, Message::HashRequest(asked))) = fetch.poll_transmit() else {
            panic!("no request");
        };
        let hashes = Cow::Owned(vec![0u8; 33]);
        let message = Message::Hashes {
            request: asked,
            hashes,
        };
        fetch.handle_message(Timestamp::ZERO, PeerKey(1), &message);
        assert_eq!(fetch.poll_drop().map(|d| d.0), Some(PeerKey(1)));
    }
}
