//! Every torrent made by libtorrent, mktorrent and transmission-create in shared/fixtures parses
//! to exactly what libtorrent reads from it (expected.json).

mod common;

use metainfo::{Magnet, Torrent};

fn hex_or_null<T: ToString>(hash: Option<T>) -> serde_json::Value {
    hash.map_or(serde_json::Value::Null, |h| h.to_string().into())
}

#[test]
fn every_fixture_parses_to_what_libtorrent_reads() {
    let expected = common::expected();
    let fixtures = expected.as_object().expect("an object of torrents");
    assert!(fixtures.len() >= 10, "fixtures are missing");
    for (file, want) in fixtures {
        let bytes = std::fs::read(common::shared().join("fixtures/torrents").join(file)).unwrap();
        let torrent = Torrent::from_bytes(&bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
        let info = &torrent.info;
        let hashes = info.info_hashes();
        assert_eq!(hex_or_null(hashes.v1), want["info_hash_v1"], "{file} v1");
        assert_eq!(hex_or_null(hashes.v2), want["info_hash_v2"], "{file} v2");
        assert_eq!(info.name(), want["name"], "{file}");
        assert_eq!(info.piece_length(), want["piece_length"], "{file}");
        assert_eq!(info.num_pieces(), want["num_pieces"], "{file}");
        assert_eq!(info.total_size(), want["total_size"], "{file}");
        let files: Vec<serde_json::Value> = info
            .files()
            .iter()
            .map(|f| {
                serde_json::json!({ "path": f.display_path(), "size": f.length, "pad": f.is_pad() })
            })
            .collect();
        assert_eq!(
            serde_json::Value::from(files),
            want["files"],
            "{file} files"
        );
        // Offsets are contiguous and pieces cover the stream exactly.
        let mut offset = 0;
        for f in info.files() {
            assert_eq!(f.offset, offset, "{file}");
            offset += f.length;
        }
        let sizes: u64 = (0..info.num_pieces())
            .map(|i| info.piece_size(i).unwrap())
            .sum();
        assert_eq!(sizes, info.total_size(), "{file}");
        assert_eq!(info.piece_size(info.num_pieces()), None);
    }
}

#[test]
fn re_encoding_the_info_dictionary_reproduces_the_info_hash() {
    for (file, want) in common::expected().as_object().unwrap() {
        let bytes = std::fs::read(common::shared().join("fixtures/torrents").join(file)).unwrap();
        let torrent = Torrent::from_bytes(&bytes).unwrap();
        let decoded = bencode::decode(torrent.info.info_bytes()).unwrap();
        let re_encoded = decoded.to_owned_value().to_bytes();
        let again = metainfo::Info::from_bytes(&re_encoded).unwrap();
        assert_eq!(
            hex_or_null(again.info_hashes().v1),
            want["info_hash_v1"],
            "{file}"
        );
        assert_eq!(
            hex_or_null(again.info_hashes().v2),
            want["info_hash_v2"],
            "{file}"
        );
        // Writing the whole torrent back gives a torrent that parses to the same thing.
        let written = torrent.to_bytes();
        assert_eq!(Torrent::from_bytes(&written).unwrap(), torrent, "{file}");
    }
}

#[test]
fn magnets_match_libtorrent() {
    for (file, want) in common::expected().as_object().unwrap() {
        let bytes = std::fs::read(common::shared().join("fixtures/torrents").join(file)).unwrap();
        let torrent = Torrent::from_bytes(&bytes).unwrap();
        let link = want["magnet"].as_str().unwrap();
        let magnet: Magnet = link.parse().unwrap();
        assert_eq!(magnet.info_hashes, torrent.info.info_hashes(), "{file}");
        assert_eq!(magnet.display_name.as_deref(), Some(torrent.info.name()));
        // The same parameters in the same order and escaping as libtorrent's make_magnet_uri.
        assert_eq!(torrent.magnet().to_string(), link, "{file}");
    }
}

#[test]
fn fixture_pieces_verify_against_the_content() {
    // Every piece of every libtorrent fixture verifies against the seeded content, for v1
    // (SHA-1) and v2 (merkle piece layers) alike; a flipped byte fails.
    let content = common::shared().join("fixtures/content");
    for (file, want) in common::expected().as_object().unwrap() {
        if !file.starts_with("libtorrent-") {
            continue;
        }
        let bytes = std::fs::read(common::shared().join("fixtures/torrents").join(file)).unwrap();
        let torrent = Torrent::from_bytes(&bytes).unwrap();
        let mut stream = Vec::new();
        for f in torrent.info.files() {
            if f.is_pad() {
                stream.resize(stream.len() + f.length as usize, 0);
            } else {
                stream.extend(std::fs::read(content.join(f.path.join("/"))).unwrap());
            }
        }
        assert_eq!(stream.len() as u64, want["total_size"]);
        let piece_length = torrent.info.piece_length() as usize;
        for (i, piece) in stream.chunks(piece_length).enumerate() {
            assert!(torrent.verify_piece(i as u32, piece), "{file} piece {i}");
            let mut bad = piece.to_vec();
            bad[0] ^= 1;
            assert!(!torrent.verify_piece(i as u32, &bad), "{file} piece {i}");
        }
    }
}
