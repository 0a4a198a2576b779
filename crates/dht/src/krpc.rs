//! KRPC messages (BEP 5) and their codec, with the extensions spore speaks: BEP 32 (`nodes6`,
//! `want`), BEP 42 (`ip`), BEP 43 (`ro`), BEP 44 (`get`/`put`) and BEP 51 (`sample_infohashes`).
//!
//! A message is one bencoded dictionary: `t` (transaction id, echoed by the reply), `y` (`q`
//! query, `r` response, `e` error), `v` (client version), and for queries `q` (method) and `a`
//! (arguments), for responses `r`, for errors `e: [code, message]`. Responses do not name the
//! method they answer, so [`Response`] holds every field a reply may carry; the caller knows
//! what it asked from the transaction id.
//!
//! Implementation notes: decoding is strict about types and lenient about unknown keys (they are
//! ignored, as BEP 5 asks) and about key order (some clients do not sort). Every variable-length
//! field has a named cap, so a hostile datagram costs at most a small constant times its size.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use bencode::{Dict, Limits, Value};

use crate::node_id::NodeId;

/// Largest datagram read or accepted; anything longer is dropped before decoding.
pub const DATAGRAM_BYTES_MAX: usize = 1500;
/// Longest transaction id accepted (ours are 2 bytes; others use up to 8).
pub const TRANSACTION_ID_BYTES_MAX: usize = 16;
/// Longest token accepted in a reply or an announce.
pub const TOKEN_BYTES_MAX: usize = 64;
/// Most nodes read from one `nodes`/`nodes6` field (extra ones are ignored).
pub const NODES_PER_REPLY_MAX: usize = 32;
/// Most peers read from one `values` list (extra ones are ignored).
pub const PEERS_PER_REPLY_MAX: usize = 256;
/// Most samples read from one BEP 51 reply.
pub const SAMPLES_PER_REPLY_MAX: usize = 64;
/// Longest error message kept.
pub const ERROR_MESSAGE_BYTES_MAX: usize = 256;

const DECODE_LIMITS: Limits = Limits {
    depth_max: 16,
    values_max: 1024,
    allow_unsorted_keys: true,
};

/// KRPC error codes (BEP 5 and BEP 44).
pub mod error_code {
    /// Generic error.
    pub const GENERIC: i64 = 201;
    /// Server error.
    pub const SERVER: i64 = 202;
    /// Protocol error: malformed packet, invalid arguments or bad token.
    pub const PROTOCOL: i64 = 203;
    /// Method unknown.
    pub const METHOD_UNKNOWN: i64 = 204;
    /// BEP 44: the value is larger than 1000 bytes.
    pub const VALUE_TOO_BIG: i64 = 205;
    /// BEP 44: invalid signature.
    pub const INVALID_SIGNATURE: i64 = 206;
    /// BEP 44: the salt is larger than 64 bytes.
    pub const SALT_TOO_BIG: i64 = 207;
    /// BEP 44: the CAS value does not match the stored sequence number.
    pub const CAS_MISMATCH: i64 = 301;
    /// BEP 44: the sequence number is lower than the stored one.
    pub const SEQ_TOO_LOW: i64 = 302;
}

/// A node's contact: id and UDP address (26 bytes compact for IPv4, 38 for IPv6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeInfo {
    /// The node's id.
    pub id: NodeId,
    /// Where it listens.
    pub addr: SocketAddr,
}

/// One KRPC message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// `t`: chosen by the querier, echoed by the reply.
    pub transaction_id: Vec<u8>,
    /// `v`: the sender's client and version, if given.
    pub version: Option<Vec<u8>>,
    /// `ip` (BEP 42): the address the replier saw the querier at.
    pub requester_ip: Option<SocketAddr>,
    /// `ro` (BEP 43): the querier is read-only and must not be added to routing tables.
    pub read_only: bool,
    /// What the message says.
    pub body: Body,
}

/// The three kinds of message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// `y = q`.
    Query(Query),
    /// `y = r`.
    Response(Response),
    /// `y = e`.
    Error(ErrorReply),
}

/// A query: the sender's id, the method and its arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    /// The querier's id.
    pub id: NodeId,
    /// The method and its arguments.
    pub method: Method,
    /// BEP 32 `want`: which address families the querier wants nodes of.
    pub want: Want,
}

