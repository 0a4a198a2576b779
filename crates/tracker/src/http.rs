//! HTTP tracker protocol, both directions: BEP 3 announce, BEP 7 `peers6`, BEP 23 compact
//! peers and BEP 48 scrape.
//!
//! A client builds a query with [`AnnounceRequest::to_query`] and reads the body with
//! [`AnnounceResponse::decode`]; a server parses the query with [`AnnounceRequest::from_query`]
//! and answers with [`AnnounceResponse::encode`] or [`encode_failure`]. Binary fields
//! (`info_hash`, `peer_id`) travel percent-encoded byte by byte.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bencode::Owned;

use crate::{Error, Event, InfoHash, PeerId, ScrapeStats};

/// Longest query string a server accepts.
pub const QUERY_BYTES_MAX: usize = 4096;
/// Most `key=value` pairs in one query.
pub const QUERY_PARAMS_MAX: usize = 80;
/// Most info-hashes in one scrape request.
pub const SCRAPE_HASHES_MAX: usize = 64;
/// Longest response body a client decodes.
pub const RESPONSE_BYTES_MAX: usize = 1 << 20;
/// Longest `key` or `trackerid` value accepted.
const TOKEN_BYTES_MAX: usize = 64;

/// Percent-encodes every byte outside RFC 3986's unreserved set.
pub fn percent_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes; every other byte stands for itself (`+` included, as BitTorrent
/// clients escape a literal plus).
pub fn percent_decode(text: &str) -> Result<Vec<u8>, Error> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .ok_or(Error::Invalid("percent escape"))?;
            let hex = std::str::from_utf8(hex).map_err(|_| Error::Invalid("percent escape"))?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| Error::Invalid("percent escape"))?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// Splits a query string into decoded `(key, value)` pairs, within the size limits.
pub fn query_pairs(query: &str) -> Result<Vec<(String, Vec<u8>)>, Error> {
    if query.len() > QUERY_BYTES_MAX {
        return Err(Error::TooLarge("query"));
    }
    let mut pairs = Vec::new();
    for part in query.split('&').filter(|p| !p.is_empty()) {
        if pairs.len() == QUERY_PARAMS_MAX {
            return Err(Error::TooLarge("parameter count"));
        }
        let (key, value) = part.split_once('=').unwrap_or((part, ""));
        let key = String::from_utf8(percent_decode(key)?).map_err(|_| Error::Invalid("key"))?;
        pairs.push((key, percent_decode(value)?));
    }
    Ok(pairs)
}

/// An announce as a client sends it (BEP 3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnounceRequest {
    /// The torrent.
    pub info_hash: InfoHash,
    /// The announcing peer.
    pub peer_id: PeerId,
    /// The port the peer listens on.
    pub port: u16,
    /// Bytes uploaded since `started`.
    pub uploaded: u64,
    /// Bytes downloaded since `started`.
    pub downloaded: u64,
    /// Bytes still missing; zero makes the peer a seeder.
    pub left: u64,
    /// The state change, if any.
    pub event: Event,
    /// How many peers the client wants; `None` leaves it to the tracker.
    pub numwant: Option<u32>,
    /// Whether the client accepts BEP 23 compact peer lists.
    pub compact: bool,
    /// The address the client claims (`ip`); servers trust it only on loopback.
    pub ip: Option<IpAddr>,
    /// An opaque key that lets the client prove its identity across address changes.
    pub key: Option<Vec<u8>>,
    /// The tracker id returned by an earlier response.
    pub tracker_id: Option<Vec<u8>>,
}

