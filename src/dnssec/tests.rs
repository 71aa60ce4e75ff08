//! Unit tests: keys on disk, the NSEC chain under inserts and deletes, and
//! that incremental re-signing leaves exactly what a full signing would
//! (checked by `sign_all`, which verifies every signature and NSEC and
//! reports anything it had to fix).

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use hickory_proto::dnssec::rdata::DNSSECRData;
use hickory_proto::rr::{Name, RData, RecordType};

use super::*;
use crate::zone::as_rrsig;

const T0: u64 = 1_700_000_000;

fn n(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

fn spec(extra: &str) -> Arc<crate::zonefile::ZoneSpec> {
    let text = format!(
        "origin = \"z.test.\"\ncontact = \"h.z.test.\"\nnameservers = [\"ns1\"]\n[glue]\nns1 = [\"192.0.2.1\"]\n{extra}"
    );
    Arc::new(crate::zonefile::parse(Path::new("z.toml"), &text).unwrap())
}

fn signer(dir: &Path, alg: KeyAlgorithm) -> ZoneSigner {
    let (key, _) = ZoneKey::load_or_create(dir, &n("z.test."), alg).unwrap();
    ZoneSigner::new(
        key,
        Settings {
            algorithm: alg,
            ..Settings::default()
        },
    )
}

fn txt(s: &str) -> RData {
    RData::try_from_str(RecordType::TXT, s).unwrap()
}

/// A signed zone holding TXT records at `names` (relative to z.test.).
fn signed_zone(s: &ZoneSigner, names: &[&str]) -> ZoneData {
    let mut z = ZoneData::new(spec(""), 10, []);
    for rel in names {
        z.add(&n(&format!("{rel}.z.test.")), RecordType::TXT, 60, txt("x"));
    }
    let d = s.sign_all(&mut z, T0);
    assert!(!d.is_empty());
    assert_eq!(z.serial, 11);
    assert_clean(s, &z);
    z
}

/// Whatever `sign_all` would still fix (nothing, if the zone is right).
fn assert_clean(s: &ZoneSigner, z: &ZoneData) {
    let mut copy = z.clone();
    let d = s.sign_all(&mut copy, T0 + 60);
    assert!(
        d.is_empty(),
        "zone not consistent: would remove {:?}\nwould add {:?}",
        d.removed,
        d.added
    );
}

/// Apply adds and deletes of TXT "x" the way `update` does, then re-sign.
fn change(s: &ZoneSigner, z: &ZoneData, adds: &[&str], dels: &[&str]) -> (ZoneData, Delta) {
    let mut next = z.clone();
    let mut touched = BTreeSet::new();
    for rel in adds {
        let name = n(&format!("{rel}.z.test."));
        next.add(&name, RecordType::TXT, 60, txt("x"));
        touched.insert((name, RecordType::TXT));
    }
    for rel in dels {
        let name = n(&format!("{rel}.z.test."));
        next.remove_rrset(&name, RecordType::TXT);
        touched.insert((name, RecordType::TXT));
    }
    next.serial = crate::serial::next(z.serial);
    let d = s.resign(z, &mut next, &touched, T0 + 30);
    assert_clean(s, &next);
    (next, d)
}

/// (owner, next name) of every NSEC, in canonical order.
fn chain(z: &ZoneData) -> Vec<(String, String)> {
    z.all_records()
        .into_iter()
        .filter_map(|r| match &r.data {
            RData::DNSSEC(DNSSECRData::NSEC(nsec)) => {
                Some((r.name.to_string(), nsec.next_domain_name().to_string()))
            }
            _ => None,
        })
        .collect()
}

fn nsec_types(z: &ZoneData, name: &str) -> Vec<RecordType> {
    match &z.records(&n(name), RecordType::NSEC)[0].data {
        RData::DNSSEC(DNSSECRData::NSEC(nsec)) => nsec.type_bit_maps().collect(),
        _ => unreachable!(),
    }
}

fn owners(d: &[hickory_proto::rr::Record], t: RecordType) -> BTreeSet<String> {
    d.iter()
        .filter(|r| r.record_type() == t)
        .map(|r| r.name.to_string())
        .collect()
}

#[test]
fn sign_all_makes_a_closed_chain_keys_and_one_rrsig_per_rrset() {
    let dir = tempfile::tempdir().unwrap();
    let s = signer(dir.path(), KeyAlgorithm::EcdsaP256Sha256);
    let z = signed_zone(&s, &["b", "a.b", "d"]);
    assert_eq!(
        chain(&z),
        vec![
            ("z.test.".into(), "b.z.test.".into()),
            ("b.z.test.".into(), "a.b.z.test.".into()),
            ("a.b.z.test.".into(), "d.z.test.".into()),
            ("d.z.test.".into(), "ns1.z.test.".into()),
            ("ns1.z.test.".into(), "z.test.".into()),
        ]
    );
    let apex = nsec_types(&z, "z.test.");
    for t in [
        RecordType::SOA,
        RecordType::NS,
        RecordType::DNSKEY,
        RecordType::CDS,
        RecordType::CDNSKEY,
        RecordType::NSEC,
        RecordType::RRSIG,
    ] {
        assert!(apex.contains(&t), "{t} in the apex bitmap");
    }
    assert_eq!(
        nsec_types(&z, "b.z.test."),
        vec![RecordType::TXT, RecordType::RRSIG, RecordType::NSEC]
    );
    // every RRSIG: TTL = covered TTL, labels, inception an hour back, validity
    for r in z.records(&n("b.z.test."), RecordType::RRSIG) {
        let sig = as_rrsig(&r.data).unwrap().input();
        assert_eq!(r.ttl, sig.original_ttl);
        assert_eq!(sig.num_labels, 3);
        assert_eq!(sig.sig_inception.get(), (T0 - 3600) as u32);
        let left = sig.sig_expiration.get() as u64 - T0;
        assert!(left > 12 * 86_400 && left <= 14 * 86_400, "{left}");
    }
    let nsec = &z.records(&n("b.z.test."), RecordType::NSEC)[0];
    assert_eq!(nsec.ttl, 1, "NSEC TTL = min(SOA TTL, MINIMUM)");
    assert_eq!(z.rrsigs(&n("z.test."), RecordType::SOA).len(), 1);
    assert_eq!(
        z.rrsigs(&n("z.test."), RecordType::DNSKEY)[0].ttl,
        3600,
        "dnskey-ttl"
    );
}

#[test]
fn insert_at_the_start_in_the_middle_and_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let s = signer(dir.path(), KeyAlgorithm::EcdsaP256Sha256);
    let z = signed_zone(&s, &["m"]);
    // start: "a" sorts right after the apex
    let (z, d) = change(&s, &z, &["a"], &[]);
    assert_eq!(chain(&z)[0], ("z.test.".into(), "a.z.test.".into()));
    assert_eq!(chain(&z)[1], ("a.z.test.".into(), "m.z.test.".into()));
    // only the new name's and its predecessor's NSEC (the apex) changed
    assert_eq!(
        owners(&d.added, RecordType::NSEC),
        BTreeSet::from(["z.test.".to_string(), "a.z.test.".to_string()])
    );
    assert_eq!(
        owners(&d.removed, RecordType::NSEC),
        BTreeSet::from(["z.test.".to_string()])
    );
    // middle
    let (z, d) = change(&s, &z, &["c"], &[]);
    assert_eq!(
        owners(&d.added, RecordType::NSEC),
        BTreeSet::from(["a.z.test.".to_string(), "c.z.test.".to_string()])
    );
    // end ("zz" sorts after "ns1")
    let (z, _) = change(&s, &z, &["zz"], &[]);
    let c = chain(&z);
    assert_eq!(c[c.len() - 2], ("ns1.z.test.".into(), "zz.z.test.".into()));
    assert_eq!(c[c.len() - 1], ("zz.z.test.".into(), "z.test.".into()));
    // and deleting the last name closes the chain on its predecessor
    let (z, d) = change(&s, &z, &[], &["zz"]);
    assert_eq!(
        chain(&z).last().unwrap(),
        &("ns1.z.test.".into(), "z.test.".into())
    );
    assert!(
        z.node(&n("zz.z.test.")).is_none(),
        "no NSEC/RRSIG left behind"
    );
    assert!(owners(&d.removed, RecordType::RRSIG).contains("zz.z.test."));
}

