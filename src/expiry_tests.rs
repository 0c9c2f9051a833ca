//! Expiry (TTL) through the public API, with a clock the tests move (no sleeping).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::store::Clock;
use crate::{EncryptKey, ErrorKind, KeyRange, Kv, Options};

/// A start time well inside the accepted range (2026-ish), in unix milliseconds.
const START: u64 = 1_790_000_000_000;

struct TestClock(Arc<AtomicU64>);

impl TestClock {
    fn new() -> TestClock {
        TestClock(Arc::new(AtomicU64::new(START)))
    }
    fn clock(&self) -> Clock {
        let now = Arc::clone(&self.0);
        Clock::from_fn(move || now.load(Ordering::SeqCst))
    }
    fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_millis() as u64, Ordering::SeqCst);
    }
}

fn options(dir: &std::path::Path, key: &EncryptKey, clock: &TestClock) -> Options {
    let mut options = Options::new();
    options
        .data_dir(dir)
        .encrypt_keys(vec![key.clone()])
        .clock(clock.clock());
    options
}

fn open(dir: &std::path::Path, clock: &TestClock) -> (Kv, EncryptKey) {
    let key = EncryptKey::generate();
    let kv = Kv::open_with("db", &options(dir, &key, clock)).unwrap();
    (kv, key)
}

/// The number of rows in the file, expired ones included.
fn rows(kv: &Kv) -> i64 {
    let store = kv.store().unwrap();
    let reader = store.reader().unwrap();
    reader
        .query_row("SELECT count(*) FROM kv", [], |r| r.get(0))
        .unwrap()
}

/// The format bytes of the stored values, sorted.
fn formats(kv: &Kv) -> Vec<u8> {
    let store = kv.store().unwrap();
    let reader = store.reader().unwrap();
    let mut stmt = reader
        .prepare("SELECT substr(value, 1, 1) FROM kv")
        .unwrap();
    let mut found: Vec<u8> = stmt
        .query_map([], |r| r.get::<_, Vec<u8>>(0))
        .unwrap()
        .map(|b| b.unwrap()[0])
        .collect();
    found.sort();
    found
}

fn not_found<T: std::fmt::Debug>(result: crate::Result<T>) -> bool {
    result.unwrap_err().kind() == ErrorKind::NotFound
}

#[test]
fn expired_keys_vanish_from_every_read_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new();
    let (kv, _) = open(dir.path(), &clock);
    kv.set("plain", "p").unwrap();
    kv.set_with_ttl("a:short", "s", Duration::from_secs(10))
        .unwrap();
    kv.set_with_ttl("a:long", "l", Duration::from_secs(3600))
        .unwrap();
    // Only values with an expiry use the new format.
    assert_eq!(formats(&kv), [1, 2, 2]);
    assert_eq!(kv.get("a:short").unwrap(), b"s");
    let all = |kv: &Kv| -> Vec<Vec<u8>> { kv.keys().unwrap() };
    assert_eq!(all(&kv), [&b"a:long"[..], b"a:short", b"plain"]);
    // The key list is cached now; the clock alone must hide the expired key from it.
    clock.advance(Duration::from_secs(10));
    assert!(not_found(kv.get("a:short")));
    let mut buf = [0u8; 16];
    assert!(not_found(kv.get_into("a:short", &mut buf)));
    assert!(not_found(kv.ttl("a:short")));
    assert_eq!(all(&kv), [&b"a:long"[..], b"plain"]);
    assert_eq!(kv.keys_with_prefix("a:").unwrap(), [b"a:long".to_vec()]);
    assert_eq!(
        kv.keys_in(&KeyRange::all().reverse()).unwrap(),
        [b"plain".to_vec(), b"a:long".to_vec()]
    );
    kv.with_keys(|keys| assert_eq!(keys.len(), 2)).unwrap();
    let pairs: Vec<_> = kv.iter().unwrap().map(Result::unwrap).collect();
    assert_eq!(
        pairs,
        [
            (b"a:long".to_vec(), b"l".to_vec()),
            (b"plain".to_vec(), b"p".to_vec())
        ]
    );
    let keys_only = kv
        .iter_in(&KeyRange::all().prefix("a:"), false)
        .unwrap()
        .count();
    assert_eq!(keys_only, 1);
    // Nothing was purged by reading: the row is still there, invisible.
    assert_eq!(rows(&kv), 3);
    // A fresh handle (no cache, decrypting every key) hides it too.
    let other = Kv::open_with("db", kv.options()).unwrap();
    assert_eq!(all(&other), [&b"a:long"[..], b"plain"]);
    assert_eq!(other.iter_in(&KeyRange::all(), true).unwrap().count(), 2);
    // Just before its expiry the long one is there; at it, it is gone.
    clock.advance(Duration::from_millis(3_590_000 - 1));
    assert_eq!(kv.ttl("a:long").unwrap(), Some(Duration::from_millis(1)));
    clock.advance(Duration::from_millis(1));
    assert!(not_found(kv.get("a:long")));
    assert_eq!(all(&kv), [b"plain".to_vec()]);
}

