//! A signed zone's DNSSEC keys over their life: loaded from the
//! `dnssec_keys` table at start (the zone's first key recorded there on
//! first sight), stepped through a rollover by [`drive`] (observe, ask
//! `dnssec::roll::plan`, carry the step out as a journaled change through
//! the writer), and shown by [`ZoneHandle::key_status`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::rr::Name;

use super::open::OpenError;
use super::{Draft, WriteError, Written, ZoneHandle};
use crate::dnssec::parent;
use crate::dnssec::parent_view::{DsId, ParentView, ServerDs};
use crate::dnssec::roll::{self, Observed, Outlook, Step, Timings};
use crate::dnssec::signer::{Cds, KeySet};
use crate::dnssec::{KeyError, ZoneKey, ZoneSigner};
use crate::store::{Store, StoreError};
use crate::zone::ZoneData;
use crate::zone::change::{Action, Audit};
use crate::zone::keys::{KeyRecord, KeyState};
use crate::zonefile::ZoneSpec;

/// How long one question to a parent nameserver may take.
const PARENT_TIMEOUT: Duration = Duration::from_secs(3);
/// How often [`drive`] looks at the plan.
const TICK: Duration = Duration::from_secs(1);
/// The longest wait after a step failed before it is tried again.
const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// What the writer keeps of a signed zone's keys besides the signer.
#[derive(Debug)]
pub struct Life {
    /// The zone file wants the zone signed (false: being turned off).
    enabled: bool,
    /// The longest TTL of a signed RRset.
    max_ttl: u32,
    data_dir: PathBuf,
    /// The stored records, as of the last step.
    records: Mutex<Vec<KeyRecord>>,
    /// The parent's DS as last asked.
    parent: Mutex<Option<ParentView>>,
    /// The DS of each key file read so far (a retired key's file is read
    /// once, not at every look).
    ds: Mutex<std::collections::HashMap<String, DsId>>,
}

/// `dnssec status` of one zone.
#[derive(Debug, Clone)]
pub struct KeyStatus {
    pub zone: Name,
    pub parent_zone: Name,
    pub keys: Vec<(KeyRecord, Option<DsId>, Outlook)>,
    pub parent: Option<ParentView>,
}

fn key_file(data_dir: &Path, file: &str) -> PathBuf {
    crate::dnssec::key::key_dir(data_dir).join(file)
}

/// The zone's parent: its name less the first label.
pub fn parent_of(zone: &Name) -> Name {
    zone.base_name()
}

/// The keys that sign now, from their records: the single source of the
/// signer's key set (a step moves records, then the set is made again).
fn key_set(zone: &Name, data_dir: &Path, records: &[KeyRecord]) -> Result<KeySet, KeyError> {
    let mut set = KeySet::none();
    for r in records
        .iter()
        .filter(|r| r.state.signs() || r.state.published())
    {
        let key = Arc::new(ZoneKey::load(zone, &key_file(data_dir, &r.file))?);
        if r.state.signs() {
            set.signing.push(key.clone());
        }
        if r.state.published() {
            set.published.push(key);
        }
    }
    let find = |state: KeyState| records.iter().rev().find(|r| r.state == state);
    let by_file = |r: &KeyRecord| {
        set.published
            .iter()
            .find(|k| k.file_name() == r.file)
            .cloned()
    };
    set.cds = match (find(KeyState::Active), find(KeyState::Ready)) {
        (Some(a), _) if a.ds_delete.is_some() => Cds::Delete,
        (_, Some(r)) => by_file(r).map_or(Cds::Absent, Cds::Key),
        (Some(a), None) => by_file(a).map_or(Cds::Absent, Cds::Key),
        (None, None) => set.published.last().cloned().map_or(Cds::Absent, Cds::Key),
    };
    Ok(set)
}

/// The longest TTL a signed RRset of the zone can have.
fn max_ttl(spec: &ZoneSpec, settings: &crate::zonefile::Settings) -> u32 {
    spec.records
        .iter()
        .map(|r| r.ttl)
        .chain([spec.ttl.max, spec.soa.ttl, settings.dnskey_ttl])
        .max()
        .unwrap_or(0)
}

