//! BEP 9: fetching a torrent's info dictionary from peers, starting from a magnet link.
//!
//! Peers advertise `ut_metadata` and `metadata_size` in their extended handshake. The fetch asks
//! each such peer for missing 16 KiB pieces (one outstanding per peer), assembles them, and checks
//! the SHA-1 of the whole against the v1 info-hash (the SHA-256 against the v2 info-hash for a
//! v2-only magnet, BEP 52); on mismatch it starts over without the peers that sent it.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use sha1::{Digest, Sha1};
use sha2::Sha256;
use wire::{ExtendedHandshake, Message, MetadataMessage, METADATA_PIECE_LEN};

use crate::swarm::UT_METADATA_ID;
use crate::PeerKey;

/// Largest info dictionary accepted (bounded memory for a hostile `metadata_size`).
pub const METADATA_BYTES_MAX: u64 = 16 * 1024 * 1024;

/// State of a metadata download.
#[derive(Debug)]
pub struct MetadataFetch {
    info_hash: ExpectedHash,
    size: Option<usize>,
    pieces: Vec<Option<Vec<u8>>>,
    /// Peers that can serve metadata: their `ut_metadata` id and the piece asked of them.
    peers: BTreeMap<PeerKey, (u8, Option<u32>)>,
    contributors: BTreeSet<PeerKey>,
    excluded: BTreeSet<PeerKey>,
    outbox: Vec<(PeerKey, Message<'static>)>,
}

/// The info-hash the assembled dictionary must have.
#[derive(Clone, Copy, Debug)]
enum ExpectedHash {
    V1([u8; 20]),
    V2([u8; 32]),
}

impl MetadataFetch {
    /// A fetch for the torrent with this v1 info-hash.
    pub fn new(info_hash: [u8; 20]) -> MetadataFetch {
        MetadataFetch::expecting(ExpectedHash::V1(info_hash))
    }

    /// A fetch for a v2-only torrent with this (full, 32-byte) v2 info-hash.
    pub fn new_v2(info_hash: [u8; 32]) -> MetadataFetch {
        MetadataFetch::expecting(ExpectedHash::V2(info_hash))
    }

    fn expecting(info_hash: ExpectedHash) -> MetadataFetch {
        MetadataFetch {
            info_hash,
            size: None,
            pieces: Vec::new(),
            peers: BTreeMap::new(),
            contributors: BTreeSet::new(),
            excluded: BTreeSet::new(),
            outbox: Vec::new(),
        }
    }

    /// The extended handshake to send to every peer (advertising `ut_metadata`).
    pub fn our_handshake() -> Message<'static> {
        let mut hs = ExtendedHandshake::default();
        hs.extensions
            .insert("ut_metadata".to_owned(), UT_METADATA_ID);
        Message::Extended {
            id: 0,
            payload: Cow::Owned(hs.to_bytes()),
        }
    }

    /// A peer's extended handshake arrived.
    pub fn handle_handshake(&mut self, peer: PeerKey, hs: &ExtendedHandshake) {
        let Some(&id) = hs.extensions.get("ut_metadata").filter(|&&id| id != 0) else {
            return;
        };
        if self.excluded.contains(&peer) {
            return;
        }
        if self.size.is_none() {
            if let Some(size) = hs
                .metadata_size
                .filter(|&s| s > 0 && s <= METADATA_BYTES_MAX)
            {
                self.size = Some(size as usize);
                self.pieces = vec![None; (size as usize).div_ceil(METADATA_PIECE_LEN)];
            }
        }
        self.peers.insert(peer, (id, None));
        self.request_more();
    }

    /// A peer left.
    pub fn handle_disconnect(&mut self, peer: PeerKey) {
        self.peers.remove(&peer);
        self.request_more();
    }

    /// A `ut_metadata` message from a peer. Returns the verified info dictionary once complete.
    pub fn handle_message(
        &mut self,
        peer: PeerKey,
        message: &MetadataMessage<'_>,
    ) -> Option<Vec<u8>> {
        let entry = self.peers.get_mut(&peer)?;
        let asked = entry.1.take();
        match *message {
            MetadataMessage::Data {
                piece,
                total_size,
                data,
            } if asked == Some(piece) => {
                let expected_len = self
                    .size
                    .map(|s| (s - piece as usize * METADATA_PIECE_LEN).min(METADATA_PIECE_LEN));
                if Some(total_size as usize) == self.size && expected_len == Some(data.len()) {
                    self.pieces[piece as usize] = Some(data.to_vec());
                    self.contributors.insert(peer);
                }
            }
            MetadataMessage::Reject { .. } => {
                self.peers.remove(&peer);
            }
            _ => {}
        }
        let done = self.assemble();
        if done.is_none() {
            self.request_more();
        }
        done
    }

