//! A malicious Charm server. First the sync steps: the account is real (SSH `api-auth`
//! against a real `charm serve`), but the HTTP API is a hostile stand-in answering with
//! oversized sequence numbers, endless bodies, path names with `..`, or bytes trickled
//! one a second; or the server is a black hole that accepts connections and never
//! answers. Every case must end in a clear error with bounded memory and time, and
//! leave the local database as it was.
//!
//! Then the account steps (`api-auth` and `POST /v1/encrypt-key`), all fake since the
//! fake plays the attacker: it names its own public key, omits or injects keys, drops
//! uploads, swaps key 0. Every case is refused or survived with nothing lost, and no
//! encrypt key ever reaches it in a form its own SSH key opens.

use crate::support;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use charm_kv::crypto::lookup::encrypt_lookup_field;
use charm_kv::crypto::sasquatch::{encryptor, Recipient};
use charm_kv::{EncryptKey, ErrorKind, Kv, Options, Timeouts};
use support::charm_server::CharmServer;

const DB: &str = "hostile";

enum Reply {
    Json(u16, String),
    /// `content type` then bytes forever (until the client hangs up).
    Endless(&'static str),
    /// A valid sasquatch file whose payload never ends.
    EndlessSnapshot(EncryptKey),
    /// A small valid answer, sent one byte a second: never silent for long.
    Trickle,
}

type Handler = Arc<dyn Fn(&str, &str) -> Reply + Send + Sync>;

/// Serves `handler` on 127.0.0.1 until the test process ends; returns the port.
fn hostile_http(handler: Handler) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let handler = handler.clone();
            std::thread::spawn(move || serve(stream, &handler));
        }
    });
    port
}

fn serve(stream: TcpStream, handler: &Handler) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return;
    }
    // Headers; request bodies (a few JSON bytes at most here) are not read.
    let mut line = String::new();
    while reader.read_line(&mut line).map(|n| n > 2).unwrap_or(false) {
        line.clear();
    }
    let mut parts = request.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let _ = match handler(method, path) {
        Reply::Json(status, body) => write!(
            out,
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
        Reply::Endless(content_type) => {
            let _ = write!(out, "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nConnection: close\r\n\r\n");
            let chunk = vec![b'['; 64 * 1024];
            while out.write_all(&chunk).is_ok() {}
            Ok(())
        }
        Reply::Trickle => {
            let answer = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 9\r\nConnection: close\r\n\r\n{\"seq\":1}";
            for byte in answer.bytes() {
                if out.write_all(&[byte]).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_secs(1));
            }
            Ok(())
        }
        Reply::EndlessSnapshot(key) => {
            let _ = write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n"
            );
            let mut writer = encryptor(out, &[Recipient::scrypt(key.text().as_bytes())]).unwrap();
            let chunk = vec![0u8; 64 * 1024];
            while writer.write_all(&chunk).is_ok() {}
            Ok(())
        }
    };
}

/// A device whose account exists on `server` (keys cached), then pointed at `http_port`.
fn device(server: &CharmServer, dir: &Path, http_port: u16) -> (Kv, EncryptKey) {
    let real = Kv::open_with(DB, &server.options(dir, None)).unwrap();
    real.close().unwrap();
    let key = charm_kv::account::connect(server.options(dir, None).config())
        .unwrap()
        .encrypt_keys()
        .unwrap()
        .remove(0);
    let mut options: Options = server.options(dir, None);
    options.http_port(http_port).auto_push(false);
    let kv = Kv::open_with(DB, &options).unwrap();
    kv.set("local", "intact").unwrap();
    (kv, key)
}

fn assert_intact(kv: &Kv) {
    assert_eq!(kv.get("local").unwrap(), b"intact");
    assert_eq!(kv.keys().unwrap().len(), 1);
    assert_eq!(kv.pending_writes().unwrap(), 1);
}

