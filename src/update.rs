//! RFC 2136 UPDATE processing, as a pure function from (zone snapshot, update,
//! who sent it) to either a new snapshot plus the change to commit, or a
//! refusal with its response code. No I/O here: the server commits the
//! change and only then swaps the snapshot and answers.
//!
//! Implemented: zone section (§3.1, checked by the caller), every
//! prerequisite form (§2.4, §3.2), per-RR permission against the machine's
//! ACL (§3.3, deletes included), the pre-scan (§3.4.1), every update form
//! (§2.5, §3.4.2: add, delete RRset, delete all RRsets at a name, delete one
//! RR), the CNAME-versus-other-data rule (§3.4.2.2), SOA serial increment
//! in RFC 1982 arithmetic (§3.6), all-or-nothing (§3.4.2: the copy is
//! thrown away on any error), and our limits.
//!
//! Decisions:
//! - "Delete all RRsets at a name" (class ANY, type ANY) deletes only the
//!   RRsets the key may change at that name; it is REFUSED when the key may
//!   change nothing there. Other machines' data at a shared name survives.
//! - Records from the zone file (apex SOA and NS, glue, static records) are
//!   never changed by UPDATE: REFUSED, for admin keys too.
//! - Wildcard owners (`*.x`) are REFUSED: the zone serves no wildcards.
//! - A CNAME added beside other data, or other data beside a CNAME, is
//!   ignored as §3.4.2.2 says (the update still succeeds).
//! - TTLs are clamped to the zone's `[ttl] min..max`; an RRset takes the TTL
//!   of its newest RR (RFC 2181 §5.2).
//! - Limits (records per name, per zone, RDATA size, a grant's max-rrset)
//!   answer REFUSED, like BIND's max-records.
//! - A TXT added at a `_validation-persist` name (dns-persist-01) must be
//!   a valid record value whose persistUntil, if any, is after `now`, when
//!   the zone file's `[persist] validate` says so (the default): REFUSED
//!   otherwise, the detail saying what is wrong (`persist`).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use crate::acl::{Machine, TypesAt};
use crate::persist::{self, Problem};
use crate::zone::ZoneData;
use crate::zone::change::{Action, Actor, Audit, Change, Source, describe, rdata_bytes};

/// Why an update was not applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// Malformed (FORMERR) or outside the zone (NOTZONE).
    Format,
    /// A prerequisite did not hold (NXDOMAIN, YXDOMAIN, NXRRSET, YXRRSET).
    Prerequisite,
    /// The key may not change this (REFUSED).
    Acl,
    /// A limit would be exceeded (REFUSED).
    Limit,
    /// A dns-persist-01 value is not valid (REFUSED).
    Persist(Problem),
}

impl RefusalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalKind::Format => "format",
            RefusalKind::Prerequisite => "prerequisite",
            RefusalKind::Acl => "acl",
            RefusalKind::Limit => "limit",
            RefusalKind::Persist(_) => "persist",
        }
    }
}

