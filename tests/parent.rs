//! The zone seen through its parent, with real peers: a BIND parent
//! (`example.org.`, signed by BIND) holding zonewarden's DS, a Knot
//! secondary of it, and a validating unbound whose only trust anchor is the
//! parent's key (tests/common/parent.rs). What issue 13's rollover tests
//! stand on: the chain of trust really runs through the parent's DS, the
//! parent's DS set can be changed and read at each of its nameservers
//! (`zonewarden::dnssec::parent`), and one nameserver can be made to lag.

mod common;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use common::parent::{Parent, ValidatingLoop};
use common::unbound::{ds_line, zone_key};
use common::*;
use hickory_proto::rr::RecordType;
use zonewarden::dnssec::ZoneKey;
use zonewarden::dnssec::parent::{ParentError, ds_at, ds_matches, parent_nameservers};

const T: Duration = Duration::from_secs(3);

/// A key zonewarden does not have, for a DS the child cannot match.
fn stranger(dir: &std::path::Path) -> ZoneKey {
    ZoneKey::load_or_create(
        dir,
        &name(ZONE),
        zonewarden::dnssec::KeyAlgorithm::EcdsaP256Sha256,
    )
    .unwrap()
    .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_child_validates_through_the_parents_ds_and_not_without_it() {
    common::parent::peers_installed();
    let mut h = Harness::start().await;
    let key = zone_key(&h);
    let parent = Parent::start_two(ZONE, h.addr.port(), &[ds_line(&key)]).await;
    let u = parent.unbound(h.addr, 5).await;
    u.validated(ZONE, "SOA", "NOERROR").await;

    let questions = vec![
        (zname(""), RecordType::SOA),
        (zname(""), RecordType::DNSKEY),
        (zname("static"), RecordType::TXT),
        (zname("_acme-challenge.mx1"), RecordType::TXT),
        (zname("_25._tcp.mx1"), RecordType::TLSA),
        (zname("nothing-here"), RecordType::A),
    ];
    let watch = ValidatingLoop::start(u.addr(), questions, Duration::from_secs(120));

    // An UPDATE: a challenge and a TLSA record appear, signed.
    let tlsa = "3 1 1 0C72AC70B745AC19998811B131D662C9AC69DBDBE7CB23E5B514B56664C5D3D6";
    let upd = update_msg(
        ZONE,
        vec![],
        vec![
            add(
                &zname("_acme-challenge.mx1"),
                60,
                RecordType::TXT,
                "\"token-1\"",
            ),
            add(&zname("_25._tcp.mx1"), 60, RecordType::TLSA, tlsa),
        ],
    );
    assert_eq!(
        h.update_rcode("mx1", upd).await,
        hickory_proto::op::ResponseCode::NoError
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !u
        .dig(&format!("_acme-challenge.mx1.{ZONE}"), "TXT")
        .await
        .text
        .contains("token-1")
    {
        assert!(Instant::now() < deadline, "unbound never saw the new TXT");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    u.validated(&format!("_25._tcp.mx1.{ZONE}"), "TLSA", "NOERROR")
        .await;

    // A restart on the same address; answers keep validating once the
    // cache (TTLs capped at 5 s) has had to ask the restarted server.
    let before = h.addr;
    h.restart().await;
    assert_eq!(
        h.addr, before,
        "the restart moved the server: unbound's stub is stale"
    );
    tokio::time::sleep(Duration::from_secs(8)).await;
    u.validated(&format!("_acme-challenge.mx1.{ZONE}"), "TXT", "NOERROR")
        .await;
    let report = watch.stop().await;
    assert!(report.queries >= 6 * 10, "the loop hardly ran: {report:?}");
    assert!(
        report.failures.is_empty(),
        "answers that did not validate through the parent:\n{}\nunbound log:\n{}",
        report.failures.join("\n"),
        u.log()
    );

    // The parent now delegates with another key's DS: the child's key no
    // longer matches, and once the old DS (TTL 2 s) and the child's
    // DNSKEY (capped at 5 s) have left the cache, the child is bogus.
    let other = tempfile::tempdir().unwrap();
    parent.set_ds(&[ds_line(&stranger(other.path()))]).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let d = u.dig(ZONE, "SOA").await;
        if d.status == "SERVFAIL" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the child still resolves ({} ad={}) with a DS at the parent that matches none of its keys: is unbound trusting the child directly?\n{}",
            d.status,
            d.ad,
            u.log()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_parent_nameserver_is_asked_for_the_ds_and_a_frozen_one_lags() {
    common::parent::peers_installed();
    let h = Harness::start().await;
    let key = zone_key(&h);
    let mut parent = Parent::start_two(ZONE, h.addr.port(), &[ds_line(&key)]).await;
    let [bind, knot] = parent.nameservers()[..] else {
        panic!("two parent nameservers expected")
    };
    let zone = name(ZONE);

    for ns in [bind, knot] {
        let a = ds_at(ns, &zone, T).await.unwrap();
        assert_eq!(a.records.len(), 1, "{ns}: {a:?}");
        assert!(ds_matches(&a.records[0], &key.ds()), "{ns}: {a:?}");
        assert_eq!(a.ttl, parent.options.ds_ttl, "{ns}: {a:?}");
    }
    // zonewarden is the child's nameserver: its answer is not the parent's.
    let err = ds_at(h.addr, &zone, T).await.unwrap_err();
    assert!(matches!(err, ParentError::ChildAnswered { .. }), "{err}");

    // The parent's nameservers, found through a resolver (unbound knows
    // the parent by its stub): their names' addresses, on port 53.
    let u = parent.unbound(h.addr, 5).await;
    let found = parent_nameservers(&zone, u.addr(), T).await.unwrap();
    assert!(found.iter().all(|a| a.port() == 53), "{found:?}");
    let mut found: Vec<IpAddr> = found.iter().map(|a| a.ip()).collect();
    let mut want: Vec<IpAddr> = parent.nameservers().iter().map(|a| a.ip()).collect();
    found.sort();
    want.sort();
    assert_eq!(found, want);

    // One nameserver stops following the primary: they disagree.
    let other = tempfile::tempdir().unwrap();
    let new = stranger(other.path());
    parent.freeze_second().await;
    parent.set_ds(&[ds_line(&new)]).await;
    let at_bind = ds_at(bind, &zone, T).await.unwrap();
    assert!(
        at_bind.contains(&new.ds()) && !at_bind.contains(&key.ds()),
        "{at_bind:?}"
    );
    // Knot was notified (set_ds waited for that) and stays on the old set;
    // a follower would have transferred within milliseconds. (Watching
    // for 3 s can only let a broken freeze pass, never fail a working one.)
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        let at_knot = ds_at(knot, &zone, T).await.unwrap();
        assert!(
            at_knot.contains(&key.ds()) && !at_knot.contains(&new.ds()),
            "{at_knot:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Thawed, it catches up; following the child's CDS brings back the DS
    // of zonewarden's key at both; an empty DS set is an authoritative NODATA
    // with the parent's negative TTL.
    parent.thaw_second().await;
    assert!(ds_at(knot, &zone, T).await.unwrap().contains(&new.ds()));
    let followed = parent.follow_cds(h.addr).await;
    assert_eq!(followed.len(), 1, "{followed:?}");
    for ns in [bind, knot] {
        let a = ds_at(ns, &zone, T).await.unwrap();
        assert!(a.records.len() == 1 && a.contains(&key.ds()), "{ns}: {a:?}");
    }
    parent.set_ds(&[]).await;
    for ns in [bind, knot] {
        let a = ds_at(ns, &zone, T).await.unwrap();
        assert!(a.records.is_empty(), "{ns}: {a:?}");
        assert_eq!(a.ttl, parent.options.ds_ttl, "{ns}: {a:?}");
    }
}
