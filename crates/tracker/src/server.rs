//! The tracker's state machine: swarms keyed by info-hash, peers that expire, seeder, leecher
//! and completed-download counts (BEP 3, BEP 48), numwant capping, an optional whitelist, an
//! optional private mode with per-user passkeys, per-address rate limits and the UDP protocol's
//! stateless connection ids (BEP 15).
//!
//! The driver hands it whole requests ([`Tracker::handle_http_announce`],
//! [`Tracker::handle_http_scrape`], [`Tracker::handle_udp`]) with the source address and a
//! [`Timestamp`], sends back what they return, and calls [`Tracker::handle_timeout`] at
//! [`Tracker::poll_timeout`].

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use sansio::{Rng, RngExt, Timestamp};

use crate::http::{self, AnnounceRequest, AnnounceResponse, ScrapeRequest, ScrapeResponse};
use crate::udp::{self, ConnectionIds};
use crate::{Event, InfoHash, PeerId, ScrapeStats};

/// A per-address token bucket: `burst` requests at once, refilled at `per_second`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained requests per second.
    pub per_second: u32,
    /// Requests allowed in one burst.
    pub burst: u32,
}

/// The tracker's settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// Announce interval handed to clients.
    pub interval: Duration,
    /// Minimum announce interval handed to clients.
    pub min_interval: Duration,
    /// A peer not heard from for this long leaves its swarm.
    pub peer_ttl: Duration,
    /// Peers returned when the client does not say.
    pub numwant_default: u32,
    /// Most peers returned in one response.
    pub numwant_max: u32,
    /// Only these torrents are tracked, when set.
    pub whitelist: Option<BTreeSet<InfoHash>>,
    /// Private mode: announces must come through `/announce/<passkey>` with one of these.
    pub passkeys: Option<BTreeSet<String>>,
    /// Per-address request limit, when set.
    pub rate_limit: Option<RateLimit>,
    /// How often the UDP connection-id secret rotates (ids live one to two periods).
    pub connection_id_period: Duration,
    /// Most swarms tracked at once.
    pub swarms_max: usize,
    /// Most peers in one swarm.
    pub swarm_peers_max: usize,
    /// Most addresses with a rate-limit bucket at once.
    pub rate_buckets_max: usize,
    /// Honour the `ip` parameter when both it and the request come from loopback (tests put
    /// each peer on its own loopback address).
    pub trust_loopback_ip_param: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            interval: Duration::from_secs(1800),
            min_interval: Duration::from_secs(60),
            peer_ttl: Duration::from_secs(3900),
            numwant_default: 50,
            numwant_max: 200,
            whitelist: None,
            passkeys: None,
            rate_limit: None,
            connection_id_period: Duration::from_secs(60),
            swarms_max: 1_000_000,
            swarm_peers_max: 100_000,
            rate_buckets_max: 100_000,
            trust_loopback_ip_param: true,
        }
    }
}

/// Why the tracker refuses a request; its `Display` is the failure reason sent back.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The request could not be parsed.
    #[error("bad request: {0}")]
    BadRequest(#[from] crate::Error),
    /// The torrent is not on the whitelist.
    #[error("torrent not registered with this tracker")]
    NotWhitelisted,
    /// Private mode and no passkey, or an unknown one.
    #[error("unknown or missing passkey")]
    BadPasskey,
    /// The address sent too many requests.
    #[error("rate limit exceeded, slow down")]
    RateLimited,
    /// The tracker is at its swarm or peer limit.
    #[error("tracker full")]
    Full,
    /// A scrape without info-hashes (a full dump is not offered).
    #[error("scrape needs at least one info_hash")]
    FullScrape,
}

/// One announce, normalised from either protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Announce {
    /// The torrent.
    pub info_hash: InfoHash,
    /// The peer.
    pub peer_id: PeerId,
    /// Where other peers reach it.
    pub addr: SocketAddr,
    /// Bytes it still misses.
    pub left: u64,
    /// Its state change.
    pub event: Event,
    /// Peers it wants, if it said.
    pub numwant: Option<u32>,
}

/// What an announce earns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnounceReply {
    /// Seeders in the swarm, this peer included.
    pub seeders: u32,
    /// Leechers in the swarm, this peer included.
    pub leechers: u32,
    /// Peers of the requester's address family, never the requester.
    pub peers: Vec<SocketAddr>,
}

