//! The operator's tools: what `main.rs` runs besides `serve`. They talk to
//! a zonewarden (or any nameserver) the way a client does, over DNS and
//! HTTP, and use the library's pure pieces (`dane` for TLSA, `tsig` for
//! signing, `dnsclient` for messages); the server core never imports them.
//!
//! - `cli`: `check`, `machine add`, `ds`, `tlsa`, `wait`, `api tlsa`;
//! - `hook`: the certbot/dehydrated DNS-01 hook;
//! - `wait`: until every nameserver serves a record or serial;
//! - `publish`: `dane publish` (TLSA by UPDATE, with rollover);
//! - `api`: the HTTP API's client (`api tlsa`);
//! - `dnssec`: `dnssec status` and `dnssec roll`, asked of the running server;
//! - `persist`: `persist`, the dns-persist-01 record value (offline);
//! - `acme_dns`: `acme-dns list|remove|allowfrom`, the acme-dns accounts' files;
//! - `acme_dns_import`: `import acme-dns`, accounts from acme-dns's SQLite database.

pub mod acme_dns;
pub mod acme_dns_import;
pub mod api;
pub mod cli;
pub mod dnssec;
pub mod hook;
pub mod persist;
pub mod publish;
pub mod timeline;
pub mod wait;
