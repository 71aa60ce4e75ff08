//! `zonewarden import acme-dns --database acme-dns.db [--zone Z]`: an
//! acme-dns SQLite database (joohoi/acme-dns `db.go`: `records`, `txt`,
//! `acmedns` with `db_version` 1) turned into acme-dns accounts, one ACL file
//! per `records` row, written by the same [`account_file`] and
//! [`write_atomic`] as `POST /register` (`http::acme_dns`), so the users'
//! clients keep their username, key, subdomain and `allowfrom`.
//!
//! All or nothing: every row is validated (the API's username and
//! subdomain rules, a bcrypt-shaped hash, each `allowfrom` CIDR) and
//! compared with the ACL directory first; any bad row or conflict (a
//! different machine of the same name, another machine granted TXT at the
//! account's name) writes nothing and lists them all. Accounts whose file
//! already says the same are "unchanged", so the import can be run again.
//! The database is opened read-only.
//!
//! It writes files only, like every other ACL edit: a running server picks
//! them up at its next policy reload (`reload-interval`, or SIGHUP).
//!
//! # Limitations
//!
//! - The `txt` table's values (challenges of validations in flight) are
//!   not carried: the zone is changed only by the zone writer, and those
//!   values are worthless once their validation is over. docs/acme-dns.md
//!   says to let issuances finish before the switch.
//! - acme-dns's PostgreSQL backend is not read.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use hickory_proto::rr::{Name, RecordType};
use ipnet::IpNet;
use rusqlite::types::Value;

use crate::acl::{PasswordHash, Policy};
use crate::config::Config;
use crate::http::acme_dns::{
    MACHINE_PREFIX, account_file, parse_allowfrom, valid_subdomain, valid_username, write_atomic,
};

/// The acme-dns database version this import reads (`DBVersion`).
const DB_VERSION: &str = "1";

/// Why the import wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{path}: cannot open the database: {message}")]
    Open { path: PathBuf, message: String },
    #[error("{path} is not an acme-dns database: {message}")]
    NotAcmeDns { path: PathBuf, message: String },
    #[error("{0}")]
    Zone(String),
    #[error("{0}")]
    Files(String),
    /// Bad rows or conflicts: nothing written; the report lists them all.
    #[error("{0}")]
    Refused(String),
}

/// One `records` row as stored (the password is bytes: acme-dns writes the
/// bcrypt hash as a `[]byte`, which SQLite keeps as a BLOB).
#[derive(Debug, Clone, Default)]
pub struct Row {
    pub username: String,
    pub password: Vec<u8>,
    pub subdomain: String,
    /// A JSON array of CIDR strings; NULL, `""` and `null` mean any source.
    pub allowfrom: Option<String>,
}

/// A validated account, ready to be a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Lowercase UUID.
    pub username: String,
    pub hash: PasswordHash,
    pub subdomain: String,
    pub allowfrom: Vec<IpNet>,
}

/// A row as the API would have made it, or why not.
pub fn validate_row(row: &Row) -> Result<Account, String> {
    let username = valid_username(&row.username)
        .ok_or_else(|| "the username is not a UUID (acme-dns's usernames are)".to_string())?;
    let hash = std::str::from_utf8(&row.password)
        .ok()
        .and_then(|s| PasswordHash::parse(s).ok())
        .ok_or_else(|| {
            "the password is not a bcrypt hash ($2a$/$2b$/$2y$, cost 04-31, 60 characters)"
                .to_string()
        })?;
    if !valid_subdomain(&row.subdomain) {
        return Err(format!(
            "the subdomain {:?} is not one DNS label of letters, digits and '-'",
            row.subdomain
        ));
    }
    let entries: Vec<String> = match row.allowfrom.as_deref().map(str::trim) {
        None | Some("") => Vec::new(),
        Some(json) => serde_json::from_str::<Option<Vec<String>>>(json)
            .map_err(|_| format!("allowfrom {json:?} is not a JSON array of CIDR strings"))?
            .unwrap_or_default(),
    };
    let mut allowfrom = Vec::new();
    for e in &entries {
        let net = parse_allowfrom(e)
            .ok_or_else(|| format!("allowfrom entry {e:?} is not a CIDR network"))?;
        if !allowfrom.contains(&net) {
            allowfrom.push(net);
        }
    }
    Ok(Account {
        username,
        hash,
        subdomain: row.subdomain.to_ascii_lowercase(),
        allowfrom,
    })
}

