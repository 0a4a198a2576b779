//! One torrent's swarm logic, sans-IO (BEP 3, with BEP 6 fast, BEP 9 metadata, BEP 10
//! extensions, BEP 11 peer exchange, off for BEP 27 private torrents, and BEP 52 hash requests).
//!
//! [`Swarm`] is fed peer connections, decoded peer messages, disk completions and timeouts, and
//! answers with [`Action`]s (messages to send, blocks to read, write and verify, peers to drop)
//! and [`Event`]s. It holds the [`PiecePicker`], the [`Choker`] and each peer's request pipeline.
//! [`MetadataFetch`] fetches the info dictionary of a magnet link (BEP 9) before a swarm exists,
//! and [`PieceLayerFetch`] then fetches the v2 piece layers it lacks with BEP 52 hash requests;
//! the [`Swarm`] answers such requests from the torrent's piece layers.
//!
//! Rule for drivers: after every `handle_*` call, drain [`Swarm::poll_action`] and
//! [`Swarm::poll_event`] until they return `None`, and call [`Swarm::handle_timeout`] at
//! [`Swarm::poll_timeout`].

mod bitfield;
pub mod choker;
mod metadata_fetch;
mod peer;
mod piece_layer_fetch;
pub mod piece_picker;
mod rate;
mod swarm;

pub use bitfield::Bitfield;
pub use choker::Choker;
pub use metadata_fetch::{MetadataFetch, METADATA_BYTES_MAX};
pub use piece_layer_fetch::{PieceLayerFetch, HASH_REQUESTS_PER_PEER_MAX, HASH_REQUEST_TIMEOUT};
pub use piece_picker::{Geometry, PickMode, PiecePicker};
pub use rate::RateMeter;
pub use swarm::{
    Action, BlockDigest, Config, DropReason, Event, PeerInfo, Progress, Swarm,
    PEX_ACCEPTED_PER_MESSAGE_MAX, PEX_FLAG_REACHABLE, PEX_FLAG_SEED, PEX_SENT_PER_LIST_MAX,
    PIECES_IN_PROGRESS_MIN, UT_METADATA_ID, UT_PEX_ID,
};

/// The driver's handle for one peer connection (unique for the life of a core).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerKey(pub u64);

/// Errors of the swarm core's constructors.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Zero piece length or length, or more than 2^32 pieces.
    #[error("torrent geometry is invalid (zero length or too many pieces)")]
    BadGeometry,
    /// The resume bitfield does not match the piece count.
    #[error("bitfield does not match the piece count")]
    BitfieldMismatch,
}
