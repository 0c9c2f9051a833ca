//! `cargo bench --bench compare`: charm-kv's Rust API against raw `rusqlite` on the same
//! schema and pragmas without encryption, in one run on one machine, reported as ratios
//! (this machine class is shared and noisy: absolute numbers alone mean little).
//!
//! Sizes: `BENCH_SIZES=10000,100000,1000000` (default). Each figure is the best of
//! `BENCH_REPEATS` (default 3) timed runs.

use std::path::Path;
use std::time::{Duration, Instant};

use charm_kv::{EncryptKey, Kv, Options};
use rand::{Rng, SeedableRng};
use rusqlite::{Connection, OptionalExtension};

const VALUE_LEN: usize = 100;
const KEY_LEN: usize = 16;

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

/// The same operations on both engines.
trait Engine {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>>;
    fn set(&self, key: &[u8], value: &[u8]);
    fn set_batch(&self, pairs: &[([u8; KEY_LEN], Vec<u8>)]);
    fn delete(&self, key: &[u8]);
    fn keys(&self) -> usize;
}

struct Charm(Kv);

impl Engine for Charm {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        match self.0.get(key) {
            Ok(v) => Some(v),
            Err(charm_kv::Error::NotFound) => None,
            Err(e) => panic!("{e}"),
        }
    }
    fn set(&self, key: &[u8], value: &[u8]) {
        self.0.set(key, value).unwrap()
    }
    fn set_batch(&self, pairs: &[([u8; KEY_LEN], Vec<u8>)]) {
        let mut batch = self.0.batch();
        for (k, v) in pairs {
            batch.set(k, v);
        }
        batch.commit().unwrap()
    }
    fn delete(&self, key: &[u8]) {
        self.0.delete(key).unwrap()
    }
    fn keys(&self) -> usize {
        self.0.keys().unwrap().len()
    }
}

struct Raw(std::sync::Mutex<Connection>);

impl Raw {
    fn open(path: &Path) -> Raw {
        let conn = Connection::open(path).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.pragma_update(None, "synchronous", "FULL").unwrap();
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS kv (key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;",
        )
        .unwrap();
        Raw(std::sync::Mutex::new(conn))
    }
}

impl Engine for Raw {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let conn = self.0.lock().unwrap();
        let mut stmt = conn
            .prepare_cached("SELECT value FROM kv WHERE key = ?1")
            .unwrap();
        stmt.query_row([key], |r| r.get(0)).optional().unwrap()
    }
    fn set(&self, key: &[u8], value: &[u8]) {
        let conn = self.0.lock().unwrap();
        conn.prepare_cached("INSERT OR REPLACE INTO kv (key, value) VALUES (?1, ?2)")
            .unwrap()
            .execute((key, value))
            .unwrap();
    }
    fn set_batch(&self, pairs: &[([u8; KEY_LEN], Vec<u8>)]) {
        let mut conn = self.0.lock().unwrap();
        let tx = conn.transaction().unwrap();
        {
            let mut stmt = tx
                .prepare_cached("INSERT OR REPLACE INTO kv (key, value) VALUES (?1, ?2)")
                .unwrap();
            for (k, v) in pairs {
                stmt.execute((&k[..], v)).unwrap();
            }
        }
        tx.commit().unwrap();
    }
    fn delete(&self, key: &[u8]) {
        let conn = self.0.lock().unwrap();
        conn.prepare_cached("DELETE FROM kv WHERE key = ?1")
            .unwrap()
            .execute([key])
            .unwrap();
    }
    fn keys(&self) -> usize {
        let conn = self.0.lock().unwrap();
        let mut stmt = conn.prepare_cached("SELECT key FROM kv").unwrap();
        let mut rows = stmt.query([]).unwrap();
        let mut keys = Vec::new();
        while let Some(row) = rows.next().unwrap() {
            keys.push(row.get::<_, Vec<u8>>(0).unwrap());
        }
        keys.sort();
        keys.len()
    }
}

fn best_of(repeats: usize, mut f: impl FnMut() -> Duration) -> Duration {
    (0..repeats).map(|_| f()).min().unwrap()
}

