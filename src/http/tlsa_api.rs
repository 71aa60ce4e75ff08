//! `POST /api/v1/tlsa`: publish the TLSA records of a newly issued
//! certificate for one host and its ports, authenticated with the
//! machine's TSIG key, within the machine's ACL, with the rollover of
//! `writer::Draft::Tlsa` (old records retired once every nameserver has the new ones
//! and two TTLs have passed).
//!
//! Request body (JSON):
//!
//! ```json
//! { "host": "mx1", "ports": [25, 465, 587], "certificate": "-----BEGIN CERTIFICATE-----...",
//!   "zone": "_acme.example.org.", "proto": "tcp", "next_key": "-----BEGIN PUBLIC KEY-----...",
//!   "usage": 3, "selector": 1, "matching": 1, "ttl": 300 }
//! ```
//!
//! Only `host`, `ports` and `certificate` are required. Answers 201 with
//! what was added and what will retire, or 200 when the records are already
//! there (a reused key: nothing changes, the serial does not move).

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hickory_proto::rr::rdata::TLSA;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use serde::{Deserialize, Serialize};

use super::{ApiError, State};
use crate::dane::{DaneError, NextKey, TlsaParams, tlsa_for_next, tlsa_from_pem};
use crate::metrics::RefusalReason;
use crate::server::{Refused, WriteLog, admit};
use crate::update::Requester;
use crate::writer::{Draft, TlsaSet, WriteError};

