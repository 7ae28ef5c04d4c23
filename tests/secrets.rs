//! Secrets: recognisable fake tokens are seeded everywhere a token lives, and every output is
//! searched for them: every command's stdout and stderr, every file a run writes (summary.json and
//! whatever else the report folder holds), error messages, and the `Debug` output of the types
//! that hold tokens. Files that hold tokens (the accounts file, its backup, temp files) must be
//! mode 0600.

#[path = "common/serve.rs"]
mod serve_common;

use credpool::costs::Costs;
use credpool::model::{Account, AccountId, AccountsFile, Change};
use credpool::secret::Secret;
use credpool::store::file_backend::FileBackend;
use credpool::store::{self, StoreError, StoreMode};
use credpool::strategy::{AcquireTiming, Lease};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

/// Every seeded token contains this; no output may.
const MARK: &str = "SEEDED-SECRET";

const ACCOUNTS: &str = r#"[[accounts]]
email = "alice@example.com"
access_token = "ya29.SEEDED-SECRET-access-alice"
refresh_token = "1//0g-SEEDED-SECRET-refresh-alice"
expires_in = 3599
timestamp = 1764395921000
total_calls = 3

[[accounts]]
user_id = "200000000000000000002"
access_token = "ya29.SEEDED-SECRET-access-bob"
refresh_token = "1//0g-SEEDED-SECRET-refresh-bob"
"#;

/// Runs credpool; returns exit code and stdout + stderr, which must hold no seeded token.
fn credpool(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_credpool"))
        .args(args)
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_no_secret(&format!("credpool {args:?}"), &all);
    (out.status.code(), all)
}

fn assert_no_secret(what: &str, text: &str) {
    for needle in [
        MARK,
        "sim-access-",
        "sim-refresh-",
        "torture-access-",
        "torture-refresh-",
    ] {
        assert!(!text.contains(needle), "{what} shows a token ({needle}):\n{text}");
    }
}

/// Every file under `dir`, recursively, must hold no token.
fn grep_tree(dir: &Path) -> usize {
    let mut files = 0;
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files += grep_tree(&path);
        } else {
            let bytes = fs::read(&path).unwrap();
            assert_no_secret(&path.display().to_string(), &String::from_utf8_lossy(&bytes));
            files += 1;
        }
    }
    files
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn accounts_file(text: &str) -> (tempfile::TempDir, PathBuf) {
    accounts_file_bytes(text.as_bytes())
}

fn accounts_file_bytes(text: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("accounts.toml");
    fs::write(&path, text).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    (dir, path)
}

#[test]
fn account_commands_never_show_a_token_and_keep_the_files_private() {
    let (dir, path) = accounts_file(ACCOUNTS);
    let p = path.to_str().unwrap();
    assert_eq!(credpool(&["check", p]).0, Some(0));
    assert_eq!(credpool(&["accounts", "list", p]).0, Some(0));
    assert_eq!(credpool(&["accounts", "disable", p, "alice@example.com"]).0, Some(0));
    assert_eq!(credpool(&["accounts", "enable", p, "200000000000000000002"]).0, Some(0));
    let (code, out) = credpool(&["accounts", "disable", p, "nobody@example.com"]);
    assert_eq!(code, Some(2), "{out}");
    // The tokens are still in the file, which is now private, as is its backup.
    assert!(fs::read_to_string(&path)
        .unwrap()
        .contains("ya29.SEEDED-SECRET-access-bob"));
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&dir.path().join("accounts.toml.bak")), 0o600);
    assert_eq!(mode(&dir.path().join("accounts.toml.lock")), 0o600);
}

