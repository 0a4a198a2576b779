//! Files on disk: sparse creation, positional block I/O, piece reads and rechecks.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::{Error, Layout, DIRECT_IO_ALIGN};

/// Largest single cached write. Measured on ext4 in a VM, 1 GiB in 1 MiB buffered writes took
/// several times the system time of 128 KiB writes; most of that later proved to be the
/// hypervisor's faults on fresh page-cache pages (docs/BENCHMARKS.md, swarming), but the smaller
/// chunks were never worse.
const WRITE_CHUNK_BYTES: usize = 128 * 1024;

/// Files smaller than this get no direct-write handle: they add little to the page cache, and
/// a torrent of many small files would otherwise hold two descriptors per file.
const DIRECT_FILE_BYTES_MIN: u64 = 1024 * 1024;

/// A torrent's files under a download directory. Methods take `&self` (positional I/O), so
/// one `Storage` may be shared by several blocking threads.
#[derive(Debug)]
pub struct Storage {
    root: PathBuf,
    layout: Layout,
    /// One handle per file; `None` for pad files and empty files.
    handles: Vec<Option<File>>,
    /// Per file, a second handle that writes around the page cache (`O_DIRECT`), where the OS
    /// and the filesystem allow it (see [`Storage::write_at`]).
    direct: Vec<Option<File>>,
}

impl Storage {
    /// Opens (creating as needed, sparse, at full size) every file of `layout` under `root`.
    /// Existing files keep their contents; a file already of the right size is not touched.
    pub fn open(root: &Path, layout: Layout) -> Result<Storage, Error> {
        Storage::open_with(root, layout, true)
    }

    /// Opens files that must already exist at their full size (seeding): nothing is created,
    /// resized or written by opening.
    pub fn open_existing(root: &Path, layout: Layout) -> Result<Storage, Error> {
        Storage::open_with(root, layout, false)
    }

