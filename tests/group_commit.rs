//! Group commit over real sockets: UPDATEs from several clients that queue
//! up behind a commit are applied in order, each checked against the state
//! the one before left, and committed together; refused ones in the middle
//! spoil nothing; the zone, the journal (an IXFR by kdig from a serial in
//! the middle, and the journal entry of each UPDATE) and the audit log agree, and a restart keeps every
//! acknowledged change.
//!
//! To make the queue form without any timing, the test holds SQLite's
//! write lock from its own connection (as another writer would) while it
//! sends the UPDATEs one by one, each after the server counts the one
//! before it as waiting (`zonewarden_updates_waiting`); then it lets go.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Record, RecordType};
use tokio::task::JoinHandle;

use std::sync::atomic::Ordering;

/// The standard zone, with room for more names and transfers open to
/// loopback (so kdig asks for IXFR without a key).
async fn harness() -> Harness {
    Harness::start_with(|c| {
        let zone = ZONE_FILE
            .replace("records-per-zone = 200", "records-per-zone = 2000")
            .replace("records-per-name = 8", "records-per-name = 32")
            + "\n[transfer]\nnetworks = [\"127.0.0.0/8\"]\n";
        write(&c.zones_dir.join("acme.toml"), &zone);
    })
    .await
}

/// The commit count (the commit-latency histogram's) and the changes
/// those commits held.
fn commits(h: &Harness) -> (u64, u64) {
    let m = &h.server().metrics;
    let text = zonewarden::metrics::encode(&m.registry()).unwrap();
    let count = text
        .lines()
        .find_map(|l| l.strip_prefix("zonewarden_sqlite_commit_duration_seconds_count "))
        .map_or(0, |v| v.trim().parse().unwrap());
    (count, m.committed_changes.load(Ordering::Relaxed))
}

fn waiting(h: &Harness) -> u64 {
    h.server().metrics.updates_waiting.load(Ordering::Relaxed)
}

