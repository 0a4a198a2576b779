//! End to end through a real tracker (Debian's opentracker on loopback), no `--peer` anywhere:
//! aria2 downloads from `spore seed`, `spore get` downloads from a libtorrent seeder, and spore
//! downloads from spore over a UDP tracker. Each peer finds the other only through the
//! tracker, and the tracker's scrape counts show the `completed` and `stopped` announces.

#[path = "../../node/tests/announce_support/opentracker.rs"]
mod opentracker;

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use opentracker::OpenTracker;
use tracker::{InfoHash, ScrapeStats};

/// Bound on a whole download, enforced by coreutils' `timeout`.
const DOWNLOAD_TIMEOUT_S: &str = "120";
/// Scrapes while waiting for the tracker to see an announce (every 100 ms: 30 s in all).
const SCRAPE_POLLS_MAX: u32 = 300;
/// The content: 4 MiB in 256 KiB pieces.
const CONTENT_BYTES: usize = 4 << 20;

fn spore() -> Command {
    Command::new(env!("CARGO_BIN_EXE_spore"))
}

fn shared_dir() -> PathBuf {
    std::env::var_os("SPORE_SHARED").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
        PathBuf::from,
    )
}

/// A content file, a torrent for it announcing to `tracker_url`, and its info-hashes.
struct Content {
    dir: tempfile::TempDir,
    torrent: PathBuf,
    /// The id on the wire (the v1 hash unless the torrent is v2-only).
    info_hash: [u8; 20],
    info_hashes: metainfo::InfoHashes,
}

impl Content {
    /// `version` is `spore create`'s flag: `--v1`, `--v2` or `--hybrid`.
    fn new(tracker_url: &str, version: &str) -> Content {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("seed");
        std::fs::create_dir(&data).expect("mkdir");
        // Every 4-byte word differs, so no two pieces are alike.
        let bytes: Vec<u8> = (0..CONTENT_BYTES as u32 / 4)
            .flat_map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes())
            .collect();
        std::fs::write(data.join("payload.bin"), bytes).expect("write content");
        let torrent = dir.path().join("payload.torrent");
        let created = spore()
            .args(["create", version, "--piece-length", "256K", "--tracker"])
            .arg(tracker_url)
            .arg(data.join("payload.bin"))
            .arg("-o")
            .arg(&torrent)
            .output()
            .expect("run spore create");
        assert!(created.status.success(), "{created:?}");
        let parsed = metainfo::Torrent::from_bytes(&std::fs::read(&torrent).expect("read torrent"))
            .expect("spore's torrent parses");
        Content {
            info_hash: parsed.info.info_hashes().wire_id(),
            info_hashes: parsed.info.info_hashes(),
            torrent,
            dir,
        }
    }

    fn seed_dir(&self) -> PathBuf {
        self.dir.path().join("seed")
    }

    fn assert_downloaded_to(&self, out_dir: &Path) {
        let original = std::fs::read(self.seed_dir().join("payload.bin")).expect("original");
        let copy = std::fs::read(out_dir.join("payload.bin")).expect("the downloaded file");
        assert!(copy == original, "the downloaded file differs");
    }
}

/// The tracker's counts for `info_hash`.
fn scrape(url: &str, info_hash: [u8; 20]) -> ScrapeStats {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let config =
        node::announce::Config::new(Vec::new(), InfoHash(info_hash), tracker::PeerId([7; 20]), 7);
    let stats = runtime
        .block_on(node::announce::scrape(&config, url, &[InfoHash(info_hash)]))
        .unwrap_or_else(|e| panic!("scrape of {url}: {e}"));
    // opentracker leaves out a torrent nobody has announced yet: all counts zero.
    stats.first().map(|(_, s)| *s).unwrap_or_default()
}