#[test]
fn empty_non_terminals_own_no_nsec_and_go_with_their_last_child() {
    let dir = tempfile::tempdir().unwrap();
    let s = signer(dir.path(), KeyAlgorithm::EcdsaP256Sha256);
    let z = signed_zone(&s, &["mx1"]);
    // _25._tcp.mx1 makes _tcp.mx1 an empty non-terminal
    let (z, _) = change(&s, &z, &["_25._tcp.mx1", "_443._tcp.mx1"], &[]);
    assert!(z.node(&n("_tcp.mx1.z.test.")).is_none());
    assert!(
        !chain(&z).iter().any(|(o, _)| o == "_tcp.mx1.z.test."),
        "no NSEC at the ENT"
    );
    assert!(chain(&z).contains(&("mx1.z.test.".into(), "_25._tcp.mx1.z.test.".into())));
    // delete one child, then the last: the ENT disappears with it
    let (z, _) = change(&s, &z, &[], &["_25._tcp.mx1"]);
    assert!(chain(&z).contains(&("mx1.z.test.".into(), "_443._tcp.mx1.z.test.".into())));
    let (z, _) = change(&s, &z, &[], &["_443._tcp.mx1"]);
    assert!(!z.has_descendants(&n("mx1.z.test.")));
    assert!(chain(&z).contains(&("mx1.z.test.".into(), "ns1.z.test.".into())));
    // the last name under a parent ENT: the parent goes too
    let (z, _) = change(&s, &z, &["_acme-challenge.www1"], &[]);
    let (z, _) = change(&s, &z, &[], &["_acme-challenge.www1"]);
    assert!(!z.name_exists(&n("www1.z.test.")) && !z.has_descendants(&n("www1.z.test.")));
    assert_eq!(chain(&z).len(), 3);
}

