//! The private async runtime behind the blocking client API.
//!
//! SSH (russh) is async. The library keeps one lazily created current-thread tokio
//! runtime and drives every SSH command to completion on the calling thread, so callers
//! never see tokio. Several threads may block on it at once (tokio hands the I/O driver
//! from one to the next). A caller that is itself inside a tokio runtime cannot block
//! that runtime's thread, so such a call runs on a short-lived helper thread instead.
//! Link conversations, whose handlers block in the caller's callbacks, get a runtime
//! of their own ([`block_on_own`]).

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::{Builder, Handle, Runtime};

use crate::error::{Error, Result};

static RUNTIME: OnceLock<std::result::Result<Runtime, std::io::Error>> = OnceLock::new();

fn runtime() -> Result<&'static Runtime> {
    RUNTIME
        .get_or_init(|| {
            Builder::new_current_thread()
                .enable_io()
                .enable_time()
                .build()
        })
        .as_ref()
        // The failure stays cached for the process and cannot be moved out: a copy
        // of its kind and text is the source.
        .map_err(|e| {
            Error::internal("starting the async runtime")
                .caused_by(std::io::Error::new(e.kind(), e.to_string()))
        })
}

/// Runs `future` to completion and returns its output.
pub(crate) fn block_on<F>(future: F) -> Result<F::Output>
where
    F: Future + Send,
    F::Output: Send,
{
    let rt = runtime()?;
    if Handle::try_current().is_err() {
        return Ok(rt.block_on(future));
    }
    // Inside someone else's runtime: blocking here would panic (or stall it), so drive
    // ours from a helper thread.
    std::thread::scope(|scope| {
        scope
            .spawn(|| rt.block_on(future))
            .join()
            .map_err(|_| Error::internal("SSH helper thread panicked"))
    })
}

/// Runs `future` to completion on a runtime of its own, made for this call. For
/// conversations whose line handlers block (a link calls the caller's code and
/// confirmation callbacks, which may wait for a person): on the shared runtime, a
/// thread blocked there would hold its I/O driver and stall every other thread's SSH
/// traffic (another link in the same process, a sync).
pub(crate) fn block_on_own<F>(future: F) -> Result<F::Output>
where
    F: Future + Send,
    F::Output: Send,
{
    let run = || -> Result<F::Output> {
        let rt = Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| Error::internal("starting the async runtime").caused_by(e))?;
        Ok(rt.block_on(future))
    };
    if Handle::try_current().is_err() {
        return run();
    }
    std::thread::scope(|scope| {
        scope
            .spawn(run)
            .join()
            .map_err(|_| Error::internal("SSH helper thread panicked"))?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn works_from_plain_threads_and_from_inside_another_runtime() {
        assert_eq!(block_on(async { 1 }).unwrap(), 1);
        let threads: Vec<_> = (0..4)
            .map(|i| {
                std::thread::spawn(move || {
                    block_on(async move {
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                        i
                    })
                    .unwrap()
                })
            })
            .collect();
        let sum: i32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(sum, 6);
        let outer = Builder::new_current_thread().build().unwrap();
        let inner = outer.block_on(async { block_on(async { 2 }) }).unwrap();
        assert_eq!(inner, 2);
    }
}
