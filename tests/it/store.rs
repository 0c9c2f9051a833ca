//! Behaviour of the local store: API, schema, encryption at rest, concurrency.

use crate::support;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use charm_kv::{Direction, EncryptKey, ErrorKind, Fetched, KeyRange, Kv, Options};

use crate::readonly_dir;

fn options(dir: &Path, keys: &[EncryptKey]) -> Options {
    let mut options = Options::new();
    options.data_dir(dir).encrypt_keys(keys.to_vec());
    options
}

fn open(dir: &Path, key: &EncryptKey) -> Kv {
    Kv::open_with("test", &options(dir, std::slice::from_ref(key))).unwrap()
}

#[test]
fn set_get_delete_and_missing_keys() {
    let dir = tempfile::tempdir().unwrap();
    let kv = open(dir.path(), &EncryptKey::generate());
    assert_eq!(kv.get("nope").unwrap_err().kind(), ErrorKind::NotFound);
    kv.set("a", "1").unwrap();
    assert_eq!(kv.get("a").unwrap(), b"1");
    kv.set("a", "2").unwrap();
    assert_eq!(kv.get("a").unwrap(), b"2");
    kv.delete("a").unwrap();
    assert_eq!(kv.get("a").unwrap_err().kind(), ErrorKind::NotFound);
    kv.delete("a").unwrap();
}

#[test]
fn get_into_uses_the_buffer_when_the_value_fits() {
    let dir = tempfile::tempdir().unwrap();
    let kv = open(dir.path(), &EncryptKey::generate());
    kv.set("empty", "").unwrap();
    kv.set("four", "1234").unwrap();
    kv.set("five", "12345").unwrap();
    let mut buf = [0u8; 4];
    assert_eq!(kv.get_into("four", &mut buf).unwrap(), Fetched::InBuffer(4));
    assert_eq!(&buf, b"1234");
    assert_eq!(
        kv.get_into("empty", &mut buf).unwrap(),
        Fetched::InBuffer(0)
    );
    assert_eq!(
        kv.get_into("five", &mut buf).unwrap(),
        Fetched::Owned(b"12345".to_vec())
    );
    assert_eq!(
        &buf, b"1234",
        "a value that does not fit leaves the buffer alone"
    );
    assert_eq!(
        kv.get_into("missing", &mut buf).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        kv.get_into("five", &mut []).unwrap(),
        Fetched::Owned(b"12345".to_vec())
    );
}

#[test]
fn any_bytes_round_trip_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let kv = open(dir.path(), &EncryptKey::generate());
    let cases: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (b"empty value".to_vec(), vec![]),
        (vec![0, 0, 0], b"nul key".to_vec()),
        (vec![0xff, 0xfe, 0x80], vec![0xc3, 0x28, 0, 0xff]),
        (vec![1], b"one-byte key".to_vec()),
        (
            b"big".to_vec(),
            (0..3_000_000u32).map(|i| (i * 7) as u8).collect(),
        ),
    ];
    for (k, v) in &cases {
        kv.set(k, v).unwrap();
    }
    for (k, v) in &cases {
        assert_eq!(&kv.get(k).unwrap(), v);
    }
    kv.set_reader("streamed", &b"from a reader"[..]).unwrap();
    assert_eq!(kv.get("streamed").unwrap(), b"from a reader");
}

#[test]
fn keys_come_back_in_byte_order_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let kv = open(dir.path(), &EncryptKey::generate());
    let mut expected: Vec<Vec<u8>> = (0..300u32)
        .map(|i| (i * 7919 % 1000).to_string().into_bytes())
        .collect();
    expected.push(vec![0xff]);
    expected.push(vec![0]);
    for k in &expected {
        kv.set(k, [k.as_slice(), b"!"].concat()).unwrap();
    }
    expected.sort();
    expected.dedup();
    assert_eq!(kv.keys().unwrap(), expected);

    let pairs: Vec<_> = kv.iter().unwrap().map(Result::unwrap).collect();
    assert_eq!(
        pairs.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
        expected
    );
    assert!(pairs
        .iter()
        .all(|(k, v)| *v == [k.as_slice(), b"!"].concat()));

    let reverse: Vec<_> = kv
        .iter_with(Direction::Reverse, false)
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    let mut rev_expected = expected.clone();
    rev_expected.reverse();
    assert_eq!(
        reverse.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
        rev_expected
    );
    assert!(reverse.iter().all(|(_, v)| v.is_empty()));
}

#[test]
fn key_listing_sees_every_commit_from_any_connection() {
    // Listings are cached between commits: every kind of commit must show at once.
    let dir = tempfile::tempdir().unwrap();
    let key = EncryptKey::generate();
    let reader = open(dir.path(), &key);
    let other = open(dir.path(), &key);
    assert!(reader.keys().unwrap().is_empty());
    other.set("a", "1").unwrap();
    assert_eq!(reader.keys().unwrap(), [b"a".to_vec()]);
    let mut listed = reader.keys().unwrap();
    listed.push(b"not stored".to_vec());
    assert_eq!(reader.keys().unwrap(), [b"a".to_vec()]);
    reader.set("b", "2").unwrap();
    assert_eq!(reader.keys().unwrap(), [b"a".to_vec(), b"b".to_vec()]);
    other.delete("a").unwrap();
    assert_eq!(reader.keys().unwrap(), [b"b".to_vec()]);
    let mut batch = other.batch();
    batch.set("c", "3").delete("b");
    batch.commit().unwrap();
    assert_eq!(reader.keys().unwrap(), [b"c".to_vec()]);
    // An overwrite keeps the key set; the listing is still right.
    other.set("c", "4").unwrap();
    assert_eq!(reader.keys().unwrap(), [b"c".to_vec()]);
    // Listings from several threads at once, with a writer going on.
    thread::scope(|scope| {
        scope.spawn(|| {
            for i in 0..50 {
                other.set(format!("w{i:02}"), "x").unwrap();
            }
        });
        for _ in 0..4 {
            scope.spawn(|| {
                let mut seen = 0;
                while seen < 51 {
                    let keys = reader.keys().unwrap();
                    assert!(keys.len() >= seen, "a listing went back in time");
                    assert!(keys.windows(2).all(|w| w[0] < w[1]));
                    seen = keys.len();
                }
            });
        }
    });
    assert_eq!(reader.keys().unwrap().len(), 51);
}

