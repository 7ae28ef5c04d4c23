//! `credpool accounts ...` and `credpool check` through the real binary: exit codes, messages,
//! files left byte-for-byte unchanged on error, and no token in any output. `import` and `export`
//! run against a private redis-server (tests/common/redis_server.rs).

mod common;

use common::redis_server::RedisServer;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Two accounts: alice (the realistic example of reference-behaviour.md, banned on gemini 3
/// until 2099) and bob, identified by user_id only and without a `disabled` key.
const FILE: &str = r#"# a comment that must survive
[[accounts]]
access_token = "ya29.FAKE-access"
refresh_token = "1//0gFAKE-refresh"
created_at = "2025-11-28 10:15:02"
last_used = "2025-11-29 13:58:41"
disabled = false
email = "alice@example.com"
user_id = "100000000000000000001"
project_count = 1
expires_in = 3599                 # seconds
timestamp = 1764395921000         # epoch ms of the last refresh
user_email = "alice@example.com"
error_codes = [429]
last_success = "2025-11-29 13:58:41"
gemini_3_series_banned_until = "2099-11-29T19:46:46.123456+00:00"
claude_series_banned_until = ""   # "" means not banned
total_calls = 52
daily_limit_total = 1000

[[accounts.projects]]
project_id = "fake-project-123"
project_name = "My First Project"
state = "ACTIVE"

[[accounts]]
user_id = "200000000000000000002"
access_token = "ya29.BOB-SECRET"
refresh_token = "1//0gBOB-REFRESH"
"#;

/// Every token in [`FILE`]: none may appear in any output.
const TOKENS: [&str; 4] = [
    "ya29.FAKE-access",
    "1//0gFAKE-refresh",
    "ya29.BOB-SECRET",
    "1//0gBOB-REFRESH",
];

fn credpool(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_credpool"))
        .args(args)
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for token in TOKENS {
        assert!(!all.contains(token), "a token reached the output of {args:?}:\n{all}");
    }
    out
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn with_file(name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    fs::write(&path, text).unwrap();
    (dir, path)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn list_prints_one_line_per_account_without_tokens() {
    let (_dir, path) = with_file("accounts.toml", FILE);
    let out = credpool(&["accounts", "list", s(&path)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("alice@example.com"), "{text}");
    assert!(lines[0].contains("enabled"), "{text}");
    assert!(lines[0].contains("gemini_3_series until 2099-11-29T19:46:46"), "{text}");
    assert!(!lines[0].contains("claude_series"), "an empty ban is no ban: {text}");
    assert!(lines[0].contains("token expired 2025-11-29T06:58:40"), "{text}");
    assert!(lines[1].starts_with("200000000000000000002"), "{text}");
    assert!(lines[1].contains("bans: none"), "{text}");
    assert!(lines[1].contains("token expiry unknown"), "{text}");
    assert_eq!(fs::read_to_string(&path).unwrap(), FILE);
}

#[test]
fn disable_then_enable_changes_one_key_and_restores_the_exact_bytes() {
    let (dir, path) = with_file("accounts.toml", FILE);
    let out = credpool(&["accounts", "disable", s(&path), "alice@example.com"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("alice@example.com disabled"));
    let disabled = FILE.replacen("disabled = false", "disabled = true", 1);
    assert_eq!(fs::read_to_string(&path).unwrap(), disabled);
    assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);

    let listed = stdout(&credpool(&["accounts", "list", s(&path)]));
    assert!(listed.lines().next().unwrap().contains("disabled"), "{listed}");

    let out = credpool(&["accounts", "enable", s(&path), "alice@example.com"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(fs::read_to_string(&path).unwrap(), FILE);

    // An account named by its user_id, without a `disabled` key: the key is added to it alone.
    let out = credpool(&["accounts", "disable", s(&path), "200000000000000000002"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = fs::read_to_string(&path).unwrap();
    assert_eq!(text.replace("disabled = true\n", ""), FILE, "{text}");
    assert!(
        text.ends_with("refresh_token = \"1//0gBOB-REFRESH\"\ndisabled = true\n"),
        "{text}"
    );
    let leftovers: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn an_unknown_id_is_exit_2_with_the_known_ids_and_an_unchanged_file() {
    let (_dir, path) = with_file("accounts.toml", FILE);
    let out = credpool(&["accounts", "disable", s(&path), "mallory@example.com"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("no account \"mallory@example.com\""), "{err}");
    assert!(err.contains("alice@example.com, 200000000000000000002"), "{err}");
    assert_eq!(fs::read(&path).unwrap(), FILE.as_bytes());
}

#[test]
fn an_invalid_file_is_exit_2_located_and_untouched_by_every_command() {
    let broken = "[[accounts]]\nemail = \"alice@example.com\"\ndisabled = \"no\"\n";
    let (_dir, path) = with_file("accounts.toml", broken);
    for args in [
        vec!["accounts", "list", s(&path)],
        vec!["accounts", "disable", s(&path), "alice@example.com"],
        vec!["accounts", "enable", s(&path), "alice@example.com"],
        vec!["accounts", "clean", s(&path)],
        vec!["check", s(&path)],
    ] {
        let out = credpool(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert!(
            err.contains(&format!("{}:3:12: `disabled` must be true or false", path.display())),
            "{args:?}: {err}"
        );
        assert_eq!(fs::read(&path).unwrap(), broken.as_bytes(), "{args:?}");
    }
}

/// The id of a process that has exited (and been reaped), for a temp file's name.
fn a_finished_process() -> u32 {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

/// A temp file as a writer of process `pid` names it, holding the file's tokens, mode 0600.
fn writers_temp(dir: &Path, pid: u32) -> PathBuf {
    let temp = dir.join(format!(".accounts.toml.{pid}.0.tmp"));
    fs::write(&temp, FILE).unwrap();
    fs::set_permissions(&temp, fs::Permissions::from_mode(0o600)).unwrap();
    temp
}

#[test]
fn clean_removes_the_temp_files_of_writers_that_are_gone_and_only_those() {
    let (dir, path) = with_file("accounts.toml", FILE);
    let gone = writers_temp(dir.path(), a_finished_process());
    // A writer that is still running: this test's own process.
    let live = writers_temp(dir.path(), std::process::id());
    let unrelated = dir.path().join(".other.toml.1.0.tmp");
    fs::write(&unrelated, "x").unwrap();

    let out = credpool(&["accounts", "list", s(&path)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("1 temp file(s) of writers that are gone"),
        "{}",
        stderr(&out)
    );
    assert!(gone.exists(), "list only reads");

    let out = credpool(&["accounts", "clean", s(&path)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().count(), 1, "{}", stdout(&out));
    assert!(
        stdout(&out).contains(&format!("removed {}", gone.display())),
        "{}",
        stdout(&out)
    );
    assert!(!gone.exists());
    assert!(live.exists(), "a running writer's temp file was removed");
    assert!(unrelated.exists(), "another file's temp file was removed");
    assert_eq!(fs::read_to_string(&path).unwrap(), FILE, "the accounts file changed");

    let out = credpool(&["accounts", "clean", s(&path)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("no temp files of writers that are gone"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn clean_keeps_every_temp_file_while_the_accounts_file_is_broken() {
    let (dir, path) = with_file("accounts.toml", "[[accounts]\n");
    let gone = writers_temp(dir.path(), a_finished_process());
    let out = credpool(&["accounts", "clean", s(&path)]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(stderr(&out).contains("no temp file was removed"), "{}", stderr(&out));
    assert!(gone.exists(), "the last good copy of the tokens was removed");
}

#[test]
fn a_missing_file_is_exit_2_and_is_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("accounts.toml");
    for args in [
        vec!["accounts", "list", s(&path)],
        vec!["accounts", "disable", s(&path), "alice@example.com"],
        vec!["accounts", "clean", s(&path)],
        vec!["check", s(&path)],
    ] {
        let out = credpool(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains("no such file"), "{args:?}: {}", stderr(&out));
        assert!(!path.exists(), "{args:?} created the file");
    }
}

#[test]
fn check_accepts_valid_accounts_files_and_never_modifies_them() {
    let (dir, path) = with_file("accounts.toml", FILE);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let before = fs::metadata(&path).unwrap().modified().unwrap();
    let out = credpool(&["check", s(&path)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("2 accounts (2 enabled)"), "{}", stdout(&out));
    assert_eq!(fs::read(&path).unwrap(), FILE.as_bytes());
    assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), before);
    assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o644);
    // No lock file, backup or temp file: check only reads.
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn check_reports_every_bad_file_with_its_position() {
    let (_d1, good) = with_file("good.toml", FILE);
    let (_d2, syntax) = with_file("syntax.toml", "[[accounts]]\nemail = \n");
    let (_d3, empty) = with_file("empty.toml", "accounts = []\n");
    let (_d4, other) = with_file("scenario.toml", "name = \"burst\"\n");
    let out = credpool(&["check", s(&good), s(&syntax), s(&empty), s(&other)]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains(&format!("{}:2:9: ", syntax.display())), "{err}");
    assert!(
        err.contains(&format!(
            "{}:1:12: no accounts: expected at least one [[accounts]] table",
            empty.display()
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("{}:1:1: missing field `pool`", other.display())),
        "{err}"
    );
    assert!(err.contains("3 of 4 files invalid"), "{err}");
    assert!(stdout(&out).contains(&format!("{}: ok", good.display())));
}

#[test]
fn check_without_a_file_is_a_usage_error() {
    let out = credpool(&["check"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn the_store_worker_is_hidden_from_help() {
    let out = credpool(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = stdout(&out);
    assert!(help.contains("accounts") && help.contains("check"), "{help}");
    assert!(!help.contains("store-worker"), "{help}");
}

#[test]
fn import_then_export_round_trips_the_shared_state_without_refresh_tokens() {
    let server = RedisServer::start();
    let url = server.url();
    let (dir, path) = with_file("accounts.toml", FILE);
    let before = fs::read(&path).unwrap();
    let out = credpool(&["accounts", "import", s(&path), "--redis", &url, "--pool", "cli"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("2 account(s) loaded"), "{}", stdout(&out));
    assert!(stdout(&out).contains("1 ban(s) running"), "{}", stdout(&out));
    assert_eq!(fs::read(&path).unwrap(), before, "import never changes the file");
    // Importing again adds nothing and changes nothing.
    let again = credpool(&["accounts", "import", s(&path), "--redis", &url, "--pool", "cli"]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert!(
        stdout(&again).contains("0 account(s) it lacked added"),
        "{}",
        stdout(&again)
    );

    let exported = dir.path().join("exported.toml");
    let out = credpool(&["accounts", "export", "--redis", &url, s(&exported), "--pool", "cli"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(fs::metadata(&exported).unwrap().permissions().mode() & 0o777, 0o600);
    let text = fs::read_to_string(&exported).unwrap();
    assert!(
        text.contains("ya29.FAKE-access") && text.contains("ya29.BOB-SECRET"),
        "the access tokens"
    );
    assert!(
        !text.contains("1//0gFAKE-refresh") && !text.contains("1//0gBOB-REFRESH"),
        "no refresh token"
    );
    assert!(text.contains("alice@example.com") && text.contains("gemini_3_series_banned_until"));
    let listed = credpool(&["accounts", "list", s(&exported)]);
    assert_eq!(listed.status.code(), Some(0), "{}", stderr(&listed));
    assert!(
        stdout(&listed).contains("gemini_3_series until 2099-11-29"),
        "{}",
        stdout(&listed)
    );

    // Export never replaces a file.
    let written = fs::read(&exported).unwrap();
    let out = credpool(&["accounts", "export", "--redis", &url, s(&exported), "--pool", "cli"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("exists"), "{}", stderr(&out));
    assert_eq!(fs::read(&exported).unwrap(), written);
}

#[test]
fn import_refuses_a_bad_file_or_url_and_leaves_redis_untouched() {
    let server = RedisServer::start();
    let url = server.url();
    let (dir, path) = with_file("accounts.toml", "[[accounts]]\naccess_token = 3\n");
    let out = credpool(&["accounts", "import", s(&path), "--redis", &url]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("accounts.toml:2:"), "{}", stderr(&out));
    // Nothing reached Redis: an export finds no account.
    let exported = dir.path().join("out.toml");
    let out = credpool(&["accounts", "export", "--redis", &url, s(&exported)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("holds no account"), "{}", stderr(&out));
    assert!(!exported.exists());
    // A URL that is not a Redis URL, and a pool name that cannot be a hash tag.
    let (_good_dir, good) = with_file("accounts.toml", FILE);
    let out = credpool(&["accounts", "import", s(&good), "--redis", "http://127.0.0.1:1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("expected a URL of the form redis://"),
        "{}",
        stderr(&out)
    );
    let out = credpool(&["accounts", "import", s(&good), "--redis", &url, "--pool", "a{b}"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("hash tag"), "{}", stderr(&out));
}
