//! The in-memory zone: an immutable snapshot that queries read without locks.
//!
//! A [`ZoneData`] is never changed in place: the update path clones it,
//! changes the copy, commits the change to the database, and swaps the new
//! snapshot in (`arc_swap`). The name index is a persistent ordered map
//! (`imbl::OrdMap`): a clone shares everything, and a change copies only the
//! O(log n) path to the names it touches, so an update costs the same in a
//! zone of ten names or of fifty thousand. Names are kept lowercase, in canonical DNS
//! order (RFC 4034 §6.1, hickory's `Ord` for `Name`), which is the order NSEC
//! chains and AXFR need later: the map's keys are byte strings whose byte
//! order is that order (`owner`), and each RRset keeps its RDATAs as wire
//! bytes (`rrset`), so that a zone of a million records fits in memory.
//!
//! No RRset here is ever empty: removing the last RR removes the RRset, and
//! removing the last RRset removes the node.
//!
//! DNSSEC records (made by `dnssec`, never by UPDATE) live in the nodes as
//! ordinary RRsets: all RRSIGs of a name form one RRSIG RRset (each RR keeps
//! the TTL of the RRset it covers, RFC 4034 §3, which is its Original TTL),
//! the NSEC of a name is its NSEC RRset, DNSKEY/CDS/CDNSKEY sit at the apex.
//! The record counts that limits use ([`ZoneData::record_count`],
//! [`ZoneData::records_at`]) leave DNSSEC types out.

use std::collections::{HashMap, HashSet};

use imbl::{OrdMap, OrdSet};
use std::ops::Bound;
use std::sync::Arc;

use hickory_proto::dnssec::rdata::{DNSSECRData, RRSIG};
use hickory_proto::rr::{Name, RData, Record, RecordType};

pub mod change;
pub mod keys;
pub mod nsec3hash;
mod owner;
mod rrset;

use owner::{KeyBuf, OwnerKey};
pub use rrset::RrSet;
use rrset::rrsig_wire;

use crate::zonefile::ZoneSpec;
pub use crate::zonefile::is_dnssec_type;

/// All RRsets at one name, in type order: a sorted vector, exactly as long
/// as it is, not a `BTreeMap`, whose every leaf reserves room for eleven
/// entries (about 400 octets for the one to four RRsets a name here has).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Node {
    sets: Vec<RrSet>,
}

impl Node {
    fn position(&self, t: &RecordType) -> Result<usize, usize> {
        self.sets.binary_search_by(|s| s.rtype().cmp(t))
    }

    pub fn get(&self, t: &RecordType) -> Option<&RrSet> {
        self.position(t).ok().map(|i| &self.sets[i])
    }

    pub fn get_mut(&mut self, t: &RecordType) -> Option<&mut RrSet> {
        self.position(t).ok().map(|i| &mut self.sets[i])
    }

    pub fn contains_key(&self, t: &RecordType) -> bool {
        self.position(t).is_ok()
    }

    /// The RRset of type `t`, made empty with `ttl` when there is none.
    fn get_or_insert(&mut self, t: RecordType, ttl: u32) -> &mut RrSet {
        let i = match self.position(&t) {
            Ok(i) => i,
            Err(i) => {
                self.sets.reserve_exact(1);
                self.sets.insert(i, RrSet::new(t, ttl));
                i
            }
        };
        &mut self.sets[i]
    }

    pub fn remove(&mut self, t: &RecordType) -> Option<RrSet> {
        let i = self.position(t).ok()?;
        let set = self.sets.remove(i);
        self.sets.shrink_to_fit();
        Some(set)
    }

    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }

    pub fn keys(&self) -> impl Iterator<Item = &RecordType> {
        self.sets.iter().map(|s| &s.rtype)
    }

    pub fn values(&self) -> impl Iterator<Item = &RrSet> {
        self.sets.iter()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&RecordType, &RrSet)> {
        self.sets.iter().map(|s| (&s.rtype, s))
    }
}

impl<'a> IntoIterator for &'a Node {
    type Item = (&'a RecordType, &'a RrSet);
    type IntoIter =
        std::iter::Map<std::slice::Iter<'a, RrSet>, fn(&'a RrSet) -> (&'a RecordType, &'a RrSet)>;

    fn into_iter(self) -> Self::IntoIter {
        self.sets.iter().map(|s| (&s.rtype, s))
    }
}

