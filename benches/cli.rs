//! `cargo bench --bench cli`: whole-process cost of `charm-kv get` (spawn, open, read,
//! exit) against a minimal program that opens the same SQLite file and selects one row,
//! and (with a server) against the Go `charm kv get`, which authenticates over SSH and
//! fetches its keys on every run.
//!
//! With the server, also the write path as a user meets it (issue 17): `charm-kv set`
//! (a local commit, then the automatic push of a delta), `charm-kv sync` with nothing
//! to do (one listing, no transfer), and the Go `charm kv set` for comparison.
//!
//! `BENCH_RUNS` (default 50) processes per command; the median is reported (and with
//! `BENCH_TSV`, appended there: suite `cli`, milliseconds per process).

#[path = "support/results.rs"]
mod results;

#[path = "../tests/support/charm_server.rs"]
#[allow(dead_code)]
mod charm_server;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn time_runs(runs: usize, mut command: impl FnMut() -> Command) -> Duration {
    let samples = (0..runs)
        .map(|_| {
            let mut c = command();
            let start = Instant::now();
            let out = c.output().expect("spawn");
            let elapsed = start.elapsed();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            elapsed
        })
        .collect();
    median(samples)
}

/// The minimal program: open the file, select one row, print it.
fn minimal_get(db: &str) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let value: Vec<u8> = conn
        .query_row("SELECT value FROM kv LIMIT 1", [], |r| r.get(0))
        .unwrap();
    use std::io::Write;
    std::io::stdout().write_all(&value).unwrap();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(pos) = args.iter().position(|a| a == "--minimal-get") {
        minimal_get(&args[pos + 1]);
        return;
    }
    if !args.iter().any(|a| a == "--bench") {
        println!("cli: skipped outside `cargo bench`");
        return;
    }
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(50);
    let charm_kv = env!("CARGO_BIN_EXE_charm-kv");
    let me = std::env::current_exe().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let local = |args: &[&str]| {
        let mut c = Command::new(charm_kv);
        c.args(args).env_clear().env("CHARM_DATA_DIR", dir.path());
        c
    };
    assert!(local(&["set", "greeting", "hello"])
        .status()
        .unwrap()
        .success());
    let db = dir
        .path()
        .join("localhost/charm-kv/charm.sh.kv.user.default.sqlite");

    let ours = time_runs(runs, || local(&["get", "greeting"]));
    let minimal = time_runs(runs, || {
        let mut c = Command::new(&me);
        c.args(["--minimal-get", db.to_str().unwrap()]);
        c
    });
    println!("{:<44} {:>10}", "command (median of runs)", "time");
    println!("{:<44} {:>10.2?}", "charm-kv get (local mode)", ours);
    println!(
        "{:<44} {:>10.2?}",
        "minimal SQLite select (same file)", minimal
    );
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    results::record("cli", "get_local", 1, "charm-kv", ms(ours), "ms");
    results::record("cli", "get_local", 1, "minimal-sqlite", ms(minimal), "ms");
    let ratio = ours.as_secs_f64() / minimal.as_secs_f64();
    println!(
        "ratio {ratio:.2}x (target <= 2x): {}",
        if ratio <= 2.0 { "ok" } else { "MISS" }
    );

    // Against the Go client, same account, same loopback server.
    if std::env::var("BENCH_NO_SERVER").is_ok() {
        return;
    }
    let server = charm_server::CharmServer::start();
    let data = server.client_dir("bench");
    let env = server.env_for_client(&data);
    let with_server = |bin: &Path, args: &[&str]| {
        let mut c = Command::new(bin);
        c.args(args)
            .env_clear()
            .envs(env.clone())
            .env("HOME", &data);
        c
    };
    let go = charm_server::charm_bin();
    let ours_bin = Path::new(charm_kv);
    // The Go client's push can miss the write it carries (its Badger commit is
    // asynchronous; bindings/go/README.md): set again until the server has it.
    let on_server = (0..5).any(|_| {
        assert!(with_server(&go, &["kv", "set", "greeting", "hello"])
            .status()
            .unwrap()
            .success());
        assert!(with_server(ours_bin, &["sync"]).status().unwrap().success());
        with_server(ours_bin, &["get", "greeting"])
            .output()
            .unwrap()
            .status
            .success()
    });
    assert!(on_server, "the Go client's write never reached the server");
    let go_runs = runs.min(20);
    let go_time = time_runs(go_runs, || with_server(&go, &["kv", "get", "greeting"]));
    let ours_server = time_runs(runs, || with_server(ours_bin, &["get", "greeting"]));
    println!(
        "{:<44} {:>10.2?}",
        "Go `charm kv get` (auth + keys each run)", go_time
    );
    println!(
        "{:<44} {:>10.2?}",
        "charm-kv get (server configured)", ours_server
    );
    results::record("cli", "get_server", 1, "charm-kv", ms(ours_server), "ms");
    results::record("cli", "get_server", 1, "go-charm", ms(go_time), "ms");
    let ratio = ours_server.as_secs_f64() / go_time.as_secs_f64();
    println!(
        "ratio {ratio:.3}x (target <= 0.1x): {}",
        if ratio <= 0.1 { "ok" } else { "MISS" }
    );

    // Writes with the server: each run sets a new value of one key (a delta push),
    // then syncs with nothing left to do.
    let mut n = 0u64;
    let set = time_runs(runs, || {
        n += 1;
        with_server(ours_bin, &["set", "counter", &n.to_string()])
    });
    let idle_sync = time_runs(runs, || with_server(ours_bin, &["sync"]));
    // A database of its own: once charm-kv has pushed a database, the original
    // client can no longer read it (bindings/go/README.md).
    let go_set = time_runs(go_runs, || {
        with_server(&go, &["kv", "set", "counter@go-only", "value"])
    });
    println!(
        "{:<44} {:>10.2?}",
        "charm-kv set (server: commit + delta push)", set
    );
    println!(
        "{:<44} {:>10.2?}",
        "charm-kv sync (nothing to do)", idle_sync
    );
    println!(
        "{:<44} {:>10.2?}",
        "Go `charm kv set` (commit + push)", go_set
    );
    results::record("cli", "set_server", 1, "charm-kv", ms(set), "ms");
    results::record("cli", "set_server", 1, "go-charm", ms(go_set), "ms");
    results::record("cli", "sync_idle", 1, "charm-kv", ms(idle_sync), "ms");
    let verdict = |ok: bool| if ok { "ok" } else { "MISS" };
    println!(
        "set {:.1} ms (target <= 40 ms): {}; idle sync {:.1} ms (target <= 25 ms): {}",
        ms(set),
        verdict(ms(set) <= 40.0),
        ms(idle_sync),
        verdict(ms(idle_sync) <= 25.0)
    );
}