/// Counters for monitoring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrackerStats {
    /// Swarms tracked.
    pub torrents: u64,
    /// Peers tracked.
    pub peers: u64,
    /// Seeders tracked.
    pub seeders: u64,
    /// Announces answered (both protocols).
    pub announces: u64,
    /// Scrapes answered (both protocols).
    pub scrapes: u64,
    /// UDP connects answered.
    pub connects: u64,
    /// Requests refused or dropped.
    pub refused: u64,
}

/// One tracked peer, packed (44 bytes): what a million-peer tracker holds a million of.
#[derive(Clone, Debug)]
struct PeerEntry {
    id: PeerId,
    /// IPv6, or IPv4 mapped into it (announces arrive with canonical addresses, so a mapped
    /// address here is always an IPv4 peer).
    ip: [u8; 16],
    port: u16,
    seeder: bool,
    /// Seconds since the tracker's epoch (136 years fit).
    last_seen: u32,
}

impl PeerEntry {
    fn new(id: PeerId, addr: SocketAddr, seeder: bool, now: Timestamp) -> PeerEntry {
        let mut entry = PeerEntry {
            id,
            ip: [0; 16],
            port: 0,
            seeder,
            last_seen: 0,
        };
        entry.set_addr(addr);
        entry.set_seen(now);
        entry
    }

    fn set_addr(&mut self, addr: SocketAddr) {
        self.ip = match addr.ip() {
            IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
            IpAddr::V6(v6) => v6.octets(),
        };
        self.port = addr.port();
    }

    fn set_seen(&mut self, now: Timestamp) {
        self.last_seen = seconds_since_epoch(now);
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::new(udp::canonical_ip(Ipv6Addr::from(self.ip).into()), self.port)
    }

    fn is_ipv4(&self) -> bool {
        Ipv6Addr::from(self.ip).to_ipv4_mapped().is_some()
    }
}

/// `now` in whole seconds, as peers' last-seen times are kept.
fn seconds_since_epoch(now: Timestamp) -> u32 {
    u32::try_from(now.as_micros() / 1_000_000).unwrap_or(u32::MAX)
}

/// One torrent's peers, sorted by peer id (found by binary search, as opentracker keeps them:
/// no index beside the list).
#[derive(Clone, Debug, Default)]
struct Swarm {
    peers: Vec<PeerEntry>,
    seeders: u32,
    downloaded: u32,
}

impl Swarm {
    fn stats(&self) -> ScrapeStats {
        let total = u32::try_from(self.peers.len()).unwrap_or(u32::MAX);
        ScrapeStats {
            complete: self.seeders,
            downloaded: self.downloaded,
            incomplete: total - self.seeders,
        }
    }

    /// Where `id` is, or where it would go.
    fn find(&self, id: &PeerId) -> Result<usize, usize> {
        self.peers.binary_search_by(|p| p.id.cmp(id))
    }

    fn remove(&mut self, id: &PeerId) {
        let Ok(pos) = self.find(id) else {
            return;
        };
        if self.peers.remove(pos).seeder {
            self.seeders -= 1;
        }
    }

    /// Forgets peers last seen before `cutoff` (whole seconds: a peer may outlive its time by
    /// less than one).
    fn expire(&mut self, cutoff: Timestamp) {
        let cutoff = seconds_since_epoch(cutoff);
        if self.peers.iter().all(|p| p.last_seen >= cutoff) {
            return;
        }
        self.peers.retain(|p| p.last_seen >= cutoff);
        self.peers.shrink_to(self.peers.len() * 2);
        let seeders = self.peers.iter().filter(|p| p.seeder).count();
        self.seeders = u32::try_from(seeders).unwrap_or(u32::MAX);
    }
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    refilled_at: Timestamp,
}

/// The tracker core.
#[derive(Debug)]
pub struct Tracker {
    config: Config,
    rng: Rng,
    swarms: BTreeMap<InfoHash, Swarm>,
    connection_ids: ConnectionIds,
    buckets: BTreeMap<IpAddr, Bucket>,
    stats: TrackerStats,
    next_sweep: Timestamp,
}

