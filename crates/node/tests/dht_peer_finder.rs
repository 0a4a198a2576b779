//! The trackerless peer finder on a loopback DHT (127.0.99.x): a seeding swarm's port is
//! announced, a downloading swarm receives that address through its `discovered` channel, and
//! the finder stops with the swarm.

use std::net::SocketAddr;
use std::time::Duration;

use dht::NodeId;
use node::dht::peer_finder::{self, Schedule};
use node::dht::{DhtHandle, DhtOptions};
use node::swarm::{Phase, Status};
use tokio::sync::{mpsc, watch};

const SUBNET: u8 = 99;
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

async fn dht_node(host: u8, seed: u64) -> DhtHandle {
    let mut options = DhtOptions::new(SocketAddr::from(([127, 0, SUBNET, host], 0)));
    options.seed = Some(seed);
    DhtHandle::start(options).await.expect("bind loopback")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announced_port_reaches_a_downloader_and_the_finder_ends_with_the_swarm() {
    let mut routers = Vec::new();
    for i in 0..6 {
        routers.push(dht_node(100 + i, u64::from(i) + 1).await);
    }
    let bootstrap = routers[0].local_addr();
    for node in &routers[1..] {
        node.bootstrap(vec![bootstrap]).await.unwrap();
    }
    let info_hash = NodeId([0x5e; 20]);
    let fast = Schedule {
        lookup_interval_min: Duration::from_millis(100),
        lookup_interval_max: Duration::from_millis(400),
    };

    // A seeder: complete, listening on port 5555 of its own address.
    let seeder_dht = dht_node(2, 50).await;
    let seeder_peer = SocketAddr::new(seeder_dht.local_addr().ip(), 5555);
    let (seeder_status, seeder_rx) = watch::channel(Status {
        phase: Phase::Seeding,
        listen_addr: Some(seeder_peer),
        ..Status::default()
    });
    let (seeder_feed, mut seeder_found) = mpsc::channel(16);
    let seeder = peer_finder::spawn(
        seeder_dht,
        vec![bootstrap],
        info_hash,
        seeder_rx,
        seeder_feed,
        fast,
    );

    // A downloader: incomplete, not listening yet; it keeps looking until it finds the seeder.
    let (downloader_status, downloader_rx) = watch::channel(Status {
        phase: Phase::FetchingMetadata,
        ..Status::default()
    });
    let (downloader_feed, mut downloader_found) = mpsc::channel(16);
    let downloader = peer_finder::spawn(
        dht_node(3, 60).await,
        vec![bootstrap],
        info_hash,
        downloader_rx,
        downloader_feed,
        fast,
    );
    let found = tokio::time::timeout(STEP_TIMEOUT, async {
        loop {
            let peer = downloader_found.recv().await.expect("finder running");
            if peer == seeder_peer {
                return peer;
            }
        }
    })
    .await
    .expect("the downloader found the seeder's announce");
    assert_eq!(found, seeder_peer);

    // A complete torrent needs no lookups: the seeder's finder never pushed anything (its own
    // address is not a peer).
    assert!(seeder_found.try_recv().is_err());

    // Each finder ends when its swarm's status sender goes away.
    drop(downloader_status);
    drop(seeder_status);
    tokio::time::timeout(STEP_TIMEOUT, downloader)
        .await
        .expect("downloader's finder ended")
        .unwrap();
    tokio::time::timeout(STEP_TIMEOUT, seeder)
        .await
        .expect("seeder's finder ended")
        .unwrap();
}
