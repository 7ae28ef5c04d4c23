//! The target's accounts file: written by the harness before the target starts (in the format
//! the target reads), and read back while it runs and at the end, for the file audits.
//!
//! Reading back is deliberately loose: the target owns the file's layout once it runs (it may
//! add keys, reorder, write dates as strings), so a read asks only what the audits need from each
//! account: its access token, its error codes and whether it holds any ban. Whether the text
//! parses at all, or is empty, is itself a finding (`file_unreadable_reads`, `file_empty_reads`).

use crate::model::{Account, AccountsFile};
use crate::scenario::spec::AccountsFormat;
use std::path::{Path, PathBuf};

/// What one read of the file found, account by account (in file order).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccountView {
    /// Kept only to be looked up in the mock's registry; never printed.
    pub access_token: crate::secret::Secret,
    /// The account's identity across reads (the mock never rotates refresh tokens).
    pub refresh_token: crate::secret::Secret,
    pub error_codes: Vec<u16>,
    /// The entry's top-level keys: what `damaged_accounts` compares with what credpool wrote.
    pub keys: std::collections::BTreeSet<String>,
    pub disabled: bool,
}

/// The reads polled during a run, tallied as they come (bounded memory whatever the run's length).
#[derive(Clone, Debug, Default)]
pub struct PollTally {
    pub reads: u64,
    pub unreadable: u64,
    pub empty: u64,
    /// Accounts (by a hash of their refresh token) some read found disabled.
    pub disabled_seen: std::collections::BTreeSet<u64>,
}

impl PollTally {
    pub fn add(&mut self, read: &Read) {
        self.reads += 1;
        match read {
            Read::Empty => self.empty += 1,
            Read::Unreadable => self.unreadable += 1,
            Read::Accounts(views) => {
                for v in views.iter().filter(|v| v.disabled) {
                    self.disabled_seen.insert(identity(v));
                }
            }
        }
    }
}

/// An account's identity across reads without keeping its refresh token.
pub fn identity(view: &AccountView) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    view.refresh_token.expose().hash(&mut h);
    h.finish()
}

/// The outcome of reading the file once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Read {
    Accounts(Vec<AccountView>),
    /// The file (or, for `json_dir`, one of its files) had zero bytes.
    Empty,
    /// It did not parse (torn, half written, or missing mid-rename).
    Unreadable,
}

/// Writes `accounts` for a target reading `format`; returns the path for `{accounts}` (the
/// file, or the directory for `json_dir`). Every file is created with mode 0600: they hold tokens.
pub fn write(dir: &Path, format: AccountsFormat, accounts: Vec<Account>) -> std::io::Result<PathBuf> {
    match format {
        AccountsFormat::AccountsToml => {
            let path = dir.join("accounts.toml");
            private_file(&path, &AccountsFile::from_accounts(accounts).to_toml_string())?;
            Ok(path)
        }
        AccountsFormat::JsonDir => {
            let path = dir.join("credentials");
            std::fs::create_dir_all(&path)?;
            for a in &accounts {
                let expiry = a
                    .expires_at()
                    .and_then(chrono::DateTime::from_timestamp_millis)
                    .unwrap_or_default()
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                let credential = serde_json::json!({
                    "email": a.id.as_str(),
                    "client_id": "credpool-client",
                    "client_secret": "credpool-secret",
                    "token": a.access_token.expose(),
                    "refresh_token": a.refresh_token.expose(),
                    "expiry": expiry,
                    "project_id": "credpool-project",
                });
                private_file(&path.join(format!("{}.json", a.id.as_str())), &credential.to_string())?;
            }
            Ok(path)
        }
    }
}

/// A new file holding tokens: created (never over an existing one) with mode 0600, through the
/// store's own file creation.
fn private_file(path: &Path, text: &str) -> std::io::Result<()> {
    crate::store::backend::FileBackend::new(path).create(text)
}

