//! Connection limits (issue 11, defect 1): one source that holds or
//! trickles connections degrades only itself. Past the per-source cap a new
//! DNS-over-TCP or HTTP connection from that source is closed unanswered
//! while another loopback source (127.0.0.2) is still served; a connection
//! that sends a query every second is closed at its lifetime; idle,
//! slow-header and slow-body HTTP connections are closed after their
//! timeouts; the soft open-files limit is raised at start.
//!
//! Limits are configured short (seconds) so the tests are quick; every
//! wait is bounded well above the configured limit, and nothing is timed
//! more precisely than "closed before this bound".

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Connect to `to` from the loopback address `from` (127.0.0.x).
async fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let s = TcpSocket::new_v4().unwrap();
    s.bind(format!("{from}:0").parse().unwrap()).unwrap();
    s.connect(to).await.unwrap()
}

/// Send one length-prefixed DNS message.
async fn send_dns(s: &mut TcpStream, bytes: &[u8]) -> std::io::Result<()> {
    let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(bytes);
    s.write_all(&framed).await
}

/// Read one length-prefixed DNS answer; None if the connection was closed
/// (or nothing came within `within`).
async fn read_dns(s: &mut TcpStream, within: Duration) -> Option<Message> {
    let read = async {
        let mut len = [0u8; 2];
        s.read_exact(&mut len).await.ok()?;
        let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut buf).await.ok()?;
        Message::from_vec(&buf).ok()
    };
    tokio::time::timeout(within, read).await.ok().flatten()
}

/// A SOA query at the apex over a connection from `from`: the answer, or
/// None if the connection was closed unanswered.
async fn soa_over_tcp(from: &str, to: SocketAddr) -> Option<Message> {
    let mut s = connect_from(from, to).await;
    let q = query_msg(ZONE, RecordType::SOA, false).to_vec().unwrap();
    if send_dns(&mut s, &q).await.is_err() {
        return None;
    }
    read_dns(&mut s, Duration::from_secs(5)).await
}

