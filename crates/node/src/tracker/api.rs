//! The tracker's HTTP surface: `/announce` and `/scrape` (optionally `/<passkey>`), the JSON API
//! (`/api/search`, `/api/torrents/<infohash>`, `/api/publish`, `/api/stats`; see
//! docs/TRACKER.md) and the web page at `/`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, Query, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use sansio::Timestamp;
use serde::{Deserialize, Serialize};
use tracker::index::{FileEntry, TorrentRecord};
use tracker::server::Tracker;
use tracker::InfoHash;

use super::Shared;

/// Most results one search returns.
pub const SEARCH_RESULTS_MAX: usize = 200;
/// Largest publish body accepted.
const PUBLISH_BYTES_MAX: usize = 4 << 20;

/// One file in the JSON API.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileJson {
    /// Path inside the torrent.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
}

/// The body of `POST /api/publish`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PublishRequest {
    /// v1 info-hash, 40 hex digits.
    pub info_hash_v1: Option<String>,
    /// v2 info-hash, 64 hex digits.
    pub info_hash_v2: Option<String>,
    /// Torrent name.
    pub name: String,
    /// Files (pad files left out).
    pub files: Vec<FileJson>,
    /// Sum of file sizes.
    pub total_size: u64,
    /// Magnet link.
    pub magnet: String,
}

impl PublishRequest {
    /// The request describing `record`.
    pub fn from_record(record: &TorrentRecord) -> PublishRequest {
        PublishRequest {
            info_hash_v1: record.info_hash_v1.map(|h| h.to_hex()),
            info_hash_v2: record.info_hash_v2.map(|h| tracker::to_hex(&h)),
            name: record.name.clone(),
            files: files_json(record),
            total_size: record.total_size,
            magnet: record.magnet.clone(),
        }
    }

    /// The validated record, or what is wrong with it.
    pub fn to_record(&self) -> Result<TorrentRecord, tracker::Error> {
        let info_hash_v1 = match &self.info_hash_v1 {
            Some(t) => Some(InfoHash::from_hex(t).ok_or(tracker::Error::Invalid("info_hash_v1"))?),
            None => None,
        };
        let info_hash_v2 = match &self.info_hash_v2 {
            Some(t) => {
                Some(tracker::from_hex::<32>(t).ok_or(tracker::Error::Invalid("info_hash_v2"))?)
            }
            None => None,
        };
        let record = TorrentRecord {
            info_hash_v1,
            info_hash_v2,
            name: self.name.clone(),
            files: self
                .files
                .iter()
                .map(|f| FileEntry {
                    path: f.path.clone(),
                    size: f.size,
                })
                .collect(),
            total_size: self.total_size,
            magnet: self.magnet.clone(),
        };
        record.validate()?;
        Ok(record)
    }
}

/// The answer to `POST /api/publish`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PublishResponse {
    /// The record's key (v1 info-hash hex, else v2).
    pub info_hash: String,
}

/// One search result.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SearchHit {
    /// The record's key (v1 info-hash hex, else v2).
    pub info_hash: String,
    /// Torrent name.
    pub name: String,
    /// Total size in bytes.
    pub total_size: u64,
    /// Number of files.
    pub file_count: usize,
    /// Magnet link.
    pub magnet: String,
    /// Live seeders on this tracker.
    pub seeders: u32,
    /// Live leechers on this tracker.
    pub leechers: u32,
    /// Completed downloads seen by this tracker.
    pub downloaded: u32,
    /// BM25 text relevance.
    pub relevance: f64,
    /// The ranking score: relevance boosted by live seeders.
    pub score: f64,
}

/// The answer to `GET /api/search`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SearchResponse {
    /// The words searched for.
    pub query: String,
    /// Results, best first.
    pub results: Vec<SearchHit>,
}

