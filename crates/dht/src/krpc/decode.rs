//! Decoding KRPC datagrams in place. One pass over the datagram checks that it is valid
//! bencode under the same rules as `bencode::decode_with` with [`DECODE_LIMITS`] (keys may come
//! unsorted, as some clients send them, but never twice) and notes where the values of the keys
//! KRPC reads are; no tree is built, so a datagram costs no allocation beyond the message's own
//! fields. Values are read from those spans afterwards, already known to be well formed.

use bencode::Limits;

use super::{
    decode_compact_addr, Body, DecodeError, ErrorReply, Message, Method, MutableFields, NodeInfo,
    PutRequest, Query, Response, Want, DATAGRAM_BYTES_MAX, ERROR_MESSAGE_BYTES_MAX,
    NODES_PER_REPLY_MAX, PEERS_PER_REPLY_MAX, SAMPLES_PER_REPLY_MAX, TOKEN_BYTES_MAX,
    TRANSACTION_ID_BYTES_MAX,
};
use crate::node_id::NodeId;

/// Deepest nesting and most values accepted in one datagram; keys may come unsorted.
const DECODE_LIMITS: Limits = Limits {
    depth_max: 16,
    values_max: 1024,
    allow_unsorted_keys: true,
};

/// Longest `v` (client version) kept.
const VERSION_BYTES_MAX: usize = 16;

/// Keys read from the message dictionary.
const ROOT_KEYS: &[&str] = &["a", "e", "ip", "q", "r", "ro", "t", "v", "y"];
/// Keys read from a query's arguments (`a`).
const ARGUMENT_KEYS: &[&str] = &[
    "cas",
    "id",
    "implied_port",
    "info_hash",
    "k",
    "port",
    "salt",
    "seq",
    "sig",
    "target",
    "token",
    "v",
    "want",
];
/// Keys read from a response (`r`).
const RESPONSE_KEYS: &[&str] = &[
    "id", "interval", "k", "nodes", "nodes6", "num", "samples", "seq", "sig", "token", "v",
    "values",
];
/// Room for the longest of the key lists above.
const FIELDS_MAX: usize = 13;

/// Decodes one datagram (see [`Message::decode`]).
pub(super) fn message(datagram: &[u8]) -> Result<Message, DecodeError> {
    let fail = |tid: Option<&[u8]>, was_query, reason| DecodeError {
        transaction_id: tid.map(<[u8]>::to_vec),
        was_query,
        reason,
    };
    if datagram.len() > DATAGRAM_BYTES_MAX {
        return Err(fail(None, false, "datagram too long"));
    }
    let mut root = Fields::new(ROOT_KEYS);
    let mut args = Fields::new(ARGUMENT_KEYS);
    let mut reply = Fields::new(RESPONSE_KEYS);
    if datagram.first() != Some(&b'd') {
        // Not a dictionary: only the reason differs between valid and invalid bencode.
        let reason = match bencode::decode_with(datagram, DECODE_LIMITS) {
            Ok(_) => "not a dictionary",
            Err(_) => "not bencode",
        };
        return Err(fail(None, false, reason));
    }
    let mut reader = Reader::new(datagram);
    reader
        .message(&mut root, &mut args, &mut reply)
        .map_err(|Malformed| fail(None, false, "not bencode"))?;
    let tid = root
        .get_bytes("t")
        .filter(|t| t.len() <= TRANSACTION_ID_BYTES_MAX)
        .ok_or_else(|| fail(None, false, "missing or bad transaction id"))?;
    let kind = root.get_bytes("y").unwrap_or(b"");
    let was_query = kind == b"q";
    let body = match kind {
        b"q" => Body::Query(decode_query(&root, &args).map_err(|r| fail(Some(tid), true, r))?),
        b"r" => Body::Response(decode_response(&reply).map_err(|r| fail(Some(tid), false, r))?),
        b"e" => Body::Error(decode_error(&root).map_err(|r| fail(Some(tid), false, r))?),
        _ => return Err(fail(Some(tid), false, "unknown message type")),
    };
    Ok(Message {
        transaction_id: tid.to_vec(),
        version: root
            .get_bytes("v")
            .filter(|v| v.len() <= VERSION_BYTES_MAX)
            .map(<[u8]>::to_vec),
        requester_ip: root.get_bytes("ip").and_then(decode_compact_addr),
        read_only: was_query && root.get_int("ro") == Some(1),
        body,
    })
}

