//! The strict decoder.
//!
//! Implementation notes: the decoder is recursive, with the depth capped by
//! [`Limits::depth_max`], so the stack cannot be exhausted. Every value consumes at least two
//! input bytes, and the total number of values is capped by [`Limits::values_max`], so the memory
//! spent on the tree is bounded by a constant times the input length and by the cap.

use crate::value::{Dict, Kind, Value};

/// Bounds applied while decoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Deepest nesting of lists and dictionaries accepted.
    pub depth_max: usize,
    /// Most values (of any kind, counted recursively) accepted in one document.
    pub values_max: usize,
    /// Accept dictionaries whose keys are not in sorted order (duplicates are still rejected).
    /// Off by default: canonical input only. Some old torrents and clients need it on.
    pub allow_unsorted_keys: bool,
}

impl Limits {
    /// Defaults fit for .torrent files and network messages.
    pub const DEFAULT: Limits = Limits {
        depth_max: 64,
        values_max: 4_000_000,
        allow_unsorted_keys: false,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// Why input is not valid canonical bencode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    /// The input ended inside a value.
    #[error("unexpected end of input")]
    UnexpectedEnd,
    /// A byte that cannot start or continue a value here.
    #[error("unexpected byte 0x{0:02x}")]
    UnexpectedByte(u8),
    /// An integer with a leading zero, `-0`, no digits, or out of the 64-bit range.
    #[error("invalid integer")]
    InvalidInteger,
    /// A string length with a leading zero or too many digits.
    #[error("invalid string length")]
    InvalidLength,
    /// A string length that runs past the end of the input.
    #[error("string length {0} exceeds the remaining input")]
    LengthTooLarge(u64),
    /// Dictionary keys out of order.
    #[error("dictionary keys are not sorted")]
    UnsortedKeys,
    /// The same key twice in one dictionary.
    #[error("duplicate dictionary key")]
    DuplicateKey,
    /// Nesting deeper than [`Limits::depth_max`].
    #[error("nesting deeper than {0}")]
    TooDeep(usize),
    /// More values than [`Limits::values_max`].
    #[error("more than {0} values")]
    TooManyValues(usize),
    /// Bytes left after a complete value.
    #[error("{0} trailing bytes after the value")]
    TrailingBytes(usize),
}

/// A decoding error: what went wrong and at which byte offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid bencode at byte {offset}: {kind}")]
pub struct Error {
    /// What went wrong.
    pub kind: ErrorKind,
    /// Offset in the input where it went wrong.
    pub offset: usize,
}

/// Decodes exactly one canonical value that spans the whole input, with default limits.
pub fn decode(input: &[u8]) -> Result<Value<'_>, Error> {
    decode_with(input, Limits::DEFAULT)
}

/// Decodes exactly one value that spans the whole input, with the given limits.
pub fn decode_with(input: &[u8], limits: Limits) -> Result<Value<'_>, Error> {
    let (value, rest) = decode_prefix(input, limits)?;
    if !rest.is_empty() {
        return Err(Error {
            kind: ErrorKind::TrailingBytes(rest.len()),
            offset: input.len() - rest.len(),
        });
    }
    Ok(value)
}

/// Decodes one value at the start of the input and returns it with the bytes that follow
/// (BEP 9 metadata messages carry raw data after a dictionary).
pub fn decode_prefix(input: &[u8], limits: Limits) -> Result<(Value<'_>, &[u8]), Error> {
    let mut decoder = Decoder {
        input,
        pos: 0,
        limits,
        values: 0,
    };
    let value = decoder.value(0)?;
    Ok((value, &input[decoder.pos..]))
}

struct Decoder<'a> {
    input: &'a [u8],
    pos: usize,
    limits: Limits,
    values: usize,
}

impl<'a> Decoder<'a> {
    fn err(&self, kind: ErrorKind) -> Error {
        Error {
            kind,
            offset: self.pos,
        }
    }

    fn peek(&self) -> Result<u8, Error> {
        self.input
            .get(self.pos)
            .copied()
            .ok_or_else(|| self.err(ErrorKind::UnexpectedEnd))
    }

