//! The `charm-kv` command, run as a user would (local mode, or a stand-in server).

use crate::readonly_dir;
use crate::support;

use std::io::Write;
use std::net::{IpAddr, TcpListener, UdpSocket};
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// `charm-kv ARGS` in local mode on data directory `data`, with nothing else from the
/// environment.
fn command(data: &Path, args: &[&str]) -> Command {
    let mut command = support::charm_kv_command(data, &[]);
    command.args(args);
    command
}

fn charm_kv(data: &Path, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = command(data, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(bytes) = stdin {
        input.write_all(bytes).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn ok(data: &Path, args: &[&str]) -> Vec<u8> {
    let out = charm_kv(data, args, None);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn set_get_list_delete_like_charm_kv() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["set", "Name", "Charm"]);
    ok(d, &["set", "zeta", "last"]);
    ok(d, &["set", "alpha", "first"]);
    assert_eq!(ok(d, &["get", "name"]), b"Charm", "keys are lower-cased");
    assert_eq!(ok(d, &["get", "NAME"]), b"Charm");
    assert_eq!(ok(d, &["list"]), b"alpha\tfirst\nname\tCharm\nzeta\tlast\n");
    assert_eq!(ok(d, &["list", "-r", "-k"]), b"zeta\nname\nalpha\n");
    assert_eq!(ok(d, &["list", "-v"]), b"first\nCharm\nlast\n");
    assert_eq!(
        ok(d, &["list", "-d", " = "]),
        b"alpha = first\nname = Charm\nzeta = last\n"
    );
    ok(d, &["delete", "name"]);
    let missing = charm_kv(d, &["get", "name"], None);
    assert!(!missing.status.success());
    assert_eq!(
        String::from_utf8_lossy(&missing.stderr),
        "charm-kv: key not found\n"
    );
}

#[test]
fn values_from_stdin_are_binary_safe() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let binary: Vec<u8> = (0..=255u8).chain([0, 0, b'\n']).collect();
    let out = charm_kv(d, &["set", "blob@files"], Some(&binary));
    assert!(out.status.success());
    assert_eq!(ok(d, &["get", "blob@files"]), binary, "piped output is raw");
    assert_eq!(ok(d, &["get", "blob@Files", "-b"]), binary);
    let out = charm_kv(d, &["set", "empty"], Some(b""));
    assert!(out.status.success());
    assert_eq!(ok(d, &["get", "empty"]), b"");
}

#[test]
fn databases_are_listed_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["set", "k@Work", "1"]);
    ok(d, &["set", "k@home", "2"]);
    ok(d, &["set", "k", "3"]);
    assert_eq!(
        ok(d, &["list-dbs"]),
        b"@charm.sh.kv.user.default\n@home\n@work\n"
    );
    assert_eq!(ok(d, &["list", "@work"]), b"k\t1\n");
    ok(d, &["delete-db", "@work"]);
    assert_eq!(ok(d, &["list-dbs"]), b"@charm.sh.kv.user.default\n@home\n");
    let again = charm_kv(d, &["delete-db", "@work"], None);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("no database named work"));
}

#[test]
fn errors_are_one_line_with_a_non_zero_exit() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (args, message) in [
        (&["get", "a@b@c"][..], "charm-kv: bad key format, use KEY@DB\n"),
        (&["sync"][..], "charm-kv: no Charm server configured: set CHARM_HOST to sync with a self-hosted Charm server\n"),
        (&["set", "k@../escape", "v"][..], "charm-kv: invalid argument: database name \"../escape\" contains a path separator\n"),
    ] {
        let out = charm_kv(d, args, None);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), message, "{args:?}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_charm-kv"))
        .args(["get", "k"])
        .env_clear()
        .env("CHARM_DATA_DIR", d)
        .env("CHARM_SSH_PORT", "not-a-port")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("CHARM_SSH_PORT"));
}

#[test]
fn every_command_has_help() {
    let dir = tempfile::tempdir().unwrap();
    for command in [
        "set",
        "get",
        "delete",
        "list",
        "sync",
        "reset",
        "list-dbs",
        "delete-db",
        "status",
        "export",
        "import",
        "completion",
        "ls",
        "rm",
        "ttl",
        "expire",
        "persist",
    ] {
        let help = String::from_utf8(ok(dir.path(), &[command, "--help"])).unwrap();
        assert!(help.contains("Usage: charm-kv"), "{command}: {help}");
    }
}

#[test]
fn local_identity_and_keys_are_created_private() {
    let dir = tempfile::tempdir().unwrap();
    ok(dir.path(), &["set", "k", "v"]);
    let data = dir.path().join("localhost");
    for file in ["charm_ed25519", "charm_ed25519.pub", "charm_kv_keys.json"] {
        assert!(data.join(file).is_file(), "{file}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&data.join("charm_ed25519")), 0o600);
        assert_eq!(mode(&data.join("charm_kv_keys.json")), 0o600);
        assert_eq!(mode(&data.join("charm-kv")), 0o700);
        for entry in std::fs::read_dir(data.join("charm-kv")).unwrap() {
            assert_eq!(mode(&entry.unwrap().path()), 0o600);
        }
    }
}

#[test]
fn an_unreachable_server_keeps_writes_local_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_charm-kv"))
            .args(args)
            .env_clear()
            .env("CHARM_DATA_DIR", dir.path())
            .env("HOME", dir.path())
            .env("CHARM_HOST", "127.0.0.1")
            .env("CHARM_SSH_PORT", closed_port.to_string())
            .env("CHARM_HTTP_PORT", closed_port.to_string())
            .output()
            .unwrap()
    };
    let out = run(&["set", "offline", "still saved"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .starts_with("charm-kv: warning: 1 write(s) saved locally but not yet on the server (")
            && stderr.contains("network error"),
        "{stderr}"
    );
    assert_eq!(run(&["get", "offline"]).stdout, b"still saved");
    let sync = run(&["sync"]);
    assert!(!sync.status.success());
    assert!(String::from_utf8_lossy(&sync.stderr).contains("network error"));
}

