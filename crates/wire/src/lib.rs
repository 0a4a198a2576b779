//! Peer wire protocol codecs, sans-IO and zero-copy.
//!
//! - BEP 3: the 68-byte [`Handshake`] and the core [`Message`]s (choke .. cancel, port).
//! - BEP 6 (fast extension): have all / have none, reject request, allowed fast, suggest, and the
//!   canonical allowed-fast set generator ([`allowed_fast_set`]).
//! - BEP 10 (extension protocol): [`Message::Extended`] and the [`ExtendedHandshake`].
//! - BEP 9 (`ut_metadata`): [`MetadataMessage`].
//! - BEP 11 (`ut_pex`): [`PexMessage`], IPv4 and IPv6.
//! - BEP 52: hash request / hashes / hash reject ([`HashRequest`]) and the v2 upgrade bit.
//!
//! [`Decoder`] takes bytes as they arrive and yields messages that borrow from its buffer; every
//! length is checked against named limits before anything is allocated, so a hostile peer costs
//! at most [`Limits::message_bytes_max`] of memory before it is dropped.

mod allowed_fast;
mod decoder;
mod error;
mod extended;
mod handshake;
mod message;
mod metadata;
mod pex;

pub use allowed_fast::allowed_fast_set;
pub use decoder::{Decoder, Limits};
pub use error::Error;
pub use extended::ExtendedHandshake;
pub use handshake::{Handshake, Reserved, HANDSHAKE_LEN, PROTOCOL};
pub use message::{BlockRequest, HashRequest, Message, MessageId};
pub use metadata::{MetadataMessage, METADATA_PIECE_LEN};
pub use pex::PexMessage;

/// The standard block size requested from peers (16 KiB).
pub const BLOCK_LEN: u32 = 16 * 1024;
