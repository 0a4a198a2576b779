//! Arbitrary datagrams into the UDP tracker codec (BEP 15), both directions, and into the
//! tracker core: nothing panics, an accepted request re-encodes to an equal request, and an
//! announce or scrape is answered only with a connection id derived from that tracker's secret.
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
    // Two trackers with different secrets: a fixed seed's ids can be learned by the fuzzer, but
    // no announce or scrape may carry an id that both accept (that would be a forgeable id).
    let source = SocketAddr::from(([127, 0, 0, 2], 6881));
    let answered = [1, 2].map(|seed| {
        let mut core = Tracker::new(Config::default(), Rng::from_seed(seed), Timestamp::ZERO);
        core.handle_udp(Timestamp::ZERO, source, data).is_some()
    });
    if !matches!(decoded, Ok(Request::Connect { .. })) {
        assert!(!(answered[0] && answered[1]));
    }
});
