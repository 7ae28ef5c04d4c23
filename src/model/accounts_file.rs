//! An `accounts.toml` document that keeps every field it does not model.
//!
//! The file is parsed twice over: once with `toml_edit`'s spanned document, to validate each
//! modelled field and report the line and column of anything wrong; then kept as an editable
//! document so a save rewrites only the modelled keys that changed. Unknown keys, their order,
//! comments and nested tables such as `[[accounts.projects]]` come back exactly as they were.
//!
//! Parsing is pure (text in, value out): reading and writing the file belong to [`crate::store`].

use super::account::{Account, AccountId};
use super::time::{from_rfc3339, to_rfc3339};
use crate::input_error::InputError;
use crate::secret::Secret;
use std::collections::HashMap;
use std::path::Path;
use toml_edit::{ArrayOfTables, DocumentMut, ImDocument, Item, Table, Value};

/// Suffix of the keys that hold series bans (`claude_series_banned_until`).
const BAN_SUFFIX: &str = "_banned_until";

/// Longest token lifetime an account may claim: one year, in seconds. OAuth access tokens live
/// about an hour (3599 s); a larger `expires_in` is a corrupted or hand-edited file, and trusting it
/// would keep a dead token in use for good.
pub const MAX_EXPIRES_IN_S: i64 = 365 * 24 * 3600;

/// A parsed accounts file: the typed accounts plus the document they came from.
///
/// `Debug` shows the typed accounts only (their tokens redacted): the document holds the tokens
/// as plain strings, and a derived `Debug` printed them.
#[derive(Clone)]
pub struct AccountsFile {
    /// The editable document; `accounts[i]` is `[[accounts]]` table `i` in it.
    doc: DocumentMut,
    pub accounts: Vec<Account>,
}

impl std::fmt::Debug for AccountsFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountsFile")
            .field("accounts", &self.accounts)
            .finish_non_exhaustive()
    }
}

impl Default for AccountsFile {
    fn default() -> Self {
        AccountsFile::from_accounts(Vec::new())
    }
}

impl AccountsFile {
    /// Parses and validates `text`; `path` only labels errors.
    pub fn parse(path: &Path, text: &str) -> Result<AccountsFile, InputError> {
        let doc = ImDocument::parse(text.to_string())
            .map_err(|e| InputError::from_toml(path, text, e.span(), e.message()))?;
        let mut accounts = Vec::new();
        let mut seen: HashMap<AccountId, usize> = HashMap::new();
        match doc.get("accounts") {
            None => {}
            Some(Item::ArrayOfTables(tables)) => {
                for (index, table) in tables.iter().enumerate() {
                    let account = parse_account(path, text, index, table)?;
                    if let Some(first) = seen.insert(account.id.clone(), index) {
                        return Err(InputError::at(
                            path,
                            text,
                            table.span(),
                            format!(
                                "duplicate account {:?}: accounts #{first} and #{index} have the same email/user_id; expected each account once",
                                account.id.0
                            ),
                        ));
                    }
                    accounts.push(account);
                }
            }
            Some(Item::Value(Value::Array(a))) if a.is_empty() => {}
            Some(other) => {
                return Err(InputError::at(
                    path,
                    text,
                    other.span(),
                    "`accounts` must be a list of [[accounts]] tables",
                ))
            }
        }
        Ok(AccountsFile {
            doc: doc.into_mut(),
            accounts,
        })
    }

    /// A new document holding `accounts` (simulations, tests, `credpool torture`).
    pub fn from_accounts(accounts: Vec<Account>) -> AccountsFile {
        let mut doc = DocumentMut::new();
        let mut tables = ArrayOfTables::new();
        for _ in &accounts {
            tables.push(Table::new());
        }
        doc.insert("accounts", Item::ArrayOfTables(tables));
        AccountsFile { doc, accounts }
    }

    /// Index of the account called `id`.
    pub fn find(&self, id: &AccountId) -> Option<usize> {
        self.accounts.iter().position(|a| &a.id == id)
    }

    /// The document as text, with every modelled field written back where it changed.
    pub fn to_toml_string(&mut self) -> String {
        self.sync_document();
        self.doc.to_string()
    }

    /// Writes the typed accounts into the document's tables. Keys the model does not know are
    /// never touched; a modelled key is rewritten only when its value differs, so an unchanged
    /// account's text stays byte-for-byte the same.
    fn sync_document(&mut self) {
        if !matches!(self.doc.get("accounts"), Some(Item::ArrayOfTables(_))) {
            self.doc.insert("accounts", Item::ArrayOfTables(ArrayOfTables::new()));
        }
        let Some(Item::ArrayOfTables(tables)) = self.doc.get_mut("accounts") else {
            unreachable!("inserted above")
        };
        while tables.len() < self.accounts.len() {
            tables.push(Table::new());
        }
        for (account, table) in self.accounts.iter().zip(tables.iter_mut()) {
            write_account(account, table);
        }
    }
}

