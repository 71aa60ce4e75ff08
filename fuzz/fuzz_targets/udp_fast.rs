//! The UDP fast path's parser (`server::prepared::parse`), which decides
//! from raw bytes whether a datagram is a plain query answered from a
//! prepared answer. Differential: whatever it accepts, hickory's parser
//! (what the request front uses) must read as the same plain query: one
//! question of class IN with that name (case aside) and type, no answer or
//! authority records, an EDNS(0) OPT exactly when it says so, with the
//! same payload size, DO bit and COOKIE data, and opcode QUERY.
#![no_main]

use hickory_proto::op::{Message, MessageType, OpCode};
use hickory_proto::rr::DNSClass;
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use libfuzzer_sys::fuzz_target;
use zonewarden::server::prepared::{Key, parse};
use zonewarden::zone::canonical_wire;

fuzz_target!(|data: &[u8]| {
    let mut key = Key::default();
    let Some(plain) = parse(data, &mut key) else {
        return;
    };
    let m = Message::from_vec(data).expect("a plain query parses");
    assert_eq!(m.metadata.message_type, MessageType::Query);
    assert_eq!(m.metadata.op_code, OpCode::Query);
    assert!(!m.metadata.truncation);
    assert_eq!(m.queries.len(), 1);
    assert!(m.answers.is_empty() && m.authorities.is_empty());
    let q = &m.queries[0];
    assert_eq!(q.query_class(), DNSClass::IN);
    assert_eq!(u16::from(q.query_type()), plain.qtype());
    let wire = canonical_wire(q.name());
    assert_eq!(
        key.name(),
        &wire[..],
        "the key is the lowercased question name"
    );
    match (plain.edns(), &m.edns) {
        (None, None) => assert!(m.additionals.is_empty()),
        (Some((size, dnssec_ok)), Some(e)) => {
            assert_eq!(e.max_payload(), size.max(512));
            assert_eq!(e.flags().dnssec_ok, dnssec_ok);
            assert_eq!(e.version(), 0);
            let cookie = match e.option(EdnsCode::Cookie) {
                Some(EdnsOption::Unknown(_, d)) => Some(d.clone()),
                _ => None,
            };
            assert_eq!(
                plain.cookie().map(|(at, len)| data[at..at + len].to_vec()),
                cookie
            );
        }
        (ours, theirs) => panic!("EDNS: {ours:?} vs {theirs:?}"),
    }
});
