//! Hashing content for torrent creation: every piece on all cores (rayon), read in large
//! sequential chunks so memory stays bounded (one chunk per thread) whatever the content size.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

use rayon::prelude::*;
use sha1::{Digest, Sha1};

use crate::error::Error;
use crate::file_tree::FileEntry;
use crate::merkle::{block_hashes, piece_hash_from_blocks, Sha256Hash};

/// Bytes read at a time: large enough for sequential throughput, a multiple of 16 KiB so merkle
/// blocks never straddle two reads.
const READ_CHUNK_BYTES: u64 = 4 * 1024 * 1024;

/// The files to hash, laid out as a byte stream (pad files are zeros and are not read).
pub(crate) struct Content<'a> {
    /// Files in stream order with offsets.
    pub files: &'a [FileEntry],
    /// Where each file is on disk (`None` for pad files).
    pub disk: &'a [Option<PathBuf>],
    /// Bytes per piece.
    pub piece_length: u64,
    /// Total stream size.
    pub total_size: u64,
}

/// The hashes of one piece.
#[derive(Clone, Copy)]
pub(crate) struct PieceHashes {
    /// SHA-1 of the whole piece, pad bytes included (v1).
    pub v1: Option<[u8; 20]>,
    /// Merkle hash of the file's bytes in the piece (v2).
    pub v2: Option<Sha256Hash>,
}

/// Hashes every piece in parallel; `progress` receives the number of content bytes (pad files
/// not counted) each finished piece read.
pub(crate) fn hash_pieces(
    content: &Content<'_>,
    v1: bool,
    v2: bool,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<PieceHashes>, Error> {
    let num_pieces = content.total_size.div_ceil(content.piece_length);
    (0..num_pieces)
        .into_par_iter()
        .map_init(Reader::default, |reader, piece| {
            let (hashes, read) = hash_piece(content, reader, piece, v1, v2)?;
            progress(read);
            Ok(hashes)
        })
        .collect()
}

fn hash_piece(
    content: &Content<'_>,
    reader: &mut Reader,
    piece: u64,
    v1: bool,
    v2: bool,
) -> Result<(PieceHashes, u64), Error> {
    let start = piece * content.piece_length;
    let end = (start + content.piece_length).min(content.total_size);
    let mut sha1 = v1.then(Sha1::new);
    // In v2 layouts each piece starts inside exactly one file; its merkle hash covers only that
    // file's bytes.
    let v2_file = v2
        .then(|| {
            let index = content
                .files
                .partition_point(|f| f.offset + f.length <= start);
            content.files.get(index)
        })
        .flatten();
    let v2_end = v2_file.map_or(start, |f| (f.offset + f.length).min(end));
    let mut blocks = Vec::new();
    let mut pos = start;
    let mut read = 0;
    while pos < end {
        let len = (end - pos).min(READ_CHUNK_BYTES) as usize;
        let mut buf = std::mem::take(&mut reader.buf);
        buf.resize(len, 0);
        read += reader.read_stream(content, pos, &mut buf)?;
        if let Some(sha1) = &mut sha1 {
            sha1.update(&buf);
        }
        if pos < v2_end {
            blocks.extend(block_hashes(&buf[..((v2_end - pos) as usize).min(len)]));
        }
        reader.buf = buf;
        pos += len as u64;
    }
    let hashes = PieceHashes {
        v1: sha1.map(|h| h.finalize().into()),
        v2: v2_file.map(|f| piece_hash_from_blocks(&blocks, content.piece_length, f.length)),
    };
    Ok((hashes, read))
}

/// One worker's read state: its buffer and the file it has open.
#[derive(Default)]
struct Reader {
    buf: Vec<u8>,
    open: Option<(usize, File)>,
}

impl Reader {
    /// Fills `out` with the stream bytes at `pos`: file data, zeros for pad files. Returns the
    /// number of bytes read from files.
    fn read_stream(
        &mut self,
        content: &Content<'_>,
        pos: u64,
        out: &mut [u8],
    ) -> Result<u64, Error> {
        let mut from_files = 0;
        let mut index = content
            .files
            .partition_point(|f| f.offset + f.length <= pos);
        let mut done = 0usize;
        while done < out.len() {
            let file = &content.files[index];
            let at = pos + done as u64;
            let in_file = at - file.offset;
            let len = ((file.length - in_file) as usize).min(out.len() - done);
            let target = &mut out[done..done + len];
            match &content.disk[index] {
                None => target.fill(0),
                Some(path) => {
                    self.read_file(index, path, in_file, target)?;
                    from_files += len as u64;
                }
            }
            done += len;
            index += 1;
        }
        Ok(from_files)
    }

    fn read_file(
        &mut self,
        index: usize,
        path: &PathBuf,
        offset: u64,
        target: &mut [u8],
    ) -> Result<(), Error> {
        let io = |source| Error::Io {
            path: path.clone(),
            source,
        };
        if self.open.as_ref().map(|(i, _)| *i) != Some(index) {
            self.open = Some((index, File::open(path).map_err(io)?));
        }
        let (_, file) = self.open.as_mut().expect("opened above");
        file.seek(SeekFrom::Start(offset)).map_err(io)?;
        file.read_exact(target).map_err(|err| {
            if err.kind() == std::io::ErrorKind::UnexpectedEof {
                Error::Create(format!(
                    "{} shrank while it was being hashed",
                    path.display()
                ))
            } else {
                io(err)
            }
        })
    }
}