impl AnnounceRequest {
    /// The query string (without `?`) for this announce.
    pub fn to_query(&self) -> String {
        let mut q = format!(
            "info_hash={}&peer_id={}&port={}&uploaded={}&downloaded={}&left={}&compact={}",
            percent_encode(&self.info_hash.0),
            percent_encode(&self.peer_id.0),
            self.port,
            self.uploaded,
            self.downloaded,
            self.left,
            u8::from(self.compact),
        );
        let event = match self.event {
            Event::None => None,
            Event::Completed => Some("completed"),
            Event::Started => Some("started"),
            Event::Stopped => Some("stopped"),
            Event::Paused => Some("paused"),
        };
        if let Some(event) = event {
            q.push_str("&event=");
            q.push_str(event);
        }
        if let Some(n) = self.numwant {
            q.push_str(&format!("&numwant={n}"));
        }
        if let Some(ip) = self.ip {
            q.push_str(&format!(
                "&ip={}",
                percent_encode(ip.to_string().as_bytes())
            ));
        }
        if let Some(key) = &self.key {
            q.push_str(&format!("&key={}", percent_encode(key)));
        }
        if let Some(id) = &self.tracker_id {
            q.push_str(&format!("&trackerid={}", percent_encode(id)));
        }
        q
    }

    /// Parses a server-side query string. Unknown parameters are ignored; `uploaded` and
    /// `downloaded` default to zero; `info_hash`, `peer_id`, `port` and `left` are required.
    pub fn from_query(query: &str) -> Result<AnnounceRequest, Error> {
        let mut info_hash = None;
        let mut peer_id = None;
        let mut port = None;
        let mut left = None;
        let mut req = AnnounceRequest {
            info_hash: InfoHash([0; 20]),
            peer_id: PeerId([0; 20]),
            port: 0,
            uploaded: 0,
            downloaded: 0,
            left: 0,
            event: Event::None,
            numwant: None,
            compact: true,
            ip: None,
            key: None,
            tracker_id: None,
        };
        for (key, value) in query_pairs(query)? {
            match key.as_str() {
                "info_hash" => {
                    info_hash =
                        Some(InfoHash::from_slice(&value).ok_or(Error::Invalid("info_hash"))?)
                }
                "peer_id" => {
                    peer_id = Some(PeerId::from_slice(&value).ok_or(Error::Invalid("peer_id"))?)
                }
                "port" => port = Some(parse_number::<u16>(&value, "port")?),
                "uploaded" => req.uploaded = parse_number(&value, "uploaded")?,
                "downloaded" => req.downloaded = parse_number(&value, "downloaded")?,
                "left" => left = Some(parse_number(&value, "left")?),
                "numwant" | "num_want" => req.numwant = Some(parse_number(&value, "numwant")?),
                "compact" => req.compact = value != b"0",
                "event" => req.event = parse_event(&value)?,
                "ip" | "ipv4" | "ipv6" => {
                    let text = std::str::from_utf8(&value).map_err(|_| Error::Invalid("ip"))?;
                    req.ip = Some(text.parse().map_err(|_| Error::Invalid("ip"))?);
                }
                "key" => req.key = Some(bounded_token(value, "key")?),
                "trackerid" => req.tracker_id = Some(bounded_token(value, "trackerid")?),
                _ => {}
            }
        }
        req.info_hash = info_hash.ok_or(Error::Missing("info_hash"))?;
        req.peer_id = peer_id.ok_or(Error::Missing("peer_id"))?;
        req.port = port.ok_or(Error::Missing("port"))?;
        req.left = left.ok_or(Error::Missing("left"))?;
        Ok(req)
    }
}

fn bounded_token(value: Vec<u8>, what: &'static str) -> Result<Vec<u8>, Error> {
    if value.len() > TOKEN_BYTES_MAX {
        return Err(Error::TooLarge(what));
    }
    Ok(value)
}

fn parse_number<T: std::str::FromStr>(value: &[u8], what: &'static str) -> Result<T, Error> {
    // Digits only: `FromStr` would also take a leading `+`.
    if value.is_empty() || value.len() > 20 || !value.iter().all(u8::is_ascii_digit) {
        return Err(Error::Invalid(what));
    }
    std::str::from_utf8(value)
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or(Error::Invalid(what))
}

