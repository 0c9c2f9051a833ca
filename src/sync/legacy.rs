//! Reading databases the Go client left on Charm servers: Badger v3 backup streams
//! (`charm/kv/kv.go` v0.12.6 with `badger/v3` v3.2103.2 `backup.go`), one file per sequence, each a partial history.
//!
//! A stream is frames of `u64 little-endian length || protobuf KVList`. Files overlap and
//! (since charm v0.12.3) miss updates of existing keys, so entries of every file are
//! merged by version: per key the highest version wins, and a tombstone (meta bit 0) or
//! an expired TTL at that version means the key is absent (a TTL still to come is kept
//! as the key's expiry). The missing updates cannot
//! be recovered from the server; see `docs/sync.md`.

use std::io::{self, Read};
use std::path::Path;

use prost::Message;
use rusqlite::Connection;

use crate::crypto::seal::Sealer;
use crate::error::{Error, Result};
use crate::store::schema;

/// Largest frame accepted. Badger's backup batches are a few MiB; anything far larger
/// is a hostile or corrupt file, and must not make us allocate it.
pub const MAX_FRAME_LEN: u64 = 256 << 20;

const BIT_DELETE: u8 = 0x01;

#[derive(Clone, PartialEq, Message)]
struct KvList {
    #[prost(message, repeated, tag = "1")]
    kv: Vec<BadgerKv>,
}

#[derive(Clone, PartialEq, Message)]
struct BadgerKv {
    #[prost(bytes = "vec", tag = "1")]
    key: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    value: Vec<u8>,
    #[prost(uint64, tag = "4")]
    version: u64,
    #[prost(uint64, tag = "5")]
    expires_at: u64,
    #[prost(bytes = "vec", tag = "6")]
    meta: Vec<u8>,
}

/// Entries of any number of backup streams, merged by version in a scratch SQLite
/// database (bounded memory however large the streams): per key, sealed with our
/// writer key (nothing in plain text on disk), the highest version seen and its value
/// (NULL when that version deletes the key).
pub struct LegacyMerge<'s> {
    conn: Connection,
    sealer: &'s Sealer,
    now_unix: u64,
}

const CREATE_MERGE: &str = "CREATE TABLE legacy_merge \
     (key BLOB PRIMARY KEY, version INTEGER NOT NULL, value BLOB) WITHOUT ROWID";

impl<'s> LegacyMerge<'s> {
    /// A merge in the new file `path`, which [`LegacyMerge::finish`] turns into a
    /// snapshot-shaped candidate.
    pub fn create(path: &Path, sealer: &'s Sealer) -> Result<Self> {
        Self::with_connection(schema::open_scratch(path)?, sealer)
    }

    /// A merge in memory (tests, fuzzing).
    #[cfg(any(test, feature = "unstable-internals"))]
    pub fn in_memory(sealer: &'s Sealer) -> Result<Self> {
        Self::with_connection(Connection::open_in_memory()?, sealer)
    }

    fn with_connection(conn: Connection, sealer: &'s Sealer) -> Result<Self> {
        conn.execute(CREATE_MERGE, [])?;
        Ok(LegacyMerge {
            conn,
            sealer,
            now_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        })
    }

    /// Reads one backup stream to its end, one frame in memory at a time.
    pub fn add_stream(&mut self, mut input: impl Read) -> Result<()> {
        loop {
            let mut len_bytes = [0u8; 8];
            match read_full(&mut input, &mut len_bytes)? {
                0 => return Ok(()),
                8 => {}
                _ => return Err(Error::corrupt("backup stream ends inside a frame length")),
            }
            let len = u64::from_le_bytes(len_bytes);
            if len > MAX_FRAME_LEN {
                return Err(Error::corrupt(format!(
                    "backup frame of {len} bytes exceeds the {MAX_FRAME_LEN}-byte limit"
                )));
            }
            let mut frame = Vec::new();
            (&mut input)
                .take(len)
                .read_to_end(&mut frame)
                .map_err(read_error)?;
            if frame.len() as u64 != len {
                return Err(Error::corrupt("backup stream ends inside a frame"));
            }
            let list = KvList::decode(frame.as_slice())
                .map_err(|e| Error::corrupt("backup frame is not a KVList").caused_by(e))?;
            let tx = self.conn.unchecked_transaction()?;
            for kv in list.kv {
                add(&tx, self.sealer, self.now_unix, kv)?;
            }
            tx.commit()?;
        }
    }

