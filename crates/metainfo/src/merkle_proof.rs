//! BEP 52 hash requests over a file's piece layer: planning them, answering them with merkle
//! proofs, and checking the answers against the file's `pieces root`.
//!
//! Layers are numbered from the 16 KiB leaves (layer 0) upwards, so a file's piece layer is
//! layer `log2(piece_length / 16 KiB)`. A request names a run of `count` hashes (a power of
//! two, at an `index` that is a multiple of it) in a base layer, and `proof_layers`: the
//! answer carries the `count` hashes, then one uncle hash for each layer from the run's own
//! subtree root up to `proof_layers` above the base, lowest first (as libtorrent counts them:
//! `max(0, proof_layers - log2(count) + 1)` uncles). With `proof_layers` one less than the
//! tree's height above the base, the uncles reach the root.
//!
//! Only the piece layer is served and checked here: the layer a magnet download is missing.

use crate::merkle::{hash_pair, leaves_per_piece, zero_subtree_root, Sha256Hash};

/// Most hashes one request may ask for (libtorrent asks for 512 at a time).
pub const HASHES_PER_REQUEST_MAX: u32 = 512;

/// One BEP 52 hash request's coordinates (the `pieces root` is kept by the caller).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HashRange {
    /// Layer of the requested hashes, counted from the 16 KiB leaves (0).
    pub base_layer: u32,
    /// Offset of the first hash in that layer.
    pub index: u32,
    /// Number of hashes.
    pub count: u32,
    /// Layers above the base covered by the proof.
    pub proof_layers: u32,
}

impl HashRange {
    /// Number of uncle hashes that follow the `count` hashes in an answer.
    pub fn uncle_count(&self) -> u32 {
        self.proof_layers
            .saturating_add(1)
            .saturating_sub(self.count.max(1).ilog2())
    }

    /// Hashes in a full answer (requested plus uncles).
    pub fn answer_len(&self) -> u64 {
        u64::from(self.count) + u64::from(self.uncle_count())
    }
}

/// The piece layer's number counted from the leaves: `log2(piece_length / 16 KiB)`.
pub fn piece_layer_number(piece_length: u64) -> u32 {
    leaves_per_piece(piece_length).ilog2()
}

/// Height of a file's tree above its piece layer: `log2` of the padded layer width.
fn height_above_pieces(pieces: u32) -> u32 {
    pieces.max(1).next_power_of_two().ilog2()
}

/// The requests that together fetch the whole piece layer of a file of `pieces` pieces: runs
/// of [`HASHES_PER_REQUEST_MAX`] (the last one shortened to the next power of two), each with a
/// proof up to the root, as libtorrent expects them.
pub fn piece_layer_requests(pieces: u32, piece_length: u64) -> Vec<HashRange> {
    let proof_layers = height_above_pieces(pieces).saturating_sub(1);
    (0..pieces)
        .step_by(HASHES_PER_REQUEST_MAX as usize)
        .map(|index| HashRange {
            base_layer: piece_layer_number(piece_length),
            index,
            count: (pieces - index)
                .next_power_of_two()
                .min(HASHES_PER_REQUEST_MAX),
            proof_layers,
        })
        .collect()
}

/// Why an answer to a piece-layer hash request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The range is not a piece-layer range of this file (wrong layer, size or alignment).
    #[error("the hash range does not fit the file's piece layer")]
    BadRange,
    /// The proof does not reach the root: too few proof layers asked for.
    #[error("the proof does not reach the pieces root")]
    ShortProof,
    /// Too few or too many hashes for the range.
    #[error("wrong number of hashes for the range")]
    BadLength,
    /// The hashes and uncles do not hash up to the `pieces root`.
    #[error("the hashes do not hash up to the pieces root")]
    Mismatch,
}

/// Checks `range` against a file of `pieces` pieces: the piece layer, a power-of-two count of
/// at most [`HASHES_PER_REQUEST_MAX`], aligned, inside the padded layer, proof within the tree.
fn check_range(range: &HashRange, pieces: u32, piece_length: u64) -> Result<(), ProofError> {
    let width = u64::from(pieces.max(1)).next_power_of_two();
    let fits = range.base_layer == piece_layer_number(piece_length)
        && range.count.is_power_of_two()
        && range.count <= HASHES_PER_REQUEST_MAX
        && range.index.is_multiple_of(range.count)
        && u64::from(range.index) + u64::from(range.count) <= width
        && range.proof_layers < height_above_pieces(pieces).max(1);
    if fits {
        Ok(())
    } else {
        Err(ProofError::BadRange)
    }
}

