use super::*;
use crate::http::AnnounceRequest;
use proptest::prelude::{any, prop_assert, prop_assert_eq, proptest};

const HASH: InfoHash = InfoHash([7; 20]);

fn tracker(config: Config) -> Tracker {
    Tracker::new(config, Rng::from_seed(9), Timestamp::ZERO)
}

fn query(peer: u8, port: u16, left: u64, event: Event, numwant: Option<u32>) -> String {
    AnnounceRequest {
        info_hash: HASH,
        peer_id: PeerId([peer; 20]),
        port,
        uploaded: 0,
        downloaded: 0,
        left,
        event,
        numwant,
        compact: true,
        ip: None,
        key: None,
        tracker_id: None,
    }
    .to_query()
}

fn ip(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

fn announce(
    t: &mut Tracker,
    now: Timestamp,
    peer: u8,
    left: u64,
    event: Event,
) -> AnnounceResponse {
    let body = t.handle_http_announce(now, ip(peer), None, &query(peer, 6881, left, event, None));
    AnnounceResponse::decode(&body).expect("announce accepted")
}

fn scrape(t: &mut Tracker) -> ScrapeStats {
    let q = ScrapeRequest {
        info_hashes: vec![HASH],
    }
    .to_query();
    let body = t.handle_http_scrape(Timestamp::ZERO, ip(1), None, &q);
    ScrapeResponse::decode(&body).unwrap().files[0].1
}

#[test]
fn leecher_finds_seeder_and_scrape_counts_follow_events() {
    let mut t = tracker(Config::default());
    let now = Timestamp::ZERO;
    let seed = announce(&mut t, now, 2, 0, Event::Started);
    assert!(seed.peers.is_empty());
    let leech = announce(&mut t, now, 3, 100, Event::Started);
    assert_eq!(leech.peers, vec!["127.0.0.2:6881".parse().unwrap()]);
    assert_eq!((leech.complete, leech.incomplete), (Some(1), Some(1)));
    assert_eq!(
        scrape(&mut t),
        ScrapeStats {
            complete: 1,
            downloaded: 0,
            incomplete: 1
        }
    );
    announce(&mut t, now, 3, 0, Event::Completed);
    assert_eq!(
        scrape(&mut t),
        ScrapeStats {
            complete: 2,
            downloaded: 1,
            incomplete: 0
        }
    );
    announce(&mut t, now, 2, 0, Event::Stopped);
    assert_eq!(
        scrape(&mut t),
        ScrapeStats {
            complete: 1,
            downloaded: 1,
            incomplete: 0
        }
    );
}

#[test]
fn numwant_is_capped_and_requester_excluded() {
    let mut t = tracker(Config {
        numwant_max: 5,
        ..Config::default()
    });
    for peer in 1..=20 {
        announce(&mut t, Timestamp::ZERO, peer, 1, Event::Started);
    }
    let body = t.handle_http_announce(
        Timestamp::ZERO,
        ip(1),
        None,
        &query(1, 6881, 1, Event::None, Some(1000)),
    );
    let resp = AnnounceResponse::decode(&body).unwrap();
    assert_eq!(resp.peers.len(), 5);
    assert!(!resp.peers.contains(&"127.0.0.1:6881".parse().unwrap()));
    let body = t.handle_http_announce(
        Timestamp::ZERO,
        ip(1),
        None,
        &query(1, 6881, 1, Event::None, Some(0)),
    );
    assert!(AnnounceResponse::decode(&body).unwrap().peers.is_empty());
}

#[test]
fn silent_peers_expire() {
    let config = Config {
        peer_ttl: Duration::from_secs(100),
        ..Config::default()
    };
    let mut t = tracker(config);
    announce(&mut t, Timestamp::ZERO, 2, 0, Event::Started);
    announce(
        &mut t,
        Timestamp::ZERO + Duration::from_secs(90),
        3,
        5,
        Event::Started,
    );
    let later = Timestamp::ZERO + Duration::from_secs(150);
    assert!(t.poll_timeout() <= later);
    t.handle_timeout(later);
    assert_eq!(
        scrape(&mut t),
        ScrapeStats {
            complete: 0,
            downloaded: 0,
            incomplete: 1
        }
    );
    assert_eq!(t.stats().peers, 1);
}

#[test]
fn whitelist_and_passkeys_refuse_with_reasons() {
    let config = Config {
        whitelist: Some([InfoHash([1; 20])].into()),
        passkeys: Some(["s3cret".to_string()].into()),
        ..Config::default()
    };
    let mut t = tracker(config);
    let q = query(2, 1, 0, Event::Started, None);
    let failure = |body: Vec<u8>| match AnnounceResponse::decode(&body) {
        Err(crate::Error::Failure(reason)) => reason,
        other => panic!("expected a failure, got {other:?}"),
    };
    assert_eq!(
        failure(t.handle_http_announce(Timestamp::ZERO, ip(2), None, &q)),
        "unknown or missing passkey"
    );
    assert_eq!(
        failure(t.handle_http_announce(Timestamp::ZERO, ip(2), Some("nope"), &q)),
        "unknown or missing passkey"
    );
    assert_eq!(
        failure(t.handle_http_announce(Timestamp::ZERO, ip(2), Some("s3cret"), &q)),
        "torrent not registered with this tracker"
    );
    assert!(failure(t.handle_http_announce(
        Timestamp::ZERO,
        ip(2),
        Some("s3cret"),
        "info_hash=abc"
    ))
    .starts_with("bad request"));
}

#[test]
fn flood_from_one_address_is_limited_and_others_still_served() {
    let config = Config {
        rate_limit: Some(RateLimit {
            per_second: 10,
            burst: 20,
        }),
        ..Config::default()
    };
    let mut t = tracker(config);
    let q = query(2, 1, 0, Event::None, None);
    let refused = (0..1000)
        .filter(|_| {
            AnnounceResponse::decode(&t.handle_http_announce(Timestamp::ZERO, ip(2), None, &q))
                .is_err()
        })
        .count();
    assert_eq!(refused, 980);
    assert!(AnnounceResponse::decode(&t.handle_http_announce(
        Timestamp::ZERO,
        ip(3),
        None,
        &query(3, 1, 0, Event::None, None)
    ))
    .is_ok());
    // Tokens come back with time.
    let later = Timestamp::ZERO + Duration::from_secs(1);
    assert!(AnnounceResponse::decode(&t.handle_http_announce(later, ip(2), None, &q)).is_ok());
    let packet = udp::Request::Connect { transaction_id: 1 }.encode();
    let src: SocketAddr = "127.0.0.2:5000".parse().unwrap();
    let answered = (0..100)
        .filter(|_| t.handle_udp(later, src, &packet).is_some())
        .count();
    assert!(answered < 20, "UDP flood dropped, {answered} answered");
}

fn udp_connect(t: &mut Tracker, src: SocketAddr) -> u64 {
    let reply = t
        .handle_udp(
            Timestamp::ZERO,
            src,
            &udp::Request::Connect { transaction_id: 5 }.encode(),
        )
        .unwrap();
    match udp::Response::decode(&reply, false).unwrap() {
        udp::Response::Connect {
            transaction_id: 5,
            connection_id,
        } => connection_id,
        other => panic!("{other:?}"),
    }
}

fn udp_announce(connection_id: u64, peer: u8, left: u64) -> Vec<u8> {
    udp::Request::Announce {
        connection_id,
        transaction_id: 6,
        announce: udp::Announce {
            info_hash: HASH,
            peer_id: PeerId([peer; 20]),
            downloaded: 0,
            left,
            uploaded: 0,
            event: Event::Started,
            ip: 0,
            key: 0,
            num_want: -1,
            port: 7000 + u16::from(peer),
        },
    }
    .encode()
}

#[test]
fn udp_announce_and_scrape_with_bound_connection_ids() {
    let mut t = tracker(Config::default());
    let a: SocketAddr = "127.0.0.2:4000".parse().unwrap();
    let b: SocketAddr = "127.0.0.3:4000".parse().unwrap();
    let id_a = udp_connect(&mut t, a);
    let id_b = udp_connect(&mut t, b);
    assert!(t
        .handle_udp(Timestamp::ZERO, a, &udp_announce(id_a, 2, 0))
        .is_some());
    // A forged id, or a's id used from b, is dropped silently.
    assert_eq!(
        t.handle_udp(Timestamp::ZERO, b, &udp_announce(id_a, 3, 9)),
        None
    );
    assert_eq!(
        t.handle_udp(Timestamp::ZERO, b, &udp_announce(id_b ^ 1, 3, 9)),
        None
    );
    let reply = t
        .handle_udp(Timestamp::ZERO, b, &udp_announce(id_b, 3, 9))
        .unwrap();
    match udp::Response::decode(&reply, false).unwrap() {
        udp::Response::Announce {
            transaction_id: 6,
            seeders: 1,
            leechers: 1,
            peers,
            ..
        } => {
            assert_eq!(peers, vec!["127.0.0.2:7002".parse().unwrap()]);
        }
        other => panic!("{other:?}"),
    }
    let scrape = udp::Request::Scrape {
        connection_id: id_b,
        transaction_id: 8,
        info_hashes: vec![HASH, InfoHash([0; 20])],
    };
    let reply = t.handle_udp(Timestamp::ZERO, b, &scrape.encode()).unwrap();
    assert_eq!(
        udp::Response::decode(&reply, false).unwrap(),
        udp::Response::Scrape {
            transaction_id: 8,
            stats: vec![
                ScrapeStats {
                    complete: 1,
                    downloaded: 0,
                    incomplete: 1
                },
                ScrapeStats::default()
            ]
        }
    );
    // Three minutes later the id is gone.
    let later = Timestamp::ZERO + Duration::from_secs(180);
    assert_eq!(t.handle_udp(later, b, &udp_announce(id_b, 3, 9)), None);
}

#[test]
fn udp_refusal_is_an_error_packet() {
    let mut t = tracker(Config {
        whitelist: Some(BTreeSet::new()),
        ..Config::default()
    });
    let a: SocketAddr = "127.0.0.2:4000".parse().unwrap();
    let id = udp_connect(&mut t, a);
    let reply = t
        .handle_udp(Timestamp::ZERO, a, &udp_announce(id, 2, 0))
        .unwrap();
    assert_eq!(
        udp::Response::decode(&reply, false).unwrap(),
        udp::Response::Error {
            transaction_id: 6,
            message: "torrent not registered with this tracker".into()
        }
    );
}

#[test]
fn private_mode_refuses_udp_announces_and_scrapes() {
    let mut t = tracker(Config {
        passkeys: Some(["s3cret".to_string()].into()),
        ..Config::default()
    });
    let a: SocketAddr = "127.0.0.2:4000".parse().unwrap();
    let id = udp_connect(&mut t, a);
    let scrape = udp::Request::Scrape {
        connection_id: id,
        transaction_id: 6,
        info_hashes: vec![HASH],
    };
    for packet in [udp_announce(id, 2, 0), scrape.encode()] {
        let reply = t.handle_udp(Timestamp::ZERO, a, &packet).unwrap();
        assert_eq!(
            udp::Response::decode(&reply, false).unwrap(),
            udp::Response::Error {
                transaction_id: 6,
                message: "unknown or missing passkey".into()
            }
        );
    }
    assert_eq!(t.stats().peers, 0);
}

proptest! {
    #[test]
    fn hostile_input_never_panics_and_counts_stay_consistent(
        queries in proptest::collection::vec(".{0,120}", 0..20),
        packets in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..120), 0..20),
        events in proptest::collection::vec((1u8..6, 0u64..3, 0usize..4), 0..40),
    ) {
        let mut t = tracker(Config::default());
        let src: SocketAddr = "127.0.0.9:1".parse().unwrap();
        for q in &queries {
            let body = t.handle_http_announce(Timestamp::ZERO, src.ip(), None, q);
            prop_assert!(bencode::decode(&body).is_ok());
            t.handle_http_scrape(Timestamp::ZERO, src.ip(), None, q);
        }
        for p in &packets {
            t.handle_udp(Timestamp::ZERO, src, p);
        }
        let kinds = [Event::None, Event::Started, Event::Completed, Event::Stopped];
        for (step, (peer, left, kind)) in events.into_iter().enumerate() {
            let now = Timestamp::from_millis(step as u64 * 1000);
            t.handle_http_announce(now, ip(peer), None, &query(peer, 1, left, kinds[kind], None));
            let s = t.swarm_stats(&HASH);
            let stats = t.stats();
            prop_assert_eq!(u64::from(s.complete + s.incomplete), stats.peers);
            prop_assert_eq!(u64::from(s.complete), stats.seeders);
        }
    }
}

#[test]
fn a_packed_peer_keeps_its_address_and_last_second() {
    assert_eq!(std::mem::size_of::<PeerEntry>(), 44);
    let now = Timestamp::ZERO + Duration::from_millis(7_900);
    for addr in ["198.51.100.7:6881", "[2001:db8::7]:51413", "[::1]:1"] {
        let addr: SocketAddr = addr.parse().unwrap();
        let entry = PeerEntry::new(PeerId([9; 20]), addr, true, now);
        assert_eq!(entry.addr(), addr);
        assert_eq!(entry.is_ipv4(), addr.is_ipv4());
        assert_eq!(entry.last_seen, 7);
    }
}