fn not_found() -> Reply {
    Reply::Json(404, r#"{"message":"file not found"}"#.into())
}

#[test]
fn oversized_sequence_numbers_are_refused() {
    let server = CharmServer::start();
    let port = hostile_http(Arc::new(|_, path| {
        if path.starts_with("/v1/seq/") {
            Reply::Json(200, r#"{"seq":18446744073709551615}"#.into())
        } else {
            not_found()
        }
    }));
    let (kv, _) = device(&server, &server.client_dir("seq"), port);
    let err = kv.sync().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server, "{err}");
    assert!(err.to_string().contains("out of range"), "{err}");
    assert_intact(&kv);
}

#[test]
fn an_endless_listing_is_cut_off() {
    let server = CharmServer::start();
    let port = hostile_http(Arc::new(|_, path| {
        if path.starts_with("/v1/fs") {
            Reply::Endless("application/json")
        } else {
            Reply::Json(200, r#"{"seq":1}"#.into())
        }
    }));
    let (kv, _) = device(&server, &server.client_dir("listing"), port);
    let err = kv.sync().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    assert_intact(&kv);
}

#[test]
fn names_with_dot_dot_are_rejected() {
    let server = CharmServer::start();
    let port = hostile_http(Arc::new(|_, path| {
        if path.starts_with("/v1/fs") {
            Reply::Json(
                200,
                r#"{"name":"x","is_dir":true,"size":0,"modtime":"2024-01-01T00:00:00Z","mode":2147484136,"files":[{"name":"..","is_dir":false,"size":10,"modtime":"2024-01-01T00:00:00Z","mode":432},{"name":"../../../etc/passwd","is_dir":false,"size":10,"modtime":"2024-01-01T00:00:00Z","mode":432}]}"#.into(),
            )
        } else {
            Reply::Json(200, r#"{"seq":1}"#.into())
        }
    }));
    let dir = server.client_dir("dotdot");
    let (kv, _) = device(&server, &dir, port);
    let err = kv.sync().unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Corrupt | ErrorKind::Keys),
        "{err}"
    );
    assert_intact(&kv);
    assert!(!dir.join("etc").exists());
}

#[test]
fn an_endless_snapshot_stops_at_its_listed_size() {
    let server = CharmServer::start();
    let key_slot: Arc<std::sync::OnceLock<EncryptKey>> = Arc::default();
    let slot = key_slot.clone();
    let port = hostile_http(Arc::new(move |_, path| {
        let key = slot
            .get()
            .expect("key known before the first request")
            .clone();
        let db = encrypt_lookup_field(&key, DB).unwrap();
        let one = encrypt_lookup_field(&key, "1").unwrap();
        if path.ends_with(&format!("/{db}")) {
            Reply::Json(
                200,
                format!(
                    r#"{{"name":"{db}","is_dir":true,"size":0,"modtime":"2024-01-01T00:00:00Z","mode":2147484136,"files":[{{"name":"{one}","is_dir":false,"size":300000,"modtime":"2024-01-01T00:00:00Z","mode":432}}]}}"#
                ),
            )
        } else if path.ends_with(&format!("/{db}/{one}")) {
            Reply::EndlessSnapshot(key)
        } else {
            Reply::Json(200, r#"{"seq":1}"#.into())
        }
    }));
    let dir = server.client_dir("endless");
    let real = Kv::open_with(DB, &server.options(&dir, None)).unwrap();
    real.close().unwrap();
    let key = charm_kv::account::connect(server.options(&dir, None).config())
        .unwrap()
        .encrypt_keys()
        .unwrap()
        .remove(0);
    key_slot.set(key).unwrap();
    let mut options = server.options(&dir, None);
    options.http_port(port).auto_push(false);
    let kv = Kv::open_with(DB, &options).unwrap();
    kv.set("local", "intact").unwrap();
    let err = kv.sync().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    assert!(
        err.to_string().contains("more than the 300000 bytes"),
        "{err}"
    );
    assert_intact(&kv);
    let leftovers: Vec<_> = std::fs::read_dir(kv.path().unwrap().parent().unwrap())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty());
}

/// Accepts connections on 127.0.0.1 and never sends a byte; returns the port.
fn black_hole() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    port
}

fn seconds(connect: u64, request: u64, sync: u64) -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(connect),
        request: Duration::from_secs(request),
        sync: Duration::from_secs(sync),
    }
}

/// What a `set` with auto-push left behind: its result, the pending count, why the
/// push failed, and the value read back.
fn set_and_report(kv: Kv) -> (charm_kv::Result<()>, u64, Option<String>, Vec<u8>) {
    let result = kv.set("k", "v");
    (
        result,
        kv.pending_writes().unwrap(),
        kv.last_push_error(),
        kv.get("k").unwrap(),
    )
}

