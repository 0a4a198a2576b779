//! Real clients through spore's tracker on loopback: libtorrent seeds and libtorrent and aria2
//! download through it over HTTP, libtorrent over UDP (BEP 15), Transmission announces and seeds
//! to a libtorrent downloader; after each run the scrape counts are exactly what happened.
//!
//! Every peer gets its own loopback address or port; waits poll the tracker's scrape with a
//! bound (the clients report through sockets and files, not events we could await).

mod tracker_support;

use std::net::UdpSocket;
use std::path::Path;
use std::time::Duration;

use tracker::server::Config;
use tracker::udp::{Request, Response};
use tracker::{InfoHash, ScrapeStats};
use tracker_support::peers::{
    aria2_get, assert_same_file, content_dir, free_port, libtorrent_get, libtorrent_seed,
    transmission_seed,
};
use tracker_support::{fixture, info_hash_of, wait_for_value, wait_until, with_announce, Server};

const TORRENT: &str = "libtorrent-v1-single.torrent";
const FILE: &str = "single.bin";
const ANNOUNCE_WAIT: Duration = Duration::from_secs(60);
const DOWNLOAD_WAIT: Duration = Duration::from_secs(150);

/// The fixture torrent rewritten to announce to `announce`, saved in `dir`.
fn torrent_for(dir: &Path, announce: &str) -> (std::path::PathBuf, InfoHash) {
    let bytes = with_announce(&fixture(TORRENT), announce);
    let path = dir.join("single.torrent");
    std::fs::write(&path, &bytes).unwrap();
    (path, info_hash_of(&bytes))
}

fn wait_for_counts(server: &Server, hash: InfoHash, what: &str, want: ScrapeStats) {
    wait_for_value(ANNOUNCE_WAIT, what, want, || server.scrape(hash));
}

fn counts(complete: u32, incomplete: u32, downloaded: u32) -> ScrapeStats {
    ScrapeStats {
        complete,
        downloaded,
        incomplete,
    }
}

#[test]
fn libtorrent_and_aria2_download_from_libtorrent_through_http() {
    let server = Server::start(None, Config::default());
    let dir = tempfile::tempdir().unwrap();
    let (torrent, hash) = torrent_for(dir.path(), &server.announce_url());

    let _seed = libtorrent_seed(&torrent, &content_dir(), "127.0.0.2:0");
    wait_for_counts(&server, hash, "the seeder's announce", counts(1, 0, 0));

    let lt_out = dir.path().join("lt");
    std::fs::create_dir(&lt_out).unwrap();
    libtorrent_get(&torrent, &lt_out, "127.0.0.3:0").finish(DOWNLOAD_WAIT);
    assert_same_file(&lt_out.join(FILE), &content_dir().join(FILE));
    // libtorrent said `completed`, then `stopped` on the way out.
    wait_for_counts(&server, hash, "libtorrent's completion", counts(1, 0, 1));

    let aria_out = dir.path().join("aria2");
    std::fs::create_dir(&aria_out).unwrap();
    aria2_get(&torrent, &aria_out).finish(DOWNLOAD_WAIT);
    assert_same_file(&aria_out.join(FILE), &content_dir().join(FILE));
    wait_for_counts(&server, hash, "aria2's completion", counts(1, 0, 2));
}

/// Scrapes `hash` over UDP the way a BEP 15 client does: connect, then scrape with the id.
fn udp_scrape(server: &Server, hash: InfoHash) -> ScrapeStats {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    socket.connect(server.udp).unwrap();
    let mut buf = [0u8; tracker::udp::PACKET_BYTES_MAX];
    socket
        .send(&Request::Connect { transaction_id: 1 }.encode())
        .unwrap();
    let len = socket.recv(&mut buf).unwrap();
    let Ok(Response::Connect { connection_id, .. }) = Response::decode(&buf[..len], false) else {
        panic!("no connect answer");
    };
    let scrape = Request::Scrape {
        connection_id,
        transaction_id: 2,
        info_hashes: vec![hash],
    };
    socket.send(&scrape.encode()).unwrap();
    let len = socket.recv(&mut buf).unwrap();
    match Response::decode(&buf[..len], false) {
        Ok(Response::Scrape {
            transaction_id: 2,
            stats,
        }) => stats[0],
        other => panic!("bad scrape answer {other:?}"),
    }
}

#[test]
fn libtorrent_downloads_from_libtorrent_through_udp() {
    let server = Server::start(None, Config::default());
    let dir = tempfile::tempdir().unwrap();
    let (torrent, hash) = torrent_for(dir.path(), &format!("udp://{}/announce", server.udp));

    let _seed = libtorrent_seed(&torrent, &content_dir(), "127.0.0.4:0");
    wait_for_counts(&server, hash, "the seeder's UDP announce", counts(1, 0, 0));

    let out = dir.path().join("lt");
    std::fs::create_dir(&out).unwrap();
    libtorrent_get(&torrent, &out, "127.0.0.5:0").finish(DOWNLOAD_WAIT);
    assert_same_file(&out.join(FILE), &content_dir().join(FILE));
    // libtorrent announces `completed` over UDP but, exiting at once, does not always get its
    // `stopped` out: it then stays listed as a seeder until it expires.
    wait_until(ANNOUNCE_WAIT, "libtorrent's completion", || {
        let now = server.scrape(hash);
        now.downloaded == 1 && now.incomplete == 0 && (1..=2).contains(&now.complete)
    });
    assert_eq!(udp_scrape(&server, hash), server.scrape(hash));
    assert!(
        server.stats().connects >= 2,
        "both peers used BEP 15 connects"
    );
}

#[test]
fn transmission_seeds_to_libtorrent_through_http() {
    let server = Server::start(None, Config::default());
    let dir = tempfile::tempdir().unwrap();
    let (torrent, hash) = torrent_for(dir.path(), &server.announce_url());
    // Transmission writes resume data next to nothing it seeds, but give it its own copy anyway.
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::copy(content_dir().join(FILE), data.join(FILE)).unwrap();

    let _seed = transmission_seed(&torrent, &data, &dir.path().join("tr-config"), free_port());
    wait_for_counts(
        &server,
        hash,
        "Transmission's announce as a seeder",
        counts(1, 0, 0),
    );

    // Transmission ignores 127.x peers from trackers, but libtorrent dials it at the address
    // the tracker recorded for it.
    let out = dir.path().join("lt");
    std::fs::create_dir(&out).unwrap();
    libtorrent_get(&torrent, &out, "127.0.0.6:0").finish(DOWNLOAD_WAIT);
    assert_same_file(&out.join(FILE), &content_dir().join(FILE));
    wait_for_counts(&server, hash, "libtorrent's completion", counts(1, 0, 1));
}
