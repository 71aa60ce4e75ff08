//! The journal: every committed diff, kept for IXFR (RFC 1995), bounded to
//! the last [`JOURNAL_KEEP`] per zone (older secondaries get AXFR).

use hickory_proto::rr::Name;
use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError, decode_records, encode_records};
use crate::zone::change::{Change, JournalEntry};

/// How many diffs per zone the journal keeps for IXFR.
const JOURNAL_KEEP: i64 = 10_000;

/// Append `change`'s diff inside the commit's transaction.
pub(super) fn append(
    tx: &rusqlite::Transaction<'_>,
    zname: &str,
    change: &Change,
    now: u64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO journal (zone, serial_from, serial_to, time, removed, added) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
            zname,
            change.serial_from as i64,
            change.serial_to as i64,
            now as i64,
            encode_records(&change.removed),
            encode_records(&change.added)
    ])?;
    if change.serial_to.is_multiple_of(64) {
        // Keep the IXFR history bounded; older secondaries get AXFR.
        tx.execute(
            "DELETE FROM journal WHERE zone = ?1 AND id <= (
                SELECT id FROM journal WHERE zone = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
            params![zname, JOURNAL_KEEP],
        )?;
    }
    Ok(())
}

impl Store {
    /// The diffs that lead from `serial` to `upto`, oldest first, or None
    /// when the journal does not reach back that far (the caller falls back
    /// to a full transfer).
    pub fn journal_between(
        &self,
        zone: &Name,
        serial: u32,
        upto: u32,
    ) -> Result<Option<Vec<JournalEntry>>, StoreError> {
        let zname = zone.to_lowercase().to_ascii();
        let start: Option<i64> = self
            .conn
            .query_row(
                "SELECT id FROM journal WHERE zone = ?1 AND serial_from = ?2 ORDER BY id DESC LIMIT 1",
                params![zname, serial as i64],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        let Some(start) = start else {
            return Ok(None);
        };
        let mut out = Vec::new();
        let mut at = serial;
        for entry in self.journal_from_id(&zname, start)? {
            if entry.serial_from != at {
                return Ok(None); // a gap: history is not continuous
            }
            at = entry.serial_to;
            out.push(entry);
            if at == upto {
                return Ok(Some(out));
            }
        }
        Ok(None)
    }

    /// Journal entries (serial_from, serial_to, removed, added), oldest first.
    pub fn journal(&self, zone: &Name) -> Result<Vec<JournalEntry>, StoreError> {
        self.journal_from_id(&zone.to_lowercase().to_ascii(), 0)
    }

    fn journal_from_id(&self, zname: &str, first_id: i64) -> Result<Vec<JournalEntry>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT serial_from, serial_to, removed, added FROM journal
                 WHERE zone = ?1 AND id >= ?2 ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![zname, first_id], |r| {
                Ok((
                    r.get::<_, i64>(0)? as u32,
                    r.get::<_, i64>(1)? as u32,
                    r.get::<_, Vec<u8>>(2)?,
                    r.get::<_, Vec<u8>>(3)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (from, to, removed, added) = row.map_err(|e| self.err(e))?;
            let corrupt = || StoreError::Corrupt {
                path: self.path.clone(),
                zone: zname.to_string(),
                what: format!("journal {from} -> {to}"),
            };
            out.push(JournalEntry {
                serial_from: from,
                serial_to: to,
                removed: decode_records(&removed).ok_or_else(corrupt)?,
                added: decode_records(&added).ok_or_else(corrupt)?,
            });
        }
        Ok(out)
    }
}
