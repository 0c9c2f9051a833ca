//! Shared helpers of the integration tests.
#![allow(dead_code)]

pub mod charm_server;
pub mod fake_ssh;
pub mod fault_proxy;

/// Runs `f` on its own thread and returns its result, failing the test instead of
/// hanging when it has not returned within two minutes: far above the work of a call
/// that fails at once on a loaded machine, far below the (long) timeouts a test sets
/// when it must show that a call does not wait for them.
pub fn returns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(f());
    });
    result
        .recv_timeout(std::time::Duration::from_secs(120))
        .expect("the call waited for a timeout, or never returned")
}

/// `jwt` with a broken signature: same claims (so it still looks fresh), rejected by
/// the server. The first signature character changes (the last one may carry only
/// padding bits, which base64 decoders ignore).
pub fn forge_jwt(jwt: &str) -> String {
    let sig = jwt.rfind('.').expect("a JWT") + 1;
    let mut forged = jwt.to_owned();
    let c = if jwt[sig..].starts_with('A') {
        "B"
    } else {
        "A"
    };
    forged.replace_range(sig..sig + 1, c);
    forged
}

/// One `charm-kv set` started by [`set_from_many_processes`] and what it reported.
#[cfg(feature = "cli")]
pub struct ProcessWrite {
    pub key: String,
    pub db: String,
    pub value: String,
    pub output: std::process::Output,
}

/// Starts `processes` `charm-kv set k<i>@db<i mod dbs> v<i>` at once (all spawned
/// before any is waited for) against the data dir `data`, with only `env` and
/// `CHARM_DATA_DIR`/`HOME` set, and waits for all of them.
#[cfg(feature = "cli")]
pub fn set_from_many_processes(
    data: &std::path::Path,
    env: &[(String, String)],
    processes: usize,
    dbs: usize,
) -> Vec<ProcessWrite> {
    let children: Vec<_> = (0..processes)
        .map(|i| {
            let (key, db, value) = (format!("k{i}"), format!("db{}", i % dbs), format!("v{i}"));
            let child = charm_kv_command(data, env)
                .args(["set", &format!("{key}@{db}"), &value])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn charm-kv");
            (key, db, value, child)
        })
        .collect();
    children
        .into_iter()
        .map(|(key, db, value, child)| ProcessWrite {
            key,
            db,
            value,
            output: child.wait_with_output().expect("charm-kv"),
        })
        .collect()
}

/// The `charm-kv` binary with a clean environment: `CHARM_DATA_DIR` and `HOME` are
/// `data`, plus `env`.
#[cfg(feature = "cli")]
pub fn charm_kv_command(data: &std::path::Path, env: &[(String, String)]) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_charm-kv"));
    command
        .env_clear()
        .env("CHARM_DATA_DIR", data)
        .env("HOME", data)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::null());
    command
}

/// Asserts that every write of `writes` succeeded with no error or warning on stderr
/// (with a server, see below) and that a fresh `charm-kv get` with `env` on `data`
/// reads each one back.
#[cfg(feature = "cli")]
pub fn assert_every_write_acknowledged_and_readable(
    writes: &[ProcessWrite],
    data: &std::path::Path,
    env: &[(String, String)],
) {
    for w in writes {
        let stderr = String::from_utf8_lossy(&w.output.stderr);
        // With a server, a push can lose to the other processes (the write stays
        // committed and pending, and the warning says why); the write must still be
        // readable below.
        let harmless = |line: &str| {
            !env.is_empty()
                && line.starts_with("charm-kv: warning: ")
                && line.contains("saved locally but not yet on the server (")
        };
        assert!(
            w.output.status.success() && stderr.lines().all(harmless),
            "set {}@{} reported: {stderr}",
            w.key,
            w.db,
        );
    }
    for w in writes {
        let out = charm_kv_command(data, env)
            .args(["get", &format!("{}@{}", w.key, w.db)])
            .output()
            .expect("charm-kv get");
        assert!(
            out.status.success(),
            "get {}@{} after an acknowledged set: {}",
            w.key,
            w.db,
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            w.value,
            "{}@{}",
            w.key,
            w.db
        );
    }
}

/// A command running only test `name` (`<module>::<test>`, as `--list` prints it) of
/// this test binary in a child process, with `--exact --nocapture --test-threads=1
/// --include-ignored` (a child-only test is `#[ignore]`d). Panics when the binary has no such
/// test: a child that matched no test would exit successfully having done nothing, and
/// the test spawning it would pass without testing anything.
pub fn test_child(name: &str) -> std::process::Command {
    let exe = std::env::current_exe().expect("the test binary");
    let listed = std::process::Command::new(&exe)
        .args(["--list", "--include-ignored", "--exact", name])
        .output()
        .expect("list the tests of this binary");
    let listing = String::from_utf8_lossy(&listed.stdout);
    let entry = format!("{name}: test");
    assert!(
        listing.lines().any(|line| line == entry),
        "this test binary has no test {name:?}: {listing}"
    );
    let mut command = std::process::Command::new(exe);
    command.args([
        "--exact",
        name,
        "--nocapture",
        "--test-threads=1",
        "--include-ignored",
    ]);
    command
}
