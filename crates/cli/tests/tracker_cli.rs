//! `spore tracker`, `spore publish` and `spore search` as a user runs them: three torrents made
//! with `spore create` are published, the tracker is killed (SIGKILL, no clean shutdown) and
//! started again on the same database, and a search finds all three, ranked sensibly.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use assert_cmd::cargo::cargo_bin;

/// A `spore tracker` child process, killed when dropped.
struct TrackerProcess {
    child: Child,
    base: String,
}

impl TrackerProcess {
    /// Starts `spore tracker` on ephemeral loopback ports and reads the addresses it prints.
    fn start(db: &Path) -> TrackerProcess {
        let mut child = Command::new(cargo_bin("spore"))
            .args([
                "--json",
                "tracker",
                "--http",
                "127.0.0.1:0",
                "--udp",
                "127.0.0.1:0",
            ])
            .arg("--db")
            .arg(db)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the spore binary");
        // The JSON document ends with a line holding only `}`; the read ends at EOF if the
        // process dies, so this loop is bounded by the process.
        let mut text = String::new();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        for line in lines.by_ref() {
            let line = line.unwrap();
            text.push_str(&line);
            if line == "}" {
                break;
            }
        }
        let printed: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text:?}"));
        let announce = printed["http"]
            .as_str()
            .expect("an HTTP address")
            .to_string();
        let base = announce.trim_end_matches("/announce").to_string();
        assert!(printed["udp"]
            .as_str()
            .unwrap()
            .starts_with("udp://127.0.0.1:"));
        TrackerProcess { child, base }
    }
}

impl Drop for TrackerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spore(args: &[&str]) -> serde_json::Value {
    let out = Command::new(cargo_bin("spore"))
        .arg("--json")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "spore {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

/// Makes `name` (a file, or a directory when `files` has more than one entry) and its torrent.
fn torrent(dir: &Path, name: &str, files: &[(&str, usize)]) -> String {
    let content = dir.join(name);
    for (path, size) in files {
        let file = if files.len() == 1 && path.is_empty() {
            content.clone()
        } else {
            content.join(path)
        };
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, vec![name.len() as u8; *size]).unwrap();
    }
    let out = dir.join(format!("{name}.torrent"));
    spore(&[
        "create",
        content.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    out.to_str().unwrap().to_string()
}

fn names(found: &serde_json::Value) -> Vec<String> {
    found["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hit| hit["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn published_torrents_survive_a_killed_tracker_and_search_ranks_them() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("index.db");
    let torrents = [
        torrent(dir.path(), "debian-12-netinst.iso", &[("", 70_000)]),
        torrent(
            dir.path(),
            "Debian 12 live xfce desktop image with extras",
            &[("live/xfce.iso", 90_000), ("live/README.txt", 500)],
        ),
        torrent(
            dir.path(),
            "big-buck-bunny",
            &[("bbb.mp4", 50_000), ("subs/en.srt", 300)],
        ),
    ];

    let tracker = TrackerProcess::start(&db);
    let mut published: Vec<String> = torrents
        .iter()
        .map(|t| {
            spore(&["publish", t, "--index", &tracker.base])["info_hash"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    drop(tracker); // SIGKILL: whatever was acknowledged must already be on disk.

    let tracker = TrackerProcess::start(&db);
    let search = |words: &[&str]| {
        let mut args = vec!["search"];
        args.extend_from_slice(words);
        args.extend_from_slice(&["--index", &tracker.base]);
        spore(&args)
    };
    let debian = search(&["debian"]);
    assert_eq!(
        names(&debian),
        [
            "debian-12-netinst.iso",
            "Debian 12 live xfce desktop image with extras"
        ],
        "both found, the shorter name that matches first"
    );
    assert_eq!(
        names(&search(&["xfce", "desk"])).len(),
        1,
        "all words must match"
    );
    assert_eq!(
        names(&search(&["srt"])),
        ["big-buck-bunny"],
        "file paths count"
    );
    let mut found: Vec<String> = [search(&["debian"]), search(&["bunny"])]
        .iter()
        .flat_map(|r| r["results"].as_array().unwrap().clone())
        .map(|hit| hit["info_hash"].as_str().unwrap().to_string())
        .collect();
    found.sort();
    published.sort();
    assert_eq!(found, published, "every acknowledged publish survived");
    assert!(names(&search(&["nothing", "like", "this"])).is_empty());
}

#[test]
fn publish_to_a_dead_index_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let t = torrent(dir.path(), "lonely.bin", &[("", 1000)]);
    // A port nothing listens on: bound, read, released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = Command::new(cargo_bin("spore"))
        .args([
            "publish",
            &t,
            "--index",
            &format!("http://127.0.0.1:{port}"),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is `spore tracker` running there?"),
        "{stderr}"
    );
}
