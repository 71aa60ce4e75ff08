//! The read-only operations views, as JSON (`/api/v1/...`), Prometheus
//! text (`/metrics`) and readiness (`/readyz`). The status page (`page`)
//! renders the same view types as HTML.
//!
//! Every view is built from what the DNS side serves (zone snapshots, the
//! propagation state, the policy in force) plus the audit rows in SQLite;
//! nothing here changes state. No view holds a secret: key names, never
//! key material; the bearer token never leaves `access`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use hickory_proto::rr::{Name, RecordType};
use serde::{Deserialize, Serialize};

use super::Context;
use super::{ApiError, State as HttpState};
use crate::acl::PolicyState;
use crate::metrics;
use crate::server::LastRefusal;
use crate::store::AuditRow;
use crate::writer::{ZoneHandle, signature_horizon};
use crate::zone::is_dnssec_type;

/// The most audit rows one request returns.
pub const AUDIT_MAX: usize = 1000;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DnssecView {
    pub enabled: bool,
    pub algorithm: Option<String>,
    pub key_tag: Option<u16>,
    /// The earliest RRSIG expiration in the zone (Unix seconds).
    pub signature_expiry: Option<u64>,
    /// Seconds from now to that expiry (negative once expired).
    pub signature_horizon_seconds: Option<i64>,
    /// Signatures with less than this left are re-signed (hourly check).
    pub refresh_before_seconds: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ZoneSummary {
    pub zone: String,
    pub serial: u32,
    /// RRs in the zone apart from the SOA and the DNSSEC records (what the
    /// zone's limits count).
    pub records: usize,
    pub dnssec: DnssecView,
    pub secondaries: usize,
    /// Secondaries known to serve the current serial.
    pub secondaries_in_sync: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordView {
    pub name: String,
    pub ttl: u32,
    #[serde(rename = "type")]
    pub rtype: String,
    pub data: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ZoneDetail {
    #[serde(flatten)]
    pub summary: ZoneSummary,
    /// The DS record for the parent (presentation format), when signed.
    pub ds: Option<String>,
    pub dnskey: Option<String>,
    /// Every record but the DNSSEC ones the signer makes.
    pub data: Vec<RecordView>,
    /// How many RRSIG, NSEC, DNSKEY, CDS, CDNSKEY records are served too.
    pub dnssec_records: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NameserverView {
    pub name: String,
    pub role: String,
    pub address: String,
    /// The serial it served when last asked (None: never answered).
    pub serial: Option<u32>,
    /// Changes it lacks.
    pub lag: Option<u32>,
    pub seconds_behind: Option<u64>,
    pub in_sync: bool,
    /// The newest serial it acknowledged a NOTIFY for.
    pub notified: Option<u32>,
    pub checked_at: Option<u64>,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PropagationView {
    pub zone: String,
    pub serial: u32,
    /// Every nameserver serves the current serial.
    pub in_sync: bool,
    pub nameservers: Vec<NameserverView>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChangeView {
    pub time: u64,
    pub zone: String,
    pub action: String,
    pub source: Option<String>,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefusalView {
    pub time: u64,
    pub zone: String,
    /// The refusal reason, as in `zonewarden_updates_refused_total`.
    pub reason: String,
    pub rcode: String,
    pub source: String,
    pub owner: Option<String>,
    #[serde(rename = "type")]
    pub rtype: Option<String>,
    pub detail: String,
}

impl From<&LastRefusal> for RefusalView {
    fn from(r: &LastRefusal) -> Self {
        Self {
            time: r.time,
            zone: r.zone.to_string(),
            reason: r.reason.as_str().into(),
            rcode: crate::metrics::rcode_name(r.rcode),
            source: r.source.to_string(),
            owner: r.owner.as_ref().map(|o| o.to_string()),
            rtype: r.rtype.map(|t| t.to_string()),
            detail: r.detail.clone(),
        }
    }
}

/// The machine an audit row is for: its machine column, or for rows older
/// than that column the machine whose ACL names its key now.
fn row_machine(row: &AuditRow, policy: &PolicyState) -> Option<String> {
    row.machine.clone().or_else(|| {
        let key = Name::from_ascii(row.key.as_deref()?).ok()?;
        policy.policy.machine_for_key(&key).map(|m| m.name.clone())
    })
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MachineView {
    pub name: String,
    pub key: String,
    pub role: String,
    /// The ACL file.
    pub file: String,
    /// Zones it may change (None: every served zone).
    pub zones: Option<Vec<String>>,
    /// Source networks (empty: any).
    pub networks: Vec<String>,
    /// Grants, BIND-like: `_acme-challenge.mx1 TXT(2)`.
    pub grants: Vec<String>,
    pub last_change: Option<ChangeView>,
    pub last_refusal: Option<RefusalView>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReloadView {
    /// The last reload attempt succeeded (the files in force are the files on disk).
    pub ok: bool,
    pub last_ok: Option<u64>,
    pub last_error_time: Option<u64>,
    /// Every error of the failed reload, one per line with path:line:column.
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MachinesView {
    pub reload: ReloadView,
    pub machines: Vec<MachineView>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditEntry {
    pub time: u64,
    pub zone: String,
    pub key: Option<String>,
    /// The machine it was made by or for (for rows older than the machine
    /// column: the machine whose ACL names the key now, if one does).
    pub machine: Option<String>,
    pub source: Option<String>,
    pub action: String,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditView {
    pub entries: Vec<AuditEntry>,
}

fn dnssec_view(z: &ZoneHandle, now: u64) -> DnssecView {
    let snap = z.snapshot();
    match &z.signer {
        None => DnssecView {
            enabled: false,
            algorithm: None,
            key_tag: None,
            signature_expiry: None,
            signature_horizon_seconds: None,
            refresh_before_seconds: None,
        },
        Some(s) => {
            let exp = signature_horizon(&snap);
            DnssecView {
                enabled: true,
                algorithm: Some(s.settings.algorithm.config_name().into()),
                key_tag: s.key().map(|k| k.key_tag()),
                signature_expiry: exp,
                signature_horizon_seconds: exp.map(|e| e as i64 - now as i64),
                refresh_before_seconds: Some(s.settings.refresh_before),
            }
        }
    }
}

pub fn zone_summary(app: &Context, z: &ZoneHandle) -> ZoneSummary {
    let now = app.clock.now();
    let snap = z.snapshot();
    let statuses = z.propagation.statuses();
    let in_sync = statuses
        .iter()
        .filter(|s| {
            s.serial
                .is_some_and(|have| crate::serial::at_least(have, snap.serial))
        })
        .count();
    ZoneSummary {
        zone: z.origin.to_string(),
        serial: snap.serial,
        records: snap.record_count(),
        dnssec: dnssec_view(z, now),
        secondaries: statuses.len(),
        secondaries_in_sync: in_sync,
    }
}

pub fn zone_detail(app: &Context, z: &ZoneHandle) -> ZoneDetail {
    let snap = z.snapshot();
    let mut data = Vec::new();
    let mut dnssec_records = 0;
    for r in snap.all_records() {
        if is_dnssec_type(r.record_type()) {
            dnssec_records += 1;
            continue;
        }
        data.push(RecordView {
            name: r.name.to_string(),
            ttl: r.ttl,
            rtype: r.record_type().to_string(),
            data: r.data.to_string(),
        });
    }
    let (ds, dnskey) = match &z.signer {
        Some(s) => match s.key() {
            Some(k) => {
                let (ds, dnskey) = k.parent_records(s.settings.dnskey_ttl);
                (Some(ds.to_string()), Some(dnskey.to_string()))
            }
            None => (None, None),
        },
        None => (None, None),
    };
    ZoneDetail {
        summary: zone_summary(app, z),
        ds,
        dnskey,
        data,
        dnssec_records,
    }
}

pub fn propagation(app: &Context, z: &ZoneHandle) -> PropagationView {
    let now = app.clock.now();
    let serial = z.snapshot().serial;
    let mut nameservers = vec![NameserverView {
        name: "zonewarden".into(),
        role: "primary".into(),
        address: app
            .config
            .listen
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(" "),
        serial: Some(serial),
        lag: Some(0),
        seconds_behind: Some(0),
        in_sync: true,
        notified: None,
        checked_at: Some(now),
        last_error: None,
    }];
    for s in z.propagation.statuses() {
        let lag = s.serial.map(|have| z.propagation.lag(have, now));
        nameservers.push(NameserverView {
            name: s.label.clone(),
            role: "secondary".into(),
            address: s.address.to_string(),
            serial: s.serial,
            lag: lag.map(|l| l.serials),
            seconds_behind: lag.map(|l| l.seconds),
            in_sync: lag.is_some_and(|l| l.serials == 0),
            notified: s.notified,
            checked_at: s.checked_at,
            last_error: s.last_error.clone(),
        });
    }
    PropagationView {
        zone: z.origin.to_string(),
        serial,
        in_sync: nameservers.iter().all(|n| n.in_sync),
        nameservers,
    }
}

/// Blocking (reads the audit table).
pub fn machines(app: &Context) -> MachinesView {
    let status = app.reload_status();
    let policy = app.policy();
    let refusals = app.last_refusals();
    let changes = app.last_changes().unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot read the audit table");
        Vec::new()
    });
    let mut by_machine: HashMap<String, (u64, ChangeView)> = HashMap::new();
    for row in changes {
        let Some(machine) = row_machine(&row, &policy) else {
            continue;
        };
        let newer = by_machine.get(&machine).is_none_or(|(t, _)| row.time >= *t);
        if newer {
            let view = ChangeView {
                time: row.time,
                zone: row.zone,
                action: row.action.as_str().into(),
                source: row.source,
                detail: row.detail,
            };
            by_machine.insert(machine, (view.time, view));
        }
    }
    let machines = policy
        .policy
        .machines()
        .iter()
        .map(|m| {
            let key = m.key.to_string();
            MachineView {
                name: m.name.clone(),
                role: match m.role {
                    crate::acl::Role::Admin => "admin",
                    crate::acl::Role::Machine => "machine",
                }
                .into(),
                file: m.path.display().to_string(),
                zones: m
                    .zones
                    .as_ref()
                    .map(|z| z.iter().map(|n| n.to_string()).collect()),
                networks: m.networks.iter().map(|n| n.to_string()).collect(),
                grants: m.grants.iter().map(|g| g.describe()).collect(),
                last_change: by_machine.get(&m.name).map(|(_, v)| v.clone()),
                last_refusal: refusals.get(&m.name).map(RefusalView::from),
                key,
            }
        })
        .collect();
    MachinesView {
        reload: ReloadView {
            ok: status.last_error.is_none(),
            last_ok: status.last_ok,
            last_error_time: status.last_error.as_ref().map(|(t, _)| *t),
            last_error: status.last_error.map(|(_, e)| e),
        },
        machines,
    }
}

/// Query of `/api/v1/audit`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    pub zone: Option<String>,
    pub machine: Option<String>,
    /// Unix seconds: rows at or after (empty: no bound).
    pub since: Option<String>,
    /// At most this many rows (default 100, at most 1000; empty: default).
    pub limit: Option<String>,
}

/// A whole number from a query parameter; empty means absent.
fn number<T: std::str::FromStr>(name: &str, v: Option<&str>) -> Result<Option<T>, ApiError> {
    match v.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("{name}={v:?}: want a whole number"),
            )
        }),
    }
}

/// Blocking (SQLite).
pub(crate) fn audit(app: &Context, q: &AuditQuery) -> Result<AuditView, ApiError> {
    let zone = match q.zone.as_deref().filter(|z| !z.is_empty()) {
        None => None,
        Some(z) => Some(zone_of(app, z)?.origin.clone()),
    };
    let policy = app.policy();
    // Rows name their machine; rows older than that column name only the
    // key, so the key the machine's ACL names now matches those.
    let machine = q.machine.as_deref().filter(|m| !m.is_empty());
    let keys: Vec<String> = machine
        .and_then(|m| policy.policy.machines().iter().find(|x| x.name == m))
        .map(|m| vec![m.key.to_ascii()])
        .unwrap_or_default();
    let limit = number::<usize>("limit", q.limit.as_deref())?
        .unwrap_or(100)
        .clamp(1, AUDIT_MAX);
    // Past i64::MAX (SQLite's integers) nothing can match anyway.
    let since = number::<u64>("since", q.since.as_deref())?.map(|t| t.min(i64::MAX as u64));
    let rows = app
        .zones
        .audit_query(
            zone.as_ref(),
            machine.map(|m| (m, keys.as_slice())),
            since,
            limit,
        )
        .map_err(|e| {
            tracing::error!(error = %e, "cannot read the audit table");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot read the audit log",
            )
        })?;
    let entries = rows
        .into_iter()
        .map(|row| AuditEntry {
            machine: row_machine(&row, &policy),
            time: row.time,
            zone: row.zone,
            key: row.key,
            source: row.source,
            action: row.action.as_str().into(),
            detail: row.detail,
        })
        .collect();
    Ok(AuditView { entries })
}

/// The served zone named in a path, with or without the final dot.
pub(crate) fn zone_of<'a>(app: &'a Context, text: &str) -> Result<&'a Arc<ZoneHandle>, ApiError> {
    crate::zone::absolute_name(text)
        .ok()
        .and_then(|n| app.zone_exact(&n))
        .ok_or_else(|| {
            let fqdn = text.trim_end_matches('.');
            ApiError::new(StatusCode::NOT_FOUND, format!("zone {fqdn}. is not served"))
        })
}

/// Run blocking view code off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "view task failed"))
}

pub(crate) async fn zones(State(s): State<HttpState>) -> Json<Vec<ZoneSummary>> {
    Json(
        s.app
            .zones()
            .iter()
            .map(|z| zone_summary(&s.app, z))
            .collect(),
    )
}

pub(crate) async fn zone(
    State(s): State<HttpState>,
    Path(name): Path<String>,
) -> Result<Json<ZoneDetail>, ApiError> {
    let z = zone_of(&s.app, &name)?;
    Ok(Json(zone_detail(&s.app, z)))
}

pub(crate) async fn zone_propagation(
    State(s): State<HttpState>,
    Path(name): Path<String>,
) -> Result<Json<PropagationView>, ApiError> {
    let z = zone_of(&s.app, &name)?;
    Ok(Json(propagation(&s.app, z)))
}

pub(crate) async fn machines_list(
    State(s): State<HttpState>,
) -> Result<Json<MachinesView>, ApiError> {
    let app = s.app.clone();
    Ok(Json(blocking(move || machines(&app)).await?))
}

pub(crate) async fn audit_list(
    State(s): State<HttpState>,
    q: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AuditView>, ApiError> {
    let Query(q) = q.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "{}: use zone=, machine=, since= (Unix seconds), limit=",
                e.body_text()
            ),
        )
    })?;
    let app = s.app.clone();
    Ok(Json(blocking(move || audit(&app, &q)).await??))
}

