//! The mapping from the torrent's byte stream to files.

use std::path::PathBuf;

use crate::Error;

/// One file's place in the byte stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSlot {
    /// Path relative to the download directory (already checked to stay under it).
    pub path: PathBuf,
    /// Offset of its first byte in the stream.
    pub offset: u64,
    /// Length in bytes.
    pub length: u64,
    /// BEP 47 pad file: reads as zeros, never written to disk.
    pub pad: bool,
}

/// The files of a torrent, in stream order, and its piece length.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    files: Vec<FileSlot>,
    piece_length: u64,
    total_length: u64,
}

impl Layout {
    /// A layout from files in stream order (offsets must be contiguous).
    pub fn new(files: Vec<FileSlot>, piece_length: u64) -> Layout {
        let total_length = files.last().map_or(0, |f| f.offset + f.length);
        Layout {
            files,
            piece_length,
            total_length,
        }
    }

    /// The layout of a parsed torrent; fails if a path is unsafe.
    pub fn from_info(info: &metainfo::Info) -> Result<Layout, Error> {
        let files = info
            .files()
            .iter()
            .map(|f| {
                Ok(FileSlot {
                    path: metainfo::safe_relative_path(&f.path)?,
                    offset: f.offset,
                    length: f.length,
                    pad: f.is_pad(),
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(Layout::new(files, info.piece_length()))
    }

    /// The files.
    pub fn files(&self) -> &[FileSlot] {
        &self.files
    }

    /// Bytes per piece.
    pub fn piece_length(&self) -> u64 {
        self.piece_length
    }

    /// Length of the stream.
    pub fn total_length(&self) -> u64 {
        self.total_length
    }

    /// Number of pieces.
    pub fn piece_count(&self) -> u32 {
        self.total_length.div_ceil(self.piece_length.max(1)) as u32
    }

    /// Start and length of piece `index` in the stream.
    pub fn piece_range(&self, index: u32) -> (u64, u64) {
        let start = u64::from(index) * self.piece_length;
        (
            start,
            self.total_length
                .saturating_sub(start)
                .min(self.piece_length),
        )
    }

    /// The pieces of `[offset, offset+len)` split at file boundaries:
    /// (file index, offset within the file, offset within the range, length).
    pub fn spans(
        &self,
        offset: u64,
        len: u64,
    ) -> impl Iterator<Item = (usize, u64, usize, usize)> + '_ {
        let end = offset + len;
        let first = self
            .files
            .partition_point(|f| f.offset + f.length <= offset);
        self.files[first..]
            .iter()
            .enumerate()
            .take_while(move |(_, f)| f.offset < end)
            .filter(|(_, f)| f.length > 0)
            .map(move |(i, f)| {
                let from = offset.max(f.offset);
                let to = end.min(f.offset + f.length);
                (
                    first + i,
                    from - f.offset,
                    (from - offset) as usize,
                    (to - from) as usize,
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(path: &str, offset: u64, length: u64, pad: bool) -> FileSlot {
        FileSlot {
            path: path.into(),
            offset,
            length,
            pad,
        }
    }

    #[test]
    fn spans_cross_files_and_skip_empty_ones() {
        let layout = Layout::new(
            vec![
                slot("a", 0, 10, false),
                slot("empty", 10, 0, false),
                slot("pad", 10, 6, true),
                slot("b", 16, 20, false),
            ],
            16,
        );
        assert_eq!(layout.piece_count(), 3);
        assert_eq!(layout.piece_range(2), (32, 4));
        let spans: Vec<_> = layout.spans(8, 12).collect();
        assert_eq!(spans, [(0, 8, 0, 2), (2, 0, 2, 6), (3, 0, 8, 4)]);
    }
}
