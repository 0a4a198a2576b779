//! `spore seed` and `spore get` as a user runs them, and resume after `kill -9`: a download
//! killed in the middle is restarted and fetches only the pieces it did not verify before. And
//! streaming (`--sequential`): what has arrived part-way is the start of the file. And a torrent
//! of more files than the usual soft limit on open files, and a seed's resume record.
//!
//! The first download goes through a proxy (written here) that forwards only part of the
//! seeder's bytes and then holds the connection silent, so the kill always lands mid-download.
//! Addresses: 127.3.50.x.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Bound on each wait.
const STEP_TIMEOUT: Duration = Duration::from_secs(90);
/// How often the partial file is inspected while waiting for verified pieces.
const FILE_POLL_INTERVAL: Duration = Duration::from_millis(50);
/// Bytes the proxy lets through from the seeder (about half of the 1 MB fixture).
const PROXY_BUDGET_BYTES: u64 = 500_000;
/// Pieces that must be on disk before the kill.
const PIECES_BEFORE_KILL: usize = 6;

fn shared_dir() -> PathBuf {
    std::env::var_os("SPORE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
}

/// `127.3.net.host`: one `net` per test, one `host` per peer.
fn ip(net: u8, host: u8) -> IpAddr {
    IpAddr::from([127, 3, net, host])
}

/// A child process killed (SIGKILL) when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spore() -> Command {
    Command::new(env!("CARGO_BIN_EXE_spore"))
}

/// A seeder of a copy of the single-file fixture (a seed writes its resume record beside its
/// data, and the shared fixtures stay untouched).
struct Seeder {
    _process: Killed,
    _data: tempfile::TempDir,
}

/// Starts `spore seed` of the single-file fixture torrent and returns it with the address it
/// serves on.
fn start_seeder(net: u8, torrent: &Path) -> (Seeder, SocketAddr) {
    let (data, _) = copy_of_single();
    let (process, addr) = start_seeder_of(net, torrent, data.path());
    let seeder = Seeder {
        _process: process,
        _data: data,
    };
    (seeder, addr)
}

/// A copy of the single-file fixture's content in a fresh directory, and the file's path.
fn copy_of_single() -> (tempfile::TempDir, PathBuf) {
    let data = tempfile::tempdir().unwrap();
    let file = data.path().join("single.bin");
    std::fs::copy(shared_dir().join("fixtures/content/single.bin"), &file).unwrap();
    (data, file)
}

/// Flips the first byte of `file` (its size stays the same).
fn flip_first_byte(file: &Path) {
    let mut bytes = std::fs::read(file).unwrap();
    bytes[0] ^= 0xff;
    std::fs::write(file, &bytes).unwrap();
}

/// Sets the modification time of `file`.
fn set_modified(file: &Path, time: std::time::SystemTime) {
    let handle = std::fs::OpenOptions::new().write(true).open(file).unwrap();
    handle.set_modified(time).unwrap();
}

