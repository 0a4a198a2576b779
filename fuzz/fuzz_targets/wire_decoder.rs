//! Arbitrary bytes into the peer wire decoder (handshake, messages, extension payloads): it must
//! never panic, and every message it accepts must re-encode to the bytes it was read from.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (pieces, stream) = match data.split_first() {
        Some((&p, rest)) => (u32::from(p), rest),
        None => return,
    };
    let mut decoder = wire::Decoder::new(wire::Limits::DEFAULT);
    decoder.set_piece_count(pieces);
    decoder.feed(stream);
    let _ = decoder.next_handshake();
    while let Ok(Some(message)) = decoder.next_message() {
        let bytes = message.to_bytes();
        assert_eq!(
            wire::Message::parse(&bytes[4..]).ok(),
            Some(message.clone())
        );
        if let wire::Message::Extended { payload, .. } = &message {
            let _ = wire::ExtendedHandshake::parse(payload);
            let _ = wire::MetadataMessage::parse(payload);
            let _ = wire::PexMessage::parse(payload);
        }
    }
});