/// The answer to `GET /api/torrents/<infohash>`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TorrentDetails {
    /// v1 info-hash hex.
    pub info_hash_v1: Option<String>,
    /// v2 info-hash hex.
    pub info_hash_v2: Option<String>,
    /// Torrent name.
    pub name: String,
    /// Total size in bytes.
    pub total_size: u64,
    /// Files.
    pub files: Vec<FileJson>,
    /// Magnet link.
    pub magnet: String,
    /// Live seeders.
    pub seeders: u32,
    /// Live leechers.
    pub leechers: u32,
    /// Completed downloads seen.
    pub downloaded: u32,
}

/// The answer to `GET /api/stats`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StatsResponse {
    /// Swarms tracked.
    pub torrents: u64,
    /// Peers tracked.
    pub peers: u64,
    /// Seeders tracked.
    pub seeders: u64,
    /// Announces answered.
    pub announces: u64,
    /// Scrapes answered.
    pub scrapes: u64,
    /// UDP connects answered.
    pub connects: u64,
    /// Requests refused or dropped.
    pub refused: u64,
    /// Torrents in the index.
    pub indexed: u64,
}

fn files_json(record: &TorrentRecord) -> Vec<FileJson> {
    record
        .files
        .iter()
        .map(|f| FileJson {
            path: f.path.clone(),
            size: f.size,
        })
        .collect()
}

type AppState = Arc<Shared>;

pub(crate) fn router(shared: AppState) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/announce", get(announce))
        .route("/announce/{passkey}", get(announce_with_key))
        .route("/scrape", get(scrape))
        .route("/scrape/{passkey}", get(scrape_with_key))
        .route("/api/search", get(search))
        .route("/api/torrents/{hash}", get(torrent))
        .route("/api/publish", post(publish))
        .route("/api/stats", get(stats))
        .layer(axum::extract::DefaultBodyLimit::max(PUBLISH_BYTES_MAX))
        .with_state(shared)
}

fn bencoded(body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain")], body).into_response()
}

fn json_error(status: StatusCode, message: impl ToString) -> Response {
    let body = serde_json::json!({ "error": message.to_string() });
    (status, Json(body)).into_response()
}

async fn announce(
    State(s): State<AppState>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    RawQuery(q): RawQuery,
) -> Response {
    answer(&s, from, None, q, Tracker::handle_http_announce)
}

async fn announce_with_key(
    State(s): State<AppState>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    Path(passkey): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    answer(&s, from, Some(&passkey), q, Tracker::handle_http_announce)
}

async fn scrape(
    State(s): State<AppState>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    RawQuery(q): RawQuery,
) -> Response {
    answer(&s, from, None, q, Tracker::handle_http_scrape)
}

async fn scrape_with_key(
    State(s): State<AppState>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    Path(passkey): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    answer(&s, from, Some(&passkey), q, Tracker::handle_http_scrape)
}

/// Runs one of the core's HTTP handlers (announce or scrape) and sends its bencoded answer.
fn answer(
    s: &AppState,
    from: SocketAddr,
    passkey: Option<&str>,
    query: Option<String>,
    handler: fn(&mut Tracker, Timestamp, IpAddr, Option<&str>, &str) -> Vec<u8>,
) -> Response {
    let now = s.clock.now();
    bencoded(handler(
        &mut s.core(),
        now,
        from.ip(),
        passkey,
        query.as_deref().unwrap_or(""),
    ))
}

#[derive(Deserialize)]
struct SearchParams {
    q: Option<String>,
    limit: Option<usize>,
}

