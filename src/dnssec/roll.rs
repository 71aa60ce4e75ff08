//! CSK rollover: what the next step is, from the keys' lifecycle records
//! (`zone::keys`), the timings and what was observed (which serial every
//! secondary serves, what DS each parent nameserver serves). Pure: the zone
//! writer (`writer::keys`) observes, asks [`plan`] and carries the step out
//! as a journaled change.
//!
//! The method is double signature (RFC 7583 §3.3.1 for a CSK, "double-KSK"
//! for the key-signing half): the new key enters the DNSKEY RRset and signs
//! every RRset beside the old one in one change, so whatever DNSKEY RRset,
//! DS RRset and signed RRsets a resolver has cached, one key of the DS set
//! it holds signs them all. The steps, each waiting for what makes the next
//! one safe, never on a guess:
//!
//! 1. **publish** the new key N (DNSKEY + signatures); wait until every
//!    secondary serves that serial, then the DNSKEY TTL plus
//!    `propagation-delay` (every cache holding the DNSKEY RRset has N);
//! 2. **submit**: CDS/CDNSKEY name N (RFC 7344/8078), N is *ready*; wait
//!    until every parent nameserver serves N's DS, then the DS TTL plus
//!    `propagation-delay` (no cache holds a DS set without N);
//! 3. **retire** the old key O: out of the DNSKEY RRset, its signatures
//!    gone, N *active*; after every secondary serves that and the DNSKEY
//!    TTL passed, O is *removed*.
//!
//! Double signature rather than double DS: the parent changes once (DS of
//! O to DS of N, one CDS change or one edit by hand), not twice; the cost,
//! two signatures per RRset from step 1 to step 3, is small for zones this
//! size.
//!
//! An **algorithm rollover** (the zone file's `algorithm` changed; RFC 6781
//! §4.1.4) adds a stage at each end, because a validator that sees a
//! DNSKEY of an algorithm may expect that algorithm's signatures on
//! everything (RFC 4035 §2.2): N signs every RRset first (*signing*) and is
//! published once no cache holds an RRset without its signature (the
//! zone's longest TTL plus `propagation-delay`); at the end O leaves the
//! DNSKEY RRset first (*withdrawn*) and its signatures go one DNSKEY TTL
//! later.
//!
//! **Turning DNSSEC off** (`enabled = false` in a zone that is signed):
//! CDS and CDNSKEY say "delete" (RFC 8078 §4); once no parent nameserver
//! serves any DS for the zone, plus the DS TTL and `propagation-delay`,
//! every DNSSEC record goes. Turned on again before that, the CDS names
//! the key again.

use super::parent_view::{DsId, ParentView};
use crate::serial;
use crate::zone::keys::{KeyRecord, KeyState};
use crate::zonefile::KeyAlgorithm;

/// How long each wait is (zone file `[dnssec]`), seconds, and what the
/// zone file asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timings {
    pub dnskey_ttl: u32,
    /// Added to every TTL wait: for secondaries zonewarden does not know of
    /// and for clocks.
    pub propagation_delay: u32,
    /// A rollover starts this long after the key became active (None: only
    /// when asked, `zonewarden dnssec roll`).
    pub key_lifetime: Option<u32>,
    /// The algorithm the zone file asks for: a different one than the
    /// active key's starts an algorithm rollover.
    pub algorithm: KeyAlgorithm,
    /// The longest TTL of any signed RRset (how long a cache may keep an
    /// RRset with the signatures it had).
    pub max_ttl: u32,
    /// Whether the zone file wants the zone signed.
    pub enabled: bool,
}

/// What the writer observed just now.
#[derive(Debug, Clone)]
pub struct Observed {
    pub now: u64,
    /// The lowest serial every known secondary serves (the zone's own
    /// serial when it has none); None while one of them is unknown.
    pub served: Option<u32>,
    /// The parent's nameservers' DS sets, as last asked.
    pub parent: Option<ParentView>,
}

impl Observed {
    fn serves(&self, serial: Option<u32>) -> bool {
        match (serial, self.served) {
            (None, _) => true,
            (Some(s), Some(have)) => serial::at_least(have, s),
            (Some(_), None) => false,
        }
    }
}

