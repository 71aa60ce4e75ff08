//! Pushing changes to secondaries and knowing when they have them.
//!
//! One task per (zone, secondary): when the zone's serial moves it sends
//! NOTIFY (RFC 1996 §3.6, AA set, SOA hint, TSIG-signed with the
//! secondary's key), retrying with exponential backoff (1 s doubling to
//! 60 s) until acknowledged, restarting for a newer serial; and it asks the
//! secondary for its SOA, every second while it lags and every 30 s once it
//! has caught up. What each secondary serves is kept in
//! [`SecondaryStatus`]: that is the propagation state.
//!
//! At most one transfer asked for per secondary at a time: once a NOTIFY
//! is acknowledged, no other goes to that secondary until it serves the
//! notified serial (asked every [`POLL_IN_FLIGHT`]) or it has taken
//! [`HOLD_FACTOR`] times as long as its last one (between [`HOLD_MIN`] and
//! [`HOLD_MAX`]); then one NOTIFY goes out for the newest serial, so the
//! last change is never left out. (Knot 3.2 now and then acts on a NOTIFY
//! that lands just after a whole second only at the next one: the
//! renewed NOTIFY is what keeps that from costing a second.) The first change after a quiet spell is
//! notified at once. Under a steady stream of UPDATEs a secondary thus
//! takes one IXFR of everything new per round instead of a NOTIFY per
//! serial: NSD 4.6 restarts a transfer as a full AXFR when several IXFRs
//! land in one reload (fixed in NSD 4.12), and every NOTIFY is a TSIG
//! check, a log line and a refresh for the others. RFC 1996 §4.1 ("the
//! master should send a NOTIFY for the newest serial") is kept by that last
//! NOTIFY.
//!
//! Updates never wait for any of this: the writer only publishes the new
//! serial on a `watch` channel.
//!
//! Incoming NOTIFY is answered in `server` (we are the primary: NOERROR for
//! our zones, nothing to do).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::rr::{Name, Record};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::dnsclient;
use crate::metrics::Metrics;
use crate::serial;
use crate::tsig::Key;
use crate::zonefile::{NotifyPacing, Secondary, ZoneSpec};

const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(2);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
const POLL_LAGGING: Duration = Duration::from_secs(1);
const POLL_CURRENT: Duration = Duration::from_secs(30);
/// How often a secondary's SOA is asked while a transfer we asked for is
/// under way: the delay it adds to the next NOTIFY is at most this; 100
/// queries a second at most, under NSD's default response rate limit (200).
pub const POLL_IN_FLIGHT: Duration = Duration::from_millis(10);
/// How long a secondary that has acknowledged a NOTIFY may take to serve
/// its serial before a newer serial is notified anyway (a secondary whose
/// SOA we cannot see, one that lost the NOTIFY or its transfer): this
/// many times as long as it took last time, ...
pub const HOLD_FACTOR: u32 = 4;
/// ... at least this long ...
pub const HOLD_MIN: Duration = Duration::from_millis(100);
/// ... and at most this long (also until the first one is timed).
pub const HOLD_MAX: Duration = Duration::from_secs(2);

/// How long to hold newer serials back from a secondary whose last
/// notified serial took `took` to be served: nothing for one that wants
/// [`NotifyPacing::EveryChange`].
fn hold(pacing: NotifyPacing, took: Option<Duration>) -> Duration {
    match pacing {
        NotifyPacing::Paced => {
            took.map_or(HOLD_MAX, |t| (t * HOLD_FACTOR).clamp(HOLD_MIN, HOLD_MAX))
        }
        NotifyPacing::EveryChange => Duration::ZERO,
    }
}

/// What we know about one secondary of one zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecondaryStatus {
    pub label: String,
    pub address: SocketAddr,
    /// The serial it served when last asked.
    pub serial: Option<u32>,
    /// When it was last asked successfully (Unix seconds).
    pub checked_at: Option<u64>,
    /// The newest serial it acknowledged a NOTIFY for.
    pub notified: Option<u32>,
    /// The last failure (NOTIFY or SOA query), cleared by success.
    pub last_error: Option<String>,
}

/// How many (serial, time) pairs are kept to tell how long a secondary has
/// been behind.
const HISTORY: usize = 4096;