#[test]
fn a_black_holed_server_leaves_the_write_committed_and_pending() {
    // Both ports of a server that accepts and never answers: the first open falls
    // back to a local key and the write's push fails, each within the bounds.
    let hole = black_hole();
    let dir = tempfile::tempdir().unwrap();
    let mut options = Options::new();
    options
        .data_dir(dir.path())
        .host(Some("127.0.0.1".into()))
        .ssh_port(hole)
        .http_port(hole)
        .timeouts(seconds(1, 1, 3));
    let (result, pending, why, value) = support::returns(move || {
        let kv = Kv::open_with(DB, &options).unwrap();
        set_and_report(kv)
    });
    result.unwrap();
    assert_eq!(value, b"v");
    assert_eq!(pending, 1);
    let why = why.expect("the push failed");
    assert!(why.contains("timed out after 1s"), "{why}");

    // The SSH leg answers (a real server) and only the HTTP API is a black hole.
    let server = CharmServer::start();
    let dir = server.client_dir("http-hole");
    Kv::open_with(DB, &server.options(&dir, None))
        .unwrap()
        .close()
        .unwrap();
    let mut options = server.options(&dir, None);
    options.http_port(black_hole()).timeouts(seconds(1, 1, 3));
    let (result, pending, why, _) =
        support::returns(move || set_and_report(Kv::open_with(DB, &options).unwrap()));
    result.unwrap();
    assert_eq!(pending, 1);
    assert!(why.expect("the push failed").contains("timed out"));
}

#[test]
fn a_trickling_server_is_cut_by_the_request_and_the_sync_bounds() {
    let server = CharmServer::start();
    let port = hostile_http(Arc::new(|_, _| Reply::Trickle));
    // Each bound alone cuts it: the request bound (the answer takes 90 s), and the
    // sync bound when the request bound is longer than the whole trickle.
    for (name, timeouts, reason) in [
        ("request", seconds(60, 2, 600), "timed out"),
        ("sync", seconds(60, 600, 3), "time limit"),
    ] {
        let dir = server.client_dir(name);
        Kv::open_with(DB, &server.options(&dir, None))
            .unwrap()
            .close()
            .unwrap();
        let mut options = server.options(&dir, None);
        options.http_port(port).timeouts(timeouts);
        let kv = Kv::open_with(DB, &options).unwrap();
        let (result, pending, why, _) = support::returns(move || set_and_report(kv));
        result.unwrap();
        assert_eq!(pending, 1, "{name}");
        let why = why.expect("the push failed");
        assert!(why.contains(reason), "{name}: {why}");
    }
}

