//! `cargo bench --bench ops`: criterion micro-benchmarks of charm-kv's Rust API against
//! raw `rusqlite` on the same schema and pragmas without encryption (WAL,
//! `synchronous=FULL`, `kv (key BLOB PRIMARY KEY, value BLOB) WITHOUT ROWID`), with
//! 16-byte keys and 100-byte values, at 10k, 100k and 1M keys.
//!
//! One criterion group per operation; in each, one benchmark per engine and size, named
//! `<operation>/<engine>/<size>` (engine `charm-kv` or `rusqlite`):
//!
//! | group      | one iteration                                   | throughput     |
//! |------------|-------------------------------------------------|----------------|
//! | get_hit    | a point get of a present key (random order)     | 1 op           |
//! | get_miss   | a point get of an absent key                    | 1 op           |
//! | keys       | the full sorted key listing                     | `size` keys    |
//! | open       | open the database and drop the handle           | 1 open         |
//! | set        | a single set in autocommit mode (durable)       | 1 op           |
//! | batch_set  | 10k sets in one transaction (one charm-kv batch)| 10k ops        |
//! | delete     | a single delete of a present key (autocommit)   | 1 op           |
//! | prefix_keys| the 100 keys of one prefix, sorted              | 1 prefix       |
//! | prefix_iter| the 100 pairs of one prefix, in key order       | 1 prefix       |
//!
//! The prefix groups add 100 keys sharing a prefix no other key has, measure, and
//! delete them again; charm-kv takes the prefix from its sorted key list (binary
//! search), rusqlite from its plaintext primary key (`key >= ?1 AND key < ?2`).
//!
//! Each size's database is loaded once and reused by every group; reads run before the
//! writes so the listing sees exactly `size` keys.
//!
//! The C ABI's cost on top of the Rust API is measured apart, without criterion (see
//! [`boundary`]): paired runs of the same operation through both, on the same database
//! file, alternating, so that the machine's drift (large on shared machines) cancels.
//! Point gets are also paired against rusqlite the same way (suite `rust-paired`). With
//! `BENCH_PAIRED_TSV` set, the paired figures are appended to that file as lines
//! `<suite> <operation> <size> <engine> <value> <unit>` (suites `boundary`, engines
//! `c-abi`, `charm-kv`, and `rust-paired`, engines `charm-kv`, `rusqlite`; engine
//! `ratio` is the median ratio). `scripts/bench` collects the estimates
//! criterion writes (`$CRITERION_HOME`, by default `target/criterion`,
//! `<group>/<engine>/<size>/new/estimates.json`).
//!
//! Writes are also paired against rusqlite with *hashed* keys ([`paired_writes`]: suites
//! `writes-normal` and `writes-full`, single sets and 1000-key batches), the anchor that
//! places rows at random as charm-kv's sealed keys do, at sizes up to 100k keys;
//! `BENCH_OPS_SUITE=writes` runs only those, at every size.
//!
//! Settings: `BENCH_SIZES` (default `10000,100000,1000000`), `BENCH_WARMUP_MS` (500)
//! and `BENCH_MEASURE_MS` (2000) per benchmark. Outside `cargo bench` (as in
//! `cargo test --all-targets`) it does nothing.

use std::cell::Cell;
use std::hint::black_box;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use charm_kv::{Durability, EncryptKey, KeyRange, Kv, Options};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput};
use rand::{Rng, SeedableRng};
use rusqlite::{Connection, OptionalExtension};

const KEY_LEN: usize = 16;
const VALUE_LEN: usize = 100;
/// Writes in one `batch_set` iteration.
const BATCH: u64 = 10_000;
/// The Charm encrypt key of the charm-kv database (both of its handles).
const ENCRYPT_KEY: &str = "bench-key-bench-key-bench-key-0123456789";
/// Distinct random lookups cycled through by the get benchmarks.
const LOOKUPS: usize = 100_000;

/// Key `i`: big-endian `i`, then a mix of it (as in `benches/c/ops.c`, so every
/// driver reads the same kind of keys).
fn key(i: u64) -> [u8; KEY_LEN] {
    let mut k = [0u8; KEY_LEN];
    k[..8].copy_from_slice(&i.to_be_bytes());
    k[8..].copy_from_slice(&(i.wrapping_mul(0x9E37_79B9_7F4A_7C15)).to_le_bytes());
    k
}

