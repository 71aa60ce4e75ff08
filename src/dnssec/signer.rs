//! RRSIGs (RFC 4034 §3, RFC 4035 §2.2) and keeping them, the NSEC chain and
//! the apex key records consistent with the zone data, incrementally. An
//! NSEC3 chain, when the zone has one, is kept by `nsec3` on the same
//! walks (its owners are walked here for their RRSIGs).
//!
//! Every operation is one walk over a set of names with one per-name step
//! ([`ZoneSigner::fix_name`]): drop the NSEC and RRSIGs of a name that left
//! the chain; otherwise set its NSEC to what the chain says, keep each RRSIG
//! that is ours, covers an RRset still signed here with its current TTL, is
//! not forced (its RRset changed) and not within `refresh-before` of
//! expiring, and sign whatever is left unsigned. The operations differ in the names walked:
//! [`ZoneSigner::resign`] the names an update touched and their chain
//! predecessors, [`ZoneSigner::refresh`] and [`ZoneSigner::sign_all`] every
//! name. Whenever anything changed the serial moves, so the SOA's RRSIG is
//! made again last.
//!
//! Signatures: inception one hour back, expiration after
//! `signature-validity` less a random jitter of up to an eighth of it (at
//! most half the margin above `refresh-before`), so signatures made
//! together do not all come up for refresh in the same hour. The RRSIG TTL
//! and Original TTL are the covered RRset's TTL; labels is the owner's
//! label count (no wildcards here); the signer is the apex.
//!
//! Whether each kept RRSIG still verifies is not checked on that walk (one
//! public-key verification per RRset: 25 s for 400,000 RRsets, which would
//! delay the first answer after a restart). [`ZoneSigner::unverified`] checks
//! them over a published snapshot, off the writer, and
//! [`ZoneSigner::suspect`] hands what it found to the next
//! [`ZoneSigner::sign_all`], which signs those RRsets again; the zone writer
//! runs that after start (`writer::open`).
//!
//! # Limitations
//!
//! Only the data to be signed is built here; hickory-proto (ring) signs.
//! Until the check after start has run, a signature broken in the database
//! (not by us: every RRSIG we store was made over the RRset it covers) is
//! served as it is.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use hickory_proto::dnssec::TBS;
use hickory_proto::dnssec::rdata::{DNSSECRData, RRSIG, SigInput};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType, SerialNumber};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};

use super::key::ZoneKey;
use super::{Delta, INCEPTION_BACKDATE, Settings};
use super::{nsec, nsec3};
use crate::serial;
use crate::zone::{ZoneData, as_rrsig};

/// What the CDS and CDNSKEY RRsets say (RFC 7344, RFC 8078).
#[derive(Debug, Clone)]
pub enum Cds {
    /// The parent's DS should be for this key.
    Key(Arc<ZoneKey>),
    /// The parent should remove the DS (RFC 8078 §4: DNSSEC is being
    /// turned off).
    Delete,
    /// No CDS or CDNSKEY (the zone is not signed).
    Absent,
}

/// The keys a zone is signed with now (`dnssec::roll` moves them): the
/// DNSKEY RRset, the keys whose signatures are on every RRset (in a CSK
/// rollover the same keys: double signature; in an algorithm rollover a
/// key signs before it is published and after it is withdrawn), and what
/// the CDS and CDNSKEY say. No key at all: the zone is not signed.
#[derive(Debug, Clone)]
pub struct KeySet {
    pub signing: Vec<Arc<ZoneKey>>,
    pub published: Vec<Arc<ZoneKey>>,
    pub cds: Cds,
}

impl KeySet {
    /// One key, doing everything.
    pub fn single(key: ZoneKey) -> Self {
        let key = Arc::new(key);
        Self {
            signing: vec![key.clone()],
            published: vec![key.clone()],
            cds: Cds::Key(key),
        }
    }

    /// No key: every DNSSEC record goes.
    pub fn none() -> Self {
        Self {
            signing: Vec::new(),
            published: Vec::new(),
            cds: Cds::Absent,
        }
    }

