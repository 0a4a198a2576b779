//! The UDP tracker protocol (BEP 15): packet codec for connect, announce, scrape and error, in
//! both directions, and [`ConnectionIds`], which issues connection ids bound to the requester's
//! address without keeping any per-connection state.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use sansio::{Rng, RngExt, Timestamp};
use sha1::{Digest, Sha1};

use crate::{Error, Event, InfoHash, PeerId, ScrapeStats};

/// The magic number that opens a connect request.
pub const PROTOCOL_ID: u64 = 0x0417_2710_1980;
/// Most info-hashes in one scrape packet (what fits in a 1500-byte datagram).
pub const SCRAPE_HASHES_MAX: usize = 74;
/// Longest error message encoded or decoded.
pub const ERROR_MESSAGE_BYTES_MAX: usize = 1024;
/// Largest datagram a client or server needs to read.
pub const PACKET_BYTES_MAX: usize = 2048;

const ACTION_CONNECT: u32 = 0;
const ACTION_ANNOUNCE: u32 = 1;
const ACTION_SCRAPE: u32 = 2;
const ACTION_ERROR: u32 = 3;

/// A UDP announce's fields after the connection id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Announce {
    /// The torrent.
    pub info_hash: InfoHash,
    /// The announcing peer.
    pub peer_id: PeerId,
    /// Bytes downloaded.
    pub downloaded: u64,
    /// Bytes missing.
    pub left: u64,
    /// Bytes uploaded.
    pub uploaded: u64,
    /// The state change.
    pub event: Event,
    /// The IPv4 address the client claims, 0 for the packet's source.
    pub ip: u32,
    /// The client's key.
    pub key: u32,
    /// Peers wanted; -1 leaves it to the tracker.
    pub num_want: i32,
    /// The client's listen port.
    pub port: u16,
}

/// A client-to-tracker packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Asks for a connection id.
    Connect {
        /// Echoed in the response.
        transaction_id: u32,
    },
    /// An announce.
    Announce {
        /// From a connect response.
        connection_id: u64,
        /// Echoed in the response.
        transaction_id: u32,
        /// The announce itself.
        announce: Announce,
    },
    /// A scrape.
    Scrape {
        /// From a connect response.
        connection_id: u64,
        /// Echoed in the response.
        transaction_id: u32,
        /// The torrents asked about.
        info_hashes: Vec<InfoHash>,
    },
}

/// A tracker-to-client packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// The connection id to use for the next two minutes.
    Connect {
        /// From the request.
        transaction_id: u32,
        /// The id.
        connection_id: u64,
    },
    /// An announce's answer. Peers are all IPv4 or all IPv6, following the request's family.
    Announce {
        /// From the request.
        transaction_id: u32,
        /// Seconds until the next announce.
        interval: u32,
        /// Leechers in the swarm.
        leechers: u32,
        /// Seeders in the swarm.
        seeders: u32,
        /// Peers to connect to.
        peers: Vec<SocketAddr>,
    },
    /// Counts for each requested torrent, in request order.
    Scrape {
        /// From the request.
        transaction_id: u32,
        /// The counts.
        stats: Vec<ScrapeStats>,
    },
    /// A failure with a human-readable message.
    Error {
        /// From the request (0 when it could not be read).
        transaction_id: u32,
        /// Why.
        message: String,
    },
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        if self.0.len() < N {
            return Err(Error::Malformed("packet too short"));
        }
        let (head, rest) = self.0.split_at(N);
        self.0 = rest;
        Ok(head.try_into().unwrap_or([0; N]))
    }
    fn u16(&mut self) -> Result<u16, Error> {
        Ok(u16::from_be_bytes(self.take()?))
    }
    fn u32(&mut self) -> Result<u32, Error> {
        Ok(u32::from_be_bytes(self.take()?))
    }
    fn u64(&mut self) -> Result<u64, Error> {
        Ok(u64::from_be_bytes(self.take()?))
    }
}

fn event_code(event: Event) -> u32 {
    match event {
        Event::None | Event::Paused => 0,
        Event::Completed => 1,
        Event::Started => 2,
        Event::Stopped => 3,
    }
}

