//! Unit tests: the Go-generated vectors of `tests/vectors/` (see its README),
//! round trips, tampering, truncation and hostile headers. Cross-checks against the
//! Go library itself live in `tests/it/crypto_go_interop.rs`.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use base64::Engine as _;
use chacha20poly1305::aead::Aead;
use rand::RngCore;

use super::header::{self, Stanza};
use super::stream::{self, ChunkNonce};
use super::*;
use crate::ErrorKind;

/// The Appendix A test key text (base64 of bytes 0x00..0x3F): the scrypt password
/// of every vec_scrypt*.bin file and the plaintext of vec_ed25519.bin.
const K: &str =
    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==";

/// The whole vec_scrypt.bin file, base64 (tests/vectors/README.md).
const SCRYPT_VECTOR_B64: &str = "Y2hhcm0uc2gvdjEKLT4gc2NyeXB0IHQwTk8yNUNNQk1WZFlmei9ybjFvdkEgOAppSHhKWUJTV3Vzdjl0aWNGcW9RUXFmVjlML2dDMFY4SnM1b2tWU29HVU9VCi0tLSBueHJZT0NZQVh0MUU1WDFEdFZ3cFlVdVBOc0hyM1NWM2p0bFBCd21rYmpZChn3qJ2CBB4Uw6+QTghIFy8MZqNAR7P83+E7LOpdap9DDQ+ugwxNL3blGF8=";

/// vec_ed25519.bin as the `key` field of an encrypt key (standard base64).
const ED25519_VECTOR_B64: &str = concat!(
    "Y2hhcm0uc2gvdjEKLT4gc3NoLWVkMjU1MTkgZVZrQ0tIbmM1UmcgOExWeVE2TTlXNzV1cjdtK1V3",
    "M012OUY3OWFyYzdGQnZLcmlNZEQ4ekh6YwpCSFlhUXpXZU51OFhWcUdNWFFFaVg2RWZEMndzejF6",
    "SGczVWRYZkg2ZlJZCi0tLSBheDlyb2RKTkx0YVRZOEp6dVhLYmhHOFNiTlVlNXVKSkdLb0ZFMGhu",
    "UkdvCiFc0C0hX+VySnfoklb7KZjAIuAL3cjR05/lqfq1/xTMIMu67IXKsAooCYk0BaKaoXZ4zxuS",
    "tAn+GaIc7H0/Y93xGqzliOfpGS7bny9W+naP73lsNGVIMqSnw7aikiT3uDT6+K4xBK2x8ylhwM7i",
    "fyOFXZpHe8p3iw==",
);

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

fn vector(name: &str) -> Vec<u8> {
    let path = vectors_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

fn vector_identity() -> Identity {
    let text = std::fs::read_to_string(vectors_dir().join("vec_charm_ed25519")).unwrap();
    let key = crate::crypto::openssh::parse_private_key(&text).unwrap();
    Identity::from_private_key(&key).unwrap()
}

fn ed25519_key() -> ssh_key::PrivateKey {
    ssh_key::PrivateKey::random(&mut rand::rngs::OsRng, ssh_key::Algorithm::Ed25519).unwrap()
}

/// RSA keys are slow to make; each size is generated once per test binary.
fn rsa_key(bits: usize) -> &'static ssh_key::PrivateKey {
    static RSA_2048: OnceLock<ssh_key::PrivateKey> = OnceLock::new();
    static RSA_3072: OnceLock<ssh_key::PrivateKey> = OnceLock::new();
    let cell = match bits {
        2048 => &RSA_2048,
        3072 => &RSA_3072,
        _ => unreachable!("no cached RSA key of {bits} bits"),
    };
    cell.get_or_init(|| {
        let kp = ssh_key::private::RsaKeypair::random(&mut rand::rngs::OsRng, bits).unwrap();
        ssh_key::PrivateKey::from(kp)
    })
}

fn recipient_for(key: &ssh_key::PrivateKey) -> Recipient {
    Recipient::from_public_key(key.public_key()).unwrap()
}

fn identity_for(key: &ssh_key::PrivateKey) -> Identity {
    Identity::from_private_key(key).unwrap()
}

/// One (name, recipient, matching identity, non-matching identity) per type.
fn all_types() -> Vec<(&'static str, Recipient, Identity, Identity)> {
    let ed = ed25519_key();
    let rsa = rsa_key(2048);
    vec![
        (
            "scrypt",
            Recipient::scrypt(K.as_bytes()),
            Identity::scrypt(K.as_bytes()),
            Identity::scrypt(b"not the password"),
        ),
        (
            "ssh-ed25519",
            recipient_for(&ed),
            identity_for(&ed),
            identity_for(&ed25519_key()),
        ),
        (
            "ssh-rsa",
            recipient_for(rsa),
            identity_for(rsa),
            identity_for(rsa_key(3072)),
        ),
    ]
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut v);
    v
}

fn kind<T: std::fmt::Debug>(r: Result<T>) -> ErrorKind {
    r.expect_err("expected an error").kind()
}

/// Length of the header, through the footer's LF.
fn header_len(file: &[u8]) -> usize {
    let footer = file
        .windows(5)
        .position(|w| w == b"\n--- ")
        .expect("footer")
        + 1;
    footer + file[footer..].iter().position(|&c| c == b'\n').unwrap() + 1
}

