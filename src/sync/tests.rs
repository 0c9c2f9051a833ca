//! The sync algorithm against an in-memory remote: ordering, concurrency and failure
//! cases that are hard to provoke on a real server. The same behaviours are tested
//! against a real `charm serve` in `tests/it/sync_server.rs`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::levels::{FANOUT, LEVELS};
use super::Remote;
use crate::error::{Error, Result};
use crate::{EncryptKey, ErrorKind, Kv, Options};

type Hook = Box<dyn FnOnce(&MemoryRemote) + Send>;

#[derive(Default)]
struct MemoryRemote {
    seq: AtomicU64,
    files: Mutex<BTreeMap<u64, Vec<u8>>>,
    /// Files the server is still writing: (whole contents, bytes written so far). Each
    /// listing sees them grow by a third; complete, they move to `files`.
    growing: Mutex<BTreeMap<u64, (Vec<u8>, usize)>>,
    /// Lengths as the last listing saw them.
    listed: Mutex<BTreeMap<u64, u64>>,
    fail_uploads: AtomicBool,
    fail_downloads: AtomicBool,
    downloads: AtomicU64,
    /// The writer of the growing files died: they stay as they are.
    growth_stalled: AtomicBool,
    uploads: AtomicU64,
    /// Runs once, just before the next ticket is drawn.
    on_next_seq: Mutex<Option<Hook>>,
    /// Runs once, at the start of the next upload.
    on_upload: Mutex<Option<Hook>>,
    /// Files the next listings leave out, with how many listings still do: a torn
    /// listing (the server's directory walk racing a retention removal or an upload).
    hidden: Mutex<BTreeMap<u64, u32>>,
}

impl MemoryRemote {
    /// What `seq` builds on: `None` for a full snapshot.
    fn delta_base(&self, seq: u64) -> Option<u64> {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), &self.files.lock().unwrap()[&seq]).unwrap();
        crate::sync::restore::file_meta(file.path())
            .unwrap()
            .delta_base
    }

    fn size(&self, seq: u64) -> usize {
        self.files.lock().unwrap()[&seq].len()
    }
}

