//! One response, from sections to the wire: EDNS of the answer, the size
//! limit, truncation, the TSIG signature, and the send.
//!
//! A TSIG MAC covers the exact response bytes (RFC 8945 §5.3), and a
//! response too large for UDP must be replaced by a truncated one (TC=1,
//! question only, OPT and TSIG kept; RFC 1035 §4.2.1, RFC 6891 §7, RFC 8945
//! §5.3) rather than cut at an arbitrary RR. Both need the encoded bytes
//! before sending, so [`encode`] uses hickory's own `MessageResponse`
//! encoder: the bytes we measure and sign are the bytes it sends.
//!
//! # Limitations
//! A `ResponseHandler` sends a `MessageResponse`, which it encodes itself,
//! so a UDP or TSIG-signed response is encoded here to measure or sign it,
//! and again by the responder to send it (`udp`'s or `tcp`'s). An unsigned
//! TCP response is encoded once, and plain UDP queries do not come here:
//! `prepared` answers them from bytes encoded once per zone change.

use std::iter;

use hickory_proto::op::{Edns, Header, HeaderCounts, Metadata, ResponseCode};
use hickory_proto::rr::rdata::opt::EdnsOption;
use hickory_proto::rr::{Name, Record};
use hickory_proto::serialize::binary::{BinDecoder, BinEncoder};
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::{MessageResponse, MessageResponseBuilder, Queries};

use super::edns::Ede;
use crate::tsig::{Rejection, SignContext};

/// The sections of a response, before encoding.
pub struct Reply {
    pub metadata: Metadata,
    pub answers: Vec<Record>,
    pub authorities: Vec<Record>,
    pub additionals: Vec<Record>,
    /// Why it was refused or failed (RFC 8914), sent when the request had
    /// EDNS.
    pub ede: Option<Ede>,
    /// Other EDNS options of the answer (NSID), sent when the request had
    /// EDNS.
    pub options: Vec<EdnsOption>,
    /// The COOKIE option data of the answer (RFC 7873), if any.
    pub cookie: Option<[u8; 24]>,
}

impl Reply {
    /// A response to `request`. For an opcode we do not implement, only
    /// the ID, opcode, QR and RCODE are set: the meaning of the other
    /// header bits is the opcode's, so RD and CD are not copied back (as
    /// BIND and Knot answer; the question is echoed, as Knot does).
    pub fn new(request: &Request, rcode: ResponseCode) -> Self {
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.response_code = rcode;
        if !super::request::implemented(request.metadata.op_code) {
            metadata.recursion_desired = false;
            metadata.checking_disabled = false;
        }
        Self {
            metadata,
            answers: Vec::new(),
            authorities: Vec::new(),
            additionals: Vec::new(),
            ede: None,
            options: Vec::new(),
            cookie: None,
        }
    }

    pub fn with_ede(mut self, ede: Option<Ede>) -> Self {
        self.ede = ede;
        self
    }
}

