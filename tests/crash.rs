//! Crash durability: the real binary is killed with SIGKILL at random
//! moments while several tasks stream TSIG-signed UPDATEs over UDP and
//! TCP, then started again on the same files, at least 50 times.
//!
//! Each stream owns two names and each of its UPDATEs replaces the TXT at
//! both with the same counter value. After every restart the test checks:
//! - every acknowledged UPDATE is there (the value at a stream's names is
//!   at least the last one acknowledged: a later, unacknowledged one may
//!   have committed too);
//! - no UPDATE is half applied (both names hold the same value, or neither
//!   has one);
//! - the SOA serial never goes back, and moved if anything was acknowledged;
//! - `PRAGMA integrity_check` of the database is `ok` (checked while the
//!   server is down, right after the kill);
//! - the signed zone verifies: an AXFR of it through `ldns-verify-zone`
//!   (every tenth cycle and the last).
//!
//! The seed of the random kill times is printed; `CRASH_SEED` replays it,
//! `CRASH_CYCLES` changes the number of cycles (default 50).

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zonewarden::tsig::{self, Algorithm, Key};

const ZONE: &str = "_acme.example.org.";
const UDP_STREAMS: usize = 3;
const TCP_STREAMS: usize = 3;

const ZONE_FILE: &str = r#"
origin = "_acme.example.org."
contact = "hostmaster@example.org"
nameservers = ["ns1._acme.example.org."]
[glue]
"ns1" = ["127.0.0.1"]
[dnssec]
algorithm = "ecdsap256sha256"
[soa]
minimum = 1
[transfer]
networks = ["127.0.0.0/8"]
"#;

const ACL: &str = r#"
zones = ["_acme.example.org."]
[[grant]]
name = "{machine}"
subtree = true
types = ["TXT"]
"#;

/// xorshift64*: enough randomness for kill times, replayable from a seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn names(stream: usize) -> (Name, Name) {
    let n = |s: &str| Name::from_ascii(format!("s{stream}{s}.mx1.{ZONE}")).unwrap();
    (n("a"), n("b"))
}

/// One UPDATE replacing the TXT at both of the stream's names with `value`.
fn update(stream: usize, value: u64, key: &Key) -> Vec<u8> {
    let mut m = Message::new(
        (value as u16) ^ (stream as u16) << 12,
        MessageType::Query,
        OpCode::Update,
    );
    let mut zone = Query::query(Name::from_ascii(ZONE).unwrap(), RecordType::SOA);
    zone.set_query_class(DNSClass::IN);
    m.add_query(zone);
    let (a, b) = names(stream);
    for name in [a, b] {
        let mut del = Record::update0(name.clone(), 0, RecordType::TXT);
        del.dns_class = DNSClass::ANY;
        m.authorities.push(del);
        m.authorities.push(Record::from_rdata(
            name,
            60,
            RData::TXT(TXT::new(vec![value.to_string()])),
        ));
    }
    let raw = m.to_vec().unwrap();
    let (rr, _) = tsig::sign_request(&raw, key, now(), 300);
    tsig::append_tsig(&raw, &rr).unwrap()
}

fn rcode(bytes: &[u8]) -> Option<ResponseCode> {
    Message::from_vec(bytes)
        .ok()
        .map(|m| m.metadata.response_code)
}

async fn send_udp(addr: SocketAddr, msg: &[u8]) -> Option<Vec<u8>> {
    send_udp_within(addr, msg, Duration::from_secs(2)).await
}

async fn send_udp_within(addr: SocketAddr, msg: &[u8], wait: Duration) -> Option<Vec<u8>> {
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.ok()?;
    sock.send_to(msg, addr).await.ok()?;
    let mut buf = vec![0u8; 65535];
    let (n, _) = tokio::time::timeout(wait, sock.recv_from(&mut buf))
        .await
        .ok()?
        .ok()?;
    buf.truncate(n);
    Some(buf)
}

async fn send_tcp(addr: SocketAddr, msg: &[u8]) -> Option<Vec<u8>> {
    let work = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        let mut out = (msg.len() as u16).to_be_bytes().to_vec();
        out.extend_from_slice(msg);
        s.write_all(&out).await.ok()?;
        let mut len = [0u8; 2];
        s.read_exact(&mut len).await.ok()?;
        let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut buf).await.ok()?;
        Some(buf)
    };
    tokio::time::timeout(Duration::from_secs(2), work)
        .await
        .ok()?
}