fn value(i: u64) -> Vec<u8> {
    let mut v = vec![0u8; VALUE_LEN];
    rand::rngs::StdRng::seed_from_u64(i).fill(&mut v[..]);
    v
}

/// The operations measured, on either engine.
trait Engine {
    fn name(&self) -> &'static str;
    /// The value's length (the value itself is dropped, as a caller would after use).
    fn get(&self, key: &[u8]) -> Option<usize>;
    fn set(&self, key: &[u8], value: &[u8]);
    fn set_batch(&self, pairs: &[([u8; KEY_LEN], Vec<u8>)]);
    fn delete(&self, key: &[u8]);
    fn keys(&self) -> usize;
    /// Opens the same database again and closes it.
    fn reopen(&self);
}

struct Charm {
    kv: Kv,
    options: Options,
    name: &'static str,
}

impl Engine for Charm {
    fn name(&self) -> &'static str {
        self.name
    }
    fn get(&self, key: &[u8]) -> Option<usize> {
        match self.kv.get(key) {
            Ok(v) => Some(v.len()),
            Err(charm_kv::Error::NotFound) => None,
            Err(e) => panic!("{e}"),
        }
    }
    fn set(&self, key: &[u8], value: &[u8]) {
        self.kv.set(key, value).unwrap()
    }
    fn set_batch(&self, pairs: &[([u8; KEY_LEN], Vec<u8>)]) {
        let mut batch = self.kv.batch();
        for (k, v) in pairs {
            batch.set(k, v);
        }
        batch.commit().unwrap()
    }
    fn delete(&self, key: &[u8]) {
        self.kv.delete(key).unwrap()
    }
    fn keys(&self) -> usize {
        self.kv.keys().unwrap().len()
    }
    fn reopen(&self) {
        drop(Kv::open_with("bench", &self.options).unwrap())
    }
}

/// The C ABI, called exactly as a C program would (`benches/c/ops.c` does the same from
/// C): the calls below are what the boundary costs on top of the Rust API.
mod c_abi {
    use std::ffi::CString;
    use std::path::Path;
    use std::ptr::{self, NonNull};

    use charm_kv::ffi::*;

    use super::KEY_LEN;

    pub struct CAbi {
        store: NonNull<charm_kv_store>,
        options: NonNull<charm_kv_options>,
        name: CString,
    }

    fn check(status: charm_kv_status, what: &str) {
        assert_eq!(status, charm_kv_status::Ok, "{what}");
    }

    /// Borrows `bytes` for one call.
    fn slice(bytes: &[u8]) -> charm_kv_slice {
        charm_kv_slice {
            data: bytes.as_ptr(),
            len: bytes.len(),
        }
    }

    impl CAbi {
        pub fn open(dir: &Path, name: &str, key_text: &str) -> CAbi {
            let dir = CString::new(dir.to_str().unwrap()).unwrap();
            let name = CString::new(name).unwrap();
            let mut options = ptr::null_mut();
            let mut store = ptr::null_mut();
            // SAFETY: every pointer is valid for the call; the strings are NUL-terminated
            // and outlive it; errors are not requested (NULL).
            unsafe {
                check(
                    charm_kv_options_new(&mut options, ptr::null_mut()),
                    "options",
                );
                check(
                    charm_kv_options_set_data_dir(options, dir.as_ptr(), ptr::null_mut()),
                    "data dir",
                );
                check(
                    charm_kv_options_set_encrypt_key(
                        options,
                        key_text.as_ptr(),
                        key_text.len(),
                        ptr::null_mut(),
                    ),
                    "encrypt key",
                );
                check(
                    charm_kv_store_open(name.as_ptr(), options, &mut store, ptr::null_mut()),
                    "open",
                );
            }
            CAbi {
                store: NonNull::new(store).expect("store"),
                options: NonNull::new(options).expect("options"),
                name,
            }
        }
    }

    impl Drop for CAbi {
        fn drop(&mut self) {
            // SAFETY: both handles are live and owned by self.
            unsafe {
                charm_kv_store_free(self.store.as_ptr());
                charm_kv_options_free(self.options.as_ptr());
            }
        }
    }

