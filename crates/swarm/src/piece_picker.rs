//! Which blocks to ask a peer for next.
//!
//! Order of preference, for a peer that has some of what we lack:
//! 1. blocks of pieces already started (finish what is started: fewer half-done pieces);
//! 2. while fewer than [`RANDOM_FIRST_PIECES`] pieces are complete, a random piece (rare pieces
//!    are slow to come by, and the first piece matters most for having something to trade);
//! 3. the rarest piece, ties broken by the seeded generator — or, in sequential mode, the lowest
//!    missing piece at or after the playback position;
//! 4. end-game: once every missing block is requested, blocks requested from other peers too
//!    (at most [`ENDGAME_DUPLICATES_MAX`] requests per block), cancelled when the first arrives.
//!
//! Pieces held in memory (started, or complete and waiting for their hash check) are capped by
//! [`PiecePicker::set_pieces_in_progress_max`]: at the cap no new piece is started, so the
//! driver's memory for piece buffers is bounded whatever the number of peers.
//!
//! Invariants: a piece is in `in_progress` iff it is missing, not verifying, and some block of it
//! was requested or received; `availability[i]` counts connected peers that have piece `i`.

use std::collections::{BTreeMap, BTreeSet};

use sansio::{Rng, RngExt};
use wire::{BlockRequest, BLOCK_LEN};

use crate::{Bitfield, Error, PeerKey};

/// Complete pieces below which new pieces are picked at random rather than rarest first.
pub const RANDOM_FIRST_PIECES: u32 = 4;
/// Most outstanding requests for one block in end-game mode.
pub const ENDGAME_DUPLICATES_MAX: usize = 2;

/// Piece and block sizes of a torrent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    piece_len: u32,
    total_len: u64,
    piece_count: u32,
}

impl Geometry {
    /// Pieces of `piece_len` bytes (the last one shorter) covering `total_len` bytes.
    pub fn new(piece_len: u32, total_len: u64) -> Result<Geometry, Error> {
        if piece_len == 0 || total_len == 0 {
            return Err(Error::BadGeometry);
        }
        let piece_count = u32::try_from(total_len.div_ceil(u64::from(piece_len)))
            .map_err(|_| Error::BadGeometry)?;
        Ok(Geometry {
            piece_len,
            total_len,
            piece_count,
        })
    }

    /// Number of pieces.
    pub fn piece_count(&self) -> u32 {
        self.piece_count
    }

    /// Nominal piece length.
    pub fn piece_len(&self) -> u32 {
        self.piece_len
    }

    /// Total content length.
    pub fn total_len(&self) -> u64 {
        self.total_len
    }

    /// Length of piece `index` (0 beyond the end).
    pub fn piece_size(&self, index: u32) -> u32 {
        let start = u64::from(index) * u64::from(self.piece_len);
        self.total_len
            .saturating_sub(start)
            .min(u64::from(self.piece_len)) as u32
    }

    /// Number of blocks in piece `index`.
    pub fn block_count(&self, index: u32) -> u32 {
        self.piece_size(index).div_ceil(BLOCK_LEN)
    }

    /// Block `block` of piece `index`.
    pub fn block(&self, index: u32, block: u32) -> BlockRequest {
        let begin = block * BLOCK_LEN;
        BlockRequest {
            index,
            begin,
            length: (self.piece_size(index) - begin).min(BLOCK_LEN),
        }
    }
}

/// How new pieces are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PickMode {
    /// Rarest first with random tie-breaks (the default).
    RarestFirst,
    /// Streaming: the lowest missing piece at or after `position` first.
    Sequential {
        /// The playback position, as a piece index.
        position: u32,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum BlockState {
    Missing,
    Requested(Vec<PeerKey>),
    Received,
}

#[derive(Clone, Debug)]
struct InProgress {
    blocks: Vec<BlockState>,
    received: u32,
    /// Blocks in state `Missing` (so that full pieces are skipped without a scan).
    missing: u32,
    /// Who delivered each block (for hash-failure attribution).
    senders: Vec<Option<PeerKey>>,
    /// For a piece that failed before: the one peer allowed to send it this time, so that the
    /// retry either passes (and shows which earlier blocks were bad) or has a sole culprit.
    owner: Option<PeerKey>,
}

/// What became of a received block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlockOutcome {
    /// Not wanted (already have it, or never asked): discard the data.
    Unwanted,
    /// Stored; `others` had it requested too (cancel there); `piece_complete` asks for a hash check.
    Accepted {
        /// Peers with the same block outstanding (end-game).
        others: Vec<PeerKey>,
        /// Whether every block of the piece has now arrived.
        piece_complete: bool,
    },
}

