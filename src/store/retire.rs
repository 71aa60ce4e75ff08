//! The DANE retirement queue (RFC 7671 §8.1): TLSA records a newer
//! certificate replaced, removed only once every nameserver serves the
//! change that planned them and two TTLs have passed. Plans are written in
//! the same transaction as the change that adds the new records, so a
//! restart loses none.

use hickory_proto::rr::{Name, Record, RecordType};
use rusqlite::params;

use super::{Store, StoreError, rdata_from_bytes};
use crate::zone::change::rdata_bytes;

/// A record to retire later: once every nameserver serves the change that
/// planned it and two TTLs have passed (RFC 7671 §8.1).
#[derive(Debug, Clone)]
pub struct Planned {
    pub record: Record,
    pub machine: String,
}

/// A planned retirement as stored.
#[derive(Debug, Clone)]
pub struct Retirement {
    pub id: i64,
    pub record: Record,
    pub after_serial: u32,
    pub propagated_at: Option<u64>,
    pub machine: String,
}

/// What else a commit carries besides the change itself.
#[derive(Debug, Default)]
pub struct Extra<'a> {
    /// The zone file's new fingerprint (a reconciled zone file).
    pub fingerprint: Option<&'a str>,
    /// Records to retire once this change has propagated.
    pub plan: &'a [Planned],
    /// Planned retirements this change carries out or cancels.
    pub settled: &'a [i64],
    /// The signed UPDATE that made this change, remembered for the replay
    /// window (`replay`).
    pub accepted: Option<&'a super::Accepted>,
    /// DNSSEC keys whose lifecycle this change moves (`keys`): stored
    /// with it, so the zone and the key states never disagree.
    pub keys: &'a [crate::zone::keys::KeyRecord],
}

/// Write `extra`'s plans (waiting for `serial`) and drop its settled ones,
/// inside the commit's transaction.
pub(super) fn settle(
    tx: &rusqlite::Transaction<'_>,
    zname: &str,
    serial: u32,
    extra: &Extra<'_>,
    now: u64,
) -> rusqlite::Result<()> {
    if extra.plan.is_empty() && extra.settled.is_empty() {
        return Ok(());
    }
    let mut ins = tx.prepare_cached(
        "INSERT INTO retirements (zone, owner, rtype, rdata, after_serial, ttl, machine, created)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for p in extra.plan {
        ins.execute(params![
            zname,
            p.record.name.to_lowercase().to_ascii(),
            u16::from(p.record.record_type()),
            rdata_bytes(&p.record.data),
            serial as i64,
            p.record.ttl,
            p.machine,
            now as i64
        ])?;
    }
    let mut del = tx.prepare_cached("DELETE FROM retirements WHERE id = ?1")?;
    for id in extra.settled {
        del.execute([id])?;
    }
    Ok(())
}

impl Store {
    /// Planned retirements of a zone, oldest first.
    pub fn retirements(&self, zone: &Name) -> Result<Vec<Retirement>, StoreError> {
        let zname = zone.to_lowercase().to_ascii();
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, owner, rtype, rdata, after_serial, ttl, propagated_at, machine
                 FROM retirements WHERE zone = ?1 ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([&zname], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, u16>(2)?,
                    r.get::<_, Vec<u8>>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, u32>(5)?,
                    r.get::<_, Option<i64>>(6)?,
                    r.get::<_, String>(7)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, owner, rtype, rdata, after, ttl, prop, machine) =
                row.map_err(|e| self.err(e))?;
            let rtype = RecordType::from(rtype);
            let (Ok(name), Some(data)) =
                (Name::from_ascii(&owner), rdata_from_bytes(rtype, &rdata))
            else {
                continue;
            };
            out.push(Retirement {
                id,
                record: Record::from_rdata(name, ttl, data),
                after_serial: after as u32,
                propagated_at: prop.map(|p| p.max(0) as u64),
                machine,
            });
        }
        Ok(out)
    }

    /// Plan and settle retirements with no zone change (what new plans
    /// wait for is `serial`, the zone's current one). One transaction.
    pub fn settle_retirements(
        &mut self,
        zone: &Name,
        serial: u32,
        extra: &Extra<'_>,
        now: u64,
    ) -> Result<(), StoreError> {
        self.in_transaction(zone, |tx, zname| settle(tx, zname, serial, extra, now))
    }

    /// Note when a planned retirement's change reached every nameserver.
    pub fn mark_propagated(&mut self, id: i64, at: u64) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE retirements SET propagated_at = ?2 WHERE id = ?1 AND propagated_at IS NULL",
                params![id, at as i64],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }
}