#[test]
fn a_touched_name_that_keeps_its_place_changes_only_its_own_records() {
    let dir = tempfile::tempdir().unwrap();
    let s = signer(dir.path(), KeyAlgorithm::EcdsaP256Sha256);
    let z = signed_zone(&s, &["a", "b"]);
    let mut next = z.clone();
    let name = n("a.z.test.");
    next.add(&name, RecordType::TXT, 60, txt("y"));
    next.serial += 1;
    let touched = BTreeSet::from([(name.clone(), RecordType::TXT)]);
    let d = s.resign(&z, &mut next, &touched, T0 + 10);
    assert_clean(&s, &next);
    // the TXT RRSIG at a, the SOA RRSIG; no NSEC moved
    assert_eq!(d.removed.len(), 2, "{:?}", d.removed);
    assert_eq!(d.added.len(), 2, "{:?}", d.added);
    assert!(owners(&d.added, RecordType::NSEC).is_empty());
    // a new type at the name changes its bitmap: NSEC and its RRSIG too
    let mut next2 = next.clone();
    let aaaa = RData::try_from_str(RecordType::AAAA, "2001:db8::1").unwrap();
    next2.add(&name, RecordType::AAAA, 60, aaaa);
    next2.serial += 1;
    let touched = BTreeSet::from([(name.clone(), RecordType::AAAA)]);
    let d = s.resign(&next, &mut next2, &touched, T0 + 20);
    assert_clean(&s, &next2);
    assert_eq!(
        owners(&d.added, RecordType::NSEC),
        BTreeSet::from(["a.z.test.".to_string()])
    );
    assert_eq!(
        d.added.len(),
        4,
        "NSEC + RRSIGs of AAAA, NSEC, SOA: {:?}",
        d.added
    );
}

