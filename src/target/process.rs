//! A target's processes: started in a process group of their own, polled until ready, stopped
//! with SIGTERM and then SIGKILL, and killed on drop, so no run leaves one behind.
//!
//! A proxy under test is often a shell script or a Python launcher that forks workers, so the
//! child alone is not the target: the whole group is signalled. Its stderr and stdout are read
//! into a bounded tail (the last [`TAIL_BYTES`]), which is what an error message shows when the
//! target never becomes ready or exits early; the full output goes to a log file if one is given.

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

/// How much of a target's output is kept for error messages.
pub const TAIL_BYTES: usize = 4096;

/// How a target is started: argv, environment and working directory, placeholders already
/// expanded.
#[derive(Clone, Debug)]
pub struct Launch {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub workdir: PathBuf,
    /// Where the target's whole output goes (besides the tail). `None`: only the tail is kept.
    pub log: Option<PathBuf>,
}

/// Why a target could not be started, made ready or stopped.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("cannot start {program:?}: {source}")]
    Spawn { program: String, source: std::io::Error },
    #[error("the target exited ({status}) before it was ready; its output ended with:\n{tail}")]
    ExitedEarly { status: ExitStatus, tail: String },
    #[error("the target was not ready after {waited:?} ({url} never answered 2xx; last: {last}); its output ended with:\n{tail}")]
    NotReady {
        waited: Duration,
        url: String,
        last: String,
        tail: String,
    },
    #[error("the target's setup command {argv:?} failed ({status}); its output ended with:\n{tail}")]
    SetupFailed {
        argv: Vec<String>,
        status: String,
        tail: String,
    },
}

/// The last [`TAIL_BYTES`] of a process's output, shared with the reader tasks.
#[derive(Clone, Default)]
struct Tail(Arc<Mutex<VecDeque<u8>>>);

impl Tail {
    fn push(&self, bytes: &[u8]) {
        let mut tail = self.0.lock().unwrap_or_else(|p| p.into_inner());
        tail.extend(bytes);
        let excess = tail.len().saturating_sub(TAIL_BYTES);
        tail.drain(..excess);
    }

    fn text(&self) -> String {
        let tail = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let (a, b) = tail.as_slices();
        String::from_utf8_lossy(&[a, b].concat()).trim_end().to_string()
    }
}

/// A running target. Dropping it kills its process group.
pub struct TargetProcess {
    child: tokio::process::Child,
    /// The group's id (the child's pid: it leads its own group).
    group: i32,
    tail: Tail,
    /// Set once the group has been reaped, so drop does not signal a recycled id.
    reaped: bool,
}

