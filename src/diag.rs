//! Located errors in configuration files, shared by every config reader.
//!
//! This module owns the one error type the readers of `zones/*.toml`,
//! `acl/*.toml`, key files and the server config use to report a problem in
//! a file: [`FileError`], printed as `path:line:column: message` (the form
//! compilers and `named-checkconf` use, so editors can jump to it), and
//! [`FileErrors`], several of them at once for a `check` command that
//! reports every problem in one run. It also turns TOML parse errors
//! (syntax, type mismatches, unknown fields) into a [`FileError`] at the
//! span the TOML parser reports ([`parse_toml`], [`FileError::from_toml`]).
//!
//! It does not read files, decide what is valid in any particular file, or
//! log anything: callers do the I/O and the semantic checks, and use
//! [`FileError::at_offset`] with a `toml::Spanned` span to point at the
//! exact value they reject.
//!
//! Positions: `line` and `column` are 1-based; the column counts Unicode
//! scalar values (chars), not bytes, from the start of the line. An error
//! that is about the whole file (it cannot be read, it is not UTF-8) has
//! line 0 and column 0 and is printed as `path: message`.

use std::fmt;
use std::path::{Path, PathBuf};

/// An error in a file, with 1-based line and column.
///
/// Display: `path:line:column: message`, or `path: message` when the error
/// has no position (`line == 0`, see [`FileError::whole_file`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    /// The file the error is in.
    pub path: PathBuf,
    /// 1-based line; 0 when the error is about the whole file.
    pub line: usize,
    /// 1-based column in chars; 0 when the error is about the whole file.
    pub column: usize,
    /// What is wrong, without the location.
    pub message: String,
}

impl FileError {
    /// An error at `byte_offset` in `text` (the file's contents).
    ///
    /// An offset past the end points just after the last char; an offset
    /// inside a multi-byte char points at that char. Never panics.
    pub fn at_offset(
        path: &Path,
        text: &str,
        byte_offset: usize,
        message: impl Into<String>,
    ) -> Self {
        let mut offset = byte_offset.min(text.len());
        while !text.is_char_boundary(offset) {
            // Terminates: offset 0 is always a char boundary.
            offset -= 1;
        }
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        FileError {
            path: path.to_path_buf(),
            line,
            column,
            message: message.into(),
        }
    }

    /// An error about the whole file, with no position (line 0, column 0):
    /// the file cannot be read, is not UTF-8, is missing, and the like.
    pub fn whole_file(path: &Path, message: impl Into<String>) -> Self {
        FileError {
            path: path.to_path_buf(),
            line: 0,
            column: 0,
            message: message.into(),
        }
    }

    /// A TOML deserialization error, located at the start of its span.
    ///
    /// The message is the parser's own, without its multi-line excerpt. An
    /// error without a span becomes a whole-file error.
    pub fn from_toml(path: &Path, text: &str, err: &toml::de::Error) -> Self {
        let message = err.message().trim_end().to_string();
        match err.span() {
            Some(span) => FileError::at_offset(path, text, span.start, message),
            None => FileError::whole_file(path, message),
        }
    }

    /// Whether the error has a line and column.
    pub fn has_position(&self) -> bool {
        self.line != 0
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.has_position() {
            write!(
                f,
                "{}:{}:{}: {}",
                self.path.display(),
                self.line,
                self.column,
                self.message
            )
        } else {
            write!(f, "{}: {}", self.path.display(), self.message)
        }
    }
}

impl std::error::Error for FileError {}

/// Parse TOML text into `T`, reporting the location of the first error.
///
/// `T` should carry `#[serde(deny_unknown_fields)]` so that a misspelt key
/// is an error at that key rather than silently ignored.
pub fn parse_toml<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T, FileError> {
    toml::from_str(text).map_err(|err| FileError::from_toml(path, text, &err))
}

/// Several file errors at once (a `check` command prints them all).
///
/// Display: one error per line, in the order held.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileErrors(pub Vec<FileError>);

impl FileErrors {
    /// Whether there is no error.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many errors there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The errors, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, FileError> {
        self.0.iter()
    }
}

impl From<FileError> for FileErrors {
    fn from(err: FileError) -> Self {
        FileErrors(vec![err])
    }
}