#[test]
fn a_delegation_turns_its_subtree_into_unsigned_glue_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let s = signer(dir.path(), KeyAlgorithm::EcdsaP256Sha256);
    let z = signed_zone(&s, &["sub", "host.sub", "z"]);
    let cut = n("sub.z.test.");
    let mut next = z.clone();
    let ns = RData::try_from_str(RecordType::NS, "host.sub.z.test.").unwrap();
    next.add(&cut, RecordType::NS, 60, ns.clone());
    next.serial += 1;
    let touched = BTreeSet::from([(cut.clone(), RecordType::NS)]);
    s.resign(&z, &mut next, &touched, T0 + 10);
    assert_clean(&s, &next);
    let host = n("host.sub.z.test.");
    assert!(
        next.rrset(&host, RecordType::NSEC).is_none(),
        "glue has no NSEC"
    );
    assert!(
        next.rrset(&host, RecordType::RRSIG).is_none(),
        "glue is not signed"
    );
    assert_eq!(
        nsec_types(&next, "sub.z.test."),
        vec![RecordType::NS, RecordType::RRSIG, RecordType::NSEC]
    );
    assert!(
        next.rrsigs(&cut, RecordType::NS).is_empty(),
        "delegation NS unsigned"
    );
    assert!(
        next.rrsigs(&cut, RecordType::TXT).is_empty(),
        "occluded data unsigned"
    );
    assert_eq!(next.rrsigs(&cut, RecordType::NSEC).len(), 1);
    assert!(chain(&next).contains(&("sub.z.test.".into(), "z.z.test.".into())));
    // and removing the NS brings the subtree back into the chain
    let mut back = next.clone();
    back.remove(&cut, RecordType::NS, &ns);
    back.serial += 1;
    s.resign(&next, &mut back, &touched, T0 + 20);
    assert_clean(&s, &back);
    assert_eq!(back.rrsigs(&host, RecordType::TXT).len(), 1);
}

#[test]
fn refresh_re_signs_only_what_is_due() {
    let dir = tempfile::tempdir().unwrap();
    let s = signer(dir.path(), KeyAlgorithm::Ed25519);
    let mut z = signed_zone(&s, &["a", "b"]);
    let sigs = |z: &ZoneData| {
        z.all_records()
            .into_iter()
            .filter(|r| r.record_type() == RecordType::RRSIG)
            .count()
    };
    let before = sigs(&z);
    assert!(
        s.refresh(&mut z, T0 + 86_400).is_empty(),
        "a day later: nothing due"
    );
    let serial = z.serial;
    let d = s.refresh(&mut z, T0 + 8 * 86_400);
    assert_eq!(z.serial, serial + 1);
    assert_eq!(d.removed.len(), before, "every RRSIG was due");
    assert_eq!(d.added.len(), before);
    for r in &d.added {
        let i = as_rrsig(&r.data).unwrap().input();
        assert_eq!(i.sig_inception.get() as u64, T0 + 8 * 86_400 - 3600);
    }
    assert!(s.refresh(&mut z, T0 + 8 * 86_400 + 60).is_empty());
}