/// The datagram is not valid bencode under [`DECODE_LIMITS`].
struct Malformed;

/// Where the values of the wanted keys of one dictionary are (their exact encoded bytes).
struct Fields<'a> {
    keys: &'static [&'static str],
    values: [Option<&'a [u8]>; FIELDS_MAX],
    /// Whether the dictionary was there at all (for `a` and `r`).
    present: bool,
}

impl<'a> Fields<'a> {
    fn new(keys: &'static [&'static str]) -> Fields<'a> {
        debug_assert!(keys.len() <= FIELDS_MAX);
        Fields {
            keys,
            values: [None; FIELDS_MAX],
            present: false,
        }
    }

    fn note(&mut self, key: &[u8], raw: &'a [u8]) {
        if let Some(i) = self.keys.iter().position(|k| k.as_bytes() == key) {
            self.values[i] = Some(raw);
        }
    }

    /// The encoded value under `key` (one of `keys`).
    fn get_raw(&self, key: &str) -> Option<&'a [u8]> {
        let i = self.keys.iter().position(|k| *k == key);
        debug_assert!(i.is_some(), "{key} is not a key we read");
        self.values[i?]
    }

    fn get_bytes(&self, key: &str) -> Option<&'a [u8]> {
        self.get_raw(key).and_then(leaf_bytes)
    }

    fn get_int(&self, key: &str) -> Option<i64> {
        self.get_raw(key).and_then(leaf_int)
    }

    /// The encoded items of the list under `key`.
    fn get_list(&self, key: &str) -> Option<ListItems<'a>> {
        let raw = self.get_raw(key)?;
        (raw.first() == Some(&b'l')).then(|| {
            let mut reader = Reader::new(raw);
            reader.pos = 1;
            ListItems { reader }
        })
    }
}

/// The contents of an encoded byte string, `None` for other kinds.
fn leaf_bytes(raw: &[u8]) -> Option<&[u8]> {
    Reader::new(raw).bytes().ok()
}

/// The value of an encoded integer, `None` for other kinds.
fn leaf_int(raw: &[u8]) -> Option<i64> {
    Reader::new(raw).int().ok()
}

/// The items of an encoded list, each as its encoded bytes.
struct ListItems<'a> {
    reader: Reader<'a>,
}

impl<'a> Iterator for ListItems<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.reader.peek().ok()? == b'e' {
            return None;
        }
        // The list was checked as a whole before: the depth given here no longer matters.
        self.reader.value(0).ok()
    }
}

/// A cursor over bencoded input that checks what it passes.
struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
    /// Values seen so far, against [`Limits::values_max`].
    values: usize,
}