/// Processes that start together on a fresh data dir must agree on one identity and
/// one first key (issue 15): before the account lock, each generated its own key and
/// renamed it over the others', leaving the others' databases unreadable.
#[test]
fn many_processes_on_a_fresh_data_dir_agree_on_identity_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let writes = support::set_from_many_processes(dir.path(), &[], 24, 6);
    support::assert_every_write_acknowledged_and_readable(&writes, dir.path(), &[]);
    let cache = std::fs::read_to_string(dir.path().join("localhost/charm_kv_keys.json")).unwrap();
    let cache: serde_json::Value = serde_json::from_str(&cache).unwrap();
    assert_eq!(cache["keys"].as_array().unwrap().len(), 1, "{cache}");
}

/// Same with an identity already in place: only the first key is raced.
#[test]
fn many_processes_with_an_existing_identity_agree_on_the_first_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("localhost");
    std::fs::create_dir_all(&data).unwrap();
    let vectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    std::fs::copy(
        vectors.join("vec_charm_ed25519"),
        data.join("charm_ed25519"),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let private = std::fs::Permissions::from_mode(0o600);
        std::fs::set_permissions(data.join("charm_ed25519"), private).unwrap();
    }
    let writes = support::set_from_many_processes(dir.path(), &[], 24, 6);
    support::assert_every_write_acknowledged_and_readable(&writes, dir.path(), &[]);
}

#[cfg(unix)]
#[test]
fn an_identity_others_can_read_gets_a_warning_and_a_fifo_an_error() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    ok(dir.path(), &["set", "k", "v"]);
    let key = dir.path().join("localhost/charm_ed25519");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = charm_kv(dir.path(), &["get", "k"], None);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: SSH key") && stderr.contains("mode 644"),
        "{stderr}"
    );

    // A FIFO as identity must fail at once, not block in open().
    let fifo = dir.path().join("fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let out = support::charm_kv_command(
        dir.path(),
        &[("CHARM_IDENTITY_KEY".into(), fifo.display().to_string())],
    )
    .args(["get", "k"])
    .output()
    .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not a regular file"), "{stderr}");
}

/// An `api-auth` answer naming plain http (a JWT without claims never expires).
const PLAIN_HTTP_AUTH: &[u8] =
    br#"{"jwt":"eyJhbGciOiJFZERTQSJ9.e30.sig","charm_id":"c","http_scheme":"http"}"#;

/// An address of this machine that is not loopback: the source address the kernel
/// picks for a route out (a UDP connect sends nothing).
fn non_loopback_address() -> Option<IpAddr> {
    let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("198.51.100.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

/// `charm-kv set k v` against an SSH stand-in on `ip` (its HTTP port closed), with
/// `extra` variables; returns the outcome and stderr.
fn set_against_plain_http(ip: IpAddr, extra: &[(&str, &str)]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let ssh_port = support::fake_ssh::start_on(ip, PLAIN_HTTP_AUTH);
    let http_port = TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = Command::new(env!("CARGO_BIN_EXE_charm-kv"))
        .args(["set", "k", "v"])
        .env_clear()
        .env("CHARM_DATA_DIR", dir.path())
        .env("HOME", dir.path())
        .env("CHARM_HOST", ip.to_string())
        .env("CHARM_SSH_PORT", ssh_port.to_string())
        .env("CHARM_HTTP_PORT", http_port.to_string())
        .envs(extra.iter().copied())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn plain_http_off_this_machine_warns_once_or_is_refused() {
    const WARNING: &str = "serves its HTTP API over plain http";
    // Loopback never leaves the machine: no warning.
    let (_, stderr) = set_against_plain_http("127.0.0.1".parse().unwrap(), &[]);
    assert!(!stderr.contains(WARNING), "{stderr}");

    let Some(ip) = non_loopback_address() else {
        eprintln!("no non-loopback address on this machine: the off-machine cases did not run");
        return;
    };
    // The write stays local (the HTTP port is closed) and the run warns once, though
    // it asked for plain http twice (the first key, then the push).
    let (succeeded, stderr) = set_against_plain_http(ip, &[]);
    assert!(succeeded, "{stderr}");
    assert_eq!(stderr.matches(WARNING).count(), 1, "{stderr}");

    let (succeeded, stderr) = set_against_plain_http(ip, &[("CHARM_KV_REQUIRE_TLS", "true")]);
    assert!(!succeeded, "{stderr}");
    assert!(
        stderr.contains("TLS is required") && stderr.contains("CHARM_KV_REQUIRE_TLS"),
        "{stderr}"
    );
    assert!(!stderr.contains(WARNING), "{stderr}");
}

#[test]
fn a_black_holed_server_holds_set_only_as_long_as_the_env_bounds() {
    // Accepts connections and never answers.
    let hole = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = hole.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let held: Vec<_> = hole.incoming().flatten().collect();
        drop(held);
    });
    let dir = tempfile::tempdir().unwrap();
    let mut set = Command::new(env!("CARGO_BIN_EXE_charm-kv"));
    set.args(["set", "k", "v"])
        .env_clear()
        .env("CHARM_DATA_DIR", dir.path())
        .env("HOME", dir.path())
        .env("CHARM_HOST", "127.0.0.1")
        .env("CHARM_SSH_PORT", port.to_string())
        .env("CHARM_HTTP_PORT", port.to_string())
        .env("CHARM_KV_CONNECT_TIMEOUT", "1s")
        .env("CHARM_KV_REQUEST_TIMEOUT", "1s")
        .env("CHARM_KV_SYNC_TIMEOUT", "3s");
    // Far above the bounds: fails rather than hangs. The message names the bound that
    // cut the push: the one from the environment.
    let out = support::charm_server::run_bounded(&mut set, std::time::Duration::from_secs(120));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("1 write(s) saved locally but not yet on the server (")
            && stderr.contains("timed out after 1s"),
        "{stderr}"
    );
}