#[test]
fn a_restart_keeps_every_signature_and_dnssec_off_strips_them() {
    let dir = tempfile::tempdir().unwrap();
    let s = signer(dir.path(), KeyAlgorithm::EcdsaP256Sha256);
    let z = signed_zone(&s, &["a"]);
    // what the store would hand back: every record, reloaded
    let spec = z.spec.clone();
    let dynamic: Vec<_> = z
        .all_records()
        .into_iter()
        .skip(1)
        .filter(|r| {
            !spec
                .records
                .iter()
                .any(|s| s.name == r.name && s.data == r.data)
        })
        .collect();
    let mut reloaded = ZoneData::new(spec, z.serial, dynamic);
    assert!(
        sync(Some(&s), &mut reloaded, T0 + 100).is_none(),
        "nothing re-signed"
    );
    // a changed RRset whose signature no longer verifies is found by the
    // check after start and re-signed by the sync it hands it to
    let mut tampered = reloaded.clone();
    tampered.add(&n("a.z.test."), RecordType::TXT, 60, txt("sneaked in"));
    assert_eq!(
        s.unverified(&reloaded, || true).unwrap(),
        vec![],
        "every stored signature verifies"
    );
    let bad = s.unverified(&tampered, || true).unwrap();
    assert_eq!(bad, vec![(n("a.z.test."), RecordType::TXT)]);
    assert!(
        s.unverified(&tampered, || false).is_none(),
        "the check stops when told"
    );
    s.suspect(bad);
    let change = sync(Some(&s), &mut tampered, T0 + 100).unwrap();
    assert_eq!(change.serial_to, reloaded.serial + 1);
    assert_clean(&s, &tampered);
    let stripped = sync(None, &mut reloaded, T0 + 100).unwrap();
    assert!(stripped.added.is_empty());
    assert!(!reloaded.is_signed());
    assert!(
        reloaded
            .all_records()
            .iter()
            .all(|r| !crate::zone::is_dnssec_type(r.record_type()))
    );
}

#[test]
fn the_key_is_made_once_0600_and_kept() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let zone = n("_acme.example.org.");
    let (k1, made) =
        ZoneKey::load_or_create(dir.path(), &zone, KeyAlgorithm::EcdsaP256Sha256).unwrap();
    assert!(made);
    assert_eq!(k1.path, dir.path().join("dnssec/_acme.example.org.pk8"));
    let mode = std::fs::metadata(&k1.path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let (k2, made) =
        ZoneKey::load_or_create(dir.path(), &zone, KeyAlgorithm::EcdsaP256Sha256).unwrap();
    assert!(!made);
    assert_eq!(k1.key_tag(), k2.key_tag());
    assert_eq!(k1.dnskey(), k2.dnskey());
    assert_eq!(k1.dnskey().flags(), 257);
    assert_eq!(k1.ds().digest().len(), 32, "SHA-256");
    let e = ZoneKey::load_or_create(dir.path(), &zone, KeyAlgorithm::Ed25519).unwrap_err();
    assert!(matches!(e, KeyError::AlgorithmMismatch { .. }), "{e}");
    let missing = ZoneKey::load(&n("other."), &key::key_path(dir.path(), &n("other.")));
    assert!(
        missing
            .unwrap_err()
            .to_string()
            .contains("start the server once")
    );
    // odd names cannot escape the directory
    let odd = Name::from_labels(vec![&b"a/../b"[..], b"test"]).unwrap();
    let p = key::key_path(dir.path(), &odd);
    assert_eq!(p.parent().unwrap(), dir.path().join("dnssec"));
}

#[test]
fn rrsets_are_signed_over_canonical_rdata_order() {
    // TXT RRs given in non-canonical order sign the same as sorted ones
    let dir = tempfile::tempdir().unwrap();
    let s = signer(dir.path(), KeyAlgorithm::Ed25519);
    let name = n("a.z.test.");
    let a = s
        .sign_rrset(
            &s.key().unwrap(),
            &name,
            RecordType::TXT,
            60,
            &[txt("zz"), txt("a")],
            T0,
        )
        .unwrap();
    let sig = as_rrsig(&a.data).unwrap();
    let z = {
        let mut z = ZoneData::new(spec(""), 1, []);
        z.add(&name, RecordType::TXT, 60, txt("a"));
        z.add(&name, RecordType::TXT, 60, txt("zz"));
        z
    };
    let mut z2 = z.clone();
    z2.add(&name, RecordType::RRSIG, 60, a.data.clone());
    // the signature verifies over the zone's order
    assert!(
        !s.unverified(&z2, || true)
            .unwrap()
            .contains(&(name.clone(), RecordType::TXT)),
        "signature over unsorted input verifies: {sig:?}"
    );
}

