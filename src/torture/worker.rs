//! One writer process of a torture run (`credpool store-worker --torture`, started by the
//! supervisor, never by people).
//!
//! It applies the updates it is given (by number, see [`super::trace`]) through the store mode it
//! is given, `concurrency` at a time, and reports on standard output, one line per event:
//!
//! - `B i`: update `i` is about to be handed to the store;
//! - `A i`: the store returned `Ok` for update `i` (the acknowledgement);
//! - `E i <message>`: the store returned an error for update `i` (it is not retried);
//! - `D`: every update given was handled; the process exits 0 right after.
//!
//! An ack is written only after the store returned, as one `write` of a short line to a pipe: the
//! kernel keeps it even if the process is killed the next instant, so the supervisor never misses
//! an acknowledgement, and never sees one for an update the store had not finished. A process
//! killed between the store's rename and its ack leaves an update on disk that nobody
//! acknowledged; that is not a loss, and the supervisor counts it apart.

use super::trace::Layout;
use crate::costs::Costs;
use crate::store::file_backend::FileBackend;
use crate::store::{self, StoreMode};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

/// What one worker process does.
#[derive(Clone, Debug)]
pub struct WorkerSpec {
    pub mode: StoreMode,
    pub file: PathBuf,
    pub worker: u64,
    /// Updates per worker in the whole run (decides the layout).
    pub updates: u64,
    /// The updates this process must do: all of them at first, the unacknowledged rest after a
    /// restart.
    pub indices: Vec<u64>,
    pub concurrency: usize,
}

/// Writes one protocol line as a single `write`, flushed at once. A closed pipe (the supervisor
/// gone) is ignored: the worker finishes its updates, which is harmless.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(format!("{line}\n").as_bytes());
    let _ = out.flush();
}

/// Runs the worker to completion.
pub async fn run(spec: WorkerSpec) {
    let layout = Layout::new(spec.updates);
    let store = store::open(spec.mode, Arc::new(FileBackend::new(&spec.file)), Costs::default());
    let gate = Arc::new(tokio::sync::Semaphore::new(spec.concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for i in spec.indices {
        let (store, gate) = (store.clone(), gate.clone());
        let (id, _) = layout.target(spec.worker, i);
        let change = layout.change(i);
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await;
            say(&format!("B {i}"));
            match store.update(&id, change).await {
                Ok(()) => say(&format!("A {i}")),
                // Errors carry paths and positions, never tokens; one line each.
                Err(e) => say(&format!("E {i} {}", e.to_string().replace('\n', " "))),
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    say("D");
}

/// `0-3,7,9-12`: a compact form of a sorted list of update numbers for the command line.
pub fn encode_ranges(indices: &[u64]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < indices.len() {
        let start = indices[i];
        let mut end = start;
        while i + 1 < indices.len() && indices[i + 1] == end + 1 {
            i += 1;
            end = indices[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    parts.join(",")
}

/// The inverse of [`encode_ranges`].
pub fn decode_ranges(text: &str) -> Result<Vec<u64>, String> {
    let mut out = Vec::new();
    for part in text.split(',').filter(|p| !p.is_empty()) {
        let bad = || format!("{part:?} is not an update number or a range such as 3-7");
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u64, u64) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
                if b < a {
                    return Err(bad());
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().map_err(|_| bad())?),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_round_trip() {
        let v = vec![0, 1, 2, 3, 7, 9, 10, 11, 12, 20];
        assert_eq!(encode_ranges(&v), "0-3,7,9-12,20");
        assert_eq!(decode_ranges(&encode_ranges(&v)).unwrap(), v);
        assert_eq!(decode_ranges("").unwrap(), Vec::<u64>::new());
        assert!(decode_ranges("5-2").is_err());
        assert!(decode_ranges("x").is_err());
    }
}
