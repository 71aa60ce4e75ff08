//! Floods and what the request front does about them (issue 11, defects 2
//! and 3): response rate limiting of UDP answers per source prefix (TCP
//! never limited, other prefixes untouched), DNS COOKIEs that exempt a
//! client who proved its address, a bounded log under a flood of UPDATEs
//! signed with an unknown key, and the per-key UPDATE rate.
//!
//! Sources are loopback addresses in different /24s (127.1.0.1,
//! 127.2.0.1, ...): all of 127.0.0.0/8 is local. Loopback is exempt from
//! RRL by default, so these tests clear `rrl-exempt`.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use hickory_proto::op::{Edns, Message, ResponseCode};
use hickory_proto::rr::RecordType;
use hickory_proto::rr::rdata::opt::EdnsOption;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UdpSocket;
use zonewarden::Config;

const COOKIE: u16 = 10;

/// RRL on for loopback, with a small rate so a flood is obvious.
fn limited(c: &mut Config) {
    c.rrl.exempt = vec![];
    c.rrl.responses_per_second = 5;
    c.rrl.slip = 2;
}

/// A query with EDNS and, if given, a COOKIE option.
fn query(qname: &str, rtype: RecordType, cookie: Option<&[u8]>) -> Vec<u8> {
    let mut m = query_msg(qname, rtype, true);
    if let Some(c) = cookie {
        let mut e = Edns::new();
        e.set_max_payload(1232);
        e.options_mut()
            .insert(EdnsOption::Unknown(COOKIE, c.to_vec()));
        m.set_edns(e);
    }
    m.to_vec().unwrap()
}

fn cookie_of(m: &Message) -> Option<Vec<u8>> {
    match m
        .edns
        .as_ref()?
        .option(hickory_proto::rr::rdata::opt::EdnsCode::Cookie)?
    {
        EdnsOption::Unknown(_, d) => Some(d.clone()),
        _ => None,
    }
}

/// What came back for a flood: every answer, parsed.
struct Flood {
    sent: usize,
    answers: Vec<Message>,
}

impl Flood {
    fn truncated(&self) -> usize {
        self.answers
            .iter()
            .filter(|m| m.metadata.truncation)
            .count()
    }
    fn full(&self) -> usize {
        self.answers
            .iter()
            .filter(|m| !m.metadata.truncation && m.metadata.response_code == ResponseCode::NoError)
            .count()
    }
}

/// Send `n` copies of `packet` from `from` as fast as they go, then
/// collect answers until none came for half a second.
async fn udp_flood(from: &str, to: SocketAddr, packet: &[u8], n: usize) -> Flood {
    let sock = UdpSocket::bind(format!("{from}:0")).await.unwrap();
    let mut answers = Vec::new();
    let mut buf = vec![0u8; 65535];
    for i in 0..n {
        sock.send_to(packet, to).await.unwrap();
        // Read what is there already, so the socket buffer never overflows.
        if i % 16 == 15 {
            while let Ok((len, _)) = sock.try_recv_from(&mut buf) {
                answers.push(Message::from_vec(&buf[..len]).unwrap());
            }
        }
    }
    while let Ok(Ok((len, _))) =
        tokio::time::timeout(Duration::from_millis(500), sock.recv_from(&mut buf)).await
    {
        answers.push(Message::from_vec(&buf[..len]).unwrap());
    }
    Flood { sent: n, answers }
}

async fn udp_from(from: &str, to: SocketAddr, packet: &[u8]) -> Option<Message> {
    let sock = UdpSocket::bind(format!("{from}:0")).await.unwrap();
    sock.send_to(packet, to).await.unwrap();
    let mut buf = vec![0u8; 65535];
    match tokio::time::timeout(Duration::from_secs(3), sock.recv_from(&mut buf)).await {
        Ok(Ok((n, _))) => Some(Message::from_vec(&buf[..n]).unwrap()),
        _ => None,
    }
}

