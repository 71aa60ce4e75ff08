//! Unit tests of the group commit: UPDATEs held in the queue while the
//! writer lock is taken go through as one batch, each checked against the
//! state the one before it left; a refused one spoils nothing; a failed
//! commit fails them all and changes nothing.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use super::*;
use crate::acl::Policy;
use crate::clock::ManualClock;
use crate::config::Config;
use crate::store::Accepted;

pub(super) const T0: u64 = 1_700_000_000;
const ZONE: &str = "_acme.example.org.";

fn n(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

fn txt(owner: &str, value: &str) -> Record {
    Record::from_rdata(
        n(&format!("{owner}.{ZONE}")),
        60,
        RData::try_from_str(RecordType::TXT, value).unwrap(),
    )
}

/// Prerequisite: the RRset holds exactly this value (RFC 2136 §2.4.2).
fn holds(owner: &str, value: &str) -> Record {
    let mut r = txt(owner, value);
    r.ttl = 0;
    r
}

/// Prerequisite: the name is in use (RFC 2136 §2.4.4).
fn in_use(owner: &str) -> Record {
    let mut r = Record::update0(n(&format!("{owner}.{ZONE}")), 0, RecordType::ANY);
    r.dns_class = DNSClass::ANY;
    r
}

/// A configuration whose data lives in `dir`, and the repository's demo
/// zone (signed).
pub(super) fn demo_in(dir: &Path) -> (Config, crate::zonefile::ZoneSpec) {
    let mut config = Config::embedded_default();
    config.data_dir = dir.join("data");
    config.database = dir.join("data/zonewarden.sqlite");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let spec = crate::zonefile::load_file(&root.join("zones/_acme.example.org.toml")).unwrap();
    (config, spec)
}

pub(super) struct Fixture {
    pub(super) _dir: tempfile::TempDir,
    pub(super) zone: Arc<ZoneHandle>,
    metrics: Arc<Metrics>,
    machine: Arc<Machine>,
}

/// The repository's demo zone (signed) in a fresh database, and machine
/// mx1 (its ACL: TXT at `_acme-challenge.mx1`, TLSA at `_*._tcp.mx1`).
pub(super) fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let (config, spec) = demo_in(dir.path());
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let acl = std::fs::read_to_string(root.join("acl/mx1.toml")).unwrap();
    let machine = Policy::parse_file(Path::new("acl/mx1.toml"), &acl, &[n(ZONE)]).unwrap();
    let metrics = Arc::new(Metrics::default());
    let clock = Arc::new(ManualClock::new(T0));
    // A fresh database: everything is checked before open returns, nothing
    // is left for after the start.
    let (zone, _after_start) = ZoneHandle::open(spec, &config, clock, metrics.clone()).unwrap();
    assert!(zone.signer.is_some(), "the demo zone is signed");
    Fixture {
        _dir: dir,
        zone: Arc::new(zone),
        metrics,
        machine: Arc::new(machine),
    }
}

impl Fixture {
    fn draft(&self, prereqs: Vec<Record>, updates: Vec<Record>, mac: u8) -> UpdateDraft {
        UpdateDraft {
            prereqs,
            updates,
            machine: self.machine.clone(),
            key: n("mx1."),
            source: "127.0.0.1".parse().unwrap(),
            accepted: Some(Accepted {
                key: "mx1.".into(),
                id: vec![mac; 32],
                expires: T0 + 600,
            }),
        }
    }

    fn commits(&self) -> (u64, u64) {
        let text = crate::metrics::encode(&self.metrics.registry()).unwrap();
        let count = text
            .lines()
            .find_map(|l| l.strip_prefix("zonewarden_sqlite_commit_duration_seconds_count "))
            .map_or(0, |v| v.trim().parse().unwrap());
        (
            count,
            self.metrics.committed_changes.load(Ordering::Relaxed),
        )
    }