/// Starts `spore seed` of `data` and returns it with the address it serves on.
fn start_seeder_of(net: u8, torrent: &Path, data: &Path) -> (Killed, SocketAddr) {
    let mut child = spore()
        .args(["--json", "seed"])
        .arg(torrent)
        .arg(data)
        // Tests never reach the public DHT routers (the default bootstrap).
        .arg("--no-dht")
        .args([
            "--listen",
            &format!("{}:0", ip(net, 2)),
            "--bind",
            &ip(net, 2).to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let ready: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|_| panic!("spore seed printed {line:?}"));
    let addr = ready["seeding"].as_str().unwrap().parse().unwrap();
    (Killed(child), addr)
}

/// A proxy at `ip(net, 4)` to `target` that forwards the first `PROXY_BUDGET_BYTES` bytes from the
/// target (over all connections) and then stops forwarding, keeping connections open.
fn start_stalling_proxy(net: u8, target: SocketAddr) -> SocketAddr {
    let listener = TcpListener::bind(SocketAddr::new(ip(net, 4), 0)).unwrap();
    let addr = listener.local_addr().unwrap();
    let budget = Arc::new(AtomicU64::new(PROXY_BUDGET_BYTES));
    // The threads live until the test process ends; they only ever touch loopback sockets.
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let Ok(upstream) = TcpStream::connect(target) else {
                continue;
            };
            let (mut up_w, mut client_r) =
                (upstream.try_clone().unwrap(), client.try_clone().unwrap());
            std::thread::spawn(move || std::io::copy(&mut client_r, &mut up_w));
            let budget = budget.clone();
            std::thread::spawn(move || {
                let (mut from, mut to) = (upstream, client);
                let mut buf = [0u8; 16 * 1024];
                loop {
                    let left = budget.load(Ordering::SeqCst) as usize;
                    if left == 0 {
                        // Hold both sockets open, silent, until the test ends.
                        std::thread::park();
                        continue;
                    }
                    let chunk = left.min(buf.len());
                    let n = match from.read(&mut buf[..chunk]) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    budget.fetch_sub(n as u64, Ordering::SeqCst);
                    if to.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

fn get_command(net: u8, torrent: &Path, out: &Path, peer: SocketAddr) -> Command {
    let mut cmd = spore();
    cmd.args(["--json", "get"])
        .arg(torrent)
        .arg("-o")
        .arg(out)
        .args(["--peer", &peer.to_string(), "--no-dht"])
        .args([
            "--listen",
            &format!("{}:0", ip(net, 3)),
            "--bind",
            &ip(net, 3).to_string(),
        ]);
    cmd
}

/// Indices of the pieces of `file` that already hold the right bytes.
fn pieces_present(file: &Path, want: &[u8], piece_len: usize) -> Vec<usize> {
    let Ok(got) = std::fs::read(file) else {
        return Vec::new();
    };
    want.chunks(piece_len)
        .enumerate()
        .filter(|(i, piece)| got.get(i * piece_len..i * piece_len + piece.len()) == Some(piece))
        .map(|(i, _)| i)
        .collect()
}

/// How many pieces of `file` already hold the right bytes.
fn pieces_on_disk(file: &Path, want: &[u8], piece_len: usize) -> usize {
    pieces_present(file, want, piece_len).len()
}

/// Waits (bounded) until at least `PIECES_BEFORE_KILL` pieces of `file` are right; returns how
/// many are.
fn wait_for_pieces(file: &Path, want: &[u8], piece_len: usize) -> usize {
    let mut on_disk = 0;
    let polls_max = STEP_TIMEOUT.as_millis() / FILE_POLL_INTERVAL.as_millis();
    for _ in 0..polls_max {
        on_disk = pieces_on_disk(file, want, piece_len);
        if on_disk >= PIECES_BEFORE_KILL {
            break;
        }
        std::thread::sleep(FILE_POLL_INTERVAL);
    }
    assert!(
        on_disk >= PIECES_BEFORE_KILL,
        "only {on_disk} pieces arrived"
    );
    on_disk
}

#[test]
fn killed_download_resumes_and_fetches_only_what_was_missing() {
    let torrent = shared_dir().join("fixtures/torrents/libtorrent-v1-single.torrent");
    let want = std::fs::read(shared_dir().join("fixtures/content/single.bin")).unwrap();
    let piece_len = 32 * 1024;
    let piece_count = want.len().div_ceil(piece_len);
    let net = 50;
    let (_seeder, seeder_addr) = start_seeder(net, &torrent);
    let proxy = start_stalling_proxy(net, seeder_addr);
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("single.bin");

    let first = Killed(
        get_command(net, &torrent, out.path(), proxy)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let on_disk = wait_for_pieces(&file, &want, piece_len);
    drop(first); // SIGKILL: no chance to save anything.
    assert!(on_disk < piece_count, "the proxy let everything through");

    let second = get_command(net, &torrent, out.path(), seeder_addr)
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert!(second.status.success(), "restarted download failed");
    let summary: serde_json::Value = serde_json::from_slice(&second.stdout).unwrap();
    eprintln!("killed with {on_disk} pieces on disk; restart: {summary}");
    assert_eq!(summary["complete"], true, "{summary}");
    assert_eq!(std::fs::read(&file).unwrap(), want);
    let at_start = summary["pieces_at_start"].as_u64().unwrap();
    let downloaded = summary["bytes_downloaded"].as_u64().unwrap();
    assert!(
        at_start >= on_disk as u64,
        "kept {at_start} of {on_disk} verified pieces"
    );
    assert!(at_start < piece_count as u64);
    // Only the missing pieces came again (the last piece is the short one: allow for it).
    let missing_bytes_max = (piece_count as u64 - at_start + 1) * piece_len as u64;
    assert!(
        downloaded > 0 && downloaded <= missing_bytes_max,
        "downloaded {downloaded} bytes with {at_start} of {piece_count} pieces kept"
    );
}

#[test]
fn ctrl_c_stops_a_download_cleanly_and_keeps_its_progress() {
    let net = 51;
    let torrent = shared_dir().join("fixtures/torrents/libtorrent-v1-single.torrent");
    let want = std::fs::read(shared_dir().join("fixtures/content/single.bin")).unwrap();
    let piece_len = 32 * 1024;
    let (_seeder, seeder_addr) = start_seeder(net, &torrent);
    let proxy = start_stalling_proxy(net, seeder_addr);
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("single.bin");
    let mut first = Killed(
        get_command(net, &torrent, out.path(), proxy)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let on_disk = wait_for_pieces(&file, &want, piece_len);
    let interrupted = Command::new("kill")
        .args(["-INT", &first.0.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let polls_max = STEP_TIMEOUT.as_millis() / FILE_POLL_INTERVAL.as_millis();
    let mut exit = None;
    for _ in 0..polls_max {
        exit = first.0.try_wait().unwrap();
        if exit.is_some() {
            break;
        }
        std::thread::sleep(FILE_POLL_INTERVAL);
    }
    let exit = exit.expect("spore get did not stop on Ctrl-C");
    assert!(
        !exit.success(),
        "an interrupted download must not report success"
    );
    let mut stdout = String::new();
    first
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    // The summary, then the error that says how to resume.
    let mut printed = serde_json::Deserializer::from_str(&stdout).into_iter::<serde_json::Value>();
    let summary = printed.next().unwrap().unwrap();
    assert_eq!(summary["complete"], false, "{summary}");
    let error = printed.next().unwrap().unwrap();
    assert!(
        error["error"].as_str().unwrap().contains("resume"),
        "{error}"
    );
    let resume_files = std::fs::read_dir(out.path().join(".spore"))
        .unwrap()
        .count();
    assert_eq!(resume_files, 1, "resume data saved on the way out");

    let second = get_command(net, &torrent, out.path(), seeder_addr)
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert!(second.status.success());
    let summary: serde_json::Value = serde_json::from_slice(&second.stdout).unwrap();
    assert!(
        summary["pieces_at_start"].as_u64().unwrap() >= on_disk as u64,
        "{summary}"
    );
    assert_eq!(std::fs::read(&file).unwrap(), want);
}

#[test]
fn sequential_download_has_the_start_of_the_file_first() {
    let net = 52;
    let torrent = shared_dir().join("fixtures/torrents/libtorrent-v1-single.torrent");
    let want = std::fs::read(shared_dir().join("fixtures/content/single.bin")).unwrap();
    let piece_len = 32 * 1024;
    let piece_count = want.len().div_ceil(piece_len);
    let (_seeder, seeder_addr) = start_seeder(net, &torrent);
    let proxy = start_stalling_proxy(net, seeder_addr);
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("single.bin");
    let download = Killed(
        get_command(net, &torrent, out.path(), proxy)
            .arg("--sequential")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_pieces(&file, &want, piece_len);
    drop(download);
    // One seeder serving requests in the order asked, one connection: the pieces complete in
    // order, so what is on disk is a prefix (rarest first would scatter them over the file).
    let present = pieces_present(&file, &want, piece_len);
    assert!(
        present.len() < piece_count,
        "the proxy let everything through"
    );
    let prefix: Vec<usize> = (0..present.len()).collect();
    assert_eq!(present, prefix, "pieces on disk out of order");
}

#[test]
fn a_torrent_of_more_files_than_the_soft_open_files_limit_downloads() {
    let net = 53;
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("many");
    std::fs::create_dir(&dir).unwrap();
    let files = 300;
    for i in 0..files {
        std::fs::write(dir.join(format!("f{i:03}")), vec![i as u8; 100 + i]).unwrap();
    }
    let torrent = work.path().join("many.torrent");
    let created = spore()
        .args(["--quiet", "create", "--v1"])
        .arg(&dir)
        .arg("-o")
        .arg(&torrent)
        .status()
        .unwrap();
    assert!(created.success());
    let (_seeder, seeder_addr) = start_seeder_of(net, &torrent, &dir);
    let out = tempfile::tempdir().unwrap();
    // The downloader starts with a soft limit of 256 open files, below the torrent's 300 files
    // (many systems start processes at 1,024); spore raises it to the hard limit.
    let get = get_command(net, &torrent, out.path(), seeder_addr);
    let output = Command::new("sh")
        .arg("-c")
        .arg("ulimit -Sn 256 && exec \"$0\" \"$@\"")
        .arg(get.get_program())
        .args(get.get_args())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for i in 0..files {
        let name = format!("many/f{i:03}");
        let got = std::fs::read(out.path().join(&name)).unwrap();
        assert_eq!(got, vec![i as u8; 100 + i], "{name}");
    }
}

#[test]
fn a_seed_trusts_its_resume_record_until_a_file_changes() {
    let net = 54;
    let torrent = shared_dir().join("fixtures/torrents/libtorrent-v1-single.torrent");
    let (data, file) = copy_of_single();
    // The first start checks every piece and records the result beside the data.
    drop(start_seeder_of(net, &torrent, data.path()));
    let records = std::fs::read_dir(data.path().join(".spore"))
        .unwrap()
        .count();
    assert_eq!(records, 1);
    // One byte changed behind spore's back, size and modification time kept: the record is
    // trusted, so the seed starts without hashing (a recheck would refuse this data).
    let modified = std::fs::metadata(&file).unwrap().modified().unwrap();
    flip_first_byte(&file);
    set_modified(&file, modified);
    drop(start_seeder_of(net, &torrent, data.path()));
    // A changed modification time: the record is not trusted, and the recheck finds the change.
    set_modified(&file, modified + Duration::from_secs(1));
    let refusal = seed_refusal(net, &torrent, data.path());
    assert!(refusal.contains("does not match the torrent"), "{refusal}");
}

/// Runs `spore seed --json` of `data`, which must refuse to start; returns the error it printed.
/// Bounded either way: a seed that starts prints its address first, and is then killed.
fn seed_refusal(net: u8, torrent: &Path, data: &Path) -> String {
    let mut child = Killed(
        spore()
            .args(["--json", "seed"])
            .arg(torrent)
            .arg(data)
            .args(["--no-dht", "--listen", &format!("{}:0", ip(net, 2))])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let said: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|_| panic!("spore seed printed {line:?}"));
    assert!(said.get("seeding").is_none(), "the seed started: {line}");
    assert!(!child.0.wait().unwrap().success());
    said["error"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn a_file_changed_while_seeding_is_rechecked_at_the_next_start() {
    let net = 55;
    let torrent = shared_dir().join("fixtures/torrents/libtorrent-v1-single.torrent");
    let (data, file) = copy_of_single();
    let (mut seeder, _) = start_seeder_of(net, &torrent, data.path());
    // Changed while it seeds; then it is stopped cleanly (Ctrl-C), which must not record the
    // changed file as verified.
    let modified = std::fs::metadata(&file).unwrap().modified().unwrap();
    flip_first_byte(&file);
    set_modified(&file, modified + Duration::from_secs(2));
    let interrupted = Command::new("kill")
        .args(["-INT", &seeder.0.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    assert!(seeder.0.wait().unwrap().success(), "Ctrl-C is a clean stop");
    let refusal = seed_refusal(net, &torrent, data.path());
    assert!(refusal.contains("does not match the torrent"), "{refusal}");
}