    impl super::Engine for CAbi {
        fn name(&self) -> &'static str {
            "c-abi"
        }
        fn get(&self, key: &[u8]) -> Option<usize> {
            let mut out = charm_kv_bytes {
                data: ptr::null_mut(),
                len: 0,
            };
            // SAFETY: the store is live, `key` is readable, `out` is writable; on OK the
            // value is ours and freed once.
            unsafe {
                match charm_kv_store_get(
                    self.store.as_ptr(),
                    key.as_ptr(),
                    key.len(),
                    &mut out,
                    ptr::null_mut(),
                ) {
                    charm_kv_status::Ok => {
                        let len = out.len;
                        charm_kv_bytes_free(&mut out);
                        Some(len)
                    }
                    charm_kv_status::NotFound => None,
                    other => panic!("get: {other:?}"),
                }
            }
        }
        fn set(&self, key: &[u8], value: &[u8]) {
            // SAFETY: the store is live; key and value are readable for their lengths.
            let status = unsafe {
                charm_kv_store_set(
                    self.store.as_ptr(),
                    slice(key),
                    slice(value),
                    ptr::null_mut(),
                )
            };
            check(status, "set");
        }
        fn set_batch(&self, pairs: &[([u8; KEY_LEN], Vec<u8>)]) {
            let mut batch = ptr::null_mut();
            // SAFETY: the store is live; the batch is used by this thread only and
            // consumed by the commit; keys and values are readable for their lengths.
            unsafe {
                check(
                    charm_kv_batch_begin(self.store.as_ptr(), &mut batch, ptr::null_mut()),
                    "batch",
                );
                for (k, v) in pairs {
                    check(
                        charm_kv_batch_set(batch, slice(k), slice(v), ptr::null_mut()),
                        "batch set",
                    );
                }
                check(charm_kv_batch_commit(batch, ptr::null_mut()), "commit");
            }
        }
        fn delete(&self, key: &[u8]) {
            // SAFETY: the store is live; key is readable for its length.
            let status = unsafe {
                charm_kv_store_delete(
                    self.store.as_ptr(),
                    key.as_ptr(),
                    key.len(),
                    ptr::null_mut(),
                )
            };
            check(status, "delete");
        }
        fn keys(&self) -> usize {
            let mut list = charm_kv_bytes_list {
                items: ptr::null_mut(),
                len: 0,
            };
            // SAFETY: the store is live and `list` writable; the list is freed once.
            unsafe {
                check(
                    charm_kv_store_keys(self.store.as_ptr(), &mut list, ptr::null_mut()),
                    "keys",
                );
                let len = list.len;
                charm_kv_bytes_list_free(&mut list);
                len
            }
        }
        fn reopen(&self) {
            let mut again = ptr::null_mut();
            // SAFETY: name and options are live; the new handle is freed at once.
            unsafe {
                check(
                    charm_kv_store_open(
                        self.name.as_ptr(),
                        self.options.as_ptr(),
                        &mut again,
                        ptr::null_mut(),
                    ),
                    "open",
                );
                charm_kv_store_free(again);
            }
        }
    }
}

struct Raw {
    conn: Mutex<Connection>,
    path: std::path::PathBuf,
    synchronous: &'static str,
    /// Stores [`hashed`] keys: uniformly random like charm-kv's sealed keys.
    hash_keys: bool,
}

