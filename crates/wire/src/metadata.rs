//! BEP 9 `ut_metadata`: fetching the info dictionary from peers in 16 KiB pieces.

use bencode::Owned;

use crate::extended::EXTENSION_LIMITS;
use crate::Error;

/// Size of every metadata piece but the last.
pub const METADATA_PIECE_LEN: usize = 16 * 1024;

/// A `ut_metadata` message. `Data` carries the piece's raw bytes after the dictionary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetadataMessage<'a> {
    /// `msg_type` 0: asks for a piece.
    Request {
        /// Metadata piece index.
        piece: u32,
    },
    /// `msg_type` 1: a piece.
    Data {
        /// Metadata piece index.
        piece: u32,
        /// Size of the whole info dictionary.
        total_size: u64,
        /// The piece's bytes.
        data: &'a [u8],
    },
    /// `msg_type` 2: the sender will not send this piece.
    Reject {
        /// Metadata piece index.
        piece: u32,
    },
}

impl<'a> MetadataMessage<'a> {
    /// Parses a `ut_metadata` payload (after the extension id byte).
    pub fn parse(payload: &'a [u8]) -> Result<MetadataMessage<'a>, Error> {
        let (value, rest) = bencode::decode_prefix(payload, EXTENSION_LIMITS)
            .map_err(|_| Error::BadExtension("ut_metadata is not bencode"))?;
        let dict = value
            .as_dict()
            .ok_or(Error::BadExtension("ut_metadata is not a dictionary"))?;
        let piece = dict
            .get_int("piece")
            .and_then(|p| u32::try_from(p).ok())
            .ok_or(Error::BadExtension("ut_metadata without a valid piece"))?;
        match dict.get_int("msg_type") {
            Some(0) => Ok(MetadataMessage::Request { piece }),
            Some(1) => {
                let total_size = dict
                    .get_int("total_size")
                    .and_then(|s| u64::try_from(s).ok())
                    .ok_or(Error::BadExtension("ut_metadata data without total_size"))?;
                if rest.len() > METADATA_PIECE_LEN {
                    return Err(Error::BadExtension("ut_metadata piece larger than 16 KiB"));
                }
                Ok(MetadataMessage::Data {
                    piece,
                    total_size,
                    data: rest,
                })
            }
            Some(2) => Ok(MetadataMessage::Reject { piece }),
            _ => Err(Error::BadExtension("ut_metadata with an unknown msg_type")),
        }
    }

    /// The payload bytes (dictionary, then raw data for `Data`).
    pub fn to_bytes(&self) -> Vec<u8> {
        let (msg_type, piece) = match self {
            MetadataMessage::Request { piece } => (0, piece),
            MetadataMessage::Data { piece, .. } => (1, piece),
            MetadataMessage::Reject { piece } => (2, piece),
        };
        let mut dict = Owned::dict()
            .with("msg_type", msg_type as i64)
            .with("piece", i64::from(*piece));
        if let MetadataMessage::Data { total_size, .. } = self {
            dict.insert("total_size", *total_size);
        }
        let mut out = dict.to_bytes();
        if let MetadataMessage::Data { data, .. } = self {
            out.extend_from_slice(data);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_keeps_trailing_bytes() {
        let msg =
            MetadataMessage::parse(b"d8:msg_typei1e5:piecei0e10:total_sizei5eehello").unwrap();
        assert_eq!(
            msg,
            MetadataMessage::Data {
                piece: 0,
                total_size: 5,
                data: b"hello"
            }
        );
        assert_eq!(MetadataMessage::parse(&msg.to_bytes()), Ok(msg));
    }

    #[test]
    fn request_and_reject() {
        let req = MetadataMessage::parse(b"d8:msg_typei0e5:piecei3ee").unwrap();
        assert_eq!(req, MetadataMessage::Request { piece: 3 });
        assert!(MetadataMessage::parse(b"d8:msg_typei7e5:piecei3ee").is_err());
        assert!(MetadataMessage::parse(b"d5:piecei-1ee").is_err());
    }
}