/// The signer of a zone whose file turns DNSSEC on, or of a zone still
/// signed (`signed_now`: its snapshot has a DNSKEY RRset) whose file turns
/// it off, with its keys as the database records them. On first sight the
/// zone's key file is recorded as its active key, whatever its algorithm
/// (an algorithm rollover follows if the file asks for another); it is
/// made now if there is none.
pub(super) fn open_signer(
    spec: &ZoneSpec,
    data_dir: &Path,
    store: &mut Store,
    signed_now: bool,
    now: u64,
) -> Result<Option<(ZoneSigner, Life)>, OpenError> {
    let zone = &spec.origin;
    let mut records = store.keys(zone)?;
    let has_keys = records
        .iter()
        .any(|r| r.state.signs() || r.state.published());
    let (settings, enabled) = match (&spec.dnssec, &spec.dnssec_off) {
        (Some(s), _) => (s.clone(), true),
        // Off in the zone file, still signed here: turned off step by step.
        (None, Some(s)) if has_keys || signed_now => (s.clone(), false),
        _ => return Ok(None),
    };
    if !has_keys {
        let first = crate::dnssec::key::key_path(data_dir, zone);
        let first_name = first.file_name().map(|n| n.to_string_lossy().into_owned());
        let used = match &first_name {
            Some(f) => store.key_id(zone, f)?.is_some(),
            None => false,
        };
        let (key, created) = if used {
            // Signed again after it was turned off: a new key.
            let (k, _) = ZoneKey::create_next(data_dir, zone, settings.algorithm, now)?;
            (k, true)
        } else if first.exists() {
            // Signed before keys were recorded (or on the first start after
            // an upgrade): that key, as it is; its DS may be at the parent.
            (ZoneKey::load(zone, &first)?, false)
        } else if enabled {
            ZoneKey::load_or_create(data_dir, zone, settings.algorithm)?
        } else {
            tracing::warn!(zone = %zone, file = %first.display(),
                "DNSSEC is off in the zone file and the zone's key file is missing: the signatures cannot be kept while the parent's DS goes; removing them now");
            return Ok(None);
        };
        if created {
            tracing::warn!(zone = %zone, key_tag = key.key_tag(), file = %key.path.display(),
                "generated a DNSSEC key; give the parent its DS (`zonewarden ds {zone}`)");
        }
        let mut r = KeyRecord::generated(key.key_tag(), key.algorithm, key.file_name(), now);
        r.enter(KeyState::Published, now, None);
        r.enter(KeyState::Active, now, None);
        let audit = Audit::server(
            Action::DnssecKey,
            format!(
                "key {} ({}) is the zone's key",
                r.tag,
                r.algorithm.config_name()
            ),
        );
        store.save_keys(zone, &[r], &audit, now)?;
        records = store.keys(zone)?;
    }
    let keys = key_set(zone, data_dir, &records)?;
    let life = Life {
        enabled,
        max_ttl: max_ttl(spec, &settings),
        data_dir: data_dir.to_path_buf(),
        records: Mutex::new(records),
        parent: Mutex::new(None),
        ds: Mutex::default(),
    };
    Ok(Some((ZoneSigner::with_keys(keys, settings), life)))
}

fn timings(s: &crate::zonefile::Settings, life: &Life) -> Timings {
    Timings {
        dnskey_ttl: s.dnskey_ttl,
        propagation_delay: s.propagation_delay,
        key_lifetime: s.key_lifetime,
        algorithm: s.algorithm,
        max_ttl: life.max_ttl,
        enabled: life.enabled,
    }
}

impl ZoneHandle {
    fn life(&self) -> Option<(&ZoneSigner, &Life)> {
        self.signer.as_ref().zip(self.life.as_ref())
    }

    /// The DS of a recorded key (None if its file cannot be read).
    fn ds_of(&self, r: &KeyRecord) -> Option<DsId> {
        let (signer, life) = self.life()?;
        if let Some(ds) = lock(&life.ds).get(&r.file) {
            return Some(ds.clone());
        }
        let keys = signer.keys();
        let ds = match keys.signing.iter().find(|k| k.file_name() == r.file) {
            Some(k) => DsId::of(&k.ds()),
            None => ZoneKey::load(&self.origin, &key_file(&life.data_dir, &r.file))
                .map(|k| DsId::of(&k.ds()))
                .ok()?,
        };
        lock(&life.ds).insert(r.file.clone(), ds.clone());
        Some(ds)
    }

    /// What the rollover sees now.
    fn observe(&self, now: u64) -> Observed {
        let served = crate::notify::Propagation::lowest_served(
            self.snapshot().serial,
            &self.propagation.statuses(),
        );
        let parent = self.life().and_then(|(_, l)| lock(&l.parent).clone());
        Observed {
            now,
            served,
            parent,
        }
    }

    fn plan(&self, now: u64) -> Option<roll::Plan> {
        let (signer, life) = self.life()?;
        let records = lock(&life.records).clone();
        let observed = self.observe(now);
        Some(roll::plan(
            &records,
            &timings(&signer.settings, life),
            &observed,
            &self.origin.to_string(),
            &parent_of(&self.origin).to_string(),
            |r| self.ds_of(r),
        ))
    }

