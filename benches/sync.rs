//! `cargo bench --bench sync`: push and pull of whole databases through a real
//! `charm serve` on loopback, for 1, 10 and 100 MB (`BENCH_SYNC_MB=1,10,100`): time and
//! peak memory (RSS) of the process doing it, i.e. the curve of cost against size.
//! Each push and pull runs in a fresh child process so its peak RSS is its own.
//! With `BENCH_TSV`, the figures are also appended there (suite `sync`, size in MB).

#[path = "support/results.rs"]
mod results;

#[path = "../tests/support/charm_server.rs"]
#[allow(dead_code)]
mod charm_server;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use charm_kv::{Kv, Options};

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn options(dir: &Path, ssh: u16, http: u16, identity: Option<&Path>) -> Options {
    let mut options = Options::new();
    options
        .data_dir(dir)
        .host(Some(charm_server::HOST.into()))
        .ssh_port(ssh)
        .http_port(http)
        .auto_push(false);
    if let Some(key) = identity {
        options.identity_key(key);
    }
    options
}

/// Child: `--sync-child <push|pull> <dir> <ssh> <http> <identity or ->`.
fn child(args: &[String]) {
    let (mode, dir, ssh, http, identity) = (&args[0], &args[1], &args[2], &args[3], &args[4]);
    let identity = (identity != "-").then(|| Path::new(identity.as_str()));
    let kv = Kv::open_with(
        "curve",
        &options(
            Path::new(dir),
            ssh.parse().unwrap(),
            http.parse().unwrap(),
            identity,
        ),
    )
    .unwrap();
    let before = peak_rss_kib();
    let start = Instant::now();
    kv.sync().unwrap();
    let secs = start.elapsed().as_secs_f64();
    println!("{mode} {secs} {before} {}", peak_rss_kib());
}

fn fill(dir: &Path, ssh: u16, http: u16, megabytes: usize) {
    let kv = Kv::open_with("curve", &options(dir, ssh, http, None)).unwrap();
    let value_len = 16 * 1024;
    let count = megabytes * 1024 * 1024 / value_len;
    for chunk in 0..count.div_ceil(256) {
        let mut batch = kv.batch();
        for i in chunk * 256..((chunk + 1) * 256).min(count) {
            let value: Vec<u8> = (0..value_len).map(|j| (i ^ j) as u8).collect();
            batch.set(format!("v{i:07}"), value);
        }
        batch.commit().unwrap();
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(pos) = args.iter().position(|a| a == "--sync-child") {
        child(&args[pos + 1..]);
        return;
    }
    if !args.iter().any(|a| a == "--bench") {
        println!("sync: skipped outside `cargo bench`");
        return;
    }
    let sizes: Vec<usize> = std::env::var("BENCH_SYNC_MB")
        .unwrap_or_else(|_| "1,10,100".into())
        .split(',')
        .map(|s| s.trim().parse().unwrap())
        .collect();
    let server = charm_server::CharmServer::start();
    let me = std::env::current_exe().unwrap();
    println!(
        "{:>8} {:>10} {:>12} {:>10} {:>12}",
        "size MB", "push s", "push RSS MiB", "pull s", "pull RSS MiB"
    );
    for (n, mb) in sizes.into_iter().enumerate() {
        let (writer, reader) = (
            server.client_dir(&format!("w{n}")),
            server.client_dir(&format!("r{n}")),
        );
        fill(&writer, server.ssh_port, server.http_port, mb);
        let key = writer.join(charm_server::HOST).join("charm_ed25519");
        let run = |mode: &str, dir: &Path, identity: &str| {
            let out = Command::new(&me)
                .args(["--sync-child", mode, dir.to_str().unwrap()])
                .arg(server.ssh_port.to_string())
                .arg(server.http_port.to_string())
                .arg(identity)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let text = String::from_utf8(out.stdout).unwrap();
            let line = text
                .lines()
                .find(|l| l.starts_with(mode))
                .unwrap()
                .to_owned();
            let fields: Vec<f64> = line
                .split_whitespace()
                .skip(1)
                .map(|f| f.parse().unwrap())
                .collect();
            (fields[0], fields[2] / 1024.0)
        };
        let (push_s, push_rss) = run("push", &writer, "-");
        let (pull_s, pull_rss) = run("pull", &reader, key.to_str().unwrap());
        println!("{mb:>8} {push_s:>10.2} {push_rss:>12.1} {pull_s:>10.2} {pull_rss:>12.1}");
        let size = mb as u64;
        results::record("sync", "push", size, "charm-kv", push_s, "s");
        results::record("sync", "push_rss", size, "charm-kv", push_rss, "MiB");
        results::record("sync", "pull", size, "charm-kv", pull_s, "s");
        results::record("sync", "pull_rss", size, "charm-kv", pull_rss, "MiB");
    }
}