/// Wait (at most 20 s) until `n` UPDATEs are in the writer.
async fn until_waiting(h: &Harness, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while waiting(h) < n {
        assert!(
            Instant::now() < deadline,
            "{} of {n} UPDATEs reached the writer",
            waiting(h)
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Send a signed UPDATE on its own socket (TCP or UDP) in the background.
fn send(h: &Harness, machine: &str, msg: Message, udp: bool) -> JoinHandle<ResponseCode> {
    let bytes = sign(msg, &h.key(machine), h.clock_now());
    let addr = h.addr;
    tokio::spawn(async move {
        let answer = if udp {
            udp_exchange(addr, &bytes)
                .await
                .expect("an answer over UDP")
        } else {
            tcp_exchange(addr, &bytes).await
        };
        Message::from_vec(&answer).unwrap().metadata.response_code
    })
}

/// One UPDATE of the test: who sends it, what, and the answer expected;
/// `value` is the TXT it adds when it is applied.
struct Case {
    machine: &'static str,
    owner: &'static str,
    prereqs: Vec<Record>,
    value: String,
    expect: ResponseCode,
}

fn case(machine: &'static str, owner: &'static str, value: &str, expect: ResponseCode) -> Case {
    Case {
        machine,
        owner,
        prereqs: vec![],
        value: value.to_string(),
        expect,
    }
}

/// The TXT strings served at `owner` (relative to the zone), sorted.
async fn served(h: &Harness, owner: &str) -> Vec<String> {
    h.txt(&zname(owner).to_string()).await
}

/// The TXT values (unquoted) in kdig's output of a transfer.
fn kdig_txt_values(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.starts_with(';'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 5 && f[3] == "TXT").then(|| f[4..].join(" ").trim_matches('"').to_string())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn updates_queued_behind_a_commit_share_one_and_refusals_spoil_nothing() {
    require("kdig", "knot-dnsutils");
    let mut h = harness().await;
    let serial0 = h.serial(ZONE).await;
    let (commits0, changes0) = commits(&h);

    let dep = "_acme-challenge.dep";
    let mut cases = Vec::new();
    for i in 0..6 {
        cases.push(case(
            "ops",
            "_acme-challenge.g",
            &format!("g{i}"),
            ResponseCode::NoError,
        ));
    }
    // Outside mx1's ACL (www1's name): refused in the middle of the batch.
    cases.push(case(
        "mx1",
        "_acme-challenge.www1",
        "not-mine",
        ResponseCode::Refused,
    ));
    cases.push(case(
        "mx1",
        "_acme-challenge.mx1",
        "mx1-own",
        ResponseCode::NoError,
    ));
    // A prerequisite that fails: the name is not in use.
    let mut c = case("ops", "_acme-challenge.h", "never", ResponseCode::NXDomain);
    c.prereqs = vec![pre_in_use(&zname("nowhere"))];
    cases.push(c);
    // A prerequisite that holds only after the UPDATE before it.
    cases.push(case("ops", dep, "one", ResponseCode::NoError));
    let mut c = case("ops", dep, "two", ResponseCode::NoError);
    c.prereqs = vec![pre_value(&zname(dep), RecordType::TXT, "one")];
    cases.push(c);
    // ... and one that saw "two" arrive: the RRset is no longer just "one".
    let mut c = case("ops", dep, "three", ResponseCode::NXRRSet);
    c.prereqs = vec![pre_value(&zname(dep), RecordType::TXT, "one")];
    cases.push(c);
    cases.push(case(
        "www1",
        "_acme-challenge.www1",
        "www1-own",
        ResponseCode::NoError,
    ));
    for i in 6..12 {
        cases.push(case(
            "ops",
            "_acme-challenge.g",
            &format!("g{i}"),
            ResponseCode::NoError,
        ));
    }
    // Over mx1's max-rrset of 3 at its name: refused by the limit.
    cases.push(case(
        "mx1",
        "_acme-challenge.mx1",
        "mx1-b",
        ResponseCode::NoError,
    ));
    cases.push(case(
        "mx1",
        "_acme-challenge.mx1",
        "mx1-c",
        ResponseCode::NoError,
    ));
    cases.push(case(
        "mx1",
        "_acme-challenge.mx1",
        "mx1-d",
        ResponseCode::Refused,
    ));
    cases.push(case(
        "ops",
        "_acme-challenge.last",
        "last",
        ResponseCode::NoError,
    ));
    assert!(cases.len() >= 16);

    // Another writer holds the database: the server's commit waits for it.
    let db = rusqlite::Connection::open(&h.config.database).unwrap();
    db.execute_batch("BEGIN IMMEDIATE").unwrap();
    let mut answers = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let owner = zname(c.owner);
        let msg = update_msg(
            ZONE,
            c.prereqs.clone(),
            vec![add(&owner, 60, RecordType::TXT, &c.value)],
        );
        answers.push(send(&h, c.machine, msg, i % 2 == 1));
        until_waiting(&h, i as u64 + 1).await;
    }
    db.execute_batch("ROLLBACK").unwrap();
    for (c, a) in cases.iter().zip(answers) {
        assert_eq!(a.await.unwrap(), c.expect, "{} {}", c.machine, c.value);
    }

    // Every applied UPDATE has its own serial, in the order sent.
    let applied: Vec<&Case> = cases
        .iter()
        .filter(|c| c.expect == ResponseCode::NoError)
        .collect();
    let serial1 = h.serial(ZONE).await;
    assert_eq!(serial1, serial0 + applied.len() as u32);
    // At most two commits for them all: the first leader's (it took what
    // had queued when it started) and the one after it, which took the rest.
    let (commits1, changes1) = commits(&h);
    assert_eq!(changes1 - changes0, applied.len() as u64);
    assert!(
        commits1 - commits0 <= 2,
        "{} commits for {} changes",
        commits1 - commits0,
        applied.len()
    );
    assert_eq!(waiting(&h), 0);

    // The zone serves each applied value, and no refused one.
    assert_eq!(served(&h, dep).await, ["one", "two"]);
    assert_eq!(
        served(&h, "_acme-challenge.mx1").await,
        ["mx1-b", "mx1-c", "mx1-own"]
    );
    assert_eq!(served(&h, "_acme-challenge.www1").await, ["www1-own"]);
    assert!(served(&h, "_acme-challenge.h").await.is_empty());
    let g: BTreeSet<String> = served(&h, "_acme-challenge.g").await.into_iter().collect();
    assert_eq!(g, (0..12).map(|i| format!("g{i}")).collect());

    // IXFR from a serial in the middle of the batch: exactly the changes
    // after it (kdig), one diff per UPDATE.
    let mid = 7;
    let out = std::process::Command::new("timeout")
        .args([
            "20",
            "kdig",
            "@127.0.0.1",
            "-p",
            &h.addr.port().to_string(),
            "+tcp",
            &format!("IXFR={}", serial0 + mid),
            ZONE,
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // One condensed difference sequence (RFC 1995 §4): old SOA, new SOA.
    let soas: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with(';') && l.split_whitespace().nth(3) == Some("SOA"))
        .collect();
    assert_eq!(soas.len(), 4, "{text}");
    let serial_of = |l: &str| l.split_whitespace().nth(6).unwrap().parse::<u32>().unwrap();
    assert_eq!(serial_of(soas[1]), serial0 + mid, "{text}");
    assert_eq!(serial_of(soas[2]), serial1, "{text}");
    let mut got = kdig_txt_values(&text);
    got.sort();
    let mut want: Vec<String> = applied[mid as usize..]
        .iter()
        .map(|c| c.value.clone())
        .collect();
    want.sort();
    assert_eq!(got, want, "{text}");
    // Behind it, the journal: one entry per UPDATE, each its own change.
    let journal = h.server().zones.all()[0]
        .journal_between(serial0 + mid, serial1)
        .unwrap()
        .expect("the journal reaches back into the batch");
    assert_eq!(journal.len(), applied.len() - mid as usize);
    for (e, c) in journal.iter().zip(&applied[mid as usize..]) {
        let txt: Vec<String> = e
            .added
            .iter()
            .filter(|r| r.record_type() == RecordType::TXT)
            .map(|r| r.data.to_string())
            .collect();
        assert_eq!(
            txt,
            std::slice::from_ref(&c.value),
            "{} -> {}",
            e.serial_from,
            e.serial_to
        );
        assert_eq!(e.serial_to, e.serial_from + 1);
    }

    // The audit log: one row per applied UPDATE, newest first, each
    // naming its value and its machine.
    let rows = h
        .server()
        .zones
        .audit_tail(&name(ZONE), applied.len())
        .unwrap();
    for (row, c) in rows.iter().zip(applied.iter().rev()) {
        assert!(row.detail.ends_with(&format!("TXT {}", c.value)), "{row:?}");
        assert_eq!(row.machine.as_deref(), Some(c.machine));
    }

    // A restart keeps every acknowledged UPDATE.
    h.restart().await;
    assert_eq!(h.serial(ZONE).await, serial1);
    assert_eq!(served(&h, dep).await, ["one", "two"]);
    let g: BTreeSet<String> = served(&h, "_acme-challenge.g").await.into_iter().collect();
    assert_eq!(g.len(), 12);
    assert_eq!(served(&h, "_acme-challenge.last").await, ["last"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_clients_at_once_each_get_their_own_serial_and_lose_nothing() {
    let mut h = harness().await;
    let serial0 = h.serial(ZONE).await;
    let (clients, each) = (8, 6);
    // Eight clients at once (TCP and UDP), each sending its UPDATEs one
    // after the other: the server takes them as they come, in any batches.
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (key, addr, now) = (h.key("ops"), h.addr, h.clock_now());
        tasks.push(tokio::spawn(async move {
            for i in 0..each {
                let owner = zname(&format!("_acme-challenge.c{c}"));
                let msg = update_msg(
                    ZONE,
                    vec![],
                    vec![add(&owner, 60, RecordType::TXT, &format!("v{i}"))],
                );
                let bytes = sign(msg, &key, now);
                let answer = if c % 2 == 0 {
                    udp_exchange(addr, &bytes)
                        .await
                        .expect("an answer over UDP")
                } else {
                    tcp_exchange(addr, &bytes).await
                };
                let rcode = Message::from_vec(&answer).unwrap().metadata.response_code;
                assert_eq!(rcode, ResponseCode::NoError, "client {c} UPDATE {i}");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let serial1 = h.serial(ZONE).await;
    assert_eq!(serial1, serial0 + (clients * each) as u32);
    // The journal is continuous from before them to after.
    let journal = h.server().zones.all()[0]
        .journal_between(serial0, serial1)
        .unwrap()
        .expect("the journal covers every serial");
    assert_eq!(journal.len(), clients * each);
    h.restart().await;
    assert_eq!(h.serial(ZONE).await, serial1);
    for c in 0..clients {
        let got = h
            .txt(&zname(&format!("_acme-challenge.c{c}")).to_string())
            .await;
        assert_eq!(got.len(), each, "client {c}: {got:?}");
    }
}
