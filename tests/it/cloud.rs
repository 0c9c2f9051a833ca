//! The Charm server client against a real `charm serve` (and the real Go client).

use crate::support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use base64::Engine as _;
use charm_kv::account::{self, Account};
use charm_kv::{Config, ErrorKind, Timeouts};
use support::charm_server::{CharmServer, HOST};

fn short_timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(2),
        request: Duration::from_secs(2),
        sync: Duration::from_secs(10),
    }
}

/// `config` with [`short_timeouts`].
fn shortened(mut config: Config) -> Config {
    config.timeouts = short_timeouts();
    config
}

/// A config for a server that may not exist, with [`short_timeouts`].
fn config_for(data_dir: &std::path::Path, ssh_port: u16, http_port: u16) -> Config {
    Config {
        host: Some(HOST.into()),
        ssh_port,
        http_port,
        data_dir: Some(data_dir.to_owned()),
        timeouts: short_timeouts(),
        ..Config::default()
    }
}

/// A port nothing listens on (bound, then released).
fn dead_port() -> u16 {
    TcpListener::bind((HOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Accepts connections on a background thread and answers each with `reply`.
fn fake_listener(reply: &'static [u8]) -> u16 {
    let listener = TcpListener::bind((HOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(16) {
            let Ok(mut stream) = stream else { return };
            let _ = stream.set_read_timeout(Some(Duration::from_millis(300)));
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(reply);
        }
    });
    port
}

#[test]
fn first_auth_creates_an_account_shared_by_the_same_key_and_the_go_client() {
    let server = CharmServer::start();
    let dir = server.client_dir("a");
    let config = server.client_config(&dir);
    let first = account::connect(&config).unwrap();
    let auth = first.auth().unwrap();
    assert_eq!(auth.http_scheme, "http");
    assert_eq!(
        auth.public_key.as_deref(),
        Some(
            Account::open(&config)
                .unwrap()
                .identity()
                .authorized_key()
                .as_str()
        )
    );
    let id = first.charm_id().unwrap();
    assert_eq!(id.len(), 36, "{id}");

    // Same SSH key (same data dir): same account, from a second client...
    let second = account::connect(&config).unwrap();
    assert_eq!(second.charm_id().unwrap(), id);
    // ...and from the Go client, which reads the key charm-kv generated.
    let go_id = server.go(&dir, &["id"]).stdout;
    assert_eq!(String::from_utf8_lossy(&go_id).trim(), id);

    // A different key is a different account.
    let other = account::connect(&server.client_config(&server.client_dir("b"))).unwrap();
    assert_ne!(other.charm_id().unwrap(), id);

    // The server's host key was pinned on first use.
    let pins = std::fs::read_to_string(first.data_path().join("charm_kv_known_hosts")).unwrap();
    assert!(
        pins.starts_with(&format!("{HOST}:{} ssh-ed25519 AAAA", server.ssh_port)),
        "{pins}"
    );
}

#[test]
fn rsa_identity_logs_in() {
    let server = CharmServer::start();
    let dir = server.client_dir("rsa");
    // The Go client generates the 4096-bit key (fast, unlike an unoptimised Rust build)
    // and creates the account; charm-kv then logs in with rsa-sha2 signatures.
    let go_id = server
        .go_client(&dir)
        .env("CHARM_KEY_TYPE", "rsa")
        .arg("id")
        .output()
        .unwrap();
    assert!(go_id.status.success(), "{go_id:?}");
    let mut config = server.client_config(&dir);
    config.key_type = "rsa".into();
    let account = Account::open(&config).unwrap();
    assert!(account.identity().authorized_key().starts_with("ssh-rsa "));
    let client = account.client().unwrap();
    assert_eq!(
        client.charm_id().unwrap(),
        String::from_utf8_lossy(&go_id.stdout).trim()
    );
}

#[test]
fn seq_get_starts_at_zero_and_post_increments() {
    let server = CharmServer::start();
    let client = account::connect(&server.client_config(&server.client_dir("a"))).unwrap();
    assert_eq!(client.seq_get_raw("abc123").unwrap(), 0);
    assert_eq!(client.seq_next_raw("abc123").unwrap(), 1);
    assert_eq!(client.seq_next_raw("abc123").unwrap(), 2);
    assert_eq!(client.seq_get_raw("abc123").unwrap(), 2);
    assert_eq!(client.seq_get_raw("other").unwrap(), 0);
    // Sequences belong to the account.
    let other = account::connect(&server.client_config(&server.client_dir("b"))).unwrap();
    assert_eq!(other.seq_get_raw("abc123").unwrap(), 0);
    let err = client.seq_get_raw("a/b").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
}

#[test]
fn rejected_jwt_is_renewed_once_via_the_401_path() {
    let server = CharmServer::start();
    let client = account::connect(&server.client_config(&server.client_dir("a"))).unwrap();
    let good = client.auth().unwrap().jwt.clone();
    // Same claims, broken signature: looks fresh to the client, the server says 401.
    let forged = support::forge_jwt(&good);
    client.debug_replace_jwt(&forged);
    assert_eq!(client.seq_next_raw("s").unwrap(), 0);
    assert_eq!(client.seq_next_raw("s").unwrap(), 1);
    assert!(server.log().contains("-> 401"), "{}", server.log());
    assert_ne!(client.auth().unwrap().jwt, forged);
}

#[test]
fn expired_jwt_is_renewed_before_the_request() {
    let server = CharmServer::start();
    let client = account::connect(&server.client_config(&server.client_dir("a"))).unwrap();
    let good = client.auth().unwrap().jwt.clone();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = good.split('.').next().unwrap();
    let expired = format!("{header}.{}.c2ln", b64.encode(r#"{"sub":"x","exp":1000}"#));
    client.debug_replace_jwt(&expired);
    assert_eq!(client.seq_get_raw("s").unwrap(), 0);
    assert!(!server.log().contains("-> 401"), "{}", server.log());
    assert_ne!(client.auth().unwrap().jwt, expired);
}

#[test]
fn changed_host_key_is_refused() {
    let server = CharmServer::start();
    let dir = server.client_dir("a");
    let config = server.client_config(&dir);
    let pins = config.data_path().unwrap().join("charm_kv_known_hosts");
    std::fs::create_dir_all(pins.parent().unwrap()).unwrap();
    std::fs::write(
        &pins,
        format!(
            "{HOST}:{} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHm1Vi6P5lT5QHixEuipi6eQH4U65pW+1+DjkQutBJZk\n",
            server.ssh_port
        ),
    )
    .unwrap();
    let client = account::connect(&config).unwrap();
    let err = client.auth().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
    assert!(err.to_string().contains("host key"), "{err}");
    assert!(err.to_string().contains("charm_kv_known_hosts"), "{err}");
}

/// Timeouts far above the bound of [`support::returns`]: a call that waited for one of them
/// fails there instead of passing slowly.
fn long_timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(600),
        request: Duration::from_secs(600),
        sync: Duration::from_secs(600),
    }
}

/// The error of a login with `config`, which must fail without waiting for any of its
/// (long) timeouts.
fn auth_fails_at_once(mut config: Config) -> charm_kv::Error {
    config.timeouts = long_timeouts();
    support::returns(move || {
        account::connect(&config)
            .unwrap()
            .auth()
            .map(|_| ())
            .unwrap_err()
    })
}

#[test]
fn server_down_is_a_fast_network_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = auth_fails_at_once(config_for(dir.path(), dead_port(), dead_port()));
    assert_eq!(err.kind(), ErrorKind::Network, "{err}");
}

#[test]
fn nonsense_on_the_ssh_port_is_a_network_error() {
    let dir = tempfile::tempdir().unwrap();
    let port = fake_listener(b"HTTP/1.1 400 Bad Request\r\n\r\nthis is not ssh\r\n");
    let err = auth_fails_at_once(config_for(dir.path(), port, dead_port()));
    assert_eq!(err.kind(), ErrorKind::Network, "{err}");
}

#[test]
fn silent_ssh_port_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind((HOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accepts and holds every connection without a byte in answer, and counts the
    // logins' ones (an SSH client speaks first, or hangs up) until a connection that
    // says '!' instead: connections are accepted in the order they were made.
    let attempts = std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let mut first = [0u8; 1];
            if stream.read_exact(&mut first).is_ok() && first == *b"!" {
                return held.len();
            }
            held.push(stream);
        }
        unreachable!("the listener stopped")
    });
    let client = account::connect(&config_for(dir.path(), port, dead_port())).unwrap();
    let err = client.auth().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Network, "{err}");
    // Cut by the connect bound of `short_timeouts`, the first one to run out.
    assert!(err.to_string().contains("timed out after 2s"), "{err}");
    std::net::TcpStream::connect((HOST, port))
        .unwrap()
        .write_all(b"!")
        .unwrap();
    assert_eq!(attempts.join().unwrap(), 1, "one connection, not retried");
}

