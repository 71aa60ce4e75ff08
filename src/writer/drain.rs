//! Graceful shutdown of the write path: once closed, new UPDATEs and TLSA
//! publications are refused and [`Drain::wait_idle`] returns when the ones
//! in flight have been committed and answered.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

#[derive(Debug, Default)]
pub struct Drain {
    closing: AtomicBool,
    in_flight: AtomicUsize,
}

/// Held while one write request is processed.
pub struct DrainGuard<'a>(&'a Drain);

impl Drop for DrainGuard<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, SeqCst);
    }
}

impl Drain {
    /// Start one write request, unless shutting down.
    pub fn enter(&self) -> Option<DrainGuard<'_>> {
        self.in_flight.fetch_add(1, SeqCst);
        let guard = DrainGuard(self);
        // Checked after counting, so `wait_idle` never misses one.
        (!self.closing.load(SeqCst)).then_some(guard)
    }

    /// Whether `close` was called (readiness turns false).
    pub fn is_closing(&self) -> bool {
        self.closing.load(SeqCst)
    }

    /// Refuse new write requests from now on.
    pub fn close(&self) {
        self.closing.store(true, SeqCst);
    }

    /// Wait (at most `limit`) until no write request is in flight; false
    /// on timeout.
    pub async fn wait_idle(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        while self.in_flight.load(SeqCst) > 0 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }
}