/// How far one secondary is behind the primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lag {
    /// Changes it lacks (RFC 1982 difference of serials; 0 when current).
    pub serials: u32,
    /// Seconds since the oldest change it lacks was published (0 when
    /// current); counted from the start of this process when that change is
    /// older.
    pub seconds: u64,
}

/// What the followers need of a published snapshot.
#[derive(Debug, Clone)]
struct Published {
    serial: u32,
    /// The SOA sent as NOTIFY's hint (RFC 1996 §3.7).
    soa: Record,
}

/// Looks up a secondary's TSIG key in the policy in force.
pub type KeyLookup = Arc<dyn Fn(&Name) -> Option<Arc<Key>> + Send + Sync>;

/// What the follower tasks need from the server around them.
#[derive(Clone)]
pub struct Followers {
    /// Our listen addresses (NOTIFY goes out from one of them).
    pub listen: Vec<SocketAddr>,
    pub keys: KeyLookup,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
}

/// The propagation state of one zone.
pub struct Propagation {
    zone: Name,
    serial: watch::Sender<Published>,
    secondaries: Vec<(Secondary, Arc<Mutex<SecondaryStatus>>)>,
    clock: Arc<dyn Clock>,
    /// When each recent serial was published, oldest first.
    history: Mutex<VecDeque<(u32, u64)>>,
}

impl Propagation {
    pub fn new(spec: &ZoneSpec, serial: u32, soa: Record, clock: Arc<dyn Clock>) -> Self {
        let (tx, _) = watch::channel(Published { serial, soa });
        let history = Mutex::new(VecDeque::from([(serial, clock.now())]));
        Self {
            clock,
            history,
            zone: spec.origin.clone(),
            serial: tx,
            secondaries: spec
                .secondaries
                .iter()
                .map(|s| {
                    let status = SecondaryStatus {
                        label: s.label.clone(),
                        address: s.address,
                        serial: None,
                        checked_at: None,
                        notified: None,
                        last_error: None,
                    };
                    (s.clone(), Arc::new(Mutex::new(status)))
                })
                .collect(),
        }
    }

    /// The zone now has `serial` (and `soa`): tell the followers.
    pub fn announce(&self, serial: u32, soa: Record) {
        {
            let mut h = self.history.lock().unwrap_or_else(|p| p.into_inner());
            if h.len() >= HISTORY {
                h.pop_front();
            }
            h.push_back((serial, self.clock.now()));
        }
        self.serial.send_replace(Published { serial, soa });
    }

    /// The serial the zone has now.
    pub fn current(&self) -> u32 {
        self.serial.borrow().serial
    }

    /// How far a secondary serving `have` is behind at `now`.
    pub fn lag(&self, have: u32, now: u64) -> Lag {
        let current = self.current();
        if serial::at_least(have, current) {
            return Lag {
                serials: 0,
                seconds: 0,
            };
        }
        let h = self.history.lock().unwrap_or_else(|p| p.into_inner());
        // The first publication newer than what it has; if the history does
        // not reach back, the oldest we know of.
        let since = h
            .iter()
            .find(|(s, _)| serial::after(*s, have))
            .or(h.front())
            .map_or(now, |(_, t)| *t);
        Lag {
            serials: current.wrapping_sub(have),
            seconds: now.saturating_sub(since),
        }
    }

    /// The lowest serial served by the primary (`current`) and every
    /// secondary (`statuses`), None while one of them is not known: a
    /// change to serial S is everywhere once this is at least S.
    pub fn lowest_served(current: u32, statuses: &[SecondaryStatus]) -> Option<u32> {
        statuses.iter().try_fold(current, |low, s| {
            s.serial.map(|have| {
                if serial::at_least(have, low) {
                    low
                } else {
                    have
                }
            })
        })
    }

    pub fn statuses(&self) -> Vec<SecondaryStatus> {
        self.secondaries
            .iter()
            .map(|(_, s)| s.lock().unwrap_or_else(|p| p.into_inner()).clone())
            .collect()
    }

    /// Start one follower task per secondary.
    pub fn spawn(&self, ctx: &Followers) -> Vec<JoinHandle<()>> {
        self.secondaries
            .iter()
            .map(|(sec, status)| {
                tokio::spawn(follow(
                    ctx.clone(),
                    self.zone.clone(),
                    sec.clone(),
                    status.clone(),
                    self.serial.subscribe(),
                ))
            })
            .collect()
    }
}

