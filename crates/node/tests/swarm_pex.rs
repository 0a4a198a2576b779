//! Peer exchange (BEP 11) over real sockets on loopback: peers that were told of one peer
//! only meet the others through `ut_pex`, between spore nodes and with libtorrent 2.0 both ways
//! (spore learns from libtorrent's messages, libtorrent learns from spore's). DHT and LSD are
//! off everywhere, so peer exchange is the only way to learn of anyone.
//!
//! Addresses: 127.3.60.x, 127.3.61.x and 127.3.62.x. Timing: both spore and libtorrent send
//! their first `ut_pex` to a peer within a few seconds of having a second peer to tell about
//! (libtorrent: its one-second peer tick, at most 3 s apart across its peers), so every wait
//! here is bounded well below a minute.

mod swarm_support;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use node::swarm::{Source, Status};
use swarm_support::*;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Bound on meeting a peer through peer exchange.
const PEX_TIMEOUT: Duration = Duration::from_secs(45);

fn torrent_source(path: &Path) -> Source {
    Source::Torrent(Box::new(load_torrent(path)))
}

/// An empty spore node at `ip` that keeps running (it never has data to complete with).
async fn empty_node(
    path: &Path,
    ip: IpAddr,
    out: &Path,
    peers: Vec<SocketAddr>,
    seed: u64,
) -> SporePeer {
    let mut options = options(ip, out, peers, seed);
    options.seed_after = true;
    let mut node = SporePeer::start(torrent_source(path), options);
    node.wait_for(|s| s.listen_addr.is_some()).await;
    node
}

/// Waits (bounded by [`PEX_TIMEOUT`]) until the node's status satisfies `done`.
async fn wait_pex(node: &mut SporePeer, done: impl Fn(&Status) -> bool) -> Status {
    tokio::time::timeout(PEX_TIMEOUT, node.status.wait_for(|s| done(s)))
        .await
        .expect("no second peer through peer exchange in time")
        .expect("the run ended first")
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spore_meets_a_spore_peer_through_spores_pex() {
    let path = fixture("libtorrent-v1-single.torrent");
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    // The hub knows nobody; two nodes know only the hub. Nobody has data, so nothing completes
    // (a node that completed would close its connections to other seeds): a second
    // connection can only come from the addresses the hub passed on.
    let hub = empty_node(&path, ip(60, 2), dirs[0].path(), vec![], 60).await;
    let b = empty_node(&path, ip(60, 3), dirs[1].path(), vec![hub.addr()], 61).await;
    let mut c = empty_node(&path, ip(60, 4), dirs[2].path(), vec![hub.addr()], 62).await;
    wait_pex(&mut c, |s| s.progress.peers >= 2).await;
    c.finish().await;
    b.finish().await;
    hub.finish().await;
}

/// A libtorrent peer running tests/lt_pex_helper.py (killed when dropped).
struct LtPexPeer {
    child: Child,
    addr: SocketAddr,
}

impl LtPexPeer {
    /// Starts it at `ip`, joining through `peer` (if any), reporting at `want` connections.
    fn start(
        torrent: &Path,
        ip: IpAddr,
        out: &Path,
        peer: Option<SocketAddr>,
        want: usize,
    ) -> LtPexPeer {
        let helper = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/lt_pex_helper.py");
        let addr = free_port(ip);
        let mut command = Command::new("/usr/bin/python3");
        command
            .args(["-W", "ignore::DeprecationWarning"])
            .arg(helper)
            .arg(torrent)
            .arg(out)
            .args(["--listen", &addr.to_string()]);
        if let Some(peer) = peer {
            command.args(["--peer", &peer.to_string()]);
        }
        let child = command
            .args(["--want", &want.to_string()])
            .args(["--seconds", &PEX_TIMEOUT.as_secs().to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 with libtorrent (run ../shared/peers/install.sh)");
        LtPexPeer { child, addr }
    }

    /// The addresses it was connected to once it had the peers it wanted (bounded wait).
    async fn connected(&mut self) -> Vec<SocketAddr> {
        let stdout = self.child.stdout.take().expect("read once");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(PEX_TIMEOUT + Duration::from_secs(15), lines.next_line())
            .await
            .expect("libtorrent helper said nothing in time")
            .unwrap()
            .unwrap_or_default();
        let report: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|_| panic!("helper printed {line:?}"));
        assert_eq!(report.get("timeout"), None, "libtorrent: {report}");
        report["peers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap().parse().unwrap())
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spore_meets_a_peer_through_libtorrents_pex() {
    let path = fixture("libtorrent-v1-multi.torrent");
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    // libtorrent is the hub; two spore nodes know only it.
    let hub = LtPexPeer::start(&path, ip(61, 2), dirs[0].path(), None, 2);
    let hub_addr = hub.addr;
    let b = empty_node(&path, ip(61, 3), dirs[1].path(), vec![hub_addr], 62).await;
    let mut c = empty_node(&path, ip(61, 4), dirs[2].path(), vec![hub_addr], 63).await;
    // Nobody has data, so nothing completes: a second connection can only come from the
    // addresses libtorrent passed on.
    wait_pex(&mut c, |s| s.progress.peers >= 2).await;
    c.finish().await;
    b.finish().await;
    drop(hub);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libtorrent_meets_a_peer_through_spores_pex() {
    let path = fixture("libtorrent-v1-multi.torrent");
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    // spore is the hub (empty, so nobody completes); two libtorrent peers know only it.
    let hub = empty_node(&path, ip(62, 2), dirs[0].path(), vec![], 64).await;
    let mut first = LtPexPeer::start(&path, ip(62, 3), dirs[1].path(), Some(hub.addr()), 2);
    let _second = LtPexPeer::start(&path, ip(62, 4), dirs[2].path(), Some(hub.addr()), 1);
    let peers = first.connected().await;
    assert!(
        peers.iter().any(|p| p.ip() == ip(62, 4)),
        "libtorrent at {} is connected to {peers:?}, not to the other libtorrent",
        ip(62, 3)
    );
    hub.finish().await;
}