/// A 16-byte key spread uniformly over the key space (two splitmix64 outputs), as an
/// AES-SIV sealed key is: the raw anchor's inserts then land on random leaves too.
fn hashed(key: &[u8]) -> [u8; KEY_LEN] {
    fn mix(mut z: u64) -> u64 {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    let mut word = [0u8; 8];
    word.copy_from_slice(&key[..8]);
    let seed = u64::from_be_bytes(word) ^ mix(key[8..].iter().map(|&b| b as u64).sum());
    let mut k = [0u8; KEY_LEN];
    k[..8].copy_from_slice(&mix(seed).to_le_bytes());
    k[8..].copy_from_slice(&mix(!seed).to_le_bytes());
    k
}

impl Raw {
    fn connect(path: &Path, synchronous: &str) -> Connection {
        let conn = Connection::open(path).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.pragma_update(None, "synchronous", synchronous)
            .unwrap();
        // charm-kv's page cache (each of its connections has 32 MiB).
        conn.pragma_update(None, "cache_size", -32768).unwrap();
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS kv (key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;",
        )
        .unwrap();
        conn
    }

    fn open(path: &Path) -> Raw {
        Raw::open_with(path, "FULL", false)
    }

    fn open_with(path: &Path, synchronous: &'static str, hash_keys: bool) -> Raw {
        let conn = Raw::connect(path, synchronous);
        if hash_keys {
            // The write anchor checkpoints as charm-kv's writer does (every 8192 pages,
            // docs/storage.md), not at SQLite's default of 1000 pages, which would make
            // every 1000-key batch of random keys checkpoint.
            conn.pragma_update(None, "wal_autocheckpoint", 8192)
                .unwrap();
        }
        Raw {
            conn: Mutex::new(conn),
            path: path.to_owned(),
            synchronous,
            hash_keys,
        }
    }

    /// The key as stored.
    fn stored<'a>(&self, key: &'a [u8], buf: &'a mut [u8; KEY_LEN]) -> &'a [u8] {
        if self.hash_keys {
            *buf = hashed(key);
            buf
        } else {
            key
        }
    }
}

impl Engine for Raw {
    fn name(&self) -> &'static str {
        if self.hash_keys {
            "rusqlite-random"
        } else {
            "rusqlite"
        }
    }
    fn get(&self, key: &[u8]) -> Option<usize> {
        let mut buf = [0u8; KEY_LEN];
        let key = self.stored(key, &mut buf);
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn
            .prepare_cached("SELECT value FROM kv WHERE key = ?1")
            .unwrap();
        stmt.query_row([key], |r| r.get::<_, Vec<u8>>(0))
            .optional()
            .unwrap()
            .map(|v| v.len())
    }
    fn set(&self, key: &[u8], value: &[u8]) {
        let mut buf = [0u8; KEY_LEN];
        let key = self.stored(key, &mut buf);
        let conn = self.conn.lock().unwrap();
        conn.prepare_cached("INSERT OR REPLACE INTO kv (key, value) VALUES (?1, ?2)")
            .unwrap()
            .execute((key, value))
            .unwrap();
    }
    fn set_batch(&self, pairs: &[([u8; KEY_LEN], Vec<u8>)]) {
        let mut conn = self.conn.lock().unwrap();
        let tx = conn.transaction().unwrap();
        {
            let mut stmt = tx
                .prepare_cached("INSERT OR REPLACE INTO kv (key, value) VALUES (?1, ?2)")
                .unwrap();
            for (k, v) in pairs {
                let mut buf = [0u8; KEY_LEN];
                stmt.execute((self.stored(k, &mut buf), v)).unwrap();
            }
        }
        tx.commit().unwrap();
    }
    fn delete(&self, key: &[u8]) {
        let mut buf = [0u8; KEY_LEN];
        let key = self.stored(key, &mut buf);
        let conn = self.conn.lock().unwrap();
        conn.prepare_cached("DELETE FROM kv WHERE key = ?1")
            .unwrap()
            .execute([key])
            .unwrap();
    }
    fn keys(&self) -> usize {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn.prepare_cached("SELECT key FROM kv").unwrap();
        let mut rows = stmt.query([]).unwrap();
        let mut keys = Vec::new();
        while let Some(row) = rows.next().unwrap() {
            keys.push(row.get::<_, Vec<u8>>(0).unwrap());
        }
        keys.sort();
        keys.len()
    }
    fn reopen(&self) {
        drop(Raw::connect(&self.path, self.synchronous))
    }
}

fn env_ms(name: &str, default: u64) -> Duration {
    Duration::from_millis(
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default),
    )
}

/// A fresh value for every write: SQLite skips rewriting a row identical to the stored
/// one, which would make repeated writes of the unencrypted side nearly free.
struct Counter(Cell<u64>);

impl Counter {
    fn next(&self) -> u64 {
        self.0.set(self.0.get() + 1);
        self.0.get()
    }
}