/// The `field: value` lines of `charm-kv status`, in order.
fn status_fields(stdout: &[u8]) -> Vec<(String, String)> {
    String::from_utf8(stdout.to_vec())
        .unwrap()
        .lines()
        .map(|line| {
            let (name, value) = line.split_once(": ").expect("field: value");
            (name.to_owned(), value.to_owned())
        })
        .collect()
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    &fields.iter().find(|(n, _)| n == name).expect(name).1
}

#[test]
fn status_prints_every_field_of_a_local_database() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["set", "a@notes", "1"]);
    ok(d, &["set", "b@notes", "2"]);
    let fields = status_fields(&ok(d, &["status", "@notes"]));
    let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "database",
            "last_sync",
            "last_sync_version",
            "local_version",
            "pending_writes",
            "chain_start",
            "chain_deltas",
            "size_bytes",
            "integrity",
            "server",
            "remote_version",
            "server_error",
        ]
    );
    assert_eq!(field(&fields, "database"), "notes");
    assert_eq!(field(&fields, "last_sync"), "never");
    assert_eq!(field(&fields, "local_version"), "0");
    assert_eq!(field(&fields, "pending_writes"), "2");
    assert_eq!(field(&fields, "chain_start"), "none");
    assert_eq!(field(&fields, "integrity"), "ok");
    assert_eq!(field(&fields, "server"), "not configured");
    assert!(field(&fields, "size_bytes").parse::<u64>().unwrap() > 0);
    let asked = status_fields(&ok(d, &["status", "@notes", "--remote"]));
    assert_eq!(
        field(&asked, "server"),
        "not configured",
        "local mode asks no one"
    );
}

#[test]
fn sync_if_stale_parses_durations_and_syncs_when_never_synced() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["set", "k", "v"]);
    // Never synced: due, so it tries, and local mode has no server.
    let out = charm_kv(d, &["sync", "--if-stale", "10m"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no Charm server configured"));
    for bad in ["10", "10x", "m", "-5m"] {
        let out = charm_kv(d, &["sync", &format!("--if-stale={bad}")], None);
        assert_eq!(out.status.code(), Some(2), "{bad}: a usage error");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("invalid duration"),
            "{bad}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn status_reports_an_unreachable_server_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_charm-kv"))
            .args(args)
            .env_clear()
            .env("CHARM_DATA_DIR", dir.path())
            .env("HOME", dir.path())
            .env("CHARM_HOST", "127.0.0.1")
            .env("CHARM_SSH_PORT", closed_port.to_string())
            .env("CHARM_HTTP_PORT", closed_port.to_string())
            .output()
            .unwrap()
    };
    run(&["set", "offline", "v"]);
    let local = run(&["status"]);
    assert!(local.status.success());
    let fields = status_fields(&local.stdout);
    assert_eq!(field(&fields, "server"), "not checked");
    assert_eq!(field(&fields, "pending_writes"), "1");
    let asked = run(&["status", "--remote"]);
    assert!(
        asked.status.success(),
        "{}",
        String::from_utf8_lossy(&asked.stderr)
    );
    let fields = status_fields(&asked.stdout);
    assert_eq!(field(&fields, "server"), "unreachable");
    assert_eq!(field(&fields, "remote_version"), "unknown");
    assert!(
        field(&fields, "server_error").contains("network error"),
        "{fields:?}"
    );
    assert_eq!(field(&fields, "last_sync"), "never");
}