impl Tracker {
    /// A tracker with `config`, its randomness from `rng`, starting at `now`.
    pub fn new(config: Config, mut rng: Rng, now: Timestamp) -> Tracker {
        let connection_ids = ConnectionIds::new(&mut rng, now, config.connection_id_period);
        let next_sweep = now + sweep_period(&config);
        Tracker {
            config,
            rng,
            swarms: BTreeMap::new(),
            connection_ids,
            buckets: BTreeMap::new(),
            stats: TrackerStats::default(),
            next_sweep,
        }
    }

    /// The settings in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Records one announce and picks peers for the requester.
    pub fn announce(&mut self, now: Timestamp, a: &Announce) -> Result<AnnounceReply, Refusal> {
        if let Some(list) = &self.config.whitelist {
            if !list.contains(&a.info_hash) {
                return Err(Refusal::NotWhitelisted);
            }
        }
        if !self.swarms.contains_key(&a.info_hash) {
            if a.event == Event::Stopped {
                return Ok(AnnounceReply {
                    seeders: 0,
                    leechers: 0,
                    peers: Vec::new(),
                });
            }
            if self.swarms.len() >= self.config.swarms_max {
                return Err(Refusal::Full);
            }
        }
        let swarm = self.swarms.entry(a.info_hash).or_default();
        let seeder = a.left == 0;
        if a.event == Event::Stopped {
            swarm.remove(&a.peer_id);
        } else {
            match swarm.find(&a.peer_id) {
                Ok(pos) => {
                    let entry = &mut swarm.peers[pos];
                    if entry.seeder != seeder {
                        if seeder {
                            swarm.seeders += 1;
                        } else {
                            swarm.seeders -= 1;
                        }
                    }
                    entry.seeder = seeder;
                    entry.set_addr(a.addr);
                    entry.set_seen(now);
                }
                Err(pos) => {
                    if swarm.peers.len() >= self.config.swarm_peers_max {
                        return Err(Refusal::Full);
                    }
                    let entry = PeerEntry::new(a.peer_id, a.addr, seeder, now);
                    swarm.peers.insert(pos, entry);
                    if seeder {
                        swarm.seeders += 1;
                    }
                }
            }
        }
        if a.event == Event::Completed {
            swarm.downloaded = swarm.downloaded.saturating_add(1);
        }
        let wanted = a
            .numwant
            .unwrap_or(self.config.numwant_default)
            .min(self.config.numwant_max) as usize;
        let mut peers = Vec::new();
        if a.event != Event::Stopped && wanted > 0 && !swarm.peers.is_empty() {
            // A random window over the peer list: uniform enough, O(numwant), no allocation
            // beyond the answer.
            let n = swarm.peers.len();
            let start = self.rng.gen_range(0..n);
            let wants_ipv4 = udp::canonical_ip(a.addr.ip()).is_ipv4();
            for i in 0..n {
                let p = &swarm.peers[(start + i) % n];
                let useful = !(seeder && p.seeder);
                if p.id != a.peer_id && useful && p.is_ipv4() == wants_ipv4 {
                    peers.push(p.addr());
                    if peers.len() == wanted {
                        break;
                    }
                }
            }
        }
        let stats = swarm.stats();
        if swarm.peers.is_empty() && swarm.downloaded == 0 {
            self.swarms.remove(&a.info_hash);
        }
        self.stats.announces += 1;
        Ok(AnnounceReply {
            seeders: stats.complete,
            leechers: stats.incomplete,
            peers,
        })
    }

    /// Counts for one torrent (zeros when unknown).
    pub fn swarm_stats(&self, info_hash: &InfoHash) -> ScrapeStats {
        self.swarms
            .get(info_hash)
            .map(Swarm::stats)
            .unwrap_or_default()
    }

    /// Monitoring counters and totals.
    pub fn stats(&self) -> TrackerStats {
        let mut s = self.stats;
        s.torrents = self.swarms.len() as u64;
        s.peers = self.swarms.values().map(|w| w.peers.len() as u64).sum();
        s.seeders = self.swarms.values().map(|w| u64::from(w.seeders)).sum();
        s
    }