fn timed(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

struct Row {
    op: String,
    charm: f64,
    raw: f64,
    unit: &'static str,
    target: Option<f64>,
}

fn measure(size: u64, repeats: usize, rows: &mut Vec<Row>) {
    let dir = tempfile::tempdir().unwrap();
    let mut options = Options::new();
    options
        .data_dir(dir.path())
        .encrypt_keys(vec![EncryptKey::generate()]);
    let charm = Charm(Kv::open_with("bench", &options).unwrap());
    let raw = Raw::open(&dir.path().join("raw.sqlite"));
    let engines: [&dyn Engine; 2] = [&charm, &raw];

    let pairs: Vec<_> = (0..size).map(|i| (key(i), value(i))).collect();
    for engine in engines {
        for chunk in pairs.chunks(50_000) {
            engine.set_batch(chunk);
        }
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let lookups: Vec<u64> = (0..100_000).map(|_| rng.gen_range(0..size)).collect();
    let mut results =
        |op: &str, unit: &'static str, target: Option<f64>, f: &dyn Fn(&dyn Engine) -> f64| {
            let c = f(&charm);
            let r = f(&raw);
            rows.push(Row {
                op: format!("{op} ({size} keys)"),
                charm: c,
                raw: r,
                unit,
                target,
            });
        };

    results("point get, hit", "ops/s", Some(0.75), &|e| {
        let t = best_of(repeats, || {
            timed(|| {
                for &i in &lookups {
                    assert!(e.get(&key(i)).is_some());
                }
            })
        });
        lookups.len() as f64 / t.as_secs_f64()
    });
    results("point get, miss", "ops/s", None, &|e| {
        let t = best_of(repeats, || {
            timed(|| {
                for &i in &lookups {
                    assert!(e.get(&key(i + size)).is_none());
                }
            })
        });
        lookups.len() as f64 / t.as_secs_f64()
    });
    // Every repeat writes new keys or new values: SQLite skips rewriting a row identical
    // to the stored one, which would make repeats of the unencrypted side free.
    let round = std::cell::Cell::new(0u64);
    let next_round = || {
        round.set(round.get() + 1);
        round.get()
    };
    results("single set (autocommit, fsync)", "ops/s", None, &|e| {
        let n = 300u64;
        let t = best_of(repeats, || {
            let r = next_round();
            timed(|| (0..n).for_each(|i| e.set(&key(size + i), &value(r * n + i))))
        });
        n as f64 / t.as_secs_f64()
    });
    results("batch set (10k in one txn)", "ops/s", None, &|e| {
        let t = best_of(repeats, || {
            let r = next_round();
            let batch: Vec<_> = (0..10_000u64)
                .map(|i| (key(2 * size + i), value(r * 10_000 + i)))
                .collect();
            timed(|| e.set_batch(&batch))
        });
        10_000.0 / t.as_secs_f64()
    });
    results("delete (autocommit)", "ops/s", None, &|e| {
        let n = 100u64;
        let t = best_of(repeats, || {
            let r = next_round();
            timed(|| (0..n).for_each(|i| e.delete(&key((r * n + i) % size))))
        });
        n as f64 / t.as_secs_f64()
    });
    results("full key listing (sorted)", "keys/s", None, &|e| {
        let mut count = 0;
        let t = best_of(repeats, || timed(|| count = e.keys()));
        count as f64 / t.as_secs_f64()
    });
    let charm_open = best_of(repeats, || {
        timed(|| drop(Kv::open_with("bench", &options).unwrap()))
    });
    let raw_open = best_of(repeats, || {
        timed(|| drop(Raw::open(&dir.path().join("raw.sqlite"))))
    });
    rows.push(Row {
        op: format!("open ({size} keys)"),
        charm: 1.0 / charm_open.as_secs_f64(),
        raw: 1.0 / raw_open.as_secs_f64(),
        unit: "opens/s",
        target: None,
    });
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without
    // it, in a debug build, where measuring would take long and mean nothing.
    if !std::env::args().any(|a| a == "--bench") {
        println!("compare: skipped outside `cargo bench`");
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
    let repeats: usize = std::env::var("BENCH_REPEATS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let mut rows = Vec::new();
    for size in sizes {
        measure(size, repeats, &mut rows);
    }
    println!(
        "{:<46} {:>14} {:>14} {:>8} {:>8}  unit",
        "operation", "charm-kv", "rusqlite", "ratio", "target"
    );
    for row in &rows {
        let ratio = row.charm / row.raw;
        let target = match row.target {
            Some(t) if ratio >= t => format!(">={t} ok"),
            Some(t) => format!(">={t} MISS"),
            None => String::new(),
        };
        println!(
            "{:<46} {:>14.0} {:>14.0} {:>7.2}x {:>8}  {}",
            row.op, row.charm, row.raw, ratio, target, row.unit
        );
    }
}
