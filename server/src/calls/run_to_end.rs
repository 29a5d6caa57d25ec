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
    /// Set while the future is polled: still set when this is dropped, the future panicked,
    /// and it is not run on.
    polling: bool,
}

impl<F> RunToEnd<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    pub fn new(future: F) -> RunToEnd<F> {
        RunToEnd { future: Some(Box::pin(future)), polling: false }
    }
}

impl<F> Future for RunToEnd<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        let future = this.future.as_mut().expect("RunToEnd polled after it finished");
        this.polling = true;
        let polled = future.as_mut().poll(cx);
        this.polling = false;
        let output = std::task::ready!(polled);
        this.future = None;
        Poll::Ready(output)
    }
}

impl<F> Drop for RunToEnd<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn drop(&mut self) {
        if let Some(unfinished) = self.future.take().filter(|_| !self.polling) {
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

    /// Counts its polls and panics in each.
    struct Faulty(std::sync::Arc<std::sync::atomic::AtomicUsize>);

    impl std::future::Future for Faulty {
        type Output = ();
        fn poll(self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<()> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            panic!("a bug in the call");
        }
    }

    #[tokio::test]
    async fn a_future_that_panicked_is_not_run_again() {
        use futures_util::FutureExt as _;
        let polls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let call = RunToEnd::new(Faulty(polls.clone()));
        assert!(std::panic::AssertUnwindSafe(call).catch_unwind().await.is_err());
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(polls.load(std::sync::atomic::Ordering::SeqCst), 1, "not handed to a task of its own");
    }

    #[tokio::test]
    async fn a_future_awaited_gives_its_output() {
        assert_eq!(RunToEnd::new(async { 7 }).await, 7);
    }
}
