//! Canonical encoding.

use std::collections::BTreeMap;

/// An owned bencode value for building documents. Dictionaries are `BTreeMap`s, so the encoding
/// is canonical by construction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Owned {
    /// An integer.
    Int(i64),
    /// A byte string.
    Bytes(Vec<u8>),
    /// A list.
    List(Vec<Owned>),
    /// A dictionary, sorted by key.
    Dict(BTreeMap<Vec<u8>, Owned>),
    /// Bytes that are already a bencoded value, spliced in verbatim (an info dictionary whose
    /// hash must not change when the surrounding torrent is rewritten).
    Raw(Vec<u8>),
}

impl Owned {
    /// An empty dictionary.
    pub fn dict() -> Owned {
        Owned::Dict(BTreeMap::new())
    }

    /// Inserts `key: value` if this is a dictionary (builder style); other kinds are unchanged.
    #[must_use]
    pub fn with(mut self, key: &str, value: impl Into<Owned>) -> Owned {
        self.insert(key, value);
        self
    }

    /// Inserts `key: value` if this is a dictionary; other kinds are unchanged.
    pub fn insert(&mut self, key: &str, value: impl Into<Owned>) {
        if let Owned::Dict(map) = self {
            map.insert(key.as_bytes().to_vec(), value.into());
        }
    }

    /// Appends the canonical encoding to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Owned::Int(i) => encode_int(*i, out),
            Owned::Bytes(b) => encode_bytes(b, out),
            Owned::List(items) => {
                out.push(b'l');
                for item in items {
                    item.encode_into(out);
                }
                out.push(b'e');
            }
            Owned::Dict(map) => {
                out.push(b'd');
                for (key, value) in map {
                    encode_bytes(key, out);
                    value.encode_into(out);
                }
                out.push(b'e');
            }
            Owned::Raw(raw) => out.extend_from_slice(raw),
        }
    }

    /// The canonical encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }
}

/// Appends `i<n>e`.
pub fn encode_int(value: i64, out: &mut Vec<u8>) {
    out.push(b'i');
    if value < 0 {
        out.push(b'-');
    }
    push_decimal(value.unsigned_abs(), out);
    out.push(b'e');
}

/// Appends `<len>:<bytes>`.
pub fn encode_bytes(bytes: &[u8], out: &mut Vec<u8>) {
    encode_length(bytes.len(), out);
    out.extend_from_slice(bytes);
}

/// Appends the `<len>:` prefix of a byte string whose `len` bytes the caller appends next
/// (for strings assembled in place, without a temporary buffer).
pub fn encode_length(len: usize, out: &mut Vec<u8>) {
    push_decimal(len as u64, out);
    out.push(b':');
}

/// Appends `value` in decimal without allocating (encoding runs for every DHT datagram).
fn push_decimal(mut value: u64, out: &mut Vec<u8>) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

impl From<i64> for Owned {
    fn from(v: i64) -> Self {
        Owned::Int(v)
    }
}

impl From<u64> for Owned {
    /// Saturates at `i64::MAX`, the largest bencode integer most readers accept.
    fn from(v: u64) -> Self {
        Owned::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

impl From<&str> for Owned {
    fn from(v: &str) -> Self {
        Owned::Bytes(v.as_bytes().to_vec())
    }
}

impl From<String> for Owned {
    fn from(v: String) -> Self {
        Owned::Bytes(v.into_bytes())
    }
}

impl From<&[u8]> for Owned {
    fn from(v: &[u8]) -> Self {
        Owned::Bytes(v.to_vec())
    }
}

impl From<Vec<u8>> for Owned {
    fn from(v: Vec<u8>) -> Self {
        Owned::Bytes(v)
    }
}

impl From<Vec<Owned>> for Owned {
    fn from(v: Vec<Owned>) -> Self {
        Owned::List(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dictionaries_encode_sorted() {
        let v = Owned::dict()
            .with("zeta", 1i64)
            .with("alpha", "x")
            .with("list", vec![Owned::Int(-3), Owned::from("")]);
        assert_eq!(v.to_bytes(), b"d5:alpha1:x4:listli-3e0:e4:zetai1ee");
    }

    #[test]
    fn integers_and_lengths_are_plain_decimal() {
        for value in [0, 1, -1, 9, 10, -10, 4_294_967_296, i64::MAX, i64::MIN] {
            let mut out = Vec::new();
            encode_int(value, &mut out);
            assert_eq!(out, format!("i{value}e").as_bytes());
        }
        let mut out = Vec::new();
        encode_bytes(&[b'x'; 100], &mut out);
        assert_eq!(&out[..4], b"100:");
        assert_eq!(out.len(), 104);
    }

    #[test]
    fn raw_is_spliced_verbatim() {
        let v = Owned::dict().with("info", Owned::Raw(b"d1:ai1ee".to_vec()));
        assert_eq!(v.to_bytes(), b"d4:infod1:ai1eee");
    }
}
