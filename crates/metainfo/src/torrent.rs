//! A .torrent file: the info dictionary plus trackers (BEP 12), web seeds (BEP 19), descriptive
//! fields and, for v2, the piece layers (BEP 52).

use std::collections::BTreeMap;

use bencode::{Limits, Owned, Value};

use crate::error::Error;
use crate::file_tree::text;
use crate::info::Info;
use crate::magnet::Magnet;
use crate::merkle::{root_from_piece_layer, verify_piece_v1, verify_piece_v2, Sha256Hash};

/// A parsed .torrent file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Torrent {
    /// The info dictionary.
    pub info: Info,
    /// `announce`: the primary tracker.
    pub announce: Option<String>,
    /// `announce-list` (BEP 12): tiers of trackers, tried tier by tier.
    pub announce_list: Vec<Vec<String>>,
    /// `url-list` (BEP 19): web seeds.
    pub url_list: Vec<String>,
    /// `comment`.
    pub comment: Option<String>,
    /// `created by`.
    pub created_by: Option<String>,
    /// `creation date`, seconds since the Unix epoch.
    pub creation_date: Option<i64>,
    piece_layers: BTreeMap<Sha256Hash, Vec<Sha256Hash>>,
}

impl Torrent {
    /// Parses a .torrent file. The info dictionary is kept byte for byte; v2 piece layers are
    /// checked against the files' `pieces root`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Torrent, Error> {
        let value = bencode::decode_with(bytes, Limits::DEFAULT)?;
        let dict = value.as_dict().ok_or(Error::Missing("info"))?;
        let info_value = dict.get(b"info").ok_or(Error::Missing("info"))?;
        let info_dict = info_value.as_dict().ok_or(Error::Missing("info"))?;
        let info = Info::from_dict(info_dict, info_value.raw())?;