fn header_lines(file: &[u8]) -> Vec<String> {
    String::from_utf8(file[..header_len(file)].to_vec())
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Expected file size: header, 16-byte nonce, the plaintext, one tag per chunk,
/// and exactly one chunk for an empty plaintext (Go never adds an empty chunk
/// after full ones).
fn expected_len(header: usize, plaintext: usize) -> usize {
    let chunks = plaintext.div_ceil(CHUNK_SIZE).max(1);
    header + 16 + plaintext + 16 * chunks
}

/// Builds a file by hand: a header for `stanzas` MAC'd with `file_key`, then
/// `chunks` sealed with the given last flags, to reach states Go never writes.
fn craft(file_key: &FileKey, stanzas: &[Stanza], chunks: &[(&[u8], bool)]) -> Vec<u8> {
    let mut out = header::encode_header(stanzas, file_key);
    let nonce = random_bytes(16);
    out.extend_from_slice(&nonce);
    let cipher = stream::payload_cipher(file_key, &nonce);
    for (i, (plain, last)) in chunks.iter().enumerate() {
        let n = ChunkNonce { counter: i as u64 }.nonce(*last);
        out.extend(cipher.encrypt(&n, *plain).unwrap());
    }
    out
}

fn scrypt_stanza(file_key: &FileKey, log_n: u8) -> Stanza {
    ScryptRecipient {
        password: Zeroizing::new(K.as_bytes().to_vec()),
        log_n,
    }
    .wrap(file_key)
    .unwrap()
}

fn random_file_key() -> FileKey {
    let mut k = FileKey::default();
    rand::rngs::OsRng.fill_bytes(k.as_mut_slice());
    k
}

fn k_identity() -> Vec<Identity> {
    vec![Identity::scrypt(K.as_bytes())]
}

// ---- Vectors from the real Go library ----

#[test]
fn scrypt_vector_decrypts_to_hello_world() {
    let file = vector("vec_scrypt.bin");
    assert_eq!(
        file,
        base64::engine::general_purpose::STANDARD
            .decode(SCRYPT_VECTOR_B64)
            .unwrap()
    );
    assert_eq!(file.len(), 182);
    assert_eq!(decrypt(&file, &k_identity()).unwrap(), b"hello world");
}

#[test]
fn scrypt_vector_intermediate_values() {
    let file = vector("vec_scrypt.bin");
    let (hdr, rest) = header::read_header(&mut &file[..]).unwrap();
    assert_eq!(hdr.stanzas.len(), 1);
    let stanza = &hdr.stanzas[0];
    assert_eq!(stanza.kind, "scrypt");
    assert_eq!(stanza.args, ["t0NO25CMBMVdYfz/rn1ovA", "8"]);
    let salt = header::b64_decode(stanza.args[0].as_bytes()).unwrap();
    assert_eq!(salt, unhex("b7434edb908c04c55d61fcffae7d68bc"));
    assert_eq!(
        scrypt::wrap_key(K.as_bytes(), &salt, 8).unwrap().as_slice(),
        unhex("7f7dc992c77cf7fef70aef0d576af381e49beb50754cd6732075a6dd9e881865")
    );
    let file_key = Identity::scrypt(K.as_bytes())
        .unwrap(stanza)
        .unwrap()
        .expect("the password matches");
    assert_eq!(
        file_key.as_slice(),
        unhex("70f47e7a98352d1489820a42ca155c10")
    );
    assert_eq!(
        header::hmac_key(&file_key).as_slice(),
        unhex("51d89194434fe0b2769f2d35fdd47173646fe28a2efaaff18213cb50cc36c202")
    );
    assert_eq!(
        hdr.mac,
        unhex("9f1ad83826005edd44e57d43b55c29614b8f36c1ebdd25778ed94f0709a46e36")
    );
    // The MAC covers bytes 0..=93, through the footer's dashes.
    assert_eq!(hdr.mac_input, file[..94]);
    hdr.verify_mac(&file_key).unwrap();
    assert_eq!(rest, file[139..]);
    let nonce = &rest[..16];
    assert_eq!(nonce, unhex("19f7a89d82041e14c3af904e0848172f"));
    assert_eq!(
        stream::payload_key(&file_key, nonce).as_slice(),
        unhex("3a33dcefc2fc8220df4d867e98403f8fe5f788abc97591e48adb30dd5fdddbe7")
    );
    // Re-encoding the parsed header with the file key gives Go's bytes exactly.
    assert_eq!(header::encode_header(&hdr.stanzas, &file_key), file[..139]);
}

#[test]
fn scrypt_vectors_at_chunk_boundaries() {
    let empty = vector("vec_scrypt_empty.bin");
    assert_eq!(empty.len(), 171);
    assert_eq!(decrypt(&empty, &k_identity()).unwrap(), b"");

    // One full chunk that is also the last: Go writes no extra empty chunk.
    let full = vector("vec_scrypt_65536.bin");
    assert_eq!(full.len(), expected_len(header_len(&full), 65536));
    assert_eq!(decrypt(&full, &k_identity()).unwrap(), vec![b'x'; 65536]);

    // A full non-last chunk and a 1-byte last chunk.
    let over = vector("vec_scrypt_65537.bin");
    assert_eq!(over.len(), expected_len(header_len(&over), 65537));
    assert_eq!(decrypt(&over, &k_identity()).unwrap(), vec![b'x'; 65537]);
}

#[test]
fn ed25519_vector_decrypts_with_the_identity_file() {
    let file = vector("vec_ed25519.bin");
    assert_eq!(file.len(), 295);
    assert_eq!(
        file,
        base64::engine::general_purpose::STANDARD
            .decode(ED25519_VECTOR_B64)
            .unwrap()
    );
    assert_eq!(decrypt(&file, &[vector_identity()]).unwrap(), K.as_bytes());
    // Identities that do not match are skipped.
    let ids = [
        Identity::scrypt(K.as_bytes()),
        identity_for(&ed25519_key()),
        vector_identity(),
    ];
    assert_eq!(decrypt(&file, &ids).unwrap(), K.as_bytes());
}

#[test]
fn ed25519_vector_intermediate_values() {
    let mut public = [0u8; 32];
    public.copy_from_slice(&unhex(
        "79b5562e8fe654f94078b112e8a98ba7901f853ae695bed7e0e3910bad049664",
    ));
    let wire = ssh_ed25519::wire(&public);
    assert_eq!(
        wire,
        unhex("0000000b7373682d6564323535313900000020 79b5562e8fe654f94078b112e8a98ba7901f853ae695bed7e0e3910bad049664")
    );
    assert_eq!(ssh_tag(&wire), "eVkCKHnc5Rg");
    assert_eq!(
        ssh_ed25519::montgomery_u(&public).unwrap().as_slice(),
        unhex("4a3807d064d077181cc070989e76891d20dca5559548dc2c77c1a50273882b38")
    );
    let mut seed = [0u8; 32];
    for (i, b) in seed.iter_mut().enumerate() {
        *b = i as u8 + 1;
    }
    assert_eq!(
        ssh_ed25519::x25519_secret(&seed).as_slice(),
        unhex("77788f1a0cea001a2631dae5d05dbd062008d5b30f50b9e29beb2a7822289004")
    );

    let file = vector("vec_ed25519.bin");
    let (hdr, rest) = header::read_header(&mut &file[..]).unwrap();
    assert_eq!(hdr.stanzas[0].args[0], "eVkCKHnc5Rg");
    assert_eq!(
        header::b64_decode(hdr.stanzas[0].args[1].as_bytes()).unwrap(),
        unhex("f0b57243a33d5bbe6eafb9be530dccbfd17bf5aadcec506f2ab88c743f331f37")
    );
    let file_key = vector_identity()
        .unwrap(&hdr.stanzas[0])
        .unwrap()
        .expect("tag matches");
    assert_eq!(
        file_key.as_slice(),
        unhex("c6be589da9010efb70790d488edac004")
    );
    assert_eq!(rest[..16], unhex("215cd02d215fe5724a77e89256fb2998"));
}

#[test]
fn ed25519_recipient_from_pub_file_matches_vector_identity() {
    let line = std::fs::read_to_string(vectors_dir().join("vec_charm_ed25519.pub")).unwrap();
    let recipient = Recipient::from_authorized_key(&line).unwrap();
    let file = encrypt(b"secret", &[recipient]).unwrap();
    let lines = header_lines(&file);
    let args: Vec<&str> = lines[1].split(' ').collect();
    assert_eq!(args[..3], ["->", "ssh-ed25519", "eVkCKHnc5Rg"]);
    assert_eq!(args[3].len(), 43);
    assert_eq!(lines[2].len(), 43);
    assert_eq!(decrypt(&file, &[vector_identity()]).unwrap(), b"secret");
}

// ---- Round trips and layout ----

#[test]
fn round_trip_all_types_and_sizes() {
    for (name, recipient, identity, _) in all_types() {
        for size in [0, 1, 65535, 65536, 65537, 3 * 65536] {
            let plain = random_bytes(size);
            let file = encrypt(&plain, std::slice::from_ref(&recipient)).unwrap();
            assert_eq!(
                file.len(),
                expected_len(header_len(&file), size),
                "{name} {size}"
            );
            assert_eq!(
                decrypt(&file, std::slice::from_ref(&identity)).unwrap(),
                plain,
                "{name} {size}"
            );
        }
    }
}

#[test]
fn streaming_with_uneven_writes_and_small_reads() {
    let plain = random_bytes(3 * 65536 + 12345);
    let mut enc = encryptor(Vec::new(), &[Recipient::scrypt(K.as_bytes())]).unwrap();
    let mut rest = &plain[..];
    for step in [1, 7, 65535, 65536, 65537, 1].iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let n = (*step).min(rest.len());
        enc.write_all(&rest[..n]).unwrap();
        enc.flush().unwrap();
        rest = &rest[n..];
    }
    let file = enc.finish().unwrap();
    assert_eq!(file.len(), expected_len(header_len(&file), plain.len()));

    let mut dec = decryptor(&file[..], &k_identity()).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 1000];
    loop {
        let n = dec.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    assert_eq!(out, plain);
    // The end is sticky.
    assert_eq!(dec.read(&mut buf).unwrap(), 0);
}