    pub fn is_off(&self) -> bool {
        self.signing.is_empty() && self.published.is_empty()
    }

    /// The signing key that made `sig`, if it is one of ours.
    fn signer_of(&self, sig: &SigInput) -> Option<&ZoneKey> {
        self.signing.iter().map(|k| &**k).find(|k| k.made(sig))
    }

    fn dnskeys(&self) -> Vec<RData> {
        let mut v: Vec<RData> = self.published.iter().map(|k| k.dnskey_rdata()).collect();
        v.sort_by_key(canonical_rdata);
        v
    }

    /// The DNSKEY, CDS and CDNSKEY RRsets' RDATA (empty: no such RRset).
    fn apex(&self) -> [(RecordType, Vec<RData>); 3] {
        let (cds, cdnskey) = match &self.cds {
            Cds::Key(k) => (vec![k.cds_rdata()], vec![k.cdnskey_rdata()]),
            Cds::Delete => (
                vec![super::key::cds_delete()],
                vec![super::key::cdnskey_delete()],
            ),
            Cds::Absent => (Vec::new(), Vec::new()),
        };
        [
            (RecordType::DNSKEY, self.dnskeys()),
            (RecordType::CDS, cds),
            (RecordType::CDNSKEY, cdnskey),
        ]
    }
}

/// Whether an RRset's RDATA are `want` (in any order).
fn same_set(have: &[RData], want: &[RData]) -> bool {
    let mut have: Vec<_> = have.iter().filter_map(canonical_rdata).collect();
    let mut want: Vec<_> = want.iter().filter_map(canonical_rdata).collect();
    have.sort();
    want.sort();
    have == want
}

/// Signs one zone with its keys and settings.
#[derive(Debug)]
pub struct ZoneSigner {
    keys: ArcSwap<KeySet>,
    pub settings: Settings,
    /// RRsets whose RRSIG did not verify ([`ZoneSigner::unverified`]),
    /// signed again by the next [`ZoneSigner::sign_all`].
    suspects: Mutex<BTreeSet<(Name, RecordType)>>,
}

/// RDATA in DNSSEC canonical form (RFC 4034 §6.2): no compression, names in
/// the RDATA of the types listed there lowercased.
fn canonical_rdata(data: &RData) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut enc = BinEncoder::new(&mut buf);
    enc.set_canonical_form(true);
    enc.set_name_encoding(NameEncoding::Uncompressed);
    data.emit(&mut enc).ok()?;
    Some(buf)
}

/// The signed data of RFC 4034 §3.1.8.1: RRSIG RDATA without the signature,
/// then each RR in canonical form and canonical order (§6.3), duplicates
/// once.
fn signed_data(name: &Name, input: &SigInput, rdatas: &[RData]) -> Option<Vec<u8>> {
    let mut rds = rdatas
        .iter()
        .map(canonical_rdata)
        .collect::<Option<Vec<_>>>()?;
    rds.sort();
    rds.dedup();
    let mut buf = Vec::new();
    {
        let mut enc = BinEncoder::new(&mut buf);
        enc.set_canonical_form(true);
        enc.set_name_encoding(NameEncoding::Uncompressed);
        input.emit(&mut enc).ok()?;
    }
    let owner = crate::zone::canonical_wire(name);
    for rd in rds {
        buf.extend_from_slice(&owner);
        buf.extend_from_slice(&u16::from(input.type_covered).to_be_bytes());
        buf.extend_from_slice(&u16::from(DNSClass::IN).to_be_bytes());
        buf.extend_from_slice(&input.original_ttl.to_be_bytes());
        buf.extend_from_slice(&u16::try_from(rd.len()).ok()?.to_be_bytes());
        buf.extend_from_slice(&rd);
    }
    Some(buf)
}

fn random_u32() -> u32 {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 4];
    let _ = ring::rand::SystemRandom::new().fill(&mut b);
    u32::from_be_bytes(b)
}