#[test]
fn errors_about_a_file_with_tokens_never_quote_them() {
    // Broken files whose error positions fall on or near a token.
    let broken = [
        // An unterminated token string: the parser's excerpt of the line would show it.
        ACCOUNTS.replace("\"ya29.SEEDED-SECRET-access-bob\"", "\"ya29.SEEDED-SECRET-access-bob"),
        // A token where a number belongs.
        ACCOUNTS.replace("expires_in = 3599", "expires_in = \"ya29.SEEDED-SECRET-x\""),
        // A token where a boolean belongs.
        ACCOUNTS.replace("total_calls = 3", "disabled = \"1//0g-SEEDED-SECRET-y\""),
        // A duplicated token key.
        ACCOUNTS.replace("total_calls = 3", "access_token = \"ya29.SEEDED-SECRET-again\""),
        // A token as a table header.
        format!("{ACCOUNTS}[ya29.SEEDED-SECRET-header\n"),
    ];
    let mut broken: Vec<Vec<u8>> = broken.into_iter().map(String::into_bytes).collect();
    // A token followed by bytes that are not UTF-8.
    let mut binary = ACCOUNTS.as_bytes().to_vec();
    binary.extend_from_slice(b"note = \"ya29.SEEDED-SECRET-bin\xff\xfe\"\n");
    broken.push(binary);
    for text in broken {
        let (_dir, path) = accounts_file_bytes(&text);
        let p = path.to_str().unwrap();
        for args in [
            &["check", p][..],
            &["accounts", "list", p],
            &["accounts", "disable", p, "alice@example.com"],
        ] {
            let (code, out) = credpool(args);
            assert_eq!(code, Some(2), "{args:?}: {out}");
        }
        // The store's own error (what a proxy would log) is clean too, in Display and Debug.
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        for mode in StoreMode::ALL {
            let store = store::open(mode, Arc::new(FileBackend::new(&path)), Costs::default());
            let result = rt.block_on(store.update(&AccountId("alice@example.com".into()), Change::Disabled));
            if let Err(e) = result {
                assert_no_secret(&format!("{mode} error"), &format!("{e} {e:?}"));
            }
            if let Err(e) = rt.block_on(store.load()) {
                assert_no_secret(&format!("{mode} load error"), &format!("{e} {e:?}"));
            }
        }
    }
}

#[test]
fn debug_output_of_token_holders_is_redacted() {
    let file = AccountsFile::parse(Path::new("a.toml"), ACCOUNTS).unwrap();
    assert_no_secret("AccountsFile Debug", &format!("{file:?}"));
    assert_no_secret("AccountsFile pretty Debug", &format!("{file:#?}"));
    for a in &file.accounts {
        assert_no_secret("Account Debug", &format!("{a:?} {a:#?}"));
    }
    let lease = Lease::new(
        0,
        AccountId("alice@example.com".into()),
        Secret::new("ya29.SEEDED-SECRET-lease"),
        AcquireTiming::default(),
    );
    assert_no_secret("Lease Debug", &format!("{lease:?}"));
    let mut a = Account::synthetic(0, 0, 3600);
    a.refresh_token = Secret::new("1//0g-SEEDED-SECRET-z");
    let change = Change::Refreshed {
        grant: credpool::model::TokenGrant {
            access_token: Secret::new("ya29.SEEDED-SECRET-grant"),
            expires_in: 3600,
        },
        at: 0,
    };
    assert_no_secret("Change Debug", &format!("{change:?} {a:?}"));
    let err = StoreError::UnknownAccount(AccountId("x".into()));
    assert_no_secret("StoreError", &format!("{err} {err:?}"));
}

