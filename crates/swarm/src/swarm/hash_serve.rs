//! Serving BEP 52 hash requests from the torrent's piece layers.
//!
//! Only piece-layer hashes are served (what a peer that started from a magnet link needs);
//! requests for other layers, unknown roots, misaligned or oversized ranges get a hash reject.
//! Answers are bounded by [`metainfo::merkle_proof::HASHES_PER_REQUEST_MAX`] hashes plus the
//! proof.

use std::borrow::Cow;
use std::collections::BTreeMap;

use metainfo::merkle_proof::{HashRange, PieceTree};
use metainfo::Sha256Hash;
use wire::{HashRequest, Message};

use super::Swarm;

impl Swarm {
    /// Serves hash requests (BEP 52) from these piece layers, keyed by `pieces root`.
    pub fn set_piece_layers(
        &mut self,
        piece_length: u64,
        layers: &BTreeMap<Sha256Hash, Vec<Sha256Hash>>,
    ) {
        self.piece_trees = layers
            .iter()
            .map(|(root, layer)| (*root, PieceTree::new(layer, piece_length)))
            .collect();
    }

    /// The `hashes` answering `request`, or a `hash reject`.
    pub(super) fn answer_hash_request(&self, request: HashRequest) -> Message<'static> {
        let range = HashRange {
            base_layer: request.base_layer,
            index: request.index,
            count: request.length,
            proof_layers: request.proof_layers,
        };
        match self
            .piece_trees
            .get(&request.pieces_root)
            .and_then(|tree| tree.answer(&range))
        {
            Some(hashes) => Message::Hashes {
                request,
                hashes: Cow::Owned(hashes.concat()),
            },
            None => Message::HashReject(request),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use metainfo::merkle::root_from_piece_layer;
    use metainfo::merkle_proof::{
        piece_layer_requests, verify_piece_layer_hashes, HASHES_PER_REQUEST_MAX,
    };
    use sansio::{Rng, Timestamp};
    use wire::Reserved;

    use super::*;
    use crate::{Action, Bitfield, Config, Geometry, PeerInfo, PeerKey};

    const PIECE: u64 = 16 * 1024;

    fn seeder(layer: &[Sha256Hash]) -> Swarm {
        let geometry = Geometry::new(PIECE as u32, PIECE * layer.len() as u64).expect("geometry");
        let have = Bitfield::full(geometry.piece_count());
        let mut swarm =
            Swarm::new(geometry, have, Config::default(), Rng::from_seed(1)).expect("swarm");
        let root = root_from_piece_layer(layer, PIECE);
        swarm.set_piece_layers(PIECE, &BTreeMap::from([(root, layer.to_vec())]));
        let info = PeerInfo {
            addr: SocketAddr::from(([127, 0, 0, 2], 6881)),
            reserved: Reserved::FAST,
            outgoing: false,
        };
        swarm.handle_peer_connected(Timestamp::ZERO, PeerKey(1), info);
        while swarm.poll_action().is_some() {}
        swarm
    }

    fn ask(swarm: &mut Swarm, request: HashRequest) -> Message<'static> {
        swarm.handle_message(Timestamp::ZERO, PeerKey(1), Message::HashRequest(request));
        match swarm.poll_action() {
            Some(Action::Send { message, .. }) => message,
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    #[test]
    fn answers_verify_and_bad_ranges_are_rejected() {
        let layer: Vec<Sha256Hash> = (0..600u32)
            .map(|i| {
                let mut h = [0u8; 32];
                h[..4].copy_from_slice(&i.to_le_bytes());
                h
            })
            .collect();
        let root = root_from_piece_layer(&layer, PIECE);
        let mut swarm = seeder(&layer);
        for range in piece_layer_requests(600, PIECE) {
            let request = HashRequest {
                pieces_root: root,
                base_layer: range.base_layer,
                index: range.index,
                length: range.count,
                proof_layers: range.proof_layers,
            };
            let Message::Hashes { hashes, .. } = ask(&mut swarm, request) else {
                panic!("rejected {request:?}");
            };
            let hashes: Vec<Sha256Hash> = hashes
                .chunks_exact(32)
                .map(|h| h.try_into().expect("32 bytes"))
                .collect();
            let got = verify_piece_layer_hashes(&root, 600, PIECE, &range, &hashes);
            let end = (range.index + range.count).min(600) as usize;
            assert_eq!(got, Ok(layer[range.index as usize..end].to_vec()));
        }
        let good = HashRequest {
            pieces_root: root,
            base_layer: 0,
            index: 0,
            length: 512,
            proof_layers: 9,
        };
        for bad in [
            HashRequest {
                pieces_root: [7; 32],
                ..good
            },
            HashRequest {
                length: HASHES_PER_REQUEST_MAX * 2,
                ..good
            },
            HashRequest {
                index: 1024,
                ..good
            },
            HashRequest {
                base_layer: 1,
                ..good
            },
            HashRequest {
                proof_layers: u32::MAX,
                ..good
            },
        ] {
            assert_eq!(ask(&mut swarm, bad), Message::HashReject(bad));
        }
    }
}
