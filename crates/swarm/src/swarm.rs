//! The swarm core: peers, requests, serving, choking and hash-failure attribution.
//!
//! Implementation notes: the core ticks once per [`TICK`] while it exists; the tick runs the
//! choker when due, expires requests, marks snubbing peers and sends keep-alives. Everything
//! else happens in reaction to input. A peer that breaks the protocol is dropped at once (only
//! that peer). A piece that fails its hash check is fetched again. A peer that sent the whole
//! failed piece alone is banned at once. When several peers sent its blocks and the driver
//! gives block digests ([`Swarm::handle_piece_checked_with_digests`]), the failed blocks are
//! kept as suspects until the piece passes: a peer whose block then differs from the good
//! data is banned, the others are cleared (a "smart ban": honest peers that happened to share
//! a piece with a liar are never blamed). Without digests every sender gets a strike and is
//! banned after [`Config::strikes_to_ban`]. Peer exchange (BEP 11 `ut_pex`) lives in the `pex`
//! submodule: it is off for private torrents (BEP 27).

mod extension;
mod hash_check;
mod hash_serve;
mod pex;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use metainfo::merkle_proof::PieceTree;
use metainfo::Sha256Hash;
use sansio::{Rng, Timestamp};
use wire::{BlockRequest, Message, Reserved, BLOCK_LEN};

pub use self::hash_check::BlockDigest;
use self::hash_check::SuspectBlock;
pub(crate) use self::pex::PexPeer;
pub use self::pex::{
    PEX_ACCEPTED_PER_MESSAGE_MAX, PEX_FLAG_REACHABLE, PEX_FLAG_SEED, PEX_SENT_PER_LIST_MAX,
    UT_PEX_ID,
};
use crate::choker::{Candidate, Choker, SNUB_TIMEOUT};
use crate::peer::Peer;
use crate::piece_picker::{BlockOutcome, Geometry, PiecePicker};
use crate::{Bitfield, Error, PeerKey, PickMode, RateMeter};

/// Granularity of the core's housekeeping.
pub const TICK: Duration = Duration::from_secs(1);
/// Idle time after which a keep-alive is sent.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(60);
/// Our `ut_metadata` extension id (what peers send to us).
pub const UT_METADATA_ID: u8 = 1;

/// Tunables; the defaults suit the open Internet.
#[derive(Clone, Debug)]
pub struct Config {
    /// Most connected peers.
    pub peers_max: usize,
    /// Fewest requests kept outstanding per unchoking peer.
    pub pipeline_min: usize,
    /// Most requests kept outstanding per peer.
    pub pipeline_max: usize,
    /// A request unanswered this long is given to another peer.
    pub request_timeout: Duration,
    /// Most queued requests accepted from one peer (advertised as `reqq`).
    pub incoming_requests_max: usize,
    /// Hash failures a peer may contribute to before it is banned.
    pub strikes_to_ban: u32,
    /// Client name in the extended handshake.
    pub client_name: String,
    /// Our listening port, told to peers (`p` in the extended handshake) so that they can pass
    /// our address on through peer exchange.
    pub listen_port: Option<u16>,
    /// The torrent is private (BEP 27): no peer exchange, neither sent nor accepted.
    pub private: bool,
    /// Least time between two `ut_pex` messages to one peer (BEP 11 asks for one a minute).
    pub pex_interval: Duration,
    /// Bytes of pieces started and not yet verified (what the driver buffers in memory); no new
    /// piece starts beyond it, though at least [`PIECES_IN_PROGRESS_MIN`] may always be started.
    /// The default, 16 MiB, is that many bytes of requests in flight: 160 MiB/s over a 100 ms
    /// round trip, and as fast as 32 MiB on loopback (docs/BENCHMARKS.md, swarming).
    pub piece_memory_bytes_max: u64,
}

/// Pieces that may always be in progress, however large they are.
pub const PIECES_IN_PROGRESS_MIN: usize = 2;

impl Default for Config {
    fn default() -> Config {
        Config {
            peers_max: 50,
            pipeline_min: 4,
            pipeline_max: 256,
            request_timeout: Duration::from_secs(30),
            incoming_requests_max: 500,
            strikes_to_ban: 3,
            client_name: "spore 0.1".to_owned(),
            listen_port: None,
            private: false,
            pex_interval: Duration::from_secs(60),
            piece_memory_bytes_max: 16 * 1024 * 1024,
        }
    }
}