#[test]
fn empty_writes_do_not_emit_chunks() {
    let mut enc = encryptor(Vec::new(), &[Recipient::scrypt(K.as_bytes())]).unwrap();
    enc.write_all(&[0u8; 65536]).unwrap();
    assert_eq!(enc.write(&[]).unwrap(), 0);
    let file = enc.finish().unwrap();
    assert_eq!(file.len(), expected_len(header_len(&file), 65536));
    assert_eq!(decrypt(&file, &k_identity()).unwrap(), vec![0u8; 65536]);
}

#[test]
fn several_ssh_recipients() {
    let ed1 = ed25519_key();
    let ed2 = ed25519_key();
    let rsa = rsa_key(2048);
    let recipients = [recipient_for(&ed1), recipient_for(rsa), recipient_for(&ed2)];
    let file = encrypt(b"shared", &recipients).unwrap();
    for key in [&ed1, rsa, &ed2] {
        assert_eq!(decrypt(&file, &[identity_for(key)]).unwrap(), b"shared");
    }
    let stranger = identity_for(&ed25519_key());
    assert_eq!(
        decrypt(&file, &[stranger.clone(), identity_for(&ed2)]).unwrap(),
        b"shared"
    );
    assert_eq!(kind(decrypt(&file, &[stranger])), ErrorKind::Keys);
}

