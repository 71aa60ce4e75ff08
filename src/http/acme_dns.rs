//! The acme-dns HTTP API (issue 14), so acme-dns clients (lego, acme.sh,
//! cert-manager, Caddy, certbot hooks) work unchanged: `POST /register`,
//! `POST /update`, `GET /health`, with acme-dns's request and response
//! shapes, status codes and error strings (joohoi/acme-dns `api.go`,
//! `auth.go`, `validation.go`).
//!
//! An account is a machine: `acl/acmedns-<username>.toml` with a bcrypt
//! `password-hash`, its `allowfrom` as `networks`, its zone as `zones` and
//! one grant, TXT at `<subdomain>` with `max-rrset = 2` (acme-dns keeps the
//! last two values). `/update` is an UPDATE under that ACL through the
//! zone writer (signed, journaled, audited, NOTIFYed). Why files and not a
//! table: docs/acme-dns.md.
//!
//! Unlike acme-dns, `/register` is closed unless `acme-dns-register` names
//! the source's network or the request carries the HTTP bearer token
//! (`http-token-file`): 403 `registration_closed`, 401 `forbidden` for a
//! wrong token.
//!
//! # Limitations
//!
//! - acme-dns's `use_header` (the client address from a proxy header) is
//!   not done: `allowfrom` is judged on the connection's address.
//! - Each registration rereads the ACL directory (all or nothing, as any
//!   reload): fine for thousands of accounts, not for a million.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::State;
use super::access::Token;
use crate::acl::{Machine, PasswordHash};
use crate::writer::{UpdateDraft, WriteError, ZoneHandle};

/// The prefix of an account's machine name: `acmedns-<username>`.
pub const MACHINE_PREFIX: &str = "acmedns-";
/// acme-dns's bcrypt cost (`bcrypt.GenerateFromPassword(.., 10)`).
pub const BCRYPT_COST: u32 = 10;
/// Values kept per subdomain when the grant sets no `max-rrset`.
pub const KEEP: usize = 2;
/// acme-dns's dummy hash, checked for an unknown user so that the answer
/// takes as long as for a known one.
const DUMMY_HASH: &str = "$2a$10$8JEFVNYYhLoBysjAxe2yBuXrkDojBQBkVpXEQgyQyjn43SvJ4vL36";

/// acme-dns's error answer: `{"error": "<code>"}`.
fn fail(status: StatusCode, code: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": code }))).into_response()
}

fn forbidden() -> Response {
    fail(StatusCode::UNAUTHORIZED, "forbidden")
}

/// `GET /health`: 200, empty, as acme-dns.
pub(super) async fn health() -> StatusCode {
    StatusCode::OK
}

#[derive(Default)]
struct RegisterRequest {
    allowfrom: Vec<String>,
}

/// A JSON object's members in document order, duplicates kept: what Go's
/// `encoding/json` (acme-dns) walks when it fills a struct.
struct GoObject(Vec<(String, serde_json::Value)>);

impl<'de> Deserialize<'de> for GoObject {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = GoObject;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<GoObject, A::Error> {
                let mut out = Vec::new();
                while let Some(kv) = m.next_entry()? {
                    out.push(kv);
                }
                Ok(GoObject(out))
            }
        }
        d.deserialize_map(V)
    }
}

impl GoObject {
    fn parse(body: &[u8]) -> Option<Self> {
        serde_json::from_slice(body).ok()
    }

    /// The value Go would leave in the struct field `name`: each member
    /// whose key is `name` ignoring ASCII case is assigned in turn (the
    /// last wins), and `null` assigns nothing. Clients rely on the case
    /// folding: goacmedns (lego's `acme-dns` provider, Traefik,
    /// cert-manager) sends `"AllowFrom"`, `"SubDomain"` and `"Txt"`.
    fn field(&self, name: &str) -> Option<&serde_json::Value> {
        self.0
            .iter()
            .rev()
            .find(|(k, v)| k.eq_ignore_ascii_case(name) && !v.is_null())
            .map(|(_, v)| v)
    }
}

impl RegisterRequest {
    /// `{"allowfrom": ["192.0.2.0/24", ...]}`; None: not that shape.
    fn parse(body: &[u8]) -> Option<Self> {
        let obj = GoObject::parse(body)?;
        let allowfrom = match obj.field("allowfrom") {
            None => Vec::new(),
            Some(list) => list
                .as_array()?
                .iter()
                .map(|a| a.as_str().map(str::to_string))
                .collect::<Option<_>>()?,
        };
        Some(Self { allowfrom })
    }
}

