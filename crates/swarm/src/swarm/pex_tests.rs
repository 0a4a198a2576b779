//! Peer exchange in virtual time: what is sent when, the caps, privacy and flood control.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::time::Duration;

use sansio::{Rng, Timestamp};
use wire::{ExtendedHandshake, Message, PexMessage, Reserved};

use super::*;
use crate::swarm::{Action, Config, DropReason, PeerInfo, UT_METADATA_ID};
use crate::{Bitfield, Geometry};

/// The id our test peers want `ut_pex` messages sent with.
const THEIR_PEX_ID: u8 = 7;

fn at(secs: u64) -> Timestamp {
    Timestamp::ZERO + Duration::from_secs(secs)
}

fn addr(host: u8, port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, host], port))
}

fn swarm(config: Config) -> Swarm {
    let geometry = Geometry::new(16 * 1024, 4 * 16 * 1024).unwrap();
    Swarm::new(geometry, Bitfield::new(4), config, Rng::from_seed(7)).unwrap()
}

fn connect(swarm: &mut Swarm, now: Timestamp, key: u64, addr: SocketAddr, outgoing: bool) {
    let info = PeerInfo {
        addr,
        reserved: Reserved::FAST.with(Reserved::EXTENSION_PROTOCOL),
        outgoing,
    };
    swarm.handle_peer_connected(now, PeerKey(key), info);
}

/// The peer's extended handshake: it speaks `ut_pex` (when `pex`) and listens on `port`.
fn say_hello(swarm: &mut Swarm, now: Timestamp, key: u64, pex: bool, port: Option<u16>) {
    let mut hs = ExtendedHandshake {
        listen_port: port,
        ..ExtendedHandshake::default()
    };
    if pex {
        hs.extensions.insert("ut_pex".to_owned(), THEIR_PEX_ID);
    }
    let payload = Cow::Owned(hs.to_bytes());
    swarm.handle_message(now, PeerKey(key), Message::Extended { id: 0, payload });
}

fn send_pex(swarm: &mut Swarm, now: Timestamp, key: u64, message: &PexMessage) {
    let payload = Cow::Owned(message.to_bytes());
    let message = Message::Extended {
        id: UT_PEX_ID,
        payload,
    };
    swarm.handle_message(now, PeerKey(key), message);
}

/// Drains the actions; returns the `ut_pex` messages sent to `key` and all disconnects.
fn drain(swarm: &mut Swarm, key: u64) -> (Vec<PexMessage>, Vec<(PeerKey, DropReason)>) {
    let (mut sent, mut dropped) = (Vec::new(), Vec::new());
    while let Some(action) = swarm.poll_action() {
        match action {
            Action::Send {
                peer,
                message: Message::Extended { id, payload },
            } if peer == PeerKey(key) && id == THEIR_PEX_ID => {
                sent.push(PexMessage::parse(&payload).unwrap());
            }
            Action::Disconnect { peer, reason } => dropped.push((peer, reason)),
            _ => {}
        }
    }
    (sent, dropped)
}

fn discovered(swarm: &mut Swarm) -> Vec<Vec<SocketAddr>> {
    let mut found = Vec::new();
    while let Some(event) = swarm.poll_event() {
        if let Event::PeersDiscovered(addrs) = event {
            found.push(addrs);
        }
    }
    found
}

fn our_handshake(swarm: &mut Swarm, key: u64) -> ExtendedHandshake {
    while let Some(action) = swarm.poll_action() {
        if let Action::Send {
            peer,
            message: Message::Extended { id: 0, payload },
        } = action
        {
            if peer == PeerKey(key) {
                return ExtendedHandshake::parse(&payload).unwrap();
            }
        }
    }
    panic!("no extended handshake sent");
}

