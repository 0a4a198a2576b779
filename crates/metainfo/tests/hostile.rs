//! Hostile and malformed torrents: each is refused with a clear error, never a panic.

mod common;

use bencode::Owned;
use metainfo::{Error, Info, Torrent};

/// A v1 multi-file torrent document with these `(path, length)` files and a valid number of
/// (dummy) piece hashes.
fn v1_torrent(name: &str, files: &[(&[&str], i64)], piece_length: i64) -> Owned {
    let list = files
        .iter()
        .map(|(path, length)| {
            Owned::dict().with("length", *length).with(
                "path",
                Owned::List(path.iter().map(|c| Owned::from(*c)).collect()),
            )
        })
        .collect::<Vec<_>>();
    // Overflowing totals get one dummy hash: the size check must fire before the hash count.
    let total = files
        .iter()
        .try_fold(0i64, |sum, (_, l)| sum.checked_add((*l).max(0)));
    let pieces = total.map_or(1, |t| (t + piece_length.max(1) - 1) / piece_length.max(1));
    let info = Owned::dict()
        .with("name", name)
        .with("piece length", piece_length)
        .with("files", Owned::List(list))
        .with("pieces", vec![0u8; pieces as usize * 20]);
    Owned::dict().with("info", info)
}

fn parse(doc: &Owned) -> Result<Torrent, Error> {
    Torrent::from_bytes(&doc.to_bytes())
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(common::shared().join("fixtures/torrents").join(name)).unwrap()
}

#[test]
fn a_valid_baseline_parses() {
    let doc = v1_torrent("t", &[(&["a"], 10), (&["d", "b"], 20)], 16384);
    let torrent = parse(&doc).unwrap();
    assert_eq!(torrent.info.files()[1].display_path(), "t/d/b");
}

#[test]
fn path_traversal_names_are_refused() {
    let cases: [&[&str]; 9] = [
        &[".."],
        &["..", "etc", "passwd"],
        &["/etc/passwd"],
        &["a/../../b"],
        &["a", "..", "..", "b"],
        &["nul\0byte"],
        &[""],
        &["a", ""],
        &[],
    ];
    for path in cases {
        let err = parse(&v1_torrent("t", &[(path, 10)], 16384)).unwrap_err();
        assert!(matches!(err, Error::UnsafePath { .. }), "{path:?}: {err}");
        assert!(err.to_string().starts_with("unsafe file path"), "{err}");
    }
    for name in ["..", ".", "", "a/b", "C:"] {
        let err = parse(&v1_torrent(name, &[(&["a"], 10)], 16384)).unwrap_err();
        assert!(matches!(err, Error::UnsafePath { .. }), "{name:?}: {err}");
    }
    // The same in a v2 file tree.
    let leaf = Owned::dict().with("", Owned::dict().with("length", 0i64));
    let tree = Owned::dict().with("..", Owned::dict().with("x", leaf));
    let info = Owned::dict()
        .with("name", "t")
        .with("piece length", 16384i64)
        .with("meta version", 2i64)
        .with("file tree", tree);
    let err = Info::from_bytes(&info.to_bytes()).unwrap_err();
    assert!(matches!(err, Error::UnsafePath { .. }), "{err}");
}

#[test]
fn duplicate_and_conflicting_paths_are_refused() {
    let err = parse(&v1_torrent("t", &[(&["a"], 1), (&["a"], 1)], 16384)).unwrap_err();
    assert!(err.to_string().contains("duplicate"), "{err}");
    let err = parse(&v1_torrent("t", &[(&["a"], 1), (&["a", "b"], 1)], 16384)).unwrap_err();
    assert!(
        err.to_string().contains("both a file and a directory"),
        "{err}"
    );
}

#[test]
fn bad_sizes_are_refused() {
    for (files, piece_length, needle) in [
        (&[(&["a"][..], -1i64)][..], 16384i64, "negative"),
        (&[(&["a"][..], 10)], 0, "piece length"),
        (&[(&["a"][..], 10)], -16384, "piece length"),
        (&[(&["a"][..], 10)], 1 << 40, "piece length"),
        (
            &[(&["a"][..], i64::MAX), (&["b"][..], i64::MAX)],
            1 << 20,
            "overflow",
        ),
        (&[(&["a"][..], 0)], 16384, "no data"),
    ] {
        let err = parse(&v1_torrent("t", files, piece_length)).unwrap_err();
        assert!(err.to_string().contains(needle), "{needle}: {err}");
    }
}

#[test]
fn piece_hashes_must_fit_the_content() {
    let mut doc = v1_torrent("t", &[(&["a"], 40_000)], 16384);
    if let Owned::Dict(top) = &mut doc {
        if let Some(Owned::Dict(info)) = top.get_mut(b"info".as_slice()) {
            info.insert(b"pieces".to_vec(), Owned::Bytes(vec![0; 59]));
        }
    }
    let err = parse(&doc).unwrap_err();
    assert!(err.to_string().contains("multiple of 20"), "{err}");
    if let Owned::Dict(top) = &mut doc {
        if let Some(Owned::Dict(info)) = top.get_mut(b"info".as_slice()) {
            info.insert(b"pieces".to_vec(), Owned::Bytes(vec![0; 40]));
        }
    }
    let err = parse(&doc).unwrap_err();
    assert!(err.to_string().contains("2 hashes for 3 pieces"), "{err}");
}