#[test]
fn keys_in_place_only_for_a_zone_signed_with_this_key_and_ttl() {
    // What lets a restart serve before the DNSSEC walk (writer::open).
    let dir = tempfile::tempdir().unwrap();
    let s = signer(dir.path(), KeyAlgorithm::EcdsaP256Sha256);
    let z = signed_zone(&s, &["a"]);
    assert!(s.keys_in_place(&z));
    assert!(
        !s.keys_in_place(&ZoneData::new(spec(""), 1, [])),
        "unsigned"
    );
    let other_dir = tempfile::tempdir().unwrap();
    let other = signer(other_dir.path(), KeyAlgorithm::EcdsaP256Sha256);
    assert!(!other.keys_in_place(&z), "another key");
    let mut settings = s.settings.clone();
    settings.dnskey_ttl += 1;
    let (key, _) =
        ZoneKey::load_or_create(dir.path(), &n("z.test."), KeyAlgorithm::EcdsaP256Sha256).unwrap();
    assert!(
        !ZoneSigner::new(key, settings).keys_in_place(&z),
        "another dnskey-ttl"
    );
}

fn signer3(dir: &Path) -> ZoneSigner {
    let (key, _) =
        ZoneKey::load_or_create(dir, &n("z.test."), KeyAlgorithm::EcdsaP256Sha256).unwrap();
    ZoneSigner::new(
        key,
        Settings {
            denial: Denial::Nsec3,
            ..Settings::default()
        },
    )
}

/// The NSEC3 chain as (original name, next original name), from the
/// original names given (every name that should own one), checked to be
/// one closed cycle over exactly those names.
fn nsec3_cycle(z: &ZoneData, names: &[&str]) -> Vec<(String, String)> {
    let p = nsec3::Params::RFC9276;
    let apex = n("z.test.");
    let by_hash: std::collections::BTreeMap<Vec<u8>, String> = names
        .iter()
        .map(|rel| {
            let full = if rel.is_empty() {
                "z.test.".to_string()
            } else {
                format!("{rel}.z.test.")
            };
            (p.hash(&n(&full)).to_vec(), full)
        })
        .collect();
    let owners: Vec<Name> = z.nsec3_owners().collect();
    assert_eq!(owners.len(), names.len(), "one NSEC3 per name: {owners:?}");
    let mut out = Vec::new();
    for (h, name) in &by_hash {
        let owner = p.owner(&apex, &n(name));
        let set = z.records(&owner, RecordType::NSEC3);
        let RData::DNSSEC(DNSSECRData::NSEC3(rd)) = &set[0].data else {
            panic!("no NSEC3 for {name}")
        };
        assert_eq!(set[0].ttl, 1, "NSEC3 TTL = the NSEC TTL");
        assert_eq!((rd.iterations(), rd.salt(), rd.flags()), (0, &[][..], 0));
        assert_eq!(nsec3::hash_of_owner(&owner).unwrap(), *h);
        let next = by_hash
            .get(rd.next_hashed_owner_name())
            .unwrap_or_else(|| panic!("{name}: next hash is no name's"));
        assert_eq!(
            z.rrsigs(&owner, RecordType::NSEC3).len(),
            1,
            "{name} signed"
        );
        out.push((name.clone(), next.clone()));
    }
    out
}

fn nsec3_types(z: &ZoneData, name: &str) -> Vec<RecordType> {
    let owner = nsec3::Params::RFC9276.owner(&n("z.test."), &n(name));
    match &z.records(&owner, RecordType::NSEC3)[0].data {
        RData::DNSSEC(DNSSECRData::NSEC3(rd)) => rd.type_bit_maps().collect(),
        _ => unreachable!(),
    }
}

