//! Creating torrents from files on disk, with the same info-hash libtorrent 2.0 gives for the
//! same content and settings.
//!
//! What libtorrent does, and so what this does:
//! - files are collected depth first in the order the operating system lists directories
//!   (`readdir`), symbolic links followed; a file whose directory entry has the owner's execute
//!   bit gets BEP 47 attribute `x` (libtorrent reads it with `lstat`, so a symlinked file is `x`);
//! - v2 and hybrid torrents (and v1 with [`FileOrder::Canonical`], libtorrent's
//!   `canonical_files`) sort files by path, component by component, byte order, and when there
//!   is more than one file put a BEP 47 pad file `.pad/<size>` after every non-empty file that
//!   does not end on a piece boundary, the last one included;
//! - the default piece length grows with the total size (16 KiB up to 8 MiB, see
//!   [`auto_piece_length`]); v2 piece lengths below 16 KiB are raised to 16 KiB;
//! - the first tracker is `announce`; with more than one, all go to `announce-list` in a single
//!   tier (libtorrent's default tier 0), so clients pick among them at random (BEP 12).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bencode::Owned;

use crate::error::Error;
use crate::file_tree::{assign_offsets, with_pad_files, FileAttributes, FileEntry};
use crate::hashing::{hash_pieces, Content};
use crate::info::{MetaVersion, PIECE_LENGTH_MAX};
use crate::merkle::{root_from_piece_layer, Sha256Hash, BLOCK_SIZE};
use crate::torrent::Torrent;

/// Deepest directory nesting followed while collecting files (guards against symlink loops).
const DIRECTORY_DEPTH_MAX: usize = 64;

/// The order of files in a v1 torrent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FileOrder {
    /// The order the file system lists directories in: libtorrent's default, so the same
    /// directory gives libtorrent's info-hash on this machine, but another file system may list
    /// it differently.
    #[default]
    Filesystem,
    /// Sorted by path with pad files, as libtorrent's `canonical_files` flag and every v2 and
    /// hybrid torrent: the same info-hash on every machine.
    Canonical,
}

/// What to put in a new torrent.
#[derive(Clone, Debug)]
pub struct CreateOptions {
    /// v1, v2 or hybrid.
    pub version: MetaVersion,
    /// Bytes per piece; `None` chooses like libtorrent ([`auto_piece_length`]).
    pub piece_length: Option<u64>,
    /// Tracker URLs: the first is `announce`, all of them `announce-list` when more than one.
    pub trackers: Vec<String>,
    /// Web seed URLs (BEP 19 `url-list`).
    pub web_seeds: Vec<String>,
    /// BEP 27 private flag.
    pub private: bool,
    /// `comment`.
    pub comment: Option<String>,
    /// `created by`.
    pub created_by: Option<String>,
    /// `creation date` in seconds since the Unix epoch (the caller reads the clock).
    pub creation_date: Option<i64>,
    /// File order of v1 torrents (v2 and hybrid are always canonical).
    pub file_order: FileOrder,
}

impl Default for CreateOptions {
    fn default() -> Self {
        CreateOptions {
            version: MetaVersion::Hybrid,
            piece_length: None,
            trackers: Vec::new(),
            web_seeds: Vec::new(),
            private: false,
            comment: None,
            created_by: None,
            creation_date: None,
            file_order: FileOrder::Filesystem,
        }
    }
}

/// libtorrent 2.0's automatic piece length: about `sqrt(total_size) * 2 / 20` hashes, from
/// 16 KiB for small content up to 8 MiB for 700 GB and more.
pub fn auto_piece_length(total_size: u64) -> u64 {
    const THRESHOLDS: [u64; 10] = [
        2_684_355,
        10_737_418,
        42_949_673,
        171_798_692,
        687_194_767,
        2_748_779_069,
        10_995_116_278,
        43_980_465_111,
        175_921_860_444,
        703_687_441_777,
    ];
    let steps = THRESHOLDS.iter().take_while(|t| **t < total_size).count();
    (BLOCK_SIZE as u64) << steps
}

/// A file found on disk.
struct SourceFile {
    /// Components under the torrent's top directory (empty for a single file).
    relative: Vec<String>,
    disk: PathBuf,
    length: u64,
    executable: bool,
}