/// What `/register` answers (acme-dns's `RegResponse`).
#[derive(Debug, Serialize, Deserialize)]
pub struct Registered {
    pub username: String,
    pub password: String,
    pub fulldomain: String,
    pub subdomain: String,
    pub allowfrom: Vec<String>,
}

/// Who may register: a bearer token equal to the HTTP token, or a source
/// in `acme-dns-register`.
fn may_register(
    peer: IpAddr,
    open_to: &[IpNet],
    token: Option<&Token>,
    headers: &HeaderMap,
) -> Result<(), (StatusCode, &'static str)> {
    let presented = headers
        .get(axum::http::header::AUTHORIZATION)
        .map(|v| v.as_bytes())
        .and_then(|h| {
            let (scheme, rest) = h.split_at_checked(7)?;
            scheme
                .eq_ignore_ascii_case(b"bearer ")
                .then(|| rest.trim_ascii())
        });
    match (presented, token) {
        (Some(p), Some(t)) if t.matches(p) => return Ok(()),
        (Some(_), _) => return Err((StatusCode::UNAUTHORIZED, "forbidden")),
        _ => {}
    }
    let ip = peer.to_canonical();
    if open_to.iter().any(|n| n.contains(&ip)) {
        return Ok(());
    }
    Err((StatusCode::FORBIDDEN, "registration_closed"))
}

/// An `allowfrom` entry as acme-dns takes it (brackets removed, a CIDR;
/// host bits allowed and cleared).
pub fn parse_allowfrom(s: &str) -> Option<IpNet> {
    let s: String = s.chars().filter(|c| *c != '[' && *c != ']').collect();
    s.parse::<IpNet>().ok().map(|n| n.trunc())
}

/// `n` random characters of acme-dns's password alphabet.
fn random_password(n: usize) -> Result<String, ring::error::Unspecified> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz1234567890-_";
    let mut bytes = vec![0u8; n];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)?;
    // 64 symbols: each byte's low 6 bits, uniform.
    Ok(bytes
        .iter()
        .map(|b| ALPHABET[(b & 63) as usize] as char)
        .collect())
}

/// A random (version 4) UUID, lowercase, as acme-dns's `uuid.New()`.
fn random_uuid() -> Result<String, ring::error::Unspecified> {
    let mut b = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

/// acme-dns's username check (`uuid.Parse`), in the canonical form only;
/// lowercased.
pub fn valid_username(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let ok = b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        });
    ok.then(|| s.to_ascii_lowercase())
}

fn acme_chars(s: &str) -> bool {
    s.bytes()
        .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

/// acme-dns's `validKey`: 40 characters of the base64url alphabet.
fn valid_key(s: &str) -> bool {
    s.len() == 40 && acme_chars(s)
}

/// acme-dns's `validTXT`: 43 characters of the base64url alphabet (a
/// SHA-256 digest, as ACME's DNS-01 key authorization).
pub fn valid_txt(s: &str) -> bool {
    s.len() == 43 && acme_chars(s)
}

/// acme-dns's `validSubdomain`: one DNS label of letters, digits, '-'.
pub fn valid_subdomain(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// The ACL file of an account; `made_by` says where it came from in the
/// file's first comment (`POST /register`, `zonewarden import acme-dns`).
pub fn account_file(
    made_by: &str,
    username: &str,
    hash: &PasswordHash,
    subdomain: &str,
    zone: &Name,
    allowfrom: &[IpNet],
) -> String {
    let mut s = format!(
        "# acme-dns account {username} ({made_by}): TXT at {subdomain}.{zone}\n\
         zones = [\"{zone}\"]\n\
         password-hash = \"{}\"\n",
        hash.as_str()
    );
    if !allowfrom.is_empty() {
        let list: Vec<String> = allowfrom.iter().map(|n| format!("\"{n}\"")).collect();
        s.push_str(&format!("networks = [{}]\n", list.join(", ")));
    }
    s.push_str(&format!(
        "\n[[grant]]\nname = \"{subdomain}\"\ntypes = [\"TXT\"]\nmax-rrset = {KEEP}\n"
    ));
    s
}

/// Write `text` to `path` by a rename (a reload never sees half a file),
/// the file and then its directory synced (a crash right after never
/// leaves an empty account file that would stop the next start).
pub fn write_atomic(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    write_atomic_mode(path, text, 0o666)
}

/// [`write_atomic`] with the file created with `mode` (less the umask):
/// 0o600 for a private key.
pub fn write_atomic_mode(path: &std::path::Path, text: &str, mode: u32) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("acl")
    ));
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