#[test]
fn iterator_reads_one_snapshot_while_writes_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let kv = open(dir.path(), &EncryptKey::generate());
    for i in 0..10 {
        kv.set(format!("k{i}"), "old").unwrap();
    }
    let mut iter = kv.iter().unwrap();
    let first = iter.next().unwrap().unwrap();
    for i in 0..10 {
        kv.set(format!("k{i}"), "new").unwrap();
    }
    kv.set("k99", "added").unwrap();
    let rest: Vec<_> = iter.map(Result::unwrap).collect();
    assert_eq!(first.1, b"old");
    assert_eq!(rest.len(), 9);
    assert!(rest.iter().all(|(_, v)| v == b"old"));
    assert_eq!(kv.get("k3").unwrap(), b"new");
}

#[test]
fn batch_commits_atomically_and_rolls_back() {
    let dir = tempfile::tempdir().unwrap();
    let kv = open(dir.path(), &EncryptKey::generate());
    kv.set("keep", "1").unwrap();
    kv.set("gone", "x").unwrap();

    let mut batch = kv.batch();
    batch.set("a", "A").set("b", "B").delete("gone");
    assert_eq!(batch.get("a").unwrap(), b"A");
    assert_eq!(batch.get("keep").unwrap(), b"1");
    assert_eq!(batch.get("gone").unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(
        kv.get("a").unwrap_err().kind(),
        ErrorKind::NotFound,
        "not visible before commit"
    );
    assert_eq!(batch.len(), 3);
    batch.commit().unwrap();
    assert_eq!(kv.get("b").unwrap(), b"B");
    assert_eq!(kv.get("gone").unwrap_err().kind(), ErrorKind::NotFound);

    let mut batch = kv.batch();
    batch.set("c", "C").delete("keep");
    batch.rollback();
    assert_eq!(kv.get("keep").unwrap(), b"1");
    assert_eq!(kv.get("c").unwrap_err().kind(), ErrorKind::NotFound);

    // A batch with one oversized value writes nothing at all.
    let mut batch = kv.batch();
    batch.set("d", "D").set(vec![b'k'; 70_000], "too long key");
    assert_eq!(
        batch.commit().unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    assert_eq!(kv.get("d").unwrap_err().kind(), ErrorKind::NotFound);
}

#[test]
fn schema_on_disk_is_exactly_the_designed_one() {
    let dir = tempfile::tempdir().unwrap();
    let kv = open(dir.path(), &EncryptKey::generate());
    kv.set("k", "v").unwrap();
    let conn = rusqlite::Connection::open(kv.path().unwrap()).unwrap();
    let mut stmt = conn
        .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name IN ('kv','meta') ORDER BY name")
        .unwrap();
    let tables: Vec<(String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        tables,
        vec![
            (
                "kv".into(),
                "CREATE TABLE kv (key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID".into()
            ),
            (
                "meta".into(),
                "CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID"
                    .into()
            ),
        ]
    );
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let max_version: i64 = conn
        .query_row(
            "SELECT value FROM meta WHERE name = 'max_version'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(max_version, 0);
    assert!(kv.path().unwrap().ends_with("charm-kv/test.sqlite"));
}

#[test]
fn no_plaintext_reaches_any_file() {
    let dir = tempfile::tempdir().unwrap();
    let kv = open(dir.path(), &EncryptKey::generate());
    let secrets: Vec<(String, String)> = (0..50)
        .map(|i| {
            (
                format!("plainkey-{i:04}-marker"),
                format!("plainvalue-{i:04}-marker"),
            )
        })
        .collect();
    for (k, v) in &secrets {
        kv.set(k, v).unwrap();
    }
    let mut batch = kv.batch();
    batch.set("batchkey-marker", "batchvalue-marker");
    batch.commit().unwrap();
    let db = kv.path().unwrap();
    let files: Vec<_> = ["", "-wal", "-shm"]
        .iter()
        .map(|s| std::path::PathBuf::from(format!("{}{s}", db.display())))
        .collect();
    assert!(files[1].exists(), "WAL file present while open");
    let mut checked = 0;
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        for needle in [
            "plainkey-",
            "plainvalue-",
            "batchkey-marker",
            "batchvalue-marker",
            "marker",
        ] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{needle} found in {}",
                file.display()
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 15);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for file in &files {
            let mode = std::fs::metadata(file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", file.display());
        }
        let kv_dir = db.parent().unwrap();
        assert_eq!(
            std::fs::metadata(kv_dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }
}

#[test]
fn wrong_keys_fail_at_open_and_key_rotation_reads_old_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (EncryptKey::generate(), EncryptKey::generate());
    let kv = open(dir.path(), &old);
    kv.set("a", "from old key").unwrap();
    kv.set("b", "also old").unwrap();
    kv.close().unwrap();

    let err = Kv::open_with("test", &options(dir.path(), std::slice::from_ref(&new))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Keys, "{err}");

    let both = Kv::open_with("test", &options(dir.path(), &[new.clone(), old.clone()])).unwrap();
    assert_eq!(both.get("a").unwrap(), b"from old key");
    both.set("a", "rewritten with new key").unwrap();
    assert_eq!(both.get("a").unwrap(), b"rewritten with new key");
    assert_eq!(both.keys().unwrap(), vec![b"a".to_vec(), b"b".to_vec()]);
    both.delete("b").unwrap();
    assert_eq!(both.get("b").unwrap_err().kind(), ErrorKind::NotFound);
}

#[test]
fn the_empty_key_is_refused_everywhere_as_in_charm_kv() {
    let dir = tempfile::tempdir().unwrap();
    let kv = open(dir.path(), &EncryptKey::generate());
    let refused = |err: charm_kv::Error| {
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(err.to_string().contains("key cannot be empty"), "{err}");
    };
    refused(kv.set("", "v").unwrap_err());
    refused(kv.get("").unwrap_err());
    refused(kv.get_into("", &mut [0; 4]).unwrap_err());
    refused(kv.delete("").unwrap_err());
    refused(kv.set_reader("", &b"v"[..]).unwrap_err());
    let mut batch = kv.batch();
    batch.set("a", "1").set("", "2");
    refused(batch.commit().unwrap_err());
    let mut batch = kv.batch();
    batch.set("a", "1").delete("");
    refused(batch.commit().unwrap_err());
    // Nothing of the refused batches was written.
    assert!(kv.keys().unwrap().is_empty());
}

/// Pairs of an iteration, unwrapped.
fn pairs(iter: charm_kv::Iter) -> Vec<(Vec<u8>, Vec<u8>)> {
    iter.map(Result::unwrap).collect()
}

#[test]
fn prefix_and_start_select_what_filtering_all_keys_selects() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (EncryptKey::generate(), EncryptKey::generate());
    // Some rows under an older encrypt key: values found from the key list too.
    let kv = open(dir.path(), &old);
    for key in ["app:1", "app:2", "user:b"] {
        kv.set(key, format!("{key}=old")).unwrap();
    }
    kv.close().unwrap();
    let kv = Kv::open_with("test", &options(dir.path(), &[new, old])).unwrap();
    for key in ["app:3", "app:10", "apple", "user:a", "user:c", "\u{ff}"] {
        kv.set(key, format!("{key}=new")).unwrap();
    }
    let all = kv.keys().unwrap();
    let ranges = [
        KeyRange::all(),
        KeyRange::all().prefix("app:"),
        KeyRange::all().prefix("user:").reverse(),
        KeyRange::all().prefix("app:").start("app:2"),
        KeyRange::all().prefix("app:").start("app:25").reverse(),
        KeyRange::all().start("b"),
        KeyRange::all().prefix("nothing"),
    ];
    for range in &ranges {
        let mut expected: Vec<Vec<u8>> =
            all.iter().filter(|k| range.contains(k)).cloned().collect();
        if range.order() == Direction::Reverse {
            expected.reverse();
        }
        assert_eq!(kv.keys_in(range).unwrap(), expected, "{range:?}");
        // Twice: after the first, the iterator takes its keys from the key list.
        for _ in 0..2 {
            let got = pairs(kv.iter_in(range, true).unwrap());
            let keys: Vec<Vec<u8>> = got.iter().map(|(k, _)| k.clone()).collect();
            assert_eq!(keys, expected, "{range:?}");
            for (k, v) in &got {
                assert_eq!(v, &kv.get(k).unwrap(), "{range:?}");
            }
            let keys_only = pairs(kv.iter_in(range, false).unwrap());
            assert!(keys_only.iter().all(|(_, v)| v.is_empty()));
            assert_eq!(keys_only.len(), expected.len());
        }
    }
    assert_eq!(
        kv.keys_with_prefix("user:").unwrap(),
        [b"user:a".to_vec(), b"user:b".to_vec(), b"user:c".to_vec()]
    );
}

#[test]
fn a_prefix_iteration_sees_writes_made_since_the_last_listing() {
    let dir = tempfile::tempdir().unwrap();
    let key = EncryptKey::generate();
    let kv = open(dir.path(), &key);
    kv.set("p:1", "1").unwrap();
    let range = KeyRange::all().prefix("p:");
    assert_eq!(pairs(kv.iter_in(&range, true).unwrap()).len(), 1);
    kv.set("p:2", "2").unwrap();
    kv.delete("p:1").unwrap();
    assert_eq!(
        pairs(kv.iter_in(&range, true).unwrap()),
        [(b"p:2".to_vec(), b"2".to_vec())]
    );
    // Another handle (its own connections, as another process has) writes.
    let other = open(dir.path(), &key);
    other.set("p:0", "0").unwrap();
    assert_eq!(
        kv.keys_with_prefix("p:").unwrap(),
        [b"p:0".to_vec(), b"p:2".to_vec()]
    );
    // An iterator keeps its snapshot while writes go on.
    let iter = kv.iter_in(&range, true).unwrap();
    kv.set("p:3", "3").unwrap();
    other.delete("p:0").unwrap();
    assert_eq!(
        pairs(iter),
        [
            (b"p:0".to_vec(), b"0".to_vec()),
            (b"p:2".to_vec(), b"2".to_vec())
        ]
    );
    assert_eq!(
        kv.keys_with_prefix("p:").unwrap(),
        [b"p:2".to_vec(), b"p:3".to_vec()]
    );
}

#[test]
fn the_empty_name_opens_the_default_database() {
    let dir = tempfile::tempdir().unwrap();
    let key = EncryptKey::generate();
    let opts = options(dir.path(), std::slice::from_ref(&key));
    let unnamed = Kv::open_with("", &opts).unwrap();
    assert_eq!(unnamed.name(), charm_kv::DEFAULT_DATABASE);
    unnamed.set("k", "v").unwrap();
    let named = Kv::open_with("charm.sh.kv.user.default", &opts).unwrap();
    assert_eq!(named.get("k").unwrap(), b"v");
    assert_eq!(
        charm_kv::list_databases(&opts).unwrap(),
        ["charm.sh.kv.user.default"]
    );
}

#[test]
fn closed_handles_and_bad_names_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let key = EncryptKey::generate();
    let kv = open(dir.path(), &key);
    let clone = kv.clone();
    kv.close().unwrap();
    kv.close().unwrap();
    assert!(clone.is_closed());
    assert_eq!(clone.get("a").unwrap_err().kind(), ErrorKind::Closed);
    assert_eq!(clone.set("a", "b").unwrap_err().kind(), ErrorKind::Closed);
    assert_eq!(clone.keys().unwrap_err().kind(), ErrorKind::Closed);
    for name in ["../escape", "a/b", ".."] {
        let err =
            Kv::open_with(name, &options(dir.path(), std::slice::from_ref(&key))).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{name:?}");
    }
    // A Badger directory of the same name is left alone.
    let badger = dir.path().join("localhost/kv/legacy");
    std::fs::create_dir_all(&badger).unwrap();
    std::fs::write(badger.join("MANIFEST"), b"badger").unwrap();
    let kv = Kv::open_with("legacy", &options(dir.path(), std::slice::from_ref(&key))).unwrap();
    kv.set("k", "v").unwrap();
    assert_eq!(std::fs::read(badger.join("MANIFEST")).unwrap(), b"badger");
}

#[test]
fn a_file_that_is_not_a_database_is_corrupt_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let kv_dir = dir.path().join("localhost/kv");
    std::fs::create_dir_all(&kv_dir).unwrap();
    let garbage = vec![0x42u8; 8192];
    std::fs::write(kv_dir.join("test.sqlite"), &garbage).unwrap();
    let err = Kv::open_with("test", &options(dir.path(), &[EncryptKey::generate()])).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    assert_eq!(std::fs::read(kv_dir.join("test.sqlite")).unwrap(), garbage);
}