async fn search(State(s): State<AppState>, Query(params): Query<SearchParams>) -> Response {
    let words = params.q.unwrap_or_default();
    let limit = params.limit.unwrap_or(50).min(SEARCH_RESULTS_MAX);
    let Some(query) = tracker::index::fts_query(&words) else {
        return Json(SearchResponse {
            query: words,
            results: Vec::new(),
        })
        .into_response();
    };
    let hits = match s.store().search(&query) {
        Ok(hits) => hits,
        Err(err) => return json_error(StatusCode::INTERNAL_SERVER_ERROR, err),
    };
    let core = s.core();
    let mut results: Vec<SearchHit> = hits
        .into_iter()
        .map(|hit| {
            let stats = hit
                .record
                .tracker_hash()
                .map(|h| core.swarm_stats(&h))
                .unwrap_or_default();
            // A live swarm is worth more than a dead one with the same words; the boost is
            // logarithmic so relevance still leads.
            let boost = 1.0 + 0.25 * f64::from(stats.complete).ln_1p();
            SearchHit {
                info_hash: hit.record.key(),
                name: hit.record.name.clone(),
                total_size: hit.record.total_size,
                file_count: hit.record.files.len(),
                magnet: hit.record.magnet.clone(),
                seeders: stats.complete,
                leechers: stats.incomplete,
                downloaded: stats.downloaded,
                relevance: hit.relevance,
                score: hit.relevance * boost,
            }
        })
        .collect();
    drop(core);
    results.sort_by(|a, b| b.score.total_cmp(&a.score));
    results.truncate(limit);
    Json(SearchResponse {
        query: words,
        results,
    })
    .into_response()
}

async fn torrent(State(s): State<AppState>, Path(hash): Path<String>) -> Response {
    if !(hash.len() == 40 || hash.len() == 64) || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return json_error(
            StatusCode::BAD_REQUEST,
            "info-hash must be 40 or 64 hex digits",
        );
    }
    let record = match s.store().get(&hash) {
        Ok(Some(record)) => record,
        Ok(None) => return json_error(StatusCode::NOT_FOUND, "no such torrent in the index"),
        Err(err) => return json_error(StatusCode::INTERNAL_SERVER_ERROR, err),
    };
    let stats = record
        .tracker_hash()
        .map(|h| s.core().swarm_stats(&h))
        .unwrap_or_default();
    Json(TorrentDetails {
        info_hash_v1: record.info_hash_v1.map(|h| h.to_hex()),
        info_hash_v2: record.info_hash_v2.map(|h| tracker::to_hex(&h)),
        name: record.name.clone(),
        total_size: record.total_size,
        files: files_json(&record),
        magnet: record.magnet.clone(),
        seeders: stats.complete,
        leechers: stats.incomplete,
        downloaded: stats.downloaded,
    })
    .into_response()
}

async fn publish(State(s): State<AppState>, body: axum::body::Bytes) -> Response {
    let request: PublishRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(err) => return json_error(StatusCode::BAD_REQUEST, format!("bad publish body: {err}")),
    };
    let record = match request.to_record() {
        Ok(r) => r,
        Err(err) => return json_error(StatusCode::BAD_REQUEST, err),
    };
    // The row is committed (fsync'd) before the answer goes out: an acknowledged publish
    // survives a restart. The wait for the disk happens off the async workers, which keep
    // answering announces meanwhile.
    let key = record.key();
    let committed = tokio::task::spawn_blocking(move || s.store().publish(&record)).await;
    match committed {
        Ok(Ok(())) => Json(PublishResponse { info_hash: key }).into_response(),
        Ok(Err(err)) => json_error(StatusCode::INTERNAL_SERVER_ERROR, err),
        Err(err) => json_error(StatusCode::INTERNAL_SERVER_ERROR, err),
    }
}

async fn stats(State(s): State<AppState>) -> Response {
    let indexed = match s.store().count() {
        Ok(n) => n,
        Err(err) => return json_error(StatusCode::INTERNAL_SERVER_ERROR, err),
    };
    let t = s.core().stats();
    Json(StatsResponse {
        torrents: t.torrents,
        peers: t.peers,
        seeders: t.seeders,
        announces: t.announces,
        scrapes: t.scrapes,
        connects: t.connects,
        refused: t.refused,
        indexed,
    })
    .into_response()
}

async fn page() -> Html<&'static str> {
    Html(include_str!("page.html"))
}