/// BEP 32 `want`: both false means "the family of the socket the query came in on".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Want {
    /// `n4`: IPv4 nodes in `nodes`.
    pub v4: bool,
    /// `n6`: IPv6 nodes in `nodes6`.
    pub v6: bool,
}

/// The methods spore understands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Method {
    /// `ping`.
    Ping,
    /// `find_node`.
    FindNode {
        /// The id sought.
        target: NodeId,
    },
    /// `get_peers`.
    GetPeers {
        /// The torrent.
        info_hash: NodeId,
    },
    /// `announce_peer`.
    AnnouncePeer {
        /// The torrent.
        info_hash: NodeId,
        /// The peer's port (ignored with `implied_port`).
        port: u16,
        /// Use the datagram's source port instead of `port`.
        implied_port: bool,
        /// The token from an earlier `get_peers` reply.
        token: Vec<u8>,
    },
    /// BEP 44 `get`.
    Get {
        /// The item's target.
        target: NodeId,
        /// Only return a mutable item newer than this.
        seq: Option<i64>,
    },
    /// BEP 44 `put`.
    Put(PutRequest),
    /// BEP 51 `sample_infohashes`.
    SampleInfohashes {
        /// Where to look for nodes to return alongside.
        target: NodeId,
    },
    /// Any other method. With a `target` or `info_hash` it is answered like `find_node`.
    Unknown {
        /// The method's name.
        name: Vec<u8>,
        /// Its `target` or `info_hash` argument.
        target: Option<NodeId>,
    },
}

/// The arguments of a BEP 44 `put`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PutRequest {
    /// The token from an earlier `get` reply.
    pub token: Vec<u8>,
    /// The bencoded value `v`, exactly as sent.
    pub value: Vec<u8>,
    /// Present for mutable items.
    pub mutable: Option<MutableFields>,
}

/// The fields of a mutable item on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MutableFields {
    /// `k`: the ed25519 public key.
    pub key: [u8; 32],
    /// `sig`: the signature.
    pub signature: [u8; 64],
    /// `seq`: the sequence number.
    pub seq: i64,
    /// `salt` (empty when absent).
    pub salt: Vec<u8>,
    /// `cas`: only store if the current seq equals this.
    pub cas: Option<i64>,
}

/// A response: every field any reply may carry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Response {
    /// The replier's id.
    pub id: NodeId,
    /// `nodes`: IPv4 contacts.
    pub nodes: Vec<NodeInfo>,
    /// `nodes6` (BEP 32): IPv6 contacts.
    pub nodes6: Vec<NodeInfo>,
    /// `values`: peers (get_peers).
    pub values: Vec<SocketAddr>,
    /// `token` (get_peers, get).
    pub token: Option<Vec<u8>>,
    /// BEP 44 `v`, bencoded as received.
    pub value: Option<Vec<u8>>,
    /// BEP 44 `k`.
    pub key: Option<[u8; 32]>,
    /// BEP 44 `sig`.
    pub signature: Option<[u8; 64]>,
    /// BEP 44 `seq`.
    pub seq: Option<i64>,
    /// BEP 51 `samples`.
    pub samples: Option<Vec<NodeId>>,
    /// BEP 51 `interval` in seconds.
    pub interval: Option<i64>,
    /// BEP 51 `num`: how many info-hashes the replier stores.
    pub num: Option<i64>,
}

/// An error reply: `e: [code, message]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorReply {
    /// One of [`error_code`].
    pub code: i64,
    /// Human-readable text.
    pub message: String,
}

/// Why a datagram is not a KRPC message we can use.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid KRPC message: {reason}")]
pub struct DecodeError {
    /// The transaction id, when the datagram got far enough to have one.
    pub transaction_id: Option<Vec<u8>>,
    /// Whether it was a query (then it deserves a 203 error reply).
    pub was_query: bool,
    /// What was wrong.
    pub reason: &'static str,
}