#[test]
fn first_message_carries_connections_then_diffs_once_per_interval() {
    let config = Config {
        listen_port: Some(6881),
        ..Config::default()
    };
    let mut swarm = swarm(config);
    connect(&mut swarm, at(0), 1, addr(2, 50000), false);
    let hs = our_handshake(&mut swarm, 1);
    assert_eq!(hs.extensions.get("ut_pex"), Some(&UT_PEX_ID));
    assert_eq!(hs.extensions.get("ut_metadata"), None);
    assert_eq!(hs.listen_port, Some(6881));
    say_hello(&mut swarm, at(0), 1, true, Some(7002));
    // Alone with the recipient: nothing to tell yet, and nothing is sent.
    swarm.handle_timeout(at(1));
    assert_eq!(drain(&mut swarm, 1).0, vec![]);

    connect(&mut swarm, at(2), 3, addr(3, 7003), true); // We dialled it: reachable.
    connect(&mut swarm, at(2), 4, addr(4, 51000), false);
    say_hello(&mut swarm, at(2), 4, false, Some(7004)); // Incoming, told its port.
    connect(&mut swarm, at(2), 5, addr(5, 52000), false); // Incoming, port unknown: never passed on.
    swarm.handle_timeout(at(3));
    let (sent, _) = drain(&mut swarm, 1);
    assert_eq!(
        sent,
        vec![PexMessage {
            added: vec![(addr(3, 7003), PEX_FLAG_REACHABLE), (addr(4, 7004), 0)],
            dropped: vec![],
        }]
    );

    // A change right after waits for the interval.
    swarm.handle_peer_disconnected(at(4), PeerKey(3));
    connect(&mut swarm, at(4), 6, addr(6, 7006), true);
    swarm.handle_message(at(4), PeerKey(6), Message::HaveAll);
    for t in 4..63 {
        swarm.handle_timeout(at(t));
        assert_eq!(drain(&mut swarm, 1).0, vec![], "at {t} s");
    }
    swarm.handle_timeout(at(63));
    let (sent, _) = drain(&mut swarm, 1);
    assert_eq!(
        sent,
        vec![PexMessage {
            added: vec![(addr(6, 7006), PEX_FLAG_REACHABLE | PEX_FLAG_SEED)],
            dropped: vec![addr(3, 7003)],
        }]
    );
    // Peers that did not advertise ut_pex get nothing.
    swarm.handle_timeout(at(200));
    assert_eq!(drain(&mut swarm, 4).0, vec![]);
}

#[test]
fn lists_are_capped_and_the_rest_follows_in_later_messages() {
    let config = Config {
        peers_max: 200,
        pex_interval: Duration::from_secs(10),
        ..Config::default()
    };
    let mut swarm = swarm(config);
    connect(&mut swarm, at(0), 1, addr(1, 6881), true);
    say_hello(&mut swarm, at(0), 1, true, None);
    for n in 0..120u16 {
        connect(
            &mut swarm,
            at(0),
            100 + u64::from(n),
            addr(9, 10_000 + n),
            true,
        );
    }
    let mut added = Vec::new();
    for t in 1..=40 {
        swarm.handle_timeout(at(t));
        for message in drain(&mut swarm, 1).0 {
            assert!(message.added.len() <= PEX_SENT_PER_LIST_MAX);
            added.push(message.added.len());
        }
    }
    assert_eq!(added, vec![50, 50, 20]);

    for n in 0..120u16 {
        swarm.handle_peer_disconnected(at(41), PeerKey(100 + u64::from(n)));
    }
    let mut dropped = Vec::new();
    for t in 41..=80 {
        swarm.handle_timeout(at(t));
        for message in drain(&mut swarm, 1).0 {
            dropped.push(message.dropped.len());
        }
    }
    assert_eq!(dropped, vec![50, 50, 20]);
}

#[test]
fn received_addresses_are_filtered_and_capped() {
    let mut swarm = swarm(Config::default());
    connect(&mut swarm, at(0), 1, addr(2, 7002), true);
    connect(&mut swarm, at(0), 2, addr(3, 7003), true);
    let mut added: Vec<(SocketAddr, u8)> = vec![
        (addr(3, 7003), 0),                     // Connected already.
        (addr(1, 0), 0),                        // No port.
        ("0.0.0.0:7000".parse().unwrap(), 0),   // Unspecified.
        ("224.0.0.1:7000".parse().unwrap(), 0), // Multicast.
        (addr(10, 20_000), 0),                  // Local, fine: so is the sender.
    ];
    added.extend((0..100u16).map(|n| (addr(10, 20_000 + n), PEX_FLAG_REACHABLE)));
    let message = PexMessage {
        added,
        dropped: vec![addr(3, 7003)],
    };
    send_pex(&mut swarm, at(1), 1, &message);
    let found = discovered(&mut swarm);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].len(), PEX_ACCEPTED_PER_MESSAGE_MAX);
    assert_eq!(found[0][0], addr(10, 20_000), "once, though listed twice");
    assert_eq!(found[0][1], addr(10, 20_001));
    assert_eq!(drain(&mut swarm, 1).1, vec![], "nobody dropped");

    // A sender on the Internet cannot point us at local addresses.
    connect(
        &mut swarm,
        at(2),
        3,
        "203.0.113.9:6881".parse().unwrap(),
        true,
    );
    let message = PexMessage {
        added: vec![
            (addr(11, 7000), 0),
            ("198.51.100.7:7000".parse().unwrap(), 0),
        ],
        dropped: vec![],
    };
    send_pex(&mut swarm, at(2), 3, &message);
    assert_eq!(
        discovered(&mut swarm),
        vec![vec!["198.51.100.7:7000".parse().unwrap()]]
    );
}