#[test]
fn nsec3_covers_every_name_and_empty_non_terminal_and_no_nsec_is_left() {
    let dir = tempfile::tempdir().unwrap();
    let s = signer3(dir.path());
    let z = signed_zone(&s, &["b", "a.b", "x.c", "d"]);
    assert!(chain(&z).is_empty(), "no NSEC");
    assert!(nsec3::in_use(&z) && s.denial_in_place(&z));
    let cycle = nsec3_cycle(&z, &["", "b", "a.b", "c", "x.c", "d", "ns1"]);
    assert_eq!(cycle.len(), 7);
    assert!(nsec3_types(&z, "c.z.test.").is_empty(), "ENT: no types");
    assert_eq!(
        nsec3_types(&z, "b.z.test."),
        vec![RecordType::TXT, RecordType::RRSIG]
    );
    let apex = nsec3_types(&z, "z.test.");
    for t in [
        RecordType::SOA,
        RecordType::NSEC3PARAM,
        RecordType::DNSKEY,
        RecordType::RRSIG,
    ] {
        assert!(apex.contains(&t), "{t} in the apex bitmap");
    }
    assert!(!apex.contains(&RecordType::NSEC));
    let param = z.records(&n("z.test."), RecordType::NSEC3PARAM);
    assert_eq!(param[0].data.to_string(), "1 0 0 -");
    assert_eq!(z.rrsigs(&n("z.test."), RecordType::NSEC3PARAM).len(), 1);
    // every signature verifies
    assert_eq!(s.unverified(&z, || true), Some(vec![]));
    // ten days on, a refresh renews the NSEC3 signatures too and keeps
    // the chain as it was
    let mut r = z.clone();
    let d = s.refresh(&mut r, T0 + 10 * 86_400);
    assert_eq!(owners(&d.removed, RecordType::NSEC3), BTreeSet::new());
    let resigned = d
        .added
        .iter()
        .filter_map(|r| as_rrsig(&r.data))
        .filter(|s| s.input().type_covered == RecordType::NSEC3)
        .count();
    assert_eq!(resigned, 7);
    nsec3_cycle(&r, &["", "b", "a.b", "c", "x.c", "d", "ns1"]);
}

#[test]
fn nsec3_follows_adds_and_deletes_incrementally() {
    let dir = tempfile::tempdir().unwrap();
    let s = signer3(dir.path());
    let z = signed_zone(&s, &["m"]);
    // a name two labels down brings its ENT; only the new owners and
    // their predecessors change (change() checks a full signing agrees)
    let (z, d) = change(&s, &z, &["_25._tcp.mx1"], &[]);
    nsec3_cycle(&z, &["", "m", "ns1", "mx1", "_tcp.mx1", "_25._tcp.mx1"]);
    let added = owners(&d.added, RecordType::NSEC3);
    assert!(added.len() >= 3 && added.len() <= 6, "{added:?}");
    let (z, _) = change(&s, &z, &["_443._tcp.mx1"], &["m"]);
    nsec3_cycle(
        &z,
        &[
            "",
            "ns1",
            "mx1",
            "_tcp.mx1",
            "_25._tcp.mx1",
            "_443._tcp.mx1",
        ],
    );
    // the last child gone: the ENTs above it go with it
    let (z, d) = change(&s, &z, &[], &["_25._tcp.mx1", "_443._tcp.mx1"]);
    nsec3_cycle(&z, &["", "ns1"]);
    assert_eq!(owners(&d.removed, RecordType::NSEC3).len(), 5);
    assert!(z.names().all(|o| z.node(&o).is_some_and(|n| !n.is_empty())));
    assert_eq!(s.unverified(&z, || true), Some(vec![]));
    // a delegation: its NSEC3 lists NS only; glue below it owns none
    let mut next = z.clone();
    let cut = n("sub.z.test.");
    next.add(
        &cut,
        RecordType::NS,
        60,
        RData::try_from_str(RecordType::NS, "ns.sub.z.test.").unwrap(),
    );
    next.add(
        &n("ns.sub.z.test."),
        RecordType::A,
        60,
        RData::try_from_str(RecordType::A, "192.0.2.9").unwrap(),
    );
    next.serial = crate::serial::next(z.serial);
    let touched = BTreeSet::from([
        (cut.clone(), RecordType::NS),
        (n("ns.sub.z.test."), RecordType::A),
    ]);
    s.resign(&z, &mut next, &touched, T0 + 30);
    assert_clean(&s, &next);
    nsec3_cycle(&next, &["", "ns1", "sub"]);
    assert_eq!(nsec3_types(&next, "sub.z.test."), vec![RecordType::NS]);
}