#[test]
fn delete_db_with_a_server_needs_yes_off_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_charm-kv"))
            .args(args)
            .env_clear()
            .env("CHARM_DATA_DIR", dir.path())
            .env("HOME", dir.path())
            .env("CHARM_HOST", "127.0.0.1")
            .env("CHARM_SSH_PORT", closed_port.to_string())
            .env("CHARM_HTTP_PORT", closed_port.to_string())
            .output()
            .unwrap()
    };
    run(&["set", "k@work", "v"]);
    // stdin is not a terminal here: refused before anything is deleted anywhere.
    let out = run(&["delete-db", "@work"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("copies on the Charm server 127.0.0.1")
            && stderr.contains("pass --yes to confirm"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&run(&["list-dbs"]).stdout).contains("@work"));
    // With --yes it goes to the server first; unreachable, nothing local is deleted.
    let out = run(&["delete-db", "--yes", "@work"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("network error"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&run(&["list-dbs"]).stdout).contains("@work"));
}

#[test]
fn read_commands_work_on_a_data_dir_that_cannot_be_written() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["set", "name@db", "charm"]);
    ok(d, &["set", "other@db", "kv"]);
    let guard = readonly_dir::ReadOnlyDir::new(d);
    let how = guard.mechanism();
    let out = charm_kv(d, &["get", "name@db"], None);
    assert!(
        out.status.success(),
        "get with a {how}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"charm");
    assert_eq!(ok(d, &["list", "@db", "--keys-only"]), b"name\nother\n");
    assert_eq!(ok(d, &["list-dbs"]), b"@db\n");
    let status = String::from_utf8(ok(d, &["status", "@db"])).unwrap();
    assert!(status.contains("pending_writes: 2"), "{status}");
    // A write still fails, with the file system's reason.
    let out = charm_kv(d, &["set", "name@db", "changed"], None);
    assert_eq!(out.status.code(), Some(1));
    drop(guard);
    assert_eq!(ok(d, &["get", "name@db"]), b"charm");
}

#[test]
fn charm_kv_read_only_refuses_writes_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["set", "name@db", "charm"]);
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_charm-kv"))
            .args(args)
            .env_clear()
            .env("CHARM_DATA_DIR", d)
            .env("HOME", d)
            .env("CHARM_KV_READ_ONLY", "1")
            .output()
            .unwrap()
    };
    let out = run(&["get", "name@db"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"charm");
    let out = run(&["set", "name@db", "changed"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("read-only"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["get", "name@new"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!d.join("localhost/charm-kv/new.sqlite").exists());
    assert_eq!(ok(d, &["get", "name@db"]), b"charm");
}

fn fails(data: &Path, args: &[&str], stdin: Option<&[u8]>) -> String {
    let out = charm_kv(data, args, stdin);
    assert_eq!(out.status.code(), Some(1), "{args:?} should fail");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn the_empty_key_is_refused_as_charm_kv_refuses_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for args in [
        &["set", "", "v"][..],
        &["set", "@work", "v"],
        &["get", ""],
        &["delete", "@work"],
    ] {
        assert_eq!(
            fails(d, args, None),
            "charm-kv: invalid argument: key cannot be empty\n",
            "{args:?}"
        );
    }
}

#[test]
fn list_takes_a_prefix_and_ls_rm_are_aliases() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for key in ["app:1", "app:2", "apple", "user:1"] {
        ok(d, &["set", key, "v"]);
        ok(d, &["set", &format!("{key}@work"), "w"]);
    }
    assert_eq!(ok(d, &["list", "app:", "-k"]), b"app:1\napp:2\n");
    assert_eq!(ok(d, &["ls", "APP", "-k", "-r"]), b"apple\napp:2\napp:1\n");
    assert_eq!(ok(d, &["list", "app:@work"]), b"app:1\tw\napp:2\tw\n");
    assert_eq!(
        ok(d, &["list", "@work", "-k"]),
        b"app:1\napp:2\napple\nuser:1\n"
    );
    assert_eq!(ok(d, &["list", "none"]), b"");
    ok(d, &["rm", "app:1@work"]);
    assert_eq!(ok(d, &["list", "app:@work", "-k"]), b"app:2\n");
}

fn json_lines(stdout: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8(stdout.to_vec())
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[test]
fn json_output_of_get_list_list_dbs_and_status() {
    use serde_json::json;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["set", "name", "Charm \"kv\""]);
    assert_eq!(
        charm_kv(d, &["set", "blob"], Some(&[0, 0xff, 1]))
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        json_lines(&ok(d, &["get", "name", "--json"])),
        [
            json!({"key": "name", "value": "Charm \"kv\"", "key_base64": false, "value_base64": false})
        ]
    );
    assert_eq!(
        json_lines(&ok(d, &["list", "--json"])),
        [
            json!({"key": "blob", "value": "AP8B", "key_base64": false, "value_base64": true}),
            json!({"key": "name", "value": "Charm \"kv\"", "key_base64": false, "value_base64": false}),
        ]
    );
    assert_eq!(
        json_lines(&ok(d, &["list", "n", "--json", "-k"])),
        [json!({"key": "name", "key_base64": false})]
    );
    assert_eq!(
        json_lines(&ok(d, &["list", "b", "--json", "-v"])),
        [json!({"value": "AP8B", "value_base64": true})]
    );
    ok(d, &["set", "k@other", "v"]);
    assert_eq!(
        json_lines(&ok(d, &["list-dbs", "--json"])),
        [
            json!({"name": "charm.sh.kv.user.default"}),
            json!({"name": "other"})
        ]
    );
    let status = json_lines(&ok(d, &["status", "--json"]));
    let status = status[0].as_object().unwrap();
    let text = status_fields(&ok(d, &["status"]));
    // The same fields as the text form, in JSON types.
    let names: Vec<&str> = text.iter().map(|(name, _)| name.as_str()).collect();
    let mut json_names: Vec<&str> = status.keys().map(String::as_str).collect();
    let mut sorted_names = names.clone();
    sorted_names.sort_unstable();
    json_names.sort_unstable();
    assert_eq!(json_names, sorted_names);
    assert_eq!(status["database"], "charm.sh.kv.user.default");
    assert_eq!(status["last_sync"], serde_json::Value::Null);
    assert_eq!(status["pending_writes"], json!(2));
    assert_eq!(status["server"], "not configured");
    assert_eq!(status["integrity"], "ok");
    assert!(status["size_bytes"].as_u64().unwrap() > 0);
}

#[test]
fn export_and_import_round_trip_as_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["set", "name@src", "Charm"]);
    assert_eq!(
        charm_kv(d, &["set", "blob@src"], Some(&[0, 0xff]))
            .status
            .code(),
        Some(0)
    );
    let file = d.join("src.jsonl");
    let out = charm_kv(d, &["export", "@src", "-o", file.to_str().unwrap()], None);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not encrypted"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let exported = std::fs::read(&file).unwrap();
    assert_eq!(exported.iter().filter(|b| **b == b'\n').count(), 2);
    // Piped stdout is not a terminal: allowed, the same lines.
    assert_eq!(ok(d, &["export", "@src"]), exported);
    // An existing file is not overwritten.
    assert!(fails(d, &["export", "@src", "-o", file.to_str().unwrap()], None).contains("exists"));

    ok(d, &["set", "stale@dst", "x"]);
    ok(d, &["import", "@dst", file.to_str().unwrap()]);
    assert_eq!(ok(d, &["list", "@dst", "-k"]), b"blob\nname\nstale\n");
    assert_eq!(ok(d, &["get", "blob@dst"]), [0, 0xff]);
    let out = charm_kv(d, &["import", "@dst", "-", "--replace"], Some(&exported));
    assert!(out.status.success());
    assert_eq!(ok(d, &["list", "@dst", "-k"]), b"blob\nname\n");
    // Into the default database by default.
    ok(d, &["import", file.to_str().unwrap()]);
    assert_eq!(ok(d, &["get", "name"]), b"Charm");
}

