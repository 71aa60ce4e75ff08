//! Loading from disk: the ACL directory into a [`Policy`] (all or
//! nothing), and the ACLs together with the TSIG key files into a
//! [`PolicyState`], generating a missing key when allowed.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::fs;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use hickory_proto::rr::Name;

use super::file::parse_machine;
use super::policy::{Machine, Policy};
use crate::config::Config;
use crate::diag::{FileError, FileErrors};
use crate::tsig::{self, Algorithm, Key, KeyRing};

/// ACLs and keys, loaded and validated together.
pub struct PolicyState {
    pub policy: Policy,
    pub keys: KeyRing,
    /// Keys generated for ACLs that named a missing key: (key name, file).
    pub generated: Vec<(Name, PathBuf)>,
    /// What is allowed but unwise (a secret shorter than RFC 8945 §6
    /// recommends), located; `check` prints them, the server logs them.
    pub warnings: Vec<FileError>,
}

/// What to do about an ACL whose key file does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingKeys {
    /// Generate it (hmac-sha256, 0600) and say so.
    Generate,
    /// An error naming the ACL file.
    Error,
    /// Leave it (for `check` when the server would generate it).
    Ignore,
}

/// Load ACLs and keys; generate a key for an ACL whose key is missing if allowed.
pub fn load_policy(
    config: &Config,
    zones: &[Name],
    missing: MissingKeys,
) -> Result<PolicyState, FileErrors> {
    let policy = Policy::load_dir(&config.acl_dir, zones)?;
    let mut keys = Vec::new();
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    // Where each key name was first defined: a second definition in
    // another file is an error naming both (which secret wins must not
    // depend on how the files sort).
    let mut defined: HashMap<Name, (PathBuf, (usize, usize))> = HashMap::new();
    match std::fs::read_dir(&config.keys_dir) {
        Ok(rd) => {
            let mut paths: Vec<PathBuf> = rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "key"))
                .collect();
            paths.sort();
            for p in paths {
                let defs = match tsig::read_key_defs(&p) {
                    Ok(defs) => defs,
                    Err(e) => {
                        errors.push(key_error(&p, &e));
                        continue;
                    }
                };
                for def in defs {
                    let at = |message: String| FileError {
                        path: p.clone(),
                        line: def.at.0,
                        column: def.at.1,
                        message,
                    };
                    let name = def.key.name.to_lowercase();
                    if let Some((first, (line, column))) = defined.get(&name) {
                        errors.push(at(format!(
                            "key {} is also defined in {}:{line}:{column}; a key name must be defined in one file only",
                            def.key.name,
                            first.display()
                        )));
                        continue;
                    }
                    if let Some(message) = def.weak_secret() {
                        warnings.push(FileError {
                            path: p.clone(),
                            line: def.secret_at.0,
                            column: def.secret_at.1,
                            message,
                        });
                    }
                    defined.insert(name, (p.clone(), def.at));
                    keys.push(def.key);
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => errors.push(FileError::whole_file(
            &config.keys_dir,
            format!("cannot read keys directory: {e}"),
        )),
    }
    if !errors.is_empty() {
        return Err(FileErrors(errors));
    }
    let known: std::collections::HashSet<Name> =
        keys.iter().map(|k: &Key| k.name.to_lowercase()).collect();
    let mut generated = Vec::new();
    for m in policy.machines() {
        // acme-dns accounts authenticate with their password, not TSIG.
        if m.password_hash.is_some() || known.contains(&m.key.to_lowercase()) {
            continue;
        }
        if missing == MissingKeys::Ignore {
            continue;
        }
        if missing == MissingKeys::Error {
            errors.push(FileError::whole_file(
                &m.path,
                format!("key {} not found in {}", m.key, config.keys_dir.display()),
            ));
            continue;
        }
        let path = config.keys_dir.join(format!("{}.key", m.name));
        let made = std::fs::create_dir_all(&config.keys_dir)
            .map_err(|e| e.to_string())
            .and_then(|_| {
                Key::generate(m.key.clone(), Algorithm::HmacSha256)
                    .map_err(|_| "no randomness".to_string())
            })
            .and_then(|k| {
                tsig::write_key_file(&path, &k)
                    .map(|_| k)
                    .map_err(|e| e.to_string())
            });
        match made {
            Ok(k) => {
                generated.push((k.name.clone(), path));
                keys.push(k);
            }
            Err(e) => errors.push(FileError::whole_file(
                &path,
                format!("cannot write generated key: {e}"),
            )),
        }
    }
    if !errors.is_empty() {
        return Err(FileErrors(errors));
    }
    let ring = KeyRing::new(keys);
    Ok(PolicyState {
        policy,
        keys: ring,
        generated,
        warnings,
    })
}

fn key_error(path: &Path, e: &tsig::KeyFileReadError) -> FileError {
    match e {
        tsig::KeyFileReadError::Parse {
            line,
            column,
            message,
            ..
        } => FileError {
            path: path.to_path_buf(),
            line: *line,
            column: *column,
            message: message.clone(),
        },
        other => FileError::whole_file(path, other.to_string()),
    }
}

/// Log what [`load_policy`] found unwise (weak secrets), once per load.
pub fn log_warnings(p: &PolicyState) {
    for w in &p.warnings {
        tracing::warn!(warning = %w, "weak TSIG key");
    }
}

/// Say which keys [`load_policy`] generated, in the log and on stdout.
pub fn report_generated(p: &PolicyState) {
    for (name, path) in &p.generated {
        tracing::warn!(key = %name, file = %path.display(), "generated a missing TSIG key");
        println!("generated TSIG key {name} in {}", path.display());
    }
}

/// A digest of the names, sizes and modification times of the files in
/// `dirs`, so a reload can tell that nothing changed.
pub fn files_fingerprint(dirs: &[&Path]) -> u64 {
    let mut h = DefaultHasher::new();
    for dir in dirs {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .map(|rd| rd.filter_map(|e| e.ok()).collect())
            .unwrap_or_default();
        entries.sort_by_key(|e| e.path());
        for e in entries {
            e.path().hash(&mut h);
            if let Ok(m) = e.metadata() {
                m.len().hash(&mut h);
                m.modified().ok().hash(&mut h);
            }
        }
    }
    h.finish()
}

impl Policy {
    /// Load every `*.toml` in `dir` (other files, subdirectories and
    /// dotfiles are ignored; sorted by file name). All or nothing: any error
    /// in any file gives `Err` with every error found, so the caller keeps
    /// its previous policy. An empty directory is an empty policy.
    pub fn load_dir(dir: &Path, zones: &[Name]) -> Result<Policy, FileErrors> {
        let entries = fs::read_dir(dir)
            .map_err(|e| FileError::whole_file(dir, format!("cannot read ACL directory: {e}")))?;
        let mut paths = Vec::new();
        let mut errors = Vec::new();
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    errors.push(FileError::whole_file(
                        dir,
                        format!("cannot read ACL directory: {e}"),
                    ));
                    continue;
                }
            };
            let path = entry.path();
            let file_name = entry.file_name();
            let hidden = file_name.as_encoded_bytes().starts_with(b".");
            let is_toml = path.extension().is_some_and(|ext| ext == "toml");
            if hidden || !is_toml {
                tracing::debug!(path = %path.display(), "not an ACL file, ignored");
                continue;
            }
            // fs::metadata follows symlinks, so a link to a file counts.
            if fs::metadata(&path).is_ok_and(|m| m.is_dir()) {
                continue;
            }
            paths.push(path);
        }
        paths.sort();
        let mut files = Vec::with_capacity(paths.len());
        for path in paths {
            match read_text(&path) {
                Ok(text) => files.push((path, text)),
                Err(e) => errors.push(e),
            }
        }
        match Policy::from_texts(&files, zones) {
            Ok(policy) if errors.is_empty() => {
                tracing::debug!(
                    dir = %dir.display(),
                    machines = policy.machines().len(),
                    "ACL policy loaded"
                );
                Ok(policy)
            }
            Ok(_) => Err(FileErrors(errors)),
            Err(more) => {
                errors.extend(more.0);
                Err(FileErrors(errors))
            }
        }
    }

    /// Load one ACL file.
    pub fn load_file(path: &Path, zones: &[Name]) -> Result<Machine, Vec<FileError>> {
        let text = read_text(path).map_err(|e| vec![e])?;
        Policy::parse_file(path, &text, zones)
    }

    /// Build a policy from file contents, as [`Policy::load_dir`] does after
    /// reading: every file is validated, key names must be unique.
    pub fn from_texts(files: &[(PathBuf, String)], zones: &[Name]) -> Result<Policy, FileErrors> {
        let mut errors = Vec::new();
        let mut policy = Policy::default();
        for (path, text) in files {
            match parse_machine(path, text, zones) {
                Err(errs) => errors.extend(errs),
                Ok((machine, key_at)) => {
                    let key = machine.key.clone();
                    if let Err(other) = policy.insert(machine) {
                        let mut err = key_at;
                        err.message = format!(
                            "key {} is already used by {} (machine {}); each machine needs its own key",
                            key,
                            other.path.display(),
                            other.name
                        );
                        errors.push(err);
                    }
                }
            }
        }
        if errors.is_empty() {
            Ok(policy)
        } else {
            Err(FileErrors(errors))
        }
    }
}

fn read_text(path: &Path) -> Result<String, FileError> {
    let bytes =
        fs::read(path).map_err(|e| FileError::whole_file(path, format!("cannot read: {e}")))?;
    String::from_utf8(bytes).map_err(|e| {
        FileError::whole_file(
            path,
            format!(
                "not UTF-8 (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}
