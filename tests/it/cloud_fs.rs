//! Encrypt keys and Charm FS against a real `charm serve`, cross-checked with the real
//! Go `charm` client.

use crate::support;

use std::io::Read;
use std::path::{Path, PathBuf};

use charm_kv::account::{self, Account};
use charm_kv::cloud::{CharmClient, DEFAULT_FILE_MODE};
use charm_kv::crypto::sasquatch::into_crate_error;
use charm_kv::{EncryptKey, ErrorKind};
use support::charm_server::CharmServer;

fn client(server: &CharmServer, dir: &Path) -> CharmClient {
    account::connect(&server.client_config(dir)).unwrap()
}

fn read_all(client: &CharmClient, path: &str) -> charm_kv::Result<Vec<u8>> {
    let mut reader = client.fs_read(path)?;
    let mut out = Vec::new();
    reader.read_to_end(&mut out).map_err(into_crate_error)?;
    Ok(out)
}

fn texts(keys: &[EncryptKey]) -> Vec<(String, String)> {
    keys.iter()
        .map(|k| (k.id().to_owned(), k.text().to_owned()))
        .collect()
}

/// The file the server stores for `path` of `client`'s account.
fn server_file(server: &CharmServer, client: &CharmClient, path: &str) -> PathBuf {
    let keys = client.encrypt_keys().unwrap();
    let mut file = server
        .data_dir()
        .join("files")
        .join(client.charm_id().unwrap());
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        file.push(charm_kv::crypto::lookup::encrypt_lookup_field(&keys[0], segment).unwrap());
    }
    file
}

#[test]
fn first_auth_creates_one_key_that_every_client_of_the_account_shares() {
    let server = CharmServer::start();
    let dir = server.client_dir("a");
    let first = client(&server, &dir);
    assert!(first.auth().unwrap().encrypt_keys.is_empty());
    let keys = first.encrypt_keys().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].text().len(), 88);
    assert!(keys[0].created_at().is_some(), "read back from the server");
    assert_eq!(first.auth().unwrap().encrypt_keys.len(), 1);

    // The cache holds the key wrapped for our own SSH key, mode 0600, and records
    // the account's key 0.
    let cache = first.data_path().join("charm_kv_keys.json");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&cache).unwrap()).unwrap();
    assert_eq!(json["keys"][0]["id"], keys[0].id());
    assert_eq!(json["synced_key0"], keys[0].id());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&cache).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // The cache is readable offline with the identity.
    let cached = Account::open(first.config())
        .unwrap()
        .cached_keys()
        .unwrap();
    assert_eq!(texts(&cached), texts(&keys));

    // A second client with the same SSH key and no cache gets the same key.
    std::fs::remove_file(&cache).unwrap();
    let second = client(&server, &dir);
    assert_eq!(second.charm_id().unwrap(), first.charm_id().unwrap());
    assert_eq!(texts(&second.encrypt_keys().unwrap()), texts(&keys));
    assert!(cache.exists());

    // The Go client unwraps the same key: it reads what charm-kv wrote.
    first
        .fs_write("k/check", &b"same key"[..], 8, None)
        .unwrap();
    let out = server.go(&dir, &["fs", "cat", "charm:/k/check"]).stdout;
    assert_eq!(out, b"same key");
}

#[test]
fn a_key_made_in_local_mode_becomes_the_account_key() {
    let server = CharmServer::start();
    let dir = server.client_dir("a");
    let config = server.client_config(&dir);
    // A key made in local mode (offline), cached before the first sync.
    let account = Account::open(&config).unwrap();
    let local = account.local_keys().unwrap().remove(0);

    let client = account.client().unwrap();
    let keys = client.encrypt_keys().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!((keys[0].id(), keys[0].text()), (local.id(), local.text()));
    let auth = client.auth().unwrap();
    assert_eq!(auth.encrypt_keys.len(), 1);
    assert_eq!(auth.encrypt_keys[0].id, local.id());
}

#[test]
fn a_local_key_unknown_to_an_existing_account_is_added_after_its_keys() {
    let server = CharmServer::start();
    let dir = server.client_dir("a");
    let src = dir.join("x");
    std::fs::write(&src, "x").unwrap();
    server.go(&dir, &["fs", "cp", src.to_str().unwrap(), "charm:/x"]);
    let config = server.client_config(&dir);
    // A key made in local mode (offline), cached before the first sync.
    let account = Account::open(&config).unwrap();
    let local = account.local_keys().unwrap().remove(0);

    let client = account.client().unwrap();
    let keys = client.encrypt_keys().unwrap();
    assert_eq!(keys.len(), 2);
    assert_ne!(keys[0].id(), local.id(), "the account's key stays key 0");
    assert_eq!((keys[1].id(), keys[1].text()), (local.id(), local.text()));
    let cached = account.cached_keys().unwrap();
    assert_eq!(texts(&cached), texts(&keys));
    // Both clients still read the account's files.
    assert_eq!(read_all(&client, "x").unwrap(), b"x");
    assert_eq!(server.go(&dir, &["fs", "cat", "charm:/x"]).stdout, b"x");
}

