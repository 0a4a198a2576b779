//! A mixed swarm on loopback: one libtorrent seeder, three spore downloaders and two libtorrent
//! downloaders, all connected to each other; everyone completes with identical content.

mod swarm_support;

use node::swarm::Source;
use swarm_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_seeder_three_spore_and_two_libtorrent_downloaders_all_complete() {
    let net = 30;
    let path = fixture("libtorrent-v1-single.torrent");
    let torrent = load_torrent(&path);
    let seeder = LtPeer::seed(&path, ip(net, 2)).await;
    let dirs: Vec<tempfile::TempDir> = (0..5).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut spores = Vec::new();
    for (i, dir) in dirs[..3].iter().enumerate() {
        let mut options = options(
            ip(net, 3 + i as u8),
            dir.path(),
            vec![seeder.addr],
            i as u64,
        );
        options.seed_after = true;
        let mut peer = SporePeer::start(Source::Torrent(Box::new(torrent.clone())), options);
        peer.wait_for(|s| s.listen_addr.is_some()).await;
        spores.push(peer);
    }
    let spore_addrs: Vec<_> = spores.iter().map(SporePeer::addr).collect();
    // Each spore downloader learns of the others through the discovery seam.
    for peer in &spores {
        for &addr in &spore_addrs {
            peer.peer_feed.send(addr).await.unwrap();
        }
    }
    let mut lt_peers = vec![seeder.addr];
    lt_peers.extend(&spore_addrs);
    let libtorrents: Vec<LtPeer> = dirs[3..]
        .iter()
        .enumerate()
        .map(|(i, dir)| {
            LtPeer::get(
                &path.to_string_lossy(),
                ip(net, 6 + i as u8),
                dir.path(),
                &lt_peers,
            )
        })
        .collect();
    for lt in libtorrents {
        lt.wait_done().await;
    }
    for peer in &mut spores {
        peer.wait_for(|s| s.is_complete()).await;
    }
    for dir in &dirs {
        assert_same_content(&torrent, dir.path());
    }
    for peer in spores {
        let summary = peer.finish().await;
        assert!(summary.complete);
        assert_eq!(summary.hash_failures, 0);
    }
}