fn query(name: &Name, rtype: RecordType) -> Vec<u8> {
    let mut m = Message::new(4242, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(name.clone(), rtype));
    m.to_vec().unwrap()
}

/// Serve the layout in `dir` on `addr` with the real binary.
fn spawn(dir: &Path, addr: SocketAddr) -> Child {
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        // Six streams on one key, as fast as the server answers: no per-key
        // UPDATE rate here (it would refuse them, which is not what this
        // test is about).
        format!("listen = [\"{addr}\"]\nhttp = \"off\"\ndata-dir = \"data\"\nzones-dir = \"zones\"\nacl-dir = \"acl\"\nupdate-rate-per-key = 0\n"),
    )
    .unwrap();
    Command::new(env!("CARGO_BIN_EXE_zonewarden"))
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("zonewarden starts")
}

/// A port free for both UDP and TCP on 127.0.0.1.
fn free_addr() -> SocketAddr {
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = udp.local_addr().unwrap();
        if TcpListener::bind(addr).is_ok() {
            return addr;
        }
    }
    panic!("no free port");
}

async fn serial(addr: SocketAddr) -> Option<u32> {
    let zone = Name::from_ascii(ZONE).unwrap();
    let soa = query(&zone, RecordType::SOA);
    let answer = send_udp_within(addr, &soa, Duration::from_millis(100)).await?;
    let m = Message::from_vec(&answer).ok()?;
    m.answers.iter().find_map(|r| match &r.data {
        RData::SOA(s) => Some(s.serial),
        _ => None,
    })
}

/// Wait (bounded) until the server answers.
async fn ready(addr: SocketAddr, child: &mut Child) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(s) = serial(addr).await {
            return s;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("zonewarden exited at start: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "zonewarden did not answer within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The counter values at a stream's two names, as served.
async fn values(addr: SocketAddr, stream: usize) -> (Option<u64>, Option<u64>) {
    let (a, b) = names(stream);
    let mut out = [None, None];
    for (i, name) in [a, b].iter().enumerate() {
        let answer = send_tcp(addr, &query(name, RecordType::TXT))
            .await
            .expect("a TXT answer");
        let m = Message::from_vec(&answer).unwrap();
        let vals: Vec<u64> = m
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::TXT(t) => t.to_string().trim_matches('"').parse().ok(),
                _ => None,
            })
            .collect();
        assert!(vals.len() <= 1, "{name}: more than one value: {vals:?}");
        out[i] = vals.first().copied();
    }
    (out[0], out[1])
}

fn integrity_check(db: &Path) {
    let conn = rusqlite::Connection::open(db).expect("the database opens");
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok", "integrity_check of {}", db.display());
}