#[test]
fn header_layout_matches_go() {
    let file = encrypt(b"x", &[Recipient::scrypt(K.as_bytes())]).unwrap();
    let lines = header_lines(&file);
    assert_eq!(lines[0], "charm.sh/v1");
    let args: Vec<&str> = lines[1].split(' ').collect();
    assert_eq!(args.len(), 4);
    assert_eq!(args[..2], ["->", "scrypt"]);
    assert_eq!(args[2].len(), 22);
    assert_eq!(args[3], "8");
    assert_eq!(lines[2].len(), 43);
    assert!(lines[3].starts_with("--- ") && lines[3].len() == 47);
    assert_eq!(lines.len(), 4);

    // RSA-3072: 384-byte body = exactly 8 full lines and no terminating line.
    let file = encrypt(b"x", &[recipient_for(rsa_key(3072))]).unwrap();
    let lines = header_lines(&file);
    assert_eq!(lines.len(), 1 + 1 + 8 + 1, "{lines:#?}");
    let args: Vec<&str> = lines[1].split(' ').collect();
    assert_eq!(args.len(), 3);
    assert_eq!(args[1], "ssh-rsa");
    assert_eq!(args[2].len(), 11);
    assert!(lines[2..10].iter().all(|l| l.len() == 64));
    assert!(lines[10].starts_with("--- "));
    assert_eq!(
        decrypt(&file, &[identity_for(rsa_key(3072))]).unwrap(),
        b"x"
    );

    // RSA-2048: 256-byte body = 5 full lines and a 22-character line.
    let file = encrypt(b"x", &[recipient_for(rsa_key(2048))]).unwrap();
    let lines = header_lines(&file);
    assert_eq!(lines.len(), 1 + 1 + 6 + 1);
    assert!(lines[2..7].iter().all(|l| l.len() == 64));
    assert_eq!(lines[7].len(), 22);
}

// ---- Wrong keys ----

#[test]
fn wrong_identity_is_a_keys_error() {
    for (name, recipient, _, wrong) in all_types() {
        let file = encrypt(b"data", &[recipient]).unwrap();
        assert_eq!(kind(decrypt(&file, &[wrong])), ErrorKind::Keys, "{name}");
        assert_eq!(kind(decrypt(&file, &[])), ErrorKind::Keys, "{name}");
    }
    // Identities of another type never match.
    let file = vector("vec_ed25519.bin");
    assert_eq!(kind(decrypt(&file, &k_identity())), ErrorKind::Keys);
    let file = vector("vec_scrypt.bin");
    assert_eq!(kind(decrypt(&file, &[vector_identity()])), ErrorKind::Keys);
}

fn with_payload(header: &str) -> Vec<u8> {
    let mut v = header.as_bytes().to_vec();
    v.extend_from_slice(&[0x55; 48]);
    v
}

const FAKE_MAC: &str = "--- AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n";

#[test]
fn unknown_stanza_types_only_is_a_keys_error() {
    let h = format!("charm.sh/v1\n-> X25519 AAAA\nAAAA\n-> piv-p256 abc def\n{FAKE_MAC}");
    for ids in [k_identity(), vec![vector_identity()]] {
        assert_eq!(kind(decrypt(&with_payload(&h), &ids)), ErrorKind::Keys);
    }
    // Exactly the stanza limit is still parsed.
    let h = format!(
        "charm.sh/v1\n{}{FAKE_MAC}",
        "-> other\n".repeat(MAX_STANZAS)
    );
    assert_eq!(
        kind(decrypt(&with_payload(&h), &k_identity())),
        ErrorKind::Keys
    );
}

// ---- Tampering, truncation, extension ----

/// Positions of the header that only the parser or MAC can reject: the intro,
/// the line feeds, the stanza prefix and the whole footer line.
fn must_be_corrupt(file: &[u8], i: usize) -> bool {
    let hl = header_len(file);
    let footer = file[..hl - 1].iter().rposition(|&c| c == b'\n').unwrap() + 1;
    i < 12 || file[i] == b'\n' || i >= footer || file[i - 1] == b'\n' && file[i] == b'-'
}

#[test]
fn every_byte_flip_of_the_scrypt_vector_fails() {
    let file = vector("vec_scrypt.bin");
    let hl = header_len(&file);
    for i in 0..file.len() {
        for mask in [0x01u8, 0x80] {
            let mut bad = file.clone();
            bad[i] ^= mask;
            let k = kind(decrypt(&bad, &k_identity()));
            // A changed salt, work factor, type or wrapped key is, for scrypt,
            // indistinguishable from a wrong password. Everything else, and any
            // non-ASCII byte in the header, is corruption.
            if mask == 0x80 || i >= hl || must_be_corrupt(&file, i) {
                assert_eq!(k, ErrorKind::Corrupt, "byte {i} ^ {mask:#x}");
            } else {
                assert!(
                    matches!(k, ErrorKind::Corrupt | ErrorKind::Keys),
                    "byte {i}: {k:?}"
                );
            }
        }
    }
}