impl Remote for MemoryRemote {
    fn current_seq(&self) -> Result<u64> {
        Ok(self.seq.load(Ordering::SeqCst))
    }
    fn next_seq(&self) -> Result<u64> {
        let hook = self.on_next_seq.lock().unwrap().take();
        if let Some(hook) = hook {
            hook(self);
        }
        Ok(self.seq.fetch_add(1, Ordering::SeqCst) + 1)
    }
    fn list(&self) -> Result<Vec<u64>> {
        let mut files = self.files.lock().unwrap();
        let mut growing = self.growing.lock().unwrap();
        let mut listed = self.listed.lock().unwrap();
        listed.clear();
        let step = |len: usize| match self.growth_stalled.load(Ordering::SeqCst) {
            true => 0,
            false => len.div_ceil(3),
        };
        for (&seq, (data, written)) in growing.iter_mut() {
            *written = (*written + step(data.len())).min(data.len());
            listed.insert(seq, *written as u64);
        }
        let done: Vec<u64> = growing
            .iter()
            .filter(|(_, (data, written))| *written == data.len())
            .map(|(&seq, _)| seq)
            .collect();
        for seq in done {
            let (data, _) = growing.remove(&seq).unwrap();
            files.insert(seq, data);
        }
        listed.extend(files.iter().map(|(&seq, data)| (seq, data.len() as u64)));
        let mut hidden = self.hidden.lock().unwrap();
        hidden.retain(|seq, listings| {
            listed.remove(seq);
            *listings -= 1;
            *listings > 0
        });
        Ok(listed.keys().copied().collect())
    }
    fn listed_size(&self, seq: u64) -> Option<u64> {
        self.listed.lock().unwrap().get(&seq).copied()
    }
    fn download(
        &self,
        seq: u64,
        out: &mut dyn Write,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<()> {
        if self.fail_downloads.load(Ordering::SeqCst) {
            return Err(Error::network("connection reset"));
        }
        self.downloads.fetch_add(1, Ordering::SeqCst);
        if let Some((data, written)) = self.growing.lock().unwrap().get(&seq) {
            // What the Charm remote sees: the file so far, which fails to decrypt (the
            // sasquatch stream lacks its last chunk).
            out.write_all(&data[..*written]).unwrap();
            return Err(Error::corrupt("truncated stream"));
        }
        let data = self
            .files
            .lock()
            .unwrap()
            .get(&seq)
            .cloned()
            .ok_or(Error::server(404, "file not found"))?;
        out.write_all(&data).map_err(|e| Error::io("test", e))?;
        progress(data.len() as u64, data.len() as u64);
        Ok(())
    }
    fn upload(&self, seq: u64, path: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result<()> {
        let hook = self.on_upload.lock().unwrap().take();
        if let Some(hook) = hook {
            hook(self);
        }
        if self.fail_uploads.load(Ordering::SeqCst) {
            return Err(Error::network("connection refused"));
        }
        let data = std::fs::read(path).unwrap();
        progress(data.len() as u64, data.len() as u64);
        self.files.lock().unwrap().insert(seq, data);
        self.uploads.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn remove(&self, seq: u64) -> Result<()> {
        self.files.lock().unwrap().remove(&seq);
        Ok(())
    }
}

const WAIT: Duration = Duration::from_millis(600);

fn device(dir: &Path, key: &EncryptKey) -> Kv {
    let mut options = Options::new();
    options.data_dir(dir).encrypt_keys(vec![key.clone()]);
    Kv::open_with("db", &options).unwrap()
}

fn sync(kv: &Kv, remote: &MemoryRemote) -> Result<()> {
    kv.sync_via(remote, &mut |_| {}, WAIT)
}

fn contents(kv: &Kv) -> Vec<(Vec<u8>, Vec<u8>)> {
    kv.iter().unwrap().map(Result::unwrap).collect()
}

#[test]
fn two_devices_round_trip_through_deltas() {
    let key = EncryptKey::generate();
    let remote = MemoryRemote::default();
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (device(a_dir.path(), &key), device(b_dir.path(), &key));

    sync(&a, &remote).unwrap();
    assert_eq!(remote.uploads.load(Ordering::SeqCst), 0, "nothing to push");
    for round in 0..5 {
        a.set(format!("a{round}"), "x").unwrap();
        sync(&a, &remote).unwrap();
        assert_eq!(a.pending_writes().unwrap(), 0);
    }
    assert_eq!(
        remote.list().unwrap(),
        vec![1, 2, 3, 4, 5],
        "a full snapshot, then deltas"
    );
    assert_eq!(remote.delta_base(1), None);
    for seq in 2..=5 {
        assert_eq!(remote.delta_base(seq), Some(seq - 1));
    }
    sync(&b, &remote).unwrap();
    assert_eq!(contents(&a), contents(&b));
    b.delete("a0").unwrap();
    b.set("b", "y").unwrap();
    sync(&b, &remote).unwrap();
    sync(&a, &remote).unwrap();
    assert_eq!(a.get("a0").unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(a.get("b").unwrap(), b"y");
    assert_eq!(contents(&a), contents(&b));
}

/// `sync_state.write_seq`, what an older charm-kv reads as the write counter.
fn recorded_write_seq(kv: &Kv) -> i64 {
    let store = kv.store().unwrap();
    let conn = store.reader().unwrap();
    conn.query_row(
        "SELECT value FROM sync_state WHERE name = 'write_seq'",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

#[test]
fn a_push_records_the_counters_it_uploaded_where_older_versions_read_them() {
    let key = EncryptKey::generate();
    let remote = MemoryRemote::default();
    let dir = tempfile::tempdir().unwrap();
    let kv = device(dir.path(), &key);
    for round in 0..3 {
        for i in 0..4 {
            kv.set(format!("k{round}-{i}"), "v").unwrap();
        }
        assert_eq!(
            recorded_write_seq(&kv),
            4 * round,
            "sets keep their counters in the journal alone"
        );
        sync(&kv, &remote).unwrap();
        assert_eq!(kv.pending_writes().unwrap(), 0);
        // Every counter the server now counts as included is at or below what an
        // older charm-kv would take as the last one, so it never hands one out again.
        assert_eq!(recorded_write_seq(&kv), 4 * (round + 1));
    }
    let other = tempfile::tempdir().unwrap();
    let b = device(other.path(), &key);
    sync(&b, &remote).unwrap();
    assert_eq!(contents(&b), contents(&kv));
}

/// What a set by an older charm-kv leaves in the file: it knows only
/// `sync_state.write_seq`, so its journal row and that row both get its value + 1.
fn set_as_older_version(kv: &Kv, key: &str, value: &str) {
    kv.set(key, value).unwrap();
    let store = kv.store().unwrap();
    let conn = store.writer();
    conn.execute_batch(
        "BEGIN IMMEDIATE;
         UPDATE sync_journal
             SET seq = (SELECT value + 1 FROM sync_state WHERE name = 'write_seq')
             WHERE seq = (SELECT max(seq) FROM sync_journal);
         UPDATE sync_state SET value = value + 1 WHERE name = 'write_seq';
         COMMIT;",
    )
    .unwrap();
}

#[test]
fn an_older_versions_set_during_a_push_is_not_counted_as_uploaded() {
    // The server counts the snapshot's writer mark (the journal's counter) as included
    // from the upload on, but `sync_state.write_seq` catches up only in
    // `record_upload`: an older charm-kv setting in between takes a counter at or
    // below the mark for a write the file lacks.
    let key = EncryptKey::generate();
    let remote = MemoryRemote::default();
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = device(a_dir.path(), &key);
    for i in 0..3 {
        a.set(format!("k{i}"), "v").unwrap();
    }
    let older = a.clone();
    *remote.on_upload.lock().unwrap() = Some(Box::new(move |_: &MemoryRemote| {
        set_as_older_version(&older, "late", "x");
    }));
    sync(&a, &remote).unwrap();
    assert_eq!(
        a.pending_writes().unwrap(),
        1,
        "the write made after the snapshot was taken is not in it"
    );
    sync(&a, &remote).unwrap();
    let b = device(b_dir.path(), &key);
    sync(&b, &remote).unwrap();
    assert_eq!(b.get("late").unwrap(), b"x");
}

#[test]
fn an_older_versions_set_after_a_push_that_died_before_recording_it_is_kept() {
    // A push uploads its file and the process dies before `record_upload`: the server
    // counts the journal's counter as included, `sync_state.write_seq` never heard of
    // it. An older charm-kv then writes with a counter at or below that mark.
    let key = EncryptKey::generate();
    let remote = MemoryRemote::default();
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let image = tempfile::tempdir().unwrap();
    let image_path = image.path().join("before-record.db");
    let a = device(a_dir.path(), &key);
    for i in 0..3 {
        a.set(format!("k{i}"), "v").unwrap();
    }
    let live = a.clone();
    let target = image_path.clone();
    *remote.on_upload.lock().unwrap() = Some(Box::new(move |_: &MemoryRemote| {
        // The file as the dying process leaves it: snapshot taken, nothing recorded.
        let store = live.store().unwrap();
        let conn = store.writer();
        conn.execute("VACUUM INTO ?1", [target.to_str().unwrap()])
            .unwrap();
    }));
    sync(&a, &remote).unwrap();
    {
        // Back to that state, in place (same file, same device).
        let store = a.store().unwrap();
        let conn = store.writer();
        conn.execute("ATTACH DATABASE ?1 AS image", [image_path.to_str().unwrap()])
            .unwrap();
        conn.execute_batch(
            "BEGIN IMMEDIATE;
             DELETE FROM main.kv; INSERT INTO main.kv SELECT * FROM image.kv;
             DELETE FROM main.meta; INSERT INTO main.meta SELECT * FROM image.meta;
             DELETE FROM main.sync_journal;
             INSERT INTO main.sync_journal SELECT * FROM image.sync_journal;
             DELETE FROM main.sync_state; INSERT INTO main.sync_state SELECT * FROM image.sync_state;
             DELETE FROM main.sync_changes;
             INSERT INTO main.sync_changes SELECT * FROM image.sync_changes;
             COMMIT;
             DETACH DATABASE image;",
        )
        .unwrap();
    }
    set_as_older_version(&a, "late", "x");
    sync(&a, &remote).unwrap();
    assert_eq!(a.get("late").unwrap(), b"x", "the older version's write survives");
    let b = device(b_dir.path(), &key);
    sync(&b, &remote).unwrap();
    assert_eq!(b.get("late").unwrap(), b"x");
}

#[test]
fn overwritten_value_reaches_the_other_host_and_survives_reset() {
    // The case users reported against the Go client.
    let key = EncryptKey::generate();
    let remote = MemoryRemote::default();
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (host1, host2) = (device(d1.path(), &key), device(d2.path(), &key));
    host1.set("foo", "original").unwrap();
    sync(&host1, &remote).unwrap();
    sync(&host2, &remote).unwrap();
    host2.set("foo", "overwritten").unwrap();
    sync(&host2, &remote).unwrap();
    sync(&host1, &remote).unwrap();
    assert_eq!(host1.get("foo").unwrap(), b"overwritten");
    host1.reset_via(&remote, false).unwrap();
    assert_eq!(host1.get("foo").unwrap(), b"overwritten");
    host2.reset_via(&remote, false).unwrap();
    assert_eq!(host2.get("foo").unwrap(), b"overwritten");
}

#[test]
fn failed_push_keeps_writes_pending_until_the_next_sync() {
    let key = EncryptKey::generate();
    let remote = MemoryRemote::default();
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let kv = device(d1.path(), &key);
    remote.fail_uploads.store(true, Ordering::SeqCst);
    kv.set("k1", "v1").unwrap();
    let mut batch = kv.batch();
    batch.set("k2", "v2").set("k3", "v3");
    batch.commit().unwrap();
    assert_eq!(sync(&kv, &remote).unwrap_err().kind(), ErrorKind::Network);
    assert_eq!(kv.pending_writes().unwrap(), 3);
    assert_eq!(
        kv.reset_via(&remote, false).unwrap_err().kind(),
        ErrorKind::PendingWrites
    );
    assert_eq!(
        kv.get("k1").unwrap(),
        b"v1",
        "refused reset changed nothing"
    );
    remote.fail_uploads.store(false, Ordering::SeqCst);
    sync(&kv, &remote).unwrap();
    assert_eq!(kv.pending_writes().unwrap(), 0);
    let other = device(d2.path(), &key);
    sync(&other, &remote).unwrap();
    assert_eq!(contents(&other).len(), 3);
}

#[test]
fn local_writes_merge_into_an_existing_remote() {
    let key = EncryptKey::generate();
    let remote = MemoryRemote::default();
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let online = device(d1.path(), &key);
    online.set("remote-only", "r").unwrap();
    online.set("both", "remote").unwrap();
    sync(&online, &remote).unwrap();
    // Data written offline (local mode) before this device ever synced.
    let offline = device(d2.path(), &key);
    offline.set("local-only", "l").unwrap();
    offline.set("both", "local, pushed later").unwrap();
    sync(&offline, &remote).unwrap();
    sync(&online, &remote).unwrap();
    let expected = vec![
        (b"both".to_vec(), b"local, pushed later".to_vec()),
        (b"local-only".to_vec(), b"l".to_vec()),
        (b"remote-only".to_vec(), b"r".to_vec()),
    ];
    assert_eq!(contents(&online), expected);
    assert_eq!(contents(&offline), expected);
}

#[test]
fn concurrent_devices_lose_no_acknowledged_write_and_converge() {
    let key = EncryptKey::generate();
    let remote = Arc::new(MemoryRemote::default());
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let devices: Vec<Kv> = dirs.iter().map(|d| device(d.path(), &key)).collect();
    let writers: Vec<_> = devices
        .iter()
        .enumerate()
        .map(|(n, kv)| {
            let (kv, remote) = (kv.clone(), remote.clone());
            std::thread::spawn(move || {
                for i in 0..8 {
                    kv.set(format!("dev{n}-{i}"), format!("{n}:{i}")).unwrap();
                    kv.set("contended", format!("{n}:{i}")).unwrap();
                    // A push may give up under contention; the writes stay pending.
                    let _ = sync(&kv, &remote);
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    // Quiet period: each device syncs until nothing is pending, then once more.
    for _ in 0..3 {
        for kv in &devices {
            sync(kv, &remote).unwrap();
        }
    }
    let first = contents(&devices[0]);
    for kv in &devices {
        assert_eq!(kv.pending_writes().unwrap(), 0);
        assert_eq!(contents(kv), first, "devices converged");
    }
    for n in 0..3 {
        for i in 0..8 {
            let value = devices[0].get(format!("dev{n}-{i}")).unwrap();
            assert_eq!(value, format!("{n}:{i}").into_bytes());
        }
    }
    // Retention keeps the newest chain's path (a full snapshot and at most FANOUT - 1
    // deltas per level) and the path of the file before the last push's.
    assert!(remote.list().unwrap().len() <= 2 * (1 + (FANOUT as usize - 1) * LEVELS));
}

#[test]
fn abandoned_ticket_is_skipped_after_the_wait() {
    let key = EncryptKey::generate();
    let remote = MemoryRemote::default();
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let kv = device(d1.path(), &key);
    kv.set("k", "v").unwrap();
    sync(&kv, &remote).unwrap();
    remote.next_seq().unwrap(); // a pusher that crashed after drawing ticket 2
    kv.set("k", "v2").unwrap();
    let started = std::time::Instant::now();
    sync(&kv, &remote).unwrap();
    assert!(started.elapsed() >= WAIT);
    assert_eq!(remote.list().unwrap(), vec![1, 3]);
    let other = device(d2.path(), &key);
    sync(&other, &remote).unwrap();
    assert_eq!(other.get("k").unwrap(), b"v2");
}

#[test]
fn overtaken_pusher_keeps_its_writes_pending_and_re_pushes_them() {
    // A draws ticket 2 and stalls mid-upload; B draws 3, gives up waiting for 2 and
    // uploads 3 without A's write; then A's upload of 2 completes. A's file is not the
    // newest, so its write is still only safe on A: pending until a sync confirms it.
    let key = EncryptKey::generate();
    let remote = MemoryRemote::default();
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (device(da.path(), &key), device(db.path(), &key));
    a.set("base", "1").unwrap();
    sync(&a, &remote).unwrap();
    sync(&b, &remote).unwrap();

    a.set("from-a", "late").unwrap();
    b.set("from-b", "early").unwrap();
    let overtaker = b.clone();
    *remote.on_upload.lock().unwrap() = Some(Box::new(move |remote: &MemoryRemote| {
        // B draws 3, waits for 2, gives up and uploads 3.
        overtaker.sync_via(remote, &mut |_| {}, WAIT).unwrap();
    }));
    sync(&a, &remote).unwrap();
    assert_eq!(remote.list().unwrap(), vec![1, 2, 3]);
    assert_eq!(
        a.pending_writes().unwrap(),
        1,
        "A's write is only in file 2, which file 3 does not build on"
    );
    sync(&a, &remote).unwrap(); // restores 3, sees its mark is short, pushes again
    assert_eq!(a.pending_writes().unwrap(), 0);
    sync(&b, &remote).unwrap();
    for kv in [&a, &b] {
        assert_eq!(kv.get("from-a").unwrap(), b"late");
        assert_eq!(kv.get("from-b").unwrap(), b"early");
        assert_eq!(kv.pending_writes().unwrap(), 0);
    }
}

#[test]
fn legacy_badger_backups_are_replayed_then_replaced() {
    let key = EncryptKey::generate();
    let remote = MemoryRemote::default();
    let vectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    for n in 1..=5u64 {
        let data = std::fs::read(vectors.join(format!("badger_backup_seq{n}.bin"))).unwrap();
        remote.files.lock().unwrap().insert(n, data);
    }
    remote.seq.store(5, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let kv = device(dir.path(), &key);
    sync(&kv, &remote).unwrap();
    assert_eq!(
        contents(&kv),
        vec![
            (b"foo".to_vec(), b"bar".to_vec()),
            (b"k5".to_vec(), b"v5".to_vec())
        ]
    );
    assert_eq!(kv.store().unwrap().meta("max_version").unwrap(), Some(5));
    kv.set("new", "sqlite").unwrap();
    sync(&kv, &remote).unwrap();
    assert_eq!(
        remote.list().unwrap(),
        vec![5, 6],
        "older legacy files removed"
    );
    let other_dir = tempfile::tempdir().unwrap();
    let other = device(other_dir.path(), &key);
    sync(&other, &remote).unwrap();
    assert_eq!(contents(&other), contents(&kv));
}

#[test]
fn tampered_remote_snapshot_is_refused_and_the_next_sync_completes() {
    let key = EncryptKey::generate();
    let remote = MemoryRemote::default();
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = device(d1.path(), &key);
    for i in 0..200 {
        a.set(format!("k{i}"), "v").unwrap();
    }
    sync(&a, &remote).unwrap();
    let b = device(d2.path(), &key);
    b.set("mine", "safe").unwrap();
    let good = remote.files.lock().unwrap()[&1].clone();
    let mut bad = good.clone();
    let page = u16::from_be_bytes([bad[16], bad[17]]) as usize;
    bad[page..page + 16].fill(0xee);
    remote.files.lock().unwrap().insert(1, bad);
    assert_eq!(sync(&b, &remote).unwrap_err().kind(), ErrorKind::Corrupt);
    assert_eq!(contents(&b), vec![(b"mine".to_vec(), b"safe".to_vec())]);
    let leftovers: Vec<_> = std::fs::read_dir(b.path().unwrap().parent().unwrap())
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name().to_string_lossy().contains(".sync-")
                && !e.file_name().to_string_lossy().ends_with("-lock")
        })
        .collect();
    assert!(
        leftovers.is_empty(),
        "temporary files removed: {leftovers:?}"
    );
    remote.files.lock().unwrap().insert(1, good);
    sync(&b, &remote).unwrap();
    assert_eq!(contents(&b).len(), 201);
}

#[test]
fn a_ticket_whose_upload_failed_is_not_waited_for() {
    let key = EncryptKey::generate();
    let remote = Arc::new(MemoryRemote::default());
    let dir = tempfile::tempdir().unwrap();
    let kv = device(dir.path(), &key);
    kv.set("a", "1").unwrap();
    sync(&kv, &remote).unwrap();
    kv.set("b", "2").unwrap();
    remote.fail_uploads.store(true, Ordering::SeqCst);
    assert_eq!(sync(&kv, &remote).unwrap_err().kind(), ErrorKind::Network);
    remote.fail_uploads.store(false, Ordering::SeqCst);
    // With an hour's ticket wait, a sync that waited for its own abandoned ticket would
    // not return within the two minutes allowed here (a loaded machine needs far less).
    let (done, synced) = std::sync::mpsc::channel();
    let (syncing, shared) = (kv.clone(), remote.clone());
    std::thread::spawn(move || {
        let hour = Duration::from_secs(3600);
        let _ = done.send(syncing.sync_via(&*shared, &mut |_| {}, hour));
    });
    synced
        .recv_timeout(Duration::from_secs(120))
        .expect("waited for its own abandoned ticket")
        .unwrap();
    assert_eq!(remote.list().unwrap(), vec![1, 3]);
    assert_eq!(kv.pending_writes().unwrap(), 0);
}

#[test]
fn leveled_deltas_stay_small_and_new_devices_walk_a_short_chain() {
    let key = EncryptKey::generate();
    let remote = MemoryRemote::default();
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let a = device(dirs[0].path(), &key);
    let mut batch = a.batch();
    for i in 0..2000 {
        batch.set(format!("key{i:05}"), vec![b'v'; 100]);
    }
    batch.commit().unwrap();
    sync(&a, &remote).unwrap();
    let c = device(dirs[2].path(), &key);
    sync(&c, &remote).unwrap();
    let rounds = 150u64;
    for round in 0..rounds {
        a.set(format!("key{round:05}"), format!("round {round}"))
            .unwrap();
        a.delete(format!("key{:05}", 1000 + round)).unwrap();
        sync(&a, &remote).unwrap();
        if round == 40 {
            sync(&c, &remote).unwrap(); // a device part-way, on an older chain
        }
    }
    let files = remote.list().unwrap();
    assert_eq!(*files.last().unwrap(), rounds + 1);
    let full = remote.size(1);
    let mut merged = 0;
    for &seq in files.iter().filter(|&&s| s > 1) {
        let base = remote
            .delta_base(seq)
            .expect("no full snapshot after the first");
        if base + 1 < seq {
            merged += 1;
        }
        assert!(
            remote.size(seq) * 4 < full,
            "delta {seq}: {} bytes, full snapshot {full} bytes",
            remote.size(seq)
        );
    }
    assert!(
        merged > 0,
        "files one level up build further back: {files:?}"
    );
    // Retention removed what the newest path no longer needs.
    assert!(
        files.len() <= 2 * (1 + (FANOUT as usize - 1) * LEVELS),
        "{} files kept: {files:?}",
        files.len()
    );

    // A new device downloads only the files on the newest file's path.
    let b = device(dirs[1].path(), &key);
    remote.downloads.store(0, Ordering::SeqCst);
    sync(&b, &remote).unwrap();
    let walked = remote.downloads.load(Ordering::SeqCst);
    assert!(
        walked <= 1 + u64::from(FANOUT - 1) * LEVELS as u64 && walked < rounds / 4,
        "a new device read {walked} files"
    );
    assert_eq!(contents(&b), contents(&a));
    assert_eq!(b.get("key01003").unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(b.get("key00004").unwrap(), b"round 4");

    // Both ways: b pushes, a and the device left part-way converge.
    b.set("from b", "delta").unwrap();
    sync(&b, &remote).unwrap();
    sync(&a, &remote).unwrap();
    sync(&c, &remote).unwrap();
    assert_eq!(contents(&a), contents(&b));
    assert_eq!(contents(&c), contents(&b));
    assert_eq!(c.get("from b").unwrap(), b"delta");
}

#[test]
fn a_full_snapshot_replaces_deltas_that_outgrow_half_the_database() {
    let key = EncryptKey::generate();
    let remote = MemoryRemote::default();
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = device(a_dir.path(), &key);
    for i in 0..20 {
        a.set(format!("small{i}"), "x").unwrap();
    }
    sync(&a, &remote).unwrap();
    // Each push adds 60 KB to a database that starts near 8 KB: the deltas on the path
    // soon exceed half of it (and the 128 KiB below which they never count).
    for round in 0..12 {
        a.set(format!("big{round}"), vec![round as u8; 60_000])
            .unwrap();
        sync(&a, &remote).unwrap();
    }
    let files = remote.list().unwrap();
    let fulls: Vec<u64> = files
        .iter()
        .copied()
        .filter(|&s| s > 1 && remote.delta_base(s).is_none())
        .collect();
    assert!(!fulls.is_empty(), "{files:?}");
    let b = device(b_dir.path(), &key);
    remote.downloads.store(0, Ordering::SeqCst);
    sync(&b, &remote).unwrap();
    assert_eq!(contents(&b), contents(&a));
}

#[test]
fn a_delta_never_applies_on_a_version_other_than_its_base() {
    let key = EncryptKey::generate();
    let remote = MemoryRemote::default();
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = device(a_dir.path(), &key);
    a.set("k", "1").unwrap();
    sync(&a, &remote).unwrap();
    a.set("k", "2").unwrap();
    sync(&a, &remote).unwrap();
    assert_eq!(remote.delta_base(2), Some(1));
    // Device b has never synced (version 0): applying delta 2 alone must fail, untouched.
    let b = device(b_dir.path(), &key);
    b.set("mine", "kept").unwrap();
    let delta = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(delta.path(), &remote.files.lock().unwrap()[&2]).unwrap();
    let err = crate::sync::restore::apply(
        &b.store().unwrap(),
        delta.path(),
        2,
        crate::sync::restore::Provenance::Server,
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    assert_eq!(b.keys().unwrap(), vec![b"mine".to_vec()]);
    // Through sync it walks back to the full snapshot first.
    sync(&b, &remote).unwrap();
    assert_eq!(b.get("k").unwrap(), b"2");
    assert_eq!(b.get("mine").unwrap(), b"kept");
}

#[test]
fn a_deletion_in_a_delta_removes_copies_under_every_key_of_the_account() {
    let (old_key, new_key) = (EncryptKey::generate(), EncryptKey::generate());
    let remote = MemoryRemote::default();
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let rotated = |dir: &Path| {
        let mut options = Options::new();
        options
            .data_dir(dir)
            .encrypt_keys(vec![new_key.clone(), old_key.clone()]);
        Kv::open_with("db", &options).unwrap()
    };
    // Written before the account had its new key: stored under the old one.
    let a = device(a_dir.path(), &old_key);
    a.set("x", "old").unwrap();
    a.set("y", "old").unwrap();
    sync(&a, &remote).unwrap();
    drop(a);
    let a = rotated(a_dir.path());
    let b = rotated(b_dir.path());
    sync(&b, &remote).unwrap();
    b.delete("x").unwrap();
    b.set("y", "new").unwrap();
    sync(&b, &remote).unwrap();
    assert_eq!(remote.delta_base(2), Some(1));
    sync(&a, &remote).unwrap();
    assert_eq!(a.get("x").unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(a.get("y").unwrap(), b"new");
    assert_eq!(a.keys().unwrap(), vec![b"y".to_vec()]);
    assert_eq!(contents(&a), contents(&b));
}

#[test]
fn a_broken_chain_fails_cleanly_and_the_next_push_is_a_full_snapshot() {
    let key = EncryptKey::generate();
    let remote = MemoryRemote::default();
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = device(a_dir.path(), &key);
    for round in 0..3 {
        a.set(format!("k{round}"), "v").unwrap();
        sync(&a, &remote).unwrap();
    }
    assert_eq!(remote.list().unwrap(), vec![1, 2, 3]);
    remote.remove(2).unwrap();
    let b = device(b_dir.path(), &key);
    b.set("mine", "kept").unwrap();
    let err = sync(&b, &remote).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    assert_eq!(b.keys().unwrap(), vec![b"mine".to_vec()]);
    a.set("k3", "v").unwrap();
    sync(&a, &remote).unwrap();
    assert_eq!(
        remote.delta_base(4),
        None,
        "a full snapshot repairs the chain"
    );
    sync(&b, &remote).unwrap();
    assert_eq!(b.keys().unwrap().len(), 5);
    assert_eq!(contents(&a).len() + 1, contents(&b).len());
}

#[test]
fn a_file_still_being_written_is_waited_for_not_reported_corrupt() {
    let key = EncryptKey::generate();
    let remote = MemoryRemote::default();
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (device(a_dir.path(), &key), device(b_dir.path(), &key));
    a.set("first", "1").unwrap();
    sync(&a, &remote).unwrap();
    a.set("second", vec![7u8; 200_000]).unwrap();
    sync(&a, &remote).unwrap();
    // The server is writing file 2 in place while B lists and downloads it. B waits
    // for it as long as it keeps growing, for at most the ticket wait: a generous one,
    // as a loaded machine may take longer than `WAIT` for the three downloads.
    let data = remote.files.lock().unwrap().remove(&2).unwrap();
    remote.growing.lock().unwrap().insert(2, (data, 0));
    b.sync_via(&remote, &mut |_| {}, Duration::from_secs(60))
        .unwrap();
    assert_eq!(b.get("second").unwrap(), vec![7u8; 200_000]);
    assert_eq!(contents(&a), contents(&b));
}

#[test]
fn a_file_that_stays_damaged_at_its_listed_length_is_corrupt() {
    let key = EncryptKey::generate();
    let remote = MemoryRemote::default();
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (device(a_dir.path(), &key), device(b_dir.path(), &key));
    a.set("k", "v").unwrap();
    sync(&a, &remote).unwrap();
    // Listed at a length that never changes, and never decrypts.
    let data = remote.files.lock().unwrap().remove(&1).unwrap();
    let half = data.len() / 2;
    remote.growing.lock().unwrap().insert(1, (data, half));
    remote.growth_stalled.store(true, Ordering::SeqCst);
    let err = sync(&b, &remote).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
}

#[test]
fn a_ticket_drawn_before_a_failed_download_is_recorded_as_abandoned() {
    let key = EncryptKey::generate();
    let remote = Arc::new(MemoryRemote::default());
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (device(a_dir.path(), &key), device(b_dir.path(), &key));
    a.set("a", "1").unwrap();
    sync(&a, &remote).unwrap();
    sync(&b, &remote).unwrap();
    // B draws ticket 2 and uploads it just as A draws 3; A's download of 2 then fails.
    b.set("b", "2").unwrap();
    let b_snapshot = {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("b.sqlite");
        super::snapshot::create(&b.store().unwrap(), &path, 2).unwrap();
        std::fs::read(path).unwrap()
    };
    *remote.on_next_seq.lock().unwrap() = Some(Box::new(move |remote: &MemoryRemote| {
        remote.seq.fetch_add(1, Ordering::SeqCst); // B's ticket 2, drawn first
        remote.files.lock().unwrap().insert(2, b_snapshot);
        remote.fail_downloads.store(true, Ordering::SeqCst);
    }));
    a.set("a", "2").unwrap();
    let err = sync(&a, &remote).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Network, "{err}");
    let abandoned = {
        let store = a.store().unwrap();
        let conn = store.reader().unwrap();
        crate::store::schema::state_get(&conn, "abandoned:3").unwrap()
    };
    assert_eq!(
        abandoned, 3,
        "ticket 3 was drawn and will never be uploaded"
    );
    remote.fail_downloads.store(false, Ordering::SeqCst);
    sync(&a, &remote).unwrap();
    assert_eq!(
        remote.list().unwrap(),
        vec![2, 4],
        "4 follows 2: no file for ticket 3"
    );
    sync(&b, &remote).unwrap();
    assert_eq!(contents(&a), contents(&b));
    assert_eq!(b.get("a").unwrap(), b"2");
}

#[test]
fn cleaning_temporary_files_leaves_other_databases_alone() {
    let key = EncryptKey::generate();
    let dir = tempfile::tempdir().unwrap();
    let mut options = Options::new();
    options.data_dir(dir.path()).encrypt_keys(vec![key]);
    // A database whose file name starts like a temporary file of database `a`.
    let lookalike = Kv::open_with(".a.sqlite.sync-x", &options).unwrap();
    lookalike.set("k", "kept").unwrap();
    let wal = lookalike.path().unwrap().with_extension("sqlite-wal");
    assert!(wal.exists(), "the lookalike is open with its WAL");
    // A leftover of a crashed sync of `a`, which opening `a` must remove.
    let a_file = dir.path().join("localhost/charm-kv/a.sqlite");
    let leftover = crate::store::names::sync_temp_path(&a_file, "download");
    let a = Kv::open_with("a", &options).unwrap();
    std::fs::write(&leftover, b"partial").unwrap();
    drop(a);
    let _a = Kv::open_with("a", &options).unwrap();
    assert!(!leftover.exists(), "the crashed sync's file is removed");
    assert!(wal.exists());
    assert_eq!(lookalike.get("k").unwrap(), b"kept");
    lookalike.close().unwrap();
    let reopened = Kv::open_with(".a.sqlite.sync-x", &options).unwrap();
    assert_eq!(reopened.get("k").unwrap(), b"kept");
}

#[test]
fn a_snapshot_carries_no_ciphertext_of_deleted_or_overwritten_values() {
    let key = EncryptKey::generate();
    let remote = MemoryRemote::default();
    let dir = tempfile::tempdir().unwrap();
    let kv = device(dir.path(), &key);
    let stored_value = |name: &str| -> Vec<u8> {
        let store = kv.store().unwrap();
        let conn = store.reader().unwrap();
        let sealed_key = store.sealer().writer().seal_key(name.as_bytes());
        conn.query_row("SELECT value FROM kv WHERE key = ?1", [sealed_key], |r| {
            r.get(0)
        })
        .unwrap()
    };
    // Large values spill into overflow pages, which SQLite frees (and leaves as they
    // were) when the row goes.
    kv.set("deleted", vec![1u8; 20_000]).unwrap();
    kv.set("overwritten", vec![2u8; 20_000]).unwrap();
    let old = [stored_value("deleted"), stored_value("overwritten")];
    kv.delete("deleted").unwrap();
    kv.set("overwritten", "short now").unwrap();
    sync(&kv, &remote).unwrap();
    assert_eq!(remote.delta_base(1), None, "a full snapshot");
    let uploaded = remote.files.lock().unwrap()[&1].clone();
    for ciphertext in old {
        let probe = &ciphertext[ciphertext.len() / 2..][..64];
        assert!(
            !uploaded.windows(probe.len()).any(|w| w == probe),
            "the snapshot holds old ciphertext"
        );
    }
    // And it still restores.
    let other_dir = tempfile::tempdir().unwrap();
    let other = device(other_dir.path(), &key);
    sync(&other, &remote).unwrap();
    assert_eq!(contents(&other), contents(&kv));
}

#[test]
fn a_write_made_offline_under_an_older_key_wins_over_the_remote_copy() {
    let account_key = EncryptKey::generate();
    let local_key = EncryptKey::generate();
    let remote = MemoryRemote::default();
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let open = |dir: &Path| {
        let mut options = Options::new();
        options
            .data_dir(dir)
            .encrypt_keys(vec![account_key.clone(), local_key.clone()]);
        Kv::open_with("db", &options).unwrap()
    };
    // A writes offline under its own key, before it knows the account's.
    let a = device(a_dir.path(), &local_key);
    a.set("k", "a, offline").unwrap();
    a.close().unwrap();
    // Meanwhile B writes the same key under the account's key 0 and pushes.
    let b = open(b_dir.path());
    b.set("k", "from b").unwrap();
    sync(&b, &remote).unwrap();
    // A adopts the account's key 0 (its own key stays readable), writes again, syncs.
    let a = open(a_dir.path());
    a.set("k2", "x").unwrap();
    {
        // A's pending write of `k` is still sealed with its own key.
        let store = a.store().unwrap();
        let conn = store.reader().unwrap();
        let sealed: Vec<u8> = conn
            .query_row(
                "SELECT key FROM sync_journal ORDER BY seq LIMIT 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(store.sealer().open_key(&sealed).unwrap().1, 1);
    }
    sync(&a, &remote).unwrap();
    assert_eq!(a.get("k").unwrap(), b"a, offline");
    assert_eq!(a.keys().unwrap(), vec![b"k".to_vec(), b"k2".to_vec()]);
    sync(&b, &remote).unwrap();
    assert_eq!(b.get("k").unwrap(), b"a, offline");
    assert_eq!(contents(&a), contents(&b));
}

#[test]
fn a_renamed_or_replayed_file_is_refused_and_nothing_is_applied() {
    let key = EncryptKey::generate();
    let remote = MemoryRemote::default();
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (device(a_dir.path(), &key), device(b_dir.path(), &key));
    a.set("k", "1").unwrap();
    sync(&a, &remote).unwrap();
    sync(&b, &remote).unwrap();
    a.set("k", "2").unwrap();
    sync(&a, &remote).unwrap();
    // The server serves file 1 again as the newest file, 3.
    let old = remote.files.lock().unwrap()[&1].clone();
    remote.files.lock().unwrap().insert(3, old);
    remote.seq.store(3, Ordering::SeqCst);
    let err = sync(&b, &remote).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    assert!(err.to_string().contains("holds version 1"), "{err}");
    assert_eq!(
        b.get("k").unwrap(),
        b"1",
        "still at version 1, nothing applied"
    );
    assert_eq!(b.store().unwrap().meta("max_version").unwrap(), Some(1));
}

#[test]
fn a_file_of_another_database_is_refused_until_a_forced_reset() {
    let key = EncryptKey::generate();
    let (ours, theirs) = (MemoryRemote::default(), MemoryRemote::default());
    let (a_dir, b_dir, c_dir) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let (a, b, other) = (
        device(a_dir.path(), &key),
        device(b_dir.path(), &key),
        device(c_dir.path(), &key),
    );
    a.set("k", "ours").unwrap();
    sync(&a, &ours).unwrap();
    sync(&b, &ours).unwrap();
    for i in 0..2 {
        other.set("k", format!("theirs {i}")).unwrap();
        sync(&other, &theirs).unwrap();
    }
    // The server swaps in the other database's file 2 (same account, same key).
    let swapped = theirs.files.lock().unwrap()[&2].clone();
    ours.files.lock().unwrap().insert(2, swapped);
    ours.seq.store(2, Ordering::SeqCst);
    let err = sync(&b, &ours).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    assert!(err.to_string().contains("database id"), "{err}");
    assert_eq!(b.get("k").unwrap(), b"ours");
    // The explicit way out (say the database was deleted and made anew elsewhere).
    b.reset_via(&ours, true).unwrap();
    assert_eq!(b.get("k").unwrap(), b"theirs 1");
}

#[test]
fn devices_whose_first_pushes_race_settle_on_one_database_id() {
    // A mints an id for its first push (ticket 1); B, waiting for ticket 1 in vain,
    // mints another for ticket 2 and is the newest. A adopts B's id, never stuck.
    let key = EncryptKey::generate();
    let remote = MemoryRemote::default();
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (device(a_dir.path(), &key), device(b_dir.path(), &key));
    a.set("from-a", "1").unwrap();
    b.set("from-b", "2").unwrap();
    let overtaker = b.clone();
    *remote.on_upload.lock().unwrap() = Some(Box::new(move |remote: &MemoryRemote| {
        overtaker.sync_via(remote, &mut |_| {}, WAIT).unwrap();
    }));
    sync(&a, &remote).unwrap();
    assert_eq!(remote.list().unwrap(), vec![1, 2]);
    let id = |kv: &Kv| kv.store().unwrap().meta("db_id").unwrap().unwrap();
    assert_ne!(id(&a), id(&b), "two ids were minted");
    sync(&a, &remote).unwrap();
    sync(&b, &remote).unwrap();
    assert_eq!(id(&a), id(&b));
    assert_eq!(contents(&a), contents(&b));
    assert_eq!(a.get("from-b").unwrap(), b"2");
    assert_eq!(b.get("from-a").unwrap(), b"1");
}

/// Copies a folder tree as `cp -r` would (new files, new inodes).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
#[cfg(unix)]
fn a_copied_data_dir_writes_as_a_new_device_and_loses_nothing() {
    let key = EncryptKey::generate();
    let remote = MemoryRemote::default();
    let (original_dir, copy_parent) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let original = device(original_dir.path(), &key);
    original.set("before", "copy").unwrap();
    original.set("pending", "at copy time").unwrap();
    sync(&original, &remote).unwrap();
    original.set("unpushed", "at copy time").unwrap();
    original.close().unwrap();
    let copy_dir = copy_parent.path().join("charm");
    copy_tree(original_dir.path(), &copy_dir);

    let (a, b) = (device(original_dir.path(), &key), device(&copy_dir, &key));
    let id = |kv: &Kv| {
        let store = kv.store().unwrap();
        let conn = store.reader().unwrap();
        crate::sync::restore::local_state(&conn).unwrap().device_id
    };
    assert_ne!(id(&a), id(&b), "the copy writes as a new device");
    a.set("only-a", "1").unwrap();
    a.set("both", "from a").unwrap();
    b.set("only-b", "2").unwrap();
    b.set("both", "from b").unwrap();
    sync(&a, &remote).unwrap();
    sync(&b, &remote).unwrap(); // the later push: its value of `both` wins
    sync(&a, &remote).unwrap();
    assert_eq!(contents(&a), contents(&b));
    for kv in [&a, &b] {
        assert_eq!(kv.get("only-a").unwrap(), b"1");
        assert_eq!(kv.get("only-b").unwrap(), b"2");
        assert_eq!(kv.get("both").unwrap(), b"from b");
        assert_eq!(kv.get("unpushed").unwrap(), b"at copy time");
        assert_eq!(kv.get("before").unwrap(), b"copy");
        assert_eq!(kv.pending_writes().unwrap(), 0);
    }
    // Reopening the original (same file) keeps its device id.
    let before = id(&a);
    a.close().unwrap();
    assert_eq!(id(&device(original_dir.path(), &key)), before);
}

/// Counts the requests made to the remote it wraps, and fails them all while `down`.
struct CountingRemote<'a> {
    inner: &'a MemoryRemote,
    calls: AtomicU64,
    down: AtomicBool,
}

impl<'a> CountingRemote<'a> {
    fn new(inner: &'a MemoryRemote) -> Self {
        CountingRemote {
            inner,
            calls: AtomicU64::new(0),
            down: AtomicBool::new(false),
        }
    }

    fn request(&self) -> Result<()> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        match self.down.load(Ordering::SeqCst) {
            true => Err(Error::network("connection refused")),
            false => Ok(()),
        }
    }
}

impl Remote for CountingRemote<'_> {
    fn current_seq(&self) -> Result<u64> {
        self.request()?;
        self.inner.current_seq()
    }
    fn next_seq(&self) -> Result<u64> {
        self.request()?;
        self.inner.next_seq()
    }
    fn list(&self) -> Result<Vec<u64>> {
        self.request()?;
        self.inner.list()
    }
    fn download(
        &self,
        seq: u64,
        out: &mut dyn Write,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<()> {
        self.request()?;
        self.inner.download(seq, out, progress)
    }
    fn listed_size(&self, seq: u64) -> Option<u64> {
        self.inner.listed_size(seq)
    }
    fn upload(&self, seq: u64, path: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result<()> {
        self.request()?;
        self.inner.upload(seq, path, progress)
    }
    fn remove(&self, seq: u64) -> Result<()> {
        self.request()?;
        self.inner.remove(seq)
    }
}

#[test]
fn status_reports_the_last_sync_pending_writes_and_the_chain() {
    let key = EncryptKey::generate();
    let remote = MemoryRemote::default();
    let dir = tempfile::tempdir().unwrap();
    let kv = device(dir.path(), &key);

    let fresh = kv.status().unwrap();
    assert_eq!(fresh.last_sync, None);
    assert_eq!((fresh.local_version, fresh.pending_writes), (0, 0));
    assert_eq!(fresh.chain, None);
    assert!(fresh.integrity_ok(), "{:?}", fresh.integrity_problems);
    assert!(fresh.size_bytes > 0);
    assert!(matches!(fresh.remote, crate::RemoteStatus::NotConfigured));

    kv.set("a", "1").unwrap();
    kv.set("b", "2").unwrap();
    assert_eq!(kv.status().unwrap().pending_writes, 2);
    // Milliseconds are recorded: the sync ends at or after this.
    let started = std::time::SystemTime::now() - Duration::from_millis(1);
    sync(&kv, &remote).unwrap();
    let after = kv.status().unwrap();
    let last = after.last_sync.expect("a successful sync is recorded");
    assert_eq!(last.version, 1);
    assert!(last.at >= started, "{:?} < {started:?}", last.at);
    assert!(last.at <= std::time::SystemTime::now());
    assert_eq!((after.local_version, after.pending_writes), (1, 0));
    assert_eq!(
        after.chain,
        Some(crate::ChainShape {
            start: 1,
            deltas: 0
        })
    );

    kv.set("c", "3").unwrap();
    sync(&kv, &remote).unwrap();
    let status = kv.status_via(&remote).unwrap();
    assert_eq!(status.last_sync.unwrap().version, 2);
    assert_eq!(
        status.chain,
        Some(crate::ChainShape {
            start: 1,
            deltas: 1
        })
    );
    assert!(matches!(
        status.remote,
        crate::RemoteStatus::Reachable { newest_version: 2 }
    ));

    // Another device pushes: the server is ahead of this one until it syncs.
    let other_dir = tempfile::tempdir().unwrap();
    let other = device(other_dir.path(), &key);
    sync(&other, &remote).unwrap();
    other.set("d", "4").unwrap();
    sync(&other, &remote).unwrap();
    let behind = kv.status_via(&remote).unwrap();
    assert_eq!(behind.local_version, 2);
    assert!(matches!(
        behind.remote,
        crate::RemoteStatus::Reachable { newest_version: 3 }
    ));
}

#[test]
fn a_failed_sync_is_not_recorded_and_an_unreachable_remote_is_reported_not_raised() {
    let key = EncryptKey::generate();
    let remote = MemoryRemote::default();
    let counting = CountingRemote::new(&remote);
    let dir = tempfile::tempdir().unwrap();
    let kv = device(dir.path(), &key);
    kv.set("a", "1").unwrap();
    counting.down.store(true, Ordering::SeqCst);
    assert_eq!(
        kv.sync_via(&counting, &mut |_| {}, WAIT)
            .unwrap_err()
            .kind(),
        ErrorKind::Network
    );
    let status = kv.status_via(&counting).unwrap();
    assert_eq!(status.last_sync, None);
    assert_eq!(status.pending_writes, 1);
    match status.remote {
        crate::RemoteStatus::Unreachable(e) => assert_eq!(e.kind(), ErrorKind::Network),
        other => panic!("expected unreachable, got {other:?}"),
    }
}

#[test]
fn sync_if_stale_skips_a_recent_sync_without_a_request_and_runs_a_stale_one() {
    let key = EncryptKey::generate();
    let remote = MemoryRemote::default();
    let counting = CountingRemote::new(&remote);
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (device(a_dir.path(), &key), device(b_dir.path(), &key));
    let hour = Duration::from_secs(3600);

    a.set("k1", "v1").unwrap();
    sync(&a, &remote).unwrap();
    assert!(
        b.sync_if_stale_via(&counting, hour).unwrap(),
        "never synced"
    );
    assert_eq!(b.get("k1").unwrap(), b"v1");

    a.set("k2", "v2").unwrap();
    sync(&a, &remote).unwrap();
    let requests = counting.calls.load(Ordering::SeqCst);
    assert!(!b.sync_if_stale_via(&counting, hour).unwrap());
    assert_eq!(
        counting.calls.load(Ordering::SeqCst),
        requests,
        "no request"
    );
    assert_eq!(b.get("k2").unwrap_err().kind(), ErrorKind::NotFound);

    // The last sync was two hours ago.
    let two_hours_ago = std::time::SystemTime::now() - 2 * hour;
    let ms = two_hours_ago
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    crate::store::schema::state_set(
        &b.store().unwrap().writer(),
        super::status::STATE_LAST_SYNC_MS,
        ms,
    )
    .unwrap();
    assert!(b.sync_if_stale_via(&counting, hour).unwrap());
    assert_eq!(b.get("k2").unwrap(), b"v2");
    assert!(!b.sync_if_stale_via(&counting, hour).unwrap());
    assert!(b.sync_if_stale_via(&counting, Duration::ZERO).unwrap());
}

#[test]
fn the_journal_of_a_database_that_never_syncs_stays_bounded() {
    let key = EncryptKey::generate();
    let remote = MemoryRemote::default();
    let dir = tempfile::tempdir().unwrap();
    let kv = device(dir.path(), &key);
    // 80 batches over the same 1000 keys: 80,000 journal rows appended.
    for round in 0..80 {
        let mut batch = kv.batch();
        for i in 0..1000 {
            batch.set(format!("k{i:04}"), format!("{round}"));
        }
        batch.commit().unwrap();
    }
    let rows: i64 = {
        let store = kv.store().unwrap();
        let conn = store.reader().unwrap();
        conn.query_row("SELECT count(*) FROM sync_journal", [], |r| r.get(0))
            .unwrap()
    };
    assert!(rows < 20_000, "{rows} journal rows for 1000 keys");
    assert_eq!(kv.pending_writes().unwrap(), 1000, "pending counts keys");
    // Compaction kept what a push needs: every key's newest value reaches the remote.
    sync(&kv, &remote).unwrap();
    let other_dir = tempfile::tempdir().unwrap();
    let other = device(other_dir.path(), &key);
    sync(&other, &remote).unwrap();
    assert_eq!(contents(&other), contents(&kv));
    assert_eq!(other.get("k0999").unwrap(), b"79");
}

#[test]
fn a_journal_of_the_earlier_layout_is_migrated_with_its_pending_writes() {
    let key = EncryptKey::generate();
    let remote = MemoryRemote::default();
    let dir = tempfile::tempdir().unwrap();
    let kv = device(dir.path(), &key);
    for i in 0..3 {
        kv.set(format!("k{i}"), "v").unwrap();
    }
    let path = kv.path().unwrap();
    kv.close().unwrap();
    {
        // The layout before: one row per key, keyed by the stored key.
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "ALTER TABLE sync_journal RENAME TO j;
             CREATE TABLE sync_journal (key BLOB PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID;
             INSERT INTO sync_journal (key, seq) SELECT key, seq FROM j;
             DROP TABLE j;",
        )
        .unwrap();
    }
    let kv = device(dir.path(), &key);
    assert_eq!(kv.pending_writes().unwrap(), 3);
    let first_column: String = {
        let store = kv.store().unwrap();
        let conn = store.reader().unwrap();
        conn.query_row(
            "SELECT name FROM pragma_table_info('sync_journal') WHERE pk = 1",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_eq!(first_column, "seq");
    kv.set("k3", "v").unwrap();
    sync(&kv, &remote).unwrap();
    let other_dir = tempfile::tempdir().unwrap();
    let other = device(other_dir.path(), &key);
    sync(&other, &remote).unwrap();
    assert_eq!(other.keys().unwrap().len(), 4);
}

#[test]
fn a_device_that_follows_every_push_applies_a_merged_delta_directly() {
    let key = EncryptKey::generate();
    let remote = MemoryRemote::default();
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (device(a_dir.path(), &key), device(b_dir.path(), &key));
    let mut batch = a.batch();
    for i in 0..3000 {
        batch.set(format!("key{i:05}"), vec![b'v'; 100]);
    }
    batch.commit().unwrap();
    sync(&a, &remote).unwrap();
    sync(&b, &remote).unwrap();
    let mut merged_seen = 0;
    for round in 0..20u64 {
        a.set(format!("key{round:05}"), format!("round {round}"))
            .unwrap();
        sync(&a, &remote).unwrap();
        let newest = *remote.list().unwrap().last().unwrap();
        let merges = remote
            .delta_base(newest)
            .is_some_and(|base| base + 1 < newest);
        remote.downloads.store(0, Ordering::SeqCst);
        sync(&b, &remote).unwrap();
        // One file per push, also when it merges the level below (no walk back to the
        // full snapshot).
        assert_eq!(remote.downloads.load(Ordering::SeqCst), 1, "round {round}");
        merged_seen += usize::from(merges);
        assert_eq!(contents(&a), contents(&b), "round {round}");
    }
    assert!(merged_seen >= 2, "the rounds included merged deltas");
    // A device that missed the merged delta's predecessors still walks correctly.
    let c_dir = tempfile::tempdir().unwrap();
    let c = device(c_dir.path(), &key);
    sync(&c, &remote).unwrap();
    assert_eq!(contents(&c), contents(&a));
}

/// Device `a` pushes a full snapshot (1) and a delta on it (2); device `b`, of the same
/// account, has not synced. The directories live as long as the devices.
fn a_snapshot_and_a_delta() -> (MemoryRemote, [tempfile::TempDir; 2], Kv, Kv) {
    let key = EncryptKey::generate();
    let remote = MemoryRemote::default();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let (a, b) = (device(dirs[0].path(), &key), device(dirs[1].path(), &key));
    a.set("first", "1").unwrap();
    sync(&a, &remote).unwrap();
    a.set("second", "2").unwrap();
    sync(&a, &remote).unwrap();
    (remote, dirs, a, b)
}

#[test]
fn a_torn_listing_missing_a_delta_base_is_listed_again() {
    let (remote, _dirs, a, b) = a_snapshot_and_a_delta();
    assert_eq!(remote.delta_base(2), Some(1));
    // The first listing B takes shows the delta but not the snapshot it builds on.
    remote.hidden.lock().unwrap().insert(1, 1);
    sync(&b, &remote).unwrap();
    assert_eq!(contents(&a), contents(&b));
}

#[test]
fn a_delta_base_the_server_never_lists_is_corrupt_not_retried_forever() {
    let (remote, _dirs, _pusher, b) = a_snapshot_and_a_delta();
    remote.hidden.lock().unwrap().insert(1, u32::MAX);
    let err = sync(&b, &remote).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    assert!(err.to_string().contains("builds on 1"), "{err}");
    assert!(contents(&b).is_empty(), "nothing applied");
}

/// A device whose former account was merged away by a link dies before its databases
/// are re-homed: the marker the link wrote is all that is left. Its next open re-homes
/// every database (and removes the marker), so the next sync pushes its old rows
/// into the account it joined.
#[test]
fn a_rehoming_interrupted_by_a_crash_is_finished_by_the_next_open() {
    let key = EncryptKey::generate();
    // One remote per (account, database).
    let (former, former_other, joined, joined_other) = (
        MemoryRemote::default(),
        MemoryRemote::default(),
        MemoryRemote::default(),
        MemoryRemote::default(),
    );
    let (a_dir, b_dir, c_dir) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let mut a_options = Options::new();
    a_options
        .data_dir(a_dir.path())
        .encrypt_keys(vec![key.clone()]);
    let a = device(a_dir.path(), &key);
    let a_other = Kv::open_with("other", &a_options).unwrap();
    for (kv, k, remote) in [
        (&a, "a1", &former),
        (&a, "a2", &former),
        (&a_other, "o1", &former_other),
    ] {
        kv.set(k, "from a").unwrap();
        sync(kv, remote).unwrap();
    }
    let b = device(b_dir.path(), &key);
    b.set("b1", "from b").unwrap();
    sync(&b, &joined).unwrap();
    b.set("b2", "from b").unwrap();
    sync(&b, &joined).unwrap();

    // The link merged a's account away and recorded the re-homing; then a crashed.
    let a_path = a_options.config().data_path().unwrap();
    super::rejoin::mark_pending(&a_path).unwrap();
    a.close().unwrap();
    a_other.close().unwrap();
    assert_eq!(a.pending_writes().unwrap_err().kind(), ErrorKind::Closed);

    let a = device(a_dir.path(), &key);
    assert_eq!(
        super::rejoin::pending(&a_path).unwrap(),
        None,
        "the open re-homed every database and removed the marker"
    );
    assert_eq!(a.pending_writes().unwrap(), 2);
    sync(&a, &joined).unwrap();
    sync(&b, &joined).unwrap();
    let keys = |kv: &Kv| -> Vec<Vec<u8>> { contents(kv).into_iter().map(|(k, _)| k).collect() };
    let union: Vec<Vec<u8>> = ["a1", "a2", "b1", "b2"]
        .map(|k| k.as_bytes().to_vec())
        .into();
    assert_eq!(keys(&b), union);
    assert_eq!(contents(&a), contents(&b));

    // The other database was re-homed by that open too, not by its own.
    let a_other = Kv::open_with("other", &a_options).unwrap();
    assert_eq!(a_other.pending_writes().unwrap(), 1);
    sync(&a_other, &joined_other).unwrap();
    let mut c_options = Options::new();
    c_options
        .data_dir(c_dir.path())
        .encrypt_keys(vec![key.clone()]);
    let c_other = Kv::open_with("other", &c_options).unwrap();
    sync(&c_other, &joined_other).unwrap();
    assert_eq!(c_other.get("o1").unwrap(), b"from a");
}

/// A handle opened before the link (another process's, say) re-homes its database at
/// its next sync while the re-homing is pending, and only once per re-homing.
#[test]
fn an_open_handle_rehomes_before_its_next_sync_and_only_once() {
    let key = EncryptKey::generate();
    let (former, joined) = (MemoryRemote::default(), MemoryRemote::default());
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (device(a_dir.path(), &key), device(b_dir.path(), &key));
    a.set("a1", "from a").unwrap();
    sync(&a, &former).unwrap();
    b.set("b1", "from b").unwrap();
    sync(&b, &joined).unwrap();

    let a_path = a.data_path().to_owned();
    super::rejoin::mark_pending(&a_path).unwrap();
    sync(&a, &joined).unwrap();
    assert_eq!(a.pending_writes().unwrap(), 0);
    sync(&b, &joined).unwrap();
    assert_eq!(b.get("a1").unwrap(), b"from a");
    // The marker is still there (no open finished it): the database is not
    // re-homed a second time, so a write from b is not overwritten by a's old rows.
    assert!(super::rejoin::pending(&a_path).unwrap().is_some());
    b.set("a1", "newer, from b").unwrap();
    sync(&b, &joined).unwrap();
    sync(&a, &joined).unwrap();
    assert_eq!(a.pending_writes().unwrap(), 0);
    assert_eq!(a.get("a1").unwrap(), b"newer, from b");
}

/// The expiry is inside the encrypted value, so it travels with it: the other device
/// hides the key at the same time, and each device's sync purges it locally (not as a
/// journaled delete that could overwrite a newer value).
#[test]
fn expiry_travels_through_sync_and_each_device_purges_locally() {
    use crate::store::Clock;
    let now = Arc::new(AtomicU64::new(1_790_000_000_000));
    let device_with_clock = |dir: &Path, key: &EncryptKey| {
        let now = Arc::clone(&now);
        let mut options = Options::new();
        options
            .data_dir(dir)
            .encrypt_keys(vec![key.clone()])
            .clock(Clock::from_fn(move || now.load(Ordering::SeqCst)));
        Kv::open_with("db", &options).unwrap()
    };
    let key = EncryptKey::generate();
    let remote = MemoryRemote::default();
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (
        device_with_clock(a_dir.path(), &key),
        device_with_clock(b_dir.path(), &key),
    );
    a.set_with_ttl("session", "token", Duration::from_secs(60))
        .unwrap();
    a.set("kept", "k").unwrap();
    sync(&a, &remote).unwrap();
    sync(&b, &remote).unwrap();
    assert_eq!(b.get("session").unwrap(), b"token");
    assert_eq!(b.ttl("session").unwrap(), Some(Duration::from_secs(60)));
    assert_eq!(b.expires_at_unix_ms("session").unwrap(), a.expires_at_unix_ms("session").unwrap());
    now.fetch_add(60_000, Ordering::SeqCst);
    for device in [&a, &b] {
        assert_eq!(device.get("session").unwrap_err().kind(), ErrorKind::NotFound);
        assert_eq!(device.keys().unwrap(), [b"kept".to_vec()]);
    }
    let rows = |kv: &Kv| -> i64 {
        kv.store()
            .unwrap()
            .reader()
            .unwrap()
            .query_row("SELECT count(*) FROM kv", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(rows(&b), 2, "still on disk until a write or sync purges it");
    sync(&b, &remote).unwrap();
    assert_eq!(rows(&b), 1, "the sync purged it");
    assert_eq!(b.pending_writes().unwrap(), 0, "the purge is not journaled");
    // A new value written on b after the expiry survives a's sync, whose own purge
    // deletes nothing that b wrote.
    b.set("session", "renewed").unwrap();
    sync(&b, &remote).unwrap();
    sync(&a, &remote).unwrap();
    assert_eq!(a.get("session").unwrap(), b"renewed");
    assert_eq!(a.ttl("session").unwrap(), None);
}