/// The piece picker of one torrent.
#[derive(Clone, Debug)]
pub struct PiecePicker {
    geometry: Geometry,
    have: Bitfield,
    availability: Vec<u32>,
    in_progress: BTreeMap<u32, InProgress>,
    verifying: BTreeSet<u32>,
    /// Pieces that failed a hash check (fetched again from a single peer).
    failed_before: BTreeSet<u32>,
    mode: PickMode,
    /// Most pieces in `in_progress` at once (they include the ones being verified).
    in_progress_max: usize,
}

impl PiecePicker {
    /// A picker for a torrent of which `have` is already verified.
    pub fn new(geometry: Geometry, have: Bitfield) -> PiecePicker {
        PiecePicker {
            availability: vec![0; geometry.piece_count() as usize],
            geometry,
            have,
            in_progress: BTreeMap::new(),
            verifying: BTreeSet::new(),
            failed_before: BTreeSet::new(),
            mode: PickMode::RarestFirst,
            in_progress_max: usize::MAX,
        }
    }

    /// Caps the pieces started and not yet verified (at least one).
    pub fn set_pieces_in_progress_max(&mut self, max: usize) {
        self.in_progress_max = max.max(1);
    }

    /// The cap on pieces started and not yet verified.
    pub fn pieces_in_progress_max(&self) -> usize {
        self.in_progress_max
    }

    /// Pieces verified so far.
    pub fn have(&self) -> &Bitfield {
        &self.have
    }

    /// Switches between rarest-first and sequential picking.
    pub fn set_mode(&mut self, mode: PickMode) {
        self.mode = mode;
    }

    /// A peer has these pieces (bitfield or have-all on connect).
    pub fn add_availability(&mut self, has: &Bitfield) {
        for i in has.iter_set() {
            self.availability[i as usize] += 1;
        }
    }

    /// A peer that had these pieces left.
    pub fn remove_availability(&mut self, has: &Bitfield) {
        for i in has.iter_set() {
            let count = &mut self.availability[i as usize];
            *count = count.saturating_sub(1);
        }
    }

    /// A peer announced one more piece.
    pub fn add_piece_availability(&mut self, index: u32) {
        if let Some(count) = self.availability.get_mut(index as usize) {
            *count += 1;
        }
    }

    /// Whether `peer_has` includes a piece we still need.
    pub fn is_interesting(&self, peer_has: &Bitfield) -> bool {
        peer_has.iter_set().any(|i| !self.have.get(i))
    }

    fn wanted(&self, index: u32) -> bool {
        !self.have.get(index) && !self.verifying.contains(&index)
    }

