//! A future that its caller may stop waiting for, but that always runs to its end.
//!
//! A call runs inside the client's connection: when the client goes away, the connection drops
//! what it was waiting for. A call must still end, free its container's place and be recorded.
//! Spawning every call as a task of its own gives that, but costs a task, its scheduling and a
//! wake-up of the waiting connection on every call. `RunToEnd` runs the future in place and only
//! moves it to a task of its own when it is dropped before it finished.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

pub struct RunToEnd<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    /// `None` once it finished.
    future: Option<Pin<Box<F>>>,
}

impl<F> RunToEnd<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    pub fn new(future: F) -> RunToEnd<F> {
        RunToEnd { future: Some(Box::pin(future)) }
    }
}

impl<F> Future for RunToEnd<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let future = self.future.as_mut().expect("RunToEnd polled after it finished");
        let output = std::task::ready!(future.as_mut().poll(cx));
        self.future = None;
        Poll::Ready(output)
    }
}

impl<F> Drop for RunToEnd<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn drop(&mut self) {
        if let Some(unfinished) = self.future.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => drop(runtime.spawn(unfinished)),
                Err(_) => tracing::warn!("a call was dropped outside the runtime before it ended"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RunToEnd;
    use std::time::Duration;
    use tokio::sync::oneshot;

    #[tokio::test]
    async fn a_future_dropped_midway_still_runs_to_its_end() {
        let (go_on, wait) = oneshot::channel::<()>();
        let (ended, has_ended) = oneshot::channel();
        let call = RunToEnd::new(async move {
            let _ = wait.await;
            let _ = ended.send("ended");
        });
        // The caller gives up while the future waits.
        assert!(tokio::time::timeout(Duration::from_millis(20), call).await.is_err());
        go_on.send(()).unwrap();
        assert_eq!(tokio::time::timeout(Duration::from_secs(5), has_ended).await.unwrap(), Ok("ended"));
    }

    #[tokio::test]
    async fn a_future_awaited_gives_its_output() {
        assert_eq!(RunToEnd::new(async { 7 }).await, 7);
    }
}
