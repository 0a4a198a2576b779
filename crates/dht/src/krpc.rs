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

use bencode::{Dict, Limits, Owned, Value};

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
        let mut root = Owned::dict().with("t", self.transaction_id.clone());
        if let Some(v) = &self.version {
            root.insert("v", v.clone());
        }
        if let Some(ip) = self.requester_ip {
            root.insert("ip", encode_compact_addr(ip));
        }
        if self.read_only {
            root.insert("ro", 1i64);
        }
        match &self.body {
            Body::Query(q) => {
                root.insert("y", "q");
                let (name, args) = encode_query(q);
                root.insert("q", name);
                root.insert("a", args);
            }
            Body::Response(r) => {
                root.insert("y", "r");
                root.insert("r", encode_response(r));
            }
            Body::Error(e) => {
                root.insert("y", "e");
                root.insert(
                    "e",
                    vec![Owned::Int(e.code), Owned::from(e.message.as_str())],
                );
            }
        }
        root.to_bytes()
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

fn encode_query(q: &Query) -> (Vec<u8>, Owned) {
    let mut args = Owned::dict().with("id", q.id.0.to_vec());
    let mut want = Vec::new();
    if q.want.v4 {
        want.push(Owned::from("n4"));
    }
    if q.want.v6 {
        want.push(Owned::from("n6"));
    }
    if !want.is_empty() {
        args.insert("want", want);
    }
    let name = match &q.method {
        Method::Ping => "ping",
        Method::FindNode { target } => {
            args.insert("target", target.0.to_vec());
            "find_node"
        }
        Method::GetPeers { info_hash } => {
            args.insert("info_hash", info_hash.0.to_vec());
            "get_peers"
        }
        Method::AnnouncePeer {
            info_hash,
            port,
            implied_port,
            token,
        } => {
            args.insert("info_hash", info_hash.0.to_vec());
            args.insert("port", i64::from(*port));
            args.insert("token", token.clone());
            if *implied_port {
                args.insert("implied_port", 1i64);
            }
            "announce_peer"
        }
        Method::Get { target, seq } => {
            args.insert("target", target.0.to_vec());
            if let Some(seq) = seq {
                args.insert("seq", *seq);
            }
            "get"
        }
        Method::Put(put) => {
            args.insert("token", put.token.clone());
            args.insert("v", Owned::Raw(put.value.clone()));
            if let Some(m) = &put.mutable {
                args.insert("k", m.key.to_vec());
                args.insert("sig", m.signature.to_vec());
                args.insert("seq", m.seq);
                if !m.salt.is_empty() {
                    args.insert("salt", m.salt.clone());
                }
                if let Some(cas) = m.cas {
                    args.insert("cas", cas);
                }
            }
            "put"
        }
        Method::SampleInfohashes { target } => {
            args.insert("target", target.0.to_vec());
            "sample_infohashes"
        }
        Method::Unknown { name, target } => {
            if let Some(target) = target {
                args.insert("target", target.0.to_vec());
            }
            return (name.clone(), args);
        }
    };
    (name.as_bytes().to_vec(), args)
}

fn encode_response(r: &Response) -> Owned {
    let mut out = Owned::dict().with("id", r.id.0.to_vec());
    if !r.nodes.is_empty() {
        out.insert("nodes", encode_compact_nodes(&r.nodes));
    }
    if !r.nodes6.is_empty() {
        out.insert("nodes6", encode_compact_nodes(&r.nodes6));
    }
    if !r.values.is_empty() {
        let values: Vec<Owned> = r
            .values
            .iter()
            .map(|a| Owned::from(encode_compact_addr(*a)))
            .collect();
        out.insert("values", values);
    }
    if let Some(token) = &r.token {
        out.insert("token", token.clone());
    }
    if let Some(v) = &r.value {
        out.insert("v", Owned::Raw(v.clone()));
    }
    if let Some(k) = &r.key {
        out.insert("k", k.to_vec());
    }
    if let Some(sig) = &r.signature {
        out.insert("sig", sig.to_vec());
    }
    if let Some(seq) = r.seq {
        out.insert("seq", seq);
    }
    if let Some(samples) = &r.samples {
        out.insert(
            "samples",
            samples.iter().flat_map(|s| s.0).collect::<Vec<u8>>(),
        );
    }
    if let Some(interval) = r.interval {
        out.insert("interval", interval);
    }
    if let Some(num) = r.num {
        out.insert("num", num);
    }
    out
}

/// Compact address: 4 or 16 address bytes then the big-endian port.
pub fn encode_compact_addr(addr: SocketAddr) -> Vec<u8> {
    let mut out = match addr.ip() {
        IpAddr::V4(ip) => ip.octets().to_vec(),
        IpAddr::V6(ip) => ip.octets().to_vec(),
    };
    out.extend_from_slice(&addr.port().to_be_bytes());
    out
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

fn encode_compact_nodes(nodes: &[NodeInfo]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nodes.len() * 38);
    for node in nodes {
        out.extend_from_slice(&node.id.0);
        out.extend_from_slice(&encode_compact_addr(node.addr));
    }
    out
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
