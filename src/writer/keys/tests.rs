//! Rollover steps carried out by the writer: what each does to the zone
//! (DNSKEY, CDS, signatures), that it is a journaled change with its own
//! audit row, and that a restart in the middle resumes with the same keys.

use std::path::Path;
use std::sync::Arc;

use hickory_proto::rr::{Name, RData, RecordType};

use super::super::tests::{T0, assert_fully_signed, demo_in, fixture};
use super::*;
use crate::clock::ManualClock;
use crate::metrics::Metrics;

/// The key tags of the RRSIGs over `rtype` at `name`.
fn signers(zone: &ZoneData, name: &Name, rtype: RecordType) -> Vec<u16> {
    let mut tags: Vec<u16> = zone
        .records(name, RecordType::RRSIG)
        .iter()
        .filter_map(|r| crate::zone::as_rrsig(&r.data))
        .filter(|s| s.input().type_covered == rtype)
        .map(|s| s.input().key_tag)
        .collect();
    tags.sort();
    tags
}

fn apex_tags(zone: &ZoneData, rtype: RecordType) -> Vec<u16> {
    let mut tags: Vec<u16> = zone
        .records(zone.origin(), rtype)
        .iter()
        .filter_map(|r| match &r.data {
            RData::DNSSEC(hickory_proto::dnssec::rdata::DNSSECRData::DNSKEY(k)) => {
                k.calculate_key_tag().ok()
            }
            RData::DNSSEC(hickory_proto::dnssec::rdata::DNSSECRData::CDS(ds)) => Some(ds.key_tag()),
            _ => None,
        })
        .collect();
    tags.sort();
    tags
}

fn record(zone: &ZoneHandle, state: KeyState) -> KeyRecord {
    zone.with_reader(|s| s.keys(&zone.origin))
        .unwrap()
        .into_iter()
        .rev()
        .find(|k| k.state == state)
        .unwrap_or_else(|| panic!("no {state} key"))
}

#[test]
fn a_rollover_publishes_double_signs_submits_and_retires() {
    let f = fixture();
    let z = &f.zone;
    let signer = z.signer.as_ref().unwrap();
    let apex = z.origin.clone();
    let old = record(z, KeyState::Active);
    assert_eq!(
        old.file,
        crate::dnssec::key::key_path(Path::new("x"), &apex)
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
    );
    let serial0 = z.snapshot().serial;

    // 1. start: a second key in the DNSKEY RRset, signing every RRset
    z.write(Draft::KeyStep(Step::Start {
        old: old.id,
        algorithm: old.algorithm,
        reason: "test".into(),
    }))
    .unwrap();
    let snap = z.snapshot();
    let new = record(z, KeyState::Published);
    assert_ne!(new.tag, old.tag);
    assert_eq!(new.since_serial, Some(snap.serial));
    assert!(crate::serial::at_least(snap.serial, serial0 + 1));
    let mut both = vec![old.tag, new.tag];
    both.sort();
    assert_eq!(apex_tags(&snap, RecordType::DNSKEY), both);
    assert_eq!(
        apex_tags(&snap, RecordType::CDS),
        vec![old.tag],
        "CDS still the old key"
    );
    assert_eq!(signers(&snap, &apex, RecordType::SOA), both);
    assert_eq!(signers(&snap, &apex, RecordType::NS), both);
    assert_fully_signed(signer, &snap);
    let audit = z.with_reader(|s| s.audit_tail(&apex, 1)).unwrap();
    assert_eq!(audit[0].action, Action::DnssecKey);
    assert!(audit[0].detail.contains("published"), "{}", audit[0].detail);
    // the step is in the journal: IXFR carries it
    let j = z.journal_between(serial0, snap.serial).unwrap().unwrap();
    assert!(j.iter().any(|e| {
        e.added
            .iter()
            .any(|r| r.record_type() == RecordType::DNSKEY)
    }));

    // 2. submit: CDS and CDNSKEY now name the new key
    z.write(Draft::KeyStep(Step::Submit { key: new.id }))
        .unwrap();
    let snap = z.snapshot();
    assert_eq!(record(z, KeyState::Ready).id, new.id);
    assert_eq!(apex_tags(&snap, RecordType::CDS), vec![new.tag]);
    assert_eq!(apex_tags(&snap, RecordType::DNSKEY), both);
    assert_fully_signed(signer, &snap);

    // a restart in the middle: the same two keys sign, nothing changes
    let dir = f._dir.path().to_path_buf();
    let before = z.snapshot();
    let reopened = {
        let (config, spec) = demo_in(&dir);
        let (zone, _) = ZoneHandle::open(
            spec,
            &config,
            Arc::new(ManualClock::new(T0)),
            Arc::new(Metrics::default()),
        )
        .unwrap();
        zone
    };
    assert_eq!(
        reopened.snapshot().serial,
        before.serial,
        "nothing to re-sign"
    );
    assert_eq!(reopened.signer.as_ref().unwrap().keys().signing.len(), 2);
    assert_eq!(
        reopened.signer.as_ref().unwrap().key().unwrap().key_tag(),
        new.tag
    );
    drop(reopened);

    // 3. DS seen (a record-only step), then retire
    z.write(Draft::KeyStep(Step::DsSeen {
        key: new.id,
        ttl: 60,
    }))
    .unwrap();
    assert_eq!(record(z, KeyState::Ready).ds_seen, Some(T0));
    z.write(Draft::KeyStep(Step::Retire {
        old: old.id,
        new: new.id,
    }))
    .unwrap();
    let snap = z.snapshot();
    assert_eq!(apex_tags(&snap, RecordType::DNSKEY), vec![new.tag]);
    assert_eq!(signers(&snap, &apex, RecordType::SOA), vec![new.tag]);
    assert_eq!(signers(&snap, &apex, RecordType::DNSKEY), vec![new.tag]);
    assert_eq!(record(z, KeyState::Active).id, new.id);
    assert_eq!(record(z, KeyState::Retired).id, old.id);
    assert_fully_signed(signer, &snap);
    z.write(Draft::KeyStep(Step::Remove { key: old.id }))
        .unwrap();
    assert_eq!(record(z, KeyState::Removed).id, old.id);
    // the old key's file stays (never overwritten, never deleted)
    assert!(dir.join("data/dnssec").join(&old.file).exists());
    assert!(dir.join("data/dnssec").join(&new.file).exists());
}

