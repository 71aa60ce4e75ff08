//! The DNSSEC keys of a zone and their rollover (issue 13):
//! `GET /api/v1/zones/{zone}/dnssec` shows each key, where it is in its
//! life, its next step, what it waits for and what an admin must do
//! (`zonewarden dnssec status` prints it); `POST
//! /api/v1/zones/{zone}/dnssec/roll` asks for a rollover
//! (`zonewarden dnssec roll`), from the machine itself only: a direct
//! request from a loopback address, whatever the read token says.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};

use super::api::{blocking, zone_of};
use super::{ApiError, State as HttpState};
use crate::writer::{KeyStatus, ZoneHandle};
use crate::zone::keys::KeyRecord;

/// One key.
#[derive(Debug, Serialize, Deserialize)]
pub struct KeyView {
    pub tag: u16,
    pub algorithm: String,
    /// "csk": one key signs keys and zone.
    pub role: String,
    pub state: String,
    /// When it entered `state` (Unix seconds).
    pub since: u64,
    pub created: u64,
    pub signing: Option<u64>,
    pub published: Option<u64>,
    pub ready: Option<u64>,
    pub active: Option<u64>,
    pub withdrawn: Option<u64>,
    pub retired: Option<u64>,
    pub removed: Option<u64>,
    /// Its DS as the parent should publish it (zone IN DS ...).
    pub ds: Option<String>,
    pub ds_seen: Option<u64>,
    pub ds_ttl: Option<u32>,
    pub ds_removed: Option<u64>,
    /// The next step, empty when none.
    pub next: String,
    pub next_at: Option<u64>,
    /// Seconds until `next_at` (negative: overdue, it waits for something else).
    pub next_in_seconds: Option<i64>,
    pub waiting_for: String,
    /// What an admin must do now.
    pub action: Option<String>,
    pub note: Option<String>,
    pub file: String,
}

/// What one parent nameserver served for the zone's DS.
#[derive(Debug, Serialize, Deserialize)]
pub struct ParentServerView {
    pub server: String,
    /// Key tags of the DS records it serves.
    pub ds_tags: Vec<u16>,
    pub ttl: Option<u32>,
    pub error: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct DnssecStatusView {
    pub zone: String,
    pub parent_zone: String,
    pub keys: Vec<KeyView>,
    /// When the parent was last asked (only while a step depends on it).
    pub parent_checked_at: Option<u64>,
    pub parent: Vec<ParentServerView>,
    /// Some key's `action` is set.
    pub action_needed: bool,
    /// The earliest RRSIG expiration in the zone (Unix seconds).
    pub signature_expiry: Option<u64>,
}

fn key_view(
    zone: &str,
    r: KeyRecord,
    ds: Option<String>,
    out: crate::dnssec::roll::Outlook,
    now: u64,
) -> KeyView {
    KeyView {
        tag: r.tag,
        algorithm: r.algorithm.config_name().into(),
        role: "csk".into(),
        state: r.state.as_str().into(),
        since: r.since,
        created: r.created,
        signing: r.signing,
        published: r.published,
        ready: r.ready,
        active: r.active,
        withdrawn: r.withdrawn,
        retired: r.retired,
        removed: r.removed,
        ds: ds.map(|d| format!("{zone} IN DS {d}")),
        ds_seen: r.ds_seen,
        ds_ttl: r.ds_ttl,
        ds_removed: r.ds_removed,
        next: out.next,
        next_at: out.at,
        next_in_seconds: out.at.map(|a| a as i64 - now as i64),
        waiting_for: out.waiting_for,
        action: out.action,
        note: out.note,
        file: r.file,
    }
}

/// The view of one zone's keys (None: the zone is not signed).
pub fn status_view(z: &ZoneHandle, now: u64) -> Option<DnssecStatusView> {
    let KeyStatus {
        zone,
        parent_zone,
        keys,
        parent,
    } = z.key_status()?;
    let zone_text = zone.to_string();
    let keys: Vec<KeyView> = keys
        .into_iter()
        .map(|(r, ds, out)| key_view(&zone_text, r, ds.map(|d| d.to_string()), out, now))
        .collect();
    Some(DnssecStatusView {
        zone: zone_text,
        parent_zone: parent_zone.to_string(),
        action_needed: keys.iter().any(|k| k.action.is_some()),
        keys,
        parent_checked_at: parent.as_ref().map(|p| p.at),
        parent: parent
            .map(|p| {
                p.servers
                    .into_iter()
                    .map(|s| match s.answer {
                        Ok((set, ttl)) => ParentServerView {
                            server: s.server,
                            ds_tags: set.iter().map(|d| d.tag).collect(),
                            ttl: Some(ttl),
                            error: None,
                        },
                        Err(e) => ParentServerView {
                            server: s.server,
                            ds_tags: Vec::new(),
                            ttl: None,
                            error: Some(e),
                        },
                    })
                    .collect()
            })
            .unwrap_or_default(),
        signature_expiry: crate::writer::signature_horizon(&z.snapshot()),
    })
}

pub(crate) async fn status(
    State(s): State<HttpState>,
    Path(name): Path<String>,
) -> Result<Json<DnssecStatusView>, ApiError> {
    let z = zone_of(&s.app, &name)?.clone();
    let now = s.app.clock.now();
    blocking(move || status_view(&z, now))
        .await?
        .map(Json)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("{name}: DNSSEC is off for this zone"),
            )
        })
}

#[derive(Debug, Serialize, Deserialize)]
pub struct RollView {
    pub started: bool,
    pub message: String,
}

pub(crate) async fn roll(
    State(s): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<RollView>), ApiError> {
    if !(super::access::is_loopback(peer.ip()) && super::access::direct(&headers)) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "a rollover is asked for on the server itself (`zonewarden dnssec roll ZONE`): a direct request from a loopback address",
        ));
    }
    let z = zone_of(&s.app, &name)?.clone();
    if z.signer.is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("{name}: DNSSEC is off for this zone"),
        ));
    }
    let origin = z.origin.clone();
    let started = blocking(move || z.request_roll()).await?.map_err(|e| {
        tracing::error!(zone = %origin, error = %e, "rollover request not stored");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the database failed; nothing changed",
        )
    })?;
    Ok(if started {
        tracing::info!(zone = %origin, "DNSSEC key rollover asked for");
        (
            StatusCode::ACCEPTED,
            Json(RollView {
                started: true,
                message: format!(
                    "rollover of {origin} asked for: it starts within a second; follow it with `zonewarden dnssec status {origin}`"
                ),
            }),
        )
    } else {
        (
            StatusCode::CONFLICT,
            Json(RollView {
                started: false,
                message: format!("a rollover of {origin} is already under way"),
            }),
        )
    })
}
