//! DNSSEC as the world checks it: a real validating unbound (trust anchor =
//! our DS) must return AD-validated answers for positive, NODATA, NXDOMAIN
//! and empty non-terminal queries before and after updates; ldns-verify-zone
//! must accept the whole signed zone, also after a signature refresh driven
//! by the injected clock and after a restart. `scripts/test` installs
//! unbound and ldnsutils.

mod common;

use std::time::Duration;

use common::unbound::*;
use common::*;
use hickory_proto::op::{Edns, Message, ResponseCode};
use hickory_proto::rr::{RData, Record, RecordType};
use zonewarden::dnssec::ZoneKey;
use zonewarden::zone::as_rrsig;

const TLSA: &str = "3 1 1 0c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6";

async fn add_rr(h: &Harness, machine: &str, owner: &str, t: RecordType, data: &str) {
    let n = zname(owner);
    let rc = h
        .update_rcode(
            machine,
            update_msg(ZONE, vec![], vec![add(&n, 60, t, data)]),
        )
        .await;
    assert_eq!(rc, ResponseCode::NoError, "add {owner} {t}");
}

async fn delete_rrset(h: &Harness, machine: &str, owner: &str, t: RecordType) {
    let n = zname(owner);
    let rc = h
        .update_rcode(machine, update_msg(ZONE, vec![], vec![del_rrset(&n, t)]))
        .await;
    assert_eq!(rc, ResponseCode::NoError, "delete {owner} {t}");
}

/// A query with the DO bit, over UDP (EDNS 1232) or TCP.
async fn query_do(h: &Harness, qname: &str, t: RecordType, tcp: bool, size: u16) -> Message {
    let mut m = query_msg(qname, t, false);
    let mut e = Edns::new();
    e.set_max_payload(size);
    e.set_dnssec_ok(true);
    m.set_edns(e);
    let bytes = m.to_vec().unwrap();
    let resp = if tcp {
        h.tcp(&bytes).await
    } else {
        h.udp(&bytes).await.expect("an answer")
    };
    Message::from_vec(&resp).unwrap()
}

fn types(records: &[Record]) -> Vec<RecordType> {
    records.iter().map(|r| r.record_type()).collect()
}