impl From<Vec<FileError>> for FileErrors {
    fn from(errs: Vec<FileError>) -> Self {
        FileErrors(errs)
    }
}

impl fmt::Display for FileErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, err) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{err}")?;
        }
        Ok(())
    }
}

impl std::error::Error for FileErrors {}

impl<'a> IntoIterator for &'a FileErrors {
    type Item = &'a FileError;
    type IntoIter = std::slice::Iter<'a, FileError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    fn p() -> &'static Path {
        Path::new("cfg/x.toml")
    }

    #[test]
    fn offset_zero_is_line_one_column_one() {
        let e = FileError::at_offset(p(), "abc\ndef", 0, "m");
        assert_eq!((e.line, e.column), (1, 1));
        assert_eq!(e.to_string(), "cfg/x.toml:1:1: m");
    }

    #[test]
    fn offset_after_newline_starts_next_line() {
        let text = "abc\ndef\nghi";
        let e = FileError::at_offset(p(), text, 4, "m");
        assert_eq!((e.line, e.column), (2, 1));
        let e = FileError::at_offset(p(), text, 10, "m");
        assert_eq!((e.line, e.column), (3, 3));
        // The newline itself belongs to the line it ends.
        let e = FileError::at_offset(p(), text, 3, "m");
        assert_eq!((e.line, e.column), (1, 4));
    }

    #[test]
    fn column_counts_chars_not_bytes() {
        let text = "k = \"ééé\" x";
        let offset = text.find('x').unwrap();
        let e = FileError::at_offset(p(), text, offset, "m");
        assert_eq!((e.line, e.column), (1, 11));
    }

    #[test]
    fn offset_inside_a_char_or_past_the_end_does_not_panic() {
        let text = "é\nü";
        let e = FileError::at_offset(p(), text, 1, "m");
        assert_eq!((e.line, e.column), (1, 1));
        let e = FileError::at_offset(p(), text, 1000, "m");
        assert_eq!((e.line, e.column), (2, 2));
        let e = FileError::at_offset(p(), "", 5, "m");
        assert_eq!((e.line, e.column), (1, 1));
    }

    #[test]
    fn whole_file_error_prints_without_position() {
        let e = FileError::whole_file(p(), "cannot read: denied");
        assert_eq!((e.line, e.column), (0, 0));
        assert!(!e.has_position());
        assert_eq!(e.to_string(), "cfg/x.toml: cannot read: denied");
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Demo {
        name: String,
        #[serde(default)]
        port: u16,
    }

    #[test]
    fn parse_toml_reports_unknown_field_at_its_key() {
        let text = "name = \"a\"\n  colour = 3\n";
        let e = parse_toml::<Demo>(p(), text).unwrap_err();
        assert_eq!((e.line, e.column), (2, 3), "{e}");
        assert!(e.message.contains("colour"), "{e}");
        assert!(!e.message.contains('\n'), "{e:?}");
    }

    #[test]
    fn parse_toml_reports_type_error_at_the_value() {
        let text = "name = \"a\"\nport = \"x\"\n";
        let e = parse_toml::<Demo>(p(), text).unwrap_err();
        assert_eq!((e.line, e.column), (2, 8), "{e}");
    }

    #[test]
    fn parse_toml_reports_syntax_error_location() {
        let text = "name = \"a\"\nport = = 3\n";
        let e = parse_toml::<Demo>(p(), text).unwrap_err();
        assert_eq!(e.line, 2, "{e}");
    }

    #[test]
    fn parse_toml_accepts_good_text() {
        let d: Demo = parse_toml(p(), "name = \"a\"\nport = 53\n").unwrap();
        assert_eq!((d.name.as_str(), d.port), ("a", 53));
    }

    #[test]
    fn file_errors_print_one_per_line() {
        let errs = FileErrors(vec![
            FileError::at_offset(p(), "a\nb", 2, "first"),
            FileError::whole_file(Path::new("y.toml"), "second"),
        ]);
        assert_eq!(errs.to_string(), "cfg/x.toml:2:1: first\ny.toml: second");
        assert_eq!(errs.len(), 2);
    }
}
