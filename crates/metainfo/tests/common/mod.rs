//! Helpers shared by the integration tests: where the shared fixtures are, and libtorrent.

#![allow(dead_code)] // Each test binary uses its own subset.

use std::path::PathBuf;
use std::process::Command;

/// The shared folder: `$SPORE_SHARED`, else `<workspace>/../shared`.
pub fn shared() -> PathBuf {
    match std::env::var_os("SPORE_SHARED") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    }
}

/// `expected.json` of the torrent fixtures.
pub fn expected() -> serde_json::Value {
    let text = std::fs::read_to_string(shared().join("fixtures/expected.json"))
        .expect("read shared/fixtures/expected.json");
    serde_json::from_str(&text).expect("expected.json is JSON")
}

/// Runs a Python snippet with Debian's python3 (which has libtorrent's bindings) and returns
/// its stdout; panics with stderr if it fails.
pub fn python(script: &str, args: &[&str]) -> String {
    let output = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("run /usr/bin/python3 (installed by shared/peers/install.sh)");
    assert!(
        output.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// libtorrent's v1 and v2 info-hashes (hex, or "None") for a .torrent file.
pub fn libtorrent_hashes(torrent: &std::path::Path) -> (String, String) {
    let out = python(
        "import sys, libtorrent as lt\n\
         ti = lt.torrent_info(sys.argv[1])\n\
         ih = ti.info_hashes()\n\
         print(str(ih.v1) if ih.has_v1() else 'None')\n\
         print(str(ih.v2) if ih.has_v2() else 'None')\n",
        &[torrent.to_str().expect("UTF-8 path")],
    );
    let mut lines = out.lines().map(str::to_string);
    (lines.next().unwrap(), lines.next().unwrap())
}

/// libtorrent's info-hashes (v1, v2 as hex or "None") for a torrent it creates itself from
/// `path` with the given piece length and `create_torrent` flags expression (e.g.
/// `lt.create_torrent.v1_only`), optionally private.
pub fn libtorrent_create(
    path: &std::path::Path,
    piece_length: u64,
    flags: &str,
    private: bool,
) -> (String, String) {
    let script = format!(
        "import os, sys, libtorrent as lt\n\
         src = os.path.abspath(sys.argv[1])\n\
         fs = lt.file_storage()\n\
         lt.add_files(fs, src)\n\
         ct = lt.create_torrent(fs, {piece_length}, flags={flags})\n\
         ct.set_priv({priv})\n\
         lt.set_piece_hashes(ct, os.path.dirname(src))\n\
         ti = lt.torrent_info(lt.bencode(ct.generate()))\n\
         ih = ti.info_hashes()\n\
         print(str(ih.v1) if ih.has_v1() else 'None')\n\
         print(str(ih.v2) if ih.has_v2() else 'None')\n",
        priv = if private { "True" } else { "False" },
    );
    let out = python(&script, &[path.to_str().expect("UTF-8 path")]);
    let mut lines = out.lines().map(str::to_string);
    (lines.next().unwrap(), lines.next().unwrap())
}
