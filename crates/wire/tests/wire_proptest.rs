//! Property tests: every message round-trips through the encoder and the streaming decoder, and
//! arbitrary bytes never panic the decoder or the extension parsers.

use std::borrow::Cow;

use proptest::prelude::*;
use wire::{
    BlockRequest, Decoder, ExtendedHandshake, HashRequest, Limits, Message, MetadataMessage,
    PexMessage,
};

fn block() -> impl Strategy<Value = BlockRequest> {
    (0u32..100, any::<u32>(), 1u32..=16384).prop_map(|(index, begin, length)| BlockRequest {
        index,
        begin,
        length,
    })
}

fn hash_request() -> impl Strategy<Value = HashRequest> {
    (
        any::<[u8; 32]>(),
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(
            |(pieces_root, base_layer, index, length, proof_layers)| HashRequest {
                pieces_root,
                base_layer,
                index,
                length,
                proof_layers,
            },
        )
}

fn message() -> impl Strategy<Value = Message<'static>> {
    let bytes = proptest::collection::vec(any::<u8>(), 0..64);
    prop_oneof![
        Just(Message::KeepAlive),
        Just(Message::Choke),
        Just(Message::Unchoke),
        Just(Message::Interested),
        Just(Message::NotInterested),
        Just(Message::HaveAll),
        Just(Message::HaveNone),
        (0u32..100).prop_map(Message::Have),
        (0u32..100).prop_map(Message::Suggest),
        (0u32..100).prop_map(Message::AllowedFast),
        any::<u16>().prop_map(Message::Port),
        block().prop_map(Message::Request),
        block().prop_map(Message::Cancel),
        block().prop_map(Message::Reject),
        (
            0u32..100,
            any::<u32>(),
            proptest::collection::vec(any::<u8>(), 1..200)
        )
            .prop_map(|(index, begin, data)| Message::Piece {
                index,
                begin,
                data: Cow::Owned(data)
            }),
        (any::<u8>(), bytes.clone()).prop_map(|(id, payload)| Message::Extended {
            id,
            payload: Cow::Owned(payload)
        }),
        hash_request().prop_map(Message::HashRequest),
        hash_request().prop_map(Message::HashReject),
        (hash_request(), bytes).prop_map(|(request, hashes)| Message::Hashes {
            request,
            hashes: Cow::Owned(hashes)
        }),
    ]
}

proptest! {
    #[test]
    fn frames_are_the_encoding_split_in_two(m in message()) {
        let whole = m.to_bytes();
        let (mut head, body) = m.into_frames();
        head.extend(body.unwrap_or_default());
        prop_assert_eq!(head, whole);
    }

    #[test]
    fn messages_round_trip_through_the_stream(
        messages in proptest::collection::vec(message(), 1..20),
        split in 1usize..50,
    ) {
        let mut stream = Vec::new();
        for m in &messages {
            m.encode_into(&mut stream);
        }
        let mut decoder = Decoder::new(Limits::DEFAULT);
        decoder.set_piece_count(100);
        let mut decoded = Vec::new();
        for chunk in stream.chunks(split) {
            decoder.feed(chunk);
            while let Some(m) = decoder.next_message().unwrap() {
                decoded.push(m.into_owned());
            }
        }
        prop_assert_eq!(decoded, messages);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512), pieces in 0u32..64) {
        let mut decoder = Decoder::new(Limits::DEFAULT);
        decoder.set_piece_count(pieces);
        decoder.feed(&bytes);
        let _ = decoder.next_handshake();
        for _ in 0..bytes.len() + 1 {
            match decoder.next_message() {
                Ok(Some(_)) => {}
                _ => break,
            }
        }
        let _ = ExtendedHandshake::parse(&bytes);
        let _ = MetadataMessage::parse(&bytes);
        let _ = PexMessage::parse(&bytes);
    }

    #[test]
    fn extended_handshake_round_trips(
        names in proptest::collection::btree_map("[a-z_]{1,12}", any::<u8>(), 0..6),
        port in proptest::option::of(any::<u16>()),
        size in proptest::option::of(0u64..1 << 40),
    ) {
        let hs = ExtendedHandshake {
            extensions: names,
            listen_port: port,
            metadata_size: size,
            ..ExtendedHandshake::default()
        };
        prop_assert_eq!(ExtendedHandshake::parse(&hs.to_bytes()), Ok(hs));
    }

    #[test]
    fn pex_message_round_trips(
        added4 in proptest::collection::vec((any::<([u8; 4], u16)>(), any::<u8>()), 0..60),
        added6 in proptest::collection::vec((any::<([u8; 16], u16)>(), any::<u8>()), 0..60),
        dropped4 in proptest::collection::vec(any::<([u8; 4], u16)>(), 0..60),
        dropped6 in proptest::collection::vec(any::<([u8; 16], u16)>(), 0..60),
    ) {
        use std::net::{IpAddr, SocketAddr};
        let sock = |ip: IpAddr, port| SocketAddr::new(ip, port);
        // Parsing yields IPv4 entries before IPv6 ones, as they travel in separate keys.
        let added = added4
            .iter()
            .map(|&((ip, port), f)| (sock(ip.into(), port), f))
            .chain(added6.iter().map(|&((ip, port), f)| (sock(ip.into(), port), f)))
            .collect();
        let dropped = dropped4
            .iter()
            .map(|&(ip, port)| sock(ip.into(), port))
            .chain(dropped6.iter().map(|&(ip, port)| sock(ip.into(), port)))
            .collect();
        let message = PexMessage { added, dropped };
        prop_assert_eq!(PexMessage::parse(&message.to_bytes()), Ok(message));
    }
}
