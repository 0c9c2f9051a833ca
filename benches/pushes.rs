//! `cargo bench --bench pushes`: what the delta policy (`docs/sync.md`, "Deltas") costs
//! on a real `charm serve` on loopback (issue 16, items 9 and 10).
//!
//! **Pushes.** A database of `BENCH_PUSH_KEYS` keys (default 600,000: 16-byte keys,
//! 64-byte values, about 100 MB) is pushed once (a full snapshot), then takes
//! `BENCH_PUSHES` (default 200) consecutive one-key pushes: `set` of an existing key
//! (a different one each time) then `sync`, with auto-push off so that each push is
//! observed through `sync_with_progress`. Reported: upload per push (amortised: total
//! over the pushes), p50/p99 of set + sync and their ratio, full snapshots among the
//! pushes (from the chain shape in the pusher's `meta`), the files left on the server;
//! then a NEW device of the account syncs from scratch: bytes downloaded, files
//! downloaded and HTTP requests made, against the pusher's database file and the full
//! snapshot.
//!
//! **Devices.** For each count in `BENCH_DEVICES` (default 2,4,8), that many devices of
//! one account (separate data dirs, one SSH identity) each do `BENCH_DEVICE_ROUNDS`
//! (default 20) rounds of set + sync at once, on a database of their own: p50, p99 and
//! max latency, the errors callers saw (and which), rounds over 5 s; then each device
//! syncs twice more in turn and all must hold the same contents with nothing pending.
//!
//! How bytes and files are counted, from the public progress callback only: within one
//! phase a new transfer starts when `done` goes down or `total` changes (each file is
//! one transfer; a download's last report is `(total, total)` and the next file's first
//! is below it). A transfer's bytes are its largest `total` (or `done`): ciphertext
//! bytes for a download (from the server's listing), plaintext bytes of the file handed
//! to the encrypting upload (the ciphertext adds a few dozen bytes per 64 KiB). HTTP
//! requests of the new device are counted by a loopback proxy in front of the server's
//! HTTP port (request lines seen going upstream); its SSH login is not included.
//!
//! Options: `BENCH_PUSH_FOLLOWER=1` adds a second device that syncs after every push
//! (what an up-to-date device downloads to follow; off by default, so the pusher's
//! figures are measured alone); `BENCH_DEVICE_KEYS` (default 0) seeds the database of the
//! devices part with that many keys; `BENCH_PUSH_TRACE=1` prints every push.
//!
//! With `BENCH_TSV`, the figures are appended there: suite `pushes` (size = keys) and
//! suite `devices` (size = device count).

#[path = "support/results.rs"]
mod results;

#[path = "../tests/support/charm_server.rs"]
#[allow(dead_code)]
mod charm_server;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use charm_kv::{Kv, Options, SyncPhase, SyncProgress};
use charm_server::CharmServer;

const VALUE_LEN: usize = 64;
const MIB: f64 = 1024.0 * 1024.0;
/// A round of set + sync slower than this is reported as a stall.
const STALL: Duration = Duration::from_secs(5);

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v}: not a number")),
        _ => default,
    }
}

fn key(i: u64) -> String {
    format!("k{i:015}")
}

fn value(i: u64, version: u64) -> Vec<u8> {
    let mut v = vec![0u8; VALUE_LEN];
    for (j, b) in v.iter_mut().enumerate() {
        *b = (i.wrapping_mul(31) ^ version.wrapping_mul(7) ^ j as u64) as u8;
    }
    v
}

fn key_of(dir: &Path) -> PathBuf {
    dir.join(charm_server::HOST).join("charm_ed25519")
}

/// Transfers seen through the progress callback, per phase: one entry per file, its bytes.
#[derive(Default)]
struct Transfers {
    upload: Vec<u64>,
    download: Vec<u64>,
    last: Option<(SyncPhase, u64, u64)>,
}

