//! The in-memory zone: an immutable snapshot that queries read without locks.
//!
//! A [`ZoneData`] is never changed in place: the update path clones it,
//! changes the copy, commits the change to the database, and swaps the new
//! snapshot in (`arc_swap`). Nodes sit behind `Arc`, so a clone copies the
//! name index, not the records. Names are kept lowercase, in canonical DNS
//! order (RFC 4034 §6.1, hickory's `Ord` for `Name`), which is the order NSEC
//! chains and AXFR need later.
//!
//! No RRset here is ever empty: removing the last RR removes the RRset, and
//! removing the last RRset removes the node.

use std::collections::{BTreeMap, HashSet};
use std::ops::Bound;
use std::sync::Arc;

use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::zonefile::ZoneSpec;

/// The RRs of one name and type; all share one TTL (RFC 2181 §5.2).
#[derive(Debug, Clone, PartialEq)]
pub struct RrSet {
    pub ttl: u32,
    pub rdatas: Vec<RData>,
}

/// All RRsets at one name.
pub type Node = BTreeMap<RecordType, RrSet>;

#[derive(Debug, Clone)]
pub struct ZoneData {
    pub spec: Arc<ZoneSpec>,
    pub serial: u32,
    nodes: BTreeMap<Name, Arc<Node>>,
    /// RRsets defined by the zone file; UPDATE may not change them.
    statics: Arc<HashSet<(Name, RecordType)>>,
    record_count: usize,
}

impl ZoneData {
    /// A zone holding the zone file's records plus `dynamic` ones from the database.
    pub fn new(
        spec: Arc<ZoneSpec>,
        serial: u32,
        dynamic: impl IntoIterator<Item = Record>,
    ) -> Self {
        let statics = spec
            .records
            .iter()
            .map(|r| (r.name.to_lowercase(), r.record_type()))
            .collect();
        let mut z = Self {
            spec: spec.clone(),
            serial,
            nodes: BTreeMap::new(),
            statics: Arc::new(statics),
            record_count: 0,
        };
        for r in spec.records.iter().cloned().chain(dynamic) {
            z.add(&r.name, r.record_type(), r.ttl, r.data);
        }
        z
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
        self.nodes.get(name).map(|n| n.as_ref())
    }

    pub fn rrset(&self, name: &Name, rtype: RecordType) -> Option<&RrSet> {
        if rtype == RecordType::SOA {
            return None; // the SOA is synthesised; use soa_record()
        }
        self.nodes.get(name).and_then(|n| n.get(&rtype))
    }

    /// Whether the name owns any RRset (the apex always does: its SOA).
    pub fn name_exists(&self, name: &Name) -> bool {
        name == self.origin() || self.nodes.contains_key(name)
    }

    /// Whether some name strictly below `name` exists (so `name` is at least an
    /// empty non-terminal). In canonical order descendants follow their ancestor.
    pub fn has_descendants(&self, name: &Name) -> bool {
        self.nodes
            .range((Bound::Excluded(name.clone()), Bound::Unbounded))
            .next()
            .is_some_and(|(next, _)| name.zone_of(next))
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
            .map(|set| {
                set.rdatas
                    .iter()
                    .map(|d| Record::from_rdata(name.clone(), set.ttl, d.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every RR of the zone, SOA first (the order AXFR wants).
    pub fn all_records(&self) -> Vec<Record> {
        let mut out = vec![self.soa_record()];
        for (name, node) in &self.nodes {
            for set in node.values() {
                for d in &set.rdatas {
                    out.push(Record::from_rdata(name.clone(), set.ttl, d.clone()));
                }
            }
        }
        out
    }

    /// The nearest delegation (NS below the apex) at or above `name`, if any.
    pub fn delegation_for(&self, name: &Name) -> Option<Name> {
        let apex_labels = self.origin().num_labels();
        let mut cut: Option<Name> = None;
        for n in (apex_labels + 1)..=name.num_labels() {
            let candidate = name.trim_to(n as usize);
            if self
                .nodes
                .get(&candidate)
                .is_some_and(|node| node.contains_key(&RecordType::NS))
            {
                cut = Some(candidate);
                break;
            }
        }
        cut
    }

    /// Add one RR. Returns false if an identical RR was present (its TTL is
    /// still set: all RRs of an RRset share the newest TTL).
    pub fn add(&mut self, name: &Name, rtype: RecordType, ttl: u32, data: RData) -> bool {
        let name = name.to_lowercase();
        let node = Arc::make_mut(self.nodes.entry(name).or_default());
        let set = node.entry(rtype).or_insert_with(|| RrSet {
            ttl,
            rdatas: Vec::new(),
        });
        set.ttl = ttl;
        if set.rdatas.contains(&data) {
            return false;
        }
        set.rdatas.push(data);
        self.record_count += 1;
        true
    }

    /// Remove one RR; drops the RRset and node when they become empty.
    pub fn remove(&mut self, name: &Name, rtype: RecordType, data: &RData) -> bool {
        let Some(node) = self.nodes.get_mut(name) else {
            return false;
        };
        let node = Arc::make_mut(node);
        let Some(set) = node.get_mut(&rtype) else {
            return false;
        };
        let before = set.rdatas.len();
        set.rdatas.retain(|d| d != data);
        let removed = before - set.rdatas.len();
        if set.rdatas.is_empty() {
            node.remove(&rtype);
        }
        if node.is_empty() {
            self.nodes.remove(name);
        }
        self.record_count -= removed;
        removed > 0
    }

    /// Remove a whole RRset, returning what was there.
    pub fn remove_rrset(&mut self, name: &Name, rtype: RecordType) -> Option<RrSet> {
        let node = Arc::make_mut(self.nodes.get_mut(name)?);
        let set = node.remove(&rtype)?;
        if node.is_empty() {
            self.nodes.remove(name);
        }
        self.record_count -= set.rdatas.len();
        Some(set)
    }

    /// Records at `name` per type (used for diffs).
    pub fn rrset_records(&self, name: &Name, rtype: RecordType) -> Vec<Record> {
        self.records(name, rtype)
    }

    /// The number of RRs at one name.
    pub fn records_at(&self, name: &Name) -> usize {
        self.node(name)
            .map(|n| n.values().map(|s| s.rdatas.len()).sum())
            .unwrap_or(0)
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
