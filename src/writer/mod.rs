//! The zone writer: the only code that changes a zone.
//!
//! Each zone has one [`ZoneHandle`]: its published snapshot (an `ArcSwap`
//! that queries, transfers and the HTTP views read without locks), its
//! SQLite writer connection behind a mutex (one change per zone at a time),
//! a reader connection for IXFR history and audit views, its DNSSEC signer,
//! and its propagation state (NOTIFY followers).
//!
//! Every change arrives as a [`Draft`]: an UPDATE, a TLSA publication,
//! challenge expiry, TLSA retirement, signature refresh, and at start the
//! zone-file reconciliation and DNSSEC sync. [`ZoneHandle::write`] turns the
//! draft into a change against the current snapshot (`drafts`, `tlsa`),
//! and one private tail does the rest for all of them: re-sign what
//! changed (`sign`), commit one SQLite transaction (records, serial,
//! journal diff, audit row, retirement plans), observe the commit's latency,
//! publish the new snapshot, wake the NOTIFY followers (`commit_staged`).
//! UPDATEs are group-committed (`group`): those that queue up while a
//! commit runs are each built on the state the one before left, signed
//! once after the last of them (the serials in between are never
//! published), and go through that tail together, in one transaction. A
//! draft is answered only after the commit that holds it.
//!
//! Not here: who may send a draft (the request front, `server`, and the
//! HTTP API decide that), what RFC 2136 means (`update`), how RRsets are
//! signed (`dnssec`), how rows are laid out (`store`).

mod ages;
mod drafts;
mod drain;
mod group;
mod keys;
mod open;
mod tlsa;
mod zones;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::ArcSwap;
use hickory_proto::rr::{Name, Record, RecordType};

use crate::acl::Machine;
use crate::clock::Clock;
use crate::dnssec::ZoneSigner;
use crate::metrics::Metrics;
use crate::notify::Propagation;
use crate::store::{Accepted, Commit, Extra, Planned, Store, StoreError};
use crate::update::{Refusal, Requester};
use crate::zone::ZoneData;
use crate::zone::change::{Action, Actor, Change, JournalEntry};
use crate::zone::keys::KeyRecord;

pub use drain::{Drain, DrainGuard};
pub use keys::{KeyStatus, drive as drive_keys, parent_of};
pub use open::OpenError;
pub use tlsa::{TlsaResult, TlsaSet};
pub use zones::Zones;

/// One change to make to a zone, as its sender asks for it.
pub enum Draft<'a> {
    /// An RFC 2136 UPDATE: prerequisites and update section, under the
    /// requester's ACL. Group-committed with the UPDATEs queued beside it.
    Update(UpdateDraft),
    /// TLSA records for a machine's certificate; the records they replace
    /// are planned for retirement (RFC 7671 §8.1).
    Tlsa {
        sets: &'a [TlsaSet],
        ttl: u32,
        by: Requester<'a>,
    },
    /// Challenge TXT records older than `max_age` seconds at monotonic
    /// time `at` (when the sweep was asked for) removed: aged by monotonic
    /// time while the process runs (`ages`).
    Expire { max_age: u64, at: u64 },
    /// Planned TLSA retirements that are due carried out, one change per
    /// machine they are for.
    Retire,
    /// Signatures close to expiry renewed.
    RefreshSignatures,
    /// At start: the zone file's records differ from the stored ones.
    ZoneFile {
        removed: Vec<Record>,
        added: Vec<Record>,
        fingerprint: String,
    },
    /// At start: DNSSEC records brought in line with the zone's settings
    /// (signed where missing or invalid, or stripped when DNSSEC is off).
    SyncDnssec,
    /// A DNSSEC key rollover step (`keys::drive`).
    KeyStep(crate::dnssec::roll::Step),
}

/// An RFC 2136 UPDATE as it waits in its zone's queue (owned: the zone's
/// writer applies it, `group`).
#[derive(Debug)]
pub struct UpdateDraft {
    pub prereqs: Vec<Record>,
    pub updates: Vec<Record>,
    /// The machine whose ACL it is checked against, its key and address.
    pub machine: Arc<Machine>,
    pub key: Name,
    pub source: IpAddr,
    /// The signed request, remembered for the TSIG replay window
    /// whatever the outcome: with the change it made, or beside the
    /// batch's changes when it changed nothing or was refused
    /// (`store::Accepted`).
    pub accepted: Option<Accepted>,
}

impl UpdateDraft {
    fn requester(&self) -> Requester<'_> {
        Requester {
            machine: &self.machine,
            key: &self.key,
            source: self.source,
        }
    }
}

