//! Arbitrary datagrams into the UDP tracker codec (BEP 15), both directions, and into the
//! tracker core: nothing panics, an accepted request re-encodes to an equal request, and a
//! request without a valid connection id is never answered.
#![no_main]

use std::net::SocketAddr;

use libfuzzer_sys::fuzz_target;
use sansio::{Rng, Timestamp};
use tracker::server::{Config, Tracker};
use tracker::udp::{Request, Response};

fuzz_target!(|data: &[u8]| {
    let _ = Response::decode(data, false);
    let _ = Response::decode(data, true);
    let decoded = Request::decode(data);
    if let Ok(request) = &decoded {
        assert_eq!(Request::decode(&request.encode()).as_ref(), Ok(request));
    }
    let mut core = Tracker::new(Config::default(), Rng::from_seed(1), Timestamp::ZERO);
    let source = SocketAddr::from(([127, 0, 0, 2], 6881));
    let reply = core.handle_udp(Timestamp::ZERO, source, data);
    if !matches!(decoded, Ok(Request::Connect { .. })) {
        // Only a connect can be answered before a connection id was issued (a random forged id
        // matches with probability 2^-64).
        assert!(reply.is_none());
    }
});