#[test]
fn ttl_expire_and_persist() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new();
    let (kv, _) = open(dir.path(), &clock);
    kv.set("k", "v").unwrap();
    assert_eq!(kv.ttl("k").unwrap(), None);
    assert_eq!(kv.expires_at("k").unwrap(), None);
    assert!(not_found(kv.ttl("missing")));
    // persist of a key without expiry: success, nothing written.
    let pending = kv.pending_writes().unwrap();
    kv.persist("k").unwrap();
    assert_eq!(kv.pending_writes().unwrap(), pending);
    kv.expire("k", Duration::from_secs(60)).unwrap();
    assert_eq!(kv.ttl("k").unwrap(), Some(Duration::from_secs(60)));
    assert_eq!(
        kv.expires_at("k").unwrap(),
        Some(SystemTime::UNIX_EPOCH + Duration::from_millis(START + 60_000))
    );
    assert_eq!(
        kv.expires_at_unix_ms("k").unwrap(),
        Some((START + 60_000) as i64)
    );
    assert_eq!(kv.get("k").unwrap(), b"v", "expire keeps the value");
    clock.advance(Duration::from_secs(59));
    assert_eq!(kv.ttl("k").unwrap(), Some(Duration::from_secs(1)));
    kv.persist("k").unwrap();
    assert_eq!(kv.ttl("k").unwrap(), None);
    assert_eq!(formats(&kv), [1], "persist goes back to the old format");
    clock.advance(Duration::from_secs(3600));
    assert_eq!(kv.get("k").unwrap(), b"v");
    // Missing and expired keys are NotFound for expire and persist.
    assert!(not_found(kv.expire("missing", Duration::from_secs(1))));
    assert!(not_found(kv.persist("missing")));
    kv.set_with_ttl("gone", "g", Duration::from_secs(1))
        .unwrap();
    clock.advance(Duration::from_secs(1));
    assert!(not_found(kv.persist("gone")));
    assert!(not_found(kv.expire("gone", Duration::from_secs(5))));
    // An absolute time in the past deletes; one in the future expires then.
    kv.expire_at_unix_ms("k", (START - 1) as i64).unwrap();
    assert!(not_found(kv.get("k")));
    let at = clock.0.load(Ordering::SeqCst) + 5_000;
    kv.set_expiring_at_unix_ms("k", "w", at as i64).unwrap();
    assert_eq!(kv.expires_at_unix_ms("k").unwrap(), Some(at as i64));
    kv.set_expiring_at("past", "x", SystemTime::UNIX_EPOCH + Duration::from_secs(1))
        .unwrap();
    assert!(not_found(kv.get("past")));
    // A plain set drops the expiry.
    kv.set("k", "plain again").unwrap();
    assert_eq!(kv.ttl("k").unwrap(), None);
}

#[test]
fn bad_ttls_and_expiries_are_invalid_arguments_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new();
    let (kv, _) = open(dir.path(), &clock);
    kv.set("k", "v").unwrap();
    let invalid = |r: crate::Result<()>| r.unwrap_err().kind() == ErrorKind::InvalidArgument;
    assert!(invalid(kv.set_with_ttl("k", "x", Duration::ZERO)));
    assert!(invalid(kv.set_with_ttl("k", "x", Duration::MAX)));
    assert!(invalid(kv.set_with_ttl(
        "k",
        "x",
        Duration::from_secs(10_000 * 366 * 86_400)
    )));
    assert!(invalid(kv.expire("k", Duration::ZERO)));
    assert!(invalid(kv.expire_at_unix_ms("k", 0)));
    assert!(invalid(kv.expire_at_unix_ms("k", -5)));
    assert!(invalid(kv.set_expiring_at_unix_ms("k", "x", i64::MAX)));
    assert!(invalid(kv.set_expiring_at(
        "k",
        "x",
        SystemTime::UNIX_EPOCH - Duration::from_secs(1)
    )));
    assert!(invalid(kv.set_with_ttl("", "x", Duration::from_secs(1))));
    assert_eq!(kv.get("k").unwrap(), b"v");
    assert_eq!(kv.ttl("k").unwrap(), None);
}

