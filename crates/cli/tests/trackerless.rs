//! Trackerless download end to end with the `spore` binary: a network of spore DHT nodes on
//! loopback (127.0.97.x), `spore seed` announcing in the DHT, and `spore get` given only a
//! magnet link (no tracker, no --peer) finding the seeder through get_peers, fetching the
//! metadata (BEP 9) and downloading byte-identical data.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use dht::NodeId;
use node::dht::{DhtHandle, DhtOptions};
use tokio::time::Instant;

const SUBNET: u8 = 97;
const DHT_NODES: u8 = 8;

fn spore() -> Command {
    Command::new(env!("CARGO_BIN_EXE_spore"))
}

/// Kills the child when the test ends, whichever way it ends.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ip(host: u8) -> IpAddr {
    IpAddr::from([127, 0, SUBNET, host])
}

/// Waits (bounded) for a child to exit and returns its output.
fn wait_with_timeout(mut child: Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().expect("poll child").is_some() {
            return child.wait_with_output().expect("child output");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("child output");
            panic!(
                "timed out after {limit:?}; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn make_torrent(dir: &Path) -> (Vec<u8>, String) {
    let data_dir = dir.join("seed");
    std::fs::create_dir_all(&data_dir).unwrap();
    // 3 MiB of deterministic, non-repeating bytes.
    let content: Vec<u8> = (0u32..3 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(data_dir.join("payload.bin"), &content).unwrap();
    let created = spore()
        .args(["create", "--v1", "--json", "-o"])
        .arg(dir.join("payload.torrent"))
        .arg(data_dir.join("payload.bin"))
        .output()
        .unwrap();
    assert!(created.status.success(), "{created:?}");
    let json: serde_json::Value = serde_json::from_slice(&created.stdout).unwrap();
    let info_hash = json["info_hash_v1"].as_str().unwrap().to_owned();
    (content, info_hash)
}

async fn dht_network() -> Vec<DhtHandle> {
    let mut nodes = Vec::new();
    for i in 0..DHT_NODES {
        let mut options = DhtOptions::new(SocketAddr::new(ip(100 + i), 0));
        options.seed = Some(u64::from(i) + 1);
        nodes.push(DhtHandle::start(options).await.expect("bind loopback"));
    }
    let first = nodes[0].local_addr();
    for _round in 0..2 {
        for node in &nodes[1..] {
            node.bootstrap(vec![first]).await.expect("bootstrap");
        }
    }
    nodes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn magnet_alone_downloads_through_the_dht() {
    let dir = tempfile::tempdir().unwrap();
    let (content, info_hash) = make_torrent(dir.path());
    let nodes = dht_network().await;
    let bootstrap = nodes[0].local_addr().to_string();

    let seeder_ip = ip(2);
    let _seeder = KillOnDrop(
        spore()
            .args(["seed", "--json", "--dht-bootstrap", &bootstrap])
            .arg("--listen")
            .arg(SocketAddr::new(seeder_ip, 0).to_string())
            .arg("--bind")
            .arg(seeder_ip.to_string())
            .arg(dir.path().join("payload.torrent"))
            .arg(dir.path().join("seed"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // The seeder's announce reaches the DHT: a lookup from another node finds its address.
    let key = NodeId::from_hex(&info_hash).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let announced = loop {
        let peers = nodes[DHT_NODES as usize - 1].get_peers(key).await.unwrap();
        if let Some(peer) = peers.iter().find(|p| p.ip() == seeder_ip) {
            break *peer;
        }
        assert!(Instant::now() < deadline, "the seeder never announced");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_ne!(announced.port(), 0);

    let out_dir = dir.path().join("download");
    let getter_ip = ip(3);
    let get = spore()
        .args(["get", "--json", "--dht-bootstrap", &bootstrap, "-o"])
        .arg(&out_dir)
        .arg("--listen")
        .arg(SocketAddr::new(getter_ip, 0).to_string())
        .arg("--bind")
        .arg(getter_ip.to_string())
        .arg(format!("magnet:?xt=urn:btih:{info_hash}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let output =
        tokio::task::spawn_blocking(move || wait_with_timeout(get, Duration::from_secs(120)))
            .await
            .unwrap();
    assert!(
        output.status.success(),
        "spore get failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["complete"], true);
    assert_eq!(report["bytes_downloaded"], content.len() as u64);
    let downloaded = std::fs::read(out_dir.join("payload.bin")).unwrap();
    assert!(downloaded == content, "downloaded bytes differ");
}

#[test]
fn no_dht_conflicts_with_a_bootstrap_address() {
    let output = spore()
        .args([
            "get",
            "--no-dht",
            "--dht-bootstrap",
            "127.0.0.1:1",
            "magnet:?xt=urn:btih:0000000000000000000000000000000000000000",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--no-dht"));
}