/// Wait until the peer closes `s` (EOF or reset), up to `bound`; true if it
/// did. Whatever the server sends before closing is read and dropped.
async fn closed_within(s: &mut TcpStream, bound: Duration) -> bool {
    let wait = async {
        let mut buf = [0u8; 1024];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(bound, wait).await.is_ok()
}

#[tokio::test]
async fn past_the_per_source_cap_a_tcp_connection_is_closed_while_another_source_is_served() {
    let h = Harness::start_with(|c| {
        c.connections.tcp_max_connections = 100;
        c.connections.tcp_max_connections_per_source = 3;
    })
    .await;
    // 127.0.0.1 holds its three connections, idle.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect_from("127.0.0.1", h.addr).await);
    }
    // Its fourth is closed unanswered...
    assert!(
        soa_over_tcp("127.0.0.1", h.addr).await.is_none(),
        "a fourth connection from one source was served"
    );
    // ...while 127.0.0.2 is answered, and UDP too.
    let answer = soa_over_tcp("127.0.0.2", h.addr)
        .await
        .expect("another source is served over TCP");
    assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
    assert_eq!(answer.answers.len(), 1);
    let udp = h.query(ZONE, RecordType::SOA).await;
    assert_eq!(udp.metadata.response_code, ResponseCode::NoError);
    // A held connection still works, and once one is closed the source may
    // open another.
    let q = query_msg(ZONE, RecordType::SOA, false).to_vec().unwrap();
    send_dns(&mut held[0], &q).await.unwrap();
    assert!(
        read_dns(&mut held[0], Duration::from_secs(5))
            .await
            .is_some()
    );
    drop(held.remove(0));
    let mut again = None;
    for _ in 0..50 {
        again = soa_over_tcp("127.0.0.1", h.addr).await;
        if again.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(again.is_some(), "the source's place was not freed");
}

#[tokio::test]
async fn past_the_total_cap_a_tcp_connection_is_closed() {
    let h = Harness::start_with(|c| {
        c.connections.tcp_max_connections = 4;
        c.connections.tcp_max_connections_per_source = 2;
    })
    .await;
    let mut held = Vec::new();
    for from in ["127.0.0.1", "127.0.0.1", "127.0.0.2", "127.0.0.2"] {
        held.push(connect_from(from, h.addr).await);
    }
    assert!(soa_over_tcp("127.0.0.3", h.addr).await.is_none());
    // UDP is not capped by TCP connections.
    let udp = h.query(ZONE, RecordType::SOA).await;
    assert_eq!(udp.metadata.response_code, ResponseCode::NoError);
}

#[tokio::test]
async fn a_tcp_connection_sending_a_query_every_second_is_closed_at_its_lifetime() {
    let h = Harness::start_with(|c| {
        c.connections.tcp_idle_timeout = Duration::from_secs(2);
        c.connections.tcp_max_lifetime = Duration::from_secs(3);
    })
    .await;
    let mut s = connect_from("127.0.0.1", h.addr).await;
    let q = query_msg(ZONE, RecordType::SOA, false).to_vec().unwrap();
    // Ten queries a second apart: far past the 3 s lifetime.
    let mut answered = 0;
    for _ in 0..10 {
        if send_dns(&mut s, &q).await.is_err() {
            break;
        }
        if read_dns(&mut s, Duration::from_secs(5)).await.is_none() {
            break;
        }
        answered += 1;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert!(answered >= 1, "the first query was not answered");
    assert!(
        answered < 10,
        "a connection busy every second was held past its lifetime"
    );
}

#[tokio::test]
async fn a_tcp_connection_trickling_a_message_is_closed_at_its_idle_timeout() {
    let h = Harness::start_with(|c| {
        c.connections.tcp_idle_timeout = Duration::from_secs(2);
        c.connections.tcp_max_lifetime = Duration::from_secs(60);
    })
    .await;
    let mut s = connect_from("127.0.0.1", h.addr).await;
    let q = query_msg(ZONE, RecordType::SOA, false).to_vec().unwrap();
    let mut framed = (q.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&q);
    // One byte every 500 ms: a whole message would take 10 s or more.
    let mut closed = false;
    for b in framed.iter().take(20) {
        if s.write_all(&[*b]).await.is_err() {
            closed = true;
            break;
        }
        if closed_within(&mut s, Duration::from_millis(500)).await {
            closed = true;
            break;
        }
    }
    assert!(
        closed,
        "a trickling connection was held past its idle timeout"
    );
    // The connection of a well-behaved client is not affected.
    assert!(soa_over_tcp("127.0.0.2", h.addr).await.is_some());
}

/// An HTTP GET /healthz from `from`: the status line, or None if the
/// connection was closed unanswered.
async fn healthz_from(from: &str, to: SocketAddr) -> Option<String> {
    let mut s = connect_from(from, to).await;
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .ok()?;
    let mut resp = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut resp))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&resp).to_string();
    text.lines().next().map(str::to_string)
}

#[tokio::test]
async fn slow_header_and_idle_http_connections_are_closed_while_another_request_works() {
    let h = Harness::start_with(|c| {
        c.connections.http_header_timeout = Duration::from_secs(2);
    })
    .await;
    let http = h.server().http_addr().unwrap();
    // Slow header: one byte every 500 ms, never finishing.
    let mut slow = connect_from("127.0.0.1", http).await;
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    // Idle: one request on a keep-alive connection, then nothing.
    let mut idle = connect_from("127.0.0.1", http).await;
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    // Another source is served meanwhile.
    assert_eq!(
        healthz_from("127.0.0.2", http).await.as_deref(),
        Some("HTTP/1.1 200 OK")
    );
    let mut slow_closed = false;
    for _ in 0..20 {
        if slow.write_all(b"a").await.is_err()
            || closed_within(&mut slow, Duration::from_millis(500)).await
        {
            slow_closed = true;
            break;
        }
    }
    assert!(slow_closed, "a slow-header connection was held for 10 s");
    assert!(
        closed_within(&mut idle, Duration::from_secs(10)).await,
        "an idle keep-alive connection was held for 10 s"
    );
}