/// `POST /register`.
pub(super) async fn register(
    AxState(state): AxState<State>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let app = state.app.clone();
    if let Err((status, code)) = may_register(
        peer.ip(),
        &app.config.acme_dns_register,
        app.http_token().as_ref().as_ref(),
        &headers,
    ) {
        tracing::warn!(source = %peer.ip(), "acme-dns registration refused");
        return fail(status, code);
    }
    let Ok(body) = body else {
        return fail(StatusCode::BAD_REQUEST, "malformed_json_payload");
    };
    let req: RegisterRequest = if body.is_empty() {
        RegisterRequest::default()
    } else {
        match RegisterRequest::parse(&body) {
            Some(r) => r,
            None => return fail(StatusCode::BAD_REQUEST, "malformed_json_payload"),
        }
    };
    let mut allowfrom = Vec::new();
    for a in &req.allowfrom {
        match parse_allowfrom(a) {
            Some(n) if !allowfrom.contains(&n) => allowfrom.push(n),
            Some(_) => {}
            None => return fail(StatusCode::BAD_REQUEST, "invalid_allowfrom_cidr"),
        }
    }
    let Some(zone) = app.acme_dns_zone() else {
        tracing::error!(
            "acme-dns registration: several zones are served and acme-dns-zone names none"
        );
        return fail(StatusCode::INTERNAL_SERVER_ERROR, "no_zone_configured");
    };
    let made = tokio::task::spawn_blocking(move || create_account(&app, &zone, &allowfrom))
        .await
        .unwrap_or_else(|e| Err(format!("task failed: {e}")));
    match made {
        Ok(reg) => {
            tracing::info!(user = %reg.username, fulldomain = %reg.fulldomain, source = %peer.ip(), "acme-dns account registered");
            (StatusCode::CREATED, axum::Json(reg)).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "acme-dns registration failed");
            fail(StatusCode::INTERNAL_SERVER_ERROR, "registration_failed")
        }
    }
}

/// Make the account's file and put it in force (blocking: bcrypt, files,
/// the policy reload). On any failure the file is removed again.
fn create_account(
    app: &super::Context,
    zone: &Name,
    allowfrom: &[IpNet],
) -> Result<Registered, String> {
    let rnd = |_| "no randomness".to_string();
    let username = random_uuid().map_err(rnd)?;
    let subdomain = random_uuid().map_err(rnd)?;
    let password = random_password(40).map_err(rnd)?;
    let hash = PasswordHash::make(&password, BCRYPT_COST)?;
    let name = format!("{MACHINE_PREFIX}{username}");
    let path = app.config.acl_dir.join(format!("{name}.toml"));
    let text = account_file(
        "POST /register",
        &username,
        &hash,
        &subdomain,
        zone,
        allowfrom,
    );
    write_atomic(&path, &text).map_err(|e| format!("{}: {e}", path.display()))?;
    // In force before we answer: a client updates right after registering.
    let in_force = || {
        app.policy()
            .policy
            .machines()
            .iter()
            .any(|m| m.name == name)
    };
    for _ in 0..5 {
        match app.policy.reload(true) {
            Ok(_) if in_force() => break,
            Ok(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(format!("the ACL directory does not load: {e}"));
            }
        }
    }
    if !in_force() {
        let _ = std::fs::remove_file(&path);
        let _ = app.policy.reload(true);
        return Err("the new account did not come into force".into());
    }
    let zone_text = zone.to_ascii();
    Ok(Registered {
        fulldomain: format!("{subdomain}.{}", zone_text.trim_end_matches('.')),
        username,
        password,
        subdomain,
        allowfrom: allowfrom.iter().map(|n| n.to_string()).collect(),
    })
}

struct UpdateRequest {
    subdomain: String,
    txt: String,
}

