//! The time limit of a whole sync, seen by every request the sync makes.
//!
//! A sync is many requests (auth, sequence, listing, transfers) plus waits for other
//! devices' uploads, made by the sync engine through the `Remote` trait, neither of
//! which carries a context. The limit is therefore scoped to the calling thread:
//! [`within`] sets it around the sync, and the SSH and HTTP legs shrink each step's own
//! bound to what is left of it, failing at once when nothing is. Every request of a
//! sync runs on the thread that called it (the SSH runtime is driven by the caller, see
//! `runtime.rs`; the SSH leg reads the limit before it could hand work to a helper
//! thread). Waits between polls end at their next request, so they count against the
//! limit too.

use std::cell::Cell;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

#[derive(Clone, Copy)]
struct Limit {
    ends: Instant,
    /// The configured length, for the error message.
    length: Duration,
}

thread_local! {
    static CURRENT: Cell<Option<Limit>> = const { Cell::new(None) };
}

/// Runs `f` with at most `length` for everything it sends. Nested scopes keep the
/// earlier end.
pub(crate) fn within<T>(length: Duration, f: impl FnOnce() -> T) -> T {
    let outer = CURRENT.with(Cell::get);
    // A length too large for an `Instant` (beyond `Timeouts::MAX`, which is checked
    // before any sync) leaves the outer limit, if any, in force.
    let own = Instant::now()
        .checked_add(length)
        .map(|ends| Limit { ends, length });
    let limit = match (outer, own) {
        (Some(o), Some(l)) if l.ends < o.ends => Some(l),
        (Some(o), _) => Some(o),
        (None, own) => own,
    };
    // Restores the outer scope even if `f` panics (the C boundary catches panics).
    struct Restore(Option<Limit>);
    impl Drop for Restore {
        fn drop(&mut self) {
            CURRENT.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(outer);
    CURRENT.with(|c| c.set(limit));
    f()
}

/// The limit in force on this thread, to carry to work done elsewhere.
#[derive(Clone, Copy)]
pub(crate) struct Scope(Option<Limit>);

impl Scope {
    pub(crate) fn current() -> Scope {
        Scope(CURRENT.with(Cell::get))
    }

    /// `step` shortened to what is left of the limit; the limit's error once it has
    /// run out.
    pub(crate) fn bound(self, step: Duration) -> Result<Duration> {
        match self.0 {
            None => Ok(step),
            Some(limit) => {
                let left = limit.ends.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    Err(ran_out(limit))
                } else {
                    Ok(step.min(left))
                }
            }
        }
    }

    /// The limit's error if it has run out (a step that timed out then did so because
    /// of it, whatever its own bound said).
    pub(crate) fn expired(self) -> Option<Error> {
        self.0.filter(|l| Instant::now() >= l.ends).map(ran_out)
    }
}

/// [`Scope::bound`] of this thread's limit.
pub(crate) fn bound(step: Duration) -> Result<Duration> {
    Scope::current().bound(step)
}

/// [`Scope::expired`] of this thread's limit.
pub(crate) fn expired() -> Option<Error> {
    Scope::current().expired()
}

fn ran_out(limit: Limit) -> Error {
    Error::network(format!(
        "the sync did not finish within its time limit of {:?} (CHARM_KV_SYNC_TIMEOUT)",
        limit.length
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_shrink_to_the_scope_and_fail_after_it() {
        let step = Duration::from_secs(30);
        assert_eq!(bound(step).unwrap(), step);
        within(Duration::from_secs(5), || {
            assert!(bound(step).unwrap() <= Duration::from_secs(5));
            // An inner scope cannot extend the outer one.
            within(Duration::from_secs(60), || {
                assert!(bound(step).unwrap() <= Duration::from_secs(5));
            });
            assert!(expired().is_none());
        });
        within(Duration::from_millis(1), || {
            std::thread::sleep(Duration::from_millis(5));
            let err = bound(step).unwrap_err();
            assert!(err.to_string().contains("time limit"), "{err}");
            assert!(expired().is_some());
        });
        // Outside any scope again.
        assert_eq!(bound(step).unwrap(), step);
        assert!(expired().is_none());
    }
}
