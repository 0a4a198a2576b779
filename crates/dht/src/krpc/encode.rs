//! Encoding KRPC messages: canonical bencode written straight into the output buffer, with the
//! keys of every dictionary in sorted order (checked in debug builds), so a datagram costs one
//! allocation and no intermediate tree.

use std::net::{IpAddr, SocketAddr};

use super::{Body, Message, Method, NodeInfo, Query, Response};
use crate::node_id::NodeId;

/// Appends the canonical encoding of `message` to `out`.
pub(super) fn message(message: &Message, out: &mut Vec<u8>) {
    let mut root = DictWriter::open(out);
    match &message.body {
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
    if let Some(ip) = message.requester_ip {
        let mut compact = [0u8; 18];
        let len = write_compact_addr(ip, &mut compact);
        root.bytes("ip", &compact[..len]);
    }
    if let Body::Query(q) = &message.body {
        root.bytes("q", q.method.name());
    }
    if let Body::Response(r) = &message.body {
        encode_response(r, root.key("r"));
    }
    if message.read_only {
        root.int("ro", 1);
    }
    root.bytes("t", &message.transaction_id);
    if let Some(v) = &message.version {
        root.bytes("v", v);
    }
    let kind: &[u8] = match message.body {
        Body::Query(_) => b"q",
        Body::Response(_) => b"r",
        Body::Error(_) => b"e",
    };
    root.bytes("y", kind);
    root.close();
}

/// Enough bytes for the encoding of `message` in all but unusual cases (one allocation per
/// datagram).
pub(super) fn len_estimate(message: &Message) -> usize {
    let variable = match &message.body {
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
    96 + message.transaction_id.len() + variable
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

/// Writes the compact form of `addr` to the start of `out`; returns its length (6 or 18).
pub(super) fn write_compact_addr(addr: SocketAddr, out: &mut [u8; 18]) -> usize {
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
