//! Opening a zone at start: its stored state, reconciled with its zone file
//! and its DNSSEC settings through the same drafts as any other change.

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use hickory_proto::rr::Record;

use super::{Draft, WriteError, ZoneHandle};
use crate::clock::Clock;
use crate::config::Config;
use crate::dnssec::{KeyError, ZoneSigner};
use crate::metrics::Metrics;
use crate::notify::Propagation;
use crate::store::{Store, StoreError};
use crate::zone::ZoneData;
use crate::zonefile::ZoneSpec;

/// Why a zone could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Dnssec(#[from] KeyError),
}

impl From<WriteError> for OpenError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Store(e) => OpenError::Store(e),
            // Drafts made at start are the server's own: never refused.
            WriteError::Refused(r) => unreachable!("a start-up draft was refused: {}", r.reason),
            WriteError::Aborted => unreachable!("a start-up draft is not group-committed"),
        }
    }
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

/// Records of `a` that `b` lacks (owner, TTL and data compared).
fn missing_from(a: &[Record], b: &[Record]) -> Vec<Record> {
    let same = |x: &Record, y: &Record| x.name == y.name && x.ttl == y.ttl && x.data == y.data;
    a.iter()
        .filter(|x| !b.iter().any(|y| same(x, y)))
        .cloned()
        .collect()
}

impl ZoneHandle {
    /// Open `spec`'s zone: create it on first sight, else load it; then
    /// reconcile a changed zone file and the DNSSEC records, each as a
    /// journaled change. Blocking (SQLite).
    pub fn open(
        spec: ZoneSpec,
        config: &Config,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, OpenError> {
        let spec = Arc::new(spec);
        let now = clock.now();
        let mut store = Store::open(&config.database)?;
        let fp = static_fingerprint(&spec);
        let (data, zone_file) = match store.load_zone(&spec.origin)? {
            None => {
                // A fresh zone starts at the current time, so a rebuilt
                // database still moves secondaries forward.
                let serial = now as u32;
                store.create_zone(&spec.origin, serial, &fp, &spec.records, now)?;
                (ZoneData::new(spec.clone(), serial, []), None)
            }
            Some(state) if state.static_fingerprint == fp => (
                ZoneData::new(spec.clone(), state.serial, state.dynamic),
                None,
            ),
            Some(state) => {
                let draft = Draft::ZoneFile {
                    removed: missing_from(&state.statics, &spec.records),
                    added: missing_from(&spec.records, &state.statics),
                    fingerprint: fp,
                };
                (
                    ZoneData::new(spec.clone(), state.serial, state.dynamic),
                    Some(draft),
                )
            }
        };
        let signer = ZoneSigner::open(&spec, &config.data_dir)?;
        let reader = Store::open(&config.database)?;
        let zone = ZoneHandle {
            origin: spec.origin.clone(),
            propagation: Propagation::new(&spec, data.serial, data.soa_record(), clock.clone()),
            snapshot: ArcSwap::from_pointee(data),
            store: Mutex::new(store),
            reader: Mutex::new(reader),
            signer,
            ages: Mutex::new(super::ages::Ages::new(now, clock.monotonic())),
            latest_inception: std::sync::atomic::AtomicU64::new(0),
            group: Default::default(),
            clock,
            metrics,
        };
        if let Some(draft) = zone_file {
            let w = zone.write(draft)?;
            tracing::info!(zone = %zone.origin, serial = ?w.serial, "zone file changed; serial bumped");
        }
        zone.write(Draft::SyncDnssec)?;
        let latest = crate::dnssec::latest_inception(&zone.snapshot().all_records()).unwrap_or(0);
        zone.latest_inception
            .store(latest, std::sync::atomic::Ordering::Relaxed);
        let snap = zone.snapshot();
        tracing::info!(zone = %zone.origin, serial = snap.serial, records = snap.record_count(), "zone loaded");
        if let Some(max) = config.database_max_size {
            zone.lock_store().limit_size(max)?;
        }
        Ok(zone)
    }
}
