//! The info dictionary: what a torrent's identity is computed from.

use bencode::{Dict, Limits};

use crate::error::Error;
use crate::file_tree::{
    assign_offsets, check_paths, text, v1_files, v1_single, v2_file_tree, with_pad_files, FileEntry,
};
use crate::info_hash::InfoHashes;
use crate::merkle::{Sha256Hash, BLOCK_SIZE};
use crate::path::check_component;

/// Largest piece length accepted: 512 MiB. A peer must buffer whole pieces, so a torrent may not
/// ask for more.
pub const PIECE_LENGTH_MAX: u64 = 512 * 1024 * 1024;

/// Which BitTorrent metadata versions a torrent carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetaVersion {
    /// BEP 3 only: SHA-1 piece hashes, one info-hash of 20 bytes.
    V1,
    /// BEP 52 only: per-file SHA-256 merkle trees.
    V2,
    /// Both, describing the same bytes (BEP 52 "hybrid"), with BEP 47 pad files.
    Hybrid,
}

impl MetaVersion {
    /// Whether v1 data (`pieces`, `files`/`length`) is present.
    pub fn has_v1(self) -> bool {
        self != MetaVersion::V2
    }

    /// Whether v2 data (`meta version` 2, `file tree`) is present.
    pub fn has_v2(self) -> bool {
        self != MetaVersion::V1
    }
}

/// A parsed info dictionary, with its exact bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Info {
    name: String,
    piece_length: u64,
    version: MetaVersion,
    multi_file: bool,
    files: Vec<FileEntry>,
    total_size: u64,
    num_pieces: u32,
    piece_hashes_v1: Vec<[u8; 20]>,
    private: bool,
    source: Option<String>,
    info_bytes: Vec<u8>,
    info_hashes: InfoHashes,
}

impl Info {
    /// Parses a bencoded info dictionary (as a BEP 9 metadata exchange delivers it).
    pub fn from_bytes(info_bytes: &[u8]) -> Result<Info, Error> {
        let value = bencode::decode_with(info_bytes, Limits::DEFAULT)?;
        let dict = value.as_dict().ok_or(Error::Missing("info"))?;
        Info::from_dict(dict, info_bytes)
    }

    pub(crate) fn from_dict(info: &Dict<'_>, info_bytes: &[u8]) -> Result<Info, Error> {
        let name = text(info.get_bytes("name").ok_or(Error::Missing("name"))?);
        check_component(&name, std::slice::from_ref(&name))?;
        let piece_length = info
            .get_int("piece length")
            .ok_or(Error::Missing("piece length"))?;
        let piece_length = u64::try_from(piece_length)
            .ok()
            .filter(|p| (1..=PIECE_LENGTH_MAX).contains(p))
            .ok_or_else(|| {
                Error::invalid(
                    "piece length",
                    format!("{piece_length} is not between 1 and {PIECE_LENGTH_MAX}"),
                )
            })?;
        let has_v2 = match info.get(b"meta version") {
            None => false,
            Some(v) if v.as_int() == Some(2) => true,
            Some(v) => {
                return Err(Error::invalid(
                    "meta version",
                    format!("unsupported version {v:?}"),
                ))
            }
        };
        let has_v1 = info.get(b"pieces").is_some();
        let version = match (has_v1, has_v2) {
            (true, true) => MetaVersion::Hybrid,
            (true, false) => MetaVersion::V1,
            (false, true) => MetaVersion::V2,
            (false, false) => return Err(Error::Missing("pieces")),
        };
        if has_v2 && !(piece_length.is_power_of_two() && piece_length >= BLOCK_SIZE as u64) {
            return Err(Error::invalid(
                "piece length",
                format!("{piece_length} must be a power of two of at least 16 KiB in a v2 torrent"),
            ));
        }

        let v1 = if has_v1 {
            Some(match info.get(b"files") {
                Some(list) => (
                    v1_files(list.as_list().ok_or(Error::Missing("files"))?, &name)?,
                    true,
                ),
                None => (v1_single(info, &name)?, false),
            })
        } else {
            None
        };
        let v2 = if has_v2 {
            let tree = info
                .get_dict("file tree")
                .ok_or(Error::Missing("file tree"))?;
            Some(v2_file_tree(tree, &name)?)
        } else {
            None
        };
        let (mut files, multi_file) = match (v1, v2) {
            (Some((v1_files, multi)), Some(v2_files)) => (merge_hybrid(v1_files, v2_files)?, multi),
            (Some(v1), None) => v1,
            (None, Some(v2_files)) => {
                let multi = !(v2_files.len() == 1 && v2_files[0].path.len() == 1);
                (with_pad_files(v2_files, &name, piece_length), multi)
            }
            (None, None) => unreachable!("version requires v1 or v2 data"),
        };
        check_paths(&files)?;
        let total_size = assign_offsets(&mut files)?;
        if total_size == 0 {
            return Err(Error::invalid("length", "the torrent holds no data"));
        }
        if version == MetaVersion::Hybrid {
            check_aligned(&files, piece_length)?;
        }
        let num_pieces = u32::try_from(total_size.div_ceil(piece_length))
            .map_err(|_| Error::invalid("piece length", "more than 2^32 pieces"))?;

        let piece_hashes_v1 = if has_v1 {
            let pieces = info.get_bytes("pieces").ok_or(Error::Missing("pieces"))?;
            if !pieces.len().is_multiple_of(20) {
                return Err(Error::invalid("pieces", "length is not a multiple of 20"));
            }
            if pieces.len() / 20 != num_pieces as usize {
                return Err(Error::invalid(
                    "pieces",
                    format!(
                        "{} hashes for {num_pieces} pieces of {total_size} bytes",
                        pieces.len() / 20
                    ),
                ));
            }
            pieces
                .chunks_exact(20)
                .map(|h| h.try_into().expect("chunks of 20"))
                .collect()
        } else {
            Vec::new()
        };

        Ok(Info {
            info_hashes: InfoHashes::of(info_bytes, has_v1, has_v2),
            name,
            piece_length,
            version,
            multi_file,
            files,
            total_size,
            num_pieces,
            piece_hashes_v1,
            private: info.get_int("private") == Some(1),
            source: info.get_bytes("source").map(text),
            info_bytes: info_bytes.to_vec(),
        })
    }

