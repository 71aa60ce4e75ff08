//! Time as the server sees it, injected so TSIG windows, challenge expiry and
//! signature refresh are tested without sleeping.
//!
//! Owns nothing but "what second is it", in two readings: wall time (Unix
//! seconds: what TSIG, RFC 8945 §4.3.3 "Time Signed", RRSIGs and the audit
//! rows need), which an operator or NTP may step, and monotonic time, which
//! never steps (how long the process has waited: challenge ages while the
//! process runs). [`ManualClock`] moves them together ([`ManualClock::advance`])
//! or steps the wall clock alone ([`ManualClock::set`]), as a clock step does.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// `2026-11-22 18:53:06 UTC` for Unix seconds: how the status page, the CLI
/// and the DANE messages print a time. Beyond the years 1..9999 (where no
/// certificate or clock of ours goes) the seconds are printed as they are.
pub fn utc(t: i64) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| d.format(FORMAT).ok())
        .unwrap_or_else(|| format!("{t} seconds after 1970-01-01 UTC"))
}

/// A source of Unix time in seconds, and of monotonic time.
pub trait Clock: Send + Sync + 'static {
    /// Wall time: Unix seconds. May step.
    fn now(&self) -> u64;
    /// Seconds since an arbitrary origin fixed for the process, on a clock
    /// that never steps (`CLOCK_MONOTONIC`). A clock without one falls back
    /// to wall time.
    fn monotonic(&self) -> u64 {
        self.now()
    }
}

/// The real wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }

    fn monotonic(&self) -> u64 {
        static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        ORIGIN.get_or_init(Instant::now).elapsed().as_secs()
    }
}

/// A clock that only moves when told to; for tests.
#[derive(Debug)]
pub struct ManualClock {
    wall: AtomicU64,
    monotonic: AtomicU64,
}

impl ManualClock {
    pub fn new(start: u64) -> Self {
        Self {
            wall: AtomicU64::new(start),
            monotonic: AtomicU64::new(0),
        }
    }
    /// Starts at the real current time.
    pub fn starting_now() -> Self {
        Self::new(SystemClock.now())
    }
    /// Step the wall clock to `t` (either way); monotonic time stays.
    pub fn set(&self, t: u64) {
        self.wall.store(t, Ordering::SeqCst);
    }
    /// Let `secs` seconds pass: both clocks move.
    pub fn advance(&self, secs: u64) {
        self.wall.fetch_add(secs, Ordering::SeqCst);
        self.monotonic.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> u64 {
        self.wall.load(Ordering::SeqCst)
    }

    fn monotonic(&self) -> u64 {
        self.monotonic.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::utc;

    #[test]
    fn utc_prints_civil_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_795_373_586), "2026-11-22 18:53:06 UTC");
        assert_eq!(utc(-1), "1969-12-31 23:59:59 UTC");
        // The last second a certificate's GeneralizedTime can name.
        assert_eq!(utc(253_402_300_799), "9999-12-31 23:59:59 UTC");
        assert_eq!(
            utc(253_402_300_800),
            "253402300800 seconds after 1970-01-01 UTC"
        );
    }
}
