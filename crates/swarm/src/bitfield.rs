//! A fixed-size set of piece indices, in the BEP 3 bitfield layout (high bit first).

/// Which pieces someone has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bitfield {
    bytes: Vec<u8>,
    len: u32,
    ones: u32,
}

impl Bitfield {
    /// `len` pieces, none set.
    pub fn new(len: u32) -> Bitfield {
        Bitfield {
            bytes: vec![0; len.div_ceil(8) as usize],
            len,
            ones: 0,
        }
    }

    /// `len` pieces, all set.
    pub fn full(len: u32) -> Bitfield {
        let mut bits = Bitfield::new(len);
        for i in 0..len {
            bits.set(i);
        }
        bits
    }

    /// From wire bytes; `None` if the size or spare bits do not fit `len` pieces.
    pub fn from_bytes(bytes: &[u8], len: u32) -> Option<Bitfield> {
        if bytes.len() != len.div_ceil(8) as usize {
            return None;
        }
        let mut bits = Bitfield {
            bytes: bytes.to_vec(),
            len,
            ones: 0,
        };
        if (len..bits.bytes.len() as u32 * 8).any(|i| bits.raw_get(i)) {
            return None;
        }
        bits.ones = bytes.iter().map(|b| b.count_ones()).sum();
        Some(bits)
    }

    fn raw_get(&self, index: u32) -> bool {
        self.bytes[(index / 8) as usize] & (0x80 >> (index % 8)) != 0
    }

    /// Whether piece `index` is set (false beyond the end).
    pub fn get(&self, index: u32) -> bool {
        index < self.len && self.raw_get(index)
    }

    /// Sets piece `index`; returns whether it was newly set. Out of range is ignored.
    pub fn set(&mut self, index: u32) -> bool {
        if index >= self.len || self.raw_get(index) {
            return false;
        }
        self.bytes[(index / 8) as usize] |= 0x80 >> (index % 8);
        self.ones += 1;
        true
    }

    /// Number of pieces.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// Whether there are no pieces at all.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of pieces set.
    pub fn count(&self) -> u32 {
        self.ones
    }

    /// Whether every piece is set.
    pub fn is_full(&self) -> bool {
        self.ones == self.len
    }

    /// The wire bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Indices set, ascending.
    pub fn iter_set(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.len).filter(|&i| self.raw_get(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_layout_and_counts() {
        let mut bits = Bitfield::new(10);
        assert!(bits.set(0));
        assert!(bits.set(9));
        assert!(!bits.set(9));
        assert!(!bits.set(10));
        assert_eq!(bits.as_bytes(), [0x80, 0x40]);
        assert_eq!(bits.count(), 2);
        assert_eq!(Bitfield::from_bytes(bits.as_bytes(), 10), Some(bits));
        assert_eq!(Bitfield::from_bytes(&[0, 0x20], 10), None);
        assert!(Bitfield::full(10).is_full());
    }
}
