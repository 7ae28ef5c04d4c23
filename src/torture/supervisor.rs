//! The supervisor: starts the writer processes, kills them at random moments, restarts them with
//! the updates they still owe, and collects every acknowledgement.
//!
//! Each writer is the real `credpool` binary re-executing itself as a hidden worker
//! ([`super::worker`]). One thread per writer process reads its protocol lines into that worker's
//! [`Ledger`]; the main loop only reaps, kills and restarts. A kill is a real `SIGKILL`: the
//! process gets no chance to finish a write, release a lock or delete a temp file, exactly like a
//! crash or an OOM kill. Kill moments and victims are drawn from the seed; what a kill interrupts
//! still depends on the machine's timing, so two runs with one seed kill at the same intervals but
//! not at the same instructions.

use super::worker::encode_ranges;
use super::{Config, Progress};
use crate::store::StoreMode;
use crate::upstream::draw::{self, Stream};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What one worker has reported, across all its processes.
#[derive(Debug)]
pub struct Ledger {
    /// Per update: acknowledged.
    pub acked: Vec<bool>,
    /// Per update: the store returned an error (not retried).
    pub failed: Vec<bool>,
    /// Updates handed to the store and not yet answered, in the current process.
    pub in_flight: usize,
    /// The current process said `D`.
    pub done: bool,
    /// The first store error, for the report.
    pub first_error: Option<String>,
}

impl Ledger {
    fn new(updates: u64) -> Ledger {
        Ledger {
            acked: vec![false; updates as usize],
            failed: vec![false; updates as usize],
            in_flight: 0,
            done: false,
            first_error: None,
        }
    }

    /// Applies one protocol line; unknown lines are ignored.
    fn record(&mut self, line: &str) {
        let mut parts = line.splitn(3, ' ');
        let tag = parts.next().unwrap_or("");
        let index = parts.next().and_then(|i| i.parse::<usize>().ok());
        match (tag, index) {
            ("B", Some(_)) => self.in_flight += 1,
            ("A", Some(i)) if i < self.acked.len() => {
                self.acked[i] = true;
                self.in_flight = self.in_flight.saturating_sub(1);
            }
            ("E", Some(i)) if i < self.failed.len() => {
                self.failed[i] = true;
                self.in_flight = self.in_flight.saturating_sub(1);
                if self.first_error.is_none() {
                    self.first_error = Some(parts.next().unwrap_or("").to_string());
                }
            }
            ("D", _) => self.done = true,
            _ => {}
        }
    }

    /// Updates neither acknowledged nor failed: what a restarted process must do.
    fn owed(&self) -> Vec<u64> {
        (0..self.acked.len())
            .filter(|&i| !self.acked[i] && !self.failed[i])
            .map(|i| i as u64)
            .collect()
    }
}

/// One running writer process.
struct Process {
    child: Child,
    lines: JoinHandle<()>,
    stderr: JoinHandle<String>,
}

impl Process {
    /// Waits for the output threads (the pipes close when the process is gone).
    fn finish(self) -> String {
        let _ = self.lines.join();
        self.stderr.join().unwrap_or_default()
    }
}

/// A worker: its ledger and its current process, if any.
struct Worker {
    ledger: Arc<Mutex<Ledger>>,
    process: Option<Process>,
    finished: bool,
}

/// Kills every process still running when the supervisor leaves early (an error, a panic).
struct Workers(Vec<Worker>);

impl Drop for Workers {
    fn drop(&mut self) {
        for w in &mut self.0 {
            if let Some(mut p) = w.process.take() {
                let _ = p.child.kill();
                let _ = p.child.wait();
            }
        }
    }
}

fn spawn(config: &Config, worker: u64, indices: &[u64], ledger: &Arc<Mutex<Ledger>>) -> Result<Process, String> {
    let mut child = Command::new(&config.exe)
        .arg("store-worker")
        .arg("--torture")
        .args(["--mode", config.mode.name(), "--file"])
        .arg(&config.file)
        .args([
            "--worker",
            &worker.to_string(),
            "--updates",
            &config.updates.to_string(),
        ])
        .args(["--concurrency", &config.concurrency.to_string()])
        .args(["--indices", &encode_ranges(indices)])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", config.exe.display()))?;
    let stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    {
        let mut l = ledger.lock().expect("ledger");
        l.in_flight = 0;
        l.done = false;
    }
    let ledger = ledger.clone();
    let lines = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            ledger.lock().expect("ledger").record(&line);
        }
    });
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    Ok(Process { child, lines, stderr })
}

/// Whether `status` is a SIGKILL.
fn was_killed(status: &ExitStatus) -> bool {
    status.signal() == Some(9)
}