#[test]
fn list_and_delete_databases() {
    let dir = tempfile::tempdir().unwrap();
    let key = EncryptKey::generate();
    let opts = options(dir.path(), std::slice::from_ref(&key));
    assert!(charm_kv::list_databases(&opts).unwrap().is_empty());
    for name in ["b", "a", "c.d"] {
        Kv::open_with(name, &opts).unwrap().set("k", "v").unwrap();
    }
    std::fs::create_dir_all(dir.path().join("localhost/kv/badgerdir")).unwrap();
    assert_eq!(charm_kv::list_databases(&opts).unwrap(), ["a", "b", "c.d"]);
    charm_kv::delete_database(&opts, "a").unwrap();
    assert_eq!(charm_kv::list_databases(&opts).unwrap(), ["b", "c.d"]);
    assert_eq!(
        charm_kv::delete_database(&opts, "a").unwrap_err().kind(),
        ErrorKind::NotFound
    );
    let reopened = Kv::open_with("a", &opts).unwrap();
    assert!(reopened.keys().unwrap().is_empty());
}

#[test]
fn readers_keep_reading_while_a_writer_commits() {
    let dir = tempfile::tempdir().unwrap();
    let kv = open(dir.path(), &EncryptKey::generate());
    for i in 0..100 {
        kv.set(format!("k{i:03}"), format!("v{i}-0")).unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));
    let (first_read, reading) = std::sync::mpsc::channel();
    let readers: Vec<_> = (0..4)
        .map(|t| {
            let (kv, stop, reads, first_read) =
                (kv.clone(), stop.clone(), reads.clone(), first_read.clone());
            thread::spawn(move || {
                let mut i = t;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("k{:03}", i % 100);
                    let value = kv.get(&key).unwrap();
                    assert!(value.starts_with(format!("v{}-", i % 100).as_bytes()));
                    if i % 50 == 0 {
                        assert_eq!(kv.keys().unwrap().len(), 100);
                    }
                    reads.fetch_add(1, Ordering::Relaxed);
                    if i == t {
                        first_read.send(()).unwrap();
                    }
                    i += 1;
                }
            })
        })
        .collect();
    // The writer starts once every reader has read (on a loaded machine a thread may
    // not run for a while after a barrier), and they go on until it ends.
    drop(first_read);
    for _ in 0..4 {
        reading
            .recv()
            .expect("a reader failed before its first read");
    }
    for round in 1..=20 {
        let mut batch = kv.batch();
        for i in 0..100 {
            batch.set(format!("k{i:03}"), format!("v{i}-{round}"));
        }
        batch.commit().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().unwrap();
    }
    assert!(reads.load(Ordering::Relaxed) > 0);
    assert_eq!(kv.get("k042").unwrap(), b"v42-20");
}