#[test]
fn a_full_run_writes_no_token_anywhere() {
    // Simulated credentials carry tokens `sim-access-<i>-<n>` and `sim-refresh-<i>` that go
    // through refreshes, the store (an accounts file written for real in real mode) and the HTTP
    // upstream; none may reach the terminal, summary.json or any other file of the report.
    let scenario = r#"
name = "secrets"
seed = 3
strategies = ["global_mutex", "rwlock", "queue_pool", "sharded", "lock_free"]  # as_shipped deadlocks on the failed refresh
[pool]
credentials = 3
calls_per_rotation = 3
expired = [0, 1]
failing_refresh = [1]
revoked = [2]
auto_ban_codes = [401]
store = "durable"
[load]
model = "open"
rate = 200
requests = 60
[upstream]
api_latency = "2ms"
refresh_latency = "5ms"
status_5xx_rate = 0.1
"#;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secrets.toml");
    fs::write(&file, scenario).unwrap();
    for mode in ["virtual", "real"] {
        let out = dir.path().join(format!("out-{mode}"));
        let (code, text) = credpool(&[
            "run",
            file.to_str().unwrap(),
            "--mode",
            mode,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(code, Some(0), "{text}");
        let files = grep_tree(&out);
        assert!(files >= 1, "{mode}: the run wrote nothing");
        let summary = fs::read_to_string(out.join("summary.json")).unwrap();
        assert!(summary.contains("\"refreshes\""), "{summary}");
    }
}

#[test]
fn torture_outputs_hold_no_token_and_its_files_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.toml");
    let (code, out) = credpool(&[
        "torture",
        "--store",
        "durable",
        "--processes",
        "2",
        "--updates",
        "30",
        "--kill",
        "--kills",
        "20",
        "--kill-interval-ms",
        "3",
        "--keep",
        file.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{out}");
    let (_, json) = credpool(&[
        "torture",
        "--store",
        "locked",
        "--processes",
        "1",
        "--updates",
        "5",
        "--json",
        dir.path().join("u.toml").to_str().unwrap(),
    ]);
    assert!(json.contains("\"updates_acknowledged\""), "{json}");
    // The kept files hold the fake tokens, and every one of them is private: the file, its
    // backup, its lock file and any temp file a killed writer left.
    assert!(fs::read_to_string(&file).unwrap().contains("torture-access-"));
    let mut checked = 0;
    for entry in fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("t.toml") || name.starts_with(".t.toml.") {
            assert_eq!(mode(&path), 0o600, "{name}");
            checked += 1;
        }
    }
    assert!(checked >= 3, "the file, its backup and lock file at least: {checked}");
}

/// `credpool serve` with seeded tokens that expire (so refreshes issue new seeded tokens), a
/// seeded OAuth client secret, debug logs: no log line, `/metrics` text, admin answer or error
/// body may hold a token. (The lease answer itself carries one: that is its job.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_never_shows_a_token_outside_a_lease() {
    use serve_common::*;
    let dir = tempfile::tempdir().unwrap();
    let accounts = write_file(dir.path(), "accounts.toml", &accounts_toml(3, true), 0o600);
    let token = TokenServer::start(std::time::Duration::from_millis(20)).await;
    let serve = Serve::start(&base_args(&accounts, &token.url), dir.path().join("serve.log"));
    let c = client();
    let mut outputs = Vec::new();
    let mut leased_tokens = Vec::new();
    for (i, status) in [200, 429, 500, 401, 200, 503].into_iter().enumerate() {
        let (s, b, _) = lease(&c, &serve.base, None, "gemini-2.5-pro", &format!("u{i}")).await;
        assert_eq!(s, 200, "{b}");
        let leased = b["access_token"].as_str().unwrap().to_string();
        assert!(leased.contains(MARK), "the lease carries the (refreshed) token");
        let id = b["lease"].as_str().unwrap().to_string();
        // A client that sends a token where a status belongs gets a 400 that does not quote it.
        let (s, text) = complete(&c, &serve.base, None, &id, serde_json::json!({"status": leased})).await;
        assert_eq!(s, 400);
        outputs.push(("400 body", text));
        let (s, text) = complete(
            &c,
            &serve.base,
            None,
            &id,
            serde_json::json!({"status": status, "body": {"error": {"message": "quota"}}}),
        )
        .await;
        assert_eq!(s, 204, "{text}");
        let (s, text) = complete(&c, &serve.base, None, &id, serde_json::json!({"status": 200})).await;
        assert_eq!(s, 409);
        outputs.push(("409 body", text));
        leased_tokens.push(leased);
    }
    assert!(
        token.total() > 0,
        "refreshes happened, so refreshed tokens were in play"
    );
    for path in [
        "/v1/accounts",
        "/metrics",
        "/healthz",
        "/readyz",
        "/v1/accounts/nobody/disable",
        "/v1/lease/00/complete",
    ] {
        let r = if path.ends_with("disable") || path.ends_with("complete") {
            c.post(serve.url(path)).body("{}").send().await.unwrap()
        } else {
            c.get(serve.url(path)).send().await.unwrap()
        };
        outputs.push((path, r.text().await.unwrap()));
    }
    let r = c
        .post(serve.url("/v1/accounts/acct1@example.com/disable"))
        .send()
        .await
        .unwrap();
    outputs.push(("disable", r.text().await.unwrap()));
    // Every account disabled: the 503's body.
    for id in ["acct0@example.com", "acct2@example.com"] {
        c.post(serve.url(&format!("/v1/accounts/{id}/disable")))
            .send()
            .await
            .unwrap();
    }
    let (s, b, _) = lease(&c, &serve.base, None, MODEL, "u").await;
    assert_eq!(s, 503);
    outputs.push(("503 body", b.to_string()));
    let logs_before_exit = serve.logs();
    assert_eq!(serve.terminate(std::time::Duration::from_secs(10)), Some(0));
    let logs = std::fs::read_to_string(dir.path().join("serve.log")).unwrap();
    assert!(
        logs.len() >= logs_before_exit.len() && logs.contains("DEBUG"),
        "debug logs were on:\n{logs}"
    );
    outputs.push(("logs", logs));
    for (what, text) in &outputs {
        assert_no_secret(what, text);
        for t in &leased_tokens {
            assert!(!text.contains(t.as_str()), "{what} shows a leased token");
        }
        assert!(!text.contains(OAUTH_SECRET), "{what} shows the OAuth client secret");
    }
    assert_eq!(mode(&accounts), 0o600);
}
