//! The tracker client: announces a torrent to its trackers and hands the peers they return to
//! the swarm (BEP 3 HTTP announce with BEP 23 compact and BEP 7 IPv6 peers, BEP 12 announce-list
//! tiers, BEP 15 UDP trackers, BEP 48 scrape; HTTPS through rustls).
//!
//! [`run`] is one task per torrent. It announces `started` once the swarm is ready, re-announces
//! at the tracker's interval (never sooner than its `min interval`), sends `completed` when the
//! download completes during the run and `stopped` when the run ends, and pushes every peer a
//! tracker returns into the swarm's `discovered` channel. The decisions (which tracker, when,
//! which event) are made by the I/O-free [`schedule`] module; this file only does the talking.
//!
//! A tracker that fails is logged with its URL and reason (the tracker's own `failure reason`
//! when it gives one) and the next one is tried; when all fail the announce is retried later
//! with a growing delay. Nothing a tracker does ends the download.

mod http;
pub mod schedule;
mod swarm_feed;
mod udp;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use sansio::{Rng, RngExt, Timestamp};
use tokio::sync::{mpsc, watch};
use tracker::{Event, InfoHash, PeerId, ScrapeStats};

use schedule::{Schedule, Tiers};
pub use swarm_feed::{announce_swarm, configs_for, forget_trackers, tiers_of, transfer_of};

/// Peers asked of a tracker in each announce.
pub const NUMWANT_DEFAULT: u32 = 50;

/// Errors of one tracker request. None of them is fatal to a download.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The URL's scheme is neither `http`, `https` nor `udp`.
    #[error("unsupported tracker URL scheme (only http, https and udp are spoken)")]
    UnsupportedScheme,
    /// The URL could not be understood.
    #[error("bad tracker URL {0}")]
    BadUrl(String),
    /// The tracker could not be reached, or the connection broke.
    #[error("{0}")]
    Transport(String),
    /// The HTTP tracker answered with an error status and no failure reason.
    #[error("HTTP status {0}")]
    HttpStatus(u16),
    /// The UDP tracker never answered.
    #[error("no answer after {attempts} tries")]
    NoAnswer {
        /// Requests sent.
        attempts: u32,
    },
    /// The tracker's announce URL has no scrape counterpart (BEP 48 convention).
    #[error("this tracker does not support scrape")]
    ScrapeUnsupported,
    /// The answer could not be decoded, or it is the tracker's failure reason.
    #[error(transparent)]
    Protocol(#[from] tracker::Error),
}

/// What the announcer needs to know about the torrent and how hard to try.
#[derive(Clone, Debug)]
pub struct Config {
    /// Tracker URLs as BEP 12 tiers (the torrent's `trackers()`; a magnet's `tr` as one tier).
    pub tiers: Vec<Vec<String>>,
    /// The torrent's info-hash as trackers see it (v1, or v2 truncated to 20 bytes).
    pub info_hash: InfoHash,
    /// Our peer id, the same the swarm sends in handshakes.
    pub peer_id: PeerId,
    /// Peers to ask for in each announce.
    pub numwant: u32,
    /// Bound on one HTTP request, connect to last byte.
    pub http_timeout: Duration,
    /// How long to wait for a UDP tracker's first answer (doubled at each retry; BEP 15 says 15 s).
    pub udp_timeout_first: Duration,
    /// UDP requests sent before a tracker counts as down.
    pub udp_attempts: u32,
    /// Bound on the whole `stopped` announce at the end of a run.
    pub stop_timeout: Duration,
    /// The local address requests leave from (trackers record it as ours); `None`: any.
    pub local_ip: Option<IpAddr>,
    /// Seed for tier shuffling, the announce key and UDP transaction ids.
    pub seed: u64,
}

impl Config {
    /// Defaults for the open Internet for `tiers`, `info_hash` and `peer_id`.
    pub fn new(tiers: Vec<Vec<String>>, info_hash: InfoHash, peer_id: PeerId, seed: u64) -> Config {
        Config {
            tiers,
            info_hash,
            peer_id,
            numwant: NUMWANT_DEFAULT,
            http_timeout: Duration::from_secs(15),
            udp_timeout_first: Duration::from_secs(15),
            udp_attempts: 3,
            stop_timeout: Duration::from_secs(5),
            local_ip: None,
            seed,
        }
    }
}

/// The swarm's state as the announcer reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Transfer {
    /// Whether the swarm is ready to be announced (listening, its data checked).
    pub ready: bool,
    /// The port peers can reach us on.
    pub port: u16,
    /// Payload bytes sent this run.
    pub uploaded: u64,
    /// Payload bytes received this run.
    pub downloaded: u64,
    /// Bytes still missing; `None` while unknown (a magnet link before its metadata).
    pub left: Option<u64>,
}

