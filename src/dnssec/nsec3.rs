//! The NSEC3 chain (RFC 5155 §7.1), for zones whose file says
//! `[dnssec] denial = "nsec3"`: which names own an NSEC3, what each says,
//! and keeping the chain right incrementally on every change, as
//! [`super::nsec`] does for NSEC.
//!
//! Parameters are RFC 9276's: hash SHA-1, no extra iterations, empty salt,
//! flags 0 (no opt-out); the NSEC3PARAM at the apex says the same
//! (`1 0 0 -`). Every name with authoritative data, every delegation point
//! (secure or not: without opt-out every delegation has one), the apex and
//! every empty non-terminal between them and the apex own an NSEC3 (§7.1);
//! glue below a zone cut does not. The owner of a name's NSEC3 is the
//! base32hex of its hash, one label below the apex (`zone::nsec3hash`);
//! the next hashed owner field holds the next hash in hash order, the last
//! wrapping to the first. The type bitmap lists the data types at the
//! original name (at a delegation only NS and DS), SOA and NSEC3PARAM at
//! the apex, and RRSIG when the name owns a signed RRset; never NSEC (a
//! zone switching between NSEC and NSEC3 holds both chains for one change,
//! and the NSEC3 records stay as they are when the NSEC chain goes). The
//! NSEC3 TTL is the NSEC TTL: min(SOA TTL, SOA MINIMUM) (RFC 9077 §3.2);
//! so is the NSEC3PARAM's, which is not used by resolvers but tells
//! secondaries (BIND, Knot) which chain to answer with: it changes when
//! the zone switches, and a short TTL keeps a stale one from being cached.
//!
//! A name added or removed adds or removes its own NSEC3 (and those of the
//! empty non-terminals it makes or unmakes above it) and changes the next
//! hash of its predecessor in hash order ([`fix`]); the neighbours are
//! found through the zone's index of NSEC3 owners. [`rebuild`] makes the
//! whole chain from the names (at start and on the hourly refresh).
//!
//! # Limitations
//!
//! No opt-out, no other parameters (RFC 9276 §3.1 says there is no reason
//! for either here), no wildcard proofs beyond "no wildcard exists" (the
//! zone serves none).

use std::collections::{BTreeMap, BTreeSet, HashSet};

use hickory_proto::dnssec::Nsec3HashAlgorithm;
use hickory_proto::dnssec::rdata::{DNSSECRData, NSEC3};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::{Delta, nsec};
use crate::zone::ZoneData;
pub use crate::zone::nsec3hash::{HASH_LEN, Params, base32hex, hash_of_owner};
use crate::zonefile::Denial;

/// Whether `name` owns an NSEC3 RRset (it is a hashed owner).
pub fn is_owner(zone: &ZoneData, name: &Name) -> bool {
    zone.rrset(name, RecordType::NSEC3).is_some()
}

/// Whether the zone's answers use NSEC3: its apex has an NSEC3PARAM
/// ("NSEC3PARAM last on, first off", as BIND and Knot decide).
pub fn in_use(zone: &ZoneData) -> bool {
    zone.rrset(zone.origin(), RecordType::NSEC3PARAM).is_some()
}

/// Whether `name` gets an NSEC3 (§7.1): the apex; a name not below a zone
/// cut with data at or below it (an empty non-terminal included).
pub fn in_chain(zone: &ZoneData, name: &Name) -> bool {
    let apex = zone.origin();
    if name == apex {
        return true;
    }
    if !apex.zone_of(name) || zone.delegation_for(name).is_some_and(|cut| cut != *name) {
        return false;
    }
    zone.subtree(name)
        .any(|n| zone.node(&n).is_some_and(nsec::has_data))
}

/// The types `name`'s NSEC3 lists (RFC 5155 §3.2.1, §7.1).
pub fn bitmap(zone: &ZoneData, name: &Name) -> Vec<RecordType> {
    let apex = name == zone.origin();
    let delegation = nsec::is_delegation(zone, name);
    let node = zone.node(name);
    let mut types: Vec<RecordType> = if delegation {
        let mut t = vec![RecordType::NS];
        if node.is_some_and(|n| n.contains_key(&RecordType::DS)) {
            t.push(RecordType::DS);
        }
        t
    } else {
        node.map(|n| {
            n.keys()
                .copied()
                .filter(|t| !matches!(t, RecordType::RRSIG | RecordType::NSEC | RecordType::NSEC3))
                .collect()
        })
        .unwrap_or_default()
    };
    // Signed RRsets: the SOA at the apex, a DS at a delegation, any data
    // elsewhere (RFC 4035 §2.2).
    let signed = apex
        || if delegation {
            types.len() > 1
        } else {
            !types.is_empty()
        };
    if apex {
        types.push(RecordType::SOA);
    }
    if signed {
        types.push(RecordType::RRSIG);
    }
    types
}