fn parse_event(value: &[u8]) -> Result<Event, Error> {
    Ok(match value {
        b"" | b"empty" => Event::None,
        b"started" => Event::Started,
        b"completed" => Event::Completed,
        b"stopped" => Event::Stopped,
        b"paused" => Event::Paused,
        _ => return Err(Error::Invalid("event")),
    })
}

/// Appends `query` to a tracker URL, after `?` or `&` as the URL needs.
pub fn with_query(url: &str, query: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{query}")
}

/// The scrape URL for an announce URL by the BEP 48 convention (the last path segment
/// `announce...` becomes `scrape...`), or `None` when the tracker cannot scrape.
pub fn scrape_url(announce_url: &str) -> Option<String> {
    let path_end = announce_url.find('?').unwrap_or(announce_url.len());
    let slash = announce_url[..path_end].rfind('/')?;
    let segment = &announce_url[slash + 1..path_end];
    let rest = segment.strip_prefix("announce")?;
    Some(format!(
        "{}scrape{rest}{}",
        &announce_url[..=slash],
        &announce_url[path_end..]
    ))
}

/// A scrape request: the torrents asked about (BEP 48). Empty asks for every torrent, which
/// servers may refuse.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScrapeRequest {
    /// The torrents.
    pub info_hashes: Vec<InfoHash>,
}

impl ScrapeRequest {
    /// The query string (without `?`).
    pub fn to_query(&self) -> String {
        let parts: Vec<String> = self
            .info_hashes
            .iter()
            .map(|h| format!("info_hash={}", percent_encode(&h.0)))
            .collect();
        parts.join("&")
    }

    /// Parses a server-side scrape query; at most [`SCRAPE_HASHES_MAX`] hashes.
    pub fn from_query(query: &str) -> Result<ScrapeRequest, Error> {
        let mut info_hashes = Vec::new();
        for (key, value) in query_pairs(query)? {
            if key == "info_hash" {
                if info_hashes.len() == SCRAPE_HASHES_MAX {
                    return Err(Error::TooLarge("info_hash count"));
                }
                info_hashes.push(InfoHash::from_slice(&value).ok_or(Error::Invalid("info_hash"))?);
            }
        }
        Ok(ScrapeRequest { info_hashes })
    }
}

/// A successful announce response.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AnnounceResponse {
    /// Seconds the client should wait before the next regular announce.
    pub interval: u32,
    /// Seconds the client must wait at least.
    pub min_interval: Option<u32>,
    /// Seeders in the swarm.
    pub complete: Option<u32>,
    /// Leechers in the swarm.
    pub incomplete: Option<u32>,
    /// Peers to connect to, IPv4 and IPv6 mixed.
    pub peers: Vec<SocketAddr>,
    /// A warning to show the user; the announce still succeeded.
    pub warning: Option<String>,
    /// An id to send back as `trackerid`.
    pub tracker_id: Option<Vec<u8>>,
}

impl AnnounceResponse {
    /// The bencoded body. Compact puts IPv4 peers in `peers` (BEP 23) and IPv6 peers in
    /// `peers6` (BEP 7); otherwise both go in a `peers` list of dictionaries.
    pub fn encode(&self, compact: bool) -> Vec<u8> {
        let mut d = Owned::dict().with("interval", i64::from(self.interval));
        if let Some(v) = self.min_interval {
            d.insert("min interval", i64::from(v));
        }
        if let Some(v) = self.complete {
            d.insert("complete", i64::from(v));
        }
        if let Some(v) = self.incomplete {
            d.insert("incomplete", i64::from(v));
        }
        if let Some(w) = &self.warning {
            d.insert("warning message", w.as_str());
        }
        if let Some(id) = &self.tracker_id {
            d.insert("tracker id", id.as_slice());
        }
        if compact {
            let (mut v4, mut v6) = (Vec::new(), Vec::new());
            for peer in &self.peers {
                match peer {
                    SocketAddr::V4(a) => v4.extend_from_slice(&compact_v4(a.ip(), a.port())),
                    SocketAddr::V6(a) => {
                        v6.extend_from_slice(&a.ip().octets());
                        v6.extend_from_slice(&a.port().to_be_bytes());
                    }
                }
            }
            d.insert("peers", v4);
            if !v6.is_empty() {
                d.insert("peers6", v6);
            }
        } else {
            let list: Vec<Owned> = self
                .peers
                .iter()
                .map(|p| {
                    Owned::dict()
                        .with("ip", p.ip().to_string())
                        .with("port", i64::from(p.port()))
                })
                .collect();
            d.insert("peers", list);
        }
        d.to_bytes()
    }

