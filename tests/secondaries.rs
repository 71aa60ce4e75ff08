//! Zone transfers, NOTIFY and propagation with real secondaries: Knot DNS
//! (knotd) and BIND (named), started on loopback by each test.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::free_port;
use common::peers::{Peer, bind_secondary, knot_secondary, nsd_secondary};
use common::secondary::{Recorder, recorder};
use common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use zonewarden::client::wait::{Goal, Target, wait};
use zonewarden::tsig::{self, Algorithm, Key};

fn xfr_key() -> Key {
    Key::generate(name("xfr."), Algorithm::HmacSha256).unwrap()
}

fn with_secondaries(zone_file: &str, secondaries: &[(&str, u16)]) -> String {
    let mut z = zone_file.to_string();
    for (label, port) in secondaries {
        z.push_str(&format!(
            "\n[[secondary]]\naddress = \"127.0.0.1:{port}\"\nkey = \"xfr\"\nname = \"{label}\"\n"
        ));
    }
    z
}

/// Start zonewarden on a chosen port with `zone_file` and the transfer key.
async fn primary(port: u16, zone_file: String, key: &Key) -> Harness {
    let key = key.clone();
    Harness::start_with(move |c| {
        c.listen = vec![format!("127.0.0.1:{port}").parse().unwrap()];
        write(&c.zones_dir.join("acme.toml"), &zone_file);
        tsig::write_key_file(&c.keys_dir.join("xfr.key"), &key).unwrap();
    })
    .await
}

fn target(label: &str, port: u16) -> Target {
    Target {
        label: label.into(),
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    }
}

