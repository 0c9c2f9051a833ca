//! `cargo bench --bench concurrency`: read throughput of one `Kv` shared by 1, 2 and 4
//! reader threads while one writer thread commits, against the same with no writer.
//! (Thread scaling is bounded by the machine's cores: 2 here.)
//!
//! `BENCH_CONCURRENCY_MS` (default 1500) is the counted length of each run and
//! `BENCH_CONCURRENCY_ROUNDS` (default 3) how many times each configuration runs (the
//! median is reported); with `BENCH_TSV` the figures are also appended there (suite
//! `concurrency`, size = reader threads).

#[path = "support/results.rs"]
mod results;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use charm_kv::{EncryptKey, Kv, Options};

const KEYS: u64 = 10_000;

fn key(i: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&i.to_be_bytes());
    k
}

/// One run: the threads start, settle for a fifth of `run`, then reads and commits are
/// counted over `run` while all of them keep going (spawning and joining stay outside
/// the window). Returns reads/s and commits/s.
fn measure(kv: &Kv, readers: usize, with_writer: bool, run: Duration) -> (f64, f64) {
    // Every run starts from an empty WAL: how many frames readers must look up in it
    // depends on what ran before, and otherwise skews one run against another.
    let conn = rusqlite::Connection::open(kv.path().unwrap()).unwrap();
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let writes = Arc::new(AtomicU64::new(0));
    let mut threads = Vec::new();
    for t in 0..readers {
        let (kv, stop, reads) = (kv.clone(), stop.clone(), reads.clone());
        threads.push(std::thread::spawn(move || {
            let mut i = t as u64 * 7919;
            while !stop.load(Ordering::Relaxed) {
                kv.get(key(i % KEYS)).unwrap();
                i = i.wrapping_add(104_729);
                reads.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    if with_writer {
        let (kv, stop, writes) = (kv.clone(), stop.clone(), writes.clone());
        threads.push(std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                kv.set(key(i % KEYS), i.to_le_bytes()).unwrap();
                i += 1;
                writes.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    std::thread::sleep(run / 5);
    let (reads0, writes0, start) = (
        reads.load(Ordering::Relaxed),
        writes.load(Ordering::Relaxed),
        Instant::now(),
    );
    std::thread::sleep(run);
    let (reads1, writes1, secs) = (
        reads.load(Ordering::Relaxed),
        writes.load(Ordering::Relaxed),
        start.elapsed().as_secs_f64(),
    );
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    (
        (reads1 - reads0) as f64 / secs,
        (writes1 - writes0) as f64 / secs,
    )
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    (values[(n - 1) / 2] + values[n / 2]) / 2.0
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("concurrency: skipped outside `cargo bench`");
        return;
    }
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let run = Duration::from_millis(env("BENCH_CONCURRENCY_MS", 1500));
    let rounds = env("BENCH_CONCURRENCY_ROUNDS", 3).max(1);
    let dir = tempfile::tempdir().unwrap();
    let mut options = Options::new();
    options
        .data_dir(dir.path())
        .encrypt_keys(vec![EncryptKey::generate()]);
    let kv = Kv::open_with("bench", &options).unwrap();
    let mut batch = kv.batch();
    for i in 0..KEYS {
        batch.set(key(i), [1u8; 100]);
    }
    batch.commit().unwrap();
    const READERS: [usize; 3] = [1, 2, 4];
    // Rounds interleave the configurations, so slow phases of a shared machine spread
    // over all of them; each figure is the median of its rounds.
    let mut figures: Vec<[Vec<f64>; 3]> = READERS.iter().map(|_| Default::default()).collect();
    for _ in 0..rounds {
        for (n, readers) in READERS.into_iter().enumerate() {
            let (alone, _) = measure(&kv, readers, false, run);
            let (contended, commits) = measure(&kv, readers, true, run);
            for (slot, value) in figures[n].iter_mut().zip([alone, contended, commits]) {
                slot.push(value);
            }
        }
    }
    println!(
        "{:<10} {:>16} {:>18} {:>16}   (median of {rounds} rounds of {run:?})",
        "readers", "reads/s alone", "reads/s + writer", "writer commits/s"
    );
    for (readers, [alone, contended, commits]) in READERS.into_iter().zip(figures) {
        let (alone, contended, commits) = (median(alone), median(contended), median(commits));
        println!("{readers:<10} {alone:>16.0} {contended:>18.0} {commits:>16.0}");
        let record = |op, value, unit| {
            results::record("concurrency", op, readers as u64, "charm-kv", value, unit)
        };
        record("reads_alone", alone, "reads/s");
        record("reads_with_writer", contended, "reads/s");
        record("writer_commits", commits, "commits/s");
    }
}