    /// Takes one token from `ip`'s bucket; `false` when it is empty.
    fn admit(&mut self, now: Timestamp, ip: IpAddr) -> bool {
        let Some(limit) = self.config.rate_limit else {
            return true;
        };
        let burst = f64::from(limit.burst.max(1));
        if !self.buckets.contains_key(&ip) && self.buckets.len() >= self.config.rate_buckets_max {
            // Table full until the next sweep: let the newcomer through rather than lock
            // everyone new out.
            return true;
        }
        let bucket = self.buckets.entry(ip).or_insert(Bucket {
            tokens: burst,
            refilled_at: now,
        });
        let elapsed = now.saturating_since(bucket.refilled_at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * f64::from(limit.per_second)).min(burst);
        bucket.refilled_at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            self.stats.refused += 1;
            false
        }
    }

    fn check_passkey(&self, passkey: Option<&str>) -> Result<(), Refusal> {
        match (&self.config.passkeys, passkey) {
            (None, _) => Ok(()),
            (Some(keys), Some(key)) if keys.contains(key) => Ok(()),
            (Some(_), _) => Err(Refusal::BadPasskey),
        }
    }

    fn peer_ip(&self, source: IpAddr, claimed: Option<IpAddr>) -> IpAddr {
        match claimed {
            Some(ip)
                if self.config.trust_loopback_ip_param
                    && source.is_loopback()
                    && ip.is_loopback() =>
            {
                ip
            }
            _ => source,
        }
    }

    /// Answers an HTTP announce (`/announce` or `/announce/<passkey>`) from `source` with a
    /// bencoded body: peers, or a failure reason.
    pub fn handle_http_announce(
        &mut self,
        now: Timestamp,
        source: IpAddr,
        passkey: Option<&str>,
        query: &str,
    ) -> Vec<u8> {
        self.http_reply(now, source, passkey, |tracker, source| {
            tracker.http_announce(now, source, query)
        })
    }

    /// Answers an HTTP scrape (BEP 48) with a bencoded body.
    pub fn handle_http_scrape(
        &mut self,
        now: Timestamp,
        source: IpAddr,
        passkey: Option<&str>,
        query: &str,
    ) -> Vec<u8> {
        self.http_reply(now, source, passkey, |tracker, _| {
            let req = ScrapeRequest::from_query(query)?;
            if req.info_hashes.is_empty() {
                return Err(Refusal::FullScrape);
            }
            let files = tracker.scrape(&req.info_hashes);
            Ok(ScrapeResponse { files }.encode())
        })
    }

    /// What every HTTP request goes through: the source's canonical address, its rate limit and
    /// the passkey, then `answer`; a refusal becomes a bencoded failure body.
    fn http_reply(
        &mut self,
        now: Timestamp,
        source: IpAddr,
        passkey: Option<&str>,
        answer: impl FnOnce(&mut Tracker, IpAddr) -> Result<Vec<u8>, Refusal>,
    ) -> Vec<u8> {
        let source = udp::canonical_ip(source);
        let result = if !self.admit(now, source) {
            Err(Refusal::RateLimited)
        } else {
            self.check_passkey(passkey)
                .and_then(|()| answer(self, source))
        };
        result.unwrap_or_else(|refusal| self.refuse_http(&refusal))
    }

    fn http_announce(
        &mut self,
        now: Timestamp,
        source: IpAddr,
        query: &str,
    ) -> Result<Vec<u8>, Refusal> {
        let req = AnnounceRequest::from_query(query)?;
        let ip = self.peer_ip(source, req.ip);
        let announce = Announce {
            info_hash: req.info_hash,
            peer_id: req.peer_id,
            addr: SocketAddr::new(ip, req.port),
            left: req.left,
            event: req.event,
            numwant: req.numwant,
        };
        let reply = self.announce(now, &announce)?;
        let resp = AnnounceResponse {
            interval: secs(self.config.interval),
            min_interval: Some(secs(self.config.min_interval)),
            complete: Some(reply.seeders),
            incomplete: Some(reply.leechers),
            peers: reply.peers,
            warning: None,
            tracker_id: None,
        };
        Ok(resp.encode(req.compact))
    }

    fn scrape(&mut self, hashes: &[InfoHash]) -> Vec<(InfoHash, ScrapeStats)> {
        self.stats.scrapes += 1;
        hashes.iter().map(|h| (*h, self.swarm_stats(h))).collect()
    }

    fn refuse_http(&mut self, refusal: &Refusal) -> Vec<u8> {
        self.stats.refused += 1;
        let retry = matches!(refusal, Refusal::RateLimited).then_some(1);
        http::encode_failure(&refusal.to_string(), retry)
    }

    /// Answers one UDP datagram from `source` (BEP 15), or drops it (`None`): undecodable
    /// packets, forged or expired connection ids and rate-limited senders get no answer, so
    /// the tracker cannot be used to reflect traffic.
    pub fn handle_udp(
        &mut self,
        now: Timestamp,
        source: SocketAddr,
        packet: &[u8],
    ) -> Option<Vec<u8>> {
        let source = SocketAddr::new(udp::canonical_ip(source.ip()), source.port());
        if !self.admit(now, source.ip()) {
            return None;
        }
        let Ok(request) = udp::Request::decode(packet) else {
            self.stats.refused += 1;
            return None;
        };
        self.connection_ids.rotate(&mut self.rng, now);
        let transaction_id = request.transaction_id();
        let response = match request {
            udp::Request::Connect { .. } => {
                self.stats.connects += 1;
                udp::Response::Connect {
                    transaction_id,
                    connection_id: self.connection_ids.issue(source),
                }
            }
            udp::Request::Announce { connection_id, .. }
            | udp::Request::Scrape { connection_id, .. }
                if !self.connection_ids.is_valid(source, connection_id) =>
            {
                self.stats.refused += 1;
                return None;
            }
            udp::Request::Announce { .. } | udp::Request::Scrape { .. }
                if self.config.passkeys.is_some() =>
            {
                // BEP 15 has no room for a passkey: a private tracker is HTTP only.
                self.stats.refused += 1;
                udp::Response::Error {
                    transaction_id,
                    message: Refusal::BadPasskey.to_string(),
                }
            }
            udp::Request::Announce { announce: a, .. } => {
                let ip = self.peer_ip(source.ip(), udp::announce_ip(a.ip));
                let announce = Announce {
                    info_hash: a.info_hash,
                    peer_id: a.peer_id,
                    addr: SocketAddr::new(ip, a.port),
                    left: a.left,
                    event: a.event,
                    numwant: u32::try_from(a.num_want).ok(),
                };
                match self.announce(now, &announce) {
                    Ok(reply) => udp::Response::Announce {
                        transaction_id,
                        interval: secs(self.config.interval),
                        leechers: reply.leechers,
                        seeders: reply.seeders,
                        peers: reply.peers,
                    },
                    Err(refusal) => {
                        self.stats.refused += 1;
                        udp::Response::Error {
                            transaction_id,
                            message: refusal.to_string(),
                        }
                    }
                }
            }
            udp::Request::Scrape { info_hashes, .. } => udp::Response::Scrape {
                transaction_id,
                stats: self
                    .scrape(&info_hashes)
                    .into_iter()
                    .map(|(_, s)| s)
                    .collect(),
            },
        };
        Some(response.encode())
    }

    /// When [`Tracker::handle_timeout`] wants to run next.
    pub fn poll_timeout(&self) -> Timestamp {
        self.next_sweep
    }

    /// Expires silent peers, forgets empty swarms and idle rate-limit buckets, rotates the
    /// connection-id secret.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        if now < self.next_sweep {
            return;
        }
        let cutoff = now - self.config.peer_ttl;
        self.swarms.retain(|_, swarm| {
            swarm.expire(cutoff);
            !swarm.peers.is_empty() || swarm.downloaded > 0
        });
        if let Some(limit) = self.config.rate_limit {
            // A bucket refilled to the brim is the same as no bucket.
            let full_after = Duration::from_secs_f64(
                f64::from(limit.burst.max(1)) / f64::from(limit.per_second.max(1)),
            );
            self.buckets
                .retain(|_, b| now.saturating_since(b.refilled_at) < full_after);
        }
        self.connection_ids.rotate(&mut self.rng, now);
        self.next_sweep = now + sweep_period(&self.config);
    }
}

fn sweep_period(config: &Config) -> Duration {
    (config.peer_ttl / 8).clamp(Duration::from_secs(1), Duration::from_secs(60))
}

fn secs(d: Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests;
