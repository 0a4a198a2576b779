//! Helpers shared by the swarm's integration tests: fixtures, an in-process spore peer, a
//! libtorrent peer (../shared/peers/lt_peer.py) and bounded waits.
//!
//! Addresses: swarm tests use 127.3.N.x, one N per test, one x per peer.

#![allow(dead_code)] // Each test binary uses a different subset.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use node::swarm::{Options, Phase, Source, Status, Summary};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// Bound on any one download of a fixture.
pub const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(90);

/// The shared folder (fixtures, reference peers).
pub fn shared_dir() -> PathBuf {
    std::env::var_os("SPORE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
}

/// A fixture torrent's path.
pub fn fixture(name: &str) -> PathBuf {
    shared_dir().join("fixtures/torrents").join(name)
}

/// The directory holding the fixtures' content (`multi/`, `single.bin`).
pub fn content_dir() -> PathBuf {
    shared_dir().join("fixtures/content")
}

/// A fixture's magnet link, as libtorrent wrote it.
pub fn fixture_magnet(name: &str) -> String {
    let expected = std::fs::read(shared_dir().join("fixtures/expected.json")).unwrap();
    let expected: serde_json::Value = serde_json::from_slice(&expected).unwrap();
    expected[name]["magnet"].as_str().unwrap().to_owned()
}

/// A parsed fixture torrent.
pub fn load_torrent(path: &Path) -> metainfo::Torrent {
    metainfo::Torrent::from_bytes(&std::fs::read(path).unwrap()).unwrap()
}

/// `127.3.net.host`.
pub fn ip(net: u8, host: u8) -> IpAddr {
    IpAddr::from([127, 3, net, host])
}

/// A port free on `ip` right now (for peers that need a fixed port).
pub fn free_port(ip: IpAddr) -> SocketAddr {
    let listener = std::net::TcpListener::bind(SocketAddr::new(ip, 0)).unwrap();
    listener.local_addr().unwrap()
}

/// Asserts that every non-pad file of the torrent under `dir` equals the fixture content.
pub fn assert_same_content(torrent: &metainfo::Torrent, dir: &Path) {
    assert_same_content_as(torrent, dir, &content_dir());
}

/// Asserts that every non-pad file of the torrent under `dir` equals the one under `source`.
pub fn assert_same_content_as(torrent: &metainfo::Torrent, dir: &Path, source: &Path) {
    let layout = storage::Layout::from_info(&torrent.info).unwrap();
    let mut files = 0;
    for file in layout.files().iter().filter(|f| !f.pad) {
        let got = std::fs::read(dir.join(&file.path))
            .unwrap_or_else(|e| panic!("{}: {e}", file.path.display()));
        let want = std::fs::read(source.join(&file.path)).unwrap();
        assert!(got == want, "{} differs", file.path.display());
        files += 1;
    }
    assert!(files > 0);
}

/// Options for a spore peer at `ip` downloading into `out`.
pub fn options(ip: IpAddr, out: &Path, peers: Vec<SocketAddr>, seed: u64) -> Options {
    Options {
        out_dir: out.to_path_buf(),
        peers,
        listen: Some(SocketAddr::new(ip, 0)),
        seed_after: false,
        local_ip: Some(ip),
        resume_file: Some(out.join(".resume")),
        seed,
        seed_only: false,
        sequential: false,
        metadata_timeout: node::swarm::METADATA_TIMEOUT_DEFAULT,
    }
}

/// A spore peer running in this process.
pub struct SporePeer {
    pub status: watch::Receiver<Status>,
    pub peer_feed: mpsc::Sender<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<Summary, node::swarm::Error>>,
}

impl SporePeer {
    /// Starts `node::swarm::run`.
    pub fn start(source: Source, options: Options) -> SporePeer {
        let (status_tx, status) = watch::channel(Status::default());
        let (peer_feed, discovered) = mpsc::channel(64);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(node::swarm::run(
            source,
            options,
            status_tx,
            discovered,
            async move {
                let _ = stopped.await;
            },
        ));
        SporePeer {
            status,
            peer_feed,
            stop: Some(stop),
            task,
        }
    }

    /// Seeds `torrent` from the fixture content at `ip`, and waits until it serves.
    pub async fn seed(torrent: &Path, ip: IpAddr, peers: Vec<SocketAddr>) -> SporePeer {
        SporePeer::seed_in(torrent, &content_dir(), ip, peers).await
    }

    /// Seeds `torrent` from the content under `data`, at `ip`, and waits until it serves.
    pub async fn seed_in(
        torrent: &Path,
        data: &Path,
        ip: IpAddr,
        peers: Vec<SocketAddr>,
    ) -> SporePeer {
        let mut options = options(ip, data, peers, 1);
        options.seed_after = true;
        options.seed_only = true;
        options.resume_file = None;
        let mut peer = SporePeer::start(Source::Torrent(Box::new(load_torrent(torrent))), options);
        peer.wait_for(|s| s.phase == Phase::Seeding && s.listen_addr.is_some())
            .await;
        peer
    }

    /// The address it listens on (after it bound).
    pub fn addr(&self) -> SocketAddr {
        self.status.borrow().listen_addr.expect("listening")
    }

    /// Waits (bounded) until the status satisfies `done`.
    pub async fn wait_for(&mut self, done: impl Fn(&Status) -> bool) -> Status {
        let status = tokio::time::timeout(DOWNLOAD_TIMEOUT, self.status.wait_for(|s| done(s)))
            .await
            .expect("status not reached in time")
            .expect("the run ended first");
        status.clone()
    }

    /// Stops it (if still running) and returns its summary.
    pub async fn finish(mut self) -> Summary {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(DOWNLOAD_TIMEOUT, self.task)
            .await
            .expect("run did not end in time")
            .unwrap()
            .unwrap()
    }

    /// Waits (bounded) for the run to fail and returns the error.
    pub async fn join_err(mut self) -> node::swarm::Error {
        let task = &mut self.task;
        let result = tokio::time::timeout(DOWNLOAD_TIMEOUT, task)
            .await
            .expect("run did not end in time")
            .unwrap();
        result.expect_err("the run succeeded")
    }

    /// Waits (bounded) for the run to end on its own and returns its summary.
    pub async fn join(mut self) -> Summary {
        let task = &mut self.task;
        let summary = tokio::time::timeout(DOWNLOAD_TIMEOUT, task)
            .await
            .expect("download did not finish in time")
            .unwrap()
            .unwrap();
        drop(self.stop.take());
        summary
    }
}

/// Downloads `source` with spore at `ip` from `peers` into `out` and returns the summary.
pub async fn spore_get(source: Source, ip: IpAddr, out: &Path, peers: Vec<SocketAddr>) -> Summary {
    SporePeer::start(source, options(ip, out, peers, 7))
        .join()
        .await
}

/// A libtorrent peer (killed when dropped).
pub struct LtPeer {
    pub child: Child,
    pub addr: SocketAddr,
}

impl LtPeer {
    fn command(
        mode: &str,
        source: &str,
        dir: &Path,
        addr: SocketAddr,
        peers: &[SocketAddr],
    ) -> Command {
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.args(["-W", "ignore::DeprecationWarning"])
            .arg(shared_dir().join("peers/lt_peer.py"))
            .args([mode, source])
            .arg(dir)
            .args(["--listen", &addr.to_string(), "--seconds", "120"]);
        for peer in peers {
            cmd.args(["--peer", &peer.to_string()]);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    /// Seeds the fixture `torrent` at `ip`; returns once it reports that it runs.
    pub async fn seed(torrent: &Path, ip: IpAddr) -> LtPeer {
        LtPeer::seed_in(torrent, &content_dir(), ip).await
    }

    /// Seeds `torrent` from the content under `data`, at `ip`; returns once it runs.
    pub async fn seed_in(torrent: &Path, data: &Path, ip: IpAddr) -> LtPeer {
        let addr = free_port(ip);
        let mut child = Self::command("seed", &torrent.to_string_lossy(), data, addr, &[])
            .spawn()
            .expect("python3 with libtorrent (run ../shared/peers/install.sh)");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(DOWNLOAD_TIMEOUT, lines.next_line())
            .await
            .expect("libtorrent seeder did not start")
            .unwrap()
            .unwrap_or_default();
        assert!(line.contains("seeding"), "libtorrent seeder said {line:?}");
        LtPeer { child, addr }
    }

    /// Starts a libtorrent download of `source` (torrent path or magnet) into `out`.
    pub fn get(source: &str, ip: IpAddr, out: &Path, peers: &[SocketAddr]) -> LtPeer {
        let addr = free_port(ip);
        let child = Self::command("get", source, out, addr, peers)
            .spawn()
            .expect("python3 with libtorrent (run ../shared/peers/install.sh)");
        LtPeer { child, addr }
    }

    /// Waits (bounded) for a download to end; returns its JSON report.
    pub async fn wait_done(self) -> serde_json::Value {
        let output = tokio::time::timeout(DOWNLOAD_TIMEOUT, self.child.wait_with_output())
            .await
            .expect("libtorrent download did not end in time")
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        let report: serde_json::Value = serde_json::from_str(text.trim())
            .unwrap_or_else(|_| panic!("libtorrent printed {text:?}"));
        assert_eq!(report["ok"], true, "libtorrent download failed: {report}");
        report
    }
}

/// What a test peer written with the wire codecs does once its handshake is done.
#[derive(Clone, Copy, Debug)]
pub enum Hostility {
    /// Claims every piece, unchokes, and answers every request with garbage of the right size.
    CorruptBlocks,
}

/// A misbehaving peer that spore dials: it accepts connections on `addr` and runs its
/// [`Hostility`] on each, until dropped.
pub struct HostilePeer {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for HostilePeer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl HostilePeer {
    /// Listens at `ip` for connections for `torrent`.
    pub async fn start(
        torrent: &metainfo::Torrent,
        ip: IpAddr,
        hostility: Hostility,
    ) -> HostilePeer {
        let listener = tokio::net::TcpListener::bind(SocketAddr::new(ip, 0))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let info_hash = torrent.info.info_hashes().wire_id();
        let piece_count = torrent.info.num_pieces();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve_hostile(stream, info_hash, piece_count, hostility));
            }
        });
        HostilePeer { addr, task }
    }
}

