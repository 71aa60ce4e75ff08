//! Persistence: SQLite (bundled, WAL, `synchronous=FULL`) through rusqlite.
//!
//! Owns the schema and every write. One [`Store`] (one connection) per zone
//! writer; each accepted change is committed in ONE transaction with its
//! record rows, its serial, its diff (kept for IXFR, RFC 1995) and an audit
//! row; a group of UPDATEs shares one ([`Store::commit_all`]: each keeps
//! its own diff and audit row). The caller acknowledges the client only
//! after the commit returned, so after `kill -9` every acknowledged change
//! is there and the serial never goes back.
//!
//! Records are stored per RR: owner (lowercase FQDN), type, TTL and RDATA in
//! uncompressed wire form, whether the zone file or an UPDATE put it there,
//! and when. Diffs are stored as concatenated wire-format RRs.
//!
//! Here: the schema, opening, zone state and [`Store::commit`]. Beside it:
//! `journal` (IXFR history), `audit` (who changed what, and its reads),
//! `retire` (the DANE retirement queue) and `replay` (the MACs of accepted
//! UPDATEs, so the TSIG replay window survives a restart). The store knows nothing of
//! metrics, policy or the network; the zone writer (`writer`) is its only
//! caller that writes.

mod audit;
mod journal;
mod keys;
mod replay;
mod retire;

pub use audit::AuditRow;
pub use replay::Accepted;
pub use retire::{Extra, Planned, Retirement};

use std::path::{Path, PathBuf};
use std::time::Duration;

use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{
    BinDecodable, BinDecoder, BinEncodable, BinEncoder, NameEncoding, Restrict,
};
use rusqlite::{Connection, OptionalExtension, params};

use crate::zone::change::{Action, Audit, Change, Source, rdata_bytes};

/// Migrations, in order; `user_version` counts how many ran.
const MIGRATIONS: &[&str] = &[
    // 1: the first schema
    "CREATE TABLE zones (
        name TEXT PRIMARY KEY,
        serial INTEGER NOT NULL,
        static_fingerprint TEXT NOT NULL
     );
     CREATE TABLE records (
        id INTEGER PRIMARY KEY,
        zone TEXT NOT NULL,
        owner TEXT NOT NULL,
        rtype INTEGER NOT NULL,
        ttl INTEGER NOT NULL,
        rdata BLOB NOT NULL,
        source TEXT NOT NULL CHECK (source IN ('static', 'dynamic')),
        added_at INTEGER NOT NULL,
        added_by TEXT,
        UNIQUE (zone, owner, rtype, rdata)
     );
     CREATE INDEX records_zone ON records (zone, rtype, added_at);
     CREATE TABLE journal (
        id INTEGER PRIMARY KEY,
        zone TEXT NOT NULL,
        serial_from INTEGER NOT NULL,
        serial_to INTEGER NOT NULL,
        time INTEGER NOT NULL,
        removed BLOB NOT NULL,
        added BLOB NOT NULL
     );
     CREATE INDEX journal_zone ON journal (zone, id);
     CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        time INTEGER NOT NULL,
        zone TEXT NOT NULL,
        key TEXT,
        source TEXT,
        action TEXT NOT NULL,
        detail TEXT NOT NULL
     );
     CREATE INDEX audit_zone ON audit (zone, time);",
    // 2: DANE rollovers retire old TLSA records later (RFC 7671 §8.1)
    "CREATE TABLE retirements (
        id INTEGER PRIMARY KEY,
        zone TEXT NOT NULL,
        owner TEXT NOT NULL,
        rtype INTEGER NOT NULL,
        rdata BLOB NOT NULL,
        after_serial INTEGER NOT NULL,
        ttl INTEGER NOT NULL,
        propagated_at INTEGER,
        machine TEXT NOT NULL,
        created INTEGER NOT NULL
     );",
    // 3: the machine an audit row is for, as its own column (a retirement
    // is the server acting for a machine; it used to sit in the key column)
    "ALTER TABLE audit ADD COLUMN machine TEXT;
     UPDATE audit SET machine = key, key = NULL WHERE action = 'dane-retire';",
    // 4: the TSIG replay window survives restarts (`replay`)
    "CREATE TABLE tsig_replay (
        key TEXT NOT NULL,
        mac BLOB NOT NULL,
        expires INTEGER NOT NULL,
        PRIMARY KEY (key, mac)
     ) WITHOUT ROWID;
     CREATE INDEX tsig_replay_expires ON tsig_replay (expires);",
    // 5: the replay window as a log in the order UPDATEs were accepted: a
    // commit appends to the table's last page instead of writing a page
    // picked by the MAC's random bytes plus one of an index, and expired
    // rows go as one range at the front (`replay::purge`)
    "CREATE TABLE tsig_replay_log (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL,
        mac BLOB NOT NULL,
        expires INTEGER NOT NULL
     );
     INSERT INTO tsig_replay_log (key, mac, expires)
        SELECT key, mac, expires FROM tsig_replay ORDER BY expires;
     DROP TABLE tsig_replay;
     ALTER TABLE tsig_replay_log RENAME TO tsig_replay;
     -- only the challenge records the expiry sweep reads are indexed by
     -- age: a commit's RRSIG and NSEC rows no longer write to this index.
     -- `source` first: the planner tests a statement against the
     -- condition from the left, and one without a `source` term (the
     -- commit's DELETE by owner, type and RDATA) then stops before
     -- comparing `rtype` with its bound type, which would make SQLite
     -- prepare that statement again at every execution
     DROP INDEX records_zone;
     CREATE INDEX records_txt_age ON records (zone, added_at)
        WHERE source = 'dynamic' AND rtype = 16;",
    // 6: DNSSEC keys with their lifecycle (`keys`, RFC 7583)
    "CREATE TABLE dnssec_keys (
        id INTEGER PRIMARY KEY,
        zone TEXT NOT NULL,
        tag INTEGER NOT NULL,
        algorithm TEXT NOT NULL,
        file TEXT NOT NULL,
        state TEXT NOT NULL,
        since INTEGER NOT NULL,
        since_serial INTEGER,
        created INTEGER NOT NULL,
        signing INTEGER,
        published INTEGER,
        ready INTEGER,
        active INTEGER,
        withdrawn INTEGER,
        retired INTEGER,
        removed INTEGER,
        ds_seen INTEGER,
        ds_ttl INTEGER,
        ds_removed INTEGER,
        roll_requested INTEGER,
        ds_delete INTEGER,
        UNIQUE (zone, file)
     );",
];

