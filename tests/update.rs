//! RFC 2136 UPDATE over real sockets: every prerequisite and update form,
//! the ACL-bypass battery, limits, and durability across restarts.
//!
//! Most tests are tables of [`Case`]s run in order against one server by
//! [`run`]: each case is one signed UPDATE, the RCODE it must get, and the
//! zone it must leave behind.

mod common;

use common::*;
use hickory_proto::op::ResponseCode::{
    FormErr, NXDomain, NXRRSet, NoError, NotAuth, NotZone, Refused, YXDomain, YXRRSet,
};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};

const TXT: RecordType = RecordType::TXT;

/// One UPDATE and what must come of it.
struct Case {
    /// Names the case in a failure.
    what: &'static str,
    /// Whose key signs it.
    machine: &'static str,
    send: Message,
    rcode: ResponseCode,
    /// Whether the zone changed (its serial moved by one) or not at all.
    changes: bool,
    /// The TXT strings served afterwards at the table's watched name.
    txt: &'static [&'static str],
}

/// A case that changes the zone, answered NOERROR.
fn changes(
    what: &'static str,
    machine: &'static str,
    send: Message,
    txt: &'static [&'static str],
) -> Case {
    Case {
        what,
        machine,
        send,
        rcode: NoError,
        changes: true,
        txt,
    }
}

/// A case that leaves the zone as it was, answered `rcode`.
fn keeps(
    what: &'static str,
    machine: &'static str,
    send: Message,
    rcode: ResponseCode,
    txt: &'static [&'static str],
) -> Case {
    Case {
        what,
        machine,
        send,
        rcode,
        changes: false,
        txt,
    }
}

/// An UPDATE of the test zone.
fn up(prereqs: Vec<Record>, updates: Vec<Record>) -> Message {
    update_msg(ZONE, prereqs, updates)
}

/// Send each case in turn; check its RCODE, the serial of [`ZONE`] and the
/// TXT strings at `watch`. A failure names the case.
async fn run(h: &Harness, watch: &Name, cases: Vec<Case>) {
    for c in cases {
        let what = c.what;
        let before = h.serial(ZONE).await;
        let rcode = h.update_rcode(c.machine, c.send).await;
        assert_eq!(rcode, c.rcode, "{what}: the RCODE");
        let step = u32::from(c.changes);
        assert_eq!(
            h.serial(ZONE).await,
            before.wrapping_add(step),
            "{what}: the serial {}",
            if c.changes { "moves by one" } else { "stays" }
        );
        assert_eq!(
            h.txt(&watch.to_string()).await,
            c.txt,
            "{what}: the TXT at {watch}"
        );
    }
}

#[tokio::test]
async fn add_then_delete_one_rr_then_rrset_bumps_serial_each_time() {
    let h = Harness::start().await;
    let n = zname("_acme-challenge.mx1");
    #[rustfmt::skip]
    let cases = vec![
        changes("two RRs added", "mx1", up(vec![], vec![add(&n, 60, TXT, "one"), add(&n, 60, TXT, "two")]), &["one", "two"]),
        keeps("an RR that exists added again", "mx1", up(vec![], vec![add(&n, 60, TXT, "one")]), NoError, &["one", "two"]),
        changes("one RR deleted", "mx1", up(vec![], vec![del_rr(&n, TXT, "one")]), &["two"]),
        changes("the RRset deleted", "mx1", up(vec![], vec![del_rrset(&n, TXT)]), &[]),
    ];
    run(&h, &n, cases).await;
    // The last RR gone: the name is gone too (NXDOMAIN, not an empty NODATA RRset).
    let m = h.query(&n.to_string(), TXT).await;
    assert_eq!(m.metadata.response_code, NXDomain);
}