impl<'a> Reader<'a> {
    fn new(input: &'a [u8]) -> Reader<'a> {
        Reader {
            input,
            pos: 0,
            values: 0,
        }
    }

    fn peek(&self) -> Result<u8, Malformed> {
        self.input.get(self.pos).copied().ok_or(Malformed)
    }

    /// The whole datagram: the message dictionary, with `a` and `r` read as they pass.
    fn message(
        &mut self,
        root: &mut Fields<'a>,
        args: &mut Fields<'a>,
        reply: &mut Fields<'a>,
    ) -> Result<(), Malformed> {
        self.count_value()?;
        self.dict(0, root, &mut [("a", args), ("r", reply)])?;
        if self.pos != self.input.len() {
            return Err(Malformed);
        }
        Ok(())
    }

    fn count_value(&mut self) -> Result<(), Malformed> {
        self.values += 1;
        if self.values > DECODE_LIMITS.values_max {
            return Err(Malformed);
        }
        Ok(())
    }

    /// Checks the value at the cursor, `depth` containers deep, moves past it and returns it.
    fn value(&mut self, depth: usize) -> Result<&'a [u8], Malformed> {
        self.count_value()?;
        let start = self.pos;
        match self.peek()? {
            b'l' => {
                self.enter(depth)?;
                while self.peek()? != b'e' {
                    self.value(depth + 1)?;
                }
                self.pos += 1;
            }
            b'd' => self.dict(depth, &mut Fields::new(&[]), &mut [])?,
            b'i' => {
                self.int()?;
            }
            _ => {
                self.bytes()?;
            }
        }
        Ok(&self.input[start..self.pos])
    }

    fn enter(&mut self, depth: usize) -> Result<(), Malformed> {
        if depth >= DECODE_LIMITS.depth_max {
            return Err(Malformed);
        }
        self.pos += 1;
        Ok(())
    }

    /// Checks the dictionary at the cursor, noting the wanted keys' values in `fields`; the
    /// values of the keys in `nested` must be dictionaries to be read into their own fields.
    fn dict(
        &mut self,
        depth: usize,
        fields: &mut Fields<'a>,
        nested: &mut [(&str, &mut Fields<'a>)],
    ) -> Result<(), Malformed> {
        self.enter(depth)?;
        let mut keys = KeysSeen::default();
        while self.peek()? != b'e' {
            let key = self.bytes()?;
            keys.add(key)?;
            let inner = nested
                .iter_mut()
                .find(|(name, _)| name.as_bytes() == key)
                .filter(|_| self.input.get(self.pos) == Some(&b'd'));
            let raw = match inner {
                Some((_, inner)) => {
                    self.count_value()?;
                    let start = self.pos;
                    inner.present = true;
                    self.dict(depth + 1, inner, &mut [])?;
                    &self.input[start..self.pos]
                }
                None => self.value(depth + 1)?,
            };
            fields.note(key, raw);
        }
        self.pos += 1;
        Ok(())
    }
}

/// How many keys of one dictionary are remembered without allocating.
const KEYS_INLINE: usize = 16;

impl<'a> Reader<'a> {
    /// Reads the digits at the cursor up to `end`: canonical (no leading zero, at least one
    /// digit), at most 20 of them, and within `u64`.
    fn digits(&mut self, end: u8) -> Result<u64, Malformed> {
        let start = self.pos;
        let mut value: u64 = 0;
        loop {
            match self.peek()? {
                digit @ b'0'..=b'9' if self.pos - start < 20 => {
                    value = value
                        .checked_mul(10)
                        .and_then(|v| v.checked_add(u64::from(digit - b'0')))
                        .ok_or(Malformed)?;
                    self.pos += 1;
                }
                byte if byte == end && self.pos > start => break,
                _ => return Err(Malformed),
            }
        }
        if self.input[start] == b'0' && self.pos - start > 1 {
            return Err(Malformed);
        }
        self.pos += 1;
        Ok(value)
    }

    /// The byte string `<length>:<bytes>` at the cursor, as `bencode` accepts it.
    fn bytes(&mut self) -> Result<&'a [u8], Malformed> {
        let len = self.digits(b':')?;
        let remaining = (self.input.len() - self.pos) as u64;
        if len > remaining {
            return Err(Malformed);
        }
        let start = self.pos;
        // len <= remaining, which fits in usize.
        self.pos += len as usize;
        Ok(&self.input[start..self.pos])
    }

    /// The integer `i<digits>e` at the cursor, as `bencode` accepts it: canonical (no `-0`, no
    /// leading zero) and within `i64`.
    fn int(&mut self) -> Result<i64, Malformed> {
        if self.peek()? != b'i' {
            return Err(Malformed);
        }
        self.pos += 1;
        let negative = self.peek()? == b'-';
        self.pos += usize::from(negative);
        let magnitude = self.digits(b'e')?;
        match (negative, magnitude) {
            (true, 0) => Err(Malformed),
            (true, m) => 0i64.checked_sub_unsigned(m).ok_or(Malformed),
            (false, m) => i64::try_from(m).map_err(|_| Malformed),
        }
    }
}

/// The keys of one dictionary so far, to refuse a key given twice. Sorted keys (the norm)
/// need only the previous one; once a key comes out of order, each is checked against all
/// before it (kept inline, spilling to the heap only in dictionaries with many keys).
#[derive(Default)]
struct KeysSeen<'a> {
    inline: [&'a [u8]; KEYS_INLINE],
    count: usize,
    spilled: Vec<&'a [u8]>,
    unsorted: bool,
}

impl<'a> KeysSeen<'a> {
    fn add(&mut self, key: &'a [u8]) -> Result<(), Malformed> {
        if let Some(last) = self.last() {
            if last == key {
                return Err(Malformed);
            }
            self.unsorted |= last > key;
        }
        if self.unsorted
            && (self.inline[..self.count.min(KEYS_INLINE)].contains(&key)
                || self.spilled.contains(&key))
        {
            return Err(Malformed);
        }
        if self.count < KEYS_INLINE {
            self.inline[self.count] = key;
        } else {
            self.spilled.push(key);
        }
        self.count += 1;
        Ok(())
    }

