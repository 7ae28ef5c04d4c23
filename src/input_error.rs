//! Errors in files that people write: accounts files and scenario files.
//!
//! Every such error carries the file, the line and column (1-based) and a sentence saying what was
//! expected, so `credpool check` and every command that reads a file can print
//! `scenarios/x.toml:12:9: ...` and exit 2. Modelled on the position-carrying errors of
//! BurntSushi's csv crate: the position is data, not only text.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Largest input file credpool will read. Real accounts files are a few KiB; a 100 MB file is a
/// mistake (or an attack) and is refused before it is read into memory.
pub const MAX_INPUT_BYTES: u64 = 16 * 1024 * 1024;

/// A 1-based line and column in a text file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl Position {
    /// The position of byte `offset` in `text` (clamped to the end; columns count characters).
    pub fn of_offset(text: &str, offset: usize) -> Position {
        let offset = offset.min(text.len());
        let mut line = 1;
        let mut line_start = 0;
        for (i, b) in text.as_bytes()[..offset].iter().enumerate() {
            if *b == b'\n' {
                line += 1;
                line_start = i + 1;
            }
        }
        let column = text
            .get(line_start..offset)
            .map(|s| s.chars().count())
            .unwrap_or(offset - line_start)
            + 1;
        Position { line, column }
    }
}

/// A problem with an input file, located where it could be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    pub path: PathBuf,
    /// `None` when the problem is the file as a whole (missing, a directory, too large, not UTF-8).
    pub position: Option<Position>,
    pub message: String,
}

impl InputError {
    pub fn whole_file(path: &Path, message: impl Into<String>) -> Self {
        InputError {
            path: path.to_path_buf(),
            position: None,
            message: message.into(),
        }
    }

    pub fn at(path: &Path, text: &str, span: Option<Range<usize>>, message: impl Into<String>) -> Self {
        InputError {
            path: path.to_path_buf(),
            position: Some(
                span.map(|s| Position::of_offset(text, s.start))
                    .unwrap_or(Position { line: 1, column: 1 }),
            ),
            message: message.into(),
        }
    }

    /// Turns a `toml` / `toml_edit` parse or deserialisation error into a located error.
    pub fn from_toml(path: &Path, text: &str, span: Option<Range<usize>>, message: &str) -> Self {
        // The toml crates put "TOML parse error at line L, column C" and a source excerpt in
        // front of the real message; the position is carried separately, so keep only the sentence.
        let msg = message
            .lines()
            .filter(|l| {
                let t = l.trim_start();
                !(t.starts_with("TOML parse error")
                    || t.starts_with('|')
                    || t.is_empty()
                    || t.chars().next().is_some_and(|c| c.is_ascii_digit()) && t.contains('|'))
            })
            .collect::<Vec<_>>()
            .join(" ");
        let msg = if !msg.trim().is_empty() {
            msg.trim().to_string()
        } else if !message.trim().is_empty() {
            message.trim().to_string()
        } else {
            // toml_edit says nothing at all for a value missing at the end of the file
            // (`key = `), found by fuzzing.
            "a value is missing here, or the file ends too early".to_string()
        };
        // Some syntax errors only name the problem ("invalid basic string"): say what is expected.
        let msg = match () {
            _ if msg.contains("expected") => msg,
            _ if msg.starts_with("invalid") || msg.starts_with("a value is missing") => {
                format!("{msg}: expected valid TOML syntax")
            }
            _ if msg.starts_with("duplicate key") => format!("{msg}: expected each key once"),
            _ => msg,
        };
        Self::at(path, text, span, msg)
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some(p) => write!(f, "{}:{}:{}: {}", self.path.display(), p.line, p.column, self.message),
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

impl std::error::Error for InputError {}

/// Something valid in an input file that is probably not what was meant, located as an
/// [`InputError`] is and printed as `file:line:column: warning: ...`; it never stops a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputWarning(pub InputError);

impl fmt::Display for InputWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = &self.0;
        match e.position {
            Some(p) => write!(
                f,
                "{}:{}:{}: warning: {}",
                e.path.display(),
                p.line,
                p.column,
                e.message
            ),
            None => write!(f, "{}: warning: {}", e.path.display(), e.message),
        }
    }
}

