//! Hostile and broken input, through the real binary: one test per row of the table in
//! docs/reliability.md ("Hostile and broken input").
//!
//! Every bad scenario file is given to `credpool check` and `credpool run`; every bad accounts
//! file to `credpool check`, `credpool accounts list`, `accounts disable` and `accounts enable`.
//! Each command must exit 2 with a message that names the file (with line and column where the
//! problem has a position) and says what was expected, and must leave the directory exactly as it
//! was: the file byte-for-byte, and no lock, backup or temp file created beside it.
//!
//! "No permission": the tests run as root on CI, and root reads a mode-000 file anyway. So when
//! the effective uid is 0 the commands are run as user `nobody` (uid 65534, through
//! `CommandExt::uid`), for whom mode 000 does deny the read: the real permission error path, not a
//! simulation. Otherwise they run as the current user. The test prints which.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SCENARIO: &str = r#"name = "hostile"
[pool]
credentials = 3
[load]
model = "burst"
requests = 10
"#;

const ACCOUNTS: &str = r#"[[accounts]]
email = "a@example.com"
access_token = "ya29.HOSTILE-access"
refresh_token = "1//0gHOSTILE-refresh"
"#;

/// What a bad file is, and what every command must say about it.
struct Case {
    /// The file's content; `None` for cases that build something else (a directory, a big file).
    text: Option<Vec<u8>>,
    /// `line:column` the message must carry, when the problem has a position.
    position: Option<(usize, usize)>,
    /// The message must contain one of these (what was wrong / what was expected).
    says: &'static [&'static str],
}

fn case(text: &str, position: Option<(usize, usize)>, says: &'static [&'static str]) -> Case {
    Case {
        text: Some(text.as_bytes().to_vec()),
        position,
        says,
    }
}

/// A snapshot of a directory: every entry's name, and each file's bytes (or, for files over
/// 1 MiB, its length, mtime and allocated blocks: a sparse file that is read or refused keeps
/// all three, and any write would change them).
fn snapshot(dir: &Path) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let meta = fs::symlink_metadata(e.path()).unwrap();
            let content = if meta.is_dir() {
                "dir".to_string()
            } else if meta.len() > 1 << 20 {
                format!(
                    "len {} mtime {} blocks {}",
                    meta.len(),
                    meta.mtime_nsec(),
                    meta.blocks()
                )
            } else {
                format!("{:?} mode {:o}", fs::read(e.path()).unwrap(), meta.mode())
            };
            (e.file_name().to_string_lossy().into_owned(), content)
        })
        .collect();
    out.sort();
    out
}

