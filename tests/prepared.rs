//! The UDP fast path (issue 12): plain queries over UDP are answered from
//! prepared answers, which must be the very bytes the request front sends
//! for the same query (over TCP, where every query goes through it), with
//! the query's ID, flags and question case, and must follow every change.

mod common;

use common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use zonewarden::metrics::{UDP_BUILT, UDP_FRONT, UDP_PREPARED};

/// A plain query in wire form: ID, flags octets, name as given (case
/// kept), type, and an OPT (payload, DO) if asked.
fn raw(
    id: u16,
    flags: [u8; 2],
    name: &str,
    qtype: RecordType,
    edns: Option<(u16, bool)>,
) -> Vec<u8> {
    let mut p = id.to_be_bytes().to_vec();
    p.extend_from_slice(&flags);
    p.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, u8::from(edns.is_some())]);
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        p.push(label.len() as u8);
        p.extend_from_slice(label.as_bytes());
    }
    p.push(0);
    p.extend_from_slice(&u16::from(qtype).to_be_bytes());
    p.extend_from_slice(&[0, 1]);
    if let Some((size, dnssec_ok)) = edns {
        let s = size.to_be_bytes();
        p.extend_from_slice(&[
            0,
            0,
            41,
            s[0],
            s[1],
            0,
            0,
            if dnssec_ok { 0x80 } else { 0 },
            0,
            0,
            0,
        ]);
    }
    p
}

fn udp_count(h: &Harness, path: usize) -> u64 {
    h.server().metrics.udp_requests.get(&[path])
}

async fn add_records(h: &Harness) {
    let tlsa = "3 1 1 0c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6";
    let updates = vec![
        add(
            &zname("_acme-challenge.mx1"),
            60,
            RecordType::TXT,
            "token-1",
        ),
        add(&zname("_25._tcp.mx1"), 300, RecordType::TLSA, tlsa),
    ];
    assert_eq!(
        h.update_rcode("mx1", update_msg(ZONE, vec![], updates))
            .await,
        ResponseCode::NoError
    );
}

#[tokio::test]
async fn udp_answers_are_the_bytes_the_request_front_sends() {
    let h = Harness::start().await;
    add_records(&h).await;
    let questions = [
        (ZONE, RecordType::SOA),
        (ZONE, RecordType::NS),
        (ZONE, RecordType::DNSKEY),
        ("_acme-challenge.mx1._acme.example.org.", RecordType::TXT),
        ("_25._tcp.mx1._acme.example.org.", RecordType::TLSA),
        // NODATA, an empty non-terminal, NXDOMAIN, and one below NXDOMAIN.
        ("_acme-challenge.mx1._acme.example.org.", RecordType::A),
        ("_tcp.mx1._acme.example.org.", RecordType::TXT),
        ("nothing._acme.example.org.", RecordType::TXT),
        ("a.b.nothing._acme.example.org.", RecordType::TLSA),
        (ZONE, RecordType::ANY),
        ("other.test.", RecordType::SOA),
    ];
    let forms = [
        None,
        Some((1232, false)),
        Some((1232, true)),
        Some((4096, true)),
    ];
    let (built0, prepared0) = (udp_count(&h, UDP_BUILT), udp_count(&h, UDP_PREPARED));
    let mut asked = 0;
    for (qname, qtype) in questions {
        for edns in forms {
            for flags in [[0x00, 0x00], [0x01, 0x00], [0x01, 0x30]] {
                let q = raw(rand_id(), flags, qname, qtype, edns);
                let front = h.tcp(&q).await;
                for round in 0..2 {
                    let fast = h.udp(&q).await.expect("a UDP answer");
                    assert_eq!(
                        fast, front,
                        "{qname} {qtype} edns={edns:?} flags={flags:?} round {round}: UDP and TCP answers differ"
                    );
                    asked += 1;
                }
            }
        }
    }
    let built = udp_count(&h, UDP_BUILT) - built0;
    let prepared = udp_count(&h, UDP_PREPARED) - prepared0;
    assert_eq!(
        built + prepared,
        asked,
        "every one of these plain queries took the fast path"
    );
    assert!(
        prepared >= asked / 2,
        "the second of each pair came from a prepared answer ({prepared} of {asked})"
    );
}

#[tokio::test]
async fn the_question_keeps_the_case_the_client_sent() {
    let h = Harness::start().await;
    add_records(&h).await;
    let lower = "_acme-challenge.mx1._acme.example.org.";
    let mixed = "_AcMe-ChAlLeNgE.Mx1._aCmE.eXaMpLe.OrG.";
    let want = Message::from_vec(
        &h.udp(&raw(7, [1, 0], lower, RecordType::TXT, Some((1232, true))))
            .await
            .unwrap(),
    )
    .unwrap();
    for _ in 0..2 {
        let q = raw(
            0xbeef,
            [1, 0x10],
            mixed,
            RecordType::TXT,
            Some((1232, true)),
        );
        let bytes = h.udp(&q).await.unwrap();
        // The question, octet for octet.
        assert_eq!(
            &bytes[12..12 + mixed.len() + 1 + 4],
            &q[12..12 + mixed.len() + 1 + 4]
        );
        let m = Message::from_vec(&bytes).unwrap();
        assert_eq!(m.metadata.id, 0xbeef);
        assert!(m.metadata.recursion_desired && m.metadata.checking_disabled);
        assert!(m.metadata.authoritative && !m.metadata.recursion_available);
        assert_eq!(m.answers.len(), want.answers.len());
        for (a, b) in m.answers.iter().zip(&want.answers) {
            assert_eq!(a.name.to_lowercase(), b.name.to_lowercase());
            assert_eq!(a.data, b.data);
        }
    }
}

