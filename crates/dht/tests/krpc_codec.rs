//! The KRPC codec (BEP 5, 32, 42, 43, 44, 51): the encoder writes canonical bencode straight
//! into a buffer, so these tests hold it to the spec's example bytes and, for arbitrary
//! messages, to the decoder (round trip) and to the strict canonical bencode decoder.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use dht::krpc::{
    Body, ErrorReply, Message, Method, MutableFields, PutRequest, Query, Response, Want,
};
use dht::{NodeId, NodeInfo};
use proptest::prelude::*;

/// The examples of BEP 5, byte for byte: decoding then encoding gives the same bytes back.
#[test]
fn bep5_examples_encode_byte_exact() {
    let examples: [&[u8]; 8] = [
        b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe",
        b"d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re",
        b"d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e1:q9:find_node1:t2:aa1:y1:qe",
        b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz123456e1:q9:get_peers1:t2:aa1:y1:qe",
        b"d1:rd2:id20:abcdefghij01234567895:token8:aoeusnth6:valuesl6:axje.u6:idhtnmee1:t2:aa1:y1:re",
        b"d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe",
        b"d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee",
        // With spore's own additions: BEP 32 want, BEP 42 ip, BEP 43 ro, a version.
        b"d1:ad2:id20:abcdefghij01234567894:wantl2:n42:n6ee2:ip6:\x01\x02\x03\x04\x1a\xe11:q4:ping2:roi1e1:t2:aa1:v4:SP\x00\x011:y1:qe",
    ];
    for example in examples {
        let message = Message::decode(example).expect("example decodes");
        assert_eq!(
            message.encode(),
            example,
            "{}",
            String::from_utf8_lossy(example)
        );
    }
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..=max)
}

fn node_id() -> impl Strategy<Value = NodeId> {
    any::<[u8; 20]>().prop_map(NodeId)
}

fn addr_v4() -> impl Strategy<Value = SocketAddr> {
    (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::from((ip, port)))
}

fn addr_v6() -> impl Strategy<Value = SocketAddr> {
    (any::<[u8; 16]>(), any::<u16>())
        .prop_map(|(ip, port)| SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip)), port))
}

fn addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![addr_v4(), addr_v6()]
}

/// A canonical bencoded value, as `put` and `get` carry in `v`.
fn bencoded() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        any::<i64>().prop_map(|i| format!("i{i}e").into_bytes()),
        bytes(40).prop_map(|b| {
            let mut out = Vec::new();
            bencode::encode_bytes(&b, &mut out);
            out
        }),
        Just(b"d1:ai1e1:bl3:xyzee".to_vec()),
    ]
}

fn signature() -> impl Strategy<Value = [u8; 64]> {
    (any::<[u8; 32]>(), any::<[u8; 32]>()).prop_map(|(a, b)| {
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&a);
        sig[32..].copy_from_slice(&b);
        sig
    })
}

fn method() -> impl Strategy<Value = Method> {
    let mutable = (
        any::<[u8; 32]>(),
        signature(),
        any::<i64>(),
        bytes(64),
        any::<Option<i64>>(),
    )
        .prop_map(|(key, signature, seq, salt, cas)| MutableFields {
            key,
            signature,
            seq,
            salt,
            cas,
        });
    let known: [&[u8]; 7] = [
        b"ping",
        b"find_node",
        b"get_peers",
        b"announce_peer",
        b"get",
        b"put",
        b"sample_infohashes",
    ];
    prop_oneof![
        Just(Method::Ping),
        node_id().prop_map(|target| Method::FindNode { target }),
        node_id().prop_map(|info_hash| Method::GetPeers { info_hash }),
        (node_id(), any::<u16>(), any::<bool>(), bytes(64)).prop_map(
            |(info_hash, port, implied_port, token)| Method::AnnouncePeer {
                info_hash,
                port,
                implied_port,
                token,
            }
        ),
        (node_id(), any::<Option<i64>>()).prop_map(|(target, seq)| Method::Get { target, seq }),
        (bytes(64), bencoded(), proptest::option::of(mutable)).prop_map(
            |(token, value, mutable)| Method::Put(PutRequest {
                token,
                value,
                mutable,
            })
        ),
        node_id().prop_map(|target| Method::SampleInfohashes { target }),
        (
            proptest::collection::vec(any::<u8>(), 1..=64),
            proptest::option::of(node_id())
        )
            .prop_filter("a method spore knows", move |(name, _)| !known
                .contains(&name.as_slice()))
            .prop_map(|(name, target)| Method::Unknown { name, target }),
    ]
}