    /// Up to `count` blocks to request from `peer`, restricted to `allowed` pieces when the peer
    /// chokes us (BEP 6 allowed fast). Marks them requested.
    pub fn pick(
        &mut self,
        peer: PeerKey,
        peer_has: &Bitfield,
        allowed: Option<&BTreeSet<u32>>,
        count: usize,
        rng: &mut Rng,
    ) -> Vec<BlockRequest> {
        let mut picked = Vec::new();
        let eligible =
            |index: u32| peer_has.get(index) && allowed.is_none_or(|a| a.contains(&index));
        // 1. Started pieces, unrequested blocks.
        let started: Vec<u32> = self
            .in_progress
            .keys()
            .copied()
            .filter(|&i| eligible(i))
            .collect();
        for index in started {
            self.take_missing(peer, index, count, &mut picked);
        }
        // 2-3. New pieces, while there is room for them.
        while picked.len() < count && self.in_progress.len() < self.in_progress_max {
            let Some(index) = self.choose_new_piece(&eligible, rng) else {
                break;
            };
            let block_count = self.geometry.block_count(index) as usize;
            let owner = self.failed_before.contains(&index).then_some(peer);
            self.in_progress.insert(
                index,
                InProgress {
                    blocks: vec![BlockState::Missing; block_count],
                    received: 0,
                    missing: block_count as u32,
                    senders: vec![None; block_count],
                    owner,
                },
            );
            self.take_missing(peer, index, count, &mut picked);
        }
        // 4. End-game: nothing left unrequested anywhere.
        if picked.len() < count && self.all_requested() {
            for (&index, progress) in self.in_progress.iter_mut() {
                if !eligible(index) || progress.owner.is_some_and(|o| o != peer) {
                    continue;
                }
                for (b, state) in progress.blocks.iter_mut().enumerate() {
                    if picked.len() >= count {
                        break;
                    }
                    if let BlockState::Requested(peers) = state {
                        if peers.len() < ENDGAME_DUPLICATES_MAX && !peers.contains(&peer) {
                            peers.push(peer);
                            picked.push(self.geometry.block(index, b as u32));
                        }
                    }
                }
            }
        }
        picked
    }

    fn all_requested(&self) -> bool {
        let started_missing = self.in_progress.values().any(|p| p.missing > 0);
        let unstarted = (0..self.geometry.piece_count())
            .any(|i| self.wanted(i) && !self.in_progress.contains_key(&i));
        !started_missing && !unstarted
    }

    fn take_missing(
        &mut self,
        peer: PeerKey,
        index: u32,
        count: usize,
        out: &mut Vec<BlockRequest>,
    ) {
        let Some(progress) = self.in_progress.get_mut(&index) else {
            return;
        };
        if progress.missing == 0 || progress.owner.is_some_and(|o| o != peer) {
            return;
        }
        for (b, state) in progress.blocks.iter_mut().enumerate() {
            if out.len() >= count || progress.missing == 0 {
                return;
            }
            if *state == BlockState::Missing {
                *state = BlockState::Requested(vec![peer]);
                progress.missing -= 1;
                out.push(self.geometry.block(index, b as u32));
            }
        }
    }

    fn choose_new_piece(&self, eligible: &impl Fn(u32) -> bool, rng: &mut Rng) -> Option<u32> {
        let candidates = (0..self.geometry.piece_count())
            .filter(|&i| self.wanted(i) && !self.in_progress.contains_key(&i) && eligible(i));
        if let PickMode::Sequential { position } = self.mode {
            let (after, before): (Vec<u32>, Vec<u32>) = candidates.partition(|&i| i >= position);
            return after.first().or(before.first()).copied();
        }
        let random_phase = self.have.count() < RANDOM_FIRST_PIECES;
        // Reservoir sampling over the best candidates: uniform among ties, one pass.
        let mut best: Option<(u32, u32)> = None;
        let mut ties = 0u32;
        for index in candidates {
            let rarity = if random_phase {
                0
            } else {
                self.availability[index as usize]
            };
            match best {
                Some((_, r)) if rarity > r => {}
                Some((_, r)) if rarity == r => {
                    ties += 1;
                    if rng.gen_range(0..ties) == 0 {
                        best = Some((index, rarity));
                    }
                }
                _ => {
                    best = Some((index, rarity));
                    ties = 1;
                }
            }
        }
        best.map(|(index, _)| index)
    }

    /// A request to `peer` for `block` ended without data (reject, choke, timeout, disconnect).
    pub fn on_request_dropped(&mut self, peer: PeerKey, block: &BlockRequest) {
        let Some(progress) = self.in_progress.get_mut(&block.index) else {
            return;
        };
        let Some(state) = progress.blocks.get_mut((block.begin / BLOCK_LEN) as usize) else {
            return;
        };
        if let BlockState::Requested(peers) = state {
            peers.retain(|&p| p != peer);
            if peers.is_empty() {
                *state = BlockState::Missing;
                progress.missing += 1;
            }
        }
        if progress.owner == Some(peer) {
            // The owner cannot finish it (gone, choking, too slow): anyone may.
            progress.owner = None;
        }
        if progress.received == 0 && progress.missing as usize == progress.blocks.len() {
            self.in_progress.remove(&block.index);
        }
    }

