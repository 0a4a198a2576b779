//! Arbitrary datagrams into the KRPC decoder (BEP 5/32/43/44/51) and into a whole DHT core: the
//! decoder never panics, every message it accepts re-encodes to one that decodes the same, and
//! the core answers or drops any datagram without panicking.
#![no_main]

use std::net::SocketAddr;

use dht::krpc::Message;
use libfuzzer_sys::fuzz_target;
use sansio::{Rng, Timestamp};

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = Message::decode(data) {
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
