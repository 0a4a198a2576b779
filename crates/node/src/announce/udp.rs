//! UDP tracker requests (BEP 15): connect, then announce or scrape with the connection id.
//!
//! A connection id is reused for [`CONNECTION_ID_LIFETIME`] (the BEP lets clients keep it one
//! minute). A request that gets no answer is sent again after 15·2ⁿ seconds as BEP 15 says,
//! but only `attempts` times in all (the BEP's eight tries would stall a tier for an hour). The
//! socket is connected to the tracker, so an ICMP "port unreachable" ends the exchange at once
//! instead of waiting for the timeouts.

use std::collections::btree_map::{BTreeMap, Entry};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use sansio::Rng;
use tokio::net::UdpSocket;
use tokio::time::Instant;
use tracker::udp::{Announce, Request, Response, PACKET_BYTES_MAX};
use tracker::{InfoHash, ScrapeStats};

use super::{Error, Params};

/// How long a connection id stays usable (BEP 15: one minute for the client).
pub(crate) const CONNECTION_ID_LIFETIME: Duration = Duration::from_secs(60);
/// Datagrams read while waiting for one answer before the attempt is abandoned (stray or
/// forged packets must not keep us busy forever).
const DATAGRAMS_PER_ATTEMPT_MAX: usize = 64;

/// What an announce over UDP returns.
pub(crate) struct UdpAnnounce {
    pub(crate) interval: u32,
    pub(crate) seeders: u32,
    pub(crate) leechers: u32,
    pub(crate) peers: Vec<SocketAddr>,
}

/// A UDP tracker client that keeps one socket and connection id per tracker address (trackers
/// bind connection ids to the requester's address and port).
pub(crate) struct UdpClient {
    retry: Retry,
    trackers: BTreeMap<SocketAddr, Session>,
}

/// How a request is retried, and the transaction ids' source.
struct Retry {
    rng: Rng,
    local_ip: Option<IpAddr>,
    timeout_first: Duration,
    attempts: u32,
}

/// One tracker's socket and its last connection id with the time it was obtained.
struct Session {
    socket: UdpSocket,
    connection_id: Option<(u64, Instant)>,
}

/// Trackers' sockets kept at most; the oldest entries go first beyond it.
const SESSIONS_MAX: usize = 32;

impl UdpClient {
    /// A client that waits `timeout_first` for the first answer, doubling each retry, and
    /// tries `attempts` times (at least once), sending from `local_ip` when given.
    pub(crate) fn new(
        rng: Rng,
        timeout_first: Duration,
        attempts: u32,
        local_ip: Option<IpAddr>,
    ) -> UdpClient {
        UdpClient {
            retry: Retry {
                rng,
                local_ip,
                timeout_first,
                attempts: attempts.max(1),
            },
            trackers: BTreeMap::new(),
        }
    }

    /// One announce to the tracker at `url` (`udp://host:port[/...]`).
    pub(crate) async fn announce(
        &mut self,
        url: &str,
        params: &Params,
    ) -> Result<UdpAnnounce, Error> {
        let announce = Announce {
            info_hash: params.info_hash,
            peer_id: params.peer_id,
            downloaded: params.downloaded,
            left: params.left,
            uploaded: params.uploaded,
            event: params.event,
            ip: 0,
            key: params.key,
            num_want: i32::try_from(params.numwant).unwrap_or(i32::MAX),
            port: params.port,
        };
        let response = self
            .exchange(url, |connection_id, transaction_id| Request::Announce {
                connection_id,
                transaction_id,
                announce: announce.clone(),
            })
            .await?;
        match response {
            Response::Announce {
                interval,
                leechers,
                seeders,
                peers,
                ..
            } => Ok(UdpAnnounce {
                interval,
                seeders,
                leechers,
                peers,
            }),
            _ => Err(tracker::Error::Malformed("answer of the wrong kind").into()),
        }
    }

    /// One scrape of `info_hashes` (at most [`tracker::udp::SCRAPE_HASHES_MAX`]).
    pub(crate) async fn scrape(
        &mut self,
        url: &str,
        info_hashes: &[InfoHash],
    ) -> Result<Vec<(InfoHash, ScrapeStats)>, Error> {
        let info_hashes: Vec<InfoHash> = info_hashes
            .iter()
            .copied()
            .take(tracker::udp::SCRAPE_HASHES_MAX)
            .collect();
        let response = self
            .exchange(url, |connection_id, transaction_id| Request::Scrape {
                connection_id,
                transaction_id,
                info_hashes: info_hashes.clone(),
            })
            .await?;
        match response {
            Response::Scrape { stats, .. } if stats.len() == info_hashes.len() => {
                Ok(info_hashes.into_iter().zip(stats).collect())
            }
            _ => Err(tracker::Error::Malformed("scrape answer").into()),
        }
    }

    /// Connects if needed, then sends `request(connection_id, transaction_id)` to the tracker
    /// at `url` and returns its answer. A failed exchange forgets the tracker's session, so the
    /// next one starts with a fresh socket and connect.
    async fn exchange(
        &mut self,
        url: &str,
        request: impl Fn(u64, u32) -> Request,
    ) -> Result<Response, Error> {
        let tracker = resolve(url).await?;
        let result = self.exchange_with(tracker, request).await;
        if result.is_err() {
            self.trackers.remove(&tracker);
        }
        result
    }