#[test]
fn a_malformed_import_names_the_line_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["set", "kept", "1"]);
    let input = b"{\"key\":\"a\",\"value\":\"1\"}\n\n{\"key\":\"b\",\"value\":2}\n";
    let err = fails(d, &["import", "-", "--replace"], Some(input));
    assert!(
        err.starts_with("charm-kv: invalid argument: line 3: "),
        "{err}"
    );
    let err = fails(
        d,
        &["import", "-"],
        Some(b"{\"key\":\"\",\"value\":\"v\"}\n"),
    );
    assert_eq!(
        err,
        "charm-kv: invalid argument: line 1: key cannot be empty\n"
    );
    let err = fails(
        d,
        &["import", "-"],
        Some(b"{\"key\":\"a\",\"value\":\"v\"}\n\xff\n"),
    );
    assert!(err.contains("line 2: not UTF-8"), "{err}");
    let err = fails(d, &["import", "@work"], None);
    assert_eq!(
        err,
        "charm-kv: import @work needs a FILE to read (or - for stdin)\n"
    );
    assert_eq!(ok(d, &["list"]), b"kept\t1\n");
}

#[test]
fn completion_scripts_and_dynamic_names_and_the_man_page() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for shell in ["bash", "zsh", "fish"] {
        let script = String::from_utf8(ok(d, &["completion", shell])).unwrap();
        assert!(
            script.contains("CHARM_KV_COMPLETE") && script.contains("charm-kv"),
            "{shell}: {script}"
        );
    }
    ok(d, &["set", "name", "v"]);
    ok(d, &["set", "nation", "v"]);
    ok(d, &["set", "other", "v"]);
    ok(d, &["set", "k@work", "v"]);
    // What the fish script runs when Tab is pressed after the words.
    let complete = |words: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_charm-kv"))
            .args(["--", "charm-kv"])
            .args(words)
            .env_clear()
            .env("CHARM_DATA_DIR", d)
            .env("HOME", d)
            .env("CHARM_KV_COMPLETE", "fish")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        text.lines()
            .map(|l| l.split('\t').next().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(complete(&["get", "na"]), ["name", "nation"]);
    assert_eq!(complete(&["rm", "k@w"]), ["k@work"]);
    // A whole KEY@DB with an existing DB: the keys of DB (and the name itself, once).
    ok(d, &["set", "kite@work", "v"]);
    assert_eq!(complete(&["get", "k@work"]), ["k@work", "kite@work"]);
    assert_eq!(
        complete(&["list", "@"]),
        ["@charm.sh.kv.user.default", "@work"]
    );
    assert!(complete(&["li"]).contains(&"list-dbs".to_owned()));
    // A variable of clap_complete's default name does nothing here.
    let out = Command::new(env!("CARGO_BIN_EXE_charm-kv"))
        .args(["get", "name"])
        .env_clear()
        .env("CHARM_DATA_DIR", d)
        .env("HOME", d)
        .env("COMPLETE", "fish")
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"v");
    // Completing created nothing.
    assert_eq!(ok(d, &["list-dbs"]), b"@charm.sh.kv.user.default\n@work\n");

    let man = String::from_utf8(ok(d, &["man"])).unwrap();
    assert!(
        man.starts_with(".ie") || man.contains(".TH charm-kv"),
        "{man}"
    );
    assert!(man.contains("export") && man.contains("completion"));
    let pages = d.join("man");
    std::fs::create_dir(&pages).unwrap();
    ok(d, &["man", "--dir", pages.to_str().unwrap()]);
    assert!(pages.join("charm-kv.1").is_file());
    assert!(pages.join("charm-kv-list.1").is_file());
}

