//! The index's durable store: SQLite with an FTS5 table, ranked by BM25.
//!
//! Why SQLite + FTS5: one embedded file, transactions that are on disk before `publish` is
//! acknowledged (WAL, `synchronous=FULL`), and BM25 ranking built in; tantivy would rank as well
//! but needs its own commit and merge management for a few thousand small records.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};
use tracker::index::{FileEntry, TorrentRecord};
use tracker::InfoHash;

/// Most rows a search reads from the full-text index before re-ranking.
const SEARCH_CANDIDATES_MAX: usize = 200;

/// A failure of the index store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused.
    #[error("index database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored row could not be read back.
    #[error("index database holds a bad row: {0}")]
    BadRow(String),
}

/// One search hit, before live swarm counts are added.
#[derive(Clone, Debug)]
pub struct Hit {
    /// The record.
    pub record: TorrentRecord,
    /// BM25 relevance (higher is better; FTS5's `bm25()` negated).
    pub relevance: f64,
}

/// The index database.
pub struct Store {
    conn: Connection,
}

impl Store {
    /// Opens (creating if needed) the database at `path`, or an in-memory one for `None`.
    pub fn open(path: Option<&Path>) -> Result<Store, StoreError> {
        let conn = match path {
            Some(p) => Connection::open(p)?,
            None => Connection::open_in_memory()?,
        };
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             PRAGMA synchronous=FULL;
             CREATE TABLE IF NOT EXISTS torrents (
                 id INTEGER PRIMARY KEY,
                 key TEXT UNIQUE NOT NULL,
                 info_hash_v1 TEXT,
                 info_hash_v2 TEXT,
                 name TEXT NOT NULL,
                 total_size INTEGER NOT NULL,
                 magnet TEXT NOT NULL,
                 files TEXT NOT NULL
             );
             CREATE VIRTUAL TABLE IF NOT EXISTS torrents_fts
                 USING fts5(name, paths, tokenize = 'unicode61');",
        )?;
        Ok(Store { conn })
    }

    /// Adds or replaces a record; returns once it is committed to disk.
    pub fn publish(&mut self, record: &TorrentRecord) -> Result<(), StoreError> {
        let files = serde_json::to_string(
            &record
                .files
                .iter()
                .map(|f| (f.path.as_str(), f.size))
                .collect::<Vec<_>>(),
        )
        .map_err(|e| StoreError::BadRow(e.to_string()))?;
        let tx = self.conn.transaction()?;
        let key = record.key();
        let old: Option<i64> = tx
            .query_row("SELECT id FROM torrents WHERE key = ?1", [&key], |r| {
                r.get(0)
            })
            .optional()?;
        if let Some(id) = old {
            tx.execute("DELETE FROM torrents WHERE id = ?1", [id])?;
            tx.execute("DELETE FROM torrents_fts WHERE rowid = ?1", [id])?;
        }
        tx.execute(
            "INSERT INTO torrents (key, info_hash_v1, info_hash_v2, name, total_size, magnet, files)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                key,
                record.info_hash_v1.map(|h| h.to_hex()),
                record.info_hash_v2.map(|h| tracker::to_hex(&h)),
                record.name,
                i64::try_from(record.total_size).unwrap_or(i64::MAX),
                record.magnet,
                files,
            ],
        )?;
        let id = tx.last_insert_rowid();
        tx.execute(
            "INSERT INTO torrents_fts (rowid, name, paths) VALUES (?1, ?2, ?3)",
            params![id, record.name, record.files_text()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Records matching the FTS5 `query` (see [`tracker::index::fts_query`]), best first, with
    /// the torrent name weighted ten times the file paths.
    pub fn search(&self, query: &str) -> Result<Vec<Hit>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT t.key, t.info_hash_v1, t.info_hash_v2, t.name, t.total_size, t.magnet,
                    t.files, bm25(torrents_fts, 10.0, 1.0)
             FROM torrents_fts JOIN torrents t ON t.id = torrents_fts.rowid
             WHERE torrents_fts MATCH ?1 ORDER BY bm25(torrents_fts, 10.0, 1.0) LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![query, SEARCH_CANDIDATES_MAX as i64], |r| {
            Ok((row_to_record(r), r.get::<_, f64>(7)?))
        })?;
        let mut hits = Vec::new();
        for row in rows {
            let (record, bm25) = row?;
            hits.push(Hit {
                record: record?,
                relevance: -bm25,
            });
        }
        Ok(hits)
    }

    /// The record whose v1 or v2 info-hash is `hex`.
    pub fn get(&self, hex: &str) -> Result<Option<TorrentRecord>, StoreError> {
        let hex = hex.to_ascii_lowercase();
        let found = self
            .conn
            .query_row(
                "SELECT key, info_hash_v1, info_hash_v2, name, total_size, magnet, files
                 FROM torrents WHERE info_hash_v1 = ?1 OR info_hash_v2 = ?1",
                [&hex],
                |r| Ok(row_to_record(r)),
            )
            .optional()?;
        found.transpose()
    }

    /// How many torrents are indexed.
    pub fn count(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn
            .query_row("SELECT count(*) FROM torrents", [], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

fn row_to_record(r: &rusqlite::Row<'_>) -> Result<TorrentRecord, StoreError> {
    let bad = |what: &str| StoreError::BadRow(what.to_string());
    let v1: Option<String> = r.get(1)?;
    let v2: Option<String> = r.get(2)?;
    let files: String = r.get(6)?;
    let files: Vec<(String, u64)> =
        serde_json::from_str(&files).map_err(|e| StoreError::BadRow(e.to_string()))?;
    let info_hash_v2 = match v2 {
        Some(t) => Some(tracker::from_hex::<32>(&t).ok_or_else(|| bad("info_hash_v2"))?),
        None => None,
    };
    Ok(TorrentRecord {
        info_hash_v1: match v1 {
            Some(t) => Some(InfoHash::from_hex(&t).ok_or_else(|| bad("info_hash_v1"))?),
            None => None,
        },
        info_hash_v2,
        name: r.get(3)?,
        total_size: u64::try_from(r.get::<_, i64>(4)?).unwrap_or(0),
        magnet: r.get(5)?,
        files: files
            .into_iter()
            .map(|(path, size)| FileEntry { path, size })
            .collect(),
    })
}
