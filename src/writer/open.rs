//! Opening a zone at start: its stored state, reconciled with its zone file
//! and its DNSSEC settings through the same drafts as any other change.
//!
//! The zone is served as soon as it is loaded: on a plain restart (the
//! zone already signed with this key, the zone file unchanged) the DNSSEC
//! walk over every name (`SyncDnssec`: NSEC chain, RRSIGs due, 5 s for
//! 200,000 names), which then changes nothing unless signatures came due
//! while the server was down, runs after the first answer, and so does the
//! check that every stored RRSIG still verifies (one public-key
//! verification per RRset, 25 s for 400,000), on a thread of its own over
//! the published snapshot ([`spawn_verifier`]); an RRset found with a
//! signature that does not verify is signed again through a `SyncDnssec`
//! draft, like any change. A first start, a new key, DNSSEC turned off or
//! a changed zone file are brought in line before the zone is served.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use hickory_proto::rr::Record;

use super::{Draft, WriteError, ZoneHandle};
use crate::clock::Clock;
use crate::config::Config;
use crate::dnssec::KeyError;
use crate::metrics::Metrics;
use crate::notify::Propagation;
use crate::store::{Store, StoreError};
use crate::zone::ZoneBuilder;
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
            WriteError::Key(e) => OpenError::Dnssec(e),
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
    /// journaled change (the DNSSEC walk may be left for after start: see
    /// [`AfterStart`]). Blocking (SQLite).
    pub fn open(
        spec: ZoneSpec,
        config: &Config,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
    ) -> Result<(Self, AfterStart), OpenError> {
        let spec = Arc::new(spec);
        let now = clock.now();
        let started = std::time::Instant::now();
        let mut store = Store::open(&config.database)?;
        let fp = static_fingerprint(&spec);
        // The rows go straight into the snapshot as they are read.
        let mut builder = ZoneBuilder::new(spec.clone());
        let stored = store.load_zone(&spec.origin, |name, rtype, ttl, rdata| {
            builder.add_wire(name, rtype, ttl, rdata)
        })?;
        let read = started.elapsed();
        let (data, zone_file) = match stored {
            None => {
                // A fresh zone starts at the current time, so a rebuilt
                // database still moves secondaries forward.
                let serial = now as u32;
                store.create_zone(&spec.origin, serial, &fp, &spec.records, now)?;
                (builder.finish(serial), None)
            }
            Some(state) if state.static_fingerprint == fp => (builder.finish(state.serial), None),
            Some(state) => {
                let draft = Draft::ZoneFile {
                    removed: missing_from(&state.statics, &spec.records),
                    added: missing_from(&spec.records, &state.statics),
                    fingerprint: fp,
                };
                (builder.finish(state.serial), Some(draft))
            }
        };
        let built = started.elapsed() - read;
        let signed_now = data
            .rrset(data.origin(), hickory_proto::rr::RecordType::DNSKEY)
            .is_some();
        let (signer, life) =
            match super::keys::open_signer(&spec, &config.data_dir, &mut store, signed_now, now)? {
                Some((s, l)) => (Some(s), Some(l)),
                None => (None, None),
            };
        let reader = Store::open(&config.database)?;
        let zone = ZoneHandle {
            origin: spec.origin.clone(),
            propagation: Propagation::new(&spec, data.serial, data.soa_record(), clock.clone()),
            snapshot: ArcSwap::from_pointee(data),
            store: Mutex::new(store),
            reader: Mutex::new(reader),
            signer,
            life,
            ages: Mutex::new(super::ages::Ages::new(now, clock.monotonic())),
            latest_inception: std::sync::atomic::AtomicU64::new(0),
            group: Default::default(),
            clock,
            metrics,
        };
        // The walk over every name (`SyncDnssec`) waits until after the
        // first answer when the zone is already signed with this key and
        // the zone file did not change (a plain restart: it then changes
        // nothing, unless signatures came due while the server was down).
        let defer_sync = zone_file.is_none()
            && zone.signer.as_ref().is_some_and(|s| {
                s.keys_in_place(&zone.snapshot()) && s.denial_in_place(&zone.snapshot())
            });
        if let Some(draft) = zone_file {
            // The RRsets the file changed keep their old RRSIGs until the
            // sync below signs them again: it does not verify signatures.
            if let (Some(signer), Draft::ZoneFile { removed, added, .. }) = (&zone.signer, &draft) {
                let changed: BTreeSet<_> = removed
                    .iter()
                    .chain(added)
                    .map(|r| (r.name.clone(), r.record_type()))
                    .collect();
                signer.suspect(changed);
            }
            let w = zone.write(draft)?;
            tracing::info!(zone = %zone.origin, serial = ?w.serial, "zone file changed; serial bumped");
        }
        let synced = std::time::Instant::now();
        if !defer_sync {
            zone.write(Draft::SyncDnssec)?;
            // A switch between NSEC and NSEC3 takes two changes (each
            // published state proves denial one way): the second here,
            // or after a restart between the two.
            if zone
                .signer
                .as_ref()
                .is_some_and(|s| !s.denial_in_place(&zone.snapshot()))
            {
                zone.write(Draft::SyncDnssec)?;
            }
        }
        let sync = synced.elapsed();
        let latest = zone.snapshot().latest_signature_inception().unwrap_or(0);
        zone.latest_inception
            .store(latest, std::sync::atomic::Ordering::Relaxed);
        let snap = zone.snapshot();
        tracing::info!(
            zone = %zone.origin, serial = snap.serial, records = snap.record_count(),
            read_ms = read.as_millis() as u64, build_ms = built.as_millis() as u64,
            dnssec_sync_ms = sync.as_millis() as u64, dnssec_sync_deferred = defer_sync,
            total_ms = started.elapsed().as_millis() as u64, "zone loaded"
        );
        if let Some(max) = config.database_max_size {
            zone.lock_store().limit_size(max)?;
        }
        Ok((zone, AfterStart { sync: defer_sync }))
    }
}