    fn open_with(root: &Path, layout: Layout, create: bool) -> Result<Storage, Error> {
        let mut handles = Vec::with_capacity(layout.files().len());
        let mut direct = Vec::with_capacity(layout.files().len());
        for slot in layout.files() {
            let path = root.join(&slot.path);
            let io = |source| Error::Io {
                path: path.clone(),
                source,
            };
            if slot.pad {
                handles.push(None);
                direct.push(None);
                continue;
            }
            if !create {
                let file = File::open(&path).map_err(io)?;
                let size = file.metadata().map_err(io)?.len();
                if size != slot.length {
                    let why = format!("is {size} bytes, the torrent says {}", slot.length);
                    return Err(io(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        why,
                    )));
                }
                handles.push((slot.length > 0).then_some(file));
                // Opened for seeding: nothing is written.
                direct.push(None);
                continue;
            }
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(io)?;
            }
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(io)?;
            let current = file.metadata().map_err(io)?.len();
            if current != slot.length {
                // set_len extends without writing: a sparse file on every common filesystem.
                file.set_len(slot.length).map_err(io)?;
            }
            let worth_direct = slot.length >= DIRECT_FILE_BYTES_MIN;
            direct.push(worth_direct.then(|| open_direct(&path)).flatten());
            handles.push((slot.length > 0).then_some(file));
        }
        Ok(Storage {
            root: root.to_path_buf(),
            layout,
            handles,
            direct,
        })
    }

    /// The layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The download directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn check_range(&self, offset: u64, len: u64) -> Result<(), Error> {
        if offset
            .checked_add(len)
            .is_none_or(|end| end > self.layout.total_length())
        {
            return Err(Error::OutOfRange {
                offset,
                len,
                total: self.layout.total_length(),
            });
        }
        Ok(())
    }

    fn io_error(&self, file: usize, source: std::io::Error) -> Error {
        Error::Io {
            path: self.root.join(&self.layout.files()[file].path),
            source,
        }
    }

    /// Writes `data` at `offset` in the stream; bytes that fall in pad files are dropped.
    ///
    /// Where memory, file offset and length are aligned ([`crate::PieceBuffer`] data at piece
    /// boundaries), the bytes go straight to the disk, around the page cache: on a virtual
    /// machine that hands freed memory back to its host, filling fresh page-cache pages can cost
    /// more CPU than hashing the data (docs/BENCHMARKS.md, swarming), and a download has no use
    /// for the cached copy. The rest, and every direct write that fails, takes the cached path
    /// in chunks, and its writeback starts at once, so that a later [`Storage::sync`] has little
    /// left to wait for.
    pub fn write_at(&self, offset: u64, data: &[u8]) -> Result<(), Error> {
        self.check_range(offset, data.len() as u64)?;
        for (file, file_offset, at, len) in self.layout.spans(offset, data.len() as u64) {
            let Some(handle) = &self.handles[file] else {
                continue;
            };
            let mut rest = &data[at..at + len];
            let mut rest_offset = file_offset;
            if let Some(direct) = &self.direct[file] {
                let aligned = direct_prefix_len(rest, rest_offset);
                // A failed direct write (a filesystem that refuses this shape, or any other
                // error) is done again through the cache, which reports real disk errors.
                if aligned > 0 && direct.write_all_at(&rest[..aligned], rest_offset).is_ok() {
                    rest = &rest[aligned..];
                    rest_offset += aligned as u64;
                }
            }
            for (i, chunk) in rest.chunks(WRITE_CHUNK_BYTES).enumerate() {
                let chunk_offset = rest_offset + (i * WRITE_CHUNK_BYTES) as u64;
                handle
                    .write_all_at(chunk, chunk_offset)
                    .map_err(|e| self.io_error(file, e))?;
            }
            start_writeback(handle, rest_offset, rest.len() as u64);
        }
        Ok(())
    }

    /// Reads `len` bytes at `offset` in the stream; pad files read as zeros.
    pub fn read_at(&self, offset: u64, len: u64) -> Result<Vec<u8>, Error> {
        self.check_range(offset, len)?;
        let mut out = vec![0u8; len as usize];
        self.read_at_into(offset, &mut out)?;
        Ok(out)
    }

    /// Fills `out` from `offset` in the stream; pad files read as zeros.
    pub fn read_at_into(&self, offset: u64, out: &mut [u8]) -> Result<(), Error> {
        let len = out.len() as u64;
        self.check_range(offset, len)?;
        for (file, file_offset, at, span) in self.layout.spans(offset, len) {
            match &self.handles[file] {
                Some(handle) => handle
                    .read_exact_at(&mut out[at..at + span], file_offset)
                    .map_err(|e| self.io_error(file, e))?,
                None => out[at..at + span].fill(0),
            }
        }
        Ok(())
    }

    /// Writes a block at `begin` within piece `index`.
    pub fn write_block(&self, index: u32, begin: u32, data: &[u8]) -> Result<(), Error> {
        let (start, piece_len) = self.layout.piece_range(index);
        if u64::from(begin) + data.len() as u64 > piece_len {
            return Err(Error::OutOfRange {
                offset: start + u64::from(begin),
                len: data.len() as u64,
                total: self.layout.total_length(),
            });
        }
        self.write_at(start + u64::from(begin), data)
    }

    /// Reads a block at `begin` within piece `index`.
    pub fn read_block(&self, index: u32, begin: u32, len: u32) -> Result<Vec<u8>, Error> {
        let mut out = vec![0u8; len as usize];
        self.read_block_into(index, begin, &mut out)?;
        Ok(out)
    }

    /// Fills `out` with the block at `begin` within piece `index`.
    pub fn read_block_into(&self, index: u32, begin: u32, out: &mut [u8]) -> Result<(), Error> {
        let (start, piece_len) = self.layout.piece_range(index);
        let len = out.len() as u64;
        if u64::from(begin) + len > piece_len {
            return Err(Error::OutOfRange {
                offset: start + u64::from(begin),
                len,
                total: self.layout.total_length(),
            });
        }
        self.read_at_into(start + u64::from(begin), out)
    }

    /// The whole of piece `index`, pad bytes included (what the piece hashes cover).
    pub fn read_piece(&self, index: u32) -> Result<Vec<u8>, Error> {
        let (start, len) = self.layout.piece_range(index);
        self.read_at(start, len)
    }

    /// Flushes written data to disk.
    pub fn sync(&self) -> Result<(), Error> {
        for (file, handle) in self.handles.iter().enumerate() {
            if let Some(handle) = handle {
                handle.sync_data().map_err(|e| self.io_error(file, e))?;
            }
        }
        Ok(())
    }

    /// Checks every piece with `verify(index, data)`; returns which pieces are good.
    pub fn recheck(&self, mut verify: impl FnMut(u32, &[u8]) -> bool) -> Result<Vec<bool>, Error> {
        // One buffer for every piece: no fresh pages to fault in per piece.
        let mut buffer = Vec::new();
        (0..self.layout.piece_count())
            .map(|i| {
                let (start, len) = self.layout.piece_range(i);
                buffer.resize(len as usize, 0);
                self.read_at_into(start, &mut buffer)?;
                Ok(verify(i, &buffer))
            })
            .collect()
    }
}

