//! Several swarm cores stepped against each other in memory on a virtual clock. Messages cross
//! the "network" as encoded bytes through the real decoder; a tiny driver does the disk work.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use sansio::{Rng, Timestamp};
use sha1::{Digest, Sha1};
use swarm::{Action, Bitfield, BlockDigest, Config, Event, Geometry, PeerInfo, PeerKey, Swarm};
use wire::{Decoder, Limits, Reserved};

const PIECE_LEN: u32 = 32 * 1024;
const LATENCY: Duration = Duration::from_millis(10);

struct Node {
    swarm: Swarm,
    data: Vec<u8>,
    /// Flips a byte of every block it serves.
    corrupt: bool,
    events: Vec<Event>,
}

struct Net {
    nodes: Vec<Node>,
    hashes: Vec<[u8; 20]>,
    /// (deliver at, sequence) -> (to, from, bytes)
    queue: BTreeMap<(Timestamp, u64), (usize, usize, Vec<u8>)>,
    decoders: BTreeMap<(usize, usize), Decoder>,
    seq: u64,
    now: Timestamp,
    /// Whether the tiny driver reports block digests with hash checks (smart ban).
    digests: bool,
}

fn addr(node: usize) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, node as u8 + 1], 6881))
}

impl Net {
    fn new(content: &[u8], roles: &[(bool, bool)], seed: u64) -> Net {
        Net::with_config(content, roles, seed, Config::default())
    }

    fn with_config(content: &[u8], roles: &[(bool, bool)], seed: u64, config: Config) -> Net {
        let geometry = Geometry::new(PIECE_LEN, content.len() as u64).unwrap();
        let hashes = content
            .chunks(PIECE_LEN as usize)
            .map(|c| Sha1::digest(c).into())
            .collect();
        let mut rng = Rng::from_seed(seed);
        let nodes = roles
            .iter()
            .map(|&(seeder, corrupt)| {
                let pieces = geometry.piece_count();
                let have = if seeder {
                    Bitfield::full(pieces)
                } else {
                    Bitfield::new(pieces)
                };
                let data = if seeder {
                    content.to_vec()
                } else {
                    vec![0; content.len()]
                };
                let swarm = Swarm::new(geometry, have, config.clone(), rng.child()).unwrap();
                Node {
                    swarm,
                    data,
                    corrupt,
                    events: Vec::new(),
                }
            })
            .collect();
        let mut net = Net {
            nodes,
            hashes,
            queue: BTreeMap::new(),
            decoders: BTreeMap::new(),
            seq: 0,
            now: Timestamp::ZERO,
            digests: false,
        };
        let reserved = Reserved::FAST.with(Reserved::EXTENSION_PROTOCOL);
        for a in 0..roles.len() {
            for b in 0..roles.len() {
                if a != b {
                    let mut decoder = Decoder::new(Limits::DEFAULT);
                    decoder.set_piece_count(geometry.piece_count());
                    net.decoders.insert((a, b), decoder);
                    net.nodes[a].swarm.handle_peer_connected(
                        net.now,
                        PeerKey(b as u64),
                        PeerInfo {
                            addr: addr(b),
                            reserved,
                            outgoing: a < b,
                        },
                    );
                }
            }
        }
        for n in 0..roles.len() {
            net.drain(n);
        }
        net
    }

    fn drain(&mut self, n: usize) {
        let now = self.now;
        while let Some(action) = self.nodes[n].swarm.poll_action() {
            match action {
                Action::Send { peer, message } => {
                    self.seq += 1;
                    self.queue.insert(
                        (now + LATENCY, self.seq),
                        (peer.0 as usize, n, message.to_bytes()),
                    );
                }
                Action::ReadBlock { peer, block } => {
                    let start = (block.index * PIECE_LEN + block.begin) as usize;
                    let mut data =
                        self.nodes[n].data[start..start + block.length as usize].to_vec();
                    if self.nodes[n].corrupt {
                        data[0] ^= 0xff;
                    }
                    self.nodes[n]
                        .swarm
                        .handle_block_read(now, peer, block, Some(data));
                }
                Action::WriteBlock { block, data } => {
                    let start = (block.index * PIECE_LEN + block.begin) as usize;
                    self.nodes[n].data[start..start + data.len()].copy_from_slice(&data);
                }
                Action::VerifyPiece(index) => {
                    let start = (index * PIECE_LEN) as usize;
                    let end = (start + PIECE_LEN as usize).min(self.nodes[n].data.len());
                    let node = &mut self.nodes[n];
                    let piece = &node.data[start..end];
                    let ok = Sha1::digest(piece).as_slice() == self.hashes[index as usize];
                    let swarm = &mut node.swarm;
                    if self.digests && (!ok || swarm.wants_block_digests(index)) {
                        let digests: Vec<BlockDigest> = piece
                            .chunks(wire::BLOCK_LEN as usize)
                            .map(|b| Sha1::digest(b).into())
                            .collect();
                        swarm.handle_piece_checked_with_digests(now, index, ok, &digests);
                    } else {
                        swarm.handle_piece_checked(now, index, ok);
                    }
                }
                Action::Disconnect { peer, .. } => {
                    let other = peer.0 as usize;
                    self.decoders.remove(&(n, other));
                    self.decoders.remove(&(other, n));
                    self.nodes[other]
                        .swarm
                        .handle_peer_disconnected(now, PeerKey(n as u64));
                    self.drain(other);
                }
            }
        }
        while let Some(event) = self.nodes[n].swarm.poll_event() {
            self.nodes[n].events.push(event);
        }
    }