/// Reads the file (or directory) at `path` once.
pub fn read(path: &Path, format: AccountsFormat) -> Read {
    match format {
        AccountsFormat::AccountsToml => match std::fs::read(path) {
            Ok(bytes) if bytes.is_empty() => Read::Empty,
            Ok(bytes) => parse_toml(&bytes).map_or(Read::Unreadable, Read::Accounts),
            Err(_) => Read::Unreadable,
        },
        AccountsFormat::JsonDir => read_json_dir(path),
    }
}

fn parse_toml(bytes: &[u8]) -> Option<Vec<AccountView>> {
    let value: toml::Value = toml::from_str(std::str::from_utf8(bytes).ok()?).ok()?;
    let accounts = value.get("accounts")?.as_array()?;
    accounts
        .iter()
        .map(|a| {
            Some(AccountView {
                access_token: crate::secret::Secret::new(a.get("access_token")?.as_str()?),
                refresh_token: crate::secret::Secret::new(
                    a.get("refresh_token").and_then(|t| t.as_str()).unwrap_or_default(),
                ),
                keys: a.as_table()?.keys().cloned().collect(),
                disabled: a.get("disabled").and_then(|d| d.as_bool()).unwrap_or(false),
                error_codes: codes(
                    a.get("error_codes")
                        .and_then(|c| c.as_array())
                        .map(|c| c.iter().filter_map(|v| v.as_integer()).collect::<Vec<_>>()),
                ),
            })
        })
        .collect()
}

fn codes(list: Option<Vec<i64>>) -> Vec<u16> {
    list.unwrap_or_default()
        .into_iter()
        .filter_map(|c| u16::try_from(c).ok())
        .collect()
}

fn read_json_dir(dir: &Path) -> Read {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Read::Unreadable;
    };
    let mut names: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    names.sort();
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let bytes = match std::fs::read(&name) {
            Ok(b) if b.is_empty() => return Read::Empty,
            Ok(b) => b,
            Err(_) => return Read::Unreadable,
        };
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            return Read::Unreadable;
        };
        let Some(token) = v.get("token").and_then(|t| t.as_str()) else {
            return Read::Unreadable;
        };
        out.push(AccountView {
            access_token: crate::secret::Secret::new(token),
            refresh_token: crate::secret::Secret::new(
                v.get("refresh_token").and_then(|t| t.as_str()).unwrap_or_default(),
            ),
            keys: v.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default(),
            disabled: v.get("disabled").and_then(|d| d.as_bool()).unwrap_or(false),
            error_codes: codes(
                v.get("error_codes")
                    .and_then(|c| c.as_array())
                    .map(|c| c.iter().filter_map(|v| v.as_i64()).collect()),
            ),
        });
    }
    Read::Accounts(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_formats_round_trip_their_tokens_with_private_modes() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let accounts: Vec<Account> = (0..2).map(|i| Account::synthetic(i, 1_000, 3600)).collect();
        for format in [AccountsFormat::AccountsToml, AccountsFormat::JsonDir] {
            let sub = dir.path().join(format!("{format:?}"));
            std::fs::create_dir_all(&sub).unwrap();
            let path = write(&sub, format, accounts.clone()).unwrap();
            let Read::Accounts(read) = read(&path, format) else {
                panic!("{format:?} unreadable")
            };
            let tokens: Vec<&str> = read.iter().map(|a| a.access_token.expose()).collect();
            assert_eq!(tokens, ["sim-access-0-0", "sim-access-1-0"], "{format:?}");
            let file = if path.is_dir() {
                path.join("account0@example.com.json")
            } else {
                path.clone()
            };
            assert_eq!(std::fs::metadata(file).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let torn = dir.path().join("torn.toml");
        std::fs::write(&torn, "[[accounts]]\naccess_token = \"a").unwrap();
        assert_eq!(read(&torn, AccountsFormat::AccountsToml), Read::Unreadable);
        std::fs::write(&torn, "").unwrap();
        assert_eq!(read(&torn, AccountsFormat::AccountsToml), Read::Empty);
    }
}
