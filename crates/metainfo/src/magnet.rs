//! Magnet links: BEP 9 (`xt=urn:btih:`, hex or base32) and BEP 52 (`xt=urn:btmh:1220...`), with
//! `dn` (name), `tr` (trackers), `ws` (web seeds, BEP 19), `x.pe` (peer addresses) and `so`
//! (select only these file indices, BEP 53).

use std::fmt;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::str::FromStr;

use crate::error::Error;
use crate::info_hash::{to_hex, InfoHashV1, InfoHashV2, InfoHashes};

/// Largest magnet link accepted, in bytes.
pub const MAGNET_BYTES_MAX: usize = 64 * 1024;

/// A parsed magnet link.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Magnet {
    /// The info-hashes from `xt` (at least one).
    pub info_hashes: InfoHashes,
    /// `dn`: a name to show until the metadata arrives.
    pub display_name: Option<String>,
    /// `tr`: tracker URLs, in order.
    pub trackers: Vec<String>,
    /// `ws`: web seed URLs.
    pub web_seeds: Vec<String>,
    /// `x.pe`: peers to contact directly.
    pub peers: Vec<SocketAddr>,
    /// `so`: file indices to download, as inclusive ranges.
    pub select_only: Vec<RangeInclusive<u32>>,
}

impl FromStr for Magnet {
    type Err = Error;

    fn from_str(link: &str) -> Result<Magnet, Error> {
        if link.len() > MAGNET_BYTES_MAX {
            return Err(Error::Magnet(format!(
                "longer than {MAGNET_BYTES_MAX} bytes"
            )));
        }
        let query = link
            .get(..8)
            .filter(|scheme| scheme.eq_ignore_ascii_case("magnet:?"))
            .map(|_| &link[8..])
            .ok_or_else(|| Error::Magnet("does not start with `magnet:?`".into()))?;
        let mut magnet = Magnet::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, raw) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode(raw)?;
            match key {
                "xt" => magnet.add_exact_topic(&value)?,
                "dn" => magnet.display_name = Some(value),
                "tr" => magnet.trackers.push(value),
                "ws" => magnet.web_seeds.push(value),
                "x.pe" => magnet.peers.push(value.parse().map_err(|_| {
                    Error::Magnet(format!("x.pe {value:?} is not an IP address and port"))
                })?),
                "so" => magnet.select_only.extend(parse_ranges(&value)?),
                _ => {} // Other parameters (xl, kt, as...) are optional hints.
            }
        }
        if magnet.info_hashes.v1.is_none() && magnet.info_hashes.v2.is_none() {
            return Err(Error::Magnet(
                "no `xt=urn:btih:` or `xt=urn:btmh:` info-hash".into(),
            ));
        }
        Ok(magnet)
    }
}

impl Magnet {
    fn add_exact_topic(&mut self, topic: &str) -> Result<(), Error> {
        let lower = topic.to_ascii_lowercase();
        if let Some(hash) = lower.strip_prefix("urn:btih:") {
            let hash: InfoHashV1 = topic[9..].parse().map_err(|_| {
                Error::Magnet(format!(
                    "btih {hash:?} is not 40 hex or 32 base32 characters"
                ))
            })?;
            set_once(&mut self.info_hashes.v1, hash, "btih")
        } else if let Some(multihash) = lower.strip_prefix("urn:btmh:") {
            // Multihash: 0x12 = sha2-256, 0x20 = 32 bytes.
            let hash = multihash
                .strip_prefix("1220")
                .and_then(|hex| hex.parse::<InfoHashV2>().ok())
                .ok_or_else(|| {
                    Error::Magnet(format!(
                        "btmh {multihash:?} is not `1220` followed by 64 hex characters"
                    ))
                })?;
            set_once(&mut self.info_hashes.v2, hash, "btmh")
        } else {
            Ok(()) // Other URNs (ed2k, sha1...) name the content for other networks.
        }
    }
}

fn set_once<T: PartialEq>(slot: &mut Option<T>, value: T, what: &str) -> Result<(), Error> {
    match slot {
        Some(existing) if *existing != value => {
            Err(Error::Magnet(format!("two different `{what}` info-hashes")))
        }
        _ => {
            *slot = Some(value);
            Ok(())
        }
    }
}

