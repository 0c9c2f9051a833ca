//! Write batches: many changes, one atomic commit (and, with a server, one upload).
//!
//! A batch buffers its changes in memory and writes them in a single SQLite
//! transaction on [`Batch::commit`]. Reads through the batch see its own changes first,
//! then the database as last committed. Nothing is locked while a batch is open, so a
//! slow or abandoned batch never blocks other writers.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::kv::Kv;
use crate::store::Op;

/// A write batch over a [`Kv`]; dropping it without [`Batch::commit`] discards it.
pub struct Batch {
    kv: Kv,
    changes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl Batch {
    pub(crate) fn new(kv: Kv) -> Batch {
        Batch {
            kv,
            changes: BTreeMap::new(),
        }
    }

    /// Records `key = value`.
    pub fn set(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> &mut Self {
        self.changes
            .insert(key.as_ref().to_vec(), Some(value.as_ref().to_vec()));
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
            Some(Some(value)) => Ok(value.clone()),
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
        let ops = self
            .changes
            .into_iter()
            .map(|(key, value)| Op { key, value })
            .collect();
        self.kv.apply(ops)
    }

    /// Discards the batch (the same as dropping it).
    pub fn rollback(self) {}
}
