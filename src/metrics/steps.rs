//! Where each unfinished request is, by named step, so a watchdog can say *where* a run hung.
//!
//! The runner runs every request inside [`StepBoard::scope`]; a strategy marks the step a request
//! has reached with [`enter`] ("waiting for `_operation_lock`", "re-entered
//! `get_valid_credential` after a failed refresh", ...). Outside a scope (a test calling a
//! strategy directly) [`enter`] does nothing, so strategies need no handle on the board.
//!
//! A task-local rather than a field of [`crate::strategy::Env`]: the request a step belongs to is
//! the task running it, and every strategy can mark steps without any interface changing.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;

tokio::task_local! {
    /// The board of the run this task belongs to, and the request it is running.
    static CURRENT: (Arc<StepBoard>, u64);
}

/// The last step each unfinished request reached.
#[derive(Debug, Default)]
pub struct StepBoard {
    /// Request number -> step. Entries are removed when a request finishes; a short sync lock,
    /// taken once per step, never across an await.
    at: crate::sync::Mutex<HashMap<u64, &'static str>>,
}

/// How many unfinished requests were last seen at one step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StuckAt {
    pub step: String,
    pub requests: u64,
}

/// Marks the step the current request has reached (a no-op outside [`StepBoard::scope`]).
pub fn enter(step: &'static str) {
    let _ = CURRENT.try_with(|(board, request)| {
        board.at.lock().insert(*request, step);
    });
}

impl StepBoard {
    /// Runs `fut` as request `request`: the steps it enters are recorded on this board, and
    /// forgotten once it finishes.
    pub async fn scope<F: Future>(self: &Arc<Self>, request: u64, fut: F) -> F::Output {
        let out = CURRENT.scope((self.clone(), request), fut).await;
        self.at.lock().remove(&request);
        out
    }

    /// The steps where unfinished requests are, most crowded first (ties by name).
    pub fn stuck(&self) -> Vec<StuckAt> {
        let mut counts: BTreeMap<&'static str, u64> = BTreeMap::new();
        for step in self.at.lock().values() {
            *counts.entry(step).or_default() += 1;
        }
        let mut out: Vec<StuckAt> = counts
            .into_iter()
            .map(|(step, requests)| StuckAt {
                step: step.to_string(),
                requests,
            })
            .collect();
        out.sort_by(|a, b| b.requests.cmp(&a.requests).then_with(|| a.step.cmp(&b.step)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn steps_are_recorded_per_request_and_forgotten_when_it_finishes() {
        let board = Arc::new(StepBoard::default());
        enter("outside any scope: ignored");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let hung = {
            let board = board.clone();
            tokio::spawn(async move {
                board
                    .scope(7, async {
                        enter("first");
                        enter("waiting forever");
                        let _ = rx.await;
                    })
                    .await
            })
        };
        board.scope(8, async { enter("done soon") }).await;
        tokio::task::yield_now().await;
        assert_eq!(
            board.stuck(),
            vec![StuckAt {
                step: "waiting forever".into(),
                requests: 1
            }]
        );
        tx.send(()).unwrap();
        hung.await.unwrap();
        assert!(board.stuck().is_empty());
    }
}
