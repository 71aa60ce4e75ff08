//! The DNS front: hickory-server's `Server` owns the UDP and TCP sockets and
//! hands each parsed request to our [`Handler`]; the handler verifies TSIG,
//! dispatches by opcode (QUERY → `query`, UPDATE → `update` via
//! `App::apply_update`), and sends one response.
//!
//! Responses are encoded here before they are sent, for two reasons
//! hickory's own path cannot serve: a TSIG MAC covers the exact response
//! bytes (RFC 8945 §5.3), and a response too large for UDP must be replaced
//! by a truncated one (TC=1, question only, OPT and TSIG kept; RFC 1035
//! §4.2.1, RFC 6891 §7, RFC 8945 §5.3) rather than cut at an arbitrary RR.
//! We encode with hickory's own `MessageResponse` encoder, so the bytes we
//! sign are the bytes it sends.
//!
//! Decided here, in one place: which RCODE each failure gets.
//! FORMERR: more or fewer than one question, an UPDATE zone section that is
//! not one SOA. NOTAUTH (+ TSIG error): TSIG failures. NOTAUTH: UPDATE for a
//! zone we do not serve (RFC 2136 §3.1.1). REFUSED: queries outside every
//! zone, unsigned UPDATEs, keys without an ACL, sources outside the ACL's
//! networks, anything the ACL does not grant, and (until transfers exist)
//! AXFR/IXFR. NOTIMP: other opcodes. BADVERS: EDNS version above 0.

use std::iter;
use std::net::SocketAddr;
use std::sync::Arc;