fn update(status: &Mutex<SecondaryStatus>, f: impl FnOnce(&mut SecondaryStatus)) {
    f(&mut status.lock().unwrap_or_else(|p| p.into_inner()));
}

/// The address NOTIFY goes out from, like BIND's notify-source, so that a
/// secondary whose ACL names the primary's address accepts it. None (the
/// kernel's choice) when the kernel's choice for `to` is one of our listen
/// addresses (or we listen on the wildcard); otherwise our first specific
/// listen address of the secondary's family and scope (loopback to
/// loopback; IPv6 link-local never, it would need a scope). `kernel` is the
/// source the kernel picks for `to` ([`dnsclient::route_source`]).
fn notify_source(
    listen: &[SocketAddr],
    to: SocketAddr,
    kernel: Option<std::net::IpAddr>,
) -> Option<std::net::IpAddr> {
    let ours = |ip: std::net::IpAddr| {
        listen
            .iter()
            .any(|l| l.ip() == ip || (l.ip().is_unspecified() && l.is_ipv6() == ip.is_ipv6()))
    };
    if kernel.is_some_and(ours) {
        return None;
    }
    let link_local = |ip: &std::net::IpAddr| match ip {
        std::net::IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
        std::net::IpAddr::V4(_) => false,
    };
    listen.iter().map(|l| l.ip()).find(|ip| {
        !ip.is_unspecified()
            && !link_local(ip)
            && ip.is_ipv6() == to.is_ipv6()
            && ip.is_loopback() == to.ip().is_loopback()
    })
}

/// What to do after one round of NOTIFY and SOA query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// Wait for a newer serial, or this long.
    Wait(Duration),
    /// A transfer we asked for is under way: ask for its SOA again after
    /// this long, newer serials or not.
    Poll(Duration),
    /// It has what we notified, and there is newer: notify now.
    Notify,
}

/// One secondary's state between rounds, as far as pacing goes.
#[derive(Debug, Clone, Copy)]
struct Round {
    /// The newest serial published.
    target: u32,
    /// What it served when last asked.
    have: Option<u32>,
    /// It acknowledged a NOTIFY for `target`.
    acked: bool,
    /// This round's NOTIFY failed.
    failed: bool,
    /// The serial of the last acknowledged NOTIFY it does not serve yet,
    /// and for how long that has been so.
    in_flight: Option<(u32, Duration)>,
    /// How long that may last before a newer serial is notified anyway.
    hold: Duration,
}

impl Round {
    fn next(self, backoff: Duration) -> Next {
        if self.failed {
            return Next::Wait(backoff);
        }
        if self.have.is_some_and(|h| serial::at_least(h, self.target)) {
            return Next::Wait(POLL_CURRENT);
        }
        match self.in_flight {
            Some((_, waited)) if waited < self.hold => Next::Poll(POLL_IN_FLIGHT),
            // It served what we notified (or took too long): the newest now.
            _ if !self.acked => Next::Notify,
            _ => Next::Wait(POLL_LAGGING),
        }
    }
}