impl Message {
    /// Decodes one datagram.
    pub fn decode(datagram: &[u8]) -> Result<Message, DecodeError> {
        let fail = |tid: Option<&[u8]>, was_query, reason| DecodeError {
            transaction_id: tid.map(<[u8]>::to_vec),
            was_query,
            reason,
        };
        if datagram.len() > DATAGRAM_BYTES_MAX {
            return Err(fail(None, false, "datagram too long"));
        }
        let value = bencode::decode_with(datagram, DECODE_LIMITS)
            .map_err(|_| fail(None, false, "not bencode"))?;
        let dict = value
            .as_dict()
            .ok_or_else(|| fail(None, false, "not a dictionary"))?;
        let tid = dict
            .get_bytes("t")
            .filter(|t| t.len() <= TRANSACTION_ID_BYTES_MAX)
            .ok_or_else(|| fail(None, false, "missing or bad transaction id"))?;
        let kind = dict.get_bytes("y").unwrap_or(b"");
        let was_query = kind == b"q";
        let body = match kind {
            b"q" => Body::Query(decode_query(dict).map_err(|r| fail(Some(tid), true, r))?),
            b"r" => Body::Response(decode_response(dict).map_err(|r| fail(Some(tid), false, r))?),
            b"e" => Body::Error(decode_error(dict).map_err(|r| fail(Some(tid), false, r))?),
            _ => return Err(fail(Some(tid), false, "unknown message type")),
        };
        Ok(Message {
            transaction_id: tid.to_vec(),
            version: dict
                .get_bytes("v")
                .filter(|v| v.len() <= 16)
                .map(<[u8]>::to_vec),
            requester_ip: dict.get_bytes("ip").and_then(decode_compact_addr),
            read_only: was_query && dict.get_int("ro") == Some(1),
            body,
        })
    }

    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len_estimate());
        self.encode_into(&mut out);
        out
    }

    /// Appends the canonical encoding to `out`: written straight into the buffer, keys in
    /// sorted order, no intermediate tree (every datagram a node sends goes through here).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let mut root = DictWriter::open(out);
        match &self.body {
            Body::Query(q) => {
                encode_query_args(q, root.key("a"));
            }
            Body::Response(_) => {}
            Body::Error(e) => {
                let out = root.key("e");
                out.push(b'l');
                bencode::encode_int(e.code, out);
                bencode::encode_bytes(e.message.as_bytes(), out);
                out.push(b'e');
            }
        }
        if let Some(ip) = self.requester_ip {
            let mut compact = [0u8; 18];
            let len = write_compact_addr(ip, &mut compact);
            root.bytes("ip", &compact[..len]);
        }
        if let Body::Query(q) = &self.body {
            root.bytes("q", q.method.name());
        }
        if let Body::Response(r) = &self.body {
            encode_response(r, root.key("r"));
        }
        if self.read_only {
            root.int("ro", 1);
        }
        root.bytes("t", &self.transaction_id);
        if let Some(v) = &self.version {
            root.bytes("v", v);
        }
        let kind: &[u8] = match self.body {
            Body::Query(_) => b"q",
            Body::Response(_) => b"r",
            Body::Error(_) => b"e",
        };
        root.bytes("y", kind);
        root.close();
    }

    /// Enough bytes for the encoding in all but unusual cases (one allocation per datagram).
    fn encoded_len_estimate(&self) -> usize {
        let variable = match &self.body {
            Body::Query(q) => match &q.method {
                Method::Put(put) => put.value.len() + put.token.len() + 160,
                Method::AnnouncePeer { token, .. } => token.len() + 64,
                _ => 64,
            },
            Body::Response(r) => {
                r.nodes.len() * 26
                    + r.nodes6.len() * 38
                    + r.values.len() * 21
                    + r.value.as_ref().map_or(0, Vec::len)
                    + r.samples.as_ref().map_or(0, |s| s.len() * 20)
                    + 160
            }
            Body::Error(e) => e.message.len() + 16,
        };
        96 + self.transaction_id.len() + variable
    }
}

impl Method {
    /// The method's name on the wire (`q`).
    pub fn name(&self) -> &[u8] {
        match self {
            Method::Ping => b"ping",
            Method::FindNode { .. } => b"find_node",
            Method::GetPeers { .. } => b"get_peers",
            Method::AnnouncePeer { .. } => b"announce_peer",
            Method::Get { .. } => b"get",
            Method::Put(_) => b"put",
            Method::SampleInfohashes { .. } => b"sample_infohashes",
            Method::Unknown { name, .. } => name,
        }
    }
}