/// What the announcer has done so far, for a display and for tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Announces a tracker answered.
    pub announces: u32,
    /// Announces that no tracker answered.
    pub failed_announces: u32,
    /// The event of the last answered announce.
    pub last_event: Option<Event>,
    /// The tracker that answered last.
    pub last_tracker: Option<String>,
    /// The last tracker error, as `url: reason`.
    pub last_error: Option<String>,
    /// Seeders and leechers in the last answer, when the tracker said.
    pub swarm: Option<(u32, u32)>,
    /// Peers handed to the swarm.
    pub peers_discovered: u64,
    /// The announcer has finished (after its `stopped` announce, if one was due).
    pub finished: bool,
}

/// The parameters of one announce, whatever the transport.
#[derive(Clone, Debug)]
pub(crate) struct Params {
    pub(crate) info_hash: InfoHash,
    pub(crate) peer_id: PeerId,
    pub(crate) port: u16,
    pub(crate) uploaded: u64,
    pub(crate) downloaded: u64,
    pub(crate) left: u64,
    pub(crate) event: Event,
    pub(crate) numwant: u32,
    pub(crate) key: u32,
}

/// A tracker's answer to an announce, whatever the transport.
struct Answer {
    interval: u32,
    min_interval: Option<u32>,
    swarm: Option<(u32, u32)>,
    peers: Vec<SocketAddr>,
    warning: Option<String>,
}

/// `left` sent while it is unknown (libtorrent does the same): non-zero, so we count as a leecher.
const LEFT_UNKNOWN: u64 = 16 * 1024;

/// Both transports, with what they remember between requests.
struct Clients {
    http: http::HttpClient,
    udp: udp::UdpClient,
}

impl Clients {
    fn new(config: &Config, rng: Rng) -> Result<Clients, Error> {
        Ok(Clients {
            http: http::HttpClient::new(config.http_timeout, config.local_ip)?,
            udp: udp::UdpClient::new(
                rng,
                config.udp_timeout_first,
                config.udp_attempts,
                config.local_ip,
            ),
        })
    }

    async fn announce(&mut self, url: &str, params: &Params) -> Result<Answer, Error> {
        if url.starts_with("udp://") {
            let a = self.udp.announce(url, params).await?;
            Ok(Answer {
                interval: a.interval,
                min_interval: None,
                swarm: Some((a.seeders, a.leechers)),
                peers: a.peers,
                warning: None,
            })
        } else if url.starts_with("http://") || url.starts_with("https://") {
            let a = self.http.announce(url, params).await?;
            Ok(Answer {
                interval: a.interval,
                min_interval: a.min_interval,
                swarm: a.complete.zip(a.incomplete),
                peers: a.peers,
                warning: a.warning,
            })
        } else {
            Err(Error::UnsupportedScheme)
        }
    }

    async fn scrape(
        &mut self,
        url: &str,
        info_hashes: &[InfoHash],
    ) -> Result<Vec<(InfoHash, ScrapeStats)>, Error> {
        if url.starts_with("udp://") {
            self.udp.scrape(url, info_hashes).await
        } else if url.starts_with("http://") || url.starts_with("https://") {
            Ok(self.http.scrape(url, info_hashes).await?.files)
        } else {
            Err(Error::UnsupportedScheme)
        }
    }
}

/// Asks the tracker at `url` (HTTP, HTTPS or UDP) for the counts of `info_hashes` (BEP 48,
/// BEP 15), with `config`'s timeouts.
pub async fn scrape(
    config: &Config,
    url: &str,
    info_hashes: &[InfoHash],
) -> Result<Vec<(InfoHash, ScrapeStats)>, Error> {
    Clients::new(config, Rng::from_seed(config.seed))?
        .scrape(url, info_hashes)
        .await
}

