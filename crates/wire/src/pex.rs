//! BEP 11 `ut_pex`: peers joined and left since the last message, IPv4 and IPv6.

use std::net::{IpAddr, SocketAddr};

use bencode::Owned;

use crate::extended::EXTENSION_LIMITS;
use crate::Error;

/// Peers per list accepted from one message (BEP 11 asks senders for at most 50).
const PEX_PEERS_MAX: usize = 200;

/// A `ut_pex` message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PexMessage {
    /// Peers that joined, with their `added.f` flag byte (0 when absent).
    pub added: Vec<(SocketAddr, u8)>,
    /// Peers that left.
    pub dropped: Vec<SocketAddr>,
}

fn compact_peers(bytes: &[u8], v6: bool) -> impl Iterator<Item = SocketAddr> + '_ {
    let width = if v6 { 18 } else { 6 };
    bytes
        .chunks_exact(width)
        .take(PEX_PEERS_MAX)
        .map(move |chunk| {
            let (ip, port) = chunk.split_at(width - 2);
            let ip = match <[u8; 16]>::try_from(ip) {
                Ok(v6) => IpAddr::from(v6),
                // Width 6: exactly 4 address bytes.
                Err(_) => IpAddr::from([ip[0], ip[1], ip[2], ip[3]]),
            };
            SocketAddr::new(ip, u16::from_be_bytes([port[0], port[1]]))
        })
}

fn put_compact(out: &mut Vec<u8>, addr: &SocketAddr) {
    match addr.ip() {
        IpAddr::V4(ip) => out.extend_from_slice(&ip.octets()),
        IpAddr::V6(ip) => out.extend_from_slice(&ip.octets()),
    }
    out.extend_from_slice(&addr.port().to_be_bytes());
}

impl PexMessage {
    /// Parses a `ut_pex` payload; keys that are missing count as empty lists.
    pub fn parse(payload: &[u8]) -> Result<PexMessage, Error> {
        let value = bencode::decode_with(payload, EXTENSION_LIMITS)
            .map_err(|_| Error::BadExtension("ut_pex is not bencode"))?;
        let dict = value
            .as_dict()
            .ok_or(Error::BadExtension("ut_pex is not a dictionary"))?;
        let bytes = |key| dict.get_bytes(key).unwrap_or_default();
        let mut added = Vec::new();
        for (key_peers, key_flags, v6) in
            [("added", "added.f", false), ("added6", "added6.f", true)]
        {
            let flags = bytes(key_flags);
            for (i, peer) in compact_peers(bytes(key_peers), v6).enumerate() {
                added.push((peer, flags.get(i).copied().unwrap_or(0)));
            }
        }
        let dropped = compact_peers(bytes("dropped"), false)
            .chain(compact_peers(bytes("dropped6"), true))
            .collect();
        Ok(PexMessage { added, dropped })
    }

    /// The bencoded payload.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut dict = Owned::dict();
        for v6 in [false, true] {
            let suffix = if v6 { "6" } else { "" };
            let (mut peers, mut flags, mut dropped) = (Vec::new(), Vec::new(), Vec::new());
            for (addr, flag) in self.added.iter().filter(|(a, _)| a.is_ipv6() == v6) {
                put_compact(&mut peers, addr);
                flags.push(*flag);
            }
            for addr in self.dropped.iter().filter(|a| a.is_ipv6() == v6) {
                put_compact(&mut dropped, addr);
            }
            dict.insert(&format!("added{suffix}"), peers);
            dict.insert(&format!("added{suffix}.f"), flags);
            dict.insert(&format!("dropped{suffix}"), dropped);
        }
        dict.to_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_both_families() {
        let msg = PexMessage {
            added: vec![
                ("127.0.0.2:6881".parse().unwrap(), 0x10),
                ("[::1]:51413".parse().unwrap(), 0x01),
            ],
            dropped: vec!["127.0.0.3:80".parse().unwrap()],
        };
        assert_eq!(PexMessage::parse(&msg.to_bytes()), Ok(msg));
    }

    #[test]
    fn truncated_compact_entries_are_ignored() {
        let msg = PexMessage::parse(b"d5:added7:\x7f\x00\x00\x01\x1a\xe1\x00e").unwrap();
        assert_eq!(msg.added, vec![("127.0.0.1:6881".parse().unwrap(), 0)]);
    }
}
