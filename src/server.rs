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

use crate::app::{App, Applied, UpdateError};
use crate::dnsclient::serial_at_least;
use crate::tsig::{RejectRcode, SignContext};
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
        let src = request.src();
        // §3.1.1: the zone section holds exactly one SOA question.
        if request.queries.len() != 1 {
            return Reply::new(request, ResponseCode::FormErr);
        }
        let zq = &request.queries.queries()[0];
        if zq.query_type() != RecordType::SOA || zq.query_class() != DNSClass::IN {
            return Reply::new(request, ResponseCode::FormErr);
        }
        let zone_name: Name = zq.name().into();
        let Some(zone) = self.app.zone_exact(&zone_name).cloned() else {
            tracing::warn!(zone = %zone_name, source = %src, "update refused: not authoritative (NOTAUTH)");
            return Reply::new(request, ResponseCode::NotAuth);
        };
        let Some(signer) = signer else {
            tracing::warn!(zone = %zone_name, source = %src, reason = "unsigned", "update refused");
            return Reply::new(request, ResponseCode::Refused);
        };
        let key_name = signer.key.name.clone();
        let policy = self.app.policy();
        let Some(machine) = policy.policy.machine_for_key(&key_name) else {
            tracing::warn!(zone = %zone_name, key = %key_name, source = %src, reason = "no ACL names this key", "update refused");
            return Reply::new(request, ResponseCode::Refused);
        };
        if !machine.source_allowed(src.ip()) {
            tracing::warn!(zone = %zone_name, key = %key_name, machine = %machine.name, source = %src, reason = "source address not in the ACL's networks", "update refused");
            return Reply::new(request, ResponseCode::Refused);
        }
        let prereqs = request.answers.clone();
        let updates = request.authorities.clone();
        let app = self.app.clone();
        let machine_name = machine.name.clone();
        let key_text = key_name.to_string();
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
        let rcode = match result {
            Ok(Ok(Applied::Changed { .. } | Applied::Unchanged)) => ResponseCode::NoError,
            Ok(Err(UpdateError::Refused(r))) => {
                tracing::warn!(
                    zone = %zone_name, key = %key_text, machine = %machine_name, source = %src,
                    owner = %r.owner.as_ref().map(|n| n.to_string()).unwrap_or_default(),
                    rtype = %r.rtype.map(|t| t.to_string()).unwrap_or_default(),
                    kind = r.kind.as_str(), rcode = %r.rcode, reason = %r.reason,
                    "update refused"
                );
                r.rcode
            }
            Ok(Err(UpdateError::Store(e))) => {
                tracing::error!(zone = %zone_name, key = %key_text, error = %e, "update not committed; nothing changed");
                ResponseCode::ServFail
            }
            Err(e) => {
                tracing::error!(zone = %zone_name, error = %e, "update task failed; nothing changed");
                ResponseCode::ServFail
            }
        };
        Reply::new(request, rcode)
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
        let counter = match form {
            "AXFR" => Some(&self.app.stats.axfr),
            "IXFR" => Some(&self.app.stats.ixfr_incremental),
            "IXFR (full)" => Some(&self.app.stats.ixfr_full),
            _ => None,
        };
        if let Some(c) = counter {
            c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
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