fn parse_account(path: &Path, text: &str, index: usize, t: &Table) -> Result<Account, InputError> {
    let err = |item: &Item, what: &str| InputError::at(path, text, item.span(), what.to_string());
    let string = |key: &str| -> Result<Option<String>, InputError> {
        match t.get(key) {
            None => Ok(None),
            Some(item) => item
                .as_str()
                .map(|s| Some(s.to_string()))
                .ok_or_else(|| err(item, &format!("`{key}` must be a string"))),
        }
    };
    let integer = |key: &str, min: i64, max: i64| -> Result<Option<i64>, InputError> {
        match t.get(key) {
            None => Ok(None),
            Some(item) => match item.as_integer() {
                Some(v) if (min..=max).contains(&v) => Ok(Some(v)),
                Some(v) if v < min => Err(err(
                    item,
                    &format!("`{key}` is {v}: expected an integer of at least {min}"),
                )),
                Some(v) => Err(err(
                    item,
                    &format!("`{key}` is {v}, which is absurd: expected at most {max}"),
                )),
                None => Err(err(item, &format!("`{key}` must be an integer"))),
            },
        }
    };

    let email = string("email")?;
    let user_id = string("user_id")?;
    let id = AccountId::from(
        email
            .clone()
            .filter(|s| !s.is_empty())
            .or(user_id.filter(|s| !s.is_empty()))
            .unwrap_or_else(|| format!("#{index}")),
    );
    let disabled = match t.get("disabled") {
        None => false,
        Some(item) => item
            .as_bool()
            .ok_or_else(|| err(item, "`disabled` must be true or false"))?,
    };
    let error_codes = match t.get("error_codes") {
        None => Vec::new(),
        Some(item) => {
            let arr = item
                .as_array()
                .ok_or_else(|| err(item, "`error_codes` must be a list of HTTP status codes"))?;
            let mut codes = Vec::new();
            for v in arr.iter() {
                match v.as_integer() {
                    Some(c) if (100..=599).contains(&c) => codes.push(c as u16),
                    _ => {
                        return Err(InputError::at(
                            path,
                            text,
                            v.span(),
                            "`error_codes` entries must be HTTP status codes (100-599)",
                        ))
                    }
                }
            }
            codes
        }
    };
    let mut bans = Vec::new();
    for (key, item) in t.iter() {
        let Some(series) = key.strip_suffix(BAN_SUFFIX) else {
            continue;
        };
        let s = item
            .as_str()
            .ok_or_else(|| err(item, &format!("`{key}` must be a string: an RFC 3339 time or \"\"")))?;
        let until = if s.is_empty() {
            None
        } else {
            Some(from_rfc3339(s).ok_or_else(|| {
                err(
                    item,
                    &format!(
                        "`{key}` is {s:?}: expected an RFC 3339 time such as \"2025-11-29T19:46:46+00:00\", or \"\""
                    ),
                )
            })?)
        };
        bans.push((series.to_string(), until));
    }
    Ok(Account {
        id,
        access_token: Secret::new(string("access_token")?.unwrap_or_default()),
        refresh_token: Secret::new(string("refresh_token")?.unwrap_or_default()),
        disabled,
        expires_in: integer("expires_in", 0, MAX_EXPIRES_IN_S)?,
        timestamp: integer("timestamp", 0, i64::MAX)?,
        error_codes,
        last_success: string("last_success")?,
        bans,
        total_calls: integer("total_calls", 0, i64::MAX)?.unwrap_or(0) as u64,
        // In memory only: not keys of the file.
        ..Account::default()
    })
}

/// Sets `key` to `value` unless the table already holds an equal value (keeping its formatting).
fn set_if_changed(table: &mut Table, key: &str, value: Value) {
    let same = match (table.get(key).and_then(Item::as_value), &value) {
        (Some(Value::String(a)), Value::String(b)) => a.value() == b.value(),
        (Some(Value::Integer(a)), Value::Integer(b)) => a.value() == b.value(),
        (Some(Value::Boolean(a)), Value::Boolean(b)) => a.value() == b.value(),
        (Some(Value::Array(a)), Value::Array(b)) => {
            a.len() == b.len()
                && a.iter()
                    .zip(b.iter())
                    .all(|(x, y)| x.as_integer() == y.as_integer() && x.as_integer().is_some())
        }
        _ => false,
    };
    if !same {
        table.insert(key, Item::Value(value));
    }
}

