//! A budget for answering TSIG failures over UDP (issue 11, defect 4).
//!
//! A flood of UPDATEs signed with a key we do not know (or a bad MAC) cost
//! us far more per packet than it cost the sender: a NOTAUTH answer encoded
//! twice and sent, two log lines, the refusal accounting. Over UDP a sender
//! can do that from spoofed addresses, and every such packet took a place
//! in the one socket's queue ahead of the signed UPDATEs behind it. So at
//! most `tsig-failure-answers` TSIG failures are answered per second (a
//! misconfigured client still gets its BADKEY/BADSIG/BADTIME); past it a
//! failure is dropped unanswered after the key lookup, counted in
//! `zonewarden_tsig_failures{error="dropped"}` and summarised in the log at
//! most every 10 s. Signed, verified traffic is never counted against it.
//! TCP failures are always answered (a TCP peer proved its address and is
//! bounded by the connection limits).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How often a summary of dropped failures is logged, at most.
const SUMMARY_EVERY: Duration = Duration::from_secs(10);

/// Per-second budget of answered TSIG failures over UDP.
pub struct FailureBudget {
    per_second: u64,
    window: Mutex<(Instant, u64)>,
    dropped: AtomicU64,
    last_summary: Mutex<(Instant, u64)>,
}

impl FailureBudget {
    pub fn new(per_second: u64) -> Self {
        let now = Instant::now();
        Self {
            per_second,
            window: Mutex::new((now, 0)),
            dropped: AtomicU64::new(0),
            last_summary: Mutex::new((now, 0)),
        }
    }

    /// May this failure be answered? If not, it is counted as dropped.
    pub fn allow(&self) -> bool {
        let now = Instant::now();
        {
            let mut w = self.window.lock().expect("not poisoned");
            if now.duration_since(w.0) >= Duration::from_secs(1) {
                *w = (now, 0);
            }
            if w.1 < self.per_second {
                w.1 += 1;
                return true;
            }
        }
        let total = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        let mut s = self.last_summary.lock().expect("not poisoned");
        if now.duration_since(s.0) >= SUMMARY_EVERY {
            tracing::warn!(
                dropped = total - s.1,
                per_second = self.per_second,
                "TSIG failures over UDP past tsig-failure-answers per second dropped unanswered (since the last summary)"
            );
            *s = (now, total);
        }
        false
    }

    /// Failures dropped since start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_up_to_the_budget_then_drops() {
        let b = FailureBudget::new(3);
        let allowed = (0..10).filter(|_| b.allow()).count();
        // Within one second (the test runs in far less): 3 answered.
        assert!(allowed >= 3, "{allowed}");
        assert_eq!(b.dropped() as usize, 10 - allowed);
    }
}
