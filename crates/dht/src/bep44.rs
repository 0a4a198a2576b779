//! BEP 44: arbitrary data in the DHT. Immutable items are addressed by the SHA-1 of their
//! bencoded value; mutable items by the SHA-1 of an ed25519 public key and an optional salt, and
//! carry a signature over `salt`, `seq` and `v`.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha1::{Digest, Sha1};

use crate::error::Error;
use crate::node_id::NodeId;

/// Longest bencoded value accepted.
pub const VALUE_BYTES_MAX: usize = 1000;
/// Longest salt accepted.
pub const SALT_BYTES_MAX: usize = 64;

/// The target of an immutable item: SHA-1 of its bencoded value.
pub fn immutable_target(value: &[u8]) -> NodeId {
    NodeId(Sha1::digest(value).into())
}

/// The target of a mutable item: SHA-1 of the public key followed by the salt.
pub fn mutable_target(key: &[u8; 32], salt: &[u8]) -> NodeId {
    let mut hasher = Sha1::new();
    hasher.update(key);
    hasher.update(salt);
    NodeId(hasher.finalize().into())
}

/// The bytes a mutable item's signature covers.
pub fn signature_buffer(salt: &[u8], seq: i64, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + salt.len() + 32);
    if !salt.is_empty() {
        out.extend_from_slice(b"4:salt");
        bencode::encode_bytes(salt, &mut out);
    }
    out.extend_from_slice(b"3:seq");
    bencode::encode_int(seq, &mut out);
    out.extend_from_slice(b"1:v");
    out.extend_from_slice(value);
    out
}

/// Checks that `value` is one bencoded value of acceptable size.
pub fn check_value(value: &[u8]) -> Result<(), Error> {
    if value.len() > VALUE_BYTES_MAX {
        return Err(Error::ValueTooBig(value.len()));
    }
    let limits = bencode::Limits {
        allow_unsorted_keys: true,
        ..bencode::Limits::DEFAULT
    };
    bencode::decode_with(value, limits)
        .map(|_| ())
        .map_err(|_| Error::ValueNotBencode)
}

/// A signed mutable item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MutableItem {
    /// The ed25519 public key.
    pub key: [u8; 32],
    /// The signature over [`signature_buffer`].
    pub signature: [u8; 64],
    /// The sequence number; higher replaces lower.
    pub seq: i64,
    /// The salt (empty for none).
    pub salt: Vec<u8>,
    /// The bencoded value.
    pub value: Vec<u8>,
}

impl MutableItem {
    /// Signs `value` (bencoded) under `seed`'s key with `salt` and `seq`.
    pub fn sign(
        seed: &[u8; 32],
        salt: &[u8],
        seq: i64,
        value: &[u8],
    ) -> Result<MutableItem, Error> {
        check_value(value)?;
        if salt.len() > SALT_BYTES_MAX {
            return Err(Error::SaltTooBig(salt.len()));
        }
        let signing = SigningKey::from_bytes(seed);
        let signature = signing.sign(&signature_buffer(salt, seq, value));
        Ok(MutableItem {
            key: signing.verifying_key().to_bytes(),
            signature: signature.to_bytes(),
            seq,
            salt: salt.to_vec(),
            value: value.to_vec(),
        })
    }

    /// Checks sizes and the signature.
    pub fn verify(&self) -> Result<(), Error> {
        check_value(&self.value)?;
        if self.salt.len() > SALT_BYTES_MAX {
            return Err(Error::SaltTooBig(self.salt.len()));
        }
        let key = VerifyingKey::from_bytes(&self.key).map_err(|_| Error::InvalidSignature)?;
        let signature = Signature::from_bytes(&self.signature);
        key.verify(
            &signature_buffer(&self.salt, self.seq, &self.value),
            &signature,
        )
        .map_err(|_| Error::InvalidSignature)
    }

    /// Where the item lives.
    pub fn target(&self) -> NodeId {
        mutable_target(&self.key, &self.salt)
    }
}

/// The public key belonging to a 32-byte ed25519 seed.
pub fn public_key(seed: &[u8; 32]) -> [u8; 32] {
    SigningKey::from_bytes(seed).verifying_key().to_bytes()
}

/// A stored or retrieved item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    /// An immutable item: the bencoded value.
    Immutable(Vec<u8>),
    /// A mutable item.
    Mutable(MutableItem),
}

impl Item {
    /// Where the item lives.
    pub fn target(&self) -> NodeId {
        match self {
            Item::Immutable(value) => immutable_target(value),
            Item::Mutable(m) => m.target(),
        }
    }

    /// The bencoded value.
    pub fn value(&self) -> &[u8] {
        match self {
            Item::Immutable(value) => value,
            Item::Mutable(m) => &m.value,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex<const N: usize>(s: &str) -> [u8; N] {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    const KEY: &str = "77ff84905a91936367c01360803104f92432fcd904a43511876df5cdf3e7e548";

    #[test]
    fn immutable_vector() {
        assert_eq!(
            immutable_target(b"12:Hello World!").to_hex(),
            "e5f96f6f38320f0f33959cb4d3d656452117aadb"
        );
    }

    #[test]
    fn mutable_vectors_verify() {
        let cases = [
            ("", "4a533d47ec9c7d95b1ad75f576cffc641853b750", "305ac8aeb6c9c151fa120f120ea2cfb923564e11552d06a5d856091e5e853cff1260d3f39e4999684aa92eb73ffd136e6f4f3ecbfda0ce53a1608ecd7ae21f01"),
            ("foobar", "411eba73b6f087ca51a3795d9c8c938d365e32c1", "6834284b6b24c3204eb2fea824d82f88883a3d95e8b4a21b8c0ded553d17d17ddf9a8a7104b1258f30bed3787e6cb896fca78c58f8e03b5f18f14951a87d9a08"),
        ];
        for (salt, target, sig) in cases {
            let mut item = MutableItem {
                key: hex(KEY),
                signature: hex(sig),
                seq: 1,
                salt: salt.as_bytes().to_vec(),
                value: b"12:Hello World!".to_vec(),
            };
            assert_eq!(item.target().to_hex(), target);
            assert_eq!(item.verify(), Ok(()));
            item.seq = 2;
            assert_eq!(item.verify(), Err(Error::InvalidSignature));
        }
    }

    #[test]
    fn bep46_targets() {
        let key = hex("8543d3e6115f0f98c944077a4493dcd543e49c739fd998550a1f614ab36ed63e");
        assert_eq!(
            mutable_target(&key, b"").to_hex(),
            "cc3f9d90b572172053626f9980ce261a850d050b"
        );
        assert_eq!(
            mutable_target(&key, b"n").to_hex(),
            "59ee7c2cb9b4f7eb1986ee2d18fd2fdb8a56554f"
        );
    }

    #[test]
    fn signing_round_trips_and_checks_sizes() {
        let seed = [7u8; 32];
        let item = MutableItem::sign(&seed, b"salt", 5, b"i42e").unwrap();
        assert_eq!(item.key, public_key(&seed));
        assert_eq!(item.verify(), Ok(()));
        let big = format!("1001:{}", "x".repeat(1001));
        assert_eq!(
            MutableItem::sign(&seed, b"", 1, big.as_bytes()),
            Err(Error::ValueTooBig(1006))
        );
        assert_eq!(
            MutableItem::sign(&seed, &[0; 65], 1, b"i1e"),
            Err(Error::SaltTooBig(65))
        );
        assert_eq!(check_value(b"notbencode"), Err(Error::ValueNotBencode));
    }
}