fn euid_is_root() -> bool {
    // /proc/self belongs to the process's effective uid.
    fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

/// Runs `credpool <args> <path> <after...>`; with `as_nobody`, that copy of the binary as user
/// `nobody` (see [`NobodysBinary`]).
fn credpool_with(args: &[&str], path: &Path, after: &[&str], as_nobody: Option<&NobodysBinary>) -> Output {
    let mut cmd = match as_nobody {
        Some(binary) => {
            let mut cmd = Command::new(&binary.path);
            cmd.uid(65534).gid(65534);
            cmd
        }
        None => Command::new(env!("CARGO_BIN_EXE_credpool")),
    };
    cmd.args(args).arg(path).args(after);
    cmd.output().unwrap()
}

/// The binary where `nobody` may execute it. The checkout may sit in a directory only root can
/// enter (CI's does), where `nobody` cannot reach `target/` at all: a hard link (or, across file
/// systems, a copy) in a temporary directory anyone may enter, removed with it.
struct NobodysBinary {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl NobodysBinary {
    fn new() -> NobodysBinary {
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.path().join("credpool");
        if fs::hard_link(env!("CARGO_BIN_EXE_credpool"), &path).is_err() {
            fs::copy(env!("CARGO_BIN_EXE_credpool"), &path).unwrap();
        }
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        NobodysBinary { _dir: dir, path }
    }
}

/// Runs `credpool <args> <path>`, as `nobody` when asked.
fn credpool(args: &[&str], path: &Path, as_nobody: Option<&NobodysBinary>) -> Output {
    credpool_with(args, path, &[], as_nobody)
}

/// Runs every command relevant to `kind` on `path` and checks exit code, message and directory.
fn refuse_everywhere(kind: Kind, name: &str, path: &Path, c: &Case, as_nobody: Option<&NobodysBinary>) {
    let dir = path.parent().unwrap();
    let out = dir.join("out");
    let out_arg = out.display().to_string();
    let commands: Vec<Vec<&str>> = match kind {
        Kind::Scenario => vec![vec!["check"], vec!["run", "--quiet", "--out", &out_arg]],
        Kind::Accounts => vec![
            vec!["check"],
            vec!["accounts", "list"],
            vec!["accounts", "disable"],
            vec!["accounts", "enable"],
        ],
    };
    for args in commands {
        let before = snapshot(dir);
        // `accounts disable FILE ID`: the id goes after the file.
        let output = if args[0] == "accounts" && args[1] != "list" {
            credpool_with(&args, path, &["a@example.com"], as_nobody)
        } else {
            credpool(&args, path, as_nobody)
        };
        let stderr = String::from_utf8_lossy(&output.stderr);
        let what = format!("{kind:?} {name}: credpool {args:?}: {stderr}");
        assert_eq!(output.status.code(), Some(2), "{what}");
        let shown = path.display().to_string();
        assert!(stderr.contains(&shown), "the message must name the file: {what}");
        if let Some((line, column)) = c.position {
            assert!(
                stderr.contains(&format!("{shown}:{line}:{column}: ")),
                "expected position {line}:{column}: {what}"
            );
        }
        assert!(
            c.says.iter().any(|s| stderr.contains(s)),
            "expected one of {:?}: {what}",
            c.says
        );
        assert!(
            ["expected", "must"].iter().any(|w| stderr.contains(w)),
            "the message must say what was expected: {what}"
        );
        assert!(!out.exists(), "run created its output folder for a bad file: {what}");
        assert_eq!(snapshot(dir), before, "the directory changed: {what}");
        // No token of the file ever reaches a message.
        assert!(!stderr.contains("HOSTILE"), "{what}");
    }
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Scenario,
    Accounts,
}

/// Writes the case's file in a fresh directory and refuses it everywhere.
fn check_row(kind: Kind, name: &str, c: Case) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("{name}.toml"));
    fs::write(&path, c.text.as_deref().unwrap()).unwrap();
    refuse_everywhere(kind, name, &path, &c, None);
}

/// Bytes that are not UTF-8 (a deterministic "binary garbage" file).
fn garbage(prefix: &str) -> Vec<u8> {
    let mut bytes = prefix.as_bytes().to_vec();
    bytes.extend((0..512u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 | 0x80));
    bytes
}

// ---- scenario files ----

#[test]
fn scenario_malformed_toml() {
    check_row(
        Kind::Scenario,
        "malformed",
        case(
            "name = \"x\"\n[pool\ncredentials = 3\n",
            Some((2, 6)),
            &["invalid table header"],
        ),
    );
}

#[test]
fn scenario_truncated_file() {
    let cut = &SCENARIO[..SCENARIO.find("burst").unwrap() + 2];
    check_row(
        Kind::Scenario,
        "truncated",
        case(cut, Some((5, 12)), &["invalid basic string"]),
    );
}

#[test]
fn scenario_empty_file() {
    check_row(Kind::Scenario, "empty", case("", None, &["is empty"]));
    check_row(Kind::Scenario, "blank", case("\n  \n", None, &["is empty"]));
}

#[test]
fn scenario_binary_garbage() {
    let c = Case {
        text: Some(garbage("")),
        position: Some((1, 1)),
        says: &["not valid UTF-8"],
    };
    check_row(Kind::Scenario, "garbage", c);
}

#[test]
fn scenario_wrong_types() {
    check_row(
        Kind::Scenario,
        "wrong-type",
        case(
            &SCENARIO.replace("credentials = 3", "credentials = \"three\""),
            Some((3, 15)),
            &["invalid type: string \"three\", expected"],
        ),
    );
}

#[test]
fn scenario_unknown_keys() {
    check_row(
        Kind::Scenario,
        "unknown-key",
        case(
            &SCENARIO.replace("requests = 10", "requests = 10\nrequets = 5"),
            Some((7, 1)),
            &["unknown field `requets`"],
        ),
    );
}

