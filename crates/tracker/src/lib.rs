//! Tracker protocol logic, client and server, sans-IO.
//!
//! - [`http`]: HTTP announce and scrape, both directions: query strings with percent-encoded
//!   binary fields (BEP 3), bencoded responses with compact IPv4 peers (BEP 23), `peers6`
//!   (BEP 7), failure reasons, warnings and intervals, and scrape (BEP 48).
//! - [`udp`]: the UDP tracker protocol (BEP 15) packet codec for connect, announce, scrape and
//!   error in both directions, and stateless connection ids bound to the requester's address.
//! - [`server`]: the tracker's state machine: swarms keyed by info-hash, peer expiry, seeder,
//!   leecher and download counts, numwant capping, whitelist, private mode with per-user
//!   passkeys and per-address rate limits. It takes parsed requests and a
//!   [`sansio::Timestamp`] and never touches a socket or a clock.
//! - [`index`]: the searchable torrent index's records and its safe keyword query builder.
//!
//! spore's own tracker client (in the swarm) uses the client halves of [`http`] and [`udp`].

pub mod http;
pub mod index;
pub mod server;
pub mod udp;

use std::fmt;

/// A 20-byte BitTorrent v1 info-hash (or a v2 info-hash truncated to 20 bytes, as BEP 52 says
/// trackers see it).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InfoHash(pub [u8; 20]);

/// A peer's 20-byte id.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerId(pub [u8; 20]);

/// Lower-case hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Exactly `N` bytes from `2 * N` hex digits (either case).
pub fn from_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let bytes = text.as_bytes();
    if bytes.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (slot, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let pair = std::str::from_utf8(pair).ok()?;
        *slot = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(out)
}

macro_rules! hex20 {
    ($ty:ident) => {
        impl $ty {
            /// Lower-case hex of the 20 bytes.
            pub fn to_hex(&self) -> String {
                to_hex(&self.0)
            }

            /// Parses 40 hex digits (either case).
            pub fn from_hex(text: &str) -> Option<$ty> {
                from_hex(text).map($ty)
            }

            /// The value from exactly 20 bytes, `None` for any other length.
            pub fn from_slice(bytes: &[u8]) -> Option<$ty> {
                bytes.try_into().ok().map($ty)
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($ty), self.to_hex())
            }
        }
    };
}

hex20!(InfoHash);
hex20!(PeerId);

/// What an announcing peer tells the tracker about its state change (BEP 3, BEP 15).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Event {
    /// A regular re-announce.
    #[default]
    None,
    /// The peer has completed the download.
    Completed,
    /// The peer started the torrent.
    Started,
    /// The peer stopped the torrent and leaves the swarm.
    Stopped,
    /// The peer is a partial seed that no longer downloads (BEP 21); counted like `None`.
    Paused,
}

/// One swarm's counts as scrape reports them (BEP 48, BEP 15).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScrapeStats {
    /// Peers with the whole torrent.
    pub complete: u32,
    /// Completed downloads the tracker has seen (`event=completed`).
    pub downloaded: u32,
    /// Peers still downloading.
    pub incomplete: u32,
}

/// Why a request or a response could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A required parameter or field is absent.
    #[error("missing {0}")]
    Missing(&'static str),
    /// A parameter or field has the wrong form or size.
    #[error("invalid {0}")]
    Invalid(&'static str),
    /// The input is larger than the named limit allows.
    #[error("{0} too large")]
    TooLarge(&'static str),
    /// The packet is shorter than its action requires, or of an unknown action.
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
    /// A bencoded response could not be decoded.
    #[error("bad bencode: {0}")]
    Bencode(String),
    /// The tracker answered with a failure reason.
    #[error("tracker failure: {0}")]
    Failure(String),
}
