//! The client side of `scripts/rrl-figures` (issue 11's figures): a
//! bounded flood from one source address at a running server, measured.
//!
//! `rrl_figures amplify SERVER FROM QPS SECONDS`: queries of the
//! amplifying kinds, all with DO set (DNSKEY, ANY and RRSIG at the apex,
//! TXT at a random name: NXDOMAIN), in rotation, paced at QPS for SECONDS
//! from FROM (as a spoofed-source flood would arrive: one source, nobody
//! retrying over TCP). Prints the bytes sent and received, and received
//! per sent byte: what the server reflects at the victim per attack byte.
//!
//! `rrl_figures updates SERVER COUNT`: COUNT UPDATEs signed with a key the
//! server does not know, one at a time (each answered or timed out after
//! 2 s). The script measures the log's growth around it.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use tokio::net::UdpSocket;

const ZONE: &str = "_acme.example.org.";

fn query(id: u16, qname: &str, rtype: RecordType) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(Name::from_ascii(qname).unwrap(), rtype));
    let mut e = Edns::new();
    e.set_max_payload(4096);
    e.set_dnssec_ok(true);
    m.set_edns(e);
    m.to_vec().unwrap()
}

async fn amplify(server: SocketAddr, from: &str, qps: u64, seconds: u64) {
    let sock = UdpSocket::bind(format!("{from}:0")).await.unwrap();
    let total = qps * seconds;
    let (mut sent, mut sent_bytes, mut received, mut received_bytes, mut truncated) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut by_kind = [(0u64, 0u64); 4];
    let kinds = [
        ("DNSKEY", RecordType::DNSKEY),
        ("ANY", RecordType::ANY),
        ("RRSIG", RecordType::RRSIG),
        ("NXDOMAIN (TXT)", RecordType::TXT),
    ];
    let start = Instant::now();
    let mut buf = vec![0u8; 65535];
    let mut drain = |sock: &UdpSocket,
                     received: &mut u64,
                     received_bytes: &mut u64,
                     truncated: &mut u64,
                     by_kind: &mut [(u64, u64); 4]| {
        while let Ok((n, _)) = sock.try_recv_from(&mut buf) {
            *received += 1;
            *received_bytes += n as u64;
            if let Ok(m) = Message::from_vec(&buf[..n]) {
                if m.metadata.truncation {
                    *truncated += 1;
                }
                by_kind[(m.metadata.id % 4) as usize].1 += n as u64;
            }
        }
    };
    for i in 0..total {
        // Pace: packet i leaves at i / qps seconds.
        let due = Duration::from_secs_f64(i as f64 / qps as f64);
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            tokio::time::sleep(wait).await;
        }
        let k = (i % 4) as usize;
        let qname = if k == 3 {
            format!("nx{i}.{ZONE}")
        } else {
            ZONE.to_string()
        };
        // The id carries the kind (id % 4), so answers are told apart.
        let id = ((i as u16) & !3) | k as u16;
        let q = query(id, &qname, kinds[k].1);
        sock.send_to(&q, server).await.unwrap();
        sent += 1;
        sent_bytes += q.len() as u64;
        by_kind[k].0 += q.len() as u64;
        drain(
            &sock,
            &mut received,
            &mut received_bytes,
            &mut truncated,
            &mut by_kind,
        );
    }
    let end = Instant::now() + Duration::from_secs(1);
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(20)).await;
        drain(
            &sock,
            &mut received,
            &mut received_bytes,
            &mut truncated,
            &mut by_kind,
        );
    }
    println!(
        "sent {sent} queries ({sent_bytes} bytes) in {:.1} s; received {received} answers ({received_bytes} bytes, {truncated} truncated); reflected bytes per attack byte: {:.2}",
        start.elapsed().as_secs_f64() - 1.0,
        received_bytes as f64 / sent_bytes as f64
    );
    for (k, (name, _)) in kinds.iter().enumerate() {
        let (s, r) = by_kind[k];
        println!("  {name:<15} {:.2}", r as f64 / s.max(1) as f64);
    }
}

async fn updates(server: SocketAddr, count: u64) {
    let key = zonewarden::tsig::Key::generate(
        Name::from_ascii("stranger.").unwrap(),
        zonewarden::tsig::Algorithm::HmacSha256,
    )
    .unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let owner = Name::from_ascii(format!("_acme-challenge.mx1.{ZONE}")).unwrap();
    let mut buf = vec![0u8; 65535];
    let (mut answered, mut sent_bytes) = (0u64, 0u64);
    for i in 0..count {
        let mut m = Message::new(i as u16, MessageType::Query, OpCode::Update);
        let mut q = Query::query(Name::from_ascii(ZONE).unwrap(), RecordType::SOA);
        q.set_query_class(DNSClass::IN);
        m.add_query(q);
        let mut rr = Record::from_rdata(
            owner.clone(),
            60,
            RData::try_from_str(RecordType::TXT, &format!("\"x{i}\"")).unwrap(),
        );
        rr.dns_class = DNSClass::IN;
        m.insert_authorities(vec![rr]);
        let unsigned = m.to_vec().unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let (tsig, _) = zonewarden::tsig::sign_request(&unsigned, &key, now, 300);
        m.set_signature(Box::new(tsig));
        let bytes = m.to_vec().unwrap();
        sent_bytes += bytes.len() as u64;
        sock.send_to(&bytes, server).await.unwrap();
        if let Ok(Ok(_)) =
            tokio::time::timeout(Duration::from_secs(2), sock.recv_from(&mut buf)).await
        {
            answered += 1;
        }
    }
    println!("sent {count} unknown-key UPDATEs ({sent_bytes} bytes); {answered} answered");
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: rrl_figures amplify SERVER FROM QPS SECONDS | updates SERVER COUNT";
    match args.first().map(String::as_str) {
        Some("amplify") if args.len() == 5 => {
            let qps: u64 = args[3].parse().expect(usage);
            let seconds: u64 = args[4].parse().expect(usage);
            assert!(qps * seconds <= 1_000_000, "bounded: at most 1e6 queries");
            amplify(args[1].parse().expect(usage), &args[2], qps, seconds).await
        }
        Some("updates") if args.len() == 3 => {
            let count: u64 = args[2].parse().expect(usage);
            assert!(count <= 100_000, "bounded: at most 1e5 updates");
            updates(args[1].parse().expect(usage), count).await
        }
        _ => {
            eprintln!("{usage}");
            std::process::exit(2)
        }
    }
}