/// What a draft did.
#[derive(Debug, Default)]
pub struct Written {
    /// The zone's new serial, when it changed.
    pub serial: Option<u32>,
    /// The changes, for the log line ("del ...; add ...").
    pub detail: String,
    /// Records removed by expiry or retirement.
    pub removed: usize,
    /// For a TLSA draft: what happened to each set.
    pub tlsa: Vec<TlsaResult>,
}

/// Why a draft was not written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// Refused by RFC 2136 processing (prerequisites, ACL, limits).
    #[error("{}", .0.reason)]
    Refused(Refusal),
    /// The database failed; nothing changed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A DNSSEC key could not be made or read; nothing changed.
    #[error(transparent)]
    Key(#[from] crate::dnssec::KeyError),
    /// The zone writer panicked while applying this UPDATE's batch
    /// (whether the batch was committed is not known: it is not served
    /// until a restart if it was), or went away before taking it.
    #[error("the zone writer failed while applying this update")]
    Aborted,
}

/// A change built from a draft, not yet signed or committed.
struct Prepared {
    /// The snapshot it was built on.
    base: Arc<ZoneData>,
    next: ZoneData,
    change: Change,
    /// RRsets whose signatures must be made again (None: the draft's
    /// change already holds its DNSSEC records, or touches none).
    resign: Option<BTreeSet<(Name, RecordType)>>,
    /// Retirements this change plans (TLSA) or carries out.
    plan: Vec<Planned>,
    settled: Vec<i64>,
    /// The zone file's fingerprint, when the change reconciles it.
    fingerprint: Option<String>,
    /// The signed UPDATE that asked for it (replay window).
    accepted: Option<Accepted>,
    /// DNSSEC key states this change moves (a rollover step).
    keys: Vec<KeyRecord>,
}

impl Prepared {
    /// Its next snapshot and the change to commit, once `dnssec` (signing
    /// now, or taking names out of the chain for a batch) has had its say
    /// on both.
    fn stage(
        self,
        dnssec: impl FnOnce(&ZoneData, &mut ZoneData, &mut Change, Option<BTreeSet<(Name, RecordType)>>),
    ) -> (ZoneData, Staged) {
        let Prepared {
            base,
            mut next,
            mut change,
            resign,
            plan,
            settled,
            fingerprint,
            accepted,
            keys,
        } = self;
        dnssec(&base, &mut next, &mut change, resign);
        let staged = Staged {
            change,
            plan,
            settled,
            fingerprint,
            accepted,
            keys,
        };
        (next, staged)
    }
}

/// A signed change, ready to commit (what `apply`'s tail needs of a
/// [`Prepared`] once `sign` made its snapshot).
struct Staged {
    change: Change,
    plan: Vec<Planned>,
    settled: Vec<i64>,
    fingerprint: Option<String>,
    accepted: Option<Accepted>,
    keys: Vec<KeyRecord>,
}

pub struct ZoneHandle {
    pub origin: Name,
    snapshot: ArcSwap<ZoneData>,
    store: Mutex<Store>,
    /// A second connection for transfers and views, so they never wait
    /// for the writer.
    reader: Mutex<Store>,
    pub propagation: Propagation,
    /// None when the zone file turns DNSSEC off.
    pub signer: Option<ZoneSigner>,
    /// The signer's keys' lifecycle (None when unsigned).
    life: Option<keys::Life>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    /// UPDATEs waiting to be group-committed.
    group: group::Group,
    /// When the challenge records were added, as clock steps cannot change.
    ages: Mutex<ages::Ages>,
    /// The latest RRSIG inception in the zone (or above it: see
    /// [`ZoneHandle::resign_if_clock_went_back`]).
    latest_inception: AtomicU64,
}

impl ZoneHandle {
    /// The published snapshot (lock-free).
    pub fn snapshot(&self) -> Arc<ZoneData> {
        self.snapshot.load_full()
    }