/// One step to carry out now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Make a new key beside `old`: published and signing (a CSK
    /// rollover), or signing only (an algorithm rollover, to `algorithm`).
    Start {
        old: i64,
        algorithm: KeyAlgorithm,
        reason: String,
    },
    /// Algorithm rollover: the signing key's DNSKEY published.
    Publish { key: i64 },
    /// The published key is in every cache: name it in CDS/CDNSKEY.
    Submit { key: i64 },
    /// Every parent nameserver serves `key`'s DS (first seen now).
    DsSeen { key: i64, ttl: u32 },
    /// No parent nameserver serves `key`'s DS (or, turning DNSSEC off, any
    /// DS) any more.
    DsRemoved { key: i64 },
    /// `old` leaves the DNSKEY RRset (and stops signing, unless it is of
    /// another algorithm than `new`: then it is withdrawn); `new` is active.
    Retire { old: i64, new: i64 },
    /// Algorithm rollover: the withdrawn key's signatures go.
    Unsign { key: i64 },
    /// The retired `key` is gone from every cache.
    Remove { key: i64 },
    /// Turning DNSSEC off: CDS and CDNSKEY say "delete".
    Leave { key: i64 },
    /// DNSSEC on again before it was off: CDS and CDNSKEY name `key` again.
    Stay { key: i64 },
    /// Turning DNSSEC off: no DS is left anywhere; every DNSSEC record
    /// goes and `key` retires.
    Off { key: i64 },
}

/// What a key waits for, for `dnssec status`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outlook {
    /// The next step ("submit DS", "retire", ...), empty when none.
    pub next: String,
    /// When the timing allows it (Unix seconds), if known.
    pub at: Option<u64>,
    /// What it waits for, in words.
    pub waiting_for: String,
    /// What an admin must do now, if anything.
    pub action: Option<String>,
    /// Worth knowing, nothing to do for the zone to stay valid.
    pub note: Option<String>,
}

/// The plan: at most one step now, and each key's outlook.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub step: Option<Step>,
    pub keys: Vec<(i64, Outlook)>,
}

fn wait_served(o: &Observed, serial: Option<u32>) -> Option<String> {
    if o.serves(serial) {
        return None;
    }
    Some(match (serial, o.served) {
        (Some(s), Some(have)) => {
            format!("every secondary to serve serial {s} (the slowest serves {have})")
        }
        (Some(s), None) => {
            format!("every secondary to serve serial {s} (one not heard from yet)")
        }
        (None, _) => String::new(),
    })
}

/// The planner's view of one zone.
struct Planner<'a, F> {
    t: &'a Timings,
    o: &'a Observed,
    zone: &'a str,
    parent_zone: &'a str,
    ds_of: F,
    step: Option<Step>,
}