/// Runs the writers to the end; returns what they reported.
pub fn supervise(config: &Config) -> Result<(Vec<Ledger>, Progress), String> {
    let started = Instant::now();
    let mut progress = Progress::default();
    let mut workers = Workers(Vec::new());
    let all: Vec<u64> = (0..config.updates).collect();
    for w in 0..config.processes {
        let ledger = Arc::new(Mutex::new(Ledger::new(config.updates)));
        let process = spawn(config, w, &all, &ledger)?;
        workers.0.push(Worker {
            ledger,
            process: Some(process),
            finished: false,
        });
    }

    let mut draws = 0u64;
    let next_delay = |draws: &mut u64| {
        *draws += 1;
        config
            .kill_interval
            .mul_f64(2.0 * draw::uniform(config.seed, Stream::Torture, *draws))
    };
    let mut next_kill = Instant::now() + next_delay(&mut draws);

    loop {
        if started.elapsed() > config.timeout {
            progress.timed_out = true;
            break;
        }
        // Reap processes that ended by themselves.
        for (w, worker) in workers.0.iter_mut().enumerate() {
            let Some(p) = worker.process.as_mut() else { continue };
            let Ok(Some(status)) = p.child.try_wait() else { continue };
            let p = worker.process.take().expect("checked");
            let stderr = p.finish();
            let done = worker.ledger.lock().expect("ledger").done;
            if !(status.success() && done) {
                progress.abnormal_exits += 1;
                progress.first_abnormal.get_or_insert_with(|| {
                    format!("worker {w} exited with {status} without finishing: {}", stderr.trim())
                });
            }
            worker.finished = true;
        }
        if workers.0.iter().all(|w| w.finished) {
            break;
        }
        if config.kill && progress.kills < config.max_kills && Instant::now() >= next_kill {
            let live: Vec<usize> = (0..workers.0.len())
                .filter(|&w| workers.0[w].process.is_some())
                .collect();
            if !live.is_empty() {
                draws += 1;
                let victim =
                    live[draw::index(config.seed, Stream::Torture, draws | 1 << 63, live.len() as u64) as usize];
                kill_and_restart(config, &mut workers.0[victim], victim as u64, &mut progress)?;
            }
            next_kill = Instant::now() + next_delay(&mut draws);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut ledgers = Vec::new();
    for worker in std::mem::take(&mut workers.0) {
        if let Some(mut p) = worker.process {
            let _ = p.child.kill();
            let _ = p.child.wait();
            p.finish();
        }
        let ledger = Arc::try_unwrap(worker.ledger)
            .map(|m| m.into_inner().expect("ledger"))
            .map_err(|_| "a worker's output thread outlived its process".to_string())?;
        ledgers.push(ledger);
    }
    Ok((ledgers, progress))
}

/// Kills `worker`'s process with SIGKILL and starts a new one with the updates it still owes.
fn kill_and_restart(config: &Config, worker: &mut Worker, w: u64, progress: &mut Progress) -> Result<(), String> {
    let Some(mut p) = worker.process.take() else {
        return Ok(());
    };
    let in_flight = worker.ledger.lock().expect("ledger").in_flight > 0;
    let _ = p.child.kill();
    let status = p.child.wait().map_err(|e| format!("waiting for worker {w}: {e}"))?;
    p.finish();
    if !was_killed(&status) {
        // It finished on its own just before the kill: the next reap sees it as finished.
        let done = worker.ledger.lock().expect("ledger").done;
        if !(status.success() && done) {
            progress.abnormal_exits += 1;
        }
        worker.finished = true;
        return Ok(());
    }
    progress.kills += 1;
    if in_flight {
        progress.kills_mid_update += 1;
    }
    let owed = worker.ledger.lock().expect("ledger").owed();
    if owed.is_empty() {
        worker.finished = true;
    } else {
        progress.restarts += 1;
        worker.process = Some(spawn(config, w, &owed, &worker.ledger)?);
    }
    Ok(())
}

/// Whether a mode is expected to survive a torture run (for the verdict's wording only).
pub fn is_crash_safe(mode: StoreMode) -> bool {
    matches!(mode, StoreMode::Durable | StoreMode::GroupCommit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ledger_follows_the_protocol_and_owes_what_was_neither_acked_nor_failed() {
        let mut l = Ledger::new(5);
        for line in [
            "B 0",
            "B 1",
            "A 0",
            "B 2",
            "E 2 no account x in the file",
            "B 3",
            "garbage",
            "A 99",
        ] {
            l.record(line);
        }
        assert_eq!(l.acked, [true, false, false, false, false]);
        assert_eq!(l.failed, [false, false, true, false, false]);
        assert_eq!(l.in_flight, 2, "1 and 3 were handed to the store and not answered");
        assert_eq!(l.first_error.as_deref(), Some("no account x in the file"));
        assert!(!l.done);
        assert_eq!(l.owed(), [1, 3, 4]);
        l.record("D");
        assert!(l.done);
    }
}