fn verify_zone(addr: SocketAddr, dir: &Path) {
    let out = Command::new("kdig")
        .args(["+tcp", "+nocomments", "+noquestion", "+nostats", "+time=10"])
        .arg("-p")
        .arg(addr.port().to_string())
        .arg(format!("@{}", addr.ip()))
        .args([ZONE, "AXFR"])
        .output()
        .expect("kdig runs (knot-dnsutils)");
    assert!(
        out.status.success(),
        "kdig AXFR failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = dir.join("axfr.zone");
    // The AXFR's closing SOA repeats the first one: drop it.
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with(';'))
        .collect();
    if lines.len() > 1 && lines.last() == lines.first() {
        lines.pop();
    }
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let v = Command::new("ldns-verify-zone")
        .arg(&file)
        .output()
        .expect("ldns-verify-zone runs (ldnsutils)");
    assert!(
        v.status.success(),
        "ldns-verify-zone: {}{}",
        String::from_utf8_lossy(&v.stdout),
        String::from_utf8_lossy(&v.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_updates_survive_sigkill_at_random_moments() {
    let cycles: usize = std::env::var("CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let seed: u64 = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    println!("crash: seed {seed} (CRASH_SEED to replay), {cycles} cycles");
    let started = Instant::now();
    let mut rng = Rng(seed);

    let tmp = tempfile::tempdir().unwrap();
    let dir: PathBuf = tmp.path().to_path_buf();
    let write = |rel: &str, text: &str| {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    write("zones/acme.toml", ZONE_FILE);
    write("acl/mx1.toml", ACL);
    std::fs::create_dir_all(dir.join("data/keys")).unwrap();
    let key = Key::generate(Name::from_ascii("mx1.").unwrap(), Algorithm::HmacSha256).unwrap();
    tsig::write_key_file(&dir.join("data/keys/mx1.key"), &key).unwrap();
    let key = Arc::new(key);
    let db = dir.join("data/zonewarden.sqlite");

    let streams = UDP_STREAMS + TCP_STREAMS;
    // Per stream: the next value to send, the last one acknowledged.
    let next: Arc<Vec<AtomicU64>> = Arc::new((0..streams).map(|_| AtomicU64::new(1)).collect());
    let acked: Arc<Vec<AtomicU64>> = Arc::new((0..streams).map(|_| AtomicU64::new(0)).collect());
    let mut last_serial = 0u32;
    let mut total_acked = 0u64;
    let mut lost = 0u64;

    for cycle in 0..cycles {
        let addr = free_addr();
        let mut child = spawn(&dir, addr);
        let t0 = Instant::now();
        let serial_now = ready(addr, &mut child).await;
        if std::env::var_os("CRASH_VERBOSE").is_some() {
            println!("cycle {cycle}: up in {:?}", t0.elapsed());
        }
        // After a restart: everything acknowledged before is there.
        if cycle > 0 {
            assert!(
                zonewarden::serial::at_least(serial_now, last_serial),
                "cycle {cycle}: serial went back from {last_serial} to {serial_now}"
            );
        }
        for s in 0..streams {
            let (a, b) = values(addr, s).await;
            assert_eq!(a, b, "cycle {cycle}, stream {s}: a half-applied UPDATE");
            let want = acked[s].load(Ordering::SeqCst);
            let have = a.unwrap_or(0);
            if have < want {
                lost += want - have;
            }
            assert!(
                have >= want,
                "cycle {cycle}, stream {s}: acknowledged {want}, found {have}"
            );
        }
        if cycle % 10 == 0 && cycle > 0 {
            verify_zone(addr, &dir);
        }
        last_serial = serial_now;

        // Stream, then kill at a random moment.
        let stop = Arc::new(AtomicBool::new(false));
        let acked_this = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for s in 0..streams {
            let (stop, next, acked, key, acked_this) = (
                stop.clone(),
                next.clone(),
                acked.clone(),
                key.clone(),
                acked_this.clone(),
            );
            tasks.push(tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    let value = next[s].fetch_add(1, Ordering::SeqCst);
                    let msg = update(s, value, &key);
                    let answer = if s < UDP_STREAMS {
                        send_udp(addr, &msg).await
                    } else {
                        send_tcp(addr, &msg).await
                    };
                    match answer.as_deref().and_then(rcode) {
                        Some(ResponseCode::NoError) => {
                            acked[s].fetch_max(value, Ordering::SeqCst);
                            acked_this.fetch_add(1, Ordering::SeqCst);
                        }
                        Some(other) => panic!("stream {s}: UPDATE answered {other}"),
                        None => {} // no answer: not acknowledged
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(rng.between(200, 1000))).await;
        child.kill().expect("SIGKILL");
        child.wait().unwrap();
        stop.store(true, Ordering::SeqCst);
        // Answers still in flight died with the server: not acknowledged.
        for t in &tasks {
            t.abort();
        }
        for t in tasks {
            if let Err(e) = t.await {
                assert!(e.is_cancelled(), "a stream task failed: {e}");
            }
        }
        let n = acked_this.load(Ordering::SeqCst);
        total_acked += n;
        integrity_check(&db);
        if n > 0 {
            // The serial must move past the one seen at this cycle's start.
            last_serial = last_serial.wrapping_add(1);
        }
    }

    // A last start: the final state, the serial, the zone.
    let addr = free_addr();
    let mut child = spawn(&dir, addr);
    let serial_now = ready(addr, &mut child).await;
    assert!(zonewarden::serial::at_least(serial_now, last_serial));
    for s in 0..streams {
        let (a, b) = values(addr, s).await;
        assert_eq!(a, b);
        assert!(a.unwrap_or(0) >= acked[s].load(Ordering::SeqCst));
    }
    verify_zone(addr, &dir);
    child.kill().unwrap();
    child.wait().unwrap();
    println!(
        "crash: {cycles} SIGKILL cycles, {total_acked} acknowledged UPDATEs, {lost} lost, in {:?}",
        started.elapsed()
    );
    assert_eq!(lost, 0);
}
