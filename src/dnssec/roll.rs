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

use super::parent_view::{DsId, ParentView};
use crate::serial;
use crate::zone::keys::{KeyRecord, KeyState};

/// How long each wait is (zone file `[dnssec]`), seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timings {
    pub dnskey_ttl: u32,
    /// Added to every TTL wait: for secondaries zonewarden does not know of
    /// and for clocks.
    pub propagation_delay: u32,
    /// A rollover starts this long after the key became active (None: only
    /// when asked, `zonewarden dnssec roll`).
    pub key_lifetime: Option<u32>,
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
    /// Make a new key and publish it (DNSKEY + signatures), beside `old`.
    Start { old: i64, reason: String },
    /// The published key is in every cache: name it in CDS/CDNSKEY.
    Submit { key: i64 },
    /// Every parent nameserver serves `key`'s DS (first seen now).
    DsSeen { key: i64, ttl: u32 },
    /// No parent nameserver serves the retired `key`'s DS any more.
    DsRemoved { key: i64 },
    /// `old` leaves the DNSKEY RRset and stops signing; `new` is active.
    Retire { old: i64, new: i64 },
    /// The retired `key` is gone from every cache.
    Remove { key: i64 },
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
        (Some(s), None) => format!("every secondary to serve serial {s} (one not heard from yet)"),
        (None, _) => String::new(),
    })
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
    let mut plan = Plan::default();
    let ttl_wait = u64::from(t.dnskey_ttl) + u64::from(t.propagation_delay);
    let mut step: Option<Step> = None;
    let propose = |s: Step, step: &mut Option<Step>| {
        if step.is_none() {
            *step = Some(s);
        }
    };
    let active = keys.iter().rev().find(|k| k.state == KeyState::Active);
    let incoming = keys
        .iter()
        .rev()
        .find(|k| matches!(k.state, KeyState::Published | KeyState::Ready));
    // A key whose file cannot be read has no DS: nothing matches it.
    let has = |p: &ParentView, k: &KeyRecord| match ds_of(k) {
        Some(ds) => p.all_have(&ds),
        None => Err(format!("key {} cannot be read", k.tag)),
    };
    let ds_text = |k: &KeyRecord| {
        ds_of(k).map_or_else(
            || "(key unreadable)".to_string(),
            |d| format!("{zone} IN DS {d}"),
        )
    };
    for k in keys {
        let mut out = Outlook::default();
        match k.state {
            KeyState::Generated | KeyState::Removed => {}
            KeyState::Published => {
                out.next = "submit its DS (CDS/CDNSKEY)".into();
                let at = k.since + ttl_wait;
                out.at = Some(at);
                if let Some(w) = wait_served(o, k.since_serial) {
                    out.waiting_for = w;
                } else if o.now < at {
                    out.waiting_for = format!(
                        "the DNSKEY TTL ({} s) plus propagation-delay ({} s) to pass",
                        t.dnskey_ttl, t.propagation_delay
                    );
                } else {
                    propose(Step::Submit { key: k.id }, &mut step);
                }
            }
            KeyState::Ready => {
                out.next = "retire the old key".into();
                match (k.ds_seen, k.ds_ttl) {
                    (Some(seen), Some(ds_ttl)) => {
                        let at = seen + u64::from(ds_ttl) + u64::from(t.propagation_delay);
                        out.at = Some(at);
                        let still = o.parent.as_ref().map(|p| has(p, k));
                        if o.now < at {
                            out.waiting_for = format!(
                                "the DS TTL ({ds_ttl} s) plus propagation-delay ({} s) to pass",
                                t.propagation_delay
                            );
                        } else if let Some(Err(why)) = still {
                            out.waiting_for = format!("the parent's DS to be there still: {why}");
                        } else if still.is_none() {
                            out.waiting_for = "a fresh look at the parent's DS".into();
                        } else if let Some(old) = active {
                            propose(
                                Step::Retire {
                                    old: old.id,
                                    new: k.id,
                                },
                                &mut step,
                            );
                        }
                    }
                    _ => match o.parent.as_ref().map(|p| has(p, k)) {
                        Some(Ok(ttl)) => propose(Step::DsSeen { key: k.id, ttl }, &mut step),
                        Some(Err(why)) => {
                            out.waiting_for = format!(
                                "the DS of key {} at every nameserver of {parent_zone}: {why}",
                                k.tag
                            );
                            out.action = Some(format!(
                                "put this DS in {parent_zone} in place of the old key's (or let the parent take it from the CDS): {}",
                                ds_text(k)
                            ));
                        }
                        None => {
                            out.waiting_for = format!(
                                "the DS of key {} at the nameservers of {parent_zone} (not asked yet)",
                                k.tag
                            );
                        }
                    },
                }
            }
            KeyState::Active => {
                if let Some(n) = incoming {
                    out.next =
                        format!("retire, once key {} is ready and its DS is in place", n.tag);
                } else {
                    let due = k
                        .roll_requested
                        .map(|r| (r, "asked for (`dnssec roll`)".to_string()))
                        .or_else(|| {
                            t.key_lifetime.map(|l| {
                                (
                                    k.active.unwrap_or(k.since) + u64::from(l),
                                    format!("key-lifetime ({l} s) reached"),
                                )
                            })
                        });
                    match due {
                        Some((at, reason)) => {
                            out.next = "start a rollover".into();
                            out.at = Some(at);
                            if o.now >= at {
                                propose(Step::Start { old: k.id, reason }, &mut step);
                            } else {
                                out.waiting_for = "key-lifetime to pass".into();
                            }
                        }
                        None => {
                            out.next =
                                "none (no key-lifetime; `zonewarden dnssec roll` starts one)".into()
                        }
                    }
                }
                match o.parent.as_ref().map(|p| has(p, k)) {
                    Some(Ok(ttl)) if k.ds_seen.is_none() => {
                        propose(Step::DsSeen { key: k.id, ttl }, &mut step)
                    }
                    Some(Err(why)) if incoming.is_none_or(|n| n.state != KeyState::Ready) => {
                        out.action = Some(format!(
                            "put this DS in {parent_zone} ({why}): {}",
                            ds_text(k)
                        ));
                    }
                    _ => {}
                }
            }
            KeyState::Retired => {
                out.next = "removed".into();
                let at = k.since + ttl_wait;
                out.at = Some(at);
                if let Some(w) = wait_served(o, k.since_serial) {
                    out.waiting_for = w;
                } else if o.now < at {
                    out.waiting_for = format!("the DNSKEY TTL ({} s) to pass", t.dnskey_ttl);
                } else {
                    propose(Step::Remove { key: k.id }, &mut step);
                }
            }
        }
        if matches!(k.state, KeyState::Retired | KeyState::Removed) && k.ds_removed.is_none() {
            let any = o
                .parent
                .as_ref()
                .zip(ds_of(k))
                .map(|(p, ds)| p.any_has(&ds));
            match any {
                Some(false) => propose(Step::DsRemoved { key: k.id }, &mut step),
                Some(true) => {
                    out.note = Some(format!(
                        "remove the DS of retired key {} from {parent_zone} (harmless meanwhile: the new key's DS is there)",
                        k.tag
                    ))
                }
                None => {}
            }
        }
        plan.keys.push((k.id, out));
    }
    plan.step = step;
    plan
}

#[cfg(test)]
mod tests;