/// WAL pages after which a commit checkpoints the WAL into the database.
const WAL_CHECKPOINT_PAGES: i64 = 1000;
/// Bytes a WAL is truncated to once checkpointed (a little over
/// `WAL_CHECKPOINT_PAGES` pages of 4 KiB).
pub const WAL_SIZE_LIMIT: i64 = 6 << 20;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("database {path}: cannot create its directory: {source}")]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("database {path}: schema version {found} is newer than this zonewarden ({known})")]
    TooNew {
        path: PathBuf,
        found: i64,
        known: usize,
    },
    #[error("database {path}: corrupt record for {zone}: {what}")]
    Corrupt {
        path: PathBuf,
        zone: String,
        what: String,
    },
}

impl StoreError {
    /// The same error again, for each of the several requests one failed
    /// commit answers (`rusqlite::Error` is not `Clone`): its SQLite code
    /// and message are kept.
    pub fn again(&self) -> StoreError {
        match self {
            StoreError::Sqlite { path, source } => StoreError::Sqlite {
                path: path.clone(),
                source: match source {
                    rusqlite::Error::SqliteFailure(code, msg) => {
                        rusqlite::Error::SqliteFailure(*code, msg.clone())
                    }
                    other => rusqlite::Error::SqliteFailure(
                        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
                        Some(other.to_string()),
                    ),
                },
            },
            StoreError::Dir { path, source } => StoreError::Dir {
                path: path.clone(),
                source: std::io::Error::new(source.kind(), source.to_string()),
            },
            StoreError::TooNew { path, found, known } => StoreError::TooNew {
                path: path.clone(),
                found: *found,
                known: *known,
            },
            StoreError::Corrupt { path, zone, what } => StoreError::Corrupt {
                path: path.clone(),
                zone: zone.clone(),
                what: what.clone(),
            },
        }
    }
}

/// What the database holds for one zone, but its dynamic records (which
/// [`Store::load_zone`] hands over one row at a time).
#[derive(Debug)]
pub struct ZoneState {
    pub serial: u32,
    pub static_fingerprint: String,
    pub statics: Vec<Record>,
}

/// A dynamic TXT row with its age (for expiry).
#[derive(Debug, Clone)]
pub struct AgedRecord {
    pub record: Record,
    pub added_at: u64,
}

pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// When (Unix seconds) this connection last deleted the replay rows
    /// past their window (`replay::purge`): at most once a
    /// [`replay::PURGE_EVERY`], so that a commit does not delete one row
    /// (and dirty its pages) each time it adds one.
    replay_purged_at: u64,
}

