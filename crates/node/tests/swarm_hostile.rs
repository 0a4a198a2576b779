//! Misbehaving peers, written here with the wire crate's codecs: a peer that sends corrupt
//! blocks is caught and banned while the download completes from an honest seeder, and peers
//! that send malformed or abusive messages are dropped without harm to anyone else.

mod swarm_support;

use std::net::SocketAddr;
use std::time::Duration;

use node::swarm::Source;
use swarm_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wire::{BlockRequest, Handshake, Message, Reserved};

/// How long spore may take to close a hostile connection.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_sending_corrupt_blocks_is_banned_and_the_download_completes() {
    let path = fixture("libtorrent-v1-single.torrent");
    let torrent = load_torrent(&path);
    let honest = SporePeer::seed(&path, ip(20, 2), vec![]).await;
    let hostile = HostilePeer::start(&torrent, ip(20, 4), Hostility::CorruptBlocks).await;
    let out = tempfile::tempdir().unwrap();
    let summary = spore_get(
        Source::Torrent(Box::new(torrent.clone())),
        ip(20, 3),
        out.path(),
        vec![hostile.addr, honest.addr()],
    )
    .await;
    assert!(summary.complete);
    assert_same_content(&torrent, out.path());
    assert!(summary.hash_failures >= 1, "{summary:?}");
    assert_eq!(summary.peers_banned, vec![hostile.addr.ip()], "{summary:?}");
    honest.finish().await;
}

/// What an abusive peer sends: a name, a replacement for the handshake, the bytes after it.
type AbuseCase = (&'static str, Option<Vec<u8>>, Vec<u8>);

/// Connects to `seeder` from `from`, sends a valid handshake (unless `raw_first` replaces it)
/// and then `bytes`, and asserts that spore closes the connection.
async fn assert_dropped_after(
    seeder: SocketAddr,
    from: std::net::IpAddr,
    torrent: &metainfo::Torrent,
    raw_first: Option<&[u8]>,
    bytes: &[u8],
) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from, 0)).unwrap();
    let mut stream = socket.connect(seeder).await.unwrap();
    let handshake = Handshake {
        reserved: Reserved::FAST.with(Reserved::EXTENSION_PROTOCOL),
        info_hash: torrent.info.info_hashes().wire_id(),
        peer_id: *b"-XX0001-abusive-peer",
    };
    match raw_first {
        Some(raw) => stream.write_all(raw).await.unwrap(),
        None => stream.write_all(&handshake.to_bytes()).await.unwrap(),
    }
    // The write may fail if spore already closed: that is the outcome we want.
    let _ = stream.write_all(bytes).await;
    let closed = tokio::time::timeout(CLOSE_TIMEOUT, async {
        let mut buf = vec![0u8; 64 * 1024];
        // Drains what spore sent (handshake, bitfield...) until it closes; bounded by the timeout.
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "spore kept a peer that sent {bytes:02x?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_messages_drop_that_peer_and_nothing_else() {
    let path = fixture("libtorrent-v1-multi.torrent");
    let torrent = load_torrent(&path);
    let pieces = torrent.info.num_pieces();
    let piece_len = torrent.info.piece_length() as u32;
    let seeder = SporePeer::seed(&path, ip(21, 2), vec![]).await;
    let encode = |messages: &[Message]| {
        let mut out = Vec::new();
        for m in messages {
            m.encode_into(&mut out);
        }
        out
    };
    let mut garbage_handshake = b"GET /announce HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
    garbage_handshake.resize(68, b'x');
    let mut other_torrent = Handshake {
        reserved: Reserved::default(),
        info_hash: [7; 20],
        peer_id: [1; 20],
    }
    .to_bytes()
    .to_vec();
    other_torrent.truncate(68);
    let cases: Vec<AbuseCase> = vec![
        ("garbage handshake", Some(garbage_handshake), vec![]),
        ("handshake for another torrent", Some(other_torrent), vec![]),
        (
            "length prefix of 4 GiB",
            None,
            vec![0xFF, 0xFF, 0xFF, 0xFF, 7, 0, 0],
        ),
        (
            "bitfield of the wrong size",
            None,
            encode(&[Message::Bitfield(
                vec![0xFF; pieces.div_ceil(8) as usize + 3].into(),
            )]),
        ),
        (
            "request for a piece that does not exist",
            None,
            encode(&[
                Message::Interested,
                Message::Request(BlockRequest {
                    index: pieces + 5,
                    begin: 0,
                    length: 16384,
                }),
            ]),
        ),
        (
            "request past the end of a piece",
            None,
            encode(&[
                Message::Interested,
                Message::Request(BlockRequest {
                    index: 0,
                    begin: piece_len - 100,
                    length: 16384,
                }),
            ]),
        ),
        (
            "request for an oversized block",
            None,
            encode(&[
                Message::Interested,
                Message::Request(BlockRequest {
                    index: 0,
                    begin: 0,
                    length: 128 * 1024,
                }),
            ]),
        ),
        (
            "have for a piece that does not exist",
            None,
            encode(&[Message::Have(pieces + 1)]),
        ),
        (
            "have-all without the fast extension",
            Some(
                Handshake {
                    reserved: Reserved::default(),
                    info_hash: torrent.info.info_hashes().wire_id(),
                    peer_id: *b"-XX0001-no-fast-peer",
                }
                .to_bytes()
                .to_vec(),
            ),
            encode(&[Message::HaveAll]),
        ),
    ];
    for (n, (what, raw, bytes)) in cases.iter().enumerate() {
        eprintln!("case: {what}");
        assert_dropped_after(
            seeder.addr(),
            ip(21, 10 + n as u8),
            &torrent,
            raw.as_deref(),
            bytes,
        )
        .await;
    }
    // Nothing else was harmed: an honest peer downloads everything from the same seeder.
    let out = tempfile::tempdir().unwrap();
    let summary = spore_get(
        Source::Torrent(Box::new(torrent.clone())),
        ip(21, 3),
        out.path(),
        vec![seeder.addr()],
    )
    .await;
    assert!(summary.complete);
    assert_same_content(&torrent, out.path());
    let served = seeder.finish().await;
    assert!(served.bytes_uploaded >= torrent.info.total_size());
}
