//! Sync against a real `charm serve` v0.12.6 and the real Go client: devices of one
//! account, legacy Badger data written by `charm kv`, concurrency and faults.

use crate::support;

use std::path::{Path, PathBuf};

use charm_kv::cloud::CharmClient;
use charm_kv::{ErrorKind, Kv, Options};
use support::charm_server::CharmServer;

const DB: &str = "charm.sh.kv.user.default";

/// One device: its own data dir; `identity` shares another device's SSH key (one account).
fn device(server: &CharmServer, dir: &Path, identity: Option<&Path>) -> Options {
    server.options(dir, identity)
}

fn key_of(dir: &Path) -> PathBuf {
    dir.join(support::charm_server::HOST).join("charm_ed25519")
}

fn contents(kv: &Kv) -> Vec<(Vec<u8>, Vec<u8>)> {
    kv.iter().unwrap().map(Result::unwrap).collect()
}

fn client(options: &Options) -> CharmClient {
    charm_kv::account::connect(options.config()).unwrap()
}

fn remote_files(options: &Options, db: &str) -> Vec<u64> {
    let mut seqs: Vec<u64> = client(options)
        .fs_list(db)
        .unwrap()
        .unwrap_or_default()
        .iter()
        .filter_map(|f| f.name.parse().ok())
        .collect();
    seqs.sort();
    seqs
}

/// The file the server stores for snapshot `seq` of `db`.
fn server_file(server: &CharmServer, options: &Options, db: &str, seq: u64) -> PathBuf {
    let client = client(options);
    let keys = client.encrypt_keys().unwrap();
    let hex = |s: &str| charm_kv::crypto::lookup::encrypt_lookup_field(&keys[0], s).unwrap();
    server
        .data_dir()
        .join("files")
        .join(client.charm_id().unwrap())
        .join(hex(db))
        .join(hex(&seq.to_string()))
}

#[test]
fn two_devices_round_trip_and_reset_keeps_the_newest_value() {
    let server = CharmServer::start();
    let (d1, d2) = (server.client_dir("host1"), server.client_dir("host2"));
    let host1 = Kv::open_with(DB, &device(&server, &d1, None)).unwrap();
    host1.set("foo", "original").unwrap();
    host1.set("only-1", "x").unwrap();
    assert_eq!(
        host1.pending_writes().unwrap(),
        0,
        "{:?}",
        host1.last_push_error()
    );

    let host2 = Kv::open_with(DB, &device(&server, &d2, Some(&key_of(&d1)))).unwrap();
    host2.sync().unwrap();
    assert_eq!(host2.get("foo").unwrap(), b"original");
    // The case users reported: host 2 overwrites, host 1 must see it, also after a reset.
    host2.set("foo", "overwritten on host 2").unwrap();
    host2.delete("only-1").unwrap();
    host1.sync().unwrap();
    assert_eq!(host1.get("foo").unwrap(), b"overwritten on host 2");
    assert_eq!(host1.get("only-1").unwrap_err().kind(), ErrorKind::NotFound);
    host1.reset(false).unwrap();
    assert_eq!(host1.get("foo").unwrap(), b"overwritten on host 2");
    host2.reset(false).unwrap();
    assert_eq!(contents(&host1), contents(&host2));
    assert_eq!(
        remote_files(&device(&server, &d1, None), DB),
        vec![1, 2, 3, 4],
        "a full snapshot and the deltas on it"
    );
}

