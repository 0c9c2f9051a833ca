//! Crash safety: a child process writes (single sets and batches) and is killed with
//! SIGKILL at random moments; every write it acknowledged must survive, the database
//! must pass `PRAGMA integrity_check`, and it must open without repair.
//!
//! Rounds: `CHARM_KV_CRASH_ROUNDS` (default 40 here; `scripts/reliability` runs more).

use crate::support;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use charm_kv::{EncryptKey, Kv, Options};
use rand::Rng;

fn open(dir: &Path, key: &EncryptKey) -> Kv {
    let mut options = Options::new();
    options.data_dir(dir).encrypt_keys(vec![key.clone()]);
    Kv::open_with("crash", &options).unwrap()
}

fn value_for(round: u32, i: u64) -> Vec<u8> {
    format!("value-{round}-{i}-")
        .repeat(1 + (i % 7) as usize)
        .into_bytes()
}

/// The writer, run in a child process by `writes_survive_sigkill`.
#[test]
fn crash_child_writer() {
    let Ok(spec) = std::env::var("CHARM_KV_CRASH_CHILD") else {
        return;
    };
    let mut parts = spec.splitn(3, '|');
    let (dir, round, key) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let round: u32 = round.parse().unwrap();
    let key = EncryptKey::from_text("id", key, None).unwrap();
    let kv = open(Path::new(dir), &key);
    let mut out = std::io::stdout().lock();
    for i in 0u64.. {
        if i % 4 == 3 {
            let mut batch = kv.batch();
            for j in 0..5 {
                batch.set(format!("r{round}-{i}-b{j}"), value_for(round, i));
            }
            batch.commit().unwrap();
        } else {
            kv.set(format!("r{round}-{i}"), value_for(round, i))
                .unwrap();
        }
        writeln!(out, "ack {i}").unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn writes_survive_sigkill() {
    let rounds: u32 = std::env::var("CHARM_KV_CRASH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(40);
    let dir = tempfile::tempdir().unwrap();
    let key = EncryptKey::generate();
    let mut rng = rand::thread_rng();
    let (mut kills, mut checked) = (0u32, 0u64);
    for round in 0..rounds {
        let mut child = support::test_child("crash::crash_child_writer")
            .env(
                "CHARM_KV_CRASH_CHILD",
                format!("{}|{round}|{}", dir.path().display(), key.text()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .filter_map(|l| {
                    l.split_once("ack ")
                        .and_then(|(_, n)| n.parse::<u64>().ok())
                })
                .collect::<Vec<u64>>()
        });
        std::thread::sleep(Duration::from_millis(rng.gen_range(20..150)));
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;
        let acked = reader.join().unwrap();

        let kv = open(dir.path(), &key);
        for &i in &acked {
            if i % 4 == 3 {
                for j in 0..5 {
                    assert_eq!(
                        kv.get(format!("r{round}-{i}-b{j}")).unwrap(),
                        value_for(round, i)
                    );
                }
            } else {
                assert_eq!(
                    kv.get(format!("r{round}-{i}")).unwrap(),
                    value_for(round, i)
                );
            }
            checked += 1;
        }
        // A batch is all or nothing, acknowledged or not.
        let keys = kv.keys().unwrap();
        let prefix = format!("r{round}-");
        for k in keys.iter().filter(|k| k.starts_with(prefix.as_bytes())) {
            let k = String::from_utf8(k.clone()).unwrap();
            if let Some((stem, _)) = k.rsplit_once("-b") {
                for j in 0..5 {
                    assert!(
                        keys.contains(&format!("{stem}-b{j}").into_bytes()),
                        "torn batch {stem}"
                    );
                }
            }
        }
        let conn = rusqlite::Connection::open(kv.path().unwrap()).unwrap();
        let integrity: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(integrity, "ok");
        kv.close().unwrap();
    }
    eprintln!("crash safety: {kills} SIGKILLs survived, {checked} acknowledged writes checked");
    assert_eq!(kills, rounds);
    assert!(checked > 0, "the child never got a write acknowledged");
}