impl TargetProcess {
    /// Starts `launch` in a new process group, with stdin closed and its output captured.
    pub fn start(launch: &Launch) -> Result<TargetProcess, TargetError> {
        let (program, args) = launch.argv.split_first().ok_or_else(|| TargetError::Spawn {
            program: String::new(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty command"),
        })?;
        let mut command = tokio::process::Command::new(program);
        command
            .args(args)
            .envs(launch.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&launch.workdir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|source| TargetError::Spawn {
            program: program.clone(),
            source,
        })?;
        let group = child.id().map(|pid| pid as i32).unwrap_or(0);
        let tail = Tail::default();
        let log = launch
            .log
            .as_ref()
            .and_then(|path| open_log(path).map(|f| Arc::new(Mutex::new(f))));
        if let Some(out) = child.stdout.take() {
            tokio::spawn(copy_output(out, tail.clone(), log.clone()));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(copy_output(err, tail.clone(), log));
        }
        Ok(TargetProcess {
            child,
            group,
            tail,
            reaped: false,
        })
    }

    /// The process group's id.
    pub fn group(&self) -> i32 {
        self.group
    }

    /// The tail of the target's output so far.
    pub fn output_tail(&self) -> String {
        self.tail.text()
    }

    /// Polls `url` with GET until it answers 2xx, the target exits, or `timeout` passes.
    pub async fn wait_ready(&mut self, url: &str, timeout: Duration) -> Result<Duration, TargetError> {
        let started = Instant::now();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(500))
            .no_proxy()
            .build()
            .expect("a plain HTTP client builds");
        loop {
            if let Some(status) = self.child.try_wait().ok().flatten() {
                self.reaped = true;
                tokio::time::sleep(Duration::from_millis(20)).await; // let the readers drain
                return Err(TargetError::ExitedEarly {
                    status,
                    tail: self.tail.text(),
                });
            }
            let last = match client.get(url).send().await {
                Ok(r) if r.status().is_success() => return Ok(started.elapsed()),
                Ok(r) => format!("HTTP {}", r.status().as_u16()),
                Err(e) if e.is_timeout() => "no answer within 500 ms".into(),
                Err(e) if e.is_connect() => "cannot connect (nothing listening)".into(),
                Err(e) => e.without_url().to_string(),
            };
            if started.elapsed() >= timeout {
                return Err(TargetError::NotReady {
                    waited: timeout,
                    url: url.to_string(),
                    last,
                    tail: self.tail.text(),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether the target is still running (not yet exited).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Stops the target: SIGTERM to its group, then SIGKILL after `grace`. Returns its exit status
    /// and whether it had to be killed.
    pub async fn stop(mut self, grace: Duration) -> (Option<ExitStatus>, bool) {
        if let Ok(Some(status)) = self.child.try_wait() {
            self.reaped = true;
            self.kill_group(libc::SIGKILL); // its children, if the leader left them behind
            return (Some(status), false);
        }
        self.kill_group(libc::SIGTERM);
        let outcome = match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(status) => (status.ok(), false),
            Err(_) => {
                self.kill_group(libc::SIGKILL);
                (self.child.wait().await.ok(), true)
            }
        };
        // The leader is gone; whatever else is left in its group goes with it.
        self.kill_group(libc::SIGKILL);
        self.reaped = true;
        outcome
    }

    fn kill_group(&self, signal: i32) {
        if self.group > 0 {
            // SAFETY: killpg only sends a signal; a group that no longer exists yields ESRCH.
            unsafe {
                libc::killpg(self.group, signal);
            }
        }
    }
}

impl Drop for TargetProcess {
    fn drop(&mut self) {
        if !self.reaped || self.child.try_wait().ok().flatten().is_none() {
            self.kill_group(libc::SIGKILL);
        }
    }
}

/// Runs a target's `setup` command to completion (e.g. uploading credentials through its API),
/// bounded by `timeout`, its group killed if it overruns.
pub async fn run_setup(launch: &Launch, timeout: Duration) -> Result<(), TargetError> {
    let mut process = TargetProcess::start(launch)?;
    let status = tokio::time::timeout(timeout, process.child.wait()).await;
    tokio::time::sleep(Duration::from_millis(20)).await; // let the readers drain
    let failure = match status {
        Ok(Ok(status)) if status.success() => {
            process.reaped = true;
            return Ok(());
        }
        Ok(Ok(status)) => status.to_string(),
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("still running after {timeout:?}, killed"),
    };
    Err(TargetError::SetupFailed {
        argv: launch.argv.clone(),
        status: failure,
        tail: process.tail.text(),
    })
}

fn open_log(path: &Path) -> Option<std::fs::File> {
    std::fs::OpenOptions::new().create(true).append(true).open(path).ok()
}

async fn copy_output(mut from: impl tokio::io::AsyncRead + Unpin, tail: Tail, log: Option<Arc<Mutex<std::fs::File>>>) {
    let mut buf = [0u8; 4096];
    while let Ok(n @ 1..) = from.read(&mut buf).await {
        tail.push(&buf[..n]);
        if let Some(log) = &log {
            let _ = log.lock().unwrap_or_else(|p| p.into_inner()).write_all(&buf[..n]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launch(argv: &[&str]) -> Launch {
        Launch {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            env: vec![],
            workdir: std::env::temp_dir(),
            log: None,
        }
    }

    fn alive(pid: i32) -> bool {
        // SAFETY: signal 0 only checks that the process exists.
        unsafe { libc::kill(pid, 0) == 0 }
    }

    #[test]
    fn tail_keeps_the_last_bytes() {
        let tail = Tail::default();
        tail.push(&vec![b'a'; TAIL_BYTES]);
        tail.push(b"end");
        let text = tail.text();
        assert_eq!(text.len(), TAIL_BYTES);
        assert!(text.ends_with("aend"));
    }

    #[tokio::test]
    async fn early_exit_is_reported_with_its_output() {
        let mut p = TargetProcess::start(&launch(&[
            "sh",
            "-c",
            "echo 'listen failed: address in use' >&2; exit 3",
        ]))
        .unwrap();
        let err = p
            .wait_ready("http://127.0.0.1:9/healthz", Duration::from_secs(5))
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, TargetError::ExitedEarly { .. }), "{text}");
        assert!(text.contains("listen failed: address in use"), "{text}");
    }

    #[tokio::test]
    async fn never_ready_times_out_and_the_group_is_killed_on_drop() {
        // A launcher that forks a grandchild and never listens: both must be gone after drop.
        let port = crate::target::free_port().unwrap();
        let mut p = TargetProcess::start(&launch(&[
            "sh",
            "-c",
            "sleep 30 & echo child $!; echo starting >&2; wait",
        ]))
        .unwrap();
        let err = p
            .wait_ready(&format!("http://127.0.0.1:{port}/ready"), Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(matches!(err, TargetError::NotReady { .. }), "{err}");
        assert!(err.to_string().contains("starting"), "{err}");
        let grandchild: i32 = p
            .output_tail()
            .lines()
            .find_map(|l| l.strip_prefix("child ").and_then(|n| n.trim().parse().ok()))
            .expect("the launcher printed its child's pid");
        let leader = p.group();
        assert!(alive(grandchild));
        drop(p);
        let deadline = Instant::now() + Duration::from_secs(5);
        while (alive(grandchild) || alive(leader)) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Reaped by init or by tokio's orphan reaper; a zombie still answers kill(0), so check /proc.
        let running = |pid: i32| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| !s.contains(") Z "))
                .unwrap_or(false)
        };
        assert!(!running(grandchild), "the grandchild outlived the target");
        assert!(!running(leader), "the leader outlived the drop");
    }

    #[tokio::test]
    async fn ready_then_stopped_by_sigterm() {
        let port = crate::target::free_port().unwrap();
        let mut p = TargetProcess::start(&launch(&[
            "python3",
            "-m",
            "http.server",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ]))
        .unwrap();
        p.wait_ready(&format!("http://127.0.0.1:{port}/"), Duration::from_secs(10))
            .await
            .unwrap();
        assert!(p.is_running());
        let (status, killed) = p.stop(Duration::from_secs(5)).await;
        assert!(!killed, "python's http.server exits on SIGTERM");
        assert!(status.is_some());
    }

    #[tokio::test]
    async fn a_target_ignoring_sigterm_is_killed_after_the_grace() {
        let p = TargetProcess::start(&launch(&["sh", "-c", "trap '' TERM; sleep 30 & wait; wait"])).unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (_, killed) = p.stop(Duration::from_millis(200)).await;
        assert!(killed);
    }

    #[tokio::test]
    async fn setup_failures_carry_the_output() {
        run_setup(&launch(&["true"]), Duration::from_secs(5)).await.unwrap();
        let err = run_setup(
            &launch(&["sh", "-c", "echo upload refused >&2; exit 1"]),
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("upload refused"), "{err}");
        let slow = run_setup(&launch(&["sleep", "30"]), Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(slow.to_string().contains("killed"), "{slow}");
    }
}