fn bench_size(c: &mut Criterion, size: u64) {
    let dir = tempfile::tempdir().unwrap();
    let mut options = Options::new();
    options
        .data_dir(dir.path())
        .encrypt_keys(vec![
            EncryptKey::from_text("bench", ENCRYPT_KEY, None).unwrap()
        ]);
    let charm = Charm {
        kv: Kv::open_with("bench", &options).unwrap(),
        options: options.clone(),
        name: "charm-kv",
    };
    let raw = Raw::open(&dir.path().join("raw.sqlite"));
    let engines: [&dyn Engine; 2] = [&charm, &raw];

    let loading = Instant::now();
    for start in (0..size).step_by(50_000) {
        let chunk: Vec<_> = (start..(start + 50_000).min(size))
            .map(|i| (key(i), value(i)))
            .collect();
        for engine in engines {
            engine.set_batch(&chunk);
        }
    }
    eprintln!(
        "ops: loaded {size} keys into both engines in {:.1?}",
        loading.elapsed()
    );

    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let lookups: Vec<u64> = (0..LOOKUPS).map(|_| rng.gen_range(0..size)).collect();
    let warm_up = env_ms("BENCH_WARMUP_MS", 500);
    let measure = env_ms("BENCH_MEASURE_MS", 2000);
    let counter = Counter(Cell::new(size));
    let id = |engine: &dyn Engine| BenchmarkId::new(engine.name(), size);

    // Fast operations: criterion's linear sampling over many iterations.
    let mut fast = |name: &str, absent: bool| {
        let mut group = c.benchmark_group(name);
        group
            .warm_up_time(warm_up)
            .measurement_time(measure)
            .sample_size(30)
            .throughput(Throughput::Elements(1));
        let offset = if absent { size } else { 0 };
        for engine in engines {
            let mut at = 0usize;
            group.bench_function(id(engine), |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let k = key(lookups[at] + offset);
                        at = (at + 1) % lookups.len();
                        let found = black_box(engine.get(black_box(&k)));
                        debug_assert_eq!(found.is_some(), !absent);
                    }
                    start.elapsed()
                })
            });
        }
        group.finish();
    };
    fast("get_hit", false);
    fast("get_miss", true);
    paired_gets(&charm, &raw, size, &lookups);

    // Slow operations: few, equally long samples.
    fn slow_group<'a>(
        c: &'a mut Criterion,
        name: &str,
        elements: u64,
        times: (Duration, Duration),
    ) -> BenchmarkGroup<'a, WallTime> {
        let mut group = c.benchmark_group(name);
        group
            .warm_up_time(times.0)
            .measurement_time(times.1)
            .sample_size(10)
            .sampling_mode(SamplingMode::Flat)
            .throughput(Throughput::Elements(elements));
        group
    }
    let times = (warm_up, measure);

    let mut group = slow_group(c, "keys", size, times);
    for engine in engines {
        group.bench_function(id(engine), |b| {
            b.iter(|| assert_eq!(engine.keys() as u64, size))
        });
    }
    group.finish();

    let mut group = slow_group(c, "open", 1, times);
    for engine in engines {
        group.bench_function(id(engine), |b| b.iter(|| engine.reopen()));
    }
    group.finish();

    // Before any write: the boundary's listing expects exactly `size` keys too.
    boundary(&charm, dir.path(), size, &lookups, &counter);

    prefix_groups(c, &charm, &raw, size, times);

    // Single durable sets: new keys above the loaded ones, at most 10k of them.
    let mut group = slow_group(c, "set", 1, times);
    for engine in engines {
        group.bench_function(id(engine), |b| {
            b.iter_custom(|iters| {
                let pairs: Vec<_> = (0..iters)
                    .map(|_| {
                        let n = counter.next();
                        (key(size + n % BATCH), value(n))
                    })
                    .collect();
                let start = Instant::now();
                for (k, v) in &pairs {
                    engine.set(k, v);
                }
                start.elapsed()
            })
        });
    }
    group.finish();

    // 10k sets in one transaction, over the same 10k keys each time with new values.
    let mut group = slow_group(c, "batch_set", BATCH, times);
    for engine in engines {
        group.bench_function(id(engine), |b| {
            b.iter_custom(|iters| timed_batches(engine, size, &counter, iters))
        });
    }
    group.finish();

    // Deletes of present keys: inserted (untimed, in one batch) before each timed run.
    let mut group = slow_group(c, "delete", 1, times);
    for engine in engines {
        group.bench_function(id(engine), |b| {
            b.iter_custom(|iters| {
                let pairs: Vec<_> = (0..iters)
                    .map(|i| (key(3 * size + i), value(counter.next())))
                    .collect();
                engine.set_batch(&pairs);
                let start = Instant::now();
                for (k, _) in &pairs {
                    engine.delete(k);
                }
                start.elapsed()
            })
        });
    }
    group.finish();
}

