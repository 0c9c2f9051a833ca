//! Cross-implementation tests against Charm's real Go crypto: `tools/go-vectors`
//! runs muesli/sasquatch and jacobsa/crypto/siv at the versions Charm v0.12.6 pins.
//! Every format is checked in both directions (Go writes, Rust reads; Rust writes,
//! Go reads). The Go toolchain is required: without it these tests fail rather
//! than skip, because CI installs Go.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use charm_kv::crypto::lookup::{
    decrypt_lookup_field, decrypt_path, encrypt_lookup_field, encrypt_path,
};
use charm_kv::crypto::sasquatch::{self, Identity, Recipient};
use charm_kv::{EncryptKey, ErrorKind};
use rand::RngCore;
use ssh_key::{LineEnding, PrivateKey};

/// Appendix A test key text: the scrypt password of the Go vectors.
const K: &str =
    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==";

/// Plaintext sizes: empty, around the 64 KiB chunk boundary, and several chunks.
const SIZES: &[usize] = &[0, 1, 65535, 65536, 65537, 3 * 65536 + 777];

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn work_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("crypto_go_interop");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Builds the Go tool once per test binary.
fn go_tool() -> &'static Path {
    static TOOL: OnceLock<PathBuf> = OnceLock::new();
    TOOL.get_or_init(|| {
        let out = work_dir().join("go-vectors");
        let status = Command::new("go")
            .args(["build", "-o"])
            .arg(&out)
            .arg(".")
            .current_dir(manifest_dir().join("tools/go-vectors"))
            .env("GOWORK", "off")
            .status();
        match status {
            Ok(s) if s.success() => out,
            Ok(s) => panic!("building tools/go-vectors failed ({s}); see the go output above"),
            Err(e) => panic!(
                "cannot run `go` ({e}). These interop tests need the Go toolchain (1.21 or \
                 newer) on PATH; they do not skip without it."
            ),
        }
    })
}

