//! Arbitrary bytes into the BEP 11 `ut_pex` parser: it must never panic, and what it accepts
//! must come back unchanged from its own encoding.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = wire::PexMessage::parse(data) {
        assert_eq!(wire::PexMessage::parse(&message.to_bytes()), Ok(message));
    }
});
