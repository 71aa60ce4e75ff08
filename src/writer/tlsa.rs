//! DANE rollover on the server side (RFC 7671 §8.1): publish the TLSA
//! records of a new certificate beside the old ones, and retire the old
//! ones only once every nameserver serves the new ones and two TTLs have
//! passed, so no client ever sees a TLSA set that matches neither
//! certificate.
//!
//! The plan to retire is stored in the same SQLite transaction as the
//! change that adds the new records, so a restart loses nothing: the
//! retirement draft (every second) picks it up, and carries it out as an
//! ordinary journaled, signed, NOTIFYed change made for the machine (audit
//! action `dane-retire`, one change per machine). Publishing a record that
//! is planned for retirement (a roll back) cancels that plan.
//!
//! What to publish is decided by the caller (the HTTP endpoint, from a
//! certificate); this module only knows TLSA RDATA.

use std::sync::Arc;

use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::{Prepared, WriteError};
use crate::notify::{Propagation, SecondaryStatus};
use crate::serial;
use crate::store::{Planned, Store, StoreError};
use crate::update::{self, Requester};
use crate::zone::ZoneData;
use crate::zone::change::Action;

/// One TLSA RRset to bring to a certificate.
#[derive(Debug, Clone)]
pub struct TlsaSet {
    pub owner: Name,
    /// The records of the current certificate.
    pub wanted: Vec<RData>,
    /// Records to leave in place too (a pre-published next key).
    pub keep: Vec<RData>,
}

/// What happened to one RRset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsaResult {
    pub owner: Name,
    /// Records added now.
    pub added: Vec<RData>,
    /// Records that will be removed once the change has propagated and two
    /// TTLs have passed.
    pub retiring: Vec<RData>,
}

/// A TLSA draft worked out.
pub(super) struct Published {
    /// The zone change, when records are added (it carries the plans).
    pub change: Option<Prepared>,
    /// Plans to store and cancel when the zone does not change.
    pub plan: Vec<Planned>,
    pub settled: Vec<i64>,
    pub results: Vec<TlsaResult>,
}

/// Work out what publishing `sets` for `by` changes: records to add (an
/// UPDATE under `by`'s ACL), records to plan for retirement, plans to
/// cancel.
pub(super) fn publish(
    store: &Store,
    base: Arc<ZoneData>,
    sets: &[TlsaSet],
    ttl: u32,
    by: &Requester<'_>,
    now: u64,
) -> Result<Published, WriteError> {
    // The machine changes the TLSA RRset at every owner (adds, and plans
    // removals): its ACL must grant each, whether or not records are added.
    let touched: Vec<Record> = sets
        .iter()
        .map(|s| Record::update0(s.owner.clone(), ttl, RecordType::TLSA))
        .collect();
    update::check_permissions(&base, &touched, by).map_err(WriteError::Refused)?;
    let pending = store.retirements(base.origin())?;
    let mut updates = Vec::new();
    let mut plan = Vec::new();
    let mut settled = Vec::new();
    let mut results = Vec::new();
    for set in sets {
        let present: Vec<RData> = base
            .rrset(&set.owner, RecordType::TLSA)
            .map(|s| s.rdatas())
            .unwrap_or_default();
        let added: Vec<RData> = set
            .wanted
            .iter()
            .filter(|d| !present.contains(d))
            .cloned()
            .collect();
        updates.extend(
            added
                .iter()
                .map(|d| Record::from_rdata(set.owner.clone(), ttl, d.clone())),
        );
        let planned = |d: &RData| {
            pending
                .iter()
                .any(|p| p.record.name == set.owner && p.record.data == *d)
        };
        let retiring: Vec<RData> = present
            .iter()
            .filter(|d| !set.wanted.contains(d) && !set.keep.contains(d))
            .cloned()
            .collect();
        for d in &retiring {
            if !planned(d) {
                let ttl = base
                    .rrset(&set.owner, RecordType::TLSA)
                    .map_or(ttl, |s| s.ttl.max(ttl));
                plan.push(Planned {
                    record: Record::from_rdata(set.owner.clone(), ttl, d.clone()),
                    machine: by.machine.name.clone(),
                });
            }
        }
        settled.extend(
            pending
                .iter()
                .filter(|p| {
                    p.record.name == set.owner
                        && (set.wanted.contains(&p.record.data)
                            || set.keep.contains(&p.record.data))
                })
                .map(|p| p.id),
        );
        results.push(TlsaResult {
            owner: set.owner.clone(),
            added,
            retiring,
        });
    }
    let change = if updates.is_empty() {
        None
    } else {
        super::drafts::update(base, &[], &updates, by, Action::DanePublish, now)?
    };
    Ok(match change {
        Some(mut p) => {
            p.plan = plan;
            p.settled = settled;
            Published {
                change: Some(p),
                plan: Vec::new(),
                settled: Vec::new(),
                results,
            }
        }
        None => Published {
            change: None,
            plan,
            settled,
            results,
        },
    })
}

/// Records due for retirement, for one machine.
pub(super) struct Due {
    pub machine: String,
    pub ids: Vec<i64>,
    pub records: Vec<Record>,
}

/// Note, for each planned retirement, when every secondary serves the
/// change that planned it (`serial` is ours); return those whose two TTLs
/// since then have passed, grouped by the machine they are for.
pub(super) fn retire_due(
    store: &mut Store,
    zone: &Name,
    serial: u32,
    secondaries: &[SecondaryStatus],
    now: u64,
) -> Result<Vec<Due>, StoreError> {
    let mut due: Vec<Due> = Vec::new();
    for r in store.retirements(zone)? {
        match r.propagated_at {
            None => {
                let everywhere = Propagation::lowest_served(serial, secondaries)
                    .is_some_and(|low| serial::at_least(low, r.after_serial));
                if everywhere {
                    store.mark_propagated(r.id, now)?;
                }
            }
            Some(at) if now >= at.saturating_add(2 * u64::from(r.record.ttl)) => {
                match due.iter_mut().find(|d| d.machine == r.machine) {
                    Some(d) => {
                        d.ids.push(r.id);
                        d.records.push(r.record);
                    }
                    None => due.push(Due {
                        machine: r.machine,
                        ids: vec![r.id],
                        records: vec![r.record],
                    }),
                }
            }
            Some(_) => {}
        }
    }
    Ok(due)
}