#[tokio::test]
async fn delete_all_at_a_name_removes_only_what_the_key_may_touch() {
    let h = Harness::start().await;
    // www1 and ops (admin) both write at "shared"; mx1 may not.
    let shared = zname("shared");
    let a = add(&shared, 60, RecordType::A, "192.0.2.1");
    #[rustfmt::skip]
    let cases = vec![
        changes("www1 adds its TXT", "www1", up(vec![], vec![add(&shared, 60, TXT, "www1")]), &["www1"]),
        changes("the admin adds an A", "ops", up(vec![], vec![a]), &["www1"]),
        keeps("mx1, with no grant there, deletes all", "mx1", up(vec![], vec![del_all(&shared)]), Refused, &["www1"]),
        changes("www1, which may delete TXT only, deletes all", "www1", up(vec![], vec![del_all(&shared)]), &[]),
    ];
    run(&h, &shared, cases).await;
    // The admin's A survives www1's delete-all.
    let a = h.query("shared._acme.example.org.", RecordType::A).await;
    assert_eq!(a.answers.len(), 1);
}

#[tokio::test]
async fn every_prerequisite_form() {
    let h = Harness::start().await;
    let n = zname("_acme-challenge.mx1");
    let absent = zname("_acme-challenge.www1");
    let outside = name("x.other.test.");
    let v2 = || vec![add(&n, 60, TXT, "v2")];
    let mut ttl_5 = pre_exists(&n, TXT);
    ttl_5.ttl = 5;
    // Each prerequisite once failing (its update, v2, is then not applied)
    // and once holding (with nothing to update): the zone stays as seeded.
    let pre = |what, prereq, updates, rcode| {
        keeps(what, "mx1", up(vec![prereq], updates), rcode, &["v1"])
    };
    #[rustfmt::skip]
    let cases = vec![
        changes("the seed", "mx1", up(vec![], vec![add(&n, 60, TXT, "v1")]), &["v1"]),
        pre("§2.4.1 RRset exists (value independent), absent", pre_exists(&absent, TXT), v2(), NXRRSet),
        pre("§2.4.1 RRset exists (value independent), present", pre_exists(&n, TXT), vec![], NoError),
        pre("§2.4.2 RRset exists (value dependent), other value", pre_value(&n, TXT, "other"), v2(), NXRRSet),
        pre("§2.4.2 RRset exists (value dependent), same value", pre_value(&n, TXT, "v1"), vec![], NoError),
        pre("§2.4.3 RRset does not exist, but does", pre_absent(&n, TXT), v2(), YXRRSet),
        pre("§2.4.3 RRset does not exist, and does not", pre_absent(&n, RecordType::A), vec![], NoError),
        pre("§2.4.4 name is in use, but is not", pre_in_use(&absent), v2(), NXDomain),
        pre("§2.4.4 name is in use, and is", pre_in_use(&n), vec![], NoError),
        pre("§2.4.5 name is not in use, but is", pre_not_in_use(&n), v2(), YXDomain),
        pre("§2.4.5 name is not in use, and is not", pre_not_in_use(&absent), vec![], NoError),
        pre("a prerequisite outside the zone", pre_exists(&outside, TXT), v2(), NotZone),
        pre("a prerequisite with a non-zero TTL", ttl_5, v2(), FormErr),
    ];
    run(&h, &n, cases).await;
}

#[tokio::test]
async fn a_failing_update_changes_nothing_at_all() {
    let h = Harness::start().await;
    let n = zname("_acme-challenge.mx1");
    let s0 = h.serial(ZONE).await;
    // The second RR is not granted: the first must not be applied either.
    let msg = update_msg(
        ZONE,
        vec![],
        vec![
            add(&n, 60, TXT, "ok"),
            add(&zname("_acme-challenge.www1"), 60, TXT, "not mine"),
        ],
    );
    assert_eq!(h.update_rcode("mx1", msg).await, ResponseCode::Refused);
    assert!(h.txt(&n.to_string()).await.is_empty());
    assert_eq!(h.serial(ZONE).await, s0);
}