/// Seconds of `sig`'s validity left at `now` (negative when expired).
fn remaining(sig: &SigInput, now: u64) -> i64 {
    serial::ahead(sig.sig_expiration.get(), now as u32)
}

impl ZoneSigner {
    /// A signer with one key (a zone's first, or a test's).
    pub fn new(key: ZoneKey, settings: Settings) -> Self {
        Self::with_keys(KeySet::single(key), settings)
    }

    pub fn with_keys(keys: KeySet, settings: Settings) -> Self {
        Self {
            keys: ArcSwap::from_pointee(keys),
            settings,
            suspects: Mutex::default(),
        }
    }

    /// The keys signing now.
    pub fn keys(&self) -> Arc<KeySet> {
        self.keys.load_full()
    }

    /// Sign with `keys` from now on; the next [`ZoneSigner::sign_all`]
    /// brings the zone in line. Returns the keys it replaced.
    pub fn set_keys(&self, keys: KeySet) -> Arc<KeySet> {
        self.keys.swap(Arc::new(keys))
    }

    /// The key the parent's DS is for (or should be: the CDS's; while
    /// DNSSEC is turned off, the last published one). None once off.
    pub fn key(&self) -> Option<Arc<ZoneKey>> {
        let keys = self.keys.load();
        match &keys.cds {
            Cds::Key(k) => Some(k.clone()),
            _ => keys.published.last().cloned(),
        }
    }

    /// Whether the zone is signed at all (not once DNSSEC was turned off).
    pub fn is_on(&self) -> bool {
        !self.keys.load().is_off()
    }

    /// Have the next [`ZoneSigner::sign_all`] sign these RRsets again,
    /// whatever their RRSIGs look like.
    pub fn suspect(&self, rrsets: impl IntoIterator<Item = (Name, RecordType)>) {
        let mut s = self.suspects.lock().unwrap_or_else(|p| p.into_inner());
        s.extend(rrsets.into_iter().map(|(n, t)| (n.to_lowercase(), t)));
    }

    /// The RRsets of `zone` with an RRSIG of ours that does not verify over
    /// the RRset as it is (RFC 4035 §5.3): a database edited or damaged
    /// behind the server's back. Read-only and slow (one verification per
    /// RRSIG): run it on a published snapshot, off the writer. None when
    /// `go_on` said to stop (asked every 256 names).
    pub fn unverified(
        &self,
        zone: &ZoneData,
        go_on: impl Fn() -> bool,
    ) -> Option<Vec<(Name, RecordType)>> {
        let mut bad = Vec::new();
        let keys = self.keys();
        for (i, name) in zone.names().enumerate() {
            if i % 256 == 0 && !go_on() {
                return None;
            }
            let name = &name;
            let Some(sigs) = zone.rrset(name, RecordType::RRSIG) else {
                continue;
            };
            let rrsets = nsec::signed_rrsets(zone, name);
            for sig in sigs.rdatas().iter().filter_map(as_rrsig) {
                let i = sig.input();
                let Some(key) = keys.signer_of(i) else {
                    continue; // not ours: the walk drops it
                };
                let Some((t, _, rdatas)) = rrsets.iter().find(|(t, ..)| *t == i.type_covered)
                else {
                    continue; // nothing to cover: the walk drops it
                };
                let good = signed_data(name, i, rdatas).is_some_and(|d| key.verify(&d, sig.sig()));
                if !good {
                    bad.push((name.clone(), *t));
                }
            }
        }
        Some(bad)
    }

    fn input(
        &self,
        key: &ZoneKey,
        name: &Name,
        covered: RecordType,
        ttl: u32,
        now: u64,
    ) -> SigInput {
        let validity = self.settings.signature_validity;
        let margin = validity.saturating_sub(self.settings.refresh_before);
        let spread = (validity / 8).min(margin / 2).max(1);
        let now = now as u32;
        SigInput {
            type_covered: covered,
            algorithm: key.algorithm.dnssec(),
            num_labels: name.num_labels(),
            original_ttl: ttl,
            sig_expiration: SerialNumber::new(
                now.wrapping_add(validity)
                    .wrapping_sub(random_u32() % spread),
            ),
            sig_inception: SerialNumber::new(now.wrapping_sub(INCEPTION_BACKDATE)),
            key_tag: key.key_tag(),
            signer_name: key.zone.clone(),
        }
    }

