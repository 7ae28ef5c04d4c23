//! `credpool accounts list|disable|enable|clean FILE`: look at and switch accounts in an accounts
//! file, and remove the temp files that killed writers left beside it (`import` and `export`,
//! between a file and a fleet's shared pool in Redis, are in [`super::fleet_accounts`]).
//!
//! `list` only reads (it never takes a lock or writes); it mentions leftover temp files. `disable` and `enable` go through the
//! `durable` store, so they are safe to run beside a live proxy that uses credpool's locking:
//! they take the cross-process lock, change one key of one account, and replace the file
//! atomically with fsyncs; every other key, known or unknown, keeps its text. `clean` removes
//! only temp files whose writing process is gone, and only while the accounts file itself reads
//! and validates (when it does not, those temp files may be the last copy of its tokens). No
//! output of these commands ever contains a token.

use super::check::parse_pool;
use super::{CliResult, Failure};
use crate::costs::Costs;
use crate::input_error::read_input;
use crate::model::time::to_rfc3339;
use crate::model::{Account, AccountId, AccountsFile, Change, EpochMs};
use crate::store::durable::DurableStore;
use crate::store::file_backend::FileBackend;
use crate::store::{AccountStore, StoreError};
use clap::Subcommand;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Subcommand, Debug)]
pub enum AccountsCommand {
    /// One line per account: id, enabled or disabled, active bans, token expiry. Never a token.
    List {
        /// The accounts.toml to read.
        file: PathBuf,
    },
    /// Disable one account (through the durable store; nothing else in the file changes).
    Disable {
        file: PathBuf,
        /// The account's email, else its user_id, else its position as `#N` (as `list` shows).
        id: String,
    },
    /// Enable one account again (through the durable store; nothing else in the file changes).
    Enable {
        file: PathBuf,
        /// The account's email, else its user_id, else its position as `#N` (as `list` shows).
        id: String,
    },
    /// Remove the temp files (`.<file>.<pid>.<n>.tmp`, mode 0600, holding tokens) that writers
    /// killed mid-save left beside the file; only those whose process is gone, and only while
    /// the file itself is valid.
    Clean {
        /// The accounts.toml whose leftover temp files to remove.
        file: PathBuf,
    },
    /// Load an accounts file into a fleet's shared pool in Redis (the ids it lacks are added;
    /// nothing there is removed or overwritten). The file is validated first, as by `check`.
    Import {
        file: PathBuf,
        /// The Redis holding the fleet's shared state: redis://HOST[:PORT][/DB].
        #[arg(long)]
        redis: String,
        /// The pool's name (its keys' hash tag).
        #[arg(long, default_value = super::fleet_accounts::DEFAULT_POOL)]
        pool: String,
    },
    /// Write a fleet's shared pool as it stands to a new accounts file (mode 0600; never over an
    /// existing file; without refresh tokens, which Redis does not hold).
    Export {
        /// The Redis holding the fleet's shared state: redis://HOST[:PORT][/DB].
        #[arg(long)]
        redis: String,
        file: PathBuf,
        /// The pool's name (its keys' hash tag).
        #[arg(long, default_value = super::fleet_accounts::DEFAULT_POOL)]
        pool: String,
    },
}

pub fn run(cmd: AccountsCommand) -> CliResult {
    match cmd {
        AccountsCommand::List { file } => list(&file),
        AccountsCommand::Disable { file, id } => switch(&file, AccountId::from(id), Change::Disabled),
        AccountsCommand::Enable { file, id } => switch(&file, AccountId::from(id), Change::Enabled),
        AccountsCommand::Clean { file } => clean(&file),
        AccountsCommand::Import { file, redis, pool } => super::fleet_accounts::import(&file, &redis, &pool),
        AccountsCommand::Export { redis, file, pool } => super::fleet_accounts::export(&redis, &file, &pool),
    }
}