impl Transfers {
    fn on(&mut self, p: &SyncProgress) {
        let same = matches!(self.last, Some((phase, done, total))
            if phase == p.phase && p.done >= done && p.total == total);
        let list = match p.phase {
            SyncPhase::Upload => &mut self.upload,
            SyncPhase::Download => &mut self.download,
        };
        let bytes = p.total.max(p.done);
        match list.last_mut() {
            Some(last) if same => *last = (*last).max(bytes),
            _ => list.push(bytes),
        }
        self.last = Some((p.phase, p.done, p.total));
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

/// A loopback TCP proxy that counts HTTP request lines going to the server.
struct CountingProxy {
    port: u16,
    requests: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl CountingProxy {
    fn start(upstream: u16) -> CountingProxy {
        let listener = TcpListener::bind((charm_server::HOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let requests = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (requests.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        let server = TcpStream::connect((charm_server::HOST, upstream)).unwrap();
                        let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                        let counter = r.clone();
                        std::thread::spawn(move || pump(client, server, Some(counter)));
                        std::thread::spawn(move || pump(s2, c2, None));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        CountingProxy {
            port,
            requests,
            stop,
        }
    }

    fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Copies `from` to `to`; with `counter`, counts the HTTP/1.1 request lines carried
/// (the line's end ` HTTP/1.1\r\n`, which may straddle two reads).
fn pump(mut from: TcpStream, mut to: TcpStream, counter: Option<Arc<AtomicU64>>) {
    const MARK: &[u8] = b" HTTP/1.1\r\n";
    let mut buf = vec![0u8; 64 * 1024];
    let mut tail: Vec<u8> = Vec::new();
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(counter) = &counter {
            tail.extend_from_slice(&buf[..n]);
            let found = tail.windows(MARK.len()).filter(|w| *w == MARK).count();
            counter.fetch_add(found as u64, Ordering::Relaxed);
            let keep = tail.len().min(MARK.len() - 1);
            tail.drain(..tail.len() - keep);
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

fn options(server: &CharmServer, dir: &Path, identity: Option<&Path>, http: u16) -> Options {
    let mut options = server.options(dir, identity);
    options.http_port(http).auto_push(false);
    options
}

/// The chain shape the pusher's `meta` records: (`chain_start`, `max_version`, path
/// length, files per level).
fn chain(db: &Path) -> (i64, i64, i64, Vec<i64>) {
    let conn = rusqlite::Connection::open_with_flags(
        db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .unwrap();
    let get = |name: &str| -> i64 {
        conn.query_row("SELECT value FROM meta WHERE name = ?1", [name], |r| {
            r.get(0)
        })
        .unwrap_or(-1)
    };
    let levels = (0..5).map(|l| get(&format!("level_count:{l}"))).collect();
    (
        get("chain_start"),
        get("max_version"),
        get("chain_length"),
        levels,
    )
}

/// Bytes of the database file, and of its pages in use (what the policy compares with).
fn db_sizes(db: &Path) -> (u64, u64) {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    let live: i64 = conn
        .query_row(
            "SELECT (page_count - freelist_count) * page_size \
             FROM pragma_page_count, pragma_freelist_count, pragma_page_size",
            [],
            |r| r.get(0),
        )
        .unwrap();
    (std::fs::metadata(db).unwrap().len(), live as u64)
}

/// Files (and their bytes) the server stores, all users.
fn server_files(dir: &Path) -> (u64, u64) {
    let mut files = (0, 0);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries.flatten() {
        let meta = entry.metadata().unwrap();
        if meta.is_dir() {
            let (n, b) = server_files(&entry.path());
            files = (files.0 + n, files.1 + b);
        } else {
            files = (files.0 + 1, files.1 + meta.len());
        }
    }
    files
}

fn pushes(keys: u64, count: u64) {
    let server = CharmServer::start();
    let dir = server.client_dir("pusher");
    let kv = Kv::open_with("pushes", &options(&server, &dir, None, server.http_port)).unwrap();
    let db = kv.path().unwrap();

    let start = Instant::now();
    let batch_len = 10_000;
    for chunk in 0..keys.div_ceil(batch_len) {
        let mut batch = kv.batch();
        for i in chunk * batch_len..((chunk + 1) * batch_len).min(keys) {
            batch.set(key(i), value(i, 0));
        }
        batch.commit().unwrap();
    }
    let fill_s = start.elapsed().as_secs_f64();

    let mut first = Transfers::default();
    let start = Instant::now();
    kv.sync_with_progress(&mut |p| first.on(p)).unwrap();
    let first_s = start.elapsed().as_secs_f64();
    let snapshot: u64 = first.upload.iter().sum();
    let (file, live) = db_sizes(&db);
    println!(
        "pushes: {keys} keys filled in {fill_s:.1} s; database file {:.1} MiB ({:.1} MiB in use); \
         first push (full snapshot) {:.1} MiB in {first_s:.1} s",
        file as f64 / MIB,
        live as f64 / MIB,
        snapshot as f64 / MIB
    );

    // One-key pushes: each overwrites another existing key, spread over the key space.
    let stride = (keys / count.max(1)).max(1);
    let mut latencies = Vec::new();
    let mut phases: Vec<[f64; 3]> = Vec::new();
    let mut uploaded = Vec::new();
    let mut fulls = Vec::new();
    let mut odd = Vec::new();
    let mut last = (0, 0);
    // With BENCH_PUSH_FOLLOWER, a second device of the account syncs after every push
    // (untimed for the pusher): what an up-to-date device downloads to follow.
    let follower = std::env::var_os("BENCH_PUSH_FOLLOWER").map(|_| {
        let dir = server.client_dir("follower");
        let follower = Kv::open_with(
            "pushes",
            &options(
                &server,
                &dir,
                Some(&key_of(&server.client_dir("pusher"))),
                server.http_port,
            ),
        )
        .unwrap();
        follower.sync().unwrap();
        follower
    });
    let mut follows: Vec<(u64, usize, f64)> = Vec::new();
    for n in 0..count {
        let i = (n * stride + n) % keys;
        let mut seen = Transfers::default();
        let mut first_up = None;
        let start = Instant::now();
        kv.set(key(i), value(i, n + 1)).unwrap();
        let set_done = Instant::now();
        kv.sync_with_progress(&mut |p| {
            if p.phase == SyncPhase::Upload {
                first_up.get_or_insert_with(Instant::now);
            }
            seen.on(p)
        })
        .unwrap();
        let end = Instant::now();
        latencies.push((end - start).as_secs_f64() * 1000.0);
        // Where the time went: the local commit, the sync up to the upload (listing,
        // ticket, writing the file), then the rest: the upload request (its body, a few
        // pages, is read at once), recording it, retention, confirming.
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let up = first_up.unwrap_or(end);
        phases.push([ms(set_done - start), ms(up - set_done), ms(end - up)]);
        let bytes: u64 = seen.upload.iter().sum();
        uploaded.push(bytes);
        let (chain_start, version, length, levels) = chain(&db);
        if chain_start == version {
            fulls.push((n + 1, version, bytes));
        }
        // One device alone: each push uploads one file, downloads nothing and is
        // confirmed at once (no ticket drawn since its own).
        let pending = kv.pending_writes().unwrap();
        if seen.upload.len() != 1 || !seen.download.is_empty() || pending != 0 {
            odd.push(format!(
                "push {}: {} uploads, {} downloads, {pending} writes still pending",
                n + 1,
                seen.upload.len(),
                seen.download.len()
            ));
        }
        last = (length, levels.iter().filter(|&&c| c > 0).count() as i64);
        if let Some(follower) = &follower {
            let mut got = Transfers::default();
            let start = Instant::now();
            follower.sync_with_progress(&mut |p| got.on(p)).unwrap();
            let ms = start.elapsed().as_secs_f64() * 1000.0;
            follows.push((got.download.iter().sum(), got.download.len(), ms));
            if std::env::var_os("BENCH_PUSH_TRACE").is_some() {
                println!(
                    "  follower after push {:>3}: {} files, {} B, {ms:.1} ms",
                    n + 1,
                    got.download.len(),
                    got.download.iter().sum::<u64>()
                );
            }
        }
        if std::env::var_os("BENCH_PUSH_TRACE").is_some() {
            println!(
                "  push {:>3}: v{version} {:>8} B {:>7.1} ms path {length} levels {levels:?} \
                 (set, to the upload, from it: {:.1?})",
                n + 1,
                bytes,
                latencies.last().unwrap(),
                phases.last().unwrap()
            );
        }
    }
    if !follows.is_empty() {
        let large: Vec<usize> = (0..follows.len())
            .filter(|&n| follows[n].0 > snapshot / 2)
            .map(|n| n + 1)
            .collect();
        let times = sorted(follows.iter().map(|f| f.2).collect());
        println!(
            "pushes: follower: {:.1} MiB downloaded in {} files over {} pushes; after pushes \
             {large:?} it downloaded more than half the full snapshot; sync p50 {:.1} ms, max \
             {:.1} ms",
            follows.iter().map(|f| f.0).sum::<u64>() as f64 / MIB,
            follows.iter().map(|f| f.1).sum::<usize>(),
            follows.len(),
            percentile(&times, 0.5),
            times.last().copied().unwrap_or(f64::NAN)
        );
    }
    let total: u64 = uploaded.iter().sum();
    let per_push_kib = total as f64 / count as f64 / 1024.0;
    let lat = sorted(latencies);
    let (p50, p99) = (percentile(&lat, 0.5), percentile(&lat, 0.99));
    let max_upload = uploaded.iter().copied().max().unwrap_or(0);
    let (files_left, bytes_left) = server_files(&server.data_dir().join("files"));
    println!(
        "pushes: {count} one-key pushes: upload {per_push_kib:.1} KiB per push amortised \
         (largest {:.1} KiB); set+sync p50 {p50:.1} ms, p99 {p99:.1} ms (p99/p50 {:.2}), \
         max {:.1} ms; full snapshots among them: {}; path after them: {} files on {} levels; \
         server holds {files_left} files, {:.1} MiB",
        max_upload as f64 / 1024.0,
        p99 / p50,
        lat.last().copied().unwrap_or(f64::NAN),
        fulls.len(),
        last.0,
        last.1,
        bytes_left as f64 / MIB
    );
    // The phases of the median push against those of the slowest 2%.
    let mut order: Vec<usize> = (0..phases.len()).collect();
    order.sort_by(|&a, &b| {
        phases[a]
            .iter()
            .sum::<f64>()
            .total_cmp(&phases[b].iter().sum())
    });
    let slow = &order[order.len() - (order.len() / 50).max(1)..];
    let mean = |which: &[usize], k: usize| {
        which.iter().map(|&i| phases[i][k]).sum::<f64>() / which.len() as f64
    };
    let median = order[order.len() / 2];
    println!(
        "  phases in ms (set, sync to the upload, from the upload on): median push {:.1?}, \
         slowest 2% on average [{:.1}, {:.1}, {:.1}]",
        phases[median],
        mean(slow, 0),
        mean(slow, 1),
        mean(slow, 2)
    );
    for (n, version, bytes) in &fulls {
        println!("  full snapshot at push {n} (version {version}, {bytes} bytes)");
    }
    for line in &odd {
        println!("  {line}");
    }

    // A new device of the account, from scratch, through the counting proxy.
    let proxy = CountingProxy::start(server.http_port);
    let new_dir = server.client_dir("new-device");
    let new = Kv::open_with(
        "pushes",
        &options(&server, &new_dir, Some(&key_of(&dir)), proxy.port),
    )
    .unwrap();
    let mut seen = Transfers::default();
    let start = Instant::now();
    new.sync_with_progress(&mut |p| seen.on(p)).unwrap();
    let new_s = start.elapsed().as_secs_f64();
    let requests = proxy.requests();
    let downloaded: u64 = seen.download.iter().sum();
    let last_key = ((count - 1) * stride + count - 1) % keys;
    assert_eq!(new.get(key(last_key)).unwrap(), value(last_key, count));
    assert_eq!(new.keys().unwrap().len() as u64, keys);
    let files = seen.download.len() as u64;
    println!(
        "pushes: new device's first sync: {:.1} MiB in {files} files ({:.2}x the pusher's \
         database file, {:.2}x the full snapshot), {requests} HTTP requests, {new_s:.1} s; \
         files: {:?}",
        downloaded as f64 / MIB,
        downloaded as f64 / file as f64,
        downloaded as f64 / snapshot as f64,
        seen.download
    );

    let r = |op: &str, value: f64, unit: &str| {
        results::record("pushes", op, keys, "charm-kv", value, unit)
    };
    r("pushes", count as f64, "count");
    r("db_file", file as f64 / MIB, "MiB");
    r("db_live", live as f64 / MIB, "MiB");
    r("full_snapshot", snapshot as f64 / MIB, "MiB");
    r("first_push", first_s, "s");
    r("upload_per_push", per_push_kib, "KiB");
    r("upload_max", max_upload as f64 / 1024.0, "KiB");
    r("set_sync_p50", p50, "ms");
    r("set_sync_p99", p99, "ms");
    r("p99_over_p50", p99 / p50, "x");
    r("full_snapshots", fulls.len() as f64, "count");
    r("server_files", files_left as f64, "count");
    r("new_download", downloaded as f64 / MIB, "MiB");
    r("new_download_x_db", downloaded as f64 / file as f64, "x");
    r(
        "new_download_x_snapshot",
        downloaded as f64 / snapshot as f64,
        "x",
    );
    r("new_files", files as f64, "count");
    r("new_requests", requests as f64, "count");
    r("new_sync", new_s, "s");
    if !follows.is_empty() {
        let bytes: u64 = follows.iter().map(|f| f.0).sum();
        let large = follows.iter().filter(|f| f.0 > snapshot / 2).count();
        r(
            "follower_download_per_push",
            bytes as f64 / follows.len() as f64 / 1024.0,
            "KiB",
        );
        r("follower_large_downloads", large as f64, "count");
    }
}

fn devices(server: &CharmServer, n: usize, rounds: usize, seed_keys: u64) {
    let db = format!("devices{n}");
    let first = server.client_dir(&format!("{db}-0"));
    let kvs: Vec<Kv> = (0..n)
        .map(|d| {
            let dir = if d == 0 {
                first.clone()
            } else {
                server.client_dir(&format!("{db}-{d}"))
            };
            let identity = (d > 0).then(|| key_of(&first));
            let kv = Kv::open_with(
                &db,
                &options(server, &dir, identity.as_deref(), server.http_port),
            )
            .unwrap();
            if d == 0 {
                let mut batch = kv.batch();
                batch.set("seed", "0");
                for i in 0..seed_keys {
                    batch.set(key(i), value(i, 0));
                }
                batch.commit().unwrap();
            }
            // Log in, fetch the keys and the database once before anything is timed.
            kv.sync().unwrap();
            kv
        })
        .collect();
    // Every device now holds the first full snapshot; a chain starting elsewhere later
    // means a full snapshot was uploaded during the rounds.
    let initial = chain(&kvs[0].path().unwrap()).0;
    let barrier = Arc::new(Barrier::new(n));
    let threads: Vec<_> = kvs
        .iter()
        .enumerate()
        .map(|(d, kv)| {
            let (kv, barrier) = (kv.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                (0..rounds)
                    .map(|r| {
                        let start = Instant::now();
                        kv.set(format!("dev{d}-{r}"), format!("{d}:{r}")).unwrap();
                        let mut seen = Transfers::default();
                        let outcome = kv
                            .sync_with_progress(&mut |p| seen.on(p))
                            .err()
                            .map(|e| format!("{:?}: {e}", e.kind()));
                        let elapsed = start.elapsed();
                        // The full snapshot the device's chain now starts from.
                        let start = chain(&kv.path().unwrap()).0;
                        (elapsed, outcome, start, seen.download)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut errors: BTreeMap<String, usize> = BTreeMap::new();
    let mut starts = std::collections::BTreeSet::new();
    // Files downloaded by the rounds: a delta is a few pages; larger ones are (mostly)
    // full snapshots, which a device up to date should not need.
    const LARGE: u64 = 64 << 10;
    let (mut downloaded, mut files, mut large) = (0u64, 0usize, 0usize);
    for t in threads {
        for (elapsed, outcome, start, downloads) in t.join().unwrap() {
            latencies.push(elapsed.as_secs_f64() * 1000.0);
            downloaded += downloads.iter().sum::<u64>();
            files += downloads.len();
            large += downloads.iter().filter(|&&b| b > LARGE).count();
            if start != initial {
                starts.insert(start);
            }
            if let Some(e) = outcome {
                *errors.entry(e).or_default() += 1;
            }
        }
    }
    let stalls = latencies
        .iter()
        .filter(|&&ms| ms >= STALL.as_secs_f64() * 1000.0)
        .count();
    // Settle: each device syncs twice in turn; then all must agree, nothing pending.
    let mut settle_errors = 0;
    for _ in 0..2 {
        for kv in &kvs {
            if let Err(e) = kv.sync() {
                settle_errors += 1;
                *errors
                    .entry(format!("(settling) {:?}: {e}", e.kind()))
                    .or_default() += 1;
            }
        }
    }
    let contents =
        |kv: &Kv| -> Vec<(Vec<u8>, Vec<u8>)> { kv.iter().unwrap().map(Result::unwrap).collect() };
    let expected = contents(&kvs[0]);
    let want = 1 + seed_keys as usize + n * rounds;
    let complete = expected.len() == want;
    let converged = complete
        && kvs
            .iter()
            .all(|kv| kv.pending_writes().unwrap() == 0 && contents(kv) == expected);
    let lat = sorted(latencies);
    let (p50, p99, max) = (
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat.last().copied().unwrap_or(f64::NAN),
    );
    let error_count: usize = errors.values().sum::<usize>() - settle_errors;
    println!(
        "devices: {n} x {rounds} rounds: p50 {p50:.0} ms, p99 {p99:.0} ms, max {max:.0} ms; \
         errors {error_count} (+{settle_errors} while settling); rounds >= {:?}: {stalls}; \
         converged: {converged} ({} keys, want {want}); full snapshots during the rounds: {} \
         (at versions {starts:?})",
        STALL,
        expected.len(),
        starts.len()
    );
    println!(
        "  downloaded by the rounds: {:.1} MiB in {files} files, {large} of them over {} KiB",
        downloaded as f64 / MIB,
        LARGE >> 10
    );
    // Where the rounds fall against the 250 ms poll of a pusher waiting for earlier tickets.
    let mut buckets = BTreeMap::new();
    for ms in &lat {
        let bucket = if *ms < 50.0 {
            0
        } else {
            1 + (*ms / 250.0) as u64
        };
        *buckets.entry(bucket).or_insert(0) += 1;
    }
    let histogram: Vec<String> = buckets
        .iter()
        .map(|(b, k)| match b {
            0 => format!("<50 ms: {k}"),
            b => format!("{}-{} ms: {k}", ((b - 1) * 250).max(50), b * 250),
        })
        .collect();
    println!("  rounds by latency: {}", histogram.join(", "));
    for (e, k) in &errors {
        println!("  {k} x {e}");
    }
    let size = n as u64;
    let r = |op: &str, value: f64, unit: &str| {
        results::record("devices", op, size, "charm-kv", value, unit)
    };
    r("rounds", (n * rounds) as f64, "count");
    r("p50", p50, "ms");
    r("p99", p99, "ms");
    r("max", max, "ms");
    r("errors", error_count as f64, "count");
    r("settle_errors", settle_errors as f64, "count");
    r("stalls", stalls as f64, "count");
    r("converged", if converged { 1.0 } else { 0.0 }, "bool");
    r("full_snapshots", starts.len() as f64, "count");
    r("downloaded", downloaded as f64 / MIB, "MiB");
    r("large_downloads", large as f64, "count");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("pushes: skipped outside `cargo bench`");
        return;
    }
    let keys: u64 = env_or("BENCH_PUSH_KEYS", 600_000);
    let count: u64 = env_or("BENCH_PUSHES", 200);
    let rounds: usize = env_or("BENCH_DEVICE_ROUNDS", 20);
    let seed_keys: u64 = env_or("BENCH_DEVICE_KEYS", 0);
    let counts: Vec<usize> = std::env::var("BENCH_DEVICES")
        .unwrap_or_else(|_| "2,4,8".into())
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().expect("BENCH_DEVICES: counts like 2,4,8"))
        .collect();
    if keys > 0 && count > 0 {
        pushes(keys, count);
    }
    if !counts.is_empty() && rounds > 0 {
        let server = CharmServer::start();
        for n in counts {
            devices(&server, n, rounds, seed_keys);
        }
    }
}
