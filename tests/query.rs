//! Authoritative answers over real UDP and TCP sockets.

mod common;

use common::*;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, RData, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn soa_at_the_apex_is_authoritative_in_every_served_zone() {
    let h = Harness::start().await;
    for zone in [ZONE, "other.test."] {
        let m = h.query(zone, RecordType::SOA).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.metadata.authoritative, "AA set");
        assert_eq!(m.answers.len(), 1);
        assert_eq!(m.answers[0].record_type(), RecordType::SOA);
    }
    let m = h.query(ZONE, RecordType::NS).await;
    assert_eq!(m.answers.len(), 1);
    assert_eq!(
        m.additionals
            .iter()
            .filter(|r| r.record_type() == RecordType::A)
            .count(),
        1,
        "glue"
    );
}

#[tokio::test]
async fn nxdomain_and_nodata_carry_the_soa_with_the_negative_ttl() {
    let h = Harness::start().await;
    let m = h.query("nothing._acme.example.org.", RecordType::TXT).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert!(m.metadata.authoritative);
    assert!(m.answers.is_empty());
    assert_eq!(m.authorities.len(), 1);
    assert_eq!(m.authorities[0].record_type(), RecordType::SOA);
    assert_eq!(
        m.authorities[0].ttl, 1,
        "negative TTL = SOA minimum (1 s by default)"
    );

    let m = h.query("static._acme.example.org.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());
    assert_eq!(m.authorities[0].record_type(), RecordType::SOA);

    // An empty non-terminal is NODATA, a name two labels below an existing one NXDOMAIN.
    let n = zname("_25._tcp.mx1");
    let tlsa = "3 1 1 0c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6";
    assert_eq!(
        h.update_rcode(
            "mx1",
            update_msg(ZONE, vec![], vec![add(&n, 60, RecordType::TLSA, tlsa)])
        )
        .await,
        ResponseCode::NoError
    );
    let m = h
        .query("_tcp.mx1._acme.example.org.", RecordType::TXT)
        .await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());
    let m = h
        .query("a.b._25._tcp.mx1._acme.example.org.", RecordType::TLSA)
        .await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
}

#[tokio::test]
async fn names_outside_every_zone_are_refused() {
    let h = Harness::start().await;
    for qname in ["example.org.", "example.com.", "."] {
        let m = h.query(qname, RecordType::SOA).await;
        assert_eq!(m.metadata.response_code, ResponseCode::Refused, "{qname}");
        assert!(!m.metadata.authoritative);
    }
}

#[tokio::test]
async fn any_gets_one_rrset() {
    let h = Harness::start().await;
    let m = h.query(ZONE, RecordType::ANY).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(m.answers.len(), 1, "RFC 8482 minimal answer");
}

#[tokio::test]
async fn edns_is_answered_with_our_size_and_other_versions_get_badvers() {
    let h = Harness::start().await;
    let m = h.query(ZONE, RecordType::SOA).await;
    assert_eq!(m.edns.as_ref().unwrap().max_payload(), 1232);
    let plain = query_msg(ZONE, RecordType::SOA, false);
    let m = Message::from_vec(&h.udp(&plain.to_vec().unwrap()).await.unwrap()).unwrap();
    assert!(m.edns.is_none(), "no OPT in answer to a query without one");

    let mut q = query_msg(ZONE, RecordType::SOA, false);
    let mut e = Edns::new();
    e.set_version(1);
    q.set_edns(e);
    let m = Message::from_vec(&h.udp(&q.to_vec().unwrap()).await.unwrap()).unwrap();
    // 16 is both BADVERS and BADSIG; without a TSIG it means BADVERS (RFC 6891).
    assert_eq!(u16::from(m.metadata.response_code), 16);
    assert_eq!(m.edns.as_ref().unwrap().version(), 0);
}

#[tokio::test]
async fn large_answers_truncate_over_udp_and_come_whole_over_tcp() {
    let h = Harness::start().await;
    let n = zname("big");
    let rrs: Vec<_> = (0..8)
        .map(|i| add(&n, 60, RecordType::TXT, &format!("{i}{}", "x".repeat(250))))
        .collect();
    assert_eq!(
        h.update_rcode("ops", update_msg(ZONE, vec![], rrs)).await,
        ResponseCode::NoError
    );
    for edns in [false, true] {
        let q = query_msg("big._acme.example.org.", RecordType::TXT, edns);
        let m = Message::from_vec(&h.udp(&q.to_vec().unwrap()).await.unwrap()).unwrap();
        assert!(m.metadata.truncation, "TC set (edns={edns})");
        assert!(m.answers.is_empty());
        assert_eq!(m.edns.is_some(), edns, "OPT kept in the truncated answer");
        let m = Message::from_vec(&h.tcp(&q.to_vec().unwrap()).await).unwrap();
        assert!(!m.metadata.truncation);
        assert_eq!(m.answers.len(), 8);
    }
}

