//! Arbitrary bytes as a saved DHT state file: restoring must never panic, and a restored node
//! saves a state that restores to the same id and routing table.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sansio::{Rng, Timestamp};

fuzz_target!(|data: &[u8]| {
    let now = Timestamp::ZERO;
    let Ok(dht) = dht::Dht::restore(dht::Config::default(), now, Rng::from_seed(1), data) else {
        return;
    };
    let saved = dht.save_state();
    let again = dht::Dht::restore(dht::Config::default(), now, Rng::from_seed(1), &saved)
        .expect("own output restores");
    assert_eq!(again.id(), dht.id());
    assert_eq!(again.save_state(), saved);
});