#[test]
fn many_threads_write_through_one_handle_without_losing_anything() {
    let dir = tempfile::tempdir().unwrap();
    let kv = open(dir.path(), &EncryptKey::generate());
    let writers: Vec<_> = (0..8)
        .map(|t| {
            let kv = kv.clone();
            thread::spawn(move || {
                for i in 0..50 {
                    kv.set(format!("t{t}-{i}"), format!("{t}:{i}")).unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    assert_eq!(kv.keys().unwrap().len(), 400);
    assert_eq!(kv.get("t7-49").unwrap(), b"7:49");
}

#[test]
fn online_backup_while_reads_run_is_a_consistent_copy() {
    let dir = tempfile::tempdir().unwrap();
    let key = EncryptKey::generate();
    let kv = open(dir.path(), &key);
    for i in 0..2000 {
        kv.set(format!("k{i:05}"), vec![i as u8; 200])
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (first_read, reading) = std::sync::mpsc::channel();
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (kv, stop, first_read) = (kv.clone(), stop.clone(), first_read.clone());
            thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    assert_eq!(kv.get("k01234").unwrap().len(), 200);
                    if n == 0 {
                        first_read.send(()).unwrap();
                    }
                    n += 1;
                }
                n
            })
        })
        .collect();
    // The backup starts once both readers read (on a loaded machine a thread may not
    // run for a while), and they go on until it ends.
    drop(first_read);
    for _ in 0..2 {
        reading
            .recv()
            .expect("a reader failed before its first read");
    }
    let writer = {
        let kv = kv.clone();
        thread::spawn(move || {
            for i in 0..50 {
                kv.set(format!("late{i}"), "x").unwrap();
            }
        })
    };
    let copy = dir.path().join("copy.sqlite");
    kv.backup_to(&copy).unwrap();
    writer.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    assert_eq!(
        kv.backup_to(&copy).unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );

    // The copy is a complete database that opens with the same key.
    let conn = rusqlite::Connection::open(&copy).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    drop(conn);
    let copy_dir = tempfile::tempdir().unwrap();
    let kv_dir = copy_dir.path().join("localhost/kv");
    std::fs::create_dir_all(&kv_dir).unwrap();
    std::fs::rename(&copy, kv_dir.join("test.sqlite")).unwrap();
    let restored = open(copy_dir.path(), &key);
    let keys = restored.keys().unwrap();
    assert!(keys.len() >= 2000 && keys.len() <= 2050, "{}", keys.len());
    assert_eq!(restored.get("k01999").unwrap(), vec![1999u32 as u8; 200]);
}

/// Runs as a child process of `two_processes_share_one_database` (the parent re-runs
/// this test binary with only this test selected); does nothing otherwise.
#[test]
fn child_process_writer() {
    let (Ok(dir), Ok(text)) = (
        std::env::var("CHARM_KV_TEST_CHILD_DIR"),
        std::env::var("CHARM_KV_TEST_CHILD_KEY"),
    ) else {
        return;
    };
    let key = EncryptKey::from_text("id", text, None).unwrap();
    let kv = open(Path::new(&dir), &key);
    for i in 0..200 {
        let mut batch = kv.batch();
        batch
            .set(format!("child{i}"), format!("{i}"))
            .set("counter", format!("{i}"));
        batch.commit().unwrap();
    }
}

#[test]
fn two_processes_share_one_database() {
    let dir = tempfile::tempdir().unwrap();
    let key = EncryptKey::generate();
    let kv = open(dir.path(), &key);
    kv.set("parent", "here").unwrap();
    let mut child = support::test_child("store::child_process_writer")
        .env("CHARM_KV_TEST_CHILD_DIR", dir.path())
        .env("CHARM_KV_TEST_CHILD_KEY", key.text())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Read and write while the child commits batches; every batch is seen whole.
    let mut observations = 0;
    let mut i = 0;
    loop {
        let finished = child.try_wait().unwrap().is_some();
        kv.set(format!("parent{i}"), "p").unwrap();
        if let Ok(counter) = kv.get("counter") {
            let n: usize = String::from_utf8(counter).unwrap().parse().unwrap();
            assert_eq!(
                kv.get(format!("child{n}")).unwrap(),
                n.to_string().as_bytes()
            );
            // A listing made after that read sees at least the child's commits so far.
            let listed = kv.keys().unwrap();
            assert!(listed.iter().filter(|k| k.starts_with(b"child")).count() > n);
            observations += 1;
        }
        i += 1;
        if finished {
            break;
        }
    }
    assert!(child.wait().unwrap().success());
    assert!(observations > 0);
    let keys = kv.keys().unwrap();
    assert_eq!(keys.iter().filter(|k| k.starts_with(b"child")).count(), 200);
    assert_eq!(
        keys.iter().filter(|k| k.starts_with(b"parent")).count(),
        i + 1
    );
    assert_eq!(kv.get("counter").unwrap(), b"199");
}

#[test]
fn temporary_files_of_a_crashed_sync_are_removed_at_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let key = EncryptKey::generate();
    let kv = open(dir.path(), &key);
    let db = kv.path().unwrap();
    kv.close().unwrap();
    let kv_dir = db.parent().unwrap();
    let leftovers = [
        kv_dir.join(".test.sqlite.sync-download-123-00000000deadbeef.tmp"),
        kv_dir.join(".test.sqlite.sync-upload-123-00000000deadbeef.tmp"),
    ];
    for file in &leftovers {
        std::fs::write(file, b"encrypted snapshot bytes").unwrap();
    }
    let unrelated = kv_dir.join(".other.sqlite.sync-upload-1-0.tmp");
    std::fs::write(&unrelated, b"another database's").unwrap();
    let kv = open(dir.path(), &key);
    for file in &leftovers {
        assert!(!file.exists(), "{} left behind", file.display());
    }
    assert!(unrelated.exists(), "only this database's files are removed");
    kv.set("k", "v").unwrap();
}

