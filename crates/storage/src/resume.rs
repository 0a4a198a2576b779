//! Resume data: which pieces were verified, and the files as they were then.
//!
//! Implementation notes: the bitfield is trusted only if every file still has the size and
//! modification time recorded with it; a download killed between writing data and saving resume
//! data leaves newer mtimes, so the caller falls back to a full recheck and loses nothing.

use std::path::Path;
use std::time::UNIX_EPOCH;

use bencode::Owned;

use crate::{Error, Storage};

/// Largest resume file read (a bitfield of 2^27 pieces plus file records).
const RESUME_BYTES_MAX: u64 = 64 * 1024 * 1024;

/// The verified pieces of a download and the state of its files when they were recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResumeData {
    /// Verified pieces, one bool per piece.
    pub verified: Vec<bool>,
    /// (size, modification time in nanoseconds since the Unix epoch) per file, pads as (0, 0).
    pub files: Vec<(u64, u64)>,
}

fn file_stamps(storage: &Storage) -> Vec<(u64, u64)> {
    storage
        .layout()
        .files()
        .iter()
        .map(|slot| {
            if slot.pad {
                return (0, 0);
            }
            let meta = std::fs::metadata(storage.root().join(&slot.path)).ok();
            let size = meta.as_ref().map_or(0, |m| m.len());
            let mtime = meta
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos() as u64);
            (size, mtime)
        })
        .collect()
}

impl ResumeData {
    /// A record of `verified` and the files as they are now (call after [`Storage::sync`]).
    pub fn capture(storage: &Storage, verified: Vec<bool>) -> ResumeData {
        ResumeData {
            verified,
            files: file_stamps(storage),
        }
    }

    /// Whether the files are unchanged since the record was made and it fits the torrent.
    pub fn matches(&self, storage: &Storage) -> bool {
        self.verified.len() == storage.layout().piece_count() as usize
            && self.files == file_stamps(storage)
    }

    /// Encodes as bencode.
    pub fn to_bytes(&self) -> Vec<u8> {
        let bits: Vec<u8> = self
            .verified
            .iter()
            .map(|&v| if v { b'1' } else { b'0' })
            .collect();
        let files: Vec<Owned> = self
            .files
            .iter()
            .map(|&(size, mtime)| Owned::List(vec![Owned::from(size), Owned::from(mtime)]))
            .collect();
        Owned::dict()
            .with("files", files)
            .with("verified", bits)
            .to_bytes()
    }

    /// Parses [`ResumeData::to_bytes`] output.
    pub fn from_bytes(bytes: &[u8]) -> Result<ResumeData, Error> {
        let value = bencode::decode(bytes).map_err(|_| Error::BadResume("not bencode"))?;
        let dict = value
            .as_dict()
            .ok_or(Error::BadResume("not a dictionary"))?;
        let verified = dict
            .get_bytes("verified")
            .ok_or(Error::BadResume("no verified"))?
            .iter()
            .map(|&b| b == b'1')
            .collect();
        let files = dict
            .get_list("files")
            .ok_or(Error::BadResume("no files"))?
            .iter()
            .map(|entry| {
                let pair = entry.as_list().filter(|l| l.len() == 2);
                let int = |i: usize| {
                    pair.and_then(|p| p[i].as_int())
                        .and_then(|v| u64::try_from(v).ok())
                };
                int(0)
                    .zip(int(1))
                    .ok_or(Error::BadResume("bad file record"))
            })
            .collect::<Result<_, _>>()?;
        Ok(ResumeData { verified, files })
    }

    /// Writes atomically (temporary file, then rename) so a crash never leaves half a record.
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, self.to_bytes()).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// Reads a saved record; `Ok(None)` if there is none.
    pub fn load(path: &Path) -> Result<Option<ResumeData>, Error> {
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(e)),
            Ok(meta) if meta.len() > RESUME_BYTES_MAX => return Err(Error::BadResume("too large")),
            Ok(_) => {}
        }
        let bytes = std::fs::read(path).map_err(io)?;
        ResumeData::from_bytes(&bytes).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FileSlot, Layout};
    use proptest::prelude::*;

    #[test]
    fn trusted_until_a_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(
            vec![FileSlot {
                path: "f".into(),
                offset: 0,
                length: 32,
                pad: false,
            }],
            16,
        );
        let storage = Storage::open(dir.path(), layout).unwrap();
        storage.write_block(0, 0, &[1; 16]).unwrap();
        storage.sync().unwrap();
        let resume = ResumeData::capture(&storage, vec![true, false]);
        let path = dir.path().join("resume");
        resume.save(&path).unwrap();
        let loaded = ResumeData::load(&path).unwrap().unwrap();
        assert_eq!(loaded, resume);
        assert!(loaded.matches(&storage));
        // A write after the record (as before a kill -9) changes the mtime and invalidates it.
        storage.write_block(1, 0, &[2; 16]).unwrap();
        let file = std::fs::File::options()
            .write(true)
            .open(dir.path().join("f"))
            .unwrap();
        file.set_modified(UNIX_EPOCH + std::time::Duration::from_secs(1_000_000))
            .unwrap();
        assert!(!loaded.matches(&storage));
        assert_eq!(ResumeData::load(&dir.path().join("none")).unwrap(), None);
    }

    proptest! {
        #[test]
        fn parsing_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = ResumeData::from_bytes(&bytes);
        }

        #[test]
        fn round_trips(verified in proptest::collection::vec(any::<bool>(), 0..64),
                       files in proptest::collection::vec((0u64..1 << 62, 0u64..1 << 62), 0..8)) {
            let data = ResumeData { verified, files };
            prop_assert_eq!(ResumeData::from_bytes(&data.to_bytes()).unwrap(), data);
        }
    }
}
