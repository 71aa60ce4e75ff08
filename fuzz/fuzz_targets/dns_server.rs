//! The DNS request front end to end: bytes as a client sends them, through
//! `server::Handler` (TSIG verification against the machines' keys,
//! `request::classify`, then the query, transfer, UPDATE or NOTIFY path;
//! UPDATEs reach the ACL gate, `update::process` and a real commit to
//! SQLite), to the bytes hickory would send back.
//!
//! Input: one flag byte, then the message. Flag bits: 0 TCP (else UDP),
//! 1 sign with mx1's key, 2 sign with www1's key (so the fuzzer reaches
//! what only a signed request reaches: it cannot forge a MAC), 3 come from
//! 192.0.2.7 (outside the transfer networks) instead of 127.0.0.1.
//!
//! Checked, beyond "no panic": every request hickory can parse gets at
//! least one answer; every answer parses, and parses back to the same
//! message after encoding it again; it has the request's ID and opcode and
//! QR set; a UDP answer fits the size the request allows; and the answer to
//! a request we signed verifies under the same key (RFC 8945 §5.3).
#![no_main]

mod common;

use std::net::SocketAddr;

use hickory_proto::op::{Message, MessageType};
use hickory_proto::rr::RecordType;
use hickory_server::net::xfer::Protocol;
use libfuzzer_sys::fuzz_target;
use zonewarden::tsig;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, msg)) = data.split_first() else {
        return;
    };
    let front = common::Front::get();
    // A fresh time per request: the same signed bytes twice would be a replay.
    front.clock.advance(1);
    let now = front.now();
    let protocol = if flags & 1 != 0 {
        Protocol::Tcp
    } else {
        Protocol::Udp
    };
    let src: SocketAddr = if flags & 8 != 0 {
        "192.0.2.7:5353".parse().unwrap()
    } else {
        "127.0.0.1:5353".parse().unwrap()
    };
    let signer = match flags & 6 {
        0 => None,
        2 | 6 => Some(common::key("mx1")),
        _ => Some(common::key("www1")),
    };
    let (raw, mac) = match &signer {
        None => (msg.to_vec(), None),
        Some(key) => {
            if msg.len() < 12 {
                return;
            }
            let (rr, mac) = tsig::sign_request(msg, key, now, 300);
            match tsig::append_tsig(msg, &rr) {
                Ok(raw) => (raw, Some(mac)),
                Err(_) => return,
            }
        }
    };
    let Some(answers) = front.handle(&raw, src, protocol) else {
        return;
    };
    let request = Message::from_vec(&raw).ok();
    // Our signature makes a valid signed request only of a well-formed
    // message that holds no TSIG RR of its own.
    let well_signed = mac.is_some()
        && Message::from_vec(msg).is_ok_and(|m| {
            m.signature.is_none()
                && m.to_vec().is_ok_and(|b| b == msg)
                && m.answers
                    .iter()
                    .chain(&m.authorities)
                    .chain(&m.additionals)
                    .all(|r| !matches!(r.record_type(), RecordType::TSIG | RecordType::SIG))
        });
    assert!(!answers.is_empty(), "a parsed request got no answer");
    for (i, bytes) in answers.iter().enumerate() {
        let answer = Message::from_vec(bytes).expect("our answer parses");
        let again = Message::from_vec(&answer.to_vec().expect("our answer encodes again"))
            .expect("the re-encoded answer parses");
        assert_eq!(answer, again, "an answer does not survive a round trip");
        assert_eq!(answer.metadata.message_type, MessageType::Response);
        if let Some(req) = &request {
            assert_eq!(answer.metadata.id, req.metadata.id);
            assert_eq!(answer.metadata.op_code, req.metadata.op_code);
            if protocol == Protocol::Udp {
                let limit = match &req.edns {
                    Some(e) => e.max_payload().clamp(512, 1232) as usize,
                    None => 512,
                };
                assert!(
                    bytes.len() <= limit,
                    "a UDP answer of {} octets over the limit {limit}: {answer:?}",
                    bytes.len(),
                );
            }
        }
        // The first message of the answer to a request we signed starts the
        // MAC chain: it must verify under the same key.
        if let (0, true, Some(key), Some(mac)) = (i, well_signed, &signer, &mac)
            && let Err(e) = tsig::verify_response(bytes, key, mac, now, 300)
        {
            let rcode = answer.metadata.response_code;
            panic!(
                "the answer to a signed request does not verify: {e:?} (rcode {rcode}): {answer:?}"
            );
        }
    }
});
