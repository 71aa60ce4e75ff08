//! The running server's state: its zones (each an immutable snapshot plus
//! one writer), the policy (ACLs + TSIG keys, swapped whole on reload) and
//! the operations that change them: apply an update, expire stale
//! challenges, reload the policy.
//!
//! Readers (`snapshot()`, `policy()`) never lock: both are `ArcSwap`s.
//! Writers take the zone's writer mutex, so one change per zone is in flight
//! at a time; a change is committed to SQLite before the new snapshot is
//! published and before anyone is told it happened.

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use hickory_proto::rr::{Name, Record, RecordType};

use crate::acl::{
    self, MissingKeys, PolicyState, files_fingerprint, load_policy, report_generated,
};
use crate::clock::Clock;
use crate::config::Config;
use crate::diag::FileErrors;
use crate::dnssec::{self, ZoneSigner};
use crate::metrics::{Metrics, RefusalReason};
use crate::notify::Propagation;
use crate::store::{Audit, Change, Source, Store, StoreError};
use crate::tsig;
use crate::update::{self, Actor, Outcome, Refusal};
use crate::zone::ZoneData;
use crate::zonefile::{self, ZoneSpec};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Files(#[from] FileErrors),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Dnssec(#[from] dnssec::KeyError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// The outcome of the last reload attempt, for logs and status views.
#[derive(Debug, Clone, Default)]
pub struct ReloadStatus {
    pub last_ok: Option<u64>,
    pub last_error: Option<(u64, String)>,
    /// Fingerprint of the ACL and key files last tried (good or bad).
    fingerprint: u64,
}

pub struct ZoneHandle {
    pub origin: Name,
    snapshot: ArcSwap<ZoneData>,
    writer: Mutex<Store>,
    /// A second connection for transfers (IXFR history), so they never
    /// wait for the writer.
    reader: Mutex<Store>,
    pub propagation: Propagation,
    /// None when the zone file turns DNSSEC off.
    pub signer: Option<ZoneSigner>,
}

impl ZoneHandle {
    pub fn snapshot(&self) -> Arc<ZoneData> {
        self.snapshot.load_full()
    }

    pub(crate) fn writer(&self) -> std::sync::MutexGuard<'_, Store> {
        // A panic while holding the lock cannot leave a half-applied change:
        // the snapshot is swapped only after commit. Keep serving.
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Publish a committed snapshot and tell the secondaries.
    pub(crate) fn publish(&self, next: Arc<ZoneData>) {
        let serial = next.serial;
        self.snapshot.store(next);
        self.propagation.announce(serial);
    }

    /// Run `f` on the reader connection (never waits for the writer).
    pub(crate) fn with_reader<T>(&self, f: impl FnOnce(&Store) -> T) -> T {
        f(&self.reader.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The stored diffs from `from` to `to` (IXFR), None if history does not reach.
    pub fn journal_between(
        &self,
        from: u32,
        to: u32,
    ) -> Result<Option<Vec<crate::store::JournalEntry>>, StoreError> {
        self.reader
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .journal_between(&self.origin, from, to)
    }
}

/// What an accepted update did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    Changed { serial: u32, detail: String },
    Unchanged,
}

#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error("{}", .0.reason)]
    Refused(Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Counters of what the server did, for tests and (later) metrics.
#[derive(Debug, Default)]
pub struct Stats {
    pub axfr: std::sync::atomic::AtomicU64,
    pub ixfr_incremental: std::sync::atomic::AtomicU64,
    pub ixfr_full: std::sync::atomic::AtomicU64,
}

/// The last refused UPDATE of a machine (kept in memory: refusals change
/// nothing, so they have no audit row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastRefusal {
    pub time: u64,
    pub zone: String,
    pub reason: RefusalReason,
    pub rcode: String,
    pub source: String,
    /// Owner and type of the RR at fault, when one is.
    pub owner: Option<String>,
    pub rtype: Option<String>,
    /// What the deciding code said (never a secret).
    pub detail: String,
}

/// Graceful shutdown of the UPDATE path: once closed, new UPDATEs are
/// refused and [`Drain::wait_idle`] returns when the ones in flight have
/// been committed and answered.
#[derive(Debug, Default)]
pub struct Drain {
    closing: std::sync::atomic::AtomicBool,
    in_flight: std::sync::atomic::AtomicUsize,
}

/// Held while one UPDATE is processed.
pub struct DrainGuard<'a>(&'a Drain);

impl Drop for DrainGuard<'_> {
    fn drop(&mut self) {
        self.0
            .in_flight
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drain {
    /// Start one UPDATE, unless shutting down.
    pub fn enter(&self) -> Option<DrainGuard<'_>> {
        use std::sync::atomic::Ordering::SeqCst;
        self.in_flight.fetch_add(1, SeqCst);
        let guard = DrainGuard(self);
        // Checked after counting, so `wait_idle` never misses one.
        (!self.closing.load(SeqCst)).then_some(guard)
    }

    /// Whether `close` was called (readiness turns false).
    pub fn is_closing(&self) -> bool {
        self.closing.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Refuse new UPDATEs from now on.
    pub fn close(&self) {
        self.closing
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Wait (at most `limit`) until no UPDATE is in flight; false on timeout.
    pub async fn wait_idle(&self, limit: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        while self.in_flight.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        true
    }
}

/// One readiness check (`/readyz`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

pub struct App {
    pub config: Config,
    pub stats: Stats,
    pub metrics: Arc<Metrics>,
    pub drain: Drain,
    /// The bearer token for HTTP reads from off the machine, if configured.
    http_token: ArcSwap<Option<crate::http::access::Token>>,
    last_refusals: Mutex<std::collections::HashMap<String, LastRefusal>>,
    /// The last database write probe for /readyz and when it ran: probes
    /// take SQLite's write lock, so anonymous callers get a cached answer.
    db_probe: Mutex<Option<(std::time::Instant, Result<(), String>)>>,
    pub clock: Arc<dyn Clock>,
    pub verifier: tsig::Verifier,
    zones: Vec<Arc<ZoneHandle>>,
    policy: ArcSwap<PolicyState>,
    reload: Mutex<ReloadStatus>,
}

/// A digest of everything in the zone file that is served, so a changed
/// file bumps the serial.
fn static_fingerprint(spec: &ZoneSpec) -> String {
    let mut lines: Vec<String> = spec
        .records
        .iter()
        .map(|r| r.to_string().to_lowercase())
        .collect();
    lines.sort();
    let soa = spec.soa.record(&spec.origin, 0).to_string();
    let text = format!("{soa}\n{}", lines.join("\n"));
    let d = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn missing_keys_mode(config: &Config) -> MissingKeys {
    if config.generate_missing_keys {
        MissingKeys::Generate
    } else {
        MissingKeys::Error
    }
}

impl App {
    /// Load zones, open the database, load the policy. Any error is fatal here:
    /// there is no previous configuration to fall back on.
    pub fn open(config: Config, clock: Arc<dyn Clock>) -> Result<Self, StartError> {
        let specs = zonefile::load_dir(&config.zones_dir)?;
        let now = clock.now();
        let http_token = crate::http::access::Token::load(&config).map_err(FileErrors::from)?;
        let metrics = Arc::new(Metrics::default());
        let mut zones = Vec::new();
        for spec in specs {
            let spec = Arc::new(spec);
            let mut store = Store::open(&config.database)?;
            store.set_metrics(metrics.clone());
            let fp = static_fingerprint(&spec);
            let data = match store.load_zone(&spec.origin)? {
                None => {
                    // A fresh zone starts at the current time, so a rebuilt
                    // database still moves secondaries forward.
                    let serial = now as u32;
                    store.create_zone(&spec.origin, serial, &fp, &spec.records, now)?;
                    ZoneData::new(spec.clone(), serial, [])
                }
                Some(state) if state.static_fingerprint == fp => {
                    ZoneData::new(spec.clone(), state.serial, state.dynamic)
                }
                Some(state) => {
                    let same = |a: &Record, b: &Record| {
                        a.name == b.name && a.ttl == b.ttl && a.data == b.data
                    };
                    let removed: Vec<Record> = state
                        .statics
                        .iter()
                        .filter(|o| !spec.records.iter().any(|n| same(o, n)))
                        .cloned()
                        .collect();
                    let added: Vec<Record> = spec
                        .records
                        .iter()
                        .filter(|n| !state.statics.iter().any(|o| same(o, n)))
                        .cloned()
                        .collect();
                    let change = Change {
                        serial_from: state.serial,
                        serial_to: state.serial.wrapping_add(1),
                        removed,
                        added,
                        source: Source::Static,
                        audit: Audit {
                            key: None,
                            source: None,
                            action: "zone-file".into(),
                            detail: format!("{} changed", spec.path.display()),
                        },
                    };
                    store.commit(&spec.origin, &change, now, Some(&fp))?;
                    tracing::info!(zone = %spec.origin, serial = change.serial_to, "zone file changed; serial bumped");
                    ZoneData::new(spec.clone(), change.serial_to, state.dynamic)
                }
            };
            let signer = ZoneSigner::open(&spec, &config.data_dir)?;
            let mut data = data;
            if let Some(change) = dnssec::sync(signer.as_ref(), &mut data, now) {
                store.commit(&spec.origin, &change, now, None)?;
                tracing::info!(zone = %spec.origin, serial = data.serial, change = %change.audit.detail, "DNSSEC records brought up to date");
            }
            tracing::info!(zone = %spec.origin, serial = data.serial, records = data.record_count(), "zone loaded");
            if let Some(max) = config.database_max_size {
                store.limit_size(max)?;
            }
            let reader = Store::open(&config.database)?;
            zones.push(Arc::new(ZoneHandle {
                origin: spec.origin.clone(),
                propagation: Propagation::new(&spec, data.serial, clock.clone()),
                snapshot: ArcSwap::from_pointee(data),
                writer: Mutex::new(store),
                reader: Mutex::new(reader),
                signer,
            }));
        }
        // Most specific zone first, so the first match is the longest.
        zones.sort_by_key(|z| std::cmp::Reverse(z.origin.num_labels()));
        let origins: Vec<Name> = zones.iter().map(|z| z.origin.clone()).collect();
        let policy = load_policy(&config, &origins, missing_keys_mode(&config))?;
        report_generated(&policy);
        let fingerprint = files_fingerprint(&[&config.acl_dir, &config.keys_dir]);
        Ok(Self {
            stats: Stats::default(),
            metrics,
            drain: Drain::default(),
            http_token: ArcSwap::from_pointee(http_token),
            last_refusals: Mutex::new(Default::default()),
            db_probe: Mutex::new(None),
            verifier: tsig::Verifier::new(config.tsig_fudge),
            config,
            clock,
            zones,
            policy: ArcSwap::from_pointee(policy),
            reload: Mutex::new(ReloadStatus {
                last_ok: Some(now),
                last_error: None,
                fingerprint,
            }),
        })
    }

    pub fn zones(&self) -> &[Arc<ZoneHandle>] {
        &self.zones
    }

    /// The zone holding `name` (longest match), if we serve one.
    pub fn zone_for(&self, name: &Name) -> Option<&Arc<ZoneHandle>> {
        self.zones.iter().find(|z| z.origin.zone_of(name))
    }

    pub fn zone_exact(&self, name: &Name) -> Option<&Arc<ZoneHandle>> {
        self.zones.iter().find(|z| z.origin == *name)
    }

    pub fn policy(&self) -> Arc<PolicyState> {
        self.policy.load_full()
    }

    pub fn reload_status(&self) -> ReloadStatus {
        self.reload.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Reload ACLs and keys. On any error the running policy stays and every
    /// error is logged with path:line:column. `force` reloads even when the
    /// files look unchanged (SIGHUP).
    pub fn reload_policy(&self, force: bool) -> Result<bool, FileErrors> {
        let fp = files_fingerprint(&[&self.config.acl_dir, &self.config.keys_dir]);
        let mut status = self.reload.lock().unwrap_or_else(|p| p.into_inner());
        if !force && fp == status.fingerprint {
            return Ok(false);
        }
        status.fingerprint = fp;
        let origins: Vec<Name> = self.zones.iter().map(|z| z.origin.clone()).collect();
        let now = self.clock.now();
        match load_policy(&self.config, &origins, missing_keys_mode(&self.config)) {
            Ok(p) => {
                report_generated(&p);
                tracing::info!(
                    machines = p.policy.machines().len(),
                    keys = p.keys.len(),
                    "policy reloaded"
                );
                self.policy.store(Arc::new(p));
                self.metrics.acl_reloads.inc(&["ok"]);
                status.last_ok = Some(now);
                status.last_error = None;
                // key generation changed the directory: remember the new state
                status.fingerprint =
                    files_fingerprint(&[&self.config.acl_dir, &self.config.keys_dir]);
                Ok(true)
            }
            Err(errors) => {
                for e in &errors.0 {
                    tracing::error!(error = %e, "policy reload failed; the previous policy stays in force");
                }
                status.last_error = Some((now, errors.to_string()));
                self.metrics.acl_reloads.inc(&["failed"]);
                Err(errors)
            }
        }
    }

    /// Apply one update under the zone's writer lock: check, commit, publish.
    /// Blocking (SQLite): call from `spawn_blocking`.
    pub fn apply_update(
        &self,
        zone: &ZoneHandle,
        prereqs: &[Record],
        updates: &[Record],
        actor: &Actor<'_>,
    ) -> Result<Applied, UpdateError> {
        let mut store = zone.writer();
        let current = zone.snapshot.load_full();
        match update::process(&current, prereqs, updates, actor).map_err(UpdateError::Refused)? {
            Outcome::Unchanged => Ok(Applied::Unchanged),
            Outcome::Applied {
                zone: mut next,
                mut change,
                touched,
            } => {
                let now = self.clock.now();
                if let Some(signer) = &zone.signer {
                    signer
                        .resign(&current, &mut next, &touched, now)
                        .into_change(&mut change);
                }
                store.commit(&zone.origin, &change, now, None)?;
                let serial = next.serial;
                zone.publish(Arc::from(next));
                Ok(Applied::Changed {
                    serial,
                    detail: change.audit.detail,
                })
            }
        }
    }

    /// Remove TXT records at `_acme-challenge` names older than the
    /// configured age, as ordinary journaled changes. Returns how many.
    pub fn sweep_expired(&self) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let before = now.saturating_sub(self.config.challenge_max_age.as_secs());
        let mut total = 0;
        for zone in &self.zones {
            let mut store = zone.writer();
            let aged = store.dynamic_older_than(&zone.origin, RecordType::TXT, before)?;
            let stale: Vec<Record> = aged
                .into_iter()
                .map(|a| a.record)
                .filter(|r| {
                    r.name
                        .iter()
                        .next()
                        .is_some_and(|l| l.eq_ignore_ascii_case(b"_acme-challenge"))
                })
                .collect();
            if stale.is_empty() {
                continue;
            }
            let removed = self.remove_records(zone, &mut store, stale, "expired", None)?;
            if removed > 0 {
                self.metrics
                    .records_expired
                    .add(&[&zone.origin.to_string()], removed as u64);
                tracing::info!(zone = %zone.origin, records = removed, "stale challenges expired");
            }
            total += removed;
        }
        Ok(total)
    }

    /// Remove those of `records` that are present, as one journaled change
    /// made by the server (re-signed, committed, published). The caller holds
    /// the zone's writer. Returns how many were removed.
    pub(crate) fn remove_records(
        &self,
        zone: &ZoneHandle,
        store: &mut Store,
        records: Vec<Record>,
        action: &str,
        key: Option<String>,
    ) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let current = zone.snapshot.load_full();
        let mut next = (*current).clone();
        let removed: Vec<Record> = records
            .into_iter()
            .filter(|r| next.remove(&r.name, r.record_type(), &r.data))
            .collect();
        if removed.is_empty() {
            return Ok(0);
        }
        next.serial = current.serial.wrapping_add(1);
        let touched: std::collections::BTreeSet<(Name, RecordType)> = removed
            .iter()
            .map(|r| (r.name.to_lowercase(), r.record_type()))
            .collect();
        let mut change = Change {
            serial_from: current.serial,
            serial_to: next.serial,
            audit: Audit {
                key,
                source: None,
                action: action.into(),
                detail: update::describe(&removed, &[]),
            },
            removed,
            added: Vec::new(),
            source: Source::Dynamic,
        };
        let count = change.removed.len();
        if let Some(signer) = &zone.signer {
            signer
                .resign(&current, &mut next, &touched, now)
                .into_change(&mut change);
        }
        store.commit(&zone.origin, &change, now, None)?;
        tracing::info!(zone = %zone.origin, serial = next.serial, action, change = %change.audit.detail, "server change committed");
        zone.publish(Arc::new(next));
        Ok(count)
    }

    /// Re-sign signatures close to expiry, one journaled change per zone
    /// that needed any. Returns how many zones changed.
    pub fn refresh_signatures(&self) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let mut changed = 0;
        for zone in &self.zones {
            let Some(signer) = &zone.signer else { continue };
            let mut store = zone.writer();
            let mut next = (*zone.snapshot.load_full()).clone();
            if let Some(change) = dnssec::refresh(signer, &mut next, now) {
                store.commit(&zone.origin, &change, now, None)?;
                tracing::info!(zone = %zone.origin, serial = next.serial, change = %change.audit.detail, "signatures refreshed");
                zone.publish(Arc::new(next));
                changed += 1;
            }
        }
        Ok(changed)
    }

    /// Remember a machine's refused UPDATE for the status views.
    pub fn record_refusal(&self, machine: &str, refusal: LastRefusal) {
        self.last_refusals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(machine.to_string(), refusal);
    }

    /// The last refusal of each machine since the process started.
    pub fn last_refusals(&self) -> std::collections::HashMap<String, LastRefusal> {
        self.last_refusals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The HTTP bearer token in force.
    pub fn http_token(&self) -> Arc<Option<crate::http::access::Token>> {
        self.http_token.load_full()
    }

    /// Read the HTTP token file again (SIGHUP); on error the old token stays.
    pub fn reload_http_token(&self) {
        match crate::http::access::Token::load(&self.config) {
            Ok(t) => self.http_token.store(Arc::new(t)),
            Err(e) => {
                tracing::error!(error = %e, "HTTP token not reloaded; the previous one stays in force")
            }
        }
    }

    /// Wait until no change is being committed (shutdown). Blocking.
    pub fn quiesce(&self) {
        for z in &self.zones {
            drop(z.writer());
        }
    }

    /// What `/readyz` checks: every zone loaded, the database takes writes
    /// and the last commit did not fail, and no served signature has
    /// expired. Blocking (SQLite).
    pub fn readiness(&self) -> Vec<Check> {
        let now = self.clock.now();
        let mut out = Vec::new();
        if self.drain.is_closing() {
            out.push(Check {
                name: "running".into(),
                ok: false,
                detail: "shutting down".into(),
            });
        }
        out.push(Check {
            name: "zones".into(),
            ok: !self.zones.is_empty(),
            detail: format!("{} zone(s) loaded", self.zones.len()),
        });
        let db = self.probe_database();
        let failed = self
            .metrics
            .last_commit_failed
            .load(std::sync::atomic::Ordering::Relaxed);
        out.push(Check {
            name: "database".into(),
            ok: db.is_ok() && !failed,
            detail: match (db, failed) {
                (Err(e), _) => e,
                (Ok(()), true) => "the last commit failed".into(),
                (Ok(()), false) => "writable".into(),
            },
        });
        for z in &self.zones {
            let snap = z.snapshot();
            if z.signer.is_none() {
                continue;
            }
            let (ok, detail) = match signature_horizon(&snap) {
                None => (false, "no signatures".to_string()),
                Some(exp) if exp <= now => {
                    (false, format!("a signature expired {} s ago", now - exp))
                }
                Some(exp) => (true, format!("earliest expiry in {} s", exp - now)),
            };
            out.push(Check {
                name: format!("signatures {}", z.origin),
                ok,
                detail,
            });
        }
        out
    }

    /// Whether the database takes a write, probed at most every 5 s (the
    /// probe holds SQLite's write lock; /readyz is open to everyone). The
    /// error is reported without the file's path (the log has it).
    fn probe_database(&self) -> Result<(), String> {
        const EVERY: std::time::Duration = std::time::Duration::from_secs(5);
        let mut cached = self.db_probe.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, result)) = cached.as_ref()
            && at.elapsed() < EVERY
        {
            return result.clone();
        }
        let result = match self.zones.first() {
            None => Err("no zone, no database connection".to_string()),
            Some(z) => z.with_reader(|s| s.check_writable()).map_err(|e| {
                tracing::warn!(error = %e, "readiness: the database does not take a write");
                "the database does not take a write (see the log)".to_string()
            }),
        };
        *cached = Some((std::time::Instant::now(), result.clone()));
        result
    }

    /// Audit rows matching the filters, newest first (any zone).
    pub fn audit_query(
        &self,
        zone: Option<&Name>,
        keys: Option<&[String]>,
        since: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, String, Audit)>, StoreError> {
        match self.zones.first() {
            Some(z) => z.with_reader(|s| s.audit_query(zone, keys, since, limit)),
            None => Ok(Vec::new()),
        }
    }

    /// The newest audit row of each key (what each machine changed last).
    pub fn last_changes(&self) -> Result<Vec<(u64, String, Audit)>, StoreError> {
        match self.zones.first() {
            Some(z) => z.with_reader(|s| s.last_change_by_key()),
            None => Ok(Vec::new()),
        }
    }

    /// Audit rows, newest first.
    pub fn audit_tail(&self, zone: &Name, limit: usize) -> Result<Vec<(u64, Audit)>, StoreError> {
        match self.zone_exact(zone) {
            Some(z) => z.writer().audit_tail(zone, limit),
            None => Ok(Vec::new()),
        }
    }
}

/// The earliest expiration (Unix seconds) of any RRSIG in the zone, None
/// when it holds none.
pub fn signature_horizon(zone: &ZoneData) -> Option<u64> {
    zone.earliest_signature_expiry().map(u64::from)
}

/// Re-exported for `check`.
pub use acl::Machine;
