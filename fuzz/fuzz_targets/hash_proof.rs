//! Arbitrary BEP 52 hash answers into the merkle-proof check, and arbitrary hash requests into
//! the piece-layer tree that serves them: neither may panic, a tree's own answers must pass
//! the check against its root, and any other answer must not pass unless it is the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use metainfo::merkle_proof::{verify_piece_layer_hashes, HashRange, PieceTree};

const PIECE_LENGTH: u64 = 64 * 1024;

fn u32_at(data: &[u8], at: usize) -> u32 {
    let mut bytes = [0u8; 4];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = data.get(at + i).copied().unwrap_or(0);
    }
    u32::from_be_bytes(bytes)
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 18 {
        return;
    }
    // Up to 4096 pieces, so that the tree stays small.
    let pieces = u32::from(u16::from_be_bytes([data[0], data[1]]) % 4096).max(1);
    let range = HashRange {
        base_layer: u32_at(data, 2) % 4,
        index: u32_at(data, 6),
        count: u32_at(data, 10),
        proof_layers: u32_at(data, 14) % 16,
    };
    let hashes: Vec<[u8; 32]> = data[18..]
        .chunks_exact(32)
        .map(|h| h.try_into().expect("32 bytes"))
        .collect();
    let layer: Vec<[u8; 32]> = (0..pieces)
        .map(|i| {
            let mut h = [data[1]; 32];
            h[..4].copy_from_slice(&i.to_be_bytes());
            h
        })
        .collect();
    let tree = PieceTree::new(&layer, PIECE_LENGTH);
    let root = tree.root();
    let theirs = verify_piece_layer_hashes(&root, pieces, PIECE_LENGTH, &range, &hashes);
    if let Some(answer) = tree.answer(&range) {
        let ours = verify_piece_layer_hashes(&root, pieces, PIECE_LENGTH, &range, &answer);
        if range.proof_layers + 1 >= pieces.next_power_of_two().ilog2() {
            assert!(ours.is_ok(), "the tree's own answer fails: {range:?}");
        }
        if theirs.is_ok() {
            assert_eq!(hashes, answer, "a forged answer passed: {range:?}");
        }
    }
});
