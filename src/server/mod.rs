//! The DNS request front. Our own loops own the sockets: `udp` (one socket
//! per core; plain queries answered from prepared answers, `prepared`) and
//! `tcp` (connection caps, idle, lifetime and message limits); both hand
//! every other request to our [`Handler`] (`dispatch`); from there a
//! request takes one path:
//!
//! 1. TSIG verification under one policy snapshot (`tsig`; a request that
//!    carries a TSIG RR is answered under it, RFC 8945 §5.2); a failure is
//!    answered with NOTAUTH/FORMERR and the TSIG error, counted once.
//! 2. [`request::classify`]: the request becomes one [`request::Kind`]
//!    (query, transfer, update, notify) for one zone, or is rejected with
//!    FORMERR, NOTIMP, BADVERS, NOTAUTH or REFUSED, decided there only.
//! 3. One handler per kind: `query` (answers from the snapshot),
//!    `transfer` (AXFR/IXFR streams), `update` (the gate, then one draft to
//!    the zone writer), notify (acknowledged), `identity` (class CH).
//! 4. One response (`response`): truncated to fit, TSIG-signed, sent; the
//!    EDNS options of the answer (EDE, NSID) are `edns`'s.
//!
//! Before step 1, a malformed COOKIE option is answered FORMERR (RFC 7873
//! §5.2.2); at step 4, a UDP answer to a request that proved neither its
//! key (TSIG) nor its address (a valid server cookie) passes response rate
//! limiting, and an UPDATE with a valid key passes its key's rate (`rrl`).
//! Lines about unauthenticated events are rate-limited (`refusal`).
//!
//! The same policy snapshot travels from step 1 to the UPDATE gate, so a
//! reload in between cannot split a request across two policies. Refused
//! writes are accounted in `refusal`, which the HTTP TLSA API shares.

pub mod conn;
pub mod cookie;
mod edns;
mod identity;
pub mod prepared;
mod query;
mod refusal;
pub mod request;
mod response;
pub mod rrl;
pub mod tcp;
mod transfer;
pub mod udp;
mod unanswered;
mod update;

use std::net::SocketAddr;
use std::sync::Arc;

