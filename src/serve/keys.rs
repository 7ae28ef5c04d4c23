//! Who may call serve: client keys (the lease API and the reverse proxy) and admin keys (the
//! admin API and `/metrics`), each from a file of one key per line.
//!
//! A keys file is a secret: it is refused when group or others may read it (mode `0600`
//! expected), as ssh refuses a private key. Keys are kept only as SHA-256 digests, so a key is
//! never in memory as text after start, never in a log, and a lookup compares digests, not the
//! key itself byte by byte.
//!
//! Without `--keys`, serve answers every caller on a loopback address (and refuses to listen on
//! any other, see [`super::config`]); it says so in its log at start.

use crate::input_error::{io_message, read_input, InputError};
use axum::http::HeaderMap;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::path::Path;

/// A set of keys, by digest.
#[derive(Clone, Debug, Default)]
pub struct Keys {
    digests: HashSet<[u8; 32]>,
}

/// Who a request's key says it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// No key file was configured for this surface: open (loopback only).
    Open,
    Granted,
    Missing,
    Wrong,
}

impl Keys {
    /// Reads a keys file: one key per line, blank lines and `#` comments skipped, at least one key.
    pub fn load(path: &Path) -> Result<Keys, InputError> {
        check_private(path)?;
        let text = read_input(path)?;
        let mut digests = HashSet::new();
        for (n, line) in text.lines().enumerate() {
            let key = line.trim();
            if key.is_empty() || key.starts_with('#') {
                continue;
            }
            if key.chars().any(char::is_whitespace) {
                let offset = text.lines().take(n).map(|l| l.len() + 1).sum::<usize>();
                return Err(InputError::at(
                    path,
                    &text,
                    Some(offset..offset),
                    "a key holds whitespace: expected one key per line",
                ));
            }
            digests.insert(digest(key));
        }
        if digests.is_empty() {
            return Err(InputError::whole_file(path, "holds no key: expected one key per line"));
        }
        Ok(Keys { digests })
    }

    pub fn len(&self) -> usize {
        self.digests.len()
    }

    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    pub fn contains(&self, key: &str) -> bool {
        self.digests.contains(&digest(key))
    }
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// The key a request presents: `Authorization: Bearer KEY`, else `x-goog-api-key: KEY` (what
/// Gemini API clients send).
pub fn presented(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    bearer
        .or_else(|| {
            headers
                .get("x-goog-api-key")
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        })
        .filter(|k| !k.is_empty())
}

/// Checks a request's key against `keys` (`None`: no file configured for this surface).
pub fn check(keys: Option<&Keys>, headers: &HeaderMap) -> Access {
    let Some(keys) = keys else {
        return Access::Open;
    };
    match presented(headers) {
        None => Access::Missing,
        Some(k) if keys.contains(k) => Access::Granted,
        Some(_) => Access::Wrong,
    }
}

/// Refuses a file that group or others may read (or write): it holds secrets.
pub fn check_private(path: &Path) -> Result<(), InputError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|e| InputError::whole_file(path, io_message(&e)))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(InputError::whole_file(
            path,
            format!(
                "is readable by group or others (mode {mode:04o}) and holds secrets: expected mode 0600 \
                 (chmod 600 {})",
                path.display()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn write(dir: &Path, text: &str, mode: u32) -> std::path::PathBuf {
        let p = dir.join("keys");
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    #[test]
    fn one_key_per_line_private_file_only() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "# clients\nalpha\n\n  beta  \n", 0o600);
        let keys = Keys::load(&p).unwrap();
        assert_eq!(keys.len(), 2);
        assert!(keys.contains("alpha") && keys.contains("beta") && !keys.contains("gamma"));

        let p = write(dir.path(), "alpha\n", 0o644);
        let e = Keys::load(&p).unwrap_err().to_string();
        assert!(e.contains("mode 0644") && e.contains("expected mode 0600"), "{e}");

        let p = write(dir.path(), "# none\n", 0o600);
        assert!(Keys::load(&p).unwrap_err().to_string().contains("holds no key"));
        let p = write(dir.path(), "a\nb c\n", 0o600);
        assert!(Keys::load(&p)
            .unwrap_err()
            .to_string()
            .contains(":2:1: a key holds whitespace"));
    }

    #[test]
    fn bearer_or_goog_api_key() {
        let keys = Keys {
            digests: [digest("k1")].into_iter().collect(),
        };
        let mut h = HeaderMap::new();
        assert_eq!(check(Some(&keys), &h), Access::Missing);
        assert_eq!(check(None, &h), Access::Open);
        h.insert("x-goog-api-key", "k1".parse().unwrap());
        assert_eq!(check(Some(&keys), &h), Access::Granted);
        h.insert("authorization", "Bearer nope".parse().unwrap());
        assert_eq!(check(Some(&keys), &h), Access::Wrong, "Authorization is read first");
    }
}
