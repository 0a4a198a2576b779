//! BEP 52 hash requests on loopback: magnet links of v2 and hybrid torrents whose files span
//! many pieces, so that the piece layers must come from peers after the metadata (BEP 9).
//! spore fetches them from libtorrent 2.0 (../shared/peers/lt_peer.py) and from spore, and
//! libtorrent fetches them from spore. Results are compared byte for byte with the content.

mod swarm_support;

use std::path::{Path, PathBuf};

use metainfo::{create_torrent, CreateOptions, Magnet, MetaVersion, Torrent};
use node::swarm::Source;
use swarm_support::*;

/// Piece length of the generated torrents: the smallest BEP 52 allows, for many pieces.
const PIECE: u64 = 16 * 1024;

/// Content and its torrent in a temporary directory.
struct Generated {
    dir: tempfile::TempDir,
    torrent: Torrent,
    torrent_path: PathBuf,
}

impl Generated {
    /// A multi-file torrent of `version`: a file of 700 pieces (two hash requests, 512 and
    /// 256), one of 37 pieces, and one of less than a piece.
    fn new(version: MetaVersion) -> Generated {
        let dir = tempfile::tempdir().unwrap();
        let content = dir.path().join("bep52");
        std::fs::create_dir_all(content.join("sub")).unwrap();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut bytes = |len: u64| -> Vec<u8> {
            (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect()
        };
        std::fs::write(content.join("big.bin"), bytes(700 * PIECE - 1000)).unwrap();
        std::fs::write(content.join("sub/mid.bin"), bytes(37 * PIECE + 5)).unwrap();
        std::fs::write(content.join("small.txt"), bytes(100)).unwrap();
        let options = CreateOptions {
            version,
            piece_length: Some(PIECE),
            ..CreateOptions::default()
        };
        let torrent = create_torrent(&content, &options, &|_, _| {}).unwrap();
        let torrent_path = dir.path().join("bep52.torrent");
        std::fs::write(&torrent_path, torrent.to_bytes()).unwrap();
        Generated {
            dir,
            torrent,
            torrent_path,
        }
    }

    fn data(&self) -> &Path {
        self.dir.path()
    }

    fn magnet(&self) -> Magnet {
        self.torrent.magnet()
    }
}

/// spore downloads `generated` by magnet link from `seeder` and checks every byte.
async fn spore_gets_magnet(generated: &Generated, net: u8, seeder: std::net::SocketAddr) {
    let out = tempfile::tempdir().unwrap();
    let summary = spore_get(
        Source::Magnet(Box::new(generated.magnet())),
        ip(net, 3),
        out.path(),
        vec![seeder],
    )
    .await;
    assert!(summary.complete);
    assert_eq!(summary.hash_failures, 0);
    assert_eq!(summary.piece_count, generated.torrent.info.num_pieces());
    assert_same_content_as(&generated.torrent, out.path(), generated.data());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spore_downloads_a_v2_magnet_from_libtorrent() {
    let generated = Generated::new(MetaVersion::V2);
    let seeder = LtPeer::seed_in(&generated.torrent_path, generated.data(), ip(30, 2)).await;
    spore_gets_magnet(&generated, 30, seeder.addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spore_downloads_a_hybrid_magnet_from_libtorrent() {
    let generated = Generated::new(MetaVersion::Hybrid);
    let seeder = LtPeer::seed_in(&generated.torrent_path, generated.data(), ip(31, 2)).await;
    spore_gets_magnet(&generated, 31, seeder.addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spore_downloads_a_v2_magnet_from_spore() {
    let generated = Generated::new(MetaVersion::V2);
    let seeder =
        SporePeer::seed_in(&generated.torrent_path, generated.data(), ip(32, 2), vec![]).await;
    spore_gets_magnet(&generated, 32, seeder.addr()).await;
    assert!(seeder.finish().await.bytes_uploaded >= generated.torrent.info.total_size());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spore_downloads_a_hybrid_magnet_from_spore() {
    let generated = Generated::new(MetaVersion::Hybrid);
    let seeder =
        SporePeer::seed_in(&generated.torrent_path, generated.data(), ip(33, 2), vec![]).await;
    spore_gets_magnet(&generated, 33, seeder.addr()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libtorrent_downloads_a_v2_magnet_from_spore() {
    let generated = Generated::new(MetaVersion::V2);
    let seeder =
        SporePeer::seed_in(&generated.torrent_path, generated.data(), ip(34, 2), vec![]).await;
    let out = tempfile::tempdir().unwrap();
    let magnet = generated.magnet().to_string();
    LtPeer::get(&magnet, ip(34, 3), out.path(), &[seeder.addr()])
        .wait_done()
        .await;
    assert_same_content_as(&generated.torrent, out.path(), generated.data());
}
