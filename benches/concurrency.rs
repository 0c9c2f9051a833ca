//! `cargo bench --bench concurrency`: read throughput of one `Kv` shared by 1, 2 and 4
//! reader threads while one writer thread commits, against the same with no writer.
//! (Thread scaling is bounded by the machine's cores: 2 here.)
//!
//! `BENCH_CONCURRENCY_MS` (default 2000) is the length of each run; with `BENCH_TSV`
//! the figures are also appended there (suite `concurrency`, size = reader threads).

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

fn measure(kv: &Kv, readers: usize, with_writer: bool, run: Duration) -> (f64, u64) {
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
    let start = Instant::now();
    std::thread::sleep(run);
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    (
        reads.load(Ordering::Relaxed) as f64 / secs,
        writes.load(Ordering::Relaxed),
    )
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("concurrency: skipped outside `cargo bench`");
        return;
    }
    let run = Duration::from_millis(
        std::env::var("BENCH_CONCURRENCY_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2000),
    );
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
    println!(
        "{:<10} {:>16} {:>18} {:>14}",
        "readers", "reads/s alone", "reads/s + writer", "writer commits"
    );
    for readers in [1, 2, 4] {
        let (alone, _) = measure(&kv, readers, false, run);
        let (contended, writes) = measure(&kv, readers, true, run);
        println!("{readers:<10} {alone:>16.0} {contended:>18.0} {writes:>14}");
        let record = |op, value, unit| {
            results::record("concurrency", op, readers as u64, "charm-kv", value, unit)
        };
        record("reads_alone", alone, "reads/s");
        record("reads_with_writer", contended, "reads/s");
        record(
            "writer_commits",
            writes as f64 / run.as_secs_f64(),
            "commits/s",
        );
    }
}