use hickory_proto::op::{Edns, Header, HeaderCounts, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::RData;
use hickory_proto::rr::{DNSClass, Name, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecoder, BinEncoder};
use hickory_server::net::runtime::Time;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::{MessageResponse, MessageResponseBuilder, Queries};

use crate::app::{App, Applied, LastRefusal, UpdateError};
use crate::dnsclient::serial_at_least;
use crate::metrics::{RefusalReason, rcode_name};
use crate::tsig::{RejectRcode, SignContext, TsigFailure};
use crate::update::Actor;
use crate::{query, xfr};

/// The sections of a response, before encoding.
struct Reply {
    metadata: Metadata,
    answers: Vec<Record>,
    authorities: Vec<Record>,
    additionals: Vec<Record>,
}

impl Reply {
    fn new(request: &Request, rcode: ResponseCode) -> Self {
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.response_code = rcode;
        Self {
            metadata,
            answers: Vec::new(),
            authorities: Vec::new(),
            additionals: Vec::new(),
        }
    }
}

/// Who sent an UPDATE and what it touches, for its one log line.
struct UpdateLog {
    zone: String,
    key: String,
    machine: Option<String>,
    source: SocketAddr,
    /// Owners and types of the update section, each once.
    owners: String,
    types: String,
}

impl UpdateLog {
    fn new(request: &Request, key: Option<&Name>) -> Self {
        // At most this many distinct owners and types are named (a log
        // line, not a dump; and cheap for a huge update section, which is
        // logged before it is authorised).
        const SHOWN: usize = 8;
        let mut owners: Vec<String> = Vec::new();
        let mut types: Vec<String> = Vec::new();
        for r in request.authorities.iter() {
            if owners.len() < SHOWN {
                let o = r.name.to_string();
                if !owners.contains(&o) {
                    owners.push(o);
                }
            }
            if types.len() < SHOWN {
                let t = r.record_type().to_string();
                if !types.contains(&t) {
                    types.push(t);
                }
            }
            if owners.len() == SHOWN && types.len() == SHOWN {
                break;
            }
        }
        Self {
            zone: request
                .queries
                .queries()
                .first()
                .map(|q| q.name().to_string())
                .unwrap_or_default(),
            key: key.map(|k| k.to_string()).unwrap_or_default(),
            machine: None,
            source: request.src(),
            owners: summarize(owners),
            types: summarize(types),
        }
    }

    fn machine_label(&self) -> &str {
        self.machine.as_deref().unwrap_or("")
    }
}

/// At most 8 items, space-separated, then how many more.
fn summarize(items: Vec<String>) -> String {
    let more = items.len().saturating_sub(8);
    let mut s = items.into_iter().take(8).collect::<Vec<_>>().join(" ");
    if more > 0 {
        s.push_str(&format!(" (+{more})"));
    }
    s
}

/// A refused UPDATE: why (one reason per deciding place), the RCODE, the
/// RR at fault if one is.
struct Refused {
    reason: RefusalReason,
    rcode: ResponseCode,
    detail: String,
    owner: Option<String>,
    rtype: Option<String>,
}

impl Refused {
    fn plain(reason: RefusalReason, rcode: ResponseCode, detail: &str) -> Self {
        Self {
            reason,
            rcode,
            detail: detail.into(),
            owner: None,
            rtype: None,
        }
    }
}

#[derive(Clone)]
pub struct Handler {
    app: Arc<App>,
}

impl Handler {
    pub fn new(app: Arc<App>) -> Self {
        Self { app }
    }

    fn query(&self, request: &Request) -> Reply {
        if request.queries.len() != 1 {
            return Reply::new(request, ResponseCode::FormErr);
        }
        let q = &request.queries.queries()[0];
        if q.query_class() != DNSClass::IN {
            return Reply::new(request, ResponseCode::Refused);
        }
        let qname: Name = q.name().into();
        let Some(zone) = self.app.zone_for(&qname) else {
            return Reply::new(request, ResponseCode::Refused);
        };
        if matches!(q.query_type(), RecordType::OPT | RecordType::TSIG) {
            return Reply::new(request, ResponseCode::FormErr);
        }
        let snapshot = zone.snapshot();
        let dnssec_ok = request.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok);
        let ans = query::lookup(&snapshot, &qname, q.query_type(), dnssec_ok);
        let mut reply = Reply::new(request, ans.rcode);
        reply.metadata.authoritative = ans.authoritative;
        reply.answers = ans.answers;
        reply.authorities = ans.authorities;
        reply.additionals = ans.additionals;
        reply
    }

    async fn update(&self, request: &Request, signer: Option<&SignContext>) -> Reply {
        let mut ctx = UpdateLog::new(request, signer.map(|s| &s.key.name));
        // §3.1.1: the zone section holds exactly one SOA question.
        if request.queries.len() != 1 {
            return self.refuse(
                request,
                &ctx,
                Refused::plain(
                    RefusalReason::Format,
                    ResponseCode::FormErr,
                    "zone section is not one question",
                ),
            );
        }
        let zq = &request.queries.queries()[0];
        if zq.query_type() != RecordType::SOA || zq.query_class() != DNSClass::IN {
            return self.refuse(
                request,
                &ctx,
                Refused::plain(
                    RefusalReason::Format,
                    ResponseCode::FormErr,
                    "zone section is not one SOA question of class IN",
                ),
            );
        }
        let zone_name: Name = zq.name().into();
        ctx.zone = zone_name.to_string();
        let Some(zone) = self.app.zone_exact(&zone_name).cloned() else {
            return self.refuse(
                request,
                &ctx,
                Refused::plain(
                    RefusalReason::NotAuthoritative,
                    ResponseCode::NotAuth,
                    "zone not served here",
                ),
            );
        };
        let Some(signer) = signer else {
            return self.refuse(
                request,
                &ctx,
                Refused::plain(RefusalReason::Unsigned, ResponseCode::Refused, "unsigned"),
            );
        };
        let key_name = signer.key.name.clone();
        let policy = self.app.policy();
        let Some(machine) = policy.policy.machine_for_key(&key_name) else {
            return self.refuse(
                request,
                &ctx,
                Refused::plain(
                    RefusalReason::NoAcl,
                    ResponseCode::Refused,
                    "no ACL names this key",
                ),
            );
        };
        ctx.machine = Some(machine.name.clone());
        let src = request.src();
        if !machine.source_allowed(src.ip()) {
            return self.refuse(
                request,
                &ctx,
                Refused::plain(
                    RefusalReason::Network,
                    ResponseCode::Refused,
                    "source address not in the ACL's networks",
                ),
            );
        }
        let prereqs = request.answers.clone();
        let updates = request.authorities.clone();
        let app = self.app.clone();
        let result = tokio::task::spawn_blocking(move || {
            let Some(machine) = policy.policy.machine_for_key(&key_name) else {
                unreachable!("looked up above in the same policy");
            };
            let actor = Actor {
                machine,
                key_name: key_name.to_string(),
                source: src.ip().to_string(),
            };
            app.apply_update(&zone, &prereqs, &updates, &actor)
        })
        .await;
        let metrics = &self.app.metrics;
        let rcode = match result {
            Ok(Ok(Applied::Changed { serial, detail })) => {
                metrics.updates_accepted.inc(&[&ctx.zone, "changed"]);
                tracing::info!(
                    zone = %ctx.zone, key = %ctx.key, machine = %ctx.machine_label(), source = %ctx.source,
                    owner = %ctx.owners, rtype = %ctx.types, outcome = "applied", serial, change = %detail,
                    "update"
                );
                ResponseCode::NoError
            }
            Ok(Ok(Applied::Unchanged)) => {
                metrics.updates_accepted.inc(&[&ctx.zone, "unchanged"]);
                tracing::info!(
                    zone = %ctx.zone, key = %ctx.key, machine = %ctx.machine_label(), source = %ctx.source,
                    owner = %ctx.owners, rtype = %ctx.types, outcome = "unchanged",
                    "update"
                );
                ResponseCode::NoError
            }
            Ok(Err(UpdateError::Refused(r))) => {
                let refused = Refused {
                    reason: RefusalReason::from(r.kind),
                    rcode: r.rcode,
                    detail: r.reason,
                    owner: r.owner.map(|n| n.to_string()),
                    rtype: r.rtype.map(|t| t.to_string()),
                };
                return self.refuse(request, &ctx, refused);
            }
            Ok(Err(UpdateError::Store(e))) => {
                metrics
                    .updates_failed
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::error!(
                    zone = %ctx.zone, key = %ctx.key, machine = %ctx.machine_label(), source = %ctx.source,
                    owner = %ctx.owners, rtype = %ctx.types, outcome = "failed", error = %e,
                    "update not committed; nothing changed"
                );
                ResponseCode::ServFail
            }
            Err(e) => {
                metrics
                    .updates_failed
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::error!(zone = %ctx.zone, outcome = "failed", error = %e, "update task failed; nothing changed");
                ResponseCode::ServFail
            }
        };
        Reply::new(request, rcode)
    }

    /// Refuse an UPDATE: one log line with the reason, the metric, the
    /// machine's last refusal; the reply with `refused.rcode`.
    fn refuse(&self, request: &Request, ctx: &UpdateLog, refused: Refused) -> Reply {
        self.app
            .metrics
            .updates_refused
            .inc(&[refused.reason.as_str()]);
        tracing::warn!(
            zone = %ctx.zone, key = %ctx.key, machine = %ctx.machine_label(), source = %ctx.source,
            owner = %refused.owner.as_deref().unwrap_or(&ctx.owners),
            rtype = %refused.rtype.as_deref().unwrap_or(&ctx.types),
            outcome = "refused", reason = refused.reason.as_str(), rcode = %rcode_name(refused.rcode),
            detail = %refused.detail,
            "update"
        );
        if let Some(machine) = &ctx.machine {
            self.app.record_refusal(
                machine,
                LastRefusal {
                    time: self.app.clock.now(),
                    zone: ctx.zone.clone(),
                    reason: refused.reason,
                    rcode: rcode_name(refused.rcode),
                    source: ctx.source.ip().to_string(),
                    owner: refused.owner.clone(),
                    rtype: refused.rtype.clone(),
                    detail: refused.detail.clone(),
                },
            );
        }
        Reply::new(request, refused.rcode)
    }

    /// Count a TSIG failure (by configured key, or "(unknown)"); on an
    /// UPDATE it is also that update's refusal.
    fn count_tsig_failure(
        &self,
        request: &Request,
        rej: &crate::tsig::Rejection,
        policy: &crate::acl::PolicyState,
    ) {
        let known = rej
            .key_name
            .as_ref()
            .filter(|k| policy.keys.get(k).is_some());
        let key_label = known.map_or_else(|| "(unknown)".to_string(), |k| k.to_string());
        let error = match rej.reason {
            TsigFailure::FormErr => "formerr",
            TsigFailure::BadKey => "badkey",
            TsigFailure::BadSig => "badsig",
            TsigFailure::BadTime { .. } => "badtime",
            TsigFailure::BadTrunc => "badtrunc",
            TsigFailure::Replay => "replay",
            TsigFailure::Unsigned | TsigFailure::PeerError(_) => "other",
        };
        self.app.metrics.tsig_failures.inc(&[&key_label, error]);
        if request.metadata.op_code == OpCode::Update {
            let mut ctx = UpdateLog::new(request, known);
            ctx.machine = known
                .and_then(|k| policy.policy.machine_for_key(k))
                .map(|m| m.name.clone());
            let rcode = match rej.rcode {
                RejectRcode::FormErr => ResponseCode::FormErr,
                RejectRcode::NotAuth => ResponseCode::NotAuth,
            };
            let _ = self.refuse(
                request,
                &ctx,
                Refused::plain(RefusalReason::Tsig, rcode, &format!("TSIG: {}", rej.reason)),
            );
        }
    }

    /// The OPT record of our answer, if the request had one (RFC 6891 §6.1.1).
    fn response_edns(&self, request: &Request) -> Option<Edns> {
        request.edns.as_ref().map(|req| {
            let mut e = Edns::new();
            e.set_max_payload(self.app.config.edns_udp_size.max(512));
            e.set_version(0);
            e.set_dnssec_ok(req.flags().dnssec_ok);
            e
        })
    }

    /// The largest answer this request may get: the requester's EDNS size
    /// capped by ours over UDP (512 without EDNS), 64 KiB over TCP.
    fn size_limit(&self, request: &Request) -> usize {
        match request.protocol() {
            Protocol::Udp => match &request.edns {
                Some(req) => req
                    .max_payload()
                    .clamp(512, self.app.config.edns_udp_size.max(512))
                    as usize,
                None => 512,
            },
            _ => u16::MAX as usize,
        }
    }

    /// RFC 1996: a NOTIFY to the primary. Nothing to do; acknowledge it for
    /// our zones.
    fn notify_in(&self, request: &Request) -> Reply {
        if request.queries.len() != 1 {
            return Reply::new(request, ResponseCode::FormErr);
        }
        let zone: Name = request.queries.queries()[0].name().into();
        if self.app.zone_exact(&zone).is_none() {
            return Reply::new(request, ResponseCode::NotAuth);
        }
        tracing::info!(zone = %zone, source = %request.src(), "NOTIFY received; we are the primary, nothing to do");
        let mut reply = Reply::new(request, ResponseCode::NoError);
        reply.metadata.authoritative = true;
        reply
    }

    /// What a transfer request gets: (form, serial, records), or the RCODE
    /// of the refusal.
    async fn transfer_contents(
        &self,
        request: &Request,
        key: Option<&Name>,
        qtype: RecordType,
    ) -> Result<(&'static str, u32, Vec<Record>), ResponseCode> {
        let src = request.src();
        let zname: Name = request.queries.queries()[0].name().into();
        let zone = self
            .app
            .zone_exact(&zname)
            .cloned()
            .ok_or(ResponseCode::NotAuth)?;
        let snapshot = zone.snapshot();
        if !snapshot.spec.transfer.allows(key, src.ip()) {
            tracing::warn!(zone = %zname, source = %src, key = %key.map(|k| k.to_string()).unwrap_or_default(), %qtype, "transfer refused: not in the zone's transfer keys or networks");
            return Err(ResponseCode::Refused);
        }
        let udp = request.protocol() == Protocol::Udp;
        if qtype == RecordType::AXFR {
            // RFC 5936 §4.2: AXFR is a TCP affair.
            if udp {
                return Err(ResponseCode::FormErr);
            }
            return Ok(("AXFR", snapshot.serial, xfr::axfr(&snapshot)));
        }
        // RFC 1995 §3: the authority section carries the client's SOA.
        let client = request
            .authorities
            .iter()
            .find_map(|r| match &r.data {
                RData::SOA(soa) => Some(soa.serial),
                _ => None,
            })
            .ok_or(ResponseCode::FormErr)?;
        let journal = if serial_at_least(client, snapshot.serial) {
            None
        } else {
            let to = snapshot.serial;
            match tokio::task::spawn_blocking(move || zone.journal_between(client, to)).await {
                Ok(Ok(j)) => j,
                Ok(Err(e)) => {
                    tracing::error!(zone = %zname, error = %e, "cannot read the journal; sending the whole zone");
                    None
                }
                Err(_) => None,
            }
        };
        let (form, mut records) = xfr::ixfr(&snapshot, client, journal);
        // RFC 1995 §2: over UDP, an answer that does not fit is just our SOA.
        if udp && form != xfr::IxfrForm::UpToDate && xfr::size(&records) > self.size_limit(request)
        {
            records = vec![snapshot.soa_record()];
        }
        let form = match form {
            xfr::IxfrForm::UpToDate => "IXFR (up to date)",
            xfr::IxfrForm::Incremental => "IXFR",
            xfr::IxfrForm::Full => "IXFR (full)",
        };
        Ok((form, snapshot.serial, records))
    }

    /// AXFR (RFC 5936) and IXFR (RFC 1995), in as many messages as needed,
    /// each TSIG-signed when the request was (RFC 8945 §5.3.1).
    async fn transfer<R: ResponseHandler>(
        &self,
        request: &Request,
        handle: R,
        mut signer: Option<SignContext>,
        qtype: RecordType,
    ) -> ResponseInfo {
        let src = request.src();
        let zname: Name = request.queries.queries()[0].name().into();
        let key = signer.as_ref().map(|s| s.key.name.clone());
        let (form, serial, records) =
            match self.transfer_contents(request, key.as_ref(), qtype).await {
                Ok(c) => c,
                Err(rcode) => {
                    let reply = Reply::new(request, rcode);
                    return self.send(request, handle, reply, sign_with(&signer)).await;
                }
            };
        let count = records.len();
        self.count_query(request, ResponseCode::NoError);
        let counter = match form {
            "AXFR" => Some((&self.app.stats.axfr, "axfr")),
            "IXFR" => Some((&self.app.stats.ixfr_incremental, "ixfr")),
            "IXFR (full)" => Some((&self.app.stats.ixfr_full, "ixfr_full")),
            _ => None,
        };
        if let Some((c, label)) = counter {
            c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.app.metrics.transfers.inc(&[label]);
        }
        let chunks = xfr::chunk(records);
        if chunks.len() > xfr::MAX_MESSAGES {
            tracing::error!(zone = %zname, messages = chunks.len(), "zone too large for one transfer");
            return self
                .send(
                    request,
                    handle,
                    Reply::new(request, ResponseCode::ServFail),
                    sign_with(&signer),
                )
                .await;
        }
        let edns = self.response_edns(request);
        let no_question =
            Queries::read(&mut BinDecoder::new(&[]), 0).expect("zero questions always parse");
        let mut info = None;
        for (i, chunk) in chunks.into_iter().enumerate() {
            let mut reply = Reply::new(request, ResponseCode::NoError);
            reply.metadata.authoritative = true;
            reply.answers = chunk;
            // The question goes in the first message only (RFC 5936 §2.2.1).
            let queries = if i == 0 {
                &request.queries
            } else {
                &no_question
            };
            let now = self.app.clock.now();
            let signature = signer.as_mut().map(|ctx| {
                let bytes = encode(queries, &reply, edns.as_ref());
                if i == 0 {
                    ctx.sign_response(&bytes, now)
                } else {
                    ctx.sign_next(&bytes, now)
                }
            });
            let mut msg = response(queries, &reply, edns.as_ref());
            if let Some(sig) = signature {
                msg.set_signature(Box::new(sig));
            }
            match handle.clone().send_response(msg).await {
                Ok(sent) => info = Some(sent),
                Err(error) => {
                    tracing::warn!(zone = %zname, source = %src, %error, "transfer aborted while sending");
                    break;
                }
            }
        }
        tracing::info!(zone = %zname, source = %src, form, serial, records = count, "zone transfer sent");
        info.unwrap_or_else(|| {
            ResponseInfo::from(Header {
                metadata: Metadata::response_from_request(&request.metadata),
                counts: HeaderCounts::default(),
            })
        })
    }

    /// Count one answered query by type and RCODE (lock-free).
    fn count_query(&self, request: &Request, rcode: ResponseCode) {
        let qtype = request.queries.queries().first().map(|q| q.query_type());
        self.app.metrics.queries.inc(qtype, rcode);
    }

    /// Encode, truncate for UDP if needed, sign if needed, and send.
    async fn send<R: ResponseHandler>(
        &self,
        request: &Request,
        mut handle: R,
        mut reply: Reply,
        sign: Signing<'_>,
    ) -> ResponseInfo {
        let now = self.app.clock.now();
        let edns = self.response_edns(request);
        let limit = self.size_limit(request);
        let tsig_room = match &sign {
            Signing::None => 0,
            Signing::Response(ctx) => tsig_size(
                &ctx.key.name,
                ctx.key.algorithm.name().len(),
                ctx.key.algorithm.output_len(),
            ),
            Signing::Error(_) => 200,
        };
        let mut bytes = encode(&request.queries, &reply, edns.as_ref());
        if bytes.len() + tsig_room > limit {
            reply.metadata.truncation = true;
            reply.answers.clear();
            reply.authorities.clear();
            reply.additionals.clear();
            bytes = encode(&request.queries, &reply, edns.as_ref());
        }
        let signature = match sign {
            Signing::None => None,
            Signing::Response(ctx) => Some(ctx.sign_response(&bytes, now)),
            Signing::Error(rej) => rej.error_tsig(&bytes, now),
        };
        if request.metadata.op_code == OpCode::Query {
            self.count_query(request, reply.metadata.response_code);
        }
        let mut msg = response(&request.queries, &reply, edns.as_ref());
        if let Some(sig) = signature {
            msg.set_signature(Box::new(sig));
        }
        match handle.send_response(msg).await {
            Ok(info) => info,
            Err(error) => {
                tracing::debug!(%error, src = %request.src(), "failed to send response");
                ResponseInfo::from(Header {
                    metadata: reply.metadata,
                    counts: HeaderCounts::default(),
                })
            }
        }
    }
}

