//! The committed seed inputs of the `snapshot_restore` fuzz target
//! (`fuzz/seeds/snapshot_restore/`): real snapshots made by the sync code, and damaged
//! ones. Fuzzing from valid files reaches the checks past "is this SQLite at all";
//! this test pins what verification says about each seed, so the seeds stay
//! meaningful and the checks stay in place.
//!
//! `cargo test --test it -- --ignored fuzz_seeds::regenerate` rewrites the seeds.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use charm_kv::crypto::seal::Sealer;
use charm_kv::store::{Op, Store};
use charm_kv::sync::{restore, snapshot};
use charm_kv::{EncryptKey, ErrorKind};

/// The key the fuzz target verifies with (fuzz/fuzz_targets/snapshot_restore.rs).
const FUZZ_KEY: &str =
    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==";
const OTHER_KEY: &str =
    "ZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmY=";

fn seeds_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/snapshot_restore")
}

fn sealer(text: &str) -> Sealer {
    Sealer::new(&[EncryptKey::from_text("fuzz", text, None).unwrap()]).unwrap()
}

/// A snapshot with a few rows, as a push would upload it.
fn snapshot_bytes(key: &str, seq: u64) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("db.sqlite"), sealer(key)).unwrap());
    let ops: Vec<Op> = [
        ("name", "charm"),
        ("\u{1}", "control-character key"),
        ("bin\0ary", ""),
    ]
    .iter()
    .map(|(k, v)| Op::set(k.as_bytes(), v.as_bytes()))
    .collect();
    store.write(&ops).unwrap();
    let dest = dir.path().join("snapshot.sqlite");
    snapshot::create(&store, &dest, seq).unwrap();
    std::fs::read(dest).unwrap()
}

/// A delta on version 6, as a push would upload it: two sets and a deletion.
fn delta_bytes(seq: u64) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("db.sqlite"), sealer(FUZZ_KEY)).unwrap());
    let op = |k: &str, v: Option<&str>| Op {
        key: k.as_bytes().to_vec(),
        value: v.map(|v| v.as_bytes().to_vec()),
        expires_at: None,
    };
    store
        .write(&[op("name", Some("charm")), op("gone", Some("x"))])
        .unwrap();
    store
        .write(&[op("gone", None), op("\u{1}", Some("control-character key"))])
        .unwrap();
    let dest = dir.path().join("delta.sqlite");
    snapshot::create_delta(&store, &dest, seq, 6, None).unwrap();
    std::fs::read(dest).unwrap()
}

/// A copy of a valid snapshot with one SQL statement run on it.
fn altered(sql: &str) -> Vec<u8> {
    altered_bytes(snapshot_bytes(FUZZ_KEY, 7), sql)
}

fn altered_bytes(bytes: Vec<u8>, sql: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sqlite");
    std::fs::write(&path, bytes).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(sql).unwrap();
    drop(conn);
    std::fs::read(path).unwrap()
}

/// Each seed, and what verification must answer for it.
fn seeds() -> Vec<(&'static str, Vec<u8>, Option<ErrorKind>)> {
    let valid = snapshot_bytes(FUZZ_KEY, 7);
    let half = valid[..valid.len() / 2].to_vec();
    vec![
        ("valid.sqlite", valid, None),
        (
            "other-account.sqlite",
            snapshot_bytes(OTHER_KEY, 3),
            Some(ErrorKind::Keys),
        ),
        ("truncated.sqlite", half, Some(ErrorKind::Corrupt)),
        (
            "extra-trigger.sqlite",
            altered("CREATE TRIGGER t AFTER INSERT ON kv BEGIN DELETE FROM meta; END;"),
            Some(ErrorKind::Corrupt),
        ),
        (
            "foreign-row.sqlite",
            altered(
                "INSERT INTO kv (key, value) VALUES (x'00112233445566778899aabbccddeeff00', x'01')",
            ),
            Some(ErrorKind::Keys),
        ),
        ("delta.sqlite", delta_bytes(7), None),
        (
            "delta-without-base.sqlite",
            altered_bytes(delta_bytes(7), "DELETE FROM meta WHERE name = 'delta_base'"),
            Some(ErrorKind::Corrupt),
        ),
        (
            "full-with-a-deletion.sqlite",
            altered(&format!(
                "INSERT INTO kv (key, value) VALUES (x'{}', x'')",
                hex::encode(sealer(FUZZ_KEY).writer().seal_key(b"deleted"))
            )),
            Some(ErrorKind::Corrupt),
        ),
    ]
}

#[test]
#[ignore = "rewrites fuzz/seeds/snapshot_restore; run by hand"]
fn regenerate() {
    let dir = seeds_dir();
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes, _) in seeds() {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

#[test]
fn committed_snapshot_seeds_verify_as_labelled() {
    let sealer = sealer(FUZZ_KEY);
    for (name, _, expected) in seeds() {
        let path = seeds_dir().join(name);
        assert!(
            path.exists(),
            "missing seed {name}: run the regenerate test"
        );
        let got = restore::verify(&path, &sealer, 1).map_err(|e| e.kind());
        match expected {
            None => assert_eq!(got.unwrap().max_version, 7, "{name}"),
            Some(kind) => assert_eq!(got.unwrap_err(), kind, "{name}"),
        }
    }
}
