//! Torrents v1, v2 and hybrid, magnet links, and torrent creation: spore's content identity.
//!
//! BEPs implemented here:
//! - **BEP 3**: the metainfo file, the info dictionary and its SHA-1 info-hash, v1 pieces.
//! - **BEP 9**: magnet links (`xt=urn:btih:`, hex or base32) and [`Info::from_bytes`] for the
//!   metadata a peer sends.
//! - **BEP 12**: `announce-list` tracker tiers.
//! - **BEP 19**: `url-list` web seeds.
//! - **BEP 27**: the private flag.
//! - **BEP 47**: pad files and file attributes (`attr`: `p`, `x`, `h`, `l`; `symlink path`).
//! - **BEP 52**: v2 and hybrid torrents: `file tree`, per-file SHA-256 merkle trees over 16 KiB
//!   blocks, `piece layers`, the SHA-256 info-hash and its truncated 20-byte form, `btmh` magnets,
//!   and the merkle proofs of hash requests ([`merkle_proof`]).
//!
//! A torrent's identity is the hash of its info dictionary's exact bytes: [`Torrent::from_bytes`]
//! keeps them ([`Info::info_bytes`]) and [`Torrent::to_bytes`] writes them back verbatim. Every
//! parser here refuses malformed or hostile input with an [`Error`] and never panics; file names
//! from a torrent are untrusted (see [`path`]).
//!
//! ```
//! let link = "magnet:?xt=urn:btih:b1b2732aec868f1cdd6a2f7365c0aa3f3459bdb8&dn=multi";
//! let magnet: metainfo::Magnet = link.parse().unwrap();
//! assert_eq!(magnet.display_name.as_deref(), Some("multi"));
//! assert_eq!(magnet.to_string(), link);
//! ```

mod create;
mod error;
mod file_tree;
mod hashing;
mod info;
mod info_hash;
mod magnet;
pub mod merkle;
pub mod merkle_proof;
pub mod path;
mod torrent;

pub use create::{auto_piece_length, create_torrent, CreateOptions, FileOrder};
pub use error::Error;
pub use file_tree::{FileAttributes, FileEntry};
pub use info::{Info, MetaVersion, PIECE_LENGTH_MAX};
pub use info_hash::{InfoHashV1, InfoHashV2, InfoHashes};
pub use magnet::{Magnet, MAGNET_BYTES_MAX};
pub use merkle::Sha256Hash;
pub use path::safe_relative_path;
pub use torrent::Torrent;