impl<F: Fn(&KeyRecord) -> Option<DsId>> Planner<'_, F> {
    fn propose(&mut self, s: Step) {
        if self.step.is_none() {
            self.step = Some(s);
        }
    }

    /// Whether every parent nameserver serves `k`'s DS (its TTL), or why not.
    fn has(&self, k: &KeyRecord) -> Option<Result<u32, String>> {
        let p = self.o.parent.as_ref()?;
        Some(match (self.ds_of)(k) {
            Some(ds) => p.all_have(&ds),
            None => Err(format!("key {} cannot be read", k.tag)),
        })
    }

    fn ds_text(&self, k: &KeyRecord) -> String {
        (self.ds_of)(k).map_or_else(
            || "(key unreadable)".to_string(),
            |d| format!("{} IN DS {d}", self.zone),
        )
    }

    /// Wait for every secondary to serve `k`'s step, then `wait` seconds
    /// after it (described as `what`); then `step`.
    fn after(&mut self, k: &KeyRecord, out: &mut Outlook, wait: u64, what: String, step: Step) {
        let at = k.since + wait;
        out.at = Some(at);
        if let Some(w) = wait_served(self.o, k.since_serial) {
            out.waiting_for = w;
        } else if self.o.now < at {
            out.waiting_for = what;
        } else {
            self.propose(step);
        }
    }

    fn ttl_wait(&self, ttl: u32) -> u64 {
        u64::from(ttl) + u64::from(self.t.propagation_delay)
    }

    fn plan(mut self, keys: &[KeyRecord]) -> Plan {
        let t = *self.t;
        let delay = t.propagation_delay;
        let active = keys.iter().rev().find(|k| k.state == KeyState::Active);
        let incoming = keys.iter().rev().find(|k| k.state.incoming());
        let mut outlooks = Vec::new();
        for k in keys {
            let mut out = Outlook::default();
            match k.state {
                KeyState::Generated | KeyState::Removed => {}
                KeyState::Ready => self.ready(k, active, &mut out),
                KeyState::Active => self.active(k, incoming, &mut out),
                // A wait for the secondaries and a TTL, then the next step.
                timed => {
                    let (next, ttl, what, step) = match timed {
                        KeyState::Signing => (
                            "publish its DNSKEY",
                            t.max_ttl,
                            "the zone's longest TTL",
                            Step::Publish { key: k.id },
                        ),
                        KeyState::Published => (
                            "submit its DS (CDS/CDNSKEY)",
                            t.dnskey_ttl,
                            "the DNSKEY TTL",
                            Step::Submit { key: k.id },
                        ),
                        KeyState::Withdrawn => (
                            "its signatures go",
                            t.dnskey_ttl,
                            "the DNSKEY TTL",
                            Step::Unsign { key: k.id },
                        ),
                        _ => (
                            "removed",
                            t.dnskey_ttl,
                            "the DNSKEY TTL",
                            Step::Remove { key: k.id },
                        ),
                    };
                    out.next = next.into();
                    let what =
                        format!("{what} ({ttl} s) plus propagation-delay ({delay} s) to pass");
                    self.after(k, &mut out, self.ttl_wait(ttl), what, step);
                }
            }
            if matches!(k.state, KeyState::Retired | KeyState::Removed) && k.ds_removed.is_none() {
                let any = self
                    .o
                    .parent
                    .as_ref()
                    .zip((self.ds_of)(k))
                    .map(|(p, ds)| p.any_has(&ds));
                match any {
                    Some(false) => self.propose(Step::DsRemoved { key: k.id }),
                    Some(true) => {
                        out.note = Some(format!(
                            "the parent still serves the DS of retired key {}: remove it from {} (harmless meanwhile)",
                            k.tag, self.parent_zone
                        ))
                    }
                    None => {}
                }
            }
            outlooks.push((k.id, out));
        }
        Plan {
            step: self.step,
            keys: outlooks,
        }
    }

    fn ready(&mut self, k: &KeyRecord, active: Option<&KeyRecord>, out: &mut Outlook) {
        let delay = self.t.propagation_delay;
        out.next = "retire the old key".into();
        let (Some(seen), Some(ds_ttl)) = (k.ds_seen, k.ds_ttl) else {
            match self.has(k) {
                Some(Ok(ttl)) => self.propose(Step::DsSeen { key: k.id, ttl }),
                Some(Err(why)) => {
                    out.waiting_for = format!(
                        "the DS of key {} at every nameserver of {}: {why}",
                        k.tag, self.parent_zone
                    );
                    out.action = Some(format!(
                        "put this DS in {} in place of the old key's (or let the parent take it from the CDS): {}",
                        self.parent_zone,
                        self.ds_text(k)
                    ));
                }
                None => {
                    out.waiting_for = format!(
                        "the DS of key {} at the nameservers of {} (not asked yet)",
                        k.tag, self.parent_zone
                    );
                }
            }
            return;
        };
        let at = seen + self.ttl_wait(ds_ttl);
        out.at = Some(at);
        if self.o.now < at {
            out.waiting_for =
                format!("the DS TTL ({ds_ttl} s) plus propagation-delay ({delay} s) to pass");
            return;
        }
        match self.has(k) {
            Some(Err(why)) => {
                out.waiting_for = format!("the parent's DS to be there still: {why}");
            }
            None => out.waiting_for = "a fresh look at the parent's DS".into(),
            Some(Ok(_)) => {
                if let Some(old) = active {
                    self.propose(Step::Retire {
                        old: old.id,
                        new: k.id,
                    });
                }
            }
        }
    }

    fn active(&mut self, k: &KeyRecord, incoming: Option<&KeyRecord>, out: &mut Outlook) {
        let t = *self.t;
        if !t.enabled {
            return self.leaving(k, incoming, out);
        }
        if k.ds_delete.is_some() {
            out.next = "name this key in CDS and CDNSKEY again (DNSSEC is on again)".into();
            self.propose(Step::Stay { key: k.id });
            return;
        }
        if let Some(n) = incoming {
            out.next = format!("retire, once key {} is ready and its DS is in place", n.tag);
        } else {
            let due = if k.algorithm != t.algorithm {
                Some((
                    k.since,
                    format!(
                        "the zone file asks for {} (algorithm rollover)",
                        t.algorithm.config_name()
                    ),
                ))
            } else {
                k.roll_requested
                    .map(|r| (r, "asked for (`dnssec roll`)".to_string()))
                    .or_else(|| {
                        t.key_lifetime.map(|l| {
                            (
                                k.active.unwrap_or(k.since) + u64::from(l),
                                format!("key-lifetime ({l} s) reached"),
                            )
                        })
                    })
            };
            match due {
                Some((at, reason)) => {
                    out.next = "start a rollover".into();
                    out.at = Some(at);
                    if self.o.now >= at {
                        self.propose(Step::Start {
                            old: k.id,
                            algorithm: t.algorithm,
                            reason,
                        });
                    } else {
                        out.waiting_for = "key-lifetime to pass".into();
                    }
                }
                None => {
                    out.next = "none (no key-lifetime; `zonewarden dnssec roll` starts one)".into()
                }
            }
        }
        match self.has(k) {
            Some(Ok(ttl)) if k.ds_seen.is_none() => self.propose(Step::DsSeen { key: k.id, ttl }),
            Some(Err(why)) if incoming.is_none_or(|n| n.state != KeyState::Ready) => {
                out.action = Some(format!(
                    "put this DS in {} ({why}): {}",
                    self.parent_zone,
                    self.ds_text(k)
                ));
            }
            _ => {}
        }
    }

    /// The active key of a zone whose file turns DNSSEC off.
    fn leaving(&mut self, k: &KeyRecord, incoming: Option<&KeyRecord>, out: &mut Outlook) {
        let delay = self.t.propagation_delay;
        out.next = "turn DNSSEC off".into();
        if let Some(n) = incoming {
            out.waiting_for = format!("the rollover to key {} to finish first", n.tag);
            return;
        }
        if k.ds_delete.is_none() {
            self.propose(Step::Leave { key: k.id });
            return;
        }
        let Some(gone) = k.ds_removed else {
            match self.o.parent.as_ref().map(ParentView::none_has_any) {
                Some(Ok(())) => self.propose(Step::DsRemoved { key: k.id }),
                Some(Err(why)) => {
                    out.waiting_for = format!(
                        "no DS for {} at any nameserver of {}: {why}",
                        self.zone, self.parent_zone
                    );
                    out.action = Some(format!(
                        "remove the DS records of {} from {} (or let the parent act on the CDS \"delete\")",
                        self.zone, self.parent_zone
                    ));
                }
                None => out.waiting_for = "the parent's DS (not asked yet)".into(),
            }
            return;
        };
        // Caches may hold the DS set for its TTL after the parent dropped it.
        let ds_ttl = k.ds_ttl.unwrap_or(0);
        let at = gone + self.ttl_wait(ds_ttl);
        out.at = Some(at);
        if self.o.now < at {
            out.waiting_for =
                format!("the DS TTL ({ds_ttl} s) plus propagation-delay ({delay} s) to pass");
        } else {
            self.propose(Step::Off { key: k.id });
        }
    }
}

/// The next step for a zone's keys.
pub fn plan(
    keys: &[KeyRecord],
    t: &Timings,
    o: &Observed,
    zone: &str,
    parent_zone: &str,
    ds_of: impl Fn(&KeyRecord) -> Option<DsId>,
) -> Plan {
    Planner {
        t,
        o,
        zone,
        parent_zone,
        ds_of,
        step: None,
    }
    .plan(keys)
}

#[cfg(test)]
mod tests;