#[test]
fn a_push_uploads_only_the_changes() {
    let server = CharmServer::start();
    let (d1, d2) = (server.client_dir("big"), server.client_dir("fresh"));
    let options = device(&server, &d1, None);
    let kv = Kv::open_with(DB, &options).unwrap();
    let mut batch = kv.batch();
    for i in 0..5000 {
        batch.set(format!("key{i:05}"), vec![b'v'; 100]);
    }
    batch.commit().unwrap();
    assert_eq!(
        kv.pending_writes().unwrap(),
        0,
        "{:?}",
        kv.last_push_error()
    );
    kv.set("key00007", "changed").unwrap();
    kv.delete("key04000").unwrap();
    assert_eq!(remote_files(&options, DB), vec![1, 2, 3]);
    let size = |seq| {
        std::fs::metadata(server_file(&server, &options, DB, seq))
            .unwrap()
            .len()
    };
    for seq in [2, 3] {
        assert!(
            size(seq) * 20 < size(1),
            "file {seq}: {} bytes on the server, the full snapshot {} bytes",
            size(seq),
            size(1)
        );
    }
    let fresh = Kv::open_with(DB, &device(&server, &d2, Some(&key_of(&d1)))).unwrap();
    fresh.sync().unwrap();
    assert_eq!(contents(&fresh), contents(&kv));
    assert_eq!(fresh.get("key00007").unwrap(), b"changed");
    assert_eq!(
        fresh.get("key04000").unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[test]
fn empty_remote_and_many_writes_in_one_push() {
    let server = CharmServer::start();
    let dir = server.client_dir("batch");
    let mut options = device(&server, &dir, None);
    options.auto_push(false);
    let kv = Kv::open_with("jobs", &options).unwrap();
    kv.sync().unwrap();
    assert!(
        remote_files(&options, "jobs").is_empty(),
        "nothing pushed for nothing"
    );
    for i in 0..200 {
        kv.set(format!("k{i:03}"), format!("v{i}")).unwrap();
    }
    let mut batch = kv.batch();
    batch.set("b1", "1").set("b2", "2");
    batch.commit().unwrap();
    assert_eq!(kv.pending_writes().unwrap(), 202);
    let mut progress = Vec::new();
    kv.sync_with_progress(&mut |p| progress.push(*p)).unwrap();
    assert_eq!(kv.pending_writes().unwrap(), 0);
    assert_eq!(
        remote_files(&options, "jobs"),
        vec![1],
        "one upload for all the writes"
    );
    let last = progress.last().expect("progress reported");
    assert_eq!(last.phase, charm_kv::SyncPhase::Upload);
    assert!(last.done > 0 && last.done == last.total, "{last:?}");

    let other_dir = server.client_dir("reader");
    let other = Kv::open_with("jobs", &device(&server, &other_dir, Some(&key_of(&dir)))).unwrap();
    other.sync().unwrap();
    assert_eq!(contents(&other), contents(&kv));
    assert_eq!(contents(&other).len(), 202);
}

#[test]
fn the_go_clients_sync_keys_leaves_our_databases_alone() {
    // `charm link` and `charm sync-keys` of the Go client end by deleting
    // `<data path>/kv` whole (client/link.go, deleteUserData), where earlier charm-kv
    // versions kept their databases.
    let server = CharmServer::start();
    let dir = server.client_dir("shared");
    let mut options = device(&server, &dir, None);
    options.auto_push(false);
    let data_path = dir.join(support::charm_server::HOST);
    // A database an earlier version left in the Go client's folder...
    let moved = Kv::open_with("moved", &options).unwrap();
    moved.set("k", "kept").unwrap();
    let file = moved.path().unwrap();
    moved.close().unwrap();
    let old_dir = data_path.join("kv");
    std::fs::create_dir_all(&old_dir).unwrap();
    std::fs::rename(&file, old_dir.join("moved.sqlite")).unwrap();
    // ...which the next open moves out, and one with writes never pushed.
    assert_eq!(
        Kv::open_with("moved", &options).unwrap().get("k").unwrap(),
        b"kept"
    );
    let pending = Kv::open_with("pending", &options).unwrap();
    pending.set("only", "here").unwrap();
    assert_eq!(pending.pending_writes().unwrap(), 1);
    pending.close().unwrap();
    // The Go client's own Badger directory, which sync-keys deletes.
    std::fs::create_dir_all(old_dir.join("charm.sh.kv.user.default")).unwrap();

    server.go(&dir, &["sync-keys"]);
    assert!(!old_dir.exists(), "the Go client deleted its kv folder");
    let moved = Kv::open_with("moved", &options).unwrap();
    assert_eq!(moved.get("k").unwrap(), b"kept");
    let pending = Kv::open_with("pending", &options).unwrap();
    assert_eq!(pending.get("only").unwrap(), b"here");
    assert_eq!(pending.pending_writes().unwrap(), 1);
}

#[test]
fn values_written_by_the_go_client_are_read_after_sync() {
    let server = CharmServer::start();
    // One data dir for both clients, as a user who switches from `charm kv` would have.
    let dir = server.client_dir("shared");
    let has = |key: &'static str, value: &'static str| {
        move |kv: &Kv| kv.get(key).ok().as_deref() == Some(value.as_bytes())
    };
    let lacks = |key: &'static str| move |kv: &Kv| kv.get(key).is_err();
    server.go_kv_write(&dir, &["kv", "set", "foo", "bar"], has("foo", "bar"));
    server.go_kv_write(&dir, &["kv", "set", "baz", "qux"], has("baz", "qux"));
    server.go_kv_write(&dir, &["kv", "set", "gone", "soon"], has("gone", "soon"));
    server.go_kv_write(&dir, &["kv", "delete", "gone"], lacks("gone"));

    let options = device(&server, &dir, None);
    let kv = Kv::open_with(DB, &options).unwrap();
    kv.sync().unwrap();
    assert_eq!(
        contents(&kv),
        vec![
            (b"baz".to_vec(), b"qux".to_vec()),
            (b"foo".to_vec(), b"bar".to_vec())
        ]
    );
    // The Go client keeps writing (our pull uploaded nothing), and we keep reading.
    server.go_kv_write(&dir, &["kv", "delete", "foo"], lacks("foo"));
    server.go_kv_write(
        &dir,
        &["kv", "set", "new", "from go"],
        has("new", "from go"),
    );
    kv.sync().unwrap();
    assert_eq!(kv.get("foo").unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(kv.get("new").unwrap(), b"from go");
    // The Go client's Badger directory sits next to our file, untouched.
    assert!(dir
        .join(support::charm_server::HOST)
        .join("kv")
        .join(DB)
        .is_dir());

    // Our first write uploads a SQLite snapshot; retention then drops old Badger files.
    kv.set("mine", "charm-kv").unwrap();
    assert_eq!(
        kv.pending_writes().unwrap(),
        0,
        "{:?}",
        kv.last_push_error()
    );
    assert!(remote_files(&options, DB).len() <= 2);
    let other_dir = server.client_dir("second");
    let other = Kv::open_with(DB, &device(&server, &other_dir, Some(&key_of(&dir)))).unwrap();
    other.sync().unwrap();
    assert_eq!(contents(&other), contents(&kv));
}

#[test]
fn concurrent_devices_lose_no_acknowledged_write() {
    let server = CharmServer::start();
    let first = server.client_dir("dev0");
    let devices: Vec<Kv> = (0..3)
        .map(|n| {
            let dir = if n == 0 {
                first.clone()
            } else {
                server.client_dir(&format!("dev{n}"))
            };
            let identity = (n > 0).then(|| key_of(&first));
            Kv::open_with(DB, &device(&server, &dir, identity.as_deref())).unwrap()
        })
        .collect();
    let writers: Vec<_> = devices
        .iter()
        .enumerate()
        .map(|(n, kv)| {
            let kv = kv.clone();
            std::thread::spawn(move || {
                for i in 0..5 {
                    // Each set pushes (auto-push); a push that loses a race stays pending.
                    kv.set(format!("dev{n}-{i}"), format!("{n}:{i}")).unwrap();
                    kv.set("contended", format!("{n}:{i}")).unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    for _ in 0..2 {
        for kv in &devices {
            kv.sync().unwrap();
        }
    }
    let expected = contents(&devices[0]);
    for kv in &devices {
        assert_eq!(kv.pending_writes().unwrap(), 0);
        assert_eq!(contents(kv), expected);
    }
    for n in 0..3 {
        for i in 0..5 {
            assert_eq!(
                devices[0].get(format!("dev{n}-{i}")).unwrap(),
                format!("{n}:{i}").into_bytes()
            );
        }
    }
}

#[test]
fn a_device_syncing_while_another_uploads_never_sees_a_torn_file() {
    // charm serve writes an upload in place: a listing or a download made meanwhile
    // sees the file at some length on its way to complete. That is "not ready yet",
    // never corrupt data.
    let server = CharmServer::start();
    let (d1, d2) = (server.client_dir("pusher"), server.client_dir("puller"));
    let pusher = Kv::open_with(DB, &device(&server, &d1, None)).unwrap();
    let puller = Kv::open_with(DB, &device(&server, &d2, Some(&key_of(&d1)))).unwrap();
    pusher.set("small", "1").unwrap();
    puller.sync().unwrap();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let pulls = {
        let (puller, done) = (puller.clone(), done.clone());
        std::thread::spawn(move || {
            let mut rounds = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                if let Err(e) = puller.sync() {
                    panic!("sync {rounds} failed while the other device pushed: {e}");
                }
                rounds += 1;
            }
            rounds
        })
    };
    for round in 0..6u8 {
        pusher.set("big", vec![round; 6 << 20]).unwrap();
        assert_eq!(pusher.last_push_error(), None);
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(pulls.join().unwrap() > 0);
    puller.sync().unwrap();
    assert_eq!(puller.get("big").unwrap(), vec![5u8; 6 << 20]);
}

#[test]
fn a_replayed_file_or_one_of_another_database_is_refused() {
    // The server cannot forge a file, but it can copy one under another name: an older
    // file of this database as the newest, or the same-numbered file of another
    // database of the account. Both would roll every pulling device back.
    let server = CharmServer::start();
    let (d1, d2) = (server.client_dir("writer"), server.client_dir("reader"));
    let writer_options = device(&server, &d1, None);
    let writer = Kv::open_with(DB, &writer_options).unwrap();
    let other = Kv::open_with("other", &writer_options).unwrap();
    let mut reader_options = device(&server, &d2, Some(&key_of(&d1)));
    reader_options.auto_push(false);
    let reader = Kv::open_with(DB, &reader_options).unwrap();
    writer.set("k", "1").unwrap();
    other.set("k", "other 1").unwrap();
    reader.sync().unwrap();
    for i in 2..=3 {
        writer.set("k", i.to_string()).unwrap();
        other.set("k", format!("other {i}")).unwrap();
    }
    assert_eq!(remote_files(&writer_options, DB), vec![1, 2, 3]);
    let newest = server_file(&server, &writer_options, DB, 3);
    let genuine = std::fs::read(&newest).unwrap();

    std::fs::copy(server_file(&server, &writer_options, DB, 1), &newest).unwrap();
    let err = reader.sync().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    assert!(err.to_string().contains("holds version 1"), "{err}");

    let other_files = remote_files(&writer_options, "other");
    let same_number = *other_files.last().unwrap();
    assert_eq!(same_number, 3, "{other_files:?}");
    std::fs::copy(server_file(&server, &writer_options, "other", 3), &newest).unwrap();
    let err = reader.sync().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    assert!(err.to_string().contains("database id"), "{err}");
    assert_eq!(reader.get("k").unwrap(), b"1", "nothing applied");

    std::fs::write(&newest, genuine).unwrap();
    reader.sync().unwrap();
    assert_eq!(reader.get("k").unwrap(), b"3");
}

#[test]
fn tampered_and_foreign_snapshots_are_refused_and_the_next_sync_completes() {
    let server = CharmServer::start();
    let (d1, d2, stranger_dir) = (
        server.client_dir("writer"),
        server.client_dir("reader"),
        server.client_dir("stranger"),
    );
    let writer_options = device(&server, &d1, None);
    let writer = Kv::open_with(DB, &writer_options).unwrap();
    for i in 0..50 {
        writer
            .set(format!("k{i}"), "v")
            .unwrap_or_else(|e| panic!("{e}"));
    }
    writer.sync().unwrap();
    let newest = *remote_files(&writer_options, DB).last().unwrap();
    let file = server_file(&server, &writer_options, DB, newest);
    let original = std::fs::read(&file).unwrap();

    let mut reader_options = device(&server, &d2, Some(&key_of(&d1)));
    reader_options.auto_push(false);
    let reader = Kv::open_with(DB, &reader_options).unwrap();
    reader.set("local", "kept").unwrap();

    // A flipped byte in the encrypted payload.
    let mut tampered = original.clone();
    let last = tampered.len() - 20;
    tampered[last] ^= 0x40;
    std::fs::write(&file, &tampered).unwrap();
    assert_eq!(reader.sync().unwrap_err().kind(), ErrorKind::Corrupt);
    assert_eq!(reader.get("local").unwrap(), b"kept");
    assert_eq!(reader.keys().unwrap().len(), 1, "nothing applied");

    // Another account's snapshot in its place.
    let stranger = Kv::open_with(DB, &device(&server, &stranger_dir, None)).unwrap();
    stranger.set("theirs", "x").unwrap();
    let stranger_options = device(&server, &stranger_dir, None);
    let foreign = *remote_files(&stranger_options, DB).last().unwrap();
    std::fs::copy(server_file(&server, &stranger_options, DB, foreign), &file).unwrap();
    assert_eq!(reader.sync().unwrap_err().kind(), ErrorKind::Keys);
    assert_eq!(reader.get("local").unwrap(), b"kept");

    // Repaired: the next sync completes and merges.
    std::fs::write(&file, &original).unwrap();
    reader.sync().unwrap();
    assert_eq!(reader.keys().unwrap().len(), 51);
    writer.sync().unwrap();
    assert_eq!(writer.get("local").unwrap(), b"kept");
}

#[test]
fn a_dead_server_leaves_writes_pending_and_reads_working() {
    let server = CharmServer::start();
    // Outside the server's folder, which goes away with it.
    let client_dir = tempfile::tempdir().unwrap();
    let dir = client_dir.path().to_owned();
    let options = device(&server, &dir, None);
    let kv = Kv::open_with(DB, &options).unwrap();
    kv.set("before", "1").unwrap();
    assert_eq!(kv.pending_writes().unwrap(), 0);
    drop(server);
    kv.set("after", "2").unwrap();
    assert_eq!(kv.pending_writes().unwrap(), 1);
    let why = kv.last_push_error().expect("the push failure is reported");
    assert!(why.contains("network"), "{why}");
    assert_eq!(kv.sync().unwrap_err().kind(), ErrorKind::Network);
    assert_eq!(kv.get("after").unwrap(), b"2");
    assert_eq!(
        kv.reset(false).unwrap_err().kind(),
        ErrorKind::PendingWrites
    );
    // A new process opening the store reads without the network.
    kv.close().unwrap();
    let again = Kv::open_with(DB, &options).unwrap();
    assert_eq!(again.get("before").unwrap(), b"1");
}

#[test]
fn delete_db_removes_the_remote_copy_too() {
    let server = CharmServer::start();
    let dir = server.client_dir("deleter");
    let options = device(&server, &dir, None);
    let kv = Kv::open_with("scratch", &options).unwrap();
    kv.set("k", "v").unwrap();
    assert_eq!(remote_files(&options, "scratch").len(), 1);
    kv.close().unwrap();
    charm_kv::delete_database(&options, "scratch").unwrap();
    assert!(remote_files(&options, "scratch").is_empty());
    assert!(!charm_kv::list_databases(&options)
        .unwrap()
        .contains(&"scratch".to_owned()));
    let fresh = Kv::open_with("scratch", &options).unwrap();
    fresh.sync().unwrap();
    assert!(fresh.keys().unwrap().is_empty(), "it did not come back");
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

#[test]
fn no_plaintext_on_either_side_after_sync() {
    let server = CharmServer::start();
    let (d1, d2) = (server.client_dir("p1"), server.client_dir("p2"));
    let a = Kv::open_with(DB, &device(&server, &d1, None)).unwrap();
    let mut batch = a.batch();
    for i in 0..20 {
        batch.set(format!("secret-key-{i}"), format!("secret-value-{i}"));
    }
    batch.commit().unwrap();
    let b = Kv::open_with(DB, &device(&server, &d2, Some(&key_of(&d1)))).unwrap();
    b.sync().unwrap();
    assert_eq!(b.keys().unwrap().len(), 20);
    let files: Vec<PathBuf> = [d1.as_path(), d2.as_path(), server.data_dir().as_path()]
        .iter()
        .flat_map(|d| files_under(d))
        .collect();
    assert!(files
        .iter()
        .any(|f| f.to_string_lossy().ends_with(".sqlite")));
    assert!(files
        .iter()
        .any(|f| f.starts_with(server.data_dir().join("files"))));
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        for needle in [&b"secret-key-"[..], b"secret-value-"] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{} holds plaintext",
                file.display()
            );
        }
    }
}

/// Runs in child processes of `processes_on_one_machine_and_another_device_converge`.
#[test]
fn sync_process_child() {
    let Ok(spec) = std::env::var("CHARM_KV_SYNC_CHILD") else {
        return;
    };
    let parts: Vec<&str> = spec.split('|').collect();
    let (role, dir, identity, ssh, http) = (parts[0], parts[1], parts[2], parts[3], parts[4]);
    let mut options = Options::new();
    options
        .data_dir(dir)
        .host(Some(support::charm_server::HOST.into()))
        .ssh_port(ssh.parse().unwrap())
        .http_port(http.parse().unwrap());
    if !identity.is_empty() {
        options.identity_key(identity);
    }
    let kv = Kv::open_with(DB, &options).unwrap();
    if role == "reader" {
        // Reads while other processes restore snapshots into this same file, at least
        // once even if this process starts after the deadline (a loaded machine).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(4);
        let mut reads = 0u64;
        loop {
            for (k, v) in contents(&kv) {
                assert!(v.starts_with(&k[..2]), "inconsistent pair");
            }
            reads += 1;
            if std::time::Instant::now() >= deadline {
                break;
            }
        }
        println!("reads {reads}");
        return;
    }
    for i in 0..4 {
        let key = format!("{role}-{i}");
        kv.set(&key, format!("{}:{i}", &key[..2])).unwrap();
        println!("ack {key}");
    }
}

#[test]
fn processes_on_one_machine_and_another_device_converge() {
    let server = CharmServer::start();
    let (machine, other) = (server.client_dir("machine"), server.client_dir("laptop"));
    let seed = Kv::open_with(DB, &device(&server, &machine, None)).unwrap();
    seed.set("seed", "se").unwrap();
    let identity = key_of(&machine);
    let spawn = |role: &str, dir: &Path, identity: &str| {
        support::test_child("sync_server::sync_process_child")
            .env(
                "CHARM_KV_SYNC_CHILD",
                format!(
                    "{role}|{}|{identity}|{}|{}",
                    dir.display(),
                    server.ssh_port,
                    server.http_port
                ),
            )
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let id = identity.to_str().unwrap();
    let children = vec![
        spawn("p1", &machine, ""),
        spawn("p2", &machine, ""),
        spawn("reader", &machine, ""),
        spawn("l1", &other, id),
    ];
    let mut acked = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        // libtest prints "test name ... " before the first line of the test's output.
        acked.extend(
            text.lines()
                .filter_map(|l| l.split_once("ack "))
                .map(|(_, k)| k.to_owned()),
        );
        if let Some((_, reads)) = text.lines().find_map(|l| l.split_once("reads ")) {
            assert!(reads.parse::<u64>().unwrap() > 0);
        }
    }
    assert_eq!(acked.len(), 12);
    let laptop = Kv::open_with(DB, &device(&server, &other, Some(&identity))).unwrap();
    for _ in 0..2 {
        seed.sync().unwrap();
        laptop.sync().unwrap();
    }
    assert_eq!(contents(&seed), contents(&laptop));
    for key in &acked {
        assert!(laptop.get(key).is_ok(), "acknowledged {key} lost");
    }
}

/// Runs in a child process of `writes_survive_sigkill_during_sync`.
#[test]
fn sync_crash_child() {
    let Ok(spec) = std::env::var("CHARM_KV_SYNC_CRASH_CHILD") else {
        return;
    };
    let parts: Vec<&str> = spec.split('|').collect();
    let (dir, round, ssh, http) = (parts[0], parts[1], parts[2], parts[3]);
    let mut options = Options::new();
    options
        .data_dir(dir)
        .host(Some(support::charm_server::HOST.into()))
        .ssh_port(ssh.parse().unwrap())
        .http_port(http.parse().unwrap());
    let kv = Kv::open_with(DB, &options).unwrap();
    for i in 0u64.. {
        // Every set pushes (auto-push): kills land in uploads, restores and commits.
        kv.set(format!("r{round}-{i}"), vec![i as u8; 2000])
            .unwrap();
        println!("ack r{round}-{i}");
    }
}

#[test]
fn writes_survive_sigkill_during_sync() {
    use rand::Rng;
    let server = CharmServer::start();
    let dir = server.client_dir("killed");
    Kv::open_with(DB, &device(&server, &dir, None))
        .unwrap()
        .close()
        .unwrap();
    let mut rng = rand::thread_rng();
    let mut acked = Vec::new();
    let rounds = 12;
    for round in 0..rounds {
        let mut child = support::test_child("sync_server::sync_crash_child")
            .env(
                "CHARM_KV_SYNC_CRASH_CHILD",
                format!(
                    "{}|{round}|{}|{}",
                    dir.display(),
                    server.ssh_port,
                    server.http_port
                ),
            )
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let (stdout, stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
        let (acks, acked_now) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if let Some((_, key)) = line.split_once("ack ") {
                    let _ = acks.send(key.to_owned());
                }
            }
        });
        let errors = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut std::io::BufReader::new(stderr), &mut text);
            text
        });
        let mut round_acked = Vec::new();
        // Most rounds are killed at a random moment after the start, which on a loaded
        // machine may come before the first write (and its push) is done: the previous
        // kill may have left a drawn ticket that this push waits for. Every third round
        // is killed a random moment after its first acknowledged write, so that kills
        // land in later pushes too and some writes are acknowledged by construction.
        if round % 3 == 2 {
            match acked_now.recv_timeout(std::time::Duration::from_secs(120)) {
                Ok(key) => round_acked.push(key),
                Err(why) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "round {round}: no write acknowledged ({why}); the child said: {}",
                        errors.join().unwrap()
                    );
                }
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(rng.gen_range(100..700)));
        child.kill().unwrap();
        child.wait().unwrap();
        reader.join().unwrap();
        errors.join().unwrap();
        round_acked.extend(acked_now.try_iter());
        acked.extend(round_acked);
        // After every kill: the database opens, holds every acknowledged write, and is intact.
        let kv = Kv::open_with(DB, &device(&server, &dir, None)).unwrap();
        for key in &acked {
            assert!(
                kv.get(key).is_ok(),
                "acknowledged {key} lost after kill {round}"
            );
        }
        let conn = rusqlite::Connection::open(kv.path().unwrap()).unwrap();
        let integrity: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(integrity, "ok");
        kv.close().unwrap();
    }
    assert!(!acked.is_empty());
    // A clean sync then brings every acknowledged write to another device.
    let kv = Kv::open_with(DB, &device(&server, &dir, None)).unwrap();
    kv.sync().unwrap();
    assert_eq!(kv.pending_writes().unwrap(), 0);
    let other_dir = server.client_dir("after-kills");
    let other = Kv::open_with(DB, &device(&server, &other_dir, Some(&key_of(&dir)))).unwrap();
    other.sync().unwrap();
    for key in &acked {
        assert!(other.get(key).is_ok(), "{key} never reached the server");
    }
    eprintln!(
        "crash during sync: {rounds} SIGKILLs of a pushing writer, {} acknowledged writes checked on both devices",
        acked.len()
    );
}