    async fn exchange_with(
        &mut self,
        tracker: SocketAddr,
        request: impl Fn(u64, u32) -> Request,
    ) -> Result<Response, Error> {
        if !self.trackers.contains_key(&tracker) && self.trackers.len() >= SESSIONS_MAX {
            self.trackers.pop_first();
        }
        let session = match self.trackers.entry(tracker) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => entry.insert(Session {
                socket: open(tracker, self.retry.local_ip).await?,
                connection_id: None,
            }),
        };
        let ipv6 = tracker.is_ipv6();
        let connection_id = match session.connection_id {
            Some((id, obtained)) if obtained.elapsed() < CONNECTION_ID_LIFETIME => id,
            _ => {
                let response = self
                    .retry
                    .transact(&session.socket, ipv6, |transaction_id| Request::Connect {
                        transaction_id,
                    })
                    .await?;
                let Response::Connect { connection_id, .. } = response else {
                    return Err(tracker::Error::Malformed("answer to connect").into());
                };
                session.connection_id = Some((connection_id, Instant::now()));
                connection_id
            }
        };
        self.retry
            .transact(&session.socket, ipv6, |transaction_id| {
                request(connection_id, transaction_id)
            })
            .await
    }
}

impl Retry {
    /// Sends `request(transaction_id)` and waits for the answer with the same transaction id,
    /// retrying with doubled timeouts. A tracker error answer becomes a failure.
    async fn transact(
        &mut self,
        socket: &UdpSocket,
        ipv6: bool,
        request: impl Fn(u32) -> Request,
    ) -> Result<Response, Error> {
        let mut buf = vec![0u8; PACKET_BYTES_MAX];
        let mut timeout = self.timeout_first;
        for _ in 0..self.attempts {
            let transaction_id = sansio::RngExt::gen::<u32>(&mut self.rng);
            socket
                .send(&request(transaction_id).encode())
                .await
                .map_err(|e| Error::Transport(e.to_string()))?;
            let deadline = Instant::now() + timeout;
            for _ in 0..DATAGRAMS_PER_ATTEMPT_MAX {
                let Ok(received) = tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await
                else {
                    break;
                };
                let len = received.map_err(|e| Error::Transport(e.to_string()))?;
                match Response::decode(&buf[..len], ipv6) {
                    Ok(Response::Error {
                        transaction_id: id,
                        message,
                    }) if id == transaction_id => {
                        return Err(tracker::Error::Failure(message).into());
                    }
                    Ok(response) if transaction_id_of(&response) == transaction_id => {
                        return Ok(response);
                    }
                    // Stale answers to an earlier try, or garbage: keep waiting.
                    _ => {}
                }
            }
            timeout = timeout.saturating_mul(2);
        }
        Err(Error::NoAnswer {
            attempts: self.attempts,
        })
    }
}

fn transaction_id_of(response: &Response) -> u32 {
    match response {
        Response::Connect { transaction_id, .. }
        | Response::Announce { transaction_id, .. }
        | Response::Scrape { transaction_id, .. }
        | Response::Error { transaction_id, .. } => *transaction_id,
    }
}

/// `host:port` of a `udp://host:port[/path]` URL.
pub(crate) fn host_port(url: &str) -> Result<&str, Error> {
    let rest = url
        .strip_prefix("udp://")
        .ok_or_else(|| Error::BadUrl(url.to_owned()))?;
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    if authority.is_empty() || !authority.contains(':') {
        return Err(Error::BadUrl(url.to_owned()));
    }
    Ok(authority)
}

/// The address of the tracker named by `url`.
async fn resolve(url: &str) -> Result<SocketAddr, Error> {
    let authority = host_port(url)?;
    tokio::net::lookup_host(authority)
        .await
        .map_err(|e| Error::Transport(format!("cannot resolve {authority}: {e}")))?
        .next()
        .ok_or_else(|| Error::Transport(format!("{authority} has no address")))
}

/// A socket bound to `local_ip` (any address of the tracker's family when `None` or of the
/// other family) and connected to `tracker`.
async fn open(tracker: SocketAddr, local_ip: Option<IpAddr>) -> Result<UdpSocket, Error> {
    let local: SocketAddr = match local_ip {
        Some(ip) if ip.is_ipv6() == tracker.is_ipv6() => (ip, 0).into(),
        _ if tracker.is_ipv6() => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
        _ => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local)
        .await
        .map_err(|e| Error::Transport(e.to_string()))?;
    socket
        .connect(tracker)
        .await
        .map_err(|e| Error::Transport(e.to_string()))?;
    Ok(socket)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_takes_the_authority_of_udp_urls_only() {
        assert_eq!(
            host_port("udp://127.0.0.1:6969/announce").unwrap(),
            "127.0.0.1:6969"
        );
        assert_eq!(host_port("udp://[::1]:80").unwrap(), "[::1]:80");
        assert_eq!(host_port("udp://t.example:1?x=1").unwrap(), "t.example:1");
        assert!(host_port("udp://nohost/announce").is_err());
        assert!(host_port("http://127.0.0.1:1/announce").is_err());
    }
}
