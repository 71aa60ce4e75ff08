//! Zone transfers out: AXFR (RFC 5936) and IXFR (RFC 1995), in as many
//! messages as needed, each TSIG-signed when the request was (RFC 8945
//! §5.3.1). Who may transfer is the zone file's `transfer` setting; the
//! contents come from the snapshot (`xfr`) and the journal. The whole zone
//! is read from the snapshot message by message as it is sent (`xfr::Body`),
//! never copied whole.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hickory_proto::op::{Header, HeaderCounts, Metadata, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use hickory_proto::serialize::binary::BinDecoder;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::Queries;

use super::Context;
use super::edns::Ede;
use super::response::{self, Reply, Signing};
use crate::serial;
use crate::tsig::SignContext;
use crate::writer::ZoneHandle;
use crate::xfr::{self, Body, IxfrForm};

/// Transfers sent, by form (for tests and the logs; metrics count them too).
#[derive(Debug, Default)]
pub struct Stats {
    pub axfr: AtomicU64,
    pub ixfr_incremental: AtomicU64,
    pub ixfr_full: AtomicU64,
}

/// What a transfer sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Axfr,
    Ixfr(IxfrForm),
}

impl Form {
    /// The log's name for it.
    fn describe(self) -> &'static str {
        match self {
            Form::Axfr => "AXFR",
            Form::Ixfr(IxfrForm::UpToDate) => "IXFR (up to date)",
            Form::Ixfr(IxfrForm::Incremental) => "IXFR",
            Form::Ixfr(IxfrForm::Full) => "IXFR (full)",
        }
    }

    /// The counter and metric label it is counted under, if any.
    fn counter(self, stats: &Stats) -> Option<(&AtomicU64, &'static str)> {
        match self {
            Form::Axfr => Some((&stats.axfr, "axfr")),
            Form::Ixfr(IxfrForm::Incremental) => Some((&stats.ixfr_incremental, "ixfr")),
            Form::Ixfr(IxfrForm::Full) => Some((&stats.ixfr_full, "ixfr_full")),
            Form::Ixfr(IxfrForm::UpToDate) => None,
        }
    }
}

/// What a transfer request gets: (form, serial, body), or the RCODE of
/// the refusal.
async fn contents(
    cx: &Context,
    request: &Request,
    zone: Arc<ZoneHandle>,
    key: Option<&Name>,
    qtype: RecordType,
) -> Result<(Form, u32, Body), ResponseCode> {
    let src = request.src();
    let snapshot = zone.snapshot();
    if !snapshot.spec.transfer.allows(key, src.ip()) {
        tracing::warn!(zone = %zone.origin, source = %src, key = %key.map(|k| k.to_string()).unwrap_or_default(), %qtype, "transfer refused: not in the zone's transfer keys or networks");
        return Err(ResponseCode::Refused);
    }
    let udp = request.protocol() == Protocol::Udp;
    if qtype == RecordType::AXFR {
        // RFC 5936 §4.2: AXFR is a TCP affair.
        if udp {
            return Err(ResponseCode::FormErr);
        }
        return Ok((Form::Axfr, snapshot.serial, xfr::axfr(snapshot)));
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
    let journal = if serial::at_least(client, snapshot.serial) {
        None
    } else {
        let to = snapshot.serial;
        let origin = zone.origin.clone();
        match tokio::task::spawn_blocking(move || zone.journal_between(client, to)).await {
            Ok(Ok(j)) => j,
            Ok(Err(e)) => {
                tracing::error!(zone = %origin, error = %e, "cannot read the journal; sending the whole zone");
                None
            }
            Err(_) => None,
        }
    };
    let (form, mut records) = xfr::ixfr(&snapshot, client, journal);
    // RFC 1995 §2: over UDP, an answer that does not fit is just our SOA.
    if udp
        && form != IxfrForm::UpToDate
        && !records.fits(response::size_limit(request, cx.edns_udp_size))
    {
        records = Body::records(vec![snapshot.soa_record()]);
    }
    Ok((Form::Ixfr(form), snapshot.serial, records))
}

/// Send the transfer `request` asks for.
pub async fn handle<R: ResponseHandler>(
    cx: &Context,
    request: &Request,
    mut handle: R,
    zone: Arc<ZoneHandle>,
    qtype: RecordType,
    mut signer: Option<SignContext>,
) -> ResponseInfo {
    let src = request.src();
    let origin = zone.origin.clone();
    let key = signer.as_ref().map(|s| s.key.name.clone());
    let (form, serial, records) = match contents(cx, request, zone, key.as_ref(), qtype).await {
        Ok(c) => c,
        Err(rcode) => {
            // The one REFUSED here is the zone's transfer ACL.
            let ede = (rcode == ResponseCode::Refused).then_some(Ede::Prohibited);
            let reply = Reply::new(request, rcode).with_ede(ede);
            return cx
                .send(request, handle, reply, Signing::with(signer.as_ref()))
                .await;
        }
    };
    // At most `transfers-max` at once; a secondary refused here retries
    // at its SOA retry interval.
    let Ok(_slot) = cx.transfer_slots.clone().try_acquire_owned() else {
        tracing::warn!(zone = %origin, source = %src, "transfer refused: transfers-max transfers already running");
        let reply = Reply::new(request, ResponseCode::Refused);
        return cx
            .send(request, handle, reply, Signing::with(signer.as_ref()))
            .await;
    };
    cx.metrics.queries.inc(Some(qtype), ResponseCode::NoError);
    if let Some((c, label)) = form.counter(&cx.stats) {
        c.fetch_add(1, Ordering::Relaxed);
        cx.metrics.transfers.inc(&[label]);
    }
    let edns = response::response_edns(request, cx.edns_udp_size);
    let no_question =
        Queries::read(&mut BinDecoder::new(&[]), 0).expect("zero questions always parse");
    let mut info = None;
    let mut count = 0;
    for (i, chunk) in records.messages().enumerate() {
        count += chunk.len();
        let mut reply = Reply::new(request, ResponseCode::NoError);
        reply.metadata.authoritative = true;
        reply.answers = chunk;
        // The question goes in the first message only (RFC 5936 §2.2.1).
        let queries = if i == 0 {
            &request.queries
        } else {
            &no_question
        };
        let now = cx.clock.now();
        let signature = signer.as_mut().map(|ctx| {
            let bytes = response::encode(queries, &reply, edns.as_ref());
            if i == 0 {
                ctx.sign_response(&bytes, now)
            } else {
                ctx.sign_next(&bytes, now)
            }
        });
        match response::send_message(&mut handle, queries, &reply, edns.as_ref(), signature).await {
            Ok(sent) => info = Some(sent),
            Err(error) => {
                tracing::warn!(zone = %origin, source = %src, %error, "transfer aborted while sending");
                break;
            }
        }
    }
    tracing::info!(zone = %origin, source = %src, form = form.describe(), serial, records = count, "zone transfer sent");
    info.unwrap_or_else(|| {
        ResponseInfo::from(Header {
            metadata: Metadata::response_from_request(&request.metadata),
            counts: HeaderCounts::default(),
        })
    })
}