#[test]
fn writes_purge_known_expired_rows_locally_and_syncs_purge_all() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new();
    let (kv, key) = open(dir.path(), &clock);
    kv.set_with_ttl("a", "1", Duration::from_secs(5)).unwrap();
    kv.set_with_ttl("b", "2", Duration::from_secs(50)).unwrap();
    let pending = kv.pending_writes().unwrap();
    clock.advance(Duration::from_secs(5));
    assert_eq!(rows(&kv), 2, "reads never purge");
    kv.set("c", "3").unwrap();
    assert_eq!(rows(&kv), 2, "a purged, c added");
    assert_eq!(kv.keys().unwrap(), [b"b".to_vec(), b"c".to_vec()]);
    // The purge is not a journaled write: only `c` is pending.
    assert_eq!(kv.pending_writes().unwrap(), pending + 1);
    // Another handle (another process, say) learns of `b` from its listing and then
    // purges it on its next write.
    let other = Kv::open_with("db", &options(dir.path(), &key, &clock)).unwrap();
    assert_eq!(other.keys().unwrap().len(), 2);
    clock.advance(Duration::from_secs(45));
    other.delete("nothing").unwrap();
    assert_eq!(rows(&other), 1);
    // A row rewritten without expiry since it was noted is not purged.
    kv.set_with_ttl("d", "4", Duration::from_secs(1)).unwrap();
    other.set("d", "kept").unwrap();
    clock.advance(Duration::from_secs(2));
    kv.set("e", "5").unwrap();
    assert_eq!(kv.get("d").unwrap(), b"kept");
    // A sync's purge scans the whole file: here, a key only another handle wrote.
    other
        .set_with_ttl("f", "6", Duration::from_secs(1))
        .unwrap();
    clock.advance(Duration::from_secs(1));
    let before = rows(&kv);
    assert_eq!(kv.store().unwrap().purge_expired().unwrap(), 1);
    assert_eq!(rows(&kv), before - 1);
}

#[test]
fn batches_set_with_ttl_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new();
    let (kv, _) = open(dir.path(), &clock);
    let mut batch = kv.batch();
    batch
        .set_with_ttl("t", "1", Duration::from_secs(10))
        .set_expiring_at_unix_ms("u", "2", (START + 20_000) as i64)
        .set("v", "3");
    assert_eq!(batch.get("t").unwrap(), b"1");
    clock.advance(Duration::from_secs(10));
    assert!(not_found(batch.get("t")), "a batch's own pair expires too");
    batch.commit().unwrap();
    // `t` expired before the commit: written as a delete.
    assert!(not_found(kv.get("t")));
    assert_eq!(kv.ttl("u").unwrap(), Some(Duration::from_secs(10)));
    assert_eq!(kv.ttl("v").unwrap(), None);
    // An invalid TTL fails the whole batch.
    let mut bad = kv.batch();
    bad.set("w", "4").set_with_ttl("x", "5", Duration::ZERO);
    assert_eq!(bad.commit().unwrap_err().kind(), ErrorKind::InvalidArgument);
    assert!(not_found(kv.get("w")));
}

#[test]
fn read_only_handles_hide_expired_keys_and_purge_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new();
    let (kv, key) = open(dir.path(), &clock);
    kv.set_with_ttl("t", "1", Duration::from_secs(10)).unwrap();
    kv.set("p", "2").unwrap();
    kv.close().unwrap();
    let mut read_only = options(dir.path(), &key, &clock);
    read_only.read_only(true);
    let ro = Kv::open_with("db", &read_only).unwrap();
    assert_eq!(ro.keys().unwrap().len(), 2);
    clock.advance(Duration::from_secs(10));
    assert!(not_found(ro.get("t")));
    assert_eq!(ro.keys().unwrap(), [b"p".to_vec()]);
    assert_eq!(ro.iter().unwrap().count(), 1);
    assert_eq!(ro.persist("p").unwrap_err().kind(), ErrorKind::ReadOnly);
    assert_eq!(rows(&ro), 2, "nothing purged");
}

