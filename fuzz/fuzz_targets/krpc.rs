//! Arbitrary datagrams into the KRPC decoder (BEP 5/32/43/44/51) and into a whole DHT core: the
//! decoder never panics, refuses as "not bencode" exactly what the bencode tree decoder refuses,
//! every message it accepts re-encodes to one that decodes the same, and the core answers or
//! drops any datagram without panicking.
#![no_main]

use std::net::SocketAddr;

use dht::krpc::Message;
use libfuzzer_sys::fuzz_target;
use sansio::{Rng, Timestamp};

/// The limits KRPC decoding applies: the in-place decoder must judge a datagram as valid
/// bencode exactly when the tree decoder does under them.
const TREE_LIMITS: bencode::Limits = bencode::Limits {
    depth_max: 16,
    values_max: 1024,
    allow_unsorted_keys: true,
};

fuzz_target!(|data: &[u8]| {
    let decoded = Message::decode(data);
    if data.len() <= dht::krpc::DATAGRAM_BYTES_MAX {
        let tree_accepts = bencode::decode_with(data, TREE_LIMITS).is_ok();
        let refused_as_bencode = matches!(&decoded, Err(e) if e.reason == "not bencode");
        assert_eq!(tree_accepts, !refused_as_bencode);
    }
    if let Ok(message) = decoded {
        let again = Message::decode(&message.encode()).expect("re-encoded message decodes");
        assert_eq!(again, message);
    }
    let now = Timestamp::from_millis(1_000);
    let mut core = dht::Dht::new(dht::Config::default(), now, Rng::from_seed(1));
    let from = SocketAddr::from(([127, 0, 0, 2], 6881));
    core.handle_input(now, from, data);
    while core.poll_transmit().is_some() {}
    while core.poll_event().is_some() {}
});