/// Starts writing `len` freshly written bytes at `offset` of `file` to disk without waiting for
/// them. Only a hint: it does nothing where the OS offers no such call, and its errors are not
/// reported.
fn start_writeback(file: &File, offset: u64, len: u64) {
    #[cfg(target_os = "linux")]
    if let Some(len) = std::num::NonZeroU64::new(len) {
        // On Linux, DONTNEED on freshly written (dirty) pages starts their writeback and keeps
        // them cached: only clean pages are dropped, and these are not clean yet. It is the one
        // way to say "write this soon" without unsafe code.
        let _ = rustix::fs::fadvise(file, offset, Some(len), rustix::fs::Advice::DontNeed);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, offset, len);
}

/// Bytes from the start of `data` that can be written directly at `file_offset`: a multiple of
/// the alignment, if both the memory and the offset are aligned.
fn direct_prefix_len(data: &[u8], file_offset: u64) -> usize {
    let aligned = (data.as_ptr() as usize).is_multiple_of(DIRECT_IO_ALIGN)
        && file_offset.is_multiple_of(DIRECT_IO_ALIGN as u64);
    if aligned {
        data.len() - data.len() % DIRECT_IO_ALIGN
    } else {
        0
    }
}

/// A handle on `path` for direct writes, if the OS and filesystem offer them.
#[cfg(target_os = "linux")]
fn open_direct(path: &Path) -> Option<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let flags = rustix::fs::OFlags::DIRECT.bits();
    OpenOptions::new()
        .write(true)
        .custom_flags(i32::try_from(flags).ok()?)
        .open(path)
        .ok()
}

