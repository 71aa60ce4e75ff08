//! The query handler: answers from the zone's published snapshot
//! (`query::lookup`), without locks.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RecordType};
use hickory_server::server::Request;

use super::response::Reply;
use crate::query;
use crate::writer::ZoneHandle;
use crate::zone::ZoneData;

/// The answer to a query for `qname`/`qtype` inside `zone`.
pub fn answer(request: &Request, zone: &ZoneHandle, qname: &Name, qtype: RecordType) -> Reply {
    answer_from(request, &zone.snapshot(), qname, qtype)
}

/// The answer to a query for `qname`/`qtype` from one snapshot of its
/// zone (the UDP fast path prepares its answers with this too).
pub fn answer_from(
    request: &Request,
    snapshot: &ZoneData,
    qname: &Name,
    qtype: RecordType,
) -> Reply {
    let dnssec_ok = request.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok);
    let ans = query::lookup(snapshot, qname, qtype, dnssec_ok);
    let mut reply = Reply::new(request, ans.rcode);
    reply.metadata.authoritative = ans.authoritative;
    reply.answers = ans.answers;
    reply.authorities = ans.authorities;
    reply.additionals = ans.additionals;
    reply
}

/// RFC 1996: a NOTIFY to the primary. Nothing to do; acknowledged for our
/// zones (the request front checked that `zone` is one).
pub fn notify(request: &Request, zone: &Name) -> Reply {
    tracing::info!(zone = %zone, source = %request.src(), "NOTIFY received; we are the primary, nothing to do");
    let mut reply = Reply::new(request, ResponseCode::NoError);
    reply.metadata.authoritative = true;
    reply
}