    /// The merged key-value pairs in key order (tombstoned keys left out), decrypted.
    #[cfg(any(test, feature = "unstable-internals"))]
    pub fn pairs(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT key, value FROM legacy_merge WHERE value IS NOT NULL")?;
        let mut rows = stmt.query([])?;
        let mut pairs = Vec::new();
        let writer = self.sealer.writer();
        while let Some(row) = rows.next()? {
            let stored_key: Vec<u8> = row.get(0)?;
            let key = writer
                .open_key(&stored_key)
                .ok_or_else(|| Error::internal("a merged key does not open"))?;
            let value = writer.open_value(&stored_key, row.get_ref(1)?.as_blob()?)?;
            pairs.push((key, value));
        }
        pairs.sort();
        Ok(pairs)
    }

    /// Turns the merge file into a snapshot-shaped candidate holding the merged state,
    /// so it can be restored like any snapshot.
    pub fn finish(self, last_seq: u64) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        tx.execute(schema::CREATE_KV, [])?;
        tx.execute(schema::CREATE_META, [])?;
        schema::meta_set(&tx, schema::META_MAX_VERSION, last_seq as i64)?;
        schema::meta_set(&tx, schema::META_KEY_CHECK, self.sealer.writer().check())?;
        schema::meta_set(&tx, schema::META_FORMAT, schema::FORMAT_VERSION)?;
        tx.execute(
            "INSERT INTO kv (key, value) SELECT key, value FROM legacy_merge WHERE value IS NOT NULL",
            [],
        )?;
        tx.execute("DROP TABLE legacy_merge", [])?;
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
impl LegacyMerge<'_> {
    fn add_entry(&mut self, kv: BadgerKv) {
        add(&self.conn, self.sealer, self.now_unix, kv).unwrap();
    }
}

/// Merges one entry: kept if its version is above the key's so far.
fn add(conn: &Connection, sealer: &Sealer, now_unix: u64, kv: BadgerKv) -> Result<()> {
    let deleted = kv.meta.first().is_some_and(|m| m & BIT_DELETE != 0)
        || (kv.expires_at != 0 && kv.expires_at <= now_unix);
    let stored_key = sealer.writer().seal_key(&kv.key);
    // A live entry keeps its expiry (Badger's is unix seconds) inside our envelope.
    let expires_at = (kv.expires_at != 0)
        .then(|| (kv.expires_at.saturating_mul(1000)).min(crate::store::expiry::MAX_EXPIRY_MS));
    let value = (!deleted).then(|| {
        sealer
            .writer()
            .seal_entry(&stored_key, &kv.value, expires_at)
    });
    // Versions are u64 in Badger; SQLite integers are signed, and order must hold.
    let version = i64::try_from(kv.version).map_err(|_| {
        Error::corrupt(format!(
            "backup entry version {} is out of range",
            kv.version
        ))
    })?;
    conn.prepare_cached(
        "INSERT INTO legacy_merge (key, version, value) VALUES (?1, ?2, ?3)
         ON CONFLICT (key) DO UPDATE SET version = excluded.version, value = excluded.value
         WHERE excluded.version > legacy_merge.version",
    )?
    .execute((&stored_key, version, &value))?;
    Ok(())
}

/// Reads until `buf` is full or the input ends; returns how many bytes were read.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(read_error(e)),
        }
    }
    Ok(filled)
}

