//! Hostile requests against a real `spore tracker` on loopback: missing and oversized
//! parameters, bad info-hash lengths, forged UDP connection ids and floods from one address
//! get a failure reason or are dropped, and the tracker keeps serving.

mod tracker_support;

use std::net::UdpSocket;
use std::time::Duration;

use tracker::server::{Config, RateLimit};
use tracker::udp::{Announce, Request, Response};
use tracker::{Event, InfoHash, PeerId};
use tracker_support::{get_bytes, Server};

fn failure(body: &[u8]) -> String {
    match tracker::http::AnnounceResponse::decode(body) {
        Err(tracker::Error::Failure(reason)) => reason,
        other => panic!("expected a failure reason, got {other:?}"),
    }
}

#[test]
fn malformed_http_announces_get_failure_reasons() {
    let server = Server::start(None, Config::default());
    let url = server.announce_url();
    let hash = "%AA".repeat(20);
    let peer = "-SP0001-123456789012";
    let cases = [
        (String::new(), "missing info_hash"),
        (format!("info_hash={hash}&port=1&left=0"), "missing peer_id"),
        (
            format!("info_hash={hash}&peer_id={peer}&left=0"),
            "missing port",
        ),
        (
            format!("info_hash=%AA%BB&peer_id={peer}&port=1&left=0"),
            "invalid info_hash",
        ),
        (
            format!("info_hash={hash}%AA&peer_id={peer}&port=1&left=0"),
            "invalid info_hash",
        ),
        (
            format!("info_hash={hash}&peer_id={peer}&port=99999&left=0"),
            "invalid port",
        ),
        (
            format!("info_hash={hash}&peer_id={peer}&port=1&left=-5"),
            "invalid left",
        ),
        (
            format!("info_hash={hash}&peer_id={peer}&port=1&left=0&event=explode"),
            "invalid event",
        ),
        (
            format!(
                "info_hash={hash}&peer_id={peer}&port=1&left=0&pad={}",
                "x".repeat(5000)
            ),
            "query too large",
        ),
        (
            format!(
                "info_hash={hash}&peer_id={peer}&port=1&left=0&key={}",
                "k".repeat(100)
            ),
            "key too large",
        ),
    ];
    for (query, reason) in cases {
        let body = get_bytes(&format!("{url}?{query}"));
        assert_eq!(
            failure(&body),
            format!("bad request: {reason}"),
            "query {query:.60}"
        );
    }
    let scrape = get_bytes(&format!("{}/scrape", server.base));
    assert_eq!(failure(&scrape), "scrape needs at least one info_hash");
    let many = "info_hash=".to_string() + &"%AA".repeat(20);
    let scrape = get_bytes(&format!(
        "{}/scrape?{}",
        server.base,
        vec![many; 65].join("&")
    ));
    assert!(failure(&scrape).contains("too large"));
    // After all that, a proper announce works.
    let ok = format!("{url}?info_hash={hash}&peer_id={peer}&port=1&left=0");
    tracker::http::AnnounceResponse::decode(&get_bytes(&ok)).unwrap();
}

fn announce_packet(connection_id: u64, transaction_id: u32) -> Vec<u8> {
    Request::Announce {
        connection_id,
        transaction_id,
        announce: Announce {
            info_hash: InfoHash([1; 20]),
            peer_id: PeerId([2; 20]),
            downloaded: 0,
            left: 10,
            uploaded: 0,
            event: Event::Started,
            ip: 0,
            key: 0,
            num_want: 10,
            port: 4000,
        },
    }
    .encode()
}

fn receive(socket: &UdpSocket) -> Response {
    let mut buf = [0u8; 2048];
    let len = socket.recv(&mut buf).expect("an answer within the timeout");
    Response::decode(&buf[..len], false).unwrap()
}

#[test]
fn forged_and_foreign_udp_connection_ids_are_dropped() {
    let server = Server::start(None, Config::default());
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    client.connect(server.udp).unwrap();
    let other = UdpSocket::bind("127.0.0.1:0").unwrap();
    other
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    other.connect(server.udp).unwrap();

    other
        .send(&Request::Connect { transaction_id: 1 }.encode())
        .unwrap();
    let Response::Connect {
        connection_id: foreign,
        ..
    } = receive(&other)
    else {
        panic!("no connect answer");
    };
    // Garbage, a forged id and another address's id: each dropped. Datagrams on loopback keep
    // their order, so the first answer must be the one to the connect sent last.
    client.send(&[0xFF; 7]).unwrap();
    client.send(&[0u8; 3000]).unwrap();
    client.send(&announce_packet(0xDEAD_BEEF, 2)).unwrap();
    client.send(&announce_packet(foreign, 3)).unwrap();
    client
        .send(&Request::Connect { transaction_id: 4 }.encode())
        .unwrap();
    let Response::Connect {
        transaction_id: 4,
        connection_id,
    } = receive(&client)
    else {
        panic!("the forged requests were answered");
    };
    client.send(&announce_packet(connection_id, 5)).unwrap();
    assert!(matches!(
        receive(&client),
        Response::Announce {
            transaction_id: 5,
            leechers: 1,
            ..
        }
    ));
    assert!(server.stats().refused >= 4);
}

#[test]
fn a_flood_from_one_address_is_cut_off_and_others_are_served() {
    let config = Config {
        rate_limit: Some(RateLimit {
            per_second: 20,
            burst: 40,
        }),
        ..Config::default()
    };
    let server = Server::start(None, config);
    let flood = UdpSocket::bind("127.0.0.1:0").unwrap();
    flood.connect(server.udp).unwrap();
    for tid in 0..2000u32 {
        flood
            .send(
                &Request::Connect {
                    transaction_id: tid,
                }
                .encode(),
            )
            .unwrap();
    }
    // Read answers until none comes for a second: the limiter let only a few through (the
    // kernel may drop some of the flood too, so the tracker's own count is checked as well).
    flood
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let mut buf = [0u8; 64];
    let answered = (0..2000)
        .take_while(|_| flood.recv(&mut buf).is_ok())
        .count();
    assert!(
        answered > 0 && answered < 400,
        "{answered} flood packets answered"
    );
    tracker_support::wait_until(Duration::from_secs(10), "refusals counted", || {
        server.stats().refused > 0
    });
    let url = server.announce_url();
    let query = format!(
        "info_hash={}&peer_id={}&port=1&left=0",
        "%AA".repeat(20),
        "-SP0001-123456789012"
    );
    let refused = (0..200)
        .filter(|_| {
            tracker::http::AnnounceResponse::decode(&get_bytes(&format!("{url}?{query}"))).is_err()
        })
        .count();
    assert!(refused > 0, "HTTP flood never limited");
    // Another loopback address is unaffected.
    let other = UdpSocket::bind("127.0.0.2:0").unwrap();
    other
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    other.connect(server.udp).unwrap();
    other
        .send(&Request::Connect { transaction_id: 9 }.encode())
        .unwrap();
    assert!(matches!(
        receive(&other),
        Response::Connect {
            transaction_id: 9,
            ..
        }
    ));
}