    /// Decodes a tracker's body; a `failure reason` becomes [`Error::Failure`].
    pub fn decode(body: &[u8]) -> Result<AnnounceResponse, Error> {
        let value = decode_body(body)?;
        let dict = value.as_dict().ok_or(Error::Invalid("response"))?;
        check_failure(dict)?;
        let interval = dict.get_int("interval").ok_or(Error::Missing("interval"))?;
        let mut resp = AnnounceResponse {
            interval: clamp_u32(interval),
            min_interval: dict.get_int("min interval").map(clamp_u32),
            complete: dict.get_int("complete").map(clamp_u32),
            incomplete: dict.get_int("incomplete").map(clamp_u32),
            warning: dict
                .get_bytes("warning message")
                .map(|w| String::from_utf8_lossy(w).into_owned()),
            tracker_id: dict.get_bytes("tracker id").map(<[u8]>::to_vec),
            peers: Vec::new(),
        };
        match dict.get(b"peers") {
            Some(v) if v.as_bytes().is_some() => resp
                .peers
                .extend(decode_compact_v4(v.as_bytes().unwrap_or_default())?),
            Some(v) if v.as_list().is_some() => {
                for entry in v.as_list().unwrap_or_default() {
                    let entry = entry.as_dict().ok_or(Error::Invalid("peer"))?;
                    let ip: IpAddr = entry
                        .get_str("ip")
                        .and_then(|t| t.parse().ok())
                        .ok_or(Error::Invalid("peer ip"))?;
                    let port = entry
                        .get_int("port")
                        .and_then(|p| u16::try_from(p).ok())
                        .ok_or(Error::Invalid("peer port"))?;
                    resp.peers.push(SocketAddr::new(ip, port));
                }
            }
            Some(_) => return Err(Error::Invalid("peers")),
            None => {}
        }
        if let Some(v6) = dict.get_bytes("peers6") {
            resp.peers.extend(decode_compact_v6(v6)?);
        }
        Ok(resp)
    }
}

/// The 6-byte compact form of an IPv4 peer (BEP 23).
pub fn compact_v4(ip: &Ipv4Addr, port: u16) -> [u8; 6] {
    let mut out = [0u8; 6];
    out[..4].copy_from_slice(&ip.octets());
    out[4..].copy_from_slice(&port.to_be_bytes());
    out
}

/// Reads a BEP 23 compact IPv4 peer string.
pub fn decode_compact_v4(bytes: &[u8]) -> Result<Vec<SocketAddr>, Error> {
    if !bytes.len().is_multiple_of(6) {
        return Err(Error::Invalid("compact peers"));
    }
    Ok(bytes
        .chunks_exact(6)
        .map(|c| {
            let ip = Ipv4Addr::new(c[0], c[1], c[2], c[3]);
            SocketAddr::new(IpAddr::V4(ip), u16::from_be_bytes([c[4], c[5]]))
        })
        .collect())
}

/// Reads a BEP 7 compact IPv6 peer string (18 bytes a peer).
pub fn decode_compact_v6(bytes: &[u8]) -> Result<Vec<SocketAddr>, Error> {
    if !bytes.len().is_multiple_of(18) {
        return Err(Error::Invalid("compact peers6"));
    }
    Ok(bytes
        .chunks_exact(18)
        .map(|c| {
            let mut ip = [0u8; 16];
            ip.copy_from_slice(&c[..16]);
            SocketAddr::new(
                IpAddr::V6(Ipv6Addr::from(ip)),
                u16::from_be_bytes([c[16], c[17]]),
            )
        })
        .collect())
}