/// Reads and validates the pool as `check` does: a missing, unreadable, unparsable or empty file
/// is refused with exit 2, and nothing is created or changed.
pub(super) fn read_pool(path: &Path) -> Result<AccountsFile, Failure> {
    let text = read_input(path).map_err(|e| Failure::BadInput(e.to_string()))?;
    parse_pool(path, &text).map_err(|e| Failure::BadInput(e.to_string()))
}

fn list(path: &Path) -> CliResult {
    let file = read_pool(path)?;
    let now = chrono::Utc::now().timestamp_millis();
    let width = file.accounts.iter().map(|a| a.id.0.chars().count()).max().unwrap_or(0);
    for account in &file.accounts {
        println!("{:width$}  {}", account.id.0, describe(account, now));
    }
    let stale = FileBackend::new(path).stale_temp_files().unwrap_or_default();
    if !stale.is_empty() {
        eprintln!(
            "note: {} temp file(s) of writers that are gone lie beside {} (mode 0600, holding tokens); \
             `credpool accounts clean {}` removes them",
            stale.len(),
            path.display(),
            path.display()
        );
    }
    Ok(())
}

fn clean(path: &Path) -> CliResult {
    read_pool(path).map_err(|e| match e {
        Failure::BadInput(why) => Failure::BadInput(format!(
            "{why}; no temp file was removed (while the accounts file is not valid, they may hold \
             the last good copy of its tokens)"
        )),
        other => other,
    })?;
    let removed = FileBackend::new(path)
        .remove_stale_temp_files()
        .map_err(|e| Failure::BadInput(format!("{}: cannot clean its directory: {e}", path.display())))?;
    if removed.is_empty() {
        println!("{}: no temp files of writers that are gone", path.display());
    }
    for temp in &removed {
        println!("{}: removed {}", path.display(), temp.display());
    }
    Ok(())
}

/// Everything `list` says about an account after its id. Reads no token field.
pub fn describe(a: &Account, now: EpochMs) -> String {
    let state = if a.disabled { "disabled" } else { "enabled " };
    let bans: Vec<String> = a
        .bans
        .iter()
        .filter_map(|(series, until)| {
            until
                .filter(|u| *u > now)
                .map(|u| format!("{series} until {}", to_rfc3339(u)))
        })
        .collect();
    let bans = if bans.is_empty() {
        "none".to_string()
    } else {
        bans.join(", ")
    };
    let token = match a.expires_at() {
        Some(at) if at > now => format!("token expires {}", to_rfc3339(at)),
        Some(at) => format!("token expired {}", to_rfc3339(at)),
        None => "token expiry unknown (refreshed before use)".to_string(),
    };
    format!("{state}  bans: {bans}  {token}")
}

fn switch(path: &Path, id: AccountId, change: Change) -> CliResult {
    let done = if change == Change::Disabled {
        "disabled"
    } else {
        "enabled"
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::BadInput(format!("cannot start the runtime: {e}")))?;
    // Refuse a broken file before the store takes its lock, so a mistyped path (a directory, a
    // binary file) does not even get a `.lock` file beside it. The store reads the file again under
    // the lock, so a change made meanwhile is not lost.
    read_pool(path)?;
    runtime.block_on(async {
        let store = DurableStore::new(Arc::new(FileBackend::new(path)), Costs::default());
        match store.update(&id, change).await {
            Ok(()) => {
                println!("{}: {id} {done}", path.display());
                Ok(())
            }
            Err(StoreError::UnknownAccount(_)) => {
                let known = match store.load().await {
                    Ok(file) => file
                        .accounts
                        .iter()
                        .map(|a| a.id.0.clone())
                        .collect::<Vec<_>>()
                        .join(", "),
                    Err(_) => String::new(),
                };
                Err(Failure::BadInput(format!(
                    "{}: no account {:?}: expected one of: {known} (an account is named by its email, \
                     else its user_id, else #N); the file was not changed",
                    path.display(),
                    id.0
                )))
            }
            Err(e) => Err(Failure::BadInput(e.to_string())),
        }
    })
}
