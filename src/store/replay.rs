//! The TSIG replay window, kept across restarts: every signed UPDATE that
//! reached the zone writer leaves its MAC (the prefix the verifier's
//! replay cache keys on) here until the time check alone refuses it, in
//! the same transaction as the change it made (or, for one that changed
//! nothing or was refused, in a transaction of its own before it is
//! answered). At start the server loads the rows still inside their window
//! into the verifier (`tsig::Verifier::restore`), so a captured UPDATE
//! resent after a restart is refused like one resent before it.
//!
//! Rows are appended in the order they are accepted (a rowid table, so a
//! commit writes to the table's last page only, not to a page chosen by
//! the MAC's random bytes), and rows past their window are deleted at most
//! once every [`PURGE_EVERY`] seconds by a commit, as one range at the
//! front of the table. Rows kept a little past their window are harmless:
//! [`Store::accepted_since`] returns only those still inside it.

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

/// How often (seconds) a commit deletes the rows past their window.
pub(super) const PURGE_EVERY: u64 = 60;

/// Remember `a`, inside the caller's transaction.
pub(super) fn remember(tx: &rusqlite::Transaction<'_>, a: &Accepted) -> rusqlite::Result<()> {
    tx.prepare_cached("INSERT INTO tsig_replay (key, mac, expires) VALUES (?1, ?2, ?3)")?
        .execute(params![a.key, a.id, a.expires as i64])?;
    Ok(())
}

/// Forget the rows whose window ended before `now`, inside the caller's
/// transaction: the run of them at the front of the table (rows are
/// appended as they are accepted, so their windows end in that order; a
/// row behind a later-ending one, after the clock went back, waits for
/// the next purge).
pub(super) fn purge(tx: &rusqlite::Transaction<'_>, now: u64) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "DELETE FROM tsig_replay WHERE id < coalesce(
            (SELECT id FROM tsig_replay WHERE expires >= ?1 ORDER BY id LIMIT 1),
            (SELECT max(id) + 1 FROM tsig_replay))",
    )?
    .execute([now as i64])?;
    Ok(())
}

impl Store {
    /// Remember `accepted` in a transaction of their own (UPDATEs that
    /// changed nothing or were refused: no commit carries them). Durable on
    /// return.
    pub fn remember_accepted(&mut self, accepted: &[Accepted], now: u64) -> Result<(), StoreError> {
        let path = self.path.clone();
        let sql = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let due = self.replay_purge_due(now);
        let tx = self.conn.transaction().map_err(sql)?;
        for a in accepted {
            remember(&tx, a).map_err(sql)?;
        }
        if due {
            purge(&tx, now).map_err(sql)?;
        }
        tx.commit().map_err(sql)?;
        if due {
            self.replay_purged_at = now;
        }
        Ok(())
    }

    /// The accepted requests whose window has not ended at `now`, oldest
    /// first.
    pub fn accepted_since(&self, now: u64) -> Result<Vec<Accepted>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT key, mac, expires FROM tsig_replay WHERE expires >= ?1 ORDER BY id",
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