#[tokio::test]
async fn a_change_is_answered_at_once() {
    let h = Harness::start().await;
    let owner = zname("_acme-challenge.mx1");
    let q = raw(
        1,
        [0, 0],
        "_acme-challenge.mx1._acme.example.org.",
        RecordType::TXT,
        Some((1232, true)),
    );
    let ask = || async { Message::from_vec(&h.udp(&q).await.unwrap()).unwrap() };
    let txts = |m: &Message| -> Vec<String> {
        m.answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::TXT(t) => Some(t.to_string()),
                _ => None,
            })
            .collect()
    };
    for _ in 0..2 {
        assert_eq!(ask().await.metadata.response_code, ResponseCode::NXDomain);
    }
    for (i, token) in ["first", "second"].iter().enumerate() {
        assert_eq!(
            h.update_rcode(
                "mx1",
                update_msg(ZONE, vec![], vec![add(&owner, 60, RecordType::TXT, token)])
            )
            .await,
            ResponseCode::NoError
        );
        for _ in 0..2 {
            let m = ask().await;
            assert_eq!(m.metadata.response_code, ResponseCode::NoError);
            assert_eq!(txts(&m).len(), i + 1, "{:?}", txts(&m));
            assert!(txts(&m).iter().any(|t| t == token));
        }
    }
    assert_eq!(
        h.update_rcode(
            "mx1",
            update_msg(ZONE, vec![], vec![del_rrset(&owner, RecordType::TXT)])
        )
        .await,
        ResponseCode::NoError
    );
    assert_eq!(ask().await.metadata.response_code, ResponseCode::NXDomain);
}

#[tokio::test]
async fn what_is_not_a_plain_query_goes_to_the_request_front() {
    let h = Harness::start().await;
    let front0 = udp_count(&h, UDP_FRONT);
    // A query with a TSIG, one with EDNS version 1, one with a malformed
    // COOKIE: each answered as before, by the front.
    let signed = sign(
        query_msg(ZONE, RecordType::SOA, true),
        &h.key("mx1"),
        h.clock_now(),
    );
    let m = Message::from_vec(&h.udp(&signed).await.unwrap()).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.signature().is_some(), "signed answer to a signed query");

    let mut version1 = raw(3, [0, 0], ZONE, RecordType::SOA, Some((1232, false)));
    let n = version1.len();
    version1[n - 5] = 1;
    let m = Message::from_vec(&h.udp(&version1).await.unwrap()).unwrap();
    assert_eq!(u16::from(m.metadata.response_code), 16, "BADVERS");

    let m = Message::from_vec(&h.udp(&with_cookie(ZONE, &[1, 2, 3, 4, 5])).await.unwrap()).unwrap();
    assert_eq!(
        m.metadata.response_code,
        ResponseCode::FormErr,
        "RFC 7873 §5.2.2"
    );

    let short = [0u8; 11];
    assert!(
        h.udp(&short).await.is_none(),
        "shorter than a header: dropped"
    );
    assert_eq!(
        udp_count(&h, UDP_FRONT) - front0,
        3,
        "three requests went to the front"
    );
}

/// A SOA query for `name` with EDNS and one COOKIE option of `data`.
fn with_cookie(name: &str, data: &[u8]) -> Vec<u8> {
    let mut q = raw(rand_id(), [0, 0], name, RecordType::SOA, Some((1232, true)));
    let n = q.len();
    q[n - 2..].copy_from_slice(&(4 + data.len() as u16).to_be_bytes());
    q.extend_from_slice(&[0, 10]);
    q.extend_from_slice(&(data.len() as u16).to_be_bytes());
    q.extend_from_slice(data);
    q
}

/// The COOKIE option data of an answer.
fn cookie_of(m: &Message) -> Vec<u8> {
    use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
    match m.edns.as_ref().and_then(|e| e.option(EdnsCode::Cookie)) {
        Some(EdnsOption::Unknown(_, data)) => data.clone(),
        other => panic!("no COOKIE option in the answer: {other:?}"),
    }
}

#[tokio::test]
async fn cookies_are_answered_on_the_fast_path() {
    let h = Harness::start().await;
    let fast0 = udp_count(&h, UDP_BUILT) + udp_count(&h, UDP_PREPARED);
    let client = [9u8, 8, 7, 6, 5, 4, 3, 2];
    // A client cookie alone: our server cookie comes back.
    let m = Message::from_vec(&h.udp(&with_cookie(ZONE, &client)).await.unwrap()).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    let ours = cookie_of(&m);
    assert_eq!(ours.len(), 24);
    assert_eq!(ours[..8], client, "the client cookie echoed");
    // With our server cookie: valid, echoed while young; the very bytes
    // the front sends for the same request.
    let q = with_cookie(ZONE, &ours);
    let front = h.tcp(&q).await;
    let fast = h.udp(&q).await.unwrap();
    assert_eq!(fast, front, "UDP and TCP answers to a valid cookie differ");
    assert_eq!(cookie_of(&Message::from_vec(&fast).unwrap()), ours);
    assert_eq!(
        udp_count(&h, UDP_BUILT) + udp_count(&h, UDP_PREPARED) - fast0,
        2,
        "both cookie queries took the fast path"
    );
    let valid = h
        .server()
        .metrics
        .cookies
        .get(&[zonewarden::metrics::COOKIE_VALID]);
    assert!(valid >= 2, "valid cookies counted on both paths ({valid})");
}
