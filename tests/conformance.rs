//! Protocol conformance, side by side with real servers: what zonewarden
//! answers is pinned to what Knot (and, for unknown opcodes, BIND) answer
//! for the same zone and the same bytes. Covers the additional section
//! (RFC 1035 §3.3.9, RFC 2782, RFC 4035 §3.1.1), NOTIMP for unknown
//! opcodes, Extended DNS Errors (RFC 8914), NSID (RFC 5001) and the class
//! CH identity names.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::peers::{Peer, bind_primary, knot_primary};
use common::*;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption, NSIDPayload};
use hickory_proto::rr::{DNSClass, RData, Record, RecordType};
use zonewarden::zone::as_rrsig;

const ORIGIN: &str = "conf.test.";

/// The zone as zonewarden reads it.
const CONF_TOML: &str = r#"
origin = "conf.test."
contact = "hostmaster.conf.test."
nameservers = ["ns1.conf.test."]
[glue]
"ns1" = ["127.0.0.1"]
[[record]]
name = "www"
type = "MX"
data = "10 mail.conf.test."
[[record]]
name = "www"
type = "MX"
data = "20 mx.elsewhere.test."
[[record]]
name = "mail"
type = "A"
data = "192.0.2.25"
[[record]]
name = "mail"
type = "AAAA"
data = "2001:db8::25"
[[record]]
name = "_sip._tcp"
type = "SRV"
data = "0 0 5060 mail.conf.test."
[[record]]
name = "sub"
type = "NS"
data = "ns.sub.conf.test."
[[record]]
name = "ns.sub"
type = "A"
data = "192.0.2.53"
[[record]]
name = "below"
type = "MX"
data = "10 ns.sub.conf.test."
[[record]]
name = "big"
type = "MX"
data = "10 many.conf.test."
[[record]]
name = "many"
type = "AAAA"
data = "2001:db8::1"
[[record]]
name = "many"
type = "AAAA"
data = "2001:db8::2"
[[record]]
name = "many"
type = "AAAA"
data = "2001:db8::3"
[[record]]
name = "many"
type = "AAAA"
data = "2001:db8::4"
[[record]]
name = "many"
type = "AAAA"
data = "2001:db8::5"
[[record]]
name = "many"
type = "AAAA"
data = "2001:db8::6"
[[record]]
name = "many"
type = "AAAA"
data = "2001:db8::7"
[[record]]
name = "many"
type = "AAAA"
data = "2001:db8::8"
[[record]]
name = "many"
type = "AAAA"
data = "2001:db8::9"
[[record]]
name = "many"
type = "AAAA"
data = "2001:db8::10"
[[record]]
name = "many"
type = "AAAA"
data = "2001:db8::11"
[[record]]
name = "many"
type = "AAAA"
data = "2001:db8::12"
[[record]]
name = "many"
type = "AAAA"
data = "2001:db8::13"
[[record]]
name = "many"
type = "AAAA"
data = "2001:db8::14"
[[record]]
name = "many"
type = "AAAA"
data = "2001:db8::15"
[[record]]
name = "many"
type = "AAAA"
data = "2001:db8::16"
"#;

/// The same zone as Knot and BIND read it.
const CONF_ZONE: &str = "$ORIGIN conf.test.
$TTL 60
@ SOA ns1 hostmaster 1 60 60 600 60
@ NS ns1
ns1 A 127.0.0.1
www MX 10 mail
www MX 20 mx.elsewhere.test.
mail A 192.0.2.25
mail AAAA 2001:db8::25
_sip._tcp SRV 0 0 5060 mail
sub NS ns.sub
ns.sub A 192.0.2.53
below MX 10 ns.sub
big MX 10 many
many AAAA 2001:db8::1
many AAAA 2001:db8::2
many AAAA 2001:db8::3
many AAAA 2001:db8::4
many AAAA 2001:db8::5
many AAAA 2001:db8::6
many AAAA 2001:db8::7
many AAAA 2001:db8::8
many AAAA 2001:db8::9
many AAAA 2001:db8::10
many AAAA 2001:db8::11
many AAAA 2001:db8::12
many AAAA 2001:db8::13
many AAAA 2001:db8::14
many AAAA 2001:db8::15
many AAAA 2001:db8::16
";

/// Knot's identity settings, and ours set the same.
const NSID: &str = "zw-conformance";
const IDENTITY: &str = "ns1.conf.test";
const VERSION: &str = "conformance-1";

async fn start() -> Harness {
    Harness::start_with(|c| {
        write(&c.zones_dir.join("conf.toml"), CONF_TOML);
        c.nsid = Some(NSID.into());
        c.identity = Some(IDENTITY.into());
        c.version = Some(VERSION.into());
    })
    .await
}

