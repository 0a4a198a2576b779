//! BEP 52 merkle trees: SHA-256 over 16 KiB blocks.
//!
//! Each file has its own tree. Leaves are the SHA-256 of each 16 KiB block of the file (the last
//! block may be shorter); the leaf row is padded to a power of two with all-zero hashes (32 zero
//! bytes, not the hash of zeros). The *piece layer* is the row whose nodes each cover one piece;
//! the root is the file's `pieces root`. Like libtorrent, a file of at most one piece is hashed as
//! one tree of `next_power_of_two(blocks)` leaves, while every piece of a larger file is hashed
//! over `piece_length / 16 KiB` leaves (the last piece padded with zero leaves), and the piece
//! layer is padded with the root of an all-zero piece subtree.

use sha1::Digest;
use sha2::Sha256;

/// The size of a merkle leaf block: 16 KiB.
pub const BLOCK_SIZE: usize = 16 * 1024;

/// A SHA-256 hash: a merkle leaf, node or root.
pub type Sha256Hash = [u8; 32];

/// SHA-256 of the two children, left then right.
pub(crate) fn hash_pair(left: &Sha256Hash, right: &Sha256Hash) -> Sha256Hash {
    let mut hasher = Sha256::new();
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The root of a tree of `leaves` all-zero leaves (`leaves` a power of two): the hash that pads a
/// row where a whole subtree is missing.
pub fn zero_subtree_root(leaves: usize) -> Sha256Hash {
    let mut node = [0u8; 32];
    let mut width = 1;
    while width < leaves {
        node = hash_pair(&node, &node);
        width *= 2;
    }
    node
}

/// The merkle root over `nodes`, the row padded to `width` (a power of two, at least
/// `nodes.len()`) with `pad`, the root of an empty subtree at that row's height.
pub fn merkle_root(nodes: &[Sha256Hash], width: usize, pad: Sha256Hash) -> Sha256Hash {
    debug_assert!(width.is_power_of_two() && width >= nodes.len());
    let mut row: Vec<Sha256Hash> = nodes.to_vec();
    let mut pad = pad;
    let mut width = width.max(1);
    if row.is_empty() {
        row.push(pad);
    }
    while width > 1 {
        row = row
            .chunks(2)
            .map(|pair| hash_pair(&pair[0], pair.get(1).unwrap_or(&pad)))
            .collect();
        pad = hash_pair(&pad, &pad);
        width /= 2;
    }
    row[0]
}

/// SHA-256 of each 16 KiB block of `data`.
pub fn block_hashes(data: &[u8]) -> Vec<Sha256Hash> {
    data.chunks(BLOCK_SIZE)
        .map(|block| Sha256::digest(block).into())
        .collect()
}

/// The piece-layer hash of one piece of a file larger than one piece: the root over
/// `piece_length / 16 KiB` leaves. `piece_data` is the file's bytes in that piece (shorter for
/// the file's last piece).
pub fn piece_layer_hash(piece_data: &[u8], piece_length: u64) -> Sha256Hash {
    merkle_root(
        &block_hashes(piece_data),
        leaves_per_piece(piece_length),
        [0; 32],
    )
}

/// The hash of one piece of a file of `file_length` bytes, from that piece's data: the
/// piece-layer entry for files larger than one piece, the `pieces root` itself otherwise.
pub fn piece_hash_v2(piece_data: &[u8], piece_length: u64, file_length: u64) -> Sha256Hash {
    piece_hash_from_blocks(&block_hashes(piece_data), piece_length, file_length)
}

/// [`piece_hash_v2`] from the piece's 16 KiB block hashes, for callers that hash as they read.
pub fn piece_hash_from_blocks(
    blocks: &[Sha256Hash],
    piece_length: u64,
    file_length: u64,
) -> Sha256Hash {
    let leaves = if file_length <= piece_length {
        blocks.len().max(1).next_power_of_two()
    } else {
        leaves_per_piece(piece_length)
    };
    merkle_root(blocks, leaves, [0; 32])
}

/// Number of leaves under one piece.
pub fn leaves_per_piece(piece_length: u64) -> usize {
    (piece_length / BLOCK_SIZE as u64).max(1) as usize
}

/// The `pieces root` of a file from its piece layer (one hash per piece, in order).
pub fn root_from_piece_layer(layer: &[Sha256Hash], piece_length: u64) -> Sha256Hash {
    let pad = zero_subtree_root(leaves_per_piece(piece_length));
    merkle_root(layer, layer.len().next_power_of_two(), pad)
}

/// Whether `piece_data` hashes to `expected` under SHA-1 (v1 pieces, BEP 3).
pub fn verify_piece_v1(piece_data: &[u8], expected: &[u8; 20]) -> bool {
    let actual: [u8; 20] = sha1::Sha1::digest(piece_data).into();
    &actual == expected
}

/// Whether `piece_data` (the file's bytes in that piece) hashes to `expected`, its piece-layer
/// entry (or the `pieces root` for a file of at most one piece).
pub fn verify_piece_v2(
    piece_data: &[u8],
    piece_length: u64,
    file_length: u64,
    expected: &Sha256Hash,
) -> bool {
    &piece_hash_v2(piece_data, piece_length, file_length) == expected
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_block_root_is_its_hash() {
        let data = b"hello";
        let expected: Sha256Hash = Sha256::digest(data).into();
        assert_eq!(piece_hash_v2(data, 32768, 5), expected);
    }

    #[test]
    fn padding_uses_zero_leaves() {
        // Three blocks pad to four leaves; the fourth is 32 zero bytes.
        let data = vec![1u8; BLOCK_SIZE * 2 + 10];
        let leaves = block_hashes(&data);
        let zero = [0u8; 32];
        let expected = hash_pair(
            &hash_pair(&leaves[0], &leaves[1]),
            &hash_pair(&leaves[2], &zero),
        );
        assert_eq!(piece_hash_v2(&data, 1 << 20, data.len() as u64), expected);
    }

    #[test]
    fn layer_root_equals_whole_tree_root() {
        // A file of 3 pieces of 2 blocks: the root via the piece layer equals the root over all
        // leaves padded to 8.
        let piece_length = 2 * BLOCK_SIZE as u64;
        let data: Vec<u8> = (0..5 * BLOCK_SIZE + 7).map(|i| (i % 251) as u8).collect();
        let layer: Vec<Sha256Hash> = data
            .chunks(piece_length as usize)
            .map(|p| piece_layer_hash(p, piece_length))
            .collect();
        let all = merkle_root(&block_hashes(&data), 8, [0; 32]);
        assert_eq!(root_from_piece_layer(&layer, piece_length), all);
    }
}