fn write_account(a: &Account, t: &mut Table) {
    // A synthetic account has no identity keys yet: write its id as the email.
    if !t.contains_key("email") && !t.contains_key("user_id") && !a.id.0.starts_with('#') {
        t.insert("email", Item::Value(Value::from(a.id.as_str())));
    }
    if !a.access_token.is_empty() || t.contains_key("access_token") {
        set_if_changed(t, "access_token", Value::from(a.access_token.expose()));
    }
    if !a.refresh_token.is_empty() || t.contains_key("refresh_token") {
        set_if_changed(t, "refresh_token", Value::from(a.refresh_token.expose()));
    }
    // Absent means enabled: adding `disabled = false` would change an account nobody touched.
    if a.disabled || t.contains_key("disabled") {
        set_if_changed(t, "disabled", Value::from(a.disabled));
    }
    if let Some(e) = a.expires_in {
        set_if_changed(t, "expires_in", Value::from(e));
    }
    if let Some(ts) = a.timestamp {
        set_if_changed(t, "timestamp", Value::from(ts));
    }
    if !a.error_codes.is_empty() || t.contains_key("error_codes") {
        let arr: toml_edit::Array = a.error_codes.iter().map(|c| i64::from(*c)).collect();
        set_if_changed(t, "error_codes", Value::Array(arr));
    }
    if let Some(ls) = &a.last_success {
        set_if_changed(t, "last_success", Value::from(ls.as_str()));
    }
    for (series, until) in &a.bans {
        let text = until.map(to_rfc3339).unwrap_or_default();
        let key = format!("{series}{BAN_SUFFIX}");
        // Keep the original text when it denotes the same instant (sub-ms digits, offsets).
        let unchanged = t.get(&key).and_then(Item::as_str).is_some_and(|old| {
            if old.is_empty() {
                until.is_none()
            } else {
                from_rfc3339(old) == *until
            }
        });
        if !unchanged {
            t.insert(&key, Item::Value(Value::from(text)));
        }
    }
    if a.total_calls > 0 || t.contains_key("total_calls") {
        set_if_changed(t, "total_calls", Value::from(a.total_calls as i64));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::change::Change;

    /// The realistic example of reference-behaviour.md (fake values), shared with the integration tests.
    pub(crate) const REAL: &str = include_str!("../../tests/fixtures/reference-accounts.toml");

    fn parse(text: &str) -> Result<AccountsFile, InputError> {
        AccountsFile::parse(Path::new("accounts.toml"), text)
    }

    #[test]
    fn real_file_round_trips_byte_for_byte() {
        let mut f = parse(REAL).unwrap();
        assert_eq!(f.accounts.len(), 1);
        let a = &f.accounts[0];
        assert_eq!(a.id.as_str(), "alice@example.com");
        assert_eq!(a.error_codes, vec![429]);
        assert_eq!(a.total_calls, 52);
        assert!(a.is_banned("gemini_3_series", 1_764_395_921_000));
        assert_eq!(f.to_toml_string(), REAL);
    }

    #[test]
    fn a_change_rewrites_only_modelled_keys() {
        let mut f = parse(REAL).unwrap();
        f.accounts[0].apply(&Change::Disabled);
        let out = f.to_toml_string();
        assert!(out.contains("disabled = true"));
        for keep in [
            "project_name = \"My First Project\"",
            "daily_limit_total = 1000",
            "# a comment",
            "claude_sonnet_4_5_calls = 12",
            "[[accounts.projects]]",
        ] {
            assert!(out.contains(keep), "lost {keep}");
        }
        let again = parse(&out).unwrap();
        assert!(again.accounts[0].disabled);
    }

    #[test]
    fn an_untouched_account_without_a_disabled_key_stays_byte_for_byte() {
        let text = "[[accounts]]\nemail = \"a\"\n\n[[accounts]]\nemail = \"b\"\n";
        let mut f = parse(text).unwrap();
        f.accounts[0].apply(&Change::Disabled);
        assert_eq!(
            f.to_toml_string(),
            "[[accounts]]\nemail = \"a\"\ndisabled = true\n\n[[accounts]]\nemail = \"b\"\n"
        );
    }

    #[test]
    fn wrong_types_are_located() {
        let text = "[[accounts]]\nemail = \"a\"\ndisabled = \"no\"\n";
        let e = parse(text).unwrap_err();
        assert_eq!(e.to_string(), "accounts.toml:3:12: `disabled` must be true or false");
    }

    #[test]
    fn duplicates_are_refused() {
        let text = "[[accounts]]\nemail = \"a\"\n[[accounts]]\nemail = \"a\"\n";
        let e = parse(text).unwrap_err();
        assert!(e.message.contains("duplicate account"), "{e}");
        assert_eq!(e.position.unwrap().line, 3);
    }

    #[test]
    fn syntax_errors_are_located() {
        let e = parse("[[accounts]]\nemail = \n").unwrap_err();
        assert_eq!(e.position.unwrap().line, 2, "{e}");
    }

    #[test]
    fn negative_or_absurd_expiry_is_refused() {
        let e = parse("[[accounts]]\nemail = \"a\"\nexpires_in = -5\n").unwrap_err();
        assert!(e.message.contains("at least 0"), "{e}");
        let e = parse("[[accounts]]\nemail = \"a\"\nexpires_in = 99999999999\n").unwrap_err();
        assert!(
            e.message.contains("absurd") && e.message.contains("at most 31536000"),
            "{e}"
        );
        assert_eq!(e.position.unwrap().line, 3);
    }

    #[test]
    fn synthetic_accounts_serialise_and_parse_back() {
        let mut f = AccountsFile::from_accounts(vec![
            Account::synthetic(0, 1000, 3600),
            Account::synthetic(1, 1000, 3600),
        ]);
        let text = f.to_toml_string();
        let back = parse(&text).unwrap();
        assert_eq!(back.accounts, f.accounts);
    }
}