/// `0,2-4` into `[0..=0, 2..=4]`.
fn parse_ranges(text: &str) -> Result<Vec<RangeInclusive<u32>>, Error> {
    let bad = || Error::Magnet(format!("so {text:?} is not a list like `0,2-4`"));
    text.split(',')
        .map(|part| {
            let (first, last) = part.split_once('-').unwrap_or((part, part));
            let first: u32 = first.parse().map_err(|_| bad())?;
            let last: u32 = last.parse().map_err(|_| bad())?;
            if first > last {
                return Err(bad());
            }
            Ok(first..=last)
        })
        .collect()
}

fn percent_decode(text: &str) -> Result<String, Error> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| Error::Magnet(format!("bad percent escape in {text:?}")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| Error::Magnet(format!("{text:?} is not UTF-8 once decoded")))
}

/// Percent-encodes everything but RFC 3986 unreserved marks and alphanumerics, with lowercase
/// hex as libtorrent writes it.
fn percent_encode(text: &str, out: &mut String) {
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push('%');
            out.push_str(&to_hex(&[byte]));
        }
    }
}

impl fmt::Display for Magnet {
    /// Parameters in libtorrent's order: `xt` (btih, btmh), `dn`, `tr`..., `ws`..., then `x.pe`
    /// and `so`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::from("magnet:?");
        let mut params: Vec<(&str, String)> = Vec::new();
        if let Some(v1) = self.info_hashes.v1 {
            params.push(("xt", format!("urn:btih:{v1}")));
        }
        if let Some(v2) = self.info_hashes.v2 {
            params.push(("xt", format!("urn:btmh:1220{v2}")));
        }
        let encoded = |text: &str| {
            let mut s = String::new();
            percent_encode(text, &mut s);
            s
        };
        if let Some(name) = &self.display_name {
            params.push(("dn", encoded(name)));
        }
        params.extend(self.trackers.iter().map(|t| ("tr", encoded(t))));
        params.extend(self.web_seeds.iter().map(|w| ("ws", encoded(w))));
        params.extend(self.peers.iter().map(|p| ("x.pe", encoded(&p.to_string()))));
        if !self.select_only.is_empty() {
            let ranges: Vec<String> = self
                .select_only
                .iter()
                .map(|r| match (r.start(), r.end()) {
                    (a, b) if a == b => a.to_string(),
                    (a, b) => format!("{a}-{b}"),
                })
                .collect();
            params.push(("so", ranges.join(",")));
        }
        for (i, (key, value)) in params.iter().enumerate() {
            if i > 0 {
                out.push('&');
            }
            out.push_str(key);
            out.push('=');
            out.push_str(value);
        }
        f.write_str(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_parameter() {
        let link = "magnet:?xt=urn:btih:b1b2732aec868f1cdd6a2f7365c0aa3f3459bdb8&dn=a%20b\
                    &tr=http%3A%2F%2Ft%2Fa&tr=udp%3a%2f%2fu%3a1&ws=http%3a%2f%2fw%2f\
                    &x.pe=127.0.0.1:6881&x.pe=%5B%3A%3A1%5D%3A7&so=0,2-4";
        let m: Magnet = link.parse().unwrap();
        assert_eq!(m.display_name.as_deref(), Some("a b"));
        assert_eq!(m.trackers, ["http://t/a", "udp://u:1"]);
        assert_eq!(m.web_seeds, ["http://w/"]);
        assert_eq!(m.peers.len(), 2);
        assert_eq!(m.select_only, vec![0..=0, 2..=4]);
        let again: Magnet = m.to_string().parse().unwrap();
        assert_eq!(again, m);
    }

    #[test]
    fn errors_are_clear() {
        for (link, needle) in [
            ("http://x", "magnet:?"),
            ("magnet:?dn=x", "no `xt"),
            ("magnet:?xt=urn:btih:1234", "btih"),
            ("magnet:?xt=urn:btmh:1114aa", "btmh"),
            ("magnet:?xt=urn:btih:%zz", "percent"),
            (
                "magnet:?xt=urn:btih:77777777777777777777777777777777&so=4-2",
                "so",
            ),
            (
                "magnet:?xt=urn:btih:77777777777777777777777777777777&x.pe=host",
                "x.pe",
            ),
        ] {
            let err = link.parse::<Magnet>().unwrap_err().to_string();
            assert!(err.contains(needle), "{link}: {err}");
        }
    }
}