    fn value(&mut self, depth: usize) -> Result<Value<'a>, Error> {
        self.values += 1;
        if self.values > self.limits.values_max {
            return Err(self.err(ErrorKind::TooManyValues(self.limits.values_max)));
        }
        let start = self.pos;
        let kind = match self.peek()? {
            b'i' => {
                self.pos += 1;
                Kind::Int(self.int()?)
            }
            b'0'..=b'9' => Kind::Bytes(self.bytes()?),
            b'l' => {
                let depth = self.enter(depth)?;
                let mut items = Vec::new();
                while self.peek()? != b'e' {
                    items.push(self.value(depth)?);
                }
                self.pos += 1;
                Kind::List(items)
            }
            b'd' => {
                let depth = self.enter(depth)?;
                Kind::Dict(self.dict(depth)?)
            }
            other => return Err(self.err(ErrorKind::UnexpectedByte(other))),
        };
        Ok(Value {
            raw: &self.input[start..self.pos],
            kind,
        })
    }

    fn enter(&mut self, depth: usize) -> Result<usize, Error> {
        if depth >= self.limits.depth_max {
            return Err(self.err(ErrorKind::TooDeep(self.limits.depth_max)));
        }
        self.pos += 1;
        Ok(depth + 1)
    }

    fn dict(&mut self, depth: usize) -> Result<Dict<'a>, Error> {
        let mut entries: Vec<(&'a [u8], Value<'a>)> = Vec::new();
        let mut sorted = true;
        while self.peek()? != b'e' {
            let key_offset = self.pos;
            if !self.peek()?.is_ascii_digit() {
                return Err(self.err(ErrorKind::UnexpectedByte(self.peek()?)));
            }
            let key = self.bytes()?;
            if let Some((last, _)) = entries.last() {
                let order = (*last).cmp(key);
                let problem = match order {
                    std::cmp::Ordering::Less => None,
                    std::cmp::Ordering::Equal => Some(ErrorKind::DuplicateKey),
                    std::cmp::Ordering::Greater if self.limits.allow_unsorted_keys => {
                        sorted = false;
                        None
                    }
                    std::cmp::Ordering::Greater => Some(ErrorKind::UnsortedKeys),
                };
                if let Some(kind) = problem {
                    return Err(Error {
                        kind,
                        offset: key_offset,
                    });
                }
            }
            if !sorted && entries.iter().any(|(k, _)| *k == key) {
                return Err(Error {
                    kind: ErrorKind::DuplicateKey,
                    offset: key_offset,
                });
            }
            let value = self.value(depth)?;
            entries.push((key, value));
        }
        self.pos += 1;
        Ok(Dict { entries, sorted })
    }

    /// Parses digits of an integer after `i`, through the closing `e`.
    fn int(&mut self) -> Result<i64, Error> {
        let start = self.pos;
        let end = self.input[start..]
            .iter()
            .position(|&b| b == b'e')
            .map(|i| start + i)
            .ok_or(Error {
                kind: ErrorKind::UnexpectedEnd,
                offset: self.input.len(),
            })?;
        let text = &self.input[start..end];
        let invalid = Error {
            kind: ErrorKind::InvalidInteger,
            offset: start,
        };
        let digits = text.strip_prefix(b"-").unwrap_or(text);
        let canonical = !digits.is_empty()
            && digits.iter().all(u8::is_ascii_digit)
            && (digits[0] != b'0' || digits.len() == 1)
            && !(digits == b"0" && text.len() != 1);
        if !canonical {
            return Err(invalid);
        }
        // All bytes are ASCII digits or '-', so this is valid UTF-8.
        let value = std::str::from_utf8(text)
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
            .ok_or(invalid)?;
        self.pos = end + 1;
        Ok(value)
    }

    /// Parses `<len>:<bytes>`.
    fn bytes(&mut self) -> Result<&'a [u8], Error> {
        let start = self.pos;
        let colon = self.input[start..]
            .iter()
            .take(21)
            .position(|&b| b == b':')
            .map(|i| start + i);
        let Some(colon) = colon else {
            let digits = self.input[start..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            return Err(Error {
                kind: if start + digits == self.input.len() {
                    ErrorKind::UnexpectedEnd
                } else if digits > 20 {
                    ErrorKind::InvalidLength
                } else {
                    ErrorKind::UnexpectedByte(self.input[start + digits])
                },
                offset: start + digits,
            });
        };
        let text = &self.input[start..colon];
        let invalid = Error {
            kind: ErrorKind::InvalidLength,
            offset: start,
        };
        if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
            return Err(invalid);
        }
        if text[0] == b'0' && text.len() > 1 {
            return Err(invalid);
        }
        let len: u64 = std::str::from_utf8(text)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(invalid)?;
        let body = colon + 1;
        let remaining = (self.input.len() - body) as u64;
        if len > remaining {
            return Err(Error {
                kind: ErrorKind::LengthTooLarge(len),
                offset: start,
            });
        }
        // len <= remaining, which fits in usize.
        let end = body + len as usize;
        self.pos = end;
        Ok(&self.input[body..end])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind_of(input: &[u8]) -> ErrorKind {
        decode(input).unwrap_err().kind
    }

    #[test]
    fn decodes_every_kind_and_keeps_spans() {
        let v = decode(b"d1:ai-12e1:bl3:xyzi0ee1:cd0:0:ee").unwrap();
        let d = v.as_dict().unwrap();
        assert_eq!(d.get_int("a"), Some(-12));
        assert_eq!(d.get(b"b").unwrap().raw(), b"l3:xyzi0ee");
        assert_eq!(d.get_list("b").unwrap()[0].as_bytes(), Some(&b"xyz"[..]));
        assert_eq!(d.get(b"c").unwrap().raw(), b"d0:0:e");
        assert_eq!(d.get_dict("c").unwrap().get_bytes(""), Some(&b""[..]));
        assert!(d.get(b"zz").is_none());
    }

    #[test]
    fn integers_must_be_canonical() {
        assert_eq!(decode(b"i0e").unwrap().as_int(), Some(0));
        assert_eq!(
            decode(b"i-9223372036854775808e").unwrap().as_int(),
            Some(i64::MIN)
        );
        for bad in [
            &b"i-0e"[..],
            b"i01e",
            b"ie",
            b"i-e",
            b"i+1e",
            b"i1.0e",
            b"i9223372036854775808e",
            b"i 1e",
        ] {
            assert_eq!(kind_of(bad), ErrorKind::InvalidInteger, "{bad:?}");
        }
        assert_eq!(kind_of(b"i12"), ErrorKind::UnexpectedEnd);
    }

    #[test]
    fn strings_are_bounded_by_the_input() {
        assert_eq!(kind_of(b"5:abc"), ErrorKind::LengthTooLarge(5));
        assert_eq!(
            kind_of(b"18446744073709551615:x"),
            ErrorKind::LengthTooLarge(u64::MAX)
        );
        assert_eq!(
            kind_of(b"99999999999999999999999:x"),
            ErrorKind::InvalidLength
        );
        assert_eq!(kind_of(b"03:abc"), ErrorKind::InvalidLength);
        assert_eq!(kind_of(b"3"), ErrorKind::UnexpectedEnd);
        assert_eq!(kind_of(b"3x"), ErrorKind::UnexpectedByte(b'x'));
    }

    #[test]
    fn dictionaries_must_be_sorted_and_unique() {
        assert_eq!(kind_of(b"d1:bi1e1:ai2ee"), ErrorKind::UnsortedKeys);
        assert_eq!(kind_of(b"d1:ai1e1:ai2ee"), ErrorKind::DuplicateKey);
        assert_eq!(kind_of(b"di1ei2ee"), ErrorKind::UnexpectedByte(b'i'));
        let lenient = Limits {
            allow_unsorted_keys: true,
            ..Limits::DEFAULT
        };
        let v = decode_with(b"d1:bi1e1:ai2ee", lenient).unwrap();
        assert_eq!(v.as_dict().unwrap().get_int("a"), Some(2));
        assert_eq!(
            decode_with(b"d1:bi1e1:ai2e1:bi3ee", lenient)
                .unwrap_err()
                .kind,
            ErrorKind::DuplicateKey
        );
    }

    #[test]
    fn structure_errors() {
        assert_eq!(kind_of(b""), ErrorKind::UnexpectedEnd);
        assert_eq!(kind_of(b"l"), ErrorKind::UnexpectedEnd);
        assert_eq!(kind_of(b"e"), ErrorKind::UnexpectedByte(b'e'));
        assert_eq!(kind_of(b"i1ei2e"), ErrorKind::TrailingBytes(3));
        let (v, rest) = decode_prefix(b"d1:ai1eeRAW", Limits::DEFAULT).unwrap();
        assert_eq!(v.raw(), b"d1:ai1ee");
        assert_eq!(rest, b"RAW");
    }

    #[test]
    fn depth_and_count_are_capped() {
        let deep = [vec![b'l'; 10_000], vec![b'e'; 10_000]].concat();
        assert_eq!(kind_of(&deep), ErrorKind::TooDeep(64));
        let ok = [vec![b'l'; 64], vec![b'e'; 64]].concat();
        assert!(decode(&ok).is_ok());
        let many = [&b"l"[..], &b"i1e".repeat(100)[..], b"e"].concat();
        let tight = Limits {
            values_max: 50,
            ..Limits::DEFAULT
        };
        assert_eq!(
            decode_with(&many, tight).unwrap_err().kind,
            ErrorKind::TooManyValues(50)
        );
    }

    #[test]
    fn error_reports_offset() {
        let err = decode(b"d1:ai1e1:ai2ee").unwrap_err();
        assert_eq!(err.offset, 7);
        assert_eq!(
            err.to_string(),
            "invalid bencode at byte 7: duplicate dictionary key"
        );
    }
}