/// Checks an answer to a piece-layer request for a file of `pieces` pieces whose tree has
/// root `root`: `hashes` are the `count` requested hashes followed by the uncles. On success
/// returns the hashes of the file's real pieces in the range (the padding beyond the last
/// piece dropped). Never panics on hostile values.
pub fn verify_piece_layer_hashes(
    root: &Sha256Hash,
    pieces: u32,
    piece_length: u64,
    range: &HashRange,
    hashes: &[Sha256Hash],
) -> Result<Vec<Sha256Hash>, ProofError> {
    check_range(range, pieces, piece_length)?;
    if range.proof_layers + 1 < height_above_pieces(pieces) {
        return Err(ProofError::ShortProof);
    }
    if hashes.len() as u64 != range.answer_len() {
        return Err(ProofError::BadLength);
    }
    let (run, uncles) = hashes.split_at(range.count as usize);
    let mut row = run.to_vec();
    while row.len() > 1 {
        row = row.chunks(2).map(|p| hash_pair(&p[0], &p[1])).collect();
    }
    let mut node = row[0];
    let mut position = range.index / range.count;
    for uncle in uncles {
        node = if position.is_multiple_of(2) {
            hash_pair(&node, uncle)
        } else {
            hash_pair(uncle, &node)
        };
        position /= 2;
    }
    if position != 0 || node != *root {
        return Err(ProofError::Mismatch);
    }
    let real = pieces.saturating_sub(range.index).min(range.count) as usize;
    Ok(run[..real].to_vec())
}

/// The tree above one file's piece layer, kept whole so that hash requests are answered
/// without rehashing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PieceTree {
    pieces: u32,
    piece_length: u64,
    /// Rows from the padded piece layer (first) up to the root (last, one hash).
    rows: Vec<Vec<Sha256Hash>>,
}

impl PieceTree {
    /// The tree over a file's piece layer (one hash per piece, at least one).
    pub fn new(layer: &[Sha256Hash], piece_length: u64) -> PieceTree {
        let width = layer.len().max(1).next_power_of_two();
        let mut first = layer.to_vec();
        first.resize(width, zero_subtree_root(leaves_per_piece(piece_length)));
        let mut rows = vec![first];
        while rows.last().map_or(0, Vec::len) > 1 {
            let above = rows[rows.len() - 1]
                .chunks(2)
                .map(|p| hash_pair(&p[0], &p[1]))
                .collect();
            rows.push(above);
        }
        PieceTree {
            pieces: layer.len() as u32,
            piece_length,
            rows,
        }
    }

    /// The file's `pieces root`.
    pub fn root(&self) -> Sha256Hash {
        self.rows
            .last()
            .and_then(|r| r.first())
            .copied()
            .unwrap_or_default()
    }