#[test]
fn every_byte_flip_of_the_ed25519_vector_fails() {
    let file = vector("vec_ed25519.bin");
    let lines = header_lines(&file);
    // The type, the space after it and the 11-character tag: changing those means
    // "not for this key"; changing the share or body after a tag match is a hard
    // error.
    let tag_start = 12 + "-> ".len();
    let tag_end = 12 + "-> ssh-ed25519 eVkCKHnc5Rg".len();
    assert!(lines[1].starts_with("-> ssh-ed25519 eVkCKHnc5Rg "));
    for i in 0..file.len() {
        let mut bad = file.clone();
        bad[i] ^= 0x01;
        let k = kind(decrypt(&bad, &[vector_identity()]));
        if (tag_start..tag_end).contains(&i) {
            assert_eq!(k, ErrorKind::Keys, "byte {i}");
        } else {
            assert_eq!(k, ErrorKind::Corrupt, "byte {i}");
        }
    }
}

/// A file of three chunks: full, full, 100 bytes.
fn three_chunk_file() -> (Vec<u8>, Vec<u8>, usize) {
    let plain = random_bytes(2 * 65536 + 100);
    let file = encrypt(&plain, &[Recipient::scrypt(K.as_bytes())]).unwrap();
    let payload = header_len(&file) + 16;
    assert_eq!(file.len(), payload + 2 * (65536 + 16) + 116);
    (plain, file, payload)
}

/// Reads with a small buffer until an error; returns what was handed out.
fn read_until_error(file: &[u8]) -> (Vec<u8>, Error) {
    let mut dec = decryptor(file, &k_identity()).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match dec.read(&mut buf) {
            Ok(0) => panic!("stream ended without an error"),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => {
                // Errors are sticky.
                assert!(dec.read(&mut buf).is_err());
                return (out, into_crate_error(e));
            }
        }
    }
}

#[test]
fn tampered_chunks_are_corrupt_and_never_released() {
    let (plain, file, payload) = three_chunk_file();
    let chunk = 65536 + 16;
    // Nonce byte, then a byte in each chunk, including each tag's last byte.
    let cases = [
        (payload - 1, 0),
        (payload + 5, 0),
        (payload + chunk - 1, 0),
        (payload + chunk + 70000 % chunk, 65536),
        (payload + 2 * chunk, 2 * 65536),
        (file.len() - 1, 2 * 65536),
    ];
    for (pos, released) in cases {
        let mut bad = file.clone();
        bad[pos] ^= 0x04;
        assert_eq!(
            kind(decrypt(&bad, &k_identity())),
            ErrorKind::Corrupt,
            "{pos}"
        );
        let (out, err) = read_until_error(&bad);
        assert_eq!(err.kind(), ErrorKind::Corrupt);
        // Only chunks before the tampered one come out, and they are genuine.
        assert_eq!(out.len(), released, "{pos}");
        assert_eq!(out, plain[..released]);
    }
}

#[test]
fn truncation_is_corrupt_everywhere() {
    let (plain, file, payload) = three_chunk_file();
    let chunk = 65536 + 16;
    let hl = header_len(&file);
    let cuts = [
        0,
        5,
        12,
        40,
        hl - 1,
        hl,
        payload - 1,
        payload,
        payload + 1,
        payload + 16,
        payload + chunk - 1,
        payload + chunk,
        payload + 2 * chunk,
        payload + 2 * chunk + 1,
        file.len() - 16,
        file.len() - 1,
    ];
    for cut in cuts {
        let r = decrypt(&file[..cut], &k_identity());
        assert_eq!(kind(r), ErrorKind::Corrupt, "cut at {cut}");
    }
    // Cut at a chunk boundary: the full chunks before it are released, then the
    // missing final chunk is reported.
    let (out, err) = read_until_error(&file[..payload + 2 * chunk]);
    assert_eq!(err.kind(), ErrorKind::Corrupt);
    assert_eq!(out, plain[..2 * 65536]);

    let full = vector("vec_scrypt_65536.bin");
    for cut in [full.len() - 1, full.len() - 16, full.len() - 65552] {
        assert_eq!(
            kind(decrypt(&full[..cut], &k_identity())),
            ErrorKind::Corrupt
        );
    }
}

#[test]
fn appended_or_reordered_data_is_corrupt() {
    let (_, file, payload) = three_chunk_file();
    let chunk = 65536 + 16;
    for extra in [1, 16, 65552] {
        let mut long = file.clone();
        long.extend(std::iter::repeat_n(0u8, extra));
        assert_eq!(kind(decrypt(&long, &k_identity())), ErrorKind::Corrupt);
    }
    // After a full final chunk, trailing bytes are rejected too (Go ignores them).
    let mut full = vector("vec_scrypt_65536.bin");
    full.push(0);
    assert_eq!(kind(decrypt(&full, &k_identity())), ErrorKind::Corrupt);
    // Swapped chunks.
    let mut swapped = file.clone();
    let (a, b) = swapped[payload..payload + 2 * chunk].split_at_mut(chunk);
    a.swap_with_slice(b);
    assert_eq!(kind(decrypt(&swapped, &k_identity())), ErrorKind::Corrupt);
}

