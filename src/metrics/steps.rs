//! Where each unfinished request is, by named step, so a watchdog can say *where* a run hung.
//!
//! The runner runs each request of a strategy that marks steps
//! ([`crate::strategy::CredentialManager::MARKS_STEPS`]: only `as_shipped` does) on the board
//! ([`StepBoard::track`]); the strategy marks the step a request has reached with [`enter`]
//! ("waiting for `_operation_lock`", "re-entered `get_valid_credential` after a failed
//! refresh", ...). Outside a scope (a test calling a strategy directly, or a strategy that marks
//! no steps) [`enter`] does nothing, so strategies need no handle on the board.
//!
//! A task-local rather than a field of [`crate::strategy::Env`]: the request a step belongs to is
//! the task running it, and every strategy can mark steps without any interface changing.

use serde::{Deserialize, Serialize};
use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

tokio::task_local! {
    /// The board of the run this task belongs to, and the step its request last entered.
    static CURRENT: Entered;
}

/// What the task-local holds for one request.
struct Entered {
    board: Arc<StepBoard>,
    /// The step this request last entered: a `Cell`, because only the request's own task reads
    /// or writes it (a task-local is never shared between tasks).
    step: Cell<Option<&'static str>>,
}

/// How many unfinished requests were last seen at each step.
///
/// Counts rather than a map from request to step: a request that never enters a step (every
/// request of every strategy but `as_shipped`) costs the board nothing at all, and one that does
/// pays a short scan of a handful of step names instead of hashing its number on every step.
#[derive(Debug, Default)]
pub struct StepBoard {
    /// (step, requests there now); a short sync lock, taken once per step, never across an await.
    /// Entries whose count falls to zero stay (there are only as many as the code has steps).
    at: crate::sync::Mutex<Vec<(&'static str, u64)>>,
}

/// How many unfinished requests were last seen at one step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StuckAt {
    pub step: String,
    pub requests: u64,
}

/// Marks the step the current request has reached (a no-op off the board, see [`StepBoard::track`]).
pub fn enter(step: &'static str) {
    let _ = CURRENT.try_with(|entered| {
        let left = entered.step.replace(Some(step));
        entered.board.moved(left, Some(step));
    });
}

/// The current request is finished: it is no longer at any step.
fn leave() {
    let _ = CURRENT.try_with(|entered| {
        if let Some(left) = entered.step.take() {
            entered.board.moved(Some(left), None);
        }
    });
}

impl StepBoard {
    /// Runs `fut` as one request: on this board when `on_board` (the steps it enters are counted,
    /// and forgotten once it finishes), else as it is, at no cost.
    ///
    /// `fut` is boxed by the caller (`Unpin`), and the wrapper is a plain future, not an `async`
    /// block: an `async` wrapper would hold `fut` twice (as its argument and as the future it
    /// awaits), and a request's future is the largest thing a run keeps per request in flight.
    /// The board's task-local scope is boxed too (it cannot be moved once polled); only the
    /// requests of strategies that mark steps pay for that allocation.
    pub fn track<F: Future + Unpin>(self: &Arc<Self>, on_board: bool, fut: F) -> Tracked<F> {
        Tracked(if on_board {
            TrackedAs::OnBoard(Box::pin(CURRENT.scope(
                Entered {
                    board: self.clone(),
                    step: Cell::new(None),
                },
                LeaveWhenDone(fut),
            )))
        } else {
            TrackedAs::Plain(fut)
        })
    }

    /// One request moved from step `from` to step `to` (either may be none).
    fn moved(&self, from: Option<&'static str>, to: Option<&'static str>) {
        let mut at = self.at.lock();
        if let Some(from) = from {
            if let Some((_, n)) = at.iter_mut().find(|(step, _)| *step == from) {
                *n -= 1;
            }
        }
        if let Some(to) = to {
            match at.iter_mut().find(|(step, _)| *step == to) {
                Some((_, n)) => *n += 1,
                None => at.push((to, 1)),
            }
        }
    }

    /// The steps where unfinished requests are, most crowded first (ties by name).
    pub fn stuck(&self) -> Vec<StuckAt> {
        let mut out: Vec<StuckAt> = self
            .at
            .lock()
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(step, requests)| StuckAt {
                step: step.to_string(),
                requests: *requests,
            })
            .collect();
        out.sort_by(|a, b| b.requests.cmp(&a.requests).then_with(|| a.step.cmp(&b.step)));
        out
    }
}

/// A request's future, on a step board or not ([`StepBoard::track`]).
pub struct Tracked<F: Future + Unpin>(TrackedAs<F>);

enum TrackedAs<F: Future + Unpin> {
    Plain(F),
    OnBoard(Pin<Box<tokio::task::futures::TaskLocalFuture<Entered, LeaveWhenDone<F>>>>),
}

impl<F: Future + Unpin> Future for Tracked<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        match &mut self.0 {
            TrackedAs::Plain(fut) => Pin::new(fut).poll(cx),
            TrackedAs::OnBoard(fut) => fut.as_mut().poll(cx),
        }
    }
}

/// Polls a request's future and takes it off the board when it is done (inside the task-local
/// scope, which is still set while the inner future is polled).
struct LeaveWhenDone<F>(F);

impl<F: Future + Unpin> Future for LeaveWhenDone<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let out = std::task::ready!(Pin::new(&mut self.0).poll(cx));
        leave();
        Poll::Ready(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn steps_are_recorded_per_request_and_forgotten_when_it_finishes() {
        let board = Arc::new(StepBoard::default());
        enter("outside any scope: ignored");
        let (tx, rx) = tokio::sync::watch::channel(false);
        let hung: Vec<_> = (0..2)
            .map(|_| {
                let (board, mut rx) = (board.clone(), rx.clone());
                tokio::spawn(async move {
                    board
                        .track(
                            true,
                            Box::pin(async move {
                                enter("first");
                                enter("waiting forever");
                                let _ = rx.wait_for(|go| *go).await;
                            }),
                        )
                        .await
                })
            })
            .collect();
        board.track(true, Box::pin(async { enter("done soon") })).await;
        tokio::task::yield_now().await;
        assert_eq!(
            board.stuck(),
            vec![StuckAt {
                step: "waiting forever".into(),
                requests: 2
            }],
            "each request counted once, at the last step it entered"
        );
        tx.send(true).unwrap();
        for task in hung {
            task.await.unwrap();
        }
        assert!(board.stuck().is_empty());
    }
}