/// Scrapes until `condition` holds (bounded), and returns the counts that satisfied it.
fn wait_for_counts(
    url: &str,
    info_hash: [u8; 20],
    what: &str,
    condition: impl Fn(&ScrapeStats) -> bool,
) -> ScrapeStats {
    let mut last = ScrapeStats::default();
    for _ in 0..SCRAPE_POLLS_MAX {
        last = scrape(url, info_hash);
        if condition(&last) {
            return last;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the tracker never saw {what}: {last:?}");
}

/// A child process killed (and reaped) when dropped, with its stdout kept open (a closed
/// pipe would fail its last report).
struct Running {
    child: Child,
    _stdout: Option<BufReader<ChildStdout>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh opentracker on a free loopback port that tracks one new content, and the content's
/// announce URL (`SCHEME://ADDR/announce`); dropping the tracker stops it.
fn tracked_content(scheme: &str) -> (String, Content, OpenTracker) {
    let addr = opentracker::free_port(Ipv4Addr::LOCALHOST);
    let url = format!("{scheme}://{addr}/announce");
    let content = Content::new(&url, "--v1");
    let tracker = OpenTracker::start_at(addr, &[content.info_hash]);
    (url, content, tracker)
}

/// Starts `spore seed` on 127.0.0.1 and waits for its "seeding" line.
fn spore_seed(content: &Content) -> Running {
    let mut child = spore()
        .args(["--json", "seed"])
        .arg(&content.torrent)
        .arg(content.seed_dir())
        // Loopback only: no DHT (its default bootstrap routers are public hosts).
        .args(["--listen", "127.0.0.1:0", "--no-dht"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start spore seed");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut line = String::new();
    stdout
        .read_line(&mut line)
        .expect("read spore seed's output");
    assert!(line.contains("seeding"), "spore seed said {line:?}");
    Running {
        child,
        _stdout: Some(stdout),
    }
}

/// Interrupts `running` as Ctrl-C would and waits (bounded) for a clean exit.
fn interrupt(mut running: Running) {
    let pid = running.child.id().to_string();
    let status = Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    for _ in 0..300 {
        if let Some(status) = running.child.try_wait().expect("wait") {
            assert!(status.success(), "exit after Ctrl-C: {status}");
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("did not exit within 15 s of Ctrl-C");
}

/// Runs `spore get` (no `--peer`) to completion, bounded by [`DOWNLOAD_TIMEOUT_S`].
fn spore_get(content: &Content, out_dir: &Path) {
    let output = Command::new("timeout")
        .arg(DOWNLOAD_TIMEOUT_S)
        .arg(env!("CARGO_BIN_EXE_spore"))
        .args(["--json", "get"])
        .arg(&content.torrent)
        .arg("-o")
        .arg(out_dir)
        .args(["--listen", "127.0.0.1:0", "--no-dht"])
        .output()
        .expect("run spore get");
    assert!(
        output.status.success(),
        "spore get failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn aria2_downloads_from_spore_seed_through_opentracker() {
    let (url, content, _tracker) = tracked_content("http");
    let seeder = spore_seed(&content);
    wait_for_counts(&url, content.info_hash, "spore's `started`", |s| {
        s.complete == 1
    });

    let out = content.dir.path().join("aria2");
    let aria2_port = opentracker::free_port(Ipv4Addr::LOCALHOST).port();
    let aria2 = Command::new("timeout")
        .arg(DOWNLOAD_TIMEOUT_S)
        .arg("aria2c")
        .arg(format!("--dir={}", out.display()))
        .args([
            // With 0 aria2 leaves without announcing `completed`; a moment of seeding sends it.
            "--seed-time=0.05",
            "--enable-dht=false",
            "--enable-dht6=false",
            "--bt-enable-lpd=false",
            "--enable-peer-exchange=false",
            "--file-allocation=none",
            "--summary-interval=0",
            "--console-log-level=warn",
        ])
        .arg(format!("--listen-port={aria2_port}"))
        .arg(&content.torrent)
        .output()
        .expect("run aria2c");
    assert!(
        aria2.status.success(),
        "aria2c failed: {}\n{}",
        String::from_utf8_lossy(&aria2.stdout),
        String::from_utf8_lossy(&aria2.stderr)
    );
    content.assert_downloaded_to(&out);

    // aria2 said `completed` then `stopped`; spore is the only one left, until it stops too.
    wait_for_counts(&url, content.info_hash, "aria2's `completed`", |s| {
        s.downloaded == 1 && s.incomplete == 0
    });
    interrupt(seeder);
    let after = scrape(&url, content.info_hash);
    assert_eq!(
        (after.complete, after.incomplete),
        (0, 0),
        "spore's `stopped`"
    );
}

#[test]
fn spore_get_finds_a_libtorrent_seeder_through_opentracker() {
    let (url, content, _tracker) = tracked_content("http");
    let listen: SocketAddr = opentracker::free_port(Ipv4Addr::new(127, 0, 0, 2));
    let mut seeder = Command::new("/usr/bin/python3")
        .arg(shared_dir().join("peers/lt_peer.py"))
        .arg("seed")
        .arg(&content.torrent)
        .arg(content.seed_dir())
        .args(["--listen", &listen.to_string(), "--until-stdin-eof"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start libtorrent");
    let stdin: Option<ChildStdin> = seeder.stdin.take();
    let seeder = Running {
        child: seeder,
        _stdout: None,
    };
    wait_for_counts(&url, content.info_hash, "libtorrent's announce", |s| {
        s.complete == 1
    });

    let out = content.dir.path().join("spore");
    spore_get(&content, &out);
    content.assert_downloaded_to(&out);
    // spore announced `completed` on finishing and `stopped` on leaving.
    let after = scrape(&url, content.info_hash);
    assert_eq!(
        after,
        ScrapeStats {
            complete: 1,
            downloaded: 1,
            incomplete: 0
        }
    );
    drop(stdin);
    drop(seeder);
}

#[test]
fn spore_downloads_from_spore_through_a_udp_tracker() {
    let (url, content, _tracker) = tracked_content("udp");
    let seeder = spore_seed(&content);
    wait_for_counts(&url, content.info_hash, "the seeder's `started`", |s| {
        s.complete == 1
    });

    let out = content.dir.path().join("spore");
    spore_get(&content, &out);
    content.assert_downloaded_to(&out);
    let after = scrape(&url, content.info_hash);
    assert_eq!(
        (after.complete, after.downloaded, after.incomplete),
        (1, 1, 0)
    );
    interrupt(seeder);
    assert_eq!(scrape(&url, content.info_hash).complete, 0);
}

#[test]
fn a_hybrid_torrent_is_announced_under_both_its_info_hashes() {
    let addr = opentracker::free_port(Ipv4Addr::LOCALHOST);
    let url = format!("http://{addr}/announce");
    let content = Content::new(&url, "--hybrid");
    let v1 = content.info_hashes.v1.expect("a hybrid has a v1 hash").0;
    let v2 = content
        .info_hashes
        .v2
        .expect("a hybrid has a v2 hash")
        .truncated();
    let _tracker = OpenTracker::start_at(addr, &[v1, v2]);
    let _seeder = spore_seed(&content);
    // v1-only clients look for it under the SHA-1 hash, v2-only ones under the truncated
    // SHA-256 hash (BEP 52): the seeder must be listed under both.
    for (name, hash) in [("v1", v1), ("truncated v2", v2)] {
        let counts = wait_for_counts(
            &url,
            hash,
            &format!("the seeder under its {name} hash"),
            |s| s.complete == 1,
        );
        assert_eq!(counts.incomplete, 0, "{name}: {counts:?}");
    }
}
