//! BEP 42: node ids tied to the node's external IP address, so an attacker cannot pick ids next
//! to a target at will.
//!
//! The first 21 bits of a conforming id are the top bits of CRC32C(masked IP with 3 random bits
//! `r` in the top of the first byte); the last byte of the id is the random byte whose low 3 bits
//! are `r`. Local and private addresses are exempt.

use std::net::IpAddr;

use sansio::{Rng, RngExt};

use crate::node_id::NodeId;

const V4_MASK: [u8; 4] = [0x03, 0x0f, 0x3f, 0xff];
const V6_MASK: [u8; 8] = [0x01, 0x03, 0x07, 0x0f, 0x1f, 0x3f, 0x7f, 0xff];

/// How strictly this node applies BEP 42 to others.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Policy {
    /// Ignore BEP 42.
    Off,
    /// Evict non-conforming nodes first when a bucket is full.
    #[default]
    Prefer,
    /// Never add non-conforming nodes to the routing table or count them in a lookup's result.
    Require,
}

/// CRC-32C (Castagnoli), bitwise: ids are computed rarely, a table is not worth its size.
pub fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for byte in bytes {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn prefix_crc(ip: IpAddr, rand: u8) -> u32 {
    let r = rand & 0x07;
    match ip {
        IpAddr::V4(v4) => {
            let mut bytes = v4.octets();
            for (b, m) in bytes.iter_mut().zip(V4_MASK) {
                *b &= m;
            }
            bytes[0] |= r << 5;
            crc32c(&bytes)
        }
        IpAddr::V6(v6) => {
            let mut bytes: [u8; 8] = v6.octets()[..8].try_into().unwrap_or([0; 8]);
            for (b, m) in bytes.iter_mut().zip(V6_MASK) {
                *b &= m;
            }
            bytes[0] |= r << 5;
            crc32c(&bytes)
        }
    }
}

/// A conforming node id for `ip` with the given random byte; the other bytes come from `rng`.
pub fn node_id_for_ip(ip: IpAddr, rand: u8, rng: &mut Rng) -> NodeId {
    let crc = prefix_crc(ip, rand);
    let mut id = NodeId::random(rng);
    id.0[0] = (crc >> 24) as u8;
    id.0[1] = (crc >> 16) as u8;
    id.0[2] = ((crc >> 8) as u8 & 0xf8) | (rng.gen::<u8>() & 0x07);
    id.0[19] = rand;
    id
}

/// Whether `ip` is exempt from the check (loopback, private and link-local ranges).
pub fn is_exempt(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00,
    }
}

/// Whether `id` conforms to BEP 42 for `ip` (exempt addresses always do).
pub fn is_valid(id: &NodeId, ip: IpAddr) -> bool {
    if is_exempt(ip) {
        return true;
    }
    let crc = prefix_crc(ip, id.0[19]);
    id.0[0] == (crc >> 24) as u8
        && id.0[1] == (crc >> 16) as u8
        && (id.0[2] & 0xf8) == ((crc >> 8) as u8 & 0xf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTORS: [(&str, u8, &str); 5] = [
        (
            "124.31.75.21",
            1,
            "5fbfbff10c5d6a4ec8a88e4c6ab4c28b95eee401",
        ),
        (
            "21.75.31.124",
            86,
            "5a3ce9c14e7a08645677bbd1cfe7d8f956d53256",
        ),
        (
            "65.23.51.170",
            22,
            "a5d43220bc8f112a3d426c84764f8c2a1150e616",
        ),
        (
            "84.124.73.14",
            65,
            "1b0321dd1bb1fe518101ceef99462b947a01ff41",
        ),
        (
            "43.213.53.83",
            90,
            "e56f6cbf5b7c4be0237986d5243b87aa6d51305a",
        ),
    ];

    #[test]
    fn crc32c_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
    }

    #[test]
    fn bep42_vectors_are_valid_and_reproduced() {
        let mut rng = Rng::from_seed(42);
        for (ip, rand, expected) in VECTORS {
            let ip: IpAddr = ip.parse().unwrap();
            let expected = NodeId::from_hex(expected).unwrap();
            assert!(is_valid(&expected, ip), "{ip}");
            let made = node_id_for_ip(ip, rand, &mut rng);
            assert_eq!(made.0[..2], expected.0[..2], "{ip}");
            assert_eq!(made.0[2] & 0xf8, expected.0[2] & 0xf8, "{ip}");
            assert_eq!(made.0[19], rand);
            assert!(is_valid(&made, ip));
        }
    }

    #[test]
    fn wrong_ids_are_rejected_but_local_addresses_exempt() {
        let ip: IpAddr = "124.31.75.21".parse().unwrap();
        let mut id = NodeId::from_hex(VECTORS[0].2).unwrap();
        id.0[0] ^= 1;
        assert!(!is_valid(&id, ip));
        assert!(is_valid(&id, "127.0.0.1".parse().unwrap()));
        assert!(is_valid(&id, "192.168.1.1".parse().unwrap()));
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        let made = node_id_for_ip(v6, 9, &mut Rng::from_seed(1));
        assert!(is_valid(&made, v6));
    }
}
