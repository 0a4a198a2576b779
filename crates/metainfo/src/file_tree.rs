//! The files of a torrent: the v1 `files` list (BEP 3, with BEP 47 pad files and attributes) and
//! the v2 `file tree` (BEP 52), laid out as one byte stream.

use std::collections::BTreeSet;

use bencode::{Dict, Value};

use crate::error::Error;
use crate::merkle::Sha256Hash;
use crate::path::check_path;

/// BEP 47 file attributes (`attr`): a pad file, executable, hidden, symbolic link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FileAttributes {
    /// `p`: a pad file, zeros that align the next file to a piece boundary; never written to disk.
    pub pad: bool,
    /// `x`: executable.
    pub executable: bool,
    /// `h`: hidden.
    pub hidden: bool,
    /// `l`: a symbolic link (see [`FileEntry::symlink_path`]).
    pub symlink: bool,
}

impl FileAttributes {
    /// Reads an `attr` string; unknown letters are ignored, as BEP 47 asks.
    pub fn parse(attr: &[u8]) -> FileAttributes {
        FileAttributes {
            pad: attr.contains(&b'p'),
            executable: attr.contains(&b'x'),
            hidden: attr.contains(&b'h'),
            symlink: attr.contains(&b'l'),
        }
    }

    /// The `attr` string in libtorrent's letter order (`p`, `h`, `x`, `l`); empty if no flag.
    pub fn to_attr_string(&self) -> String {
        [
            (self.pad, 'p'),
            (self.hidden, 'h'),
            (self.executable, 'x'),
            (self.symlink, 'l'),
        ]
        .iter()
        .filter(|(set, _)| *set)
        .map(|(_, letter)| *letter)
        .collect()
    }
}

/// One file of a torrent, at its place in the torrent's byte stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    /// Path components relative to the download directory: the torrent name first for
    /// multi-file torrents, just the name for a single-file torrent. Checked safe by
    /// [`crate::path`]; use [`crate::safe_relative_path`] to turn it into a `PathBuf`.
    pub path: Vec<String>,
    /// Size in bytes.
    pub length: u64,
    /// Offset of the first byte in the torrent's byte stream (pad files included).
    pub offset: u64,
    /// BEP 47 attributes.
    pub attributes: FileAttributes,
    /// Target of a symbolic link (BEP 47 `symlink path`), as components.
    pub symlink_path: Option<Vec<String>>,
    /// BEP 52 merkle root of the file (v2 and hybrid torrents, files longer than zero bytes).
    pub pieces_root: Option<Sha256Hash>,
}

impl FileEntry {
    /// Whether this is a BEP 47 pad file.
    pub fn is_pad(&self) -> bool {
        self.attributes.pad
    }

    /// The path joined with `/`, as libtorrent shows it (`name/sub/file`).
    pub fn display_path(&self) -> String {
        self.path.join("/")
    }

    /// A pad file of `length` bytes named `<name>/.pad/<length>`, as libtorrent names them.
    pub(crate) fn pad(name: &str, length: u64) -> FileEntry {
        FileEntry {
            path: vec![name.to_string(), ".pad".to_string(), length.to_string()],
            length,
            offset: 0,
            attributes: FileAttributes {
                pad: true,
                ..FileAttributes::default()
            },
            symlink_path: None,
            pieces_root: None,
        }
    }
}

/// A byte string as text; invalid UTF-8 is replaced, as libtorrent does (the info-hash is
/// computed from the raw bytes, so this never changes a torrent's identity).
pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn length_of(dict: &Dict<'_>) -> Result<u64, Error> {
    let length = dict.get_int("length").ok_or(Error::Missing("length"))?;
    u64::try_from(length).map_err(|_| Error::invalid("length", format!("negative: {length}")))
}