#[test]
fn a_flooding_peer_is_ignored_then_dropped() {
    let mut swarm = swarm(Config::default());
    connect(&mut swarm, at(0), 1, addr(2, 7002), true);
    let news = |n: u16| PexMessage {
        added: vec![(addr(20, 1000 + n), 0)],
        dropped: vec![],
    };
    // The burst is read, then messages come too fast and are ignored.
    for n in 0..PEX_RECEIVE_BURST as u16 {
        send_pex(&mut swarm, at(1), 1, &news(n));
    }
    assert_eq!(discovered(&mut swarm).len(), PEX_RECEIVE_BURST as usize);
    send_pex(&mut swarm, at(2), 1, &news(10));
    assert_eq!(discovered(&mut swarm), Vec::<Vec<SocketAddr>>::new());
    // After the minimum interval one more is read.
    send_pex(&mut swarm, at(1 + 45), 1, &news(11));
    assert_eq!(discovered(&mut swarm), vec![vec![addr(20, 1011)]]);
    assert_eq!(drain(&mut swarm, 1).1, vec![]);
    // Flooding: ignored in a row until the peer is dropped.
    for n in 0..PEX_IGNORED_TO_DROP as u16 {
        send_pex(&mut swarm, at(47), 1, &news(20 + n));
    }
    assert_eq!(discovered(&mut swarm), Vec::<Vec<SocketAddr>>::new());
    assert_eq!(
        drain(&mut swarm, 1).1,
        vec![(PeerKey(1), DropReason::Protocol("ut_pex flood"))]
    );
}

#[test]
fn garbage_pex_drops_only_its_sender() {
    let mut swarm = swarm(Config::default());
    connect(&mut swarm, at(0), 1, addr(2, 7002), true);
    connect(&mut swarm, at(0), 2, addr(3, 7003), true);
    let payload = Cow::Borrowed(&b"l5:addede"[..]);
    swarm.handle_message(
        at(1),
        PeerKey(1),
        Message::Extended {
            id: UT_PEX_ID,
            payload,
        },
    );
    assert_eq!(
        drain(&mut swarm, 1).1,
        vec![(PeerKey(1), DropReason::Protocol("bad ut_pex message"))]
    );
    assert_eq!(swarm.progress(at(1)).peers, 1);
}

#[test]
fn private_torrents_neither_advertise_send_nor_accept_pex() {
    let config = Config {
        private: true,
        ..Config::default()
    };
    let mut swarm = swarm(config);
    swarm.set_metadata(vec![b'x'; 10]);
    connect(&mut swarm, at(0), 1, addr(2, 7002), true);
    let hs = our_handshake(&mut swarm, 1);
    assert_eq!(hs.extensions.get("ut_pex"), None);
    assert_eq!(hs.extensions.get("ut_metadata"), Some(&UT_METADATA_ID));
    say_hello(&mut swarm, at(0), 1, true, None);
    connect(&mut swarm, at(0), 2, addr(3, 7003), true);
    say_hello(&mut swarm, at(0), 2, true, None);
    for t in 1..200 {
        swarm.handle_timeout(at(t));
        assert_eq!(drain(&mut swarm, 1).0, vec![]);
    }
    let message = PexMessage {
        added: vec![(addr(20, 1000), 0)],
        dropped: vec![],
    };
    send_pex(&mut swarm, at(200), 1, &message);
    assert_eq!(discovered(&mut swarm), Vec::<Vec<SocketAddr>>::new());
    assert_eq!(drain(&mut swarm, 1).1, vec![]);
}