#[test]
fn scenario_duplicate_keys() {
    check_row(
        Kind::Scenario,
        "duplicate-key",
        case(
            &SCENARIO.replace("credentials = 3", "credentials = 3\ncredentials = 4"),
            Some((4, 1)),
            &["duplicate key"],
        ),
    );
}

#[test]
fn scenario_negative_or_absurd_durations() {
    let with = |d: &str| SCENARIO.replace("credentials = 3", &format!("credentials = 3\ntoken_lifetime = \"{d}\""));
    check_row(
        Kind::Scenario,
        "negative-duration",
        case(&with("-5s"), Some((4, 18)), &["negative duration"]),
    );
    check_row(
        Kind::Scenario,
        "absurd-duration",
        case(&with("400d"), Some((4, 18)), &["longer than one year"]),
    );
    check_row(
        Kind::Scenario,
        "unitless-duration",
        case(&with("30"), Some((4, 18)), &["expected a duration"]),
    );
}

#[test]
fn scenario_zero_or_absurd_credentials() {
    check_row(
        Kind::Scenario,
        "zero-credentials",
        case(
            &SCENARIO.replace("credentials = 3", "credentials = 0"),
            Some((3, 15)),
            &["at least 1"],
        ),
    );
    check_row(
        Kind::Scenario,
        "absurd-credentials",
        case(
            &SCENARIO.replace("credentials = 3", "credentials = 10000000000"),
            Some((3, 15)),
            &["absurd"],
        ),
    );
}

// ---- accounts files ----

#[test]
fn accounts_malformed_toml() {
    check_row(
        Kind::Accounts,
        "malformed",
        case(
            &format!("{ACCOUNTS}[[accounts]\nemail = \"b@example.com\"\n"),
            Some((5, 11)),
            &["invalid table header"],
        ),
    );
}

#[test]
fn accounts_truncated_file() {
    // Cut inside the access token: the message must locate it without quoting the token.
    let cut = &ACCOUNTS[..ACCOUNTS.find("HOSTILE-access").unwrap() + 7];
    check_row(
        Kind::Accounts,
        "truncated",
        case(cut, Some((3, 29)), &["invalid basic string"]),
    );
}

#[test]
fn accounts_empty_file() {
    // `check` cannot tell an empty accounts file from an empty scenario; the accounts commands
    // know what they expected.
    check_row(Kind::Accounts, "empty", case("", None, &["is empty", "no accounts"]));
}

#[test]
fn accounts_binary_garbage() {
    let c = Case {
        text: Some(garbage(ACCOUNTS)),
        position: Some((5, 1)),
        says: &["not valid UTF-8"],
    };
    check_row(Kind::Accounts, "garbage", c);
}

#[test]
fn accounts_wrong_types() {
    check_row(
        Kind::Accounts,
        "wrong-type",
        case(
            &format!("{ACCOUNTS}disabled = \"no\"\n"),
            Some((5, 12)),
            &["`disabled` must be true or false"],
        ),
    );
    check_row(
        Kind::Accounts,
        "not-a-table",
        case(
            "accounts = 3\n",
            Some((1, 12)),
            &["must be a list of [[accounts]] tables"],
        ),
    );
}

#[test]
fn accounts_duplicate_ids() {
    check_row(
        Kind::Accounts,
        "duplicate-id",
        case(
            &format!("{ACCOUNTS}\n[[accounts]]\nemail = \"a@example.com\"\n"),
            Some((6, 1)),
            &["duplicate account \"a@example.com\""],
        ),
    );
}

#[test]
fn accounts_negative_or_absurd_durations() {
    check_row(
        Kind::Accounts,
        "negative-expiry",
        case(&format!("{ACCOUNTS}expires_in = -5\n"), Some((5, 14)), &["at least 0"]),
    );
    check_row(
        Kind::Accounts,
        "absurd-expiry",
        case(
            &format!("{ACCOUNTS}expires_in = 99999999999\n"),
            Some((5, 14)),
            &["absurd"],
        ),
    );
    check_row(
        Kind::Accounts,
        "bad-ban-time",
        case(
            &format!("{ACCOUNTS}claude_series_banned_until = \"tomorrow\"\n"),
            Some((5, 30)),
            &["expected an RFC 3339 time"],
        ),
    );
}