/// Runs `charm-kv ARGS` with its stdin, stdout and stderr on a pseudo-terminal, through
/// util-linux `script`, feeding it `input`; the exit code and everything shown.
fn on_a_terminal(data: &Path, args: &str, input: &[u8]) -> (Option<i32>, String) {
    let command = format!("{} {args}", env!("CARGO_BIN_EXE_charm-kv"));
    let mut child = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("CHARM_DATA_DIR", data)
        .env("HOME", data)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("util-linux `script` runs the command on a pseudo-terminal");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn export_refuses_a_terminal_and_delete_db_asks_there() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["set", "secret@work", "plaintext"]);
    let (code, shown) = on_a_terminal(d, "export @work", b"");
    assert_eq!(code, Some(1), "{shown}");
    assert!(
        shown.contains("not to a terminal without --force"),
        "{shown}"
    );
    assert!(!shown.contains("plaintext"), "{shown}");
    let (code, shown) = on_a_terminal(d, "export @work --force", b"");
    assert_eq!(code, Some(0), "{shown}");
    assert!(shown.contains("\"value\":\"plaintext\""), "{shown}");

    // Local mode: it asks on a terminal, saying no server copy is deleted.
    let (code, shown) = on_a_terminal(d, "delete-db @work", b"n\n");
    assert_eq!(code, Some(1), "{shown}");
    assert!(shown.contains("no server copy is deleted") && shown.contains("nothing deleted"));
    assert_eq!(ok(d, &["list-dbs"]), b"@work\n");
    let (code, shown) = on_a_terminal(d, "delete-db @work", b"y\n");
    assert_eq!(code, Some(0), "{shown}");
    assert_eq!(ok(d, &["list-dbs"]), b"");
}

/// `set --ttl`, `ttl`, `expire`, `persist`, with absolute times in the past and far in
/// the future instead of waiting.
#[test]
fn ttl_expire_and_persist_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let far_future = "253402300799999"; // the end of the year 9999
    ok(d, &["set", "session", "abc", "--ttl", "10m"]);
    let left = String::from_utf8(ok(d, &["ttl", "session"])).unwrap();
    // At most ten minutes, at least 9m50s (whatever the machine's speed).
    assert!(
        left == "10m0s\n" || (left.starts_with("9m") && left.trim_end().ends_with('s')),
        "{left:?}"
    );
    let secs = left.trim_end().trim_end_matches('s');
    if let Some((m, s)) = secs.split_once('m') {
        let total: u64 = m.parse::<u64>().unwrap() * 60 + s.parse::<u64>().unwrap();
        assert!((590..=600).contains(&total), "{left}");
    }
    assert_eq!(ok(d, &["get", "session"]), b"abc");
    // No expiry: its own output and exit status; missing: the usual failure.
    ok(d, &["set", "plain", "p"]);
    let none = charm_kv(d, &["ttl", "plain"], None);
    assert_eq!(none.status.code(), Some(9));
    assert_eq!(none.stdout, b"no expiry\n");
    assert!(none.stderr.is_empty());
    let missing = charm_kv(d, &["ttl", "nothing"], None);
    assert_eq!(missing.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&missing.stderr),
        "charm-kv: key not found\n"
    );
    // JSON.
    ok(d, &["expire", "plain", "--at-unix-ms", far_future]);
    let line: serde_json::Value =
        serde_json::from_slice(&ok(d, &["ttl", "plain", "--json"])).unwrap();
    assert_eq!(line["key"], "plain");
    assert_eq!(line["expires_at_unix_ms"], 253_402_300_799_999i64);
    assert!(line["ttl_ms"].as_i64().unwrap() > 200_000_000_000_000);
    assert_eq!(ok(d, &["get", "plain"]), b"p", "expire keeps the value");
    // persist removes it; persisting again is fine.
    ok(d, &["persist", "plain"]);
    ok(d, &["persist", "plain"]);
    assert_eq!(charm_kv(d, &["ttl", "plain"], None).status.code(), Some(9));
    // A time in the past: the key is gone at once, from get, list and export.
    ok(d, &["set", "old", "o", "--expires-at-unix-ms", "1000"]);
    assert!(fails(d, &["get", "old"], None).contains("key not found"));
    ok(d, &["expire", "session", "--at-unix-ms", "1"]);
    assert_eq!(ok(d, &["list", "-k"]), b"plain\n");
    // Export writes the expiry of a pair that has one; import takes it back.
    ok(d, &["set", "kept", "k", "--expires-at-unix-ms", far_future]);
    let export = charm_kv(d, &["export"], None);
    assert!(export.status.success());
    let lines = json_lines(&export.stdout);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["key"], "kept");
    assert_eq!(lines[0]["expires_at_unix_ms"], 253_402_300_799_999i64);
    assert!(lines[1].get("expires_at_unix_ms").is_none(), "{}", lines[1]);
    let other = tempfile::tempdir().unwrap();
    let imported = charm_kv(other.path(), &["import", "-"], Some(&export.stdout));
    assert!(imported.status.success());
    let json: serde_json::Value =
        serde_json::from_slice(&ok(other.path(), &["ttl", "kept", "--json"])).unwrap();
    assert_eq!(json["expires_at_unix_ms"], 253_402_300_799_999i64);
    // The last line of a key wins, an expired one too: it cancels the live line before
    // it, and an expired line leaves the database's own value alone.
    let twice = b"{\"key\":\"fresh\",\"value\":\"live\"}\n\
        {\"key\":\"fresh\",\"value\":\"gone\",\"expires_at_unix_ms\":1000}\n\
        {\"key\":\"kept\",\"value\":\"gone\",\"expires_at_unix_ms\":1000}\n";
    let imported = charm_kv(other.path(), &["import", "-"], Some(twice));
    assert!(imported.status.success());
    assert_eq!(
        String::from_utf8_lossy(&imported.stderr),
        "charm-kv: imported 1 pair(s) into @charm.sh.kv.user.default\n"
    );
    assert!(fails(other.path(), &["get", "fresh"], None).contains("key not found"));
    assert!(ok(other.path(), &["get", "kept"]).starts_with(b"k"));
    // Bad durations and times, and missing keys.
    for (args, why, code) in [
        (
            &["set", "k", "v", "--ttl", "0s"][..],
            "TTL must be positive",
            1,
        ),
        (&["set", "k", "v", "--ttl", "10"], "invalid duration", 2),
        (&["set", "k", "v", "--ttl", "99999999d"], "year 9999", 1),
        (
            &["set", "k", "v", "--expires-at-unix-ms", "-5"],
            "unix time",
            1,
        ),
        (
            &["set", "k", "v", "--ttl", "1m", "--expires-at-unix-ms", "5"],
            "cannot be used with",
            2,
        ),
        (&["expire", "nothing", "1m"], "key not found", 1),
        (&["expire", "plain"], "required", 2),
        (&["persist", "nothing"], "key not found", 1),
    ] {
        let out = charm_kv(d, args, None);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        assert!(err.contains(why), "{args:?}: {err}");
    }
    assert!(
        fails(d, &["get", "k"], None).contains("key not found"),
        "nothing was set"
    );
}

