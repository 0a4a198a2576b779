//! Helpers shared by the tracker's integration tests: an in-process `spore tracker` on
//! loopback, fixtures, torrents built on the spot, and bounded polling.

#![allow(dead_code)] // Each test binary uses a different subset.

pub mod peers;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bencode::Owned;
use node::tracker::api::{PublishRequest, PublishResponse, SearchResponse, StatsResponse};
use node::tracker::{RunningTracker, TrackerOptions};
use tracker::server::Config;

/// A tracker served by its own runtime.
pub struct Server {
    pub runtime: tokio::runtime::Runtime,
    pub running: Option<RunningTracker>,
    pub base: String,
    pub udp: SocketAddr,
}

impl Server {
    pub fn start(db: Option<&Path>, config: Config) -> Server {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let options = TrackerOptions {
            http: Some(loopback),
            udp: Some(loopback),
            db: db.map(Path::to_path_buf),
            config,
            seed: 7,
        };
        let running = runtime.block_on(node::tracker::start(options)).unwrap();
        let base = format!("http://{}", running.http_addr.unwrap());
        let udp = running.udp_addr.unwrap();
        Server {
            runtime,
            running: Some(running),
            base,
            udp,
        }
    }

    /// Stops the tracker and waits until its tasks (and the database) are closed.
    pub fn stop(mut self) {
        if let Some(running) = self.running.take() {
            self.runtime.block_on(running.shutdown());
        }
    }

    pub fn announce_url(&self) -> String {
        format!("{}/announce", self.base)
    }

    pub fn publish(&self, torrent: &[u8]) -> PublishResponse {
        let torrent = metainfo::Torrent::from_bytes(torrent).unwrap();
        let request = PublishRequest::from_record(&node::tracker::record_from_torrent(&torrent));
        ureq::post(&format!("{}/api/publish", self.base))
            .send_json(&request)
            .unwrap()
            .into_json()
            .unwrap()
    }

    pub fn search(&self, words: &str) -> SearchResponse {
        ureq::get(&format!("{}/api/search", self.base))
            .query("q", words)
            .call()
            .unwrap()
            .into_json()
            .unwrap()
    }

    pub fn stats(&self) -> StatsResponse {
        ureq::get(&format!("{}/api/stats", self.base))
            .call()
            .unwrap()
            .into_json()
            .unwrap()
    }

    /// The tracker's counts for one torrent, read through HTTP scrape.
    pub fn scrape(&self, info_hash: tracker::InfoHash) -> tracker::ScrapeStats {
        let query = tracker::http::ScrapeRequest {
            info_hashes: vec![info_hash],
        }
        .to_query();
        let body = get_bytes(&format!("{}/scrape?{query}", self.base));
        tracker::http::ScrapeResponse::decode(&body).unwrap().files[0].1
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            self.runtime.block_on(running.shutdown());
        }
    }
}

pub fn get_bytes(url: &str) -> Vec<u8> {
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut ureq::get(url).call().unwrap().into_reader(), &mut body)
        .unwrap();
    body
}

/// Waits until `check` holds, polling every 50 ms for at most `limit`: external clients report
/// through files and sockets, so there is no event to wait on; the bound keeps the loop finite.
#[allow(clippy::disallowed_methods)]
pub fn wait_until(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until `read` returns `want`, polling like [`wait_until`]; on timeout the panic shows
/// the last value read.
#[allow(clippy::disallowed_methods)]
pub fn wait_for_value<T: PartialEq + std::fmt::Debug>(
    limit: Duration,
    what: &str,
    want: T,
    mut read: impl FnMut() -> T,
) {
    let start = Instant::now();
    loop {
        let got = read();
        if got == want {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}: want {want:?}, last {got:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn shared_dir() -> PathBuf {
    match std::env::var_os("SPORE_SHARED") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    }
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(shared_dir().join("fixtures/torrents").join(name)).unwrap()
}

/// The torrent with its tracker replaced by `announce`; the info dictionary is kept byte for
/// byte, so the info-hash does not change.
pub fn with_announce(torrent: &[u8], announce: &str) -> Vec<u8> {
    let value = bencode::decode(torrent).unwrap();
    let mut out = std::collections::BTreeMap::new();
    for (key, v) in value.as_dict().unwrap().iter() {
        match key {
            b"info" => {
                out.insert(key.to_vec(), Owned::Raw(v.raw().to_vec()));
            }
            b"announce-list" => {}
            _ => {
                out.insert(key.to_vec(), v.to_owned_value());
            }
        }
    }
    out.insert(b"announce".to_vec(), Owned::from(announce));
    Owned::Dict(out).to_bytes()
}

/// A small v1 torrent named `name` with these `(path, size)` files (their content is never
/// needed: the index only reads metadata).
pub fn made_up_torrent(name: &str, files: &[(&str, i64)]) -> Vec<u8> {
    let piece_length: i64 = 16384;
    let total: i64 = files.iter().map(|f| f.1).sum();
    let pieces = (total + piece_length - 1) / piece_length;
    let list: Vec<Owned> = files
        .iter()
        .map(|(path, size)| {
            let segments: Vec<Owned> = path.split('/').map(Owned::from).collect();
            Owned::dict().with("length", *size).with("path", segments)
        })
        .collect();
    let info = Owned::dict()
        .with("files", list)
        .with("name", name)
        .with("piece length", piece_length)
        .with("pieces", vec![0xAAu8; 20 * pieces as usize]);
    Owned::dict().with("info", info).to_bytes()
}

pub fn info_hash_of(torrent: &[u8]) -> tracker::InfoHash {
    let t = metainfo::Torrent::from_bytes(torrent).unwrap();
    tracker::InfoHash(t.info.info_hashes().v1.unwrap().0)
}