    /// An RRSIG record over one RRset, by `key`.
    pub fn sign_rrset(
        &self,
        key: &ZoneKey,
        name: &Name,
        covered: RecordType,
        ttl: u32,
        rdatas: &[RData],
        now: u64,
    ) -> Option<Record> {
        let input = self.input(key, name, covered, ttl, now);
        let data = signed_data(name, &input, rdatas)?;
        let sig = key.sign(&TBS::from(data.as_slice()))?;
        Some(Record::from_rdata(
            name.clone(),
            ttl,
            RData::DNSSEC(DNSSECRData::RRSIG(RRSIG::from_sig(input, sig))),
        ))
    }

    /// Whether `sig` is by one of `keys`, fits the RRset's TTL, and is not due.
    fn keep(&self, keys: &KeySet, name: &Name, sig: &RRSIG, ttl: u32, now: u64) -> bool {
        let i = sig.input();
        let ours = keys.signer_of(i).is_some()
            && i.num_labels == name.num_labels()
            && i.original_ttl == ttl;
        let fresh = remaining(i, now) > i64::from(self.settings.refresh_before)
            && serial::ahead(i.sig_inception.get(), now as u32) <= 0;
        ours && fresh
    }

    /// Whether the apex DNSKEY, CDS and CDNSKEY RRsets are what the key and
    /// settings say (the zone is signed with this key). Read-only.
    pub fn keys_in_place(&self, zone: &ZoneData) -> bool {
        let ttl = self.settings.dnskey_ttl;
        self.keys()
            .apex()
            .into_iter()
            .all(|(t, want)| match zone.rrset(zone.origin(), t) {
                None => want.is_empty(),
                Some(s) => s.ttl == ttl && same_set(&s.rdatas(), &want),
            })
    }

    /// Whether the zone's denial of existence (NSEC or NSEC3) is what the
    /// settings say; if not, [`ZoneSigner::sign_all`] takes it a step
    /// further (`nsec3::step`). Read-only.
    pub fn denial_in_place(&self, zone: &ZoneData) -> bool {
        nsec3::in_place(zone, self.settings.denial)
    }

    /// Make the apex DNSKEY, CDS and CDNSKEY RRsets what the key says.
    /// Returns the types that changed (their RRSIGs must be made again).
    fn fix_apex_keys(&self, zone: &mut ZoneData, delta: &mut Delta) -> BTreeSet<RecordType> {
        let apex = zone.origin().clone();
        let ttl = self.settings.dnskey_ttl;
        let mut changed = BTreeSet::new();
        for (t, want) in self.keys().apex() {
            let in_line = match zone.rrset(&apex, t) {
                None => want.is_empty(),
                Some(s) => s.ttl == ttl && same_set(&s.rdatas(), &want),
            };
            if in_line {
                continue;
            }
            for r in zone.records(&apex, t) {
                delta.remove(r);
            }
            zone.remove_rrset(&apex, t);
            for rdata in want {
                zone.add(&apex, t, ttl, rdata.clone());
                delta.add(Record::from_rdata(apex.clone(), ttl, rdata));
            }
            changed.insert(t);
        }
        changed
    }