#[test]
fn a_key_created_by_the_go_client_is_used() {
    let server = CharmServer::start();
    let dir = server.client_dir("go");
    let src = dir.join("hello.txt");
    std::fs::write(&src, "hello from go\n").unwrap();
    server.go(
        &dir,
        &["fs", "cp", src.to_str().unwrap(), "charm:/docs/hello.txt"],
    );

    let client = client(&server, &dir);
    assert_eq!(client.encrypt_keys().unwrap().len(), 1);
    assert_eq!(
        read_all(&client, "docs/hello.txt").unwrap(),
        b"hello from go\n"
    );
    let listing = client.fs_list("/docs").unwrap().unwrap();
    assert_eq!(listing.len(), 1);
    assert_eq!(listing[0].name, "hello.txt");
    assert!(!listing[0].is_dir);
    assert_eq!(listing[0].mode & 0o777, 0o644);
    let root = client.fs_list("").unwrap().unwrap();
    assert_eq!(root.len(), 1);
    assert_eq!((root[0].name.as_str(), root[0].is_dir), ("docs", true));
    assert!(client.fs_list("nothing/here").unwrap().is_none());
}

#[test]
fn files_written_by_charm_kv_are_read_by_the_go_client_and_back() {
    let server = CharmServer::start();
    let dir = server.client_dir("a");
    let client = client(&server, &dir);
    let big: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let files: [(&str, &[u8]); 3] = [
        ("db/empty", b""),
        ("db/small.txt", b"small file\n"),
        ("db/big.bin", &big),
    ];
    for (path, data) in files {
        client
            .fs_write(path, data, data.len() as u64, None)
            .unwrap();
    }

    let ls = String::from_utf8(server.go(&dir, &["fs", "ls", "charm:/db"]).stdout).unwrap();
    for name in ["empty", "small.txt", "big.bin"] {
        assert!(
            ls.lines().any(|l| l.ends_with(&format!(" {name}"))),
            "{name}: {ls}"
        );
    }
    assert!(ls.contains("-rw-rw----"), "default mode 0660: {ls}");
    for (path, data) in files {
        let out = server
            .go(&dir, &["fs", "cat", &format!("charm:/{path}")])
            .stdout;
        assert_eq!(out, data, "{path}");
        assert_eq!(read_all(&client, path).unwrap(), data, "{path}");
    }

    let mut listing = client.fs_list("db").unwrap().unwrap();
    listing.sort_by(|a, b| a.name.cmp(&b.name));
    let names: Vec<_> = listing.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["big.bin", "empty", "small.txt"]);
    assert!(listing.iter().all(|f| f.mode == DEFAULT_FILE_MODE));
    let reader = client.fs_read("db/small.txt").unwrap();
    assert_eq!(reader.mode(), Some(DEFAULT_FILE_MODE));
    assert_eq!(reader.encrypted_len(), Some(11 + 171));

    // Explicit mode, overwrite.
    client
        .fs_write("db/small.txt", &b"v2"[..], 2, Some(0o600))
        .unwrap();
    assert_eq!(read_all(&client, "db/small.txt").unwrap(), b"v2");
    assert_eq!(client.fs_read("db/small.txt").unwrap().mode(), Some(0o600));
    let err = client.fs_write("db/x", &b""[..], 0, Some(0)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    // A reader that does not hold the announced length is refused, nothing stored.
    let err = client
        .fs_write("db/short", &b"abc"[..], 10, None)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    assert!(!client
        .fs_list("db")
        .unwrap()
        .unwrap()
        .iter()
        .any(|f| f.name == "short"));

    // fs_write_file streams a local file.
    let local = dir.join("local.bin");
    std::fs::write(&local, &big[..70_000]).unwrap();
    client.fs_write_file("db/from-file", &local, None).unwrap();
    let out = server
        .go(&dir, &["fs", "cat", "charm:/db/from-file"])
        .stdout;
    assert_eq!(out, &big[..70_000]);
}

