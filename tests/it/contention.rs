//! Contention: several processes, each with several threads, reading and writing one
//! database for a bounded time. No call may fail ("database is locked" must never reach
//! a caller), no acknowledged write may be missing, and no reader may see half a batch.
//!
//! `CHARM_KV_CONTENTION_SECS` (default 3) bounds each process's run; every thread still
//! completes at least one full round of operations, so that a process starved by the
//! others for the whole period (a loaded CI machine) is slower, not a false failure.

use crate::support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use charm_kv::{EncryptKey, Kv, Options};

const PROCESSES: usize = 3;
const THREADS: usize = 4;
const BATCH: usize = 4;
/// Operations in one round: two sets, a batch, a whole-batch check, a read.
const ROUND: u64 = 5;

fn open(dir: &Path, key: &EncryptKey) -> Kv {
    let mut options = Options::new();
    options.data_dir(dir).encrypt_keys(vec![key.clone()]);
    Kv::open_with("contended", &options).unwrap()
}

/// Checks, in one snapshot, that every batch group is complete and consistent.
fn assert_batches_whole(kv: &Kv) -> usize {
    let mut groups: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
    for pair in kv.iter().unwrap() {
        let (k, v) = pair.unwrap();
        let k = String::from_utf8(k).unwrap();
        if let Some((group, _)) = k.split_once("#m") {
            groups.entry(group.to_owned()).or_default().push(v);
        }
    }
    for (group, values) in &groups {
        assert_eq!(values.len(), BATCH, "batch {group} seen partially");
        assert!(
            values.windows(2).all(|w| w[0] == w[1]),
            "batch {group} mixes versions"
        );
    }
    groups.len()
}

#[test]
fn contention_child() {
    let Ok(spec) = std::env::var("CHARM_KV_CONTENTION_CHILD") else {
        return;
    };
    let mut parts = spec.splitn(4, '|');
    let dir = parts.next().unwrap().to_owned();
    let proc_id: usize = parts.next().unwrap().parse().unwrap();
    let secs: u64 = parts.next().unwrap().parse().unwrap();
    let key = EncryptKey::from_text("id", parts.next().unwrap(), None).unwrap();
    let kv = open(Path::new(&dir), &key);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let kv = kv.clone();
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                let mut i = 0u64;
                let mut slowest = Duration::ZERO;
                while i < ROUND || Instant::now() < deadline {
                    let started = Instant::now();
                    match i % ROUND {
                        0 | 1 => {
                            let k = format!("p{proc_id}t{t}-{i}");
                            kv.set(&k, format!("v{i}")).unwrap();
                            acked.push(k);
                        }
                        2 => {
                            // Rewrites of one group per thread: readers must never mix rounds.
                            let group = format!("g{proc_id}t{t}");
                            let mut batch = kv.batch();
                            for m in 0..BATCH {
                                batch.set(format!("{group}#m{m}"), format!("round{i}"));
                            }
                            batch.commit().unwrap();
                        }
                        3 => {
                            assert_batches_whole(&kv);
                        }
                        _ => {
                            if let Some(k) = acked.last() {
                                assert!(kv.get(k).is_ok());
                            }
                        }
                    }
                    slowest = slowest.max(started.elapsed());
                    i += 1;
                }
                (acked, slowest)
            })
        })
        .collect();
    let mut out = std::io::stdout().lock();
    for thread in threads {
        let (acked, slowest) = thread.join().unwrap();
        for k in acked {
            writeln!(out, "ack {k}").unwrap();
        }
        writeln!(out, "slowest {}", slowest.as_millis()).unwrap();
    }
}

#[test]
fn processes_and_threads_share_one_database() {
    let secs: u64 = std::env::var("CHARM_KV_CONTENTION_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let dir = tempfile::tempdir().unwrap();
    let key = EncryptKey::generate();
    open(dir.path(), &key).close().unwrap();
    let children: Vec<_> = (0..PROCESSES)
        .map(|p| {
            support::test_child("contention::contention_child")
                .env(
                    "CHARM_KV_CONTENTION_CHILD",
                    format!("{}|{p}|{secs}|{}", dir.path().display(), key.text()),
                )
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut acked = Vec::new();
    let mut slowest_ms = 0u64;
    for mut child in children {
        let stdout = child.stdout.take().unwrap();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(k) = line.strip_prefix("ack ") {
                acked.push(k.to_owned());
            } else if let Some(ms) = line.strip_prefix("slowest ") {
                slowest_ms = slowest_ms.max(ms.parse().unwrap());
            }
        }
        assert!(child.wait().unwrap().success(), "a child process failed");
    }
    let kv = open(dir.path(), &key);
    for k in &acked {
        assert!(kv.get(k).is_ok(), "acknowledged write {k} missing");
    }
    let groups = assert_batches_whole(&kv);
    assert_eq!(groups, PROCESSES * THREADS);
    eprintln!(
        "contention: {PROCESSES} processes x {THREADS} threads for {secs}s, {} acknowledged writes checked, slowest operation {slowest_ms} ms",
        acked.len()
    );
    assert!(
        acked.len() >= PROCESSES * THREADS * 2,
        "every thread acknowledges its first round"
    );
}