/// Creates a torrent of the file or directory at `path`.
///
/// `progress(bytes, total_bytes)` is called from the hashing threads as each piece is hashed,
/// with the content bytes that piece read (pad files not counted) and the content size; the
/// `bytes` add up to `total_bytes`.
pub fn create_torrent(
    path: &Path,
    options: &CreateOptions,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<Torrent, Error> {
    let (name, mut sources, multi_file) = collect(path)?;
    let data_size = sources
        .iter()
        .try_fold(0u64, |sum, f| sum.checked_add(f.length))
        .ok_or_else(|| Error::Create("total size overflows".into()))?;
    if data_size == 0 {
        return Err(Error::Create(format!(
            "{} holds no data (only empty files or none at all)",
            path.display()
        )));
    }
    let piece_length = choose_piece_length(options, data_size)?;
    let canonical = options.version.has_v2() || options.file_order == FileOrder::Canonical;
    if canonical {
        sources.sort_by(|a, b| a.relative.cmp(&b.relative));
    }

    let entries: Vec<FileEntry> = sources
        .iter()
        .map(|s| {
            let mut path = vec![name.clone()];
            path.extend(s.relative.iter().cloned());
            FileEntry {
                path,
                length: s.length,
                offset: 0,
                attributes: FileAttributes {
                    executable: s.executable,
                    ..FileAttributes::default()
                },
                symlink_path: None,
                pieces_root: None,
            }
        })
        .collect();
    let mut files = if canonical && entries.len() > 1 {
        with_pad_files(entries, &name, piece_length)
    } else {
        entries
    };
    let total_size = assign_offsets(&mut files)?;
    let mut disk_paths = sources.into_iter().map(|s| Some(s.disk));
    let disk: Vec<Option<PathBuf>> = files
        .iter()
        .map(|f| {
            if f.is_pad() {
                None
            } else {
                disk_paths.next().flatten()
            }
        })
        .collect();

    let content = Content {
        files: &files,
        disk: &disk,
        piece_length,
        total_size,
    };
    let version = options.version;
    let report = |bytes| progress(bytes, data_size);
    let pieces = hash_pieces(&content, version.has_v1(), version.has_v2(), &report)?;

    let mut layers = BTreeMap::new();
    if version.has_v2() {
        for file in files.iter_mut().filter(|f| !f.is_pad() && f.length > 0) {
            let first = (file.offset / piece_length) as usize;
            let count = file.length.div_ceil(piece_length) as usize;
            let layer: Vec<Sha256Hash> = pieces[first..first + count]
                .iter()
                .map(|p| p.v2.expect("v2 hashes requested"))
                .collect();
            let root = if count == 1 {
                layer[0]
            } else {
                root_from_piece_layer(&layer, piece_length)
            };
            file.pieces_root = Some(root);
            if count > 1 {
                layers.insert(root, layer);
            }
        }
    }
    let v1_hashes: Vec<u8> = pieces.iter().filter_map(|p| p.v1).flatten().collect();
    let info = info_dictionary(&name, &files, multi_file, piece_length, options, &v1_hashes);
    let document = torrent_document(info, layers, options);
    Torrent::from_bytes(&document)
}

fn choose_piece_length(options: &CreateOptions, data_size: u64) -> Result<u64, Error> {
    let mut piece_length = options
        .piece_length
        .unwrap_or_else(|| auto_piece_length(data_size));
    if options.version.has_v2() {
        piece_length = piece_length.max(BLOCK_SIZE as u64);
        if !piece_length.is_power_of_two() {
            return Err(Error::Create(format!(
                "piece length {piece_length} must be a power of two for v2 and hybrid torrents"
            )));
        }
    } else if piece_length == 0
        || (!piece_length.is_multiple_of(BLOCK_SIZE as u64) && !piece_length.is_power_of_two())
    {
        return Err(Error::Create(format!(
            "piece length {piece_length} must be a power of two or a multiple of 16 KiB"
        )));
    }
    if piece_length > PIECE_LENGTH_MAX {
        return Err(Error::Create(format!(
            "piece length {piece_length} is above the {PIECE_LENGTH_MAX} byte maximum"
        )));
    }
    Ok(piece_length)
}

/// The torrent name and files under `path`, and whether it is a directory (multi-file).
fn collect(path: &Path) -> Result<(String, Vec<SourceFile>, bool), Error> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let named = match path.file_name() {
        Some(_) => path.to_path_buf(),
        None => std::fs::canonicalize(path).map_err(io)?,
    };
    let name = named
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::Create(format!("{} has no UTF-8 file name", path.display())))?
        .to_string();
    let metadata = std::fs::metadata(path).map_err(io)?;
    let mut files = Vec::new();
    if metadata.is_dir() {
        collect_dir(path, &mut Vec::new(), &mut files)?;
        if files.is_empty() {
            return Err(Error::Create(format!(
                "{} contains no files",
                path.display()
            )));
        }
        Ok((name, files, true))
    } else {
        files.push(source_file(path, Vec::new(), &metadata)?);
        Ok((name, files, false))
    }
}

fn collect_dir(
    dir: &Path,
    relative: &mut Vec<String>,
    out: &mut Vec<SourceFile>,
) -> Result<(), Error> {
    if relative.len() > DIRECTORY_DEPTH_MAX {
        return Err(Error::Create(format!(
            "{} is nested deeper than {DIRECTORY_DEPTH_MAX} directories (a symlink loop?)",
            dir.display()
        )));
    }
    let io = |source| Error::Io {
        path: dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| Error::Create(format!("{} is not a UTF-8 name", path.display())))?
            .to_string();
        let metadata = std::fs::metadata(&path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        relative.push(name);
        if metadata.is_dir() {
            collect_dir(&path, relative, out)?;
        } else {
            out.push(source_file(&path, relative.clone(), &metadata)?);
        }
        relative.pop();
    }
    Ok(())
}