use hickory_proto::op::{Header, HeaderCounts, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use hickory_server::net::runtime::{Time, TokioTime};
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::{MessageResponseBuilder, Queries};

use crate::acl::{LivePolicy, PolicyState};
use crate::clock::Clock;
use crate::metrics::{self, Metrics, RefusalReason};
use crate::tsig::{self, RejectRcode, Rejection, TsigFailure};
use crate::writer::{Drain, Zones};

pub use conn::{ConnLimiter, raise_fd_limit};
pub use edns::Ede;
pub use identity::Identity;
pub use refusal::{
    LastRefusal, LogGate, Refusals, Refused, SUMMARY_INTERVAL as LOG_SUMMARY_INTERVAL, WriteLog,
};
pub use response::Reply;
pub use rrl::Protection;
pub use transfer::Stats;
pub use unanswered::FailureBudget;
pub use update::admit;

use request::Kind;
use response::Signing;

/// What the request front works with.
pub struct Context {
    pub zones: Arc<Zones>,
    pub policy: Arc<LivePolicy>,
    pub verifier: Arc<tsig::Verifier>,
    pub metrics: Arc<Metrics>,
    pub clock: Arc<dyn Clock>,
    pub drain: Arc<Drain>,
    pub refusals: Arc<Refusals>,
    pub stats: Arc<Stats>,
    /// Our EDNS UDP payload size.
    pub edns_udp_size: u16,
    /// NSID and the CH names, when configured.
    pub identity: Identity,
    /// Response rate limiting, cookies, UPDATEs per key (issue 11).
    pub protection: Arc<Protection>,
    /// Zone transfers sent at once (`transfers-max`); past it, REFUSED.
    pub transfer_slots: Arc<tokio::sync::Semaphore>,
    /// TSIG failures over UDP answered per second (`tsig-failure-answers`).
    pub failure_budget: Arc<FailureBudget>,
}

/// The shared handles the request front is built from (what
/// [`Context::new`] does not make from the configuration itself).
pub struct Shared {
    pub zones: Arc<Zones>,
    pub policy: Arc<LivePolicy>,
    pub verifier: Arc<tsig::Verifier>,
    pub metrics: Arc<Metrics>,
    pub clock: Arc<dyn Clock>,
    pub drain: Arc<Drain>,
    pub refusals: Arc<Refusals>,
    pub stats: Arc<Stats>,
}

impl Context {
    /// The front for `config`: the shared handles, and the limits,
    /// identity and rate limiting the configuration sets.
    pub fn new(config: &crate::config::Config, shared: Shared) -> Self {
        let Shared {
            zones,
            policy,
            verifier,
            metrics,
            clock,
            drain,
            refusals,
            stats,
        } = shared;
        Self {
            zones,
            policy,
            verifier,
            metrics,
            clock,
            drain,
            refusals,
            stats,
            edns_udp_size: config.edns_udp_size,
            identity: Identity::from_config(config),
            protection: Arc::new(Protection::new(config)),
            transfer_slots: Arc::new(tokio::sync::Semaphore::new(
                config.connections.transfers_max,
            )),
            failure_budget: Arc::new(FailureBudget::new(config.connections.tsig_failure_answers)),
        }
    }
}

impl Context {
    /// Send one response (see `response::send`), counting answered queries:
    /// rate-limited first if it goes over UDP to a request that proved
    /// neither its key nor its address, with our COOKIE if it sent one.
    async fn send<R: ResponseHandler>(
        &self,
        request: &Request,
        handle: R,
        mut reply: Reply,
        mut sign: Signing<'_>,
    ) -> ResponseInfo {
        let now = self.clock.now();
        let seen = self.protection.cookie(request, now);
        if request.protocol() == Protocol::Udp
            && !matches!(sign, Signing::Response(_))
            && !seen.is_valid()
        {
            let (verdict, class) = self.protection.limit(request, &reply);
            match verdict {
                rrl::Verdict::Send => {}
                rrl::Verdict::Drop => {
                    self.metrics
                        .rrl_limited
                        .inc(&[metrics::RRL_DROPPED, class.index()]);
                    return ResponseInfo::from(hickory_proto::op::Header {
                        metadata: reply.metadata,
                        counts: Default::default(),
                    });
                }
                rrl::Verdict::Slip => {
                    self.metrics
                        .rrl_limited
                        .inc(&[metrics::RRL_SLIPPED, class.index()]);
                    if matches!(seen, cookie::Seen::ClientOnly { .. }) {
                        // RFC 7873 §5.2.3: BADCOOKIE with a fresh cookie; the
                        // client retries with it and is no longer limited.
                        reply = Reply::new(request, ResponseCode::BADCOOKIE);
                        sign = Signing::None;
                    } else {
                        reply.metadata.truncation = true;
                        reply.answers.clear();
                        reply.authorities.clear();
                        reply.additionals.clear();
                    }
                }
            }
        }
        reply.cookie = self.protection.cookie_answer(&seen, request, now);
        if let Some(nsid) = edns::nsid_option(request, self.identity.nsid.as_deref()) {
            reply.options.push(nsid);
        }
        if request.metadata.op_code == OpCode::Query {
            let qtype = request.queries.queries().first().map(|q| q.query_type());
            self.metrics
                .queries
                .inc(qtype, reply.metadata.response_code);
        }
        response::send(request, handle, reply, sign, self.edns_udp_size, now).await
    }

    /// Count a TSIG failure (by configured key, or "(unknown)"); on an
    /// UPDATE it is also that update's refusal. Its log line passes the
    /// gate on unauthenticated events.
    fn tsig_failed(&self, request: &Request, rej: &Rejection, policy: &PolicyState) {
        if self
            .refusals
            .log_gate()
            .allow(metrics::LOG_TSIG_FAILURE, &self.metrics)
        {
            tracing::warn!(
                source = %request.src(),
                key = %rej.key_name.as_ref().map(|n| n.to_string()).unwrap_or_default(),
                reason = %rej.reason,
                opcode = %request.metadata.op_code,
                "TSIG verification failed"
            );
        }
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
        self.metrics.tsig_failures.inc(&[&key_label, error]);
        if request.metadata.op_code == OpCode::Update {
            let mut log = self.write_log(request, known.cloned());
            log.machine = known
                .and_then(|k| policy.policy.machine_for_key(k))
                .map(|m| m.name.clone());
            let refused = Refused::plain(
                RefusalReason::Tsig,
                tsig_rcode(rej.rcode),
                format!("TSIG: {}", rej.reason),
            );
            self.refusals
                .record(&self.metrics, &log, &refused, self.clock.now());
        }
    }

    /// The log context of an UPDATE request.
    fn write_log(&self, request: &Request, key: Option<hickory_proto::rr::Name>) -> WriteLog {
        let zone = request.queries.queries().first().map(|q| q.name().into());
        WriteLog::new(zone, key, request.src(), &request.authorities)
    }
}

fn tsig_rcode(r: RejectRcode) -> ResponseCode {
    match r {
        RejectRcode::FormErr => ResponseCode::FormErr,
        RejectRcode::NotAuth => ResponseCode::NotAuth,
    }
}

/// hickory-server's entry point into the front.
#[derive(Clone)]
pub struct Handler {
    cx: Arc<Context>,
}

impl Handler {
    pub fn new(cx: Arc<Context>) -> Self {
        Self { cx }
    }
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        handle: R,
    ) -> ResponseInfo {
        let cx = &*self.cx;
        // RFC 7873 §5.2.2: a malformed COOKIE option is FORMERR, before
        // anything else is looked at.
        match cx.protection.cookie(request, cx.clock.now()) {
            cookie::Seen::Absent => {}
            cookie::Seen::Malformed => {
                cx.metrics.cookies.inc(&[metrics::COOKIE_MALFORMED]);
                let reply = Reply::new(request, ResponseCode::FormErr);
                return cx.send(request, handle, reply, Signing::None).await;
            }
            cookie::Seen::ClientOnly { .. } => {
                cx.metrics.cookies.inc(&[metrics::COOKIE_CLIENT_ONLY]);
            }
            cookie::Seen::Valid { .. } => cx.metrics.cookies.inc(&[metrics::COOKIE_VALID]),
        }
        let policy = cx.policy.get();
        let signer = match cx
            .verifier
            .verify(request.as_slice(), &policy.keys, cx.clock.now())
        {
            Ok(s) => s,
            Err(rej) => {
                // Past the budget, a UDP TSIG failure costs a key lookup and
                // a counter, and no answer (issue 11, defect 4).
                if request.protocol() == Protocol::Udp && !cx.failure_budget.allow() {
                    cx.metrics.tsig_failures.inc(&["(any)", "dropped"]);
                    return ResponseInfo::from(Header {
                        metadata: Metadata::response_from_request(&request.metadata),
                        counts: HeaderCounts::default(),
                    });
                }
                cx.tsig_failed(request, &rej, &policy);
                let reply = Reply::new(request, tsig_rcode(rej.rcode));
                return cx.send(request, handle, reply, Signing::Error(&rej)).await;
            }
        };
        let sign = Signing::with(signer.as_ref());
        let kind = match request::classify(request, &cx.zones) {
            Ok(kind) => kind,
            Err(rejected) => {
                if let (OpCode::Update, Some(reason)) = (request.metadata.op_code, rejected.reason)
                {
                    let log = cx.write_log(request, signer.as_ref().map(|s| s.key.name.clone()));
                    let refused = Refused::plain(reason, rejected.rcode, rejected.detail);
                    cx.refusals
                        .record(&cx.metrics, &log, &refused, cx.clock.now());
                }
                let reply = Reply::new(request, rejected.rcode)
                    .with_ede(rejected.reason.and_then(Ede::for_refusal));
                return cx.send(request, handle, reply, sign).await;
            }
        };
        let reply = match kind {
            Kind::Query { zone, qname, qtype } => query::answer(request, &zone, &qname, qtype),
            Kind::Notify { zone } => query::notify(request, &zone),
            Kind::Chaos { qname, qtype } => identity::answer(request, &cx.identity, &qname, qtype),
            Kind::Transfer { zone, qtype } => {
                return transfer::handle(cx, request, handle, zone, qtype, signer).await;
            }
            Kind::Update { zone } => {
                // An UPDATE in flight holds the drain until it is answered,
                // so a graceful shutdown answers every UPDATE it committed.
                let Some(_in_flight) = cx.drain.enter() else {
                    let log = cx.write_log(request, signer.as_ref().map(|s| s.key.name.clone()));
                    let refused = Refused::plain(
                        RefusalReason::ShuttingDown,
                        ResponseCode::ServFail,
                        "the server is shutting down",
                    );
                    cx.refusals
                        .record(&cx.metrics, &log, &refused, cx.clock.now());
                    let reply =
                        Reply::new(request, ResponseCode::ServFail).with_ede(Some(Ede::NotReady));
                    return cx.send(request, handle, reply, sign).await;
                };
                if let Some(key) = signer.as_ref().map(|s| &s.key.name)
                    && !cx.protection.update_allowed(key)
                {
                    let mut log = cx.write_log(request, Some(key.clone()));
                    log.machine = policy.policy.machine_for_key(key).map(|m| m.name.clone());
                    let refused = Refused::plain(
                        RefusalReason::RateLimited,
                        ResponseCode::Refused,
                        "more UPDATEs than update-rate-per-key allows",
                    );
                    cx.refusals
                        .record(&cx.metrics, &log, &refused, cx.clock.now());
                    let reply = Reply::new(request, ResponseCode::Refused)
                        .with_ede(Ede::for_refusal(RefusalReason::RateLimited));
                    return cx.send(request, handle, reply, sign).await;
                }
                let (rcode, ede) =
                    update::handle(cx, request, zone, signer.as_ref(), &policy).await;
                let reply = Reply::new(request, rcode).with_ede(ede);
                return cx.send(request, handle, reply, sign).await;
            }
        };
        cx.send(request, handle, reply, sign).await
    }
}