#[test]
fn export_carries_expiries_and_import_honours_them() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new();
    let (kv, _) = open(dir.path(), &clock);
    kv.set("plain", "p").unwrap();
    kv.set_with_ttl("session", "s", Duration::from_secs(60))
        .unwrap();
    kv.set_with_ttl("stale", "x", Duration::from_secs(1))
        .unwrap();
    clock.advance(Duration::from_secs(1));
    let mut out = Vec::new();
    assert_eq!(crate::jsonl::export(&kv, &mut out).unwrap(), 2);
    let text = String::from_utf8(out).unwrap();
    let at = START + 60_000;
    assert_eq!(
        text,
        format!(
            "{{\"key\":\"plain\",\"value\":\"p\",\"key_base64\":false,\"value_base64\":false}}\n\
             {{\"key\":\"session\",\"value\":\"s\",\"key_base64\":false,\"value_base64\":false,\
             \"expires_at_unix_ms\":{at}}}\n"
        )
    );
    let target_dir = tempfile::tempdir().unwrap();
    let (target, _) = open(target_dir.path(), &clock);
    target.set("old", "o").unwrap();
    let input = format!(
        "{text}{{\"key\":\"old\",\"value\":\"expired\",\"expires_at_unix_ms\":{}}}\n",
        START
    );
    let count = crate::jsonl::import(&target, &mut input.as_bytes(), false).unwrap();
    assert_eq!(count, 2, "the expired line is not counted");
    assert_eq!(target.get("old").unwrap(), b"o", "and deletes nothing");
    assert_eq!(
        target.expires_at_unix_ms("session").unwrap(),
        Some(at as i64)
    );
    assert_eq!(target.ttl("plain").unwrap(), None);
}

/// In one import the last line of a key wins, an expired one too: it cancels the
/// earlier lines of its key, and leaves the value the database held before alone.
#[test]
fn a_later_expired_import_line_cancels_an_earlier_live_one_and_deletes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new();
    let (kv, _) = open(dir.path(), &clock);
    kv.set("held", "before").unwrap();
    let live = |key: &str, value: &str| format!("{{\"key\":\"{key}\",\"value\":\"{value}\"}}\n");
    let expired = |key: &str| {
        format!("{{\"key\":\"{key}\",\"value\":\"gone\",\"expires_at_unix_ms\":{START}}}\n")
    };
    let input = [
        live("new", "first"),
        expired("new"),
        live("held", "imported"),
        expired("held"),
        expired("back"),
        live("back", "again"),
    ]
    .concat();
    let count = crate::jsonl::import(&kv, &mut input.as_bytes(), false).unwrap();
    assert_eq!(count, 3, "live lines count, expired ones do not");
    assert!(not_found(kv.get("new")), "the earlier live line stayed");
    // An expired last line is not imported: the database keeps its own value (an old
    // export imported again deletes nothing set since).
    assert_eq!(kv.get("held").unwrap(), b"before");
    assert_eq!(kv.get("back").unwrap(), b"again");
    assert_eq!(kv.keys().unwrap(), [b"back".to_vec(), b"held".to_vec()]);
    assert_eq!(
        kv.pending_writes().unwrap(),
        2,
        "nothing journaled for `new`"
    );
}

/// After an expiry, listings show exactly the keys not expired (one expiring at this
/// very millisecond is not), and repeated listings at one time share one list instead
/// of filtering a copy each time, until the next expiry or a write.
#[test]
fn listings_after_an_expiry_are_exact_and_share_one_list() {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new();
    let (kv, _) = open(dir.path(), &clock);
    kv.set("plain", "p").unwrap();
    kv.set_with_ttl("a", "1", Duration::from_secs(10)).unwrap();
    kv.set_with_ttl("b", "2", Duration::from_secs(20)).unwrap();
    let keys =
        |list: &[&str]| -> Vec<Vec<u8>> { list.iter().map(|k| k.as_bytes().to_vec()).collect() };
    let store = kv.store().unwrap();
    // Two listings alive at once: the same list, or two copies.
    let shared = || {
        store
            .with_keys(|first| {
                store
                    .with_keys(|second| std::ptr::eq(first, second))
                    .unwrap()
            })
            .unwrap()
    };
    assert_eq!(kv.keys().unwrap(), keys(&["a", "b", "plain"]));
    assert!(shared());
    clock.advance(Duration::from_secs(10));
    assert_eq!(
        kv.keys().unwrap(),
        keys(&["b", "plain"]),
        "a expires at now"
    );
    assert!(shared(), "copied at every listing after an expiry");
    assert_eq!(kv.iter().unwrap().count(), 2);
    clock.advance(Duration::from_millis(9_999));
    assert_eq!(kv.keys().unwrap(), keys(&["b", "plain"]));
    assert!(shared());
    clock.advance(Duration::from_millis(1));
    assert_eq!(kv.keys().unwrap(), keys(&["plain"]), "b expires at now");
    assert!(shared());
    assert_eq!(kv.iter().unwrap().count(), 1);
    kv.set_with_ttl("c", "3", Duration::from_secs(5)).unwrap();
    assert_eq!(
        kv.keys().unwrap(),
        keys(&["c", "plain"]),
        "a write rebuilds the list"
    );
    assert!(shared());
    clock.advance(Duration::from_secs(5));
    assert_eq!(kv.keys().unwrap(), keys(&["plain"]));
    assert!(shared());
}