/// A Knot primary of the same zone, signed, with the same identity; waits
/// (at most 20 s) until it serves the signed zone.
async fn knot() -> (Peer, SocketAddr) {
    require("knotd", "knot");
    let port = free_port();
    let extra =
        format!("    nsid: \"{NSID}\"\n    identity: \"{IDENTITY}\"\n    version: \"{VERSION}\"");
    let peer = knot_primary(ORIGIN, CONF_ZONE, port, true, &extra);
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let q = msg(ORIGIN, RecordType::SOA, DNSClass::IN, true);
        if let Some(b) = udp_exchange(addr, &q.to_vec().unwrap()).await
            && let Ok(m) = Message::from_vec(&b)
            && m.answers
                .iter()
                .any(|r| r.record_type() == RecordType::RRSIG)
        {
            return (peer, addr);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "knotd did not serve the signed zone: {}",
            peer.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A query with EDNS (DO as given).
fn msg(qname: &str, t: RecordType, class: DNSClass, dnssec_ok: bool) -> Message {
    let mut m = Message::new(rand_id(), MessageType::Query, OpCode::Query);
    let mut q = Query::query(name(qname), t);
    q.set_query_class(class);
    m.add_query(q);
    let mut e = Edns::new();
    e.set_max_payload(1232);
    e.set_dnssec_ok(dnssec_ok);
    m.set_edns(e);
    m
}

async fn ask(addr: SocketAddr, m: &Message, tcp: bool) -> Message {
    let bytes = m.to_vec().unwrap();
    let resp = if tcp {
        tcp_exchange(addr, &bytes).await
    } else {
        udp_exchange(addr, &bytes).await.expect("an answer")
    };
    Message::from_vec(&resp).unwrap()
}

/// A section as "owner TYPE" (RRSIGs as "owner RRSIG(covered)"), sorted:
/// what must match between servers whose keys and TTLs differ.
fn shape(records: &[Record]) -> Vec<String> {
    let mut out: Vec<String> = records
        .iter()
        .map(|r| match as_rrsig(&r.data) {
            Some(sig) => format!("{} RRSIG({})", r.name, sig.input().type_covered),
            None => format!("{} {}", r.name, r.record_type()),
        })
        .collect();
    out.sort();
    out
}

fn ede(m: &Message) -> Option<Vec<u8>> {
    m.edns
        .as_ref()?
        .options()
        .get(EdnsCode::Unknown(15))
        .and_then(|o| match o {
            EdnsOption::Unknown(15, data) => Some(data.clone()),
            _ => None,
        })
}

#[tokio::test]
async fn additional_section_matches_knot_with_rrsigs_for_authoritative_addresses() {
    let h = start().await;
    let (_knot, knot_addr) = knot().await;
    let cases = [
        (ORIGIN.to_string(), RecordType::NS),
        (format!("www.{ORIGIN}"), RecordType::MX),
        (format!("_sip._tcp.{ORIGIN}"), RecordType::SRV),
        (format!("below.{ORIGIN}"), RecordType::MX),
        (format!("host.sub.{ORIGIN}"), RecordType::A),
    ];
    for (qname, t) in &cases {
        for dnssec_ok in [false, true] {
            for tcp in [false, true] {
                let q = msg(qname, *t, DNSClass::IN, dnssec_ok);
                let ours = ask(h.addr, &q, tcp).await;
                let theirs = ask(knot_addr, &q, tcp).await;
                let what = format!("{qname} {t} do={dnssec_ok} tcp={tcp}");
                assert_eq!(
                    ours.metadata.response_code, theirs.metadata.response_code,
                    "{what}"
                );
                assert_eq!(shape(&ours.answers), shape(&theirs.answers), "{what}");
                assert_eq!(
                    shape(&ours.additionals),
                    shape(&theirs.additionals),
                    "{what}: ADDITIONAL"
                );
            }
        }
    }
    // Spelled out, what the comparison holds.
    let q = msg(&format!("www.{ORIGIN}"), RecordType::MX, DNSClass::IN, true);
    let m = ask(h.addr, &q, true).await;
    assert_eq!(
        shape(&m.additionals),
        [
            "mail.conf.test. A",
            "mail.conf.test. AAAA",
            "mail.conf.test. RRSIG(A)",
            "mail.conf.test. RRSIG(AAAA)",
        ],
        "the in-zone exchange's addresses, signed; none for the out-of-zone one"
    );
    let q = msg(ORIGIN, RecordType::NS, DNSClass::IN, true);
    let m = ask(h.addr, &q, true).await;
    assert_eq!(
        shape(&m.additionals),
        ["ns1.conf.test. A", "ns1.conf.test. RRSIG(A)"],
        "apex NS address with its RRSIG, over TCP"
    );
    let q = msg(
        &format!("host.sub.{ORIGIN}"),
        RecordType::A,
        DNSClass::IN,
        true,
    );
    let m = ask(h.addr, &q, false).await;
    assert_eq!(
        shape(&m.additionals),
        ["ns.sub.conf.test. A"],
        "glue below the cut, unsigned"
    );
}

#[tokio::test]
async fn additional_data_that_does_not_fit_is_left_out_without_tc() {
    let h = start().await;
    // Signed, the exchange's sixteen AAAA and their RRSIG do not fit in 512
    // octets; the answer does (RFC 4035 §3.1.1, RFC 2181 §9: no TC for that).
    let mut q = msg(&format!("big.{ORIGIN}"), RecordType::MX, DNSClass::IN, true);
    q.edns.as_mut().unwrap().set_max_payload(512);
    let m = ask(h.addr, &q, false).await;
    assert!(!m.metadata.truncation, "TC not set for additional data");
    assert_eq!(
        shape(&m.answers),
        ["big.conf.test. MX", "big.conf.test. RRSIG(MX)"]
    );
    assert!(m.additionals.is_empty(), "{:?}", shape(&m.additionals));
    // With room for it, it is all there.
    let m = ask(
        h.addr,
        &msg(&format!("big.{ORIGIN}"), RecordType::MX, DNSClass::IN, true),
        false,
    )
    .await;
    assert_eq!(m.additionals.len(), 17, "{:?}", shape(&m.additionals));
}

#[tokio::test]
async fn unknown_opcode_gets_notimp_with_a_bare_header_like_bind_and_knot() {
    require("named", "bind9");
    let h = start().await;
    let (_knot, knot_addr) = knot().await;
    let bind_port = free_port();
    let bind = bind_primary(ORIGIN, CONF_ZONE, bind_port);
    let bind_addr: SocketAddr = ([127, 0, 0, 1], bind_port).into();
    let mut q = msg(ORIGIN, RecordType::SOA, DNSClass::IN, false);
    q.metadata.op_code = OpCode::Unknown(3);
    q.metadata.recursion_desired = true;
    q.metadata.checking_disabled = true;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let theirs = loop {
        let b = udp_exchange(bind_addr, &q.to_vec().unwrap()).await;
        if let Some(m) = b.and_then(|b| Message::from_vec(&b).ok()) {
            break m;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "named did not answer: {}",
            bind.log()
        );
    };
    let knots = ask(knot_addr, &q, false).await;
    for tcp in [false, true] {
        let ours = ask(h.addr, &q, tcp).await;
        for (peer, m) in [("zonewarden", &ours), ("bind", &theirs), ("knot", &knots)] {
            assert_eq!(m.metadata.response_code, ResponseCode::NotImp, "{peer}");
            assert_eq!(m.metadata.op_code, OpCode::Unknown(3), "{peer}");
            assert!(!m.metadata.checking_disabled, "{peer}: CD not echoed");
            assert!(!m.metadata.authoritative, "{peer}");
            assert!(m.answers.is_empty() && m.authorities.is_empty(), "{peer}");
            assert!(m.edns.is_some(), "{peer}: OPT kept");
        }
        // RD: BIND does not echo it (Knot does); the header is BIND's.
        assert_eq!(
            ours.metadata.flags().to_string(),
            theirs.metadata.flags().to_string(),
            "flags as BIND"
        );
        assert!(!ours.metadata.recursion_desired);
        // The question: echoed, as Knot does (BIND sends none).
        assert_eq!(ours.queries, knots.queries, "question as Knot");
    }
}

#[tokio::test]
async fn refusals_carry_an_extended_error_only_with_edns() {
    let h = start().await;
    let (_knot, knot_addr) = knot().await;
    // Outside every zone: 20 Not Authoritative, as Knot says.
    let q = msg("example.com.", RecordType::SOA, DNSClass::IN, false);
    let ours = ask(h.addr, &q, false).await;
    let theirs = ask(knot_addr, &q, false).await;
    assert_eq!(ours.metadata.response_code, ResponseCode::Refused);
    assert_eq!(ede(&ours), Some(vec![0, 20]));
    assert_eq!(ede(&ours), ede(&theirs), "same EDE as Knot");
    // Without EDNS: no OPT, so no EDE.
    let plain = query_msg("example.com.", RecordType::SOA, false);
    let m = ask(h.addr, &plain, false).await;
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    assert!(m.edns.is_none());

    // An unsigned UPDATE: 18 Prohibited, no words about the policy.
    let mut up = update_msg(
        ORIGIN,
        vec![],
        vec![add(&name(&format!("x.{ORIGIN}")), 60, RecordType::TXT, "x")],
    );
    up.set_edns(Edns::new());
    let m = ask(h.addr, &up, true).await;
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    assert_eq!(ede(&m), Some(vec![0, 18]));

    // A signed UPDATE outside the machine's grants: 18 Prohibited.
    let mut up = update_msg(
        ZONE,
        vec![],
        vec![add(&zname("not-mine"), 60, RecordType::TXT, "x")],
    );
    up.set_edns(Edns::new());
    let m = h.update("mx1", up).await;
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    assert_eq!(ede(&m), Some(vec![0, 18]));

    // AXFR without the transfer key: 18 Prohibited.
    let q = msg(ORIGIN, RecordType::AXFR, DNSClass::IN, false);
    let m = ask(h.addr, &q, true).await;
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    assert_eq!(ede(&m), Some(vec![0, 18]));

    // dig shows it the way an operator reads it.
    require("dig", "bind9-dnsutils");
    // (Off the runtime: the server answers on it.)
    let port = h.addr.port().to_string();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("dig")
            .args([
                "@127.0.0.1",
                "-p",
                &port,
                "+tries=1",
                "+time=3",
                "example.com.",
                "SOA",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let out = String::from_utf8_lossy(&out.stdout);
    assert!(out.contains("EDE: 20 (Not Authoritative)"), "{out}");
}

#[tokio::test]
async fn nsid_is_sent_when_configured_and_asked_for() {
    let h = start().await;
    let (_knot, knot_addr) = knot().await;
    let mut q = msg(ORIGIN, RecordType::SOA, DNSClass::IN, false);
    q.edns
        .as_mut()
        .unwrap()
        .options_mut()
        .insert(EdnsOption::NSID(NSIDPayload::new(Vec::new()).unwrap()));
    for addr in [h.addr, knot_addr] {
        let m = ask(addr, &q, false).await;
        let nsid = m.edns.as_ref().unwrap().options().get(EdnsCode::NSID);
        match nsid {
            Some(EdnsOption::NSID(p)) => assert_eq!(p.as_ref(), NSID.as_bytes(), "{addr}"),
            other => panic!("{addr}: no NSID: {other:?}"),
        }
    }
    // Refusals too (an operator asks "which server refused me?").
    let mut r = q.clone();
    r.queries[0] = Query::query(name("example.com."), RecordType::SOA);
    let m = ask(h.addr, &r, false).await;
    assert!(m.edns.unwrap().options().get(EdnsCode::NSID).is_some());
    // Not asked: not sent.
    let plain = msg(ORIGIN, RecordType::SOA, DNSClass::IN, false);
    let m = ask(h.addr, &plain, false).await;
    assert!(m.edns.unwrap().options().get(EdnsCode::NSID).is_none());
    // Not configured: not sent.
    let off = Harness::start().await;
    let m = ask(off.addr, &q, false).await;
    assert!(m.edns.unwrap().options().get(EdnsCode::NSID).is_none());
}

#[tokio::test]
async fn chaos_identity_names_are_answered_like_knot_when_configured() {
    let h = start().await;
    let (_knot, knot_addr) = knot().await;
    let cases = [
        ("id.server.", RecordType::TXT, Some(IDENTITY)),
        ("hostname.bind.", RecordType::TXT, Some(IDENTITY)),
        ("version.bind.", RecordType::TXT, Some(VERSION)),
        ("version.server.", RecordType::TXT, Some(VERSION)),
        ("id.server.", RecordType::A, None),
        ("foo.bar.", RecordType::TXT, None),
        (ORIGIN, RecordType::SOA, None),
    ];
    for (qname, t, want) in cases {
        let q = msg(qname, t, DNSClass::CH, false);
        let ours = ask(h.addr, &q, false).await;
        let theirs = ask(knot_addr, &q, false).await;
        let what = format!("{qname} CH {t}");
        assert_eq!(
            ours.metadata.response_code, theirs.metadata.response_code,
            "{what}"
        );
        assert_eq!(
            ours.metadata.authoritative, theirs.metadata.authoritative,
            "{what}"
        );
        let view = |m: &Message| -> Vec<(String, u32, DNSClass, String)> {
            m.answers
                .iter()
                .map(|r| (r.name.to_string(), r.ttl, r.dns_class, r.data.to_string()))
                .collect()
        };
        assert_eq!(view(&ours), view(&theirs), "{what}");
        match want {
            Some(text) => {
                assert_eq!(ours.metadata.response_code, ResponseCode::NoError);
                assert!(matches!(&ours.answers[0].data, RData::TXT(t) if t.to_string() == text));
            }
            None => assert_eq!(ours.metadata.response_code, ResponseCode::Refused),
        }
    }
    // Off by default: REFUSED, as before.
    let off = Harness::start().await;
    for qname in ["id.server.", "hostname.bind.", "version.bind."] {
        let q = msg(qname, RecordType::TXT, DNSClass::CH, false);
        let m = ask(off.addr, &q, false).await;
        assert_eq!(m.metadata.response_code, ResponseCode::Refused, "{qname}");
        assert!(m.answers.is_empty());
    }
}