#[tokio::test]
async fn one_update_may_change_txt_and_tlsa_together() {
    let h = Harness::start().await;
    let txt = zname("_acme-challenge.mx1");
    let tlsa = zname("_25._tcp.mx1");
    let data = "3 1 1 0c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6";
    let msg = update_msg(
        ZONE,
        vec![],
        vec![
            add(&txt, 60, TXT, "t"),
            add(&tlsa, 300, RecordType::TLSA, data),
        ],
    );
    assert_eq!(h.update_rcode("mx1", msg).await, ResponseCode::NoError);
    let m = h.query(&tlsa.to_string(), RecordType::TLSA).await;
    assert!(matches!(m.answers[0].data, RData::TLSA(_)));
}

#[tokio::test]
async fn acl_bypass_battery_is_refused() {
    let h = Harness::start().await;
    let tlsa = "3 1 1 0c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6";
    let ds = "12345 13 2 0c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6";
    let soa = "ns1._acme.example.org. h.example.org. 1 2 3 4 5";
    let (mine, theirs, apex) = (
        zname("_acme-challenge.mx1"),
        zname("_acme-challenge.www1"),
        zname(""),
    );
    let (tcp, dot) = (
        zname("_tcp.mx1"),
        name("_acme-challenge\\.mx1._acme.example.org."),
    );
    let elsewhere = |zone, owner| update_msg(zone, vec![], vec![add(&name(owner), 60, TXT, "x")]);
    let case_variant = add(
        &name("_ACME-Challenge.MX1._acme.EXAMPLE.org."),
        60,
        TXT,
        "case",
    );
    // mx1 sends each; none may change the zone, so nothing appears at its own name.
    let refused = |what, rr| keeps(what, "mx1", up(vec![], vec![rr]), Refused, &[]);
    #[rustfmt::skip]
    let cases = vec![
        refused("another machine's name", add(&theirs, 60, TXT, "x")),
        refused("another type at a granted name", add(&mine, 60, RecordType::A, "192.0.2.1")),
        refused("CNAME at a granted name", add(&mine, 60, RecordType::CNAME, "evil.example.")),
        refused("the apex SOA", add(&apex, 60, RecordType::SOA, soa)),
        refused("the apex NS", add(&apex, 60, RecordType::NS, "evil.example.")),
        refused("delete the apex NS", del_rrset(&apex, RecordType::NS)),
        refused("a DS (DNSSEC records are the server's)", add(&zname("mx1"), 60, RecordType::DS, ds)),
        refused("a wildcard owner", add(&zname("*.mx1"), 60, TXT, "x")),
        refused("a wildcard TLSA owner", add(&zname("*._tcp.mx1"), 60, RecordType::TLSA, tlsa)),
        refused("an escaped dot in a label", add(&dot, 60, TXT, "x")),
        refused("one label deeper than _*", add(&zname("_a._25._tcp.mx1"), 60, RecordType::TLSA, tlsa)),
        refused("a label not matching _*", add(&zname("x25._tcp.mx1"), 60, RecordType::TLSA, tlsa)),
        refused("a name below the granted one", add(&zname("sub._acme-challenge.mx1"), 60, TXT, "x")),
        refused("the static record of the zone file", del_rrset(&zname("static"), TXT)),
        refused("delete one RR of another machine", del_rr(&theirs, TXT, "x")),
        refused("delete another machine's RRset", del_rrset(&theirs, TXT)),
        refused("delete all at another machine's name", del_all(&theirs)),
        refused("delete all at the apex", del_all(&apex)),
        refused("delete all at mx1's own parent name", del_all(&zname("mx1"))),
        refused("delete all at the shared _tcp parent", del_all(&tcp)),
        keeps("a name outside the zone: NOTZONE", "mx1", elsewhere(ZONE, "_acme-challenge.mx1.other.test."), NotZone, &[]),
        keeps("a zone we do not serve: NOTAUTH", "mx1", elsewhere("example.com.", "_acme-challenge.mx1.example.com."), NotAuth, &[]),
        keeps("the other served zone, outside mx1's ACL", "mx1", elsewhere("other.test.", "_acme-challenge.mx1.other.test."), Refused, &[]),
        changes("its own name in other letter case: the same name, allowed", "mx1", up(vec![], vec![case_variant]), &["case"]),
    ];
    run(&h, &mine, cases).await;
}

