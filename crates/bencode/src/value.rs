//! Borrowed values produced by the decoder.

use crate::encode::Owned;

/// A decoded bencode value that borrows from the input and remembers its exact encoding.
#[derive(Clone, PartialEq, Eq)]
pub struct Value<'a> {
    pub(crate) raw: &'a [u8],
    pub(crate) kind: Kind<'a>,
}

/// The four kinds of bencode value.
#[derive(Clone, PartialEq, Eq)]
pub enum Kind<'a> {
    /// An integer (`i42e`).
    Int(i64),
    /// A byte string (`4:spam`), borrowed from the input.
    Bytes(&'a [u8]),
    /// A list (`l...e`).
    List(Vec<Value<'a>>),
    /// A dictionary (`d...e`).
    Dict(Dict<'a>),
}

/// A decoded dictionary: entries in the order they were received, which for canonical input is
/// sorted by key (so lookups are binary searches).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Dict<'a> {
    pub(crate) entries: Vec<(&'a [u8], Value<'a>)>,
    /// Whether the keys are known to be sorted and unique (always true unless decoded with
    /// [`crate::Limits::allow_unsorted_keys`]).
    pub(crate) sorted: bool,
}

impl<'a> Value<'a> {
    /// The exact bytes this value was decoded from.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// What kind of value this is.
    pub fn kind(&self) -> &Kind<'a> {
        &self.kind
    }

    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self.kind {
            Kind::Int(i) => Some(i),
            _ => None,
        }
    }

    /// The byte string, if this is one.
    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match self.kind {
            Kind::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The byte string as UTF-8, if this is a byte string holding valid UTF-8.
    pub fn as_str(&self) -> Option<&'a str> {
        self.as_bytes().and_then(|b| std::str::from_utf8(b).ok())
    }

    /// The list, if this is one.
    pub fn as_list(&self) -> Option<&[Value<'a>]> {
        match &self.kind {
            Kind::List(l) => Some(l),
            _ => None,
        }
    }

    /// The dictionary, if this is one.
    pub fn as_dict(&self) -> Option<&Dict<'a>> {
        match &self.kind {
            Kind::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// A short name of the kind, for error messages.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            Kind::Int(_) => "integer",
            Kind::Bytes(_) => "byte string",
            Kind::List(_) => "list",
            Kind::Dict(_) => "dictionary",
        }
    }

    /// An owned copy of this value (for building a modified encoding).
    pub fn to_owned_value(&self) -> Owned {
        match &self.kind {
            Kind::Int(i) => Owned::Int(*i),
            Kind::Bytes(b) => Owned::Bytes(b.to_vec()),
            Kind::List(l) => Owned::List(l.iter().map(Value::to_owned_value).collect()),
            Kind::Dict(d) => Owned::Dict(
                d.iter()
                    .map(|(k, v)| (k.to_vec(), v.to_owned_value()))
                    .collect(),
            ),
        }
    }
}

impl<'a> Dict<'a> {
    /// The value stored under `key`.
    pub fn get(&self, key: &[u8]) -> Option<&Value<'a>> {
        if self.sorted {
            self.entries
                .binary_search_by(|(k, _)| (*k).cmp(key))
                .ok()
                .map(|i| &self.entries[i].1)
        } else {
            self.entries.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
        }
    }

    /// The integer stored under `key`, if present and an integer.
    pub fn get_int(&self, key: &str) -> Option<i64> {
        self.get(key.as_bytes()).and_then(Value::as_int)
    }

    /// The byte string stored under `key`, if present and a byte string.
    pub fn get_bytes(&self, key: &str) -> Option<&'a [u8]> {
        self.get(key.as_bytes()).and_then(Value::as_bytes)
    }

    /// The UTF-8 string stored under `key`, if present and valid.
    pub fn get_str(&self, key: &str) -> Option<&'a str> {
        self.get(key.as_bytes()).and_then(Value::as_str)
    }

    /// The list stored under `key`, if present and a list.
    pub fn get_list(&self, key: &str) -> Option<&[Value<'a>]> {
        self.get(key.as_bytes()).and_then(Value::as_list)
    }

    /// The dictionary stored under `key`, if present and a dictionary.
    pub fn get_dict(&self, key: &str) -> Option<&Dict<'a>> {
        self.get(key.as_bytes()).and_then(Value::as_dict)
    }

    /// The entries, in received order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&'a [u8], &Value<'a>)> + '_ {
        self.entries.iter().map(|(k, v)| (*k, v))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the dictionary has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl std::fmt::Debug for Value<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.kind.fmt(f)
    }
}

impl std::fmt::Debug for Kind<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Kind::Int(i) => write!(f, "{i}"),
            Kind::Bytes(b) => fmt_bytes(b, f),
            Kind::List(l) => f.debug_list().entries(l).finish(),
            Kind::Dict(d) => d.fmt(f),
        }
    }
}

impl std::fmt::Debug for Dict<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut map = f.debug_map();
        for (k, v) in &self.entries {
            map.key(&DebugBytes(k)).value(v);
        }
        map.finish()
    }
}

struct DebugBytes<'a>(&'a [u8]);

impl std::fmt::Debug for DebugBytes<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fmt_bytes(self.0, f)
    }
}

/// Shows printable strings as text and anything else as hex, so binary hashes stay readable.
fn fmt_bytes(b: &[u8], f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    match std::str::from_utf8(b) {
        Ok(s) if s.chars().all(|c| !c.is_control()) => write!(f, "{s:?}"),
        _ => {
            f.write_str("0x")?;
            for byte in b.iter().take(64) {
                write!(f, "{byte:02x}")?;
            }
            if b.len() > 64 {
                write!(f, "..({} bytes)", b.len())?;
            }
            Ok(())
        }
    }
}
