//! The `dnssec_keys` table: each zone's keys and their lifecycle
//! (`zone::keys`). Written inside the transaction of the change that moves
//! a key (`Extra::keys`), or on its own for a step that changes no record
//! ([`Store::save_keys`]); the key material stays in its file.

use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError};
use crate::zone::keys::{KeyRecord, KeyState};
use crate::zonefile::KeyAlgorithm;

const COLUMNS: &str = "id, tag, algorithm, file, state, since, since_serial, created, published, \
     ready, active, retired, removed, ds_seen, ds_ttl, ds_removed, roll_requested, ds_delete, signing, withdrawn";

/// Insert or update `keys` (a key with id 0 is inserted; its file is
/// unique per zone).
pub(super) fn save(
    tx: &rusqlite::Transaction<'_>,
    zname: &str,
    keys: &[KeyRecord],
) -> rusqlite::Result<()> {
    for k in keys {
        let mut st = tx.prepare_cached(
            "INSERT INTO dnssec_keys (zone, tag, algorithm, file, state, since, since_serial,
                 created, published, ready, active, retired, removed, ds_seen, ds_ttl,
                 ds_removed, roll_requested, ds_delete, signing, withdrawn)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
                     ?19, ?20)
             ON CONFLICT (zone, file) DO UPDATE SET
                 state = excluded.state, since = excluded.since,
                 since_serial = excluded.since_serial, published = excluded.published,
                 ready = excluded.ready, active = excluded.active, retired = excluded.retired,
                 removed = excluded.removed, ds_seen = excluded.ds_seen,
                 ds_ttl = excluded.ds_ttl, ds_removed = excluded.ds_removed,
                 roll_requested = excluded.roll_requested, ds_delete = excluded.ds_delete,
                 signing = excluded.signing, withdrawn = excluded.withdrawn",
        )?;
        let t = |v: Option<u64>| v.map(|v| v as i64);
        st.execute(params![
            zname,
            k.tag,
            k.algorithm.config_name(),
            k.file,
            k.state.as_str(),
            k.since as i64,
            k.since_serial.map(i64::from),
            k.created as i64,
            t(k.published),
            t(k.ready),
            t(k.active),
            t(k.retired),
            t(k.removed),
            t(k.ds_seen),
            k.ds_ttl.map(i64::from),
            t(k.ds_removed),
            t(k.roll_requested),
            t(k.ds_delete),
            t(k.signing),
            t(k.withdrawn),
        ])?;
    }
    Ok(())
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<KeyRecord, String>> {
    let t = |i: usize| -> rusqlite::Result<Option<u64>> {
        Ok(r.get::<_, Option<i64>>(i)?.map(|v| v as u64))
    };
    let algorithm: String = r.get(2)?;
    let state: String = r.get(4)?;
    let Some(algorithm) = KeyAlgorithm::from_config(&algorithm) else {
        return Ok(Err(format!("key algorithm {algorithm:?}")));
    };
    let Some(state) = KeyState::parse(&state) else {
        return Ok(Err(format!("key state {state:?}")));
    };
    Ok(Ok(KeyRecord {
        id: r.get(0)?,
        tag: r.get(1)?,
        algorithm,
        file: r.get(3)?,
        state,
        since: r.get::<_, i64>(5)? as u64,
        since_serial: r.get::<_, Option<i64>>(6)?.map(|v| v as u32),
        created: r.get::<_, i64>(7)? as u64,
        published: t(8)?,
        ready: t(9)?,
        active: t(10)?,
        retired: t(11)?,
        removed: t(12)?,
        ds_seen: t(13)?,
        ds_ttl: r.get::<_, Option<i64>>(14)?.map(|v| v as u32),
        ds_removed: t(15)?,
        roll_requested: t(16)?,
        ds_delete: t(17)?,
        signing: t(18)?,
        withdrawn: t(19)?,
    }))
}

impl Store {
    /// A zone's keys, oldest first.
    pub fn keys(&self, zone: &hickory_proto::rr::Name) -> Result<Vec<KeyRecord>, StoreError> {
        let zname = zone.to_lowercase().to_ascii();
        let mut st = self
            .conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM dnssec_keys WHERE zone = ?1 ORDER BY id"
            ))
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([&zname], row)
            .map_err(|e| self.err(e))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))?;
        rows.into_iter()
            .map(|r| {
                r.map_err(|what| StoreError::Corrupt {
                    path: self.path.clone(),
                    zone: zname.clone(),
                    what,
                })
            })
            .collect()
    }

    /// Store key states moved by a step that changes no record, with an
    /// audit row saying what happened. One transaction.
    pub fn save_keys(
        &mut self,
        zone: &hickory_proto::rr::Name,
        keys: &[KeyRecord],
        audit: &crate::zone::change::Audit,
        now: u64,
    ) -> Result<(), StoreError> {
        self.in_transaction(zone, |tx, zname| {
            save(tx, zname, keys)?;
            super::audit::append(tx, zname, audit, now)
        })
    }

    /// The id of the key stored under `file`, if any.
    pub fn key_id(
        &self,
        zone: &hickory_proto::rr::Name,
        file: &str,
    ) -> Result<Option<i64>, StoreError> {
        let zname = zone.to_lowercase().to_ascii();
        self.conn
            .query_row(
                "SELECT id FROM dnssec_keys WHERE zone = ?1 AND file = ?2",
                params![zname, file],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }
}
