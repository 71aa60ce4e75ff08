//! The server's check of a signed request (RFC 8945 §5.2): placement, key,
//! MAC, time, truncation policy, then replay.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use hickory_proto::rr::rdata::tsig::TsigError;
use hickory_proto::rr::{DNSClass, Name};

use super::reject::ErrorTsig;
use super::wire::{BAD_TSIG_RR, locate_tsig, message_id, received_digest_input};
use super::{
    Algorithm, DEFAULT_FUDGE, KeyRing, REPLAY_CACHE_PER_KEY, RejectRcode, Rejection, SignContext,
    TsigFailure, canonical_name,
};
use crate::replay::ReplayCache;

/// Server-side TSIG verifier: checks signed requests against a key ring,
/// with the server's own fudge and a replay cache. Share one per server.
pub struct Verifier {
    fudge: u16,
    min_mac_len: usize,
    replay_capacity: usize,
    /// Accepted MAC prefixes per key, so that one key's traffic cannot
    /// evict another's.
    pub(super) replay: Mutex<HashMap<Name, ReplayCache<ReplayKey>>>,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("fudge", &self.fudge)
            .field("min_mac_len", &self.min_mac_len)
            .field("replay_capacity", &self.replay_capacity)
            .finish_non_exhaustive()
    }
}

impl Default for Verifier {
    fn default() -> Self {
        Self::new(DEFAULT_FUDGE)
    }
}

impl Verifier {
    /// A verifier accepting Time Signed within `fudge` seconds of the
    /// server's clock (whatever Fudge the client sends), and any truncation
    /// RFC 8945 §5.2.2.1 allows.
    pub fn new(fudge: u16) -> Self {
        Self {
            fudge,
            min_mac_len: 0,
            replay_capacity: REPLAY_CACHE_PER_KEY,
            replay: Mutex::new(HashMap::new()),
        }
    }

    /// Local truncation policy (§5.2.4, §7): MACs shorter than `octets`
    /// (capped at the algorithm's output length) get BADTRUNC; longer ones
    /// up to the full output pass. `usize::MAX` accepts untruncated MACs
    /// only. The default accepts everything §5.2.2.1 allows.
    pub fn with_min_mac_len(mut self, octets: usize) -> Self {
        self.min_mac_len = octets;
        self
    }

    /// How many accepted MACs to remember per key (default
    /// [`REPLAY_CACHE_PER_KEY`]).
    pub fn with_replay_capacity(mut self, per_key: usize) -> Self {
        self.replay_capacity = per_key.max(1);
        self
    }

    /// The server's fudge, in seconds.
    pub fn fudge(&self) -> u16 {
        self.fudge
    }

