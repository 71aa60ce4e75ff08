//! A signed zone's DNSSEC keys over their life: loaded from the
//! `dnssec_keys` table at start (the zone's first key recorded there on
//! first sight), stepped through a rollover by [`drive`] (observe, ask
//! `dnssec::roll::plan`, carry the step out as a journaled change through
//! the writer), and shown by [`ZoneHandle::key_status`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RData, RecordType};

use super::open::OpenError;
use super::{Draft, WriteError, Written, ZoneHandle};
use crate::dnssec::parent_view::{DsId, ParentView, ServerDs};
use crate::dnssec::roll::{self, Observed, Outlook, Step, Timings};
use crate::dnssec::signer::KeySet;
use crate::dnssec::{KeyError, ZoneKey, ZoneSigner};
use crate::serial;
use crate::store::{Store, StoreError};
use crate::zone::ZoneData;
use crate::zone::change::{Action, Audit};
use crate::zone::keys::{KeyRecord, KeyState};
use crate::zonefile::ZoneSpec;

/// How long one question to a parent nameserver may take.
const PARENT_TIMEOUT: Duration = Duration::from_secs(3);
/// How often [`drive`] looks at the plan.
const TICK: Duration = Duration::from_secs(1);

/// What the writer keeps of a signed zone's keys besides the signer.
#[derive(Debug)]
pub struct Life {
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

/// The keys that sign now, from their records.
fn key_set(zone: &Name, data_dir: &Path, records: &[KeyRecord]) -> Result<KeySet, KeyError> {
    let mut signing = Vec::new();
    let mut cds = None;
    for r in records.iter().filter(|r| r.state.signs()) {
        let key = Arc::new(ZoneKey::load(zone, &key_file(data_dir, &r.file))?);
        if r.state == KeyState::Ready || (r.state == KeyState::Active && cds.is_none()) {
            cds = Some(key.clone());
        }
        signing.push(key);
    }
    let cds = cds
        .or_else(|| signing.first().cloned())
        .ok_or_else(|| KeyError::Invalid {
            path: crate::dnssec::key::key_dir(data_dir),
            reason: format!("no key of {zone} is published or active in the database"),
        })?;
    Ok(KeySet { signing, cds })
}

/// The signer of a zone whose file turns DNSSEC on, with its keys as the
/// database records them. On first sight the zone's key file (made now if
/// there is none) is recorded as its active key.
pub(super) fn open_signer(
    spec: &ZoneSpec,
    data_dir: &Path,
    store: &mut Store,
    now: u64,
) -> Result<Option<(ZoneSigner, Life)>, OpenError> {
    let Some(settings) = spec.dnssec.clone() else {
        return Ok(None);
    };
    let zone = &spec.origin;
    let mut records = store.keys(zone)?;
    if !records.iter().any(|r| r.state.signs()) {
        let (key, created) = ZoneKey::load_or_create(data_dir, zone, settings.algorithm)?;
        if created {
            tracing::warn!(zone = %zone, key_tag = key.key_tag(), file = %key.path.display(),
                "generated a DNSSEC key; give the parent its DS (`zonewarden ds {zone}`)");
        }
        let mut r = KeyRecord::generated(key.key_tag(), key.algorithm, key.file_name(), now);
        r.id = store.key_id(zone, &r.file)?.unwrap_or(0);
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
    if let Some(active) = records.iter().rev().find(|r| r.state == KeyState::Active)
        && active.algorithm != settings.algorithm
    {
        return Err(KeyError::AlgorithmMismatch {
            path: key_file(data_dir, &active.file),
            found: active.algorithm.config_name(),
            configured: settings.algorithm.config_name(),
        }
        .into());
    }
    let life = Life {
        data_dir: data_dir.to_path_buf(),
        records: Mutex::new(records),
        parent: Mutex::new(None),
        ds: Mutex::default(),
    };
    Ok(Some((ZoneSigner::with_keys(keys, settings), life)))
}

fn timings(s: &crate::zonefile::Settings) -> Timings {
    Timings {
        dnskey_ttl: s.dnskey_ttl,
        propagation_delay: s.propagation_delay,
        key_lifetime: s.key_lifetime,
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
        let statuses = self.propagation.statuses();
        let mut served = Some(self.snapshot().serial);
        for s in statuses {
            served = match (served, s.serial) {
                (Some(a), Some(b)) => Some(if serial::at_least(b, a) { a } else { b }),
                _ => None,
            };
        }
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
            &timings(&signer.settings),
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
        if records
            .iter()
            .any(|r| matches!(r.state, KeyState::Published | KeyState::Ready))
        {
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

    /// Carry out one rollover step (under the writer's lock).
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
        let find = |records: &[KeyRecord], id: i64| records.iter().position(|r| r.id == id);
        let current = (*signer.keys()).clone();
        let by_file =
            |set: &KeySet, file: &str| set.signing.iter().find(|k| k.file_name() == file).cloned();
        // The keys to sign with and the records moved, or a record-only step.
        let (keys, moved, detail): (KeySet, Vec<KeyRecord>, String) = match step {
            Step::Start { old, reason } => {
                let Some(o) = find(&records, old) else {
                    return Ok(());
                };
                let alg = signer.settings.algorithm;
                let (key, file) = ZoneKey::create_next(&life.data_dir, &self.origin, alg, now)?;
                let mut n = KeyRecord::generated(key.key_tag(), alg, file, now);
                n.state = KeyState::Published;
                let detail = format!(
                    "key {} published beside key {} ({reason})",
                    n.tag, records[o].tag
                );
                let mut set = current.clone();
                set.signing.push(Arc::new(key));
                (set, vec![n], detail)
            }
            Step::Submit { key } => {
                let Some(i) = find(&records, key) else {
                    return Ok(());
                };
                let mut set = current.clone();
                set.cds = by_file(&set, &records[i].file).ok_or_else(|| KeyError::Invalid {
                    path: key_file(&life.data_dir, &records[i].file),
                    reason: "a published key is not loaded".into(),
                })?;
                let mut r = records[i].clone();
                r.state = KeyState::Ready;
                let detail = format!("DS of key {} submitted (CDS, CDNSKEY)", r.tag);
                (set, vec![r], detail)
            }
            Step::Retire { old, new } => {
                let (Some(o), Some(n)) = (find(&records, old), find(&records, new)) else {
                    return Ok(());
                };
                let mut set = current.clone();
                set.signing.retain(|k| k.file_name() != records[o].file);
                set.cds = by_file(&set, &records[n].file).ok_or_else(|| KeyError::Invalid {
                    path: key_file(&life.data_dir, &records[n].file),
                    reason: "the incoming key is not loaded".into(),
                })?;
                let (mut ro, mut rn) = (records[o].clone(), records[n].clone());
                ro.state = KeyState::Retired;
                rn.state = KeyState::Active;
                let detail = format!("key {} retired, key {} active", ro.tag, rn.tag);
                (set, vec![ro, rn], detail)
            }
            Step::DsSeen { key, ttl } => {
                let Some(i) = find(&records, key) else {
                    return Ok(());
                };
                records[i].ds_seen = Some(now);
                records[i].ds_ttl = Some(ttl);
                let detail = format!(
                    "DS of key {} seen at every nameserver of {} (TTL {ttl} s)",
                    records[i].tag,
                    parent_of(&self.origin)
                );
                return self.save_only(store, life, &records[i], detail, now);
            }
            Step::DsRemoved { key } => {
                let Some(i) = find(&records, key) else {
                    return Ok(());
                };
                records[i].ds_removed = Some(now);
                let detail = format!(
                    "DS of retired key {} gone from every nameserver of {}",
                    records[i].tag,
                    parent_of(&self.origin)
                );
                return self.save_only(store, life, &records[i], detail, now);
            }
            Step::Remove { key } => {
                let Some(i) = find(&records, key) else {
                    return Ok(());
                };
                records[i].enter(KeyState::Removed, now, None);
                let detail = format!("key {} removed from every cache", records[i].tag);
                return self.save_only(store, life, &records[i], detail, now);
            }
        };
        let previous = signer.set_keys(keys);
        let mut next = (*base).clone();
        let Some(change) = crate::dnssec::rekey(signer, &mut next, now, detail) else {
            signer.set_keys((*previous).clone());
            return Ok(());
        };
        let moved: Vec<KeyRecord> = moved
            .into_iter()
            .map(|mut r| {
                let state = r.state;
                r.enter(state, now, Some(next.serial));
                r
            })
            .collect();
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
        record: &KeyRecord,
        detail: String,
        now: u64,
    ) -> Result<(), WriteError> {
        tracing::info!(zone = %self.origin, "{detail}");
        let audit = Audit::server(Action::DnssecKey, detail);
        store.save_keys(&self.origin, std::slice::from_ref(record), &audit, now)?;
        *lock(&life.records) = store.keys(&self.origin)?;
        Ok(())
    }

    /// Whether a step waits on the parent and it is time to ask again.
    fn parent_due(&self, now: u64) -> bool {
        let Some((signer, life)) = self.life() else {
            return false;
        };
        let records = lock(&life.records);
        let waits = records.iter().any(|r| match r.state {
            KeyState::Ready => true,
            KeyState::Active => r.ds_seen.is_none(),
            KeyState::Retired | KeyState::Removed => r.ds_removed.is_none(),
            _ => false,
        });
        let last = lock(&life.parent).as_ref().map(|p| p.at);
        waits && last.is_none_or(|at| now >= at + u64::from(signer.settings.parent_check_interval))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The DS RRset `server` serves for `zone`, asked directly (RD off): the
/// answer must be authoritative.
async fn ds_at(server: SocketAddr, zone: &Name) -> Result<(Vec<DsId>, u32), String> {
    let mut m = hickory_proto::op::Message::new(
        0,
        hickory_proto::op::MessageType::Query,
        hickory_proto::op::OpCode::Query,
    );
    m.add_query(hickory_proto::op::Query::query(
        zone.clone(),
        RecordType::DS,
    ));
    let mut e = hickory_proto::op::Edns::new();
    e.set_max_payload(1232);
    m.set_edns(e);
    let answer = crate::dnsclient::exchange(server, m, None, 0, PARENT_TIMEOUT)
        .await
        .map_err(|e| e.to_string())?;
    if answer.metadata.response_code != ResponseCode::NoError {
        return Err(format!("answered {}", answer.metadata.response_code));
    }
    if !answer.metadata.authoritative {
        return Err("not authoritative for the parent zone".into());
    }
    let mut ttl = 0;
    let set = answer
        .answers
        .iter()
        .filter(|r| r.name == *zone)
        .filter_map(|r| match &r.data {
            RData::DNSSEC(hickory_proto::dnssec::rdata::DNSSECRData::DS(ds)) => {
                ttl = ttl.max(r.ttl);
                Some(DsId::of(ds))
            }
            _ => None,
        })
        .collect();
    Ok((set, ttl))
}

/// The parent's nameservers' DS sets now.
async fn ask_parent(servers: &[SocketAddr], zone: &Name, now: u64) -> ParentView {
    let mut out = Vec::new();
    for s in servers {
        out.push(ServerDs {
            server: s.to_string(),
            answer: ds_at(*s, zone).await,
        });
    }
    ParentView {
        at: now,
        servers: out,
    }
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
    loop {
        tick.tick().await;
        let now = zone.clock.now();
        if zone.parent_due(now) {
            let view = if servers.is_empty() {
                ParentView {
                    at: now,
                    servers: vec![ServerDs {
                        server: "-".into(),
                        answer: Err("no parent-nameservers in the zone file's [dnssec]".into()),
                    }],
                }
            } else {
                ask_parent(&servers, &zone.origin, now).await
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
        match tokio::task::spawn_blocking(move || z.write(Draft::KeyStep(step))).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::error!(zone = %zone.origin, error = %e, "DNSSEC key step failed; will retry")
            }
            Err(e) => {
                tracing::error!(zone = %zone.origin, error = %e, "DNSSEC key step task failed")
            }
        }
    }
}

#[cfg(test)]
mod tests;
