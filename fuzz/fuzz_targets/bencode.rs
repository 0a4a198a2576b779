//! Arbitrary bytes into the bencode decoder: it must never panic, and anything it accepts must
//! re-encode to exactly the input (canonical form) with spans that cover it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = bencode::decode(data) {
        assert_eq!(value.raw(), data);
        assert_eq!(value.to_owned_value().to_bytes(), data);
    }
    let lenient = bencode::Limits {
        allow_unsorted_keys: true,
        ..bencode::Limits::DEFAULT
    };
    if let Ok((value, rest)) = bencode::decode_prefix(data, lenient) {
        assert_eq!(value.raw().len() + rest.len(), data.len());
    }
});
