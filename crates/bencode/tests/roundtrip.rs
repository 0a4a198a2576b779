//! Property tests: every owned value round-trips through canonical bytes, re-encoding decoded
//! input reproduces it byte for byte, and arbitrary input never panics.

use bencode::{decode, Owned};
use proptest::prelude::*;

fn owned() -> impl Strategy<Value = Owned> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(Owned::Int),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Owned::Bytes),
    ];
    leaf.prop_recursive(6, 128, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Owned::List),
            proptest::collection::btree_map(
                proptest::collection::vec(any::<u8>(), 0..12),
                inner,
                0..8
            )
            .prop_map(Owned::Dict),
        ]
    })
}

proptest! {
    #[test]
    fn owned_round_trips(value in owned()) {
        let bytes = value.to_bytes();
        let decoded = decode(&bytes).expect("canonical encoding decodes");
        prop_assert_eq!(decoded.raw(), &bytes[..]);
        prop_assert_eq!(decoded.to_owned_value(), value);
    }

    #[test]
    fn decoded_input_re_encodes_to_itself(input in proptest::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(value) = decode(&input) {
            prop_assert_eq!(value.to_owned_value().to_bytes(), input);
        }
    }

    #[test]
    fn mutated_encodings_never_panic(value in owned(), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4)) {
        let mut bytes = value.to_bytes();
        for (at, byte) in flips {
            let len = bytes.len();
            bytes[at % len] = byte;
        }
        if let Ok(v) = decode(&bytes) {
            prop_assert_eq!(v.to_owned_value().to_bytes(), bytes);
        }
    }
}
