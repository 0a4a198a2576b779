//! Hash-check results: verified pieces announced, failed pieces attributed and liars banned
//! (the "smart ban" described in the parent module's notes).

use std::collections::BTreeSet;
use std::net::IpAddr;

use sansio::Timestamp;
use wire::Message;

use super::{DropReason, Event, Swarm};
use crate::PeerKey;

/// A digest of one received block (the driver picks the hash; only equality matters).
pub type BlockDigest = [u8; 20];

/// Suspect blocks remembered per failed piece, over all its failures.
const SUSPECT_BLOCKS_PER_PIECE_MAX: usize = 1024;

/// A block of a failed piece awaiting the verdict: its slot, its sender, a digest of its data.
pub(super) type SuspectBlock = (usize, IpAddr, BlockDigest);

impl Swarm {
    /// The driver hash-checked a piece.
    pub fn handle_piece_checked(&mut self, now: Timestamp, index: u32, valid: bool) {
        self.piece_checked(now, index, valid, None);
    }

    /// Whether the driver should pass block digests when it reports this piece's check (it
    /// failed before with several senders; the good data will tell who lied). Digests of a
    /// failed piece are always welcome.
    pub fn wants_block_digests(&self, index: u32) -> bool {
        self.suspect_blocks.contains_key(&index)
    }

    /// The driver hash-checked a piece and gives a digest of each of its blocks, in order.
    pub fn handle_piece_checked_with_digests(
        &mut self,
        now: Timestamp,
        index: u32,
        valid: bool,
        block_digests: &[BlockDigest],
    ) {
        self.piece_checked(now, index, valid, Some(block_digests));
    }

    fn piece_checked(
        &mut self,
        now: Timestamp,
        index: u32,
        valid: bool,
        block_digests: Option<&[BlockDigest]>,
    ) {
        if valid {
            self.on_piece_valid(now, index, block_digests);
            return;
        }
        self.events.push_back(Event::PieceFailed(index));
        let senders = self.picker.on_piece_failed(index);
        let distinct: BTreeSet<PeerKey> = senders.iter().flatten().copied().collect();
        let sole = distinct.len() == 1;
        match block_digests {
            Some(digests) if !sole => {
                let suspects = self.suspect_blocks.entry(index).or_default();
                for (slot, sender) in senders.iter().enumerate() {
                    let ip = sender
                        .and_then(|key| self.peers.get(&key))
                        .map(|p| p.addr.ip());
                    if let (Some(ip), Some(digest)) = (ip, digests.get(slot)) {
                        if suspects.len() < SUSPECT_BLOCKS_PER_PIECE_MAX {
                            suspects.push((slot, ip, *digest));
                        }
                    }
                }
            }
            _ => {
                for key in distinct {
                    let Some(peer) = self.peers.get_mut(&key) else {
                        continue;
                    };
                    peer.strikes += if sole { self.config.strikes_to_ban } else { 1 };
                    if peer.strikes >= self.config.strikes_to_ban {
                        let ip = peer.addr.ip();
                        self.ban(ip);
                    }
                }
            }
        }
        self.next_tick = Timestamp::ZERO;
    }

    fn on_piece_valid(
        &mut self,
        now: Timestamp,
        index: u32,
        block_digests: Option<&[BlockDigest]>,
    ) {
        self.picker.on_piece_verified(index);
        self.events.push_back(Event::PieceVerified(index));
        if let (Some(suspects), Some(good)) = (self.suspect_blocks.remove(&index), block_digests) {
            let liars: BTreeSet<IpAddr> = suspects
                .into_iter()
                .filter(|(slot, _, digest)| good.get(*slot) != Some(digest))
                .map(|(_, ip, _)| ip)
                .collect();
            for ip in liars {
                self.ban(ip);
            }
        }
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            self.send(now, key, Message::Have(index));
            let useless = self.peers.get(&key).is_some_and(|p| {
                p.am_interested && p.outstanding.is_empty() && !self.picker.is_interesting(&p.has)
            });
            if useless {
                self.set_interest(now, key, false);
            } else {
                // The verified piece freed a slot for a new one (see the picker's cap).
                self.fill_requests(now, key);
            }
        }
        if self.is_complete() {
            self.suspect_blocks.clear();
            self.events.push_back(Event::Complete);
            let seeds: Vec<PeerKey> = self
                .peers
                .keys()
                .copied()
                .filter(|&key| self.is_seed_to_seed(key))
                .collect();
            for key in seeds {
                self.drop_peer(key, DropReason::BothSeeds);
            }
        }
    }

    /// Bans an address for bad data and drops its connections.
    fn ban(&mut self, ip: IpAddr) {
        if !self.banned.insert(ip) {
            return;
        }
        self.events.push_back(Event::PeerBanned(ip));
        let keys: Vec<PeerKey> = self
            .peers
            .iter()
            .filter(|(_, p)| p.addr.ip() == ip)
            .map(|(&k, _)| k)
            .collect();
        for key in keys {
            self.drop_peer(key, DropReason::Banned);
        }
    }
}
