//! The searchable index's logic: what a published torrent record holds, its limits, and how
//! user keywords become a safe full-text query (SQLite FTS5 syntax, ranked by BM25 in the
//! node's store).

use crate::{Error, InfoHash};

/// Longest torrent name accepted.
pub const NAME_BYTES_MAX: usize = 1024;
/// Most files listed for one torrent.
pub const FILES_MAX: usize = 10_000;
/// Longest file path accepted.
pub const PATH_BYTES_MAX: usize = 4096;
/// Longest magnet link accepted.
pub const MAGNET_BYTES_MAX: usize = 8192;
/// Most keywords in one search.
pub const QUERY_TERMS_MAX: usize = 16;
/// Longest keyword kept.
const TERM_CHARS_MAX: usize = 64;

/// One file of a published torrent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    /// Path inside the torrent, `/`-separated.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
}

/// What a peer publishes about a torrent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TorrentRecord {
    /// The v1 info-hash (SHA-1), if the torrent has one.
    pub info_hash_v1: Option<InfoHash>,
    /// The v2 info-hash (SHA-256, BEP 52), if the torrent has one.
    pub info_hash_v2: Option<[u8; 32]>,
    /// The torrent's name.
    pub name: String,
    /// Its files.
    pub files: Vec<FileEntry>,
    /// Sum of the file sizes.
    pub total_size: u64,
    /// A magnet link for it.
    pub magnet: String,
}

impl TorrentRecord {
    /// The record's key: the v1 info-hash in hex, else the v2 one.
    pub fn key(&self) -> String {
        match (&self.info_hash_v1, &self.info_hash_v2) {
            (Some(h), _) => h.to_hex(),
            (None, Some(h)) => crate::to_hex(h),
            (None, None) => String::new(),
        }
    }

    /// The info-hash the tracker's swarm is keyed by: v1, else v2 truncated to 20 bytes
    /// (BEP 52).
    pub fn tracker_hash(&self) -> Option<InfoHash> {
        self.info_hash_v1.or_else(|| {
            self.info_hash_v2
                .and_then(|h| InfoHash::from_slice(&h[..20]))
        })
    }

    /// Checks the limits and the consistency of a record received from the network.
    pub fn validate(&self) -> Result<(), Error> {
        if self.info_hash_v1.is_none() && self.info_hash_v2.is_none() {
            return Err(Error::Missing("info hash"));
        }
        if self.name.trim().is_empty() {
            return Err(Error::Missing("name"));
        }
        if self.name.len() > NAME_BYTES_MAX {
            return Err(Error::TooLarge("name"));
        }
        if self.files.len() > FILES_MAX {
            return Err(Error::TooLarge("file list"));
        }
        if self.files.iter().any(|f| f.path.len() > PATH_BYTES_MAX) {
            return Err(Error::TooLarge("file path"));
        }
        if self.magnet.len() > MAGNET_BYTES_MAX {
            return Err(Error::TooLarge("magnet"));
        }
        if !self.magnet.starts_with("magnet:?") {
            return Err(Error::Invalid("magnet"));
        }
        let sum = self
            .files
            .iter()
            .try_fold(0u64, |acc, f| acc.checked_add(f.size));
        if sum != Some(self.total_size) {
            return Err(Error::Invalid("total size"));
        }
        Ok(())
    }

    /// The text indexed for the file column: every path, one a line.
    pub fn files_text(&self) -> String {
        let paths: Vec<&str> = self.files.iter().map(|f| f.path.as_str()).collect();
        paths.join("\n")
    }
}

/// Turns free user words into an FTS5 query: alphanumeric terms only, each a quoted prefix
/// query, all required. `None` when no term is left. Nothing the user types can reach FTS5's
/// query syntax (operators, column filters, quotes).
pub fn fts_query(words: &str) -> Option<String> {
    let terms: Vec<String> = words
        .split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .take(QUERY_TERMS_MAX)
        .map(|t| {
            let term: String = t.chars().take(TERM_CHARS_MAX).collect();
            format!("\"{term}\"*")
        })
        .collect();
    (!terms.is_empty()).then(|| terms.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn query_keeps_words_and_drops_syntax() {
        assert_eq!(
            fts_query("Ubuntu 22.04 \"desktop\" OR name:x*").as_deref(),
            Some("\"Ubuntu\"* \"22\"* \"04\"* \"desktop\"* \"OR\"* \"name\"* \"x\"*")
        );
        assert_eq!(fts_query("  -- ** "), None);
    }

    #[test]
    fn validate_checks_sizes() {
        let mut r = TorrentRecord {
            info_hash_v1: Some(InfoHash([1; 20])),
            info_hash_v2: None,
            name: "x".into(),
            files: vec![FileEntry {
                path: "x".into(),
                size: 5,
            }],
            total_size: 5,
            magnet: "magnet:?xt=urn:btih:01".into(),
        };
        assert_eq!(r.validate(), Ok(()));
        r.total_size = 6;
        assert_eq!(r.validate(), Err(Error::Invalid("total size")));
        r.total_size = 5;
        r.info_hash_v1 = None;
        assert_eq!(r.validate(), Err(Error::Missing("info hash")));
    }

    proptest! {
        #[test]
        fn query_terms_are_always_quoted_words(words in ".{0,200}") {
            if let Some(q) = fts_query(&words) {
                for term in q.split(' ') {
                    let inner = term.strip_prefix('"').and_then(|t| t.strip_suffix("\"*"));
                    prop_assert!(inner.is_some_and(|t| !t.is_empty() && t.chars().all(char::is_alphanumeric)), "{}", term);
                }
            }
        }
    }
}
