//! `charm-kv import --from-badger DIR`: the Badger directories of the original Go
//! `charm kv` (encrypted Badger v3) and of skate v1 (plaintext Badger v4), read by the
//! helper `charm-kv-badger` (tools/badger-export), which these tests build with Go.
//! Databases come from the real `charm kv` against a real `charm serve`, and from
//! `tools/badger-export/fixture`, which writes them with skate's and charm's exact
//! Badger calls. The tests that need Go build with `--features interop-tests`.

use std::path::Path;
use std::process::{Output, Stdio};

/// `charm-kv` with a clean environment (`CHARM_DATA_DIR` and `HOME` = `data`) plus `env`.
fn charm_kv(data: &Path, env: &[(String, String)], args: &[&str]) -> Output {
    crate::support::charm_kv_command(data, env)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("charm-kv")
}

#[test]
fn a_missing_helper_is_a_clear_error_and_changes_nothing() {
    let data = tempfile::tempdir().unwrap();
    let badger_dir = tempfile::tempdir().unwrap();
    let set = charm_kv(data.path(), &[], &["set", "keep@target", "v"]);
    assert!(set.status.success());
    // No PATH, no CHARM_KV_BADGER_HELPER, and none beside the test build of charm-kv.
    let out = charm_kv(
        data.path(),
        &[],
        &[
            "import",
            "--from-badger",
            badger_dir.path().to_str().unwrap(),
            "@target",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("needs the helper program charm-kv-badger")
            && stderr.contains("tools/badger-export"),
        "{stderr}"
    );
    let named = [(
        "CHARM_KV_BADGER_HELPER".to_owned(),
        data.path().join("absent").display().to_string(),
    )];
    let out = charm_kv(
        data.path(),
        &named,
        &["import", "--from-badger", "x", "@target"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("is not a file"), "{stderr}");
    let list = charm_kv(data.path(), &[], &["list", "@target"]);
    assert_eq!(String::from_utf8_lossy(&list.stdout), "keep\tv\n");
}

#[test]
fn from_badger_takes_no_file() {
    let data = tempfile::tempdir().unwrap();
    let out = charm_kv(
        data.path(),
        &[],
        &["import", "--from-badger", "dir", "file.jsonl"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("only an optional @DB"));
}

#[cfg(feature = "interop-tests")]
mod go {
    use super::*;

    use std::collections::BTreeMap;
    use std::io::Write;
    use std::path::PathBuf;
    use std::process::Command;
    use std::sync::OnceLock;

    use charm_kv::devices::Account;
    use charm_kv::Options;

    use crate::support::charm_server::CharmServer;

    struct Tools {
        helper: PathBuf,
        fixture: PathBuf,
    }

    /// Builds the helper and the fixture writer once per test binary.
    fn tools() -> &'static Tools {
        static TOOLS: OnceLock<Tools> = OnceLock::new();
        TOOLS.get_or_init(|| {
            let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("badger_import");
            std::fs::create_dir_all(&out).unwrap();
            let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/badger-export");
            let tools = Tools {
                helper: out.join("charm-kv-badger"),
                fixture: out.join("badger-fixture"),
            };
            for (binary, package) in [(&tools.helper, "."), (&tools.fixture, "./fixture")] {
                let status = Command::new("go")
                    .args(["build", "-o"])
                    .arg(binary)
                    .arg(package)
                    .current_dir(&source)
                    .env("GOWORK", "off")
                    .status()
                    .unwrap_or_else(|e| {
                        panic!("cannot run `go` ({e}): these tests need the Go toolchain")
                    });
                assert!(
                    status.success(),
                    "building tools/badger-export {package} failed"
                );
            }
            tools
        })
    }

    fn helper_env() -> Vec<(String, String)> {
        vec![(
            "CHARM_KV_BADGER_HELPER".into(),
            tools().helper.display().to_string(),
        )]
    }

    /// One fixture operation: set (with an optional TTL in seconds; negative is
    /// already expired) or delete.
    enum Op<'a> {
        Set(&'a [u8], &'a [u8]),
        SetTtl(&'a [u8], &'a [u8], i64),
        Delete(&'a [u8]),
    }

    /// Writes a Badger directory with the fixture writer: `skate` (plaintext Badger
    /// v4, skate's calls) or `charm` (encrypted Badger v3 with `key`, charm's calls).
    /// `extra` are more flags (`-no-close`).
    fn write_fixture(dir: &Path, format: &str, key: Option<&[u8]>, ops: &[Op], extra: &[&str]) {
        let mut script = String::new();
        for op in ops {
            script.push_str(&match op {
                Op::Set(k, v) => format!("set {} {}\n", hex::encode(k), hex::encode(v)),
                Op::SetTtl(k, v, ttl) => {
                    format!("set {} {} {ttl}\n", hex::encode(k), hex::encode(v))
                }
                Op::Delete(k) => format!("delete {}\n", hex::encode(k)),
            });
        }
        let mut command = Command::new(&tools().fixture);
        command.args(["-format", format]).args(extra);
        if let Some(key) = key {
            command.args(["-key", &hex::encode(key)]);
        }
        let mut child = command
            .arg(dir)
            .stdin(Stdio::piped())
            .spawn()
            .expect("fixture writer");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success(), "fixture writer failed");
    }

    /// Every file of `dir` (not recursing) with its contents.
    fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap())
            .filter(|entry| entry.file_type().unwrap().is_file())
            .map(|entry| {
                (
                    entry.file_name().to_string_lossy().into_owned(),
                    std::fs::read(entry.path()).unwrap(),
                )
            })
            .collect()
    }

    /// Asserts that `dir` holds what `before` recorded, naming the files that differ.
    fn assert_unchanged(dir: &Path, before: &BTreeMap<String, Vec<u8>>) {
        let after = snapshot(dir);
        let differing: Vec<&String> = before
            .keys()
            .chain(after.keys())
            .filter(|name| before.get(*name) != after.get(*name))
            .collect();
        assert!(
            differing.is_empty(),
            "the import changed {differing:?} in {}",
            dir.display()
        );
    }

    /// The pairs of `@db` as `export` writes them, one JSON line each.
    fn exported(data: &Path, env: &[(String, String)], db: &str) -> Vec<String> {
        let out = charm_kv(data, env, &["export", db]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn line(key: &[u8], value: &[u8]) -> String {
        charm_kv::jsonl::encode_pair(key, value)
    }

    fn import(data: &Path, env: &[(String, String)], dir: &Path, extra: &[&str]) -> Output {
        let mut args = vec!["import", "--from-badger", dir.to_str().unwrap()];
        args.extend_from_slice(extra);
        charm_kv(data, env, &args)
    }

    /// The raw Badger key of this data dir's first encrypt key (charm's
    /// `encryptKeyToBadgerKey`), creating the local account as the CLI would.
    fn local_badger_key(data: &Path) -> Vec<u8> {
        let mut options = Options::new();
        options.data_dir(data);
        charm_kv::Kv::open_with("target", &options).unwrap();
        let keys = Account::open(options.config())
            .unwrap()
            .cached_keys()
            .unwrap();
        keys[0].raw_key().to_vec()
    }

    const BINARY: &[u8] = &[0, 0xff, 1, 0xfe, b'\n'];

    #[test]
    fn skate_plaintext_badger_v4_imports_every_live_pair() {
        let data = tempfile::tempdir().unwrap();
        let skate = tempfile::tempdir().unwrap();
        let dir = skate.path().join("kv");
        write_fixture(
            &dir,
            "skate",
            None,
            &[
                Op::Set(b"name", b"Charm"),
                Op::Set(b"blob", BINARY),
                Op::Set(b"\xc3\x28bin-key", b"v"),
                Op::Set(b"note", b"first"),
                Op::Set(b"note", b"second"),
                Op::Set(b"gone", b"x"),
                Op::Delete(b"gone"),
                Op::SetTtl(b"expired", b"old", -3600),
            ],
            &[],
        );
        let before = snapshot(&dir);
        let env = helper_env();
        let out = import(data.path(), &env, &dir, &["@skate"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stderr).contains("imported 4 pair(s)"));
        assert_eq!(
            exported(data.path(), &env, "@skate"),
            [
                line(b"blob", BINARY),
                line(b"name", b"Charm"),
                line(b"note", b"second"),
                line(b"\xc3\x28bin-key", b"v"),
            ]
        );
        assert_unchanged(&dir, &before);
    }

    /// An entry written with a Badger TTL keeps its expiry: it arrives with the same
    /// expiry time (Badger keeps whole seconds), so `ttl` reports the time left.
    #[test]
    fn a_badger_ttl_becomes_the_pairs_expiry() {
        let data = tempfile::tempdir().unwrap();
        let skate = tempfile::tempdir().unwrap();
        let dir = skate.path().join("kv");
        let before = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        write_fixture(
            &dir,
            "skate",
            None,
            &[
                Op::SetTtl(b"session", b"abc", 3600),
                Op::Set(b"name", b"Charm"),
            ],
            &[],
        );
        let after = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let env = helper_env();
        let out = import(data.path(), &env, &dir, &["@skate"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ttl = charm_kv(data.path(), &env, &["ttl", "session@skate", "--json"]);
        assert!(
            ttl.status.success(),
            "{}",
            String::from_utf8_lossy(&ttl.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&ttl.stdout).unwrap();
        let expires = json["expires_at_unix_ms"].as_u64().expect("an expiry");
        // The fixture writer set the TTL; Badger rounds the expiry down to a whole second.
        assert!(
            expires + 1000 > before + 3_600_000 && expires <= after + 3_600_000,
            "{expires} is not an hour after {before}..{after}"
        );
        let persistent = charm_kv(data.path(), &env, &["ttl", "name@skate"]);
        assert_eq!(persistent.status.code(), Some(9), "name has no expiry");
    }

    #[test]
    fn a_crashed_writers_log_is_replayed_on_a_copy() {
        let data = tempfile::tempdir().unwrap();
        let skate = tempfile::tempdir().unwrap();
        let dir = skate.path().join("kv");
        // Exits without closing: the pairs are only in the write-ahead log (.mem),
        // which Badger's read-only mode refuses to replay.
        write_fixture(
            &dir,
            "skate",
            None,
            &[Op::Set(b"a", b"1"), Op::Set(b"b", b"2")],
            &["-no-close"],
        );
        let before = snapshot(&dir);
        assert!(
            before.keys().any(|name| name.ends_with(".mem")),
            "{:?}",
            before.keys()
        );
        let env = helper_env();
        let out = import(data.path(), &env, &dir, &[]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            exported(data.path(), &env, "@"),
            [line(b"a", b"1"), line(b"b", b"2")]
        );
        assert_unchanged(&dir, &before);
    }

    #[test]
    fn encrypted_charm_badger_v3_opens_with_the_accounts_key_and_replace_works() {
        let data = tempfile::tempdir().unwrap();
        let key = local_badger_key(data.path());
        let charm = tempfile::tempdir().unwrap();
        let dir = charm.path().join("charm.sh.kv.user.default");
        write_fixture(
            &dir,
            "charm",
            Some(&key),
            &[
                Op::Set(b"k1", b"v1"),
                Op::Set(b"k1", b"v2"),
                Op::Set(b"bin", BINARY),
                Op::Set(b"del", b"x"),
                Op::Delete(b"del"),
                Op::SetTtl(b"expired", b"old", -60),
            ],
            &[],
        );
        let env = helper_env();
        assert!(charm_kv(data.path(), &env, &["set", "other@target", "o"])
            .status
            .success());
        let before = snapshot(&dir);
        let out = import(data.path(), &env, &dir, &["@target", "--replace"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            exported(data.path(), &env, "@target"),
            [line(b"bin", BINARY), line(b"k1", b"v2")],
            "--replace drops the key not in the Badger directory"
        );
        assert_unchanged(&dir, &before);
    }

    /// The helper on its own: the JSON-lines format, a key given as base64, and the
    /// expiry field of an entry whose expiry has not passed (what a TTL-aware import
    /// reads: `expires_at_unix_ms`, Badger's `ExpiresAt` seconds in milliseconds).
    #[test]
    fn the_helper_writes_export_lines_and_future_expiries() {
        use base64::Engine as _;
        let work = tempfile::tempdir().unwrap();
        let dir = work.path().join("db");
        let key = [9u8; 32];
        let now_ms = || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as u64
        };
        // The fixture writer sets the TTL: the expiry is an hour after its write.
        let before = now_ms();
        write_fixture(
            &dir,
            "charm",
            Some(&key),
            &[
                Op::Set(b"plain", b"text"),
                Op::SetTtl(b"later", b"v", 3600),
                Op::SetTtl(b"past", b"v", -1),
            ],
            &[],
        );
        let after = now_ms();
        let mut child = Command::new(&tools().helper)
            .arg(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let keys = format!(
            "{}\n{}\n",
            hex::encode([1u8; 32]),
            base64::engine::general_purpose::STANDARD.encode(key)
        );
        child
            .stdin
            .take()
            .unwrap()
            .write_all(keys.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(
            lines[1],
            serde_json::json!({"key": "plain", "value": "text", "key_base64": false,
                "value_base64": false})
        );
        assert_eq!(lines[0]["key"], "later");
        let expires = lines[0]["expires_at_unix_ms"].as_u64().unwrap();
        // Badger keeps whole seconds: the expiry is the write's second plus an hour.
        assert_eq!(expires % 1000, 0);
        assert!(
            expires + 1000 > before + 3_600_000 && expires <= after + 3_600_000,
            "{expires} not an hour after {before}..{after}"
        );
    }

    /// Runs a failing import into `@target` (holding one pair) and returns its stderr
    /// after checking the exit status and that `@target` is unchanged.
    fn failed_import(data: &Path, dir: &Path) -> String {
        let env = helper_env();
        if exported(data, &env, "@target").is_empty() {
            assert!(charm_kv(data, &env, &["set", "keep@target", "v"])
                .status
                .success());
        }
        let out = import(data, &env, dir, &["@target", "--replace"]);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert_eq!(exported(data, &env, "@target"), [line(b"keep", b"v")]);
        stderr
    }

    #[test]
    fn failures_are_clear_and_change_nothing() {
        let data = tempfile::tempdir().unwrap();
        local_badger_key(data.path());
        let work = tempfile::tempdir().unwrap();

        // Encrypted with a key this account does not have.
        let foreign = work.path().join("foreign");
        write_fixture(
            &foreign,
            "charm",
            Some(&[7u8; 32]),
            &[Op::Set(b"k", b"v")],
            &[],
        );
        let before = snapshot(&foreign);
        let stderr = failed_import(data.path(), &foreign);
        assert!(
            stderr.contains("encryption keys: the database is encrypted and none of the 1 given"),
            "{stderr}"
        );
        assert_unchanged(&foreign, &before);

        let missing = work.path().join("missing");
        let stderr = failed_import(data.path(), &missing);
        assert!(stderr.contains("missing does not exist"), "{stderr}");

        let not_badger = work.path().join("plain");
        std::fs::create_dir(&not_badger).unwrap();
        std::fs::write(not_badger.join("notes.txt"), "hello").unwrap();
        let stderr = failed_import(data.path(), &not_badger);
        assert!(
            stderr.contains("is not a Badger database directory (no MANIFEST)"),
            "{stderr}"
        );

        // A directory another process has open (skate or charm kv running).
        let busy = work.path().join("busy");
        let ops = work.path().join("ops");
        std::fs::write(&ops, format!("set {} 00\n", hex::encode("k"))).unwrap();
        let mut holder = Command::new(&tools().fixture)
            .args(["-format", "skate", "-hold", "-ops"])
            .arg(&ops)
            .arg(&busy)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut ready = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(holder.stdout.take().unwrap()),
            &mut ready,
        )
        .unwrap();
        assert_eq!(ready, "ready\n");
        let stderr = failed_import(data.path(), &busy);
        assert!(stderr.contains("is in use by another process"), "{stderr}");
        drop(holder.stdin.take());
        assert!(holder.wait().unwrap().success());
    }

    /// The real Go `charm kv` (v0.12.6) against a real `charm serve`: what it wrote
    /// into its encrypted Badger directory is imported by a charm-kv device with the
    /// same SSH key, and equals what `charm kv get` returns.
    #[test]
    fn real_charm_kv_data_imports_with_the_same_identity() {
        let server = CharmServer::start();
        let go_dir = server.client_dir("go");
        let binary: Vec<u8> = (0..=255u8).collect();
        server.go(&go_dir, &["kv", "set", "Name", "Charm"]);
        server.go(&go_dir, &["kv", "set", "greeting", "hello, world"]);
        server.go(&go_dir, &["kv", "set", "greeting", "hello again"]);
        go_set_stdin(&server, &go_dir, "blob", &binary);
        server.go(&go_dir, &["kv", "set", "gone", "soon"]);
        server.go(&go_dir, &["kv", "delete", "gone"]);
        server.go(&go_dir, &["kv", "set", "k@work", "in another db"]);

        // What `charm kv get` returns (before the snapshot: every `charm kv` command
        // opens the directory read-write).
        let expected: Vec<String> = ["blob", "greeting", "name"]
            .iter()
            .map(|key| {
                let value = server.go(&go_dir, &["kv", "get", key]).stdout;
                line(key.as_bytes(), &value)
            })
            .collect();
        assert_eq!(expected[0], line(b"blob", &binary));
        assert_eq!(expected[1], line(b"greeting", b"hello again"));

        let badger_dir = go_dir.join("127.0.0.1/kv/charm.sh.kv.user.default");
        assert!(
            badger_dir.join("MANIFEST").is_file(),
            "charm kv's directory moved"
        );
        let before = snapshot(&badger_dir);

        let data = server.client_dir("charm-kv");
        let mut env = server.env_for_client(&data);
        env.push((
            "CHARM_IDENTITY_KEY".into(),
            go_dir.join("127.0.0.1/charm_ed25519").display().to_string(),
        ));
        env.extend(helper_env());
        // A database the Go client never synced to, so nothing but the import fills it.
        let out = import(&data, &env, &badger_dir, &["@imported"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_unchanged(&badger_dir, &before);
        assert_eq!(exported(&data, &env, "@imported"), expected);
        let gone = charm_kv(&data, &env, &["get", "gone@imported"]);
        assert!(!gone.status.success(), "the deleted key came back");

        // A device whose key cache lacks the account's key: it first ran while the
        // server was unreachable, so it made a local key. The import finds no fitting
        // cached key and fetches the account's keys from the server once.
        let offline_first = server.client_dir("offline-first");
        let mut env = server.env_for_client(&offline_first);
        env.push((
            "CHARM_IDENTITY_KEY".into(),
            go_dir.join("127.0.0.1/charm_ed25519").display().to_string(),
        ));
        env.extend(helper_env());
        let mut offline = env.clone();
        let dead_port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        offline.retain(|(name, _)| name != "CHARM_SSH_PORT");
        offline.push(("CHARM_SSH_PORT".into(), dead_port.to_string()));
        let set = charm_kv(&offline_first, &offline, &["set", "local@other", "v"]);
        assert!(
            set.status.success(),
            "{}",
            String::from_utf8_lossy(&set.stderr)
        );
        let out = import(&offline_first, &env, &badger_dir, &["@imported"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(exported(&offline_first, &env, "@imported"), expected);

        // The named database is its own directory.
        let work = go_dir.join("127.0.0.1/kv/work");
        let out = import(&data, &env, &work, &["@work-imported"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            exported(&data, &env, "@work-imported"),
            [line(b"k", b"in another db")]
        );
    }

    /// `charm kv set KEY` with the value on stdin (binary safe).
    fn go_set_stdin(server: &CharmServer, go_dir: &Path, key: &str, value: &[u8]) {
        let mut child = server
            .go_client(go_dir)
            .args(["kv", "set", key])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(value).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "charm kv set {key}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
