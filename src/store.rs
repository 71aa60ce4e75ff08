//! Persistence: SQLite (bundled, WAL, `synchronous=FULL`) through rusqlite.
//!
//! Owns the schema and every write. One [`Store`] (one connection) per zone
//! writer; each accepted change is ONE transaction holding the record rows,
//! the new serial, the diff (kept for IXFR, RFC 1995) and an audit row. The
//! caller acknowledges the client only after [`Store::commit`] returned, so
//! after `kill -9` every acknowledged change is there and the serial never
//! goes back.
//!
//! Records are stored per RR: owner (lowercase FQDN), type, TTL and RDATA in
//! uncompressed wire form, whether the zone file or an UPDATE put it there,
//! and when. Diffs are stored as concatenated wire-format RRs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{
    BinDecodable, BinDecoder, BinEncodable, BinEncoder, NameEncoding, Restrict,
};
use rusqlite::{Connection, OptionalExtension, params};

/// How many diffs per zone the journal keeps for IXFR.
const JOURNAL_KEEP: i64 = 10_000;

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
];

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

/// Where a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Static,
    Dynamic,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Source::Static => "static",
            Source::Dynamic => "dynamic",
        }
    }
}

/// One audit row.
#[derive(Debug, Clone)]
pub struct Audit {
    pub key: Option<String>,
    pub source: Option<String>,
    pub action: String,
    pub detail: String,
}

/// One accepted change, ready to commit.
#[derive(Debug, Clone)]
pub struct Change {
    pub serial_from: u32,
    pub serial_to: u32,
    pub removed: Vec<Record>,
    pub added: Vec<Record>,
    pub source: Source,
    pub audit: Audit,
}

/// What the database holds for one zone.
#[derive(Debug)]
pub struct ZoneState {
    pub serial: u32,
    pub static_fingerprint: String,
    pub dynamic: Vec<Record>,
    pub statics: Vec<Record>,
}

/// One stored diff: what went from `serial_from` to `serial_to`.
#[derive(Debug, Clone)]
pub struct JournalEntry {
    pub serial_from: u32,
    pub serial_to: u32,
    pub removed: Vec<Record>,
    pub added: Vec<Record>,
}

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

/// A dynamic TXT row with its age (for expiry).
#[derive(Debug, Clone)]
pub struct AgedRecord {
    pub record: Record,
    pub added_at: u64,
}

pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// Where commit latency is recorded (the server's; none in tools).
    metrics: Option<std::sync::Arc<crate::metrics::Metrics>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

fn audit_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(u64, String, Audit)> {
    Ok((
        r.get::<_, i64>(0)? as u64,
        r.get(1)?,
        Audit {
            key: r.get(2)?,
            source: r.get(3)?,
            action: r.get(4)?,
            detail: r.get(5)?,
        },
    ))
}

