//! Info-hashes: SHA-1 of the info dictionary (v1, BEP 3) and SHA-256 of it (v2, BEP 52).

use std::fmt;
use std::str::FromStr;

use sha1::Digest;

use crate::error::Error;

/// The v1 info-hash: SHA-1 of the bencoded info dictionary (BEP 3).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InfoHashV1(pub [u8; 20]);

/// The v2 info-hash: SHA-256 of the bencoded info dictionary (BEP 52).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InfoHashV2(pub [u8; 32]);

/// The info-hashes of a torrent: v1, v2 or both (hybrid). At least one is present for any
/// torrent or magnet link this crate accepts.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct InfoHashes {
    /// SHA-1 identity, for v1 and hybrid torrents.
    pub v1: Option<InfoHashV1>,
    /// SHA-256 identity, for v2 and hybrid torrents.
    pub v2: Option<InfoHashV2>,
}

impl InfoHashV1 {
    /// The SHA-1 of `info_bytes`.
    pub fn of(info_bytes: &[u8]) -> InfoHashV1 {
        InfoHashV1(sha1::Sha1::digest(info_bytes).into())
    }
}

impl InfoHashV2 {
    /// The SHA-256 of `info_bytes`.
    pub fn of(info_bytes: &[u8]) -> InfoHashV2 {
        InfoHashV2(sha2::Sha256::digest(info_bytes).into())
    }

    /// The first 20 bytes: the form BEP 52 uses where only 20 bytes fit (peer handshake of a
    /// v2-only torrent, DHT `get_peers`, tracker announces).
    pub fn truncated(&self) -> [u8; 20] {
        let mut out = [0; 20];
        out.copy_from_slice(&self.0[..20]);
        out
    }
}

impl InfoHashes {
    /// The 20-byte identity used on the wire, in the DHT and with trackers: the v1 hash when there
    /// is one (hybrid torrents announce under it), else the truncated v2 hash.
    pub fn wire_id(&self) -> [u8; 20] {
        match (self.v1, self.v2) {
            (Some(v1), _) => v1.0,
            (None, Some(v2)) => v2.truncated(),
            (None, None) => [0; 20],
        }
    }

    /// The hashes of an info dictionary: v1 when it carries `pieces`, v2 when `meta version` is 2.
    pub(crate) fn of(info_bytes: &[u8], has_v1: bool, has_v2: bool) -> InfoHashes {
        InfoHashes {
            v1: has_v1.then(|| InfoHashV1::of(info_bytes)),
            v2: has_v2.then(|| InfoHashV2::of(info_bytes)),
        }
    }
}

/// Lowercase hex of `bytes`.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

/// Decodes hex (either case) into exactly `N` bytes.
pub(crate) fn from_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let digits = text.as_bytes();
    if digits.len() != N * 2 {
        return None;
    }
    let mut out = [0; N];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        *byte = (hi * 16 + lo) as u8;
    }
    Some(out)
}

/// Decodes RFC 4648 base32 (either case, no padding) of exactly 20 bytes: the 32-character
/// form of a v1 info-hash that old magnet links use.
pub(crate) fn from_base32_20(text: &str) -> Option<[u8; 20]> {
    if text.len() != 32 {
        return None;
    }
    let mut out = [0u8; 20];
    let mut acc: u64 = 0;
    let mut bits = 0;
    let mut pos = 0;
    for c in text.bytes() {
        let value = match c.to_ascii_uppercase() {
            c @ b'A'..=b'Z' => c - b'A',
            c @ b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        acc = (acc << 5) | u64::from(value);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out[pos] = (acc >> bits) as u8;
            pos += 1;
        }
    }
    Some(out)
}

impl fmt::Display for InfoHashV1 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&to_hex(&self.0))
    }
}

impl fmt::Display for InfoHashV2 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&to_hex(&self.0))
    }
}

impl fmt::Debug for InfoHashV1 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InfoHashV1({self})")
    }
}

impl fmt::Debug for InfoHashV2 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InfoHashV2({self})")
    }
}

impl FromStr for InfoHashV1 {
    type Err = Error;

    /// 40 hex characters, or 32 base32 characters.
    fn from_str(text: &str) -> Result<Self, Error> {
        from_hex(text)
            .or_else(|| from_base32_20(text))
            .map(InfoHashV1)
            .ok_or_else(|| Error::InfoHash(text.to_string()))
    }
}

impl FromStr for InfoHashV2 {
    type Err = Error;

    /// 64 hex characters.
    fn from_str(text: &str) -> Result<Self, Error> {
        from_hex(text)
            .map(InfoHashV2)
            .ok_or_else(|| Error::InfoHash(text.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_case() {
        let h: InfoHashV1 = "B1B2732AEC868F1CDD6A2F7365C0AA3F3459BDB8".parse().unwrap();
        assert_eq!(h.to_string(), "b1b2732aec868f1cdd6a2f7365c0aa3f3459bdb8");
        assert!("b1b2".parse::<InfoHashV1>().is_err());
        assert!("zz".repeat(20).parse::<InfoHashV1>().is_err());
    }

    #[test]
    fn base32_matches_hex() {
        // RFC 4648 test vector scaled: 20 bytes of 0xff is 32 '7's.
        let h: InfoHashV1 = "77777777777777777777777777777777".parse().unwrap();
        assert_eq!(h.0, [0xff; 20]);
        let h: InfoHashV1 = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab".parse().unwrap();
        assert_eq!(h.0[19], 1);
    }

    #[test]
    fn truncated_is_prefix() {
        let v2 = InfoHashV2([7; 32]);
        assert_eq!(v2.truncated(), [7; 20]);
        let hashes = InfoHashes {
            v1: None,
            v2: Some(v2),
        };
        assert_eq!(hashes.wire_id(), [7; 20]);
    }
}
