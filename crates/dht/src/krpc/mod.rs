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

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use crate::node_id::NodeId;

mod decode;
mod encode;

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
        decode::message(datagram)
    }

    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(encode::len_estimate(self));
        self.encode_into(&mut out);
        out
    }

    /// Appends the canonical encoding to `out`: written straight into the buffer, keys in
    /// sorted order, no intermediate tree (every datagram a node sends goes through here).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        encode::message(self, out);
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

/// Compact address: 4 or 16 address bytes then the big-endian port.
pub fn encode_compact_addr(addr: SocketAddr) -> Vec<u8> {
    let mut compact = [0u8; 18];
    let len = encode::write_compact_addr(addr, &mut compact);
    compact[..len].to_vec()
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