    /// Verifies the TSIG of `raw`, the request exactly as received, at
    /// server time `now` (seconds since the epoch).
    ///
    /// `Ok(None)`: the message has no TSIG RR. `Ok(Some(ctx))`: verified;
    /// sign the answer with `ctx`. `Err(rejection)`: answer with
    /// `rejection.rcode` and [`Rejection::error_tsig`].
    // A rejection is rare and carries hickory records by value (the API the
    // server uses); boxing it would buy nothing on the accept path.
    #[allow(clippy::result_large_err)]
    pub fn verify(
        &self,
        raw: &[u8],
        keys: &KeyRing,
        now: u64,
    ) -> Result<Option<SignContext>, Rejection> {
        let request_id = message_id(raw).unwrap_or(0);
        let reject = |reason, detail, key_name: Option<&Name>, error_tsig| Rejection {
            rcode: if reason == TsigFailure::FormErr {
                RejectRcode::FormErr
            } else {
                RejectRcode::NotAuth
            },
            tsig: None,
            key_name: key_name.cloned(),
            reason,
            detail,
            error_tsig,
            request_id,
            fudge: self.fudge,
        };
        let loc = match locate_tsig(raw) {
            Ok(Some(loc)) => loc,
            Ok(None) => return Ok(None),
            Err(detail) => return Err(reject(TsigFailure::FormErr, detail, None, ErrorTsig::None)),
        };
        let key_name = &loc.key_name;
        let tsig = &loc.tsig;
        let form_err = |detail| {
            reject(
                TsigFailure::FormErr,
                detail,
                Some(key_name),
                ErrorTsig::None,
            )
        };
        let unsigned = |reason, detail, error| {
            let mut rejection = reject(
                reason,
                detail,
                Some(key_name),
                ErrorTsig::Unsigned {
                    key_name: key_name.clone(),
                    algorithm: tsig.algorithm.clone(),
                    error,
                },
            );
            rejection.tsig = rejection.error_tsig(&[], now);
            rejection
        };

        // §4.2: "CLASS: This MUST be ANY. TTL: This MUST be 0." and, for the
        // Error field, "In requests, this MUST be zero."
        if loc.dns_class != DNSClass::ANY || loc.ttl != 0 {
            return Err(form_err("TSIG RR class is not ANY or TTL is not 0"));
        }
        if tsig.error.is_some() {
            return Err(form_err("TSIG Error field is not zero in a request"));
        }

        // 1. Check key. §5.2.1: "If a non-forwarding server does not
        // recognize the key or algorithm used by the client (or recognizes
        // the algorithm but does not implement it), the server MUST generate
        // an error response with RCODE 9 (NOTAUTH) and TSIG ERROR 17
        // (BADKEY). This response MUST be unsigned".
        let Some(key) = keys.get(key_name) else {
            return Err(unsigned(
                TsigFailure::BadKey,
                "unknown key name",
                TsigError::BadKey,
            ));
        };
        let algorithm = Algorithm::from_name(&tsig.algorithm.to_name());
        if algorithm != Some(key.algorithm) {
            return Err(unsigned(
                TsigFailure::BadKey,
                "algorithm unknown or not the key's",
                TsigError::BadKey,
            ));
        }
        let algorithm = key.algorithm;

        // 2. Check MAC. §5.2.2.1: a "MAC Size" field "greater than the keyed
        // hash output length ... MUST cause the DNS message to be dropped and
        // RCODE 1 (FORMERR) to be returned", and so must one "less than the
        // larger of 10 (octets) and half the length of the hash function in
        // use" (a zero MAC is allowed only in error responses).
        let mac_len = tsig.mac.len();
        if mac_len > algorithm.output_len() {
            return Err(form_err("MAC longer than the algorithm's output"));
        }
        if mac_len < algorithm.min_mac_len() {
            return Err(form_err("MAC shorter than RFC 8945 allows"));
        }
        // §5.2.2: "If the MAC fails to match, the server MUST generate an
        // error response ... RCODE 9 (NOTAUTH) and TSIG ERROR 16 (BADSIG).
        // This response MUST be unsigned".
        let Some(digest_input) = received_digest_input(None, raw, &loc) else {
            return Err(form_err(BAD_TSIG_RR));
        };
        if !key.mac_matches(&digest_input, &tsig.mac) {
            return Err(unsigned(
                TsigFailure::BadSig,
                "MAC mismatch",
                TsigError::BadSig,
            ));
        }
        let signed = |reason, detail, error| {
            reject(
                reason,
                detail,
                Some(key_name),
                ErrorTsig::Signed {
                    key: Arc::clone(&key),
                    request_mac: tsig.mac.clone(),
                    request_time: tsig.time,
                    error,
                    mac_len,
                },
            )
        };

        // 3. Check time. §5.2.3: "If the server time is outside the time
        // interval specified by the request (which is: Time Signed,
        // plus/minus Fudge), the server MUST generate an error response with
        // RCODE 9 (NOTAUTH) and TSIG ERROR 18 (BADTIME)." The interval is
        // the server's fudge here (see the module's limitations).
        if now.abs_diff(tsig.time) > u64::from(self.fudge) {
            return Err(signed(
                TsigFailure::BadTime { server_time: now },
                "time signed outside the server's fudge",
                TsigError::BadTime,
            ));
        }

        // 4. Check truncation policy. §5.2.4: "If a TSIG is received with
        // truncation that is permitted under Section 5.2.2.1 above but the
        // MAC is too short for the local policy in force, an RCODE 9
        // (NOTAUTH) and TSIG ERROR 22 (BADTRUNC) MUST be returned."
        if mac_len < self.min_mac_len.min(algorithm.output_len()) {
            return Err(signed(
                TsigFailure::BadTrunc,
                "MAC truncated below local policy",
                TsigError::BadTrunc,
            ));
        }

        // 5. Replay. Every accepted variant of one signed message (header ID
        // changed, MAC truncated) shares the MAC's first `min_mac_len`
        // octets, so that prefix identifies it. A repeat passes the time
        // check only while now <= Time Signed + fudge <= acceptance + 2 x
        // fudge, so that is how long it is kept. A repeat is answered as RFC
        // 8945's own replay rule answers (§5.2.3: "SHOULD return BADTIME if
        // a message received later has an earlier Time Signed value"):
        // signed BADTIME, which a client understands and a replaying
        // attacker learns nothing from.
        let id = tsig.mac.get(..algorithm.min_mac_len()).unwrap_or(&tsig.mac);
        if !self.remember(key_name, id, now) {
            return Err(signed(
                TsigFailure::Replay,
                "request already accepted",
                TsigError::BadTime,
            ));
        }

        Ok(Some(SignContext {
            key,
            request_mac: tsig.mac.clone(),
            time_signed: tsig.time,
            request_id,
            fudge: self.fudge,
            mac_len,
            running_mac: Mutex::new(None),
        }))
    }