        let strings = |v: &Value<'_>| -> Vec<String> {
            match v.as_list() {
                Some(list) => list.iter().filter_map(|s| s.as_bytes().map(text)).collect(),
                None => v.as_bytes().map(text).into_iter().collect(),
            }
        };
        let announce_list = dict
            .get_list("announce-list")
            .map(|tiers| {
                tiers
                    .iter()
                    .map(strings)
                    .filter(|tier| !tier.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let piece_layers = match dict.get(b"piece layers") {
            Some(layers) if info.version().has_v2() => parse_piece_layers(layers)?,
            _ => BTreeMap::new(),
        };
        let torrent = Torrent {
            info,
            announce: dict.get_bytes("announce").map(text),
            announce_list,
            url_list: dict.get(b"url-list").map(strings).unwrap_or_default(),
            comment: dict.get_bytes("comment").map(text),
            created_by: dict.get_bytes("created by").map(text),
            creation_date: dict.get_int("creation date"),
            piece_layers,
        };
        torrent.check_piece_layers()?;
        Ok(torrent)
    }

    /// A torrent around `info` and its piece layers (keyed by `pieces root`), checked like a
    /// parsed one.
    pub fn new(
        info: Info,
        piece_layers: BTreeMap<Sha256Hash, Vec<Sha256Hash>>,
    ) -> Result<Torrent, Error> {
        let torrent = Torrent {
            info,
            announce: None,
            announce_list: Vec::new(),
            url_list: Vec::new(),
            comment: None,
            created_by: None,
            creation_date: None,
            piece_layers,
        };
        torrent.check_piece_layers()?;
        Ok(torrent)
    }

    /// Every v2 file longer than one piece needs its layer, of one hash per piece, hashing up to
    /// its `pieces root`.
    fn check_piece_layers(&self) -> Result<(), Error> {
        for (file, pieces) in self.info.files_needing_layers() {
            let Some(root) = file.pieces_root else {
                continue;
            };
            let layer = self.piece_layers.get(&root).ok_or_else(|| {
                Error::PieceLayers(format!("missing for `{}`", file.display_path()))
            })?;
            if layer.len() as u64 != pieces {
                return Err(Error::PieceLayers(format!(
                    "`{}` has {} hashes for {pieces} pieces",
                    file.display_path(),
                    layer.len()
                )));
            }
            if root_from_piece_layer(layer, self.info.piece_length()) != root {
                return Err(Error::PieceLayers(format!(
                    "the layer of `{}` does not hash to its pieces root",
                    file.display_path()
                )));
            }
        }
        Ok(())
    }

    /// The trackers as BEP 12 tiers: `announce-list` when present, else `announce` alone.
    pub fn trackers(&self) -> Vec<Vec<String>> {
        if !self.announce_list.is_empty() {
            self.announce_list.clone()
        } else {
            self.announce.iter().map(|a| vec![a.clone()]).collect()
        }
    }

    /// The piece layer (one SHA-256 per piece) of the file whose `pieces root` is `root`.
    pub fn piece_layer(&self, root: &Sha256Hash) -> Option<&[Sha256Hash]> {
        self.piece_layers.get(root).map(Vec::as_slice)
    }

    /// All piece layers, keyed by `pieces root`.
    pub fn piece_layers(&self) -> &BTreeMap<Sha256Hash, Vec<Sha256Hash>> {
        &self.piece_layers
    }

    /// The expected v2 hash of piece `index`: its piece-layer entry, or the file's `pieces root`
    /// when the file is at most one piece long.
    pub fn piece_hash_v2(&self, index: u32) -> Option<Sha256Hash> {
        let (file, piece_in_file) = self.info.piece_file(index)?;
        let entry = &self.info.files()[file];
        let root = entry.pieces_root?;
        if entry.length <= self.info.piece_length() {
            return Some(root);
        }
        self.piece_layer(&root)?
            .get(piece_in_file as usize)
            .copied()
    }

    /// Whether `data`, piece `index` as laid out in the byte stream (pad bytes included, so
    /// [`Info::piece_size`] long), matches every hash the torrent has for it: SHA-1 for v1 and
    /// hybrid, the merkle piece hash for v2 and hybrid.
    pub fn verify_piece(&self, index: u32, data: &[u8]) -> bool {
        let info = &self.info;
        if info.piece_size(index) != Some(data.len() as u64) {
            return false;
        }
        if info.version().has_v1() {
            match info.piece_hashes_v1().get(index as usize) {
                Some(expected) if verify_piece_v1(data, expected) => {}
                _ => return false,
            }
        }
        if info.version().has_v2() {
            let (Some((file, _)), Some(expected)) =
                (info.piece_file(index), self.piece_hash_v2(index))
            else {
                return false;
            };
            let entry = &info.files()[file];
            let start = u64::from(index) * info.piece_length();
            let file_bytes = (entry.offset + entry.length - start).min(data.len() as u64) as usize;
            let (payload, padding) = data.split_at(file_bytes);
            if padding.iter().any(|b| *b != 0)
                || !verify_piece_v2(payload, info.piece_length(), entry.length, &expected)
            {
                return false;
            }
        }
        true
    }

    /// The magnet link (BEP 9 / BEP 52) with name, trackers and web seeds, as libtorrent makes it.
    pub fn magnet(&self) -> Magnet {
        Magnet {
            info_hashes: self.info.info_hashes(),
            display_name: Some(self.info.name().to_string()),
            trackers: self.trackers().into_iter().flatten().collect(),
            web_seeds: self.url_list.clone(),
            peers: Vec::new(),
            select_only: Vec::new(),
        }
    }

    /// The bencoded torrent. The info dictionary is written verbatim, so the info-hashes of the
    /// output equal this torrent's.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut dict = Owned::dict().with("info", Owned::Raw(self.info.info_bytes().to_vec()));
        if let Some(announce) = &self.announce {
            dict.insert("announce", announce.as_str());
        }
        if !self.announce_list.is_empty() {
            let tiers = self
                .announce_list
                .iter()
                .map(|tier| Owned::List(tier.iter().map(|t| Owned::from(t.as_str())).collect()))
                .collect::<Vec<_>>();
            dict.insert("announce-list", Owned::List(tiers));
        }
        if let Some(comment) = &self.comment {
            dict.insert("comment", comment.as_str());
        }
        if let Some(created_by) = &self.created_by {
            dict.insert("created by", created_by.as_str());
        }
        if let Some(date) = self.creation_date {
            dict.insert("creation date", Owned::Int(date));
        }
        match self.url_list.as_slice() {
            [] => {}
            [one] => dict.insert("url-list", one.as_str()),
            many => dict.insert(
                "url-list",
                Owned::List(many.iter().map(|u| Owned::from(u.as_str())).collect()),
            ),
        }
        if self.info.version().has_v2() {
            let layers = self
                .piece_layers
                .iter()
                .map(|(root, layer)| (root.to_vec(), Owned::Bytes(layer.concat())))
                .collect();
            dict.insert("piece layers", Owned::Dict(layers));
        }
        dict.to_bytes()
    }
}

fn parse_piece_layers(layers: &Value<'_>) -> Result<BTreeMap<Sha256Hash, Vec<Sha256Hash>>, Error> {
    let dict = layers.as_dict().ok_or(Error::Missing("piece layers"))?;
    dict.iter()
        .map(|(root, layer)| {
            let root: Sha256Hash = root
                .try_into()
                .map_err(|_| Error::PieceLayers("a key is not a 32-byte pieces root".into()))?;
            let bytes = layer
                .as_bytes()
                .ok_or_else(|| Error::PieceLayers("a layer is not a byte string".into()))?;
            if !bytes.len().is_multiple_of(32) {
                return Err(Error::PieceLayers(format!(
                    "a layer of {} bytes is not a multiple of 32",
                    bytes.len()
                )));
            }
            let hashes = bytes
                .chunks_exact(32)
                .map(|h| h.try_into().expect("chunks of 32"))
                .collect();
            Ok((root, hashes))
        })
        .collect()
}
