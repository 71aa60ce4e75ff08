//! Authoritative answers from one zone snapshot: a pure function from
//! (snapshot, qname, qtype) to the sections of the response.
//!
//! Implements RFC 1034 §4.3.2 (the lookup algorithm, less wildcards: the
//! zone serves none), RFC 2308 (NXDOMAIN versus NODATA, the SOA in
//! AUTHORITY with TTL = min(SOA TTL, SOA MINIMUM)), RFC 6604 (the RCODE of
//! a CNAME chain is that of its last name), RFC 8482 (ANY gets one RRset),
//! referrals below delegations, and glue for NS answers. Minimal responses:
//! no NS in AUTHORITY of positive answers. DNSSEC records are not added yet.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::zone::ZoneData;

/// The parts of a response the lookup decides.
#[derive(Debug, Default)]
pub struct Answer {
    pub rcode: ResponseCode,
    pub authoritative: bool,
    pub answers: Vec<Record>,
    pub authorities: Vec<Record>,
    pub additionals: Vec<Record>,
}

/// Longest CNAME chain followed inside the zone.
const MAX_CNAME_CHAIN: usize = 8;

fn negative_soa(zone: &ZoneData) -> Record {
    let mut soa = zone.soa_record();
    soa.ttl = zone.negative_ttl();
    soa
}

fn glue_for(zone: &ZoneData, ns_records: &[Record], out: &mut Vec<Record>) {
    for r in ns_records {
        if let RData::NS(ns) = &r.data
            && zone.origin().zone_of(&ns.0)
        {
            out.extend(zone.records(&ns.0, RecordType::A));
            out.extend(zone.records(&ns.0, RecordType::AAAA));
        }
    }
}

pub fn lookup(zone: &ZoneData, qname: &Name, qtype: RecordType) -> Answer {
    let mut answer = Answer {
        authoritative: true,
        ..Answer::default()
    };
    let mut name = qname.clone();
    let mut visited: Vec<Name> = Vec::new();
    for _ in 0..MAX_CNAME_CHAIN {
        // Below a zone cut we are not authoritative: refer (DS lives at the parent side).
        if let Some(cut) = zone.delegation_for(&name)
            && !(qtype == RecordType::DS && cut == name)
        {
            let ns = zone.records(&cut, RecordType::NS);
            glue_for(zone, &ns, &mut answer.additionals);
            answer.authorities = ns;
            answer.authoritative = !answer.answers.is_empty();
            return answer;
        }
        if !zone.name_exists(&name) {
            if zone.has_descendants(&name) {
                // empty non-terminal: NODATA (RFC 2308 §2.2)
                answer.authorities.push(negative_soa(zone));
            } else {
                answer.rcode = ResponseCode::NXDomain;
                answer.authorities.push(negative_soa(zone));
            }
            return answer;
        }
        if qtype == RecordType::ANY {
            // RFC 8482 §4.1: answer with one RRset of the name.
            let pick = if name == *zone.origin() {
                vec![zone.soa_record()]
            } else {
                zone.node(&name)
                    .and_then(|n| n.keys().next().copied())
                    .map(|t| zone.records(&name, t))
                    .unwrap_or_default()
            };
            answer.answers.extend(pick);
            return answer;
        }
        let found = zone.records(&name, qtype);
        if !found.is_empty() {
            if qtype == RecordType::NS {
                glue_for(zone, &found, &mut answer.additionals);
            }
            answer.answers.extend(found);
            return answer;
        }
        let cname = zone.records(&name, RecordType::CNAME);
        let Some(target) = cname.first().and_then(|r| match &r.data {
            RData::CNAME(c) => Some(c.0.clone()),
            _ => None,
        }) else {
            // NODATA
            answer.authorities.push(negative_soa(zone));
            return answer;
        };
        answer.answers.extend(cname);
        visited.push(name);
        if !zone.origin().zone_of(&target) || visited.contains(&target) {
            // out of zone, or a loop: the resolver follows from here
            return answer;
        }
        name = target;
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::sync::Arc;

    fn zone() -> ZoneData {
        let spec = crate::zonefile::parse(
            Path::new("z.toml"),
            r#"origin = "z.test."
contact = "h.z.test."
nameservers = ["ns1"]
[glue]
ns1 = ["127.0.0.1"]
[[record]]
name = "a.b"
type = "TXT"
data = "x"
[[record]]
name = "alias"
type = "CNAME"
data = "a.b.z.test."
[[record]]
name = "dangling"
type = "CNAME"
data = "nope.z.test."
[[record]]
name = "sub"
type = "NS"
data = "ns.elsewhere.test."
"#,
        )
        .unwrap();
        ZoneData::new(Arc::new(spec), 5, [])
    }

    fn n(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    #[test]
    fn nxdomain_nodata_and_empty_non_terminal() {
        let z = zone();
        let a = lookup(&z, &n("nope.z.test."), RecordType::TXT);
        assert_eq!(a.rcode, ResponseCode::NXDomain);
        assert_eq!(a.authorities[0].record_type(), RecordType::SOA);
        assert_eq!(a.authorities[0].ttl, 1);
        let a = lookup(&z, &n("a.b.z.test."), RecordType::A);
        assert_eq!((a.rcode, a.answers.len()), (ResponseCode::NoError, 0));
        assert_eq!(a.authorities.len(), 1);
        let a = lookup(&z, &n("b.z.test."), RecordType::TXT);
        assert_eq!((a.rcode, a.answers.len()), (ResponseCode::NoError, 0));
        // two labels below an existing name: still NXDOMAIN
        let a = lookup(&z, &n("x.y.a.b.z.test."), RecordType::TXT);
        assert_eq!(a.rcode, ResponseCode::NXDomain);
    }

    #[test]
    fn cname_chains_and_rcode_of_last_name() {
        let z = zone();
        let a = lookup(&z, &n("alias.z.test."), RecordType::TXT);
        assert_eq!(a.answers.len(), 2);
        let a = lookup(&z, &n("dangling.z.test."), RecordType::TXT);
        assert_eq!(a.rcode, ResponseCode::NXDomain);
        assert_eq!(a.answers.len(), 1);
    }

    #[test]
    fn referral_below_a_delegation_and_glue_for_apex_ns() {
        let z = zone();
        let a = lookup(&z, &n("www.sub.z.test."), RecordType::A);
        assert!(!a.authoritative);
        assert_eq!(a.authorities[0].record_type(), RecordType::NS);
        let a = lookup(&z, &n("z.test."), RecordType::NS);
        assert_eq!(a.additionals.len(), 1);
        let a = lookup(&z, &n("z.test."), RecordType::ANY);
        assert_eq!(a.answers.len(), 1);
    }
}