/// Parse one message and hand it to the request front, as hickory's own
/// loop did: fewer than 12 octets or a response is dropped, a message that
/// does not parse gets FORMERR. For TCP (`tcp`) and the UDP requests the
/// fast path does not answer (`udp`).
async fn dispatch<R: ResponseHandler>(
    handler: &Handler,
    msg: Vec<u8>,
    src: SocketAddr,
    protocol: Protocol,
    mut responder: R,
) {
    let Ok(header) = Header::read(&mut BinDecoder::new(&msg)) else {
        return;
    };
    if header.metadata.message_type == MessageType::Response {
        return;
    }
    match Request::from_bytes(msg, src, protocol) {
        Ok(request) => {
            handler
                .handle_request::<_, TokioTime>(&request, responder)
                .await;
        }
        Err(error) => {
            tracing::debug!(%src, %error, ?protocol, "unparsable DNS message");
            let queries =
                Queries::read(&mut BinDecoder::new(&[]), 0).expect("zero questions always parse");
            let response = MessageResponseBuilder::new(&queries, None)
                .error_msg(&header.metadata, ResponseCode::FormErr);
            let _ = responder.send_response(response).await;
        }
    }
}

/// Why the DNS sockets could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source}")]
pub struct BindError {
    pub addr: SocketAddr,
    #[source]
    pub source: std::io::Error,
}