#[derive(Serialize)]
struct Ready {
    ready: bool,
    checks: Vec<super::Check>,
}

pub(crate) async fn readyz(State(s): State<HttpState>) -> Result<Response, ApiError> {
    let app = s.app.clone();
    let checks = blocking(move || app.readiness()).await?;
    let ready = checks.iter().all(|c| c.ok);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok((status, Json(Ready { ready, checks })).into_response())
}

/// The whole exposition: counters, then the state gauges.
pub fn render_metrics(app: &Context) -> Result<String, std::fmt::Error> {
    let now = app.clock.now();
    let mut registry = app.metrics.registry();
    let r = &mut registry;
    let status = app.reload_status();
    metrics::register_gauge(
        r,
        "zonewarden_acl_reload_failing",
        "1 when the last ACL/key reload failed (the previous policy is in force)",
        if status.last_error.is_some() {
            1.0
        } else {
            0.0
        },
    );
    if let Some(store) = &app.https_cert {
        metrics::register_gauge(
            r,
            "zonewarden_https_certificate_failing",
            "1 when the last load or ACME order of the HTTPS certificate failed (the one in force, if any, stays)",
            if store.last_error().is_some() {
                1.0
            } else {
                0.0
            },
        );
        if let Some(info) = store.info() {
            metrics::register_gauge(
                r,
                "zonewarden_https_certificate_expiry_seconds",
                "Seconds until the HTTPS certificate in force expires (negative: expired)",
                (info.not_after - now as i64) as f64,
            );
        }
    }
    let machines = app.policy().policy.machines().len();
    metrics::register_gauge(
        r,
        "zonewarden_machines",
        "Machines in the policy in force",
        machines as f64,
    );
    let mut serials = Vec::new();
    let mut records = Vec::new();
    let mut horizons = Vec::new();
    let mut sec_serial = Vec::new();
    let mut sec_lag = Vec::new();
    let mut sec_behind = Vec::new();
    let mut sec_error = Vec::new();
    let mut key_states = Vec::new();
    let mut key_next = Vec::new();
    let mut key_action = Vec::new();
    let mut persist_until = Vec::new();
    for z in app.zones().iter() {
        let name = z.origin.to_string();
        let zone = || vec![("zone", name.clone())];
        let snap = z.snapshot();
        serials.push((zone(), f64::from(snap.serial)));
        // Valid records only: the issuer is then a checked domain name.
        for r in super::persist_view::persist_records(&snap, now) {
            if let (Some(left), Some(issuer)) = (r.seconds_left, r.issuer) {
                let labels = vec![("zone", name.clone()), ("name", r.name), ("issuer", issuer)];
                persist_until.push((labels, left as f64));
            }
        }
        records.push((zone(), snap.record_count() as f64));
        if z.signer.is_some() {
            let h = signature_horizon(&snap).map_or(f64::NAN, |e| e as f64 - now as f64);
            horizons.push((zone(), h));
        }
        if let Some(st) = z.key_status() {
            let mut action = false;
            // Removed keys stay on record for good; their series would
            // only grow with every rollover.
            for (k, _, out) in st
                .keys
                .into_iter()
                .filter(|(k, _, _)| k.state != crate::zone::keys::KeyState::Removed)
            {
                let labels = |extra: Vec<(&'static str, String)>| {
                    let mut l = vec![("zone", name.clone()), ("tag", k.tag.to_string())];
                    l.extend(extra);
                    l
                };
                for s in crate::zone::keys::KeyState::ALL {
                    let v = if s == k.state { 1.0 } else { 0.0 };
                    key_states.push((labels(vec![("state", s.as_str().to_string())]), v));
                }
                if let Some(at) = out.at {
                    key_next.push((labels(Vec::new()), at as f64 - now as f64));
                }
                action |= out.action.is_some();
            }
            key_action.push((zone(), if action { 1.0 } else { 0.0 }));
        }
        for s in z.propagation.statuses() {
            let labels = vec![("zone", name.clone()), ("secondary", s.label.clone())];
            sec_error.push((
                labels.clone(),
                if s.last_error.is_some() { 1.0 } else { 0.0 },
            ));
            if let Some(have) = s.serial {
                let lag = z.propagation.lag(have, now);
                sec_serial.push((labels.clone(), f64::from(have)));
                sec_lag.push((labels.clone(), f64::from(lag.serials)));
                sec_behind.push((labels, lag.seconds as f64));
            }
        }
    }
    metrics::register_gauges(
        r,
        "zonewarden_zone_serial",
        "The SOA serial served",
        serials,
    );
    metrics::register_gauges(
        r,
        "zonewarden_zone_records",
        "Records in the zone apart from the SOA and DNSSEC records (what the limits count)",
        records,
    );
    metrics::register_gauges(
        r,
        "zonewarden_signature_expiry_horizon_seconds",
        "Seconds until the earliest RRSIG in the zone expires (negative: expired)",
        horizons,
    );
    metrics::register_gauges(
        r,
        "zonewarden_dnssec_key_state",
        "1 for the state each DNSSEC key is in (RFC 7583: published, ready, active, retired, removed)",
        key_states,
    );
    metrics::register_gauges(
        r,
        "zonewarden_dnssec_key_next_step_seconds",
        "Seconds until the timings allow a key's next rollover step (negative: it waits for something else, see `zonewarden dnssec status`)",
        key_next,
    );
    metrics::register_gauges(
        r,
        "zonewarden_dnssec_action_needed",
        "1 while an admin must act for the zone's keys (a DS to put at the parent)",
        key_action,
    );
    metrics::register_gauges(
        r,
        "zonewarden_persist_until_seconds",
        "Seconds until a dns-persist-01 record's persistUntil (negative: past; absent when it has none)",
        persist_until,
    );
    metrics::register_gauges(
        r,
        "zonewarden_secondary_serial",
        "The serial each secondary served when last asked (absent until it answers)",
        sec_serial,
    );
    metrics::register_gauges(
        r,
        "zonewarden_secondary_serial_lag",
        "Changes a secondary lacks (RFC 1982 difference to the primary's serial)",
        sec_lag,
    );
    metrics::register_gauges(
        r,
        "zonewarden_secondary_seconds_behind",
        "Seconds since the oldest change a secondary lacks was made (0 when in sync)",
        sec_behind,
    );
    metrics::register_gauges(
        r,
        "zonewarden_secondary_error",
        "1 while the last NOTIFY or SOA query to a secondary failed",
        sec_error,
    );
    metrics::encode(&registry)
}

pub(crate) async fn metrics(State(s): State<HttpState>) -> Result<Response, ApiError> {
    let text = render_metrics(&s.app).map_err(|_| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the metrics could not be encoded",
        )
    })?;
    Ok(([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response())
}

/// Record types as labels: known names, "other" for the rest (bounded).
pub fn type_label(t: RecordType) -> String {
    match t {
        RecordType::Unknown(_) => "other".into(),
        t => t.to_string(),
    }
}