#[test]
fn remove_deletes_files_and_refuses_the_root() {
    let server = CharmServer::start();
    let dir = server.client_dir("a");
    let client = client(&server, &dir);
    client.fs_write("a/one", &b"1"[..], 1, None).unwrap();
    client.fs_write("a/two", &b"2"[..], 1, None).unwrap();
    client.fs_write("b", &b"3"[..], 1, None).unwrap();

    for root in ["", "/", "//", "charm:", "charm:/"] {
        let err = client.fs_remove(root).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{root:?}");
    }
    assert_eq!(client.fs_list("").unwrap().unwrap().len(), 2);

    client.fs_remove("a/one").unwrap();
    let names: Vec<_> = client
        .fs_list("a")
        .unwrap()
        .unwrap()
        .into_iter()
        .map(|f| f.name)
        .collect();
    assert_eq!(names, ["two"]);
    client.fs_remove("a").unwrap();
    assert!(client.fs_list("a").unwrap().is_none());
    client.fs_remove("a").unwrap(); // missing: not an error
    match client.fs_read("a/two").unwrap_err() {
        charm_kv::Error::Server { status: 404, .. } => {}
        other => panic!("{other}"),
    }
    let go = server
        .go_client(&dir)
        .args(["fs", "cat", "charm:/a/two"])
        .output()
        .unwrap();
    assert!(!go.status.success());
    // Files removed by the Go client disappear for charm-kv too.
    server.go(&dir, &["fs", "rm", "charm:/b"]);
    assert!(client.fs_list("").unwrap().unwrap_or_default().is_empty());
}

#[test]
fn files_of_another_key_are_a_keys_error_and_tampered_files_are_corrupt() {
    let server = CharmServer::start();
    let alice = client(&server, &server.client_dir("alice"));
    let bob = client(&server, &server.client_dir("bob"));
    alice
        .fs_write("f", &b"alice's secret"[..], 14, None)
        .unwrap();
    bob.fs_write("f", &b"bob's own file"[..], 14, None).unwrap();

    // Put Alice's ciphertext where Bob's file is: Bob's keys do not open it.
    let alice_file = server_file(&server, &alice, "f");
    let bob_file = server_file(&server, &bob, "f");
    let original = std::fs::read(&bob_file).unwrap();
    std::fs::copy(&alice_file, &bob_file).unwrap();
    let err = read_all(&bob, "f").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Keys, "{err}");

    // A flipped payload byte: the header opens, the chunk does not authenticate.
    let mut tampered = original.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 0x01;
    std::fs::write(&bob_file, &tampered).unwrap();
    let err = read_all(&bob, "f").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");

    // A flipped header MAC.
    let mut tampered = original.clone();
    let mac = tampered.windows(4).position(|w| w == b"--- ").unwrap() + 5;
    tampered[mac] = if tampered[mac] == b'A' { b'B' } else { b'A' };
    std::fs::write(&bob_file, &tampered).unwrap();
    let err = read_all(&bob, "f").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");

    // Truncated.
    std::fs::write(&bob_file, &original[..original.len() - 5]).unwrap();
    let err = read_all(&bob, "f").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");

    std::fs::write(&bob_file, &original).unwrap();
    assert_eq!(read_all(&bob, "f").unwrap(), b"bob's own file");
}

#[test]
fn seq_names_are_encrypted_like_the_go_kv_client() {
    let server = CharmServer::start();
    let client = client(&server, &server.client_dir("a"));
    assert_eq!(client.seq_get("charm.sh.kv.user.default").unwrap(), 0);
    assert_eq!(client.seq_next("charm.sh.kv.user.default").unwrap(), 1);
    let key0 = client.encrypt_keys().unwrap().remove(0);
    let wire =
        charm_kv::crypto::lookup::encrypt_lookup_field(&key0, "charm.sh.kv.user.default").unwrap();
    assert_eq!(client.seq_get_raw(&wire).unwrap(), 1);
    assert_eq!(client.seq_get("other-db").unwrap(), 0);
    assert_eq!(
        client.seq_get("").unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
}

#[test]
fn uploads_renew_a_rejected_jwt_when_they_can_replay() {
    let server = CharmServer::start();
    let dir = server.client_dir("a");
    let client = client(&server, &dir);
    client.encrypt_keys().unwrap();
    let forge = |client: &CharmClient| {
        client.debug_replace_jwt(&support::forge_jwt(&client.auth().unwrap().jwt));
    };

    // From a file: retried with a new JWT.
    let local = dir.join("f");
    std::fs::write(&local, "file body").unwrap();
    forge(&client);
    client.fs_write_file("up/file", &local, None).unwrap();
    assert_eq!(read_all(&client, "up/file").unwrap(), b"file body");

    // From a one-shot reader: an auth error, and the next call works again.
    forge(&client);
    let err = client
        .fs_write("up/reader", &b"x"[..], 1, None)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
    client.fs_write("up/reader", &b"x"[..], 1, None).unwrap();
    assert_eq!(read_all(&client, "up/reader").unwrap(), b"x");
}