/// `n` queries over one TCP connection from `from`.
async fn tcp_queries(from: &str, to: SocketAddr, packet: &[u8], n: usize) -> Vec<Message> {
    let s = tokio::net::TcpSocket::new_v4().unwrap();
    s.bind(format!("{from}:0").parse().unwrap()).unwrap();
    let mut s = s.connect(to).await.unwrap();
    let mut out = Vec::new();
    for _ in 0..n {
        s.write_all(&(packet.len() as u16).to_be_bytes())
            .await
            .unwrap();
        s.write_all(packet).await.unwrap();
        let mut len = [0u8; 2];
        tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut len))
            .await
            .expect("TCP answer within 10 s")
            .unwrap();
        let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut buf).await.unwrap();
        out.push(Message::from_vec(&buf).unwrap());
    }
    out
}

#[tokio::test]
async fn a_udp_flood_from_one_prefix_is_limited_while_tcp_and_other_prefixes_are_answered() {
    let h = Harness::start_with(limited).await;
    let soa = query(ZONE, RecordType::SOA, None);
    let flood = udp_flood("127.1.0.1", h.addr, &soa, 300).await;
    assert!(
        flood.answers.len() < flood.sent,
        "the flood is not all answered: {} of {}",
        flood.answers.len(),
        flood.sent
    );
    assert!(
        flood.full() >= 5,
        "the bucket's second is answered: {}",
        flood.full()
    );
    assert!(
        flood.truncated() > 0,
        "some limited answers slip out with TC=1"
    );
    for m in flood.answers.iter().filter(|m| m.metadata.truncation) {
        assert!(m.answers.is_empty() && m.authorities.is_empty(), "{m:?}");
        assert_eq!(m.queries.len(), 1, "the question is kept");
    }
    let metrics = &h.server().metrics;
    assert!(metrics.rrl_limited.total() as usize >= flood.sent - flood.full());

    // Another /24 is not affected, nor is the same source over TCP.
    let other = udp_from("127.2.0.1", h.addr, &soa).await.expect("answered");
    assert!(!other.metadata.truncation);
    assert_eq!(other.answers.len(), 1);
    let over_tcp = tcp_queries("127.1.0.1", h.addr, &soa, 50).await;
    assert_eq!(over_tcp.len(), 50);
    assert!(over_tcp.iter().all(|m| !m.metadata.truncation
        && m.metadata.response_code == ResponseCode::NoError
        && m.answers.len() == 1));

    // NXDOMAIN floods over random names share the zone's bucket.
    let sock = UdpSocket::bind("127.4.0.1:0").await.unwrap();
    for i in 0..200 {
        let q = query(&format!("nx{i}.{ZONE}"), RecordType::TXT, None);
        sock.send_to(&q, h.addr).await.unwrap();
    }
    let mut nx = 0;
    let mut buf = vec![0u8; 65535];
    while let Ok(Ok((len, _))) =
        tokio::time::timeout(Duration::from_millis(500), sock.recv_from(&mut buf)).await
    {
        let m = Message::from_vec(&buf[..len]).unwrap();
        if m.metadata.response_code == ResponseCode::NXDomain {
            nx += 1;
        }
    }
    assert!(
        nx < 200,
        "random NXDOMAIN names share one bucket: {nx} answered"
    );
}

#[tokio::test]
async fn rrl_off_answers_every_query() {
    let h = Harness::start_with(|c| {
        limited(c);
        c.rrl.enabled = false;
    })
    .await;
    let soa = query(ZONE, RecordType::SOA, None);
    let flood = udp_flood("127.1.0.1", h.addr, &soa, 100).await;
    assert_eq!(flood.full(), 100);
}