/// Thirty-two processes start on a fresh data dir of a new account at once (issue 15):
/// one identity, one account key, no error to any caller (`charm serve` fails some of
/// a new account's simultaneous logins; those are retried), and every acknowledged
/// write is readable afterwards, here and on another device of the account.
#[test]
fn many_processes_on_a_fresh_data_dir_of_a_new_account_keep_every_write() {
    let server = CharmServer::start();
    crowd_keeps_every_write(&server, &server.client_dir("crowd"));
}

/// The same with the identity already in place: the account's first key is raced.
#[test]
fn many_processes_with_an_existing_identity_of_a_new_account_keep_every_write() {
    let server = CharmServer::start();
    let dir = server.client_dir("crowd");
    let data = dir.join(support::charm_server::HOST);
    std::fs::create_dir_all(&data).unwrap();
    let vectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    std::fs::copy(vectors.join("vec_charm_ed25519"), key_of(&dir)).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(key_of(&dir), std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    crowd_keeps_every_write(&server, &dir);
}

fn crowd_keeps_every_write(server: &CharmServer, dir: &Path) {
    const DBS: [&str; 8] = ["db0", "db1", "db2", "db3", "db4", "db5", "db6", "db7"];
    let env = server.env_for_client(dir);
    let writes = support::set_from_many_processes(dir, &env, 32, DBS.len());
    support::assert_every_write_acknowledged_and_readable(&writes, dir, &env);

    let account = client(&device(server, dir, None));
    assert_eq!(account.auth().unwrap().encrypt_keys.len(), 1);
    for db in DBS {
        // Writes announced as pending (see the helper) go up now.
        let out = support::charm_kv_command(dir, &env)
            .args(["sync", &format!("@{db}")])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let other = server.client_dir("other");
    let options = device(server, &other, Some(&key_of(dir)));
    for db in DBS {
        let kv = Kv::open_with(db, &options).unwrap();
        kv.sync().unwrap();
        for w in writes.iter().filter(|w| w.db == db) {
            assert_eq!(
                kv.get(&w.key).unwrap(),
                w.value.as_bytes(),
                "{}@{db}",
                w.key
            );
        }
    }
}

/// Two devices of one account that each made a local key offline converge on one
/// key 0, the account's oldest, and both keep reading their own rows; each then pins
/// that key 0.
#[test]
fn devices_with_offline_keys_converge_on_the_oldest_key_0() {
    let server = CharmServer::start();
    let (d1, d2) = (server.client_dir("one"), server.client_dir("two"));
    let offline = |dir: &Path, identity: Option<&Path>| {
        let mut options = device(&server, dir, identity);
        options.local(true);
        options
    };
    let kv = Kv::open_with(DB, &offline(&d1, None)).unwrap();
    kv.set("from1", "a").unwrap();
    kv.close().unwrap();
    let kv = Kv::open_with(DB, &offline(&d2, Some(&key_of(&d1)))).unwrap();
    kv.set("from2", "b").unwrap();
    kv.close().unwrap();
    let key1 = charm_kv::account::Account::open(offline(&d1, None).config())
        .unwrap()
        .cached_keys()
        .unwrap()
        .remove(0);

    let one = Kv::open_with(DB, &device(&server, &d1, None)).unwrap();
    one.sync().unwrap();
    let two = Kv::open_with(DB, &device(&server, &d2, Some(&key_of(&d1)))).unwrap();
    two.sync().unwrap();
    one.sync().unwrap();
    for kv in [&one, &two] {
        assert_eq!(kv.get("from1").unwrap(), b"a");
        assert_eq!(kv.get("from2").unwrap(), b"b");
    }
    let keys = client(&device(&server, &d1, None)).encrypt_keys().unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0].id(), key1.id(), "the oldest key is key 0");
    for dir in [&d1, &d2] {
        let cache = dir
            .join(support::charm_server::HOST)
            .join("charm_kv_keys.json");
        let cache: serde_json::Value =
            serde_json::from_slice(&std::fs::read(cache).unwrap()).unwrap();
        assert_eq!(cache["synced_key0"], key1.id(), "{cache}");
    }
}