fn source_file(
    path: &Path,
    relative: Vec<String>,
    metadata: &std::fs::Metadata,
) -> Result<SourceFile, Error> {
    Ok(SourceFile {
        relative,
        disk: path.to_path_buf(),
        length: metadata.len(),
        executable: owner_executable(path)?,
    })
}

#[cfg(unix)]
fn owner_executable(path: &Path) -> Result<bool, Error> {
    use std::os::unix::fs::PermissionsExt;
    // The link itself, not its target: libtorrent reads this bit with lstat.
    let metadata = std::fs::symlink_metadata(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(metadata.permissions().mode() & 0o100 != 0)
}

#[cfg(not(unix))]
fn owner_executable(_path: &Path) -> Result<bool, Error> {
    Ok(false)
}

/// The info dictionary with exactly libtorrent's keys.
fn info_dictionary(
    name: &str,
    files: &[FileEntry],
    multi_file: bool,
    piece_length: u64,
    options: &CreateOptions,
    v1_hashes: &[u8],
) -> Owned {
    let mut info = Owned::dict()
        .with("name", name)
        .with("piece length", piece_length);
    if options.private {
        info.insert("private", 1i64);
    }
    let attr = |entry: &FileEntry| entry.attributes.to_attr_string();
    let real_files = || files.iter().filter(|f| !f.is_pad());
    if options.version.has_v1() {
        if multi_file {
            let list = files
                .iter()
                .map(|f| {
                    let mut entry = Owned::dict().with("length", f.length).with(
                        "path",
                        Owned::List(
                            f.path[1..]
                                .iter()
                                .map(|c| Owned::from(c.as_str()))
                                .collect(),
                        ),
                    );
                    if !attr(f).is_empty() {
                        entry.insert("attr", attr(f));
                    }
                    entry
                })
                .collect::<Vec<_>>();
            info.insert("files", Owned::List(list));
        } else {
            info.insert("length", files[0].length);
            if !attr(&files[0]).is_empty() {
                info.insert("attr", attr(&files[0]));
            }
        }
        info.insert("pieces", v1_hashes.to_vec());
    }
    if options.version.has_v2() {
        let mut tree = Owned::dict();
        for file in real_files() {
            let mut leaf = Owned::dict().with("length", file.length);
            if let Some(root) = file.pieces_root {
                leaf.insert("pieces root", root.to_vec());
            }
            if !attr(file).is_empty() {
                leaf.insert("attr", attr(file));
            }
            let components = if multi_file {
                &file.path[1..]
            } else {
                &file.path[..]
            };
            insert_at(&mut tree, components, Owned::dict().with("", leaf));
        }
        info.insert("file tree", tree);
        info.insert("meta version", 2i64);
    }
    info
}

/// Puts `value` at the nested dictionary path `components` of `tree`.
fn insert_at(tree: &mut Owned, components: &[String], value: Owned) {
    let Owned::Dict(map) = tree else {
        return;
    };
    match components {
        [] => {}
        [last] => {
            map.insert(last.as_bytes().to_vec(), value);
        }
        [first, rest @ ..] => {
            let child = map
                .entry(first.as_bytes().to_vec())
                .or_insert_with(Owned::dict);
            insert_at(child, rest, value);
        }
    }
}

fn torrent_document(
    info: Owned,
    layers: BTreeMap<Sha256Hash, Vec<Sha256Hash>>,
    options: &CreateOptions,
) -> Vec<u8> {
    let mut document = Owned::dict();
    let has_v2 = options.version.has_v2();
    document.insert("info", Owned::Raw(info.to_bytes()));
    if let Some(first) = options.trackers.first() {
        document.insert("announce", first.as_str());
    }
    if options.trackers.len() > 1 {
        let tier = options
            .trackers
            .iter()
            .map(|t| Owned::from(t.as_str()))
            .collect();
        document.insert("announce-list", Owned::List(vec![Owned::List(tier)]));
    }
    if let Some(comment) = &options.comment {
        document.insert("comment", comment.as_str());
    }
    if let Some(created_by) = &options.created_by {
        document.insert("created by", created_by.as_str());
    }
    if let Some(date) = options.creation_date {
        document.insert("creation date", date);
    }
    match options.web_seeds.as_slice() {
        [] => {}
        [one] => document.insert("url-list", one.as_str()),
        many => document.insert(
            "url-list",
            Owned::List(many.iter().map(|u| Owned::from(u.as_str())).collect()),
        ),
    }
    if has_v2 {
        let layers = layers
            .into_iter()
            .map(|(root, layer)| (root.to_vec(), Owned::Bytes(layer.concat())))
            .collect();
        document.insert("piece layers", Owned::Dict(layers));
    }
    document.to_bytes()
}
