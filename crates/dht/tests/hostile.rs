//! Hostile datagrams: malformed bencode, wrong types, huge values, unknown methods, forged
//! transaction ids and floods are answered with a KRPC error or dropped, never a panic.

use std::net::SocketAddr;
use std::time::Duration;

use dht::krpc::{error_code, Body, Message};
use dht::{Command, Config, Dht, Event};
use proptest::prelude::*;
use sansio::{Rng, Timestamp};

fn node() -> Dht {
    Dht::new(Config::default(), Timestamp::ZERO, Rng::from_seed(1))
}

fn attacker() -> SocketAddr {
    "10.9.9.9:4000".parse().unwrap()
}

/// Feeds one datagram and returns the decoded replies.
fn exchange(dht: &mut Dht, now: Timestamp, datagram: &[u8]) -> Vec<Message> {
    dht.handle_input(now, attacker(), datagram);
    let mut out = Vec::new();
    while let Some(t) = dht.poll_transmit() {
        assert_eq!(t.to, attacker());
        out.push(Message::decode(&t.bytes).expect("our own replies decode"));
    }
    out
}

fn error_of(replies: &[Message]) -> Option<i64> {
    match replies {
        [Message {
            body: Body::Error(e),
            ..
        }] => Some(e.code),
        _ => None,
    }
}

#[test]
fn malformed_queries_get_protocol_errors_and_garbage_is_dropped() {
    let mut dht = node();
    let now = Timestamp::ZERO;
    assert!(exchange(&mut dht, now, b"garbage").is_empty());
    assert!(exchange(&mut dht, now, b"i42e").is_empty());
    assert!(exchange(&mut dht, now, &[b'd'; 1400]).is_empty());
    // A query with a 3-byte id: protocol error with the transaction id echoed.
    let replies = exchange(&mut dht, now, b"d1:ad2:id3:abce1:q4:ping1:t2:xy1:y1:qe");
    assert_eq!(error_of(&replies), Some(error_code::PROTOCOL));
    assert_eq!(replies[0].transaction_id, b"xy");
    // Wrong type for the port.
    let bad_port = b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:port4:abcd5:token2:xxe1:q13:announce_peer1:t2:aa1:y1:qe";
    assert_eq!(
        error_of(&exchange(&mut dht, now, bad_port)),
        Some(error_code::PROTOCOL)
    );
}

#[test]
fn unknown_methods_get_204_unless_they_carry_a_target() {
    let mut dht = node();
    let now = Timestamp::ZERO;
    let unknown = b"d1:ad2:id20:abcdefghij0123456789e1:q5:dance1:t2:aa1:y1:qe";
    assert_eq!(
        error_of(&exchange(&mut dht, now, unknown)),
        Some(error_code::METHOD_UNKNOWN)
    );
    let with_target =
        b"d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e1:q4:vote1:t2:aa1:y1:qe";
    let replies = exchange(&mut dht, now, with_target);
    assert!(matches!(
        replies.as_slice(),
        [Message {
            body: Body::Response(_),
            ..
        }]
    ));
}

#[test]
fn announces_and_puts_need_a_valid_token_and_sane_sizes() {
    let mut dht = node();
    let now = Timestamp::ZERO;
    let announce = b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token4:nopee1:q13:announce_peer1:t2:aa1:y1:qe";
    assert_eq!(
        error_of(&exchange(&mut dht, now, announce)),
        Some(error_code::PROTOCOL)
    );
    // Get a real token, then put a value over 1000 bytes.
    let get =
        b"d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e1:q3:get1:t2:aa1:y1:qe";
    let token = match &exchange(&mut dht, now, get)[0].body {
        Body::Response(r) => r.token.clone().unwrap(),
        other => panic!("{other:?}"),
    };
    let mut put = b"d1:ad2:id20:abcdefghij01234567895:token".to_vec();
    put.extend_from_slice(format!("{}:", token.len()).as_bytes());
    put.extend_from_slice(&token);
    put.extend_from_slice(b"1:v1001:");
    put.extend_from_slice(&[b'x'; 1001]);
    put.extend_from_slice(b"e1:q3:put1:t2:aa1:y1:qe");
    assert_eq!(
        error_of(&exchange(&mut dht, now, &put)),
        Some(error_code::VALUE_TOO_BIG)
    );
}

#[test]
fn mistyped_and_huge_fields_get_protocol_errors() {
    let mut dht = node();
    let now = Timestamp::ZERO;
    let cases: [&[u8]; 5] = [
        // `id` is an integer.
        b"d1:ad2:idi42ee1:q4:ping1:t2:aa1:y1:qe",
        // `a` is a list.
        b"d1:ali1ee1:q4:ping1:t2:aa1:y1:qe",
        // A port beyond 65535.
        b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti70000e5:token2:xxe1:q13:announce_peer1:t2:aa1:y1:qe",
        // A 19-byte info-hash.
        b"d1:ad2:id20:abcdefghij01234567899:info_hash19:mnopqrstuvwxyz12345e1:q9:get_peers1:t2:aa1:y1:qe",
        // A BEP 44 put whose seq is a string.
        b"d1:ad2:id20:abcdefghij01234567891:k32:abcdefghijabcdefghijabcdefghij123:seq1:13:sig64:abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij12345:token2:xx1:vi1ee1:q3:put1:t2:aa1:y1:qe",
    ];
    for (i, case) in cases.iter().enumerate() {
        let replies = exchange(&mut dht, now, case);
        assert_eq!(error_of(&replies), Some(error_code::PROTOCOL), "case {i}");
        assert_eq!(replies[0].transaction_id, b"aa", "case {i}");
    }
}