enum Signing<'a> {
    None,
    Response(&'a SignContext),
    Error(&'a crate::tsig::Rejection),
}

/// Upper bound of a TSIG RR's size: owner, fixed fields, algorithm, MAC, 6 octets of other data.
fn tsig_size(key: &Name, alg_len: usize, mac_len: usize) -> usize {
    key.len() + 2 + 10 + alg_len + 2 + 16 + mac_len + 6
}

type Iter<'a> = std::slice::Iter<'a, Record>;

/// The message hickory will encode and send for `reply`.
fn response<'a>(
    queries: &'a Queries,
    reply: &'a Reply,
    edns: Option<&'a Edns>,
) -> MessageResponse<'a, 'a, Iter<'a>, Iter<'a>, iter::Empty<&'a Record>, Iter<'a>> {
    MessageResponseBuilder::new(queries, edns).build(
        reply.metadata,
        reply.answers.iter(),
        reply.authorities.iter(),
        iter::empty(),
        reply.additionals.iter(),
    )
}

/// The response as hickory will send it (same encoder), without a TSIG RR.
fn encode(queries: &Queries, reply: &Reply, edns: Option<&Edns>) -> Vec<u8> {
    let msg = response(queries, reply, edns);
    let mut buf = Vec::with_capacity(512);
    let mut enc = BinEncoder::new(&mut buf);
    if msg.destructive_emit(&mut enc).is_err() {
        buf.clear();
    }
    buf
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        response_handle: R,
    ) -> ResponseInfo {
        let now = self.app.clock.now();
        let policy = self.app.policy();
        // TSIG first: a request that carries one is answered under it (RFC 8945 §5.2).
        let signer = match self
            .app
            .verifier
            .verify(request.as_slice(), &policy.keys, now)
        {
            Ok(s) => s,
            Err(rej) => {
                tracing::warn!(
                    source = %request.src(),
                    key = %rej.key_name.as_ref().map(|n| n.to_string()).unwrap_or_default(),
                    reason = %rej.reason,
                    opcode = %request.metadata.op_code,
                    "TSIG verification failed"
                );
                self.count_tsig_failure(request, &rej, &policy);
                let rcode = match rej.rcode {
                    RejectRcode::FormErr => ResponseCode::FormErr,
                    RejectRcode::NotAuth => ResponseCode::NotAuth,
                };
                let reply = Reply::new(request, rcode);
                return self
                    .send(request, response_handle, reply, Signing::Error(&rej))
                    .await;
            }
        };
        if let Some(edns) = &request.edns
            && edns.version() > 0
        {
            // RFC 6891 §6.1.3
            let reply = Reply::new(request, ResponseCode::BADVERS);
            return self
                .send(request, response_handle, reply, sign_with(&signer))
                .await;
        }
        if request.metadata.op_code == OpCode::Query
            && request.queries.len() == 1
            && request.queries.queries()[0].query_class() == DNSClass::IN
        {
            let qtype = request.queries.queries()[0].query_type();
            if matches!(qtype, RecordType::AXFR | RecordType::IXFR) {
                return self.transfer(request, response_handle, signer, qtype).await;
            }
        }
        // An UPDATE in flight holds the drain until it is answered, so a
        // graceful shutdown answers every UPDATE it committed.
        let _in_flight = if request.metadata.op_code == OpCode::Update {
            match self.app.drain.enter() {
                Some(g) => Some(g),
                None => {
                    let ctx = UpdateLog::new(request, signer.as_ref().map(|s| &s.key.name));
                    let reply = self.refuse(
                        request,
                        &ctx,
                        Refused::plain(
                            RefusalReason::ShuttingDown,
                            ResponseCode::ServFail,
                            "the server is shutting down",
                        ),
                    );
                    return self
                        .send(request, response_handle, reply, sign_with(&signer))
                        .await;
                }
            }
        } else {
            None
        };
        let reply = match request.metadata.op_code {
            OpCode::Query => self.query(request),
            OpCode::Notify => self.notify_in(request),
            OpCode::Update => self.update(request, signer.as_ref()).await,
            _ => Reply::new(request, ResponseCode::NotImp),
        };
        self.send(request, response_handle, reply, sign_with(&signer))
            .await
    }
}