    fn assemble(&mut self) -> Option<Vec<u8>> {
        if self.pieces.is_empty() || self.pieces.iter().any(Option::is_none) {
            return None;
        }
        let info: Vec<u8> = self.pieces.iter().flatten().flatten().copied().collect();
        let matches = match self.info_hash {
            ExpectedHash::V1(hash) => Sha1::digest(&info).as_slice() == hash,
            ExpectedHash::V2(hash) => Sha256::digest(&info).as_slice() == hash,
        };
        if matches {
            return Some(info);
        }
        for peer in std::mem::take(&mut self.contributors) {
            self.peers.remove(&peer);
            self.excluded.insert(peer);
        }
        self.pieces.iter_mut().for_each(|p| *p = None);
        None
    }

    fn request_more(&mut self) {
        let asked: BTreeSet<u32> = self.peers.values().filter_map(|(_, a)| *a).collect();
        let mut missing = (0..self.pieces.len() as u32)
            .filter(|i| self.pieces[*i as usize].is_none() && !asked.contains(i));
        for (&peer, (id, ask)) in self.peers.iter_mut() {
            if ask.is_some() {
                continue;
            }
            let Some(piece) = missing.next() else {
                break;
            };
            *ask = Some(piece);
            let payload = Cow::Owned(MetadataMessage::Request { piece }.to_bytes());
            self.outbox
                .push((peer, Message::Extended { id: *id, payload }));
        }
    }

    /// Messages to send.
    pub fn poll_transmit(&mut self) -> Option<(PeerKey, Message<'static>)> {
        if self.outbox.is_empty() {
            None
        } else {
            Some(self.outbox.remove(0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handshake(size: u64) -> ExtendedHandshake {
        let mut hs = ExtendedHandshake {
            metadata_size: Some(size),
            ..ExtendedHandshake::default()
        };
        hs.extensions.insert("ut_metadata".to_owned(), 3);
        hs
    }

    fn serve(fetch: &mut MetadataFetch, info: &[u8], corrupt: bool) -> Option<Vec<u8>> {
        let mut result = None;
        for _ in 0..100 {
            let Some((peer, Message::Extended { id: 3, payload })) = fetch.poll_transmit() else {
                break;
            };
            let Ok(MetadataMessage::Request { piece }) = MetadataMessage::parse(&payload) else {
                panic!("not a request");
            };
            let start = piece as usize * METADATA_PIECE_LEN;
            let mut data = info[start..(start + METADATA_PIECE_LEN).min(info.len())].to_vec();
            if corrupt {
                data[0] ^= 1;
            }
            let reply = MetadataMessage::Data {
                piece,
                total_size: info.len() as u64,
                data: &data,
            };
            result = result.or(fetch.handle_message(peer, &reply));
        }
        result
    }

    #[test]
    fn fetches_and_verifies_multi_piece_metadata() {
        let info: Vec<u8> = (0..40_000u32).map(|i| i as u8).collect();
        let hash: [u8; 20] = Sha1::digest(&info).into();
        let mut fetch = MetadataFetch::new(hash);
        fetch.handle_handshake(PeerKey(1), &handshake(info.len() as u64));
        fetch.handle_handshake(PeerKey(2), &handshake(info.len() as u64));
        assert_eq!(serve(&mut fetch, &info, false), Some(info));
    }

    #[test]
    fn corrupt_metadata_is_refused_and_its_sender_excluded() {
        let info = vec![7u8; 100];
        let hash: [u8; 20] = Sha1::digest(&info).into();
        let mut fetch = MetadataFetch::new(hash);
        fetch.handle_handshake(PeerKey(1), &handshake(100));
        assert_eq!(serve(&mut fetch, &info, true), None);
        fetch.handle_handshake(PeerKey(1), &handshake(100));
        fetch.handle_handshake(PeerKey(2), &handshake(100));
        assert_eq!(serve(&mut fetch, &info, false), Some(info));
    }

    #[test]
    fn v2_metadata_is_checked_with_sha256() {
        let info = vec![3u8; 300];
        let hash: [u8; 32] = Sha256::digest(&info).into();
        let mut fetch = MetadataFetch::new_v2(hash);
        fetch.handle_handshake(PeerKey(1), &handshake(300));
        assert_eq!(serve(&mut fetch, &info, true), None);
        fetch.handle_handshake(PeerKey(2), &handshake(300));
        assert_eq!(serve(&mut fetch, &info, false), Some(info));
    }

    #[test]
    fn oversized_metadata_is_ignored() {
        let mut fetch = MetadataFetch::new([0; 20]);
        fetch.handle_handshake(PeerKey(1), &handshake(METADATA_BYTES_MAX + 1));
        assert!(fetch.poll_transmit().is_none());
    }
}
