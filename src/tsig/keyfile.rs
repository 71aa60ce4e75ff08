//! BIND key files: `key "mx1" { algorithm hmac-sha256; secret "..."; };`,
//! as `tsig-keygen` writes them and `nsupdate -k` reads them. Parsing with
//! line:column errors that never echo a secret; writing with mode 0600,
//! atomically, never over an existing file.

use std::collections::HashSet;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hickory_proto::rr::Name;
use ring::rand::{SecureRandom, SystemRandom};

use super::{Algorithm, Key, canonical_name};

/// A syntax error in key-file text. Positions are 1-based; the message
/// never contains a secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyFileError {
    /// Line of the offending token.
    pub line: usize,
    /// Column (in characters) of the offending token.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for KeyFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

impl std::error::Error for KeyFileError {}

/// A key file that could not be read or parsed; the error names the file.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileReadError {
    /// The file could not be read.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The key file.
        path: PathBuf,
        /// Why reading failed.
        source: io::Error,
    },
    /// The file is not valid key-file syntax.
    #[error("{}:{line}:{column}: {message}", .path.display())]
    Parse {
        /// The key file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong (never the secret).
        message: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Word(String),
    Quoted(String),
    Open,
    Close,
    Semi,
}

#[derive(Clone, Debug)]
struct Token {
    tok: Tok,
    line: usize,
    column: usize,
}

impl Token {
    fn error(&self, message: impl Into<String>) -> KeyFileError {
        KeyFileError {
            line: self.line,
            column: self.column,
            message: message.into(),
        }
    }

    /// The token for an error message; words are quoted only if `reveal`
    /// (they may be part of a secret), quoted strings never are.
    fn describe(&self, reveal: bool) -> String {
        match &self.tok {
            // Short words only: a long one may be a secret pasted into the
            // wrong place, and errors reach logs and the status page.
            Tok::Word(word) if reveal && word.chars().count() <= 15 => format!("`{word}`"),
            Tok::Word(word) if reveal => format!(
                "a word of {} characters (not shown: it may be a secret)",
                word.chars().count()
            ),
            Tok::Word(_) => "a word".to_owned(),
            Tok::Quoted(_) => "a quoted string".to_owned(),
            Tok::Open => "`{`".to_owned(),
            Tok::Close => "`}`".to_owned(),
            Tok::Semi => "`;`".to_owned(),
        }
    }
}

struct Cursor {
    chars: Vec<char>,
    pos: usize,
    line: usize,
    column: usize,
}

impl Cursor {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.pos.saturating_add(ahead)).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek(0)?;
        self.pos += 1;
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    fn skip_line(&mut self) {
        while let Some(c) = self.bump() {
            if c == '\n' {
                break;
            }
        }
    }
}

/// Splits key-file text into tokens, dropping whitespace and `#`, `//` and
/// `/* */` comments. Returns the tokens and the end-of-file position.
fn tokenize(text: &str) -> Result<(Vec<Token>, (usize, usize)), KeyFileError> {
    let mut cur = Cursor {
        chars: text.chars().collect(),
        pos: 0,
        line: 1,
        column: 1,
    };
    let mut tokens = Vec::new();
    while let Some(c) = cur.peek(0) {
        let (line, column) = (cur.line, cur.column);
        let here = |message: &str| KeyFileError {
            line,
            column,
            message: message.to_owned(),
        };
        let tok = match c {
            c if c.is_whitespace() => {
                cur.bump();
                continue;
            }
            '#' => {
                cur.skip_line();
                continue;
            }
            '/' if cur.peek(1) == Some('/') => {
                cur.skip_line();
                continue;
            }
            '/' if cur.peek(1) == Some('*') => {
                cur.bump();
                cur.bump();
                loop {
                    match cur.bump() {
                        None => return Err(here("unterminated `/*` comment")),
                        Some('*') if cur.peek(0) == Some('/') => {
                            cur.bump();
                            break;
                        }
                        Some(_) => {}
                    }
                }
                continue;
            }
            '{' => {
                cur.bump();
                Tok::Open
            }
            '}' => {
                cur.bump();
                Tok::Close
            }
            ';' => {
                cur.bump();
                Tok::Semi
            }
            '"' => {
                cur.bump();
                let mut value = String::new();
                loop {
                    match cur.bump() {
                        None => return Err(here("unterminated quoted string")),
                        Some('"') => break,
                        // Keep escapes verbatim: `Name::from_ascii` reads them.
                        Some('\\') => {
                            value.push('\\');
                            if let Some(next) = cur.bump() {
                                value.push(next);
                            }
                        }
                        Some(other) => value.push(other),
                    }
                }
                Tok::Quoted(value)
            }
            _ => {
                let mut word = String::new();
                while let Some(c) = cur.peek(0) {
                    if c.is_whitespace() || matches!(c, '{' | '}' | ';' | '"' | '#') {
                        break;
                    }
                    word.push(c);
                    cur.bump();
                }
                Tok::Word(word)
            }
        };
        tokens.push(Token { tok, line, column });
    }
    Ok((tokens, (cur.line, cur.column)))
}