fn sign_with(signer: &Option<SignContext>) -> Signing<'_> {
    match signer {
        Some(ctx) => Signing::Response(ctx),
        None => Signing::None,
    }
}

/// Bind UDP and TCP on each address; a port of 0 picks one free port for both.
pub async fn bind(
    addrs: &[SocketAddr],
) -> Result<Vec<(tokio::net::UdpSocket, tokio::net::TcpListener)>, crate::app::StartError> {
    let mut out = Vec::new();
    for addr in addrs {
        let mut last_err = None;
        // With port 0 the UDP port chosen may be taken for TCP: try a few.
        for _ in 0..20 {
            let udp = tokio::net::UdpSocket::bind(addr).await.map_err(|source| {
                crate::app::StartError::Bind {
                    addr: *addr,
                    source,
                }
            })?;
            let actual = udp
                .local_addr()
                .map_err(|source| crate::app::StartError::Bind {
                    addr: *addr,
                    source,
                })?;
            match tokio::net::TcpListener::bind(actual).await {
                Ok(tcp) => {
                    out.push((udp, tcp));
                    last_err = None;
                    break;
                }
                Err(e) if addr.port() == 0 => last_err = Some(e),
                Err(source) => {
                    return Err(crate::app::StartError::Bind {
                        addr: *addr,
                        source,
                    });
                }
            }
        }
        if let Some(source) = last_err {
            return Err(crate::app::StartError::Bind {
                addr: *addr,
                source,
            });
        }
    }
    Ok(out)
}