/// `charm-kv ARGS` with stdin from `stdin` and stderr on /dev/full (every write fails
/// with ENOSPC); the exit code and stdout.
fn with_stderr_on_dev_full(data: &Path, args: &[&str], stdin: &[u8]) -> (Option<i32>, Vec<u8>) {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_charm-kv"))
        .args(args)
        .env_clear()
        .env("CHARM_DATA_DIR", data)
        .env("HOME", data)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(full))
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.code(), out.stdout)
}

/// A message that cannot be written to stderr (a full disk, a closed pipe) is lost,
/// but the command's outcome and exit status stay what they were: before, the failed
/// write panicked (exit status 101), after the import had committed, and before
/// `export` had written anything.
#[test]
fn an_unwritable_stderr_changes_no_outcome_and_no_exit_status() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["set", "kept", "1"]);
    let line = b"{\"key\":\"imported\",\"value\":\"2\"}\n";
    assert_eq!(
        with_stderr_on_dev_full(d, &["import", "-"], line).0,
        Some(0)
    );
    assert_eq!(ok(d, &["get", "imported"]), b"2");
    let (code, exported) = with_stderr_on_dev_full(d, &["export"], b"");
    assert_eq!(code, Some(0));
    assert_eq!(json_lines(&exported).len(), 2);
    assert_eq!(
        with_stderr_on_dev_full(d, &["get", "missing"], b"").0,
        Some(1)
    );
    assert_eq!(with_stderr_on_dev_full(d, &["bogus"], b"").0, Some(2));
}

/// A value on stdin is read up to the value limit, not to the end: `set k < /dev/zero`
/// is refused with the limit in the message. Before, it read until memory ran out
/// (under this test's 3 GiB address-space limit: `out of memory`; without one, until
/// the kernel killed it).
#[test]
fn an_endless_value_on_stdin_is_refused_at_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["set", "kept", "1"]);
    let out = Command::new("sh")
        .args([
            "-c",
            "ulimit -v 3145728 && exec \"$0\" set endless",
            env!("CARGO_BIN_EXE_charm-kv"),
        ])
        .env_clear()
        .env("CHARM_DATA_DIR", d)
        .env("HOME", d)
        .stdin(std::fs::File::open("/dev/zero").unwrap())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr,
        "charm-kv: the value on stdin is larger than the limit of 999999943 bytes\n"
    );
    assert!(fails(d, &["get", "endless"], None).contains("key not found"));
    assert_eq!(ok(d, &["list"]), b"kept\t1\n");
}

