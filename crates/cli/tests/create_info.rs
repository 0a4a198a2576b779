//! `spore create` then `spore info`, as a user runs them.

use assert_cmd::Command;

fn spore() -> Command {
    Command::cargo_bin("spore").expect("the spore binary")
}

fn json(output: &[u8]) -> serde_json::Value {
    serde_json::from_slice(output).expect("JSON on stdout")
}

#[test]
fn create_then_info_agree() {
    let dir = tempfile::tempdir().unwrap();
    let content = dir.path().join("data.bin");
    std::fs::write(
        &content,
        (0..100_000u32).map(|i| (i % 251) as u8).collect::<Vec<_>>(),
    )
    .unwrap();
    let torrent = dir.path().join("out.torrent");
    let created = spore()
        .args(["--json", "create", "--piece-length", "16K", "--tracker"])
        .arg("http://127.0.0.1:6969/announce")
        .arg(&content)
        .arg("-o")
        .arg(&torrent)
        .assert()
        .success();
    let created = json(&created.get_output().stdout);
    assert_eq!(created["version"], "hybrid");
    assert_eq!(created["num_pieces"], 7);
    assert!(created["info_hash_v1"].as_str().unwrap().len() == 40);

    let shown = spore()
        .args(["--json", "info"])
        .arg(&torrent)
        .assert()
        .success();
    let shown = json(&shown.get_output().stdout);
    for key in [
        "info_hash_v1",
        "info_hash_v2",
        "magnet",
        "num_pieces",
        "piece_length",
    ] {
        assert_eq!(shown[key], created[key], "{key}");
    }
    assert_eq!(shown["name"], "data.bin");
    assert_eq!(shown["content_size"], 100_000);
    assert_eq!(shown["trackers"][0][0], "http://127.0.0.1:6969/announce");
    assert_eq!(shown["files"][0]["path"], "data.bin");

    // The magnet printed by create is understood by info, with the same hashes.
    let magnet = created["magnet"].as_str().unwrap();
    let from_magnet = spore().args(["--json", "info", magnet]).assert().success();
    let from_magnet = json(&from_magnet.get_output().stdout);
    assert_eq!(from_magnet["info_hash_v2"], created["info_hash_v2"]);
    assert_eq!(from_magnet["name"], "data.bin");
}

#[test]
fn create_refuses_to_overwrite_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let content = dir.path().join("file.txt");
    std::fs::write(&content, b"hello").unwrap();
    let torrent = dir.path().join("file.torrent");
    std::fs::write(&torrent, b"precious").unwrap();
    let refused = spore()
        .arg("-q")
        .arg("create")
        .arg(&content)
        .arg("-o")
        .arg(&torrent)
        .assert()
        .failure();
    let stderr = String::from_utf8_lossy(&refused.get_output().stderr).into_owned();
    assert!(
        stderr.contains("already exists") && stderr.contains("--force"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&torrent).unwrap(), b"precious");
    spore()
        .arg("-q")
        .arg("create")
        .arg(&content)
        .arg("-o")
        .arg(&torrent)
        .arg("--force")
        .assert()
        .success();
    assert_ne!(std::fs::read(&torrent).unwrap(), b"precious");
}

#[test]
fn create_names_the_output_after_the_content() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("album")).unwrap();
    std::fs::write(dir.path().join("album/a.txt"), b"aaaa").unwrap();
    spore()
        .current_dir(dir.path())
        .args(["-q", "create", "album", "--v1", "--sort-files"])
        .assert()
        .success();
    let shown = spore()
        .current_dir(dir.path())
        .args(["--json", "info", "album.torrent"])
        .assert()
        .success();
    let shown = json(&shown.get_output().stdout);
    assert_eq!(shown["version"], "v1");
    assert_eq!(shown["files"][0]["path"], "album/a.txt");
}

#[test]
fn bad_inputs_fail_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let failed = spore().arg("create").arg(&missing).assert().failure();
    let stderr = String::from_utf8_lossy(&failed.get_output().stderr).into_owned();
    assert!(stderr.contains("does not exist"), "{stderr}");

    let not_torrent = dir.path().join("bad.torrent");
    std::fs::write(&not_torrent, b"d4:infoi1ee").unwrap();
    let failed = spore().arg("info").arg(&not_torrent).assert().failure();
    let stderr = String::from_utf8_lossy(&failed.get_output().stderr).into_owned();
    assert!(stderr.contains("not a usable torrent"), "{stderr}");

    let failed = spore().args(["info", "magnet:?dn=x"]).assert().failure();
    let stderr = String::from_utf8_lossy(&failed.get_output().stderr).into_owned();
    assert!(stderr.contains("invalid magnet link"), "{stderr}");

    let failed = spore()
        .args(["create", "--piece-length", "lots", "x"])
        .assert()
        .failure();
    let stderr = String::from_utf8_lossy(&failed.get_output().stderr).into_owned();
    assert!(stderr.contains("256K"), "{stderr}");
}