fn rdata(next: &[u8], types: Vec<RecordType>) -> RData {
    let p = Params::RFC9276;
    RData::DNSSEC(DNSSECRData::NSEC3(NSEC3::new(
        Nsec3HashAlgorithm::SHA1,
        false,
        p.iterations,
        p.salt,
        next.to_vec(),
        types,
    )))
}

fn as_nsec3(data: &RData) -> Option<&NSEC3> {
    match data {
        RData::DNSSEC(DNSSECRData::NSEC3(n)) => Some(n),
        _ => None,
    }
}

/// The NSEC3 at `owner`, if it holds exactly one.
fn current(zone: &ZoneData, owner: &Name) -> Option<NSEC3> {
    let set = zone.rrset(owner, RecordType::NSEC3)?;
    match set.rdatas().as_slice() {
        [one] => as_nsec3(one).cloned(),
        _ => None,
    }
}

/// Set the NSEC3 RRset at `owner` to `want`; false if it already was.
fn put(zone: &mut ZoneData, owner: &Name, want: RData, delta: &mut Delta) -> bool {
    let ttl = zone.negative_ttl();
    if zone
        .rrset(owner, RecordType::NSEC3)
        .is_some_and(|s| s.ttl == ttl && s.rdatas() == [want.clone()])
    {
        return false;
    }
    for r in zone.records(owner, RecordType::NSEC3) {
        delta.remove(r);
    }
    zone.remove_rrset(owner, RecordType::NSEC3);
    zone.add(owner, RecordType::NSEC3, ttl, want.clone());
    delta.add(Record::from_rdata(owner.clone(), ttl, want));
    true
}

/// Remove the NSEC3 at `owner` and the RRSIGs over it.
fn drop_owner(zone: &mut ZoneData, owner: &Name, delta: &mut Delta) {
    for r in zone.records(owner, RecordType::NSEC3) {
        delta.remove(r);
    }
    zone.remove_rrset(owner, RecordType::NSEC3);
    for sig in zone.rrsigs(owner, RecordType::NSEC3) {
        zone.remove(owner, RecordType::RRSIG, &sig.data);
        delta.remove(sig);
    }
}

/// Put the NSEC3PARAM at the apex (`on`) or take it away. True when that
/// changed the zone (the apex's RRSIGs and its NSEC3 bitmap follow).
pub fn set_param(zone: &mut ZoneData, on: bool, delta: &mut Delta) -> bool {
    let apex = zone.origin().clone();
    let ttl = zone.negative_ttl();
    let want = RData::DNSSEC(DNSSECRData::NSEC3PARAM(Params::RFC9276.nsec3param()));
    let present = zone.rrset(&apex, RecordType::NSEC3PARAM);
    if on && present.is_some_and(|s| s.ttl == ttl && s.rdatas() == [want.clone()]) {
        return false;
    }
    if !on && present.is_none() {
        return false;
    }
    for r in zone.records(&apex, RecordType::NSEC3PARAM) {
        delta.remove(r);
    }
    zone.remove_rrset(&apex, RecordType::NSEC3PARAM);
    if on {
        zone.add(&apex, RecordType::NSEC3PARAM, ttl, want.clone());
        delta.add(Record::from_rdata(apex, ttl, want));
    }
    true
}

/// Remove the whole NSEC3 chain (with its RRSIGs). Returns how many
/// owners went.
pub fn remove_chain(zone: &mut ZoneData, delta: &mut Delta) -> usize {
    let owners: Vec<Name> = zone.nsec3_owners().collect();
    for o in &owners {
        drop_owner(zone, o, delta);
    }
    owners.len()
}

/// Make the chain exactly what the zone's names say. Returns the owners
/// whose NSEC3 was added or changed (their RRSIG must be made again).
pub fn rebuild(zone: &mut ZoneData, delta: &mut Delta) -> BTreeSet<Name> {
    let p = Params::RFC9276;
    let apex = zone.origin().clone();
    let mut seen: HashSet<Name> = HashSet::new();
    let mut want: BTreeMap<[u8; HASH_LEN], Vec<RecordType>> = BTreeMap::new();
    let data_names: Vec<Name> = zone
        .names()
        .filter(|n| *n == apex || nsec::in_chain(zone, n))
        .collect();
    for name in std::iter::once(apex.clone()).chain(data_names) {
        // the name, then the empty non-terminals above it up to the first
        // name already seen (whose ancestors were all seen with it)
        let mut n = name;
        while seen.insert(n.clone()) {
            want.insert(p.hash(&n), bitmap(zone, &n));
            if n == apex || n.num_labels() <= apex.num_labels() {
                break;
            }
            n = n.base_name();
        }
    }
    let hashes: Vec<[u8; HASH_LEN]> = want.keys().copied().collect();
    let owners: BTreeSet<Name> = hashes
        .iter()
        .map(|h| crate::zone::nsec3hash::owner_of_hash(&apex, h))
        .collect();
    for o in zone.nsec3_owners().collect::<Vec<_>>() {
        if !owners.contains(&o) {
            drop_owner(zone, &o, delta);
        }
    }
    let mut changed = BTreeSet::new();
    for (i, (h, types)) in want.into_iter().enumerate() {
        let next = hashes[(i + 1) % hashes.len()];
        let owner = crate::zone::nsec3hash::owner_of_hash(&apex, &h);
        if put(zone, &owner, rdata(&next, types), delta) {
            changed.insert(owner);
        }
    }
    changed
}