/// Writes one bencoded dictionary entry by entry. Keys must come in strictly increasing order
/// (canonical bencode); the writer checks that in debug builds and tests.
struct DictWriter<'a> {
    out: &'a mut Vec<u8>,
    last_key: &'static [u8],
}

impl<'a> DictWriter<'a> {
    fn open(out: &'a mut Vec<u8>) -> DictWriter<'a> {
        out.push(b'd');
        DictWriter { out, last_key: b"" }
    }

    /// Writes `key` and hands back the buffer for its value.
    fn key(&mut self, key: &'static str) -> &mut Vec<u8> {
        debug_assert!(
            self.last_key.is_empty() || self.last_key < key.as_bytes(),
            "key {key} after {:?}",
            self.last_key
        );
        self.last_key = key.as_bytes();
        bencode::encode_bytes(key.as_bytes(), self.out);
        self.out
    }

    fn bytes(&mut self, key: &'static str, value: &[u8]) {
        bencode::encode_bytes(value, self.key(key));
    }

    fn int(&mut self, key: &'static str, value: i64) {
        bencode::encode_int(value, self.key(key));
    }

    fn raw(&mut self, key: &'static str, encoded: &[u8]) {
        self.key(key).extend_from_slice(encoded);
    }

    fn id(&mut self, key: &'static str, id: &NodeId) {
        self.bytes(key, &id.0);
    }

    fn close(self) {
        self.out.push(b'e');
    }
}

fn id_arg(args: &Dict<'_>, key: &str) -> Result<NodeId, &'static str> {
    args.get_bytes(key)
        .and_then(NodeId::from_slice)
        .ok_or("missing or malformed 20-byte argument")
}

fn decode_query(dict: &Dict<'_>) -> Result<Query, &'static str> {
    let name = dict.get_bytes("q").ok_or("missing method")?;
    let args = dict.get_dict("a").ok_or("missing arguments")?;
    let id = id_arg(args, "id")?;
    let mut want = Want::default();
    for w in args.get_list("want").unwrap_or(&[]) {
        match w.as_bytes() {
            Some(b"n4") => want.v4 = true,
            Some(b"n6") => want.v6 = true,
            _ => {}
        }
    }
    let method = match name {
        b"ping" => Method::Ping,
        b"find_node" => Method::FindNode {
            target: id_arg(args, "target")?,
        },
        b"get_peers" => Method::GetPeers {
            info_hash: id_arg(args, "info_hash")?,
        },
        b"announce_peer" => {
            let implied_port = args.get_int("implied_port").is_some_and(|p| p != 0);
            let port = match args.get_int("port").map(u16::try_from) {
                Some(Ok(p)) => p,
                _ if implied_port => 0,
                _ => return Err("missing or bad port"),
            };
            Method::AnnouncePeer {
                info_hash: id_arg(args, "info_hash")?,
                port,
                implied_port,
                token: token_arg(args)?,
            }
        }
        b"get" => Method::Get {
            target: id_arg(args, "target")?,
            seq: args.get_int("seq"),
        },
        b"put" => Method::Put(decode_put(args)?),
        b"sample_infohashes" => Method::SampleInfohashes {
            target: id_arg(args, "target")?,
        },
        other => Method::Unknown {
            name: other.iter().copied().take(64).collect(),
            target: id_arg(args, "target")
                .or_else(|_| id_arg(args, "info_hash"))
                .ok(),
        },
    };
    Ok(Query { id, method, want })
}

fn token_arg(args: &Dict<'_>) -> Result<Vec<u8>, &'static str> {
    args.get_bytes("token")
        .filter(|t| t.len() <= TOKEN_BYTES_MAX)
        .map(<[u8]>::to_vec)
        .ok_or("missing or bad token")
}

fn decode_put(args: &Dict<'_>) -> Result<PutRequest, &'static str> {
    let value = args.get(b"v").ok_or("missing v")?.raw().to_vec();
    let token = token_arg(args)?;
    let mutable = match args.get_bytes("k") {
        None => None,
        Some(key) => Some(MutableFields {
            key: key.try_into().map_err(|_| "k must be 32 bytes")?,
            signature: args
                .get_bytes("sig")
                .and_then(|s| s.try_into().ok())
                .ok_or("sig must be 64 bytes")?,
            seq: args.get_int("seq").ok_or("missing seq")?,
            salt: args.get_bytes("salt").unwrap_or(b"").to_vec(),
            cas: args.get_int("cas"),
        }),
    };
    Ok(PutRequest {
        token,
        value,
        mutable,
    })
}

fn decode_response(dict: &Dict<'_>) -> Result<Response, &'static str> {
    let r = dict.get_dict("r").ok_or("missing r")?;
    let mut response = Response {
        id: id_arg(r, "id")?,
        ..Response::default()
    };
    if let Some(nodes) = r.get_bytes("nodes") {
        response.nodes = decode_compact_nodes(nodes, 4);
    }
    if let Some(nodes6) = r.get_bytes("nodes6") {
        response.nodes6 = decode_compact_nodes(nodes6, 16);
    }
    if let Some(values) = r.get_list("values") {
        response.values = values
            .iter()
            .filter_map(|v| v.as_bytes().and_then(decode_compact_addr))
            .take(PEERS_PER_REPLY_MAX)
            .collect();
    }
    response.token = r
        .get_bytes("token")
        .filter(|t| t.len() <= TOKEN_BYTES_MAX)
        .map(<[u8]>::to_vec);
    response.value = r.get(b"v").map(|v| v.raw().to_vec());
    response.key = r.get_bytes("k").and_then(|k| k.try_into().ok());
    response.signature = r.get_bytes("sig").and_then(|s| s.try_into().ok());
    response.seq = r.get_int("seq");
    response.samples = r.get_bytes("samples").map(|s| {
        s.chunks_exact(20)
            .take(SAMPLES_PER_REPLY_MAX)
            .filter_map(NodeId::from_slice)
            .collect()
    });
    response.interval = r.get_int("interval");
    response.num = r.get_int("num");
    Ok(response)
}

fn decode_error(dict: &Dict<'_>) -> Result<ErrorReply, &'static str> {
    let list = dict.get_list("e").ok_or("missing e")?;
    let code = list
        .first()
        .and_then(Value::as_int)
        .ok_or("bad error code")?;
    let message = list
        .get(1)
        .and_then(Value::as_bytes)
        .map(|m| String::from_utf8_lossy(&m[..m.len().min(ERROR_MESSAGE_BYTES_MAX)]).into_owned())
        .unwrap_or_default();
    Ok(ErrorReply { code, message })
}

fn encode_query_args(q: &Query, out: &mut Vec<u8>) {
    let mut args = DictWriter::open(out);
    let (target, info_hash) = match &q.method {
        Method::FindNode { target }
        | Method::Get { target, .. }
        | Method::SampleInfohashes { target } => (Some(target), None),
        Method::Unknown { target, .. } => (target.as_ref(), None),
        Method::GetPeers { info_hash } | Method::AnnouncePeer { info_hash, .. } => {
            (None, Some(info_hash))
        }
        Method::Ping | Method::Put(_) => (None, None),
    };
    let put = match &q.method {
        Method::Put(put) => Some(put),
        _ => None,
    };
    let mutable = put.and_then(|p| p.mutable.as_ref());
    if let Some(cas) = mutable.and_then(|m| m.cas) {
        args.int("cas", cas);
    }
    args.id("id", &q.id);
    if let Method::AnnouncePeer {
        implied_port: true, ..
    } = q.method
    {
        args.int("implied_port", 1);
    }
    if let Some(info_hash) = info_hash {
        args.id("info_hash", info_hash);
    }
    if let Some(m) = mutable {
        args.bytes("k", &m.key);
    }
    if let Method::AnnouncePeer { port, .. } = q.method {
        args.int("port", i64::from(port));
    }
    if let Some(m) = mutable.filter(|m| !m.salt.is_empty()) {
        args.bytes("salt", &m.salt);
    }
    let seq = match &q.method {
        Method::Get { seq, .. } => *seq,
        _ => mutable.map(|m| m.seq),
    };
    if let Some(seq) = seq {
        args.int("seq", seq);
    }
    if let Some(m) = mutable {
        args.bytes("sig", &m.signature);
    }
    if let Some(target) = target {
        args.id("target", target);
    }
    match &q.method {
        Method::AnnouncePeer { token, .. } => args.bytes("token", token),
        Method::Put(put) => args.bytes("token", &put.token),
        _ => {}
    }
    if let Some(put) = put {
        args.raw("v", &put.value);
    }
    if q.want.v4 || q.want.v6 {
        let out = args.key("want");
        out.push(b'l');
        if q.want.v4 {
            bencode::encode_bytes(b"n4", out);
        }
        if q.want.v6 {
            bencode::encode_bytes(b"n6", out);
        }
        out.push(b'e');
    }
    args.close();
}

fn encode_response(r: &Response, out: &mut Vec<u8>) {
    let mut dict = DictWriter::open(out);
    dict.id("id", &r.id);
    if let Some(interval) = r.interval {
        dict.int("interval", interval);
    }
    if let Some(k) = &r.key {
        dict.bytes("k", k);
    }
    if !r.nodes.is_empty() {
        encode_compact_nodes(&r.nodes, dict.key("nodes"));
    }
    if !r.nodes6.is_empty() {
        encode_compact_nodes(&r.nodes6, dict.key("nodes6"));
    }
    if let Some(num) = r.num {
        dict.int("num", num);
    }
    if let Some(samples) = &r.samples {
        let out = dict.key("samples");
        bencode::encode_length(samples.len() * NodeId::LEN, out);
        for sample in samples {
            out.extend_from_slice(&sample.0);
        }
    }
    if let Some(seq) = r.seq {
        dict.int("seq", seq);
    }
    if let Some(sig) = &r.signature {
        dict.bytes("sig", sig);
    }
    if let Some(token) = &r.token {
        dict.bytes("token", token);
    }
    if let Some(v) = &r.value {
        dict.raw("v", v);
    }
    if !r.values.is_empty() {
        let out = dict.key("values");
        out.push(b'l');
        let mut compact = [0u8; 18];
        for addr in &r.values {
            let len = write_compact_addr(*addr, &mut compact);
            bencode::encode_bytes(&compact[..len], out);
        }
        out.push(b'e');
    }
    dict.close();
}

/// Compact address: 4 or 16 address bytes then the big-endian port.
pub fn encode_compact_addr(addr: SocketAddr) -> Vec<u8> {
    let mut compact = [0u8; 18];
    let len = write_compact_addr(addr, &mut compact);
    compact[..len].to_vec()
}

/// Writes the compact form of `addr` to the start of `out`; returns its length (6 or 18).
fn write_compact_addr(addr: SocketAddr, out: &mut [u8; 18]) -> usize {
    let ip_len = match addr.ip() {
        IpAddr::V4(ip) => {
            out[..4].copy_from_slice(&ip.octets());
            4
        }
        IpAddr::V6(ip) => {
            out[..16].copy_from_slice(&ip.octets());
            16
        }
    };
    out[ip_len..ip_len + 2].copy_from_slice(&addr.port().to_be_bytes());
    ip_len + 2
}

/// Parses a 6- or 18-byte compact address.
pub fn decode_compact_addr(bytes: &[u8]) -> Option<SocketAddr> {
    match bytes.len() {
        6 => {
            let ip = Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]);
            let port = u16::from_be_bytes([bytes[4], bytes[5]]);
            Some(SocketAddr::V4(SocketAddrV4::new(ip, port)))
        }
        18 => {
            let octets: [u8; 16] = bytes[..16].try_into().ok()?;
            let port = u16::from_be_bytes([bytes[16], bytes[17]]);
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(octets),
                port,
                0,
                0,
            )))
        }
        _ => None,
    }
}

fn decode_compact_nodes(bytes: &[u8], ip_len: usize) -> Vec<NodeInfo> {
    bytes
        .chunks_exact(20 + ip_len + 2)
        .take(NODES_PER_REPLY_MAX)
        .filter_map(|chunk| {
            Some(NodeInfo {
                id: NodeId::from_slice(&chunk[..20])?,
                addr: decode_compact_addr(&chunk[20..])?,
            })
        })
        .collect()
}

/// Writes `nodes` as one compact byte string (id then compact address, each).
fn encode_compact_nodes(nodes: &[NodeInfo], out: &mut Vec<u8>) {
    let mut compact = [0u8; 18];
    let total: usize = nodes
        .iter()
        .map(|n| NodeId::LEN + if n.addr.is_ipv4() { 6 } else { 18 })
        .sum();
    bencode::encode_length(total, out);
    for node in nodes {
        out.extend_from_slice(&node.id.0);
        let len = write_compact_addr(node.addr, &mut compact);
        out.extend_from_slice(&compact[..len]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(byte: u8) -> NodeId {
        NodeId([byte; 20])
    }

    fn round_trip(message: Message) {
        let bytes = message.encode();
        assert_eq!(Message::decode(&bytes).unwrap(), message);
    }

    #[test]
    fn bep5_ping_example_decodes() {
        let m =
            Message::decode(b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe").unwrap();
        assert_eq!(m.transaction_id, b"aa");
        match m.body {
            Body::Query(q) => {
                assert_eq!(q.method, Method::Ping);
                assert_eq!(&q.id.0, b"abcdefghij0123456789");
            }
            other => panic!("not a query: {other:?}"),
        }
    }

    #[test]
    fn queries_round_trip() {
        let methods = [
            Method::Ping,
            Method::FindNode { target: id(2) },
            Method::GetPeers { info_hash: id(3) },
            Method::AnnouncePeer {
                info_hash: id(3),
                port: 6881,
                implied_port: true,
                token: b"tok".to_vec(),
            },
            Method::Get {
                target: id(4),
                seq: Some(7),
            },
            Method::Put(PutRequest {
                token: b"t".to_vec(),
                value: b"12:Hello World!".to_vec(),
                mutable: Some(MutableFields {
                    key: [5; 32],
                    signature: [6; 64],
                    seq: 1,
                    salt: b"foobar".to_vec(),
                    cas: Some(0),
                }),
            }),
            Method::SampleInfohashes { target: id(9) },
        ];
        for method in methods {
            round_trip(Message {
                transaction_id: b"xy".to_vec(),
                version: Some(b"SP01".to_vec()),
                requester_ip: None,
                read_only: true,
                body: Body::Query(Query {
                    id: id(1),
                    method,
                    want: Want { v4: true, v6: true },
                }),
            });
        }
    }

    #[test]
    fn responses_and_errors_round_trip() {
        round_trip(Message {
            transaction_id: b"ab".to_vec(),
            version: None,
            requester_ip: Some("1.2.3.4:5".parse().unwrap()),
            read_only: false,
            body: Body::Response(Response {
                id: id(1),
                nodes: vec![NodeInfo {
                    id: id(2),
                    addr: "10.0.0.1:6881".parse().unwrap(),
                }],
                nodes6: vec![NodeInfo {
                    id: id(3),
                    addr: "[::1]:6881".parse().unwrap(),
                }],
                values: vec!["1.1.1.1:1".parse().unwrap()],
                token: Some(b"tok".to_vec()),
                value: Some(b"i5e".to_vec()),
                seq: Some(3),
                samples: Some(vec![id(7)]),
                interval: Some(60),
                num: Some(1),
                ..Response::default()
            }),
        });
        round_trip(Message {
            transaction_id: b"ab".to_vec(),
            version: None,
            requester_ip: None,
            read_only: false,
            body: Body::Error(ErrorReply {
                code: 203,
                message: "bad token".into(),
            }),
        });
    }

    #[test]
    fn unknown_method_keeps_its_target() {
        let raw = b"d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e1:q4:vote1:t1:a1:y1:qe";
        let m = Message::decode(raw).unwrap();
        let Body::Query(q) = m.body else {
            panic!("not a query")
        };
        assert_eq!(
            q.method,
            Method::Unknown {
                name: b"vote".to_vec(),
                target: NodeId::from_slice(b"mnopqrstuvwxyz123456"),
            }
        );
    }

    #[test]
    fn malformed_queries_report_their_transaction_id() {
        let err = Message::decode(b"d1:ad2:id3:abce1:q4:ping1:t2:zz1:y1:qe").unwrap_err();
        assert_eq!(err.transaction_id.as_deref(), Some(&b"zz"[..]));
        assert!(err.was_query);
        assert!(Message::decode(b"i42e").is_err());
        assert!(Message::decode(b"d1:t2:aa1:y1:xe").is_err());
    }
}
