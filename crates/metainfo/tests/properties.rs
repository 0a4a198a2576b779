//! Property tests: magnet and torrent round trips, and parsers that never panic.

mod common;

use std::net::SocketAddr;

use bencode::Owned;
use metainfo::{InfoHashV1, InfoHashV2, InfoHashes, Magnet, Torrent};
use proptest::prelude::*;

fn info_hashes() -> impl Strategy<Value = InfoHashes> {
    (any::<Option<[u8; 20]>>(), any::<Option<[u8; 32]>>())
        .prop_filter("at least one hash", |(v1, v2)| v1.is_some() || v2.is_some())
        .prop_map(|(v1, v2)| InfoHashes {
            v1: v1.map(InfoHashV1),
            v2: v2.map(InfoHashV2),
        })
}

fn magnets() -> impl Strategy<Value = Magnet> {
    (
        info_hashes(),
        any::<Option<String>>(),
        prop::collection::vec(any::<String>(), 0..4),
        prop::collection::vec(any::<String>(), 0..3),
        prop::collection::vec(any::<SocketAddr>(), 0..3),
        prop::collection::vec((0u32..1000, 0u32..10), 0..4),
    )
        .prop_map(
            |(info_hashes, display_name, trackers, web_seeds, peers, so)| Magnet {
                info_hashes,
                display_name,
                trackers,
                web_seeds,
                // Socket addresses as they print and parse back (no IPv6 flow info or scope).
                peers: peers
                    .into_iter()
                    .map(|p| p.to_string().parse().unwrap())
                    .collect(),
                select_only: so.into_iter().map(|(a, n)| a..=a + n).collect(),
            },
        )
}

/// A safe path component.
fn component() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 _ü-]{1,12}"
        .prop_filter("not a drive prefix", |c| c.as_bytes().get(1) != Some(&b':'))
}

proptest! {
    #[test]
    fn magnet_round_trips(magnet in magnets()) {
        let text = magnet.to_string();
        let parsed: Magnet = text.parse().unwrap();
        prop_assert_eq!(parsed, magnet);
    }

    #[test]
    fn magnet_parsing_never_panics(text in ".{0,300}") {
        let _ = text.parse::<Magnet>();
        let _ = format!("magnet:?{text}").parse::<Magnet>();
    }

    #[test]
    fn torrent_write_parse_round_trips(
        files in prop::collection::btree_map(prop::collection::vec(component(), 1..3), 0u64..100_000, 1..6),
        trackers in prop::collection::vec(prop::collection::vec("[a-z:/.0-9]{1,30}", 1..3), 0..3),
        comment in any::<Option<String>>(),
        web_seeds in prop::collection::vec("[a-z:/.0-9]{1,30}", 0..3),
        private in any::<bool>(),
    ) {
        // Keep only paths that are not a prefix of another (a name is a file or a directory).
        let paths: Vec<_> = files.keys().cloned().collect();
        let files: Vec<_> = files
            .into_iter()
            .filter(|(p, _)| !paths.iter().any(|q| q.len() > p.len() && q.starts_with(p)))
            .collect();
        let total: u64 = files.iter().map(|(_, l)| l).sum();
        prop_assume!(total > 0);
        let piece_length = 16384u64;
        let list = files
            .iter()
            .map(|(path, length)| {
                Owned::dict().with("length", *length).with(
                    "path",
                    Owned::List(path.iter().map(|c| Owned::from(c.as_str())).collect()),
                )
            })
            .collect::<Vec<_>>();
        let mut info = Owned::dict()
            .with("name", "root")
            .with("piece length", piece_length)
            .with("files", Owned::List(list))
            .with("pieces", vec![7u8; (total.div_ceil(piece_length) * 20) as usize]);
        if private {
            info.insert("private", 1i64);
        }
        let torrent = Torrent::from_bytes(&Owned::dict().with("info", info).to_bytes()).unwrap();
        let mut torrent = torrent;
        torrent.announce = trackers.first().and_then(|t| t.first()).cloned();
        torrent.announce_list = trackers;
        torrent.comment = comment;
        torrent.url_list = web_seeds;
        let again = Torrent::from_bytes(&torrent.to_bytes()).unwrap();
        prop_assert_eq!(&again, &torrent);
        prop_assert_eq!(again.info.info_hashes(), torrent.info.info_hashes());
        prop_assert_eq!(again.info.total_size(), total);
    }

    #[test]
    fn parsing_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = Torrent::from_bytes(&bytes);
        let _ = metainfo::Info::from_bytes(&bytes);
    }

    #[test]
    fn parsing_mutated_fixtures_never_panics(
        which in 0usize..4,
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let name = [
            "libtorrent-hybrid-multi.torrent",
            "libtorrent-v2-single.torrent",
            "libtorrent-v1-private-webseed.torrent",
            "transmission-multi.torrent",
        ][which];
        let mut bytes = std::fs::read(common::shared().join("fixtures/torrents").join(name)).unwrap();
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        if let Ok(torrent) = Torrent::from_bytes(&bytes) {
            // Whatever parses is self-consistent.
            let sizes: u64 = (0..torrent.info.num_pieces()).map(|i| torrent.info.piece_size(i).unwrap()).sum();
            prop_assert_eq!(sizes, torrent.info.total_size());
            for file in torrent.info.files() {
                prop_assert!(metainfo::safe_relative_path(&file.path).is_ok());
            }
        }
    }
}