fn covered(records: &[Record]) -> Vec<RecordType> {
    records
        .iter()
        .filter_map(|r| as_rrsig(&r.data).map(|s| s.input().type_covered))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbound_validates_answers_nodata_nxdomain_and_ents_before_and_after_updates() {
    let h = Harness::start().await;
    add_rr(
        &h,
        "mx1",
        "_acme-challenge.mx1",
        RecordType::TXT,
        "\"token-1\"",
    )
    .await;
    add_rr(
        &h,
        "mx1",
        "_acme-challenge.mx1",
        RecordType::TXT,
        "\"token-2\"",
    )
    .await;
    add_rr(&h, "mx1", "_25._tcp.mx1", RecordType::TLSA, TLSA).await;
    let u = Unbound::start(h.addr.port(), &ds_line(&zone_key(&h))).await;

    // positive, with a two-RR RRset
    let text = u
        .validated(&format!("_acme-challenge.mx1.{ZONE}"), "TXT", "NOERROR")
        .await;
    assert!(
        text.contains("token-1") && text.contains("token-2"),
        "{text}"
    );
    // (name under the zone, type, the status unbound validates with AD)
    #[rustfmt::skip]
    let cases = [
        ("_25._tcp.mx1", "TLSA", "NOERROR"),
        ("static", "TXT", "NOERROR"),
        ("", "SOA", "NOERROR"),
        ("", "DNSKEY", "NOERROR"),
        ("", "CDS", "NOERROR"),
        ("ns1", "A", "NOERROR"),
        // NODATA at a name, at the apex, and at empty non-terminals
        ("_acme-challenge.mx1", "A", "NOERROR"),
        ("", "TXT", "NOERROR"),
        ("_tcp.mx1", "TXT", "NOERROR"),
        ("mx1", "TXT", "NOERROR"),
        // NXDOMAIN: beside names, two and three labels below existing names
        ("nothing", "TXT", "NXDOMAIN"),
        ("a.b._acme-challenge.mx1", "TXT", "NXDOMAIN"),
        ("x.y._25._tcp.mx1", "TLSA", "NXDOMAIN"),
        ("zzzz", "TXT", "NXDOMAIN"),
        ("_443._tcp.mx1", "TLSA", "NXDOMAIN"),
    ];
    for (rel, qtype, status) in cases {
        u.validated(&zname(rel).to_string(), qtype, status).await;
    }

    // after updates: a new name (fresh query names throughout)
    add_rr(&h, "www1", "_acme-challenge.www1", RecordType::TXT, "\"w\"").await;
    let text = u
        .validated(&format!("_acme-challenge.www1.{ZONE}"), "TXT", "NOERROR")
        .await;
    assert!(text.contains("\"w\""), "{text}");
    u.validated(&format!("www1.{ZONE}"), "A", "NOERROR").await; // now an ENT
    add_rr(&h, "mx1", "_587._tcp.mx1", RecordType::TLSA, TLSA).await;
    u.validated(&format!("_587._tcp.mx1.{ZONE}"), "TLSA", "NOERROR")
        .await;
    // deletes: the name is gone, its neighbours' chain still proves it
    delete_rrset(&h, "www1", "_acme-challenge.www1", RecordType::TXT).await;
    u.validated(&format!("_acme-challenge.www1.{ZONE}"), "AAAA", "NXDOMAIN")
        .await;
    u.validated(&format!("www1.{ZONE}"), "AAAA", "NXDOMAIN")
        .await;
    u.validated(
        &format!("q.r._acme-challenge.www1.{ZONE}"),
        "TXT",
        "NXDOMAIN",
    )
    .await;
    delete_rrset(&h, "mx1", "_25._tcp.mx1", RecordType::TLSA).await;
    delete_rrset(&h, "mx1", "_587._tcp.mx1", RecordType::TLSA).await;
    u.validated(&format!("_tcp.mx1.{ZONE}"), "A", "NXDOMAIN")
        .await;
    u.validated(&format!("_25._tcp.mx1.{ZONE}"), "AAAA", "NXDOMAIN")
        .await;
    // and the challenge RRset shrunk to one RR still validates
    let n = zname("_acme-challenge.mx1");
    let rc = h
        .update_rcode(
            "mx1",
            update_msg(
                ZONE,
                vec![],
                vec![del_rr(&n, RecordType::TXT, "\"token-1\"")],
            ),
        )
        .await;
    assert_eq!(rc, ResponseCode::NoError);
    u.validated(&format!("_acme-challenge.mx1.{ZONE}"), "AAAA", "NOERROR")
        .await;
    let (ok, out) = ldns_verify(h.dir.path(), &zone_text(&h), &ds_line(&zone_key(&h)), None).await;
    assert!(ok, "ldns-verify-zone after the updates:\n{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trust_anchor_for_another_key_gets_servfail() {
    let h = Harness::start().await;
    let other = tempfile::tempdir().unwrap();
    let (stranger, _) = ZoneKey::load_or_create(
        other.path(),
        &name(ZONE),
        zonewarden::dnssec::KeyAlgorithm::EcdsaP256Sha256,
    )
    .unwrap();
    let u = Unbound::start(h.addr.port(), &ds_line(&stranger)).await;
    let d = u.dig(&format!("static.{ZONE}"), "TXT").await;
    assert_eq!(d.status, "SERVFAIL", "validation is on: {}", d.text);
    assert!(!d.ad);
}

#[tokio::test]
async fn ldns_verify_zone_accepts_the_signed_zone_and_sees_tampering() {
    let h = Harness::start().await;
    add_rr(&h, "mx1", "_acme-challenge.mx1", RecordType::TXT, "\"t\"").await;
    add_rr(&h, "mx1", "_25._tcp.mx1", RecordType::TLSA, TLSA).await;
    let anchor = ds_line(&zone_key(&h));
    let text = zone_text(&h);
    let (ok, out) = ldns_verify(h.dir.path(), &text, &anchor, None).await;
    assert!(ok, "{out}\n{text}");
    // the same zone with one TXT changed behind the signer's back fails
    let bad = text.replace("\"t\"", "\"u\"");
    assert_ne!(bad, text);
    let (ok, out) = ldns_verify(h.dir.path(), &bad, &anchor, None).await;
    assert!(!ok, "tampering must be seen: {out}");
    // and so does a zone whose NSEC chain skips a name
    let gap: String = text
        .lines()
        .filter(|l| !(l.starts_with("_25._tcp.mx1.") && l.contains("NSEC")))
        .map(|l| format!("{l}\n"))
        .collect();
    let (ok, out) = ldns_verify(h.dir.path(), &gap, &anchor, None).await;
    assert!(!ok, "a broken chain must be seen: {out}");
}

#[tokio::test]
async fn a_refresh_with_the_injected_clock_keeps_the_zone_valid() {
    // The challenge must outlive the ten days the clock moves, or the
    // expiry timer (real time) may remove it between the refresh and the
    // checks below.
    let h = Harness::start_with(|c| {
        c.challenge_max_age = std::time::Duration::from_secs(365 * 86_400);
    })
    .await;
    add_rr(&h, "mx1", "_acme-challenge.mx1", RecordType::TXT, "\"t\"").await;
    let anchor = ds_line(&zone_key(&h));
    let t0 = h.clock_now();
    let before = zone_text(&h);
    let sigs = |h: &Harness| -> Vec<(u32, u32)> {
        h.server()
            .zones
            .zone_exact(&name(ZONE))
            .unwrap()
            .snapshot()
            .all_records()
            .iter()
            .filter_map(|r| as_rrsig(&r.data))
            .map(|s| {
                (
                    s.input().sig_inception.get(),
                    s.input().sig_expiration.get(),
                )
            })
            .collect()
    };
    let old = sigs(&h);
    // Nothing is due a day later.
    h.clock.advance(86_400);
    assert_eq!(h.server().zones.refresh_signatures().unwrap(), 0);
    // Ten days in, every signature has less than refresh-before (7 days) left.
    h.clock.advance(9 * 86_400);
    let serial = h.serial(ZONE).await;
    let zones = h.server().zones.all().len();
    assert_eq!(
        h.server().zones.refresh_signatures().unwrap(),
        zones,
        "every zone refreshed"
    );
    assert_eq!(
        h.serial(ZONE).await,
        serial.wrapping_add(1),
        "a journaled change"
    );
    let new = sigs(&h);
    assert_eq!(new.len(), old.len());
    let t1 = t0 + 10 * 86_400;
    for (inception, expiration) in &new {
        assert_eq!(
            u64::from(*inception),
            t1 - 3600,
            "inception backdated an hour"
        );
        assert!(
            u64::from(*expiration) > t1 + 10 * 86_400,
            "about 14 days of validity"
        );
    }
    // Both zones are valid now; fifteen days in only the refreshed one is.
    let after = zone_text(&h);
    let (ok, out) = ldns_verify(h.dir.path(), &after, &anchor, Some(t1)).await;
    assert!(ok, "refreshed zone at t0+10d: {out}");
    let (ok, out) = ldns_verify(h.dir.path(), &after, &anchor, Some(t0 + 15 * 86_400)).await;
    assert!(ok, "refreshed zone at t0+15d: {out}");
    let (ok, out) = ldns_verify(h.dir.path(), &before, &anchor, Some(t0 + 15 * 86_400)).await;
    assert!(!ok, "the old signatures have expired at t0+15d: {out}");
    // The refresh went through the journal like any change.
    let audit = h.server().zones.audit_tail(&name(ZONE), 1).unwrap();
    assert_eq!(audit[0].action.as_str(), "dnssec-refresh");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_the_key_and_every_signature_and_still_validates() {
    let mut h = Harness::start().await;
    add_rr(&h, "mx1", "_acme-challenge.mx1", RecordType::TXT, "\"t\"").await;
    let key = zone_key(&h);
    let anchor = ds_line(&key);
    let text = zone_text(&h);
    let serial = h.serial(ZONE).await;
    h.restart().await;
    assert_eq!(zone_key(&h).key_tag(), key.key_tag(), "same key");
    assert_eq!(h.serial(ZONE).await, serial, "nothing re-signed on restart");
    let sorted = |t: &str| {
        let mut l: Vec<String> = t.lines().map(str::to_string).collect();
        l.sort();
        l
    };
    assert_eq!(
        sorted(&zone_text(&h)),
        sorted(&text),
        "the same records, signatures included"
    );
    let m = query_do(&h, ZONE, RecordType::DNSKEY, false, 1232).await;
    match &m.answers[0].data {
        RData::DNSSEC(d) => assert_eq!(
            format!("{d}"),
            format!("{}", key.dnskey_rdata()),
            "served DNSKEY"
        ),
        other => panic!("{other:?}"),
    }
    let u = Unbound::start(h.addr.port(), &anchor).await;
    u.validated(&format!("_acme-challenge.mx1.{ZONE}"), "TXT", "NOERROR")
        .await;
    u.validated(&format!("gone.{ZONE}"), "TXT", "NXDOMAIN")
        .await;
    // an update after the restart is signed with the same key
    add_rr(&h, "www1", "_acme-challenge.www1", RecordType::TXT, "\"w\"").await;
    u.validated(&format!("_acme-challenge.www1.{ZONE}"), "TXT", "NOERROR")
        .await;
}

#[tokio::test]
async fn answers_carry_rrsigs_and_proofs_only_with_the_do_bit() {
    let h = Harness::start().await;
    add_rr(&h, "mx1", "_25._tcp.mx1", RecordType::TLSA, TLSA).await;
    // positive
    let m = query_do(&h, &format!("static.{ZONE}"), RecordType::TXT, false, 1232).await;
    assert_eq!(types(&m.answers), vec![RecordType::TXT, RecordType::RRSIG]);
    let m = h.query(&format!("static.{ZONE}"), RecordType::TXT).await;
    assert_eq!(types(&m.answers), vec![RecordType::TXT], "no DO, no RRSIG");
    // NODATA: SOA, its RRSIG, the name's NSEC and its RRSIG
    let m = query_do(&h, &format!("static.{ZONE}"), RecordType::A, false, 1232).await;
    assert_eq!(
        types(&m.authorities),
        vec![
            RecordType::SOA,
            RecordType::RRSIG,
            RecordType::NSEC,
            RecordType::RRSIG
        ]
    );
    assert!(
        m.authorities.iter().all(|r| r.ttl == 1),
        "negative TTL on all"
    );
    // ENT: the NSEC before it, whose next name is below it
    let m = query_do(
        &h,
        &format!("_tcp.mx1.{ZONE}"),
        RecordType::TXT,
        false,
        1232,
    )
    .await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    let nsec = m
        .authorities
        .iter()
        .find(|r| r.record_type() == RecordType::NSEC)
        .unwrap();
    match &nsec.data {
        RData::DNSSEC(d) => assert!(d.to_string().starts_with("_25._tcp.mx1."), "{d}"),
        other => panic!("{other:?}"),
    }
    // NXDOMAIN: qname cover + wildcard cover, each signed ...
    let m = query_do(&h, &format!("nothing.{ZONE}"), RecordType::TXT, false, 1232).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(
        covered(&m.authorities),
        vec![RecordType::SOA, RecordType::NSEC, RecordType::NSEC]
    );
    // ... once when one NSEC covers both (two labels below _25._tcp.mx1)
    let m = query_do(
        &h,
        &format!("a.b._25._tcp.mx1.{ZONE}"),
        RecordType::TXT,
        false,
        1232,
    )
    .await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(
        covered(&m.authorities),
        vec![RecordType::SOA, RecordType::NSEC]
    );
    let m = h
        .query(&format!("a.b._25._tcp.mx1.{ZONE}"), RecordType::TXT)
        .await;
    assert_eq!(
        types(&m.authorities),
        vec![RecordType::SOA],
        "no DO, no NSEC"
    );
    // DNSKEY and NSEC are ordinary types when asked for
    let m = h.query(ZONE, RecordType::DNSKEY).await;
    assert_eq!(types(&m.answers), vec![RecordType::DNSKEY]);
    let m = query_do(&h, ZONE, RecordType::DNSKEY, false, 1232).await;
    assert_eq!(
        types(&m.answers),
        vec![RecordType::DNSKEY, RecordType::RRSIG]
    );
    let m = h.query(ZONE, RecordType::NSEC).await;
    assert_eq!(types(&m.answers), vec![RecordType::NSEC]);
    let m = h.query(&format!("static.{ZONE}"), RecordType::RRSIG).await;
    assert_eq!(covered(&m.answers), vec![RecordType::TXT, RecordType::NSEC]);
    // ANY never picks a DNSSEC RRset
    let m = h
        .query(&format!("_25._tcp.mx1.{ZONE}"), RecordType::ANY)
        .await;
    assert_eq!(types(&m.answers), vec![RecordType::TLSA]);
    // a signed answer too big for 512 octets: TC over UDP, whole over TCP
    let m = query_do(&h, &format!("nothing.{ZONE}"), RecordType::TXT, false, 512).await;
    assert!(m.metadata.truncation, "TC set");
    assert!(m.authorities.is_empty());
    let m = query_do(&h, &format!("nothing.{ZONE}"), RecordType::TXT, true, 512).await;
    assert!(!m.metadata.truncation);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(m.authorities.len(), 6);
}

/// The CDS RRset's RDATA as served, as text.
async fn served_cds(h: &Harness) -> Vec<String> {
    let m = query_do(h, ZONE, RecordType::CDS, false, 1232).await;
    m.answers
        .iter()
        .filter(|r| r.record_type() == RecordType::CDS)
        .map(|r| r.data.to_string())
        .collect()
}

/// Poll (every 100 ms, at most 10 s) until the served CDS is `want`.
async fn wait_cds(h: &Harness, want: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let cds = served_cds(h).await;
        if want(&cds) || std::time::Instant::now() > deadline {
            return cds;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `dnssec = false` in a signed zone no longer strips it at the next start
/// (that made it bogus while the parent still had a DS): the zone stays
/// signed, CDS and CDNSKEY say "delete" (RFC 8078 §4), and it waits for
/// the parent, saying so; turned on again, the CDS names the key again.
/// (The whole way to unsigned, with a real parent: tests/rollover.rs.)
#[tokio::test]
async fn dnssec_false_keeps_the_zone_signed_until_the_parent_drops_the_ds() {
    let mut h = Harness::start().await;
    add_rr(&h, "mx1", "_acme-challenge.mx1", RecordType::TXT, "\"t\"").await;
    let m = query_do(&h, ZONE, RecordType::DNSKEY, false, 1232).await;
    assert_eq!(m.answers.len(), 2);
    let key = zone_key(&h);
    let zf = h.path("zones/acme.toml");
    let text = std::fs::read_to_string(&zf).unwrap();
    // The parent's only nameserver does not answer.
    let parent = format!("127.0.0.1:{}", free_port());
    let off = format!(
        "{text}\n[dnssec]\nenabled = false\nparent-nameservers = [\"{parent}\"]\nparent-check-interval = 1\n"
    );
    std::fs::write(&zf, off).unwrap();
    h.restart().await;
    let cds = wait_cds(&h, |c| c == ["0 0 0 00"]).await;
    assert_eq!(cds, ["0 0 0 00"], "CDS delete");
    let m = query_do(&h, ZONE, RecordType::CDNSKEY, false, 1232).await;
    assert_eq!(m.answers[0].data.to_string(), "0 3 0 AA==");
    let m = query_do(&h, ZONE, RecordType::DNSKEY, false, 1232).await;
    assert_eq!(m.answers.len(), 2, "DNSKEY and its RRSIG still served");
    let (ok, out) = ldns_verify(h.dir.path(), &zone_text(&h), &ds_line(&key), None).await;
    assert!(ok, "still signed and valid: {out}");
    let zone = h.server().zones.zone_exact(&name(ZONE)).unwrap().clone();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let out = loop {
        let status = zone.key_status().unwrap();
        let (_, _, out) = status.keys[0].clone();
        if out.waiting_for.contains(&parent) || std::time::Instant::now() > deadline {
            break out;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(out.waiting_for.contains(&parent), "{out:?}");
    assert!(
        out.action
            .as_deref()
            .unwrap_or("")
            .contains("remove the DS records"),
        "{out:?}"
    );
    assert_eq!(
        h.server().zones.audit_tail(&name(ZONE), 1).unwrap()[0]
            .action
            .as_str(),
        "dnssec-key"
    );
    // on again before it was off: the CDS names the same key again
    std::fs::write(&zf, text).unwrap();
    h.restart().await;
    let cds = wait_cds(&h, |c| c.len() == 1 && c[0] != "0 0 0 00").await;
    assert!(
        cds[0].starts_with(&format!("{} 13 2 ", key.key_tag())),
        "{cds:?}"
    );
    let (ok, out) = ldns_verify(h.dir.path(), &zone_text(&h), &ds_line(&zone_key(&h)), None).await;
    assert!(ok, "{out}");
}

#[tokio::test]
async fn ds_prints_the_parent_records_or_says_to_start_the_server_first() {
    let dir = tempfile::tempdir().unwrap();
    let config = Harness::layout(dir.path());
    let e = zonewarden::client::cli::ds(&config, ZONE).unwrap_err();
    assert!(e.to_string().contains("start the server once"), "{e}");
    let h = Harness::start().await;
    let out = zonewarden::client::cli::ds(&h.config, "_acme.example.org").unwrap();
    let key = zone_key(&h);
    let ds = out.lines().find(|l| l.contains(" DS ")).expect("a DS line");
    assert!(
        ds.starts_with(&format!("{ZONE} IN DS {} 13 2 ", key.key_tag())),
        "{out}"
    );
    assert!(out.contains("parent zone example.org."), "{out}");
    assert!(out.contains(" DNSKEY 257 3 13 "), "{out}");
    // the DS matches the DNSKEY that is served
    let m = query_do(&h, ZONE, RecordType::CDS, false, 1232).await;
    let cds = m.answers[0].data.to_string();
    assert!(
        ds.ends_with(cds.split(' ').next_back().unwrap()),
        "{ds} / {cds}"
    );
    assert!(zonewarden::client::cli::ds(&h.config, "example.com").is_err());
}

#[tokio::test]
async fn updates_never_touch_dnssec_records_and_the_chain_follows_every_form() {
    let h = Harness::start().await;
    add_rr(&h, "mx1", "_acme-challenge.mx1", RecordType::TXT, "\"t\"").await;
    let n = zname("_acme-challenge.mx1");
    // not even an admin may change what the signer makes
    for rr in [
        del_rrset(&n, RecordType::RRSIG),
        del_rrset(&n, RecordType::NSEC),
        del_rrset(&zname(""), RecordType::DNSKEY),
    ] {
        let rc = h
            .update_rcode("ops", update_msg(ZONE, vec![], vec![rr]))
            .await;
        assert_eq!(rc, ResponseCode::Refused);
    }
    // an admin's CNAME, replaced by another CNAME (RRSIG and NSEC beside a
    // CNAME are not "other data")
    let alias = zname("alias");
    for target in ["static._acme.example.org.", "ns1._acme.example.org."] {
        let rc = h
            .update_rcode(
                "ops",
                update_msg(
                    ZONE,
                    vec![],
                    vec![add(&alias, 60, RecordType::CNAME, target)],
                ),
            )
            .await;
        assert_eq!(rc, ResponseCode::NoError);
    }
    let m = query_do(&h, &format!("alias.{ZONE}"), RecordType::A, false, 1232).await;
    assert_eq!(
        types(&m.answers),
        vec![
            RecordType::CNAME,
            RecordType::RRSIG,
            RecordType::A,
            RecordType::RRSIG
        ],
        "the CNAME chain, every RRset signed"
    );
    // delete-all at a name leaves no NSEC or RRSIG behind
    let rc = h
        .update_rcode("ops", update_msg(ZONE, vec![], vec![del_all(&n)]))
        .await;
    assert_eq!(rc, ResponseCode::NoError);
    let m = h
        .query(&format!("_acme-challenge.mx1.{ZONE}"), RecordType::NSEC)
        .await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    let (ok, out) = ldns_verify(h.dir.path(), &zone_text(&h), &ds_line(&zone_key(&h)), None).await;
    assert!(ok, "{out}");
    // and expiry removes stale challenges the same way
    add_rr(&h, "mx1", "_acme-challenge.mx1", RecordType::TXT, "\"old\"").await;
    h.clock.advance(2 * 3600);
    assert_eq!(h.server().sweep_expired().unwrap(), 1);
    assert!(
        zone_text(&h)
            .lines()
            .all(|l| !l.starts_with("_acme-challenge.mx1."))
    );
    let at = Some(h.clock_now());
    let (ok, out) = ldns_verify(h.dir.path(), &zone_text(&h), &ds_line(&zone_key(&h)), at).await;
    assert!(ok, "{out}");
}

#[tokio::test]
async fn a_zone_file_edit_is_signed_at_the_next_start() {
    let mut h = Harness::start().await;
    let zf = h.path("zones/acme.toml");
    let text = std::fs::read_to_string(&zf).unwrap();
    std::fs::write(
        &zf,
        text.replace("from the zone file", "edited")
            .replace("[glue]", "[dnssec]\ndnskey-ttl = 600\n[glue]"),
    )
    .unwrap();
    h.restart().await;
    let m = query_do(&h, &format!("static.{ZONE}"), RecordType::TXT, false, 1232).await;
    assert_eq!(m.answers[0].data.to_string(), "edited");
    let m = query_do(&h, ZONE, RecordType::DNSKEY, false, 1232).await;
    assert!(m.answers.iter().all(|r| r.ttl == 600), "dnskey-ttl applied");
    let (ok, out) = ldns_verify(h.dir.path(), &zone_text(&h), &ds_line(&zone_key(&h)), None).await;
    assert!(ok, "{out}");
}

/// zonewarden with `zone_file` (plus a Knot secondary) on a free port, a
/// Knot secondary pulling from it, a TXT and a TLSA added, and Knot serving
/// that serial: (the harness, Knot, zonewarden's port, Knot's port, the
/// transfer key).
async fn with_knot_secondary(
    zone_file: &str,
) -> (
    Harness,
    common::peers::Peer,
    u16,
    u16,
    zonewarden::tsig::Key,
) {
    use common::peers::knot_secondary;
    use zonewarden::client::wait::{Goal, Target, wait};
    use zonewarden::tsig::{Algorithm, Key};
    require("kdig", "knot-dnsutils");
    let xfr = Key::generate(name("xfr."), Algorithm::HmacSha256).unwrap();
    let (p, kp) = (free_port(), free_port());
    let zone_file = format!(
        "{zone_file}\n[[secondary]]\naddress = \"127.0.0.1:{kp}\"\nkey = \"xfr\"\nname = \"knot\"\n"
    );
    let key = xfr.clone();
    let h = Harness::start_with(move |c| {
        c.listen = vec![format!("127.0.0.1:{p}").parse().unwrap()];
        write(&c.zones_dir.join("acme.toml"), &zone_file);
        zonewarden::tsig::write_key_file(&c.keys_dir.join("xfr.key"), &key).unwrap();
    })
    .await;
    let knot = knot_secondary(ZONE, kp, p, &xfr);
    add_rr(
        &h,
        "mx1",
        "_acme-challenge.mx1",
        RecordType::TXT,
        "\"via knot\"",
    )
    .await;
    add_rr(&h, "mx1", "_25._tcp.mx1", RecordType::TLSA, TLSA).await;
    let serial = h.serial(ZONE).await;
    let targets = [Target {
        label: "knot".into(),
        addr: format!("127.0.0.1:{kp}").parse().unwrap(),
    }];
    if let Err(l) = wait(
        &targets,
        &name(ZONE),
        &Goal::Serial(serial),
        Duration::from_secs(30),
    )
    .await
    {
        panic!("knot did not get serial {serial}: {l:?}\n{}", knot.log());
    }
    (h, knot, p, kp, xfr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_axfr_output_verifies_and_a_secondary_serves_validated_answers() {
    let (h, _knot, p, kp, xfr) = with_knot_secondary(ZONE_FILE).await;
    let anchor = ds_line(&zone_key(&h));
    // What the secondary transferred, fetched from it by AXFR, verifies.
    for (label, port) in [("primary", p), ("knot", kp)] {
        let y = format!("hmac-sha256:xfr.:{}", xfr.secret_base64());
        let (ok, out) = run(
            "kdig",
            &[
                "@127.0.0.1".into(),
                "-p".into(),
                port.to_string(),
                "-y".into(),
                y,
                "+noall".into(),
                "+answer".into(),
                "AXFR".into(),
                ZONE.into(),
            ],
        )
        .await;
        assert!(ok, "{label}: {out}");
        // One SOA: drop the closing copy of the transfer.
        let mut lines: Vec<&str> = out
            .lines()
            .filter(|l| !l.starts_with(';') && !l.trim().is_empty() && !l.contains("\tTSIG\t"))
            .collect();
        let last_soa = lines.iter().rposition(|l| l.contains("\tSOA\t")).unwrap();
        lines.remove(last_soa);
        let text = lines.join("\n") + "\n";
        let (ok, verdict) = ldns_verify(h.dir.path(), &text, &anchor, None).await;
        assert!(ok, "{label} AXFR output: {verdict}\n{text}");
    }
    // A validating resolver that reaches the zone only through the secondary.
    let u = Unbound::start(kp, &anchor).await;
    u.validated("_acme-challenge.mx1._acme.example.org.", "TXT", "NOERROR")
        .await;
    u.validated(
        "x.y._acme-challenge.mx1._acme.example.org.",
        "TXT",
        "NXDOMAIN",
    )
    .await;
    u.validated("_tcp.mx1._acme.example.org.", "TXT", "NOERROR")
        .await;
}

/// A signature broken in the database (not by us) does not hold up the
/// start: the zone is served at once, the stored RRSIGs are checked
/// afterwards, and the broken one is signed again through the writer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_stored_signature_is_served_at_once_and_repaired_after_start() {
    let mut h = Harness::start().await;
    add_rr(&h, "mx1", "_acme-challenge.mx1", RecordType::TXT, "\"t\"").await;
    let owner = format!("_acme-challenge.mx1.{ZONE}");
    // Flip the last octet of the TXT's RRSIG in the database.
    let db = rusqlite::Connection::open(&h.config.database).unwrap();
    let rows: Vec<(i64, String, Vec<u8>)> = db
        .prepare("SELECT id, owner, rdata FROM records WHERE rtype = 46")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let (id, mut rdata) = rows
        .into_iter()
        .find(|(_, o, rd)| {
            o.trim_end_matches('.')
                .eq_ignore_ascii_case(owner.trim_end_matches('.'))
                && rd[..2] == 16u16.to_be_bytes()
        })
        .map(|(id, _, rd)| (id, rd))
        .expect("the TXT's RRSIG is stored");
    *rdata.last_mut().unwrap() ^= 0xff;
    db.execute(
        "UPDATE records SET rdata = ?1 WHERE id = ?2",
        rusqlite::params![rdata, id],
    )
    .unwrap();
    drop(db);
    h.restart().await;
    // Served at once, with a signature.
    let m = query_do(&h, &owner, RecordType::TXT, false, 1232).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(covered(&m.answers), vec![RecordType::TXT]);
    // Repaired shortly after: every signature of the published zone verifies.
    let zone = h.server().zones.zone_exact(&name(ZONE)).unwrap().clone();
    let signer = zonewarden::dnssec::ZoneSigner::new(
        zone_key(&h),
        zone.snapshot().spec.dnssec.clone().unwrap(),
    );
    let mut bad = None;
    for _ in 0..200 {
        bad = signer.unverified(&zone.snapshot(), || true);
        if bad.as_ref().is_some_and(|b| b.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(bad, Some(vec![]), "the broken RRSIG is signed again");
    let audit = h.server().zones.audit_tail(&name(ZONE), 1).unwrap();
    assert_eq!(audit[0].action.as_str(), "dnssec-sign");
    let m = query_do(&h, &owner, RecordType::TXT, false, 1232).await;
    let served = m
        .answers
        .iter()
        .find_map(|r| as_rrsig(&r.data))
        .expect("an RRSIG");
    assert!(
        !rdata.ends_with(served.sig()),
        "the repaired signature is served"
    );
}

// ---- NSEC3 (`[dnssec] denial = "nsec3"`) ----

/// The test zone file, with `denial` set.
fn zone_file_with_denial(denial: &str) -> String {
    format!("{ZONE_FILE}\n[dnssec]\ndenial = \"{denial}\"\n")
}

/// What the served zone proves denial with: (NSEC RRs, NSEC3 RRs, NSEC3PARAM RRs).
fn denial_counts(h: &Harness) -> (usize, usize, usize) {
    let zone = h.server().zones.zone_exact(&name(ZONE)).unwrap().snapshot();
    let all = zone.all_records();
    let count = |t| all.iter().filter(|r| r.record_type() == t).count();
    (
        count(RecordType::NSEC),
        count(RecordType::NSEC3),
        count(RecordType::NSEC3PARAM),
    )
}

/// Unbound validates (AD) positive, NODATA, empty non-terminal and NXDOMAIN
/// answers (names one, two and three labels below existing ones); every
/// query name gets `tag` so answers cached from an earlier step are not
/// reused.
async fn validate_every_kind(u: &Unbound, tag: &str) {
    #[rustfmt::skip]
    let cases = [
        ("_acme-challenge.mx1".to_string(), "TXT", "NOERROR"),
        ("static".into(), "TXT", "NOERROR"),
        ("".into(), "DNSKEY", "NOERROR"),
        ("ns1".into(), "A", "NOERROR"),
        // NODATA at a name, at the apex, at empty non-terminals
        ("_acme-challenge.mx1".into(), "AAAA", "NOERROR"),
        ("static".into(), "A", "NOERROR"),
        ("_tcp.mx1".into(), "TXT", "NOERROR"),
        ("mx1".into(), "SRV", "NOERROR"),
        // NXDOMAIN, one, two and three labels below existing names
        (format!("nothing-{tag}"), "TXT", "NXDOMAIN"),
        (format!("{tag}.static"), "TXT", "NXDOMAIN"),
        (format!("a.{tag}._acme-challenge.mx1"), "TXT", "NXDOMAIN"),
        (format!("x.y.{tag}._25._tcp.mx1"), "TLSA", "NXDOMAIN"),
        (format!("_{tag}._tcp.mx1"), "TLSA", "NXDOMAIN"),
    ];
    for (rel, qtype, status) in cases {
        u.validated(&zname(&rel).to_string(), qtype, status).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nsec3_answers_validate_before_and_after_updates_and_a_restart() {
    let text = zone_file_with_denial("nsec3");
    let mut h = Harness::start_with(move |c| write(&c.zones_dir.join("acme.toml"), &text)).await;
    let (nsec, nsec3, param) = denial_counts(&h);
    assert_eq!((nsec, param), (0, 1), "NSEC3 only");
    assert!(nsec3 >= 3, "{nsec3}");
    add_rr(&h, "mx1", "_acme-challenge.mx1", RecordType::TXT, "\"t\"").await;
    add_rr(&h, "mx1", "_25._tcp.mx1", RecordType::TLSA, TLSA).await;
    let anchor = ds_line(&zone_key(&h));
    // our answers carry NSEC3 proofs: the closest encloser proof has three
    // (encloser, next closer, wildcard), NODATA one
    let m = query_do(
        &h,
        &format!("a.b.static.{ZONE}"),
        RecordType::TXT,
        false,
        1232,
    )
    .await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    let t = types(&m.authorities);
    assert_eq!(
        t.iter().filter(|t| **t == RecordType::NSEC3).count(),
        3,
        "{t:?}"
    );
    assert!(!t.contains(&RecordType::NSEC));
    let m = query_do(
        &h,
        &format!("_tcp.mx1.{ZONE}"),
        RecordType::TXT,
        false,
        1232,
    )
    .await;
    assert_eq!(
        types(&m.authorities)
            .iter()
            .filter(|t| **t == RecordType::NSEC3)
            .count(),
        1
    );
    // an NSEC3 owner name does not exist (RFC 5155 §7.2.8)
    let owner = zonewarden::dnssec::nsec3::Params::RFC9276.owner(&name(ZONE), &zname("static"));
    let m = query_do(&h, &owner.to_string(), RecordType::NSEC3, false, 1232).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);

    let u = Unbound::start(h.addr.port(), &anchor).await;
    validate_every_kind(&u, "n1").await;
    let (ok, out) = ldns_verify(h.dir.path(), &zone_text(&h), &anchor, None).await;
    assert!(ok, "ldns-verify-zone, NSEC3:\n{out}");

    // UPDATE may not touch NSEC3 or NSEC3PARAM, not even an admin's
    for rr in [
        del_rrset(&zname(""), RecordType::NSEC3PARAM),
        del_rrset(&owner, RecordType::NSEC3),
        {
            use hickory_proto::dnssec::rdata::{DNSSECRData, NSEC3PARAM};
            let param = NSEC3PARAM::new(Default::default(), false, 0, vec![]);
            let mut r =
                Record::from_rdata(zname(""), 60, RData::DNSSEC(DNSSECRData::NSEC3PARAM(param)));
            r.dns_class = hickory_proto::rr::DNSClass::IN;
            r
        },
    ] {
        let rc = h
            .update_rcode("ops", update_msg(ZONE, vec![], vec![rr]))
            .await;
        assert_eq!(rc, ResponseCode::Refused);
    }

    // adds and deletes: new names with new empty non-terminals, names gone
    add_rr(&h, "www1", "_acme-challenge.www1", RecordType::TXT, "\"w\"").await;
    add_rr(&h, "mx1", "_587._tcp.mx1", RecordType::TLSA, TLSA).await;
    u.validated(&format!("_acme-challenge.www1.{ZONE}"), "TXT", "NOERROR")
        .await;
    u.validated(&format!("www1.{ZONE}"), "A", "NOERROR").await; // now an ENT
    u.validated(&format!("_587._tcp.mx1.{ZONE}"), "TLSA", "NOERROR")
        .await;
    delete_rrset(&h, "www1", "_acme-challenge.www1", RecordType::TXT).await;
    delete_rrset(&h, "mx1", "_25._tcp.mx1", RecordType::TLSA).await;
    u.validated(&format!("_acme-challenge.www1.{ZONE}"), "AAAA", "NXDOMAIN")
        .await;
    u.validated(&format!("www1.{ZONE}"), "AAAA", "NXDOMAIN")
        .await;
    u.validated(
        &format!("q.r._acme-challenge.www1.{ZONE}"),
        "TXT",
        "NXDOMAIN",
    )
    .await;
    u.validated(&format!("_25._tcp.mx1.{ZONE}"), "AAAA", "NXDOMAIN")
        .await;
    u.validated(&format!("_tcp.mx1.{ZONE}"), "AAAA", "NOERROR")
        .await; // still an ENT
    add_rr(&h, "mx1", "_25._tcp.mx1", RecordType::TLSA, TLSA).await;
    validate_every_kind(&u, "n2").await;
    let (ok, out) = ldns_verify(h.dir.path(), &zone_text(&h), &anchor, None).await;
    assert!(ok, "ldns-verify-zone after updates:\n{out}");

    // a restart signs nothing and still validates
    let serial = h.serial(ZONE).await;
    h.restart().await;
    assert_eq!(h.serial(ZONE).await, serial, "nothing re-signed on restart");
    let u = Unbound::start(h.addr.port(), &anchor).await;
    validate_every_kind(&u, "n3").await;
    add_rr(
        &h,
        "www1",
        "_acme-challenge.www1",
        RecordType::TXT,
        "\"again\"",
    )
    .await;
    u.validated(&format!("_acme-challenge.www1.{ZONE}"), "TXT", "NOERROR")
        .await;
    u.validated(&format!("x._acme-challenge.www1.{ZONE}"), "TXT", "NXDOMAIN")
        .await;
    let (ok, out) = ldns_verify(h.dir.path(), &zone_text(&h), &anchor, None).await;
    assert!(ok, "ldns-verify-zone after the restart:\n{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_nsec_to_nsec3_and_back_across_restarts_keeps_answers_validated() {
    let mut h = Harness::start().await;
    add_rr(&h, "mx1", "_acme-challenge.mx1", RecordType::TXT, "\"t\"").await;
    add_rr(&h, "mx1", "_25._tcp.mx1", RecordType::TLSA, TLSA).await;
    let anchor = ds_line(&zone_key(&h));
    let zf = h.path("zones/acme.toml");
    let mut u = Unbound::start(h.addr.port(), &anchor).await;
    validate_every_kind(&u, "s0").await;
    for (i, denial) in ["nsec3", "nsec"].into_iter().enumerate() {
        let serial = h.serial(ZONE).await;
        write(&zf, &zone_file_with_denial(denial));
        let port = h.addr.port();
        h.restart().await;
        // two journaled changes, NSEC3PARAM last on, first off
        assert_eq!(
            h.serial(ZONE).await,
            serial.wrapping_add(2),
            "{denial}: two changes"
        );
        let audit = h.server().zones.audit_tail(&name(ZONE), 2).unwrap();
        assert!(
            audit.iter().all(|a| a.action.as_str() == "dnssec-sign"),
            "{audit:?}"
        );
        let (nsec, nsec3, param) = denial_counts(&h);
        match denial {
            "nsec3" => assert!(
                nsec == 0 && nsec3 > 0 && param == 1,
                "{nsec} {nsec3} {param}"
            ),
            _ => assert!(
                nsec > 0 && nsec3 == 0 && param == 0,
                "{nsec} {nsec3} {param}"
            ),
        }
        // secondaries get both steps by IXFR; NSEC3PARAM last on, first off
        let steps = h
            .server()
            .zones
            .zone_exact(&name(ZONE))
            .unwrap()
            .journal_between(serial, serial.wrapping_add(2))
            .unwrap()
            .expect("the journal holds both steps");
        let touches = |c: &zonewarden::zone::change::JournalEntry, t: RecordType| {
            c.removed
                .iter()
                .chain(&c.added)
                .any(|r| r.record_type() == t)
        };
        let param_in: Vec<bool> = steps
            .iter()
            .map(|c| touches(c, RecordType::NSEC3PARAM))
            .collect();
        match denial {
            "nsec3" => {
                assert_eq!(param_in, [false, true], "NSEC3PARAM last on");
                assert!(
                    steps[0]
                        .added
                        .iter()
                        .any(|r| r.record_type() == RecordType::NSEC3)
                );
                assert!(
                    !touches(&steps[0], RecordType::NSEC),
                    "NSEC stays for the first step"
                );
            }
            _ => {
                assert_eq!(param_in, [true, false], "NSEC3PARAM first off");
                assert!(
                    steps[0]
                        .added
                        .iter()
                        .any(|r| r.record_type() == RecordType::NSEC)
                );
                let count = |rs: &[Record]| {
                    rs.iter()
                        .filter(|r| r.record_type() == RecordType::NSEC3)
                        .count()
                };
                assert_eq!(
                    count(&steps[0].removed),
                    count(&steps[0].added),
                    "the NSEC3 chain stays whole for the first step (the apex's bitmap changes)"
                );
            }
        }
        // the state between the two steps (the final one less the second
        // step) is a valid zone too
        let mut between: Vec<Record> = h
            .server()
            .zones
            .zone_exact(&name(ZONE))
            .unwrap()
            .snapshot()
            .all_records()
            .into_iter()
            .filter(|r| {
                !steps[1]
                    .added
                    .iter()
                    .any(|a| a.name == r.name && a.data == r.data)
            })
            .chain(steps[1].removed.iter().cloned())
            .collect();
        if let RData::SOA(soa) = &mut between[0].data {
            soa.serial = steps[0].serial_to;
        }
        // It holds both chains, which ldns-verify-zone cannot read as one
        // zone (it keeps one NSEC or NSEC3 per name): each chain is
        // checked on its own, the zone less the other chain's records.
        for (chain, other) in [
            (RecordType::NSEC, RecordType::NSEC3),
            (RecordType::NSEC3, RecordType::NSEC),
        ] {
            let view: Vec<Record> = between
                .iter()
                .filter(|r| {
                    r.record_type() != other
                        && as_rrsig(&r.data).is_none_or(|s| s.input().type_covered != other)
                })
                .cloned()
                .collect();
            assert!(view.iter().any(|r| r.record_type() == chain));
            let (ok, out) = ldns_verify(h.dir.path(), &presentation(&view), &anchor, None).await;
            assert!(
                ok,
                "ldns-verify-zone between the steps to {denial}, its {chain} chain:\n{out}"
            );
        }
        if h.addr.port() != port {
            u = Unbound::start(h.addr.port(), &anchor).await;
        }
        validate_every_kind(&u, &format!("s{}", i + 1)).await;
        let (ok, out) = ldns_verify(h.dir.path(), &zone_text(&h), &anchor, None).await;
        assert!(ok, "ldns-verify-zone after the switch to {denial}:\n{out}");
        // and the zone keeps following updates
        add_rr(&h, "www1", "_acme-challenge.www1", RecordType::TXT, "\"w\"").await;
        u.validated(&format!("_acme-challenge.www1.{ZONE}"), "TXT", "NOERROR")
            .await;
        delete_rrset(&h, "www1", "_acme-challenge.www1", RecordType::TXT).await;
        u.validated(&format!("www1.{ZONE}"), "TXT", "NXDOMAIN")
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_knot_secondary_serves_the_nsec3_zone_and_its_nxdomain_validates() {
    let (h, _knot, _p, kp, _xfr) = with_knot_secondary(&zone_file_with_denial("nsec3")).await;
    // Knot answers from the NSEC3 chain it transferred
    let (ok, out) = run(
        "kdig",
        &[
            "@127.0.0.1".into(),
            "-p".into(),
            kp.to_string(),
            "+dnssec".into(),
            format!("x.y._acme-challenge.mx1.{ZONE}"),
            "TXT".into(),
        ],
    )
    .await;
    assert!(
        ok && out.contains("NXDOMAIN") && out.contains("NSEC3"),
        "{out}"
    );
    let anchor = ds_line(&zone_key(&h));
    let u = Unbound::start(kp, &anchor).await;
    u.validated(
        &format!("x.y._acme-challenge.mx1.{ZONE}"),
        "TXT",
        "NXDOMAIN",
    )
    .await;
    u.validated(&format!("nothing.{ZONE}"), "TXT", "NXDOMAIN")
        .await;
    u.validated(&format!("_tcp.mx1.{ZONE}"), "TXT", "NOERROR")
        .await;
    u.validated(&format!("_acme-challenge.mx1.{ZONE}"), "TXT", "NOERROR")
        .await;
}
