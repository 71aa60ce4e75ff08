//! RFC 2136 UPDATE over real sockets: every prerequisite and update form,
//! the ACL-bypass battery, limits, and durability across restarts.

mod common;

use common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};

const TXT: RecordType = RecordType::TXT;

#[tokio::test]
async fn add_then_delete_one_rr_then_rrset_bumps_serial_each_time() {
    let h = Harness::start().await;
    let n = zname("_acme-challenge.mx1");
    let s0 = h.serial(ZONE).await;
    let rc = h
        .update_rcode(
            "mx1",
            update_msg(
                ZONE,
                vec![],
                vec![add(&n, 60, TXT, "one"), add(&n, 60, TXT, "two")],
            ),
        )
        .await;
    assert_eq!(rc, ResponseCode::NoError);
    assert_eq!(h.txt(&n.to_string()).await, vec!["one", "two"]);
    assert_eq!(h.serial(ZONE).await, s0.wrapping_add(1));

    // Adding an RR that exists changes nothing: no serial bump.
    let rc = h
        .update_rcode(
            "mx1",
            update_msg(ZONE, vec![], vec![add(&n, 60, TXT, "one")]),
        )
        .await;
    assert_eq!(rc, ResponseCode::NoError);
    assert_eq!(h.serial(ZONE).await, s0.wrapping_add(1));

    let rc = h
        .update_rcode(
            "mx1",
            update_msg(ZONE, vec![], vec![del_rr(&n, TXT, "one")]),
        )
        .await;
    assert_eq!(rc, ResponseCode::NoError);
    assert_eq!(h.txt(&n.to_string()).await, vec!["two"]);

    let rc = h
        .update_rcode("mx1", update_msg(ZONE, vec![], vec![del_rrset(&n, TXT)]))
        .await;
    assert_eq!(rc, ResponseCode::NoError);
    // The last RR gone: the name is gone too (NXDOMAIN, not an empty NODATA RRset).
    let m = h.query(&n.to_string(), TXT).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(h.serial(ZONE).await, s0.wrapping_add(3));
}

#[tokio::test]
async fn delete_all_at_a_name_removes_only_what_the_key_may_touch() {
    let h = Harness::start().await;
    // www1 and ops (admin) both write at "shared"; mx1 may not.
    let shared = zname("shared");
    assert_eq!(
        h.update_rcode(
            "www1",
            update_msg(ZONE, vec![], vec![add(&shared, 60, TXT, "www1")])
        )
        .await,
        ResponseCode::NoError
    );
    assert_eq!(
        h.update_rcode(
            "ops",
            update_msg(
                ZONE,
                vec![],
                vec![add(&shared, 60, RecordType::A, "192.0.2.1")]
            )
        )
        .await,
        ResponseCode::NoError
    );
    // mx1 has no grant at "shared": refused outright.
    assert_eq!(
        h.update_rcode("mx1", update_msg(ZONE, vec![], vec![del_all(&shared)]))
            .await,
        ResponseCode::Refused
    );
    // www1 may delete TXT there only: the admin's A survives.
    assert_eq!(
        h.update_rcode("www1", update_msg(ZONE, vec![], vec![del_all(&shared)]))
            .await,
        ResponseCode::NoError
    );
    assert!(h.txt("shared._acme.example.org.").await.is_empty());
    let a = h.query("shared._acme.example.org.", RecordType::A).await;
    assert_eq!(a.answers.len(), 1);
}