#[test]
fn a_roll_request_is_refused_while_one_is_under_way() {
    let f = fixture();
    let z = &f.zone;
    assert!(z.request_roll().unwrap());
    let old = record(z, KeyState::Active);
    assert_eq!(old.roll_requested, Some(T0));
    let plan = z.plan(T0).unwrap();
    assert!(matches!(plan.step, Some(Step::Start { .. })), "{plan:?}");
    z.write(Draft::KeyStep(plan.step.unwrap())).unwrap();
    assert!(!z.request_roll().unwrap(), "a rollover is under way");
}

fn algorithms(zone: &ZoneData, name: &Name, rtype: RecordType) -> Vec<u8> {
    let mut algs: Vec<u8> = zone
        .records(name, RecordType::RRSIG)
        .iter()
        .filter_map(|r| crate::zone::as_rrsig(&r.data))
        .filter(|s| s.input().type_covered == rtype)
        .map(|s| u8::from(s.input().algorithm))
        .collect();
    algs.sort();
    algs
}

#[test]
fn an_algorithm_rollover_signs_before_publishing_and_withdraws_before_unsigning() {
    let f = fixture();
    let z = &f.zone;
    let signer = z.signer.as_ref().unwrap();
    let apex = z.origin.clone();
    let old = record(z, KeyState::Active);
    let step = |s: Step| z.write(Draft::KeyStep(s)).unwrap();
    step(Step::Start {
        old: old.id,
        algorithm: crate::zonefile::KeyAlgorithm::Ed25519,
        reason: "test".into(),
    });
    let new = record(z, KeyState::Signing);
    assert!(!z.request_roll().unwrap(), "a rollover is under way");
    let snap = z.snapshot();
    assert_eq!(
        apex_tags(&snap, RecordType::DNSKEY),
        vec![old.tag],
        "not published yet"
    );
    assert_eq!(algorithms(&snap, &apex, RecordType::SOA), vec![13, 15]);
    assert_eq!(algorithms(&snap, &apex, RecordType::NSEC), vec![13, 15]);
    assert_fully_signed(signer, &snap);
    step(Step::Publish { key: new.id });
    let mut both = vec![old.tag, new.tag];
    both.sort();
    assert_eq!(apex_tags(&z.snapshot(), RecordType::DNSKEY), both);
    step(Step::Submit { key: new.id });
    step(Step::DsSeen {
        key: new.id,
        ttl: 60,
    });
    step(Step::Retire {
        old: old.id,
        new: new.id,
    });
    let snap = z.snapshot();
    assert_eq!(record(z, KeyState::Withdrawn).id, old.id);
    assert_eq!(apex_tags(&snap, RecordType::DNSKEY), vec![new.tag]);
    assert_eq!(
        algorithms(&snap, &apex, RecordType::SOA),
        vec![13, 15],
        "old signatures stay"
    );
    assert_fully_signed(signer, &snap);
    step(Step::Unsign { key: old.id });
    let snap = z.snapshot();
    assert_eq!(algorithms(&snap, &apex, RecordType::SOA), vec![15]);
    assert_eq!(algorithms(&snap, &apex, RecordType::DNSKEY), vec![15]);
    assert_eq!(record(z, KeyState::Retired).id, old.id);
    assert_fully_signed(signer, &snap);
}