#[tokio::test]
async fn a_client_with_a_valid_server_cookie_is_not_limited() {
    let h = Harness::start_with(limited).await;
    let client = [0x24, 0x64, 0xc4, 0xab, 0xcf, 0x10, 0xc9, 0x57];
    // Learn the server cookie (RFC 7873 §5.1).
    let first = udp_from(
        "127.3.0.1",
        h.addr,
        &query(ZONE, RecordType::SOA, Some(&client)),
    )
    .await
    .expect("answered");
    let cookie = cookie_of(&first).expect("the answer carries our cookie");
    assert_eq!(cookie.len(), 24);
    assert_eq!(cookie[..8], client, "the client cookie is echoed");
    assert_eq!(cookie[8], 1, "RFC 9018 version 1");

    // With it, a flood is answered in full.
    let flood = udp_flood(
        "127.3.0.1",
        h.addr,
        &query(ZONE, RecordType::SOA, Some(&cookie)),
        200,
    )
    .await;
    assert_eq!(flood.full(), 200, "{} of 200", flood.answers.len());
    assert!(
        flood
            .answers
            .iter()
            .all(|m| cookie_of(m).as_deref() == Some(&cookie[..]))
    );
    // From another address the same cookie proves nothing.
    let stolen = udp_flood(
        "127.5.0.1",
        h.addr,
        &query(ZONE, RecordType::SOA, Some(&cookie)),
        200,
    )
    .await;
    assert!(stolen.answers.len() < 200);
    // With the client cookie alone the flood is limited, and what slips is
    // BADCOOKIE with a fresh server cookie, so a real client retries with it.
    let flood = udp_flood(
        "127.6.0.1",
        h.addr,
        &query(ZONE, RecordType::SOA, Some(&client)),
        200,
    )
    .await;
    assert!(flood.answers.len() < 200);
    let bad: Vec<&Message> = flood
        .answers
        .iter()
        .filter(|m| m.metadata.response_code == ResponseCode::BADCOOKIE)
        .collect();
    assert!(!bad.is_empty(), "slipped answers are BADCOOKIE");
    let fresh = cookie_of(bad[0]).expect("BADCOOKIE carries a cookie");
    let retry = udp_from(
        "127.6.0.1",
        h.addr,
        &query(ZONE, RecordType::SOA, Some(&fresh)),
    )
    .await
    .expect("the retry with the cookie is answered");
    assert_eq!(retry.metadata.response_code, ResponseCode::NoError);
    assert_eq!(retry.answers.len(), 1);
    assert!(h.server().metrics.cookies.total() >= 600);
}

#[tokio::test]
async fn a_malformed_cookie_is_formerr() {
    let h = Harness::start().await;
    for len in [5usize, 12, 41] {
        let m = udp_from(
            "127.0.0.1",
            h.addr,
            &query(ZONE, RecordType::SOA, Some(&vec![1; len])),
        )
        .await
        .expect("answered");
        assert_eq!(
            m.metadata.response_code,
            ResponseCode::FormErr,
            "{len} octets"
        );
        assert!(m.answers.is_empty());
    }
}

#[tokio::test]
async fn updates_past_the_per_key_burst_are_refused_and_not_applied() {
    let h = Harness::start_with(|c| {
        c.update_rate.per_second = 1;
        c.update_rate.burst = 3;
    })
    .await;
    let owner = zname("_acme-challenge.mx1");
    let mut applied = Vec::new();
    let mut refused = Vec::new();
    for i in 0..12 {
        let v = format!("v{i}");
        let msg = update_msg(
            ZONE,
            vec![],
            vec![
                del_rrset(&owner, RecordType::TXT),
                add(&owner, 60, RecordType::TXT, &v),
            ],
        );
        match h.update_rcode("mx1", msg).await {
            ResponseCode::NoError => applied.push(v),
            ResponseCode::Refused => refused.push(v),
            other => panic!("unexpected {other}"),
        }
    }
    assert!(applied.len() >= 3, "the burst goes through: {applied:?}");
    assert!(!refused.is_empty(), "past the burst: refused");
    let metrics = &h.server().metrics;
    assert_eq!(
        metrics.updates_refused.get(&["rate_limited"]) as usize,
        refused.len()
    );
    // What was refused was not processed: the last applied value is served.
    let served = h.txt(&owner.to_string()).await;
    assert_eq!(served, vec![applied.last().unwrap().clone()]);
    // Another key has its own bucket.
    let other = update_msg(
        ZONE,
        vec![],
        vec![add(
            &zname("_acme-challenge.www1"),
            60,
            RecordType::TXT,
            "x",
        )],
    );
    assert_eq!(h.update_rcode("www1", other).await, ResponseCode::NoError);
}