/// A scrape response (BEP 48): counts per requested torrent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScrapeResponse {
    /// Counts by torrent, in info-hash order.
    pub files: Vec<(InfoHash, ScrapeStats)>,
}

impl ScrapeResponse {
    /// The bencoded body.
    pub fn encode(&self) -> Vec<u8> {
        let mut files = Owned::dict();
        for (hash, s) in &self.files {
            let entry = Owned::dict()
                .with("complete", i64::from(s.complete))
                .with("downloaded", i64::from(s.downloaded))
                .with("incomplete", i64::from(s.incomplete));
            if let Owned::Dict(map) = &mut files {
                map.insert(hash.0.to_vec(), entry);
            }
        }
        Owned::dict().with("files", files).to_bytes()
    }

    /// Decodes a scrape body; a `failure reason` becomes [`Error::Failure`].
    pub fn decode(body: &[u8]) -> Result<ScrapeResponse, Error> {
        let value = decode_body(body)?;
        let dict = value.as_dict().ok_or(Error::Invalid("response"))?;
        check_failure(dict)?;
        let files = dict.get_dict("files").ok_or(Error::Missing("files"))?;
        let mut out = ScrapeResponse::default();
        for (key, entry) in files.iter() {
            let hash = InfoHash::from_slice(key).ok_or(Error::Invalid("files key"))?;
            let entry = entry.as_dict().ok_or(Error::Invalid("files entry"))?;
            let count = |k: &str| entry.get_int(k).map(clamp_u32).unwrap_or(0);
            let stats = ScrapeStats {
                complete: count("complete"),
                downloaded: count("downloaded"),
                incomplete: count("incomplete"),
            };
            out.files.push((hash, stats));
        }
        Ok(out)
    }
}

/// A bencoded failure body; `retry_in` is the BEP 31 `retry in` minutes, if any.
pub fn encode_failure(reason: &str, retry_in: Option<u32>) -> Vec<u8> {
    let mut d = Owned::dict().with("failure reason", reason);
    if let Some(minutes) = retry_in {
        d.insert("retry in", i64::from(minutes));
    }
    d.to_bytes()
}

fn decode_body(body: &[u8]) -> Result<bencode::Value<'_>, Error> {
    if body.len() > RESPONSE_BYTES_MAX {
        return Err(Error::TooLarge("response"));
    }
    // Trackers in the wild emit unsorted keys; read them anyway.
    let limits = bencode::Limits {
        allow_unsorted_keys: true,
        ..bencode::Limits::DEFAULT
    };
    bencode::decode_with(body, limits).map_err(|e| Error::Bencode(e.to_string()))
}

fn check_failure(dict: &bencode::Dict<'_>) -> Result<(), Error> {
    match dict.get_bytes("failure reason") {
        Some(reason) => Err(Error::Failure(String::from_utf8_lossy(reason).into_owned())),
        None => Ok(()),
    }
}