#[test]
fn many_handles_create_one_new_database_at_the_same_moment() {
    for round in 0..30 {
        let dir = tempfile::tempdir().unwrap();
        let key = EncryptKey::generate();
        let start = Arc::new(Barrier::new(6));
        let openers: Vec<_> = (0..6)
            .map(|t| {
                let (dir, key, start) = (dir.path().to_owned(), key.clone(), start.clone());
                thread::spawn(move || {
                    start.wait();
                    let kv = open(&dir, &key);
                    kv.set(format!("t{t}"), "v").unwrap();
                })
            })
            .collect();
        for o in openers {
            o.join()
                .unwrap_or_else(|_| panic!("an opener failed in round {round}"));
        }
        assert_eq!(open(dir.path(), &key).keys().unwrap().len(), 6);
    }
}

/// `.cargo/config.toml` builds SQLite without the two process-wide mutexes on the read
/// path (docs/storage.md, "SQLite build"); this fails if that setting stops applying.
#[test]
fn sqlite_is_built_without_global_read_path_mutexes() {
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    let mut stmt = conn.prepare("PRAGMA compile_options").unwrap();
    let options: Vec<String> = stmt
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
        "{options:?}"
    );
    assert!(
        !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
        "{options:?}"
    );
}

/// The database file of `test` in `dir` and a connection to it from outside charm-kv.
fn raw_db(dir: &Path) -> (std::path::PathBuf, rusqlite::Connection) {
    let path = dir.join("localhost/charm-kv/test.sqlite");
    let conn = rusqlite::Connection::open(&path).unwrap();
    (path, conn)
}

/// Every file in `dir` and below, with its bytes.
fn snapshot_files(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(snapshot_files(&path));
        } else {
            let bytes = std::fs::read(&path).unwrap();
            found.push((path, bytes));
        }
    }
    found.sort();
    found
}

#[test]
fn a_foreign_sqlite_database_is_corrupt_and_left_unchanged() {
    let key = EncryptKey::generate();
    let foreign = [
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)",
        // Our names, but a view: table_info alone would take it for ours.
        "CREATE TABLE t (key BLOB, value BLOB); CREATE VIEW kv AS SELECT key, value FROM t; \
         CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID",
        // Ours plus an object of its own.
        "CREATE TABLE kv (key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID; \
         CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID; \
         CREATE TABLE notes (body TEXT)",
    ];
    for sql in foreign {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("localhost/charm-kv")).unwrap();
        let (_, conn) = raw_db(dir.path());
        conn.execute_batch(sql).unwrap();
        drop(conn);
        let before = snapshot_files(dir.path());
        let err =
            Kv::open_with("test", &options(dir.path(), std::slice::from_ref(&key))).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corrupt, "{sql}: {err}");
        assert!(err.to_string().contains("not a charm-kv database"), "{err}");
        // Besides the empty lock file every open takes first (docs/storage.md,
        // "Deleting a database").
        let lock = dir.path().join("localhost/charm-kv/test.sqlite.open-lock");
        assert_eq!(std::fs::metadata(&lock).unwrap().len(), 0);
        std::fs::remove_file(lock).unwrap();
        assert_eq!(snapshot_files(dir.path()), before, "{sql}: files changed");
    }
}

#[test]
fn a_charm_kv_database_of_an_older_version_opens_and_is_upgraded() {
    let dir = tempfile::tempdir().unwrap();
    let key = EncryptKey::generate();
    let kv = open(dir.path(), &key);
    kv.set("k", "v").unwrap();
    kv.close().unwrap();
    // Before leveled deltas: four tables (no sync_changes, no changes_since row).
    let (_, conn) = raw_db(dir.path());
    // ANALYZE adds SQLite's own sqlite_stat tables: not foreign objects.
    conn.execute_batch(
        "DROP TABLE sync_changes; DELETE FROM sync_state WHERE name = 'changes_since'; \
         ANALYZE",
    )
    .unwrap();
    drop(conn);
    let kv = open(dir.path(), &key);
    assert_eq!(kv.get("k").unwrap(), b"v");
    kv.set("k2", "v2").unwrap();
    kv.close().unwrap();
    let (_, conn) = raw_db(dir.path());
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 5);
}

#[test]
fn rows_of_the_wrong_type_are_corrupt_not_io() {
    let dir = tempfile::tempdir().unwrap();
    let key = EncryptKey::generate();
    let kv = open(dir.path(), &key);
    kv.set("k", "v").unwrap();
    let (_, conn) = raw_db(dir.path());
    conn.execute("UPDATE kv SET value = 42", []).unwrap();
    let err = kv.get("k").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    let mut buf = [0u8; 16];
    assert_eq!(
        kv.get_into("k", &mut buf).unwrap_err().kind(),
        ErrorKind::Corrupt
    );
    let mut iter = kv.iter().unwrap();
    assert_eq!(iter.next().unwrap().unwrap_err().kind(), ErrorKind::Corrupt);
    assert!(iter.next().is_none());
    // A key of the wrong type: the listing says so per row too.
    conn.execute("INSERT INTO kv (key, value) VALUES (7, x'00')", [])
        .unwrap();
    assert_eq!(kv.keys().unwrap_err().kind(), ErrorKind::Corrupt);
    assert_eq!(kv.iter().err().unwrap().kind(), ErrorKind::Corrupt);
}

