//! Real third-party peers (libtorrent through `lt_peer.py`, aria2, Transmission) run as child
//! processes on loopback for the interop tests. Each child is killed when its handle drops, so a
//! failed assertion leaves nothing behind.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{shared_dir, wait_until};

/// A child process that dies with its handle.
pub struct Peer {
    name: String,
    child: Child,
}

impl Peer {
    fn spawn(name: &str, command: &mut Command) -> Peer {
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} (installed by test.sh): {e}"));
        Peer {
            name: name.to_string(),
            child,
        }
    }

    /// Waits for the process to exit by itself within `limit`; returns its stdout, and panics
    /// with its stderr if it failed.
    pub fn finish(mut self, limit: Duration) -> String {
        let mut status = None;
        wait_until(limit, &format!("{} to finish", self.name), || {
            status = self.child.try_wait().unwrap();
            status.is_some()
        });
        let mut stdout = String::new();
        let mut stderr = String::new();
        if let Some(mut out) = self.child.stdout.take() {
            out.read_to_string(&mut stdout).unwrap();
        }
        if let Some(mut err) = self.child.stderr.take() {
            err.read_to_string(&mut stderr).unwrap();
        }
        assert!(
            status.is_some_and(|s| s.success()),
            "{} failed ({status:?}):\n{stdout}\n{stderr}",
            self.name
        );
        stdout
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // Only this child, by its own handle.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lt_peer(mode: &str, torrent: &Path, dir: &Path, listen: &str) -> Command {
    let mut command = Command::new("/usr/bin/python3");
    command
        .arg(shared_dir().join("peers/lt_peer.py"))
        .arg(mode)
        .arg(torrent)
        .arg(dir)
        .args(["--listen", listen, "--seconds", "120"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// libtorrent seeding `torrent` from `data_dir` on `listen` (e.g. `127.0.0.2:0`) until dropped.
pub fn libtorrent_seed(torrent: &Path, data_dir: &Path, listen: &str) -> Peer {
    let mut command = lt_peer("seed", torrent, data_dir, listen);
    // Seeds until stdin closes, which happens when the handle drops.
    command.arg("--until-stdin-eof").stdin(Stdio::piped());
    Peer::spawn("libtorrent seeder", &mut command)
}

/// libtorrent downloading `torrent` into `out_dir`; [`Peer::finish`] waits for it.
pub fn libtorrent_get(torrent: &Path, out_dir: &Path, listen: &str) -> Peer {
    Peer::spawn(
        "libtorrent downloader",
        &mut lt_peer("get", torrent, out_dir, listen),
    )
}

/// aria2 downloading `torrent` into `out_dir`, seeding for 3 s and leaving. (With
/// `--seed-time=0` it leaves without ever announcing `completed`.)
pub fn aria2_get(torrent: &Path, out_dir: &Path) -> Peer {
    let mut command = Command::new("aria2c");
    command
        .arg(format!("--dir={}", out_dir.display()))
        .args([
            "--seed-time=0.05",
            "--enable-dht=false",
            "--enable-dht6=false",
            "--bt-enable-lpd=false",
            "--enable-peer-exchange=false",
            "--disable-ipv6=true",
            "--listen-port=49152-65000",
            "--check-integrity=true",
            "--console-log-level=warn",
            "--summary-interval=0",
            "--stop=120",
        ])
        .arg(torrent)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    Peer::spawn("aria2c", &mut command)
}

/// Transmission 3 (`transmission-cli`) verifying and then seeding `torrent` from `data_dir`,
/// listening on `port`, with DHT, LPD, PEX and port mapping off (settings in `config_dir`).
pub fn transmission_seed(torrent: &Path, data_dir: &Path, config_dir: &Path, port: u16) -> Peer {
    std::fs::create_dir_all(config_dir).unwrap();
    let settings = serde_json::json!({
        "dht-enabled": false,
        "lpd-enabled": false,
        "pex-enabled": false,
        "utp-enabled": false,
        "port-forwarding-enabled": false,
        "bind-address-ipv4": "127.0.0.1",
        "bind-address-ipv6": "::1",
        "peer-port": port,
        "rpc-enabled": false,
        "speed-limit-up-enabled": false,
        "speed-limit-down-enabled": false,
    });
    std::fs::write(config_dir.join("settings.json"), settings.to_string()).unwrap();
    let mut command = Command::new("transmission-cli");
    command
        .arg("-g")
        .arg(config_dir)
        .arg("-w")
        .arg(data_dir)
        .args(["-p", &port.to_string(), "-v"])
        .arg(torrent)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    Peer::spawn("transmission-cli", &mut command)
}

/// A TCP port that was free on 127.0.0.1 a moment ago (for peers that cannot report the one
/// they bound).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The fixtures' content tree (what the fixture torrents describe).
pub fn content_dir() -> PathBuf {
    shared_dir().join("fixtures/content")
}

/// Panics unless `got` holds exactly the bytes of `want`.
pub fn assert_same_file(got: &Path, want: &Path) {
    let got_bytes =
        std::fs::read(got).unwrap_or_else(|e| panic!("{} was not written: {e}", got.display()));
    assert!(
        got_bytes == std::fs::read(want).unwrap(),
        "{} differs from {}",
        got.display(),
        want.display()
    );
}