/// The metric's refusal reason for a refusal decided here.
impl From<RefusalKind> for crate::metrics::RefusalReason {
    fn from(kind: RefusalKind) -> Self {
        match kind {
            RefusalKind::Format => Self::Format,
            RefusalKind::Prerequisite => Self::Prerequisite,
            RefusalKind::Acl => Self::Acl,
            RefusalKind::Limit => Self::Limit,
            RefusalKind::Persist(_) => Self::Persist,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Refusal {
    pub rcode: ResponseCode,
    pub kind: RefusalKind,
    pub reason: String,
    pub owner: Option<Name>,
    pub rtype: Option<RecordType>,
}

impl Refusal {
    fn new(
        rcode: ResponseCode,
        kind: RefusalKind,
        reason: impl Into<String>,
        rr: Option<&Record>,
    ) -> Self {
        Self {
            rcode,
            kind,
            reason: reason.into(),
            owner: rr.map(|r| r.name.clone()),
            rtype: rr.map(|r| r.record_type()),
        }
    }
}

/// Who is asking: the machine whose ACL decides, through which key, from
/// where.
#[derive(Debug, Clone, Copy)]
pub struct Requester<'a> {
    pub machine: &'a Machine,
    pub key: &'a Name,
    pub source: IpAddr,
}

impl Requester<'_> {
    /// How a change this requester makes is recorded.
    pub fn actor(&self) -> Actor {
        Actor::Key {
            key: self.key.clone(),
            machine: self.machine.name.clone(),
            source: self.source,
        }
    }
}

/// An update that changes the zone. (One that changes nothing, e.g.
/// adding an RR that exists, is `None`: no serial bump, NOERROR.)
pub struct Applied {
    pub zone: ZoneData,
    pub change: Change,
    /// Every (name, type) whose RRset may have changed (for re-signing).
    pub touched: BTreeSet<(Name, RecordType)>,
}

fn is_empty_rdata(r: &Record) -> bool {
    matches!(r.data, RData::Update0(_))
}

/// Types that never appear in an update (meta types, §3.4.1.2 lists AXFR, MAILA, MAILB, ANY).
fn is_meta(t: RecordType) -> bool {
    matches!(
        t,
        RecordType::ANY
            | RecordType::AXFR
            | RecordType::IXFR
            | RecordType::Unknown(253)
            | RecordType::Unknown(254)
            | RecordType::OPT
            | RecordType::TSIG
            | RecordType::SIG
    )
}

/// DNSSEC records are the server's to make.
use crate::zone::is_dnssec_type as is_dnssec;

fn rrset_exists(zone: &ZoneData, name: &Name, t: RecordType) -> bool {
    (t == RecordType::SOA && name == zone.origin()) || zone.rrset(name, t).is_some()
}

/// RFC 2136 §3.2: check the prerequisite section against the current zone.
pub fn check_prerequisites(zone: &ZoneData, prereqs: &[Record]) -> Result<(), Refusal> {
    let origin = zone.origin();
    let mut value_sets: BTreeMap<(Name, RecordType), BTreeSet<Vec<u8>>> = BTreeMap::new();
    for rr in prereqs {
        let fail = |rcode, why: &str| {
            Err(Refusal::new(
                rcode,
                RefusalKind::Prerequisite,
                why,
                Some(rr),
            ))
        };
        let formerr = |why: &str| {
            Err(Refusal::new(
                ResponseCode::FormErr,
                RefusalKind::Format,
                why,
                Some(rr),
            ))
        };
        // §3.2.1: "if the TTL is nonzero ... FORMERR"
        if rr.ttl != 0 {
            return formerr("prerequisite TTL must be zero");
        }
        if !origin.zone_of(&rr.name) {
            return Err(Refusal::new(
                ResponseCode::NotZone,
                RefusalKind::Format,
                "prerequisite name outside the zone",
                Some(rr),
            ));
        }
        let t = rr.record_type();
        match rr.dns_class {
            DNSClass::ANY => {
                if !is_empty_rdata(rr) {
                    return formerr("class ANY prerequisite must have empty RDATA");
                }
                if t == RecordType::ANY {
                    // §2.4.4 Name Is In Use
                    if !(rr.name == *origin || zone.node(&rr.name).is_some()) {
                        return fail(ResponseCode::NXDomain, "name is not in use");
                    }
                } else if !rrset_exists(zone, &rr.name, t) {
                    // §2.4.1 RRset Exists (Value Independent)
                    return fail(ResponseCode::NXRRSet, "RRset does not exist");
                }
            }
            DNSClass::NONE => {
                if !is_empty_rdata(rr) {
                    return formerr("class NONE prerequisite must have empty RDATA");
                }
                if t == RecordType::ANY {
                    // §2.4.5 Name Is Not In Use
                    if rr.name == *origin || zone.node(&rr.name).is_some() {
                        return fail(ResponseCode::YXDomain, "name is in use");
                    }
                } else if rrset_exists(zone, &rr.name, t) {
                    // §2.4.3 RRset Does Not Exist
                    return fail(ResponseCode::YXRRSet, "RRset exists");
                }
            }
            DNSClass::IN => {
                // §2.4.2 RRset Exists (Value Dependent)
                if t == RecordType::ANY || is_empty_rdata(rr) {
                    return formerr("value-dependent prerequisite needs a type and RDATA");
                }
                value_sets
                    .entry((rr.name.to_lowercase(), t))
                    .or_default()
                    .insert(rdata_bytes(&rr.data));
            }
            _ => return formerr("prerequisite class must be IN, ANY or NONE"),
        }
    }
    for ((name, t), wanted) in value_sets {
        let have: BTreeSet<Vec<u8>> = zone
            .records(&name, t)
            .iter()
            .map(|r| rdata_bytes(&r.data))
            .collect();
        if have != wanted {
            return Err(Refusal {
                rcode: ResponseCode::NXRRSet,
                kind: RefusalKind::Prerequisite,
                reason: "RRset differs from the prerequisite".into(),
                owner: Some(name),
                rtype: Some(t),
            });
        }
    }
    Ok(())
}

/// RFC 2136 §3.4.1: format checks on the update section.
fn prescan(zone: &ZoneData, updates: &[Record]) -> Result<(), Refusal> {
    for rr in updates {
        let formerr = |why: &str| {
            Err(Refusal::new(
                ResponseCode::FormErr,
                RefusalKind::Format,
                why,
                Some(rr),
            ))
        };
        if !zone.origin().zone_of(&rr.name) {
            return Err(Refusal::new(
                ResponseCode::NotZone,
                RefusalKind::Format,
                "name outside the zone",
                Some(rr),
            ));
        }
        let t = rr.record_type();
        match rr.dns_class {
            DNSClass::IN => {
                if is_meta(t) || is_empty_rdata(rr) {
                    return formerr("cannot add a meta type or empty RDATA");
                }
            }
            DNSClass::ANY => {
                if rr.ttl != 0 || !is_empty_rdata(rr) || (is_meta(t) && t != RecordType::ANY) {
                    return formerr(
                        "class ANY delete needs TTL 0, empty RDATA and a real type or ANY",
                    );
                }
            }
            DNSClass::NONE => {
                if rr.ttl != 0 || is_meta(t) || is_empty_rdata(rr) {
                    return formerr("class NONE delete needs TTL 0, a real type and RDATA");
                }
            }
            _ => return formerr("update class must be IN, ANY or NONE"),
        }
    }
    Ok(())
}

/// RFC 2136 §3.3: may this key make each of these changes? (Only owner
/// and type of each RR matter.)
pub fn check_permissions(
    zone: &ZoneData,
    updates: &[Record],
    actor: &Requester<'_>,
) -> Result<(), Refusal> {
    let origin = zone.origin();
    for rr in updates {
        let refuse = |why: String| {
            Err(Refusal::new(
                ResponseCode::Refused,
                RefusalKind::Acl,
                why,
                Some(rr),
            ))
        };
        let t = rr.record_type();
        if rr.name.is_wildcard() {
            return refuse("wildcard owner names are not served".into());
        }
        if t == RecordType::ANY {
            // delete all RRsets at a name: only where the key may change something
            if matches!(
                actor.machine.grantable_types_at(origin, &rr.name),
                TypesAt::None
            ) {
                return refuse(format!(
                    "{} may change nothing at this name",
                    actor.machine.name
                ));
            }
            continue;
        }
        if t == RecordType::SOA || is_dnssec(t) {
            return refuse(format!("{t} is managed by the server"));
        }
        if zone.is_static(&rr.name, t) {
            return refuse("this RRset is defined by the zone file".into());
        }
        if actor.machine.permits(origin, &rr.name, t).is_none() {
            return refuse(format!(
                "no grant of {} covers this name and type",
                actor.machine.name
            ));
        }
    }
    Ok(())
}

/// A TXT `rr` added at a `_validation-persist` name: a valid
/// dns-persist-01 value, not expired at `now` (draft-ietf-acme-dns-persist
/// §3).
fn check_persist(rr: &Record, now: u64) -> Result<(), Refusal> {
    let RData::TXT(txt) = &rr.data else {
        return Ok(());
    };
    if !rr.name.iter().next().is_some_and(persist::is_persist_label) {
        return Ok(());
    }
    persist::check(&persist::join(&txt.txt_data), now)
        .map(drop)
        .map_err(|e| {
            Refusal::new(
                ResponseCode::Refused,
                RefusalKind::Persist(e.problem),
                e.to_string(),
                Some(rr),
            )
        })
}

/// The whole of §3: prerequisites, permissions, pre-scan, then apply to a
/// copy. `now` (Unix seconds) judges a dns-persist-01 persistUntil.
pub fn process(
    zone: &ZoneData,
    prereqs: &[Record],
    updates: &[Record],
    actor: &Requester<'_>,
    action: Action,
    now: u64,
) -> Result<Option<Applied>, Refusal> {
    check_prerequisites(zone, prereqs)?;
    prescan(zone, updates)?;
    check_permissions(zone, updates, actor)?;

    let origin = zone.origin().clone();
    let spec = zone.spec.clone();
    let mut next = zone.clone();
    let mut touched: BTreeSet<(Name, RecordType)> = BTreeSet::new();
    let mut ignored = Vec::new();

    for rr in updates {
        let t = rr.record_type();
        let name = rr.name.to_lowercase();
        match rr.dns_class {
            DNSClass::IN => {
                let size = rdata_bytes(&rr.data).len();
                if size > spec.limits.rdata_size {
                    return Err(Refusal::new(
                        ResponseCode::Refused,
                        RefusalKind::Limit,
                        format!(
                            "RDATA of {size} octets exceeds the zone's rdata-size {}",
                            spec.limits.rdata_size
                        ),
                        Some(rr),
                    ));
                }
                // §3.4.2.2: CNAME and other data do not mix; such adds are ignored.
                let node = next.node(&name);
                let has_cname = node.is_some_and(|n| n.contains_key(&RecordType::CNAME));
                // RRSIG and NSEC live beside a CNAME (RFC 4035 §2.5); they are not "other data".
                let has_other = node
                    .is_some_and(|n| n.keys().any(|k| *k != RecordType::CNAME && !is_dnssec(*k)));
                if (t == RecordType::CNAME && has_other) || (t != RecordType::CNAME && has_cname) {
                    ignored.push(format!("{name} {t}"));
                    continue;
                }
                if t == RecordType::TXT && spec.persist.validate {
                    check_persist(rr, now)?;
                }
                if t == RecordType::CNAME {
                    // a CNAME RRset holds one RR: the new one replaces it (§3.4.2.2)
                    next.remove_rrset(&name, t);
                }
                next.add(&name, t, spec.ttl.clamp(rr.ttl), rr.data.clone());
                touched.insert((name, t));
            }
            DNSClass::ANY if t == RecordType::ANY => {
                let types: Vec<RecordType> = next
                    .node(&name)
                    .map(|n| n.keys().copied().collect())
                    .unwrap_or_default();
                let allowed = actor.machine.grantable_types_at(&origin, &name);
                for t in types {
                    let may = match &allowed {
                        TypesAt::None => false,
                        TypesAt::Some(list) => list.contains(&t),
                        TypesAt::AllButProtected => true,
                    };
                    if may && t != RecordType::SOA && !is_dnssec(t) && !next.is_static(&name, t) {
                        next.remove_rrset(&name, t);
                        touched.insert((name.clone(), t));
                    }
                }
            }
            DNSClass::ANY => {
                next.remove_rrset(&name, t);
                touched.insert((name, t));
            }
            DNSClass::NONE => {
                next.remove(&name, t, &rr.data);
                touched.insert((name, t));
            }
            _ => unreachable!("prescan admits only IN, ANY and NONE"),
        }
    }

    // Limits, checked on the result.
    let limit = |why: String, name: &Name, t: RecordType| Refusal {
        rcode: ResponseCode::Refused,
        kind: RefusalKind::Limit,
        reason: why,
        owner: Some(name.clone()),
        rtype: Some(t),
    };
    for (name, t) in &touched {
        let at_name = next.records_at(name);
        if at_name > zone.records_at(name) && at_name > spec.limits.records_per_name {
            return Err(limit(
                format!(
                    "{at_name} records at this name exceed records-per-name {}",
                    spec.limits.records_per_name
                ),
                name,
                *t,
            ));
        }
        if let Some(set) = next.rrset(name, *t) {
            let old_len = zone.rrset(name, *t).map_or(0, |s| s.len());
            if let Some(max) = actor
                .machine
                .permits(&origin, name, *t)
                .and_then(|g| g.max_rrset())
                && set.len() > max
                && set.len() > old_len
            {
                return Err(limit(
                    format!("{} RRs exceed the grant's max-rrset {max}", set.len()),
                    name,
                    *t,
                ));
            }
        }
    }
    if next.record_count() > zone.record_count()
        && next.record_count() > spec.limits.records_per_zone
    {
        return Err(Refusal::new(
            ResponseCode::Refused,
            RefusalKind::Limit,
            format!(
                "the zone would hold {} records, over records-per-zone {}",
                next.record_count(),
                spec.limits.records_per_zone
            ),
            None,
        ));
    }

    // The diff, per touched RRset: a TTL change is a removal plus an addition.
    let mut removed = Vec::new();
    let mut added = Vec::new();
    for (name, t) in &touched {
        let old = zone.records(name, *t);
        let new = next.records(name, *t);
        let same = |a: &Record, b: &Record| a.ttl == b.ttl && a.data == b.data;
        removed.extend(
            old.iter()
                .filter(|o| !new.iter().any(|n| same(o, n)))
                .cloned(),
        );
        added.extend(
            new.iter()
                .filter(|n| !old.iter().any(|o| same(o, n)))
                .cloned(),
        );
    }
    if !ignored.is_empty() {
        tracing::info!(key = %actor.key, ignored = ?ignored, "CNAME and other data cannot coexist: adds ignored (RFC 2136 §3.4.2.2)");
    }
    if removed.is_empty() && added.is_empty() {
        return Ok(None);
    }
    let serial_from = zone.serial;
    // §3.6 / RFC 1982: serials wrap modulo 2^32.
    let serial_to = crate::serial::next(serial_from);
    next.serial = serial_to;
    let mut change = Change {
        serial_from,
        serial_to,
        removed,
        added,
        source: Source::Dynamic,
        audit: Audit {
            actor: actor.actor(),
            action,
            detail: String::new(),
        },
    };
    change.audit.detail = describe(&change.removed, &change.added);
    Ok(Some(Applied {
        zone: next,
        change,
        touched,
    }))
}