#[test]
fn a_tampered_key_row_is_reported_alone_and_the_rest_reads() {
    let dir = tempfile::tempdir().unwrap();
    let key = EncryptKey::generate();
    let kv = open(dir.path(), &key);
    for k in ["a", "b", "c"] {
        kv.set(k, k.to_uppercase()).unwrap();
    }
    let (_, conn) = raw_db(dir.path());
    let stored: Vec<u8> = conn
        .query_row("SELECT key FROM kv LIMIT 1", [], |r| r.get(0))
        .unwrap();
    let mut tampered = stored.clone();
    tampered[0] ^= 1;
    conn.execute(
        "UPDATE kv SET key = ?1 WHERE key = ?2",
        (&tampered, &stored),
    )
    .unwrap();

    let err = kv.keys().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    assert!(err.to_string().contains("1 of 3 stored keys"), "{err}");
    for direction in [Direction::Forward, Direction::Reverse] {
        let items: Vec<_> = kv.iter_with(direction, true).unwrap().collect();
        assert_eq!(items.len(), 3);
        let pairs: Vec<_> = items[..2].iter().map(|i| i.as_ref().unwrap()).collect();
        let mut expected: Vec<_> = ["a", "b", "c"]
            .iter()
            .map(|k| (k.as_bytes().to_vec(), k.to_uppercase().into_bytes()))
            .filter(|(k, _)| kv.get(k).is_ok())
            .collect();
        if direction == Direction::Reverse {
            expected.reverse();
        }
        assert_eq!(pairs, expected.iter().collect::<Vec<_>>());
        let err = items[2].as_ref().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
        let prefix: String = tampered[..8].iter().map(|b| format!("{b:02x}")).collect();
        assert!(err.to_string().contains(&prefix), "{err}");
    }
}

#[test]
fn deleting_a_missing_database_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(dir.path(), &[EncryptKey::generate()]);
    let err = charm_kv::delete_database(&opts, "nosuch").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(
        err.to_string()
            .starts_with("no database named \"nosuch\" in "),
        "{err}"
    );
    let long = "n".repeat(64 * 1024);
    let err = charm_kv::delete_database(&opts, &long).unwrap_err();
    assert!(
        err.to_string().len() < 200,
        "{} bytes",
        err.to_string().len()
    );
}

#[test]
fn a_relative_data_dir_that_reads_as_a_uri_stays_a_path() {
    // Run in a fresh directory: the relative data dir lands there.
    let dir = tempfile::tempdir().unwrap();
    let status = support::test_child("store::uri_data_dir_child")
        .current_dir(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    assert!(!dir.path().join("escaped.sqlite").exists());
    assert!(dir
        .path()
        .join("file:escaped.sqlite?x=/localhost/charm-kv/test.sqlite")
        .is_file());
}

/// Run by the test above in its own working directory.
#[test]
#[ignore = "run as a child process by a_relative_data_dir_that_reads_as_a_uri_stays_a_path"]
fn uri_data_dir_child() {
    let kv = open(Path::new("file:escaped.sqlite?x="), &EncryptKey::generate());
    kv.set("k", "v").unwrap();
    let backup = Path::new("file:copy.db?mode=memory");
    kv.backup_to(backup).unwrap();
    assert!(backup.is_file() && std::fs::metadata(backup).unwrap().len() > 0);
}

fn read_only_options(dir: &Path, key: &EncryptKey) -> Options {
    let mut options = options(dir, std::slice::from_ref(key));
    options.read_only(true);
    options
}

/// Every kind of write through `kv` fails with `ReadOnly`, and nothing changes.
fn assert_writes_refused(kv: &Kv) {
    let refused = [
        ("set", kv.set("a", "changed")),
        ("delete", kv.delete("a")),
        ("batch", {
            let mut batch = kv.batch();
            batch.set("b", "x");
            batch.commit()
        }),
        ("sync", kv.sync()),
        ("reset", kv.reset(true)),
        (
            "sync_if_stale",
            kv.sync_if_stale(std::time::Duration::ZERO).map(|_| ()),
        ),
    ];
    for (what, outcome) in refused {
        let err = outcome.expect_err(what);
        assert_eq!(err.kind(), ErrorKind::ReadOnly, "{what}: {err}");
        assert!(err.to_string().contains("read-only"), "{what}: {err}");
    }
    assert_eq!(kv.get("a").unwrap(), b"1");
    assert_eq!(kv.get("b").unwrap_err().kind(), ErrorKind::NotFound);
}

#[test]
fn a_read_only_handle_reads_a_data_dir_it_cannot_write() {
    let dir = tempfile::tempdir().unwrap();
    let key = EncryptKey::generate();
    let kv = open(dir.path(), &key);
    for i in 0..20 {
        kv.set(format!("k{i}"), format!("v{i}")).unwrap();
    }
    kv.set("a", "1").unwrap();
    let path = kv.path().unwrap();
    kv.close().unwrap();
    drop(kv);
    let before = std::fs::read(&path).unwrap();
    let guard = readonly_dir::ReadOnlyDir::new(dir.path());
    let how = guard.mechanism();
    // What every open did before read-only handles: fail on the directory.
    let err = Kv::open_with("test", &options(dir.path(), std::slice::from_ref(&key)))
        .expect_err("a read-write open cannot work here");
    assert_ne!(err.kind(), ErrorKind::ReadOnly, "{how}: {err}");

    let kv = Kv::open_with("test", &read_only_options(dir.path(), &key))
        .unwrap_or_else(|e| panic!("{how}: {e}"));
    assert!(kv.is_read_only());
    assert_eq!(kv.get("k7").unwrap(), b"v7");
    assert_eq!(kv.keys().unwrap().len(), 21);
    let pairs: Vec<_> = kv.iter().unwrap().map(Result::unwrap).collect();
    assert_eq!(pairs.len(), 21);
    assert_eq!(kv.status().unwrap().pending_writes, 21);
    assert_writes_refused(&kv);
    let err = charm_kv::delete_database(&read_only_options(dir.path(), &key), "test").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ReadOnly, "{err}");
    // A second handle at the same time, and a database that does not exist.
    let again = Kv::open_with("test", &read_only_options(dir.path(), &key)).unwrap();
    assert_eq!(again.get("k19").unwrap(), b"v19");
    let err = Kv::open_with("other", &read_only_options(dir.path(), &key)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    drop((kv, again, guard));
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "the file was not written"
    );
}

#[test]
fn a_read_only_open_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let key = EncryptKey::generate();
    let err = Kv::open_with("test", &read_only_options(dir.path(), &key)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    // Without given keys: no identity and no key is generated.
    let mut account = Options::new();
    account.data_dir(dir.path()).read_only(true);
    let err = Kv::open_with("test", &account).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Keys, "{err}");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "created something"
    );
}