/// A name as users type it (zone, key or host), absolute with or without
/// the final dot: `_acme.example.org` and `_acme.example.org.` are one name.
pub fn absolute_name(text: &str) -> Result<Name, hickory_proto::ProtoError> {
    if text.ends_with('.') {
        Name::from_ascii(text)
    } else {
        Name::from_ascii(format!("{text}."))
    }
}

/// A name in canonical wire form (RFC 4034 §6.2): uncompressed, ASCII
/// letters lowercased. The owner in signed data, and the key of the UDP
/// fast path's prepared answers.
pub fn canonical_wire(name: &Name) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len() + 1);
    for label in name.iter() {
        out.push(label.len() as u8);
        out.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    out.push(0);
    out
}

/// The RRSIG inside an RData, if it is one.
pub fn as_rrsig(data: &RData) -> Option<&RRSIG> {
    match data {
        RData::DNSSEC(DNSSECRData::RRSIG(sig)) => Some(sig),
        _ => None,
    }
}

/// The RRs of one RRset as records. Each is served with the RRset's TTL,
/// except RRSIGs, which carry the TTL of the RRset they cover (RFC 4034 §3).
fn set_records<'a>(name: &'a Name, set: &'a RrSet) -> impl Iterator<Item = Record> + 'a {
    set.raw().filter_map(move |w| {
        let ttl = match set.rtype() {
            RecordType::RRSIG => rrsig_wire::original_ttl(w)?,
            _ => set.ttl,
        };
        Some(Record::from_rdata(
            name.clone(),
            ttl,
            rrset::decode(set.rtype(), w)?,
        ))
    })
}

/// The RRs of one node as records, in type order (the order of
/// [`ZoneData::all_records`]).
pub fn node_records<'a>(name: &'a Name, node: &'a Node) -> impl Iterator<Item = Record> + 'a {
    node.values().flat_map(move |set| set_records(name, set))
}

/// `data`'s wire form, or None (logged) when it has none: over 65,535
/// octets, which no RDATA read from a message or the zone file is.
fn encodable(name: &Name, data: &RData) -> Option<Vec<u8>> {
    let wire = rrset::encode(data);
    if wire.is_none() {
        tracing::error!(%name, rtype = %data.record_type(), "RDATA cannot be encoded; left out");
    }
    wire
}

/// A snapshot in the making, fed the database's rows one at a time (so
/// that loading never holds every row as a hickory `Record` besides the
/// snapshot), after the zone file's records.
pub struct ZoneBuilder {
    spec: Arc<ZoneSpec>,
    /// Grouped by name first (hashing a key is cheaper than the ordered
    /// inserts' comparisons), so the ordered map takes one insert per name,
    /// not one per record: a quarter of them in a signed zone.
    by_name: HashMap<OwnerKey, Node>,
    record_count: usize,
}

impl ZoneBuilder {
    /// A builder holding the zone file's records.
    pub fn new(spec: Arc<ZoneSpec>) -> Self {
        let mut b = ZoneBuilder {
            spec: spec.clone(),
            by_name: HashMap::new(),
            record_count: 0,
        };
        for r in &spec.records {
            b.add(&r.name, r.ttl, &r.data);
        }
        b
    }

    /// The RRset `rtype` at `name`, made if need be, its TTL set to `ttl`
    /// (the newest wins, as in [`ZoneData::add`]).
    fn set(&mut self, name: &Name, rtype: RecordType, ttl: u32) -> &mut RrSet {
        let key = KeyBuf::new(name);
        if !self.by_name.contains_key(key.as_slice()) {
            self.by_name.insert(OwnerKey::from(&key), Node::default());
        }
        let Some(node) = self.by_name.get_mut(key.as_slice()) else {
            unreachable!("inserted above");
        };
        let set = node.get_or_insert(rtype, ttl);
        set.ttl = ttl;
        set
    }