/// What the driver knows of a peer at connection time.
#[derive(Clone, Copy, Debug)]
pub struct PeerInfo {
    /// The peer's address.
    pub addr: SocketAddr,
    /// Reserved bits from its handshake.
    pub reserved: Reserved,
    /// We dialled it (so `addr` is where it listens), rather than it us.
    pub outgoing: bool,
}

/// Why the core drops a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// It sent data that failed hash checks too often.
    Banned,
    /// It broke the protocol.
    Protocol(&'static str),
    /// The connection limit is reached.
    TooManyPeers,
    /// It and we both have every piece: nothing to exchange (libtorrent and Transmission
    /// close such connections too).
    BothSeeds,
}

/// Something for the driver to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send a message to a peer.
    Send {
        /// The peer.
        peer: PeerKey,
        /// The message.
        message: Message<'static>,
    },
    /// Read a block from storage and hand it back with [`Swarm::handle_block_read`].
    ReadBlock {
        /// The peer that asked.
        peer: PeerKey,
        /// The block.
        block: BlockRequest,
    },
    /// Write a received block to storage.
    WriteBlock {
        /// Where it goes.
        block: BlockRequest,
        /// Its bytes.
        data: Vec<u8>,
    },
    /// Hash-check a piece (after the writes before it) and report [`Swarm::handle_piece_checked`].
    VerifyPiece(u32),
    /// Close the connection to a peer (the core has already forgotten it).
    Disconnect {
        /// The peer.
        peer: PeerKey,
        /// Why.
        reason: DropReason,
    },
}

/// Something the application should know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A piece passed its hash check.
    PieceVerified(u32),
    /// A piece failed its hash check.
    PieceFailed(u32),
    /// Every piece is verified.
    Complete,
    /// A peer was banned for bad data.
    PeerBanned(IpAddr),
    /// A peer's DHT port (BEP 5).
    DhtPort {
        /// Peer address.
        addr: SocketAddr,
        /// Its DHT port.
        port: u16,
    },
    /// Addresses a peer told us about through peer exchange (BEP 11), worth dialling: not
    /// connected already, not banned, at most [`PEX_ACCEPTED_PER_MESSAGE_MAX`] a message.
    PeersDiscovered(Vec<SocketAddr>),
}

/// Counters for a progress display.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Verified pieces.
    pub pieces_have: u32,
    /// Pieces in the torrent.
    pub piece_count: u32,
    /// Verified bytes.
    pub bytes_have: u64,
    /// Total bytes.
    pub bytes_total: u64,
    /// Payload bytes received.
    pub bytes_downloaded: u64,
    /// Payload bytes sent.
    pub bytes_uploaded: u64,
    /// Bytes per second received (20 s average, or since the first byte if later).
    pub download_rate: u64,
    /// Bytes per second sent (20 s average, or since the first byte if later).
    pub upload_rate: u64,
    /// Connected peers.
    pub peers: usize,
    /// Most peers connected at once so far.
    pub peers_max: usize,
}

/// The swarm core for one torrent. See the crate docs for the driving rule.
#[derive(Debug)]
pub struct Swarm {
    config: Config,
    geometry: Geometry,
    picker: PiecePicker,
    choker: Choker,
    peers: BTreeMap<PeerKey, Peer>,
    /// Most peers connected at once (for [`Progress::peers_max`]).
    peers_max_seen: usize,
    banned: BTreeSet<IpAddr>,
    /// Blocks of failed pieces with more than one sender: (block slot, sender, digest).
    suspect_blocks: BTreeMap<u32, Vec<SuspectBlock>>,
    metadata: Option<Vec<u8>>,
    /// Trees over the piece layers, by `pieces root`, for answering hash requests (BEP 52).
    piece_trees: BTreeMap<Sha256Hash, PieceTree>,
    rng: Rng,
    actions: VecDeque<Action>,
    events: VecDeque<Event>,
    next_tick: Timestamp,
    download: RateMeter,
    upload: RateMeter,
}