impl UpdateRequest {
    /// `{"subdomain": ..., "txt": ...}` (keys as Go matches them, see
    /// [`GoObject::field`]); None: not that shape.
    fn parse(body: &[u8]) -> Option<Self> {
        let obj = GoObject::parse(body)?;
        let text = |name| match obj.field(name) {
            None => Some(String::new()),
            Some(v) => v.as_str().map(str::to_string),
        };
        Some(Self {
            subdomain: text("subdomain")?,
            txt: text("txt")?,
        })
    }
}

/// The account's machine if `user` and `key` are right (bcrypt); the
/// same bcrypt work whether the user exists or not.
fn authenticate(app: &super::Context, user: &str, key: &str) -> Option<Arc<Machine>> {
    let user = valid_username(user)?;
    if !valid_key(key) {
        return None;
    }
    let policy = app.policy();
    let machine = Name::from_ascii(format!("{MACHINE_PREFIX}{user}."))
        .ok()
        .and_then(|k| policy.policy.machine_for_key(&k).cloned())
        .filter(|m| m.name == format!("{MACHINE_PREFIX}{user}"));
    match machine.as_ref().and_then(|m| m.password_hash.as_ref()) {
        Some(hash) => hash.verify(key).then(|| machine.clone()).flatten(),
        None => {
            let _ = bcrypt::verify(key, DUMMY_HASH);
            None
        }
    }
}

/// `POST /update`.
pub(super) async fn update(
    AxState(state): AxState<State>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let app = state.app.clone();
    let header = |h: &str| {
        headers
            .get(h)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let (user, key) = (header("x-api-user"), header("x-api-key"));
    let a = app.clone();
    // At most one bcrypt check per core at once; the permit goes with the
    // check, so a client that resets its stream does not free it early.
    let Ok(permit) = app.bcrypt_slots.clone().acquire_owned().await else {
        return forbidden();
    };
    let machine = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        authenticate(&a, &user, &key)
    })
    .await
    .ok()
    .flatten();
    let Some(machine) = machine else {
        tracing::warn!(source = %peer.ip(), "acme-dns update: bad user or key");
        return forbidden();
    };
    if !machine.source_allowed(peer.ip()) {
        tracing::warn!(source = %peer.ip(), machine = %machine.name, "acme-dns update: source not in allowfrom");
        return forbidden();
    }
    let req = body.ok().and_then(|b| UpdateRequest::parse(&b));
    let Some(req) = req else {
        tracing::warn!(machine = %machine.name, "acme-dns update: malformed JSON");
        return forbidden();
    };
    // The account's own subdomain only (acme-dns: "subdomain_mismatch").
    let target = valid_subdomain(&req.subdomain)
        .then(|| account_zone(&app, &machine))
        .flatten()
        .and_then(|zone| {
            let owner = Name::from_ascii(&req.subdomain)
                .ok()?
                .append_domain(&zone.origin)
                .ok()?;
            let grant = machine.permits(&zone.origin, &owner, RecordType::TXT)?;
            Some((zone, owner, grant.max_rrset().unwrap_or(KEEP)))
        });
    let Some((zone, owner, keep)) = target else {
        tracing::warn!(machine = %machine.name, subdomain = %req.subdomain, "acme-dns update: not the account's subdomain");
        return forbidden();
    };
    if !valid_txt(&req.txt) {
        return fail(StatusCode::BAD_REQUEST, "bad_txt");
    }
    match replace_oldest(&zone, &machine, peer.ip(), &owner, &req.txt, keep).await {
        Ok(()) => {
            tracing::info!(machine = %machine.name, owner = %owner, "acme-dns TXT updated");
            (
                StatusCode::OK,
                axum::Json(serde_json::json!({ "txt": req.txt })),
            )
                .into_response()
        }
        Err(e) => {
            tracing::error!(machine = %machine.name, error = %e, "acme-dns update not committed");
            fail(StatusCode::INTERNAL_SERVER_ERROR, "db_error")
        }
    }
}

/// The zone an account writes in: its `zones` if it names one, else the
/// configured acme-dns zone.
fn account_zone(app: &super::Context, machine: &Machine) -> Option<Arc<ZoneHandle>> {
    let origin = match machine.zones.as_deref() {
        Some([one]) => one.clone(),
        _ => app.acme_dns_zone()?,
    };
    app.zone_exact(&origin).cloned()
}