#[tokio::test]
async fn every_prerequisite_form() {
    let h = Harness::start().await;
    let n = zname("_acme-challenge.mx1");
    let absent = zname("_acme-challenge.www1");
    let seed = add(&n, 60, TXT, "v1");
    assert_eq!(
        h.update_rcode("mx1", update_msg(ZONE, vec![], vec![seed]))
            .await,
        ResponseCode::NoError
    );
    let up = || vec![add(&n, 60, TXT, "v2")];

    // §2.4.1 RRset exists (value independent)
    assert_eq!(
        h.update_rcode(
            "mx1",
            update_msg(ZONE, vec![pre_exists(&absent, TXT)], up())
        )
        .await,
        ResponseCode::NXRRSet
    );
    assert_eq!(
        h.update_rcode("mx1", update_msg(ZONE, vec![pre_exists(&n, TXT)], vec![]))
            .await,
        ResponseCode::NoError
    );
    // §2.4.2 RRset exists (value dependent)
    assert_eq!(
        h.update_rcode(
            "mx1",
            update_msg(ZONE, vec![pre_value(&n, TXT, "other")], up())
        )
        .await,
        ResponseCode::NXRRSet
    );
    assert_eq!(
        h.update_rcode(
            "mx1",
            update_msg(ZONE, vec![pre_value(&n, TXT, "v1")], vec![])
        )
        .await,
        ResponseCode::NoError
    );
    // §2.4.3 RRset does not exist
    assert_eq!(
        h.update_rcode("mx1", update_msg(ZONE, vec![pre_absent(&n, TXT)], up()))
            .await,
        ResponseCode::YXRRSet
    );
    assert_eq!(
        h.update_rcode(
            "mx1",
            update_msg(ZONE, vec![pre_absent(&n, RecordType::A)], vec![])
        )
        .await,
        ResponseCode::NoError
    );
    // §2.4.4 name is in use
    assert_eq!(
        h.update_rcode("mx1", update_msg(ZONE, vec![pre_in_use(&absent)], up()))
            .await,
        ResponseCode::NXDomain
    );
    assert_eq!(
        h.update_rcode("mx1", update_msg(ZONE, vec![pre_in_use(&n)], vec![]))
            .await,
        ResponseCode::NoError
    );
    // §2.4.5 name is not in use
    assert_eq!(
        h.update_rcode("mx1", update_msg(ZONE, vec![pre_not_in_use(&n)], up()))
            .await,
        ResponseCode::YXDomain
    );
    assert_eq!(
        h.update_rcode(
            "mx1",
            update_msg(ZONE, vec![pre_not_in_use(&absent)], vec![])
        )
        .await,
        ResponseCode::NoError
    );
    // A prerequisite outside the zone: NOTZONE; a non-zero TTL: FORMERR.
    let outside = name("x.other.test.");
    assert_eq!(
        h.update_rcode(
            "mx1",
            update_msg(ZONE, vec![pre_exists(&outside, TXT)], up())
        )
        .await,
        ResponseCode::NotZone
    );
    let mut bad = pre_exists(&n, TXT);
    bad.ttl = 5;
    assert_eq!(
        h.update_rcode("mx1", update_msg(ZONE, vec![bad], up()))
            .await,
        ResponseCode::FormErr
    );
    // None of the failed ones changed anything.
    assert_eq!(h.txt(&n.to_string()).await, vec!["v1"]);
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
    let s0 = h.serial(ZONE).await;
    let tlsa = "3 1 1 0c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6";
    let cases: Vec<(&str, hickory_proto::rr::Record)> = vec![
        (
            "another machine's name",
            add(&zname("_acme-challenge.www1"), 60, TXT, "x"),
        ),
        (
            "another type at a granted name",
            add(
                &zname("_acme-challenge.mx1"),
                60,
                RecordType::A,
                "192.0.2.1",
            ),
        ),
        (
            "CNAME at a granted name",
            add(
                &zname("_acme-challenge.mx1"),
                60,
                RecordType::CNAME,
                "evil.example.",
            ),
        ),
        (
            "the apex SOA",
            add(
                &zname(""),
                60,
                RecordType::SOA,
                "ns1._acme.example.org. h.example.org. 1 2 3 4 5",
            ),
        ),
        (
            "the apex NS",
            add(&zname(""), 60, RecordType::NS, "evil.example."),
        ),
        ("delete the apex NS", del_rrset(&zname(""), RecordType::NS)),
        (
            "a DS (DNSSEC records are the server's)",
            add(
                &zname("mx1"),
                60,
                RecordType::DS,
                "12345 13 2 0c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6",
            ),
        ),
        ("a wildcard owner", add(&zname("*.mx1"), 60, TXT, "x")),
        (
            "a wildcard TLSA owner",
            add(&zname("*._tcp.mx1"), 60, RecordType::TLSA, tlsa),
        ),
        (
            "an escaped dot in a label",
            add(
                &name("_acme-challenge\\.mx1._acme.example.org."),
                60,
                TXT,
                "x",
            ),
        ),
        (
            "one label deeper than _*",
            add(&zname("_a._25._tcp.mx1"), 60, RecordType::TLSA, tlsa),
        ),
        (
            "a label not matching _*",
            add(&zname("x25._tcp.mx1"), 60, RecordType::TLSA, tlsa),
        ),
        (
            "a name below the granted one",
            add(&zname("sub._acme-challenge.mx1"), 60, TXT, "x"),
        ),
        (
            "the static record of the zone file",
            del_rrset(&zname("static"), TXT),
        ),
        (
            "delete one RR of another machine",
            del_rr(&zname("_acme-challenge.www1"), TXT, "x"),
        ),
        (
            "delete another machine's RRset",
            del_rrset(&zname("_acme-challenge.www1"), TXT),
        ),
        (
            "delete all at another machine's name",
            del_all(&zname("_acme-challenge.www1")),
        ),
        ("delete all at the apex", del_all(&zname(""))),
        (
            "delete all at mx1's own parent name",
            del_all(&zname("mx1")),
        ),
        (
            "delete all at the shared _tcp parent",
            del_all(&zname("_tcp.mx1")),
        ),
    ];
    for (what, rr) in cases {
        let rc = h
            .update_rcode("mx1", update_msg(ZONE, vec![], vec![rr]))
            .await;
        assert_eq!(rc, ResponseCode::Refused, "{what}");
    }
    // Names outside the zone are NOTZONE; a zone we do not serve is NOTAUTH.
    let rc = h
        .update_rcode(
            "mx1",
            update_msg(
                ZONE,
                vec![],
                vec![add(&name("_acme-challenge.mx1.other.test."), 60, TXT, "x")],
            ),
        )
        .await;
    assert_eq!(rc, ResponseCode::NotZone);
    let rc = h
        .update_rcode(
            "mx1",
            update_msg(
                "example.com.",
                vec![],
                vec![add(&name("_acme-challenge.mx1.example.com."), 60, TXT, "x")],
            ),
        )
        .await;
    assert_eq!(rc, ResponseCode::NotAuth);
    // mx1's ACL is limited to the main zone: the other served zone is refused.
    let rc = h
        .update_rcode(
            "mx1",
            update_msg(
                "other.test.",
                vec![],
                vec![add(&name("_acme-challenge.mx1.other.test."), 60, TXT, "x")],
            ),
        )
        .await;
    assert_eq!(rc, ResponseCode::Refused);
    // Case variants are the same name, and allowed.
    let rc = h
        .update_rcode(
            "mx1",
            update_msg(
                ZONE,
                vec![],
                vec![add(
                    &name("_ACME-Challenge.MX1._acme.EXAMPLE.org."),
                    60,
                    TXT,
                    "case",
                )],
            ),
        )
        .await;
    assert_eq!(rc, ResponseCode::NoError);
    assert_eq!(
        h.serial(ZONE).await,
        s0.wrapping_add(1),
        "only the allowed case-variant update changed the zone"
    );
}