/// `charm-kv` with the environment of a client of `server` in `data_dir`, whatever
/// its exit status.
fn cli_run(server: &CharmServer, data_dir: &Path, args: &[&str]) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_charm-kv"));
    command.args(args).env_clear().env("HOME", data_dir);
    command.envs(server.env_for_client(data_dir));
    support::charm_server::run_bounded(&mut command, std::time::Duration::from_secs(120))
}

/// [`cli_run`], which must succeed.
fn cli(server: &CharmServer, data_dir: &Path, args: &[&str]) -> std::process::Output {
    let out = cli_run(server, data_dir, args);
    assert!(
        out.status.success(),
        "charm-kv {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn status_field(stdout: &[u8], name: &str) -> String {
    String::from_utf8_lossy(stdout)
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{name}: ")).map(str::to_owned))
        .unwrap_or_else(|| panic!("no {name} in {}", String::from_utf8_lossy(stdout)))
}

#[test]
fn status_shows_the_servers_newest_version_and_sync_if_stale_skips_a_recent_sync() {
    let server = CharmServer::start();
    let (d1, d2) = (server.client_dir("host1"), server.client_dir("host2"));
    let host1 = Kv::open_with(DB, &device(&server, &d1, None)).unwrap();
    host1.set("k1", "v1").unwrap(); // pushed
    let host2 = Kv::open_with(DB, &device(&server, &d2, Some(&key_of(&d1)))).unwrap();

    let before = host2.status_with_remote().unwrap();
    assert_eq!((before.local_version, before.last_sync), (0, None));
    let charm_kv::RemoteStatus::Reachable { newest_version } = before.remote else {
        panic!("{:?}", before.remote)
    };
    assert!(newest_version > 0);
    assert!(host2
        .sync_if_stale(std::time::Duration::from_secs(3600))
        .unwrap());
    let after = host2.status_with_remote().unwrap();
    assert_eq!(after.local_version, newest_version);
    assert_eq!(after.last_sync.unwrap().version, newest_version);
    assert!(matches!(
        after.remote,
        charm_kv::RemoteStatus::Reachable { newest_version: n } if n == newest_version
    ));
    assert!(after.integrity_ok());

    // The CLI of host 1 (its own data dir): its auto-push was a successful sync.
    let out = cli(&server, &d1, &["status", "--remote"]);
    assert_eq!(status_field(&out.stdout, "server"), "reachable");
    assert_eq!(
        status_field(&out.stdout, "remote_version"),
        newest_version.to_string()
    );
    assert_eq!(
        status_field(&out.stdout, "local_version"),
        newest_version.to_string()
    );
    assert_ne!(status_field(&out.stdout, "last_sync"), "never");
    host2.set("k2", "v2").unwrap(); // pushed by host 2
    cli(&server, &d1, &["sync", "--if-stale", "1h"]);
    let missing = cli_run(&server, &d1, &["get", "k2"]);
    assert_eq!(
        String::from_utf8_lossy(&missing.stderr),
        "charm-kv: key not found\n",
        "a recent sync is not repeated"
    );
    cli(&server, &d1, &["sync", "--if-stale", "0s"]);
    assert_eq!(cli(&server, &d1, &["get", "k2"]).stdout, b"v2");

    // A server that went away: reported, not raised.
    drop(server);
    let gone = host2.status_with_remote().unwrap();
    match gone.remote {
        charm_kv::RemoteStatus::Unreachable(e) => assert_eq!(e.kind(), ErrorKind::Network),
        other => panic!("expected unreachable, got {other:?}"),
    }
    assert_eq!(gone.pending_writes, 0);
}

/// The expiry travels inside the encrypted value through the real server: the other
/// device sees the same expiry, and hides the key once its own clock passes it.
#[test]
fn an_expiry_set_on_one_device_is_honoured_on_another() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};
    let server = CharmServer::start();
    let (d1, d2) = (server.client_dir("host1"), server.client_dir("host2"));
    let host1 = Kv::open_with(DB, &device(&server, &d1, None)).unwrap();
    host1
        .set_with_ttl("session", "token", Duration::from_secs(3600))
        .unwrap();
    host1.set("kept", "k").unwrap();
    assert_eq!(
        host1.pending_writes().unwrap(),
        0,
        "{:?}",
        host1.last_push_error()
    );
    let expires_at = host1.expires_at_unix_ms("session").unwrap().unwrap();
    // Host 2 reads time from a clock the test moves.
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let now = Arc::new(AtomicU64::new(now_ms));
    let mut options = device(&server, &d2, Some(&key_of(&d1)));
    let clock_now = Arc::clone(&now);
    options.clock(charm_kv::store::Clock::from_fn(move || {
        clock_now.load(Ordering::SeqCst)
    }));
    let host2 = Kv::open_with(DB, &options).unwrap();
    host2.sync().unwrap();
    assert_eq!(host2.get("session").unwrap(), b"token");
    assert_eq!(
        host2.expires_at_unix_ms("session").unwrap(),
        Some(expires_at)
    );
    now.store(expires_at as u64, Ordering::SeqCst);
    assert_eq!(
        host2.get("session").unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(host2.keys().unwrap(), [b"kept".to_vec()]);
    host2.sync().unwrap();
    assert_eq!(
        host2.pending_writes().unwrap(),
        0,
        "the purge is not a write"
    );
    // Host 1's clock has not reached it: the key is still there.
    assert_eq!(host1.get("session").unwrap(), b"token");
}