fn nodes(addr: impl Strategy<Value = SocketAddr>) -> impl Strategy<Value = Vec<NodeInfo>> {
    proptest::collection::vec(
        (node_id(), addr).prop_map(|(id, addr)| NodeInfo { id, addr }),
        0..=8,
    )
}

fn response() -> impl Strategy<Value = Response> {
    (
        (node_id(), nodes(addr_v4()), nodes(addr_v6())),
        proptest::collection::vec(addr(), 0..=8),
        proptest::option::of(bytes(64)),
        proptest::option::of(bencoded()),
        proptest::option::of(any::<[u8; 32]>()),
        proptest::option::of(signature()),
        any::<Option<i64>>(),
        proptest::option::of(proptest::collection::vec(node_id(), 0..=8)),
        (any::<Option<i64>>(), any::<Option<i64>>()),
    )
        .prop_map(
            |((id, nodes, nodes6), values, token, value, key, signature, seq, samples, extra)| {
                Response {
                    id,
                    nodes,
                    nodes6,
                    values,
                    token,
                    value,
                    key,
                    signature,
                    seq,
                    samples,
                    interval: extra.0,
                    num: extra.1,
                }
            },
        )
}

fn message() -> impl Strategy<Value = Message> {
    let query = (node_id(), method(), any::<(bool, bool)>()).prop_map(|(id, method, want)| {
        Body::Query(Query {
            id,
            method,
            want: Want {
                v4: want.0,
                v6: want.1,
            },
        })
    });
    let error = (any::<i64>(), "\\PC{0,60}")
        .prop_map(|(code, message)| Body::Error(ErrorReply { code, message }));
    let body = prop_oneof![query, response().prop_map(Body::Response), error];
    (
        bytes(16),
        proptest::option::of(bytes(16)),
        proptest::option::of(addr()),
        any::<bool>(),
        body,
    )
        .prop_map(
            |(transaction_id, version, requester_ip, read_only, body)| Message {
                transaction_id,
                version,
                requester_ip,
                // `ro` means something in queries only; the decoder ignores it elsewhere.
                read_only: read_only && matches!(body, Body::Query(_)),
                body,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn messages_round_trip_through_canonical_bencode(message in message()) {
        let encoded = message.encode();
        let mut appended = b"prefix".to_vec();
        message.encode_into(&mut appended);
        prop_assert_eq!(&appended[6..], &encoded[..]);
        // Canonical: the strict decoder (sorted, unique keys) accepts it, and re-encoding
        // the decoded tree gives the same bytes.
        let tree = bencode::decode(&encoded).expect("canonical bencode");
        prop_assert_eq!(tree.to_owned_value().to_bytes(), encoded.clone());
        prop_assert_eq!(Message::decode(&encoded).expect("decodes"), message);
    }
}

/// The limits KRPC decoding applies (as in `dht::krpc`): the in-place decoder must accept
/// exactly the datagrams the tree decoder accepts under them.
const TREE_LIMITS: bencode::Limits = bencode::Limits {
    depth_max: 16,
    values_max: 1024,
    allow_unsorted_keys: true,
};

/// Bencode-like documents: mostly valid, with KRPC's keys in any order, sometimes repeated,
/// sometimes with non-canonical integers or wrong lengths, nested up to 20 deep.
fn document() -> impl Strategy<Value = Vec<u8>> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(|i| format!("i{i}e").into_bytes()),
        proptest::sample::select(vec![
            &b"i-0e"[..],
            b"i01e",
            b"i-e",
            b"ie",
            b"i-9223372036854775808e",
            b"i9223372036854775808e",
            b"i18446744073709551616e",
            b"03:abc",
            b"0:",
            b"99999999999999999999:x",
        ])
        .prop_map(<[u8]>::to_vec),
        bytes(24).prop_map(|b| {
            let mut out = Vec::new();
            bencode::encode_bytes(&b, &mut out);
            out
        }),
        Just(b"5:abc".to_vec()),
        Just(b"2:n4".to_vec()),
        Just(b"20:abcdefghij0123456789".to_vec()),
    ];
    let keys = prop_oneof![
        Just("a"),
        Just("r"),
        Just("t"),
        Just("y"),
        Just("q"),
        Just("v"),
        Just("e"),
        Just("id"),
        Just("want"),
        Just("nodes"),
        Just("zz"),
    ];
    leaf.prop_recursive(20, 200, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(|items| {
                let mut out = b"l".to_vec();
                items.iter().for_each(|i| out.extend_from_slice(i));
                out.push(b'e');
                out
            }),
            proptest::collection::vec((keys.clone(), inner), 0..6).prop_map(|entries| {
                let mut out = b"d".to_vec();
                for (key, value) in entries {
                    bencode::encode_bytes(key.as_bytes(), &mut out);
                    out.extend_from_slice(&value);
                }
                out.push(b'e');
                out
            }),
        ]
    })
}