/// Keys in a prefix group: a prefix no loaded key has (those start with a big-endian
/// count far below 0xfe00...), then the number.
const PREFIX: [u8; 8] = [0xfe; 8];
const PREFIX_KEYS: u64 = 100;

fn prefixed_key(i: u64) -> [u8; KEY_LEN] {
    let mut k = [0u8; KEY_LEN];
    k[..8].copy_from_slice(&PREFIX);
    k[8..].copy_from_slice(&i.to_be_bytes());
    k
}

/// `prefix_keys` and `prefix_iter`: the 100 keys (pairs) of one prefix in a database of
/// `size` other keys.
fn prefix_groups(
    c: &mut Criterion,
    charm: &Charm,
    raw: &Raw,
    size: u64,
    (warm_up, measure): (Duration, Duration),
) {
    let pairs: Vec<_> = (0..PREFIX_KEYS)
        .map(|i| (prefixed_key(i), value(i)))
        .collect();
    charm.set_batch(&pairs);
    raw.set_batch(&pairs);
    let range = KeyRange::all().prefix(PREFIX);
    let mut upper = PREFIX.to_vec();
    *upper.last_mut().unwrap() += 1;
    let raw_prefix = |with_values: bool| {
        let conn = raw.conn.lock().unwrap();
        let sql = match with_values {
            true => "SELECT key, value FROM kv WHERE key >= ?1 AND key < ?2 ORDER BY key",
            false => "SELECT key, NULL FROM kv WHERE key >= ?1 AND key < ?2 ORDER BY key",
        };
        let mut stmt = conn.prepare_cached(sql).unwrap();
        let rows = stmt
            .query_map((&PREFIX[..], &upper[..]), |row| {
                Ok((row.get::<_, Vec<u8>>(0)?, row.get::<_, Option<Vec<u8>>>(1)?))
            })
            .unwrap();
        rows.map(Result::unwrap).count()
    };
    for (name, with_values) in [("prefix_keys", false), ("prefix_iter", true)] {
        let mut group = c.benchmark_group(name);
        group
            .warm_up_time(warm_up)
            .measurement_time(measure)
            .sample_size(30)
            .throughput(Throughput::Elements(1));
        group.bench_function(BenchmarkId::new("charm-kv", size), |b| {
            b.iter(|| {
                let found = match with_values {
                    false => charm.kv.keys_in(&range).unwrap().len(),
                    true => charm
                        .kv
                        .iter_in(&range, true)
                        .unwrap()
                        .map(Result::unwrap)
                        .count(),
                };
                assert_eq!(found as u64, PREFIX_KEYS);
            })
        });
        group.bench_function(BenchmarkId::new("rusqlite", size), |b| {
            b.iter(|| assert_eq!(raw_prefix(with_values) as u64, PREFIX_KEYS))
        });
        group.finish();
    }
    let mut batch = charm.kv.batch();
    for (k, _) in &pairs {
        batch.delete(k);
    }
    batch.commit().unwrap();
    for (k, _) in &pairs {
        raw.delete(k);
    }
}

/// `iters` batches of 10k sets over the same 10k keys (above the loaded ones), each with
/// new values; the time the commits took.
fn timed_batches(engine: &dyn Engine, size: u64, counter: &Counter, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let round = counter.next();
        let pairs: Vec<_> = (0..BATCH)
            .map(|i| (key(2 * size + i), value(round * BATCH + i)))
            .collect();
        let start = Instant::now();
        engine.set_batch(&pairs);
        total += start.elapsed();
    }
    total
}

/// `iters` point gets of the keys `lookups` (shifted by `offset`), continuing from
/// `cursor` and wrapping around; the time they took.
fn timed_gets(
    engine: &dyn Engine,
    lookups: &[u64],
    cursor: &Cell<usize>,
    offset: u64,
    iters: u64,
) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        let at = cursor.get();
        cursor.set((at + 1) % lookups.len());
        black_box(engine.get(black_box(&key(lookups[at] + offset))));
    }
    start.elapsed()
}

/// One paired run of an operation: `iters` iterations on `engine`, the time they took.
type PairedOp<'a> = &'a dyn Fn(&dyn Engine, u64) -> Duration;

