//! The BEP 3 handshake and its reserved bits (BEP 5, 6, 10, 52).

use crate::Error;

/// The protocol string that opens every handshake.
pub const PROTOCOL: &[u8; 19] = b"BitTorrent protocol";
/// Length of a handshake on the wire.
pub const HANDSHAKE_LEN: usize = 68;

/// The eight reserved bytes of the handshake, where peers advertise extensions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Reserved(pub [u8; 8]);

impl Reserved {
    /// BEP 10 extension protocol: byte 5, bit 0x10.
    pub const EXTENSION_PROTOCOL: Reserved = Reserved([0, 0, 0, 0, 0, 0x10, 0, 0]);
    /// BEP 5 DHT (port message): byte 7, bit 0x01.
    pub const DHT: Reserved = Reserved([0, 0, 0, 0, 0, 0, 0, 0x01]);
    /// BEP 6 fast extension: byte 7, bit 0x04.
    pub const FAST: Reserved = Reserved([0, 0, 0, 0, 0, 0, 0, 0x04]);
    /// BEP 52 upgrade to v2: byte 7, bit 0x10.
    pub const V2_UPGRADE: Reserved = Reserved([0, 0, 0, 0, 0, 0, 0, 0x10]);

    /// Both sets of bits.
    pub fn with(self, other: Reserved) -> Reserved {
        let mut bytes = self.0;
        for (b, o) in bytes.iter_mut().zip(other.0) {
            *b |= o;
        }
        Reserved(bytes)
    }

    /// Whether every bit of `other` is set here.
    pub fn supports(self, other: Reserved) -> bool {
        self.0.iter().zip(other.0).all(|(b, o)| b & o == o)
    }
}

/// A peer's handshake: protocol, reserved bits, info-hash (v1, or truncated v2) and peer id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handshake {
    /// Extension bits.
    pub reserved: Reserved,
    /// The torrent's info-hash (BEP 52: the v2 hash truncated to 20 bytes for v2-only swarms).
    pub info_hash: [u8; 20],
    /// The sender's peer id.
    pub peer_id: [u8; 20],
}

impl Handshake {
    /// The handshake's 68 bytes.
    pub fn to_bytes(&self) -> [u8; HANDSHAKE_LEN] {
        let mut out = [0u8; HANDSHAKE_LEN];
        out[0] = 19;
        out[1..20].copy_from_slice(PROTOCOL);
        out[20..28].copy_from_slice(&self.reserved.0);
        out[28..48].copy_from_slice(&self.info_hash);
        out[48..68].copy_from_slice(&self.peer_id);
        out
    }

    /// Parses the first [`HANDSHAKE_LEN`] bytes of `bytes`; `Ok(None)` if fewer have arrived.
    pub fn parse(bytes: &[u8]) -> Result<Option<Handshake>, Error> {
        // Check the prefix as soon as it arrives: a garbage peer is dropped early.
        let prefix_len = bytes.len().min(20);
        let mut expected = [0u8; 20];
        expected[0] = 19;
        expected[1..].copy_from_slice(PROTOCOL);
        if bytes[..prefix_len] != expected[..prefix_len] {
            return Err(Error::BadHandshake);
        }
        let Some(bytes) = bytes.get(..HANDSHAKE_LEN) else {
            return Ok(None);
        };
        let mut reserved = [0u8; 8];
        reserved.copy_from_slice(&bytes[20..28]);
        let mut info_hash = [0u8; 20];
        info_hash.copy_from_slice(&bytes[28..48]);
        let mut peer_id = [0u8; 20];
        peer_id.copy_from_slice(&bytes[48..68]);
        Ok(Some(Handshake {
            reserved: Reserved(reserved),
            info_hash,
            peer_id,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bits() {
        let reserved = Reserved::FAST
            .with(Reserved::EXTENSION_PROTOCOL)
            .with(Reserved::DHT);
        let hs = Handshake {
            reserved,
            info_hash: [7; 20],
            peer_id: [9; 20],
        };
        let bytes = hs.to_bytes();
        assert_eq!(bytes[25], 0x10);
        assert_eq!(bytes[27], 0x05);
        assert_eq!(Handshake::parse(&bytes), Ok(Some(hs)));
        assert_eq!(Handshake::parse(&bytes[..40]), Ok(None));
        assert!(reserved.supports(Reserved::FAST));
        assert!(!reserved.supports(Reserved::V2_UPGRADE));
    }

    #[test]
    fn garbage_is_rejected_early() {
        assert_eq!(
            Handshake::parse(b"GET / HTTP/1.1"),
            Err(Error::BadHandshake)
        );
        assert_eq!(Handshake::parse(&[19, b'B']), Ok(None));
    }
}