#[tokio::test]
async fn a_slow_http_body_gets_408() {
    let h = Harness::start_with(|c| {
        c.connections.http_body_timeout = Duration::from_secs(2);
    })
    .await;
    let http = h.server().http_addr().unwrap();
    let mut s = connect_from("127.0.0.1", http).await;
    s.write_all(b"POST /api/v1/tlsa HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"mac")
        .await
        .unwrap();
    let mut resp = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = [0u8; 4096];
        while let Ok(n) = s.read(&mut buf).await {
            if n == 0 {
                break;
            }
            resp.extend_from_slice(&buf[..n]);
            if resp.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
    })
    .await;
    assert!(read.is_ok(), "a stalled body held the request for 10 s");
    let text = String::from_utf8_lossy(&resp);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
}

#[tokio::test]
async fn past_the_per_source_cap_an_http_connection_is_closed_while_another_source_is_served() {
    let h = Harness::start_with(|c| {
        c.connections.http_max_connections = 50;
        c.connections.http_max_connections_per_source = 2;
    })
    .await;
    let http = h.server().http_addr().unwrap();
    let _held = [
        connect_from("127.0.0.1", http).await,
        connect_from("127.0.0.1", http).await,
    ];
    assert_eq!(healthz_from("127.0.0.1", http).await, None);
    assert_eq!(
        healthz_from("127.0.0.2", http).await.as_deref(),
        Some("HTTP/1.1 200 OK")
    );
}

/// (soft, hard) "Max open files" of this process, from /proc/self/limits.
fn open_files_limits() -> (String, String) {
    let text = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("a Max open files line");
    let mut f = line["Max open files".len()..].split_whitespace();
    (f.next().unwrap().into(), f.next().unwrap().into())
}

#[tokio::test]
async fn start_raises_the_soft_open_files_limit_to_the_hard_limit() {
    // Lower the soft limit first (as a login shell's 1,024 would be).
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain getrlimit/setrlimit on a local struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = lim.rlim_max.min(1024);
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
    }
    if lim.rlim_max <= 1024 {
        eprintln!(
            "hard limit {} already at or below 1,024: nothing to raise",
            lim.rlim_max
        );
    }
    let (soft, hard) = open_files_limits();
    assert!(lim.rlim_max <= 1024 || soft != hard, "{soft} {hard}");
    let _h = Harness::start().await;
    let (soft, hard) = open_files_limits();
    assert_eq!(soft, hard, "the soft limit was not raised");
}

#[tokio::test]
async fn a_flood_of_bad_key_updates_over_udp_is_mostly_dropped_and_signed_updates_still_answer() {
    let h = Harness::start_with(|c| {
        c.connections.tsig_failure_answers = 10;
    })
    .await;
    // 200 UPDATEs signed with a key the server does not know, sent at once.
    let stranger =
        zonewarden::tsig::Key::generate(name("stranger."), zonewarden::tsig::Algorithm::HmacSha256)
            .unwrap();
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for i in 0..200 {
        let msg = update_msg(
            ZONE,
            vec![],
            vec![add(
                &zname(&format!("_acme-challenge.f{i}")),
                60,
                RecordType::TXT,
                "\"x\"",
            )],
        );
        sock.send_to(&sign(msg, &stranger, h.clock_now()), h.addr)
            .await
            .unwrap();
    }
    let mut answered = 0;
    let mut buf = vec![0u8; 4096];
    while let Ok(Ok(_)) =
        tokio::time::timeout(Duration::from_secs(2), sock.recv_from(&mut buf)).await
    {
        answered += 1;
    }
    // At most 10 a second are answered (BADKEY); sending took well under
    // the 20 s that would allow 200.
    assert!(answered >= 1, "no TSIG failure was answered at all");
    assert!(answered < 100, "{answered} of 200 bad-key UPDATEs answered");
    // A signed UPDATE over UDP is answered.
    let msg = update_msg(
        ZONE,
        vec![],
        vec![add(
            &zname("_acme-challenge.mx1"),
            60,
            RecordType::TXT,
            "\"ok\"",
        )],
    );
    let bytes = sign(msg, &h.key("mx1"), h.clock_now());
    let answer = Message::from_vec(&h.udp(&bytes).await.expect("an answer")).unwrap();
    assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
}
