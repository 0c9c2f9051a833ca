//! A malicious Charm server: the account is real (SSH `api-auth` against a real
//! `charm serve`), but the HTTP API is a hostile stand-in answering with oversized
//! sequence numbers, endless bodies, path names with `..`, or bytes trickled one a
//! second; or the server is a black hole that accepts connections and never answers.
//! Every case must end in a clear error with bounded memory and time, and leave the
//! local database as it was.

mod support;

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
    let key = charm_kv::cloud::CharmClient::new(server.options(dir, None).config())
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
    let key = charm_kv::cloud::CharmClient::new(server.options(&dir, None).config())
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

/// Runs `f` on its own thread and returns its result, failing the test instead of
/// hanging when it never returns (the bound is far above any configured one).
fn returns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(f());
    });
    result
        .recv_timeout(Duration::from_secs(120))
        .expect("the call never returned")
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
    let (result, pending, why, value) = returns(move || {
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
        returns(move || set_and_report(Kv::open_with(DB, &options).unwrap()));
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
        let (result, pending, why, _) = returns(move || set_and_report(kv));
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
    let (err, kv) = returns(move || (kv.sync().unwrap_err(), kv));
    assert_eq!(err.kind(), ErrorKind::Network, "{err}");
    assert!(err.to_string().contains("time limit"), "{err}");
    assert_intact(&kv);
}
