//! DANE: certificates → TLSA records, and publishing them with a safe
//! rollover.
//!
//! Owns: reading certificate and public-key files (`cert`), computing and
//! matching TLSA rdata and owner names (`tlsa`; pure functions, no I/O but
//! the file readers), and the `dane publish` client (`publish`), which
//! changes the zone only through TSIG-signed RFC 2136 UPDATEs like any
//! other client. It does not own the zone, the ACL decision (the server
//! makes it) or the HTTP endpoint (which calls the pure functions).
//!
//! Implemented:
//! - RFC 6698 §2.1: the TLSA rdata, every usage (0 PKIX-TA, 1 PKIX-EE,
//!   2 DANE-TA, 3 DANE-EE; acronyms of RFC 7218 §2), selector (0 full
//!   certificate, 1 SubjectPublicKeyInfo) and matching type (0 exact,
//!   1 SHA2-256, 2 SHA2-512). Usages 1 and 3 use the leaf, 0 and 2 the
//!   certificate in the chain that issued the leaf. Default `3 1 1`, as RFC
//!   7671 §5.1 recommends: it survives renewals that keep the key.
//! - RFC 6698 §3: owner names `_<port>._<proto>.<host>`; with RFC 7671 §7,
//!   the real zone reaches them by CNAME.
//! - RFC 7671 §8.1 (key rollover with "current + next"): add the new
//!   record beside the old, wait until every nameserver serves it and two
//!   TTLs have passed, switch the service (`--then`), then remove what
//!   matches neither the current chain nor the pre-published next key.
//!   RFC 7671 §8.4 (multiple ports): one UPDATE covers every port.
//! - RFC 2136 §2.4.2: the removal carries the RRset it was computed from as
//!   a prerequisite, so a concurrent change makes it fail, not clobber.
//!
//! # Limitations
//!
//! - Usages 0 and 2 are computed from the immediate issuer only; a trust
//!   anchor higher up (a root not sent in the chain) cannot be chosen.
//! - No PKIX path validation: the issuer is found by name and, where ring
//!   supports the algorithm, by its signature on the leaf; nothing checks
//!   the chain up to a root, revocation or name constraints.
//! - An expired leaf is refused; a not-yet-valid one is accepted (clock
//!   skew right after issuance). DANE-EE clients ignore both dates.
//! - A next key given as a bare public key cannot produce selector 0 (full
//!   certificate) records.
//! - The wait after adding uses the TTL as served by the primary; a
//!   resolver that capped or stretched TTLs is not accounted for.

pub mod cert;

pub mod tlsa;

#[cfg(test)]
mod tests;

pub use cert::{CertFileError, Certificate, Chain, DaneError, NextKey};
pub use tlsa::{
    TlsaParams, association, chain_matches, next_matches, owner, record, same_tlsa, tlsa,
    tlsa_for_next, tlsa_from_pem, zone_line,
};