/// Reads a text input file, refusing directories, devices and pipes, oversized files and non-UTF-8
/// bytes with a clear message. Never creates or modifies anything.
pub fn read_input(path: &Path) -> Result<String, InputError> {
    use std::io::Read;
    let io = |e: std::io::Error| InputError::whole_file(path, io_message(&e));
    // Checked on the open handle, so the checked file is the one read.
    let file = std::fs::File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if let Some(problem) = unreadable_input(&meta) {
        return Err(InputError::whole_file(path, problem));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // Bounded even if the file grows while it is read.
    file.take(MAX_INPUT_BYTES + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(InputError::whole_file(path, grew_past_limit()));
    }
    String::from_utf8(bytes).map_err(|e| {
        let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
        InputError::at(
            path,
            &text,
            Some(e.utf8_error().valid_up_to()..e.utf8_error().valid_up_to()),
            "is not valid UTF-8 text (binary data?): expected a TOML file",
        )
    })
}

/// Why a file with this metadata must not be read as an input file, or `None` when it may be.
/// Shared by [`read_input`] and the accounts store's file backend, so both refuse the same files
/// with the same words.
pub fn unreadable_input(meta: &std::fs::Metadata) -> Option<String> {
    refusal(meta.is_dir(), meta.is_file(), meta.len())
}

/// [`unreadable_input`] from the facts it needs: a directory, anything but a regular file (a
/// device such as `/dev/zero` or a pipe would be read forever or block), or a file larger than
/// [`MAX_INPUT_BYTES`].
pub fn refusal(is_dir: bool, is_file: bool, len: u64) -> Option<String> {
    if is_dir {
        return Some("is a directory: expected a TOML file".into());
    }
    if !is_file {
        return Some("is not a regular file (a device, a pipe or a socket): expected a TOML file".into());
    }
    if len > MAX_INPUT_BYTES {
        return Some(format!(
            "is {len} bytes, larger than the {} MiB limit for an input file: expected a small TOML file",
            MAX_INPUT_BYTES / (1024 * 1024)
        ));
    }
    None
}

/// What a file that grew past the limit while being read is told.
pub fn grew_past_limit() -> String {
    format!(
        "grew past the {} MiB limit while being read: expected a small TOML file",
        MAX_INPUT_BYTES / (1024 * 1024)
    )
}

/// A short sentence for an I/O error, without the OS error number noise.
pub fn io_message(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => {
            "permission denied: expected a file this user is allowed to read".into()
        }
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_lines_and_columns() {
        let text = "a = 1\nbb = 2\n";
        assert_eq!(Position::of_offset(text, 0), Position { line: 1, column: 1 });
        assert_eq!(Position::of_offset(text, 6), Position { line: 2, column: 1 });
        assert_eq!(Position::of_offset(text, 8), Position { line: 2, column: 3 });
    }

    #[test]
    fn a_value_missing_at_the_end_still_gets_a_message() {
        let text = "accounts = ";
        let e = toml_edit::ImDocument::parse(text.to_string()).unwrap_err();
        let e = InputError::from_toml(Path::new("a.toml"), text, e.span(), e.message());
        assert_eq!(
            e.to_string(),
            "a.toml:1:12: a value is missing here, or the file ends too early: expected valid TOML syntax"
        );
    }

    #[test]
    fn display_names_file_line_and_column() {
        let e = InputError::at(Path::new("x.toml"), "a\nb", Some(2..3), "expected c");
        assert_eq!(e.to_string(), "x.toml:2:1: expected c");
    }
}