    /// Add one RR (a duplicate once).
    pub fn add(&mut self, name: &Name, ttl: u32, data: &RData) {
        let Some(wire) = encodable(name, data) else {
            return;
        };
        let rtype = data.record_type();
        if self.set(name, rtype, ttl).push(data, &wire) && !is_dnssec_type(rtype) {
            self.record_count += 1;
        }
    }

    /// Add one RR given as its RDATA's wire form (a database row). False,
    /// adding nothing, when `rdata` is not an RDATA of type `rtype`.
    pub fn add_wire(&mut self, name: &Name, rtype: RecordType, ttl: u32, rdata: &[u8]) -> bool {
        if rrset::decode(rtype, rdata).is_none() {
            return false;
        }
        if self.set(name, rtype, ttl).push_wire(rdata) && !is_dnssec_type(rtype) {
            self.record_count += 1;
        }
        true
    }

    pub fn finish(self, serial: u32) -> ZoneData {
        let statics = self
            .spec
            .records
            .iter()
            .map(|r| (r.name.to_lowercase(), r.record_type()))
            .collect();
        let mut nodes = OrdMap::new();
        let mut nsec3 = OrdSet::new();
        for (key, node) in self.by_name {
            if node.contains_key(&RecordType::NSEC3) {
                nsec3.insert(key.clone());
            }
            nodes.insert(key, Arc::new(node));
        }
        ZoneData {
            spec: self.spec,
            serial,
            nodes,
            nsec3,
            statics: Arc::new(statics),
            record_count: self.record_count,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ZoneData {
    pub spec: Arc<ZoneSpec>,
    pub serial: u32,
    /// A persistent map: cloning a snapshot shares every node, and an
    /// update copies only the O(log n) path it changes. Keyed by the owner
    /// name in a compact form whose byte order is the canonical order
    /// (`zone::owner`); no `Name` is kept.
    nodes: OrdMap<OwnerKey, Arc<Node>>,
    /// The owners of NSEC3 RRsets (`dnssec::nsec3`), so the chain's
    /// neighbours are found in O(log n) whatever other names sort between
    /// the hashed owners.
    nsec3: OrdSet<OwnerKey>,
    /// RRsets defined by the zone file; UPDATE may not change them.
    statics: Arc<HashSet<(Name, RecordType)>>,
    record_count: usize,
}

impl ZoneData {
    /// A zone holding the zone file's records plus `dynamic` ones from the
    /// database ([`ZoneBuilder`] takes them one row at a time).
    pub fn new(
        spec: Arc<ZoneSpec>,
        serial: u32,
        dynamic: impl IntoIterator<Item = Record>,
    ) -> Self {
        let mut b = ZoneBuilder::new(spec);
        for r in dynamic {
            b.add(&r.name, r.ttl, &r.data);
        }
        b.finish(serial)
    }

    pub fn origin(&self) -> &Name {
        &self.spec.origin
    }

    pub fn soa_record(&self) -> Record {
        self.spec.soa.record(&self.spec.origin, self.serial)
    }

    /// The TTL of negative answers: min(SOA TTL, SOA MINIMUM), RFC 2308 §3.
    pub fn negative_ttl(&self) -> u32 {
        self.spec.soa.ttl.min(self.spec.soa.minimum)
    }

    pub fn node(&self, name: &Name) -> Option<&Node> {
        self.nodes
            .get(KeyBuf::new(name).as_slice())
            .map(|n| n.as_ref())
    }

    pub fn rrset(&self, name: &Name, rtype: RecordType) -> Option<&RrSet> {
        if rtype == RecordType::SOA {
            return None; // the SOA is synthesised; use soa_record()
        }
        self.node(name).and_then(|n| n.get(&rtype))
    }

    /// Whether the name owns any RRset (the apex always does: its SOA).
    pub fn name_exists(&self, name: &Name) -> bool {
        name == self.origin() || self.node(name).is_some()
    }

    /// Whether some name strictly below `name` exists (so `name` is at least an
    /// empty non-terminal). In canonical order descendants follow their ancestor.
    pub fn has_descendants(&self, name: &Name) -> bool {
        let key = KeyBuf::new(name);
        let key = key.as_slice();
        self.nodes
            .range::<_, [u8]>((Bound::Excluded(key), Bound::Unbounded))
            .next()
            .is_some_and(|(next, _)| next.as_bytes().starts_with(key))
    }

    pub fn is_static(&self, name: &Name, rtype: RecordType) -> bool {
        self.statics.contains(&(name.to_lowercase(), rtype))
    }

    pub fn record_count(&self) -> usize {
        self.record_count
    }

    /// RRs of one RRset as records.
    pub fn records(&self, name: &Name, rtype: RecordType) -> Vec<Record> {
        if rtype == RecordType::SOA && name == self.origin() {
            return vec![self.soa_record()];
        }
        self.rrset(name, rtype)
            .map(|set| set_records(name, set).collect())
            .unwrap_or_default()
    }

    /// The earliest expiration of any RRSIG in the zone (the 32-bit field,
    /// Unix seconds until 2106), None when it holds none.
    pub fn earliest_signature_expiry(&self) -> Option<u32> {
        self.nodes
            .values()
            .filter_map(|node| node.get(&RecordType::RRSIG))
            .flat_map(|set| set.raw())
            .filter_map(rrsig_wire::expiration)
            .min()
    }

    /// The latest inception of any RRSIG in the zone (Unix seconds), None
    /// when it holds none.
    pub fn latest_signature_inception(&self) -> Option<u64> {
        self.nodes
            .values()
            .filter_map(|node| node.get(&RecordType::RRSIG))
            .flat_map(|set| set.raw())
            .filter_map(rrsig_wire::inception)
            .map(u64::from)
            .max()
    }

    /// Every RR of the zone, SOA first (the order AXFR wants). A copy of
    /// the whole zone: transfers read it node by node instead
    /// ([`ZoneData::first_node`], [`ZoneData::nodes_after`]).
    pub fn all_records(&self) -> Vec<Record> {
        let mut out = vec![self.soa_record()];
        for (key, node) in &self.nodes {
            out.extend(node_records(&key.to_name(), node));
        }
        out
    }

    /// The first node in canonical order, if any.
    pub fn first_node(&self) -> Option<(Name, &Node)> {
        self.nodes
            .iter()
            .next()
            .map(|(k, node)| (k.to_name(), node.as_ref()))
    }

    /// The nearest delegation (NS below the apex) at or above `name`, if any.
    pub fn delegation_for(&self, name: &Name) -> Option<Name> {
        // The key of each name between the apex and `name` is a prefix of
        // `name`'s key, ending after its last label.
        let apex_labels = usize::from(self.origin().num_labels());
        let key = KeyBuf::new(name);
        let key = key.as_slice();
        // `num_labels` leaves out a leading `*`, as `trim_to` counts.
        owner::label_ends(key)
            .enumerate()
            .take(usize::from(name.num_labels()))
            .skip(apex_labels)
            .find(|&(_, end)| {
                self.nodes
                    .get(&key[..end])
                    .is_some_and(|node| node.contains_key(&RecordType::NS))
            })
            .map(|(i, _)| name.trim_to(i + 1))
    }

    /// Add one RR. Returns false if an identical RR was present (its TTL is
    /// still set: all RRs of an RRset share the newest TTL).
    pub fn add(&mut self, name: &Name, rtype: RecordType, ttl: u32, data: RData) -> bool {
        let Some(wire) = encodable(name, &data) else {
            return false;
        };
        let key = KeyBuf::new(name);
        if !self.nodes.contains_key(key.as_slice()) {
            self.nodes
                .insert(OwnerKey::from(&key), Arc::new(Node::default()));
        }
        let Some(node) = self.nodes.get_mut(key.as_slice()) else {
            unreachable!("inserted above");
        };
        let node = Arc::make_mut(node);
        let set = node.get_or_insert(rtype, ttl);
        set.ttl = ttl;
        let added = set.push(&data, &wire);
        if rtype == RecordType::NSEC3 {
            self.nsec3.insert(OwnerKey::from(&key));
        }
        if added && !is_dnssec_type(rtype) {
            self.record_count += 1;
        }
        added
    }

    /// Remove one RR; drops the RRset and node when they become empty.
    pub fn remove(&mut self, name: &Name, rtype: RecordType, data: &RData) -> bool {
        let key = KeyBuf::new(name);
        let key = key.as_slice();
        let Some(node) = self.nodes.get_mut(key) else {
            return false;
        };
        let node = Arc::make_mut(node);
        let Some(set) = node.get_mut(&rtype) else {
            return false;
        };
        let removed = set.remove(data);
        if set.is_empty() {
            node.remove(&rtype);
            if rtype == RecordType::NSEC3 {
                self.nsec3.remove(key);
            }
        }
        if node.is_empty() {
            self.nodes.remove(key);
        }
        if !is_dnssec_type(rtype) {
            self.record_count -= removed;
        }
        removed > 0
    }

    /// Remove a whole RRset, returning what was there.
    pub fn remove_rrset(&mut self, name: &Name, rtype: RecordType) -> Option<RrSet> {
        let key = KeyBuf::new(name);
        let key = key.as_slice();
        let node = Arc::make_mut(self.nodes.get_mut(key)?);
        let set = node.remove(&rtype)?;
        if rtype == RecordType::NSEC3 {
            self.nsec3.remove(key);
        }
        if node.is_empty() {
            self.nodes.remove(key);
        }
        if !is_dnssec_type(rtype) {
            self.record_count -= set.len();
        }
        Some(set)
    }

    /// Records at `name` per type (used for diffs).
    pub fn rrset_records(&self, name: &Name, rtype: RecordType) -> Vec<Record> {
        self.records(name, rtype)
    }

    /// The number of RRs at one name, DNSSEC records left out.
    pub fn records_at(&self, name: &Name) -> usize {
        self.node(name)
            .map(|n| {
                n.iter()
                    .filter(|(t, _)| !is_dnssec_type(**t))
                    .map(|(_, s)| s.len())
                    .sum()
            })
            .unwrap_or(0)
    }

    /// Whether the zone is signed (its apex holds a DNSKEY RRset).
    pub fn is_signed(&self) -> bool {
        self.rrset(self.origin(), RecordType::DNSKEY).is_some()
    }

    /// The RRSIGs at `name` that cover `covered`, as records.
    pub fn rrsigs(&self, name: &Name, covered: RecordType) -> Vec<Record> {
        let Some(set) = self.rrset(name, RecordType::RRSIG) else {
            return Vec::new();
        };
        let covered = u16::from(covered);
        set.raw()
            .filter(|w| rrsig_wire::type_covered(w) == Some(covered))
            .filter_map(|w| {
                let ttl = rrsig_wire::original_ttl(w)?;
                let data = rrset::decode(RecordType::RRSIG, w)?;
                Some(Record::from_rdata(name.clone(), ttl, data))
            })
            .collect()
    }

    /// Every name that owns a node, in canonical order.
    pub fn names(&self) -> impl Iterator<Item = Name> + '_ {
        self.nodes.keys().map(OwnerKey::to_name)
    }

    /// Nodes strictly after `name`, in canonical order.
    pub fn nodes_after<'a>(&'a self, name: &Name) -> impl Iterator<Item = (Name, &'a Node)> + 'a {
        let key = KeyBuf::new(name);
        self.nodes
            .range::<_, [u8]>((Bound::Excluded(key.as_slice()), Bound::Unbounded))
            .map(|(k, node)| (k.to_name(), node.as_ref()))
    }

    /// Nodes strictly before `name`, nearest first.
    pub fn nodes_before<'a>(&'a self, name: &Name) -> impl Iterator<Item = (Name, &'a Node)> + 'a {
        let key = KeyBuf::new(name);
        self.nodes
            .range::<_, [u8]>((Bound::Unbounded, Bound::Excluded(key.as_slice())))
            .rev()
            .map(|(k, node)| (k.to_name(), node.as_ref()))
    }

    /// Whether the zone holds any NSEC3 RRset.
    pub fn has_nsec3(&self) -> bool {
        !self.nsec3.is_empty()
    }

    /// The owners of NSEC3 RRsets, in canonical order (which, for hashed
    /// owners of one zone, is the order of their hashes).
    pub fn nsec3_owners(&self) -> impl Iterator<Item = Name> + '_ {
        self.nsec3.iter().map(OwnerKey::to_name)
    }

    /// The last NSEC3 owner strictly before `name` in canonical order, or
    /// the last of all when none is (the chain wraps around).
    pub fn nsec3_owner_before(&self, name: &Name) -> Option<Name> {
        let key = KeyBuf::new(name);
        self.nsec3
            .range::<_, [u8]>((Bound::Unbounded, Bound::Excluded(key.as_slice())))
            .next_back()
            .or_else(|| self.nsec3.get_max())
            .map(OwnerKey::to_name)
    }

    /// The first NSEC3 owner strictly after `name` in canonical order, or
    /// the first of all when none is (the chain wraps around).
    pub fn nsec3_owner_after(&self, name: &Name) -> Option<Name> {
        let key = KeyBuf::new(name);
        self.nsec3
            .range::<_, [u8]>((Bound::Excluded(key.as_slice()), Bound::Unbounded))
            .next()
            .or_else(|| self.nsec3.get_min())
            .map(OwnerKey::to_name)
    }

    /// `name` and every name below it that owns a node.
    pub fn subtree<'a>(&'a self, name: &Name) -> impl Iterator<Item = Name> + 'a {
        let key = OwnerKey::new(name);
        self.nodes
            .range::<_, [u8]>((Bound::Included(key.as_bytes()), Bound::Unbounded))
            .take_while(move |(k, _)| k.as_bytes().starts_with(key.as_bytes()))
            .map(|(k, _)| k.to_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn zone() -> ZoneData {
        let spec = crate::zonefile::parse(
            Path::new("z.toml"),
            "origin = \"z.test.\"\ncontact = \"h.z.test.\"\nnameservers = [\"ns1\"]\n",
        )
        .unwrap();
        ZoneData::new(Arc::new(spec), 1, [])
    }

    #[test]
    fn rows_given_as_wire_build_the_zone_that_records_build() {
        let spec = zone().spec.clone();
        let recs: Vec<Record> = [
            ("a.z.test.", RecordType::TXT, "x"),
            ("A.z.test.", RecordType::TXT, "x"),
            ("a.z.test.", RecordType::TXT, "y"),
            ("a.z.test.", RecordType::A, "192.0.2.1"),
        ]
        .iter()
        .map(|(n, t, d)| {
            let data = RData::try_from_str(*t, d).unwrap();
            Record::from_rdata(Name::from_ascii(n).unwrap(), 300, data)
        })
        .chain([Record::from_rdata(
            Name::from_ascii("b.a.z.test.").unwrap(),
            300,
            RData::CNAME(hickory_proto::rr::rdata::CNAME(
                Name::from_ascii("Target.Example.").unwrap(),
            )),
        )])
        .collect();
        let from_records = ZoneData::new(spec.clone(), 3, recs.clone());
        let mut b = ZoneBuilder::new(spec);
        for r in &recs {
            let wire = crate::zone::change::rdata_bytes(&r.data);
            assert!(b.add_wire(&r.name, r.record_type(), r.ttl, &wire));
        }
        assert!(!b.add_wire(&recs[0].name, RecordType::A, 300, &[1, 2, 3]));
        let from_wire = b.finish(3);
        assert_eq!(from_wire.all_records(), from_records.all_records());
        assert_eq!(from_wire.record_count(), 5); // 4 + the NS
        let cname = from_wire.records(&Name::from_ascii("b.a.z.test.").unwrap(), RecordType::CNAME);
        let RData::CNAME(c) = &cname[0].data else {
            panic!("{cname:?}")
        };
        assert!(c.0.eq_case(&Name::from_ascii("Target.Example.").unwrap()));
    }

    #[test]
    fn last_rr_removed_leaves_no_empty_rrset_or_node() {
        let mut z = zone();
        let n = Name::from_ascii("a.b.z.test.").unwrap();
        let d = RData::try_from_str(RecordType::TXT, "x").unwrap();
        assert!(z.add(&n, RecordType::TXT, 60, d.clone()));
        assert!(!z.add(&n, RecordType::TXT, 60, d.clone()));
        assert!(z.has_descendants(&Name::from_ascii("b.z.test.").unwrap()));
        assert!(z.remove(&n, RecordType::TXT, &d));
        assert!(z.node(&n).is_none());
        assert!(!z.has_descendants(&Name::from_ascii("b.z.test.").unwrap()));
        assert_eq!(z.record_count(), 1); // the NS
    }
}