    fn lock_store(&self) -> MutexGuard<'_, Store> {
        // A panic while holding the lock cannot leave a half-applied change:
        // the snapshot is swapped only after commit. Keep serving.
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Run `f` on the reader connection (never waits for the writer).
    pub fn with_reader<T>(&self, f: impl FnOnce(&Store) -> T) -> T {
        f(&self.reader.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The stored diffs from `from` to `to` (IXFR), None if history does
    /// not reach back. Blocking (SQLite).
    pub fn journal_between(
        &self,
        from: u32,
        to: u32,
    ) -> Result<Option<Vec<JournalEntry>>, StoreError> {
        self.with_reader(|s| s.journal_between(&self.origin, from, to))
    }

    /// Wait until no change is being committed (shutdown). Blocking.
    pub fn quiesce(&self) {
        drop(self.lock_store());
    }

    /// Apply an RFC 2136 UPDATE (group-committed with the UPDATEs queued
    /// beside it, `group`); resolves once the commit that holds it is
    /// durable. The task waits without a thread: the zone's writer runs
    /// on tokio's blocking pool while UPDATEs are queued.
    pub async fn update(self: Arc<Self>, draft: UpdateDraft) -> Result<Written, WriteError> {
        group::Group::submit(self, draft).await
    }

    /// Make the change `draft` asks for: build it on the current snapshot,
    /// sign, commit, publish. Blocking (SQLite): call from `spawn_blocking`
    /// (an UPDATE from async code: [`Self::update`]).
    pub fn write(&self, draft: Draft<'_>) -> Result<Written, WriteError> {
        let draft = match draft {
            Draft::Update(update) => return self.group.submit_blocking(self, update),
            other => other,
        };
        let mut store = self.lock_store();
        let now = self.clock.now();
        let base = self.snapshot();
        let mut written = Written::default();
        match draft {
            Draft::Update(_) => unreachable!("group-committed above"),
            Draft::Tlsa { sets, ttl, by } => {
                let published = tlsa::publish(&store, base.clone(), sets, ttl, &by, now)?;
                written.tlsa = published.results;
                match published.change {
                    Some(p) => self.apply_into(&mut store, p, now, &mut written)?,
                    // Nothing to add (a reused key, or a re-run): the zone
                    // does not change, the plans do.
                    None if !published.plan.is_empty() || !published.settled.is_empty() => {
                        let extra = Extra {
                            fingerprint: None,
                            plan: &published.plan,
                            settled: &published.settled,
                            ..Extra::default()
                        };
                        store.settle_retirements(&self.origin, base.serial, &extra, now)?;
                    }
                    None => {}
                }
            }
            Draft::Expire { max_age, at } => {
                let ages = self.ages.lock().unwrap_or_else(|p| p.into_inner());
                let stale = drafts::expire(&store, base, |a| ages.age(a, at) > max_age)?;
                drop(ages);
                if let Some(p) = stale {
                    let n = p.change.removed.len();
                    self.apply_into(&mut store, p, now, &mut written)?;
                    written.removed = n;
                    self.metrics
                        .records_expired
                        .add(&[&self.origin.to_string()], n as u64);
                }
            }
            Draft::Retire => {
                let secondaries = self.propagation.statuses();
                let due =
                    tlsa::retire_due(&mut store, &self.origin, base.serial, &secondaries, now)?;
                for group in due {
                    let actor = Actor::ForMachine(group.machine);
                    match drafts::removal(self.snapshot(), group.records, actor, Action::DaneRetire)
                    {
                        Some(mut p) => {
                            p.settled = group.ids;
                            written.removed += p.change.removed.len();
                            self.apply_into(&mut store, p, now, &mut written)?;
                        }
                        None => {
                            // Already gone (removed by the machine): forget the plans.
                            let extra = Extra {
                                settled: &group.ids,
                                ..Extra::default()
                            };
                            let serial = self.snapshot().serial;
                            store.settle_retirements(&self.origin, serial, &extra, now)?;
                        }
                    }
                }
            }
            Draft::RefreshSignatures => {
                if let Some(p) = drafts::refresh(self.signer.as_ref(), base, now) {
                    self.apply_into(&mut store, p, now, &mut written)?;
                }
            }
            Draft::ZoneFile {
                removed,
                added,
                fingerprint,
            } => {
                let p = drafts::zone_file(base, removed, added, fingerprint);
                self.apply_into(&mut store, p, now, &mut written)?;
            }
            Draft::SyncDnssec => {
                if let Some(p) = drafts::sync_dnssec(self.signer.as_ref(), base, now) {
                    self.apply_into(&mut store, p, now, &mut written)?;
                }
            }
            Draft::KeyStep(step) => self.key_step(&mut store, base, step, now, &mut written)?,
        }
        Ok(written)
    }

    /// [`Self::apply`], noting the serial and detail in `written`.
    fn apply_into(
        &self,
        store: &mut Store,
        p: Prepared,
        now: u64,
        written: &mut Written,
    ) -> Result<(), StoreError> {
        let (serial, detail) = self.apply(store, p, now)?;
        written.serial = Some(serial);
        if !written.detail.is_empty() {
            written.detail.push_str("; ");
        }
        written.detail.push_str(&detail);
        Ok(())
    }

    /// The one tail of every change but a group of UPDATEs: [`Self::sign`],
    /// then [`Self::commit_staged`] on its own.
    fn apply(&self, store: &mut Store, p: Prepared, now: u64) -> Result<(u32, String), StoreError> {
        let (next, staged) = self.sign(p, now);
        let mut done = self.commit_staged(store, vec![staged], Arc::new(next), &[], now)?;
        Ok(done.remove(0))
    }

    /// Re-sign what `p` changed: its next snapshot and the change to commit.
    fn sign(&self, p: Prepared, now: u64) -> (ZoneData, Staged) {
        p.stage(|base, next, change, resign| {
            if let (Some(signer), Some(touched)) = (&self.signer, &resign) {
                signer.resign(base, next, touched, now).into_change(change);
            }
        })
    }

    /// One UPDATE of a batch, not signed yet: its change and next state,
    /// with the NSEC and RRSIGs of the names it took out of the chain
    /// removed (`dnssec::unchain`: the next UPDATE's prerequisites see
    /// them gone); the RRsets it changed are added to `touched`, which
    /// [`Self::sign_batch`] signs after the batch's last UPDATE.
    fn unsigned(
        &self,
        p: Prepared,
        touched: &mut BTreeSet<(Name, RecordType)>,
    ) -> (ZoneData, Staged) {
        p.stage(|base, next, change, resign| {
            if let (Some(_), Some(changed)) = (&self.signer, resign) {
                crate::dnssec::unchain(base, next, &changed).into_change(change);
                touched.extend(changed);
            }
        })
    }

    /// Sign a batch of UPDATEs once, after its last: `state` (the state
    /// the last left, built from `published` by changes to the RRsets in
    /// `touched`) re-signed as one change from `published`, its DNSSEC
    /// records appended to the last UPDATE's change (`last`). The serials
    /// in between are never published (the snapshot is swapped once per
    /// batch), so only the last needs its SOA signed, and an NSEC or RRSIG
    /// that several UPDATEs of the batch touch is made once. Each UPDATE's
    /// journal entry stays exact (IXFR from any serial is the entries
    /// after it, condensed); only the published state is fully signed.
    fn sign_batch(
        &self,
        published: &ZoneData,
        state: Arc<ZoneData>,
        touched: &BTreeSet<(Name, RecordType)>,
        last: &mut Change,
        now: u64,
    ) -> Arc<ZoneData> {
        let Some(signer) = &self.signer else {
            return state;
        };
        let mut next = Arc::try_unwrap(state).unwrap_or_else(|shared| (*shared).clone());
        signer
            .resign(published, &mut next, touched, now)
            .into_change(last);
        Arc::new(next)
    }

    /// The tail of every change: commit `staged` (signed changes, each
    /// built on the one before, the first on the published snapshot) in
    /// ONE transaction with the MACs in `remember`, observe the commit,
    /// publish `next` (the state after the last) and wake NOTIFY once.
    /// Returns each change's serial and detail, in order. On error nothing
    /// is published: memory stays as the database is.
    fn commit_staged(
        &self,
        store: &mut Store,
        staged: Vec<Staged>,
        next: Arc<ZoneData>,
        remember: &[Accepted],
        now: u64,
    ) -> Result<Vec<(u32, String)>, StoreError> {
        let extras: Vec<Extra<'_>> = staged
            .iter()
            .map(|s| Extra {
                fingerprint: s.fingerprint.as_deref(),
                plan: &s.plan,
                settled: &s.settled,
                accepted: s.accepted.as_ref(),
                keys: &s.keys,
            })
            .collect();
        let commits: Vec<Commit<'_>> = staged
            .iter()
            .zip(&extras)
            .map(|(s, extra)| Commit {
                change: &s.change,
                extra,
            })
            .collect();
        let started = std::time::Instant::now();
        let committed = store.commit_all(&self.origin, &commits, remember, now);
        self.metrics
            .commit_done(started.elapsed(), commits.len(), committed.is_ok());
        committed?;
        let monotonic = self.clock.monotonic();
        let mut ages = self.ages.lock().unwrap_or_else(|p| p.into_inner());
        for s in &staged {
            ages.committed(&s.change, monotonic);
        }
        drop(ages);
        let mut done = Vec::with_capacity(staged.len());
        for Staged { change, .. } in staged {
            if let Some(i) = crate::dnssec::latest_inception(&change.added) {
                self.latest_inception.fetch_max(i, Ordering::Relaxed);
            }
            if change.audit.action != Action::Update {
                tracing::info!(
                    zone = %self.origin, serial = change.serial_to, action = %change.audit.action,
                    change = %change.audit.detail, "change committed"
                );
            }
            done.push((change.serial_to, change.audit.detail));
        }
        let serial = next.serial;
        let soa = next.soa_record();
        self.snapshot.store(next);
        self.propagation.announce(serial, soa);
        Ok(done)
    }

    /// Apply a batch of UPDATEs in order (see `group`): each built on the
    /// state the one before left, the batch signed once after the last
    /// ([`Self::sign_batch`]), then all committed together. Returns each
    /// one's answer, in the batch's order.
    fn commit_updates(
        &self,
        store: &mut Store,
        batch: Vec<UpdateDraft>,
    ) -> Vec<Result<Written, WriteError>> {
        let now = self.clock.now();
        let published = self.snapshot();
        let mut state = published.clone();
        // What the batch's UPDATEs changed, to be signed after the last.
        let mut touched = BTreeSet::new();
        let mut staged = Vec::new();
        // MACs of the UPDATEs that make no change: they go in the same commit.
        let mut remember = Vec::new();
        // Per UPDATE: Ok(Some(i)): staged[i] is its change; Ok(None): no change.
        let mut outcomes: Vec<Result<Option<usize>, WriteError>> = Vec::new();
        for draft in batch {
            let made = drafts::update(
                state.clone(),
                &draft.prereqs,
                &draft.updates,
                &draft.requester(),
                Action::Update,
                now,
            );
            let outcome = match made {
                Ok(Some(mut p)) => {
                    p.accepted = draft.accepted;
                    let (next, s) = self.unsigned(p, &mut touched);
                    state = Arc::new(next);
                    staged.push(s);
                    Ok(Some(staged.len() - 1))
                }
                other => {
                    remember.extend(draft.accepted);
                    other.map(|_| None)
                }
            };
            outcomes.push(outcome);
        }
        if let Some(last) = staged.last_mut() {
            state = self.sign_batch(&published, state, &touched, &mut last.change, now);
        }
        let done = if staged.is_empty() {
            // Nothing to commit: the MACs on their own, so that a copy
            // replayed after a restart (when the zone may have changed so
            // that it would apply) is refused too.
            if !remember.is_empty()
                && let Err(e) = store.remember_accepted(&remember, now)
            {
                tracing::error!(
                    zone = %self.origin, error = %e,
                    "cannot store UPDATEs' MACs; their replay is refused until a restart only"
                );
            }
            Ok(Vec::new())
        } else {
            self.commit_staged(store, staged, state, &remember, now)
        };
        match done {
            Ok(done) => outcomes
                .into_iter()
                .map(|outcome| {
                    outcome.map(|staged| match staged {
                        Some(i) => Written {
                            serial: Some(done[i].0),
                            detail: done[i].1.clone(),
                            ..Written::default()
                        },
                        None => Written::default(),
                    })
                })
                .collect(),
            // The batch is lost as a whole: each of its UPDATEs fails.
            Err(e) => outcomes
                .iter()
                .map(|_| Err(WriteError::Store(e.again())))
                .collect(),
        }
    }
}

impl ZoneHandle {
    /// RRSIGs made while the wall clock was stepped forward carry an
    /// inception in the future; once the step is undone validators take
    /// them as not yet valid (RFC 4035 §5.3.1). When any inception is
    /// ahead of the clock, renew those signatures now (the refresh draft
    /// renews every signature not yet valid, `dnssec::signer`) rather
    /// than at the hourly refresh. Cheap when nothing is ahead (one
    /// comparison). Returns whether the zone was re-signed. Blocking.
    pub fn resign_if_clock_went_back(&self) -> Result<bool, WriteError> {
        let now = self.clock.now();
        if self.signer.is_none() || self.latest_inception.load(Ordering::Relaxed) <= now {
            return Ok(false);
        }
        let w = self.write(Draft::RefreshSignatures)?;
        // What is left is exact again (the value only grows between scans).
        let latest = crate::dnssec::latest_inception(&self.snapshot().all_records()).unwrap_or(0);
        self.latest_inception.store(latest, Ordering::Relaxed);
        if w.serial.is_some() {
            tracing::warn!(
                zone = %self.origin, serial = ?w.serial,
                "the clock went back past signatures' inception; re-signed them"
            );
        }
        Ok(w.serial.is_some())
    }
}

/// The earliest expiration (Unix seconds) of any RRSIG in the zone, None
/// when it holds none.
pub fn signature_horizon(zone: &ZoneData) -> Option<u64> {
    zone.earliest_signature_expiry().map(u64::from)
}

#[cfg(test)]
mod tests;