/// What the database holds: its accounts and how many TXT values.
#[derive(Debug)]
pub struct Database {
    pub rows: Vec<Row>,
    /// Non-empty `txt` values (challenges; not carried).
    pub txt_values: u64,
}

/// Read an acme-dns SQLite database, read-only. A database without
/// acme-dns's tables and columns is refused.
pub fn read_database(path: &Path) -> Result<Database, ImportError> {
    use rusqlite::OpenFlags;
    let not_ours = |message: String| ImportError::NotAcmeDns {
        path: path.to_path_buf(),
        message,
    };
    if !path.is_file() {
        return Err(ImportError::Open {
            path: path.to_path_buf(),
            message: "no such file".into(),
        });
    }
    let db = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| ImportError::Open {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let columns = |table: &str| -> Result<BTreeSet<String>, ImportError> {
        let mut stmt = db
            .prepare("SELECT name FROM pragma_table_info(?1)")
            .map_err(|e| not_ours(e.to_string()))?;
        let names = stmt
            .query_map([table], |r| r.get::<_, String>(0))
            .and_then(|rows| rows.collect::<Result<BTreeSet<_>, _>>())
            .map_err(|e| not_ours(e.to_string()))?;
        Ok(names.into_iter().map(|n| n.to_ascii_lowercase()).collect())
    };
    for (table, needed) in [
        (
            "records",
            &["username", "password", "subdomain", "allowfrom"][..],
        ),
        ("txt", &["subdomain", "value"][..]),
        ("acmedns", &["name", "value"][..]),
    ] {
        let have = columns(table)?;
        if have.is_empty() {
            return Err(not_ours(format!("no table {table}")));
        }
        let missing: Vec<&str> = needed
            .iter()
            .copied()
            .filter(|c| !have.contains(*c))
            .collect();
        if !missing.is_empty() {
            return Err(not_ours(format!(
                "table {table} has no column {}",
                missing.join(", ")
            )));
        }
    }
    let version: Option<String> = db
        .query_row(
            "SELECT CAST(Value AS TEXT) FROM acmedns WHERE Name = 'db_version'",
            [],
            |r| r.get(0),
        )
        .ok();
    if version.as_deref() != Some(DB_VERSION) {
        return Err(not_ours(format!(
            "db_version is {}, this import reads version {DB_VERSION} (start acme-dns once to upgrade the database)",
            version.as_deref().unwrap_or("missing")
        )));
    }
    let text = |v: Value| -> Option<Vec<u8>> {
        match v {
            Value::Null => None,
            Value::Text(s) => Some(s.into_bytes()),
            Value::Blob(b) => Some(b),
            Value::Integer(i) => Some(i.to_string().into_bytes()),
            Value::Real(f) => Some(f.to_string().into_bytes()),
        }
    };
    let lossy = |b: Option<Vec<u8>>| String::from_utf8_lossy(&b.unwrap_or_default()).into_owned();
    let mut stmt = db
        .prepare("SELECT Username, Password, Subdomain, AllowFrom FROM records ORDER BY Username")
        .map_err(|e| not_ours(e.to_string()))?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, Value>(0)?,
                r.get::<_, Value>(1)?,
                r.get::<_, Value>(2)?,
                r.get::<_, Value>(3)?,
            ))
        })
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(|e| not_ours(e.to_string()))?
        .into_iter()
        .map(|(u, p, s, a)| Row {
            username: lossy(text(u)),
            password: text(p).unwrap_or_default(),
            subdomain: lossy(text(s)),
            allowfrom: text(a).map(|b| String::from_utf8_lossy(&b).into_owned()),
        })
        .collect();
    let txt_values = db
        .query_row("SELECT COUNT(*) FROM txt WHERE Value != ''", [], |r| {
            r.get::<_, i64>(0)
        })
        .map_err(|e| not_ours(e.to_string()))?;
    Ok(Database {
        rows,
        txt_values: txt_values.max(0) as u64,
    })
}

