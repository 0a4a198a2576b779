//! Interop with Transmission 3.00 (transmission-cli) on loopback: it downloads from a spore
//! seeder. Transmission ignores 127.x peers that trackers hand it, so the spore seeder dials it
//! (`Options::peers`). DHT, LPD, PEX, uTP and port mapping are off in its settings.

mod swarm_support;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use swarm_support::*;
use tokio::process::Command;

/// How often the downloaded files are compared while Transmission works (it first waits for
/// its 10-second rechoke before it asks for anything).
const FILE_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// Whether Transmission's copy is complete and identical (it creates no empty files).
fn same_content(torrent: &metainfo::Torrent, dir: &Path) -> bool {
    let layout = storage::Layout::from_info(&torrent.info).unwrap();
    layout.files().iter().filter(|f| !f.pad).all(|file| {
        let got = std::fs::read(dir.join(&file.path)).ok();
        if file.length == 0 {
            return got.is_none_or(|g| g.is_empty());
        }
        got == Some(std::fs::read(content_dir().join(&file.path)).unwrap())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transmission_downloads_from_a_spore_seeder_that_dials_it() {
    let path = fixture("libtorrent-v1-multi.torrent");
    let torrent = load_torrent(&path);
    let transmission_ip = ip(40, 3);
    let transmission_addr = free_port(transmission_ip);
    let config = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let settings = serde_json::json!({
        "bind-address-ipv4": transmission_ip.to_string(),
        "bind-address-ipv6": "::1",
        "dht-enabled": false,
        "lpd-enabled": false,
        "pex-enabled": false,
        "utp-enabled": false,
        "port-forwarding-enabled": false,
        "rename-partial-files": false,
        "encryption": 0,
        "peer-port": transmission_addr.port(),
        "rpc-enabled": false,
        "message-level": 1,
    });
    std::fs::write(config.path().join("settings.json"), settings.to_string()).unwrap();
    let mut transmission = Command::new("transmission-cli")
        .arg("-g")
        .arg(config.path())
        .arg("-w")
        .arg(out.path())
        .args(["-p", &transmission_addr.port().to_string(), "-et", "-M"])
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("transmission-cli (run ../shared/peers/install.sh)");
    let seeder = SporePeer::seed(&path, ip(40, 2), vec![transmission_addr]).await;
    let done = tokio::time::timeout(DOWNLOAD_TIMEOUT, async {
        let mut poll = tokio::time::interval(FILE_POLL_INTERVAL);
        loop {
            poll.tick().await;
            assert!(
                transmission.try_wait().unwrap().is_none(),
                "transmission-cli exited"
            );
            if same_content(&torrent, out.path()) {
                break;
            }
        }
    })
    .await;
    assert!(done.is_ok(), "Transmission did not complete in time");
    let summary = seeder.finish().await;
    assert!(summary.bytes_uploaded >= torrent.info.total_size());
}
