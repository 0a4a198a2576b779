//! Interop with libtorrent 2.0 (../shared/peers/lt_peer.py) over TCP on loopback: spore
//! downloads v1, v2 and hybrid fixtures (single and multi-file) and magnet links (v2 and hybrid
//! ones with BEP 52 hash requests for the piece layers) from a libtorrent seeder, and
//! libtorrent downloads from a spore seeder. Results are compared byte for byte with the
//! fixture content.

mod swarm_support;

use node::swarm::{Phase, Source};
use swarm_support::*;

async fn spore_from_libtorrent(net: u8, fixture_name: &str) {
    let path = fixture(fixture_name);
    let seeder = LtPeer::seed(&path, ip(net, 2)).await;
    let out = tempfile::tempdir().unwrap();
    let torrent = load_torrent(&path);
    let summary = spore_get(
        Source::Torrent(Box::new(torrent.clone())),
        ip(net, 3),
        out.path(),
        vec![seeder.addr],
    )
    .await;
    assert!(summary.complete);
    assert_eq!(summary.pieces_at_start, 0);
    assert_eq!(summary.hash_failures, 0);
    assert!(summary.bytes_downloaded >= torrent.info.total_size() - torrent_pad_bytes(&torrent));
    assert_same_content(&torrent, out.path());
}

fn torrent_pad_bytes(torrent: &metainfo::Torrent) -> u64 {
    let layout = storage::Layout::from_info(&torrent.info).unwrap();
    layout
        .files()
        .iter()
        .filter(|f| f.pad)
        .map(|f| f.length)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spore_downloads_v1_single_from_libtorrent() {
    spore_from_libtorrent(1, "libtorrent-v1-single.torrent").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spore_downloads_v1_multi_from_libtorrent() {
    spore_from_libtorrent(2, "libtorrent-v1-multi.torrent").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spore_downloads_v2_single_from_libtorrent() {
    spore_from_libtorrent(3, "libtorrent-v2-single.torrent").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spore_downloads_v2_multi_from_libtorrent() {
    spore_from_libtorrent(4, "libtorrent-v2-multi.torrent").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spore_downloads_hybrid_single_from_libtorrent() {
    spore_from_libtorrent(5, "libtorrent-hybrid-single.torrent").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spore_downloads_hybrid_multi_from_libtorrent() {
    spore_from_libtorrent(6, "libtorrent-hybrid-multi.torrent").await;
}

async fn spore_magnet_from_libtorrent(net: u8, fixture_name: &str) {
    let path = fixture(fixture_name);
    let seeder = LtPeer::seed(&path, ip(net, 2)).await;
    let out = tempfile::tempdir().unwrap();
    let magnet: metainfo::Magnet = fixture_magnet(fixture_name).parse().unwrap();
    let summary = spore_get(
        Source::Magnet(Box::new(magnet)),
        ip(net, 3),
        out.path(),
        vec![seeder.addr],
    )
    .await;
    assert!(summary.complete);
    assert_same_content(&load_torrent(&path), out.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spore_downloads_v1_magnet_from_libtorrent_over_bep9() {
    spore_magnet_from_libtorrent(7, "libtorrent-v1-multi.torrent").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spore_downloads_hybrid_magnet_from_libtorrent_over_bep52() {
    spore_magnet_from_libtorrent(8, "libtorrent-hybrid-multi.torrent").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spore_downloads_v2_magnet_from_libtorrent_over_bep52() {
    spore_magnet_from_libtorrent(36, "libtorrent-v2-single.torrent").await;
}

async fn libtorrent_from_spore(net: u8, fixture_name: &str, magnet: bool) {
    let path = fixture(fixture_name);
    let seeder = SporePeer::seed(&path, ip(net, 2), vec![]).await;
    // Without a resume record the seed hashed all its data first, and said how far it got.
    let total = load_torrent(&path).info.total_size();
    assert_eq!(seeder.status.borrow().bytes_checked, total);
    let out = tempfile::tempdir().unwrap();
    let source = if magnet {
        fixture_magnet(fixture_name)
    } else {
        path.to_string_lossy().into_owned()
    };
    let report = LtPeer::get(&source, ip(net, 3), out.path(), &[seeder.addr()])
        .wait_done()
        .await;
    assert_same_content(&load_torrent(&path), out.path());
    assert_eq!(seeder.status.borrow().phase, Phase::Seeding);
    let summary = seeder.finish().await;
    assert!(
        summary.bytes_uploaded >= report["bytes"].as_u64().unwrap(),
        "spore sent {} bytes, libtorrent wanted {report}",
        summary.bytes_uploaded
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libtorrent_downloads_v1_multi_from_spore() {
    libtorrent_from_spore(9, "libtorrent-v1-multi.torrent", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libtorrent_downloads_v1_single_from_spore() {
    libtorrent_from_spore(10, "libtorrent-v1-single.torrent", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libtorrent_downloads_hybrid_multi_from_spore() {
    libtorrent_from_spore(11, "libtorrent-hybrid-multi.torrent", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libtorrent_downloads_v2_multi_from_spore() {
    libtorrent_from_spore(14, "libtorrent-v2-multi.torrent", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libtorrent_downloads_v2_single_from_spore() {
    libtorrent_from_spore(15, "libtorrent-v2-single.torrent", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libtorrent_fetches_metadata_from_spore_by_magnet() {
    libtorrent_from_spore(12, "libtorrent-v1-multi.torrent", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libtorrent_fetches_v2_metadata_and_piece_layers_from_spore_by_magnet() {
    libtorrent_from_spore(37, "libtorrent-v2-multi.torrent", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spore_dials_peers_sent_through_the_discovery_channel() {
    let path = fixture("libtorrent-v1-multi.torrent");
    let seeder = LtPeer::seed(&path, ip(13, 2)).await;
    let out = tempfile::tempdir().unwrap();
    let torrent = load_torrent(&path);
    let mut peer = SporePeer::start(
        Source::Torrent(Box::new(torrent.clone())),
        options(ip(13, 3), out.path(), vec![], 3),
    );
    // What announcers read: the identities, the bound port, what is left.
    let status = peer.wait_for(|s| s.listen_addr.is_some()).await;
    assert_eq!(status.info_hashes, torrent.info.info_hashes());
    assert_eq!(status.listen_addr.map(|a| a.ip()), Some(ip(13, 3)));
    assert_ne!(status.listen_port(), Some(0));
    for _ in 0..3 {
        // Duplicates are dialled once.
        peer.peer_feed.send(seeder.addr).await.unwrap();
    }
    let status = peer.wait_for(|s| s.is_complete()).await;
    assert_eq!(status.bytes_left(), 0);
    let summary = peer.join().await;
    assert!(summary.complete);
    assert_same_content(&torrent, out.path());
}
