//! The update policy: which machine (TSIG key) may change which names and
//! record types, read from one `acl/<machine>.toml` file per machine.
//!
//! This module owns the ACL file format, its validation (every error with
//! path and line:column, all of them at once, all or nothing for a
//! directory), loading the ACLs together with the TSIG key files they name
//! ([`load_policy`]), and the decision "may this key change this RRset?"
//! ([`Machine::permits`], [`Machine::grantable_types_at`]). It is the
//! local policy RFC 2136 §3.3 leaves to the server, in the spirit of BIND's
//! `update-policy` (`grant KEY name|subdomain NAME TYPES`, `TXT(2)` limits)
//! but with fewer, stricter rules. It does not verify TSIG (it only reads
//! the key files into a [`tsig::KeyRing`](crate::tsig::KeyRing)), parse
//! UPDATE messages, check prerequisites, count RRsets (it only reports the
//! `max-rrset` a grant allows: the update path enforces it), or know which zones exist beyond the list of served zone origins it is
//! given.
//!
//! - `file.rs`: the file format, its serde spec types and their validation,
//!   once, into runtime types; `skeleton.rs`: the file `machine add`
//!   writes.
//! - `policy.rs`: the validated [`Policy`] and its decisions; machines are
//!   handed out as `Arc<Machine>` so a request can carry one.
//! - `load.rs`: reading the ACL and key directories ([`Policy::load_dir`],
//!   [`load_policy`]).
//! - `live.rs`: the policy in force ([`LivePolicy`]), swapped whole on a
//!   good reload, kept on a bad one.
//!
//! # File format
//!
//! ```toml
//! # acl/mx1.toml: the machine name is the file stem, "mx1"
//! key = "mx1"                      # TSIG key name; default: the machine name
//! role = "machine"                 # "machine" (default) or "admin"
//! networks = ["192.0.2.0/24", "::1/128", "127.0.0.1"]  # default: any source
//! zones = ["_acme.example.org."]   # default: every served zone
//! # password-hash = "$2a$10$..."   # acme-dns accounts only: bcrypt; no TSIG key then
//!
//! [[grant]]
//! name = "_acme-challenge.{machine}"   # relative to the zone unless it ends in "."
//! types = ["TXT"]                      # mnemonics, case-insensitive; TYPEnnn too
//! max-rrset = 2                        # optional: at most 2 RRs after the update
//!
//! [[grant]]
//! name = "_*._tcp.{machine}"
//! types = ["TLSA"]
//!
//! [[grant]]
//! name = "hosts.{machine}"
//! subtree = true                       # this name and every name below it
//! types = ["A", "AAAA"]
//! ```
//!
//! # Matching rules
//!
//! Names are compared label by label, right to left, ignoring ASCII case
//! only, on the raw label bytes: an escaped dot inside a label
//! (`_acme-challenge\.mx1`) is one label and never matches two.
//!
//! - A pattern label is a literal (`[A-Za-z0-9_-]`), `*` (exactly one label
//!   of any content, never zero or several), or a prefix glob such as `_*`
//!   (one label starting with `_`, including `_` itself). `*` anywhere else
//!   in a label, and backslash escapes, are errors.
//! - `@` is the zone apex. A name ending in `.` is absolute and must lie in
//!   one of the machine's zones; otherwise the zone origin is appended.
//! - `subtree = true` covers the pattern's names and every name below them.
//! - `{machine}` (in `name` and `key`) expands to the machine name; any
//!   other `{...}` is an error.
//! - The owner must lie in the update's zone, and that zone must be one of
//!   the machine's `zones` (if given).
//! - Role machine: an owner with a literal `*` label anywhere (a DNS
//!   wildcard such as `*.mx1` or `*._tcp.mx1`) is never permitted, whatever
//!   the pattern: wildcard records are not grantable. SOA, NS, DNSSEC types
//!   (DS, RRSIG, NSEC, DNSKEY, NSEC3, NSEC3PARAM, CDS, CDNSKEY, and the old
//!   SIG, KEY, NXT), ZONEMD and meta/query types (0, OPT, 128–255: TKEY,
//!   TSIG, IXFR, AXFR, MAILA, MAILB, ANY) can never be granted: naming one is
//!   an error in the file.
//! - Role admin: any name in its zones (wildcards included) and any type
//!   but SOA, DNSSEC, ZONEMD and meta types. Grants are optional; a matching
//!   admin grant only adds its `max-rrset` limit.
//! - Several grants may match: permission is their union, and the most
//!   permissive matching grant (no limit, else the largest `max-rrset`) is
//!   the one reported.
//!
//! Empty `networks`, `zones` or `types` lists are errors (omit `networks` or
//! `zones` to mean "any"), as are a machine without grants, a network with
//! host bits set (`192.0.2.5/24`), a zone that is not served, and two
//! files with the same key name.

mod file;
mod live;
mod load;
mod policy;
mod skeleton;

pub use live::{LivePolicy, ReloadStatus};
pub use load::{MissingKeys, PolicyState, files_fingerprint, load_policy, report_generated};
pub use policy::{Grant, Machine, PasswordHash, Policy, Role, TypesAt};
pub use skeleton::{persist_grant, skeleton};

#[cfg(test)]
mod tests;
