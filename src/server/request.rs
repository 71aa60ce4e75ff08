//! A request, decided once: which kind it is (query, transfer, update,
//! notify) and which zone it is for, or the RCODE it is rejected with.
//! Every "is this well-formed, is it ours" decision of the front is here;
//! the handlers of each kind start from a [`Kind`] and never re-check.
//!
//! Decided here (TSIG is verified before, in `server`):
//! - BADVERS: an EDNS version above 0 (RFC 6891 §6.1.3).
//! - FORMERR: not exactly one question; a query for OPT or TSIG; an
//!   UPDATE zone section that is not one SOA question of class IN (RFC 2136
//!   §3.1.1).
//! - NOTAUTH: an UPDATE, transfer or NOTIFY for a zone we do not serve
//!   (RFC 2136 §3.1.1).
//! - REFUSED: a query outside every zone, or of a class other than IN and
//!   CH (class CH goes to `identity`, which answers a few names or refuses).
//! - NOTIMP: any other opcode.

use std::sync::Arc;

use hickory_proto::op::{OpCode, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RecordType};
use hickory_server::server::Request;

use crate::metrics::RefusalReason;
use crate::writer::{ZoneHandle, Zones};

/// What a request asks for.
pub enum Kind {
    /// A query inside one of our zones.
    Query {
        zone: Arc<ZoneHandle>,
        qname: Name,
        qtype: RecordType,
    },
    /// AXFR (RFC 5936) or IXFR (RFC 1995) of one of our zones; who may
    /// transfer and the form of the request are the transfer handler's.
    Transfer {
        zone: Arc<ZoneHandle>,
        qtype: RecordType,
    },
    /// An UPDATE (RFC 2136) for one of our zones.
    Update { zone: Arc<ZoneHandle> },
    /// A NOTIFY (RFC 1996) for one of our zones: we are the primary.
    Notify { zone: Name },
    /// A query in class CH (`id.server`, `version.bind`, ...).
    Chaos { qname: Name, qtype: RecordType },
}

/// A request answered with an RCODE alone.
pub struct Rejected {
    pub rcode: ResponseCode,
    /// Why, for an UPDATE's refusal log and metrics (None: not counted as
    /// a refusal, as for BADVERS and NOTIMP).
    pub reason: Option<RefusalReason>,
    pub detail: &'static str,
}

fn reject(rcode: ResponseCode, reason: RefusalReason, detail: &'static str) -> Rejected {
    Rejected {
        rcode,
        reason: Some(reason),
        detail,
    }
}

/// Whether we implement `op` (any other is answered NOTIMP, with a bare
/// header: see `response::Reply::new`).
pub fn implemented(op: OpCode) -> bool {
    matches!(op, OpCode::Query | OpCode::Update | OpCode::Notify)
}

/// Decide what `request` is.
pub fn classify(request: &Request, zones: &Zones) -> Result<Kind, Rejected> {
    use RefusalReason::{Format, NotAuthoritative};
    if request.edns.as_ref().is_some_and(|e| e.version() > 0) {
        return Err(Rejected {
            rcode: ResponseCode::BADVERS,
            reason: None,
            detail: "EDNS version above 0",
        });
    }
    let op = request.metadata.op_code;
    if !implemented(op) {
        return Err(Rejected {
            rcode: ResponseCode::NotImp,
            reason: None,
            detail: "opcode not implemented",
        });
    }
    if request.queries.len() != 1 {
        let detail = match op {
            OpCode::Update => "zone section is not one question",
            _ => "not exactly one question",
        };
        return Err(reject(ResponseCode::FormErr, Format, detail));
    }
    let q = &request.queries.queries()[0];
    let name: Name = q.name().into();
    let qtype = q.query_type();
    match op {
        OpCode::Update => {
            if qtype != RecordType::SOA || q.query_class() != DNSClass::IN {
                return Err(reject(
                    ResponseCode::FormErr,
                    Format,
                    "zone section is not one SOA question of class IN",
                ));
            }
            let zone = zones.zone_exact(&name).ok_or(reject(
                ResponseCode::NotAuth,
                NotAuthoritative,
                "zone not served here",
            ))?;
            Ok(Kind::Update { zone: zone.clone() })
        }
        OpCode::Notify => match zones.zone_exact(&name) {
            Some(_) => Ok(Kind::Notify { zone: name }),
            None => Err(reject(
                ResponseCode::NotAuth,
                NotAuthoritative,
                "zone not served here",
            )),
        },
        _ if q.query_class() == DNSClass::CH => Ok(Kind::Chaos { qname: name, qtype }),
        _ if q.query_class() != DNSClass::IN => Err(reject(
            ResponseCode::Refused,
            NotAuthoritative,
            "class not IN",
        )),
        _ if matches!(qtype, RecordType::AXFR | RecordType::IXFR) => {
            let zone = zones.zone_exact(&name).ok_or(reject(
                ResponseCode::NotAuth,
                NotAuthoritative,
                "zone not served here",
            ))?;
            Ok(Kind::Transfer {
                zone: zone.clone(),
                qtype,
            })
        }
        _ if matches!(qtype, RecordType::OPT | RecordType::TSIG) => {
            Err(reject(ResponseCode::FormErr, Format, "meta type queried"))
        }
        _ => match zones.zone_for(&name) {
            Some(zone) => Ok(Kind::Query {
                zone: zone.clone(),
                qname: name,
                qtype,
            }),
            None => Err(reject(
                ResponseCode::Refused,
                NotAuthoritative,
                "not in a zone served here",
            )),
        },
    }
}