/// The C ABI against the Rust API, in pairs: each round times the same number of
/// iterations through both (alternating which goes first), on the same database file
/// through two handles. The ratio is the median of the rounds' ratios, so slow phases
/// of a shared machine hit both sides of a pair alike instead of one engine's whole run.
fn boundary(charm: &Charm, dir: &Path, size: u64, lookups: &[u64], counter: &Counter) {
    let c_abi = c_abi::CAbi::open(dir, "bench", ENCRYPT_KEY);
    let cursor = &Cell::new(0usize);
    let gets = |offset: u64| {
        move |engine: &dyn Engine, iters: u64| timed_gets(engine, lookups, cursor, offset, iters)
    };
    let get_hit = gets(0);
    let get_miss = gets(size);
    let keys = |engine: &dyn Engine, iters: u64| {
        let start = Instant::now();
        for _ in 0..iters {
            assert_eq!(engine.keys() as u64, size);
        }
        start.elapsed()
    };
    let open = |engine: &dyn Engine, iters: u64| {
        let start = Instant::now();
        for _ in 0..iters {
            engine.reopen();
        }
        start.elapsed()
    };
    let batch_set = |engine: &dyn Engine, iters: u64| timed_batches(engine, size, counter, iters);
    let ops: [(&str, PairedOp, u64, &str); 5] = [
        ("get_hit", &get_hit, 1, "ops/s"),
        ("get_miss", &get_miss, 1, "ops/s"),
        ("keys", &keys, size, "keys/s"),
        ("open", &open, 1, "opens/s"),
        ("batch_set", &batch_set, BATCH, "ops/s"),
    ];
    let mut lines = String::new();
    for (name, op, elements, unit) in ops {
        lines += &paired(
            ("boundary", name, size, unit),
            [&c_abi, charm],
            op,
            elements,
        );
    }
    append_paired_tsv(&lines);
}

/// Point gets of charm-kv against raw rusqlite, in pairs like [`boundary`]: the ratio
/// the get target is judged on, free of the drift between criterion's two runs.
fn paired_gets(charm: &Charm, raw: &Raw, size: u64, lookups: &[u64]) {
    let cursor = &Cell::new(0usize);
    let gets = |offset: u64| {
        move |engine: &dyn Engine, iters: u64| timed_gets(engine, lookups, cursor, offset, iters)
    };
    let mut lines = String::new();
    for (name, offset) in [("get_hit", 0), ("get_miss", size)] {
        let op = gets(offset);
        lines += &paired(("rust-paired", name, size, "ops/s"), [charm, raw], &op, 1);
    }
    append_paired_tsv(&lines);
}

/// Runs `op` in paired rounds on `pair` (enough iterations per run for 20 ms; as many
/// rounds as fit the measurement budget, 5 to 50), alternating which engine goes first.
/// Returns the TSV lines: each engine's median throughput and the median of the
/// rounds' throughput ratios `pair[0] / pair[1]` (engine `ratio`).
fn paired(
    (suite, name, size, unit): (&str, &str, u64, &str),
    pair: [&dyn Engine; 2],
    op: PairedOp,
    elements: u64,
) -> String {
    let budget = env_ms("BENCH_MEASURE_MS", 2000);
    let mut iters = 1u64;
    while op(pair[0], iters) < Duration::from_millis(20) && iters < 1 << 30 {
        iters *= 2;
    }
    let per_run = op(pair[1], iters).max(op(pair[0], iters));
    let rounds = (budget.as_secs_f64() / (2.0 * per_run.as_secs_f64())).clamp(5.0, 50.0) as usize;
    let mut times: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut ratios = Vec::new();
    for round in 0..rounds {
        let mut t = [0f64; 2];
        for side in [round % 2, 1 - round % 2] {
            t[side] = op(pair[side], iters).as_secs_f64();
            times[side].push(t[side]);
        }
        ratios.push(t[1] / t[0]); // time of 1 / time of 0 = throughput of 0 / of 1
    }
    let rates = times.map(|mut t| (elements * iters) as f64 / median(&mut t));
    let ratio = median(&mut ratios);
    let names = pair.map(|engine| engine.name());
    eprintln!(
        "{suite} {name}/{size}: {} {:.0} {} {:.0} {unit}, paired ratio {ratio:.3} \
         ({rounds} rounds of {iters})",
        names[0], rates[0], names[1], rates[1]
    );
    let mut lines = String::new();
    for (engine, rate) in names.iter().zip(rates) {
        lines += &format!("{suite}\t{name}\t{size}\t{engine}\t{rate}\t{unit}\n");
    }
    lines + &format!("{suite}\t{name}\t{size}\tratio\t{ratio}\tx\n")
}