/// The real binary, killed when dropped.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn lines_with(log: &Path, needle: &str) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(needle))
        .count()
}

#[tokio::test]
async fn a_flood_of_unknown_key_updates_writes_a_bounded_log() {
    let dir = tempfile::tempdir().unwrap();
    let _ = Harness::layout(dir.path());
    let port = free_port();
    let cfg = dir.path().join("zonewarden.toml");
    write(
        &cfg,
        &format!("listen = [\"127.0.0.1:{port}\"]\nhttp = \"off\"\ndata-dir = \"data\"\n"),
    );
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let log = dir.path().join("server.log");
    let _server = Server(
        Command::new(env!("CARGO_BIN_EXE_zonewarden"))
            .args(["--config", cfg.to_str().unwrap(), "serve"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    wait_serving(addr).await;
    let stranger =
        zonewarden::tsig::Key::generate(name("stranger."), zonewarden::tsig::Algorithm::HmacSha256)
            .unwrap();
    let owner = zname("_acme-challenge.mx1");
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut buf = vec![0u8; 65535];
    let started = Instant::now();
    const N: usize = 2000;
    let mut answered = 0;
    for i in 0..N {
        let msg = update_msg(
            ZONE,
            vec![],
            vec![add(&owner, 60, RecordType::TXT, &format!("x{i}"))],
        );
        sock.send_to(&sign(msg, &stranger, unix_now()), addr)
            .await
            .unwrap();
        if let Ok(Ok(_)) =
            tokio::time::timeout(Duration::from_secs(2), sock.recv_from(&mut buf)).await
        {
            answered += 1;
        }
    }
    let elapsed = started.elapsed().as_secs();
    assert!(
        answered > N / 2,
        "the server answered the flood: {answered}"
    );
    // A machine with a valid key keeps its one line per refusal.
    let mx1 = zonewarden::tsig::read_key_file(&dir.path().join("data/keys/mx1.key"))
        .unwrap()
        .remove(0);
    let msg = update_msg(
        ZONE,
        vec![],
        vec![add(&zname("not-mine"), 60, RecordType::TXT, "x")],
    );
    let reply = udp_exchange(addr, &sign(msg, &mx1, unix_now()))
        .await
        .unwrap();
    assert_eq!(
        Message::from_vec(&reply).unwrap().metadata.response_code,
        ResponseCode::Refused
    );
    // The summary of what was suppressed comes within the interval.
    let deadline = Instant::now() + Duration::from_secs(25);
    while lines_with(&log, "suppressed") < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let text = std::fs::read_to_string(&log).unwrap();
    let tsig = lines_with(&log, "TSIG verification failed");
    let refusals = lines_with(&log, "outcome=\"refused\"") + lines_with(&log, "outcome=refused");
    // At most 10 lines a second per kind, whatever the flood.
    let allowance = 10 * (elapsed as usize + 2);
    assert!(
        tsig <= allowance,
        "{tsig} TSIG lines for {N} packets in {elapsed} s"
    );
    assert!(
        refusals <= allowance + 1,
        "{refusals} refusal lines for {N} packets"
    );
    assert!(
        tsig + refusals < N / 2,
        "fewer lines than packets: {tsig} + {refusals}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("suppressed") && l.contains("tsig_failure")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("key=mx1.") && l.contains("refused")),
        "the valid key's refusal is logged: {text}"
    );
}
