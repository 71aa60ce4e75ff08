//! DANE rollover on the server side (RFC 7671 §8.1): publish the TLSA
//! record of a new certificate beside the old ones, and retire the old ones
//! only once every nameserver serves the new one and two TTLs have passed,
//! so no client ever sees a TLSA set that matches neither certificate.
//!
//! The plan to retire is stored in the same SQLite transaction as the
//! change that adds the new record, so a restart loses nothing: the sweep
//! (`App::retire_due`, every second) picks it up. Retiring is an ordinary
//! journaled, signed, NOTIFYed change (audit action `dane-retire`).
//! Publishing a record that is planned for retirement (a roll back)
//! cancels that plan.
//!
//! What to publish is decided by the caller (the HTTP endpoint, from a
//! certificate); this module only knows TLSA RDATA.

use std::sync::Arc;

use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::acl::Machine;
use crate::app::{App, UpdateError, ZoneHandle};
use crate::dnsclient::serial_at_least;
use crate::store::{Planned, StoreError};
use crate::update::{self, Actor, Outcome};

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

impl App {
    /// Publish `sets` for `machine` (its ACL applies as for any UPDATE) and
    /// plan the retirement of what they replace. Blocking (SQLite).
    pub fn publish_tlsa(
        &self,
        zone: &ZoneHandle,
        machine: &Machine,
        key_name: &Name,
        source: &str,
        sets: &[TlsaSet],
        ttl: u32,
    ) -> Result<(Option<u32>, Vec<TlsaResult>), UpdateError> {
        let now = self.clock.now();
        let mut store = zone.writer();
        let current = zone.snapshot();
        let pending = store.retirements(&zone.origin)?;
        let mut updates = Vec::new();
        let mut plan = Vec::new();
        let mut cancel = Vec::new();
        let mut results = Vec::new();
        for set in sets {
            let present: Vec<RData> = current
                .rrset(&set.owner, RecordType::TLSA)
                .map(|s| s.rdatas.clone())
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
                    let ttl = current
                        .rrset(&set.owner, RecordType::TLSA)
                        .map_or(ttl, |s| s.ttl.max(ttl));
                    plan.push(Planned {
                        record: Record::from_rdata(set.owner.clone(), ttl, d.clone()),
                        machine: machine.name.clone(),
                    });
                }
            }
            cancel.extend(
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
        let actor = Actor {
            machine,
            key_name: key_name.to_string(),
            source: source.to_string(),
        };
        let serial = if updates.is_empty() {
            // Nothing to add (a reused key, or a re-run): the zone does not change.
            if !plan.is_empty() {
                store.plan_retirements(&zone.origin, current.serial, &plan, now)?;
            }
            None
        } else {
            match update::process(&current, &[], &updates, &actor).map_err(UpdateError::Refused)? {
                Outcome::Unchanged => None,
                Outcome::Applied {
                    zone: mut next,
                    mut change,
                    touched,
                } => {
                    change.audit.action = "dane-publish".into();
                    if let Some(signer) = &zone.signer {
                        signer
                            .resign(&current, &mut next, &touched, now)
                            .into_change(&mut change);
                    }
                    store.commit_with_plan(&zone.origin, &change, now, None, &plan)?;
                    let serial = next.serial;
                    zone.publish(Arc::from(next));
                    tracing::info!(zone = %zone.origin, machine = %machine.name, source, serial, change = %change.audit.detail, "TLSA published; old records retire after propagation + 2 TTL");
                    Some(serial)
                }
            }
        };
        if !cancel.is_empty() {
            store.drop_retirements(&cancel)?;
        }
        Ok((serial, results))
    }

    /// Retire what is due: for each planned record, note when every
    /// secondary serves the change that planned it, and remove it two TTLs
    /// after that. Returns how many records were removed.
    pub fn retire_due(&self) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let mut total = 0;
        for zone in self.zones() {
            let mut store = zone.writer();
            let pending = store.retirements(&zone.origin)?;
            if pending.is_empty() {
                continue;
            }
            let serial = zone.snapshot().serial;
            let secondaries = zone.propagation.statuses();
            let mut due = Vec::new();
            for r in pending {
                match r.propagated_at {
                    None => {
                        let everywhere = serial_at_least(serial, r.after_serial)
                            && secondaries.iter().all(|s| {
                                s.serial
                                    .is_some_and(|have| serial_at_least(have, r.after_serial))
                            });
                        if everywhere {
                            store.mark_propagated(r.id, now)?;
                        }
                    }
                    Some(at) if now >= at.saturating_add(2 * u64::from(r.record.ttl)) => {
                        due.push(r)
                    }
                    Some(_) => {}
                }
            }
            if due.is_empty() {
                continue;
            }
            let machine = due[0].machine.clone();
            let ids: Vec<i64> = due.iter().map(|r| r.id).collect();
            let records: Vec<Record> = due.into_iter().map(|r| r.record).collect();
            total +=
                self.remove_records(zone, &mut store, records, "dane-retire", Some(machine))?;
            store.drop_retirements(&ids)?;
        }
        Ok(total)
    }
}
