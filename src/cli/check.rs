//! `credpool check FILE...`: validate input files without running anything or changing them.
//!
//! A file is classified by its content, not its name: a TOML document with a top-level
//! `accounts` key (`[[accounts]]` tables, or `accounts = []`) is an accounts file and is checked
//! by [`check_accounts`]; anything else is a scenario file, checked by [`check_scenario`]. Every problem is printed as
//! `file:line:column: what was expected` (and a valid file's warnings as
//! `file:line:column: warning: ...`, on stderr); the
//! command exits 0 when every file is valid and 2 otherwise. Files are only read.

use super::{CliResult, Failure};
use crate::input_error::{read_input, InputError};
use crate::model::AccountsFile;
use std::path::{Path, PathBuf};
use toml_edit::ImDocument;

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// Accounts files and scenario files to validate.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

pub fn run(args: CheckArgs) -> CliResult {
    let mut invalid = 0;
    for path in &args.files {
        match check_file(path) {
            Ok(summary) => println!("{}: ok: {summary}", path.display()),
            Err(e) => {
                eprintln!("{e}");
                invalid += 1;
            }
        }
    }
    match invalid {
        0 => Ok(()),
        n => Err(Failure::BadInput(format!("{n} of {} files invalid", args.files.len()))),
    }
}

/// Validates one file; returns a one-line summary of what it holds.
pub fn check_file(path: &Path) -> Result<String, InputError> {
    let text = read_input(path)?;
    let doc = ImDocument::parse(text.clone()).map_err(|e| InputError::from_toml(path, &text, e.span(), e.message()))?;
    if doc.contains_key("accounts") {
        check_accounts(path, &text)
    } else {
        check_scenario(path, &text)
    }
}

/// An accounts file is valid when the store could load it and it holds at least one account
/// (an empty pool serves nothing; `check` is where that mistake should be caught).
pub fn check_accounts(path: &Path, text: &str) -> Result<String, InputError> {
    let file = parse_pool(path, text)?;
    let enabled = file.accounts.iter().filter(|a| !a.disabled).count();
    Ok(format!(
        "accounts file, {} accounts ({enabled} enabled)",
        file.accounts.len()
    ))
}

/// Parses an accounts file that must hold at least one account: what every command that reads
/// a pool for people (`check`, `accounts list|disable|enable`) accepts.
pub fn parse_pool(path: &Path, text: &str) -> Result<AccountsFile, InputError> {
    let file = AccountsFile::parse(path, text)?;
    if file.accounts.is_empty() {
        let span = ImDocument::parse(text.to_string())
            .ok()
            .and_then(|d| d.get("accounts").and_then(|i| i.span()));
        let message = "no accounts: expected at least one [[accounts]] table";
        return Err(match span {
            Some(span) => InputError::at(path, text, Some(span), message),
            // An empty or comment-only file: nothing to point at.
            None => InputError::whole_file(path, message),
        });
    }
    Ok(file)
}

/// A scenario file is valid when it parses and passes every check of [`crate::scenario::plan`].
pub fn check_scenario(path: &Path, text: &str) -> Result<String, InputError> {
    if text.trim().is_empty() {
        return Err(InputError::whole_file(
            path,
            "is empty: expected an accounts file ([[accounts]] tables) or a scenario file (name, [pool], [load])",
        ));
    }
    let plan = crate::scenario::plan::parse(path, text)?;
    super::print_warnings(&plan);
    let names: Vec<&str> = plan.strategies.iter().map(|s| s.as_str()).collect();
    Ok(format!(
        "scenario {:?}, {} mode, {} credentials, {} requests, strategies {}{}",
        plan.name,
        plan.mode.as_str(),
        plan.credentials,
        plan.load.requests,
        if names.is_empty() {
            "(none)".into()
        } else {
            names.join(", ")
        },
        plan.target
            .as_ref()
            .map(|t| format!(", target {:?}", t.name))
            .unwrap_or_default()
    ))
}
