//! Ordered iteration over plaintext keys (and values).
//!
//! Stored keys are ciphertext, so SQLite's order is meaningless: the iterator decrypts
//! every key once, sorts them, and then reads values one at a time. It keeps a read
//! transaction open for its whole life, so it sees one consistent snapshot however
//! long it runs and whatever writers do meanwhile.

use std::sync::Arc;

use super::{Reader, Store};
use crate::error::{Error, Result};

/// Iteration order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Ascending byte order of keys (Badger's order).
    #[default]
    Forward,
    /// Descending byte order.
    Reverse,
}

struct Entry {
    key: Vec<u8>,
    stored_key: Vec<u8>,
    cipher: usize,
}

/// An iterator over `(key, value)` pairs of one snapshot; see [`crate::Kv::iter`].
pub struct Iter {
    reader: Reader,
    store: Arc<Store>,
    entries: std::vec::IntoIter<Entry>,
    with_values: bool,
}

impl Iter {
    pub(crate) fn new(store: &Arc<Store>, direction: Direction, with_values: bool) -> Result<Iter> {
        let reader = store.reader()?;
        reader.execute_batch("BEGIN DEFERRED")?;
        let mut entries = Vec::new();
        {
            let mut stmt = reader.prepare_cached("SELECT key FROM kv")?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let stored_key = row.get_ref(0)?.as_blob()?.to_vec();
                let (key, cipher) = store.sealer().open_key(&stored_key)?;
                entries.push(Entry {
                    key,
                    stored_key,
                    cipher,
                });
            }
        }
        entries.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        if direction == Direction::Reverse {
            entries.reverse();
        }
        Ok(Iter {
            reader,
            store: Arc::clone(store),
            entries: entries.into_iter(),
            with_values,
        })
    }

    /// Keys not yet returned.
    pub fn remaining(&self) -> usize {
        self.entries.len()
    }

    fn value_of(&self, entry: &Entry) -> Result<Vec<u8>> {
        if !self.with_values {
            return Ok(Vec::new());
        }
        let mut stmt = self
            .reader
            .prepare_cached("SELECT value FROM kv WHERE key = ?1")?;
        let cipher = &self.store.sealer().ciphers()[entry.cipher];
        stmt.query_row([&entry.stored_key], |row| {
            Ok(cipher.open_value(&entry.stored_key, row.get_ref(0)?.as_blob()?))
        })
        .map_err(Error::from)?
    }
}

impl Iterator for Iter {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        let entry = self.entries.next()?;
        Some(self.value_of(&entry).map(|value| (entry.key, value)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.entries.size_hint()
    }
}

impl Drop for Iter {
    fn drop(&mut self) {
        // Ends the snapshot so the connection can return to the pool; a failure only
        // means the connection is dropped instead.
        let _ = self.reader.execute_batch("ROLLBACK");
    }
}
