//! Helpers shared by the report tests: scenario files in a temp folder, running the `credpool`
//! binary with a time limit, and reading an output folder back.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A small open-load scenario: `requests` arrivals at a high rate with zero costs, so it runs in
/// virtual time as fast as the simulator goes.
pub fn open_load(name: &str, requests: u64, seed: u64) -> String {
    format!(
        r#"name = "{name}"
description = "open load of {requests} requests, zero costs"
seed = {seed}
mode = "virtual"
strategies = ["global_mutex"]

[pool]
credentials = 3
store = "group_commit"
record_outcomes = false

[load]
model = "open"
rate = 1000000
arrival = "poisson"
requests = {requests}

[upstream]
api_latency = "0ms"
refresh_latency = "0ms"
"#
    )
}

/// Writes `text` as `dir/file` and returns the path.
pub fn write_scenario(dir: &Path, file: &str, text: &str) -> PathBuf {
    let path = dir.join(file);
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs the credpool binary with `args` in `cwd`, killing it after `limit`.
pub fn credpool(cwd: &Path, args: &[&str], limit: Duration) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_credpool"))
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the credpool binary starts");
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "credpool {args:?} took more than {limit:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs credpool and insists on exit code `code`.
pub fn credpool_ok(cwd: &Path, args: &[&str], code: i32) -> Output {
    let out = credpool(cwd, args, Duration::from_secs(60));
    assert_eq!(
        out.status.code(),
        Some(code),
        "credpool {args:?}\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}
