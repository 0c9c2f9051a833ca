//! The `charm-kv` command, run as a user would (local mode, no server).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn charm_kv(data: &Path, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_charm-kv"))
        .args(args)
        .env_clear()
        .env("CHARM_DATA_DIR", data)
        .env("HOME", data)
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
        assert_eq!(mode(&data.join("kv")), 0o700);
        for entry in std::fs::read_dir(data.join("kv")).unwrap() {
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

mod support;

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