fn components(list: &[Value<'_>], field: &'static str) -> Result<Vec<String>, Error> {
    list.iter()
        .map(|c| c.as_bytes().map(text).ok_or(Error::Missing(field)))
        .collect()
}

fn attributes_and_symlink(dict: &Dict<'_>) -> Result<(FileAttributes, Option<Vec<String>>), Error> {
    let attributes = FileAttributes::parse(dict.get_bytes("attr").unwrap_or_default());
    let symlink_path = match dict.get_list("symlink path") {
        Some(list) if attributes.symlink => Some(components(list, "symlink path")?),
        _ => None,
    };
    Ok((attributes, symlink_path))
}

/// The single file of a v1 single-file torrent (`length` in the info dictionary).
pub(crate) fn v1_single(info: &Dict<'_>, name: &str) -> Result<Vec<FileEntry>, Error> {
    let (attributes, symlink_path) = attributes_and_symlink(info)?;
    Ok(vec![FileEntry {
        path: vec![name.to_string()],
        length: length_of(info)?,
        offset: 0,
        attributes,
        symlink_path,
        pieces_root: None,
    }])
}

/// The v1 `files` list of a multi-file torrent, pad files included.
pub(crate) fn v1_files(list: &[Value<'_>], name: &str) -> Result<Vec<FileEntry>, Error> {
    if list.is_empty() {
        return Err(Error::invalid("files", "empty file list"));
    }
    list.iter()
        .map(|entry| {
            let dict = entry.as_dict().ok_or(Error::Missing("files"))?;
            let rel = components(dict.get_list("path").ok_or(Error::Missing("path"))?, "path")?;
            if rel.is_empty() {
                return Err(Error::UnsafePath {
                    path: String::new(),
                    reason: "empty path",
                });
            }
            let (attributes, symlink_path) = attributes_and_symlink(dict)?;
            let mut path = vec![name.to_string()];
            path.extend(rel);
            Ok(FileEntry {
                path,
                length: length_of(dict)?,
                offset: 0,
                attributes,
                symlink_path,
                pieces_root: None,
            })
        })
        .collect()
}

/// The v2 `file tree`, files in tree (byte-sorted) order, without pad files.
pub(crate) fn v2_file_tree(tree: &Dict<'_>, name: &str) -> Result<Vec<FileEntry>, Error> {
    let mut files = Vec::new();
    let mut prefix = Vec::new();
    walk_tree(tree, &mut prefix, &mut files)?;
    if files.is_empty() {
        return Err(Error::invalid("file tree", "no files"));
    }
    // A tree holding one file at its top level is a single-file torrent: the file's path is its
    // own name. Otherwise every path starts with the torrent name.
    let single = files.len() == 1 && files[0].path.len() == 1;
    if !single {
        for file in &mut files {
            file.path.insert(0, name.to_string());
        }
    }
    Ok(files)
}

fn walk_tree(
    dir: &Dict<'_>,
    prefix: &mut Vec<String>,
    out: &mut Vec<FileEntry>,
) -> Result<(), Error> {
    if dir.is_empty() {
        return Err(Error::invalid("file tree", "empty directory"));
    }
    for (key, node) in dir.iter() {
        let node = node.as_dict().ok_or(Error::Missing("file tree"))?;
        if key.is_empty() {
            // The "" key marks a file; it must be the only key of its node.
            if !prefix.is_empty() && dir.len() == 1 {
                let (attributes, symlink_path) = attributes_and_symlink(node)?;
                let length = length_of(node)?;
                let pieces_root = match node.get_bytes("pieces root") {
                    Some(root) if length > 0 => Some(
                        <[u8; 32]>::try_from(root)
                            .map_err(|_| Error::invalid("pieces root", "not 32 bytes"))?,
                    ),
                    None if length > 0 && !attributes.symlink => {
                        return Err(Error::Missing("pieces root"))
                    }
                    _ => None,
                };
                out.push(FileEntry {
                    path: prefix.clone(),
                    length,
                    offset: 0,
                    attributes,
                    symlink_path,
                    pieces_root,
                });
                return Ok(());
            }
            return Err(Error::invalid(
                "file tree",
                format!("`{}` is both a file and a directory", prefix.join("/")),
            ));
        }
        prefix.push(text(key));
        walk_tree(node, prefix, out)?;
        prefix.pop();
    }
    Ok(())
}

/// Assigns offsets in list order; fails if the total overflows.
pub(crate) fn assign_offsets(files: &mut [FileEntry]) -> Result<u64, Error> {
    let mut offset: u64 = 0;
    for file in files {
        file.offset = offset;
        offset = offset
            .checked_add(file.length)
            .filter(|total| *total <= i64::MAX as u64)
            .ok_or_else(|| Error::invalid("length", "total size overflows"))?;
    }
    Ok(offset)
}

/// Inserts libtorrent's pad files: after every non-empty file that does not end on a piece
/// boundary (the last file included), named `<name>/.pad/<size>`. Used to lay out v2-only
/// torrents exactly as libtorrent shows them, and to build hybrid and canonical v1 file lists.
pub(crate) fn with_pad_files(
    files: Vec<FileEntry>,
    name: &str,
    piece_length: u64,
) -> Vec<FileEntry> {
    let mut out = Vec::with_capacity(files.len() * 2);
    for file in files {
        let tail = file.length % piece_length;
        out.push(file);
        if tail != 0 {
            out.push(FileEntry::pad(name, piece_length - tail));
        }
    }
    out
}

/// Checks every path and refuses two files at the same path or a file used as a directory.
pub(crate) fn check_paths(files: &[FileEntry]) -> Result<(), Error> {
    let mut seen = BTreeSet::new();
    for file in files {
        check_path(&file.path)?;
        if let Some(target) = &file.symlink_path {
            check_path(target)?;
        }
        if !file.is_pad() && !seen.insert(file.path.as_slice()) {
            return Err(Error::invalid(
                "files",
                format!("duplicate path `{}`", file.display_path()),
            ));
        }
    }
    for file in files.iter().filter(|f| !f.is_pad()) {
        for depth in 1..file.path.len() {
            if seen.contains(&file.path[..depth]) {
                return Err(Error::invalid(
                    "files",
                    format!(
                        "`{}` is both a file and a directory",
                        file.path[..depth].join("/")
                    ),
                ));
            }
        }
    }
    Ok(())
}
