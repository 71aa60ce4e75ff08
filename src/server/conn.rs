//! Connection admission for the TCP listeners (DNS over TCP and HTTP): a
//! cap on connections open at once, in total and per source, and the
//! process's file-descriptor limit.
//!
//! A *source* is one IPv4 address or one IPv6 /64 (an IPv4-mapped IPv6
//! address counts as its IPv4 address): one host on IPv6 usually holds a
//! whole /64, so a per-address cap there would cap nothing.
//!
//! A connection past either cap is accepted and closed at once (the client
//! sees the connection closed before any answer), so the kernel's accept
//! queue never fills with connections nobody will serve, and other sources
//! keep being served. Refusals are counted and logged at most once per
//! [`LOG_EVERY`], with the count since the last line, so refusing costs no
//! more than the connection did.
//!
//! # Limitations
//! The caps count connections, not bytes or work: what one connection may
//! do is bounded by the listener (idle and lifetime limits, queries per
//! connection; see `tcp` and `http`).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Refusals are logged at most this often (with the count since).
pub const LOG_EVERY: Duration = Duration::from_secs(10);

/// File descriptors kept free of connections (database, zone and key files,
/// UDP sockets, the listeners themselves).
pub const FD_RESERVE: u64 = 64;

/// Which cap a connection was refused by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Over {
    Total,
    PerSource,
}

/// The source key of an address: IPv4 as is, IPv6 by its /64.
fn source_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[derive(Default)]
struct Counts {
    total: usize,
    by_source: HashMap<IpAddr, usize>,
}

/// Caps on connections open at once, total and per source, for one kind
/// of listener (`what` names it in the log).
pub struct ConnLimiter {
    what: &'static str,
    max_total: usize,
    max_per_source: usize,
    counts: Mutex<Counts>,
    refused: AtomicU64,
    refused_logged: AtomicU64,
    last_log: Mutex<Option<Instant>>,
}

/// One admitted connection; dropping it frees its place.
pub struct ConnGuard {
    limiter: Arc<ConnLimiter>,
    source: IpAddr,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let mut c = self.limiter.counts.lock().expect("not poisoned");
        c.total -= 1;
        if let Some(n) = c.by_source.get_mut(&self.source) {
            *n -= 1;
            if *n == 0 {
                c.by_source.remove(&self.source);
            }
        }
    }
}

impl ConnLimiter {
    pub fn new(what: &'static str, max_total: usize, max_per_source: usize) -> Arc<Self> {
        Arc::new(Self {
            what,
            max_total: max_total.max(1),
            max_per_source: max_per_source.max(1),
            counts: Mutex::default(),
            refused: AtomicU64::new(0),
            refused_logged: AtomicU64::new(0),
            last_log: Mutex::new(None),
        })
    }

    /// Take a place for a connection from `ip`, or say which cap is full
    /// (the refusal is counted and, rate-limited, logged).
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<ConnGuard, Over> {
        let source = source_of(ip);
        let over = {
            let mut c = self.counts.lock().expect("not poisoned");
            let mine = c.by_source.get(&source).copied().unwrap_or(0);
            if c.total >= self.max_total {
                Some(Over::Total)
            } else if mine >= self.max_per_source {
                Some(Over::PerSource)
            } else {
                c.total += 1;
                *c.by_source.entry(source).or_insert(0) += 1;
                None
            }
        };
        match over {
            None => Ok(ConnGuard {
                limiter: self.clone(),
                source,
            }),
            Some(over) => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                self.log_refusal(ip, over);
                Err(over)
            }
        }
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.counts.lock().expect("not poisoned").total
    }

    /// Connections refused since start.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    fn log_refusal(&self, ip: IpAddr, over: Over) {
        let now = Instant::now();
        {
            let mut last = self.last_log.lock().expect("not poisoned");
            if last.is_some_and(|t| now.duration_since(t) < LOG_EVERY) {
                return;
            }
            *last = Some(now);
        }
        let total = self.refused.load(Ordering::Relaxed);
        let since = total - self.refused_logged.swap(total, Ordering::Relaxed);
        let (cap, limit) = match over {
            Over::Total => ("total", self.max_total),
            Over::PerSource => ("per-source", self.max_per_source),
        };
        tracing::warn!(
            listener = self.what,
            source = %ip,
            cap,
            limit,
            refused_since_last_report = since,
            "connection limit reached: connections closed at once (logged at most every {LOG_EVERY:?})"
        );
    }
}

/// Raise the soft limit on open files to the hard limit (a server holding
/// many connections needs more than the usual soft 1,024). Returns the
/// (soft, hard) limits now in force.
pub fn raise_fd_limit() -> std::io::Result<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        lim = raised;
    }
    Ok((lim.rlim_cur, lim.rlim_max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_source_and_total_caps_and_release() {
        let l = ConnLimiter::new("test", 3, 2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let c: IpAddr = "192.0.2.3".parse().unwrap();
        let a1 = l.admit(a).unwrap();
        let _a2 = l.admit(a).unwrap();
        assert_eq!(l.admit(a).err(), Some(Over::PerSource));
        let _b1 = l.admit(b).unwrap();
        assert_eq!(l.admit(c).err(), Some(Over::Total));
        drop(a1);
        assert!(l.admit(c).is_ok());
        assert_eq!(l.refused(), 2);
    }

    #[test]
    fn ipv6_sources_are_counted_by_slash_64() {
        let l = ConnLimiter::new("test", 10, 1);
        let _g = l.admit("2001:db8:1:2::1".parse().unwrap()).unwrap();
        assert_eq!(
            l.admit("2001:db8:1:2:ffff::9".parse().unwrap()).err(),
            Some(Over::PerSource)
        );
        assert!(l.admit("2001:db8:1:3::1".parse().unwrap()).is_ok());
        let _m = l.admit("::ffff:192.0.2.7".parse().unwrap()).unwrap();
        assert_eq!(
            l.admit("192.0.2.7".parse().unwrap()).err(),
            Some(Over::PerSource)
        );
    }
}
