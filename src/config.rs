//! The server configuration: where to listen, where the zones, ACLs, keys and
//! database live, and the few protocol knobs (TSIG fudge, EDNS size, challenge
//! expiry).
//!
//! Two layers, as in NLnetLabs/cascade: [`ConfigFile`] is the TOML on disk
//! (kebab-case, unknown fields are errors, errors carry path:line:column),
//! converted once into [`Config`], the validated runtime type the rest of the
//! server uses. `Config::embedded_default()` is what `zonewarden serve` runs
//! with no arguments. This module does not read zones or ACLs (see
//! `zonefile` and `acl`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::diag::{self, FileError};

/// The TOML file given with `--config`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ConfigFile {
    /// DNS listen addresses, UDP and TCP on each (IPv4 and IPv6).
    pub listen: Option<Vec<toml::Spanned<String>>>,
    /// HTTP API address, or "off".
    pub http: Option<toml::Spanned<String>>,
    /// File holding the bearer token for HTTP reads from other machines.
    pub http_token_file: Option<String>,
    /// Ask for the token from loopback peers too.
    pub http_require_token: Option<bool>,
    /// State directory; `keys-dir` and `database` default below it.
    pub data_dir: Option<String>,
    pub zones_dir: Option<String>,
    pub acl_dir: Option<String>,
    pub keys_dir: Option<String>,
    pub database: Option<String>,
    /// Seconds of clock skew accepted on TSIG-signed messages (RFC 8945 §5.2.3).
    pub tsig_fudge: Option<u16>,
    /// EDNS(0) UDP payload size we advertise and honour (RFC 6891, DNS flag day 2020).
    pub edns_udp_size: Option<u16>,
    /// TXT records at `_acme-challenge` names older than this are removed.
    pub challenge_max_age: Option<u64>,
    /// How often the expiry sweep runs, in seconds.
    pub expiry_interval: Option<u64>,
    /// How often ACL and key files are checked for changes, in seconds.
    pub reload_interval: Option<u64>,
    /// Generate a key for an ACL file whose key does not exist yet.
    pub generate_missing_keys: Option<bool>,
    /// Cap on the database file, in MiB: past it updates answer SERVFAIL.
    pub database_max_size: Option<u64>,
}

/// The validated runtime configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: Vec<SocketAddr>,
    /// The HTTP API; None when turned off.
    pub http: Option<SocketAddr>,
    /// The bearer token file for HTTP reads (see `http::access`).
    pub http_token_file: Option<PathBuf>,
    /// Require the token from loopback peers too.
    pub http_require_token: bool,
    pub data_dir: PathBuf,
    pub zones_dir: PathBuf,
    pub acl_dir: PathBuf,
    pub keys_dir: PathBuf,
    pub database: PathBuf,
    pub tsig_fudge: u16,
    pub edns_udp_size: u16,
    pub challenge_max_age: Duration,
    pub expiry_interval: Duration,
    pub reload_interval: Duration,
    pub generate_missing_keys: bool,
    /// Database size cap in bytes (None: only the disk limits it).
    pub database_max_size: Option<u64>,
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:5300";
pub const DEFAULT_HTTP: &str = "127.0.0.1:8053";

impl Config {
    /// The demo: the repository's `zones/` and `acl/`, DNS on 127.0.0.1:5300,
    /// state in `./data`.
    pub fn embedded_default() -> Self {
        Self::from_file(
            ConfigFile::default(),
            Path::new("."),
            Path::new("(default)"),
            "",
        )
        .expect("the embedded default is valid")
    }

