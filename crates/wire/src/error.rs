//! Errors of the wire codecs.

/// Why bytes from a peer are not an acceptable message. Every variant means "drop this peer".
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The handshake does not start with the BitTorrent protocol string.
    #[error("not a BitTorrent handshake")]
    BadHandshake,
    /// A length prefix larger than the limit.
    #[error("message of {len} bytes exceeds the limit of {max}")]
    MessageTooLong {
        /// Announced length.
        len: u32,
        /// Accepted maximum.
        max: u32,
    },
    /// A message id we do not know.
    #[error("unknown message id {0}")]
    UnknownMessage(u8),
    /// A message whose payload has the wrong size for its id.
    #[error("message id {id} with a payload of {len} bytes")]
    BadLength {
        /// Message id.
        id: u8,
        /// Payload length.
        len: usize,
    },
    /// A bitfield whose length or spare bits do not match the piece count.
    #[error("bitfield of {len} bytes does not fit {pieces} pieces")]
    BadBitfield {
        /// Bitfield length in bytes.
        len: usize,
        /// Pieces in the torrent.
        pieces: u32,
    },
    /// A piece index beyond the torrent.
    #[error("piece index {index} out of range ({pieces} pieces)")]
    PieceOutOfRange {
        /// The index sent.
        index: u32,
        /// Pieces in the torrent.
        pieces: u32,
    },
    /// A block request larger than the limit.
    #[error("block of {len} bytes exceeds the limit of {max}")]
    BlockTooLong {
        /// Requested length.
        len: u32,
        /// Accepted maximum.
        max: u32,
    },
    /// An extension payload that is not valid bencode or lacks required keys.
    #[error("malformed extension payload: {0}")]
    BadExtension(&'static str),
}
