//! Expiry (TTL) of keys: the clock reads compare with, the limits of an expiry, and the
//! index of known expiries that writes purge from (`docs/storage.md`, "Expiry").
//!
//! An expiry is a time in unix milliseconds, kept inside the encrypted value
//! (`crypto::seal`, format 0x02). A key whose expiry is not after the clock's now is
//! absent to every read at once; its row goes later (a purge).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};

/// The latest expiry accepted: 9999-12-31T23:59:59.999Z, in unix milliseconds. Far
/// below `i64::MAX`, so every binding's signed 64-bit milliseconds hold it.
pub const MAX_EXPIRY_MS: u64 = 253_402_300_799_999;

/// Where "now" comes from: the system clock, or (tests) any function of unix
/// milliseconds.
#[derive(Clone, Default)]
pub struct Clock {
    fixed: Option<Arc<dyn Fn() -> u64 + Send + Sync>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock::default()
    }

    /// A clock reading `now` (unix milliseconds) each time: tests move time without
    /// sleeping.
    #[cfg(any(test, feature = "unstable-internals"))]
    pub fn from_fn(now: impl Fn() -> u64 + Send + Sync + 'static) -> Clock {
        Clock {
            fixed: Some(Arc::new(now)),
        }
    }

    /// Now, in unix milliseconds (0 for a clock set before 1970).
    pub fn now_ms(&self) -> u64 {
        match &self.fixed {
            Some(now) => now(),
            None => unix_ms(SystemTime::now()).unwrap_or(0),
        }
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.fixed {
            Some(_) => "Clock(test)",
            None => "Clock(system)",
        })
    }
}

/// `at` in unix milliseconds; `None` before 1970 or beyond `u64`.
pub fn unix_ms(at: SystemTime) -> Option<u64> {
    let since = at.duration_since(UNIX_EPOCH).ok()?;
    u64::try_from(since.as_millis()).ok()
}

/// The expiry `ttl` after `now_ms`: a TTL of zero, or one reaching past
/// [`MAX_EXPIRY_MS`], is [`Error::InvalidArgument`]. Rounded up to whole milliseconds.
pub fn expiry_after(now_ms: u64, ttl: Duration) -> Result<u64> {
    if ttl.is_zero() {
        return Err(Error::invalid("a TTL must be positive"));
    }
    let ttl_ms = ttl.as_nanos().div_ceil(1_000_000);
    u64::try_from(ttl_ms)
        .ok()
        .and_then(|ms| now_ms.checked_add(ms))
        .filter(|&at| at <= MAX_EXPIRY_MS)
        .ok_or_else(|| {
            Error::invalid(format!(
                "a TTL of {ttl:?} ends after the year 9999, the latest expiry accepted"
            ))
        })
}

/// Checks an absolute expiry in unix milliseconds: from 1 (a time in the past makes the
/// key absent at once) to [`MAX_EXPIRY_MS`].
pub fn check_expiry(at_ms: i64) -> Result<u64> {
    match u64::try_from(at_ms) {
        Ok(at) if (1..=MAX_EXPIRY_MS).contains(&at) => Ok(at),
        _ => Err(Error::invalid(format!(
            "expiry {at_ms} is not a unix time in milliseconds from 1 to {MAX_EXPIRY_MS} \
             (the end of the year 9999)"
        ))),
    }
}

/// A TTL given in signed milliseconds (the C ABI and the bindings): positive only.
pub fn ttl_from_ms(ttl_ms: i64) -> Result<Duration> {
    match u64::try_from(ttl_ms) {
        Ok(ms) if ms > 0 => Ok(Duration::from_millis(ms)),
        _ => Err(Error::invalid(format!(
            "a TTL must be positive (got {ttl_ms} ms)"
        ))),
    }
}

/// The plaintext keys this store knows to expire, by expiry: from its own writes, its
/// last full key listing and its last sync. A write purges those that are due; keys
/// written with an expiry by another process since are found by the next listing or
/// sync (a write never scans the database).
#[derive(Default)]
pub struct ExpiryIndex {
    by_key: HashMap<Vec<u8>, u64>,
    by_time: BTreeSet<(u64, Vec<u8>)>,
}