/// After a change to the data at `names`: their NSEC3 and those of the
/// names above them up to the apex (empty non-terminals come and go with
/// their last child) added, changed or removed, and the next hash of each
/// predecessor in hash order put right. Returns the owners whose NSEC3
/// was added or changed.
pub fn fix(
    zone: &mut ZoneData,
    names: impl IntoIterator<Item = Name>,
    delta: &mut Delta,
) -> BTreeSet<Name> {
    let p = Params::RFC9276;
    let apex = zone.origin().clone();
    let mut candidates: BTreeSet<Name> = BTreeSet::new();
    for name in names {
        let mut n = name.to_lowercase();
        while apex.zone_of(&n) && candidates.insert(n.clone()) && n != apex {
            n = n.base_name();
        }
    }
    // What each owner touched held before, to report only real changes.
    let mut before: BTreeMap<Name, Option<NSEC3>> = BTreeMap::new();
    let mut added: Vec<Name> = Vec::new();
    let mut gone: Vec<Name> = Vec::new();
    for c in &candidates {
        let owner = p.owner(&apex, c);
        let now = current(zone, &owner);
        if in_chain(zone, c) {
            let types = bitmap(zone, c);
            let next = match &now {
                Some(n) => n.next_hashed_owner_name().to_vec(),
                // a placeholder until the neighbours are known
                None => p.hash(c).to_vec(),
            };
            if now.is_none() {
                added.push(owner.clone());
            }
            before.entry(owner.clone()).or_insert(now);
            put(zone, &owner, rdata(&next, types), delta);
        } else if is_owner(zone, &owner) {
            drop_owner(zone, &owner, delta);
            gone.push(owner);
        }
    }
    // Next hashes: of every owner added, and of the predecessor of every
    // owner added or removed.
    let mut relink: BTreeSet<Name> = added.iter().cloned().collect();
    for o in added.iter().chain(&gone) {
        if let Some(pred) = zone.nsec3_owner_before(o) {
            relink.insert(pred);
        }
    }
    for o in relink {
        let (Some(now), Some(next)) = (current(zone, &o), zone.nsec3_owner_after(&o)) else {
            continue;
        };
        let Some(next) = hash_of_owner(&next) else {
            continue;
        };
        if now.next_hashed_owner_name() != next.as_slice() {
            before.entry(o.clone()).or_insert(Some(now.clone()));
            let types: Vec<RecordType> = now.type_bit_maps().collect();
            put(zone, &o, rdata(&next, types), delta);
        }
    }
    before
        .into_iter()
        .filter(|(o, was)| current(zone, o) != *was)
        .map(|(o, _)| o)
        .collect()
}

/// Whether the zone's denial of existence is what `denial` asks for:
/// NSEC3 in use, or no NSEC3 record left.
pub fn in_place(zone: &ZoneData, denial: Denial) -> bool {
    match denial {
        Denial::Nsec3 => in_use(zone),
        Denial::Nsec => !in_use(zone) && !zone.has_nsec3(),
    }
}

/// One step of the switch to `denial`, each its own journaled change so
/// that every published state proves denial one way or the other, and
/// "NSEC3PARAM last on, first off":
///
/// - to NSEC3 on a zone signed with NSEC: first the whole NSEC3 chain
///   beside the NSEC chain (answers still NSEC); then, on the next call,
///   the NSEC3PARAM, and the signer drops the NSEC chain;
/// - to NSEC with an NSEC3PARAM: first the NSEC3PARAM goes and the signer
///   makes the NSEC chain (the NSEC3 chain stays); then the NSEC3 chain
///   goes;
/// - a zone signed for the first time gets NSEC3 at once.
///
/// Whatever the step, the NSEC3 chain kept is made right. Returns the
/// owners whose NSEC3 changed (their RRSIGs must be made again). The NSEC
/// chain follows in the signer's walk: a name owns an NSEC exactly when
/// the zone has no NSEC3PARAM.
pub fn step(zone: &mut ZoneData, denial: Denial, delta: &mut Delta) -> BTreeSet<Name> {
    let param = in_use(zone);
    let (chain, param) = match denial {
        Denial::Nsec3 => {
            let nsec_signed = zone.rrset(zone.origin(), RecordType::NSEC).is_some();
            (true, param || zone.has_nsec3() || !nsec_signed)
        }
        Denial::Nsec => (param, false),
    };
    set_param(zone, param, delta);
    if chain {
        rebuild(zone, delta)
    } else {
        remove_chain(zone, delta);
        BTreeSet::new()
    }
}
