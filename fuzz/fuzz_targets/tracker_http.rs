//! Arbitrary bytes into the HTTP tracker parsers (BEP 3/7/23/48), both directions, and into the
//! tracker core's announce and scrape handlers: nothing panics, and an announce the server
//! accepts survives a re-encode unchanged.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use libfuzzer_sys::fuzz_target;
use sansio::{Rng, Timestamp};
use tracker::http::{AnnounceRequest, AnnounceResponse, ScrapeRequest, ScrapeResponse};
use tracker::server::{Config, Tracker};

fuzz_target!(|data: &[u8]| {
    let _ = AnnounceResponse::decode(data);
    let _ = ScrapeResponse::decode(data);
    let query = String::from_utf8_lossy(data);
    if let Ok(request) = AnnounceRequest::from_query(&query) {
        assert_eq!(
            AnnounceRequest::from_query(&request.to_query()),
            Ok(request)
        );
    }
    if let Ok(request) = ScrapeRequest::from_query(&query) {
        assert_eq!(ScrapeRequest::from_query(&request.to_query()), Ok(request));
    }
    let mut core = Tracker::new(Config::default(), Rng::from_seed(1), Timestamp::ZERO);
    let source = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let body = core.handle_http_announce(Timestamp::ZERO, source, None, &query);
    assert!(AnnounceResponse::decode(&body).is_ok() || !body.is_empty());
    let _ = core.handle_http_scrape(Timestamp::ZERO, source, Some("key"), &query);
});