impl ExpiryIndex {
    /// Records that `key` expires at `at` (or, `None`, does not).
    pub fn note(&mut self, key: &[u8], at: Option<u64>) {
        if let Some(old) = self.by_key.remove(key) {
            self.by_time.remove(&(old, key.to_vec()));
        }
        if let Some(at) = at {
            self.by_key.insert(key.to_vec(), at);
            self.by_time.insert((at, key.to_vec()));
        }
    }

    /// The keys whose expiry is not after `now_ms` (kept: a purge that does not commit
    /// finds them again; [`ExpiryIndex::forget_due`] once it did).
    pub fn due(&self, now_ms: u64) -> Vec<Vec<u8>> {
        self.by_time
            .iter()
            .take_while(|(at, _)| *at <= now_ms)
            .map(|(_, key)| key.clone())
            .collect()
    }

    /// Forgets those of `keys` still due at `now_ms` (their rows were purged; a key
    /// noted since with a later expiry stays).
    pub fn forget_due(&mut self, keys: &[Vec<u8>], now_ms: u64) {
        for key in keys {
            if let Some(&at) = self.by_key.get(key) {
                if at <= now_ms {
                    self.note(key, None);
                }
            }
        }
    }

    /// Adds what `other` knows (a scan's findings), keeping what this index learnt
    /// meanwhile for keys `other` does not have.
    pub fn merge(&mut self, other: ExpiryIndex) {
        for (key, at) in other.by_key {
            self.note(&key, Some(at));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_and_expiries_are_validated() {
        assert_eq!(expiry_after(1_000, Duration::from_secs(1)).unwrap(), 2_000);
        // Below a millisecond rounds up rather than expiring at once.
        assert_eq!(expiry_after(1_000, Duration::from_nanos(1)).unwrap(), 1_001);
        for bad in [Duration::ZERO, Duration::MAX, Duration::from_secs(400 * 365 * 86_400 * 100)] {
            let err = expiry_after(1_000, bad).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::InvalidArgument, "{bad:?}");
        }
        assert!(expiry_after(MAX_EXPIRY_MS - 1, Duration::from_millis(1)).is_ok());
        assert!(expiry_after(MAX_EXPIRY_MS, Duration::from_millis(1)).is_err());
        assert_eq!(check_expiry(1).unwrap(), 1);
        assert_eq!(check_expiry(MAX_EXPIRY_MS as i64).unwrap(), MAX_EXPIRY_MS);
        for bad in [0, -1, i64::MIN, MAX_EXPIRY_MS as i64 + 1, i64::MAX] {
            assert!(check_expiry(bad).is_err(), "{bad}");
        }
        assert_eq!(ttl_from_ms(5).unwrap(), Duration::from_millis(5));
        for bad in [0, -1, i64::MIN] {
            assert!(ttl_from_ms(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_index_forgets_due_keys_only_once_purged_and_follows_rewrites() {
        let mut index = ExpiryIndex::default();
        index.note(b"a", Some(10));
        index.note(b"b", Some(20));
        index.note(b"c", Some(5));
        index.note(b"c", None); // rewritten without expiry
        index.note(b"b", Some(30)); // expiry moved
        assert_eq!(index.due(9), Vec::<Vec<u8>>::new());
        let due = index.due(25);
        assert_eq!(due, vec![b"a".to_vec()]);
        // Not forgotten until the purge committed.
        assert_eq!(index.due(25), due);
        index.forget_due(&due, 25);
        assert_eq!(index.due(25), Vec::<Vec<u8>>::new());
        assert_eq!(index.due(30), vec![b"b".to_vec()]);
        // A key noted again with a later expiry before the forget stays.
        index.note(b"b", Some(40));
        index.forget_due(&[b"b".to_vec()], 30);
        assert_eq!(index.due(40), vec![b"b".to_vec()]);
        // A scan merged in adds keys and keeps what the index knew.
        let mut scan = ExpiryIndex::default();
        scan.note(b"d", Some(15));
        index.merge(scan);
        assert_eq!(index.due(40), vec![b"d".to_vec(), b"b".to_vec()]);
    }
}