    /// Every key of the zone with what it waits for (`dnssec status`).
    pub fn key_status(&self) -> Option<KeyStatus> {
        let (_, life) = self.life()?;
        let plan = self.plan(self.clock.now())?;
        let records = lock(&life.records).clone();
        let keys = records
            .into_iter()
            .map(|r| {
                let out = plan
                    .keys
                    .iter()
                    .find(|(id, _)| *id == r.id)
                    .map(|(_, o)| o.clone())
                    .unwrap_or_default();
                let ds = self.ds_of(&r);
                (r, ds, out)
            })
            .collect();
        Some(KeyStatus {
            zone: self.origin.clone(),
            parent_zone: parent_of(&self.origin),
            keys,
            parent: lock(&life.parent).clone(),
        })
    }

    /// Ask for a rollover away from the active key (`zonewarden dnssec
    /// roll`); [`drive`] starts it within a second. False when the zone is
    /// unsigned or a rollover is already under way. Blocking (SQLite).
    pub fn request_roll(&self) -> Result<bool, StoreError> {
        let Some((_, life)) = self.life() else {
            return Ok(false);
        };
        let mut store = self.lock_store();
        let mut records = lock(&life.records);
        if records.iter().any(|r| r.state.incoming()) {
            return Ok(false);
        }
        let now = self.clock.now();
        let Some(active) = records
            .iter_mut()
            .rev()
            .find(|r| r.state == KeyState::Active)
        else {
            return Ok(false);
        };
        active.roll_requested = Some(now);
        let audit = Audit::server(
            Action::DnssecKey,
            format!("rollover of key {} asked for", active.tag),
        );
        store.save_keys(&self.origin, std::slice::from_ref(active), &audit, now)?;
        Ok(true)
    }