async fn wait_or_dump(targets: &[Target], goal: Goal, secs: u64, peers: &[&Peer]) -> Duration {
    match wait(targets, &name(ZONE), &goal, Duration::from_secs(secs)).await {
        Ok(took) => took,
        Err(laggards) => {
            let logs: Vec<String> = peers
                .iter()
                .map(|p| format!("--- {} log:\n{}", p.name, p.log()))
                .collect();
            panic!(
                "not propagated within {secs} s: {laggards:?}\n{}",
                logs.join("\n")
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn knot_bind_and_nsd_follow_every_update_by_notify_and_ixfr() {
    let key = xfr_key();
    let (p, kp, bp, np) = (free_port(), free_port(), free_port(), free_port());
    let secondaries = [("knot", kp), ("bind", bp), ("nsd", np)];
    let h = primary(p, with_secondaries(ZONE_FILE, &secondaries), &key).await;
    let knot = knot_secondary(ZONE, kp, p, &key);
    let bind = bind_secondary(ZONE, bp, p, &key);
    let nsd = nsd_secondary(ZONE, np, p, &key);
    let targets = [
        target("primary", p),
        target("knot", kp),
        target("bind", bp),
        target("nsd", np),
    ];
    let peers = [&knot, &bind, &nsd];
    wait_or_dump(&targets, Goal::Serial(h.serial(ZONE).await), 30, &peers).await;

    let n = zname("_acme-challenge.mx1");
    for round in 0..3 {
        let value = format!("token-{round}");
        assert_eq!(
            h.update_rcode(
                "mx1",
                update_msg(
                    ZONE,
                    vec![],
                    vec![
                        del_rrset(&n, RecordType::TXT),
                        add(&n, 60, RecordType::TXT, &value)
                    ]
                )
            )
            .await,
            ResponseCode::NoError
        );
        wait_or_dump(
            &targets,
            Goal::Txt {
                name: n.clone(),
                value,
            },
            15,
            &peers,
        )
        .await;
    }
    assert_eq!(
        h.update_rcode(
            "mx1",
            update_msg(ZONE, vec![], vec![del_rrset(&n, RecordType::TXT)])
        )
        .await,
        ResponseCode::NoError
    );
    let serial = h.serial(ZONE).await;
    wait_or_dump(&targets, Goal::Serial(serial), 15, &peers).await;
    for port in [kp, bp, np] {
        let q = query_msg(&n.to_string(), RecordType::TXT, false);
        let m = Message::from_vec(
            &udp_exchange(
                SocketAddr::from(([127, 0, 0, 1], port)),
                &q.to_vec().unwrap(),
            )
            .await
            .unwrap(),
        )
        .unwrap();
        assert_eq!(
            m.metadata.response_code,
            ResponseCode::NXDomain,
            "the deleted record is gone on port {port}"
        );
    }
    let stats = &h.server().transfers;
    let incremental = stats
        .ixfr_incremental
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        incremental >= 2,
        "updates travelled by IXFR, not by whole transfers: {incremental}"
    );
    // The server's own view: every secondary acknowledged and serves the serial.
    let mut ok = false;
    for _ in 0..50 {
        let st = h.server().zones.all()[0].propagation.statuses();
        if st
            .iter()
            .all(|s| s.serial == Some(serial) && s.notified == Some(serial))
        {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        ok,
        "propagation state: {:?}",
        h.server().zones.all()[0].propagation.statuses()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zone_over_64_kib_transfers_in_signed_messages() {
    require("kdig", "knot-dnsutils");
    let key = xfr_key();
    let (p, kp) = (free_port(), free_port());
    let zone_file = with_secondaries(
        &ZONE_FILE.replace("records-per-zone = 200", "records-per-zone = 5000"),
        &[("knot", kp)],
    );
    let h = primary(p, zone_file, &key).await;
    let tlsa = "3 1 1 0c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6";
    for batch in 0..12 {
        let rrs = (0..100)
            .map(|i| {
                add(
                    &zname(&format!("_443._tcp.host{}", batch * 100 + i)),
                    300,
                    RecordType::TLSA,
                    tlsa,
                )
            })
            .collect();
        assert_eq!(
            h.update_rcode("ops", update_msg(ZONE, vec![], rrs)).await,
            ResponseCode::NoError
        );
    }
    let expected = h.server().zones.all()[0].snapshot().all_records().len() + 1;
    // kdig checks the TSIG of every message of the transfer.
    let y = format!("hmac-sha256:xfr.:{}", key.secret_base64());
    let out = std::process::Command::new("timeout")
        .args([
            "30",
            "kdig",
            "@127.0.0.1",
            "-p",
            &p.to_string(),
            "-y",
            &y,
            "AXFR",
            ZONE,
        ])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    let summary = text
        .lines()
        .find(|l| l.contains("Received"))
        .unwrap_or_default()
        .to_string();
    assert!(
        summary.contains(&format!("{expected} records")),
        "{summary}"
    );
    let messages: usize = summary
        .split('(')
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(messages >= 2, "several messages: {summary}");
    let bytes: usize = summary
        .split_whitespace()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(bytes > 65_536, "over 64 KiB: {summary}");
    assert!(
        !text.contains("WARNING"),
        "kdig verified every message's TSIG: {text}"
    );
    // And a real secondary takes it.
    let knot = knot_secondary(ZONE, kp, p, &key);
    wait_or_dump(
        &[target("knot", kp)],
        Goal::Serial(h.serial(ZONE).await),
        30,
        &[&knot],
    )
    .await;
    let q = query_msg(
        "_443._tcp.host1199._acme.example.org.",
        RecordType::TLSA,
        true,
    );
    let m = Message::from_vec(
        &udp_exchange(SocketAddr::from(([127, 0, 0, 1], kp)), &q.to_vec().unwrap())
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(
        matches!(m.answers.first().map(|r| &r.data), Some(RData::TLSA(_))),
        "{m:?}"
    );
}

#[tokio::test]
async fn transfers_are_for_transfer_keys_and_networks_only() {
    let key = xfr_key();
    let p = free_port();
    let h = primary(
        p,
        format!("{ZONE_FILE}\n[transfer]\nkeys = [\"xfr\"]\n"),
        &key,
    )
    .await;
    let axfr = || query_msg(ZONE, RecordType::AXFR, false);
    // unsigned, and not from an allowed network
    let m = Message::from_vec(&h.tcp(&axfr().to_vec().unwrap()).await).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    // a machine key is not a transfer key
    let m = Message::from_vec(&h.tcp(&sign(axfr(), &h.key("mx1"), h.clock_now())).await).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    // AXFR over UDP is not served
    let m = Message::from_vec(&h.udp(&sign(axfr(), &key, h.clock_now())).await.unwrap()).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
    // An up-to-date IXFR over UDP gets the SOA alone (RFC 1995 §4).
    let serial = h.serial(ZONE).await;
    let mut ixfr = query_msg(ZONE, RecordType::IXFR, false);
    ixfr.add_authority(
        h.server().zones.all()[0]
            .snapshot()
            .spec
            .soa
            .record(&name(ZONE), serial),
    );
    let m = Message::from_vec(&h.udp(&sign(ixfr, &key, h.clock_now())).await.unwrap()).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(m.answers.len(), 1);
    assert!(m.signature().is_some());
    // The transfer key over TCP: the whole zone, SOA first and last.
    let m = Message::from_vec(&h.tcp(&sign(axfr(), &key, h.clock_now())).await).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(m.answers.first().unwrap().record_type(), RecordType::SOA);
    assert_eq!(m.answers.last().unwrap().record_type(), RecordType::SOA);
    // A network listed in [transfer] needs no key.
    let open = format!("{ZONE_FILE}\n[transfer]\nnetworks = [\"127.0.0.0/8\"]\n");
    let h2 = primary(free_port(), open, &key).await;
    let m = Message::from_vec(&h2.tcp(&axfr().to_vec().unwrap()).await).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_secondary_never_blocks_updates_is_reported_and_catches_up() {
    let key = xfr_key();
    let (p, dead) = (free_port(), free_port());
    let h = primary(p, with_secondaries(ZONE_FILE, &[("late-knot", dead)]), &key).await;
    let n = zname("_acme-challenge.mx1");
    for i in 0..3 {
        assert_eq!(
            h.update_rcode(
                "mx1",
                update_msg(
                    ZONE,
                    vec![],
                    vec![add(&n, 60, RecordType::TXT, &format!("v{i}"))]
                )
            )
            .await,
            ResponseCode::NoError
        );
    }
    let goal = Goal::Txt {
        name: n.clone(),
        value: "v2".into(),
    };
    let targets = [target("primary", p), target("late-knot", dead)];
    let laggards = wait(&targets, &name(ZONE), &goal, Duration::from_secs(2))
        .await
        .unwrap_err();
    assert_eq!(laggards.len(), 1, "{laggards:?}");
    assert_eq!(laggards[0].0, "late-knot");
    // The CLI path reports the same, with the laggard named.
    let (report, ok) = zonewarden::client::cli::wait(
        &h.config,
        Some(ZONE),
        None,
        Some("_acme-challenge.mx1"),
        Some("v2"),
        Duration::from_secs(1),
    )
    .await;
    assert!(!ok && report.contains("late-knot"), "{report}");
    let status = h.server().zones.all()[0].propagation.statuses();
    assert!(status[0].last_error.is_some(), "{status:?}");
    // It comes up and catches up.
    let knot = knot_secondary(ZONE, dead, p, &key);
    wait_or_dump(&targets, goal, 60, &[&knot]).await;
}

#[tokio::test]
async fn incoming_notify_is_acknowledged_for_our_zones_only() {
    let h = Harness::start().await;
    let notify = |zone: &str| {
        let mut m = query_msg(zone, RecordType::SOA, false);
        m.metadata.op_code = hickory_proto::op::OpCode::Notify;
        m.metadata.authoritative = true;
        m
    };
    let m = Message::from_vec(&h.udp(&notify(ZONE).to_vec().unwrap()).await.unwrap()).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(m.metadata.op_code, hickory_proto::op::OpCode::Notify);
    let m = Message::from_vec(
        &h.udp(&notify("example.com.").to_vec().unwrap())
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NotAuth);
}

/// Wait (at most 15 s) until `ok` holds for the serials notified so far.
async fn notified_until(r: &Recorder, what: &str, ok: impl Fn(&[u32]) -> bool) -> Vec<u32> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let seen = r.notified.lock().unwrap().clone();
        if ok(&seen) {
            return seen;
        }
        assert!(Instant::now() < deadline, "{what}: notified {seen:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A zone with one stand-in secondary (`notify` its `[[secondary]]` line,
/// if any) that has served the serial at start, then takes HOLD_MAX /
/// HOLD_FACTOR to "transfer" a first change, so that a paced follower then
/// holds newer serials back for HOLD_MAX. From here on the secondary
/// serves a serial only when the test says. Returns the harness, the
/// secondary and the UPDATE to send for change `i` (each replaces the TXT
/// of mx1, which may hold 3 at most, as lego does).
async fn after_a_slow_transfer(notify: &str) -> (Harness, Recorder, impl Fn(usize) -> Message) {
    let fake = recorder(true, 0).await;
    let zone_file = format!(
        "{ZONE_FILE}\n[[secondary]]\naddress = \"{}\"\nname = \"fake\"\n{notify}",
        fake.addr
    );
    let h = Harness::start_with(move |c| write(&c.zones_dir.join("acme.toml"), &zone_file)).await;
    let s0 = h.serial(ZONE).await;
    notified_until(&fake, "the zone's serial at start", |n| n.contains(&s0)).await;
    let n = zname("_acme-challenge.mx1");
    let update = move |i: usize| {
        let changes = vec![
            del_rrset(&n, RecordType::TXT),
            add(&n, 60, RecordType::TXT, &format!("v{i}")),
        ];
        update_msg(ZONE, vec![], changes)
    };
    fake.follows.store(false, Ordering::SeqCst);
    assert_eq!(
        h.update_rcode("mx1", update(100)).await,
        ResponseCode::NoError
    );
    let s1 = h.serial(ZONE).await;
    notified_until(&fake, "the first change", |n| n.last() == Some(&s1)).await;
    let slow = zonewarden::notify::HOLD_MAX / zonewarden::notify::HOLD_FACTOR;
    tokio::time::sleep(slow + Duration::from_millis(100)).await;
    fake.serves.store(s1, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(15);
    while h.server().zones.all()[0].propagation.statuses()[0].serial != Some(s1) {
        assert!(
            Instant::now() < deadline,
            "the follower never saw {s1} served"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (h, fake, update)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_waits_for_the_transfer_under_way_then_sends_the_newest_serial() {
    let (h, fake, update) = after_a_slow_transfer("").await;
    let before = fake.notified.lock().unwrap().len();
    let started = Instant::now();
    let mut serials = Vec::new();
    for i in 0..10 {
        assert_eq!(
            h.update_rcode("mx1", update(i)).await,
            ResponseCode::NoError
        );
        serials.push(h.serial(ZONE).await);
        // Time for a follower that notified every serial to do so.
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let last = *serials.last().unwrap();
    // The first change was notified (at once: nothing was under way)...
    let seen = notified_until(&fake, "the first of ten changes", |n| n.len() > before).await;
    assert_eq!(seen[before], serials[0], "{seen:?}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    // ... and no other while the secondary has not served it, except one
    // for the newest serial each time the hold (HOLD_MAX here) has passed.
    let held = fake.notified.lock().unwrap()[before..].to_vec();
    let holds = (started.elapsed().as_millis() / zonewarden::notify::HOLD_MAX.as_millis()) as usize;
    assert!(
        held.len() <= 1 + holds,
        "{} NOTIFYs for {} changes while the first transfer was under way: {held:?}",
        held.len(),
        serials.len()
    );
    assert!(
        held.iter().all(|s| serials.contains(s)),
        "{held:?} {serials:?}"
    );
    // The transfer of the first change ends: the newest serial is notified,
    // whatever came in between.
    fake.serves.store(serials[0], Ordering::SeqCst);
    fake.follows.store(true, Ordering::SeqCst);
    let seen = notified_until(&fake, "the newest serial", |n| n.last() == Some(&last)).await;
    assert!(
        seen[before..].iter().all(|s| serials.contains(s)),
        "{seen:?} {serials:?}"
    );
    // Once it serves the newest, nothing more is sent.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(fake.notified.lock().unwrap().last(), Some(&last));
    assert_eq!(fake.serves.load(Ordering::SeqCst), last);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_every_change_tells_a_secondary_of_newer_serials_while_it_transfers() {
    let (h, fake, update) = after_a_slow_transfer("notify = \"every-change\"\n").await;
    let s1 = h.serial(ZONE).await;
    // Five changes, 100 ms apart, while the secondary serves none of them
    // (its transfer of the first is "under way" the whole time): each one
    // is notified, not only the newest once the hold has passed.
    let mut serials = Vec::new();
    for i in 0..5 {
        assert_eq!(
            h.update_rcode("mx1", update(i)).await,
            ResponseCode::NoError
        );
        serials.push(h.serial(ZONE).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let last = *serials.last().unwrap();
    let seen = notified_until(&fake, "the newest serial", |n| n.last() == Some(&last)).await;
    assert!(
        serials.iter().all(|s| seen.contains(s)),
        "every change notified while transferring: {seen:?} {serials:?}"
    );
    assert_eq!(fake.serves.load(Ordering::SeqCst), s1);
}