/// `--help` and `--version` whose output is lost (stdout on /dev/full) fail like any
/// other output that is lost; before, they exited 0. A reader that goes away early
/// (`charm-kv --help | head -1`) is still success.
#[test]
fn help_and_version_that_cannot_be_written_fail() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["--help"][..],
        &["--version"],
        &["set", "--help"],
        &["help", "list"],
    ] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_charm-kv"))
            .args(args)
            .env_clear()
            .env("CHARM_DATA_DIR", dir.path())
            .env("HOME", dir.path())
            .stdout(Stdio::from(full))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("charm-kv: writing output: ") && stderr.contains("space"),
            "{args:?}: {stderr}"
        );
        let mut child = Command::new(env!("CARGO_BIN_EXE_charm-kv"))
            .args(args)
            .env_clear()
            .env("CHARM_DATA_DIR", dir.path())
            .env("HOME", dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Nobody reads: the first write gets EPIPE.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(out.stderr.is_empty(), "{args:?}");
    }
}

/// A value given as an argument is bytes, as one on stdin: not UTF-8 is fine (before:
/// a usage error, "invalid UTF-8 was detected in one or more arguments").
#[test]
fn a_value_argument_that_is_not_utf8_is_stored_as_given() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let value = std::ffi::OsStr::from_bytes(b"\xff\xfebin\x80");
    let out = Command::new(env!("CARGO_BIN_EXE_charm-kv"))
        .arg("set")
        .arg("k")
        .arg(value)
        .env_clear()
        .env("CHARM_DATA_DIR", d)
        .env("HOME", d)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(ok(d, &["get", "k"]), b"\xff\xfebin\x80");
}

/// `link` without a Charm server says so, off a terminal too (before: exit 8, "pass
/// --yes", and with --yes then "no Charm server").
#[test]
fn link_without_a_server_says_so_off_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["set", "k", "v"]);
    let err = fails(d, &["link"], None);
    assert!(err.contains("no Charm server configured"), "{err}");
}

/// `backup-keys -o ""` is a usage error (before: the private key went to a file named
/// `.tar` in the working directory).
#[test]
fn an_empty_backup_file_name_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["set", "k", "v"]);
    let out = Command::new(env!("CARGO_BIN_EXE_charm-kv"))
        .args(["backup-keys", "-o", ""])
        .current_dir(d)
        .env_clear()
        .env("CHARM_DATA_DIR", d)
        .env("HOME", d)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--output"));
    assert!(!d.join(".tar").exists());
}

/// `export -o FILE` that does not finish (here killed by the file size limit, as by
/// Ctrl-C or a full disk) leaves no FILE: it is written under a temporary name and
/// renamed when complete. Before, a truncated FILE stayed, which can end on a line
/// boundary and look like a whole export.
#[test]
fn an_export_that_does_not_finish_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let lines: String = (0..3000)
        .map(|i| {
            format!(
                "{{\"key\":\"k{i:04}\",\"value\":\"{}\"}}\n",
                "v".repeat(200)
            )
        })
        .collect();
    assert!(charm_kv(d, &["import", "-"], Some(lines.as_bytes()))
        .status
        .success());
    let file = d.join("export.jsonl");
    // 128 blocks of 512 bytes: the export (about 700 KB) is cut at 64 KiB.
    let out = Command::new("sh")
        .args([
            "-c",
            "ulimit -f 128 && exec \"$0\" export -o \"$1\"",
            env!("CARGO_BIN_EXE_charm-kv"),
            file.to_str().unwrap(),
        ])
        .env_clear()
        .env("CHARM_DATA_DIR", d)
        .env("HOME", d)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(!file.exists(), "a partial export was left");
    // Not in the way of the next export, which is whole.
    ok(d, &["export", "-o", file.to_str().unwrap()]);
    assert_eq!(json_lines(&std::fs::read(&file).unwrap()).len(), 3000);
}

/// `delete-db` while another process has the database open used to unlink the files
/// under it: that process went on committing into a file no one would read again, and
/// its acknowledged writes were gone. Now the deletion is refused and nothing is lost.
#[test]
fn delete_db_refuses_a_database_another_process_has_open() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut import = command(d, &["import", "@inuse", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = import.stdin.take().unwrap();
    // The import opens (creating) the database, then reads its input to the end.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !files_named(d, "inuse.sqlite") {
        assert!(
            std::time::Instant::now() < deadline,
            "the import never opened the database"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let refused = charm_kv(d, &["delete-db", "@inuse"], None);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("\"inuse\" is open (in this or another process)"),
        "{stderr}"
    );
    input
        .write_all(b"{\"key\":\"k\",\"value\":\"v\"}\n")
        .unwrap();
    drop(input);
    let imported = import.wait_with_output().unwrap();
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    assert_eq!(
        ok(d, &["get", "k@inuse"]),
        b"v",
        "the acknowledged import is there"
    );
    // Once no process has it open, it goes.
    ok(d, &["delete-db", "@inuse"]);
    assert_eq!(ok(d, &["list-dbs"]), b"");
}

/// Whether a file called `name` is anywhere under `dir`.
fn files_named(dir: &Path, name: &str) -> bool {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .any(|entry| {
            let path = entry.path();
            path.file_name().is_some_and(|n| n == name)
                || (path.is_dir() && files_named(&path, name))
        })
}