#[test]
fn crafted_stream_edge_cases() {
    let fk = random_file_key();
    let stanzas = [scrypt_stanza(&fk, 8)];
    let full = vec![7u8; CHUNK_SIZE];
    let ids = k_identity();

    // Go's decoder accepts an empty final chunk after a full one; so do we.
    let f = craft(&fk, &stanzas, &[(&full, false), (b"", true)]);
    assert_eq!(decrypt(&f, &ids).unwrap(), full);
    // A lone full chunk marked non-last: the final chunk is missing.
    let f = craft(&fk, &stanzas, &[(&full, false)]);
    assert_eq!(kind(decrypt(&f, &ids)), ErrorKind::Corrupt);
    // A short chunk must be the last one.
    let f = craft(&fk, &stanzas, &[(b"short", false)]);
    assert_eq!(kind(decrypt(&f, &ids)), ErrorKind::Corrupt);
    // A valid chunk after the final one.
    let f = craft(&fk, &stanzas, &[(&full, true), (b"more", true)]);
    assert_eq!(kind(decrypt(&f, &ids)), ErrorKind::Corrupt);
    // No chunk at all, or a fragment shorter than a tag.
    let f = craft(&fk, &stanzas, &[]);
    assert_eq!(kind(decrypt(&f, &ids)), ErrorKind::Corrupt);
    let mut f = craft(&fk, &stanzas, &[]);
    f.extend_from_slice(&[0u8; 15]);
    assert_eq!(kind(decrypt(&f, &ids)), ErrorKind::Corrupt);
    // Counter order matters: chunk 0 sealed as the last chunk of a longer file.
    let f = craft(&fk, &stanzas, &[(b"one", true)]);
    assert_eq!(decrypt(&f, &ids).unwrap(), b"one");
}

#[test]
fn file_key_must_be_16_bytes() {
    let fk = random_file_key();
    let mut stanza = scrypt_stanza(&fk, 8);
    let salt = header::b64_decode(stanza.args[0].as_bytes()).unwrap();
    let key = scrypt::wrap_key(K.as_bytes(), &salt, 8).unwrap();
    stanza.body = ChaCha20Poly1305::new(key.as_slice().into())
        .encrypt(&[0u8; 12].into(), &[1u8; 17][..])
        .unwrap();
    let f = craft(&fk, &[stanza], &[(b"x", true)]);
    assert_eq!(kind(decrypt(&f, &k_identity())), ErrorKind::Corrupt);
}

// ---- Malformed and hostile headers ----

#[test]
fn malformed_headers_are_corrupt() {
    let body = "iHxJYBSWusv9ticFqoQQqfV9L/gC0V8Js5okVSoGUOU";
    let full_line = "A".repeat(64);
    let stanza = "-> scrypt t0NO25CMBMVdYfz/rn1ovA 8";
    let long_arg = "a".repeat(MAX_HEADER_LEN);
    let many = "-> a\n".repeat(MAX_STANZAS + 1);
    let cases: Vec<(&str, String)> = vec![
        (
            "CR in intro",
            format!("charm.sh/v1\r\n{stanza}\n{body}\n{FAKE_MAC}"),
        ),
        (
            "other version",
            format!("charm.sh/v2\n{stanza}\n{body}\n{FAKE_MAC}"),
        ),
        (
            "age file",
            format!("age-encryption.org/v1\n{stanza}\n{body}\n{FAKE_MAC}"),
        ),
        (
            "CR after stanza",
            format!("charm.sh/v1\n{stanza}\r\n{body}\n{FAKE_MAC}"),
        ),
        (
            "CR in body",
            format!("charm.sh/v1\n{stanza}\n{body}\r\n{FAKE_MAC}"),
        ),
        (
            "empty body line",
            format!("charm.sh/v1\n{stanza}\n\n{FAKE_MAC}"),
        ),
        (
            "age-style empty line after full body",
            format!("charm.sh/v1\n-> x\n{full_line}\n\n{FAKE_MAC}"),
        ),
        (
            "empty line after body",
            format!("charm.sh/v1\n{stanza}\n{body}\n\n{FAKE_MAC}"),
        ),
        (
            "two short lines",
            format!("charm.sh/v1\n{stanza}\n{body}\n{body}\n{FAKE_MAC}"),
        ),
        (
            "65-char line",
            format!("charm.sh/v1\n-> x\n{full_line}AAAA\n{FAKE_MAC}"),
        ),
        (
            "padded body",
            format!("charm.sh/v1\n-> x\nAA==\n{FAKE_MAC}"),
        ),
        (
            "trailing bits",
            format!("charm.sh/v1\n-> x\nAB\n{FAKE_MAC}"),
        ),
        ("bare arrow", format!("charm.sh/v1\n->\n{FAKE_MAC}")),
        ("arrow space", format!("charm.sh/v1\n-> \n{FAKE_MAC}")),
        ("double space", format!("charm.sh/v1\n->  x\n{FAKE_MAC}")),
        ("no space", format!("charm.sh/v1\n->x\n{FAKE_MAC}")),
        ("DEL in arg", format!("charm.sh/v1\n-> x\x7f\n{FAKE_MAC}")),
        ("UTF-8 arg", format!("charm.sh/v1\n-> é\n{FAKE_MAC}")),
        ("no stanza", format!("charm.sh/v1\n{FAKE_MAC}")),
        ("footer without MAC", "charm.sh/v1\n-> x\n---\n".to_string()),
        (
            "footer, empty MAC arg",
            "charm.sh/v1\n-> x\n--- \n".to_string(),
        ),
        (
            "footer, two args",
            "charm.sh/v1\n-> x\n--- AAAA AAAA\n".to_string(),
        ),
        (
            "footer prefix",
            "charm.sh/v1\n-> x\n---x AAAA\n".to_string(),
        ),
        ("no footer", format!("charm.sh/v1\n{stanza}\n{body}\n")),
        (
            "footer without LF",
            "charm.sh/v1\n-> x\n--- AAAA".to_string(),
        ),
        (
            "long arg",
            format!("charm.sh/v1\n-> x {long_arg}\n{FAKE_MAC}"),
        ),
        ("too many stanzas", format!("charm.sh/v1\n{many}{FAKE_MAC}")),
        (
            "scrypt plus another",
            format!("charm.sh/v1\n{stanza}\n{body}\n-> x\n{FAKE_MAC}"),
        ),
        (
            "another plus scrypt",
            format!("charm.sh/v1\n-> x\n{stanza}\n{body}\n{FAKE_MAC}"),
        ),
        (
            "scrypt 3 args",
            format!("charm.sh/v1\n{stanza} 1\n{body}\n{FAKE_MAC}"),
        ),
        (
            "scrypt 1 arg",
            format!("charm.sh/v1\n-> scrypt t0NO25CMBMVdYfz/rn1ovA\n{body}\n{FAKE_MAC}"),
        ),
        (
            "scrypt short salt",
            format!("charm.sh/v1\n-> scrypt t0NO25CMBMVdYfz/rn1o 8\n{body}\n{FAKE_MAC}"),
        ),
        (
            "scrypt salt not b64",
            format!("charm.sh/v1\n-> scrypt t0NO25CMBMVdYfz.rn1ovA 8\n{body}\n{FAKE_MAC}"),
        ),
    ];
    for (name, h) in &cases {
        let r = decrypt(&with_payload(h), &k_identity());
        assert_eq!(kind(r), ErrorKind::Corrupt, "{name}");
    }
}

