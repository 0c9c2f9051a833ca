//! Reading databases the Go client left on Charm servers: Badger v3 backup streams
//! (`charm/kv/kv.go` v0.12.6 with `badger/v3` v3.2103.2 `backup.go`), one file per sequence, each a partial history.
//!
//! A stream is frames of `u64 little-endian length || protobuf KVList`. Files overlap and
//! (since charm v0.12.3) miss updates of existing keys, so entries of every file are
//! merged by version: per key the highest version wins, and a tombstone (meta bit 0) or
//! an expired TTL at that version means the key is absent. The missing updates cannot
//! be recovered from the server; see `docs/sync.md`.

use std::collections::BTreeMap;
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

/// The state of one key after merging: `None` = absent.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Latest {
    version: u64,
    value: Option<Vec<u8>>,
}

/// Entries of any number of backup streams, merged by version.
#[derive(Debug, Default)]
pub struct LegacyMerge {
    entries: BTreeMap<Vec<u8>, Latest>,
    now_unix: u64,
}

impl LegacyMerge {
    pub fn new() -> Self {
        LegacyMerge {
            entries: BTreeMap::new(),
            now_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        }
    }

    /// Reads one backup stream to its end.
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
                .map_err(|e| Error::corrupt(format!("backup frame is not a KVList: {e}")))?;
            for kv in list.kv {
                self.add(kv);
            }
        }
    }

    fn add(&mut self, kv: BadgerKv) {
        let deleted = kv.meta.first().is_some_and(|m| m & BIT_DELETE != 0)
            || (kv.expires_at != 0 && kv.expires_at <= self.now_unix);
        let latest = Latest {
            version: kv.version,
            value: (!deleted).then_some(kv.value),
        };
        match self.entries.get(&kv.key) {
            Some(existing) if existing.version >= latest.version => {}
            _ => {
                self.entries.insert(kv.key, latest);
            }
        }
    }

    /// The resulting key-value pairs in key order (tombstoned keys left out).
    pub fn pairs(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.entries
            .iter()
            .filter_map(|(k, l)| l.value.as_deref().map(|v| (k.as_slice(), v)))
    }

    /// Writes a snapshot-shaped SQLite file holding the merged state, sealed with our
    /// writer key, so it can be restored like any snapshot.
    pub fn write_candidate(&self, path: &Path, sealer: &Sealer, last_seq: u64) -> Result<()> {
        let mut conn = Connection::open(path)?;
        let tx = conn.transaction()?;
        tx.execute(schema::CREATE_KV, [])?;
        tx.execute(schema::CREATE_META, [])?;
        schema::meta_set(&tx, schema::META_MAX_VERSION, last_seq as i64)?;
        schema::meta_set(&tx, schema::META_KEY_CHECK, sealer.writer().check())?;
        schema::meta_set(&tx, schema::META_FORMAT, schema::FORMAT_VERSION)?;
        {
            let mut insert = tx.prepare("INSERT INTO kv (key, value) VALUES (?1, ?2)")?;
            for (key, value) in self.pairs() {
                let stored = sealer.writer().seal_key(key);
                insert.execute((&stored, sealer.writer().seal_value(&stored, value)))?;
            }
        }
        tx.commit()?;
        Ok(())
    }
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

    fn state(merge: &LegacyMerge) -> Vec<(String, String)> {
        merge
            .pairs()
            .map(|(k, v)| {
                (
                    String::from_utf8_lossy(k).into(),
                    String::from_utf8_lossy(v).into(),
                )
            })
            .collect()
    }

    #[test]
    fn go_backups_replay_to_the_state_they_can_express() {
        // tests/vectors/README.md: foo=bar@1, baz=qux@2, foo=bar2@3 (missing from backups), delete baz@4,
        // k5=v5@5 with user meta.
        let mut merge = LegacyMerge::new();
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
        let mut forward = LegacyMerge::new();
        let mut backward = LegacyMerge::new();
        for n in 1..=5 {
            forward.add_stream(vector(n).as_slice()).unwrap();
            backward.add_stream(vector(6 - n).as_slice()).unwrap();
        }
        assert_eq!(state(&forward), state(&backward));
    }

    #[test]
    fn empty_stream_is_valid_and_damaged_ones_are_corrupt() {
        let mut merge = LegacyMerge::new();
        merge.add_stream(&[][..]).unwrap();
        assert_eq!(merge.pairs().count(), 0);
        let good = vector(2);
        for cut in [3, 8, 12, good.len() - 1] {
            let err = LegacyMerge::new().add_stream(&good[..cut]).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::Corrupt, "cut at {cut}");
        }
        let mut huge = u64::MAX.to_le_bytes().to_vec();
        huge.extend_from_slice(b"x");
        assert_eq!(
            LegacyMerge::new()
                .add_stream(huge.as_slice())
                .unwrap_err()
                .kind(),
            crate::ErrorKind::Corrupt
        );
        let mut garbage = 4u64.to_le_bytes().to_vec();
        garbage.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
        assert!(LegacyMerge::new().add_stream(garbage.as_slice()).is_err());
    }

    #[test]
    fn expired_entries_are_absent() {
        let mut merge = LegacyMerge::new();
        merge.add(BadgerKv {
            key: b"old".to_vec(),
            value: b"v".to_vec(),
            version: 1,
            expires_at: 1,
            meta: vec![0],
        });
        merge.add(BadgerKv {
            key: b"live".to_vec(),
            value: b"v".to_vec(),
            version: 1,
            expires_at: u64::MAX,
            meta: vec![0],
        });
        assert_eq!(state(&merge), [("live".into(), "v".into())]);
    }
}
