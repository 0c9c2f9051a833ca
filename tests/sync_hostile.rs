//! A malicious Charm server: the account is real (SSH `api-auth` against a real
//! `charm serve`), but the HTTP API is a hostile stand-in answering with oversized
//! sequence numbers, endless bodies and path names with `..`. Every case must end in a
//! clear error with bounded memory, and leave the local database as it was.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;

use charm_kv::crypto::lookup::encrypt_lookup_field;
use charm_kv::crypto::sasquatch::{encryptor, Recipient};
use charm_kv::{EncryptKey, ErrorKind, Kv, Options};
use support::charm_server::CharmServer;

const DB: &str = "hostile";

enum Reply {
    Json(u16, String),
    /// `content type` then bytes forever (until the client hangs up).
    Endless(&'static str),
    /// A valid sasquatch file whose payload never ends.
    EndlessSnapshot(EncryptKey),
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