#[test]
fn a_read_only_open_reads_the_account_keys_and_the_old_folder_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let mut account = Options::new();
    account.data_dir(dir.path());
    let kv = Kv::open_with("test", &account).unwrap();
    kv.set("a", "1").unwrap();
    let path = kv.path().unwrap();
    drop(kv);
    // Where an earlier version kept it.
    let old_dir = path.parent().unwrap().parent().unwrap().join("kv");
    std::fs::create_dir(&old_dir).unwrap();
    let old = old_dir.join(path.file_name().unwrap());
    std::fs::rename(&path, &old).unwrap();
    let mut read_only = account.clone();
    read_only.read_only(true);
    let kv = Kv::open_with("test", &read_only).unwrap();
    assert_eq!(kv.path().unwrap(), old, "not moved");
    assert_eq!(kv.get("a").unwrap(), b"1");
    assert_writes_refused(&kv);
    assert!(!path.exists());
}

/// The database file next to its `-wal` and `-shm` names.
fn db_files(path: &Path) -> [std::path::PathBuf; 3] {
    let suffixed = |s: &str| std::path::PathBuf::from(format!("{}{s}", path.display()));
    [path.to_owned(), suffixed("-wal"), suffixed("-shm")]
}

/// Header bytes 18 and 19: (2, 2) in WAL mode, (1, 1) in rollback-journal mode.
fn journal_header(path: &Path) -> (u8, u8) {
    let header = std::fs::read(path).unwrap();
    (header[18], header[19])
}

/// Opens, reads and closes the database of data dir `dir` (its file is `path`)
/// read-only while nothing under `root` can be written; checks that the file's bytes
/// and mtime did not change and that no `-wal` or `-shm` appeared.
fn read_only_from_unwritable_dir(
    root: &Path,
    dir: &Path,
    key: &EncryptKey,
    path: &Path,
    expected: usize,
) {
    let bytes = std::fs::read(path).unwrap();
    let mtime = std::fs::metadata(path).unwrap().modified().unwrap();
    let guard = readonly_dir::ReadOnlyDir::new(root);
    let how = guard.mechanism();
    let kv = Kv::open_with("test", &read_only_options(dir, key))
        .unwrap_or_else(|e| panic!("{how}: {e}"));
    assert_eq!(kv.get("a").unwrap(), b"1", "{how}");
    assert_eq!(kv.keys().unwrap().len(), expected, "{how}");
    let pairs: Vec<_> = kv.iter().unwrap().map(Result::unwrap).collect();
    assert_eq!(pairs.len(), expected, "{how}");
    assert_writes_refused(&kv);
    drop(kv);
    drop(guard);
    assert_eq!(std::fs::read(path).unwrap(), bytes, "the file was written");
    assert_eq!(
        std::fs::metadata(path).unwrap().modified().unwrap(),
        mtime,
        "the file's mtime changed"
    );
    let [_, wal, shm] = db_files(path);
    assert!(!wal.exists() && !shm.exists(), "a -wal or -shm was created");
}

/// A closed database stays in WAL mode with no other file (the close checkpoints and
/// removes `-wal` and `-shm`); a read-only handle where none can be created reads it
/// (immutable), writing nothing. A file an older charm-kv closed in rollback mode is
/// switched to WAL by the next read-write open, and a WAL file is not rewritten by one.
#[test]
fn a_closed_database_stays_in_wal_mode_and_reads_read_only_where_nothing_can_be_created() {
    let dir = tempfile::tempdir().unwrap();
    let key = EncryptKey::generate();
    let kv = open(dir.path(), &key);
    kv.set("a", "1").unwrap();
    kv.set("x", "2").unwrap();
    let path = kv.path().unwrap();
    drop(kv);
    let [_, wal, shm] = db_files(&path);
    assert_eq!(journal_header(&path), (2, 2), "switched out of WAL mode");
    assert!(!wal.exists() && !shm.exists());
    read_only_from_unwritable_dir(dir.path(), dir.path(), &key, &path, 2);

    // A read-write open of a WAL-mode file that only reads writes nothing to it.
    let bytes = std::fs::read(&path).unwrap();
    let kv = open(dir.path(), &key);
    assert_eq!(kv.get("x").unwrap(), b"2");
    drop(kv);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "an open and close wrote"
    );

    // As an older charm-kv closed it: rollback mode. One read-write open switches it.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode=DELETE", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "delete");
    drop(conn);
    assert_eq!(journal_header(&path), (1, 1));
    read_only_from_unwritable_dir(dir.path(), dir.path(), &key, &path, 2);
    let kv = open(dir.path(), &key);
    kv.set("y", "3").unwrap();
    drop(kv);
    assert_eq!(journal_header(&path), (2, 2));
    assert!(!wal.exists() && !shm.exists());
    read_only_from_unwritable_dir(dir.path(), dir.path(), &key, &path, 3);
}

/// Where the directory can be written, a read-only handle is a normal WAL reader (never
/// immutable): it sees other handles' commits as they happen, and it never writes the
/// database file; SQLite's `-wal` and `-shm` go at the next read-write close.
#[test]
fn a_read_only_handle_in_a_writable_directory_sees_later_commits() {
    let dir = tempfile::tempdir().unwrap();
    let key = EncryptKey::generate();
    let kv = open(dir.path(), &key);
    kv.set("a", "1").unwrap();
    let path = kv.path().unwrap();
    drop(kv);
    let bytes = std::fs::read(&path).unwrap();
    let reader = Kv::open_with("test", &read_only_options(dir.path(), &key)).unwrap();
    assert_eq!(reader.get("a").unwrap(), b"1");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "a read-only open wrote"
    );
    let writer = open(dir.path(), &key);
    writer.set("later", "2").unwrap();
    assert_eq!(reader.get("later").unwrap(), b"2", "an immutable reader");
    drop(reader);
    drop(writer);
    let [_, wal, shm] = db_files(&path);
    assert!(!wal.exists() && !shm.exists());
    assert_eq!(journal_header(&path), (2, 2));
}

/// The immutable open goes through a URI built from the path: characters a URI gives
/// a meaning to must stay part of the file name.
#[test]
fn a_read_only_handle_reads_a_data_dir_whose_path_reads_as_a_uri() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir
        .path()
        .join("file:")
        .join("a b?immutable=0&mode=memory#frag %41%")
        .join("file:x.db?vfs=unix-none");
    std::fs::create_dir_all(&data_dir).unwrap();
    let key = EncryptKey::generate();
    let kv = open(&data_dir, &key);
    kv.set("a", "1").unwrap();
    let path = kv.path().unwrap();
    drop(kv);
    assert!(path.starts_with(&data_dir), "{}", path.display());
    assert_eq!(journal_header(&path), (2, 2));
    read_only_from_unwritable_dir(dir.path(), &data_dir, &key, &path, 1);
}