struct Parser {
    tokens: std::vec::IntoIter<Token>,
    eof: (usize, usize),
}

impl Parser {
    fn eof_error(&self, message: impl Into<String>) -> KeyFileError {
        KeyFileError {
            line: self.eof.0,
            column: self.eof.1,
            message: message.into(),
        }
    }

    /// The next token, or an error at end of file.
    fn next_or(&mut self, expected: &str) -> Result<Token, KeyFileError> {
        match self.tokens.next() {
            Some(token) => Ok(token),
            None => Err(self.eof_error(format!("unexpected end of file, expected {expected}"))),
        }
    }

    /// A word or quoted string (a statement's value).
    fn value(&mut self, expected: &str, reveal: bool) -> Result<(Token, String), KeyFileError> {
        let token = self.next_or(expected)?;
        match &token.tok {
            Tok::Word(text) | Tok::Quoted(text) => {
                let text = text.clone();
                Ok((token, text))
            }
            _ => Err(token.error(format!(
                "expected {expected}, found {}",
                token.describe(reveal)
            ))),
        }
    }

    /// A `;` ending the statement described by `after`.
    fn semicolon(&mut self, after: &str, reveal: bool) -> Result<(), KeyFileError> {
        match self.tokens.next() {
            Some(Token { tok: Tok::Semi, .. }) => Ok(()),
            Some(token) => Err(token.error(format!(
                "missing `;` after {after} (found {})",
                token.describe(reveal)
            ))),
            None => Err(self.eof_error(format!("missing `;` after {after}"))),
        }
    }
}

/// RFC 8945 §6: "The minimum recommended size [of a secret] is 128
/// bits" (the output of the hash, RFC 2104 §3). A shorter secret is
/// accepted, with a warning (`check` and the server log).
pub const MIN_SECRET_OCTETS: usize = 16;

/// A key as its key file defines it, with where: the position of its name
/// (for "defined twice" errors) and of its secret (for weak-secret
/// warnings).
#[derive(Clone, Debug)]
pub struct KeyDef {
    pub key: Key,
    /// Line and column of the key's name.
    pub at: (usize, usize),
    /// Line and column of the secret's value.
    pub secret_at: (usize, usize),
}

impl KeyDef {
    /// A warning when the secret is shorter than RFC 8945 §6 recommends
    /// (never the secret itself).
    pub fn weak_secret(&self) -> Option<String> {
        let n = self.key.secret.len();
        (n < MIN_SECRET_OCTETS).then(|| {
            format!(
                "the secret of key {} is {n} octet(s) ({} bits); RFC 8945 §6 recommends at least {} bits (`tsig-keygen` makes {} bits)",
                self.key.name,
                n * 8,
                MIN_SECRET_OCTETS * 8,
                self.key.algorithm.output_len() * 8
            )
        })
    }
}

/// Parses BIND key-file text: one or more `key "name" { algorithm X;
/// secret "B64"; };` blocks, with `#`, `//` and `/* */` comments and any
/// whitespace; key names quoted or bare. A name defined twice is an error.
pub fn parse_key_file(text: &str) -> Result<Vec<Key>, KeyFileError> {
    Ok(parse_key_defs(text)?.into_iter().map(|d| d.key).collect())
}

