//! Interop with libtorrent's Mainline DHT (the real thing, through ../shared/peers/lt_dht.py and
//! our lt_dht_helper.py): joining, get_peers and announce both ways, BEP 44 immutable and mutable
//! (salted) items both ways. Each test uses its own 127.0.SUBNET.x addresses and ports, so they
//! run in parallel. Everything stays on loopback.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use dht::{MutableItem, NodeId};
use node::dht::{DhtHandle, DhtOptions};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

const LT_NODES: usize = 8;
/// Bound on every wait for libtorrent.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

fn shared_dir() -> PathBuf {
    std::env::var_os("SPORE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
}

/// The libtorrent nodes, driven through the helper's stdin/stdout.
struct Libtorrent {
    _child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    nodes: Vec<SocketAddr>,
}

impl Libtorrent {
    async fn start(subnet: u8, base_port: u16) -> Libtorrent {
        let helper = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/lt_dht_helper.py");
        let mut child = Command::new("/usr/bin/python3")
            .args(["-W", "ignore::DeprecationWarning"])
            .arg(helper)
            .arg("--shared")
            .arg(shared_dir())
            .args([
                "--subnet",
                &subnet.to_string(),
                "--nodes",
                &LT_NODES.to_string(),
            ])
            .args(["--base-port", &base_port.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 with libtorrent (run ../shared/peers/install.sh)");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut lt = Libtorrent {
            _child: child,
            stdin,
            stdout,
            nodes: Vec::new(),
        };
        let ready = lt.read().await;
        lt.nodes = ready["nodes"]
            .as_array()
            .expect("helper prints its nodes")
            .iter()
            .map(|n| {
                SocketAddr::new(
                    n[0].as_str().unwrap().parse().unwrap(),
                    n[1].as_u64().unwrap() as u16,
                )
            })
            .collect();
        lt
    }

    async fn read(&mut self) -> Value {
        let line = tokio::time::timeout(STEP_TIMEOUT, self.stdout.next_line())
            .await
            .expect("libtorrent helper answered in time")
            .unwrap()
            .expect("libtorrent helper is running");
        serde_json::from_str(&line).unwrap()
    }

    async fn call(&mut self, command: Value) -> Value {
        let mut line = command.to_string();
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        self.read().await
    }
}

async fn spore_node(subnet: u8, port: u16, lt: &mut Libtorrent) -> DhtHandle {
    let bind = SocketAddr::from(([127, 0, subnet, 2], port));
    let handle = DhtHandle::start(DhtOptions::new(bind)).await.unwrap();
    let joined = handle.bootstrap(vec![lt.nodes[0]]).await.unwrap();
    assert!(
        !joined.closest.is_empty(),
        "libtorrent answered the bootstrap"
    );
    lt.call(json!({"cmd": "add_node", "addr": [bind.ip().to_string(), bind.port()]}))
        .await;
    handle
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spore_joins_libtorrent_and_fills_its_routing_table() {
    let mut lt = Libtorrent::start(91, 17300).await;
    let spore = spore_node(91, 17350, &mut lt).await;
    let mut size = 0;
    for _ in 0..10 {
        size = spore.stats().await.unwrap().routing_table_nodes;
        if size >= LT_NODES - 1 {
            break;
        }
        spore
            .find_node(NodeId::random(&mut sansio::Rng::from_seed(size as u64)))
            .await
            .unwrap();
    }
    assert!(
        size >= LT_NODES - 1,
        "routing table holds {size} of {LT_NODES} libtorrent nodes"
    );
    for node in spore.routing_table().await.unwrap() {
        assert!(lt.nodes.contains(&node.addr));
    }
    // libtorrent answers our ping with its id, and find_node converges to its nodes.
    let pong = spore.ping(lt.nodes[3]).await.unwrap();
    assert_eq!(pong.addr, lt.nodes[3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_peers_and_announce_both_ways() {
    let mut lt = Libtorrent::start(92, 17400).await;
    let spore = spore_node(92, 17450, &mut lt).await;

    // libtorrent announces (a magnet-only torrent in a DHT session); spore finds it.
    let lt_hash = NodeId([0x21; 20]);
    lt.call(json!({"cmd": "announce", "info_hash": lt_hash.to_hex()}))
        .await;
    let mut found = Vec::new();
    for _ in 0..30 {
        found = spore.get_peers(lt_hash).await.unwrap();
        if found.iter().any(|p| p.ip() == lt.nodes[1].ip()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        found.iter().any(|p| p.ip() == lt.nodes[1].ip()),
        "spore found libtorrent's announce: {found:?}"
    );

    // spore announces; libtorrent finds it.
    let spore_hash = NodeId([0x43; 20]);
    let announced = spore.announce(spore_hash, Some(7777)).await.unwrap();
    assert!(
        announced.stored >= 3,
        "libtorrent nodes accepted {} announces",
        announced.stored
    );
    let reply = lt
        .call(json!({"cmd": "get_peers", "info_hash": spore_hash.to_hex()}))
        .await;
    let expected = json!([spore.local_addr().ip().to_string(), 7777]);
    assert!(
        reply["peers"].as_array().unwrap().contains(&expected),
        "libtorrent saw {reply}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn immutable_items_both_ways() {
    let mut lt = Libtorrent::start(93, 17500).await;
    let spore = spore_node(93, 17550, &mut lt).await;

    let reply = lt
        .call(json!({"cmd": "put_immutable", "value": "hello from libtorrent"}))
        .await;
    let target = NodeId::from_hex(reply["target"].as_str().unwrap()).unwrap();
    assert_eq!(target, dht::immutable_target(b"21:hello from libtorrent"));
    let value = spore.get_immutable(target).await.unwrap();
    assert_eq!(value.as_deref(), Some(&b"21:hello from libtorrent"[..]));

    let (target, put) = spore
        .put_immutable(b"16:hello from spore".to_vec())
        .await
        .unwrap();
    assert!(put.stored >= 3);
    let reply = lt
        .call(json!({"cmd": "get_immutable", "target": target.to_hex()}))
        .await;
    let got = reply["value"].as_str().unwrap_or_default();
    assert!(
        got == "hello from spore" || got == "16:hello from spore",
        "libtorrent read {reply}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutable_salted_items_both_ways() {
    let mut lt = Libtorrent::start(94, 17600).await;
    let spore = spore_node(94, 17650, &mut lt).await;

    // libtorrent signs with the expanded form of this seed; spore verifies with dht's code.
    let lt_seed = [0x11u8; 32];
    let lt_key = dht::public_key(&lt_seed);
    let reply = lt
        .call(json!({"cmd": "put_mutable", "seed": hex(&lt_seed), "public_key": hex(&lt_key), "salt": "lt-salt", "value": "mutable from libtorrent"}))
        .await;
    assert!(
        reply["num_success"].as_i64().unwrap_or(0) > 0,
        "libtorrent stored it: {reply}"
    );
    let item = spore
        .get_mutable(lt_key, b"lt-salt".to_vec(), None)
        .await
        .unwrap()
        .expect("spore found it");
    assert_eq!(item.value, b"23:mutable from libtorrent");
    assert_eq!(item.seq, reply["seq"].as_i64().unwrap());
    assert_eq!(
        spore
            .get_mutable(lt_key, b"other-salt".to_vec(), None)
            .await
            .unwrap(),
        None
    );

    let seed = [0x22u8; 32];
    let item = MutableItem::sign(&seed, b"spore-salt", 5, b"18:mutable from spore").unwrap();
    assert!(spore.put_mutable(item.clone(), None).await.unwrap().stored >= 3);
    let reply = lt
        .call(json!({"cmd": "get_mutable", "public_key": hex(&item.key), "salt": "spore-salt"}))
        .await;
    assert_eq!(reply["seq"], json!(5), "libtorrent read {reply}");
    let got = reply["value"].as_str().unwrap_or_default();
    assert!(
        got == "mutable from spore" || got == "18:mutable from spore",
        "libtorrent read {reply}"
    );
}