/// Announces one torrent to its trackers until `shutdown` resolves or `transfer`'s sender is
/// dropped, then sends `stopped` (bounded by `config.stop_timeout`). Peers go to `discovered`;
/// when it is full the rest of that answer is dropped (the next announce brings them again).
/// Returns at once when the torrent has no tracker.
pub async fn run(
    config: Config,
    mut transfer: watch::Receiver<Transfer>,
    discovered: mpsc::Sender<SocketAddr>,
    report: watch::Sender<Report>,
    shutdown: impl Future<Output = ()>,
) {
    let mut rng = Rng::from_seed(config.seed);
    let mut tiers = Tiers::new(config.tiers.clone(), &mut rng);
    let clients = match Clients::new(&config, rng.child()) {
        Ok(clients) => clients,
        Err(error) => {
            tracing::error!("trackers disabled: {error}");
            report.send_modify(|r| r.finished = true);
            return;
        }
    };
    let mut announcer = Announcer {
        key: rng.gen(),
        clients,
        config,
        discovered,
        report,
    };
    tokio::pin!(shutdown);
    if tiers.is_empty() {
        announcer.report.send_modify(|r| r.finished = true);
        return;
    }
    // Announce nothing until the swarm listens and knows what it has.
    let ready = tokio::select! {
        ready = transfer.wait_for(|t| t.ready) => ready.map(|t| *t).ok(),
        () = &mut shutdown => None,
    };
    let Some(first) = ready else {
        announcer.report.send_modify(|r| r.finished = true);
        return;
    };
    let clock = tokio::time::Instant::now();
    let now = || Timestamp::from_micros(clock.elapsed().as_micros() as u64);
    let mut schedule = Schedule::new(now(), first.left == Some(0));
    let announcer_stop_timeout = announcer.config.stop_timeout;
    // Whether the run goes on; false once `shutdown` resolved or the swarm dropped `transfer`.
    let mut running = true;
    while running {
        if let Some(event) = schedule.poll_announce(now()) {
            let params = announcer.params(&transfer.borrow(), event);
            let announce = announcer.announce_once(&mut tiers, &params);
            tokio::pin!(announce);
            // The swarm may finish while a tracker is being waited for: the announce (often the
            // `completed` one) may still end within `stop_timeout`, a slow tracker is left.
            let mut give_up_at = None;
            let answered = loop {
                tokio::select! {
                    answered = &mut announce => break answered,
                    changed = transfer.changed(), if give_up_at.is_none() => {
                        if changed.is_err() {
                            running = false;
                            give_up_at =
                                Some(tokio::time::Instant::now() + announcer_stop_timeout);
                        } else if transfer.borrow().left == Some(0) {
                            schedule.handle_completed(now());
                        }
                    }
                    () = sleep_until_some(give_up_at) => break None,
                    () = &mut shutdown => {
                        running = false;
                        break None;
                    }
                }
            };
            match answered {
                Some(answer) => {
                    schedule.handle_success(now(), event, answer.interval, answer.min_interval)
                }
                None if running => schedule.handle_failure(now()),
                None => {}
            }
            continue;
        }
        let wake = clock + Duration::from_micros(schedule.poll_timeout().as_micros());
        tokio::select! {
            () = tokio::time::sleep_until(wake) => {}
            changed = transfer.changed() => {
                if changed.is_err() {
                    running = false;
                } else if transfer.borrow().left == Some(0) {
                    schedule.handle_completed(now());
                }
            }
            () = &mut shutdown => running = false,
        }
    }
    if schedule.needs_stopped() {
        let params = announcer.params(&transfer.borrow(), Event::Stopped);
        let stop_timeout = announcer.config.stop_timeout;
        let stopped =
            tokio::time::timeout(stop_timeout, announcer.announce_once(&mut tiers, &params)).await;
        if stopped.is_err() {
            tracing::info!("no tracker acknowledged `stopped` within {stop_timeout:?}");
        }
    }
    announcer.report.send_modify(|r| r.finished = true);
}

/// Sleeps until `at`, or forever when there is no `at`.
async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The announcer's I/O half: transports, what it reports, where peers go.
struct Announcer {
    config: Config,
    key: u32,
    clients: Clients,
    discovered: mpsc::Sender<SocketAddr>,
    report: watch::Sender<Report>,
}

impl Announcer {
    fn params(&self, transfer: &Transfer, event: Event) -> Params {
        Params {
            info_hash: self.config.info_hash,
            peer_id: self.config.peer_id,
            port: transfer.port,
            uploaded: transfer.uploaded,
            downloaded: transfer.downloaded,
            left: transfer.left.unwrap_or(LEFT_UNKNOWN),
            event,
            numwant: if event == Event::Stopped {
                0
            } else {
                self.config.numwant
            },
            key: self.key,
        }
    }

    /// Tries the trackers in BEP 12 order until one answers; promotes it, reports, and hands
    /// its peers on. `None` when every tracker failed (each failure is logged).
    async fn announce_once(&mut self, tiers: &mut Tiers, params: &Params) -> Option<Answer> {
        for (tier, position, url) in tiers.in_order() {
            match self.clients.announce(&url, params).await {
                Ok(answer) => {
                    tiers.promote(tier, position);
                    self.on_answer(&url, params, &answer);
                    return Some(answer);
                }
                Err(error) => {
                    tracing::warn!(tracker = %url, event = ?params.event, "announce failed: {error}");
                    self.report
                        .send_modify(|r| r.last_error = Some(format!("{url}: {error}")));
                }
            }
        }
        self.report.send_modify(|r| r.failed_announces += 1);
        None
    }

    fn on_answer(&mut self, url: &str, params: &Params, answer: &Answer) {
        if let Some(warning) = &answer.warning {
            tracing::warn!(tracker = %url, "tracker warning: {warning}");
        }
        tracing::debug!(
            tracker = %url,
            event = ?params.event,
            peers = answer.peers.len(),
            interval_s = answer.interval,
            "announced"
        );
        let mut handed = 0u64;
        if params.event != Event::Stopped {
            for &peer in &answer.peers {
                if peer.port() == 0 || peer.ip().is_unspecified() {
                    continue;
                }
                if self.discovered.try_send(peer).is_err() {
                    tracing::debug!(tracker = %url, "the swarm's peer queue is full; dropping the rest");
                    break;
                }
                handed += 1;
            }
        }
        self.report.send_modify(|r| {
            r.announces += 1;
            r.last_event = Some(params.event);
            r.last_tracker = Some(url.to_owned());
            r.swarm = answer.swarm;
            r.peers_discovered += handed;
        });
    }
}
