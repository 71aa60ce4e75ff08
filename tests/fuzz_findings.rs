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