#[test]
fn v2_piece_length_rules() {
    for piece_length in [0i64, 8192, 3 * 16384, 16384 + 1] {
        let leaf = Owned::dict().with(
            "",
            Owned::dict()
                .with("length", 5i64)
                .with("pieces root", vec![1u8; 32]),
        );
        let info = Owned::dict()
            .with("name", "f")
            .with("piece length", piece_length)
            .with("meta version", 2i64)
            .with("file tree", Owned::dict().with("f", leaf));
        let err = Info::from_bytes(&info.to_bytes()).unwrap_err();
        assert!(
            err.to_string().contains("piece length"),
            "{piece_length}: {err}"
        );
    }
}

/// The v2 multi-file fixture with its piece layers replaced.
fn with_layers(layers: Owned) -> Result<Torrent, Error> {
    let torrent = Torrent::from_bytes(&fixture("libtorrent-v2-multi.torrent")).unwrap();
    let doc = Owned::dict()
        .with("info", Owned::Raw(torrent.info.info_bytes().to_vec()))
        .with("piece layers", layers);
    parse(&doc)
}

#[test]
fn wrong_piece_layers_are_refused() {
    let torrent = Torrent::from_bytes(&fixture("libtorrent-v2-multi.torrent")).unwrap();
    let (root, layer) = torrent.piece_layers().iter().next().unwrap();
    let good: Vec<u8> = layer.concat();
    assert!(with_layers(Owned::dict().with_bytes_key(root, good.clone())).is_ok());
    let cases = [
        (Owned::dict(), "missing"),
        (
            Owned::dict().with_bytes_key(root, good[..good.len() - 1].to_vec()),
            "multiple of 32",
        ),
        (
            Owned::dict().with_bytes_key(root, good[..32].to_vec()),
            "1 hashes for 2 pieces",
        ),
        (
            Owned::dict().with_bytes_key(root, [good.clone(), vec![0; 32]].concat()),
            "3 hashes",
        ),
        (
            Owned::dict().with_bytes_key(root, vec![9; good.len()]),
            "does not hash",
        ),
        (
            Owned::dict().with_bytes_key(&[1; 31], good.clone()),
            "32-byte",
        ),
        (Owned::Int(1), "piece layers"),
    ];
    for (layers, needle) in cases {
        let err = with_layers(layers).unwrap_err();
        assert!(err.to_string().contains(needle), "{needle}: {err}");
    }
}

/// Builder helper for binary dictionary keys.
trait WithBytesKey {
    fn with_bytes_key(self, key: &[u8], value: Vec<u8>) -> Owned;
}

impl WithBytesKey for Owned {
    fn with_bytes_key(mut self, key: &[u8], value: Vec<u8>) -> Owned {
        if let Owned::Dict(map) = &mut self {
            map.insert(key.to_vec(), Owned::Bytes(value));
        }
        self
    }
}

#[test]
fn hybrid_disagreements_are_refused() {
    // Swap the file tree of the hybrid fixture for the v2 single one's: the v1 list disagrees.
    let hybrid = bencode::decode(&fixture("libtorrent-hybrid-multi.torrent"))
        .unwrap()
        .to_owned_value();
    let single = bencode::decode(&fixture("libtorrent-v2-single.torrent"))
        .unwrap()
        .to_owned_value();
    let (Owned::Dict(mut top), Owned::Dict(single_top)) = (hybrid, single) else {
        panic!("torrents are dictionaries")
    };
    let Some(Owned::Dict(single_info)) = single_top.get(b"info".as_slice()) else {
        panic!()
    };
    let Some(Owned::Dict(info)) = top.get_mut(b"info".as_slice()) else {
        panic!()
    };
    info.insert(
        b"file tree".to_vec(),
        single_info[b"file tree".as_slice()].clone(),
    );
    let err = parse(&Owned::Dict(top)).unwrap_err();
    assert!(matches!(err, Error::Hybrid(_)), "{err}");
}

#[test]
fn truncated_torrents_are_refused() {
    for name in [
        "libtorrent-hybrid-multi.torrent",
        "libtorrent-v1-single.torrent",
    ] {
        let bytes = fixture(name);
        for len in (0..bytes.len()).step_by(7) {
            assert!(
                Torrent::from_bytes(&bytes[..len]).is_err(),
                "{name} at {len}"
            );
        }
    }
}

#[test]
fn malformed_bencode_is_refused_with_its_reason() {
    let deep = format!("d4:info{}{}e", "l".repeat(100_000), "e".repeat(100_000));
    for (input, needle) in [
        (deep.as_bytes(), "nesting deeper"),
        (
            b"d4:infod4:name1:a6:lengthi1e12:piece lengthi1e6:pieces20:aaaaaaaaaaaaaaaaaaaaee",
            "not sorted",
        ),
        (
            b"d4:infod6:lengthi99999999999999999999999ee",
            "invalid integer",
        ),
        (b"d4:info999999999999:x", "exceeds"),
        (b"i1e", "info"),
        (b"d4:infoi1ee", "info"),
    ] {
        let err = Torrent::from_bytes(input).unwrap_err();
        assert!(err.to_string().contains(needle), "{needle}: {err}");
    }
}
