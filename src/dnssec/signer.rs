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
use std::sync::Mutex;

use hickory_proto::dnssec::TBS;
use hickory_proto::dnssec::rdata::{DNSSECRData, RRSIG, SigInput};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType, SerialNumber};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};

use super::key::{KeyError, ZoneKey};
use super::{Delta, INCEPTION_BACKDATE, Settings};
use super::{nsec, nsec3};
use crate::serial;
use crate::zone::{ZoneData, as_rrsig};
use crate::zonefile::ZoneSpec;

/// Signs one zone with its key and settings.
#[derive(Debug)]
pub struct ZoneSigner {
    pub key: ZoneKey,
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
    /// The signer for a zone whose file turns DNSSEC on; its key is loaded
    /// from `<data_dir>/dnssec/`, or made there on first start.
    pub fn open(spec: &ZoneSpec, data_dir: &std::path::Path) -> Result<Option<Self>, KeyError> {
        let Some(settings) = spec.dnssec.clone() else {
            return Ok(None);
        };
        let (key, created) = ZoneKey::load_or_create(data_dir, &spec.origin, settings.algorithm)?;
        if created {
            tracing::warn!(zone = %spec.origin, key_tag = key.key_tag(), file = %key.path.display(),
                "generated a DNSSEC key; give the parent its DS (`zonewarden ds {}`)", spec.origin);
        }
        Ok(Some(Self::new(key, settings)))
    }

    pub fn new(key: ZoneKey, settings: Settings) -> Self {
        Self {
            key,
            settings,
            suspects: Mutex::default(),
        }
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
                let ours = i.key_tag == self.key.key_tag()
                    && i.algorithm == self.key.algorithm.dnssec()
                    && i.signer_name == self.key.zone;
                let Some((t, _, rdatas)) = rrsets.iter().find(|(t, ..)| *t == i.type_covered)
                else {
                    continue; // nothing to cover: the walk drops it
                };
                let good =
                    signed_data(name, i, rdatas).is_some_and(|d| self.key.verify(&d, sig.sig()));
                if ours && !good {
                    bad.push((name.clone(), *t));
                }
            }
        }
        Some(bad)
    }

    fn input(&self, name: &Name, covered: RecordType, ttl: u32, now: u64) -> SigInput {
        let validity = self.settings.signature_validity;
        let margin = validity.saturating_sub(self.settings.refresh_before);
        let spread = (validity / 8).min(margin / 2).max(1);
        let now = now as u32;
        SigInput {
            type_covered: covered,
            algorithm: self.key.algorithm.dnssec(),
            num_labels: name.num_labels(),
            original_ttl: ttl,
            sig_expiration: SerialNumber::new(
                now.wrapping_add(validity)
                    .wrapping_sub(random_u32() % spread),
            ),
            sig_inception: SerialNumber::new(now.wrapping_sub(INCEPTION_BACKDATE)),
            key_tag: self.key.key_tag(),
            signer_name: self.key.zone.clone(),
        }
    }

    /// An RRSIG record over one RRset.
    pub fn sign_rrset(
        &self,
        name: &Name,
        covered: RecordType,
        ttl: u32,
        rdatas: &[RData],
        now: u64,
    ) -> Option<Record> {
        let input = self.input(name, covered, ttl, now);
        let data = signed_data(name, &input, rdatas)?;
        let sig = self.key.sign(&TBS::from(data.as_slice()))?;
        Some(Record::from_rdata(
            name.clone(),
            ttl,
            RData::DNSSEC(DNSSECRData::RRSIG(RRSIG::from_sig(input, sig))),
        ))
    }

    /// Whether `sig` is ours, fits the RRset's TTL, and is not due.
    fn keep(&self, name: &Name, sig: &RRSIG, ttl: u32, now: u64) -> bool {
        let i = sig.input();
        let ours = i.key_tag == self.key.key_tag()
            && i.algorithm == self.key.algorithm.dnssec()
            && i.signer_name == self.key.zone
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
        [
            (RecordType::DNSKEY, self.key.dnskey_rdata()),
            (RecordType::CDS, self.key.cds_rdata()),
            (RecordType::CDNSKEY, self.key.cdnskey_rdata()),
        ]
        .into_iter()
        .all(|(t, rdata)| {
            zone.rrset(zone.origin(), t)
                .is_some_and(|s| s.ttl == ttl && s.rdatas() == [rdata])
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
        for (t, rdata) in [
            (RecordType::DNSKEY, self.key.dnskey_rdata()),
            (RecordType::CDS, self.key.cds_rdata()),
            (RecordType::CDNSKEY, self.key.cdnskey_rdata()),
        ] {
            let current = zone.rrset(&apex, t);
            if current.is_some_and(|s| s.ttl == ttl && s.rdatas() == [rdata.clone()]) {
                continue;
            }
            for r in zone.records(&apex, t) {
                delta.remove(r);
            }
            zone.remove_rrset(&apex, t);
            zone.add(&apex, t, ttl, rdata.clone());
            delta.add(Record::from_rdata(apex.clone(), ttl, rdata));
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
        let mut covered = BTreeSet::new();
        for sig in zone.records(name, RecordType::RRSIG) {
            let keep = as_rrsig(&sig.data).is_some_and(|s| {
                let t = s.input().type_covered;
                !force.contains(&t)
                    && !covered.contains(&t)
                    && rrsets
                        .iter()
                        .any(|(rt, ttl, _)| *rt == t && self.keep(name, s, *ttl, now))
            });
            if keep {
                if let Some(s) = as_rrsig(&sig.data) {
                    covered.insert(s.input().type_covered);
                }
            } else {
                zone.remove(name, RecordType::RRSIG, &sig.data);
                delta.remove(sig);
            }
        }
        for (t, ttl, rdatas) in rrsets {
            if covered.contains(&t) {
                continue;
            }
            match self.sign_rrset(name, t, ttl, &rdatas, now) {
                Some(r) => {
                    zone.add(name, RecordType::RRSIG, ttl, r.data.clone());
                    delta.add(r);
                }
                None => {
                    tracing::error!(zone = %self.key.zone, name = %name, rtype = %t, "cannot sign RRset")
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