#[test]
fn turning_dnssec_off_publishes_cds_delete_then_removes_every_dnssec_record() {
    let f = fixture();
    let z = &f.zone;
    let signer = z.signer.as_ref().unwrap();
    let apex = z.origin.clone();
    let key = record(z, KeyState::Active);
    z.write(Draft::KeyStep(Step::Leave { key: key.id }))
        .unwrap();
    let snap = z.snapshot();
    let cds = snap.records(&apex, RecordType::CDS);
    assert_eq!(cds.len(), 1);
    assert_eq!(cds[0].data.to_string(), "0 0 0 00");
    let cdnskey = snap.records(&apex, RecordType::CDNSKEY);
    assert_eq!(cdnskey[0].data.to_string(), "0 3 0 AA==");
    assert_eq!(
        apex_tags(&snap, RecordType::DNSKEY),
        vec![key.tag],
        "still signed"
    );
    assert_fully_signed(signer, &snap);
    z.write(Draft::KeyStep(Step::DsRemoved { key: key.id }))
        .unwrap();
    z.write(Draft::KeyStep(Step::Off { key: key.id })).unwrap();
    let snap = z.snapshot();
    assert!(
        snap.all_records()
            .iter()
            .all(|r| !crate::zone::is_dnssec_type(r.record_type())),
        "a DNSSEC record is left"
    );
    assert!(!signer.is_on());
    assert_eq!(record(z, KeyState::Retired).id, key.id);
}

/// A zone signed before keys were recorded (a database from before this
/// version, or the key rows gone) keeps its key as the active one, even
/// when the zone file now asks for another algorithm: that starts an
/// algorithm rollover instead of a new key the parent's DS does not match.
#[test]
fn an_unrecorded_key_is_kept_and_an_algorithm_change_rolls_from_it() {
    let f = fixture();
    let before = record(&f.zone, KeyState::Active);
    let dir = f._dir.path().to_path_buf();
    let serial = f.zone.snapshot().serial;
    drop(f.zone);
    let (config, mut spec) = demo_in(&dir);
    rusqlite::Connection::open(&config.database)
        .unwrap()
        .execute("DELETE FROM dnssec_keys", [])
        .unwrap();
    spec.dnssec.as_mut().unwrap().algorithm = crate::zonefile::KeyAlgorithm::Ed25519;
    let (zone, _) = ZoneHandle::open(
        spec,
        &config,
        Arc::new(ManualClock::new(T0)),
        Arc::new(Metrics::default()),
    )
    .unwrap();
    assert_eq!(zone.snapshot().serial, serial, "nothing re-signed at start");
    let active = record(&zone, KeyState::Active);
    assert_eq!((active.tag, active.file), (before.tag, before.file));
    assert_eq!(
        zone.signer.as_ref().unwrap().key().unwrap().key_tag(),
        before.tag
    );
    let plan = zone.plan(T0).unwrap();
    assert!(
        matches!(
            plan.step,
            Some(Step::Start {
                algorithm: crate::zonefile::KeyAlgorithm::Ed25519,
                ..
            })
        ),
        "{plan:?}"
    );
}