    /// The answer to a hash request for `range` (the hashes, then the uncles), or `None` when
    /// the range is not one this tree can serve (see [`HashRange`]).
    pub fn answer(&self, range: &HashRange) -> Option<Vec<Sha256Hash>> {
        check_range(range, self.pieces, self.piece_length).ok()?;
        let start = range.index as usize;
        let mut out = self.rows[0][start..start + range.count as usize].to_vec();
        let subtree_row = range.count.ilog2() as usize;
        let mut position = start >> subtree_row;
        for row in &self.rows[subtree_row..] {
            if out.len() as u64 == range.answer_len() {
                break;
            }
            out.push(*row.get(position ^ 1)?);
            position /= 2;
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::merkle::root_from_piece_layer;

    const PIECE: u64 = 64 * 1024;

    fn layer(pieces: u32, salt: u8) -> Vec<Sha256Hash> {
        (0..pieces)
            .map(|i| {
                let mut h = [salt; 32];
                h[..4].copy_from_slice(&i.to_be_bytes());
                h
            })
            .collect()
    }

    fn fetch_all(tree: &PieceTree, pieces: u32) -> Vec<Sha256Hash> {
        let root = root_from_piece_layer(&layer(pieces, 7), PIECE);
        assert_eq!(tree.root(), root);
        piece_layer_requests(pieces, PIECE)
            .iter()
            .flat_map(|range| {
                let answer = tree.answer(range).expect("served");
                verify_piece_layer_hashes(&root, pieces, PIECE, range, &answer).expect("valid")
            })
            .collect()
    }

    #[test]
    fn whole_layers_round_trip_through_requests() {
        for pieces in [2, 3, 4, 5, 511, 512, 513, 1024, 1500] {
            let tree = PieceTree::new(&layer(pieces, 7), PIECE);
            assert_eq!(
                fetch_all(&tree, pieces),
                layer(pieces, 7),
                "{pieces} pieces"
            );
        }
    }

    #[test]
    fn requests_follow_libtorrent_sizes() {
        let requests = piece_layer_requests(1500, PIECE);
        let shape: Vec<(u32, u32, u32)> = requests
            .iter()
            .map(|r| (r.index, r.count, r.uncle_count()))
            .collect();
        // 1500 pieces pad to 2048 = 2^11: a run of 512 needs uncles at layers 9 and 10.
        assert_eq!(shape, vec![(0, 512, 2), (512, 512, 2), (1024, 512, 2)]);
        assert!(requests
            .iter()
            .all(|r| r.base_layer == 2 && r.proof_layers == 10));
        let last = piece_layer_requests(513, PIECE)[1];
        assert_eq!((last.index, last.count, last.uncle_count()), (512, 1, 10));
    }

    #[test]
    fn out_of_range_requests_are_refused() {
        let tree = PieceTree::new(&layer(5, 1), PIECE);
        let good = HashRange {
            base_layer: 2,
            index: 4,
            count: 4,
            proof_layers: 2,
        };
        assert!(tree.answer(&good).is_some());
        for bad in [
            HashRange { index: 8, ..good },
            HashRange { index: 2, ..good },
            HashRange { count: 3, ..good },
            HashRange { count: 0, ..good },
            HashRange {
                count: 1024,
                index: 0,
                ..good
            },
            HashRange {
                proof_layers: 3,
                ..good
            },
            HashRange {
                base_layer: 0,
                ..good
            },
            HashRange {
                index: u32::MAX,
                count: 1,
                ..good
            },
        ] {
            assert_eq!(tree.answer(&bad), None, "{bad:?}");
            let root = tree.root();
            assert_eq!(
                verify_piece_layer_hashes(&root, 5, PIECE, &bad, &[[0; 32]; 8]),
                Err(ProofError::BadRange),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn short_proofs_and_wrong_lengths_are_refused() {
        let tree = PieceTree::new(&layer(8, 1), PIECE);
        let short = HashRange {
            base_layer: 2,
            index: 0,
            count: 2,
            proof_layers: 1,
        };
        let answer = tree.answer(&short).expect("served");
        assert_eq!(
            verify_piece_layer_hashes(&tree.root(), 8, PIECE, &short, &answer),
            Err(ProofError::ShortProof)
        );
        let full = HashRange {
            proof_layers: 2,
            ..short
        };
        let mut answer = tree.answer(&full).expect("served");
        answer.push([0; 32]);
        assert_eq!(
            verify_piece_layer_hashes(&tree.root(), 8, PIECE, &full, &answer),
            Err(ProofError::BadLength)
        );
    }

    proptest! {
        #[test]
        fn any_flipped_byte_is_refused(
            pieces in 2u32..1200,
            request in any::<prop::sample::Index>(),
            hash in any::<prop::sample::Index>(),
            byte in 0usize..32,
            bit in 0u8..8,
        ) {
            let tree = PieceTree::new(&layer(pieces, 3), PIECE);
            let requests = piece_layer_requests(pieces, PIECE);
            let range = requests[request.index(requests.len())];
            let mut answer = tree.answer(&range).expect("served");
            prop_assert!(verify_piece_layer_hashes(&tree.root(), pieces, PIECE, &range, &answer).is_ok());
            let at = hash.index(answer.len());
            answer[at][byte] ^= 1 << bit;
            prop_assert_eq!(
                verify_piece_layer_hashes(&tree.root(), pieces, PIECE, &range, &answer),
                Err(ProofError::Mismatch)
            );
        }

        #[test]
        fn hostile_values_never_panic(
            pieces in 0u32..5000,
            piece_length in any::<u64>(),
            base_layer in any::<u32>(),
            index in any::<u32>(),
            count in any::<u32>(),
            proof_layers in any::<u32>(),
            len in 0usize..64,
        ) {
            let range = HashRange { base_layer, index, count, proof_layers };
            let hashes = vec![[9u8; 32]; len];
            let _ = verify_piece_layer_hashes(&[1; 32], pieces, piece_length, &range, &hashes);
            let _ = range.answer_len();
            if pieces > 0 && pieces < 3000 {
                let tree = PieceTree::new(&layer(pieces, 5), PIECE);
                let _ = tree.answer(&range);
            }
        }
    }
}