/// What is left to do once the zone is served ([`spawn_verifier`]).
pub struct AfterStart {
    /// The `SyncDnssec` walk was deferred.
    sync: bool,
}

/// Check every RRSIG of `zone`'s published snapshot on a thread of its own
/// (see the module doc) and have the RRsets whose signature does not verify
/// signed again. The thread stops early when the server lets go of the
/// zone (it then holds the only reference). Returns at once.
pub(super) fn spawn_verifier(zone: &Arc<ZoneHandle>, after: AfterStart) {
    if zone.signer.is_none() {
        return;
    }
    let zone = zone.clone();
    let spawned = std::thread::Builder::new()
        .name("dnssec-verify".into())
        .spawn(move || {
            if after.sync {
                let started = std::time::Instant::now();
                match zone.write(Draft::SyncDnssec) {
                    Ok(w) => tracing::info!(zone = %zone.origin, serial = ?w.serial,
                        seconds = started.elapsed().as_secs_f64(), "DNSSEC records checked after start"),
                    Err(e) => tracing::error!(zone = %zone.origin, error = %e, "cannot bring DNSSEC records in line; the hourly refresh tries again"),
                }
            }
            verify(&zone);
            // The walk and the check made and dropped copies of records on
            // this thread's own malloc arena: give the pages back.
            trim();
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the signature check; stored signatures are trusted as they are");
    }
}

fn verify(zone: &Arc<ZoneHandle>) {
    let Some(signer) = &zone.signer else { return };
    let started = std::time::Instant::now();
    let snapshot = zone.snapshot();
    let in_use = || Arc::strong_count(zone) > 1;
    let Some(bad) = signer.unverified(&snapshot, in_use) else {
        return; // the server stopped
    };
    drop(snapshot);
    if bad.is_empty() {
        tracing::info!(zone = %zone.origin, seconds = started.elapsed().as_secs_f64(), "every stored signature verifies");
        return;
    }
    tracing::warn!(zone = %zone.origin, rrsets = bad.len(), first = %format!("{} {}", bad[0].0, bad[0].1),
        "stored signatures that do not verify; signing those RRsets again");
    signer.suspect(bad);
    if !in_use() {
        return;
    }
    match zone.write(Draft::SyncDnssec) {
        Ok(w) => tracing::info!(zone = %zone.origin, serial = ?w.serial, "signatures repaired"),
        Err(e) => {
            tracing::error!(zone = %zone.origin, error = %e, "cannot repair signatures; the next start tries again")
        }
    }
}

/// Return free heap pages to the kernel (glibc keeps them otherwise, and
/// they count as the process's resident size).
pub(super) fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap memory to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}