fn clamp_u32(v: i64) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> AnnounceRequest {
        AnnounceRequest {
            info_hash: InfoHash([0xAB; 20]),
            peer_id: PeerId(*b"-SP0001-%&= +/?\x00\xff\x10ab"),
            port: 6881,
            uploaded: 1,
            downloaded: 2,
            left: 3,
            event: Event::Started,
            numwant: Some(50),
            compact: true,
            ip: Some("127.0.0.2".parse().unwrap()),
            key: Some(b"k3y".to_vec()),
            tracker_id: None,
        }
    }

    #[test]
    fn announce_query_round_trips_binary_fields() {
        let req = sample();
        assert_eq!(AnnounceRequest::from_query(&req.to_query()), Ok(req));
    }

    #[test]
    fn missing_and_bad_parameters_are_named() {
        let q = sample().to_query();
        let without = |name: &str| {
            q.split('&')
                .filter(|p| !p.starts_with(&format!("{name}=")))
                .collect::<Vec<_>>()
                .join("&")
        };
        for name in ["info_hash", "peer_id", "port", "left"] {
            assert!(matches!(
                AnnounceRequest::from_query(&without(name)),
                Err(Error::Missing(n)) if n == name
            ));
        }
        let short = q
            .replacen("info_hash=", "info_hash=%AB", 1)
            .replacen("%AB", "", 2);
        assert!(AnnounceRequest::from_query(&short).is_err());
        assert_eq!(
            AnnounceRequest::from_query(&format!("{}&port=70000", without("port"))),
            Err(Error::Invalid("port"))
        );
        assert_eq!(
            AnnounceRequest::from_query(&"a=b&".repeat(1100)),
            Err(Error::TooLarge("query"))
        );
    }

    #[test]
    fn scrape_url_follows_bep48_convention() {
        assert_eq!(
            scrape_url("http://t.example/announce?pk=1").as_deref(),
            Some("http://t.example/scrape?pk=1")
        );
        assert_eq!(
            scrape_url("http://t/x/announce.php").as_deref(),
            Some("http://t/x/scrape.php")
        );
        assert_eq!(scrape_url("http://t/a"), None);
    }

    #[test]
    fn failure_body_decodes_as_failure() {
        let body = encode_failure("unregistered torrent", None);
        assert_eq!(
            AnnounceResponse::decode(&body),
            Err(Error::Failure("unregistered torrent".into()))
        );
    }

    fn arb_addr() -> impl Strategy<Value = SocketAddr> {
        prop_oneof![
            (any::<[u8; 4]>(), any::<u16>())
                .prop_map(|(ip, port)| SocketAddr::new(IpAddr::from(ip), port)),
            (any::<[u8; 16]>(), any::<u16>())
                .prop_map(|(ip, port)| SocketAddr::new(IpAddr::from(ip), port)),
        ]
    }

    proptest! {
        #[test]
        fn query_parser_never_panics(q in ".{0,300}") {
            let _ = AnnounceRequest::from_query(&q);
            let _ = ScrapeRequest::from_query(&q);
        }

        #[test]
        fn percent_round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            prop_assert_eq!(percent_decode(&percent_encode(&bytes)).unwrap(), bytes);
        }

        #[test]
        fn response_round_trips(
            interval in any::<u32>(), complete in any::<u32>(),
            peers in proptest::collection::vec(arb_addr(), 0..20),
        ) {
            // Compact form groups IPv4 before IPv6; compare in that order.
            let mut sorted = peers.clone();
            sorted.sort_by_key(|p| p.is_ipv6());
            let resp = AnnounceResponse {
                interval, complete: Some(complete), peers: sorted, ..Default::default()
            };
            prop_assert_eq!(AnnounceResponse::decode(&resp.encode(true)).unwrap(), resp.clone());
            prop_assert_eq!(AnnounceResponse::decode(&resp.encode(false)).unwrap(), resp);
        }

        #[test]
        fn response_decoder_never_panics(body in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = AnnounceResponse::decode(&body);
            let _ = ScrapeResponse::decode(&body);
        }

        #[test]
        fn scrape_round_trips(hashes in proptest::collection::btree_set(any::<[u8; 20]>(), 0..10)) {
            let req = ScrapeRequest { info_hashes: hashes.iter().copied().map(InfoHash).collect() };
            prop_assert_eq!(ScrapeRequest::from_query(&req.to_query()).unwrap(), req.clone());
            let resp = ScrapeResponse {
                files: req.info_hashes.iter().map(|h| (*h, ScrapeStats { complete: 1, downloaded: 2, incomplete: 3 })).collect(),
            };
            prop_assert_eq!(ScrapeResponse::decode(&resp.encode()).unwrap(), resp);
        }
    }
}