#[test]
fn garbage_from_the_http_port_is_reported_by_kind() {
    let server = CharmServer::start();
    let dir = server.client_dir("a");
    // Valid HTTP, broken JSON: the server's answer is corrupt.
    let port = fake_listener(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 9\r\nConnection: close\r\n\r\n{\"seq\":tr",
    );
    let mut config = server.client_config(&dir);
    config.http_port = port;
    let client = account::connect(&shortened(config.clone())).unwrap();
    let err = client.seq_get_raw("s").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");

    // Not HTTP at all: the server cannot be talked to.
    config.http_port = fake_listener(b"SSH-2.0-nope\r\n\x00\x01\x02garbage");
    let client = account::connect(&shortened(config.clone())).unwrap();
    let err = client.seq_get_raw("s").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Network, "{err}");

    // An error status keeps the status and the JSON message.
    config.http_port = fake_listener(
        b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: 29\r\nConnection: close\r\n\r\n{\"message\":\"internal error\"}\n",
    );
    let client = account::connect(&shortened(config.clone())).unwrap();
    match client.seq_get_raw("s").unwrap_err() {
        charm_kv::Error::Server {
            status, message, ..
        } => {
            assert_eq!((status, message.as_str()), (500, "internal error"))
        }
        other => panic!("{other}"),
    }
}

#[test]
fn oversized_json_answer_is_refused() {
    let server = CharmServer::start();
    let mut config = server.client_config(&server.client_dir("a"));
    let mut reply = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{\"seq\":1,\"pad\":\"".to_vec();
    reply.extend(std::iter::repeat_n(b'x', 64 << 10));
    config.http_port = fake_listener(reply.leak());
    let client = account::connect(&shortened(config.clone())).unwrap();
    let err = client.seq_get_raw("s").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    assert!(err.to_string().contains("larger than"), "{err}");
}

/// What a server that prints `reply` for `api-auth` makes of the client.
fn auth_against_fake(reply: &'static [u8]) -> charm_kv::Error {
    let dir = tempfile::tempdir().unwrap();
    let port = support::fake_ssh::start(reply);
    let client = account::connect(&config_for(dir.path(), port, dead_port())).unwrap();
    client.auth().unwrap_err()
}

#[test]
fn empty_api_auth_output_is_an_auth_error() {
    let err = auth_against_fake(b"");
    assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
    assert!(err.to_string().contains("returned no auth"), "{err}");
}

#[test]
fn garbage_api_auth_output_is_an_auth_error() {
    let err = auth_against_fake(b"{\"jwt\": 42, \"charm_id\"");
    assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
    assert!(err.to_string().contains("unreadable auth JSON"), "{err}");
    let err =
        auth_against_fake(b"{\"jwt\":\"not-a-jwt\",\"charm_id\":\"c\",\"http_scheme\":\"http\"}\n");
    assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
    assert!(err.to_string().contains("malformed JWT"), "{err}");
}

#[test]
fn one_client_and_several_clients_work_from_many_threads() {
    let server = CharmServer::start();
    let dir = server.client_dir("a");
    let config = server.client_config(&dir);
    let shared = std::sync::Arc::new(account::connect(&config).unwrap());
    assert_eq!(shared.seq_get_raw("n").unwrap(), 0);
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let shared = shared.clone();
            let config = config.clone();
            std::thread::spawn(move || {
                // A client of its own: SSH sessions from several threads at once.
                let own = account::connect(&config).unwrap();
                let id = own.charm_id().unwrap();
                let seqs: Vec<u64> = (0..5).map(|_| shared.seq_next_raw("n").unwrap()).collect();
                (id, seqs)
            })
        })
        .collect();
    let mut all = Vec::new();
    for thread in threads {
        let (id, seqs) = thread.join().unwrap();
        assert_eq!(id, shared.charm_id().unwrap());
        all.extend(seqs);
    }
    all.sort_unstable();
    assert_eq!(all, (1..=20).collect::<Vec<u64>>());
}

#[test]
fn https_from_the_server_puts_tls_on_the_http_leg() {
    // The server names https in api-auth; what reaches its HTTP port must be a TLS
    // handshake record (0x16, then version 3.x), not a plain request.
    let auth = br#"{"jwt":"eyJhbGciOiJFZERTQSJ9.e30.sig","charm_id":"c","http_scheme":"https"}"#;
    let ssh_port = support::fake_ssh::start(auth);
    let listener = TcpListener::bind((HOST, 0)).unwrap();
    let http_port = listener.local_addr().unwrap().port();
    let (first_bytes, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut head = [0u8; 2];
        let _ = stream.read_exact(&mut head);
        let _ = first_bytes.send(head);
    });
    let dir = tempfile::tempdir().unwrap();
    let client = account::connect(&config_for(dir.path(), ssh_port, http_port)).unwrap();
    let err = client.seq_get_raw("s").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Network, "{err}");
    let head = received.recv_timeout(Duration::from_secs(60)).unwrap();
    assert_eq!(head, [0x16, 0x03], "not a TLS handshake: {err}");
}
