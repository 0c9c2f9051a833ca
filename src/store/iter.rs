//! Ordered iteration over plaintext keys (and values).
//!
//! Stored keys are ciphertext, so SQLite's order is meaningless: the iterator decrypts
//! every key once, sorts them, and then reads values one at a time. It keeps a read
//! transaction open for its whole life, so it sees one consistent snapshot however
//! long it runs and whatever writers do meanwhile.
//!
//! A stored key that none of the keys decrypts (written with an encrypt key not given
//! to this open, or altered) cannot be placed in the order: the readable pairs come
//! first, then one [`Error::Corrupt`] per such row, naming it by the first bytes of
//! its stored (encrypted) key, and iteration goes on after each.

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
    /// Stored keys no cipher opens, reported after the readable pairs.
    unreadable: std::vec::IntoIter<Vec<u8>>,
    with_values: bool,
}

impl Iter {
    pub(crate) fn new(store: &Arc<Store>, direction: Direction, with_values: bool) -> Result<Iter> {
        let reader = store.reader()?;
        reader.execute_batch("BEGIN DEFERRED")?;
        let mut entries = Vec::new();
        let mut unreadable = Vec::new();
        {
            let mut stmt = reader.prepare_cached("SELECT key FROM kv")?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let stored_key = row.get_ref(0)?.as_blob()?.to_vec();
                match store.sealer().open_key(&stored_key) {
                    Ok((key, cipher)) => entries.push(Entry {
                        key,
                        stored_key,
                        cipher,
                    }),
                    Err(_) => unreadable.push(stored_key),
                }
            }
        }
        unreadable.sort_unstable();
        entries.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        if direction == Direction::Reverse {
            entries.reverse();
        }
        Ok(Iter {
            reader,
            store: Arc::clone(store),
            entries: entries.into_iter(),
            unreadable: unreadable.into_iter(),
            with_values,
        })
    }

    /// Items not yet returned (pairs, then errors for unreadable rows).
    pub fn remaining(&self) -> usize {
        self.entries.len() + self.unreadable.len()
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
        if let Some(entry) = self.entries.next() {
            return Some(self.value_of(&entry).map(|value| (entry.key, value)));
        }
        let stored_key = self.unreadable.next()?;
        let prefix: String = stored_key
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect();
        Some(Err(Error::corrupt(format!(
            "the row whose stored key starts with {prefix} does not decrypt with the \
             encrypt keys that passed this database's key check (written with another \
             key, or altered); skipped"
        ))))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.remaining();
        (n, Some(n))
    }
}

impl Drop for Iter {
    fn drop(&mut self) {
        // Ends the snapshot so the connection can return to the pool; a failure only
        // means the connection is dropped instead.
        let _ = self.reader.execute_batch("ROLLBACK");
    }
}