/// A WAL-mode file whose `-wal` is there (a writer was killed before it checkpointed)
/// must not be read immutable (the commits in the `-wal` would be missing): where the
/// `-shm` cannot be created, the refusal says what to do.
#[test]
fn a_wal_file_with_its_log_in_a_directory_that_cannot_be_written_is_never_read_stale() {
    let dir = tempfile::tempdir().unwrap();
    let key = EncryptKey::generate();
    let kv = open(dir.path(), &key);
    kv.set("a", "1").unwrap();
    let path = kv.path().unwrap();
    drop(kv);
    let [_, wal, shm] = db_files(&path);
    // A commit left in the -wal, as a killed writer leaves it: the file as it was
    // before, and the -wal copied while the handle that wrote was open (the
    // checkpoint threshold is far).
    let file_before = std::fs::read(&path).unwrap();
    let kv = open(dir.path(), &key);
    kv.set("a", "in the wal").unwrap();
    let saved_wal = std::fs::read(&wal).unwrap();
    assert!(!saved_wal.is_empty());
    drop(kv);
    std::fs::write(&path, &file_before).unwrap();
    std::fs::write(&wal, &saved_wal).unwrap();
    assert!(!shm.exists());
    let guard = readonly_dir::ReadOnlyDir::new(dir.path());
    let how = guard.mechanism();
    let err = Kv::open_with("test", &read_only_options(dir.path(), &key))
        .map(|kv| kv.get("a"))
        .expect_err("read without the commit in the -wal, or with a -shm made");
    assert_eq!(err.kind(), ErrorKind::ReadOnly, "{how}: {err}");
    assert!(err.to_string().contains("with a -wal file"), "{err}");
    drop(guard);
    // Opened read-write, the commit in the -wal is recovered.
    assert_eq!(open(dir.path(), &key).get("a").unwrap(), b"in the wal");
}

#[test]
fn a_read_only_handle_asking_a_server_creates_no_identity() {
    let dir = tempfile::tempdir().unwrap();
    let key = EncryptKey::generate();
    // A server that is configured but not there; the keys are given, so writing
    // needs no identity.
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = options(dir.path(), std::slice::from_ref(&key));
    server
        .host(Some("127.0.0.1".into()))
        .ssh_port(closed_port)
        .http_port(closed_port)
        .auto_push(false);
    Kv::open_with("test", &server)
        .unwrap()
        .set("a", "1")
        .unwrap();
    let mut read_only = server.clone();
    read_only.read_only(true);
    let kv = Kv::open_with("test", &read_only).unwrap();
    let status = kv.status_with_remote().unwrap();
    match &status.remote {
        charm_kv::RemoteStatus::Unreachable(e) => assert_eq!(e.kind(), ErrorKind::Keys, "{e}"),
        other => panic!("{other:?}"),
    }
    let data_path = dir.path().join("127.0.0.1");
    assert!(
        !data_path.join("charm_ed25519").exists(),
        "an identity was made"
    );
    assert_eq!(kv.get("a").unwrap(), b"1");
}

/// Rounds of open, write, close in [`open_write_close_child`].
const CLOSE_RACE_ROUNDS: usize = 30;

/// Runs as a child process of `a_close_racing_writes_of_another_process_loses_nothing`:
/// opens the database, writes a key and closes it, round after round, so each close
/// races with the parent, which has the file open and writes.
/// Does nothing otherwise.
#[test]
fn open_write_close_child() {
    let (Ok(dir), Ok(text)) = (
        std::env::var("CHARM_KV_TEST_CLOSE_RACE_DIR"),
        std::env::var("CHARM_KV_TEST_CLOSE_RACE_KEY"),
    ) else {
        return;
    };
    let key = EncryptKey::from_text("id", text, None).unwrap();
    for round in 0..CLOSE_RACE_ROUNDS {
        let kv = open(Path::new(&dir), &key);
        kv.set(format!("child{round}"), round.to_string()).unwrap();
        kv.close().unwrap();
    }
}

/// The last connection to close a database checkpoints the WAL and removes the `-wal`
/// and `-shm` files (earlier versions also switched it to rollback mode). That needs the
/// file to itself: while another process (or another handle) has it open it must not
/// happen, never make the other wait, fail, or lose a write; a handle opening while
/// one closes must open.
#[test]
fn a_close_racing_writes_of_another_process_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let key = EncryptKey::generate();
    let kv = open(dir.path(), &key);
    kv.set("parent0", "p").unwrap();
    let path = kv.path().unwrap();
    // A second handle opened and closed while the first is open: opening once dropped
    // the first handle's file locks (see `create_private_file`), and the child's first
    // close then checkpointed and switched the file to rollback mode under it.
    drop(open(dir.path(), &key));
    let mut child = support::test_child("store::open_write_close_child")
        .env("CHARM_KV_TEST_CLOSE_RACE_DIR", dir.path())
        .env("CHARM_KV_TEST_CLOSE_RACE_KEY", key.text())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Write all along with one handle; every tenth write, open, write and close a
    // second one, so closes race with writes and opens in this process too.
    let mut writes = 1;
    let mut second_handle_rounds = 0;
    loop {
        let finished = child.try_wait().unwrap().is_some();
        kv.set(format!("parent{writes}"), "p").unwrap();
        writes += 1;
        if writes % 10 == 0 {
            let other = open(dir.path(), &key);
            other
                .set(format!("other{second_handle_rounds}"), "o")
                .unwrap();
            drop(other);
            second_handle_rounds += 1;
        }
        if finished {
            break;
        }
    }
    assert!(child.wait().unwrap().success());
    // The long-lived handle kept the file open through every other close: its -wal
    // and -shm are still there.
    assert_eq!(journal_header(&path), (2, 2));
    let [_, wal, shm] = db_files(&path);
    assert!(wal.exists() && shm.exists(), "removed while in use");
    let count = |kv: &Kv, prefix: &[u8]| {
        kv.keys()
            .unwrap()
            .iter()
            .filter(|k| k.starts_with(prefix))
            .count()
    };
    assert_eq!(count(&kv, b"child"), CLOSE_RACE_ROUNDS);
    assert_eq!(count(&kv, b"parent"), writes);
    assert_eq!(count(&kv, b"other"), second_handle_rounds);
    drop(kv);
    // Its close, the last, checkpointed: one self-contained file, in WAL mode.
    assert_eq!(journal_header(&path), (2, 2));
    assert!(
        !wal.exists() && !shm.exists(),
        "not checkpointed at the last close"
    );
    let conn = rusqlite::Connection::open(&path).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    drop(conn);
    let kv = open(dir.path(), &key);
    assert_eq!(count(&kv, b"child"), CLOSE_RACE_ROUNDS);
    assert_eq!(count(&kv, b"parent"), writes);
    let last = CLOSE_RACE_ROUNDS - 1;
    assert_eq!(
        kv.get(format!("child{last}")).unwrap(),
        last.to_string().as_bytes()
    );
}