/// What the tree decoder says of a datagram: not bencode, not a dictionary, or its `t`.
fn tree_verdict(datagram: &[u8]) -> Result<Option<Vec<u8>>, &'static str> {
    let value = bencode::decode_with(datagram, TREE_LIMITS).map_err(|_| "not bencode")?;
    let dict = value.as_dict().ok_or("not a dictionary")?;
    Ok(dict.get_bytes("t").map(<[u8]>::to_vec))
}

fn agrees_with_tree_decoder(datagram: &[u8]) -> Result<(), TestCaseError> {
    let decoded = Message::decode(datagram);
    match (tree_verdict(datagram), decoded) {
        (Err(reason), Err(err)) => prop_assert_eq!(reason, err.reason),
        (Err(reason), Ok(m)) => prop_assert!(false, "accepted ({reason}): {m:?}"),
        (Ok(_), Err(err)) => prop_assert!(
            !["not bencode", "not a dictionary"].contains(&err.reason),
            "refused valid bencode: {}",
            err.reason
        ),
        (Ok(t), Ok(m)) => prop_assert_eq!(t, Some(m.transaction_id)),
    }
    Ok(())
}

#[test]
fn nesting_and_key_order_are_judged_like_the_tree_decoder() {
    let nested = |depth: usize| {
        let mut out = b"d1:t2:aa1:y1:r1:rd2:id20:abcdefghij01234567891:x".to_vec();
        out.extend(std::iter::repeat_n(b'l', depth));
        out.extend(std::iter::repeat_n(b'e', depth));
        out.extend_from_slice(b"ee");
        out
    };
    for depth in 12..18 {
        agrees_with_tree_decoder(&nested(depth)).unwrap();
    }
    assert!(Message::decode(&nested(14)).is_ok());
    assert!(Message::decode(&nested(15)).is_err());
    // Unsorted keys are accepted (some clients send them), repeated ones never.
    let unsorted = b"d1:y1:r1:t2:aa1:rd2:id20:abcdefghij0123456789ee";
    assert_eq!(Message::decode(unsorted).unwrap().transaction_id, b"aa");
    for repeated in [
        &b"d1:t2:aa1:y1:r1:rd2:id20:abcdefghij01234567892:id1:xee"[..],
        b"d1:y1:r1:t2:aa1:rd2:id20:abcdefghij0123456789e1:t2:bbe",
    ] {
        agrees_with_tree_decoder(repeated).unwrap();
        assert!(Message::decode(repeated).is_err());
    }
    // Many keys, out of order, with the repeat after the first sixteen.
    let mut many = b"d".to_vec();
    for i in (0..40).rev() {
        bencode::encode_bytes(format!("k{i:02}").as_bytes(), &mut many);
        many.extend_from_slice(b"i1e");
    }
    let valid = [&many[..], b"1:t2:aa1:y1:r1:rd2:id20:abcdefghij0123456789ee"].concat();
    assert!(Message::decode(&valid).is_ok());
    let repeat = [
        &many[..],
        b"3:k05i1e1:t2:aa1:y1:r1:rd2:id20:abcdefghij0123456789ee",
    ]
    .concat();
    agrees_with_tree_decoder(&repeat).unwrap();
    assert!(Message::decode(&repeat).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn documents_are_accepted_exactly_when_the_tree_decoder_accepts_them(doc in document()) {
        agrees_with_tree_decoder(&doc)?;
    }

    #[test]
    fn mutated_messages_are_accepted_exactly_when_the_tree_decoder_accepts_them(
        message in message(),
        at in any::<usize>(),
        byte in any::<u8>(),
        cut in any::<bool>(),
    ) {
        let mut bytes = message.encode();
        let at = at % bytes.len();
        if cut {
            bytes.truncate(at);
        } else {
            bytes[at] = byte;
        }
        agrees_with_tree_decoder(&bytes)?;
    }
}