    /// `peer` disconnected: pieces it alone was to send are open to everyone.
    pub fn on_peer_gone(&mut self, peer: PeerKey) {
        for progress in self.in_progress.values_mut() {
            if progress.owner == Some(peer) {
                progress.owner = None;
            }
        }
    }

    /// `peer` delivered `block` (already checked to be a block of this torrent).
    pub fn on_block_received(&mut self, peer: PeerKey, block: &BlockRequest) -> BlockOutcome {
        let Some(progress) = self.in_progress.get_mut(&block.index) else {
            return BlockOutcome::Unwanted;
        };
        let slot = (block.begin / BLOCK_LEN) as usize;
        let others = match &progress.blocks[slot] {
            BlockState::Received => return BlockOutcome::Unwanted,
            BlockState::Missing => {
                progress.missing -= 1;
                Vec::new()
            }
            BlockState::Requested(peers) => peers.iter().copied().filter(|&p| p != peer).collect(),
        };
        progress.blocks[slot] = BlockState::Received;
        progress.received += 1;
        progress.senders[slot] = Some(peer);
        let piece_complete = progress.received as usize == progress.blocks.len();
        if piece_complete {
            self.verifying.insert(block.index);
        }
        BlockOutcome::Accepted {
            others,
            piece_complete,
        }
    }

    /// The piece passed its hash check.
    pub fn on_piece_verified(&mut self, index: u32) {
        self.verifying.remove(&index);
        self.failed_before.remove(&index);
        self.in_progress.remove(&index);
        self.have.set(index);
    }