fn read_error(e: io::Error) -> Error {
    Error::from_read("reading a backup stream", e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector(n: u32) -> Vec<u8> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
        std::fs::read(dir.join(format!("badger_backup_seq{n}.bin"))).unwrap()
    }

    fn sealer() -> Sealer {
        Sealer::new(&[crate::EncryptKey::generate()]).unwrap()
    }

    fn state(merge: &LegacyMerge) -> Vec<(String, String)> {
        merge
            .pairs()
            .unwrap()
            .into_iter()
            .map(|(k, v)| {
                (
                    String::from_utf8_lossy(&k).into(),
                    String::from_utf8_lossy(&v).into(),
                )
            })
            .collect()
    }

    #[test]
    fn go_backups_replay_to_the_state_they_can_express() {
        let sealer = sealer();
        // tests/vectors/README.md: foo=bar@1, baz=qux@2, foo=bar2@3 (missing from backups), delete baz@4,
        // k5=v5@5 with user meta.
        let mut merge = LegacyMerge::in_memory(&sealer).unwrap();
        for n in 1..=5 {
            merge.add_stream(vector(n).as_slice()).unwrap();
        }
        assert_eq!(
            state(&merge),
            [("foo".into(), "bar".into()), ("k5".into(), "v5".into())]
        );
    }

    #[test]
    fn order_of_files_does_not_matter() {
        let sealer = sealer();
        let mut forward = LegacyMerge::in_memory(&sealer).unwrap();
        let mut backward = LegacyMerge::in_memory(&sealer).unwrap();
        for n in 1..=5 {
            forward.add_stream(vector(n).as_slice()).unwrap();
            backward.add_stream(vector(6 - n).as_slice()).unwrap();
        }
        assert_eq!(state(&forward), state(&backward));
    }

    #[test]
    fn empty_stream_is_valid_and_damaged_ones_are_corrupt() {
        let sealer = sealer();
        let mut merge = LegacyMerge::in_memory(&sealer).unwrap();
        merge.add_stream(&[][..]).unwrap();
        assert_eq!(merge.pairs().unwrap().len(), 0);
        let good = vector(2);
        for cut in [3, 8, 12, good.len() - 1] {
            let err = LegacyMerge::in_memory(&sealer)
                .unwrap()
                .add_stream(&good[..cut])
                .unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::Corrupt, "cut at {cut}");
        }
        let mut huge = u64::MAX.to_le_bytes().to_vec();
        huge.extend_from_slice(b"x");
        assert_eq!(
            LegacyMerge::in_memory(&sealer)
                .unwrap()
                .add_stream(huge.as_slice())
                .unwrap_err()
                .kind(),
            crate::ErrorKind::Corrupt
        );
        let mut garbage = 4u64.to_le_bytes().to_vec();
        garbage.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
        assert!(LegacyMerge::in_memory(&sealer)
            .unwrap()
            .add_stream(garbage.as_slice())
            .is_err());
    }

    #[test]
    fn expired_entries_are_absent() {
        let sealer = sealer();
        let mut merge = LegacyMerge::in_memory(&sealer).unwrap();
        merge.add_entry(BadgerKv {
            key: b"old".to_vec(),
            value: b"v".to_vec(),
            version: 1,
            expires_at: 1,
            meta: vec![0],
        });
        merge.add_entry(BadgerKv {
            key: b"live".to_vec(),
            value: b"v".to_vec(),
            version: 1,
            expires_at: u64::MAX,
            meta: vec![0],
        });
        let in_an_hour = merge.now_unix + 3600;
        merge.add_entry(BadgerKv {
            key: b"soon".to_vec(),
            value: b"w".to_vec(),
            version: 1,
            expires_at: in_an_hour,
            meta: vec![0],
        });
        assert_eq!(
            state(&merge),
            [("live".into(), "v".into()), ("soon".into(), "w".into())]
        );
        // A TTL still to come is kept, in milliseconds, inside the value's envelope.
        let writer = sealer.writer();
        let expiry_of = |key: &[u8]| {
            let stored_key = writer.seal_key(key);
            let stored: Vec<u8> = merge
                .conn
                .query_row(
                    "SELECT value FROM legacy_merge WHERE key = ?1",
                    [&stored_key],
                    |r| r.get(0),
                )
                .unwrap();
            writer.open_entry(&stored_key, &stored).unwrap().1
        };
        assert_eq!(expiry_of(b"soon"), Some(in_an_hour * 1000));
        assert_eq!(
            expiry_of(b"live"),
            Some(crate::store::expiry::MAX_EXPIRY_MS)
        );
    }
}