    fn last(&self) -> Option<&'a [u8]> {
        match self.count {
            0 => None,
            n if n <= KEYS_INLINE => Some(self.inline[n - 1]),
            _ => self.spilled.last().copied(),
        }
    }
}

fn id_arg(args: &Fields<'_>, key: &str) -> Result<NodeId, &'static str> {
    args.get_bytes(key)
        .and_then(NodeId::from_slice)
        .ok_or("missing or malformed 20-byte argument")
}

fn decode_query(root: &Fields<'_>, args: &Fields<'_>) -> Result<Query, &'static str> {
    let name = root.get_bytes("q").ok_or("missing method")?;
    if !args.present {
        return Err("missing arguments");
    }
    let id = id_arg(args, "id")?;
    let mut want = Want::default();
    for w in args.get_list("want").into_iter().flatten() {
        match leaf_bytes(w) {
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

fn token_arg(args: &Fields<'_>) -> Result<Vec<u8>, &'static str> {
    args.get_bytes("token")
        .filter(|t| t.len() <= TOKEN_BYTES_MAX)
        .map(<[u8]>::to_vec)
        .ok_or("missing or bad token")
}

fn decode_put(args: &Fields<'_>) -> Result<PutRequest, &'static str> {
    let value = args.get_raw("v").ok_or("missing v")?.to_vec();
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

fn decode_response(r: &Fields<'_>) -> Result<Response, &'static str> {
    if !r.present {
        return Err("missing r");
    }
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
            .filter_map(|v| leaf_bytes(v).and_then(decode_compact_addr))
            .take(PEERS_PER_REPLY_MAX)
            .collect();
    }
    response.token = r
        .get_bytes("token")
        .filter(|t| t.len() <= TOKEN_BYTES_MAX)
        .map(<[u8]>::to_vec);
    response.value = r.get_raw("v").map(<[u8]>::to_vec);
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

fn decode_error(root: &Fields<'_>) -> Result<ErrorReply, &'static str> {
    let mut list = root.get_list("e").ok_or("missing e")?;
    let code = list.next().and_then(leaf_int).ok_or("bad error code")?;
    let message = list
        .next()
        .and_then(leaf_bytes)
        .map(|m| String::from_utf8_lossy(&m[..m.len().min(ERROR_MESSAGE_BYTES_MAX)]).into_owned())
        .unwrap_or_default();
    Ok(ErrorReply { code, message })
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
