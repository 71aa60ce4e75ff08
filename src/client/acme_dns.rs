//! `zonewarden acme-dns list|remove|allowfrom`: the acme-dns accounts
//! (`acl/acmedns-<username>.toml`, see `http::acme_dns`) managed as files,
//! what acme-dns never offered (deregistration, changing `allowfrom`).
//!
//! They act on the ACL directory only: a running server applies the change
//! at its next policy reload (within two `reload-interval`s, or at once on
//! SIGHUP), as for any ACL edit. A change is validated as the server will
//! validate it before the file is replaced (by a rename), so a bad
//! `allowfrom` never reaches the directory.

use std::path::PathBuf;

use crate::acl::Policy;
use crate::config::Config;
use crate::http::acme_dns::{MACHINE_PREFIX, parse_allowfrom, write_atomic};

/// Why an account command failed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("no acme-dns account {0} (no {1})")]
    NoAccount(String, PathBuf),
    #[error("{0} is not an acme-dns account (no password-hash)")]
    NotAccount(PathBuf),
    #[error("{0:?} is not a CIDR network (192.0.2.0/24, 2001:db8::/32)")]
    BadNetwork(String),
    #[error("{0}")]
    File(String),
}

fn file_of(config: &Config, user: &str) -> Result<(PathBuf, toml::Table), AccountError> {
    let user = user.to_ascii_lowercase();
    // A username is a UUID: nothing that could name another file.
    if user.is_empty() || !user.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-') {
        return Err(AccountError::NoAccount(user, config.acl_dir.clone()));
    }
    let path = config.acl_dir.join(format!("{MACHINE_PREFIX}{user}.toml"));
    let text = std::fs::read_to_string(&path)
        .map_err(|_| AccountError::NoAccount(user.clone(), path.clone()))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e| AccountError::File(format!("{}: {e}", path.display())))?;
    if !table.contains_key("password-hash") {
        return Err(AccountError::NotAccount(path));
    }
    Ok((path, table))
}

/// `acme-dns list`: one line per account: username, fulldomain, allowfrom.
pub fn list(config: &Config) -> Result<String, AccountError> {
    let mut out = String::new();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&config.acl_dir)
        .map_err(|e| AccountError::File(format!("{}: {e}", config.acl_dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "toml")
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(MACHINE_PREFIX))
        })
        .collect();
    paths.sort();
    for p in paths {
        let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        let user = &stem[MACHINE_PREFIX.len()..];
        let Ok((_, t)) = file_of(config, user) else {
            continue;
        };
        let sub = t
            .get("grant")
            .and_then(|g| g.as_array())
            .and_then(|g| g.first())
            .and_then(|g| g.get("name"))
            .and_then(|n| n.as_str())
            .unwrap_or("?");
        let zone = t
            .get("zones")
            .and_then(|z| z.as_array())
            .and_then(|z| z.first())
            .and_then(|z| z.as_str())
            .unwrap_or("");
        let nets: Vec<&str> = t
            .get("networks")
            .and_then(|n| n.as_array())
            .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        let nets = if nets.is_empty() {
            "any".to_string()
        } else {
            nets.join(",")
        };
        out.push_str(&format!("{user} {sub}.{zone} {nets}\n"));
    }
    Ok(out)
}

const APPLIED: &str =
    "a running server applies it at its next policy reload (reload-interval, or SIGHUP)";

/// `acme-dns remove USER`: the account's ACL file is deleted.
pub fn remove(config: &Config, user: &str) -> Result<String, AccountError> {
    let (path, _) = file_of(config, user)?;
    std::fs::remove_file(&path)
        .map_err(|e| AccountError::File(format!("{}: {e}", path.display())))?;
    Ok(format!("removed {} ({APPLIED})\n", path.display()))
}

/// `acme-dns allowfrom USER [CIDR...]`: the account's source networks
/// replaced (none: any source, as acme-dns's empty `allowfrom`).
pub fn allowfrom(config: &Config, user: &str, cidrs: &[String]) -> Result<String, AccountError> {
    let (path, mut table) = file_of(config, user)?;
    let mut nets = Vec::new();
    for c in cidrs {
        let n = parse_allowfrom(c).ok_or_else(|| AccountError::BadNetwork(c.clone()))?;
        if !nets.contains(&n) {
            nets.push(n);
        }
    }
    if nets.is_empty() {
        table.remove("networks");
    } else {
        table.insert(
            "networks".into(),
            toml::Value::Array(
                nets.iter()
                    .map(|n| toml::Value::String(n.to_string()))
                    .collect(),
            ),
        );
    }
    let text = toml::to_string(&table).map_err(|e| AccountError::File(e.to_string()))?;
    // Validated as the server will, before it replaces the file.
    let zones: Vec<_> = crate::zonefile::load_dir(&config.zones_dir)
        .map_err(|e| AccountError::File(e.to_string()))?
        .into_iter()
        .map(|z| z.origin)
        .collect();
    Policy::parse_file(&path, &text, &zones).map_err(|errs| {
        AccountError::File(
            errs.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n"),
        )
    })?;
    write_atomic(&path, &text)
        .map_err(|e| AccountError::File(format!("{}: {e}", path.display())))?;
    let shown: Vec<String> = nets.iter().map(|n| n.to_string()).collect();
    Ok(format!(
        "{}: allowfrom {} ({APPLIED})\n",
        path.display(),
        if shown.is_empty() {
            "any source".to_string()
        } else {
            shown.join(", ")
        }
    ))
}
