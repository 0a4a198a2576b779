//! `spore testnet` with small settings: every downloader, given only a magnet link, finds the
//! seeder through the loopback DHT and ends with the seeder's exact bytes; the JSON summary says
//! so, and the temporary files are gone afterwards.

use std::process::Command;

#[test]
fn testnet_downloads_through_the_dht_and_reports_json() {
    let tmp = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_spore"))
        .args([
            "testnet",
            "--json",
            "--nodes",
            "8",
            "--downloaders",
            "3",
            "--size-mib",
            "2",
            "--subnet",
            "98",
            "--seed",
            "7",
            "--timeout",
            "120",
        ])
        .env("TMPDIR", tmp.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "testnet failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["nodes"], 8);
    assert_eq!(report["size_bytes"], 2 << 20);
    let magnet = report["magnet"].as_str().unwrap();
    assert!(
        magnet.starts_with("magnet:?xt=urn:btih:") && !magnet.contains('&'),
        "the downloaders get nothing but the info-hash: {magnet}"
    );
    assert_eq!(report["all_verified"], true);
    let downloaders = report["downloaders"].as_array().unwrap();
    assert_eq!(downloaders.len(), 3);
    for (j, d) in downloaders.iter().enumerate() {
        assert_eq!(d["verified"], true, "downloader {j}: {d}");
        assert!(d["seconds"].as_f64().unwrap() > 0.0);
        assert!(d["mib_per_s"].as_f64().unwrap() > 0.0);
        assert!(d["peers_max"].as_u64().unwrap() >= 1);
        assert_eq!(d["addr"], format!("127.0.98.{}", 10 + j));
    }
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(left.is_empty(), "temporary files left behind: {left:?}");
}
