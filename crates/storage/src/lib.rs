//! Torrent storage: the byte stream of a torrent mapped onto files, plain synchronous code.
//!
//! - [`Layout`]: where each byte of the stream lives (multi-file, BEP 47 pad files never written,
//!   paths made safe under the download directory by `metainfo::safe_relative_path`).
//! - [`Storage`]: files created sparse at their final size, positional reads and writes (so one
//!   `Storage` can serve several blocking-pool threads at once), whole-piece reads for hashing,
//!   and writes of aligned piece data ([`PieceBuffer`]) around the page cache.
//! - [`ResumeData`]: the verified bitfield with each file's size and modification time; if any
//!   file changed since it was written (a crash, a kill -9, a user edit) the caller rechecks
//!   instead of trusting it ([`Storage::recheck`]).
//!
//! The node calls this from its blocking pool; nothing here is async.

mod layout;
mod piece_buffer;
mod resume;
mod store;

pub use layout::{FileSlot, Layout};
pub use piece_buffer::{PieceBuffer, DIRECT_IO_ALIGN};
pub use resume::ResumeData;
pub use store::Storage;

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file path in the torrent could escape the download directory.
    #[error("unsafe path in torrent: {0}")]
    UnsafePath(#[from] metainfo::Error),
    /// A read or write outside the torrent's byte stream.
    #[error("range {offset}+{len} is outside the torrent ({total} bytes)")]
    OutOfRange {
        /// Start in the stream.
        offset: u64,
        /// Length.
        len: u64,
        /// Stream length.
        total: u64,
    },
    /// An I/O error on a file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A resume file that cannot be parsed.
    #[error("resume data is malformed: {0}")]
    BadResume(&'static str),
}
