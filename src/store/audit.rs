//! The audit table: one row per committed change (who, from where, what
//! kind, what), written in the change's transaction, read by the HTTP views.

use hickory_proto::rr::Name;
use rusqlite::params;

use super::{Store, StoreError};
use crate::zone::change::{Action, Audit};

/// One audit row as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub time: u64,
    pub zone: String,
    /// The TSIG key of the machine that made it, when one did.
    pub key: Option<String>,
    /// The machine it was made by or for (None in rows written before the
    /// column existed, and for the server's own changes).
    pub machine: Option<String>,
    /// The client's address, when a client made it.
    pub source: Option<String>,
    pub action: Action,
    pub detail: String,
}

const COLUMNS: &str = "time, zone, key, machine, source, action, detail";

fn audit_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditRow> {
    let action: String = r.get(5)?;
    Ok(AuditRow {
        time: r.get::<_, i64>(0)?.max(0) as u64,
        zone: r.get(1)?,
        key: r.get(2)?,
        machine: r.get(3)?,
        source: r.get(4)?,
        action: Action::parse(&action).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                5,
                rusqlite::types::Type::Text,
                format!("unknown audit action {action:?}").into(),
            )
        })?,
        detail: r.get(6)?,
    })
}

/// Write `audit` inside the commit's transaction.
pub(super) fn append(
    tx: &rusqlite::Transaction<'_>,
    zname: &str,
    audit: &Audit,
    now: u64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO audit (time, zone, key, machine, source, action, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
            now as i64,
            zname,
            audit.actor.key().map(|k| k.to_ascii()),
            audit.actor.machine(),
            audit.actor.source().map(|s| s.to_string()),
            audit.action.as_str(),
            audit.detail
    ])?;
    Ok(())
}

impl Store {
    /// The newest audit row of each machine (or of each key, for rows that
    /// name no machine): what each machine changed last.
    pub fn last_changes(&self) -> Result<Vec<AuditRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM audit WHERE id IN
                   (SELECT MAX(id) FROM audit WHERE key IS NOT NULL OR machine IS NOT NULL
                    GROUP BY coalesce(machine, lower(key)))"
            ))
            .map_err(|e| self.err(e))?;
        let rows = stmt.query_map([], audit_row).map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Audit rows matching the filters, newest first. A row matches
    /// `machine` when its machine column names it or its key is one of
    /// `keys` (the machine's key, for rows older than the machine column).
    pub fn audit_query(
        &self,
        zone: Option<&Name>,
        machine: Option<(&str, &[String])>,
        since: Option<u64>,
        limit: usize,
    ) -> Result<Vec<AuditRow>, StoreError> {
        let mut sql = format!("SELECT {COLUMNS} FROM audit WHERE 1 = 1");
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(z) = zone {
            args.push(z.to_lowercase().to_ascii().into());
            sql.push_str(&format!(" AND zone = ?{}", args.len()));
        }
        if let Some((name, keys)) = machine {
            args.push(name.to_string().into());
            let mut alts = vec![format!("machine = ?{}", args.len())];
            for k in keys {
                args.push(k.to_lowercase().into());
                alts.push(format!(
                    "(machine IS NULL AND lower(key) = ?{})",
                    args.len()
                ));
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

    /// A zone's newest audit rows, newest first.
    pub fn audit_tail(&self, zone: &Name, limit: usize) -> Result<Vec<AuditRow>, StoreError> {
        self.audit_query(Some(zone), None, None, limit)
    }
}