#[tokio::test]
async fn any_and_none_class_deletes_are_checked_like_adds() {
    let h = Harness::start().await;
    let www = zname("_acme-challenge.www1");
    let refused = |what, rr| keeps(what, "mx1", up(vec![], vec![rr]), Refused, &["keep"]);
    #[rustfmt::skip]
    let cases = vec![
        changes("www1's own TXT", "www1", up(vec![], vec![add(&www, 60, TXT, "keep")]), &["keep"]),
        refused("mx1 deletes it: class NONE, one RR", del_rr(&www, TXT, "keep")),
        refused("mx1 deletes it: class ANY, the RRset", del_rrset(&www, TXT)),
        refused("mx1 deletes it: class ANY, type ANY, all at the name", del_all(&www)),
    ];
    run(&h, &www, cases).await;
}

#[tokio::test]
async fn unsigned_and_wrong_network_updates_are_refused() {
    let h = Harness::start().await;
    let n = zname("_acme-challenge.mx1");
    let msg = update_msg(ZONE, vec![], vec![add(&n, 60, TXT, "x")]);
    let resp = hickory_proto::op::Message::from_vec(&h.tcp(&msg.to_vec().unwrap()).await).unwrap();
    assert_eq!(resp.metadata.response_code, ResponseCode::Refused);
    // netbox may only update from 192.0.2.0/24; we are 127.0.0.1.
    let msg = update_msg(
        ZONE,
        vec![],
        vec![add(&zname("_acme-challenge.netbox"), 60, TXT, "x")],
    );
    assert_eq!(h.update_rcode("netbox", msg).await, ResponseCode::Refused);
}

#[tokio::test]
async fn limits_answer_refused_and_ttls_are_clamped() {
    let h = Harness::start().await;
    let n = zname("_acme-challenge.mx1");
    let four: Vec<_> = (0..4).map(|i| add(&n, 60, TXT, &format!("v{i}"))).collect();
    let big = "a".repeat(200);
    let too_big = vec![add(&n, 60, TXT, &format!("{big} {big} {big}"))];
    let nine: Vec<_> = (0..9)
        .map(|i| add(&zname("busy"), 60, TXT, &format!("v{i}")))
        .collect();
    #[rustfmt::skip]
    let cases = vec![
        keeps("four RRs, over mx1's max-rrset = 3", "mx1", up(vec![], four), Refused, &[]),
        keeps("603 octets, over the zone's rdata-size = 512", "mx1", up(vec![], too_big), Refused, &[]),
        keeps("nine RRs, over records-per-name = 8 (admin has no max-rrset)", "ops", up(vec![], nine), Refused, &[]),
        changes("a TTL over the zone's max = 600", "mx1", up(vec![], vec![add(&n, 86400, TXT, "long")]), &["long"]),
    ];
    run(&h, &n, cases).await;
    let m = h.query(&n.to_string(), TXT).await;
    assert_eq!(m.answers[0].ttl, 600);
    #[rustfmt::skip]
    let cases = vec![
        changes("a TTL under the zone's min = 10", "mx1", up(vec![], vec![add(&n, 1, TXT, "short")]), &["long", "short"]),
    ];
    run(&h, &n, cases).await;
    let m = h.query(&n.to_string(), TXT).await;
    assert!(
        m.answers.iter().all(|r| r.ttl == 10),
        "one TTL per RRset, clamped up to 10"
    );
}

#[tokio::test]
async fn records_per_zone_limit() {
    let h = Harness::start().await;
    // records-per-zone = 200; the zone holds 3 (NS, glue, static); ops adds 8 per name.
    let mut rc = ResponseCode::NoError;
    for i in 0..30 {
        let owner = zname(&format!("bulk{i}"));
        let rrs: Vec<_> = (0..8)
            .map(|j| add(&owner, 60, TXT, &format!("v{j}")))
            .collect();
        rc = h.update_rcode("ops", update_msg(ZONE, vec![], rrs)).await;
        if rc != ResponseCode::NoError {
            break;
        }
    }
    assert_eq!(rc, ResponseCode::Refused);
}