    /// Bring one name in line: its NSEC and its RRSIGs (see the module doc).
    fn fix_name(
        &self,
        zone: &mut ZoneData,
        name: &Name,
        force: &BTreeSet<RecordType>,
        now: u64,
        delta: &mut Delta,
    ) {
        let chained = nsec::in_chain(zone, name);
        if !chained && !nsec3::is_owner(zone, name) {
            for t in [RecordType::NSEC, RecordType::RRSIG] {
                for r in zone.records(name, t) {
                    delta.remove(r);
                }
                zone.remove_rrset(name, t);
            }
            return;
        }
        let mut force = force.clone();
        // No NSEC at a hashed owner, nor anywhere once NSEC3 is in use.
        let want = (chained && !nsec3::in_use(zone)).then(|| nsec::nsec_rdata(zone, name));
        let ttl = zone.negative_ttl();
        if want.is_none() {
            for r in zone.records(name, RecordType::NSEC) {
                delta.remove(r);
            }
            zone.remove_rrset(name, RecordType::NSEC);
        } else if let Some(want) = want
            && !zone
                .rrset(name, RecordType::NSEC)
                .is_some_and(|s| s.ttl == ttl && s.rdatas() == [want.clone()])
        {
            for r in zone.records(name, RecordType::NSEC) {
                delta.remove(r);
            }
            zone.remove_rrset(name, RecordType::NSEC);
            zone.add(name, RecordType::NSEC, ttl, want.clone());
            delta.add(Record::from_rdata(name.clone(), ttl, want));
            force.insert(RecordType::NSEC);
        }
        let rrsets = nsec::signed_rrsets(zone, name);
        let keys = self.keys();
        // (type covered, key tag, algorithm) of the RRSIGs kept.
        let mut covered = BTreeSet::new();
        for sig in zone.records(name, RecordType::RRSIG) {
            let by = |s: &RRSIG| {
                let i = s.input();
                (i.type_covered, i.key_tag, u8::from(i.algorithm))
            };
            let keep = as_rrsig(&sig.data).is_some_and(|s| {
                let t = s.input().type_covered;
                !force.contains(&t)
                    && !covered.contains(&by(s))
                    && rrsets
                        .iter()
                        .any(|(rt, ttl, _)| *rt == t && self.keep(&keys, name, s, *ttl, now))
            });
            if keep {
                if let Some(s) = as_rrsig(&sig.data) {
                    covered.insert(by(s));
                }
            } else {
                zone.remove(name, RecordType::RRSIG, &sig.data);
                delta.remove(sig);
            }
        }
        for (t, ttl, rdatas) in rrsets {
            for key in &keys.signing {
                if covered.contains(&(t, key.key_tag(), u8::from(key.algorithm.dnssec()))) {
                    continue;
                }
                match self.sign_rrset(key, name, t, ttl, &rdatas, now) {
                    Some(r) => {
                        zone.add(name, RecordType::RRSIG, ttl, r.data.clone());
                        delta.add(r);
                    }
                    None => {
                        tracing::error!(zone = %key.zone, key_tag = key.key_tag(), name = %name, rtype = %t, "cannot sign RRset")
                    }
                }
            }
        }
    }

    /// Walk `names` (and the apex) with `fix_name`.
    fn fix_names(
        &self,
        zone: &mut ZoneData,
        names: impl IntoIterator<Item = (Name, BTreeSet<RecordType>)>,
        now: u64,
        delta: &mut Delta,
    ) {
        for (name, force) in names {
            self.fix_name(zone, &name, &force, now, delta);
        }
    }

    /// After a change moved the serial: the SOA's RRSIG again.
    fn resign_soa(&self, zone: &mut ZoneData, now: u64, delta: &mut Delta) {
        let apex = zone.origin().clone();
        let force = BTreeSet::from([RecordType::SOA]);
        self.fix_name(zone, &apex, &force, now, delta);
    }

    /// Every name of the zone, none forced.
    fn all_names(zone: &ZoneData) -> Vec<(Name, BTreeSet<RecordType>)> {
        let mut names: Vec<_> = zone.names().map(|n| (n, BTreeSet::new())).collect();
        if !names.iter().any(|(n, _)| n == zone.origin()) {
            names.insert(0, (zone.origin().clone(), BTreeSet::new()));
        }
        names
    }