    /// Send `drafts` while the writer lock is held, each queued before the
    /// next is sent (so the queue's order is theirs), then let the writer
    /// go: they are applied as one batch. Their answers, in order.
    fn batch(&self, drafts: Vec<UpdateDraft>) -> Vec<Result<Written, WriteError>> {
        let held = self.zone.lock_store();
        let mut threads = Vec::new();
        for (i, d) in drafts.into_iter().enumerate() {
            let zone = self.zone.clone();
            threads.push(std::thread::spawn(move || zone.write(Draft::Update(d))));
            let deadline = Instant::now() + Duration::from_secs(10);
            while self.zone.group.queued() < i + 1 {
                assert!(Instant::now() < deadline, "UPDATE {i} never queued");
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        drop(held);
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    }
}

fn refused(r: &Result<Written, WriteError>) -> ResponseCode {
    match r {
        Err(WriteError::Refused(r)) => r.rcode,
        other => panic!("not refused: {other:?}"),
    }
}

#[test]
fn queued_updates_share_one_commit_each_checked_against_the_one_before() {
    let f = fixture();
    let serial0 = f.zone.snapshot().serial;
    let (commits0, changes0) = f.commits();
    let name = "_acme-challenge.mx1";
    let answers = f.batch(vec![
        // 0: adds "a"
        f.draft(vec![], vec![txt(name, "a")], 0),
        // 1: its prerequisite holds only after 0: adds "b"
        f.draft(vec![holds(name, "a")], vec![txt(name, "b")], 1),
        // 2: outside mx1's ACL: refused, spoils nothing
        f.draft(vec![], vec![txt("_acme-challenge.www1", "x")], 2),
        // 3: a prerequisite that fails (no such name): refused
        f.draft(vec![in_use("nowhere")], vec![txt(name, "c")], 3),
        // 4: adds "a" again: no change
        f.draft(vec![], vec![txt(name, "a")], 4),
        // 5: sees 1's "b" (the RRset is now a and b, so "a" alone fails)
        f.draft(vec![holds(name, "a")], vec![txt(name, "d")], 5),
        // 6: adds "e"
        f.draft(vec![], vec![txt(name, "e")], 6),
    ]);
    let serial = |r: &Result<Written, WriteError>| r.as_ref().unwrap().serial.unwrap();
    assert_eq!(serial(&answers[0]), serial0 + 1);
    assert_eq!(serial(&answers[1]), serial0 + 2);
    assert_eq!(refused(&answers[2]), ResponseCode::Refused);
    assert_eq!(refused(&answers[3]), ResponseCode::NXDomain);
    assert_eq!(
        answers[4].as_ref().unwrap().serial,
        None,
        "nothing to change"
    );
    assert_eq!(refused(&answers[5]), ResponseCode::NXRRSet);
    assert_eq!(serial(&answers[6]), serial0 + 3);

    // One commit for the batch, three changes in it.
    let (commits, changes) = f.commits();
    assert_eq!((commits - commits0, changes - changes0), (1, 3));
    // Published once, at the last serial, with every change in it.
    let snap = f.zone.snapshot();
    assert_eq!(snap.serial, serial0 + 3);
    let owner = n(&format!("{name}.{ZONE}"));
    let mut values: Vec<String> = snap
        .all_records()
        .into_iter()
        .filter(|r| r.name == owner && r.record_type() == RecordType::TXT)
        .map(|r| r.data.to_string())
        .collect();
    values.sort();
    assert_eq!(values, ["a", "b", "e"]);
    // The journal has one exact entry per UPDATE (IXFR from a serial in
    // the middle of the batch); the batch is signed once, in the last.
    let mid = f
        .zone
        .journal_between(serial0 + 1, serial0 + 3)
        .unwrap()
        .expect("the journal reaches back to the middle of the batch");
    assert_eq!(mid.len(), 2);
    assert_eq!(
        (mid[0].serial_from, mid[0].serial_to),
        (serial0 + 1, serial0 + 2)
    );
    let added_txt = |e: &crate::zone::change::JournalEntry| -> Vec<String> {
        e.added
            .iter()
            .filter(|r| r.record_type() == RecordType::TXT)
            .map(|r| r.data.to_string())
            .collect()
    };
    assert_eq!(added_txt(&mid[0]), ["b"]);
    assert_eq!(added_txt(&mid[1]), ["e"]);
    let signs = |e: &crate::zone::change::JournalEntry, t: RecordType| {
        e.added
            .iter()
            .any(|r| crate::zone::as_rrsig(&r.data).is_some_and(|s| s.input().type_covered == t))
    };
    assert!(!signs(&mid[0], RecordType::TXT) && !signs(&mid[0], RecordType::SOA));
    assert!(signs(&mid[1], RecordType::TXT) && signs(&mid[1], RecordType::SOA));
    // One audit row per change.
    let audit = f.zone.with_reader(|s| s.audit_tail(&n(ZONE), 3)).unwrap();
    let details: Vec<&str> = audit.iter().map(|a| a.detail.as_str()).collect();
    assert!(
        details[0].ends_with("TXT e") && details[2].ends_with("TXT a"),
        "{details:?}"
    );
    // Every MAC is remembered, the refused and unchanged ones too.
    let macs = f.zone.with_reader(|s| s.accepted_since(T0)).unwrap();
    let mut ids: Vec<u8> = macs.iter().map(|a| a.id[0]).collect();
    ids.sort();
    assert_eq!(ids, [0, 1, 2, 3, 4, 5, 6]);
    assert_eq!(f.metrics.updates_waiting.load(Ordering::Relaxed), 0);
}

#[test]
fn a_failed_commit_fails_every_update_of_its_batch_and_changes_nothing() {
    let f = fixture();
    let name = "_acme-challenge.mx1";
    // The database may not grow (as on a full disk): batches of four
    // UPDATEs with big values until one does not fit.
    f.zone.lock_store().limit_size(0).unwrap();
    let big = |i: usize| format!("{i}-{}", "x".repeat(250));
    let batch = |round: usize| -> Vec<UpdateDraft> {
        (0..4)
            .map(|i| f.draft(vec![], vec![txt(name, &big(round * 4 + i))], i as u8))
            .chain([f.draft(vec![], vec![txt("_acme-challenge.www1", "x")], 9)])
            .collect()
    };
    let failures_before = f.metrics.commit_failures.load(Ordering::Relaxed);
    let mut failed = None;
    for round in 0..50 {
        let before = f.zone.snapshot();
        let answers = f.batch(batch(round));
        if answers[0].is_ok() {
            continue;
        }
        // Every UPDATE of the batch failed, the refused one too (it was
        // judged on a state that never came to be).
        for a in &answers {
            assert!(matches!(a, Err(WriteError::Store(_))), "{a:?}");
        }
        assert!(
            Arc::ptr_eq(&before, &f.zone.snapshot()),
            "nothing published"
        );
        failed = Some((round, before));
        break;
    }
    let (round, before) = failed.expect("the database never filled up");
    assert_eq!(
        f.metrics.commit_failures.load(Ordering::Relaxed),
        failures_before + 1
    );
    // Room again: the same UPDATEs go through, from the same serial.
    f.zone.lock_store().limit_size(1 << 40).unwrap();
    let answers = f.batch(batch(round));
    for (i, a) in answers[..4].iter().enumerate() {
        assert_eq!(
            a.as_ref().unwrap().serial,
            Some(before.serial + 1 + i as u32)
        );
    }
    assert_eq!(refused(&answers[4]), ResponseCode::Refused);
}

#[test]
fn an_update_alone_is_committed_on_its_own_thread() {
    let f = fixture();
    let serial0 = f.zone.snapshot().serial;
    let w = f
        .zone
        .write(Draft::Update(f.draft(
            vec![],
            vec![txt("_acme-challenge.mx1", "alone")],
            1,
        )))
        .unwrap();
    assert_eq!(w.serial, Some(serial0 + 1));
    assert_eq!(f.zone.snapshot().serial, serial0 + 1);
    assert_eq!(f.zone.group.queued(), 0);
}

fn tlsa(owner: &str, hex: &str) -> Record {
    Record::from_rdata(
        n(&format!("{owner}.{ZONE}")),
        300,
        RData::try_from_str(RecordType::TLSA, &format!("3 1 1 {hex}")).unwrap(),
    )
}

/// An RR to delete (RFC 2136 §2.5.4: class NONE, TTL 0).
fn delete(mut r: Record) -> Record {
    r.dns_class = DNSClass::NONE;
    r.ttl = 0;
    r
}

/// Prerequisite: the name is not in use (RFC 2136 §2.4.5).
fn not_in_use(owner: &str) -> Record {
    let mut r = in_use(owner);
    r.dns_class = DNSClass::NONE;
    r
}

/// A comparable form of records (owner lowercased, type, TTL, RDATA).
fn rr_set(records: impl IntoIterator<Item = Record>) -> BTreeSet<(String, u16, u32, Vec<u8>)> {
    records
        .into_iter()
        .map(|r| {
            (
                r.name.to_lowercase().to_ascii(),
                u16::from(r.record_type()),
                r.ttl,
                crate::zone::change::rdata_bytes(&r.data),
            )
        })
        .collect()
}

/// Every RRSIG of `zone` verifies, and nothing is left to sign or fix
/// (a full signing walk over a copy changes nothing: every RRset in the
/// chain is signed, every NSEC is right, the SOA is signed at the serial).
pub(super) fn assert_fully_signed(signer: &crate::dnssec::ZoneSigner, zone: &ZoneData) {
    assert_eq!(signer.unverified(zone, || true), Some(Vec::new()));
    let mut copy = zone.clone();
    let delta = signer.sign_all(&mut copy, T0);
    assert!(
        delta.is_empty(),
        "not fully signed: -{:?} +{:?}",
        delta.removed,
        delta.added
    );
}

/// A batch that adds names, removes one, changes an RRset twice and
/// re-adds a name it removed: every UPDATE keeps its own serial; the
/// snapshot published after it is fully signed; an IXFR from the serial
/// published before it is exactly the difference of the two snapshots
/// (AXFR before, AXFR after); and a restart from the database serves that
/// state, fully signed, without signing anything.
#[test]
fn a_batch_signed_once_publishes_a_fully_signed_zone_and_an_exact_ixfr() {
    let f = fixture();
    let signer = f.zone.signer.as_ref().unwrap();
    let chal = "_acme-challenge.mx1";
    let k = |i: u8| format!("{i:02x}").repeat(32);
    // Published before the batch: a challenge and two TLSA names.
    for (i, r) in [
        txt(chal, "old"),
        tlsa("_25._tcp.mx1", &k(1)),
        tlsa("_443._tcp.mx1", &k(2)),
    ]
    .into_iter()
    .enumerate()
    {
        f.zone
            .write(Draft::Update(f.draft(vec![], vec![r], 100 + i as u8)))
            .unwrap();
    }
    let before = f.zone.snapshot();
    assert_fully_signed(signer, &before);
    let answers = f.batch(vec![
        // a new name in the chain
        f.draft(vec![], vec![tlsa("_587._tcp.mx1", &k(3))], 0),
        // a name leaves the chain
        f.draft(vec![], vec![delete(tlsa("_25._tcp.mx1", &k(1)))], 1),
        // the challenge RRset changed twice
        f.draft(vec![], vec![txt(chal, "new")], 2),
        f.draft(vec![], vec![delete(txt(chal, "old"))], 3),
        // the name that left comes back (it is not in use in between)
        f.draft(
            vec![not_in_use("_25._tcp.mx1")],
            vec![tlsa("_25._tcp.mx1", &k(4))],
            4,
        ),
        // another new name, and one more change to an RRset of the batch
        f.draft(vec![], vec![tlsa("_993._tcp.mx1", &k(5))], 5),
        f.draft(vec![], vec![tlsa("_587._tcp.mx1", &k(6))], 6),
    ]);
    for (i, a) in answers.iter().enumerate() {
        assert_eq!(
            a.as_ref().unwrap().serial,
            Some(before.serial + 1 + i as u32),
            "UPDATE {i}"
        );
    }
    let after = f.zone.snapshot();
    assert_eq!(after.serial, before.serial + 7);
    assert_fully_signed(signer, &after);

    // IXFR from the published serial before the batch = AXFR difference.
    let journal = f.zone.journal_between(before.serial, after.serial).unwrap();
    assert_eq!(journal.as_ref().map(Vec::len), Some(7));
    let (form, body) = crate::xfr::ixfr(&after, before.serial, journal);
    assert_eq!(form, crate::xfr::IxfrForm::Incremental);
    let records: Vec<Record> = body.collect();
    // SOA new, SOA old, removed..., SOA new, added..., SOA new
    let soas: Vec<usize> = records
        .iter()
        .enumerate()
        .filter(|(_, r)| r.record_type() == RecordType::SOA)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(soas.len(), 4);
    assert_eq!(soas[..2], [0, 1]);
    assert_eq!(soas[3], records.len() - 1);
    let removed = rr_set(records[2..soas[2]].iter().cloned());
    let added = rr_set(records[soas[2] + 1..soas[3]].iter().cloned());
    // (the SOA itself frames the difference sequence: left out here)
    let no_soa = |z: &ZoneData| {
        let mut s = rr_set(z.all_records());
        s.retain(|(_, t, ..)| *t != u16::from(RecordType::SOA));
        s
    };
    let (old, new) = (no_soa(&before), no_soa(&after));
    assert_eq!(removed, old.difference(&new).cloned().collect());
    assert_eq!(added, new.difference(&old).cloned().collect());
    // The SOA's signature was made once, for the batch's last serial.
    let soa_sigs = |set: &BTreeSet<(String, u16, u32, Vec<u8>)>| {
        set.iter()
            .filter(|(_, t, _, rd)| *t == u16::from(RecordType::RRSIG) && rd[..2] == [0, 6])
            .count()
    };
    assert_eq!((soa_sigs(&removed), soa_sigs(&added)), (1, 1));

    // A restart from the database: the same state, fully signed, and
    // nothing to sign at start (the serial does not move).
    let dir = f._dir.path().to_path_buf();
    drop(f.zone);
    let (config, spec) = demo_in(&dir);
    let clock = Arc::new(ManualClock::new(T0));
    let (zone, _) = ZoneHandle::open(spec, &config, clock, Arc::new(Metrics::default())).unwrap();
    let reopened = zone.snapshot();
    assert_eq!(reopened.serial, after.serial);
    assert_eq!(rr_set(reopened.all_records()), rr_set(after.all_records()));
    assert_fully_signed(zone.signer.as_ref().unwrap(), &reopened);
}

/// A name whose last RR an UPDATE of a batch deleted is not in use for
/// the UPDATEs after it in the same batch (its NSEC and RRSIGs go with
/// it at once, though the batch is signed only after its last UPDATE).
#[test]
fn a_name_emptied_in_a_batch_is_not_in_use_for_the_next_update() {
    let f = fixture();
    let chal = "_acme-challenge.mx1";
    f.zone
        .write(Draft::Update(f.draft(vec![], vec![txt(chal, "a")], 100)))
        .unwrap();
    let answers = f.batch(vec![
        f.draft(vec![], vec![delete(txt(chal, "a"))], 0),
        f.draft(vec![not_in_use(chal)], vec![txt(chal, "b")], 1),
        f.draft(vec![in_use(chal)], vec![txt(chal, "c")], 2),
    ]);
    let serial0 = f.zone.snapshot().serial - 3;
    for (i, a) in answers.iter().enumerate() {
        assert_eq!(a.as_ref().unwrap().serial, Some(serial0 + 1 + i as u32));
    }
    let owner = n(&format!("{chal}.{ZONE}"));
    let mut values: Vec<String> = f
        .zone
        .snapshot()
        .records(&owner, RecordType::TXT)
        .into_iter()
        .map(|r| r.data.to_string())
        .collect();
    values.sort();
    assert_eq!(values, ["b", "c"]);
    assert_fully_signed(f.zone.signer.as_ref().unwrap(), &f.zone.snapshot());
}

/// Switching between NSEC and NSEC3 takes two journaled changes at start;
/// a start that stops after the first (the state is taken there by
/// writing one `SyncDnssec` with the other setting) finishes the switch
/// at the next start with the one change left, both ways.
#[test]
fn a_restart_half_way_through_a_denial_switch_finishes_it() {
    use crate::dnssec::{Denial, ZoneSigner, nsec3};
    let dir = tempfile::tempdir().unwrap();
    let (config, spec) = demo_in(dir.path());
    let with = |denial: Denial| {
        let mut s = spec.clone();
        s.dnssec.as_mut().unwrap().denial = denial;
        s
    };
    let clock = Arc::new(ManualClock::new(T0));
    let open = |denial: Denial| {
        ZoneHandle::open(
            with(denial),
            &config,
            clock.clone(),
            Arc::new(Metrics::default()),
        )
        .unwrap()
        .0
    };
    let has_nsec = |z: &ZoneData| z.rrset(z.origin(), RecordType::NSEC).is_some();
    for (from, to) in [(Denial::Nsec, Denial::Nsec3), (Denial::Nsec3, Denial::Nsec)] {
        let mut zone = open(from);
        let before = zone.snapshot().serial;
        // the first step only
        let settings = with(to).dnssec.unwrap();
        let keys = (*zone.signer.take().unwrap().keys()).clone();
        zone.signer = Some(ZoneSigner::with_keys(keys, settings));
        zone.write(Draft::SyncDnssec).unwrap();
        let half = zone.snapshot();
        assert_eq!(half.serial, crate::serial::next(before));
        assert!(
            has_nsec(&half) && half.has_nsec3() && !nsec3::in_use(&half),
            "both chains, no NSEC3PARAM"
        );
        assert_eq!(
            zone.signer.as_ref().unwrap().unverified(&half, || true),
            Some(vec![])
        );
        drop(zone);
        // the restart finishes with one change
        let zone = open(to);
        let done = zone.snapshot();
        assert_eq!(
            done.serial,
            crate::serial::next(half.serial),
            "one change left"
        );
        let signer = zone.signer.as_ref().unwrap();
        assert!(signer.denial_in_place(&done));
        assert_eq!(has_nsec(&done), to == Denial::Nsec);
        assert_eq!(done.has_nsec3(), to == Denial::Nsec3);
        assert_fully_signed(signer, &done);
    }
    // and a start with the setting changed does both changes
    let serial = open(Denial::Nsec).snapshot().serial;
    let zone = open(Denial::Nsec3);
    let done = zone.snapshot();
    assert_eq!(done.serial, serial.wrapping_add(2), "two changes");
    assert!(nsec3::in_use(&done) && !has_nsec(&done));
    assert_fully_signed(zone.signer.as_ref().unwrap(), &done);
}
