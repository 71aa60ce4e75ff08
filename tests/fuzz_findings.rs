//! Regression tests for what the fuzz targets (fuzz/, docs/operations.md
//! "Fuzzing and durability") found, each sent over a socket to a server
//! the way the fuzzer's input reached the request front.

mod common;

use common::Harness;
use hickory_proto::op::{Message, ResponseCode};

/// fuzz/dns_server: a query with 66 questions, over UDP without EDNS, was
/// answered FORMERR echoing every question: 601 octets, over the 512 a
/// client without EDNS can take (RFC 1035 §4.2.1).
#[tokio::test]
async fn a_formerr_for_many_questions_fits_in_a_udp_answer() {
    let h = Harness::start().await;
    let mut msg = vec![0x11, 0x00, 0x00, 0x00, 0x00, 66, 0, 0, 0, 0, 0, 0];
    for _ in 0..66 {
        // "mx1._acme.example.org." IN A
        msg.extend_from_slice(b"\x03mx1\x05_acme\x07example\x03org\x00\x00\x01\x00\x01");
    }
    let answer = h.udp(&msg).await.expect("an answer");
    assert!(answer.len() <= 512, "{} octets over UDP", answer.len());
    let m = Message::from_vec(&answer).unwrap();
    assert_eq!(m.metadata.id, 0x1100);
    assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
}

/// fuzz/udp_fast: an OPT record with 1 to 3 octets of data (shorter than
/// an option's header) made the UDP fast path's parser read past it and
/// panic, which ended that socket's loop: one datagram stopped UDP service
/// on a core. It is now the front's (FORMERR), and later queries are
/// answered.
#[tokio::test]
async fn an_opt_shorter_than_an_option_header_is_answered_and_udp_goes_on() {
    let h = Harness::start().await;
    // The fuzzer's input: a query for "." with an OPT of RDLENGTH 1.
    let crash = [
        0x12, 0x34, 0x01, 0x20, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x02,
        0x00, 0x01, 0x00, 0x00, 0x29, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00,
    ];
    for _ in 0..3 {
        let _ = h.udp(&crash).await;
    }
    let m = h
        .query(common::ZONE, hickory_proto::rr::RecordType::SOA)
        .await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(m.answers.len(), 1);
}
