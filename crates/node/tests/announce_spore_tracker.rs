//! The tracker client against spore's own tracker (`node::tracker`) on `[::1]`: IPv6 peers come
//! back as BEP 7 `peers6` over HTTP and as 18-byte entries over UDP (BEP 15), and reach the
//! swarm's discovered-peers channel.

use std::net::SocketAddr;
use std::time::Duration;

use node::announce::{self, Config, Report, Transfer};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracker::{InfoHash, PeerId};

/// Bound on every wait.
const WAIT: Duration = Duration::from_secs(20);

/// One running announcer.
struct Peer {
    transfer: watch::Sender<Transfer>,
    discovered: mpsc::Receiver<SocketAddr>,
    task: JoinHandle<()>,
}

/// Starts announcing `port` as a leecher to `url` and waits for the first answer.
async fn start(url: &str, id: u8, port: u16) -> Peer {
    let mut config = Config::new(
        vec![vec![url.to_owned()]],
        InfoHash([0x77; 20]),
        PeerId([id; 20]),
        u64::from(id),
    );
    config.udp_timeout_first = Duration::from_millis(500);
    let (transfer, transfer_rx) = watch::channel(Transfer {
        ready: true,
        port,
        uploaded: 0,
        downloaded: 0,
        left: Some(1000),
    });
    let (report_tx, mut report) = watch::channel(Report::default());
    let (discovered_tx, discovered) = mpsc::channel(64);
    let task = tokio::spawn(announce::run(
        config,
        transfer_rx,
        discovered_tx,
        report_tx,
        std::future::pending(),
    ));
    tokio::time::timeout(WAIT, report.wait_for(|r| r.announces >= 1))
        .await
        .expect("an answered announce")
        .expect("announcer alive");
    Peer {
        transfer,
        discovered,
        task,
    }
}

impl Peer {
    /// Ends the run (`stopped` goes out) and returns every peer it was handed.
    async fn finish(mut self) -> Vec<SocketAddr> {
        drop(self.transfer);
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("announcer stopped")
            .expect("no panic");
        let mut peers = Vec::new();
        while let Some(peer) = self.discovered.recv().await {
            peers.push(peer);
        }
        peers
    }
}

#[tokio::test]
async fn ipv6_peers_arrive_over_http_and_udp() {
    let options = node::tracker::TrackerOptions {
        http: Some("[::1]:0".parse().unwrap()),
        udp: Some("[::1]:0".parse().unwrap()),
        db: None,
        config: tracker::server::Config::default(),
        seed: 1,
    };
    let running = node::tracker::start(options)
        .await
        .expect("tracker on [::1]");
    let http = format!("http://{}/announce", running.http_addr.unwrap());
    let udp = format!("udp://{}/announce", running.udp_addr.unwrap());
    let listed: SocketAddr = "[::1]:42001".parse().unwrap();
    let first = start(&http, 1, listed.port()).await;
    for (id, url) in [(2, &http), (3, &udp)] {
        let peers = start(url, id, 42000 + u16::from(id)).await.finish().await;
        assert!(peers.contains(&listed), "{url} handed out {peers:?}");
    }
    first.finish().await;
    running.shutdown().await;
}