    /// Runs until `done` or the step budget is spent; returns whether `done` held.
    fn run(&mut self, steps_max: usize, done: impl Fn(&Net) -> bool) -> bool {
        for _ in 0..steps_max {
            if done(self) {
                return true;
            }
            let next_timer = (0..self.nodes.len())
                .filter_map(|n| self.nodes[n].swarm.poll_timeout().map(|t| (t, n)))
                .min();
            let next_delivery = self.queue.keys().next().copied();
            match (next_delivery, next_timer) {
                (Some((at, seq)), timer) if timer.is_none_or(|(t, _)| at <= t) => {
                    let (to, from, bytes) = self.queue.remove(&(at, seq)).unwrap();
                    self.now = self.now.max(at);
                    let now = self.now;
                    let Some(decoder) = self.decoders.get_mut(&(to, from)) else {
                        continue; // The link was closed meanwhile.
                    };
                    decoder.feed(&bytes);
                    let mut messages = Vec::new();
                    loop {
                        match decoder.next_message() {
                            Ok(Some(m)) => messages.push(m.into_owned()),
                            Ok(None) => break,
                            Err(e) => panic!("honest cores sent an undecodable message: {e}"),
                        }
                    }
                    for m in messages {
                        self.nodes[to]
                            .swarm
                            .handle_message(now, PeerKey(from as u64), m);
                        self.drain(to);
                    }
                }
                (_, Some((t, n))) => {
                    self.now = self.now.max(t);
                    let now = self.now;
                    self.nodes[n].swarm.handle_timeout(now);
                    self.drain(n);
                }
                (_, None) => return done(self),
            }
        }
        done(self)
    }
}

fn content(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0] ^ seed)
        .collect()
}

fn leechers_done(net: &Net, leechers: std::ops::Range<usize>) -> bool {
    leechers.clone().all(|n| net.nodes[n].swarm.is_complete())
}

#[test]
fn one_seeder_three_leechers_complete_byte_identical() {
    let data = content(20 * PIECE_LEN as usize - 1234, 1);
    let mut net = Net::new(
        &data,
        &[
            (true, false),
            (false, false),
            (false, false),
            (false, false),
        ],
        42,
    );
    assert!(net.run(2_000_000, |net| leechers_done(net, 1..4)));
    for n in 1..4 {
        assert!(net.nodes[n].data == data, "node {n} has different bytes");
        assert!(net.nodes[n].events.contains(&Event::Complete));
    }
    // Leechers traded among themselves, not only with the seeder.
    let uploaded_by_leechers: u64 = (1..4)
        .map(|n| net.nodes[n].swarm.progress(net.now).bytes_uploaded)
        .sum();
    assert!(uploaded_by_leechers > 0);
}

#[test]
fn seeds_close_their_connections_to_each_other_and_only_those() {
    let data = content(8 * PIECE_LEN as usize, 5);
    // Two seeders (connected to each other from the start) and two leechers.
    let roles = [(true, false), (true, false), (false, false), (false, false)];
    let mut net = Net::new(&data, &roles, 11);
    let linked = |net: &Net, a: usize, b: usize| net.decoders.contains_key(&(a, b));
    assert!(
        net.run(10_000, |net| !linked(net, 0, 1)),
        "seeders stay linked"
    );
    assert!(
        linked(&net, 0, 2) && linked(&net, 2, 3),
        "other links closed"
    );
    assert!(net.run(2_000_000, |net| leechers_done(net, 2..4)));
    // Once the last Have messages arrive, everyone is a seed: no connection is left.
    assert!(net.run(10_000, |net| net.decoders.is_empty()));
    assert!(net.nodes[2].data == data && net.nodes[3].data == data);
}