/// The sockets of one listen address: UDP sockets sharing its port (one
/// per core, `udp`), and the TCP listener.
pub struct Listener {
    pub udp: Vec<tokio::net::UdpSocket>,
    pub tcp: tokio::net::TcpListener,
}

/// Bind UDP (`udp::sockets_per_address` sockets) and TCP on each address;
/// a port of 0 picks one free port for all of them.
pub async fn bind(addrs: &[SocketAddr]) -> Result<Vec<Listener>, BindError> {
    let mut out = Vec::new();
    for addr in addrs {
        let err = |source| BindError {
            addr: *addr,
            source,
        };
        let mut last_err = None;
        // With port 0 the UDP port chosen may be taken for TCP: try a few.
        for _ in 0..20 {
            let first = udp::bind(*addr).map_err(err)?;
            let actual = first.local_addr().map_err(err)?;
            match tokio::net::TcpListener::bind(actual).await {
                Ok(tcp) => {
                    let mut udp = vec![tokio::net::UdpSocket::from_std(first).map_err(err)?];
                    for _ in 1..udp::sockets_per_address() {
                        let more = udp::bind(actual).map_err(err)?;
                        udp.push(tokio::net::UdpSocket::from_std(more).map_err(err)?);
                    }
                    out.push(Listener { udp, tcp });
                    last_err = None;
                    break;
                }
                Err(e) if addr.port() == 0 => last_err = Some(e),
                Err(source) => return Err(err(source)),
            }
        }
        if let Some(source) = last_err {
            return Err(err(source));
        }
    }
    Ok(out)
}