async fn follow(
    ctx: Followers,
    zone: Name,
    sec: Secondary,
    status: Arc<Mutex<SecondaryStatus>>,
    mut serial: watch::Receiver<Published>,
) {
    let mut backoff = Duration::from_secs(1);
    let mut failing = false;
    // The last acknowledged NOTIFY it does not serve yet, and when.
    let mut in_flight: Option<(u32, tokio::time::Instant)> = None;
    // How long the last one took to be served.
    let mut took: Option<Duration> = None;
    loop {
        let Published {
            serial: target,
            soa,
        } = serial.borrow_and_update().clone();
        let acked = status
            .lock()
            .map(|s| s.notified == Some(target))
            .unwrap_or(false);
        let held = in_flight.is_some_and(|(_, at)| at.elapsed() < hold(sec.notify, took));
        let mut failed = false;
        if !acked && !held {
            let key = sec.key.as_ref().and_then(|k| (ctx.keys)(k));
            let result = match (&sec.key, key) {
                (Some(name), None) => Err(format!(
                    "key {name} for NOTIFY not found in the keys directory"
                )),
                (_, key) => dnsclient::notify(
                    sec.address,
                    notify_source(
                        &ctx.listen,
                        sec.address,
                        dnsclient::route_source(sec.address),
                    ),
                    &zone,
                    soa,
                    key.as_deref(),
                    ctx.clock.now(),
                    EXCHANGE_TIMEOUT,
                )
                .await
                .map_err(|e| e.to_string()),
            };
            match result {
                Ok(()) => {
                    if failing {
                        tracing::info!(zone = %zone, secondary = %sec.label, serial = target, "NOTIFY acknowledged again");
                    }
                    failing = false;
                    backoff = Duration::from_secs(1);
                    // One held too long: it took at least that long.
                    if let Some((_, at)) = in_flight {
                        took = Some(at.elapsed());
                    }
                    in_flight = Some((target, tokio::time::Instant::now()));
                    ctx.metrics
                        .notify_sent
                        .inc(&[&zone.to_string(), &sec.label]);
                    update(&status, |s| {
                        s.notified = Some(target);
                        s.last_error = None;
                    });
                }
                Err(e) => {
                    ctx.metrics
                        .notify_failed
                        .inc(&[&zone.to_string(), &sec.label]);
                    if !failing {
                        tracing::warn!(zone = %zone, secondary = %sec.label, serial = target, error = %e, "NOTIFY not acknowledged; retrying with backoff");
                    }
                    failing = true;
                    failed = true;
                    update(&status, |s| s.last_error = Some(format!("NOTIFY: {e}")));
                }
            }
        }
        match dnsclient::soa_serial(sec.address, &zone, EXCHANGE_TIMEOUT).await {
            Ok(s) => update(&status, |st| {
                st.serial = Some(s);
                st.checked_at = Some(ctx.clock.now());
                if !failing {
                    st.last_error = None;
                }
            }),
            Err(e) => update(&status, |st| {
                st.last_error = Some(format!("SOA query: {e}"))
            }),
        }
        let (have, acked) = {
            let s = status.lock().unwrap_or_else(|p| p.into_inner());
            (s.serial, s.notified == Some(target))
        };
        if let Some((notified, at)) = in_flight
            && have.is_some_and(|h| serial::at_least(h, notified))
        {
            took = Some(at.elapsed());
            in_flight = None;
        }
        let round = Round {
            target,
            have,
            acked,
            failed,
            in_flight: in_flight.map(|(s, at)| (s, at.elapsed())),
            hold: hold(sec.notify, took),
        };
        match round.next(backoff) {
            Next::Notify => {}
            // Newer serials wait for the next round: this one only asks
            // whether the transfer is done.
            Next::Poll(pause) => tokio::time::sleep(pause).await,
            Next::Wait(pause) => {
                if failed {
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
                tokio::select! {
                    changed = serial.changed() => if changed.is_err() { return },
                    _ = tokio::time::sleep(pause) => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{
        HOLD_MAX, HOLD_MIN, Next, NotifyPacing, POLL_CURRENT, POLL_IN_FLIGHT, POLL_LAGGING, Round,
        hold, notify_source,
    };
    use std::time::Duration;

    #[test]
    fn notify_pacing_one_transfer_at_a_time_and_always_the_newest_serial_last() {
        let backoff = Duration::from_secs(4);
        let round = |have, acked, failed, in_flight| Round {
            target: 10,
            have,
            acked,
            failed,
            in_flight,
            hold: HOLD_MAX,
        };
        let ms = Duration::from_millis;
        // Acknowledged, still transferring serial 10: ask again shortly.
        assert_eq!(
            round(Some(9), true, false, Some((10, ms(3)))).next(backoff),
            Next::Poll(POLL_IN_FLIGHT)
        );
        // Serial 11 and 12 came meanwhile: held while 10 is in flight...
        let newer = |have, in_flight| Round {
            target: 12,
            have,
            acked: false,
            failed: false,
            in_flight,
            hold: HOLD_MAX,
        };
        assert_eq!(
            newer(Some(9), Some((10, ms(50)))).next(backoff),
            Next::Poll(POLL_IN_FLIGHT)
        );
        // ... notified at once when it serves 10 (in flight cleared) ...
        assert_eq!(newer(Some(10), None).next(backoff), Next::Notify);
        // ... or when it has taken too long.
        assert_eq!(
            newer(Some(9), Some((10, HOLD_MAX))).next(backoff),
            Next::Notify
        );
        // Caught up: wait for a change.
        assert_eq!(
            round(Some(10), true, false, None).next(backoff),
            Next::Wait(POLL_CURRENT)
        );
        // Serial arithmetic (RFC 1982) across the wrap.
        let wrapped = Round {
            target: 3,
            have: Some(u32::MAX - 2),
            acked: true,
            failed: false,
            in_flight: Some((3, ms(1))),
            hold: HOLD_MAX,
        };
        assert_eq!(wrapped.next(backoff), Next::Poll(POLL_IN_FLIGHT));
        // A failed NOTIFY backs off, whatever else.
        assert_eq!(
            round(Some(9), false, true, None).next(backoff),
            Next::Wait(backoff)
        );
        // Acknowledged long ago and still behind: the slow poll.
        assert_eq!(
            round(Some(9), true, false, Some((10, HOLD_MAX + ms(1)))).next(backoff),
            Next::Wait(POLL_LAGGING)
        );
        // Its SOA unknown (queries fail): held only for HOLD_MAX.
        assert_eq!(
            newer(None, Some((10, ms(1)))).next(backoff),
            Next::Poll(POLL_IN_FLIGHT)
        );
        assert_eq!(
            newer(None, Some((10, HOLD_MAX))).next(backoff),
            Next::Notify
        );
        // The hold follows how long the last transfer took.
        let quick = Round {
            hold: hold(NotifyPacing::Paced, Some(ms(30))),
            ..newer(Some(9), Some((10, ms(130))))
        };
        assert_eq!(quick.next(backoff), Next::Notify);
        assert_eq!(hold(NotifyPacing::Paced, Some(ms(30))), ms(120));
        assert_eq!(hold(NotifyPacing::Paced, Some(ms(1))), HOLD_MIN);
        assert_eq!(
            hold(NotifyPacing::Paced, Some(Duration::from_secs(5))),
            HOLD_MAX
        );
        assert_eq!(hold(NotifyPacing::Paced, None), HOLD_MAX);
        assert_eq!(
            hold(NotifyPacing::EveryChange, Some(Duration::from_secs(5))),
            Duration::ZERO
        );
    }

    #[test]
    fn notify_goes_out_from_a_listen_address_that_can_reach_the_secondary() {
        let ip = |s: &str| Some(s.parse::<std::net::IpAddr>().unwrap());
        let listen = [
            "127.77.0.2:53",
            "192.0.2.1:53",
            "[fe80::1]:53",
            "[2001:db8::1]:53",
        ]
        .map(|a| a.parse().unwrap());
        let src = |to: &str, kernel| {
            notify_source(&listen, to.parse().unwrap(), kernel).map(|ip| ip.to_string())
        };
        // On loopback the kernel picks 127.0.0.1, which we do not listen on.
        assert_eq!(
            src("127.77.0.3:53", ip("127.0.0.1")).as_deref(),
            Some("127.77.0.2")
        );
        // The kernel's choice is one of ours (multi-homed): keep it.
        assert_eq!(src("198.51.100.7:53", ip("192.0.2.1")), None);
        assert_eq!(
            src("198.51.100.7:53", ip("10.9.9.9")).as_deref(),
            Some("192.0.2.1")
        );
        // Link-local is skipped.
        assert_eq!(
            src("[2001:db8::2]:53", None).as_deref(),
            Some("2001:db8::1")
        );
        assert_eq!(src("[::1]:53", ip("::1")), None);
        // Listening on the wildcard: every source is ours.
        let wild = ["0.0.0.0:53".parse().unwrap()];
        assert_eq!(
            notify_source(&wild, "127.0.0.1:53".parse().unwrap(), ip("127.0.0.1")),
            None
        );
    }

    #[test]
    fn the_kernel_names_its_source_for_loopback() {
        assert_eq!(
            crate::dnsclient::route_source("127.77.0.3:53".parse().unwrap()),
            "127.0.0.1".parse().ok()
        );
    }
}