impl Request {
    /// The datagram for this request.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(100);
        match self {
            Request::Connect { transaction_id } => {
                out.extend_from_slice(&PROTOCOL_ID.to_be_bytes());
                out.extend_from_slice(&ACTION_CONNECT.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
            }
            Request::Announce {
                connection_id,
                transaction_id,
                announce: a,
            } => {
                out.extend_from_slice(&connection_id.to_be_bytes());
                out.extend_from_slice(&ACTION_ANNOUNCE.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
                out.extend_from_slice(&a.info_hash.0);
                out.extend_from_slice(&a.peer_id.0);
                out.extend_from_slice(&a.downloaded.to_be_bytes());
                out.extend_from_slice(&a.left.to_be_bytes());
                out.extend_from_slice(&a.uploaded.to_be_bytes());
                out.extend_from_slice(&event_code(a.event).to_be_bytes());
                out.extend_from_slice(&a.ip.to_be_bytes());
                out.extend_from_slice(&a.key.to_be_bytes());
                out.extend_from_slice(&a.num_want.to_be_bytes());
                out.extend_from_slice(&a.port.to_be_bytes());
            }
            Request::Scrape {
                connection_id,
                transaction_id,
                info_hashes,
            } => {
                out.extend_from_slice(&connection_id.to_be_bytes());
                out.extend_from_slice(&ACTION_SCRAPE.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
                for h in info_hashes.iter().take(SCRAPE_HASHES_MAX) {
                    out.extend_from_slice(&h.0);
                }
            }
        }
        out
    }

    /// Reads a datagram a client sent. Trailing bytes after an announce (BEP 41 options) are
    /// ignored.
    pub fn decode(packet: &[u8]) -> Result<Request, Error> {
        if packet.len() > PACKET_BYTES_MAX {
            return Err(Error::TooLarge("packet"));
        }
        let mut r = Reader(packet);
        let connection_id = r.u64()?;
        let action = r.u32()?;
        let transaction_id = r.u32()?;
        match action {
            ACTION_CONNECT if connection_id == PROTOCOL_ID => {
                Ok(Request::Connect { transaction_id })
            }
            ACTION_CONNECT => Err(Error::Malformed("bad protocol id")),
            ACTION_ANNOUNCE => {
                let info_hash = InfoHash(r.take()?);
                let peer_id = PeerId(r.take()?);
                let downloaded = r.u64()?;
                let left = r.u64()?;
                let uploaded = r.u64()?;
                let event = match r.u32()? {
                    0 => Event::None,
                    1 => Event::Completed,
                    2 => Event::Started,
                    3 => Event::Stopped,
                    _ => return Err(Error::Invalid("event")),
                };
                let announce = Announce {
                    info_hash,
                    peer_id,
                    downloaded,
                    left,
                    uploaded,
                    event,
                    ip: r.u32()?,
                    key: r.u32()?,
                    num_want: r.u32()? as i32,
                    port: r.u16()?,
                };
                Ok(Request::Announce {
                    connection_id,
                    transaction_id,
                    announce,
                })
            }
            ACTION_SCRAPE => {
                let hashes = r.0;
                if hashes.is_empty() || !hashes.len().is_multiple_of(20) {
                    return Err(Error::Malformed("scrape hash list"));
                }
                if hashes.len() / 20 > SCRAPE_HASHES_MAX {
                    return Err(Error::TooLarge("info_hash count"));
                }
                let info_hashes = hashes
                    .chunks_exact(20)
                    .filter_map(InfoHash::from_slice)
                    .collect();
                Ok(Request::Scrape {
                    connection_id,
                    transaction_id,
                    info_hashes,
                })
            }
            _ => Err(Error::Malformed("unknown action")),
        }
    }

    /// The transaction id, for answering even an unacceptable request.
    pub fn transaction_id(&self) -> u32 {
        match self {
            Request::Connect { transaction_id }
            | Request::Announce { transaction_id, .. }
            | Request::Scrape { transaction_id, .. } => *transaction_id,
        }
    }
}

impl Response {
    /// The datagram for this response.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        match self {
            Response::Connect {
                transaction_id,
                connection_id,
            } => {
                out.extend_from_slice(&ACTION_CONNECT.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
                out.extend_from_slice(&connection_id.to_be_bytes());
            }
            Response::Announce {
                transaction_id,
                interval,
                leechers,
                seeders,
                peers,
            } => {
                out.extend_from_slice(&ACTION_ANNOUNCE.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
                out.extend_from_slice(&interval.to_be_bytes());
                out.extend_from_slice(&leechers.to_be_bytes());
                out.extend_from_slice(&seeders.to_be_bytes());
                for peer in peers {
                    match peer.ip() {
                        IpAddr::V4(ip) => out.extend_from_slice(&ip.octets()),
                        IpAddr::V6(ip) => out.extend_from_slice(&ip.octets()),
                    }
                    out.extend_from_slice(&peer.port().to_be_bytes());
                }
            }
            Response::Scrape {
                transaction_id,
                stats,
            } => {
                out.extend_from_slice(&ACTION_SCRAPE.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
                for s in stats {
                    out.extend_from_slice(&s.complete.to_be_bytes());
                    out.extend_from_slice(&s.downloaded.to_be_bytes());
                    out.extend_from_slice(&s.incomplete.to_be_bytes());
                }
            }
            Response::Error {
                transaction_id,
                message,
            } => {
                out.extend_from_slice(&ACTION_ERROR.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
                let mut end = message.len().min(ERROR_MESSAGE_BYTES_MAX);
                while !message.is_char_boundary(end) {
                    end -= 1;
                }
                out.extend_from_slice(&message.as_bytes()[..end]);
            }
        }
        out
    }

    /// Reads a datagram a tracker sent. `ipv6` says which peer format an announce response
    /// carries: that of the socket the request went out on.
    pub fn decode(packet: &[u8], ipv6: bool) -> Result<Response, Error> {
        if packet.len() > PACKET_BYTES_MAX {
            return Err(Error::TooLarge("packet"));
        }
        let mut r = Reader(packet);
        let action = r.u32()?;
        let transaction_id = r.u32()?;
        match action {
            ACTION_CONNECT => Ok(Response::Connect {
                transaction_id,
                connection_id: r.u64()?,
            }),
            ACTION_ANNOUNCE => {
                let interval = r.u32()?;
                let leechers = r.u32()?;
                let seeders = r.u32()?;
                let peers = if ipv6 {
                    crate::http::decode_compact_v6(r.0)?
                } else {
                    crate::http::decode_compact_v4(r.0)?
                };
                Ok(Response::Announce {
                    transaction_id,
                    interval,
                    leechers,
                    seeders,
                    peers,
                })
            }
            ACTION_SCRAPE => {
                if !r.0.len().is_multiple_of(12) {
                    return Err(Error::Malformed("scrape counts"));
                }
                let mut stats = Vec::with_capacity(r.0.len() / 12);
                while !r.0.is_empty() {
                    stats.push(ScrapeStats {
                        complete: r.u32()?,
                        downloaded: r.u32()?,
                        incomplete: r.u32()?,
                    });
                }
                Ok(Response::Scrape {
                    transaction_id,
                    stats,
                })
            }
            ACTION_ERROR => {
                let text = &r.0[..r.0.len().min(ERROR_MESSAGE_BYTES_MAX)];
                Ok(Response::Error {
                    transaction_id,
                    message: String::from_utf8_lossy(text).into_owned(),
                })
            }
            _ => Err(Error::Malformed("unknown action")),
        }
    }
}

/// The IPv4 address a UDP announce's `ip` field names, if any.
pub fn announce_ip(ip: u32) -> Option<IpAddr> {
    (ip != 0).then(|| IpAddr::V4(Ipv4Addr::from(ip)))
}

/// Issues and checks connection ids without per-connection state: an id is a keyed hash of the
/// requester's address under a secret that rotates every `period`; the current and previous
/// secrets are accepted, so an id lives between one and two periods (BEP 15 asks for about two
/// minutes). A forged or replayed-from-elsewhere id fails the check.
#[derive(Clone, Debug)]
pub struct ConnectionIds {
    current: [u8; 16],
    previous: [u8; 16],
    rotated_at: Timestamp,
    period: Duration,
}

impl ConnectionIds {
    /// Ids under fresh secrets from `rng`, rotating every `period`.
    pub fn new(rng: &mut Rng, now: Timestamp, period: Duration) -> ConnectionIds {
        let mut ids = ConnectionIds {
            current: [0; 16],
            previous: [0; 16],
            rotated_at: now,
            period,
        };
        rng.fill(&mut ids.current);
        rng.fill(&mut ids.previous);
        ids
    }

    /// Rotates the secrets if a period has passed since the last rotation.
    pub fn rotate(&mut self, rng: &mut Rng, now: Timestamp) {
        if now < self.rotated_at + self.period {
            return;
        }
        self.previous = self.current;
        if now >= self.rotated_at + self.period * 2 {
            // Idle for two periods: the old current is stale too.
            rng.fill(&mut self.previous);
        }
        rng.fill(&mut self.current);
        self.rotated_at = now;
    }

    /// The id for `addr` under the current secret.
    pub fn issue(&self, addr: SocketAddr) -> u64 {
        derive(&self.current, addr)
    }

    /// Whether `id` was issued to `addr` under the current or previous secret.
    pub fn is_valid(&self, addr: SocketAddr, id: u64) -> bool {
        id == derive(&self.current, addr) || id == derive(&self.previous, addr)
    }
}

fn derive(secret: &[u8; 16], addr: SocketAddr) -> u64 {
    let mut h = Sha1::new();
    h.update(secret);
    match addr.ip() {
        IpAddr::V4(ip) => h.update(ip.to_ipv6_mapped().octets()),
        IpAddr::V6(ip) => h.update(ip.octets()),
    }
    h.update(addr.port().to_be_bytes());
    let digest = h.finalize();
    let mut id = [0u8; 8];
    id.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(id)
}

/// The IPv6 address embedded in an IPv4-mapped address, or `ip` itself.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::{any, prop_assert_eq, proptest, Strategy};

    #[test]
    fn connection_ids_are_bound_to_address_and_expire() {
        let mut rng = Rng::from_seed(1);
        let period = Duration::from_secs(60);
        let mut ids = ConnectionIds::new(&mut rng, Timestamp::ZERO, period);
        let a: SocketAddr = "127.0.0.2:1000".parse().unwrap();
        let b: SocketAddr = "127.0.0.2:1001".parse().unwrap();
        let id = ids.issue(a);
        assert!(ids.is_valid(a, id));
        assert!(!ids.is_valid(b, id));
        ids.rotate(&mut rng, Timestamp::ZERO + period);
        assert!(ids.is_valid(a, id), "still valid one period later");
        ids.rotate(&mut rng, Timestamp::ZERO + period * 2);
        assert!(!ids.is_valid(a, id), "gone after two rotations");
    }

    fn arb_announce() -> impl Strategy<Value = Announce> {
        (
            any::<[u8; 20]>(),
            any::<[u8; 20]>(),
            any::<(u64, u64, u64)>(),
            0u32..4,
            any::<(u32, u32, i32, u16)>(),
        )
            .prop_map(|(h, p, (d, l, u), e, (ip, key, num_want, port))| Announce {
                info_hash: InfoHash(h),
                peer_id: PeerId(p),
                downloaded: d,
                left: l,
                uploaded: u,
                event: [
                    Event::None,
                    Event::Completed,
                    Event::Started,
                    Event::Stopped,
                ][e as usize],
                ip,
                key,
                num_want,
                port,
            })
    }

    proptest! {
        #[test]
        fn request_round_trips(a in arb_announce(), cid in any::<u64>(), tid in any::<u32>(),
                               hashes in proptest::collection::vec(any::<[u8; 20]>(), 1..74)) {
            let reqs = [
                Request::Connect { transaction_id: tid },
                Request::Announce { connection_id: cid, transaction_id: tid, announce: a },
                Request::Scrape { connection_id: cid, transaction_id: tid,
                                  info_hashes: hashes.into_iter().map(InfoHash).collect() },
            ];
            for req in reqs {
                prop_assert_eq!(Request::decode(&req.encode()).unwrap(), req);
            }
        }

        #[test]
        fn response_round_trips(tid in any::<u32>(), v4 in proptest::collection::vec(any::<([u8; 4], u16)>(), 0..30),
                                msg in ".{0,40}") {
            let peers = v4.into_iter().map(|(ip, port)| SocketAddr::new(IpAddr::from(ip), port)).collect();
            let resps = [
                Response::Connect { transaction_id: tid, connection_id: 7 },
                Response::Announce { transaction_id: tid, interval: 1, leechers: 2, seeders: 3, peers },
                Response::Scrape { transaction_id: tid, stats: vec![ScrapeStats { complete: 1, downloaded: 2, incomplete: 3 }] },
                Response::Error { transaction_id: tid, message: msg },
            ];
            for resp in resps {
                prop_assert_eq!(Response::decode(&resp.encode(), false).unwrap(), resp);
            }
        }

        #[test]
        fn decoders_never_panic(packet in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Request::decode(&packet);
            let _ = Response::decode(&packet, false);
            let _ = Response::decode(&packet, true);
        }
    }
}