/// The zone the accounts go in: `--zone`, else `acme-dns-zone`, else the
/// only served zone.
fn choose_zone(config: &Config, arg: Option<&str>, served: &[Name]) -> Result<Name, ImportError> {
    let listed = || {
        served
            .iter()
            .map(|z| z.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let wanted = match arg {
        Some(z) => Some(
            Name::from_ascii(z)
                .ok()
                .filter(|_| !z.is_empty())
                .map(|mut n| {
                    n.set_fqdn(true);
                    n
                })
                .ok_or_else(|| ImportError::Zone(format!("--zone {z:?} is not a domain name")))?,
        ),
        None => config.acme_dns_zone.clone(),
    };
    match wanted {
        Some(z) => served.iter().find(|o| **o == z).cloned().ok_or_else(|| {
            ImportError::Zone(format!(
                "zone {z} is not served (served: {}); add its zone file first",
                listed()
            ))
        }),
        None if served.len() == 1 => Ok(served[0].clone()),
        None if served.is_empty() => Err(ImportError::Zone(format!(
            "no zone is served ({} has no zone file): add the zone of acme-dns's general.domain first",
            config.zones_dir.display()
        ))),
        None => Err(ImportError::Zone(format!(
            "several zones are served ({}): name one with --zone or acme-dns-zone",
            listed()
        ))),
    }
}

/// What the import does with one account.
enum Plan {
    New(PathBuf, String),
    Unchanged,
}

/// How an existing machine file differs from the account (empty: same).
fn differences(
    path: &Path,
    account: &Account,
    zone: &Name,
    served: &[Name],
) -> Result<Vec<&'static str>, String> {
    let m = Policy::load_file(path, served).map_err(|errs| {
        format!(
            "{} exists and does not load: {}",
            path.display(),
            errs.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        )
    })?;
    let mut diff = Vec::new();
    match &m.password_hash {
        None => {
            return Err(format!(
                "{} exists and is not an acme-dns account (no password-hash)",
                path.display()
            ));
        }
        Some(h) if *h != account.hash => diff.push("password hash"),
        Some(_) => {}
    }
    let has_grant = m.grants.iter().any(|g| {
        g.pattern_text().eq_ignore_ascii_case(&account.subdomain)
            && !g.subtree()
            && g.types() == [RecordType::TXT]
    });
    if !has_grant || m.grants.len() != 1 {
        diff.push("subdomain grant");
    }
    if m.zones.as_deref() != Some(std::slice::from_ref(zone)) {
        diff.push("zone");
    }
    let nets = |v: &[IpNet]| v.iter().copied().collect::<BTreeSet<_>>();
    if nets(&m.networks) != nets(&account.allowfrom) {
        diff.push("allowfrom");
    }
    Ok(diff)
}

/// A problem that stops the import, by username.
struct Problem {
    user: String,
    what: &'static str,
    reason: String,
}

/// `import acme-dns`: the summary, or why nothing was written.
pub fn import(config: &Config, database: &Path, zone: Option<&str>) -> Result<String, ImportError> {
    let db = read_database(database)?;
    let served: Vec<Name> = crate::zonefile::load_dir(&config.zones_dir)
        .map_err(|e| ImportError::Files(e.to_string()))?
        .into_iter()
        .map(|z| z.origin)
        .collect();
    let zone = choose_zone(config, zone, &served)?;
    let policy = Policy::load_dir(&config.acl_dir, &served).map_err(|e| {
        ImportError::Files(format!(
            "the ACL directory does not load now; fix it first (zonewarden check):\n{e}"
        ))
    })?;
    let mut problems = Vec::new();
    let mut plans = Vec::new();
    let mut subdomains = BTreeSet::new();
    let mut usernames = BTreeSet::new();
    for row in &db.rows {
        let shown = || row.username.escape_debug().to_string();
        let account = match validate_row(row) {
            Ok(a) => a,
            Err(reason) => {
                problems.push(Problem {
                    user: shown(),
                    what: "bad row",
                    reason,
                });
                continue;
            }
        };
        if !subdomains.insert(account.subdomain.clone()) {
            problems.push(Problem {
                user: account.username.clone(),
                what: "bad row",
                reason: format!("subdomain {} is used by another row", account.subdomain),
            });
            continue;
        }
        let name = format!("{MACHINE_PREFIX}{}", account.username);
        // Usernames that differ only in case would share one file.
        if !usernames.insert(name.to_ascii_lowercase()) {
            problems.push(Problem {
                user: account.username.clone(),
                what: "bad row",
                reason: "the username of another row, ignoring case".into(),
            });
            continue;
        }
        let owner = Name::from_ascii(&account.subdomain)
            .ok()
            .and_then(|s| s.append_domain(&zone).ok());
        let Some(owner) = owner else {
            problems.push(Problem {
                user: account.username.clone(),
                what: "bad row",
                reason: format!("{}.{zone} is not a valid name", account.subdomain),
            });
            continue;
        };
        let taken = policy.machines().iter().find(|m| {
            m.name != name
                && m.permits(&zone, &owner, RecordType::TXT)
                    .is_some_and(|g| !g.is_admin())
        });
        if let Some(m) = taken {
            problems.push(Problem {
                user: account.username.clone(),
                what: "conflict",
                reason: format!(
                    "TXT at {owner} is already granted to machine {} ({})",
                    m.name,
                    m.path.display()
                ),
            });
            continue;
        }
        let path = config.acl_dir.join(format!("{name}.toml"));
        if path.exists() {
            match differences(&path, &account, &zone, &served) {
                Ok(d) if d.is_empty() => plans.push((account, Plan::Unchanged)),
                Ok(d) => problems.push(Problem {
                    user: account.username.clone(),
                    what: "conflict",
                    reason: format!(
                        "{} exists and differs ({}); not overwritten",
                        path.display(),
                        d.join(", ")
                    ),
                }),
                Err(reason) => problems.push(Problem {
                    user: account.username.clone(),
                    what: "conflict",
                    reason,
                }),
            }
            continue;
        }
        let text = account_file(
            "zonewarden import acme-dns",
            &account.username,
            &account.hash,
            &account.subdomain,
            &zone,
            &account.allowfrom,
        );
        if let Err(errs) = Policy::parse_file(&path, &text, &served) {
            problems.push(Problem {
                user: account.username.clone(),
                what: "bad row",
                reason: errs
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("; "),
            });
            continue;
        }
        plans.push((account, Plan::New(path, text)));
    }
    if !problems.is_empty() {
        let mut out = format!(
            "{}: nothing imported (all or nothing): {} of {} accounts refused\n",
            database.display(),
            problems.len(),
            db.rows.len()
        );
        for p in &problems {
            out.push_str(&format!("  {:<9} {}: {}\n", p.what, p.user, p.reason));
        }
        out.push_str(
            "Fix or remove these (a conflicting file, or the row in a copy of the database) and run the import again.\n",
        );
        return Err(ImportError::Refused(out));
    }
    // Write, then check the directory loads as a whole; undo on failure.
    let mut written: Vec<&Path> = Vec::new();
    let undo = |written: &[&Path]| {
        for p in written {
            let _ = std::fs::remove_file(p);
        }
    };
    for (_, plan) in &plans {
        if let Plan::New(path, text) = plan {
            if let Err(e) = write_atomic(path, text) {
                undo(&written);
                return Err(ImportError::Files(format!(
                    "{}: {e}; nothing imported",
                    path.display()
                )));
            }
            written.push(path);
        }
    }
    if let Err(e) = Policy::load_dir(&config.acl_dir, &served) {
        undo(&written);
        return Err(ImportError::Files(format!(
            "the ACL directory does not load with the imported accounts, removed them again:\n{e}"
        )));
    }
    Ok(summary(database, &zone, &plans, db.txt_values))
}

fn summary(database: &Path, zone: &Name, plans: &[(Account, Plan)], txt_values: u64) -> String {
    let zone_text = zone.to_string();
    let zone_text = zone_text.trim_end_matches('.');
    let new = plans
        .iter()
        .filter(|(_, p)| matches!(p, Plan::New(..)))
        .count();
    let mut out = format!(
        "{}: imported {new}, unchanged {}, refused 0 (zone {zone})\n",
        database.display(),
        plans.len() - new
    );
    for (a, plan) in plans {
        let state = match plan {
            Plan::New(..) => "imported",
            Plan::Unchanged => "unchanged",
        };
        let nets = if a.allowfrom.is_empty() {
            "any".to_string()
        } else {
            a.allowfrom
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        out.push_str(&format!(
            "  {state:<9} {} {}.{zone_text} allowfrom {nets}\n",
            a.username, a.subdomain
        ));
    }
    out.push_str(&format!(
        "The users' CNAMEs point at <subdomain>.{zone_text}: serve {zone} where acme-dns served general.domain.\n"
    ));
    if txt_values > 0 {
        out.push_str(&format!(
            "{txt_values} TXT values in the database not carried (challenges of validations in flight; see docs/acme-dns.md).\n"
        ));
    }
    if new > 0 {
        out.push_str(
            "A running server picks the new accounts up at its next policy reload (reload-interval, or at once on SIGHUP).\n",
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "$2y$10$9b0cLdwNGIz0R6KSPvuFSeFf4X6WsmN7e2vY/8S0a2LEcOwcEQAxu";

    fn row() -> Row {
        Row {
            username: "0F6E7D4A-1B2C-4D3E-8F90-A1B2C3D4E5F6".into(),
            password: HASH.as_bytes().to_vec(),
            subdomain: "8e5700ea-a4bf-41c7-8a77-e990661dcc6a".into(),
            allowfrom: Some(r#"["192.0.2.1/24","[2001:db8::]/32"]"#.into()),
        }
    }

    #[test]
    fn a_good_row_becomes_an_account() {
        let a = validate_row(&row()).unwrap();
        assert_eq!(a.username, "0f6e7d4a-1b2c-4d3e-8f90-a1b2c3d4e5f6");
        assert_eq!(a.hash.as_str(), HASH);
        let nets: Vec<String> = a.allowfrom.iter().map(|n| n.to_string()).collect();
        assert_eq!(nets, ["192.0.2.0/24", "2001:db8::/32"]);
        for any in [None, Some(""), Some("null"), Some("[]")] {
            let r = Row {
                allowfrom: any.map(String::from),
                ..row()
            };
            assert!(validate_row(&r).unwrap().allowfrom.is_empty(), "{any:?}");
        }
        for prefix in ["$2a$", "$2b$"] {
            let h = HASH.replacen("$2y$", prefix, 1);
            let r = Row {
                password: h.into_bytes(),
                ..row()
            };
            assert!(validate_row(&r).is_ok(), "{prefix}");
        }
    }

    #[test]
    fn bad_rows_are_refused_with_the_reason() {
        let bad = |r: Row, says: &str| {
            let e = validate_row(&r).unwrap_err();
            assert!(e.contains(says), "{e:?} should say {says:?}");
        };
        bad(
            Row {
                username: "alice".into(),
                ..row()
            },
            "username",
        );
        bad(
            Row {
                password: b"hunter2".to_vec(),
                ..row()
            },
            "bcrypt",
        );
        bad(
            Row {
                password: HASH.as_bytes()[..59].to_vec(),
                ..row()
            },
            "bcrypt",
        );
        bad(
            Row {
                subdomain: "a.b".into(),
                ..row()
            },
            "subdomain",
        );
        bad(
            Row {
                subdomain: String::new(),
                ..row()
            },
            "subdomain",
        );
        bad(
            Row {
                allowfrom: Some(r#"["10.0.0.0/8","10.0.0.1"]"#.into()),
                ..row()
            },
            "\"10.0.0.1\" is not a CIDR",
        );
        bad(
            Row {
                allowfrom: Some("10.0.0.0/8".into()),
                ..row()
            },
            "not a JSON array",
        );
    }
}