#[tokio::test]
async fn any_and_none_class_deletes_are_checked_like_adds() {
    let h = Harness::start().await;
    let www = zname("_acme-challenge.www1");
    assert_eq!(
        h.update_rcode(
            "www1",
            update_msg(ZONE, vec![], vec![add(&www, 60, TXT, "keep")])
        )
        .await,
        ResponseCode::NoError
    );
    for rr in [
        del_rr(&www, TXT, "keep"),
        del_rrset(&www, TXT),
        del_all(&www),
    ] {
        assert_eq!(
            h.update_rcode("mx1", update_msg(ZONE, vec![], vec![rr]))
                .await,
            ResponseCode::Refused
        );
    }
    assert_eq!(h.txt(&www.to_string()).await, vec!["keep"]);
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
    // max-rrset = 3 for mx1's TXT grant
    let four: Vec<_> = (0..4).map(|i| add(&n, 60, TXT, &format!("v{i}"))).collect();
    assert_eq!(
        h.update_rcode("mx1", update_msg(ZONE, vec![], four)).await,
        ResponseCode::Refused
    );
    // rdata-size = 512 in the test zone
    let big = "a".repeat(200);
    let data = format!("{big} {big} {big}");
    assert_eq!(
        h.update_rcode(
            "mx1",
            update_msg(ZONE, vec![], vec![add(&n, 60, TXT, &data)])
        )
        .await,
        ResponseCode::Refused
    );
    // records-per-name = 8 (admin has no max-rrset)
    let many: Vec<_> = (0..9)
        .map(|i| add(&zname("busy"), 60, TXT, &format!("v{i}")))
        .collect();
    assert_eq!(
        h.update_rcode("ops", update_msg(ZONE, vec![], many)).await,
        ResponseCode::Refused
    );
    // TTL clamp: the zone allows 10..600
    assert_eq!(
        h.update_rcode(
            "mx1",
            update_msg(ZONE, vec![], vec![add(&n, 86400, TXT, "long")])
        )
        .await,
        ResponseCode::NoError
    );
    let m = h.query(&n.to_string(), TXT).await;
    assert_eq!(m.answers[0].ttl, 600);
    assert_eq!(
        h.update_rcode(
            "mx1",
            update_msg(ZONE, vec![], vec![add(&n, 1, TXT, "short")])
        )
        .await,
        ResponseCode::NoError
    );
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