    /// How long an accepted request is remembered, in seconds: a copy can
    /// pass the time check until Time Signed + fudge, at most twice the
    /// fudge after it was accepted.
    pub fn replay_window(&self) -> u64 {
        2 * u64::from(self.fudge)
    }

    /// What the replay cache keys a request verified into `ctx` on: the
    /// first octets of its MAC, shared by every accepted variant of it
    /// (see `verify`). Stored by the zone writer, given back to
    /// [`Self::restore`] after a restart.
    pub fn replay_id(ctx: &SignContext) -> Vec<u8> {
        let n = ctx.key.algorithm.min_mac_len();
        ctx.request_mac
            .get(..n)
            .unwrap_or(&ctx.request_mac)
            .to_vec()
    }

    /// Remember a request accepted before a restart (by `key`, identified
    /// by `id` from [`Self::replay_id`], refused as a replay until
    /// `expires`), so that its copies are refused as they were before.
    pub fn restore(&self, key: &Name, id: &[u8], expires: u64) {
        let accepted = expires.saturating_sub(self.replay_window());
        self.remember(key, id, accepted);
    }

    fn remember(&self, key_name: &Name, id: &[u8], now: u64) -> bool {
        let mut caches = self.replay.lock().unwrap_or_else(PoisonError::into_inner);
        caches
            .entry(canonical_name(key_name))
            .or_insert_with(|| ReplayCache::new(2 * u64::from(self.fudge), self.replay_capacity))
            .insert(ReplayKey::of(id), now)
    }
}

/// What the replay cache holds per accepted request: the first 16 octets
/// of its MAC prefix ([`Verifier::replay_id`]; zero-padded when the prefix
/// is shorter: 10 octets for HMAC-MD5 and HMAC-SHA1, 14 for SHA-224), kept
/// inline. A copy of an accepted request has the same prefix, so the same
/// key; two different requests share one only if their MACs agree in
/// their first 16 octets (a chance of 2^-128 for HMAC output, and then
/// the later one is refused, never wrongly accepted). Inline, an entry
/// costs no allocation of its own: 10,000 of them per busy key, about half
/// a megabyte less than as `Arc<[u8]>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct ReplayKey([u8; 16]);

impl ReplayKey {
    fn of(id: &[u8]) -> Self {
        let mut k = [0u8; 16];
        for (slot, b) in k.iter_mut().zip(id) {
            *slot = *b;
        }
        Self(k)
    }
}
