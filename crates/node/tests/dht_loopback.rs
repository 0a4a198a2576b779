//! A network of 20 spore DHT nodes on loopback (127.0.95.x): real sockets, real clock. Lookups
//! converge to the true closest nodes; announces and BEP 44 items travel between nodes.

use std::net::SocketAddr;
use std::time::Duration;

use dht::{MutableItem, NodeId};
use node::dht::{DhtHandle, DhtOptions};

const NODES: usize = 20;

async fn network(subnet: u8, base_port: u16) -> Vec<DhtHandle> {
    let mut nodes = Vec::new();
    for i in 0..NODES {
        let bind = SocketAddr::from(([127, 0, subnet, 10 + i as u8], base_port + i as u16));
        let mut options = DhtOptions::new(bind);
        options.seed = Some(i as u64 + 1);
        nodes.push(DhtHandle::start(options).await.expect("bind loopback"));
    }
    let first = nodes[0].local_addr();
    for node in &nodes[1..] {
        node.bootstrap(vec![first]).await.expect("bootstrap");
    }
    // A second round lets early joiners learn of late ones.
    for node in &nodes {
        node.bootstrap(vec![first]).await.expect("bootstrap");
    }
    nodes
}

fn true_closest(nodes: &[DhtHandle], target: &NodeId, except: NodeId) -> Vec<NodeId> {
    let mut ids: Vec<NodeId> = nodes
        .iter()
        .map(DhtHandle::id)
        .filter(|id| *id != except)
        .collect();
    ids.sort_by_key(|id| target.distance(id));
    ids.truncate(8);
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_converge_and_data_travels_on_loopback() {
    let nodes = tokio::time::timeout(Duration::from_secs(120), network(95, 17100))
        .await
        .expect("network formed in time");
    for node in &nodes {
        assert!(node.stats().await.unwrap().routing_table_nodes >= 8);
    }
    let mut rng = sansio::Rng::from_seed(7);
    for i in 0..5 {
        let target = NodeId::random(&mut rng);
        let searcher = &nodes[(i * 7) % NODES];
        let result = searcher.find_node(target).await.unwrap();
        let found: Vec<NodeId> = result.closest.iter().map(|n| n.id).collect();
        let truth = true_closest(&nodes, &target, searcher.id());
        let overlap = found.iter().filter(|id| truth.contains(id)).count();
        assert!(overlap >= 7, "lookup {i} found {overlap} of the 8 closest");
    }

    let info_hash = NodeId([0x55; 20]);
    assert!(
        nodes[3]
            .announce(info_hash, Some(7777))
            .await
            .unwrap()
            .stored
            >= 4
    );
    let peers = nodes[17].get_peers(info_hash).await.unwrap();
    assert!(
        peers.contains(&SocketAddr::new(nodes[3].local_addr().ip(), 7777)),
        "{peers:?}"
    );

    let (target, put) = nodes[5].put_immutable(b"5:spore".to_vec()).await.unwrap();
    assert!(put.stored >= 4);
    assert_eq!(
        nodes[12].get_immutable(target).await.unwrap(),
        Some(b"5:spore".to_vec())
    );

    let item = MutableItem::sign(&[4; 32], b"salty", 1, b"3:one").unwrap();
    assert!(
        nodes[6]
            .put_mutable(item.clone(), None)
            .await
            .unwrap()
            .stored
            >= 4
    );
    let got = nodes[14]
        .get_mutable(item.key, b"salty".to_vec(), None)
        .await
        .unwrap();
    assert_eq!(got, Some(item));
}

#[tokio::test]
async fn routing_table_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("dht.state");
    let a = DhtHandle::start(DhtOptions::new("127.0.96.10:17200".parse().unwrap()))
        .await
        .unwrap();
    let mut options = DhtOptions::new("127.0.96.11:17201".parse().unwrap());
    options.state_file = Some(state.clone());
    let b = DhtHandle::start(options.clone()).await.unwrap();
    b.bootstrap(vec![a.local_addr()]).await.unwrap();
    let id = b.id();
    assert_eq!(b.routing_table().await.unwrap().len(), 1);
    drop(b);
    // The task saves on exit; wait (bounded) for the file.
    let mut saved = false;
    for _ in 0..100 {
        if std::fs::metadata(&state).is_ok_and(|m| m.len() > 0) {
            saved = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(saved, "state file written");
    // Rebind the same address once the old task has released it.
    let mut restarted = None;
    for _ in 0..100 {
        if let Ok(handle) = DhtHandle::start(options.clone()).await {
            restarted = Some(handle);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let b = restarted.expect("restarted");
    assert_eq!(b.id(), id, "same id after restart");
    let table = b.routing_table().await.unwrap();
    assert_eq!(table.len(), 1);
    assert_eq!(table[0].addr, a.local_addr());
    // And the restored node rejoins without any bootstrap address.
    assert_eq!(b.bootstrap(Vec::new()).await.unwrap().closest.len(), 1);
}