#[test]
fn waiting_for_earlier_tickets_counts_against_the_sync_bound() {
    // Tickets far ahead of anything listed: the pusher waits for nine earlier uploads
    // that never appear (up to 10 s per attempt), but the sync bound ends the wait.
    let server = CharmServer::start();
    let port = hostile_http(Arc::new(|method, path| {
        match (method, path.starts_with("/v1/seq/")) {
            ("POST", true) => Reply::Json(200, r#"{"seq":10}"#.into()),
            (_, true) => Reply::Json(200, r#"{"seq":9}"#.into()),
            _ => not_found(),
        }
    }));
    let dir = server.client_dir("tickets");
    Kv::open_with(DB, &server.options(&dir, None))
        .unwrap()
        .close()
        .unwrap();
    let mut options = server.options(&dir, None);
    options
        .http_port(port)
        .auto_push(false)
        .timeouts(seconds(60, 60, 2));
    let kv = Kv::open_with(DB, &options).unwrap();
    kv.set("local", "intact").unwrap();
    let (err, kv) = support::returns(move || (kv.sync().unwrap_err(), kv));
    assert_eq!(err.kind(), ErrorKind::Network, "{err}");
    assert!(err.to_string().contains("time limit"), "{err}");
    assert_intact(&kv);
}

// ---------------------------------------------------------------------------------
// The account steps against a fake server.

use charm_kv::account::{self, Account};
use charm_kv::cloud::WrappedKey;
use charm_kv::crypto::keywrap;
use charm_kv::crypto::sasquatch::Identity;
use std::sync::Mutex;

/// What the fake account server does.
#[derive(Clone, Copy, PartialEq)]
enum Attack {
    /// Stores uploads and lists them: an honest server.
    None,
    /// Names its own SSH key as the account's `public_key`.
    ForeignPublicKey,
    /// Answers uploads with 200 but stores nothing.
    DropUploads,
}

struct FakeState {
    attack: Attack,
    /// The account's keys as listed by `api-auth`.
    listed: Vec<WrappedKey>,
    /// Every `POST /v1/encrypt-key` body received.
    received: Vec<serde_json::Value>,
}

/// A fake Charm server (SSH `api-auth` and HTTP) with its own SSH key pair.
struct FakeAccount {
    state: Arc<Mutex<FakeState>>,
    own_key: ssh_key::PrivateKey,
    ssh_port: u16,
    http_port: u16,
}

impl FakeAccount {
    /// `victim` is the public key the device logs in with (`<type> <base64>`).
    fn start(victim: String) -> FakeAccount {
        let own_key =
            ssh_key::PrivateKey::random(&mut rand::rngs::OsRng, ssh_key::Algorithm::Ed25519)
                .unwrap();
        let own_public = own_key.public_key().to_openssh().unwrap();
        let state = Arc::new(Mutex::new(FakeState {
            attack: Attack::None,
            listed: Vec::new(),
            received: Vec::new(),
        }));
        let auth_state = state.clone();
        let ssh_port = support::fake_ssh::start_with(Arc::new(move || {
            let state = auth_state.lock().unwrap();
            let public_key = match state.attack {
                Attack::ForeignPublicKey => own_public.clone(),
                _ => victim.clone(),
            };
            serde_json::to_vec(&serde_json::json!({
                "jwt": fresh_jwt(),
                "charm_id": "fake-charm-id",
                "http_scheme": "http",
                "public_key": public_key,
                "encrypt_keys": state.listed,
            }))
            .unwrap()
        }));
        let http_state = state.clone();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let http_port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = http_state.clone();
                std::thread::spawn(move || serve_account(stream, &state));
            }
        });
        FakeAccount {
            state,
            own_key,
            ssh_port,
            http_port,
        }
    }

    fn config(&self, dir: &Path) -> charm_kv::Config {
        charm_kv::Config {
            host: Some("127.0.0.1".into()),
            ssh_port: self.ssh_port,
            http_port: self.http_port,
            data_dir: Some(dir.to_owned()),
            ..charm_kv::Config::default()
        }
    }

    fn set_attack(&self, attack: Attack) {
        self.state.lock().unwrap().attack = attack;
    }

    fn listed(&self) -> Vec<WrappedKey> {
        self.state.lock().unwrap().listed.clone()
    }

    fn set_listed(&self, listed: Vec<WrappedKey>) {
        self.state.lock().unwrap().listed = listed;
    }

    fn received(&self) -> Vec<serde_json::Value> {
        self.state.lock().unwrap().received.clone()
    }

    /// Asserts that no uploaded key opens with the fake's own SSH key (what a thief
    /// would try), and that each was sent for the victim's key.
    fn assert_nothing_it_can_open(&self, victim: &str) {
        let thief = Identity::from_private_key(&self.own_key).unwrap();
        for body in self.received() {
            assert_eq!(body["public_key"], victim, "{body}");
            let wrapped = WrappedKey {
                id: body["id"].as_str().unwrap().to_owned(),
                key: body["key"].as_str().unwrap().to_owned(),
                created_at: None,
            };
            assert!(
                keywrap::unwrap(&wrapped, &thief).is_err(),
                "the fake server opened encrypt key {}",
                wrapped.id
            );
        }
    }

    /// A key the attacker made and knows, wrapped for the victim so that it unwraps.
    fn attacker_key(victim: &str, created_at: &str) -> WrappedKey {
        let key = EncryptKey::from_text(
            "attacker-key",
            EncryptKey::generate().text(),
            Some(created_at.into()),
        )
        .unwrap();
        let recipient = Recipient::from_authorized_key(victim).unwrap();
        keywrap::wrap(&key, &recipient).unwrap()
    }
}