#[test]
fn oversized_or_bottomless_datagrams_are_dropped() {
    let mut dht = node();
    let now = Timestamp::ZERO;
    // A length prefix of 4 GiB (must not allocate it), an integer beyond i64 (not bencode we
    // accept), a datagram over the UDP payload cap, nesting far deeper than any KRPC message,
    // and no transaction id (nothing to answer to).
    let mut too_long = b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:q1:z".to_vec();
    too_long.extend_from_slice(b"2000:");
    too_long.extend_from_slice(&[b'z'; 2000]);
    too_long.push(b'e');
    let deep: Vec<u8> = std::iter::repeat_n(b'l', 1000)
        .chain(std::iter::repeat_n(b'e', 1000))
        .collect();
    let cases: [&[u8]; 6] = [
        b"d1:ad2:id4294967296:abce1:q4:ping1:t2:aa1:y1:qe",
        b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti99999999999999999999999e5:token2:xxe1:q13:announce_peer1:t2:aa1:y1:qe",
        &too_long,
        &deep,
        b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:ti7e1:y1:qe",
        b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:y1:qe",
    ];
    for (i, case) in cases.iter().enumerate() {
        assert!(exchange(&mut dht, now, case).is_empty(), "case {i}");
    }
    assert!(dht.stats().dropped_invalid >= 6);
}

#[test]
fn unsolicited_replies_and_errors_are_ignored() {
    let mut dht = node();
    let now = Timestamp::ZERO;
    // Responses and errors nobody asked for, with plausible transaction ids: no event, no reply,
    // and the sender is not added to the routing table.
    for tid in 0u16..200 {
        let mut reply = b"d1:rd2:id20:abcdefghij0123456789e1:t2:".to_vec();
        reply.extend_from_slice(&tid.to_be_bytes());
        reply.extend_from_slice(b"1:y1:re");
        assert!(exchange(&mut dht, now, &reply).is_empty());
        let mut error = b"d1:eli201e4:oopse1:t2:".to_vec();
        error.extend_from_slice(&tid.to_be_bytes());
        error.extend_from_slice(b"1:y1:ee");
        assert!(exchange(&mut dht, now, &error).is_empty());
    }
    assert!(dht.poll_event().is_none());
    assert_eq!(dht.routing_table().len(), 0);
}

#[test]
fn forged_replies_are_dropped() {
    let mut dht = node();
    let now = Timestamp::ZERO;
    let real_peer: SocketAddr = "10.1.1.1:6881".parse().unwrap();
    let query = dht.command(now, Command::Ping(real_peer));
    let sent = Message::decode(&dht.poll_transmit().unwrap().bytes).unwrap();
    // The right transaction id from the wrong address.
    let mut forged = b"d1:rd2:id20:abcdefghij0123456789e1:t2:".to_vec();
    forged.extend_from_slice(&sent.transaction_id);
    forged.extend_from_slice(b"1:y1:re");
    dht.handle_input(now, attacker(), &forged);
    assert!(dht.poll_event().is_none());
    // A wrong transaction id from the right address.
    dht.handle_input(
        now,
        real_peer,
        b"d1:rd2:id20:abcdefghij0123456789e1:t2:zz1:y1:re",
    );
    assert!(dht.poll_event().is_none());
    // The real reply.
    dht.handle_input(now, real_peer, &forged);
    assert!(matches!(dht.poll_event(), Some(Event::Pong { query: q, .. }) if q == query));
}

#[test]
fn a_flood_from_one_address_gets_few_answers() {
    let mut dht = node();
    let ping = b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe";
    let mut answered = 0;
    for i in 0..10_000u64 {
        // 10,000 pings within one second.
        let now = Timestamp::ZERO + Duration::from_micros(i * 100);
        answered += exchange(&mut dht, now, ping).len();
    }
    assert!(answered <= 100, "answered {answered} of 10000");
    assert!(answered >= 20);
    assert!(dht.stats().dropped_rate_limited >= 9900);
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1600)) {
        let mut dht = node();
        dht.handle_input(Timestamp::ZERO, attacker(), &bytes);
        while dht.poll_transmit().is_some() {}
    }

    #[test]
    fn mutated_valid_messages_never_panic(flip in 0usize..200, byte in any::<u8>()) {
        let mut dht = node();
        let samples: [&[u8]; 3] = [
            b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz123456e1:q9:get_peers1:t2:aa1:y1:qe",
            b"d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e1:q17:sample_infohashes1:t2:aa1:y1:qe",
            b"d1:rd2:id20:abcdefghij01234567895:nodes26:abcdefghij0123456789\x01\x02\x03\x04\x05\x06e1:t2:aa1:y1:re",
        ];
        for sample in samples {
            let mut m = sample.to_vec();
            let i = flip % m.len();
            m[i] = byte;
            dht.handle_input(Timestamp::ZERO, attacker(), &m);
            while dht.poll_transmit().is_some() {}
        }
    }
}