#[tokio::test]
async fn acknowledged_changes_survive_a_restart() {
    let mut h = Harness::start().await;
    let n = zname("_acme-challenge.mx1");
    for i in 0..5 {
        assert_eq!(
            h.update_rcode(
                "mx1",
                update_msg(ZONE, vec![], vec![add(&n, 60, TXT, &format!("v{i}"))])
            )
            .await,
            ResponseCode::NoError
        );
        if i >= 2 {
            assert_eq!(
                h.update_rcode(
                    "mx1",
                    update_msg(ZONE, vec![], vec![del_rr(&n, TXT, &format!("v{}", i - 2))])
                )
                .await,
                ResponseCode::NoError
            );
        }
    }
    let serial = h.serial(ZONE).await;
    h.restart().await;
    assert_eq!(h.txt(&n.to_string()).await, vec!["v3", "v4"]);
    assert_eq!(h.serial(ZONE).await, serial);
}

#[tokio::test]
async fn cname_and_other_data_do_not_mix() {
    let h = Harness::start().await;
    let n = zname("alias");
    assert_eq!(
        h.update_rcode(
            "ops",
            update_msg(
                ZONE,
                vec![],
                vec![add(&n, 60, RecordType::CNAME, "static._acme.example.org.")]
            )
        )
        .await,
        ResponseCode::NoError
    );
    // RFC 2136 §3.4.2.2: other data beside a CNAME is ignored, not an error.
    assert_eq!(
        h.update_rcode("ops", update_msg(ZONE, vec![], vec![add(&n, 60, TXT, "x")]))
            .await,
        ResponseCode::NoError
    );
    let m = h.query(&n.to_string(), TXT).await;
    assert_eq!(m.answers.len(), 2, "CNAME followed to the static TXT");
    assert!(matches!(m.answers[0].data, RData::CNAME(_)));
    assert!(matches!(&m.answers[1].data, RData::TXT(t) if t.to_string() == "from the zone file"));
}

#[tokio::test]
async fn a_full_database_answers_servfail_and_loses_nothing() {
    let mut h = Harness::start().await;
    let mut acked = Vec::new();
    for i in 0..3 {
        let (owner, value) = (
            zname(&format!("before{i}")),
            format!("acked-before-full-{i}"),
        );
        assert_eq!(
            h.update_rcode(
                "ops",
                update_msg(ZONE, vec![], vec![add(&owner, 60, RecordType::TXT, &value)])
            )
            .await,
            ResponseCode::NoError
        );
        acked.push((owner, value));
    }
    // A cap below the current size: the database cannot grow, as on a full disk.
    h.config.database_max_size = Some(0);
    h.restart().await;
    let mut failed = false;
    for i in 0..500 {
        let owner = zname(&format!("fill{i}"));
        let value = format!("{i}-{}", "x".repeat(200));
        match h
            .update_rcode(
                "ops",
                update_msg(ZONE, vec![], vec![add(&owner, 60, RecordType::TXT, &value)]),
            )
            .await
        {
            ResponseCode::NoError => acked.push((owner, value)),
            ResponseCode::ServFail => {
                failed = true;
                // what failed is not served
                assert!(h.txt(&owner.to_string()).await.is_empty());
                break;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(failed, "the database never filled up");
    let serial = h.serial(ZONE).await;
    // Still answering, and every acknowledged change is served.
    for (owner, value) in &acked {
        assert_eq!(h.txt(&owner.to_string()).await, vec![value.clone()]);
    }
    // Room again (the cap lifted, as when space is freed): nothing was lost.
    h.config.database_max_size = None;
    h.restart().await;
    assert_eq!(h.serial(ZONE).await, serial);
    for (owner, value) in &acked {
        assert_eq!(h.txt(&owner.to_string()).await, vec![value.clone()]);
    }
    let n = zname("_acme-challenge.mx1");
    assert_eq!(
        h.update_rcode(
            "mx1",
            update_msg(
                ZONE,
                vec![],
                vec![add(&n, 60, RecordType::TXT, "works-again")]
            )
        )
        .await,
        ResponseCode::NoError
    );
}
