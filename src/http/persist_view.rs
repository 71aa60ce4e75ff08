//! The dns-persist-01 records a zone serves (`_validation-persist` TXT,
//! `persist`), as `GET /api/v1/zones/{zone}/persist`, a table on the
//! status page and the `zonewarden_persist_until_seconds` gauge: each
//! record's CA, account and persistUntil, and a warning when it lapses
//! within [`WARN_DAYS`] (a record past its persistUntil no longer lets the
//! CA validate; the admin renews or removes it).
//!
//! Read from the published snapshot, walking its names (small zones: a
//! view, not the query path).

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;

use super::api::{blocking, zone_of};
use super::{ApiError, State as HttpState};
use crate::persist;
use crate::zone::ZoneData;
use hickory_proto::rr::{RData, RecordType};

/// A record whose persistUntil is this close is flagged.
pub const WARN_DAYS: u64 = 30;

/// One `_validation-persist` TXT record.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PersistRecordView {
    /// Its owner name.
    pub name: String,
    /// The CA's issuer domain name (None when the value is not valid).
    pub issuer: Option<String>,
    pub account_uri: Option<String>,
    /// `policy=wildcard`.
    pub wildcard: bool,
    /// Unix seconds.
    pub persist_until: Option<u64>,
    /// Seconds until persistUntil (negative: past).
    pub seconds_left: Option<i64>,
    /// `ok`, `lapsing` (persistUntil within 30 days), `lapsed` (past) or
    /// `invalid` (not a dns-persist-01 value: the zone does not validate).
    pub status: &'static str,
    /// True for `lapsing`, `lapsed` and `invalid`: someone should look.
    pub warning: bool,
    /// What is wrong with an invalid value.
    pub problem: Option<String>,
}

/// `GET /api/v1/zones/{zone}/persist`.
#[derive(Debug, Serialize)]
pub struct PersistView {
    pub zone: String,
    pub warn_days: u64,
    pub records: Vec<PersistRecordView>,
}

/// Every `_validation-persist` TXT record of `zone`, by name, judged at
/// `now` (Unix seconds).
pub fn persist_records(zone: &ZoneData, now: u64) -> Vec<PersistRecordView> {
    let mut out = Vec::new();
    for name in zone.names() {
        if !name.iter().next().is_some_and(persist::is_persist_label) {
            continue;
        }
        for r in zone.records(&name, RecordType::TXT) {
            let RData::TXT(txt) = &r.data else { continue };
            let view = match persist::parse(&persist::join(&txt.txt_data)) {
                Ok(v) => {
                    let left = v.seconds_left(now);
                    let status = match left {
                        Some(s) if s <= 0 => "lapsed",
                        Some(s) if s < (WARN_DAYS * 86_400) as i64 => "lapsing",
                        _ => "ok",
                    };
                    PersistRecordView {
                        name: name.to_string(),
                        issuer: Some(v.issuer),
                        account_uri: Some(v.account_uri),
                        wildcard: v.wildcard,
                        persist_until: v.persist_until,
                        seconds_left: left,
                        status,
                        warning: status != "ok",
                        problem: None,
                    }
                }
                Err(e) => PersistRecordView {
                    name: name.to_string(),
                    issuer: None,
                    account_uri: None,
                    wildcard: false,
                    persist_until: None,
                    seconds_left: None,
                    status: "invalid",
                    warning: true,
                    problem: Some(e.to_string()),
                },
            };
            out.push(view);
        }
    }
    out
}

pub(crate) async fn list(
    State(s): State<HttpState>,
    Path(name): Path<String>,
) -> Result<Json<PersistView>, ApiError> {
    let z = zone_of(&s.app, &name)?.clone();
    let now = s.app.clock.now();
    blocking(move || PersistView {
        zone: z.origin.to_string(),
        warn_days: WARN_DAYS,
        records: persist_records(&z.snapshot(), now),
    })
    .await
    .map(Json)
}