fn go(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(go_tool())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting go-vectors");
    let mut pipe = child.stdin.take().unwrap();
    let input = stdin.to_vec();
    // Write from another thread so a large input cannot deadlock against stdout.
    let writer = std::thread::spawn(move || {
        let _ = pipe.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

fn go_ok(args: &[&str], stdin: &[u8]) -> Vec<u8> {
    let out = go(args, stdin);
    assert!(
        out.status.success(),
        "go-vectors {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn go_text(args: &[&str]) -> String {
    String::from_utf8(go_ok(args, b"")).unwrap()
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut v);
    v
}

/// An SSH key written as OpenSSH private key and `.pub` files for the Go side.
struct KeyFiles {
    key: PrivateKey,
    private: PathBuf,
    public: PathBuf,
}

fn write_key(name: &str, key: PrivateKey) -> KeyFiles {
    let private = work_dir().join(name);
    let public = work_dir().join(format!("{name}.pub"));
    std::fs::write(&private, key.to_openssh(LineEnding::LF).unwrap().as_bytes()).unwrap();
    std::fs::write(&public, key.public_key().to_openssh().unwrap() + "\n").unwrap();
    KeyFiles {
        key,
        private,
        public,
    }
}

fn ed25519_key() -> &'static KeyFiles {
    static KEY: OnceLock<KeyFiles> = OnceLock::new();
    KEY.get_or_init(|| {
        let key = PrivateKey::random(&mut rand::rngs::OsRng, ssh_key::Algorithm::Ed25519).unwrap();
        write_key("id_ed25519", key)
    })
}

/// RSA keys: 3072 bits gives a 384-byte body (a multiple of 48: no short body
/// line), 2048 bits a 256-byte one (ends with a short line).
fn rsa_key(bits: usize) -> &'static KeyFiles {
    static RSA_2048: OnceLock<KeyFiles> = OnceLock::new();
    static RSA_3072: OnceLock<KeyFiles> = OnceLock::new();
    let cell = match bits {
        2048 => &RSA_2048,
        3072 => &RSA_3072,
        _ => unreachable!(),
    };
    cell.get_or_init(|| {
        let kp = ssh_key::private::RsaKeypair::random(&mut rand::rngs::OsRng, bits).unwrap();
        write_key(&format!("id_rsa_{bits}"), PrivateKey::from(kp))
    })
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Header lines of a sasquatch file, through the footer.
fn header_lines(file: &[u8]) -> Vec<String> {
    let mut lines = Vec::new();
    let mut rest = file;
    loop {
        let nl = rest.iter().position(|&c| c == b'\n').unwrap();
        let line = String::from_utf8(rest[..nl].to_vec()).unwrap();
        rest = &rest[nl + 1..];
        let done = line.starts_with("--- ");
        lines.push(line);
        if done {
            return lines;
        }
    }
}

/// Checks Go → Rust and Rust → Go for one recipient/identity pair.
fn both_ways(
    label: &str,
    go_encrypt: &[&str],
    go_decrypt: &[&str],
    recipients: &[Recipient],
    identity: &Identity,
) {
    for &size in SIZES {
        let plain = random_bytes(size);

        let go_file = go_ok(go_encrypt, &plain);
        let got = sasquatch::decrypt(&go_file, std::slice::from_ref(identity))
            .unwrap_or_else(|e| panic!("{label}: Rust failed on Go's {size}-byte file: {e}"));
        assert!(got == plain, "{label}: Go → Rust, {size} bytes differ");

        let rust_file = sasquatch::encrypt(&plain, recipients).unwrap();
        // Same layout as Go's: equal lengths (header lines have fixed sizes).
        assert_eq!(rust_file.len(), go_file.len(), "{label}: {size} bytes");
        let got = go_ok(go_decrypt, &rust_file);
        assert!(got == plain, "{label}: Rust → Go, {size} bytes differ");
    }
}

#[test]
fn scrypt_both_ways() {
    both_ways(
        "scrypt",
        &["encrypt-scrypt", K],
        &["decrypt-scrypt", K],
        &[Recipient::scrypt(K.as_bytes())],
        &Identity::scrypt(K.as_bytes()),
    );
}

#[test]
fn scrypt_wrong_password_fails_on_both_sides() {
    let go_file = go_ok(&["encrypt-scrypt", K], b"data");
    let err = sasquatch::decrypt(&go_file, &[Identity::scrypt(b"other")]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Keys);
    let rust_file = sasquatch::encrypt(b"data", &[Recipient::scrypt(K.as_bytes())]).unwrap();
    assert!(!go(&["decrypt-scrypt", "other"], &rust_file)
        .status
        .success());
}

#[test]
fn ssh_ed25519_both_ways() {
    let key = ed25519_key();
    both_ways(
        "ssh-ed25519",
        &["encrypt-ssh", path_str(&key.public)],
        &["decrypt-ssh", path_str(&key.private)],
        &[Recipient::from_public_key(key.key.public_key()).unwrap()],
        &Identity::from_private_key(&key.key).unwrap(),
    );
}

#[test]
fn ssh_ed25519_vector_identity_both_ways() {
    let dir = manifest_dir().join("tests/vectors");
    let private = dir.join("vec_charm_ed25519");
    let public = dir.join("vec_charm_ed25519.pub");
    let id = charm_kv::account::SshIdentity::load(&private).unwrap();
    let identity = Identity::from_private_key(id.private_key()).unwrap();
    let recipient =
        Recipient::from_authorized_key(&std::fs::read_to_string(&public).unwrap()).unwrap();

    // Wrapping an encrypt key, as Charm does (§4.2): 295 bytes either way.
    let go_file = go_ok(&["encrypt-ssh", path_str(&public)], K.as_bytes());
    assert_eq!(go_file.len(), 295);
    assert_eq!(
        sasquatch::decrypt(&go_file, &[identity]).unwrap(),
        K.as_bytes()
    );
    let rust_file = sasquatch::encrypt(K.as_bytes(), &[recipient]).unwrap();
    assert_eq!(rust_file.len(), 295);
    // Same type and tag; the ephemeral share differs.
    assert_eq!(
        header_lines(&rust_file)[1][..26],
        header_lines(&go_file)[1][..26]
    );
    assert_eq!(
        go_ok(&["decrypt-ssh", path_str(&private)], &rust_file),
        K.as_bytes()
    );
}

fn rsa_both_ways(bits: usize) {
    let key = rsa_key(bits);
    both_ways(
        &format!("ssh-rsa-{bits}"),
        &["encrypt-ssh", path_str(&key.public)],
        &["decrypt-ssh", path_str(&key.private)],
        &[Recipient::from_public_key(key.key.public_key()).unwrap()],
        &Identity::from_private_key(&key.key).unwrap(),
    );
}

#[test]
fn ssh_rsa_3072_both_ways_with_full_body_lines() {
    rsa_both_ways(3072);
    let key = rsa_key(3072);
    // Both encoders end a 384-byte body after its 8th full line, with no
    // terminating short or empty line, and the tags agree.
    let go_file = go_ok(&["encrypt-ssh", path_str(&key.public)], b"x");
    let rust_file = sasquatch::encrypt(
        b"x",
        &[Recipient::from_public_key(key.key.public_key()).unwrap()],
    )
    .unwrap();
    for file in [&go_file, &rust_file] {
        let lines = header_lines(file);
        assert_eq!(lines.len(), 11, "{lines:#?}");
        assert!(lines[2..10].iter().all(|l| l.len() == 64));
        assert!(lines[10].starts_with("--- "));
    }
    assert_eq!(header_lines(&go_file)[1], header_lines(&rust_file)[1]);

    // The age habit of an empty line after such a body breaks Go (pitfall P2).
    let mut age_style = rust_file.clone();
    let footer = age_style.windows(5).position(|w| w == b"\n--- ").unwrap() + 1;
    age_style.insert(footer, b'\n');
    assert!(!go(&["decrypt-ssh", path_str(&key.private)], &age_style)
        .status
        .success());
}

#[test]
fn ssh_rsa_2048_both_ways() {
    rsa_both_ways(2048);
}

#[test]
fn several_recipients_both_ways() {
    let ed = ed25519_key();
    let rsa = rsa_key(2048);
    let plain = random_bytes(70_000);

    let go_file = go_ok(
        &["encrypt-ssh", path_str(&ed.public), path_str(&rsa.public)],
        &plain,
    );
    for key in [&ed.key, &rsa.key] {
        let id = Identity::from_private_key(key).unwrap();
        assert!(sasquatch::decrypt(&go_file, &[id]).unwrap() == plain);
    }

    let recipients = [
        Recipient::from_public_key(rsa.key.public_key()).unwrap(),
        Recipient::from_public_key(ed.key.public_key()).unwrap(),
    ];
    let rust_file = sasquatch::encrypt(&plain, &recipients).unwrap();
    for key in [ed, rsa] {
        assert!(go_ok(&["decrypt-ssh", path_str(&key.private)], &rust_file) == plain);
    }
}

#[test]
fn go_rejects_tampered_rust_files_too() {
    let rust_file =
        sasquatch::encrypt(&random_bytes(100), &[Recipient::scrypt(K.as_bytes())]).unwrap();
    let last = rust_file.len() - 1;
    let mut bad = rust_file.clone();
    bad[last] ^= 1;
    assert!(!go(&["decrypt-scrypt", K], &bad).status.success());
    assert!(!go(&["decrypt-scrypt", K], &rust_file[..last])
        .status
        .success());
    assert!(go(&["decrypt-scrypt", K], &rust_file).status.success());
}

fn test_keys() -> Vec<EncryptKey> {
    let mut keys = vec![EncryptKey::from_text("k", K, None).unwrap()];
    keys.extend((0..3).map(|_| EncryptKey::generate()));
    keys
}

const FIELDS: &[&str] = &[
    "charm.sh.kv.user.default",
    "1",
    "42",
    "a",
    "0123456789abcdef",
    "0123456789abcdefX",
    "ünïcödé/not-a-separator-here?",
    "a field with spaces and a very long tail that spans several AES blocks .......",
];

#[test]
fn lookup_fields_match_go_exactly() {
    for key in test_keys() {
        for field in FIELDS {
            let go_hex = go_text(&["lookup", key.text(), field]);
            let rust_hex = encrypt_lookup_field(&key, field).unwrap();
            // SIV is deterministic: the two must be identical.
            assert_eq!(rust_hex, go_hex, "{field}");
            assert_eq!(
                go_text(&["unlookup", key.text(), &rust_hex]),
                *field,
                "Rust → Go"
            );
            assert_eq!(
                decrypt_lookup_field(std::slice::from_ref(&key), &go_hex).unwrap(),
                *field,
                "Go → Rust"
            );
        }
        assert_eq!(go_text(&["lookup", key.text(), ""]), "");
        assert_eq!(encrypt_lookup_field(&key, "").unwrap(), "");
    }
    // A field Go encrypted with another key fails as a key error.
    let keys = test_keys();
    let go_hex = go_text(&["lookup", keys[1].text(), "x"]);
    let err = decrypt_lookup_field(&keys[2..], &go_hex).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Keys);
}

#[test]
fn paths_match_go_exactly() {
    let paths = [
        "/a/b",
        "charm:/a/b",
        "charm:charm:x",
        "a//b",
        "",
        "/",
        "charm.sh.kv.user.default/17",
        "dir/",
    ];
    for key in test_keys() {
        for path in paths {
            let go_enc = go_text(&["encrypt-path", key.text(), path]);
            let rust_enc = encrypt_path(&key, path).unwrap();
            assert_eq!(rust_enc, go_enc, "{path}");
            let plain = path.strip_prefix("charm:").unwrap_or(path);
            assert_eq!(go_text(&["decrypt-path", key.text(), &rust_enc]), plain);
            assert_eq!(
                decrypt_path(std::slice::from_ref(&key), &go_enc).unwrap(),
                plain
            );
        }
    }
}
