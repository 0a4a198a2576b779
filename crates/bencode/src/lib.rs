//! Canonical bencode (BEP 3): strict, zero-copy decoding and canonical encoding.
//!
//! Bencode has four kinds of value: integers (`i42e`), byte strings (`4:spam`), lists
//! (`l...e`) and dictionaries (`d...e`, keys are byte strings). A canonical encoding has exactly
//! one spelling for every value: no leading zeros, no `-0`, dictionary keys sorted as raw bytes
//! and unique. BitTorrent identifies content by the SHA-1/SHA-256 of the `info` dictionary *as
//! encoded*, so this crate hands back, for every decoded value, the exact bytes it came from
//! ([`Value::raw`]): the info-hash is the hash of those bytes, never of a re-encoding.
//!
//! Decoding is bounded ([`Limits`]): nesting depth and the number of values are capped, and
//! lengths are checked against the input before anything is allocated, so hostile input costs at
//! most a constant factor of its own size.
//!
//! ```
//! let value = bencode::decode(b"d3:cow3:moo4:spaml1:a1:bee").unwrap();
//! let dict = value.as_dict().unwrap();
//! assert_eq!(dict.get_str("cow"), Some("moo"));
//! assert_eq!(dict.get(b"spam").unwrap().raw(), b"l1:a1:be");
//! ```

mod decode;
mod encode;
mod value;

pub use decode::{decode, decode_prefix, decode_with, Error, ErrorKind, Limits};
pub use encode::{encode_bytes, encode_int, encode_length, Owned};
pub use value::{Dict, Kind, Value};
