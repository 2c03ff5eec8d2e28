//! The relay's tasks — room actors, delivery pipes, connections — tracked together, so the
//! server can wait for all of them on shutdown and can tell whether any of them panicked.
//!
//! A panic in a spawned tokio task is otherwise silent to everyone but stderr: the room or
//! the connection just vanishes. Here each one is caught, logged, and counted, and
//! [`crate::run`] turns a non-zero count into an error when it returns — so a test (and an
//! operator) learns of it instead of seeing a clean stop.

use std::{
    future::Future,
    panic::AssertUnwindSafe,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
};

use futures_util::FutureExt;
use tokio_util::task::{task_tracker::TaskTrackerToken, TaskTracker};

/// Spawns and tracks the relay's tasks; counts the ones that panicked.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tasks {
    /// Every task spawned here, so shutdown can wait for them (and so for the store).
    tracker: TaskTracker,
    /// How many of them ended in a panic.
    panicked: Arc<AtomicUsize>,
}

impl Tasks {
    /// Spawn `fut` as a tracked task; a panic in it is logged and counted.
    pub(crate) fn spawn<F>(&self, what: &'static str, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tracker.spawn(self.guard(what, fut));
    }

    /// Wrap `fut` so that a panic in it is logged and counted (for futures someone else
    /// spawns, such as the WebSocket upgrade's).
    pub(crate) fn guard<F>(&self, what: &'static str, fut: F) -> impl Future<Output = ()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let panicked = self.panicked.clone();
        async move {
            if let Err(payload) = AssertUnwindSafe(fut).catch_unwind().await {
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a non-string panic".to_owned());
                tracing::error!(task = what, panic = %message, "relay task panicked");
                panicked.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// A token that keeps [`Tasks::closed`] waiting while it lives.
    pub(crate) fn token(&self) -> TaskTrackerToken {
        self.tracker.token()
    }

    /// Wait until every tracked task has ended; returns how many panicked.
    pub(crate) async fn closed(&self) -> usize {
        self.tracker.close();
        self.tracker.wait().await;
        self.panicked.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_task_is_counted_and_the_others_are_waited_for() {
        let tasks = Tasks::default();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tasks.spawn("waits", async move {
            let _ = rx.await;
        });
        tasks.spawn("panics", async { panic!("boom") });
        tasks.spawn("ends", async {});
        let closed = tasks.closed();
        tokio::pin!(closed);
        // Still waiting for the first task after the others ran.
        for _ in 0..10 {
            tokio::select! {
                biased;
                n = &mut closed => panic!("closed with a task still running ({n} panicked)"),
                () = tokio::task::yield_now() => {}
            }
        }
        tx.send(()).unwrap();
        assert_eq!(closed.await, 1);
    }
}