/// One change of a batch given to [`Store::commit_all`], with what else its
/// commit carries.
#[derive(Debug)]
pub struct Commit<'a> {
    pub change: &'a Change,
    pub extra: &'a Extra<'a>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

fn rdata_from_bytes(rtype: RecordType, bytes: &[u8]) -> Option<RData> {
    let len = u16::try_from(bytes.len()).ok()?;
    let mut dec = BinDecoder::new(bytes);
    RData::read(&mut dec, rtype, Restrict::new(len)).ok()
}

/// Records as concatenated uncompressed wire RRs.
pub fn encode_records(records: &[Record]) -> Vec<u8> {
    let mut buf = Vec::new();
    {
        let mut enc = BinEncoder::new(&mut buf);
        let mut enc = enc.with_name_encoding(NameEncoding::Uncompressed);
        for r in records {
            let _ = r.emit(&mut enc);
        }
    }
    buf
}

pub fn decode_records(bytes: &[u8]) -> Option<Vec<Record>> {
    let mut dec = BinDecoder::new(bytes);
    let mut out = Vec::new();
    while !dec.is_empty() {
        out.push(Record::read(&mut dec).ok()?);
    }
    Some(out)
}

impl Store {
    /// Open (creating if needed) and migrate.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
                path: path.to_path_buf(),
                source,
            })?;
        }
        let sql = |source| StoreError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        let mut conn = Connection::open(path).map_err(sql)?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(sql)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(sql)?;
        // The WAL is checkpointed into the database by the commit that
        // takes it past WAL_CHECKPOINT_PAGES (SQLite's default, made
        // explicit), then reused from its start; a WAL a big transaction
        // grew past WAL_SIZE_LIMIT (a zone signed at start, a large batch)
        // is truncated back to it then, instead of keeping its peak size.
        conn.pragma_update(None, "wal_autocheckpoint", WAL_CHECKPOINT_PAGES)
            .map_err(sql)?;
        conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)
            .map_err(sql)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(sql)?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(sql)?;
        if version as usize > MIGRATIONS.len() {
            return Err(StoreError::TooNew {
                path: path.to_path_buf(),
                found: version,
                known: MIGRATIONS.len(),
            });
        }
        for (i, m) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = conn.transaction().map_err(sql)?;
            tx.execute_batch(m).map_err(sql)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)
                .map_err(sql)?;
            tx.commit().map_err(sql)?;
        }
        Ok(Self {
            conn,
            path: path.to_path_buf(),
            replay_purged_at: 0,
        })
    }

    /// Cap the database file at `bytes` (SQLite's max_page_count): a commit
    /// that would grow past it fails with "database or disk is full", as on
    /// a full disk, and changes nothing.
    pub fn limit_size(&self, bytes: u64) -> Result<(), StoreError> {
        let page: i64 = self
            .conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        let pages = (bytes / page.max(512) as u64).max(1);
        self.conn
            .query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))
            .map_err(|e| self.err(e))
    }

    fn replay_purge_due(&self, now: u64) -> bool {
        now >= self.replay_purged_at.saturating_add(replay::PURGE_EVERY)
            || now < self.replay_purged_at
    }

    fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// Whether the database takes writes now: takes the write lock and
    /// gives it back (`BEGIN IMMEDIATE; ROLLBACK`), writing nothing.
    pub fn check_writable(&self) -> Result<(), StoreError> {
        self.conn
            .execute_batch("BEGIN IMMEDIATE; ROLLBACK;")
            .map_err(|e| self.err(e))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Load a zone's state, or None if the database has never seen it.
    /// Each dynamic record goes to `dynamic` as it is read (owner, type,
    /// TTL, RDATA in uncompressed wire form), in the order they were
    /// stored, so that a big zone is never held as rows and as a snapshot
    /// at once; `dynamic` says false when the RDATA is not one of that type
    /// (the database is then corrupt).
    pub fn load_zone(
        &self,
        zone: &Name,
        mut dynamic: impl FnMut(&Name, RecordType, u32, &[u8]) -> bool,
    ) -> Result<Option<ZoneState>, StoreError> {
        let zname = zone.to_lowercase().to_ascii();
        let row: Option<(i64, String)> = self
            .conn
            .query_row(
                "SELECT serial, static_fingerprint FROM zones WHERE name = ?1",
                [&zname],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        let Some((serial, static_fingerprint)) = row else {
            return Ok(None);
        };
        let mut stmt = self
            .conn
            .prepare(
                "SELECT owner, rtype, ttl, rdata, source FROM records WHERE zone = ?1 ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query([&zname]).map_err(|e| self.err(e))?;
        let mut statics = Vec::new();
        // Read in place, not copied out: one row at a time.
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            let sql = |e: rusqlite::Error| self.err(e);
            let owner = r.get_ref(0).and_then(|v| Ok(v.as_str()?)).map_err(sql)?;
            let rtype = RecordType::from(r.get::<_, u16>(1).map_err(sql)?);
            let ttl = r.get::<_, u32>(2).map_err(sql)?;
            let rdata = r.get_ref(3).and_then(|v| Ok(v.as_blob()?)).map_err(sql)?;
            let source = r.get_ref(4).and_then(|v| Ok(v.as_str()?)).map_err(sql)?;
            let corrupt = |what: String| StoreError::Corrupt {
                path: self.path.clone(),
                zone: zname.clone(),
                what,
            };
            let name =
                Name::from_ascii(owner).map_err(|e| corrupt(format!("owner {owner}: {e}")))?;
            let bad_rdata = || corrupt(format!("rdata of {owner} {rtype}"));
            if source == "static" {
                let data = rdata_from_bytes(rtype, rdata).ok_or_else(bad_rdata)?;
                statics.push(Record::from_rdata(name, ttl, data));
            } else if !dynamic(&name, rtype, ttl, rdata) {
                return Err(bad_rdata());
            }
        }
        drop(rows);
        drop(stmt);
        // Reading every row filled this connection's page cache (up to
        // SQLite's default 2 MB) with pages no commit needs again: let them
        // go. The pages commits touch come back as they are used.
        self.conn
            .execute_batch("PRAGMA shrink_memory")
            .map_err(|e| self.err(e))?;
        Ok(Some(ZoneState {
            serial: serial as u32,
            static_fingerprint,
            statics,
        }))
    }

    /// Run `f` in one transaction for `zone` (its name in the tables),
    /// committed when it succeeds; its errors say which database.
    fn in_transaction<T>(
        &mut self,
        zone: &Name,
        f: impl FnOnce(&rusqlite::Transaction<'_>, &str) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let zname = zone.to_lowercase().to_ascii();
        let path = self.path.clone();
        let sql = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sql)?;
        let out = f(&tx, &zname).map_err(sql)?;
        tx.commit().map_err(sql)?;
        Ok(out)
    }

    /// First sight of a zone: insert it with its static records.
    pub fn create_zone(
        &mut self,
        zone: &Name,
        serial: u32,
        fingerprint: &str,
        statics: &[Record],
        now: u64,
    ) -> Result<(), StoreError> {
        self.in_transaction(zone, |tx, zname| {
            tx.execute(
                "INSERT INTO zones (name, serial, static_fingerprint) VALUES (?1, ?2, ?3)",
                params![zname, serial as i64, fingerprint],
            )?;
            insert_records(tx, zname, statics, Source::Static, now, None)?;
            let audit = Audit::server(Action::Create, format!("zone created with serial {serial}"));
            audit::append(tx, zname, &audit, now)
        })
    }

    /// Commit one change in one transaction: its records, the serial, the
    /// journal diff, the audit row, and `extra` (the zone file's new
    /// fingerprint, DANE retirements planned or settled by this change).
    /// Returns only once it is durable.
    pub fn commit(
        &mut self,
        zone: &Name,
        change: &Change,
        now: u64,
        extra: &Extra<'_>,
    ) -> Result<(), StoreError> {
        self.commit_all(zone, &[Commit { change, extra }], &[], now)
    }

    /// Commit several changes, in order, in ONE transaction (one fsync):
    /// each keeps its own serial, journal entry (so IXFR from any serial
    /// in between stays exact) and audit row; the zone's serial becomes
    /// the last one's. `remember` are signed UPDATEs that changed nothing
    /// or were refused, kept for the replay window in the same
    /// transaction. All or nothing; returns only once it is durable.
    pub fn commit_all(
        &mut self,
        zone: &Name,
        commits: &[Commit<'_>],
        remember: &[Accepted],
        now: u64,
    ) -> Result<(), StoreError> {
        let zname = zone.to_lowercase().to_ascii();
        let path = self.path.clone();
        let sql = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let purge = self.replay_purge_due(now);
        let tx = self.conn.transaction().map_err(sql)?;
        for Commit { change, extra } in commits {
            write_change(&tx, &zname, change, extra, now).map_err(sql)?;
        }
        if let Some(last) = commits.last() {
            let fingerprint = commits.iter().rev().find_map(|c| c.extra.fingerprint);
            let updated = match fingerprint {
                Some(fp) => tx.execute(
                    "UPDATE zones SET serial = ?2, static_fingerprint = ?3 WHERE name = ?1",
                    params![zname, last.change.serial_to as i64, fp],
                ),
                None => tx
                    .prepare_cached("UPDATE zones SET serial = ?2 WHERE name = ?1")
                    .and_then(|mut u| u.execute(params![zname, last.change.serial_to as i64])),
            }
            .map_err(sql)?;
            if updated != 1 {
                return Err(sql(rusqlite::Error::QueryReturnedNoRows));
            }
        }
        for a in remember {
            replay::remember(&tx, a).map_err(sql)?;
        }
        if purge {
            replay::purge(&tx, now).map_err(sql)?;
        }
        tx.commit().map_err(sql)?;
        if purge {
            self.replay_purged_at = now;
        }
        Ok(())
    }

    /// The dynamic TXT values at `owner`, oldest first (by the time each
    /// was added, then by insertion): what acme-dns's `/update` replaces.
    pub fn dynamic_txt_at(&self, zone: &Name, owner: &Name) -> Result<Vec<Record>, StoreError> {
        let zname = zone.to_lowercase().to_ascii();
        let oname = owner.to_lowercase().to_ascii();
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT ttl, rdata FROM records
                 WHERE zone = ?1 AND owner = ?2 AND source = 'dynamic' AND rtype = 16
                 ORDER BY added_at, id",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![zname, oname], |r| {
                Ok((r.get::<_, u32>(0)?, r.get::<_, Vec<u8>>(1)?))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (ttl, rdata) = row.map_err(|e| self.err(e))?;
            if let Some(data) = rdata_from_bytes(RecordType::TXT, &rdata) {
                out.push(Record::from_rdata(owner.clone(), ttl, data));
            }
        }
        Ok(out)
    }

    /// Dynamic TXT records (the challenges) added before `before` (Unix
    /// seconds), through the `records_txt_age` index.
    pub fn dynamic_txt_older_than(
        &self,
        zone: &Name,
        before: u64,
    ) -> Result<Vec<AgedRecord>, StoreError> {
        let zname = zone.to_lowercase().to_ascii();
        let mut stmt = self
            .conn
            .prepare_cached(
                // `rtype = 16` and `source = 'dynamic'` as literals: what
                // the partial index is defined on
                "SELECT owner, ttl, rdata, added_at FROM records
                 WHERE zone = ?1 AND source = 'dynamic' AND rtype = 16 AND added_at < ?2",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![zname, before as i64], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, u32>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (owner, ttl, rdata, added_at) = row.map_err(|e| self.err(e))?;
            let (Ok(name), Some(data)) = (
                Name::from_ascii(&owner),
                rdata_from_bytes(RecordType::TXT, &rdata),
            ) else {
                continue;
            };
            out.push(AgedRecord {
                record: Record::from_rdata(name, ttl, data),
                added_at: added_at.max(0) as u64,
            });
        }
        Ok(out)
    }
}

/// Removes one RR (a commit's removals).
const DELETE_RECORD: &str =
    "DELETE FROM records WHERE zone = ?1 AND owner = ?2 AND rtype = ?3 AND rdata = ?4";

/// One change's rows inside a commit's transaction: its records, journal
/// entry, audit row, retirements and its UPDATE's MAC (not the serial:
/// `commit_all` writes the last one once).
fn write_change(
    tx: &rusqlite::Transaction<'_>,
    zname: &str,
    change: &Change,
    extra: &Extra<'_>,
    now: u64,
) -> rusqlite::Result<()> {
    {
        let mut del = tx.prepare_cached(DELETE_RECORD)?;
        for r in &change.removed {
            del.execute(params![
                zname,
                r.name.to_lowercase().to_ascii(),
                u16::from(r.record_type()),
                rdata_bytes(&r.data)
            ])?;
        }
    }
    let by = change.audit.actor.key().map(|k| k.to_ascii());
    insert_records(tx, zname, &change.added, change.source, now, by.as_deref())?;
    journal::append(tx, zname, change, now)?;
    audit::append(tx, zname, &change.audit, now)?;
    retire::settle(tx, zname, change.serial_to, extra, now)?;
    keys::save(tx, zname, extra.keys)?;
    if let Some(a) = extra.accepted {
        replay::remember(tx, a)?;
    }
    Ok(())
}

fn insert_records(
    tx: &rusqlite::Transaction<'_>,
    zname: &str,
    records: &[Record],
    source: Source,
    now: u64,
    by: Option<&str>,
) -> rusqlite::Result<()> {
    let mut ins = tx.prepare_cached(
        "INSERT OR REPLACE INTO records (zone, owner, rtype, ttl, rdata, source, added_at, added_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for r in records {
        ins.execute(params![
            zname,
            r.name.to_lowercase().to_ascii(),
            u16::from(r.record_type()),
            r.ttl,
            rdata_bytes(&r.data),
            source.as_str(),
            now as i64,
            by
        ])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::change::Actor;

    #[test]
    fn commit_then_reload_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db/z.sqlite");
        let zone = Name::from_ascii("z.test.").unwrap();
        let mut s = Store::open(&path).unwrap();
        assert!(s.load_zone(&zone, |_, _, _, _| true).unwrap().is_none());
        s.create_zone(&zone, 7, "fp", &[], 1000).unwrap();
        let rec = Record::from_rdata(
            Name::from_ascii("_acme-challenge.MX1.z.test.").unwrap(),
            60,
            RData::try_from_str(RecordType::TXT, "abc").unwrap(),
        );
        let change = Change {
            serial_from: 7,
            serial_to: 8,
            removed: vec![],
            added: vec![rec.clone()],
            source: Source::Dynamic,
            audit: Audit {
                actor: Actor::Key {
                    key: Name::from_ascii("mx1.").unwrap(),
                    machine: "mx1".into(),
                    source: "127.0.0.1".parse().unwrap(),
                },
                action: Action::Update,
                detail: "add".into(),
            },
        };
        s.commit(&zone, &change, 1001, &Extra::default()).unwrap();
        drop(s);
        let s = Store::open(&path).unwrap();
        let (st, dynamic) = load(&s, &zone);
        assert_eq!(st.serial, 8);
        assert_eq!(dynamic.len(), 1);
        assert_eq!(dynamic[0].name.to_ascii(), "_acme-challenge.mx1.z.test.");
        assert_eq!(dynamic[0].data, rec.data);
        assert_eq!(s.journal(&zone).unwrap()[0].added[0].data, rec.data);
        let rows = s.audit_tail(&zone, 1).unwrap();
        assert_eq!(rows[0].action, Action::Update);
        assert_eq!(rows[0].key.as_deref(), Some("mx1."));
        assert_eq!(rows[0].machine.as_deref(), Some("mx1"));
        assert_eq!(s.dynamic_txt_older_than(&zone, 1002).unwrap().len(), 1);
        assert_eq!(s.dynamic_txt_older_than(&zone, 1001).unwrap().len(), 0);
    }

    /// `load_zone`, its dynamic rows as records.
    fn load(s: &Store, zone: &Name) -> (ZoneState, Vec<Record>) {
        let mut rows = Vec::new();
        let st = s
            .load_zone(zone, |name, rtype, ttl, rdata| {
                let data = rdata_from_bytes(rtype, rdata).unwrap();
                rows.push(Record::from_rdata(name.clone(), ttl, data));
                true
            })
            .unwrap()
            .unwrap();
        (st, rows)
    }

    #[test]
    fn a_row_whose_rdata_is_not_of_its_type_is_reported_corrupt_with_its_owner() {
        let dir = tempfile::tempdir().unwrap();
        let zone = Name::from_ascii("z.test.").unwrap();
        let mut s = Store::open(&dir.path().join("z.sqlite")).unwrap();
        s.create_zone(&zone, 10, "fp", &[], 1000).unwrap();
        s.commit(
            &zone,
            &change(10, vec![txt_at("a.z.test.", "1")]),
            1001,
            &Extra::default(),
        )
        .unwrap();
        s.conn
            .execute(
                "UPDATE records SET rdata = x'05' WHERE owner = 'a.z.test.'",
                [],
            )
            .unwrap();
        let err = s
            .load_zone(&zone, |_, rtype, _, rdata| {
                rdata_from_bytes(rtype, rdata).is_some()
            })
            .unwrap_err();
        assert!(err.to_string().contains("rdata of a.z.test. TXT"), "{err}");
    }

    fn change(serial_from: u32, added: Vec<Record>) -> Change {
        Change {
            serial_from,
            serial_to: serial_from + 1,
            removed: vec![],
            added,
            source: Source::Dynamic,
            audit: Audit::server(Action::Update, "test".into()),
        }
    }

    fn txt_at(owner: &str, value: &str) -> Record {
        Record::from_rdata(
            Name::from_ascii(owner).unwrap(),
            60,
            RData::try_from_str(RecordType::TXT, value).unwrap(),
        )
    }

    #[test]
    fn a_batch_is_one_transaction_with_a_journal_entry_and_audit_row_per_change() {
        let dir = tempfile::tempdir().unwrap();
        let zone = Name::from_ascii("z.test.").unwrap();
        let mut s = Store::open(&dir.path().join("z.sqlite")).unwrap();
        s.create_zone(&zone, 10, "fp", &[], 1000).unwrap();
        let a = change(10, vec![txt_at("a.z.test.", "1")]);
        let b = change(11, vec![txt_at("b.z.test.", "2")]);
        let mac = |id: u8| Accepted {
            key: "k.".into(),
            id: vec![id],
            expires: 2000,
        };
        let (ma, refused) = (mac(1), mac(2));
        let extra_a = Extra {
            accepted: Some(&ma),
            ..Extra::default()
        };
        let extra_b = Extra::default();
        let commits = [
            Commit {
                change: &a,
                extra: &extra_a,
            },
            Commit {
                change: &b,
                extra: &extra_b,
            },
        ];
        s.commit_all(&zone, &commits, std::slice::from_ref(&refused), 1001)
            .unwrap();
        let (st, dynamic) = load(&s, &zone);
        assert_eq!((st.serial, dynamic.len()), (12, 2));
        let journal = s.journal(&zone).unwrap();
        let serials: Vec<(u32, u32)> = journal
            .iter()
            .map(|e| (e.serial_from, e.serial_to))
            .collect();
        assert_eq!(serials, [(10, 11), (11, 12)]);
        assert_eq!(s.journal_between(&zone, 11, 12).unwrap().unwrap().len(), 1);
        assert_eq!(s.audit_tail(&zone, 10).unwrap().len(), 3, "create + 2");
        let ids: Vec<Vec<u8>> = s
            .accepted_since(1001)
            .unwrap()
            .into_iter()
            .map(|a| a.id)
            .collect();
        assert_eq!(ids, [vec![1], vec![2]]);
        // A batch that fails (here: its zone is not in the database) leaves
        // nothing of itself, its MACs included.
        let c = change(12, vec![txt_at("c.z.test.", "3")]);
        let extra = Extra::default();
        let other = Name::from_ascii("nowhere.test.").unwrap();
        assert!(
            s.commit_all(
                &other,
                &[Commit {
                    change: &c,
                    extra: &extra
                }],
                &[mac(3)],
                1002
            )
            .is_err()
        );
        assert_eq!(s.accepted_since(1001).unwrap().len(), 2, "rolled back");
    }

    #[test]
    fn replay_rows_past_their_window_are_purged_as_a_range_at_most_once_a_minute() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("r.sqlite")).unwrap();
        let mac = |id: u8, expires: u64| Accepted {
            key: "k.".into(),
            id: vec![id],
            expires,
        };
        // The first commit purges (nothing yet past its window).
        s.remember_accepted(&[mac(1, 100), mac(2, 200)], 70)
            .unwrap();
        let count = |s: &Store| -> i64 {
            s.conn
                .query_row("SELECT count(*) FROM tsig_replay", [], |r| r.get(0))
                .unwrap()
        };
        // Within a minute of the last purge: kept, but no longer returned.
        s.remember_accepted(&[mac(3, 400)], 101).unwrap();
        assert_eq!(count(&s), 3);
        let ids: Vec<u8> = s
            .accepted_since(101)
            .unwrap()
            .iter()
            .map(|a| a.id[0])
            .collect();
        assert_eq!(ids, [2, 3]);
        // A minute on: the expired front goes; what is still inside stays.
        s.remember_accepted(&[mac(4, 500)], 250).unwrap();
        let ids: Vec<u8> = s
            .accepted_since(0)
            .unwrap()
            .iter()
            .map(|a| a.id[0])
            .collect();
        assert_eq!(ids, [3, 4]);
    }

    #[test]
    fn a_wal_grown_by_a_big_transaction_is_truncated_after_its_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.sqlite");
        let zone = Name::from_ascii("z.test.").unwrap();
        let mut s = Store::open(&path).unwrap();
        s.create_zone(&zone, 1, "fp", &[], 1000).unwrap();
        // One change of 30,000 records: a WAL far past the limit.
        let big: Vec<Record> = (0..30_000)
            .map(|i| txt_at(&format!("n{i}.z.test."), &format!("{i:0>60}")))
            .collect();
        s.commit(&zone, &change(1, big), 1001, &Extra::default())
            .unwrap();
        let wal = dir.path().join("w.sqlite-wal");
        let peak = std::fs::metadata(&wal).unwrap().len();
        assert!(peak > WAL_SIZE_LIMIT as u64, "{peak}");
        // That commit checkpointed it; the next one starts the WAL over
        // and truncates it to the limit.
        s.commit(
            &zone,
            &change(2, vec![txt_at("x.z.test.", "y")]),
            1002,
            &Extra::default(),
        )
        .unwrap();
        let after = std::fs::metadata(&wal).unwrap().len();
        assert!(after <= WAL_SIZE_LIMIT as u64, "{after} (peak {peak})");
    }

    #[test]
    fn the_commit_statements_are_prepared_once() {
        let dir = tempfile::tempdir().unwrap();
        let zone = Name::from_ascii("z.test.").unwrap();
        let mut s = Store::open(&dir.path().join("p.sqlite")).unwrap();
        s.create_zone(&zone, 1, "fp", &[], 1000).unwrap();
        let a = txt_at("a.z.test.", "1");
        let sig = Record::from_rdata(
            Name::from_ascii("a.z.test.").unwrap(),
            60,
            RData::try_from_str(RecordType::NS, "ns.z.test.").unwrap(),
        );
        // Removals of several types, one after the other, as commits make
        // them: a bound type that could decide whether the partial age
        // index applies would make SQLite prepare the DELETE again each
        // time (found in a profile: 4 % of the CPU under load).
        for serial in 1..6 {
            let mut c = change(serial, vec![a.clone(), sig.clone()]);
            if serial > 1 {
                c.removed = vec![a.clone(), sig.clone()];
            }
            s.commit(&zone, &c, 1000 + serial as u64, &Extra::default())
                .unwrap();
        }
        let del = s.conn.prepare_cached(DELETE_RECORD).unwrap();
        assert_eq!(
            del.get_status(rusqlite::StatementStatus::RePrepare),
            0,
            "the DELETE was prepared again"
        );
    }

    #[test]
    fn a_version_4_database_keeps_its_replay_window() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v4.sqlite");
        {
            let conn = Connection::open(&path).unwrap();
            for m in &MIGRATIONS[..4] {
                conn.execute_batch(m).unwrap();
            }
            conn.execute_batch(
                "INSERT INTO tsig_replay (key, mac, expires) VALUES
                   ('k.', x'02', 200), ('k.', x'01', 100), ('k.', x'03', 50);
                 PRAGMA user_version = 4;",
            )
            .unwrap();
        }
        let mut s = Store::open(&path).unwrap();
        let ids: Vec<Vec<u8>> = s
            .accepted_since(60)
            .unwrap()
            .into_iter()
            .map(|a| a.id)
            .collect();
        assert_eq!(ids, [vec![1], vec![2]], "in the order their windows end");
        s.remember_accepted(
            &[Accepted {
                key: "k.".into(),
                id: vec![4],
                expires: 300,
            }],
            120,
        )
        .unwrap();
        let ids: Vec<Vec<u8>> = s
            .accepted_since(120)
            .unwrap()
            .into_iter()
            .map(|a| a.id)
            .collect();
        assert_eq!(ids, [vec![2], vec![4]]);
    }

    #[test]
    fn a_version_2_database_moves_the_retired_machine_out_of_the_key_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.sqlite");
        {
            let conn = Connection::open(&path).unwrap();
            for m in &MIGRATIONS[..2] {
                conn.execute_batch(m).unwrap();
            }
            conn.execute_batch(
                "INSERT INTO audit (time, zone, key, source, action, detail) VALUES
                   (1, 'z.test.', 'mx1', NULL, 'dane-retire', 'del x'),
                   (2, 'z.test.', 'mx1.', '127.0.0.1', 'update', 'add y');
                 PRAGMA user_version = 2;",
            )
            .unwrap();
        }
        let s = Store::open(&path).unwrap();
        let rows = s
            .audit_tail(&Name::from_ascii("z.test.").unwrap(), 10)
            .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].action, rows[0].key.as_deref()),
            (Action::Update, Some("mx1."))
        );
        assert_eq!(rows[0].machine, None, "not known from an old row");
        assert_eq!(rows[1].action, Action::DaneRetire);
        assert_eq!(
            (rows[1].key.as_deref(), rows[1].machine.as_deref()),
            (None, Some("mx1"))
        );
    }
}