fn fresh_jwt() -> String {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    format!(
        "{}.{}.sig",
        b64(r#"{"alg":"EdDSA"}"#),
        b64(r#"{"sub":"fake-charm-id","exp":4102444800}"#)
    )
}

fn serve_account(stream: TcpStream, state: &Mutex<FakeState>) {
    use std::io::Read;
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return;
    }
    let mut length = 0usize;
    let mut line = String::new();
    while reader.read_line(&mut line).map(|n| n > 2).unwrap_or(false) {
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        line.clear();
    }
    let mut body = vec![0u8; length.min(1 << 20)];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let (status, answer) = if request.starts_with("POST /v1/encrypt-key ") {
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let mut state = state.lock().unwrap();
        state.received.push(json.clone());
        if state.attack != Attack::DropUploads {
            let id = json["id"].as_str().unwrap_or_default().to_owned();
            if !state.listed.iter().any(|k| k.id == id) {
                state.listed.push(WrappedKey {
                    id,
                    key: json["key"].as_str().unwrap_or_default().to_owned(),
                    created_at: Some(
                        json["created_at"]
                            .as_str()
                            .unwrap_or("2030-01-01T00:00:00Z")
                            .to_owned(),
                    ),
                });
            }
        }
        (200, "{}".to_owned())
    } else {
        (404, r#"{"message":"not found"}"#.to_owned())
    };
    let _ = write!(
        out,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
        answer.len()
    );
}

fn cached_ids(config: &charm_kv::Config) -> Vec<String> {
    Account::open(config)
        .unwrap()
        .cached_keys()
        .unwrap()
        .iter()
        .map(|k| k.id().to_owned())
        .collect()
}

/// Starts a fake for the victim of data dir `dir` (the identity is made first).
fn fake_for(dir: &Path) -> FakeAccount {
    let probe = charm_kv::Config {
        data_dir: Some(dir.to_owned()),
        host: Some("127.0.0.1".into()),
        ..charm_kv::Config::default()
    };
    FakeAccount::start(Account::open(&probe).unwrap().identity().authorized_key())
}

#[test]
fn a_server_naming_a_foreign_public_key_gets_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let fake = fake_for(dir.path());
    fake.set_attack(Attack::ForeignPublicKey);
    let config = fake.config(dir.path());
    // A device with local data made offline, then syncing with the fake.
    let local = Account::open(&config).unwrap().local_keys().unwrap();
    let err = account::connect(&config)
        .unwrap()
        .encrypt_keys()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
    assert!(err.to_string().contains("a key we do not hold"), "{err}");
    assert!(fake.received().is_empty(), "uploaded before the check");
    assert_eq!(cached_ids(&config), [local[0].id()]);
    // A new device of the same kind does not even open.
    let fresh = tempfile::tempdir().unwrap();
    let victim = Account::open(&fake.config(fresh.path()))
        .unwrap()
        .identity()
        .authorized_key();
    let err = Kv::open_with(DB, &{
        let mut o = Options::new();
        o.data_dir(fresh.path())
            .host(Some("127.0.0.1".into()))
            .ssh_port(fake.ssh_port)
            .http_port(fake.http_port);
        o
    })
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
    assert!(fake.received().is_empty());
    fake.assert_nothing_it_can_open(&victim);
}

#[test]
fn a_server_omitting_a_cached_key_and_dropping_its_upload_loses_nothing() {
    let fake_dir = tempfile::tempdir().unwrap();
    let fake = fake_for(fake_dir.path());
    let config = fake.config(fake_dir.path());
    let victim = Account::open(&config).unwrap().identity().authorized_key();
    let key0 = account::connect(&config)
        .unwrap()
        .encrypt_keys()
        .unwrap()
        .remove(0);
    // A second key of the account, known to this device.
    let second = EncryptKey::from_text(
        "second",
        EncryptKey::generate().text(),
        Some("2031-01-01T00:00:00Z".into()),
    )
    .unwrap();
    let mut listed = fake.listed();
    listed.push(keywrap::wrap(&second, &Recipient::from_authorized_key(&victim).unwrap()).unwrap());
    fake.set_listed(listed.clone());
    let keys = account::connect(&config).unwrap().encrypt_keys().unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(cached_ids(&config), [key0.id(), "second"]);

    // Now the server leaves the second key out and ignores its re-upload.
    fake.set_listed(listed[..1].to_vec());
    fake.set_attack(Attack::DropUploads);
    let err = account::connect(&config)
        .unwrap()
        .encrypt_keys()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Keys, "{err}");
    assert!(err.to_string().contains("second"), "{err}");
    assert_eq!(
        cached_ids(&config),
        [key0.id(), "second"],
        "a key was dropped"
    );
    fake.assert_nothing_it_can_open(&victim);

    // An honest server takes the re-upload, and all is well again.
    fake.set_attack(Attack::None);
    let keys = account::connect(&config).unwrap().encrypt_keys().unwrap();
    let ids: Vec<&str> = keys.iter().map(EncryptKey::id).collect();
    assert_eq!(ids, [key0.id(), "second"]);
    fake.assert_nothing_it_can_open(&victim);
}

