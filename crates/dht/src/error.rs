//! The dht crate's error type.

use crate::krpc::error_code;

/// What can go wrong in this crate's API (network input never yields these: it yields KRPC
/// error replies or is dropped).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A BEP 44 value whose encoding is longer than 1000 bytes.
    #[error("the bencoded value is {0} bytes, more than the 1000 BEP 44 allows")]
    ValueTooBig(usize),
    /// A BEP 44 salt longer than 64 bytes.
    #[error("the salt is {0} bytes, more than the 64 BEP 44 allows")]
    SaltTooBig(usize),
    /// A value that is not one complete bencoded value.
    #[error("the value is not valid bencode")]
    ValueNotBencode,
    /// A signature that does not verify.
    #[error("invalid signature")]
    InvalidSignature,
    /// A compare-and-swap that found another sequence number.
    #[error("CAS mismatch")]
    CasMismatch,
    /// A sequence number lower than the stored one.
    #[error("sequence number lower than the stored one")]
    SeqTooLow,
    /// Saved state that cannot be read.
    #[error("saved DHT state is corrupt: {0}")]
    CorruptState(&'static str),
}

impl Error {
    /// The KRPC error code a remote put gets for this error.
    pub fn code(&self) -> i64 {
        match self {
            Error::ValueTooBig(_) => error_code::VALUE_TOO_BIG,
            Error::SaltTooBig(_) => error_code::SALT_TOO_BIG,
            Error::InvalidSignature => error_code::INVALID_SIGNATURE,
            Error::CasMismatch => error_code::CAS_MISMATCH,
            Error::SeqTooLow => error_code::SEQ_TOO_LOW,
            Error::ValueNotBencode | Error::CorruptState(_) => error_code::PROTOCOL,
        }
    }
}
