//! Write batches: many changes, one atomic commit (and, with a server, one upload).
//!
//! A batch buffers its changes in memory and writes them in a single SQLite
//! transaction on [`Batch::commit`]. Reads through the batch see its own changes first,
//! then the database as last committed. Nothing is locked while a batch is open, so a
//! slow or abandoned batch never blocks other writers.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use crate::error::{Error, Result};
use crate::kv::Kv;
use crate::store::Op;

/// A recorded set: the value and its expiry (unix milliseconds), if any.
type Set = (Vec<u8>, Option<u64>);

/// A write batch over a [`Kv`]; dropping it without [`Batch::commit`] discards it.
pub struct Batch {
    kv: Kv,
    /// Per key: the value and its expiry (unix milliseconds), or `None` to delete.
    changes: BTreeMap<Vec<u8>, Option<Set>>,
    /// The first invalid TTL or expiry given: [`Batch::commit`] fails with it.
    invalid: Option<Error>,
}

impl Batch {
    pub(crate) fn new(kv: Kv) -> Batch {
        Batch {
            kv,
            changes: BTreeMap::new(),
            invalid: None,
        }
    }

    /// Records `key = value`.
    pub fn set(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> &mut Self {
        self.changes
            .insert(key.as_ref().to_vec(), Some((value.as_ref().to_vec(), None)));
        self
    }

    /// Records `key = value` expiring `ttl` after this call (see
    /// [`Kv::set_with_ttl`]); an invalid TTL makes [`Batch::commit`] fail with
    /// [`Error::InvalidArgument`] and write nothing.
    pub fn set_with_ttl(
        &mut self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        ttl: Duration,
    ) -> &mut Self {
        let expiry = crate::store::expiry::expiry_after(self.kv.now_ms(), ttl);
        self.set_expiring(key, value, expiry)
    }

    /// Records `key = value` expiring at `at` (see [`Kv::set_expiring_at`]).
    pub fn set_expiring_at(
        &mut self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        at: SystemTime,
    ) -> &mut Self {
        let expiry = crate::kv::expiry_of_time(at);
        self.set_expiring(key, value, expiry)
    }

    /// [`Batch::set_expiring_at`] with the time in unix milliseconds.
    pub fn set_expiring_at_unix_ms(
        &mut self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        at_unix_ms: i64,
    ) -> &mut Self {
        let expiry = crate::store::expiry::check_expiry(at_unix_ms);
        self.set_expiring(key, value, expiry)
    }

    fn set_expiring(
        &mut self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        expiry: Result<u64>,
    ) -> &mut Self {
        match expiry {
            Ok(at) => {
                self.changes.insert(
                    key.as_ref().to_vec(),
                    Some((value.as_ref().to_vec(), Some(at))),
                );
            }
            Err(e) => {
                self.invalid.get_or_insert(e);
            }
        }
        self
    }

    /// Records the deletion of `key`.
    pub fn delete(&mut self, key: impl AsRef<[u8]>) -> &mut Self {
        self.changes.insert(key.as_ref().to_vec(), None);
        self
    }

    /// The value of `key` as this batch would leave it.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Vec<u8>> {
        match self.changes.get(key.as_ref()) {
            Some(Some((_, Some(at)))) if *at <= self.kv.now_ms() => Err(Error::NotFound),
            Some(Some((value, _))) => Ok(value.clone()),
            Some(None) => Err(Error::NotFound),
            None => self.kv.get(key),
        }
    }

    /// Number of distinct keys changed.
    pub fn len(&self) -> usize {
        self.changes.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Writes every change atomically: all of them are durable, or none is.
    pub fn commit(self) -> Result<()> {
        if let Some(invalid) = self.invalid {
            return Err(invalid);
        }
        let ops = self
            .changes
            .into_iter()
            .map(|(key, change)| match change {
                Some((value, expires_at)) => Op {
                    key,
                    value: Some(value),
                    expires_at,
                },
                None => Op::delete(key),
            })
            .collect();
        self.kv.apply(ops)
    }

    /// Discards the batch (the same as dropping it).
    pub fn rollback(self) {}
}