/// Reads a fake peer's connection until the other side's handshake has arrived; `None` if the
/// connection ended or sent garbage first. The decoder holds whatever came after it.
pub async fn read_handshake(
    stream: &mut tokio::net::TcpStream,
    buf: &mut [u8],
) -> Option<wire::Decoder> {
    use tokio::io::AsyncReadExt;
    let mut decoder = wire::Decoder::new(wire::Limits::DEFAULT);
    loop {
        if decoder.next_handshake().ok()?.is_some() {
            return Some(decoder);
        }
        match stream.read(buf).await {
            Ok(n) if n > 0 => decoder.feed(&buf[..n]),
            _ => return None,
        }
    }
}

async fn serve_hostile(
    mut stream: tokio::net::TcpStream,
    info_hash: [u8; 20],
    piece_count: u32,
    hostility: Hostility,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use wire::{Handshake, Message, Reserved};
    let ours = Handshake {
        reserved: Reserved::default(),
        info_hash,
        peer_id: *b"-XX0001-hostile-peer",
    };
    let mut buf = vec![0u8; 64 * 1024];
    // Every loop below ends when spore closes the connection (it must) or the test ends.
    let Some(mut decoder) = read_handshake(&mut stream, &mut buf).await else {
        return;
    };
    decoder.set_piece_count(piece_count);
    let Hostility::CorruptBlocks = hostility;
    let mut out = ours.to_bytes().to_vec();
    let all = full_bitfield(piece_count);
    Message::Bitfield(all.into()).encode_into(&mut out);
    Message::Unchoke.encode_into(&mut out);
    if stream.write_all(&out).await.is_err() {
        return;
    }
    loop {
        let mut replies = Vec::new();
        loop {
            match decoder.next_message() {
                Ok(Some(Message::Request(block))) => Message::Piece {
                    index: block.index,
                    begin: block.begin,
                    data: vec![0xAA; block.length as usize].into(),
                }
                .encode_into(&mut replies),
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => return,
            }
        }
        if stream.write_all(&replies).await.is_err() {
            return;
        }
        match stream.read(&mut buf).await {
            Ok(n) if n > 0 => decoder.feed(&buf[..n]),
            _ => return,
        }
    }
}

/// A full bitfield's bytes (spare bits clear).
pub fn full_bitfield(piece_count: u32) -> Vec<u8> {
    let mut bytes = vec![0xFF; piece_count.div_ceil(8) as usize];
    let spare = bytes.len() as u32 * 8 - piece_count;
    if let Some(last) = bytes.last_mut() {
        *last &= 0xFFu8 << spare;
    }
    bytes
}