#[test]
fn scrypt_work_factor_is_bounded() {
    let salt = "t0NO25CMBMVdYfz/rn1ovA";
    let body = "iHxJYBSWusv9ticFqoQQqfV9L/gC0V8Js5okVSoGUOU";
    let too_big = (MAX_LOG_N + 1).to_string();
    for log_n in [
        "0",
        "-1",
        "x",
        "8.0",
        &too_big,
        "30",
        "64",
        "99999999999999999999999",
    ] {
        let h = format!("charm.sh/v1\n-> scrypt {salt} {log_n}\n{body}\n{FAKE_MAC}");
        let err = decrypt(&with_payload(&h), &k_identity()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corrupt, "logN {log_n}");
    }
    // Any work factor up to the cap decrypts (Go's encoder only writes 8).
    for log_n in [1, 10, MAX_LOG_N] {
        let fk = random_file_key();
        let f = craft(&fk, &[scrypt_stanza(&fk, log_n)], &[(b"ok", true)]);
        assert_eq!(decrypt(&f, &k_identity()).unwrap(), b"ok", "logN {log_n}");
    }
}

#[test]
fn ed25519_stanza_errors_after_tag_match_are_hard() {
    let tag = "eVkCKHnc5Rg";
    let share = "8LVyQ6M9W75ur7m+Uw3Mv9F79arc7FBvKriMdD8zHzc";
    let body = "BHYaQzWeNu8XVqGMXQEiX6EfD2wsz1zHg3UdXfH6fRY";
    let zero_share = "A".repeat(43);
    let cases = [
        ("one arg", format!("-> ssh-ed25519 {tag}\n{body}\n")),
        (
            "three args",
            format!("-> ssh-ed25519 {tag} {share} x\n{body}\n"),
        ),
        (
            "short share",
            format!("-> ssh-ed25519 {tag} AAAA\n{body}\n"),
        ),
        (
            "low-order share",
            format!("-> ssh-ed25519 {tag} {zero_share}\n{body}\n"),
        ),
        // A valid share but another file's wrapped key: Go fails hard here.
        (
            "wrong body",
            format!("-> ssh-ed25519 {tag} {share}\n{zero_share}\n"),
        ),
    ];
    for (name, stanza) in cases {
        let h = format!("charm.sh/v1\n{stanza}{FAKE_MAC}");
        let r = decrypt(&with_payload(&h), &[vector_identity()]);
        assert_eq!(kind(r), ErrorKind::Corrupt, "{name}");
    }
    // A bad MAC with everything else intact.
    let mut file = vector("vec_ed25519.bin");
    let mac_at = header_len(&file) - 10;
    file[mac_at] = if file[mac_at] == b'A' { b'B' } else { b'A' };
    assert_eq!(
        kind(decrypt(&file, &[vector_identity()])),
        ErrorKind::Corrupt
    );
}

#[test]
fn rsa_stanza_errors() {
    let rsa = rsa_key(2048);
    let file = encrypt(b"x", &[recipient_for(rsa)]).unwrap();
    let text = String::from_utf8_lossy(&file[..header_len(&file)]).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    // Extra argument: a hard error, as Go's "invalid ssh-rsa recipient block".
    let h = text.replacen(lines[1], &format!("{} x", lines[1]), 1);
    assert_eq!(
        kind(decrypt(&with_payload(&h), &[identity_for(rsa)])),
        ErrorKind::Corrupt
    );
    // Tag matches but the body was altered: hard error.
    let mut bad = file.clone();
    let body_at = lines[0].len() + lines[1].len() + 2 + 10;
    bad[body_at] = if bad[body_at] == b'A' { b'B' } else { b'A' };
    assert_eq!(
        kind(decrypt(&bad, &[identity_for(rsa)])),
        ErrorKind::Corrupt
    );
}

/// Counts what the parser pulls from its source.
struct Counting<R> {
    inner: R,
    read: usize,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n;
        Ok(n)
    }
}