#[test]
fn a_server_answering_200_without_storing_the_first_key_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let fake = fake_for(dir.path());
    fake.set_attack(Attack::DropUploads);
    let config = fake.config(dir.path());
    let victim = Account::open(&config).unwrap().identity().authorized_key();
    let err = account::connect(&config)
        .unwrap()
        .encrypt_keys()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Keys, "{err}");
    let received = fake.received();
    assert_eq!(received.len(), 1);
    // The key that left is the one kept locally: nothing was generated and lost.
    assert_eq!(cached_ids(&config), [received[0]["id"].as_str().unwrap()]);
    fake.assert_nothing_it_can_open(&victim);

    // The next sync with an honest server registers that same key.
    fake.set_attack(Attack::None);
    let keys = account::connect(&config).unwrap().encrypt_keys().unwrap();
    assert_eq!(keys[0].id(), received[0]["id"].as_str().unwrap());
}

#[test]
fn a_server_injecting_an_older_key_cannot_make_it_key_0() {
    let fake_dir = tempfile::tempdir().unwrap();
    let fake = fake_for(fake_dir.path());
    let config = fake.config(fake_dir.path());
    let victim = Account::open(&config).unwrap().identity().authorized_key();
    let key0 = account::connect(&config)
        .unwrap()
        .encrypt_keys()
        .unwrap()
        .remove(0);
    let mut listed = fake.listed();
    listed.insert(
        0,
        FakeAccount::attacker_key(&victim, "2000-01-01T00:00:00Z"),
    );
    fake.set_listed(listed);
    let err = account::connect(&config)
        .unwrap()
        .encrypt_keys()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Keys, "{err}");
    let message = err.to_string();
    assert!(
        message.contains("attacker-key") && message.contains(key0.id()),
        "{message}"
    );
    assert!(
        message.contains("synced_key0"),
        "no way out named: {message}"
    );
    assert_eq!(cached_ids(&config), [key0.id()]);
    // Offline, the device still seals with its key 0.
    let mut options = Options::new();
    options
        .data_dir(fake_dir.path())
        .local(true)
        .host(Some("127.0.0.1".into()));
    let kv = Kv::open_with(DB, &options).unwrap();
    kv.set("after", "attack").unwrap();
    assert_eq!(kv.get("after").unwrap(), b"attack");
    fake.assert_nothing_it_can_open(&victim);
}

#[test]
fn a_server_swapping_key_0_is_refused_by_a_synced_device() {
    let fake_dir = tempfile::tempdir().unwrap();
    let fake = fake_for(fake_dir.path());
    let config = fake.config(fake_dir.path());
    let victim = Account::open(&config).unwrap().identity().authorized_key();
    let key0 = account::connect(&config)
        .unwrap()
        .encrypt_keys()
        .unwrap()
        .remove(0);
    // The account's key 0 replaced by another (older) one.
    fake.set_listed(vec![FakeAccount::attacker_key(
        &victim,
        "2000-01-01T00:00:00Z",
    )]);
    let err = account::connect(&config)
        .unwrap()
        .encrypt_keys()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Keys, "{err}");
    assert!(
        err.to_string().contains("attacker-key") && err.to_string().contains(key0.id()),
        "{err}"
    );
    assert_eq!(cached_ids(&config), [key0.id()]);
    fake.assert_nothing_it_can_open(&victim);
}
