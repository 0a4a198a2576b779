//! Points in the 160-bit Kademlia key space (BEP 5): node ids, info-hashes and BEP 44 targets,
//! and the XOR metric between them.

use std::fmt;

use sansio::{Rng, RngExt};

/// A 160-bit identifier: a node id, an info-hash or a BEP 44 item target. They share one key
/// space, so one type serves all three.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct NodeId(pub [u8; 20]);

/// The XOR distance between two ids; ordered like the big-endian number it is.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Distance(pub [u8; 20]);

impl NodeId {
    /// Number of bytes in an id.
    pub const LEN: usize = 20;

    /// An id from a 20-byte slice, `None` for any other length.
    pub fn from_slice(bytes: &[u8]) -> Option<NodeId> {
        bytes.try_into().ok().map(NodeId)
    }

    /// A uniformly random id.
    pub fn random(rng: &mut Rng) -> NodeId {
        let mut id = [0u8; 20];
        rng.fill(&mut id[..]);
        NodeId(id)
    }

    /// The XOR distance to `other`.
    pub fn distance(&self, other: &NodeId) -> Distance {
        let mut d = [0u8; 20];
        for (i, byte) in d.iter_mut().enumerate() {
            *byte = self.0[i] ^ other.0[i];
        }
        Distance(d)
    }

    /// How many leading bits this id shares with `other` (160 when equal).
    pub fn common_prefix_len(&self, other: &NodeId) -> usize {
        self.distance(other).leading_zeros()
    }

    /// A random id that shares exactly `prefix_len` leading bits with `self` (for bucket refresh).
    pub fn random_with_prefix(&self, prefix_len: usize, rng: &mut Rng) -> NodeId {
        let mut id = NodeId::random(rng);
        if prefix_len >= 160 {
            return *self;
        }
        for bit in 0..=prefix_len {
            let (byte, mask) = (bit / 8, 0x80u8 >> (bit % 8));
            let own = self.0[byte] & mask;
            // Copy the shared bits, flip the first differing one.
            let want = if bit == prefix_len { own ^ mask } else { own };
            id.0[byte] = (id.0[byte] & !mask) | want;
        }
        id
    }

    /// Lower-case hexadecimal.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses 40 hexadecimal digits.
    pub fn from_hex(text: &str) -> Option<NodeId> {
        if text.len() != 40 || !text.is_ascii() {
            return None;
        }
        let mut id = [0u8; 20];
        for (i, byte) in id.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(NodeId(id))
    }
}

impl Distance {
    /// Number of leading zero bits (160 for distance zero).
    pub fn leading_zeros(&self) -> usize {
        for (i, byte) in self.0.iter().enumerate() {
            if *byte != 0 {
                return i * 8 + byte.leading_zeros() as usize;
            }
        }
        160
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({})", self.to_hex())
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_orders_by_xor() {
        let a = NodeId([0; 20]);
        let mut b = [0; 20];
        b[19] = 1;
        let mut c = [0; 20];
        c[0] = 0x80;
        assert!(a.distance(&NodeId(b)) < a.distance(&NodeId(c)));
        assert_eq!(a.common_prefix_len(&NodeId(c)), 0);
        assert_eq!(a.common_prefix_len(&NodeId(b)), 159);
        assert_eq!(a.common_prefix_len(&a), 160);
    }

    #[test]
    fn random_with_prefix_shares_exactly_that_many_bits() {
        let mut rng = Rng::from_seed(3);
        let own = NodeId::random(&mut rng);
        for prefix in [0, 1, 7, 8, 9, 100, 159] {
            let id = own.random_with_prefix(prefix, &mut rng);
            assert_eq!(own.common_prefix_len(&id), prefix);
        }
    }

    #[test]
    fn hex_round_trips() {
        let id = NodeId::random(&mut Rng::from_seed(1));
        assert_eq!(NodeId::from_hex(&id.to_hex()), Some(id));
        assert_eq!(NodeId::from_hex("zz"), None);
    }
}