impl Swarm {
    /// A core for a torrent of this geometry, of which `have` is verified on disk.
    pub fn new(
        geometry: Geometry,
        have: Bitfield,
        config: Config,
        rng: Rng,
    ) -> Result<Swarm, Error> {
        if have.len() != geometry.piece_count() {
            return Err(Error::BitfieldMismatch);
        }
        let mut picker = PiecePicker::new(geometry, have);
        let pieces_max = config.piece_memory_bytes_max / u64::from(geometry.piece_len().max(1));
        picker.set_pieces_in_progress_max(
            usize::try_from(pieces_max)
                .unwrap_or(usize::MAX)
                .max(PIECES_IN_PROGRESS_MIN),
        );
        Ok(Swarm {
            config,
            geometry,
            picker,
            choker: Choker::default(),
            peers: BTreeMap::new(),
            peers_max_seen: 0,
            banned: BTreeSet::new(),
            suspect_blocks: BTreeMap::new(),
            metadata: None,
            piece_trees: BTreeMap::new(),
            rng,
            actions: VecDeque::new(),
            events: VecDeque::new(),
            next_tick: Timestamp::ZERO,
            download: RateMeter::default(),
            upload: RateMeter::default(),
        })
    }

    /// Serves the info dictionary to peers that ask for it (BEP 9).
    pub fn set_metadata(&mut self, info_bytes: Vec<u8>) {
        self.metadata = Some(info_bytes);
    }

    /// Rarest-first or sequential (streaming) picking.
    pub fn set_pick_mode(&mut self, mode: PickMode) {
        self.picker.set_mode(mode);
    }

    /// Verified pieces.
    pub fn have(&self) -> &Bitfield {
        self.picker.have()
    }

    /// Most pieces started and not yet verified at once (the driver's buffers for them).
    pub fn pieces_in_progress_max(&self) -> usize {
        self.picker.pieces_in_progress_max()
    }

    /// Whether every piece is verified.
    pub fn is_complete(&self) -> bool {
        self.picker.have().is_full()
    }

    /// Whether an address is banned (the driver refuses its connections).
    pub fn is_banned(&self, ip: IpAddr) -> bool {
        self.banned.contains(&ip)
    }

    /// Whether another connection would be accepted.
    pub fn wants_peers(&self) -> bool {
        self.peers.len() < self.config.peers_max
    }

    /// Counters for display.
    pub fn progress(&mut self, now: Timestamp) -> Progress {
        let have = self.picker.have();
        let bytes_have = have
            .iter_set()
            .map(|i| u64::from(self.geometry.piece_size(i)))
            .sum();
        Progress {
            pieces_have: have.count(),
            piece_count: have.len(),
            bytes_have,
            bytes_total: self.geometry.total_len(),
            bytes_downloaded: self.download.total(),
            bytes_uploaded: self.upload.total(),
            download_rate: self.download.rate(now),
            upload_rate: self.upload.rate(now),
            peers: self.peers.len(),
            peers_max: self.peers_max_seen,
        }
    }