    /// Carry out one rollover step (under the writer's lock): move the
    /// records, make the signer's key set from them, and commit the zone
    /// brought in line as one journaled change with the records; a step
    /// that changes no record of the zone is stored with an audit row.
    pub(super) fn key_step(
        &self,
        store: &mut Store,
        base: Arc<ZoneData>,
        step: Step,
        now: u64,
        written: &mut Written,
    ) -> Result<(), WriteError> {
        let Some((signer, life)) = self.life() else {
            return Ok(());
        };
        let mut records = store.keys(&self.origin)?;
        let at = |records: &[KeyRecord], id: i64| records.iter().position(|r| r.id == id);
        let parent = parent_of(&self.origin);
        // The records the step moves (by index; a new key is pushed), what
        // it did in words, and whether the zone changes: None, the records
        // alone; Some(entered), the zone too, the moved records entering
        // their (new) state by its serial when `entered`.
        let (moved, detail, zone): (Vec<usize>, String, Option<bool>) = match step {
            Step::Start {
                old,
                algorithm,
                reason,
            } => {
                let Some(o) = at(&records, old) else {
                    return Ok(());
                };
                let (key, file) =
                    ZoneKey::create_next(&life.data_dir, &self.origin, algorithm, now)?;
                let mut n = KeyRecord::generated(key.key_tag(), algorithm, file, now);
                let (state, how) = if algorithm == records[o].algorithm {
                    (KeyState::Published, "published and signing")
                } else {
                    (
                        KeyState::Signing,
                        "signing (not published yet: algorithm rollover)",
                    )
                };
                n.state = state;
                let detail = format!(
                    "key {} ({}) {how} beside key {} ({reason})",
                    n.tag,
                    algorithm.config_name(),
                    records[o].tag
                );
                records.push(n);
                (vec![records.len() - 1], detail, Some(true))
            }
            Step::Publish { key } => {
                let Some(i) = at(&records, key) else {
                    return Ok(());
                };
                records[i].state = KeyState::Published;
                (
                    vec![i],
                    format!("key {} published", records[i].tag),
                    Some(true),
                )
            }
            Step::Submit { key } => {
                let Some(i) = at(&records, key) else {
                    return Ok(());
                };
                records[i].state = KeyState::Ready;
                let detail = format!("DS of key {} submitted (CDS, CDNSKEY)", records[i].tag);
                (vec![i], detail, Some(true))
            }
            Step::Retire { old, new } => {
                let (Some(o), Some(n)) = (at(&records, old), at(&records, new)) else {
                    return Ok(());
                };
                let same = records[o].algorithm == records[n].algorithm;
                records[o].state = if same {
                    KeyState::Retired
                } else {
                    KeyState::Withdrawn
                };
                records[n].state = KeyState::Active;
                let detail = format!(
                    "key {} {}, key {} active",
                    records[o].tag,
                    if same {
                        "retired"
                    } else {
                        "withdrawn (its signatures stay one DNSKEY TTL)"
                    },
                    records[n].tag
                );
                (vec![o, n], detail, Some(true))
            }
            Step::Unsign { key } => {
                let Some(i) = at(&records, key) else {
                    return Ok(());
                };
                records[i].state = KeyState::Retired;
                (
                    vec![i],
                    format!("signatures of key {} removed, key retired", records[i].tag),
                    Some(true),
                )
            }
            Step::Leave { key } => {
                let Some(i) = at(&records, key) else {
                    return Ok(());
                };
                records[i].ds_delete = Some(now);
                records[i].ds_removed = None;
                let detail = format!(
                    "turning DNSSEC off: CDS and CDNSKEY say delete (RFC 8078) to {parent}"
                );
                (vec![i], detail, Some(false))
            }
            Step::Stay { key } => {
                let Some(i) = at(&records, key) else {
                    return Ok(());
                };
                records[i].ds_delete = None;
                let detail = format!(
                    "DNSSEC on again: CDS and CDNSKEY name key {}",
                    records[i].tag
                );
                (vec![i], detail, Some(false))
            }
            Step::Off { key } => {
                let Some(i) = at(&records, key) else {
                    return Ok(());
                };
                records[i].state = KeyState::Retired;
                let detail =
                    format!("DNSSEC off: no DS left at {parent}; every DNSSEC record removed");
                (vec![i], detail, Some(true))
            }
            Step::DsSeen { key, ttl } => {
                let Some(i) = at(&records, key) else {
                    return Ok(());
                };
                records[i].ds_seen = Some(now);
                records[i].ds_ttl = Some(ttl);
                let detail = format!(
                    "DS of key {} seen at every nameserver of {parent} (TTL {ttl} s)",
                    records[i].tag
                );
                (vec![i], detail, None)
            }
            Step::DsRemoved { key } => {
                let Some(i) = at(&records, key) else {
                    return Ok(());
                };
                records[i].ds_removed = Some(now);
                let detail = if records[i].state == KeyState::Active {
                    format!("no DS left at any nameserver of {parent}")
                } else {
                    format!(
                        "DS of key {} gone from every nameserver of {parent}",
                        records[i].tag
                    )
                };
                (vec![i], detail, None)
            }
            Step::Remove { key } => {
                let Some(i) = at(&records, key) else {
                    return Ok(());
                };
                records[i].enter(KeyState::Removed, now, None);
                (
                    vec![i],
                    format!("key {} removed from every cache", records[i].tag),
                    None,
                )
            }
        };
        let Some(entered) = zone else {
            let moved: Vec<KeyRecord> = moved.into_iter().map(|i| records[i].clone()).collect();
            return self.save_only(store, life, &moved, detail, now);
        };
        self.rekey_with(
            store, life, signer, base, records, moved, detail, now, written, entered,
        )
    }

    /// The zone brought in line with `records` (the signer's keys made
    /// from them) and committed with the moved ones; `entered`: the moved
    /// records entered their state now, by this change's serial.
    #[allow(clippy::too_many_arguments)]
    fn rekey_with(
        &self,
        store: &mut Store,
        life: &Life,
        signer: &ZoneSigner,
        base: Arc<ZoneData>,
        records: Vec<KeyRecord>,
        moved: Vec<usize>,
        detail: String,
        now: u64,
        written: &mut Written,
        entered: bool,
    ) -> Result<(), WriteError> {
        let keys = key_set(&self.origin, &life.data_dir, &records)?;
        let previous = signer.set_keys(keys);
        let mut next = (*base).clone();
        let Some(change) = crate::dnssec::rekey(signer, &mut next, now, detail.clone()) else {
            // Nothing in the zone to change: store the records alone.
            let moved: Vec<KeyRecord> = moved.into_iter().map(|i| records[i].clone()).collect();
            return self.save_only(store, life, &moved, detail, now);
        };
        let serial = next.serial;
        let moved: Vec<KeyRecord> = moved
            .into_iter()
            .map(|i| {
                let mut r = records[i].clone();
                if entered {
                    let state = r.state;
                    r.enter(state, now, Some(serial));
                }
                r
            })
            .collect();
        tracing::info!(zone = %self.origin, serial, "{detail}");
        let mut p = super::drafts::prepared(base, next, change);
        p.keys = moved;
        if let Err(e) = self.apply_into(store, p, now, written) {
            signer.set_keys((*previous).clone());
            return Err(e.into());
        }
        *lock(&life.records) = store.keys(&self.origin)?;
        Ok(())
    }

