//! Arbitrary text as a magnet link: parsing must never panic, and an accepted link must print
//! to a link that parses back to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(magnet) = text.parse::<metainfo::Magnet>() else {
        return;
    };
    let printed = magnet.to_string();
    let again: metainfo::Magnet = printed.parse().expect("own output parses");
    assert_eq!(again, magnet);
});