    /// The next action for the driver.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When to call [`Swarm::handle_timeout`].
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        Some(self.next_tick)
    }

    fn send(&mut self, now: Timestamp, peer: PeerKey, message: Message<'static>) {
        if let Some(p) = self.peers.get_mut(&peer) {
            p.last_sent_at = now;
        }
        self.actions.push_back(Action::Send { peer, message });
    }

    /// A connection completed its handshake for this torrent.
    pub fn handle_peer_connected(&mut self, now: Timestamp, peer: PeerKey, info: PeerInfo) {
        if self.banned.contains(&info.addr.ip()) {
            self.actions.push_back(Action::Disconnect {
                peer,
                reason: DropReason::Banned,
            });
            return;
        }
        if !self.wants_peers() || self.peers.contains_key(&peer) {
            self.actions.push_back(Action::Disconnect {
                peer,
                reason: DropReason::TooManyPeers,
            });
            return;
        }
        let fast = info.reserved.supports(Reserved::FAST);
        let extensions = info.reserved.supports(Reserved::EXTENSION_PROTOCOL);
        let pieces = self.geometry.piece_count();
        let mut state = Peer::new(now, info.addr, fast, extensions, pieces);
        state.outgoing = info.outgoing;
        self.peers.insert(peer, state);
        self.peers_max_seen = self.peers_max_seen.max(self.peers.len());
        let have = self.picker.have();
        let message = match (fast, have.count()) {
            (true, _) if have.is_full() => Some(Message::HaveAll),
            (true, 0) => Some(Message::HaveNone),
            (false, 0) => None,
            _ => Some(Message::Bitfield(Cow::Owned(have.as_bytes().to_vec()))),
        };
        if let Some(message) = message {
            self.send(now, peer, message);
        }
        if extensions {
            self.send_extended_handshake(now, peer);
        }
    }

    /// A connection closed (or was closed after [`Action::Disconnect`]; then this is a no-op).
    pub fn handle_peer_disconnected(&mut self, _now: Timestamp, peer: PeerKey) {
        self.forget(peer);
    }

    fn forget(&mut self, key: PeerKey) {
        let Some(peer) = self.peers.remove(&key) else {
            return;
        };
        self.picker.remove_availability(&peer.has);
        for block in peer.outstanding.keys() {
            self.picker.on_request_dropped(key, block);
        }
        self.picker.on_peer_gone(key);
        if peer.am_interested && !peer.outstanding.is_empty() {
            // Its blocks are free again: let the others take them now rather than next tick.
            self.next_tick = Timestamp::ZERO;
        }
    }

    fn drop_peer(&mut self, peer: PeerKey, reason: DropReason) {
        if self.peers.contains_key(&peer) {
            self.forget(peer);
            self.actions.push_back(Action::Disconnect { peer, reason });
        }
    }

    /// A message arrived from a peer.
    pub fn handle_message(&mut self, now: Timestamp, key: PeerKey, message: Message<'_>) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let result = match message {
            Message::KeepAlive
            | Message::Suggest(_)
            | Message::Hashes { .. }
            | Message::HashReject(_) => Ok(()),
            // BEP 3 wants these first, but clients send them later too (aria2 does; libtorrent
            // accepts it): a later one replaces what the peer had.
            Message::Bitfield(bits) => self.on_has_all_or(
                key,
                Bitfield::from_bytes(&bits, self.geometry.piece_count()),
            ),
            Message::HaveAll if peer.fast => {
                self.on_has_all_or(key, Some(Bitfield::full(self.geometry.piece_count())))
            }
            Message::HaveNone if peer.fast => {
                self.on_has_all_or(key, Some(Bitfield::new(self.geometry.piece_count())))
            }
            Message::HaveAll | Message::HaveNone => Err("have-all/none without the fast extension"),
            Message::Have(index) => {
                if index >= self.geometry.piece_count() {
                    Err("have out of range")
                } else {
                    if peer.has.set(index) {
                        self.picker.add_piece_availability(index);
                        if !self.picker.have().get(index) {
                            self.set_interest(now, key, true);
                        }
                    }
                    Ok(())
                }
            }
            Message::Choke => {
                peer.peer_choking = true;
                if !peer.fast {
                    // Without BEP 6 a choke discards every request silently.
                    let dropped: Vec<BlockRequest> =
                        std::mem::take(&mut peer.outstanding).into_keys().collect();
                    for block in &dropped {
                        self.picker.on_request_dropped(key, block);
                    }
                }
                Ok(())
            }
            Message::Unchoke => {
                peer.peer_choking = false;
                peer.last_block_at = now;
                Ok(())
            }
            Message::Interested => {
                peer.peer_interested = true;
                self.choker.rechoke_soon();
                self.next_tick = Timestamp::ZERO;
                Ok(())
            }
            Message::NotInterested => {
                peer.peer_interested = false;
                Ok(())
            }
            Message::Request(block) => self.on_request(now, key, block),
            Message::Cancel(block) => {
                peer.incoming.remove(&block);
                Ok(())
            }
            Message::Piece { index, begin, data } => self.on_piece(now, key, index, begin, data),
            Message::Reject(block) => {
                if peer.fast {
                    if peer.outstanding.remove(&block).is_some() {
                        self.picker.on_request_dropped(key, &block);
                    }
                    Ok(())
                } else {
                    Err("reject without the fast extension")
                }
            }
            Message::AllowedFast(index) => {
                if index < self.geometry.piece_count() {
                    peer.allowed_fast.insert(index);
                }
                Ok(())
            }
            Message::Port(port) => {
                self.events.push_back(Event::DhtPort {
                    addr: peer.addr,
                    port,
                });
                Ok(())
            }
            Message::Extended { id, payload } => self.on_extended(now, key, id, &payload),
            Message::HashRequest(request) => {
                let reply = self.answer_hash_request(request);
                self.send(now, key, reply);
                Ok(())
            }
        };
        match result {
            Ok(()) if self.is_seed_to_seed(key) => self.drop_peer(key, DropReason::BothSeeds),
            Ok(()) => self.fill_requests(now, key),
            Err(why) => self.drop_peer(key, DropReason::Protocol(why)),
        }
    }

    /// Whether we and `key` both have every piece.
    fn is_seed_to_seed(&self, key: PeerKey) -> bool {
        self.is_complete() && self.peers.get(&key).is_some_and(|p| p.has.is_full())
    }

    fn on_has_all_or(&mut self, key: PeerKey, has: Option<Bitfield>) -> Result<(), &'static str> {
        let has = has.ok_or("bitfield does not match the piece count")?;
        self.picker.add_availability(&has);
        let interesting = self.picker.is_interesting(&has);
        if let Some(peer) = self.peers.get_mut(&key) {
            let old = std::mem::replace(&mut peer.has, has);
            self.picker.remove_availability(&old);
        }
        if interesting {
            self.set_interest(Timestamp::ZERO, key, true);
        }
        Ok(())
    }

    fn set_interest(&mut self, now: Timestamp, key: PeerKey, interested: bool) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if peer.am_interested == interested {
            return;
        }
        peer.am_interested = interested;
        peer.last_block_at = now.max(peer.last_block_at);
        let message = if interested {
            Message::Interested
        } else {
            Message::NotInterested
        };
        self.send(now, key, message);
    }

    fn on_request(
        &mut self,
        now: Timestamp,
        key: PeerKey,
        block: BlockRequest,
    ) -> Result<(), &'static str> {
        let have = self.picker.have().get(block.index);
        let Some(peer) = self.peers.get_mut(&key) else {
            return Ok(());
        };
        let in_piece = u64::from(block.begin) + u64::from(block.length)
            <= u64::from(self.geometry.piece_size(block.index));
        if !in_piece || block.length == 0 {
            return Err("request outside the piece");
        }
        if block.length > BLOCK_LEN {
            // Every client asks for 16 KiB blocks; larger ones only serve to make us read more.
            return Err("request for a block over 16 KiB");
        }
        let serve =
            have && !peer.am_choking && peer.incoming.len() < self.config.incoming_requests_max;
        if serve {
            if peer.incoming.insert(block) {
                self.actions
                    .push_back(Action::ReadBlock { peer: key, block });
            }
        } else if peer.fast {
            self.send(now, key, Message::Reject(block));
        }
        Ok(())
    }

    fn on_piece(
        &mut self,
        now: Timestamp,
        key: PeerKey,
        index: u32,
        begin: u32,
        data: Cow<'_, [u8]>,
    ) -> Result<(), &'static str> {
        let block = BlockRequest {
            index,
            begin,
            length: data.len() as u32,
        };
        let Some(peer) = self.peers.get_mut(&key) else {
            return Ok(());
        };
        let Some(sent_at) = peer.outstanding.remove(&block) else {
            // Unrequested or already cancelled: harmless (end-game races), discard.
            return Ok(());
        };
        peer.observe_rtt(now.saturating_since(sent_at));
        peer.download.record(now, u64::from(block.length));
        peer.last_block_at = now;
        self.download.record(now, u64::from(block.length));
        if let BlockOutcome::Accepted {
            others,
            piece_complete,
        } = self.picker.on_block_received(key, &block)
        {
            self.actions.push_back(Action::WriteBlock {
                block,
                // Owned data (what drivers pass) moves without a copy.
                data: data.into_owned(),
            });
            for other in others {
                if let Some(p) = self.peers.get_mut(&other) {
                    if p.outstanding.remove(&block).is_some() {
                        self.send(now, other, Message::Cancel(block));
                    }
                }
            }
            if piece_complete {
                self.actions.push_back(Action::VerifyPiece(index));
            }
        }
        Ok(())
    }

    fn fill_requests(&mut self, now: Timestamp, key: PeerKey) {
        let (min, max) = (self.config.pipeline_min, self.config.pipeline_max);
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if !peer.am_interested {
            return;
        }
        if peer.peer_choking && peer.allowed_fast.is_empty() {
            return;
        }
        let want = peer
            .pipeline_len(now, min, max)
            .saturating_sub(peer.outstanding.len());
        if want == 0 {
            return;
        }
        let allowed = peer.peer_choking.then_some(&peer.allowed_fast);
        let picked = self
            .picker
            .pick(key, &peer.has, allowed, want, &mut self.rng);
        for block in &picked {
            peer.outstanding.insert(*block, now);
        }
        let nothing_more = picked.is_empty()
            && peer.outstanding.is_empty()
            && !self.picker.is_interesting(&peer.has);
        for block in picked {
            self.send(now, key, Message::Request(block));
        }
        if nothing_more {
            self.set_interest(now, key, false);
        }
    }

    /// The driver read a block a peer asked for (`None`: the read failed).
    pub fn handle_block_read(
        &mut self,
        now: Timestamp,
        key: PeerKey,
        block: BlockRequest,
        data: Option<Vec<u8>>,
    ) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if !peer.incoming.remove(&block) {
            return; // Cancelled or choked meanwhile.
        }
        match data {
            Some(data) if data.len() == block.length as usize => {
                peer.upload.record(now, u64::from(block.length));
                self.upload.record(now, u64::from(block.length));
                let message = Message::Piece {
                    index: block.index,
                    begin: block.begin,
                    data: Cow::Owned(data),
                };
                self.send(now, key, message);
            }
            _ if peer.fast => self.send(now, key, Message::Reject(block)),
            _ => {}
        }
    }

    /// Housekeeping: choking, request timeouts, snubbing, keep-alives, refilling pipelines.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        if now < self.next_tick {
            return;
        }
        self.next_tick = now + TICK;
        if now >= self.choker.next_rechoke() {
            self.rechoke(now);
        }
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            let Some(peer) = self.peers.get_mut(&key) else {
                continue;
            };
            let deadline = now - self.config.request_timeout;
            let expired: Vec<BlockRequest> = peer
                .outstanding
                .iter()
                .filter(|(_, &sent)| sent < deadline)
                .map(|(b, _)| *b)
                .collect();
            for block in &expired {
                peer.outstanding.remove(block);
                self.picker.on_request_dropped(key, block);
            }
            if now.saturating_since(peer.last_sent_at) >= KEEPALIVE_INTERVAL {
                self.send(now, key, Message::KeepAlive);
            }
            self.fill_requests(now, key);
        }
        if !self.config.private {
            self.send_pex_due(now);
        }
    }

    fn rechoke(&mut self, now: Timestamp) {
        let seeding = self.is_complete();
        let candidates: Vec<Candidate> = self
            .peers
            .iter_mut()
            .map(|(&key, p)| Candidate {
                peer: key,
                interested: p.peer_interested,
                rate: if seeding {
                    p.upload.rate(now)
                } else {
                    p.download.rate(now)
                },
                snubbed: !seeding
                    && p.am_interested
                    && !p.peer_choking
                    && now.saturating_since(p.last_block_at) > SNUB_TIMEOUT,
            })
            .collect();
        let unchoke = self.choker.rechoke(now, &candidates, &mut self.rng);
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            let Some(peer) = self.peers.get_mut(&key) else {
                continue;
            };
            let choke = !unchoke.contains(&key);
            if peer.am_choking == choke {
                continue;
            }
            peer.am_choking = choke;
            let rejected: Vec<BlockRequest> = if choke {
                std::mem::take(&mut peer.incoming).into_iter().collect()
            } else {
                Vec::new()
            };
            let fast = peer.fast;
            self.send(
                now,
                key,
                if choke {
                    Message::Choke
                } else {
                    Message::Unchoke
                },
            );
            if fast {
                for block in rejected {
                    self.send(now, key, Message::Reject(block));
                }
            }
        }
    }
}