#[test]
fn switching_to_nsec3_and_back_takes_two_changes_each_valid() {
    let dir = tempfile::tempdir().unwrap();
    let s1 = signer(dir.path(), KeyAlgorithm::EcdsaP256Sha256);
    let s3 = signer3(dir.path());
    let z = signed_zone(&s1, &["a", "b.c"]);
    let nsec_names = 4; // apex, a, b.c, ns1
    assert!(!s3.denial_in_place(&z));
    // on, step 1: the NSEC3 chain beside the NSEC chain, no NSEC3PARAM
    let mut z1 = z.clone();
    assert!(!s3.sign_all(&mut z1, T0).is_empty());
    assert_eq!(chain(&z1).len(), nsec_names);
    assert!(!nsec3::in_use(&z1) && !s3.denial_in_place(&z1));
    nsec3_cycle(&z1, &["", "a", "c", "b.c", "ns1"]);
    assert_eq!(s3.unverified(&z1, || true), Some(vec![]));
    // an update between the steps keeps both chains right
    let (z1, _) = {
        let mut next = z1.clone();
        let name = n("d.z.test.");
        next.add(&name, RecordType::TXT, 60, txt("x"));
        next.serial = crate::serial::next(z1.serial);
        let d = s3.resign(
            &z1,
            &mut next,
            &BTreeSet::from([(name, RecordType::TXT)]),
            T0 + 30,
        );
        (next, d)
    };
    assert_eq!(chain(&z1).len(), nsec_names + 1);
    nsec3_cycle(&z1, &["", "a", "c", "b.c", "d", "ns1"]);
    // on, step 2: NSEC3PARAM in, NSEC out
    let mut z2 = z1.clone();
    assert!(!s3.sign_all(&mut z2, T0).is_empty());
    assert!(s3.denial_in_place(&z2) && chain(&z2).is_empty());
    nsec3_cycle(&z2, &["", "a", "c", "b.c", "d", "ns1"]);
    assert_clean(&s3, &z2);
    assert_eq!(s3.unverified(&z2, || true), Some(vec![]));
    // off, step 1: NSEC3PARAM out, the NSEC chain back, NSEC3 kept
    let mut z3 = z2.clone();
    assert!(!s1.sign_all(&mut z3, T0).is_empty());
    assert!(!nsec3::in_use(&z3) && !s1.denial_in_place(&z3));
    assert_eq!(chain(&z3).len(), nsec_names + 1);
    nsec3_cycle(&z3, &["", "a", "c", "b.c", "d", "ns1"]);
    assert_eq!(s1.unverified(&z3, || true), Some(vec![]));
    // off, step 2: the NSEC3 chain gone, nothing left of it
    let mut z4 = z3.clone();
    assert!(!s1.sign_all(&mut z4, T0).is_empty());
    assert!(s1.denial_in_place(&z4) && !z4.has_nsec3());
    assert!(
        z4.names()
            .all(|o| o.iter().next().is_none_or(|l| l.len() != 32))
    );
    assert_clean(&s1, &z4);
}
