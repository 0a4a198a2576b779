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
    let summary = seeder.finish().await;
    assert!(summary.bytes_uploaded >= generated.torrent.info.total_size());
    // Two requests for the 700-piece file, one for the 37-piece file.
    assert_eq!(summary.hash_requests_served, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spore_downloads_a_hybrid_magnet_from_spore() {
    let generated = Generated::new(MetaVersion::Hybrid);
    let seeder =
        SporePeer::seed_in(&generated.torrent_path, generated.data(), ip(33, 2), vec![]).await;
    spore_gets_magnet(&generated, 33, seeder.addr()).await;
}

/// libtorrent downloads `generated` by magnet link from a spore seeder at `127.3.net.2`;
/// returns how many hash requests the seeder answered.
async fn libtorrent_gets_magnet_from_spore(generated: &Generated, net: u8) -> u32 {
    let seeder = SporePeer::seed_in(
        &generated.torrent_path,
        generated.data(),
        ip(net, 2),
        vec![],
    )
    .await;
    let out = tempfile::tempdir().unwrap();
    let magnet = generated.magnet().to_string();
    LtPeer::get(&magnet, ip(net, 3), out.path(), &[seeder.addr()])
        .wait_done()
        .await;
    assert_same_content_as(&generated.torrent, out.path(), generated.data());
    seeder.finish().await.hash_requests_served
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libtorrent_downloads_a_v2_magnet_from_spore() {
    let served = libtorrent_gets_magnet_from_spore(&Generated::new(MetaVersion::V2), 34).await;
    // libtorrent could also check whole files against their roots without the piece layers:
    // that it asked for them, and got them, shows in the seeder's count.
    assert!(served > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libtorrent_downloads_a_hybrid_magnet_from_spore() {
    // libtorrent joins a hybrid swarm under the v1 id and checks pieces with SHA-1: it asks
    // no hashes there (the v2 path is covered above).
    libtorrent_gets_magnet_from_spore(&Generated::new(MetaVersion::Hybrid), 39).await;
}

/// How a [`LyingSeeder`] answers hash requests.
#[derive(Clone, Copy, PartialEq, Eq)]
enum HashAnswers {
    /// The right hashes with one bit flipped.
    Flipped,
    /// A hash reject, always.
    Rejected,
}

/// A seeder written with the wire codecs that serves the metadata honestly (BEP 9) but answers
/// every hash request badly; it reports each bad answer and each connection.
struct LyingSeeder {
    addr: std::net::SocketAddr,
    lies: tokio::sync::watch::Receiver<usize>,
    connections: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for LyingSeeder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl LyingSeeder {
    async fn start(torrent: &Torrent, ip: std::net::IpAddr, answers: HashAnswers) -> LyingSeeder {
        let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (lies_tx, lies) = tokio::sync::watch::channel(0usize);
        let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = connections.clone();
        let torrent = std::sync::Arc::new(torrent.clone());
        let lies_tx = std::sync::Arc::new(lies_tx);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(serve_lies(
                    stream,
                    torrent.clone(),
                    answers,
                    lies_tx.clone(),
                ));
            }
        });
        LyingSeeder {
            addr,
            lies,
            connections,
            task,
        }
    }
}

async fn serve_lies(
    mut stream: tokio::net::TcpStream,
    torrent: std::sync::Arc<Torrent>,
    answers: HashAnswers,
    lies: std::sync::Arc<tokio::sync::watch::Sender<usize>>,
) {
    use metainfo::merkle_proof::{HashRange, PieceTree};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use wire::{
        ExtendedHandshake, Handshake, Message, MetadataMessage, Reserved, METADATA_PIECE_LEN,
    };
    const OUR_UT_METADATA: u8 = 3;
    let info = torrent.info.info_bytes().to_vec();
    let ours = Handshake {
        reserved: Reserved::EXTENSION_PROTOCOL,
        info_hash: torrent.info.info_hashes().wire_id(),
        peer_id: *b"-XX0001-lying-seeder",
    };
    let mut buf = vec![0u8; 64 * 1024];
    // Every loop below ends when spore closes the connection (it must) or the test ends.
    let Some(mut decoder) = read_handshake(&mut stream, &mut buf).await else {
        return;
    };
    let mut hs = ExtendedHandshake {
        metadata_size: Some(info.len() as u64),
        ..ExtendedHandshake::default()
    };
    hs.extensions
        .insert("ut_metadata".to_owned(), OUR_UT_METADATA);
    let mut out = ours.to_bytes().to_vec();
    Message::Extended {
        id: 0,
        payload: hs.to_bytes().into(),
    }
    .encode_into(&mut out);
    let piece_length = torrent.info.piece_length();
    let mut their_ut_metadata = None;
    loop {
        loop {
            match decoder.next_message() {
                Ok(Some(Message::Extended { id: 0, payload })) => {
                    their_ut_metadata = ExtendedHandshake::parse(&payload)
                        .ok()
                        .and_then(|hs| hs.extensions.get("ut_metadata").copied());
                }
                Ok(Some(Message::Extended {
                    id: OUR_UT_METADATA,
                    payload,
                })) => {
                    let (Ok(MetadataMessage::Request { piece }), Some(id)) =
                        (MetadataMessage::parse(&payload), their_ut_metadata)
                    else {
                        continue;
                    };
                    let start = (piece as usize * METADATA_PIECE_LEN).min(info.len());
                    let end = (start + METADATA_PIECE_LEN).min(info.len());
                    let data = MetadataMessage::Data {
                        piece,
                        total_size: info.len() as u64,
                        data: &info[start..end],
                    };
                    Message::Extended {
                        id,
                        payload: data.to_bytes().into(),
                    }
                    .encode_into(&mut out);
                }
                Ok(Some(Message::HashRequest(request))) => {
                    let range = HashRange {
                        base_layer: request.base_layer,
                        index: request.index,
                        count: request.length,
                        proof_layers: request.proof_layers,
                    };
                    let answer = torrent
                        .piece_layer(&request.pieces_root)
                        .and_then(|layer| PieceTree::new(layer, piece_length).answer(&range));
                    lies.send_modify(|n| *n += 1);
                    let Some(mut answer) = answer.filter(|_| answers == HashAnswers::Flipped)
                    else {
                        Message::HashReject(request).encode_into(&mut out);
                        continue;
                    };
                    answer[0][0] ^= 1;
                    Message::Hashes {
                        request,
                        hashes: answer.concat().into(),
                    }
                    .encode_into(&mut out);
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => return,
            }
        }
        if stream.write_all(&out).await.is_err() {
            return;
        }
        out.clear();
        match stream.read(&mut buf).await {
            Ok(n) if n > 0 => decoder.feed(&buf[..n]),
            _ => return,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_whose_hashes_fail_their_proof_is_dropped_and_the_magnet_completes() {
    let generated = Generated::new(MetaVersion::V2);
    let mut liar = LyingSeeder::start(&generated.torrent, ip(38, 4), HashAnswers::Flipped).await;
    let out = tempfile::tempdir().unwrap();
    // The liar alone first: it delivers the metadata, then lies about the piece layers.
    let peer = SporePeer::start(
        Source::Magnet(Box::new(generated.magnet())),
        options(ip(38, 3), out.path(), vec![liar.addr], 38),
    );
    tokio::time::timeout(DOWNLOAD_TIMEOUT, liar.lies.wait_for(|n| *n > 0))
        .await
        .expect("no hash request reached the liar in time")
        .unwrap();
    // Then an honest seeder: the piece layers come from it.
    let honest =
        SporePeer::seed_in(&generated.torrent_path, generated.data(), ip(38, 2), vec![]).await;
    peer.peer_feed.send(honest.addr()).await.unwrap();
    let summary = peer.join().await;
    assert!(summary.complete);
    assert_eq!(summary.hash_failures, 0);
    assert_same_content_as(&generated.torrent, out.path(), generated.data());
    // Dropped after its lies, the liar was never dialled again (the swarm dials only the
    // peers it is told about: the honest one).
    assert_eq!(
        liar.connections.load(std::sync::atomic::Ordering::SeqCst),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v2_magnet_whose_peers_reject_hash_requests_fails_with_a_clear_error() {
    let generated = Generated::new(MetaVersion::V2);
    let seeder = LyingSeeder::start(&generated.torrent, ip(41, 4), HashAnswers::Rejected).await;
    let out = tempfile::tempdir().unwrap();
    let mut options = options(ip(41, 3), out.path(), vec![seeder.addr], 41);
    // Nothing will answer: a short limit keeps the test short.
    options.metadata_timeout = std::time::Duration::from_secs(5);
    let peer = SporePeer::start(Source::Magnet(Box::new(generated.magnet())), options);
    // After the metadata, the piece layers wait for an answer until the fetch's time limit.
    let error = peer.join_err().await;
    assert!(
        matches!(error, node::swarm::Error::PieceLayersTimeout(_)),
        "{error}"
    );
    assert!(
        error.to_string().contains("BEP 52 hash requests"),
        "{error}"
    );
    assert!(*seeder.lies.borrow() > 0);
}
