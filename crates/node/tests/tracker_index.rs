//! The index end to end: publish three torrents, restart the tracker on the same database,
//! search; results are all there, ranked by relevance and carry live swarm counts.

mod tracker_support;

use tracker::http::AnnounceRequest;
use tracker::server::Config;
use tracker::{Event, PeerId};
use tracker_support::{fixture, get_bytes, info_hash_of, made_up_torrent, Server};

#[test]
fn published_torrents_survive_a_restart_and_rank_sensibly() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("index.db");
    let netinst = made_up_torrent(
        "debian-12-netinst",
        &[("debian-12-amd64-netinst.iso", 650_000)],
    );
    let live = made_up_torrent(
        "Debian 12 live xfce desktop image with extras",
        &[("live/xfce.iso", 3_000_000), ("live/README.txt", 1_000)],
    );
    let real = fixture("libtorrent-v1-multi.torrent");

    let server = Server::start(Some(&db), Config::default());
    let mut keys: Vec<String> = [&netinst, &live, &real]
        .iter()
        .map(|t| server.publish(t).info_hash)
        .collect();
    server.stop();

    let server = Server::start(Some(&db), Config::default());
    assert_eq!(
        server.stats().indexed,
        3,
        "every acknowledged publish survived"
    );
    let mut found: Vec<String> = ["debian", "multi"]
        .iter()
        .flat_map(|w| server.search(w).results)
        .map(|h| h.info_hash)
        .collect();
    found.sort();
    keys.sort();
    assert_eq!(found, keys);

    // The shorter name that matches ranks first; a word only in the long one finds it alone.
    let debian = server.search("debian");
    let names: Vec<&str> = debian.results.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "debian-12-netinst",
            "Debian 12 live xfce desktop image with extras"
        ]
    );
    assert_eq!(server.search("xfce desk").results.len(), 1);
    // File paths are searchable: the real fixture holds sub/alpha.bin.
    let alpha = server.search("alpha");
    assert_eq!(alpha.results.len(), 1);
    assert_eq!(alpha.results[0].info_hash, info_hash_of(&real).to_hex());
    assert!(server.search("nothing-like-this").results.is_empty());

    // Live seeders: a seeder announces the long-named one, which then outranks the other.
    let live_hash = info_hash_of(&live);
    for peer in 1..=20u8 {
        let query = AnnounceRequest {
            info_hash: live_hash,
            peer_id: PeerId([peer; 20]),
            port: 6881,
            uploaded: 0,
            downloaded: 0,
            left: 0,
            event: Event::Started,
            numwant: Some(0),
            compact: true,
            ip: Some(format!("127.0.0.{peer}").parse().unwrap()),
            key: None,
            tracker_id: None,
        }
        .to_query();
        let body = get_bytes(&format!("{}?{query}", server.announce_url()));
        tracker::http::AnnounceResponse::decode(&body).unwrap();
    }
    let debian = server.search("debian");
    assert_eq!(debian.results[0].info_hash, live_hash.to_hex());
    assert_eq!(debian.results[0].seeders, 20);
    assert_eq!(debian.results[1].seeders, 0);

    // A torrent's page data: files, magnet and swarm health.
    let details: node::tracker::api::TorrentDetails = ureq::get(&format!(
        "{}/api/torrents/{}",
        server.base,
        live_hash.to_hex()
    ))
    .call()
    .unwrap()
    .into_json()
    .unwrap();
    assert_eq!(details.files.len(), 2);
    assert_eq!(details.seeders, 20);
    assert!(details.magnet.contains(&live_hash.to_hex()));
}

#[test]
fn bad_publish_and_lookup_requests_are_refused_with_reasons() {
    let server = Server::start(None, Config::default());
    let post = |body: &str| match ureq::post(&format!("{}/api/publish", server.base))
        .set("content-type", "application/json")
        .send_string(body)
    {
        Err(ureq::Error::Status(code, resp)) => (code, resp.into_string().unwrap()),
        other => panic!("expected a refusal, got {other:?}"),
    };
    let (code, body) = post("not json");
    assert_eq!(code, 400);
    assert!(body.contains("bad publish body"), "{body}");
    let (code, body) = post(
        r#"{"info_hash_v1":"12","info_hash_v2":null,"name":"x","files":[],"total_size":0,"magnet":"magnet:?xt=1"}"#,
    );
    assert_eq!(code, 400);
    assert!(body.contains("info_hash_v1"), "{body}");
    let too_long = "x".repeat(5000);
    let (code, body) = post(&format!(
        r#"{{"info_hash_v1":"{}","info_hash_v2":null,"name":"{too_long}","files":[],"total_size":0,"magnet":"magnet:?xt=1"}}"#,
        "ab".repeat(20)
    ));
    assert_eq!(code, 400);
    assert!(body.contains("name too large"), "{body}");
    match ureq::get(&format!("{}/api/torrents/zz", server.base)).call() {
        Err(ureq::Error::Status(400, _)) => {}
        other => panic!("expected 400, got {other:?}"),
    }
    match ureq::get(&format!("{}/api/torrents/{}", server.base, "00".repeat(20))).call() {
        Err(ureq::Error::Status(404, _)) => {}
        other => panic!("expected 404, got {other:?}"),
    }
    assert_eq!(server.stats().indexed, 0);
}
