//! Linking devices, key backups and imports against a real `charm serve` and the real
//! Go `charm` client, both ways (issue 19).

use crate::support;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use charm_kv::account::{Account, LinkOptions, LinkPrompt, LinkRequest};
use charm_kv::{devices, LinkFailure, Options};
use support::charm_server::{run_bounded, CharmServer, HOST};

const DB: &str = "notes";

/// `charm-kv` for the device in `dir`, pointed at `server`.
fn kv_command(server: &CharmServer, dir: &Path, args: &[&str]) -> Command {
    let mut command = support::charm_kv_command(dir, &server.env_for_client(dir));
    command.args(args);
    command
}

fn kv_run(server: &CharmServer, dir: &Path, args: &[&str]) -> Output {
    run_bounded(&mut kv_command(server, dir, args), Duration::from_secs(120))
}

/// `charm-kv ARGS` on `dir` (with the server), which must succeed; its stdout.
fn kv(server: &CharmServer, dir: &Path, args: &[&str]) -> String {
    let out = kv_run(server, dir, args);
    assert!(
        out.status.success(),
        "charm-kv {args:?} ({}): {}\nserver log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `charm-kv` on `dir` while the server cannot be reached (its address, but ports
/// where nothing listens), which must succeed: the writes stay local, under a key of
/// the device's own.
fn kv_offline(server: &CharmServer, dir: &Path, args: &[&str]) {
    let closed = std::net::TcpListener::bind((HOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let mut env = server.env_for_client(dir);
    for (name, value) in &mut env {
        if name == "CHARM_SSH_PORT" || name == "CHARM_HTTP_PORT" {
            *value = closed.clone();
        }
    }
    let mut command = support::charm_kv_command(dir, &env);
    command.args(args);
    let out = run_bounded(&mut command, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "offline charm-kv {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn get(server: &CharmServer, dir: &Path, key: &str) -> String {
    kv(server, dir, &["get", key])
}

/// `key<TAB>value` lines of `list @db` (which syncs first).
fn list(server: &CharmServer, dir: &Path, db: &str) -> Vec<String> {
    let out = kv_run(server, dir, &["list", &format!("@{db}")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.is_empty(),
        "charm-kv list @{db}: {stderr}"
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A child whose stdout is read line by line on a thread.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn spawn(command: &mut Command) -> Running {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
        let stdout = child.stdout.take().unwrap();
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The first six-character code after `marker` in a line of its output.
    fn code_after(&mut self, marker: &str) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("no code in the output: {:?}", self.seen));
            self.seen.push(line.clone());
            if let Some(at) = line.find(marker) {
                let code: String = line[at + marker.len()..]
                    .chars()
                    .take_while(char::is_ascii_alphanumeric)
                    .collect();
                if code.len() == 6 {
                    return code;
                }
            }
        }
    }

    fn finish(mut self) -> (std::process::ExitStatus, String) {
        let status = self.child.wait().unwrap();
        let rest: Vec<String> = self.lines.iter().collect();
        self.seen.extend(rest);
        let mut err = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            let _ = stderr.read_to_string(&mut err);
        }
        (status, format!("{}\n{err}", self.seen.join("\n")))
    }
}

/// The Go `charm link [CODE]` TUI in a pseudo-terminal (it needs one), typing `keys`
/// once `prompt` shows.
fn go_link(server: &CharmServer, dir: &Path, args: &[&str], answer: Option<&str>) -> Running {
    let driver = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/pty_drive.py");
    let mut command = Command::new("python3");
    command.arg(driver);
    if let Some(keys) = answer {
        command.args(["--send-on", "Link this device?", keys]);
    }
    command.arg("--").arg(support::charm_server::charm_bin());
    command.arg("link").args(args);
    for (name, _) in std::env::vars() {
        if name.starts_with("CHARM_") {
            command.env_remove(name);
        }
    }
    command.envs(server.env_for_client(dir));
    command.stdin(Stdio::null());
    Running::spawn(&mut command)
}

fn charm_kv_generator(server: &CharmServer, dir: &Path) -> Running {
    Running::spawn(&mut kv_command(server, dir, &["link", "--yes"]))
}

/// The files of `dir`'s charm-kv databases, with their sizes (what a Go `charm link`
/// must leave alone).
fn databases_of(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut found: Vec<(PathBuf, u64)> = std::fs::read_dir(dir.join(HOST).join("charm-kv"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sqlite"))
        .map(|p| {
            let len = std::fs::metadata(&p).unwrap().len();
            (p, len)
        })
        .collect();
    found.sort();
    found
}

/// Go `charm link` shows the code on device 1 (which holds charm-kv databases);
/// `charm-kv link CODE` joins on device 2. A value set on either device is read on
/// the other after `sync`; the Go link deleted nothing of device 1's databases.
#[test]
fn go_generator_and_charm_kv_requester() {
    let server = CharmServer::start();
    let (one, two) = (server.client_dir("one"), server.client_dir("two"));
    kv(&server, &one, &["set", &format!("before@{DB}"), "from one"]);
    kv(&server, &one, &["sync", &format!("@{DB}")]);
    kv(
        &server,
        &one,
        &["set", &format!("unsynced@{DB}"), "pending"],
    );
    let databases = databases_of(&one);

    let mut generator = go_link(&server, &one, &[], Some("y"));
    let code = generator.code_after("link ");
    let joined = kv_run(&server, &two, &["link", &code]);
    let (status, transcript) = generator.finish();
    assert!(
        status.success(),
        "charm link: {transcript}\ncharm-kv link {code}: {}\nserver log:\n{}",
        String::from_utf8_lossy(&joined.stderr),
        server.log()
    );
    assert!(
        joined.status.success(),
        "charm-kv link {code}: {}",
        String::from_utf8_lossy(&joined.stderr)
    );
    assert!(String::from_utf8_lossy(&joined.stdout).starts_with("linked: account "));

    // The Go client's link removed `<data path>/kv`, not our databases.
    assert_eq!(databases_of(&one), databases);
    assert_eq!(get(&server, &one, &format!("unsynced@{DB}")), "pending");
    assert_eq!(
        kv(&server, &one, &["id"]),
        kv(&server, &two, &["id"]),
        "one account"
    );

    kv(&server, &one, &["sync", &format!("@{DB}")]);
    assert_eq!(
        list(&server, &two, DB),
        ["before\tfrom one", "unsynced\tpending"]
    );
    kv(&server, &two, &["set", &format!("from-two@{DB}"), "hello"]);
    kv(&server, &two, &["sync", &format!("@{DB}")]);
    kv(&server, &one, &["sync", &format!("@{DB}")]);
    assert_eq!(get(&server, &one, &format!("from-two@{DB}")), "hello");
}

/// `charm-kv link` shows the code; the Go `charm link CODE` joins. Device 2 then uses
/// charm-kv: values go both ways.
#[test]
fn charm_kv_generator_and_go_requester() {
    let server = CharmServer::start();
    let (one, two) = (server.client_dir("one"), server.client_dir("two"));
    kv(&server, &one, &["set", &format!("a@{DB}"), "1"]);
    kv(&server, &one, &["sync", &format!("@{DB}")]);
    // The Go requester makes its own encrypt key when it asks the server for keys
    // before our share of key 0 lands (client/link.go: Link, then SyncEncryptKeys). The
    // server orders keys by a creation time in whole seconds, so a key made in the
    // same second as the account's first one may be listed before it, and a fresh
    // device would take it as key 0 (docs/cloud-client.md, "Linking devices"). Real
    // accounts are older than a second when a machine joins; so is this one.
    std::thread::sleep(Duration::from_millis(1100));

    let mut generator = charm_kv_generator(&server, &one);
    let code = generator.code_after("code: ");
    let (go_status, go_transcript) = go_link(&server, &two, &[&code], None).finish();
    let (status, transcript) = generator.finish();
    assert!(go_status.success(), "charm link {code}: {go_transcript}");
    assert!(status.success(), "charm-kv link: {transcript}");
    assert!(transcript.contains("linked: account"), "{transcript}");

    let keys = kv(&server, &two, &["keys"]);
    assert_eq!(keys.lines().count(), 2, "{keys}");
    assert_eq!(keys.lines().filter(|l| l.starts_with('*')).count(), 1);
    assert_eq!(list(&server, &two, DB), ["a\t1"]);
    kv(&server, &two, &["set", &format!("b@{DB}"), "2"]);
    kv(&server, &two, &["sync", &format!("@{DB}")]);
    assert_eq!(list(&server, &one, DB), ["a\t1", "b\t2"]);
}

/// Links two charm-kv devices: `one` shows the code (`--yes`), `two` joins; returns
/// the requester's output.
fn link_charm_kv(server: &CharmServer, one: &Path, two: &Path) -> Output {
    let mut generator = charm_kv_generator(server, one);
    let code = generator.code_after("code: ");
    let joined = kv_run(server, two, &["link", &code]);
    let (status, transcript) = generator.finish();
    assert!(status.success(), "charm-kv link: {transcript}");
    joined
}

/// Device 2 wrote databases offline before it was linked: after linking and syncing
/// both devices hold the union, each key once.
#[test]
fn offline_writes_of_the_joining_device_are_kept() {
    let server = CharmServer::start();
    let (one, two) = (server.client_dir("one"), server.client_dir("two"));
    kv(&server, &one, &["set", &format!("shared@{DB}"), "one"]);
    kv(&server, &one, &["set", &format!("only-one@{DB}"), "1"]);
    kv(&server, &one, &["sync", &format!("@{DB}")]);
    kv_offline(&server, &two, &["set", &format!("only-two@{DB}"), "2"]);
    kv_offline(&server, &two, &["set", &format!("shared@{DB}"), "two"]);
    kv_offline(&server, &two, &["set", "solo@other", "x"]);

    let joined = link_charm_kv(&server, &one, &two);
    assert!(
        joined.status.success(),
        "{}",
        String::from_utf8_lossy(&joined.stderr)
    );
    for db in [DB, "other"] {
        kv(&server, &two, &["sync", &format!("@{db}")]);
        kv(&server, &one, &["sync", &format!("@{db}")]);
    }
    let expected = ["only-one\t1", "only-two\t2", "shared\ttwo"];
    assert_eq!(list(&server, &one, DB), expected);
    assert_eq!(list(&server, &two, DB), expected);
    assert_eq!(list(&server, &one, "other"), ["solo\tx"]);
}

/// Device 2 was in its own account (and synced there): the link merges that account
/// away (exit status 7), and its databases go to the account it joined, nothing lost.
#[test]
fn a_merged_account_keeps_its_databases() {
    let server = CharmServer::start();
    let (one, two) = (server.client_dir("one"), server.client_dir("two"));
    kv(&server, &one, &["set", &format!("shared@{DB}"), "one"]);
    kv(&server, &one, &["sync", &format!("@{DB}")]);
    kv(&server, &two, &["set", &format!("mine@{DB}"), "two"]);
    kv(&server, &two, &["set", &format!("shared@{DB}"), "two"]);
    kv(&server, &two, &["sync", &format!("@{DB}")]);
    let former = kv(&server, &two, &["id"]);

    let joined = link_charm_kv(&server, &one, &two);
    assert_eq!(
        joined.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&joined.stderr)
    );
    assert!(String::from_utf8_lossy(&joined.stderr).contains(former.trim()));
    kv(&server, &two, &["sync", &format!("@{DB}")]);
    kv(&server, &one, &["sync", &format!("@{DB}")]);
    let expected = ["mine\ttwo", "shared\ttwo"];
    assert_eq!(list(&server, &one, DB), expected);
    assert_eq!(list(&server, &two, DB), expected);
}

/// Two devices in two accounts of `server`, both holding `shared` in database `DB`
/// ("one" and "two"), the second also `mine` there and `solo` in database `other`, all
/// pushed: what a merging link starts from.
fn two_accounts_with_data(server: &CharmServer) -> (PathBuf, PathBuf) {
    let (one, two) = (server.client_dir("one"), server.client_dir("two"));
    kv(server, &one, &["set", &format!("shared@{DB}"), "one"]);
    kv(server, &one, &["sync", &format!("@{DB}")]);
    kv(server, &two, &["set", &format!("mine@{DB}"), "two"]);
    kv(server, &two, &["set", &format!("shared@{DB}"), "two"]);
    kv(server, &two, &["set", "solo@other", "x"]);
    kv(server, &two, &["sync", &format!("@{DB}")]);
    kv(server, &two, &["sync", "@other"]);
    (one, two)
}

/// The joining device dies after the server merged its former account away and its
/// keys followed, before its databases were re-homed: all that is left is the marker
/// the link wrote before its request. Its next command (a sync) finishes the
/// re-homing, so its old rows reach the account it joined.
#[test]
fn a_crash_before_the_rehoming_is_finished_by_the_next_sync() {
    let server = CharmServer::start();
    let (one, two) = two_accounts_with_data(&server);

    let mut generator = charm_kv_generator(&server, &one);
    let code = generator.code_after("code: ");
    let config = server.client_config(&two);
    let data_path = config.data_path().unwrap();
    let mut marked = false;
    // What `devices::link_request` does, minus the re-homing (the crash).
    let report = Account::open(&config)
        .unwrap()
        .link_request(&code, &LinkOptions::default(), &mut || {
            marked = true;
            charm_kv::sync::rejoin::mark_pending(&data_path).map(|_| ())
        })
        .unwrap();
    let (status, transcript) = generator.finish();
    assert!(status.success(), "charm-kv link: {transcript}");
    assert!(marked, "{report:?}");
    assert!(matches!(
        report.outcome,
        charm_kv::account::LinkOutcome::Merged { .. }
    ));

    kv(&server, &two, &["sync", &format!("@{DB}")]);
    let pending_after_sync = charm_kv::sync::rejoin::pending(&data_path).unwrap();
    kv(&server, &two, &["sync", "@other"]);
    kv(&server, &one, &["sync", &format!("@{DB}")]);
    kv(&server, &one, &["sync", "@other"]);
    let expected = ["mine\ttwo", "shared\ttwo"];
    assert_eq!(list(&server, &one, DB), expected);
    assert_eq!(list(&server, &two, DB), expected);
    assert_eq!(list(&server, &one, "other"), ["solo\tx"]);
    assert_eq!(
        pending_after_sync, None,
        "the first open finished the re-homing"
    );
}

/// `charm-kv ARGS` on `dir` in local mode (no `CHARM_HOST`), which must succeed.
fn kv_local(dir: &Path, args: &[&str]) {
    let mut command = support::charm_kv_command(dir, &[]);
    command.args(args);
    let out = run_bounded(&mut command, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "local charm-kv {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The charm-kv database files left in `dir`'s local-mode data path.
fn local_mode_databases(dir: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(dir.join("localhost").join("charm-kv")) {
        Ok(entries) => entries
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "sqlite"))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Device 2 wrote in local mode (no server configured: `<data>/localhost/`), and one
/// of those databases also exists in its server data path (written offline). After
/// `charm-kv link CODE` and a sync, both devices hold the union: the local-mode
/// database that only it had moved, the other one merged, the local-mode rows kept.
#[test]
fn local_mode_databases_join_the_account_on_link() {
    let server = CharmServer::start();
    let (one, two) = (server.client_dir("one"), server.client_dir("two"));
    kv(&server, &one, &["set", &format!("shared@{DB}"), "one"]);
    kv(&server, &one, &["set", &format!("only-one@{DB}"), "1"]);
    kv(&server, &one, &["sync", &format!("@{DB}")]);
    kv_local(&two, &["set", &format!("only-two@{DB}"), "2"]);
    kv_local(&two, &["set", &format!("shared@{DB}"), "two"]);
    kv_local(&two, &["set", "solo@other", "x"]);
    kv_offline(&server, &two, &["set", &format!("offline@{DB}"), "o"]);

    let joined = link_charm_kv(&server, &one, &two);
    assert!(
        joined.status.success(),
        "{}",
        String::from_utf8_lossy(&joined.stderr)
    );
    assert_eq!(local_mode_databases(&two), Vec::<PathBuf>::new());
    for db in [DB, "other"] {
        kv(&server, &two, &["sync", &format!("@{db}")]);
        kv(&server, &one, &["sync", &format!("@{db}")]);
    }
    let expected = ["offline\to", "only-one\t1", "only-two\t2", "shared\ttwo"];
    assert_eq!(list(&server, &one, DB), expected);
    assert_eq!(list(&server, &two, DB), expected);
    assert_eq!(list(&server, &one, "other"), ["solo\tx"]);
}

/// `charm-kv link CODE` on `two` with the process killed (`abort`) at the named point
/// of the link; the generator on `one` completes.
fn link_crashing_at(server: &CharmServer, one: &Path, two: &Path, point: &str) {
    let mut generator = charm_kv_generator(server, one);
    let code = generator.code_after("code: ");
    let mut command = kv_command(server, two, &["link", &code]);
    command.env("CHARM_KV_TEST_CRASH_AT", point);
    let crashed = run_bounded(&mut command, Duration::from_secs(120));
    let (status, transcript) = generator.finish();
    assert!(status.success(), "charm-kv link: {transcript}");
    assert_eq!(
        crashed.status.code(),
        None,
        "not killed at {point}: {}",
        String::from_utf8_lossy(&crashed.stderr)
    );
}

/// The joining device, in an account already, dies after the server merged its
/// former account away but before the answer arrived (nothing after the request
/// ran). What it recorded before the request lets its next command finish: the
/// account's keys adopted and shared, its databases re-homed, nothing lost.
#[test]
fn a_crash_before_the_answer_of_a_merging_link_is_finished_by_the_next_sync() {
    let server = CharmServer::start();
    let (one, two) = two_accounts_with_data(&server);
    let former = kv(&server, &two, &["id"]);

    link_crashing_at(&server, &one, &two, "link-answered");
    let data_path = server.client_config(&two).data_path().unwrap();
    assert!(charm_kv::sync::rejoin::pending(&data_path)
        .unwrap()
        .is_some());
    assert!(Account::open(&server.client_config(&two))
        .unwrap()
        .link_unsettled()
        .unwrap());

    kv(&server, &two, &["sync", &format!("@{DB}")]);
    assert_ne!(
        kv(&server, &two, &["id"]),
        former,
        "still in its former account"
    );
    kv(&server, &two, &["sync", "@other"]);
    kv(&server, &one, &["sync", &format!("@{DB}")]);
    kv(&server, &one, &["sync", "@other"]);
    let expected = ["mine\ttwo", "shared\ttwo"];
    assert_eq!(list(&server, &one, DB), expected);
    assert_eq!(list(&server, &two, DB), expected);
    assert_eq!(list(&server, &one, "other"), ["solo\tx"]);
    assert_eq!(charm_kv::sync::rejoin::pending(&data_path).unwrap(), None);
    assert!(!Account::open(&server.client_config(&two))
        .unwrap()
        .link_unsettled()
        .unwrap());
}

/// The joining device, in an account already, dies after recording the link (and
/// the re-homing a merge would need) but before sending the request: nothing was
/// linked. Its next open asks the server, forgets the link and its re-homing, and
/// re-homes nothing (a needless re-homing would make its old rows win over newer
/// ones of its account at the next sync).
#[test]
fn a_crash_before_the_request_forgets_the_link_and_re_homes_nothing() {
    let server = CharmServer::start();
    let two = server.client_dir("two");
    kv(&server, &two, &["set", &format!("mine@{DB}"), "two"]);
    kv(&server, &two, &["sync", &format!("@{DB}")]);
    let former = kv(&server, &two, &["id"]);
    let mut command = kv_command(&server, &two, &["link", "ABCDEF"]);
    command.env("CHARM_KV_TEST_CRASH_AT", "link-requesting");
    let crashed = run_bounded(&mut command, Duration::from_secs(120));
    assert_eq!(crashed.status.code(), None, "not killed before the request");
    let config = server.client_config(&two);
    let data_path = config.data_path().unwrap();
    assert!(charm_kv::sync::rejoin::pending(&data_path)
        .unwrap()
        .is_some());

    // Offline first: the link's outcome is unknown, so nothing is re-homed (a link
    // that did not happen must not turn every row into a local write).
    let closed = std::net::TcpListener::bind((HOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut offline = server.options(&two, None);
    offline.ssh_port(closed).http_port(closed);
    let kv_offline = charm_kv::Kv::open_with(DB, &offline).unwrap();
    assert_eq!(
        kv_offline.pending_writes().unwrap(),
        0,
        "re-homed while unsettled"
    );
    assert!(kv_offline.sync().is_err(), "the server is not there");
    assert_eq!(
        kv_offline.pending_writes().unwrap(),
        0,
        "re-homed by a failed sync"
    );
    kv_offline.close().unwrap();
    assert!(Account::open(&config).unwrap().link_unsettled().unwrap());

    let kv_two = charm_kv::Kv::open_with(DB, &server.options(&two, None)).unwrap();
    assert_eq!(kv_two.pending_writes().unwrap(), 0, "re-homed needlessly");
    assert_eq!(kv_two.get("mine").unwrap(), b"two");
    kv_two.close().unwrap();
    assert_eq!(charm_kv::sync::rejoin::pending(&data_path).unwrap(), None);
    assert!(!Account::open(&config).unwrap().link_unsettled().unwrap());
    assert_eq!(kv(&server, &two, &["id"]), former);
}

/// The joining device (with offline and local-mode writes) dies after the server
/// linked it, while waiting for the account's keys. Its next sync finishes the link
/// on its own (no `sync-keys`): the account's key 0 adopted, its keys shared, every
/// file opened on both devices.
#[test]
fn a_crash_while_waiting_for_the_keys_is_finished_by_the_next_sync() {
    let server = CharmServer::start();
    let (one, two) = (server.client_dir("one"), server.client_dir("two"));
    kv(&server, &one, &["set", &format!("shared@{DB}"), "one"]);
    kv(&server, &one, &["sync", &format!("@{DB}")]);
    kv_offline(&server, &two, &["set", &format!("offline@{DB}"), "o"]);
    kv_local(&two, &["set", "solo@other", "x"]);

    link_crashing_at(&server, &one, &two, "link-keys-wait");

    kv(&server, &two, &["sync", &format!("@{DB}")]);
    kv(&server, &two, &["sync", "@other"]);
    kv(&server, &one, &["sync", &format!("@{DB}")]);
    kv(&server, &one, &["sync", "@other"]);
    let expected = ["offline\to", "shared\tone"];
    assert_eq!(list(&server, &one, DB), expected);
    assert_eq!(list(&server, &two, DB), expected);
    assert_eq!(list(&server, &one, "other"), ["solo\tx"]);
    assert_eq!(local_mode_databases(&two), Vec::<PathBuf>::new());
    assert!(!Account::open(&server.client_config(&two))
        .unwrap()
        .link_unsettled()
        .unwrap());
}

/// `charm-kv ARGS` on `dir` with `CHARM_HOST=localhost` and `server`'s ports, which
/// must succeed: the local-mode data path (`<data>/localhost/`, which local mode
/// shares), syncing with an account of its own on `server`.
fn kv_localhost(server: &CharmServer, dir: &Path, args: &[&str]) {
    let mut env = server.env_for_client(dir);
    for (name, value) in &mut env {
        if name == "CHARM_HOST" {
            *value = "localhost".into();
        }
    }
    let mut command = support::charm_kv_command(dir, &env);
    command.args(args);
    let out = run_bounded(&mut command, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "localhost charm-kv {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The joining device dies right after a local-mode database that its new account
/// lacks moved (`join-moved`), before that database forgot its sync state: it had
/// synced with another account (under `CHARM_HOST=localhost`, whose data path local
/// mode shares). The next sync still pushes its rows into the account it joined, as
/// after a join that was not interrupted.
#[test]
fn a_crash_right_after_a_local_mode_database_moved_is_finished_by_the_next_sync() {
    let server = CharmServer::start();
    let (one, two) = (server.client_dir("one"), server.client_dir("two"));
    kv(&server, &one, &["set", &format!("shared@{DB}"), "one"]);
    kv(&server, &one, &["sync", &format!("@{DB}")]);
    kv_localhost(&server, &two, &["set", "solo@other", "x"]);
    kv_localhost(&server, &two, &["sync", "@other"]);

    link_crashing_at(&server, &one, &two, "join-moved");

    kv(&server, &two, &["sync", "@other"]);
    kv(&server, &one, &["sync", "@other"]);
    assert_eq!(list(&server, &one, "other"), ["solo\tx"]);
    assert_eq!(list(&server, &two, "other"), ["solo\tx"]);
    assert_eq!(local_mode_databases(&two), Vec::<PathBuf>::new());
    assert!(!Account::open(&server.client_config(&two))
        .unwrap()
        .link_unsettled()
        .unwrap());
}

/// A backup made by `charm backup-keys` and imported by charm-kv opens the account's
/// data: a value the Go client stored and one charm-kv stored.
#[test]
fn go_backup_imported_by_charm_kv() {
    let server = CharmServer::start();
    let (one, fresh) = (server.client_dir("one"), server.client_dir("fresh"));
    server.go_kv_write(&one, &["kv", "set", "go-key", "go-value"], |kv| {
        kv.get("go-key").ok().as_deref() == Some(&b"go-value"[..])
    });
    kv(&server, &one, &["set", &format!("kv-key@{DB}"), "kv-value"]);
    kv(&server, &one, &["sync", &format!("@{DB}")]);
    let backup = one.join("backup.tar");
    server.go(&one, &["backup-keys", "-o", backup.to_str().unwrap()]);

    kv(&server, &fresh, &["import-keys", backup.to_str().unwrap()]);
    assert_eq!(kv(&server, &fresh, &["id"]), kv(&server, &one, &["id"]));
    assert_eq!(list(&server, &fresh, DB), ["kv-key\tkv-value"]);
    kv(&server, &fresh, &["sync"]);
    assert_eq!(get(&server, &fresh, "go-key"), "go-value");
}

/// A backup made by charm-kv and imported by the Go CLI lets `charm kv get` and
/// `charm fs cat` work; `-o -` is the private key alone, which Go imports too.
#[test]
fn charm_kv_backup_imported_by_go() {
    let server = CharmServer::start();
    let (one, go_dir, go_bare) = (
        server.client_dir("one"),
        server.client_dir("go"),
        server.client_dir("go-bare"),
    );
    kv(&server, &one, &["id"]);
    server.go_kv_write(&one, &["kv", "set", "go-key", "go-value"], |kv| {
        kv.get("go-key").ok().as_deref() == Some(&b"go-value"[..])
    });
    let client = charm_kv::account::connect(&server.client_config(&one)).unwrap();
    client
        .fs_write("notes/hello.txt", &b"written by charm-kv"[..], 19, None)
        .unwrap();
    let backup = one.join("ours.tar");
    kv(
        &server,
        &one,
        &["backup-keys", "-o", backup.to_str().unwrap()],
    );
    let names: Vec<String> = tar_names(&backup);
    assert_eq!(
        names,
        [
            format!("{HOST}/charm_ed25519"),
            format!("{HOST}/charm_ed25519.pub")
        ]
    );

    // The Go client makes an identity before it imports: -f replaces it.
    server.go(&go_dir, &["import-keys", "-f", backup.to_str().unwrap()]);
    server.go(&go_dir, &["kv", "sync"]);
    let out = server.go(&go_dir, &["kv", "get", "go-key"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "go-value");
    let out = server.go(&go_dir, &["fs", "cat", "charm:notes/hello.txt"]);
    assert_eq!(out.stdout, b"written by charm-kv");

    let bare = kv(&server, &one, &["backup-keys", "-o", "-"]);
    assert!(bare.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));
    let bare_file = one.join("bare-key");
    std::fs::write(&bare_file, &bare).unwrap();
    let mut import = server.go_client(&go_bare);
    import
        .args(["import-keys", "-f", "-"])
        .stdin(std::fs::File::open(&bare_file).unwrap());
    let out = run_bounded(&mut import, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.go(&go_bare, &["kv", "sync"]);
    let out = server.go(&go_bare, &["kv", "get", "go-key"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "go-value");
}

fn tar_names(path: &Path) -> Vec<String> {
    let out = Command::new("tar").arg("-tf").arg(path).output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// import-keys refuses to replace another identity without --force (exit 8) and
/// changes nothing; with --force the device's own rows stay readable.
#[test]
fn import_keys_over_another_identity_needs_force() {
    let server = CharmServer::start();
    let (one, two) = (server.client_dir("one"), server.client_dir("two"));
    kv(&server, &one, &["id"]);
    let backup = one.join("backup.tar");
    kv(
        &server,
        &one,
        &["backup-keys", "-o", backup.to_str().unwrap()],
    );
    kv(&server, &two, &["set", &format!("mine@{DB}"), "kept"]);
    kv(&server, &two, &["sync", &format!("@{DB}")]);
    let identity = two.join(HOST).join("charm_ed25519");
    let before = std::fs::read(&identity).unwrap();

    let refused = kv_run(&server, &two, &["import-keys", backup.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(8));
    assert_eq!(std::fs::read(&identity).unwrap(), before);

    kv(
        &server,
        &two,
        &["import-keys", "--force", backup.to_str().unwrap()],
    );
    assert_eq!(kv(&server, &two, &["id"]), kv(&server, &one, &["id"]));
    assert_eq!(get(&server, &two, &format!("mine@{DB}")), "kept");
    kv(&server, &two, &["sync", &format!("@{DB}")]);
    assert_eq!(list(&server, &one, DB), ["mine\tkept"]);
}

/// What a device and the server hold that a failed link must not change: the key
/// cache file and the account's SSH keys.
fn state_of(server: &CharmServer, dir: &Path) -> (Vec<u8>, String) {
    let cache = std::fs::read(dir.join(HOST).join("charm_kv_keys.json")).unwrap_or_default();
    (cache, kv(server, dir, &["keys"]))
}

struct Answer {
    accept: bool,
    codes: mpsc::Sender<String>,
    asked: Arc<AtomicBool>,
}

impl LinkPrompt for Answer {
    fn code(&mut self, code: &str) {
        let _ = self.codes.send(code.to_owned());
    }

    fn confirm(&mut self, _request: &LinkRequest) -> bool {
        self.asked.store(true, Ordering::SeqCst);
        self.accept
    }
}

/// Denied, timed-out, cancelled and invalid-code links end with their own error (and
/// exit status) and change nothing on either device or the server.
#[test]
fn failed_links_change_nothing() {
    let server = CharmServer::start();
    let (one, two) = (server.client_dir("one"), server.client_dir("two"));
    kv(&server, &one, &["set", &format!("a@{DB}"), "1"]);
    kv(&server, &one, &["sync", &format!("@{DB}")]);
    kv(&server, &two, &["id"]);
    let before = (state_of(&server, &one), state_of(&server, &two));
    let options: Options = server.options(&one, None);

    // An invalid code.
    let invalid = kv_run(&server, &two, &["link", "ZZZZZZ"]);
    assert_eq!(
        invalid.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&invalid.stderr)
    );

    // Denied by the generator.
    let (codes, code) = mpsc::channel();
    let asked = Arc::new(AtomicBool::new(false));
    let mut prompt = Answer {
        accept: false,
        codes,
        asked: asked.clone(),
    };
    let generator_options = options.clone();
    let generator = std::thread::spawn(move || {
        devices::link_generate(&generator_options, &mut prompt, &LinkOptions::default())
    });
    let code = code.recv_timeout(Duration::from_secs(60)).unwrap();
    let denied = kv_run(&server, &two, &["link", &code]);
    let err = generator.join().unwrap().unwrap_err();
    assert_eq!(err.link_failure(), Some(LinkFailure::Denied), "{err}");
    assert!(asked.load(Ordering::SeqCst));
    assert_eq!(
        denied.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&denied.stderr)
    );

    // Nobody uses the code before the deadline.
    let quick = LinkOptions {
        deadline: Duration::from_secs(2),
        ..LinkOptions::default()
    };
    let (codes, _code) = mpsc::channel();
    let mut prompt = Answer {
        accept: true,
        codes,
        asked: Arc::new(AtomicBool::new(false)),
    };
    let err = devices::link_generate(&options, &mut prompt, &quick).unwrap_err();
    assert_eq!(err.link_failure(), Some(LinkFailure::TimedOut), "{err}");

    // Cancelled while waiting.
    let cancel = Arc::new(AtomicBool::new(false));
    let cancelling = LinkOptions {
        cancel: Some(cancel.clone()),
        ..LinkOptions::default()
    };
    let (codes, code) = mpsc::channel();
    let mut prompt = Answer {
        accept: true,
        codes,
        asked: Arc::new(AtomicBool::new(false)),
    };
    let generator_options = options.clone();
    let generator = std::thread::spawn(move || {
        devices::link_generate(&generator_options, &mut prompt, &cancelling)
    });
    code.recv_timeout(Duration::from_secs(60)).unwrap();
    cancel.store(true, Ordering::SeqCst);
    let err = generator.join().unwrap().unwrap_err();
    assert_eq!(err.link_failure(), Some(LinkFailure::Cancelled), "{err}");

    // A generator on a non-terminal without --yes refuses before asking the server.
    let refused = run_bounded(
        &mut kv_command(&server, &one, &["link"]),
        Duration::from_secs(30),
    );
    assert_eq!(refused.status.code(), Some(8));

    assert_eq!(
        (state_of(&server, &one), state_of(&server, &two)),
        before,
        "a failed link changed something"
    );
    let account = Account::open(options.config()).unwrap();
    assert_eq!(account.linked_keys().unwrap().len(), 1);
    let requester = Account::open(&server.client_config(&two)).unwrap();
    assert!(
        !requester.link_unsettled().unwrap(),
        "a link record was left"
    );
}

/// `keys` lists the account's SSH keys with this device's marked; linking the same
/// device again is "already linked" (exit status 6 on both sides, nothing changes);
/// `unlink` removes the other device's key by fingerprint but refuses our own.
#[test]
fn keys_relink_and_unlink() {
    let server = CharmServer::start();
    let (one, two) = (server.client_dir("one"), server.client_dir("two"));
    kv(&server, &one, &["set", &format!("a@{DB}"), "1"]);
    kv(&server, &one, &["sync", &format!("@{DB}")]);
    let joined = link_charm_kv(&server, &one, &two);
    assert!(joined.status.success());
    let listed = kv(&server, &one, &["keys"]);
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 2, "{listed}");
    let own: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with('*'))
        .collect();
    assert_eq!(own.len(), 1, "{listed}");
    let two_key = std::fs::read_to_string(two.join(HOST).join("charm_ed25519.pub")).unwrap();
    let two_line = lines
        .iter()
        .find(|l| l.contains(two_key.split(' ').nth(1).unwrap()))
        .unwrap_or_else(|| panic!("two's key is not listed: {listed}"));
    assert!(two_line.starts_with(' '), "{listed}");

    let mut generator = Running::spawn(&mut kv_command(&server, &one, &["link", "--yes"]));
    let code = generator.code_after("code: ");
    let again = kv_run(&server, &two, &["link", &code]);
    let (status, transcript) = generator.finish();
    assert_eq!(status.code(), Some(6), "{transcript}");
    assert_eq!(
        again.status.code(),
        Some(6),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(kv(&server, &one, &["keys"]), listed);

    let own_fingerprint = own[0].split(' ').nth(1).unwrap();
    let refused = kv_run(&server, &one, &["unlink", own_fingerprint]);
    assert!(!refused.status.success());
    let two_fingerprint = two_line.split_whitespace().next().unwrap();
    kv(&server, &one, &["unlink", two_fingerprint]);
    let after = kv(&server, &one, &["keys"]);
    assert_eq!(after.lines().count(), 1, "{after}");
    assert!(after.starts_with('*'), "{after}");
    // The unlinked device is on its own again: a new account without the data.
    assert_ne!(kv(&server, &two, &["id"]), kv(&server, &one, &["id"]));
}

/// Device 2 used only the Go client before (its former account's key is older than
/// the account it joins): charm-kv still adopts the joined account's key 0, so both
/// devices name the server files alike and see each other's data.
#[test]
fn a_former_go_account_with_an_older_key_does_not_become_key_0() {
    let server = CharmServer::start();
    let (one, two) = (server.client_dir("one"), server.client_dir("two"));
    server.go(&two, &["kv", "set", "go-key", "old account"]);
    std::thread::sleep(Duration::from_millis(1100));
    kv(&server, &one, &["set", &format!("a@{DB}"), "1"]);
    kv(&server, &one, &["sync", &format!("@{DB}")]);

    let joined = link_charm_kv(&server, &one, &two);
    assert_eq!(
        joined.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&joined.stderr)
    );
    assert_eq!(list(&server, &two, DB), ["a\t1"]);
    kv(&server, &two, &["set", &format!("b@{DB}"), "2"]);
    kv(&server, &two, &["sync", &format!("@{DB}")]);
    assert_eq!(list(&server, &one, DB), ["a\t1", "b\t2"]);
}
