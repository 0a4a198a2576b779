//! The one error type of the crate.

use std::path::PathBuf;

/// Why a torrent, a magnet link or a torrent creation was rejected.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input is not valid canonical bencode (truncated, unsorted keys, too deep...).
    #[error("not a valid torrent: {0}")]
    Bencode(#[from] bencode::Error),
    /// A required key is absent or has the wrong type.
    #[error("missing or malformed `{0}`")]
    Missing(&'static str),
    /// A key is present with a value that breaks the specification.
    #[error("invalid `{field}`: {reason}")]
    Invalid {
        /// The key, as written in the torrent.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A file name that could escape the download directory or is not portable.
    #[error("unsafe file path {path:?}: {reason}")]
    UnsafePath {
        /// The offending path, components joined with `/`.
        path: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// The v2 `piece layers` do not match the file tree (BEP 52).
    #[error("invalid piece layers: {0}")]
    PieceLayers(String),
    /// The v1 file list and the v2 file tree of a hybrid torrent disagree.
    #[error("hybrid torrent is inconsistent: {0}")]
    Hybrid(String),
    /// A magnet link that cannot be understood.
    #[error("invalid magnet link: {0}")]
    Magnet(String),
    /// A hex or base32 info-hash of the wrong length or alphabet.
    #[error("invalid info-hash {0:?}: expected 40 hex or 32 base32 characters (v1), or 64 hex characters (v2)")]
    InfoHash(String),
    /// Torrent creation was asked for something impossible.
    #[error("cannot create the torrent: {0}")]
    Create(String),
    /// Reading content from disk failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory being read.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Error {
        Error::Invalid {
            field,
            reason: reason.into(),
        }
    }
}