pub const PATH: &str = "/api/v1/tlsa";

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PublishRequest {
    pub host: String,
    pub ports: Vec<u16>,
    pub certificate: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proto: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matching: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u32>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct PublishedSet {
    pub owner: String,
    pub added: Vec<String>,
    pub retiring: Vec<String>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct PublishResponse {
    pub changed: bool,
    /// The zone serial that carries the new records (none when unchanged).
    pub serial: Option<u32>,
    pub records: Vec<String>,
    pub sets: Vec<PublishedSet>,
    pub retire_after: String,
}

fn text(d: &RData) -> String {
    d.to_string()
}

fn dane_status(e: &DaneError) -> StatusCode {
    match e {
        DaneError::Expired { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::BAD_REQUEST,
    }
}

pub(super) async fn publish(
    AxState(state): AxState<State>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    // A body over the limit (`DefaultBodyLimit`, 413) or one that cannot be
    // read: the JSON error every answer of the API promises, not axum's
    // text/plain rejection.
    let body = body.map_err(|r| ApiError::new(r.status(), r.body_text()))?;
    let app = &state.app;
    let now = app.clock.now();
    let policy = app.policy();
    let header = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let key = state
        .auth
        .verify(header, &policy.keys, "POST", PATH, &body, now)
        .map_err(|e| {
            tracing::warn!(source = %peer, reason = %e, "HTTP request not authenticated");
            ApiError::new(StatusCode::UNAUTHORIZED, e.to_string())
        })?;
    // The same gate as a DNS UPDATE, and the same refusal accounting.
    let mut log = WriteLog::new(None, Some(key.name.clone()), peer, &[]);
    let forbidden = |log: &WriteLog, refused: Refused| {
        app.refusals
            .record(&app.metrics, log, &refused, app.clock.now());
        ApiError::new(StatusCode::FORBIDDEN, refused.detail)
    };
    let machine = match admit(&policy, &key.name, peer.ip(), &mut log) {
        Ok(m) => m,
        Err(mut refused) => {
            refused.detail = match refused.reason {
                RefusalReason::Network => format!(
                    "{} is not in the networks of {}",
                    peer.ip(),
                    log.machine_label()
                ),
                _ => format!("no ACL names the key {}", key.name),
            };
            return Err(forbidden(&log, refused));
        }
    };
    let req: PublishRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("bad JSON: {e}")))?;
    if req.ports.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "ports: at least one",
        ));
    }
    // `_0._tcp` names no service: port 0 is reserved (RFC 6335 §6) and
    // nothing listens on it, so a TLSA record there is a mistake.
    if req.ports.contains(&0) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "ports: 0 is not a port a service listens on (1-65535)",
        ));
    }
    let zone = match &req.zone {
        Some(z) => {
            let n = crate::zone::absolute_name(z)
                .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("zone {z:?}: {e}")))?;
            app.zone_exact(&n).ok_or_else(|| {
                ApiError::new(StatusCode::NOT_FOUND, format!("zone {n} is not served"))
            })?
        }
        None => {
            let mine: Vec<_> = app
                .zones()
                .iter()
                .filter(|z| machine.zone_allowed(&z.origin))
                .collect();
            match mine.as_slice() {
                [one] => *one,
                _ => {
                    return Err(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "several zones: say which with \"zone\"",
                    ));
                }
            }
        }
    }
    .clone();
    let proto = req.proto.clone().unwrap_or_else(|| "tcp".into());
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("proto {proto:?}: tcp, udp or sctp"),
        ));
    }
    let host = Name::parse(&req.host, Some(&zone.origin))
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("host {:?}: {e}", req.host)))?;
    let params = TlsaParams::new(
        req.usage.unwrap_or(3),
        req.selector.unwrap_or(1),
        req.matching.unwrap_or(1),
    )
    .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    let mut owners = Vec::new();
    for port in &req.ports {
        let owner = Name::from_ascii(format!("_{port}._{proto}"))
            .and_then(|n| n.append_name(&host))
            .map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("name for port {port}: {e}"),
                )
            })?;
        if !zone.origin.zone_of(&owner) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("{owner} is not in the zone {}", zone.origin),
            ));
        }
        owners.push(owner);
    }
    // The machine's ACL must grant TLSA at every owner: refused here,
    // before any certificate work, by the same decision the writer makes.
    let requester = Requester {
        machine: &machine,
        key: &key.name,
        source: peer.ip(),
    };
    let touched: Vec<Record> = owners
        .iter()
        .map(|o| Record::update0(o.clone(), 0, RecordType::TLSA))
        .collect();
    if let Err(r) = crate::update::check_permissions(&zone.snapshot(), &touched, &requester) {
        log.zone = Some(zone.origin.clone());
        return Err(forbidden(&log, Refused::from(r)));
    }
    let wanted: TLSA = tlsa_from_pem(req.certificate.as_bytes(), params, now as i64)
        .map_err(|e| ApiError::new(dane_status(&e), e.to_string()))?;
    let keep = match &req.next_key {
        None => Vec::new(),
        Some(pem) => {
            let next = NextKey::from_bytes(pem.as_bytes())
                .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("next_key: {e}")))?;
            vec![RData::TLSA(tlsa_for_next(&next, params).map_err(|e| {
                ApiError::new(StatusCode::BAD_REQUEST, format!("next_key: {e}"))
            })?)]
        }
    };
    let sets: Vec<TlsaSet> = owners
        .into_iter()
        .map(|owner| TlsaSet {
            owner,
            wanted: vec![RData::TLSA(wanted.clone())],
            keep: keep.clone(),
        })
        .collect();
    let spec = zone.snapshot().spec.clone();
    let ttl = spec.ttl.clamp(req.ttl.unwrap_or(spec.ttl.tlsa));
    log.zone = Some(zone.origin.clone());
    let (zone2, key_name, source, sets2) =
        (zone.clone(), key.name.clone(), peer.ip(), sets.clone());
    let result = tokio::task::spawn_blocking(move || {
        zone2.write(Draft::Tlsa {
            sets: &sets2,
            ttl,
            by: Requester {
                machine: &machine,
                key: &key_name,
                source,
            },
        })
    })
    .await
    .map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("task failed: {e}"),
        )
    })?;
    let (serial, results) = match result {
        Ok(w) => (w.serial, w.tlsa),
        Err(WriteError::Refused(r)) => return Err(forbidden(&log, Refused::from(r))),
        Err(e @ (WriteError::Store(_) | WriteError::Key(_) | WriteError::Aborted)) => {
            tracing::error!(error = %e, "TLSA publication not committed");
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the database failed; nothing changed",
            ));
        }
    };
    if let Some(serial) = serial {
        tracing::info!(zone = %zone.origin, machine = %log.machine_label(), source = %peer.ip(), serial, "TLSA published; old records retire after propagation + 2 TTL");
    }
    let changed = serial.is_some();
    let body = PublishResponse {
        changed,
        serial,
        records: sets
            .iter()
            .map(|s| format!("{} {ttl} IN TLSA {}", s.owner, text(&s.wanted[0])))
            .collect(),
        sets: results
            .into_iter()
            .map(|r| PublishedSet {
                owner: r.owner.to_string(),
                added: r.added.iter().map(text).collect(),
                retiring: r.retiring.iter().map(text).collect(),
            })
            .collect(),
        retire_after: "every nameserver serves the new records, then 2 x TTL".into(),
    };
    let status = if changed {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(body)).into_response())
}
