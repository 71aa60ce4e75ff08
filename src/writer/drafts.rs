//! Drafts turned into changes against the current snapshot: what each kind
//! of draft changes, before the shared tail (sign, commit, publish) in
//! `writer::apply`. Pure except for reading the store (expiry ages).

use std::collections::BTreeSet;
use std::sync::Arc;

use hickory_proto::rr::{Name, Record, RecordType};

use super::{Prepared, WriteError};
use crate::dnssec::{self, ZoneSigner};
use crate::store::{AgedRecord, Store, StoreError};
use crate::update::{self, Applied, Requester};
use crate::zone::ZoneData;
use crate::zone::change::{Action, Actor, Audit, Change, Source, describe};

/// The label that marks an ACME challenge name: the only names the expiry
/// sweep touches. A dns-persist-01 record (`_validation-persist`, TXT too)
/// is persistent by design and never swept (`tests/persist.rs`).
const CHALLENGE_LABEL: &[u8] = b"_acme-challenge";

pub(super) fn prepared(base: Arc<ZoneData>, next: ZoneData, change: Change) -> Prepared {
    Prepared {
        base,
        next,
        change,
        resign: None,
        plan: Vec::new(),
        settled: Vec::new(),
        fingerprint: None,
        accepted: None,
        keys: Vec::new(),
    }
}

/// An RFC 2136 UPDATE (`update::process` decides everything), recorded
/// as `action`. None when it changes nothing.
pub(super) fn update(
    base: Arc<ZoneData>,
    prereqs: &[Record],
    updates: &[Record],
    by: &Requester<'_>,
    action: Action,
    now: u64,
) -> Result<Option<Prepared>, WriteError> {
    let applied =
        update::process(&base, prereqs, updates, by, action, now).map_err(WriteError::Refused)?;
    Ok(applied.map(
        |Applied {
             zone,
             change,
             touched,
         }| {
            let mut p = prepared(base, zone, change);
            p.resign = Some(touched);
            p
        },
    ))
}

/// Remove those of `records` that are present, as one change by `actor`.
/// None when none is present.
pub(super) fn removal(
    base: Arc<ZoneData>,
    records: Vec<Record>,
    actor: Actor,
    action: Action,
) -> Option<Prepared> {
    let mut next = (*base).clone();
    let removed: Vec<Record> = records
        .into_iter()
        .filter(|r| next.remove(&r.name, r.record_type(), &r.data))
        .collect();
    if removed.is_empty() {
        return None;
    }
    next.serial = crate::serial::next(base.serial);
    let touched: BTreeSet<(Name, RecordType)> = removed
        .iter()
        .map(|r| (r.name.to_lowercase(), r.record_type()))
        .collect();
    let change = Change {
        serial_from: base.serial,
        serial_to: next.serial,
        audit: Audit {
            actor,
            action,
            detail: describe(&removed, &[]),
        },
        removed,
        added: Vec::new(),
        source: Source::Dynamic,
    };
    let mut p = prepared(base, next, change);
    p.resign = Some(touched);
    Some(p)
}

/// Challenge TXT records (at `_acme-challenge` names) that are `stale`,
/// removed by the server. Whether one is stale is the caller's (the
/// writer ages records by monotonic time while it runs, `ages`), never a
/// comparison with the wall clock, which may step.
pub(super) fn expire(
    store: &Store,
    base: Arc<ZoneData>,
    stale: impl Fn(&AgedRecord) -> bool,
) -> Result<Option<Prepared>, StoreError> {
    let stale: Vec<Record> = store
        .dynamic_txt_older_than(base.origin(), i64::MAX as u64)?
        .into_iter()
        .filter(|a| {
            a.record
                .name
                .iter()
                .next()
                .is_some_and(|l| l.eq_ignore_ascii_case(CHALLENGE_LABEL))
                && stale(a)
        })
        .map(|a| a.record)
        .collect();
    if stale.is_empty() {
        return Ok(None);
    }
    Ok(removal(base, stale, Actor::Server, Action::Expired))
}

/// Signatures close to expiry, renewed.
pub(super) fn refresh(
    signer: Option<&ZoneSigner>,
    base: Arc<ZoneData>,
    now: u64,
) -> Option<Prepared> {
    let mut next = (*base).clone();
    let change = dnssec::refresh(signer?, &mut next, now)?;
    Some(prepared(base, next, change))
}

/// DNSSEC records in line with the zone's settings (at start).
pub(super) fn sync_dnssec(
    signer: Option<&ZoneSigner>,
    base: Arc<ZoneData>,
    now: u64,
) -> Option<Prepared> {
    let mut next = (*base).clone();
    let change = dnssec::sync(signer, &mut next, now)?;
    Some(prepared(base, next, change))
}

/// The zone file's records replaced: `base` already holds the file's
/// records; the change moves the serial and records the diff. Signatures
/// are repaired by the DNSSEC sync that follows at start.
pub(super) fn zone_file(
    base: Arc<ZoneData>,
    removed: Vec<Record>,
    added: Vec<Record>,
    fingerprint: String,
) -> Prepared {
    let mut next = (*base).clone();
    next.serial = crate::serial::next(base.serial);
    let audit = Audit::server(
        Action::ZoneFile,
        format!("{} changed", base.spec.path.display()),
    );
    let change = Change {
        serial_from: base.serial,
        serial_to: next.serial,
        removed,
        added,
        source: Source::Static,
        audit,
    };
    let mut p = prepared(base, next, change);
    p.fingerprint = Some(fingerprint);
    p
}
