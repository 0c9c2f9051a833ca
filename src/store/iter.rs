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

//!
//! With a [`KeyRange`], only the keys in it are returned. When the store's sorted key
//! list is still valid for this snapshot, the iterator takes the range from it by
//! binary search (no decrypting, O(log n + matches)); otherwise it decrypts every key
//! once and leaves the list for the next listing or iteration.
//!
//! Keys that have expired by the time the iterator is made are left out (their rows
//! say so by their format byte; only those are decrypted to compare): the iterator is
//! one snapshot at one time.

use std::sync::Arc;

use rusqlite::OptionalExtension;

use super::range::KeyRange;
use super::{Reader, Store};
use crate::error::{Error, Result};

/// A key, its value and its expiry (unix milliseconds), if it has one.
pub type ExpiringPair = (Vec<u8>, Vec<u8>, Option<u64>);

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
    /// When it expires (unix milliseconds), if it does.
    expires_at: Option<u64>,
    /// The stored (encrypted) key and the index of the cipher that opens it, when the
    /// iterator decrypted it; found again with each cipher otherwise.
    stored: Option<(Vec<u8>, usize)>,
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
        Iter::in_range(store, &KeyRange::all().direction(direction), with_values)
    }

    pub(crate) fn in_range(
        store: &Arc<Store>,
        range: &KeyRange,
        with_values: bool,
    ) -> Result<Iter> {
        let reader = store.reader()?;
        reader.execute_batch("BEGIN DEFERRED")?;
        // Reading data_version starts the snapshot; the key list made on this
        // connection at this version is exactly this snapshot's keys.
        let data_version: i64 =
            reader.pragma_query_value(None, "data_version", |row| row.get(0))?;
        let now = store.clock().now_ms();
        let mut unreadable = Vec::new();
        let mut entries = match store.cached_keys(reader.id(), data_version) {
            Some(list) => range
                .select(&list.visible(now))
                .iter()
                .map(|key| Entry {
                    key: key.clone(),
                    expires_at: list.expiry_of(key),
                    stored: None,
                })
                .collect(),
            None => {
                let mut entries = Vec::new();
                // Every key, for the store's key list; given up once it would be too
                // large to keep.
                let mut all_keys = Some(Vec::new());
                let mut expiries = std::collections::HashMap::new();
                let mut all_bytes = 0usize;
                store.scan_rows(&reader, |stored_key, opened| {
                    let Some((key, cipher, expires_at)) = opened else {
                        unreadable.push(stored_key.to_vec());
                        return;
                    };
                    all_bytes += key.len() + std::mem::size_of::<Vec<u8>>();
                    if all_bytes > super::KEYS_CACHE_MAX_BYTES {
                        all_keys = None;
                    } else if let Some(all_keys) = all_keys.as_mut() {
                        all_keys.push(key.clone());
                        if let Some(at) = expires_at {
                            expiries.insert(key.clone(), at);
                        }
                    }
                    if range.contains(&key) && super::is_live(expires_at, now) {
                        entries.push(Entry {
                            key,
                            expires_at,
                            stored: Some((stored_key.to_vec(), cipher)),
                        });
                    }
                })?;
                if let (true, Some(all_keys)) = (unreadable.is_empty(), all_keys) {
                    store.remember_keys(reader.id(), data_version, all_keys, expiries);
                }
                entries.sort_unstable_by(|a: &Entry, b: &Entry| a.key.cmp(&b.key));
                entries
            }
        };
        unreadable.sort_unstable();
        if range.order() == Direction::Reverse {
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

    /// The next pair with its expiry (unix milliseconds), if it has one: what an
    /// export writes.
    pub fn next_entry(&mut self) -> Option<Result<ExpiringPair>> {
        if let Some(entry) = self.entries.next() {
            return Some(
                self.value_of(&entry)
                    .map(|value| (entry.key, value, entry.expires_at)),
            );
        }
        self.next_unreadable().map(Err)
    }

    fn value_of(&self, entry: &Entry) -> Result<Vec<u8>> {
        if !self.with_values {
            return Ok(Vec::new());
        }
        let mut stmt = self
            .reader
            .prepare_cached("SELECT value FROM kv WHERE key = ?1")?;
        let ciphers = self.store.sealer().ciphers();
        if let Some((stored_key, cipher)) = &entry.stored {
            let cipher = &ciphers[*cipher];
            return stmt
                .query_row([stored_key], |row| {
                    Ok(cipher.open_value(stored_key, row.get_ref(0)?.as_blob()?))
                })
                .map_err(Error::from)?;
        }
        // From the key list: under whichever of the account's keys sealed it.
        for cipher in ciphers {
            let stored_key = cipher.seal_key(&entry.key);
            let found = stmt
                .query_row([&stored_key], |row| {
                    Ok(cipher.open_value(&stored_key, row.get_ref(0)?.as_blob()?))
                })
                .optional()?;
            if let Some(value) = found {
                return value;
            }
        }
        Err(Error::corrupt(
            "a key of this snapshot's key list has no row under any encrypt key",
        ))
    }
}

impl Iterator for Iter {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(entry) = self.entries.next() {
            return Some(self.value_of(&entry).map(|value| (entry.key, value)));
        }
        self.next_unreadable().map(Err)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.remaining();
        (n, Some(n))
    }
}

impl Iter {
    /// The error for the next row no cipher opens.
    fn next_unreadable(&mut self) -> Option<Error> {
        let stored_key = self.unreadable.next()?;
        let prefix: String = stored_key
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect();
        Some(Error::corrupt(format!(
            "the row whose stored key starts with {prefix} does not decrypt with the \
             encrypt keys that passed this database's key check (written with another \
             key, or altered); skipped"
        )))
    }
}

impl Drop for Iter {
    fn drop(&mut self) {
        // Ends the snapshot so the connection can return to the pool; a failure only
        // means the connection is dropped instead.
        let _ = self.reader.execute_batch("ROLLBACK");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::seal::Sealer;
    use crate::crypto::EncryptKey;
    use crate::store::Op;

    fn set(store: &Store, key: &str) {
        store
            .write(&[Op::set(key.as_bytes(), &b"v"[..])])
            .unwrap();
    }

    /// Whether the iterator took its keys from the store's key list (no decrypting).
    fn from_key_list(iter: &Iter) -> bool {
        iter.entries.as_slice().iter().all(|e| e.stored.is_none())
    }

    /// After a listing or a full iteration the next range comes from the key list;
    /// after a commit it decrypts again, and sees the commit.
    #[test]
    fn ranges_come_from_the_key_list_until_a_commit() {
        let dir = tempfile::tempdir().unwrap();
        let sealer = Sealer::new(&[EncryptKey::generate()]).unwrap();
        let store = Arc::new(Store::open(&dir.path().join("db.sqlite"), sealer).unwrap());
        for key in ["a1", "a2", "b1"] {
            set(&store, key);
        }
        let range = KeyRange::all().prefix("a");
        let first = Iter::in_range(&store, &range, true).unwrap();
        assert!(!from_key_list(&first) && first.remaining() == 2);
        drop(first);
        let second = Iter::in_range(&store, &range, true).unwrap();
        assert!(from_key_list(&second) && second.remaining() == 2);
        let pairs: Vec<_> = second.map(Result::unwrap).collect();
        assert_eq!(pairs[1], (b"a2".to_vec(), b"v".to_vec()));
        set(&store, "a3");
        let third = Iter::in_range(&store, &range, false).unwrap();
        assert!(!from_key_list(&third) && third.remaining() == 3);
    }
}
