//! A 100 MB database through a real `charm serve`: snapshot, encryption, upload,
//! download, decryption and restore stream, so memory stays far below the database size.
//! In its own test binary so the process's peak memory belongs to this test alone.
//! `CHARM_KV_LARGE_MB` sets the size (default 100).
// Needs the real Charm server or the Go toolchain: runs with `--features interop-tests`
// (scripts/test-all, which installs them).
#![cfg(feature = "interop-tests")]

mod support;

use charm_kv::{Kv, Options};
use support::charm_server::{CharmServer, HOST};

/// Peak resident memory of this process so far (Linux `VmHWM`), in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

fn options(
    server: &CharmServer,
    dir: &std::path::Path,
    identity: Option<&std::path::Path>,
) -> Options {
    let mut options = server.options(dir, identity);
    options.auto_push(false);
    options
}

#[test]
fn a_100_mb_database_syncs_in_bounded_memory() {
    let megabytes: usize = std::env::var("CHARM_KV_LARGE_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let server = CharmServer::start();
    let (d1, d2) = (
        server.client_dir("big-writer"),
        server.client_dir("big-reader"),
    );
    let writer = Kv::open_with("big", &options(&server, &d1, None)).unwrap();
    let value_len = 64 * 1024;
    let count = megabytes * 1024 * 1024 / value_len;
    for chunk in 0..count.div_ceil(64) {
        let mut batch = writer.batch();
        for i in chunk * 64..((chunk + 1) * 64).min(count) {
            let value: Vec<u8> = (0..value_len).map(|j| (i * 31 + j) as u8).collect();
            batch.set(format!("blob{i:05}"), value);
        }
        batch.commit().unwrap();
    }
    let db_size = std::fs::metadata(writer.path().unwrap()).unwrap().len()
        + std::fs::metadata(format!("{}-wal", writer.path().unwrap().display()))
            .map(|m| m.len())
            .unwrap_or(0);
    assert!(
        db_size as usize >= megabytes * 1024 * 1024 * 9 / 10,
        "{db_size}"
    );
    let before = peak_rss();

    let mut uploaded = 0;
    writer
        .sync_with_progress(&mut |p| uploaded = uploaded.max(p.done))
        .unwrap();
    assert!(uploaded as usize >= megabytes * 1024 * 1024, "{uploaded}");

    let key = d1.join(HOST).join("charm_ed25519");
    let reader = Kv::open_with("big", &options(&server, &d2, Some(&key))).unwrap();
    let mut downloaded = 0;
    reader
        .sync_with_progress(&mut |p| downloaded = downloaded.max(p.done))
        .unwrap();
    assert!(
        downloaded as usize >= megabytes * 1024 * 1024,
        "{downloaded}"
    );
    assert_eq!(reader.keys().unwrap().len(), count);
    let probe = count / 2;
    let expected: Vec<u8> = (0..value_len).map(|j| (probe * 31 + j) as u8).collect();
    assert_eq!(reader.get(format!("blob{probe:05}")).unwrap(), expected);

    let peak = peak_rss();
    eprintln!(
        "large sync: {megabytes} MB database, up {uploaded} B, down {downloaded} B, \
         peak RSS {} MiB (before sync {} MiB)",
        peak >> 20,
        before >> 20
    );
    // The whole process, writer and reader included, never held the database: at most
    // half its size beyond what SQLite's page caches may hold by configuration (each
    // store: its writer and a reader, filled by writing and restoring the 100 MB).
    use charm_kv::store::schema::Role;
    let caches = 2 * (Role::Writer.cache_kib() + Role::Reader.cache_kib()) as usize * 1024;
    assert!(
        (peak as usize) < megabytes * 1024 * 1024 / 2 + caches,
        "peak RSS {} MiB for a {megabytes} MB database (page caches may hold {} MiB)",
        peak >> 20,
        caches >> 20
    );
}
