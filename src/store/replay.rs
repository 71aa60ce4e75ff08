//! The TSIG replay window, kept across restarts: every signed UPDATE that
//! reached the zone writer leaves its MAC (the prefix the verifier's
//! replay cache keys on) here until the time check alone refuses it, in
//! the same transaction as the change it made (or, for one that changed
//! nothing or was refused, in a transaction of its own before it is
//! answered). At start the server loads the rows still inside their window
//! into the verifier (`tsig::Verifier::restore`), so a captured UPDATE
//! resent after a restart is refused like one resent before it.
//!
//! Rows past their window are deleted by the next write that adds one.

use rusqlite::params;

use super::{Store, StoreError};

/// An accepted signed request, as remembered: the key (lowercase, fully
/// qualified), the MAC prefix that identifies the request, and until when
/// (Unix seconds) a copy of it could still pass the time check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub key: String,
    pub id: Vec<u8>,
    pub expires: u64,
}

/// Remember `a` and forget what expired before `now`, inside the caller's
/// transaction.
pub(super) fn remember(
    tx: &rusqlite::Transaction<'_>,
    a: &Accepted,
    now: u64,
) -> rusqlite::Result<()> {
    tx.prepare_cached("DELETE FROM tsig_replay WHERE expires < ?1")?
        .execute([now as i64])?;
    tx.prepare_cached(
        "INSERT INTO tsig_replay (key, mac, expires) VALUES (?1, ?2, ?3)
         ON CONFLICT (key, mac) DO UPDATE SET expires = max(expires, excluded.expires)",
    )?
    .execute(params![a.key, a.id, a.expires as i64])?;
    Ok(())
}

impl Store {
    /// Remember `a` in a transaction of its own (an UPDATE that changed
    /// nothing or was refused: no commit carries it). Durable on return.
    pub fn remember_accepted(&mut self, a: &Accepted, now: u64) -> Result<(), StoreError> {
        let path = self.path.clone();
        let sql = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sql)?;
        remember(&tx, a, now).map_err(sql)?;
        tx.commit().map_err(sql)
    }

    /// The accepted requests whose window has not ended at `now`, oldest
    /// first.
    pub fn accepted_since(&self, now: u64) -> Result<Vec<Accepted>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT key, mac, expires FROM tsig_replay WHERE expires >= ?1 ORDER BY expires",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([now as i64], |r| {
                Ok(Accepted {
                    key: r.get(0)?,
                    id: r.get(1)?,
                    expires: r.get::<_, i64>(2)?.max(0) as u64,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }
}