/// How a response is signed.
pub enum Signing<'a> {
    None,
    /// Under the request's key (RFC 8945 §5.3).
    Response(&'a SignContext),
    /// A TSIG error answer (§5.2.3: BADKEY/BADSIG unsigned, BADTIME signed).
    Error(&'a Rejection),
}

impl<'a> Signing<'a> {
    pub fn with(signer: Option<&'a SignContext>) -> Self {
        signer.map_or(Signing::None, Signing::Response)
    }
}

/// The OPT record of our answer, if the request had one (RFC 6891 §6.1.1).
pub fn response_edns(request: &Request, our_udp_size: u16) -> Option<Edns> {
    request.edns.as_ref().map(|req| {
        let mut e = Edns::new();
        e.set_max_payload(our_udp_size.max(512));
        e.set_version(0);
        e.set_dnssec_ok(req.flags().dnssec_ok);
        e
    })
}

/// The largest answer this request may get: the requester's EDNS size
/// capped by ours over UDP (512 without EDNS), 64 KiB over TCP.
pub fn size_limit(request: &Request, our_udp_size: u16) -> usize {
    match request.protocol() {
        Protocol::Udp => match &request.edns {
            Some(req) => req.max_payload().clamp(512, our_udp_size.max(512)) as usize,
            None => 512,
        },
        _ => u16::MAX as usize,
    }
}

/// Upper bound of a TSIG RR's size: owner, fixed fields, algorithm, MAC, 6
/// octets of other data.
fn tsig_size(key: &Name, alg_len: usize, mac_len: usize) -> usize {
    key.len() + 2 + 10 + alg_len + 2 + 16 + mac_len + 6
}

type Iter<'a> = std::slice::Iter<'a, Record>;

/// The message hickory will encode and send for `reply`.
fn message<'a>(
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
pub fn encode(queries: &Queries, reply: &Reply, edns: Option<&Edns>) -> Vec<u8> {
    let msg = message(queries, reply, edns);
    let mut buf = Vec::with_capacity(512);
    let mut enc = BinEncoder::new(&mut buf);
    if msg.destructive_emit(&mut enc).is_err() {
        buf.clear();
    }
    buf
}

/// Send `reply` with `queries` as its question and `signature`, if any.
pub async fn send_message<R: ResponseHandler>(
    handle: &mut R,
    queries: &Queries,
    reply: &Reply,
    edns: Option<&Edns>,
    signature: Option<hickory_proto::rr::Record<hickory_proto::rr::rdata::TSIG>>,
) -> Result<ResponseInfo, hickory_server::net::NetError> {
    let mut msg = message(queries, reply, edns);
    if let Some(sig) = signature {
        msg.set_signature(Box::new(sig));
    }
    handle.send_response(msg).await
}

/// Truncate if needed, sign if needed, and send. Returns the RCODE sent
/// (for the query counter) and what hickory reports.
pub async fn send<R: ResponseHandler>(
    request: &Request,
    mut handle: R,
    mut reply: Reply,
    sign: Signing<'_>,
    our_udp_size: u16,
    now: u64,
) -> ResponseInfo {
    let mut edns = response_edns(request, our_udp_size).map(|mut e| {
        let opt = e.options_mut();
        for o in &reply.options {
            opt.insert(o.clone());
        }
        if let Some(ede) = reply.ede {
            opt.insert(ede.option());
        }
        e
    });
    if let (Some(e), Some(cookie)) = (edns.as_mut(), &reply.cookie) {
        e.options_mut().insert(super::cookie::option(cookie));
    }
    let limit = size_limit(request, our_udp_size);
    let no_questions = Queries::read(&mut BinDecoder::new(&[]), 0).expect("no questions read");
    let mut queries = &request.queries;
    let signature = match sign {
        // Unsigned over TCP: nothing to measure or sign (hickory encodes).
        Signing::None if request.protocol() != Protocol::Udp => None,
        sign => {
            let tsig_room = match &sign {
                Signing::None => 0,
                Signing::Response(ctx) => tsig_size(
                    &ctx.key.name,
                    ctx.key.algorithm.name().len(),
                    ctx.key.algorithm.output_len(),
                ),
                Signing::Error(_) => 200,
            };
            let mut bytes = encode(queries, &reply, edns.as_ref());
            // RFC 4035 §3.1.1, RFC 2181 §9: additional data that does not
            // fit is left out without TC; a referral's glue is needed
            // (RFC 9471), so a referral is truncated instead.
            if bytes.len() + tsig_room > limit
                && reply.metadata.authoritative
                && !reply.additionals.is_empty()
            {
                reply.additionals.clear();
                bytes = encode(queries, &reply, edns.as_ref());
            }
            if bytes.len() + tsig_room > limit {
                reply.metadata.truncation = true;
                reply.answers.clear();
                reply.authorities.clear();
                reply.additionals.clear();
                bytes = encode(queries, &reply, edns.as_ref());
                if bytes.len() + tsig_room > limit {
                    // Still too large: a question section no answer can
                    // echo (a FORMERR for many questions). Header alone.
                    queries = &no_questions;
                    bytes = encode(queries, &reply, edns.as_ref());
                }
            }
            match sign {
                Signing::None => None,
                Signing::Response(ctx) => Some(ctx.sign_response(&bytes, now)),
                Signing::Error(rej) => rej.error_tsig(&bytes, now),
            }
        }
    };
    match send_message(&mut handle, queries, &reply, edns.as_ref(), signature).await {
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