#[test]
fn endless_hostile_input_is_rejected_after_bounded_reading() {
    let full_line = format!("{}\n", "A".repeat(64));
    let sources: Vec<(&str, Vec<u8>, Vec<u8>)> = vec![
        ("garbage", vec![], vec![0xAA]),
        ("no newline", b"charm.sh/v1\n-> x ".to_vec(), b"a".to_vec()),
        (
            "endless body",
            b"charm.sh/v1\n-> x\n".to_vec(),
            full_line.into_bytes(),
        ),
        (
            "endless stanzas",
            b"charm.sh/v1\n".to_vec(),
            b"-> x\n".to_vec(),
        ),
    ];
    for (name, prefix, unit) in sources {
        let endless = unit.into_iter().cycle();
        let bytes: Vec<u8> = prefix.into_iter().chain(endless.take(10 << 20)).collect();
        let mut src = Counting {
            inner: &bytes[..],
            read: 0,
        };
        let err = decryptor(&mut src, &k_identity()).err().expect(name);
        assert_eq!(err.kind(), ErrorKind::Corrupt, "{name}");
        assert!(
            src.read <= MAX_HEADER_LEN,
            "{name}: read {} bytes",
            src.read
        );
    }
}

// ---- API behaviour ----

#[test]
fn encryptor_rejects_bad_recipient_sets() {
    let ed = recipient_for(&ed25519_key());
    let scrypt = Recipient::scrypt(K.as_bytes());
    let too_many = vec![ed.clone(); MAX_STANZAS + 1];
    let bad: [&[Recipient]; 5] = [
        &[],
        &[scrypt.clone(), ed.clone()],
        &[ed.clone(), scrypt.clone()],
        &[Recipient::scrypt(b"")],
        &too_many,
    ];
    for recipients in bad {
        let err = encryptor(Vec::new(), recipients).err().unwrap();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{recipients:?}");
    }
    let ok = vec![ed; MAX_STANZAS];
    assert!(encrypt(b"", &ok).is_ok());
}

#[test]
fn unfinished_encryptor_output_is_truncated() {
    let mut out = Vec::new();
    let mut enc = encryptor(&mut out, &[Recipient::scrypt(K.as_bytes())]).unwrap();
    enc.write_all(&[1u8; 70000]).unwrap();
    // Dropped without finish: a full non-last chunk and no final chunk.
    drop(enc);
    assert_eq!(out.len(), header_len(&out) + 16 + 65536 + 16);
    assert_eq!(kind(decrypt(&out, &k_identity())), ErrorKind::Corrupt);
}

struct FailingWriter;

impl Write for FailingWriter {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::other("disk full"))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct FailAfter<'a> {
    data: &'a [u8],
}

impl Read for FailAfter<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.data.is_empty() {
            return Err(io::Error::new(io::ErrorKind::ConnectionReset, "reset"));
        }
        let n = buf.len().min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

#[test]
fn io_errors_are_io_errors() {
    let err = encryptor(FailingWriter, &[Recipient::scrypt(K.as_bytes())])
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::Io);

    let (_, file, payload) = three_chunk_file();
    let mut dec = decryptor(
        FailAfter {
            data: &file[..payload + 100],
        },
        &k_identity(),
    )
    .unwrap();
    let mut out = Vec::new();
    let e = dec.read_to_end(&mut out).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::ConnectionReset);
    assert!(out.is_empty());
    assert_eq!(into_crate_error(e).kind(), ErrorKind::Io);
    // The failure is remembered.
    let e = dec.read(&mut [0u8; 10]).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::ConnectionReset);

    let err = decryptor(
        FailAfter {
            data: b"charm.sh/v1\n",
        },
        &k_identity(),
    )
    .err()
    .unwrap();
    assert_eq!(err.kind(), ErrorKind::Io);

    let mut bad = file.clone();
    bad[payload + 3] ^= 1;
    let mut dec = decryptor(&bad[..], &k_identity()).unwrap();
    let e = dec.read_to_end(&mut Vec::new()).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    assert!(matches!(into_crate_error(e), Error::Corrupt { .. }));
}

#[test]
fn decryptor_leaves_the_reader_where_it_stopped() {
    let file = vector("vec_scrypt.bin");
    let mut dec = decryptor(&file[..], &k_identity()).unwrap();
    let mut out = Vec::new();
    dec.read_to_end(&mut out).unwrap();
    assert_eq!(out, b"hello world");
    assert!(dec.into_inner().is_empty());
}

#[test]
fn recipient_parsing() {
    let line = std::fs::read_to_string(vectors_dir().join("vec_charm_ed25519.pub")).unwrap();
    assert!(Recipient::from_authorized_key(&format!("{}  me@host\n", line.trim())).is_ok());
    for bad in [
        "",
        "ssh-ed25519",
        "ssh-ed25519 AAAA",
        "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIHm1Vi6P5lT5QHixEuipi6eQH4U65pW+1+DjkQutBJZk",
        "not a key at all",
    ] {
        let err = Recipient::from_authorized_key(bad).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{bad:?}");
    }
    let ecdsa = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBP7SgeO84susqHqkoetzYhUkcCqU+L4prmhjzdZUT9t94SFJFSSOHCUTdsPVyF3z2Ei2GkKAkUQokDIStYID3Tw= root@vm";
    let err = Recipient::from_authorized_key(ecdsa).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(err.to_string().contains("ecdsa"), "{err}");
}

#[test]
fn debug_output_has_no_secrets() {
    let shown = format!(
        "{:?} {:?} {:?}",
        Identity::scrypt(b"hunter2-password"),
        Recipient::scrypt(b"hunter2-password"),
        vector_identity()
    );
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("eVkCKHnc5Rg"), "{shown}");
    assert!(!shown.contains("77788f1a"), "{shown}");
}