    /// The piece failed its hash check: it is fetched again; returns who sent each block.
    pub fn on_piece_failed(&mut self, index: u32) -> Vec<Option<PeerKey>> {
        self.verifying.remove(&index);
        self.failed_before.insert(index);
        self.in_progress
            .remove(&index)
            .map(|p| p.senders)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picker(pieces: u32) -> PiecePicker {
        let geometry = Geometry::new(
            2 * BLOCK_LEN,
            u64::from(pieces) * 2 * u64::from(BLOCK_LEN) - 100,
        )
        .unwrap();
        PiecePicker::new(geometry, Bitfield::new(pieces))
    }

    #[test]
    fn geometry_last_piece_and_blocks() {
        let g = Geometry::new(2 * BLOCK_LEN, 5 * u64::from(BLOCK_LEN) - 100).unwrap();
        assert_eq!(g.piece_count(), 3);
        assert_eq!(g.piece_size(2), BLOCK_LEN - 100);
        assert_eq!(g.block(1, 1).length, BLOCK_LEN);
        assert_eq!(g.block(2, 0).length, BLOCK_LEN - 100);
    }

    #[test]
    fn rarest_first_after_random_phase() {
        let mut p = picker(8);
        for i in 0..RANDOM_FIRST_PIECES {
            p.on_piece_verified(i);
        }
        let mut common = Bitfield::full(8);
        for i in 0..RANDOM_FIRST_PIECES {
            common.set(i);
        }
        p.add_availability(&common);
        p.add_availability(&common);
        p.add_piece_availability(6);
        let mut rare_only = Bitfield::new(8);
        rare_only.set(5);
        p.add_availability(&rare_only);
        // Piece 5 is held by 3 peers, 6 by 3, 4 and 7 by 2: rarest are 4 and 7.
        let mut rng = Rng::from_seed(1);
        let first = p.pick(PeerKey(1), &common, None, 2, &mut rng);
        assert!(
            first.iter().all(|b| b.index == 4 || b.index == 7),
            "{first:?}"
        );
    }

    #[test]
    fn started_pieces_are_finished_first_and_endgame_duplicates() {
        let mut p = picker(2);
        let all = Bitfield::full(2);
        let mut rng = Rng::from_seed(7);
        let a = p.pick(PeerKey(1), &all, None, 1, &mut rng);
        let b = p.pick(PeerKey(2), &all, None, 1, &mut rng);
        assert_eq!(
            a[0].index, b[0].index,
            "second peer continues the started piece"
        );
        // Peer 3 takes the other piece, then (end-game) duplicates of the first one's blocks.
        let rest = p.pick(PeerKey(3), &all, None, 10, &mut rng);
        assert_eq!(rest.len(), 4);
        assert_eq!(rest[2..], [a[0], b[0]]);
        // Blocks of the first piece have two requests each: only the other piece's are left.
        let dup = p.pick(PeerKey(1), &all, None, 10, &mut rng);
        assert_eq!(dup, rest[..2]);
        match p.on_block_received(PeerKey(1), &dup[0]) {
            BlockOutcome::Accepted { others, .. } => assert_eq!(others.len(), 1),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn missing_block_counts_follow_every_change() {
        let mut p = picker(6);
        let all = Bitfield::full(6);
        p.add_availability(&all);
        let mut rng = Rng::from_seed(11);
        let mut outstanding: Vec<(PeerKey, BlockRequest)> = Vec::new();
        for step in 0..500u32 {
            let peer = PeerKey(u64::from(step % 3));
            match rng.gen_range(0..3) {
                0 => {
                    for block in p.pick(peer, &all, None, rng.gen_range(1..4), &mut rng) {
                        outstanding.push((peer, block));
                    }
                }
                _ if outstanding.is_empty() => {}
                choice => {
                    let (peer, block) =
                        outstanding.swap_remove(rng.gen_range(0..outstanding.len()));
                    if choice == 1 {
                        p.on_request_dropped(peer, &block);
                    } else if p.on_block_received(peer, &block) != BlockOutcome::Unwanted
                        && rng.gen_range(0..2) == 0
                    {
                        let index = block.index;
                        if p.verifying.contains(&index) {
                            p.on_piece_verified(index);
                        }
                    }
                }
            }
            for progress in p.in_progress.values() {
                let missing = progress
                    .blocks
                    .iter()
                    .filter(|s| **s == BlockState::Missing)
                    .count();
                assert_eq!(progress.missing as usize, missing, "step {step}");
            }
        }
    }

    #[test]
    fn pieces_in_progress_are_capped_until_one_is_verified() {
        let mut p = picker(8);
        p.set_pieces_in_progress_max(2);
        let all = Bitfield::full(8);
        p.add_availability(&all);
        let mut rng = Rng::from_seed(3);
        let picked = p.pick(PeerKey(1), &all, None, 100, &mut rng);
        let pieces: BTreeSet<u32> = picked.iter().map(|b| b.index).collect();
        assert_eq!(pieces.len(), 2, "{picked:?}");
        assert_eq!(picked.len(), 4);
        // Complete pieces waiting for their hash check still hold their slot...
        for block in &picked {
            p.on_block_received(PeerKey(1), block);
        }
        assert!(p.pick(PeerKey(1), &all, None, 100, &mut rng).is_empty());
        // ...until verified: then one new piece may start.
        let first = *pieces.first().unwrap();
        p.on_piece_verified(first);
        let next = p.pick(PeerKey(1), &all, None, 100, &mut rng);
        let next_pieces: BTreeSet<u32> = next.iter().map(|b| b.index).collect();
        assert_eq!(next_pieces.len(), 1, "{next:?}");
        assert!(next_pieces.is_disjoint(&pieces));
    }

    #[test]
    fn sequential_mode_follows_position_and_failed_pieces_blame_senders() {
        let mut p = picker(6);
        p.set_mode(PickMode::Sequential { position: 3 });
        let all = Bitfield::full(6);
        let mut rng = Rng::from_seed(3);
        let blocks = p.pick(PeerKey(9), &all, None, 4, &mut rng);
        assert_eq!(
            blocks.iter().map(|b| b.index).collect::<Vec<_>>(),
            [3, 3, 4, 4]
        );
        for b in &blocks[..2] {
            p.on_block_received(PeerKey(9), b);
        }
        assert_eq!(p.on_piece_failed(3)[..2], [Some(PeerKey(9)); 2]);
        let again = p.pick(PeerKey(8), &all, None, 1, &mut rng);
        assert_eq!(again[0].index, 3);
    }
}
