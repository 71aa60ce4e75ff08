//! Every zone the server serves, most specific first, and the timed drafts
//! sent to all of them (challenge expiry, TLSA retirement, signature
//! refresh).

use std::sync::Arc;
use std::time::Duration;

use hickory_proto::rr::Name;

use super::{Draft, OpenError, WriteError, ZoneHandle};
use crate::clock::Clock;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::store::{Accepted, AuditRow, StoreError};
use crate::zonefile::ZoneSpec;

pub struct Zones {
    /// Most specific first, so the first match is the longest.
    list: Vec<Arc<ZoneHandle>>,
    clock: Arc<dyn Clock>,
}

fn store_error(e: WriteError) -> StoreError {
    match e {
        WriteError::Store(e) => e,
        WriteError::Refused(r) => unreachable!("a server draft was refused: {}", r.reason),
        WriteError::Aborted => unreachable!("a server draft is not group-committed"),
        WriteError::Key(e) => unreachable!("only a key step makes keys: {e}"),
    }
}

impl Zones {
    /// Open every zone (see [`ZoneHandle::open`]). Blocking (SQLite).
    pub fn open(
        specs: Vec<ZoneSpec>,
        config: &Config,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, OpenError> {
        let opened = specs
            .into_iter()
            .map(|spec| ZoneHandle::open(spec, config, clock.clone(), metrics.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        let mut list = Vec::with_capacity(opened.len());
        let mut after = Vec::with_capacity(opened.len());
        for (zone, rest) in opened {
            let zone = Arc::new(zone);
            after.push((zone.clone(), rest));
            list.push(zone);
        }
        list.sort_by_key(|z| std::cmp::Reverse(z.origin.num_labels()));
        // Loading built and dropped a copy of every stored row: give those
        // pages back, or the process keeps them as its resident size.
        super::open::trim();
        for (z, rest) in after {
            super::open::spawn_verifier(&z, rest);
        }
        Ok(Self { list, clock })
    }

    pub fn all(&self) -> &[Arc<ZoneHandle>] {
        &self.list
    }

    pub fn origins(&self) -> Vec<Name> {
        self.list.iter().map(|z| z.origin.clone()).collect()
    }

    /// The zone holding `name` (longest match), if we serve one.
    pub fn zone_for(&self, name: &Name) -> Option<&Arc<ZoneHandle>> {
        self.list.iter().find(|z| z.origin.zone_of(name))
    }

    /// The zone whose origin is `name`.
    pub fn zone_exact(&self, name: &Name) -> Option<&Arc<ZoneHandle>> {
        self.list.iter().find(|z| z.origin == *name)
    }

    /// Send `draft()` to every zone; the sum of what `count` says of each.
    fn each(
        &self,
        draft: impl Fn() -> Draft<'static>,
        count: impl Fn(&super::Written) -> usize,
    ) -> Result<usize, StoreError> {
        let mut total = 0;
        for z in &self.list {
            total += count(&z.write(draft()).map_err(store_error)?);
        }
        Ok(total)
    }

    /// Remove challenge TXT records older than `max_age`. Returns how many.
    /// Ages are monotonic while the process runs (a clock step expires
    /// nothing), wall time across restarts (`writer::ages`). Blocking.
    pub fn sweep_expired(&self, max_age: Duration) -> Result<usize, StoreError> {
        let (max_age, at) = (max_age.as_secs(), self.clock.monotonic());
        self.each(|| Draft::Expire { max_age, at }, |w| w.removed)
    }

    /// Re-sign, in every zone, the signatures whose inception the wall
    /// clock went back past (see [`ZoneHandle::resign_if_clock_went_back`]).
    /// Returns how many zones were re-signed. Blocking.
    pub fn resign_after_clock_step(&self) -> Result<usize, StoreError> {
        let mut n = 0;
        for z in &self.list {
            n += usize::from(z.resign_if_clock_went_back().map_err(store_error)?);
        }
        Ok(n)
    }

    /// Retire the TLSA records that are due. Returns how many. Blocking.
    pub fn retire_due(&self) -> Result<usize, StoreError> {
        self.each(|| Draft::Retire, |w| w.removed)
    }

    /// Re-sign signatures close to expiry. Returns how many zones changed.
    /// Blocking.
    pub fn refresh_signatures(&self) -> Result<usize, StoreError> {
        self.each(
            || Draft::RefreshSignatures,
            |w| usize::from(w.serial.is_some()),
        )
    }

    /// The signed UPDATEs accepted recently enough that a copy could still
    /// pass the TSIG time check (every zone shares one database), for the
    /// verifier's replay cache at start. Blocking.
    pub fn accepted_updates(&self) -> Result<Vec<Accepted>, StoreError> {
        let now = self.clock.now();
        match self.list.first() {
            Some(z) => z.with_reader(|s| s.accepted_since(now)),
            None => Ok(Vec::new()),
        }
    }

    /// Wait until no zone is committing (shutdown). Blocking.
    pub fn quiesce(&self) {
        for z in &self.list {
            z.quiesce();
        }
    }

    /// Audit rows matching the filters, newest first (any zone; every zone
    /// shares one database). Blocking.
    pub fn audit_query(
        &self,
        zone: Option<&Name>,
        machine: Option<(&str, &[String])>,
        since: Option<u64>,
        limit: usize,
    ) -> Result<Vec<AuditRow>, StoreError> {
        match self.list.first() {
            Some(z) => z.with_reader(|s| s.audit_query(zone, machine, since, limit)),
            None => Ok(Vec::new()),
        }
    }

    /// A zone's newest audit rows. Blocking.
    pub fn audit_tail(&self, zone: &Name, limit: usize) -> Result<Vec<AuditRow>, StoreError> {
        self.audit_query(Some(zone), None, None, limit)
    }

    /// The newest audit row of each machine. Blocking.
    pub fn last_changes(&self) -> Result<Vec<AuditRow>, StoreError> {
        match self.list.first() {
            Some(z) => z.with_reader(|s| s.last_changes()),
            None => Ok(Vec::new()),
        }
    }
}
