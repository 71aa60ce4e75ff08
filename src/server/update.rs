//! The UPDATE handler (RFC 2136): the gate (a verified key, the machine its
//! ACL names, a source inside the machine's networks), then one draft to
//! the zone writer, answered after the commit that holds it.
//!
//! The gate is shared with the HTTP TLSA API ([`admit`]), so both check a
//! machine the same way; RFC 2136 processing and the per-RR ACL check are
//! `update::process`, run by the writer against the current snapshot.

use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::Name;
use hickory_server::server::Request;

use super::Context;
use super::edns::Ede;
use super::refusal::{Refused, WriteLog};
use crate::acl::{Machine, PolicyState};
use crate::metrics::RefusalReason;
use crate::store::Accepted;
use crate::tsig::{SignContext, Verifier};
use crate::writer::{UpdateDraft, WriteError, ZoneHandle};

/// The machine `key` belongs to, if it may write from `source`; the
/// machine's name goes into `log` either way.
pub fn admit(
    policy: &PolicyState,
    key: &Name,
    source: IpAddr,
    log: &mut WriteLog,
) -> Result<Arc<Machine>, Refused> {
    let Some(machine) = policy.policy.machine_for_key(key) else {
        return Err(Refused::plain(
            RefusalReason::NoAcl,
            ResponseCode::Refused,
            "no ACL names this key",
        ));
    };
    log.machine = Some(machine.name.clone());
    if !machine.source_allowed(source) {
        return Err(Refused::plain(
            RefusalReason::Network,
            ResponseCode::Refused,
            "source address not in the ACL's networks",
        ));
    }
    Ok(machine.clone())
}

/// Handle one UPDATE for `zone`, signed by `signer` (verified under
/// `policy`). Returns the RCODE to answer with and its extended error.
pub async fn handle(
    cx: &Context,
    request: &Request,
    zone: Arc<ZoneHandle>,
    signer: Option<&SignContext>,
    policy: &PolicyState,
) -> (ResponseCode, Option<Ede>) {
    let source = request.src().ip();
    let mut log = WriteLog::new(
        Some(zone.origin.clone()),
        signer.map(|s| s.key.name.clone()),
        request.src(),
        &request.authorities,
    );
    let refuse = |log: &WriteLog, refused: Refused| {
        cx.refusals
            .record(&cx.metrics, log, &refused, cx.clock.now());
        (refused.rcode, Ede::for_refusal(refused.reason))
    };
    let Some(signer) = signer else {
        let r = Refused::plain(RefusalReason::Unsigned, ResponseCode::Refused, "unsigned");
        return refuse(&log, r);
    };
    let key = signer.key.name.clone();
    let machine = match admit(policy, &key, source, &mut log) {
        Ok(m) => m,
        Err(r) => return refuse(&log, r),
    };
    // Its MAC, stored with whatever the writer does: the replay window
    // survives a restart (`store::Accepted`).
    let accepted = Accepted {
        key: key.to_lowercase().to_ascii(),
        id: Verifier::replay_id(signer),
        expires: cx.clock.now() + cx.verifier.replay_window(),
    };
    let draft = UpdateDraft {
        prereqs: request.answers.clone(),
        updates: request.authorities.clone(),
        machine,
        key,
        source,
        accepted: Some(accepted),
    };
    // Answered after the commit that holds it (with the UPDATEs queued
    // beside it, `writer::group`).
    let written = zone.update(draft).await;
    let zone_label = log.zone_label();
    match written {
        Ok(w) => {
            match w.serial {
                Some(serial) => {
                    cx.metrics.updates_accepted.inc(&[&zone_label, "changed"]);
                    tracing::info!(
                        zone = %zone_label, key = %log.key_label(), machine = %log.machine_label(),
                        source = %log.source, owner = %log.owners, rtype = %log.types,
                        outcome = "applied", serial, change = %w.detail,
                        "update"
                    );
                }
                None => {
                    cx.metrics.updates_accepted.inc(&[&zone_label, "unchanged"]);
                    tracing::info!(
                        zone = %zone_label, key = %log.key_label(), machine = %log.machine_label(),
                        source = %log.source, owner = %log.owners, rtype = %log.types,
                        outcome = "unchanged",
                        "update"
                    );
                }
            }
            (ResponseCode::NoError, None)
        }
        Err(WriteError::Refused(r)) => {
            // A refused dns-persist-01 value says what is wrong with it.
            let persist = match r.kind {
                crate::update::RefusalKind::Persist(p) => Some(Ede::Persist(p)),
                _ => None,
            };
            let (rcode, ede) = refuse(&log, Refused::from(r));
            (rcode, persist.or(ede))
        }
        Err(e @ (WriteError::Store(_) | WriteError::Key(_) | WriteError::Aborted)) => {
            cx.metrics
                .updates_failed
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::error!(
                zone = %zone_label, key = %log.key_label(), machine = %log.machine_label(),
                source = %log.source, owner = %log.owners, rtype = %log.types, outcome = "failed",
                error = %e, "update not committed; nothing changed"
            );
            (ResponseCode::ServFail, Some(Ede::NotCommitted))
        }
    }
}