    /// The torrent's name: the file name of a single-file torrent, the top directory otherwise.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Bytes per piece (the last piece may be shorter).
    pub fn piece_length(&self) -> u64 {
        self.piece_length
    }

    /// v1, v2 or hybrid.
    pub fn version(&self) -> MetaVersion {
        self.version
    }

    /// Whether this is a multi-file torrent (files live under a directory named [`Info::name`]).
    pub fn is_multi_file(&self) -> bool {
        self.multi_file
    }

    /// The files in byte-stream order with their offsets, BEP 47 pad files included and marked.
    /// For v2-only torrents the pad files are implied by BEP 52's piece alignment and added
    /// here the way libtorrent shows them.
    pub fn files(&self) -> &[FileEntry] {
        &self.files
    }

    /// Size of the byte stream, pad files included.
    pub fn total_size(&self) -> u64 {
        self.total_size
    }

    /// Number of pieces.
    pub fn num_pieces(&self) -> u32 {
        self.num_pieces
    }

    /// Size of piece `index` in the byte stream (pad bytes included), or `None` past the end.
    pub fn piece_size(&self, index: u32) -> Option<u64> {
        (index < self.num_pieces).then(|| {
            let start = u64::from(index) * self.piece_length;
            (self.total_size - start).min(self.piece_length)
        })
    }

    /// The v1 SHA-1 piece hashes (empty for v2-only torrents).
    pub fn piece_hashes_v1(&self) -> &[[u8; 20]] {
        &self.piece_hashes_v1
    }

    /// BEP 27 private flag: peers only from the torrent's trackers (no DHT, PEX or LSD).
    pub fn is_private(&self) -> bool {
        self.private
    }

    /// The `source` tag private trackers use to make otherwise equal torrents distinct.
    pub fn source(&self) -> Option<&str> {
        self.source.as_deref()
    }

    /// The exact bytes of the info dictionary as received; the info-hashes are their hashes.
    pub fn info_bytes(&self) -> &[u8] {
        &self.info_bytes
    }

    /// The v1 and/or v2 info-hashes.
    pub fn info_hashes(&self) -> InfoHashes {
        self.info_hashes
    }

    /// The index of the (non-pad) file that piece `index` belongs to, with the piece's index
    /// within that file, for v2 and hybrid torrents where pieces never span files.
    pub fn piece_file(&self, index: u32) -> Option<(usize, u32)> {
        if !self.version.has_v2() || index >= self.num_pieces {
            return None;
        }
        let start = u64::from(index) * self.piece_length;
        let file = self.files.partition_point(|f| f.offset + f.length <= start);
        let entry = self.files.get(file).filter(|f| !f.is_pad())?;
        Some((file, ((start - entry.offset) / self.piece_length) as u32))
    }

    /// The v2 files that need a piece layer (longer than one piece), with their piece counts.
    pub(crate) fn files_needing_layers(&self) -> impl Iterator<Item = (&FileEntry, u64)> + '_ {
        let piece_length = self.piece_length;
        self.files
            .iter()
            .filter(move |f| !f.is_pad() && f.length > piece_length)
            .map(move |f| (f, f.length.div_ceil(piece_length)))
    }

    /// `pieces root` of the v2 files, in file order.
    pub fn pieces_roots(&self) -> impl Iterator<Item = (&FileEntry, Sha256Hash)> + '_ {
        self.files
            .iter()
            .filter_map(|f| f.pieces_root.map(|root| (f, root)))
    }
}

/// Joins the v1 file list (with pad files) and the v2 file tree of a hybrid torrent, refusing
/// any disagreement in names, sizes or order.
fn merge_hybrid(
    mut v1_files: Vec<FileEntry>,
    v2_files: Vec<FileEntry>,
) -> Result<Vec<FileEntry>, Error> {
    let mut v2 = v2_files.into_iter();
    for file in v1_files.iter_mut().filter(|f| !f.is_pad()) {
        let other = v2.next().ok_or_else(|| {
            Error::Hybrid(format!("`{}` is not in the file tree", file.display_path()))
        })?;
        if other.path != file.path || other.length != file.length {
            return Err(Error::Hybrid(format!(
                "v1 file `{}` ({} bytes) differs from v2 file `{}` ({} bytes)",
                file.display_path(),
                file.length,
                other.display_path(),
                other.length
            )));
        }
        file.pieces_root = other.pieces_root;
    }
    if let Some(extra) = v2.next() {
        return Err(Error::Hybrid(format!(
            "`{}` is only in the file tree",
            extra.display_path()
        )));
    }
    Ok(v1_files)
}

/// In a hybrid torrent every non-empty file must start on a piece boundary.
fn check_aligned(files: &[FileEntry], piece_length: u64) -> Result<(), Error> {
    match files
        .iter()
        .find(|f| !f.is_pad() && f.length > 0 && f.offset % piece_length != 0)
    {
        Some(f) => Err(Error::Hybrid(format!(
            "`{}` does not start on a piece boundary",
            f.display_path()
        ))),
        None => Ok(()),
    }
}