    /// Sign whatever is unsigned, suspected ([`ZoneSigner::suspect`]) or
    /// out of line with the key and settings, fix the chain and the key
    /// records; keep every other signature. At start: the first time this
    /// signs the whole zone, on a restart it changes nothing. Moves the
    /// serial when anything changed.
    pub fn sign_all(&self, zone: &mut ZoneData, now: u64) -> Delta {
        if !self.is_on() {
            return super::strip(zone);
        }
        let mut delta = Delta::default();
        let keys_changed = self.fix_apex_keys(zone, &mut delta);
        let mut suspects: BTreeMap<Name, BTreeSet<RecordType>> = BTreeMap::new();
        let taken = std::mem::take(&mut *self.suspects.lock().unwrap_or_else(|p| p.into_inner()));
        for (n, t) in taken {
            suspects.entry(n).or_default().insert(t);
        }
        for owner in nsec3::step(zone, self.settings.denial, &mut delta) {
            suspects.entry(owner).or_default().insert(RecordType::NSEC3);
        }
        let mut names = Self::all_names(zone);
        for (n, force) in names.iter_mut() {
            if n == zone.origin() {
                force.extend(keys_changed.iter().copied());
            }
            if let Some(ts) = suspects.remove(n) {
                force.extend(ts);
            }
        }
        self.fix_names(zone, names, now, &mut delta);
        if !delta.is_empty() {
            zone.serial = serial::next(zone.serial);
            self.resign_soa(zone, now, &mut delta);
        }
        delta
    }

    /// Re-sign every RRSIG with less than `refresh-before` left (and fix
    /// anything else found out of line). Moves the serial when anything
    /// changed.
    pub fn refresh(&self, zone: &mut ZoneData, now: u64) -> Delta {
        let mut delta = Delta::default();
        if !self.is_on() {
            return delta;
        }
        let redone = match zone.has_nsec3() {
            true => nsec3::rebuild(zone, &mut delta),
            false => BTreeSet::new(),
        };
        let mut names = Self::all_names(zone);
        for (_, force) in names.iter_mut().filter(|(n, _)| redone.contains(n)) {
            force.insert(RecordType::NSEC3);
        }
        self.fix_names(zone, names, now, &mut delta);
        if !delta.is_empty() {
            zone.serial = serial::next(zone.serial);
            self.resign_soa(zone, now, &mut delta);
        }
        delta
    }

    /// After an update turned `prev` into `next` (whose serial has already
    /// moved), changing the RRsets in `touched`: re-sign exactly those, fix
    /// the NSECs of the touched names and of their chain predecessors, and
    /// re-sign the SOA. A touched NS below the apex (a delegation made or
    /// removed) turns the whole subtree below it into glue or back, so every
    /// name there is walked too.
    pub fn resign(
        &self,
        prev: &ZoneData,
        next: &mut ZoneData,
        touched: &BTreeSet<(Name, RecordType)>,
        now: u64,
    ) -> Delta {
        if !self.is_on() {
            return Delta::default();
        }
        let apex = next.origin().clone();
        let mut names: std::collections::BTreeMap<Name, BTreeSet<RecordType>> =
            std::collections::BTreeMap::new();
        for (name, t) in touched {
            let name = name.to_lowercase();
            if *t == RecordType::NS && name != apex {
                for n in prev.subtree(&name).chain(next.subtree(&name)) {
                    names.entry(n).or_default();
                }
            }
            names.entry(name).or_default().insert(*t);
        }
        let preds: Vec<Name> = match nsec3::in_use(next) {
            true => Vec::new(), // no NSEC chain
            false => names
                .keys()
                .filter(|n| **n != apex)
                .map(|n| nsec::prev_in_chain(next, n))
                .collect(),
        };
        let mut delta = Delta::default();
        if next.has_nsec3() {
            let changed: Vec<Name> = names.keys().cloned().collect();
            for owner in nsec3::fix(next, changed, &mut delta) {
                names.entry(owner).or_default().insert(RecordType::NSEC3);
            }
        }
        for p in preds {
            names.entry(p).or_default();
        }
        names.entry(apex).or_default().insert(RecordType::SOA);
        self.fix_names(next, names, now, &mut delta);
        delta
    }
}