#[test]
fn accounts_zero_credentials() {
    check_row(
        Kind::Accounts,
        "zero-accounts",
        case("accounts = []\n", Some((1, 12)), &["no accounts"]),
    );
}

#[test]
fn accounts_unknown_keys_are_kept_by_design() {
    // Not refused: real files carry fields of other proxy versions, and a store that dropped
    // them would lose data. `check` accepts the file and `disable` keeps the unknown key's text.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("accounts.toml");
    let text = format!("{ACCOUNTS}mystery_field = {{ nested = [1, 2] }} # kept\n");
    fs::write(&path, &text).unwrap();
    let out = credpool(&["check"], &path, None);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_credpool"));
    let out = cmd
        .args(["accounts", "disable"])
        .arg(&path)
        .arg("a@example.com")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(fs::read_to_string(&path).unwrap(), format!("{text}disabled = true\n"));
}

// ---- both kinds ----

#[test]
fn a_100_mb_file_is_refused_by_its_size_without_being_read() {
    for kind in [Kind::Scenario, Kind::Accounts] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.toml");
        // Sparse: 100 MB long, no block written, created in microseconds.
        let f = fs::File::create(&path).unwrap();
        f.set_len(100 * 1000 * 1000).unwrap();
        drop(f);
        let c = Case {
            text: None,
            position: None,
            says: &["larger than the 16 MiB limit"],
        };
        refuse_everywhere(kind, "big", &path, &c, None);
        // Still sparse: nothing read it into a buffer and wrote it back.
        assert_eq!(fs::metadata(&path).unwrap().blocks(), 0);
    }
}

#[test]
fn a_path_that_is_a_directory() {
    for kind in [Kind::Scenario, Kind::Accounts] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dir.toml");
        fs::create_dir(&path).unwrap();
        // `run` accepts a folder of scenarios, so an empty folder is refused for having none.
        let c = Case {
            text: None,
            position: None,
            says: &["is a directory", "contains no *.toml scenario files"],
        };
        refuse_everywhere(kind, "dir", &path, &c, None);
    }
}

#[test]
fn a_missing_file() {
    for kind in [Kind::Scenario, Kind::Accounts] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing.toml");
        let dir_before = snapshot(dir.path());
        for args in [&["check"][..], &["accounts", "list"]] {
            let out = credpool(args, &path, None);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{kind:?} {args:?}: {stderr}");
            assert!(
                stderr.contains(&format!("{}: no such file", path.display())),
                "{stderr}"
            );
        }
        assert_eq!(snapshot(dir.path()), dir_before);
        assert!(!path.exists());
    }
}

#[test]
fn no_permission_to_read() {
    let nobodys_binary = euid_is_root().then(NobodysBinary::new);
    if nobodys_binary.is_some() {
        eprintln!(
            "running as root, which reads a mode-000 file anyway: the commands run as user nobody (uid 65534), for whom mode 000 denies the read"
        );
    }
    for (kind, text) in [(Kind::Scenario, SCENARIO), (Kind::Accounts, ACCOUNTS)] {
        let dir = tempfile::tempdir().unwrap();
        // The directory is traversable by anyone; only the file's own mode denies the read.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let path: PathBuf = dir.path().join("secret.toml");
        fs::write(&path, text).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o000)).unwrap();
        let c = Case {
            text: None,
            position: None,
            says: &["permission denied"],
        };
        // The scenario run writes its report into the temp dir, which nobody may not do either;
        // the read fails first, which is what is checked.
        refuse_everywhere(kind, "secret", &path, &c, nobodys_binary.as_ref());
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), text);
    }
}

#[test]
fn a_device_is_refused_without_being_read() {
    // /dev/zero says it is 0 bytes long and never ends: a reader that trusted the length, or read
    // to the end, would hang or run out of memory. The test gives each command 20 s before it
    // calls that a hang.
    let zero = Path::new("/dev/zero");
    for args in [
        &["check"][..],
        &["run", "--quiet", "--out", "/nonexistent/out"],
        &["accounts", "list"],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_credpool"))
            .args(args)
            .arg(zero)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while child.try_wait().unwrap().is_none() {
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("credpool {args:?} /dev/zero hung");
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("/dev/zero: is not a regular file") && stderr.contains("expected a TOML file"),
            "{args:?}: {stderr}"
        );
    }
}