#[cfg(not(target_os = "linux"))]
fn open_direct(_path: &Path) -> Option<File> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FileSlot, PieceBuffer};

    fn layout() -> Layout {
        let slot = |path: &str, offset, length, pad| FileSlot {
            path: path.into(),
            offset,
            length,
            pad,
        };
        Layout::new(
            vec![
                slot("t/a", 0, 10, false),
                slot("t/.pad/6", 10, 6, true),
                slot("t/sub/b", 16, 20, false),
                slot("t/empty", 36, 0, false),
            ],
            16,
        )
    }

    #[test]
    fn writes_land_in_files_and_pads_stay_virtual() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path(), layout()).unwrap();
        let stream: Vec<u8> = (1..=36).collect();
        let mut expected = stream.clone();
        expected[10..16].fill(0);
        storage.write_block(0, 0, &stream[..16]).unwrap();
        storage.write_block(1, 0, &stream[16..32]).unwrap();
        storage.write_block(2, 0, &stream[32..]).unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("t/a")).unwrap(),
            &stream[..10]
        );
        assert_eq!(
            std::fs::read(dir.path().join("t/sub/b")).unwrap(),
            &stream[16..]
        );
        assert!(!dir.path().join("t/.pad").exists());
        assert!(dir.path().join("t/empty").exists());
        assert_eq!(storage.read_piece(0).unwrap(), &expected[..16]);
        assert_eq!(storage.read_block(2, 1, 3).unwrap(), &stream[33..36]);
        assert!(storage.read_block(2, 2, 3).is_err());
        assert!(storage.write_at(30, &[0; 7]).is_err());

        storage.sync().unwrap();
        assert_eq!(storage.read_at(0, 36).unwrap(), expected);
        assert!(!dir.path().join("t/.pad").exists());
    }

    #[test]
    fn aligned_pieces_and_unaligned_files_read_back_as_written() {
        // Piece 0 is aligned in the first file; the second file starts mid-page, so its
        // pieces take the cached path; the last piece is short. Every byte must read back.
        let slot = |path: &str, offset, length| FileSlot {
            path: path.into(),
            offset,
            length,
            pad: false,
        };
        let (a, b) = (3 * 8192 + 100, 5 * 8192 + 7);
        let layout = Layout::new(vec![slot("x/a", 0, a), slot("x/b", a, b)], 8192);
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path(), layout).unwrap();
        let stream: Vec<u8> = (0..a + b).map(|i| (i * 31 % 251) as u8).collect();
        let mut buffer = PieceBuffer::default();
        for (index, piece) in stream.chunks(8192).enumerate() {
            buffer.set_len(piece.len());
            buffer.copy_from_slice(piece);
            storage.write_at(index as u64 * 8192, &buffer).unwrap();
        }
        storage.sync().unwrap();
        assert_eq!(storage.read_at(0, a + b).unwrap(), stream);
        let on_disk = [
            std::fs::read(dir.path().join("x/a")).unwrap(),
            std::fs::read(dir.path().join("x/b")).unwrap(),
        ]
        .concat();
        assert_eq!(on_disk, stream);
    }

    #[test]
    fn a_failing_direct_write_is_done_again_through_the_cache() {
        let layout = Layout::new(
            vec![FileSlot {
                path: "f".into(),
                offset: 0,
                length: 4 * 8192,
                pad: false,
            }],
            8192,
        );
        let dir = tempfile::tempdir().unwrap();
        let mut storage = Storage::open(dir.path(), layout).unwrap();
        // A read-only handle in the direct slot: every direct write fails (EBADF).
        storage.direct[0] = Some(File::open(dir.path().join("f")).unwrap());
        let mut piece = PieceBuffer::zeroed(8192);
        piece.fill(0xa5);
        storage.write_at(8192, &piece).unwrap();
        storage.sync().unwrap();
        assert_eq!(storage.read_at(8192, 8192).unwrap(), vec![0xa5; 8192]);
        assert_eq!(storage.read_at(0, 8192).unwrap(), vec![0; 8192]);
    }

    #[test]
    fn only_aligned_memory_at_aligned_offsets_goes_direct() {
        let buffer = PieceBuffer::zeroed(3 * DIRECT_IO_ALIGN + 5);
        assert_eq!(direct_prefix_len(&buffer, 0), 3 * DIRECT_IO_ALIGN);
        assert_eq!(
            direct_prefix_len(&buffer, 8 * DIRECT_IO_ALIGN as u64),
            3 * DIRECT_IO_ALIGN
        );
        assert_eq!(direct_prefix_len(&buffer, 100), 0);
        assert_eq!(direct_prefix_len(&buffer[1..], 0), 0);
        assert_eq!(direct_prefix_len(&buffer[..100], 0), 0);
    }

    #[test]
    fn open_existing_never_creates_or_resizes() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Storage::open_existing(dir.path(), layout()).is_err());
        assert!(!dir.path().join("t").exists());
        drop(Storage::open(dir.path(), layout()).unwrap());
        std::fs::write(dir.path().join("t/a"), [1; 11]).unwrap();
        assert!(Storage::open_existing(dir.path(), layout()).is_err());
        assert_eq!(std::fs::read(dir.path().join("t/a")).unwrap().len(), 11);
    }

    #[test]
    fn reopening_keeps_data_and_recheck_finds_it() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path(), layout()).unwrap();
        storage.write_block(1, 0, &[7; 16]).unwrap();
        drop(storage);
        let storage = Storage::open(dir.path(), layout()).unwrap();
        let good = storage.recheck(|_, data| data == [7; 16]).unwrap();
        assert_eq!(good, [false, true, false]);
    }
}