/// [`parse_key_file`], keeping where each key is defined.
pub fn parse_key_defs(text: &str) -> Result<Vec<KeyDef>, KeyFileError> {
    let (tokens, eof) = tokenize(text)?;
    let mut parser = Parser {
        tokens: tokens.into_iter(),
        eof,
    };
    let mut keys = Vec::new();
    let mut seen = HashSet::new();
    while let Some(token) = parser.tokens.next() {
        if !matches!(&token.tok, Tok::Word(word) if word.eq_ignore_ascii_case("key")) {
            return Err(token.error(format!("expected `key`, found {}", token.describe(true))));
        }
        let (name_token, name_text) = parser.value("a key name after `key`", true)?;
        let name = Name::from_ascii(&name_text)
            .map_err(|err| name_token.error(format!("invalid key name: {err}")))?;
        if name_text.is_empty() || name.is_root() {
            return Err(name_token.error("the key name is empty"));
        }
        if !seen.insert(canonical_name(&name)) {
            return Err(name_token.error(format!("duplicate key `{name_text}`")));
        }
        let open = parser.next_or("`{` after the key name")?;
        if open.tok != Tok::Open {
            return Err(open.error(format!(
                "expected `{{` after the key name, found {}",
                open.describe(true)
            )));
        }
        let mut algorithm = None;
        let mut secret = None;
        let close = loop {
            let statement = parser.next_or("`algorithm`, `secret` or `}`")?;
            match &statement.tok {
                Tok::Close => break statement,
                Tok::Word(word) if word.eq_ignore_ascii_case("algorithm") => {
                    if algorithm.is_some() {
                        return Err(statement.error("`algorithm` given twice"));
                    }
                    let (value_token, value) = parser.value("an algorithm name", true)?;
                    let alg = Algorithm::from_key_file(&value).ok_or_else(|| {
                        let shown: String = value.chars().take(40).collect();
                        value_token.error(format!(
                            "unknown algorithm `{shown}` (supported: {})",
                            Algorithm::ALL.map(Algorithm::key_file_name).join(", ")
                        ))
                    })?;
                    parser.semicolon("the algorithm", true)?;
                    algorithm = Some(alg);
                }
                Tok::Word(word) if word.eq_ignore_ascii_case("secret") => {
                    if secret.is_some() {
                        return Err(statement.error("`secret` given twice"));
                    }
                    let (value_token, value) = parser.value("a base64 secret", false)?;
                    let compact: String =
                        value.chars().filter(|c| !c.is_ascii_whitespace()).collect();
                    if compact.is_empty() {
                        return Err(value_token.error("the secret is empty"));
                    }
                    let bytes = BASE64
                        .decode(compact.as_bytes())
                        .map_err(|_| value_token.error("the secret is not valid base64"))?;
                    parser.semicolon("the secret", false)?;
                    secret = Some((bytes, (value_token.line, value_token.column)));
                }
                _ => {
                    return Err(statement.error(format!(
                        "unexpected {} in key block (expected `algorithm`, `secret` or `}}`)",
                        statement.describe(true)
                    )));
                }
            }
        };
        let algorithm = algorithm
            .ok_or_else(|| close.error(format!("key `{name_text}` has no `algorithm`")))?;
        let (secret, secret_at) =
            secret.ok_or_else(|| close.error(format!("key `{name_text}` has no `secret`")))?;
        parser.semicolon("`}`", true)?;
        keys.push(KeyDef {
            key: Key::new(name, algorithm, secret),
            at: (name_token.line, name_token.column),
            secret_at,
        });
    }
    Ok(keys)
}

/// Reads and parses a key file. Warns (without failing) when the file is
/// readable by group or others.
pub fn read_key_file(path: &Path) -> Result<Vec<Key>, KeyFileReadError> {
    Ok(read_key_defs(path)?.into_iter().map(|d| d.key).collect())
}

/// [`read_key_file`], keeping where each key is defined.
pub fn read_key_defs(path: &Path) -> Result<Vec<KeyDef>, KeyFileReadError> {
    let text = fs::read_to_string(path).map_err(|source| KeyFileReadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    warn_if_exposed(path);
    parse_key_defs(&text).map_err(|err| KeyFileReadError::Parse {
        path: path.to_path_buf(),
        line: err.line,
        column: err.column,
        message: err.message,
    })
}

#[cfg(unix)]
fn warn_if_exposed(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(meta) = fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                mode = format_args!("{mode:o}"),
                "TSIG key file is readable by group or others; chmod 600 it"
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_exposed(_path: &Path) {}

/// Writes `key` to a new key file with mode 0600: a temporary file in the
/// same directory (created 0600), written, fsynced, then linked into place
/// so that an existing file is never overwritten, even by a race
/// (`io::ErrorKind::AlreadyExists`).
pub fn write_key_file(path: &Path, key: &Key) -> io::Result<()> {
    if fs::symlink_metadata(path).is_ok() {
        return Err(already_exists(path));
    }
    let file_name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "key file path has no file name",
        )
    })?;
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let (tmp_path, file) = create_private_temp(dir, &file_name.to_string_lossy())?;
    let result = fill_and_publish(file, key.to_key_file().as_bytes(), &tmp_path, path);
    // After a hard link the temporary name is a second link; after a
    // rename it is gone. Either way nothing is left behind.
    let _ = fs::remove_file(&tmp_path);
    result?;
    sync_dir(dir)
}

fn already_exists(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!(
            "{} already exists; not overwriting a key file",
            path.display()
        ),
    )
}

fn create_private_temp(dir: &Path, file_name: &str) -> io::Result<(PathBuf, File)> {
    let rng = SystemRandom::new();
    let mut last_error = None;
    for attempt in 0u32..16 {
        let mut nonce = [0u8; 4];
        if rng.fill(&mut nonce).is_err() {
            nonce = attempt.to_be_bytes();
        }
        let tmp_path = dir.join(format!(
            ".{file_name}.{}.{:08x}.tmp",
            std::process::id(),
            u32::from_be_bytes(nonce)
        ));
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        match options.open(&tmp_path) {
            Ok(file) => return Ok((tmp_path, file)),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => last_error = Some(err),
            Err(err) => return Err(err),
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::other("no free temporary file name")))
}

fn fill_and_publish(mut file: File, contents: &[u8], tmp: &Path, path: &Path) -> io::Result<()> {
    file.write_all(contents)?;
    file.sync_all()?;
    drop(file);
    match fs::hard_link(tmp, path) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Err(already_exists(path)),
        // A file system without hard links: check, then rename.
        Err(_) if fs::symlink_metadata(path).is_ok() => Err(already_exists(path)),
        Err(_) => fs::rename(tmp, path),
    }
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}