    fn save_only(
        &self,
        store: &mut Store,
        life: &Life,
        records: &[KeyRecord],
        detail: String,
        now: u64,
    ) -> Result<(), WriteError> {
        tracing::info!(zone = %self.origin, "{detail}");
        let audit = Audit::server(Action::DnssecKey, detail);
        store.save_keys(&self.origin, records, &audit, now)?;
        *lock(&life.records) = store.keys(&self.origin)?;
        Ok(())
    }

    /// Whether a step waits on the parent and it is time to ask again.
    fn parent_due(&self, now: u64) -> bool {
        let Some((signer, life)) = self.life() else {
            return false;
        };
        let records = lock(&life.records);
        // Only a step that depends on the parent asks it, or, for `dnssec
        // status`, whether the active key's DS is there when the zone file
        // names the parent's nameservers (never the resolver for that).
        let named = !signer.settings.parent_nameservers.is_empty();
        let waits = records.iter().any(|r| match r.state {
            KeyState::Ready => true,
            KeyState::Active if !life.enabled || r.ds_delete.is_some() => r.ds_removed.is_none(),
            KeyState::Active => r.ds_seen.is_none() && named,
            KeyState::Retired => r.ds_removed.is_none(),
            _ => false,
        });
        let last = lock(&life.parent).as_ref().map(|p| p.at);
        waits && last.is_none_or(|at| now >= at + u64::from(signer.settings.parent_check_interval))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The parent's nameservers' DS sets now (each asked directly,
/// `dnssec::parent::ds_at`).
async fn ask_parent(servers: &[SocketAddr], zone: &Name, now: u64) -> ParentView {
    let mut out = Vec::new();
    for s in servers {
        let answer = parent::ds_at(*s, zone, PARENT_TIMEOUT)
            .await
            .map(|a| (a.records.iter().map(DsId::of).collect(), a.ttl))
            .map_err(|e| e.to_string());
        out.push(ServerDs {
            server: s.to_string(),
            answer,
        });
    }
    ParentView {
        at: now,
        servers: out,
    }
}

/// The parent's nameservers: the zone file's `parent-nameservers`, or
/// those of the parent zone found through the system's resolver.
async fn parent_servers(configured: &[SocketAddr], zone: &Name) -> Result<Vec<SocketAddr>, String> {
    if !configured.is_empty() {
        return Ok(configured.to_vec());
    }
    let resolver = parent::system_resolver().map_err(|e| e.to_string())?;
    parent::parent_nameservers(zone, resolver, PARENT_TIMEOUT)
        .await
        .map_err(|e| format!("no parent-nameservers in the zone file's [dnssec], and {e}"))
}

/// The rollover of one signed zone, for as long as the server runs: every
/// second, ask the parent when a step waits on it (every
/// `parent-check-interval`), plan, and carry out the step due (through the
/// writer, as a journaled change).
pub async fn drive(zone: Arc<ZoneHandle>) {
    let Some((signer, _)) = zone.life() else {
        return;
    };
    let servers = signer.settings.parent_nameservers.clone();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut backoff = TICK;
    loop {
        tick.tick().await;
        let now = zone.clock.now();
        if zone.parent_due(now) {
            let view = match parent_servers(&servers, &zone.origin).await {
                Ok(list) => ask_parent(&list, &zone.origin, now).await,
                Err(e) => ParentView {
                    at: now,
                    servers: vec![ServerDs {
                        server: "-".into(),
                        answer: Err(e),
                    }],
                },
            };
            if let Some((_, life)) = zone.life() {
                *lock(&life.parent) = Some(view);
            }
        }
        // Steps that follow at once (a DS seen, then the wait) go on the
        // next ticks: at most one step a second.
        let Some(step) = zone.plan(now).and_then(|p| p.step) else {
            continue;
        };
        tracing::info!(zone = %zone.origin, step = ?step, "DNSSEC key step");
        let z = zone.clone();
        let failed = match tokio::task::spawn_blocking(move || z.write(Draft::KeyStep(step))).await
        {
            Ok(Ok(_)) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(e) => Some(format!("task failed: {e}")),
        };
        match failed {
            None => backoff = TICK,
            Some(e) => {
                // A full disk or an unreadable key: nothing changed; try
                // again later, not every second.
                tracing::error!(zone = %zone.origin, error = %e, retry_in_s = backoff.as_secs(), "DNSSEC key step failed; the zone is unchanged");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

#[cfg(test)]
mod tests;