    /// Read and validate a config file; relative paths are relative to the
    /// file's directory.
    pub fn load(path: &Path) -> Result<Self, FileError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| FileError::whole_file(path, format!("cannot read: {e}")))?;
        Self::parse(path, &text)
    }

    /// Validate a config file's `text` as if read from `path` (relative
    /// paths against its directory), without reading anything; the entry
    /// point of the `config_file` fuzz target.
    pub fn parse(path: &Path, text: &str) -> Result<Self, FileError> {
        let file: ConfigFile = diag::parse_toml(path, text)?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::from_file(file, base, path, text)
    }

    fn from_file(f: ConfigFile, base: &Path, path: &Path, text: &str) -> Result<Self, FileError> {
        let rel = |p: String| {
            let p = PathBuf::from(p);
            if p.is_absolute() || base == Path::new(".") {
                p
            } else {
                base.join(p)
            }
        };
        let listen = match f.listen {
            None => vec![DEFAULT_LISTEN.parse().expect("valid default")],
            Some(list) => {
                let mut out = Vec::new();
                for item in list {
                    let addr: SocketAddr = item.get_ref().parse().map_err(|_| {
                        FileError::at_offset(
                            path,
                            text,
                            item.span().start,
                            format!(
                                "listen address {:?} is not ADDR:PORT (IPv6 as [::1]:53)",
                                item.get_ref()
                            ),
                        )
                    })?;
                    out.push(addr);
                }
                if out.is_empty() {
                    return Err(FileError::whole_file(path, "listen: at least one address"));
                }
                out
            }
        };
        let http = match f.http {
            None => Some(DEFAULT_HTTP.parse().expect("valid default")),
            Some(h) if h.get_ref() == "off" => None,
            Some(h) => Some(h.get_ref().parse::<SocketAddr>().map_err(|_| {
                FileError::at_offset(
                    path,
                    text,
                    h.span().start,
                    format!("http address {:?} is not ADDR:PORT or \"off\"", h.get_ref()),
                )
            })?),
        };
        let data_dir = rel(f.data_dir.unwrap_or_else(|| "data".into()));
        let keys_dir = f.keys_dir.map(rel).unwrap_or_else(|| data_dir.join("keys"));
        let database = f
            .database
            .map(rel)
            .unwrap_or_else(|| data_dir.join("zonewarden.sqlite"));
        let edns_udp_size = f.edns_udp_size.unwrap_or(1232);
        if edns_udp_size < 512 {
            return Err(FileError::whole_file(
                path,
                "edns-udp-size must be at least 512",
            ));
        }
        let http_require_token = f.http_require_token.unwrap_or(false);
        if http_require_token && f.http_token_file.is_none() {
            return Err(FileError::whole_file(
                path,
                "http-require-token = true needs http-token-file",
            ));
        }
        Ok(Self {
            listen,
            http,
            http_token_file: f.http_token_file.map(rel),
            http_require_token,
            zones_dir: rel(f.zones_dir.unwrap_or_else(|| "zones".into())),
            acl_dir: rel(f.acl_dir.unwrap_or_else(|| "acl".into())),
            keys_dir,
            database,
            data_dir,
            tsig_fudge: f.tsig_fudge.unwrap_or(300),
            edns_udp_size,
            challenge_max_age: Duration::from_secs(f.challenge_max_age.unwrap_or(3600)),
            expiry_interval: Duration::from_secs(f.expiry_interval.unwrap_or(60).max(1)),
            reload_interval: Duration::from_secs(f.reload_interval.unwrap_or(2).max(1)),
            generate_missing_keys: f.generate_missing_keys.unwrap_or(true),
            database_max_size: f
                .database_max_size
                .map(|mib| mib.saturating_mul(1024 * 1024)),
        })
    }

    /// `--data DIR`: move the state (keys and database) under DIR.
    pub fn with_data_dir(mut self, dir: PathBuf) -> Self {
        self.keys_dir = dir.join("keys");
        self.database = dir.join("zonewarden.sqlite");
        self.data_dir = dir;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_field_is_an_error_with_location() {
        let text = "listen = [\"127.0.0.1:53\"]\nlisten-adress = 1\n";
        let err = diag::parse_toml::<ConfigFile>(Path::new("z.toml"), text).unwrap_err();
        assert_eq!(err.line, 2, "{err}");
    }

    #[test]
    fn bad_listen_address_points_at_it() {
        let text = "listen = [\n  \"127.0.0.1:53\",\n  \"localhost\",\n]\n";
        let file: ConfigFile = diag::parse_toml(Path::new("z.toml"), text).unwrap();
        let err =
            Config::from_file(file, Path::new("/etc/zw"), Path::new("z.toml"), text).unwrap_err();
        assert_eq!((err.line, err.column), (3, 3), "{err}");
    }

    #[test]
    fn relative_paths_follow_the_config_file() {
        let text = "data-dir = \"state\"\nzones-dir = \"/srv/zones\"\n";
        let file: ConfigFile = diag::parse_toml(Path::new("z.toml"), text).unwrap();
        let c = Config::from_file(file, Path::new("/etc/zw"), Path::new("z.toml"), text).unwrap();
        assert_eq!(c.keys_dir, PathBuf::from("/etc/zw/state/keys"));
        assert_eq!(c.zones_dir, PathBuf::from("/srv/zones"));
        assert_eq!(c.acl_dir, PathBuf::from("/etc/zw/acl"));
    }
}