#[test]
fn runs_are_reproducible_from_the_seed() {
    let data = content(8 * PIECE_LEN as usize, 2);
    let finish = |seed| {
        let mut net = Net::new(
            &data,
            &[(true, false), (false, false), (false, false)],
            seed,
        );
        assert!(net.run(1_000_000, |net| leechers_done(net, 1..3)));
        (net.now, net.seq)
    };
    assert_eq!(finish(7), finish(7));
}

#[test]
fn corrupt_peer_is_banned_and_download_completes() {
    let data = content(12 * PIECE_LEN as usize, 3);
    // Node 0 is an honest seeder, node 1 a seeder serving corrupt blocks, node 2 downloads.
    let mut net = Net::new(&data, &[(true, false), (true, true), (false, false)], 9);
    assert!(net.run(1_000_000, |net| leechers_done(net, 2..3)));
    assert!(net.nodes[2].data == data);
    let events = &net.nodes[2].events;
    assert!(
        events.contains(&Event::PeerBanned(addr(1).ip())),
        "{events:?}"
    );
    assert!(events.iter().any(|e| matches!(e, Event::PieceFailed(_))));
    assert!(net.nodes[2].swarm.is_banned(addr(1).ip()));
    assert!(!net.nodes[2].swarm.is_banned(addr(0).ip()));
}

#[test]
fn hostile_messages_drop_only_that_peer() {
    use std::borrow::Cow;
    use swarm::DropReason;
    use wire::{BlockRequest, Message};

    let geometry = Geometry::new(PIECE_LEN, 10 * u64::from(PIECE_LEN)).unwrap();
    let mut swarm = Swarm::new(
        geometry,
        Bitfield::full(10),
        Config::default(),
        Rng::from_seed(1),
    )
    .unwrap();
    let info = |n| PeerInfo {
        addr: addr(n),
        reserved: Reserved::FAST,
        outgoing: false,
    };
    let now = Timestamp::ZERO;
    for n in 1..=4 {
        swarm.handle_peer_connected(now, PeerKey(n as u64), info(n));
    }
    let hostile = [
        Message::Bitfield(Cow::Borrowed(&[0xff][..])),
        Message::Have(10),
        Message::Request(BlockRequest {
            index: 9,
            begin: PIECE_LEN - 10,
            length: 16 * 1024,
        }),
    ];
    for (n, message) in hostile.into_iter().enumerate() {
        swarm.handle_message(now, PeerKey(n as u64 + 1), message);
    }
    let mut dropped = Vec::new();
    while let Some(action) = swarm.poll_action() {
        if let Action::Disconnect { peer, reason } = action {
            assert!(matches!(reason, DropReason::Protocol(_)));
            dropped.push(peer.0);
        }
    }
    assert_eq!(dropped, [1, 2, 3]);
    assert_eq!(swarm.progress(now).peers, 1);
}

#[test]
fn smart_ban_blames_only_the_peer_whose_blocks_were_wrong() {
    let data = content(16 * PIECE_LEN as usize, 4);
    let mut shared_failures = 0;
    for seed in 0..8 {
        // Two seeders (one corrupt) both feed the downloader one block at a time, so every
        // piece mixes their blocks (without digests the honest one would collect strikes too).
        let config = Config {
            pipeline_min: 1,
            pipeline_max: 1,
            ..Config::default()
        };
        let roles = [(true, false), (true, true), (false, false)];
        let mut net = Net::with_config(&data, &roles, seed, config);
        net.digests = true;
        assert!(
            net.run(1_000_000, |net| leechers_done(net, 2..3)),
            "seed {seed}"
        );
        assert!(net.nodes[2].data == data, "seed {seed}");
        let banned: Vec<_> = net.nodes[2]
            .events
            .iter()
            .filter_map(|e| match e {
                Event::PeerBanned(ip) => Some(*ip),
                _ => None,
            })
            .collect();
        assert_eq!(banned, vec![addr(1).ip()], "seed {seed}");
        shared_failures += net.nodes[2]
            .events
            .iter()
            .filter(|e| matches!(e, Event::PieceFailed(_)))
            .count();
    }
    assert!(shared_failures > 0);
}