#[tokio::test]
async fn tcp_answers_pipelined_queries_in_order() {
    let h = Harness::start().await;
    let mut s = tokio::net::TcpStream::connect(h.addr).await.unwrap();
    let names = [
        ZONE,
        "static._acme.example.org.",
        "nothing._acme.example.org.",
    ];
    let mut ids = Vec::new();
    for n in names {
        let q = query_msg(n, RecordType::TXT, true);
        ids.push(q.metadata.id);
        let b = q.to_vec().unwrap();
        s.write_all(&(b.len() as u16).to_be_bytes()).await.unwrap();
        s.write_all(&b).await.unwrap();
    }
    let mut got = Vec::new();
    for _ in names {
        let mut len = [0u8; 2];
        s.read_exact(&mut len).await.unwrap();
        let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut buf).await.unwrap();
        got.push(Message::from_vec(&buf).unwrap());
    }
    let mut got_ids: Vec<u16> = got.iter().map(|m| m.metadata.id).collect();
    got_ids.sort();
    ids.sort();
    assert_eq!(got_ids, ids);
}

#[tokio::test]
async fn formerr_notimp_and_refused_where_due() {
    let h = Harness::start().await;
    let no_question = Message::new(rand_id(), MessageType::Query, OpCode::Query);
    let mut two_questions = query_msg(ZONE, RecordType::SOA, false);
    two_questions.add_query(Query::query(name(ZONE), RecordType::NS));
    let mut status = query_msg(ZONE, RecordType::SOA, false);
    status.metadata.op_code = OpCode::Status;
    let mut chaos = Message::new(rand_id(), MessageType::Query, OpCode::Query);
    let mut q = Query::query(name(ZONE), RecordType::SOA);
    q.set_query_class(DNSClass::CH);
    chaos.add_query(q);
    let cases = [
        ("no question", no_question, ResponseCode::FormErr),
        ("two questions", two_questions, ResponseCode::FormErr),
        (
            "an opcode we do not do (STATUS)",
            status,
            ResponseCode::NotImp,
        ),
        ("another class (CH)", chaos, ResponseCode::Refused),
    ];
    for (what, m, rcode) in cases {
        let r = Message::from_vec(&h.udp(&m.to_vec().unwrap()).await.unwrap()).unwrap();
        assert_eq!(r.metadata.response_code, rcode, "{what}");
    }
}

#[tokio::test]
async fn random_and_truncated_packets_never_stop_the_server() {
    let h = Harness::start().await;
    // A deterministic xorshift, so a failure can be replayed.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let key = h.key("mx1");
    let valid = sign(
        update_msg(
            ZONE,
            vec![],
            vec![add(
                &zname("_acme-challenge.mx1"),
                60,
                RecordType::TXT,
                "fuzz",
            )],
        ),
        &key,
        h.clock_now(),
    );
    for i in 0..3000usize {
        let pkt: Vec<u8> = match i % 3 {
            0 => (0..(next() % 600) as usize).map(|_| next() as u8).collect(),
            1 => valid[..(i / 3) % valid.len()].to_vec(),
            _ => {
                let mut p = valid.clone();
                let at = (next() as usize) % p.len();
                p[at] ^= (next() as u8) | 1;
                p
            }
        };
        sock.send_to(&pkt, h.addr).await.unwrap();
        if i % 50 == 0 {
            // a TCP peer sending garbage too
            if let Ok(mut s) = tokio::net::TcpStream::connect(h.addr).await {
                let _ = s.write_all(&(pkt.len() as u16).to_be_bytes()).await;
                let _ = s.write_all(&pkt).await;
            }
        }
    }
    // Still serving, over both transports.
    let m = h.query(ZONE, RecordType::SOA).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    let q = query_msg(ZONE, RecordType::SOA, false);
    let m = Message::from_vec(&h.tcp(&q.to_vec().unwrap()).await).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
}

#[tokio::test]
async fn hickory_client_reads_answers() {
    use hickory_net::client::{Client, ClientHandle};
    use hickory_net::runtime::TokioRuntimeProvider;
    use hickory_net::udp::UdpClientStream;
    let h = Harness::start().await;
    let conn = UdpClientStream::builder(h.addr, TokioRuntimeProvider::default()).build();
    let (mut client, bg) = Client::<TokioRuntimeProvider>::from_sender(conn);
    tokio::spawn(bg);
    let r = client
        .query(
            name("static._acme.example.org."),
            DNSClass::IN,
            RecordType::TXT,
        )
        .await
        .unwrap();
    assert!(matches!(&r.answers[0].data, RData::TXT(t) if t.to_string() == "from the zone file"));
}