/// Add `value` at `owner` and remove the oldest values beyond `keep`, as
/// one UPDATE under the machine's ACL. A concurrent update of the same
/// name (the limit check refuses the second) is retried.
async fn replace_oldest(
    zone: &Arc<ZoneHandle>,
    machine: &Arc<Machine>,
    source: IpAddr,
    owner: &Name,
    value: &str,
    keep: usize,
) -> Result<(), String> {
    let ttl = zone.snapshot().spec.ttl.challenge;
    let new = Record::from_rdata(
        owner.clone(),
        ttl,
        RData::TXT(TXT::new(vec![value.to_string()])),
    );
    let mut last = String::new();
    for _ in 0..3 {
        let (z, o) = (zone.clone(), owner.clone());
        let current =
            tokio::task::spawn_blocking(move || z.with_reader(|s| s.dynamic_txt_at(&z.origin, &o)))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
        if current.iter().any(|r| r.data == new.data) {
            return Ok(()); // already there
        }
        let drop_n = (current.len() + 1).saturating_sub(keep.max(1));
        let mut updates: Vec<Record> = current
            .into_iter()
            .take(drop_n)
            .map(|mut r| {
                r.dns_class = DNSClass::NONE;
                r.ttl = 0;
                r
            })
            .collect();
        updates.push(new.clone());
        let draft = UpdateDraft {
            prereqs: Vec::new(),
            updates,
            machine: machine.clone(),
            key: machine.key.clone(),
            source,
            accepted: None,
        };
        match zone.clone().update(draft).await {
            Ok(_) => return Ok(()),
            Err(WriteError::Refused(r)) => last = r.reason.to_string(),
            Err(e) => return Err(e.to_string()),
        }
    }
    Err(format!("refused: {last}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_keys_match_as_in_go() {
        // goacmedns (lego, Traefik) sends Go's field names.
        let u = UpdateRequest::parse(br#"{"SubDomain":"abc","Txt":"v"}"#).unwrap();
        assert_eq!((u.subdomain.as_str(), u.txt.as_str()), ("abc", "v"));
        let r = RegisterRequest::parse(br#"{"AllowFrom":["192.0.2.0/24"]}"#).unwrap();
        assert_eq!(r.allowfrom, ["192.0.2.0/24"]);
        // As in Go, the last member that matches wins, whatever its case,
        // and null changes nothing.
        let u = UpdateRequest::parse(br#"{"txt":"a","TXT":"b","subdomain":"s"}"#).unwrap();
        assert_eq!(u.txt, "b");
        let u = UpdateRequest::parse(br#"{"Txt":"b","txt":"a","TXT":null}"#).unwrap();
        assert_eq!(u.txt, "a");
        // Absent and null are empty; a wrong type or a non-object is malformed.
        let u = UpdateRequest::parse(br#"{"subdomain":null}"#).unwrap();
        assert_eq!((u.subdomain.as_str(), u.txt.as_str()), ("", ""));
        assert!(UpdateRequest::parse(br#"{"txt":5}"#).is_none());
        assert!(UpdateRequest::parse(b"[]").is_none());
        assert!(RegisterRequest::parse(br#"{"allowfrom":"192.0.2.0/24"}"#).is_none());
        assert!(RegisterRequest::parse(br#"{"allowfrom":[1]}"#).is_none());
        assert!(RegisterRequest::parse(b"{}").unwrap().allowfrom.is_empty());
    }

    #[test]
    fn acme_dns_validation_rules() {
        assert!(valid_txt(&"a".repeat(43)));
        assert!(!valid_txt(&"a".repeat(42)));
        assert!(!valid_txt(&format!("{}=", "a".repeat(42))));
        assert!(valid_key(&random_password(40).unwrap()));
        let u = random_uuid().unwrap();
        assert_eq!(valid_username(&u).as_deref(), Some(u.as_str()));
        assert_eq!(&u[14..15], "4");
        assert!(valid_username("not-a-uuid").is_none());
        assert!(valid_subdomain(&u));
        assert!(!valid_subdomain("a.b"));
        assert_eq!(
            parse_allowfrom("192.168.100.1/24").unwrap().to_string(),
            "192.168.100.0/24"
        );
        assert_eq!(
            parse_allowfrom("[2002:c0a8:2a00::0]/40")
                .unwrap()
                .to_string(),
            "2002:c0a8:2a00::/40"
        );
        assert!(parse_allowfrom("1.2.3.4").is_none());
    }
}