/// RDATA in uncompressed wire form.
pub fn rdata_bytes(data: &RData) -> Vec<u8> {
    let mut buf = Vec::new();
    {
        let mut enc = BinEncoder::new(&mut buf);
        let mut enc = enc.with_name_encoding(NameEncoding::Uncompressed);
        // emitting into a Vec without a size limit cannot fail for valid RData
        let _ = data.emit(&mut enc);
    }
    buf
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
            metrics: None,
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

    fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// Record every commit's latency (and failures) in `metrics`.
    pub fn set_metrics(&mut self, metrics: std::sync::Arc<crate::metrics::Metrics>) {
        self.metrics = Some(metrics);
    }

    /// Whether the database takes writes now: takes the write lock and
    /// gives it back (`BEGIN IMMEDIATE; ROLLBACK`), writing nothing.
    pub fn check_writable(&self) -> Result<(), StoreError> {
        self.conn
            .execute_batch("BEGIN IMMEDIATE; ROLLBACK;")
            .map_err(|e| self.err(e))
    }

    /// The newest audit row of each key: (key, time, zone, audit).
    pub fn last_change_by_key(&self) -> Result<Vec<(u64, String, Audit)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT time, zone, key, source, action, detail FROM audit WHERE id IN
                   (SELECT MAX(id) FROM audit WHERE key IS NOT NULL GROUP BY lower(key))",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt.query_map([], audit_row).map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Audit rows matching the filters, newest first: (time, zone, audit).
    /// `keys` matches the key column case-insensitively (any of them).
    pub fn audit_query(
        &self,
        zone: Option<&Name>,
        keys: Option<&[String]>,
        since: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, String, Audit)>, StoreError> {
        let mut sql =
            String::from("SELECT time, zone, key, source, action, detail FROM audit WHERE 1 = 1");
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(z) = zone {
            args.push(z.to_lowercase().to_ascii().into());
            sql.push_str(&format!(" AND zone = ?{}", args.len()));
        }
        if let Some(keys) = keys {
            let mut alts = Vec::new();
            for k in keys {
                args.push(k.to_lowercase().into());
                alts.push(format!("lower(key) = ?{}", args.len()));
            }
            if alts.is_empty() {
                alts.push("0".into());
            }
            sql.push_str(&format!(" AND ({})", alts.join(" OR ")));
        }
        if let Some(t) = since {
            args.push((t as i64).into());
            sql.push_str(&format!(" AND time >= ?{}", args.len()));
        }
        args.push((limit as i64).into());
        sql.push_str(&format!(" ORDER BY id DESC LIMIT ?{}", args.len()));
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args), audit_row)
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Load a zone's state, or None if the database has never seen it.
    pub fn load_zone(&self, zone: &Name) -> Result<Option<ZoneState>, StoreError> {
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
        let rows = stmt
            .query_map([&zname], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, u16>(1)?,
                    r.get::<_, u32>(2)?,
                    r.get::<_, Vec<u8>>(3)?,
                    r.get::<_, String>(4)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut dynamic = Vec::new();
        let mut statics = Vec::new();
        for row in rows {
            let (owner, rtype, ttl, rdata, source) = row.map_err(|e| self.err(e))?;
            let corrupt = |what: String| StoreError::Corrupt {
                path: self.path.clone(),
                zone: zname.clone(),
                what,
            };
            let name =
                Name::from_ascii(&owner).map_err(|e| corrupt(format!("owner {owner}: {e}")))?;
            let rtype = RecordType::from(rtype);
            let data = rdata_from_bytes(rtype, &rdata)
                .ok_or_else(|| corrupt(format!("rdata of {owner} {rtype}")))?;
            let rec = Record::from_rdata(name, ttl, data);
            if source == "static" {
                statics.push(rec);
            } else {
                dynamic.push(rec);
            }
        }
        Ok(Some(ZoneState {
            serial: serial as u32,
            static_fingerprint,
            dynamic,
            statics,
        }))
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
        let zname = zone.to_lowercase().to_ascii();
        let path = self.path.clone();
        let sql = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sql)?;
        tx.execute(
            "INSERT INTO zones (name, serial, static_fingerprint) VALUES (?1, ?2, ?3)",
            params![zname, serial as i64, fingerprint],
        )
        .map_err(sql)?;
        insert_records(&tx, &zname, statics, Source::Static, now, None).map_err(sql)?;
        tx.execute(
            "INSERT INTO audit (time, zone, key, source, action, detail) VALUES (?1, ?2, NULL, NULL, 'create', ?3)",
            params![now as i64, zname, format!("zone created with serial {serial}")],
        )
        .map_err(sql)?;
        tx.commit().map_err(sql)
    }

    /// Commit one change in one transaction. Returns only once it is durable.
    pub fn commit(
        &mut self,
        zone: &Name,
        change: &Change,
        now: u64,
        new_fingerprint: Option<&str>,
    ) -> Result<(), StoreError> {
        self.commit_with_plan(zone, change, now, new_fingerprint, &[])
    }

    /// Like [`Store::commit`], and in the same transaction, plan records
    /// to retire once `change` has propagated (DANE rollover).
    pub fn commit_with_plan(
        &mut self,
        zone: &Name,
        change: &Change,
        now: u64,
        new_fingerprint: Option<&str>,
        plan: &[Planned],
    ) -> Result<(), StoreError> {
        let started = std::time::Instant::now();
        let result = self.commit_inner(zone, change, now, new_fingerprint, plan);
        if let Some(m) = &self.metrics {
            m.commit_done(started.elapsed(), result.is_ok());
        }
        result
    }

    fn commit_inner(
        &mut self,
        zone: &Name,
        change: &Change,
        now: u64,
        new_fingerprint: Option<&str>,
        plan: &[Planned],
    ) -> Result<(), StoreError> {
        let zname = zone.to_lowercase().to_ascii();
        let path = self.path.clone();
        let sql = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sql)?;
        {
            let mut del = tx
                .prepare_cached(
                    "DELETE FROM records WHERE zone = ?1 AND owner = ?2 AND rtype = ?3 AND rdata = ?4",
                )
                .map_err(sql)?;
            for r in &change.removed {
                del.execute(params![
                    zname,
                    r.name.to_lowercase().to_ascii(),
                    u16::from(r.record_type()),
                    rdata_bytes(&r.data)
                ])
                .map_err(sql)?;
            }
        }
        insert_records(
            &tx,
            &zname,
            &change.added,
            change.source,
            now,
            change.audit.key.as_deref(),
        )
        .map_err(sql)?;
        let updated = match new_fingerprint {
            Some(fp) => tx.execute(
                "UPDATE zones SET serial = ?2, static_fingerprint = ?3 WHERE name = ?1",
                params![zname, change.serial_to as i64, fp],
            ),
            None => tx.execute(
                "UPDATE zones SET serial = ?2 WHERE name = ?1",
                params![zname, change.serial_to as i64],
            ),
        }
        .map_err(sql)?;
        if updated != 1 {
            return Err(sql(rusqlite::Error::QueryReturnedNoRows));
        }
        tx.execute(
            "INSERT INTO journal (zone, serial_from, serial_to, time, removed, added) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                zname,
                change.serial_from as i64,
                change.serial_to as i64,
                now as i64,
                encode_records(&change.removed),
                encode_records(&change.added)
            ],
        )
        .map_err(sql)?;
        if change.serial_to.is_multiple_of(64) {
            // Keep the IXFR history bounded; older secondaries get AXFR.
            tx.execute(
                "DELETE FROM journal WHERE zone = ?1 AND id <= (
                    SELECT id FROM journal WHERE zone = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
                params![zname, JOURNAL_KEEP],
            )
            .map_err(sql)?;
        }
        tx.execute(
            "INSERT INTO audit (time, zone, key, source, action, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                now as i64,
                zname,
                change.audit.key,
                change.audit.source,
                change.audit.action,
                change.audit.detail
            ],
        )
        .map_err(sql)?;
        {
            let mut ins = tx
                .prepare_cached(
                    "INSERT INTO retirements (zone, owner, rtype, rdata, after_serial, ttl, machine, created)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(sql)?;
            for p in plan {
                ins.execute(params![
                    zname,
                    p.record.name.to_lowercase().to_ascii(),
                    u16::from(p.record.record_type()),
                    rdata_bytes(&p.record.data),
                    change.serial_to as i64,
                    p.record.ttl,
                    p.machine,
                    now as i64
                ])
                .map_err(sql)?;
            }
        }
        tx.commit().map_err(sql)
    }

    /// Dynamic records of `rtype` added before `before` (Unix seconds).
    pub fn dynamic_older_than(
        &self,
        zone: &Name,
        rtype: RecordType,
        before: u64,
    ) -> Result<Vec<AgedRecord>, StoreError> {
        let zname = zone.to_lowercase().to_ascii();
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT owner, ttl, rdata, added_at FROM records
                 WHERE zone = ?1 AND source = 'dynamic' AND rtype = ?2 AND added_at < ?3",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![zname, u16::from(rtype), before as i64], |r| {
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
            let (Ok(name), Some(data)) =
                (Name::from_ascii(&owner), rdata_from_bytes(rtype, &rdata))
            else {
                continue;
            };
            out.push(AgedRecord {
                record: Record::from_rdata(name, ttl, data),
                added_at: added_at.max(0) as u64,
            });
        }
        Ok(out)
    }

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

    /// Plan retirements with no zone change (what they wait for is `serial`).
    pub fn plan_retirements(
        &mut self,
        zone: &Name,
        serial: u32,
        plan: &[Planned],
        now: u64,
    ) -> Result<(), StoreError> {
        let zname = zone.to_lowercase().to_ascii();
        let path = self.path.clone();
        let sql = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sql)?;
        for p in plan {
            tx.execute(
                "INSERT INTO retirements (zone, owner, rtype, rdata, after_serial, ttl, machine, created)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    zname,
                    p.record.name.to_lowercase().to_ascii(),
                    u16::from(p.record.record_type()),
                    rdata_bytes(&p.record.data),
                    serial as i64,
                    p.record.ttl,
                    p.machine,
                    now as i64
                ],
            )
            .map_err(sql)?;
        }
        tx.commit().map_err(sql)
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

    /// Forget planned retirements (done, or superseded) without a zone change.
    pub fn drop_retirements(&mut self, ids: &[i64]) -> Result<(), StoreError> {
        let tx = self.conn.transaction().map_err(|e| StoreError::Sqlite {
            path: self.path.clone(),
            source: e,
        })?;
        for id in ids {
            tx.execute("DELETE FROM retirements WHERE id = ?1", [id])
                .map_err(|e| StoreError::Sqlite {
                    path: self.path.clone(),
                    source: e,
                })?;
        }
        tx.commit().map_err(|e| StoreError::Sqlite {
            path: self.path.clone(),
            source: e,
        })
    }

    /// Recent audit rows (newest first), for tests and the status views.
    pub fn audit_tail(&self, zone: &Name, limit: usize) -> Result<Vec<(u64, Audit)>, StoreError> {
        let zname = zone.to_lowercase().to_ascii();
        let mut stmt = self
            .conn
            .prepare("SELECT time, key, source, action, detail FROM audit WHERE zone = ?1 ORDER BY id DESC LIMIT ?2")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![zname, limit as i64], |r| {
                Ok((
                    r.get::<_, i64>(0)? as u64,
                    Audit {
                        key: r.get(1)?,
                        source: r.get(2)?,
                        action: r.get(3)?,
                        detail: r.get(4)?,
                    },
                ))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

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

    #[test]
    fn commit_then_reload_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db/z.sqlite");
        let zone = Name::from_ascii("z.test.").unwrap();
        let mut s = Store::open(&path).unwrap();
        assert!(s.load_zone(&zone).unwrap().is_none());
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
                key: Some("mx1.".into()),
                source: Some("127.0.0.1".into()),
                action: "update".into(),
                detail: "add".into(),
            },
        };
        s.commit(&zone, &change, 1001, None).unwrap();
        drop(s);
        let s = Store::open(&path).unwrap();
        let st = s.load_zone(&zone).unwrap().unwrap();
        assert_eq!(st.serial, 8);
        assert_eq!(st.dynamic.len(), 1);
        assert_eq!(st.dynamic[0].data, rec.data);
        assert_eq!(s.journal(&zone).unwrap()[0].added[0].data, rec.data);
        assert_eq!(
            s.dynamic_older_than(&zone, RecordType::TXT, 1002)
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            s.dynamic_older_than(&zone, RecordType::TXT, 1001)
                .unwrap()
                .len(),
            0
        );
    }
}