/// Writes of charm-kv against raw rusqlite with hashed keys (the like-for-like anchor:
/// sealed keys are uniformly random, so each insert lands on its own leaf), in pairs
/// like [`boundary`], once per durability with the raw side at the same `synchronous`:
/// single sets (autocommit) and 1000-key batches of new keys, into databases that start
/// with `size` keys and grow by the same number of keys on both sides. Suites
/// `writes-normal` and `writes-full`, operations `set` (ops/s) and `batch1000`
/// (keys/s).
fn paired_writes(size: u64) {
    const WRITE_BATCH: u64 = 1000;
    let dir = tempfile::tempdir().unwrap();
    let mut lines = String::new();
    for (durability, synchronous, suite) in [
        (Durability::Normal, "NORMAL", "writes-normal"),
        (Durability::Full, "FULL", "writes-full"),
    ] {
        let mut options = Options::new();
        options
            .data_dir(dir.path().join(suite))
            .durability(durability)
            .encrypt_keys(vec![
                EncryptKey::from_text("bench", ENCRYPT_KEY, None).unwrap()
            ]);
        let charm = Charm {
            kv: Kv::open_with("bench", &options).unwrap(),
            options: options.clone(),
            name: "charm-kv",
        };
        let raw = Raw::open_with(
            &dir.path().join(format!("{suite}-raw.sqlite")),
            synchronous,
            true,
        );
        let engines: [&dyn Engine; 2] = [&charm, &raw];
        for start in (0..size).step_by(50_000) {
            let chunk: Vec<_> = (start..(start + 50_000).min(size))
                .map(|i| (key(i), value(i)))
                .collect();
            for engine in engines {
                engine.set_batch(&chunk);
            }
        }
        let next = Counter(Cell::new(size));
        let set = |engine: &dyn Engine, iters: u64| {
            let pairs: Vec<_> = (0..iters)
                .map(|_| {
                    let n = next.next();
                    (key(n), value(n))
                })
                .collect();
            let start = Instant::now();
            for (k, v) in &pairs {
                engine.set(k, v);
            }
            start.elapsed()
        };
        let batch = |engine: &dyn Engine, iters: u64| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let pairs: Vec<_> = (0..WRITE_BATCH)
                    .map(|_| {
                        let n = next.next();
                        (key(n), value(n))
                    })
                    .collect();
                let start = Instant::now();
                engine.set_batch(&pairs);
                total += start.elapsed();
            }
            total
        };
        lines += &paired((suite, "set", size, "ops/s"), engines, &set, 1);
        lines += &paired(
            (suite, "batch1000", size, "keys/s"),
            engines,
            &batch,
            WRITE_BATCH,
        );
    }
    append_paired_tsv(&lines);
}

fn append_paired_tsv(lines: &str) {
    if let Ok(path) = std::env::var("BENCH_PAIRED_TSV") {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        file.write_all(lines.as_bytes()).unwrap();
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    (values[(n - 1) / 2] + values[n / 2]) / 2.0
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without
    // it, in a debug build, where loading a million keys would take long and mean nothing.
    if !std::env::args().any(|a| a == "--bench") {
        println!("ops: skipped outside `cargo bench`");
        return;
    }
    let sizes: Vec<u64> = std::env::var("BENCH_SIZES")
        .unwrap_or_else(|_| "10000,100000,1000000".into())
        .split(',')
        .map(|s| {
            s.trim()
                .parse()
                .expect("BENCH_SIZES: comma-separated counts")
        })
        .collect();
    let mut c = Criterion::default()
        .nresamples(10_000)
        .without_plots()
        .configure_from_args();
    // BENCH_OPS_SUITE=writes runs only the paired writes (quick to repeat), at every
    // size; otherwise they run up to 100k keys (the size), sparing the full
    // suite four more loads of a million keys.
    let writes_only = std::env::var("BENCH_OPS_SUITE").is_ok_and(|s| s == "writes");
    for size in sizes {
        if !writes_only {
            bench_size(&mut c, size);
        }
        if writes_only || size <= 100_000 {
            paired_writes(size);
        }
    }
    c.final_summary();
}
