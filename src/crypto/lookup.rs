//! AES-SIV lookup fields and paths (`EncryptLookupField` / `EncryptPath`), as `charm/crypt/crypt.go` and `charm/fs/fs.go` v0.12.6 do.
//!
//! Charm encrypts names it must look up on the server (kv database names, sequence
//! numbers, fs path segments) deterministically: RFC 5297 AES-SIV with the first 32
//! ASCII bytes of the encrypt key text as the SIV key (CMAC half, then CTR half), no
//! associated data, output `hex(V || C)` in lower case.

use aes_siv::aead::KeyInit;
use aes_siv::siv::Aes128Siv;

use crate::crypto::keys::EncryptKey;
use crate::error::{Error, Result};

/// Size of the synthetic IV that prefixes every field.
const SIV_SIZE: usize = 16;

/// The empty header list: S2V over the plaintext alone, as `siv.Encrypt(.., nil)`.
/// A list holding one empty string would give different output.
const NO_HEADERS: &[&[u8]] = &[];

fn cipher(key: &EncryptKey) -> Aes128Siv {
    Aes128Siv::new(key.raw_key().into())
}

/// Deterministically encrypts one field with `key`: `""` stays `""`, anything
/// else becomes lower-case hex of AES-SIV(raw key, field).
pub fn encrypt_lookup_field(key: &EncryptKey, field: &str) -> Result<String> {
    if field.is_empty() {
        return Ok(String::new());
    }
    let sealed = cipher(key)
        .encrypt(NO_HEADERS, field.as_bytes())
        .map_err(|_| Error::internal("AES-SIV encryption failed"))?;
    Ok(hex::encode(sealed))
}

/// Decrypts a field made by [`encrypt_lookup_field`], trying each key in order.
///
/// `""` gives `""`. Malformed hex, a field shorter than the 16-byte SIV, or a
/// plaintext that is not UTF-8 is [`Error::Corrupt`]; no key authenticating the
/// field, or an empty plaintext (Go treats both alike), is [`Error::Keys`].
pub fn decrypt_lookup_field(keys: &[EncryptKey], hex_field: &str) -> Result<String> {
    if hex_field.is_empty() {
        return Ok(String::new());
    }
    let sealed = hex::decode(hex_field)
        .map_err(|e| Error::corrupt("lookup field is not hex").caused_by(e))?;
    if sealed.len() < SIV_SIZE {
        return Err(Error::corrupt(format!(
            "lookup field is {} bytes, shorter than the {SIV_SIZE}-byte SIV",
            sealed.len()
        )));
    }
    let plain = keys
        .iter()
        .find_map(|key| cipher(key).decrypt(NO_HEADERS, &sealed).ok())
        .filter(|plain| !plain.is_empty())
        .ok_or_else(|| Error::keys("incorrect or missing encrypt keys"))?;
    String::from_utf8(plain).map_err(|_| Error::corrupt("decrypted lookup field is not UTF-8"))
}

/// Encrypts a path segment by segment, as Go's `FS.EncryptPath`: one leading
/// `charm:` is stripped, the path is split on `/`, each segment is encrypted on its
/// own and empty segments stay empty (`"/a/b"` → `"/<hex>/<hex>"`).
#[cfg(any(test, feature = "unstable-internals"))]
pub fn encrypt_path(key: &EncryptKey, path: &str) -> Result<String> {
    let path = path.strip_prefix("charm:").unwrap_or(path);
    let segments = path
        .split('/')
        .map(|segment| encrypt_lookup_field(key, segment))
        .collect::<Result<Vec<_>>>()?;
    Ok(segments.join("/"))
}

/// Decrypts a path made by [`encrypt_path`] segment by segment (without any
/// `charm:` prefix, as Go's `FS.DecryptPath`). One undecryptable segment fails the
/// whole path.
#[cfg(any(test, feature = "unstable-internals"))]
pub fn decrypt_path(keys: &[EncryptKey], path: &str) -> Result<String> {
    let segments = path
        .split('/')
        .map(|segment| decrypt_lookup_field(keys, segment))
        .collect::<Result<Vec<_>>>()?;
    Ok(segments.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    /// Appendix A test key text: base64 of bytes 0x00..0x3F.
    const K: &str =
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==";

    fn key() -> EncryptKey {
        EncryptKey::from_text("k0", K, None).unwrap()
    }

    fn other_key() -> EncryptKey {
        EncryptKey::from_text("k1", EncryptKey::generate().text().to_owned(), None).unwrap()
    }

    /// Appendix A.1, produced by jacobsa/siv through Charm's crypt package.
    const VECTORS: &[(&str, &str)] = &[
        (
            "charm.sh.kv.user.default",
            "716f03bb171b6a5bf2d89f79c5857bd588e4a12e976dd42a5d0fe550cc9627cce8b784c0ca3dc46e",
        ),
        ("1", "8b41469fbf59d64c11c65f067fe7bd5df5"),
        ("42", "b0b8269ef844e2e15284e018ff99363b350a"),
        ("a", "91b3e0fcc264008c29eee1b213a376f052"),
        (
            "0123456789abcdef",
            "100c7f9421ea090adcfa79bd8161bec13544aa57366803a68bc4cc62f178e870",
        ),
        (
            "0123456789abcdefX",
            "3103675c67b45c5e34613eed0f3bc5b5bc156514aa729eba02a5427376a9f3baa8",
        ),
    ];

    #[test]
    fn appendix_a1_vectors_encrypt_exactly() {
        for (plain, hex) in VECTORS {
            assert_eq!(
                encrypt_lookup_field(&key(), plain).unwrap(),
                *hex,
                "{plain}"
            );
        }
    }

    #[test]
    fn appendix_a1_vectors_decrypt() {
        for (plain, hex) in VECTORS {
            assert_eq!(decrypt_lookup_field(&[key()], hex).unwrap(), *plain);
            // Go's hex decoder takes upper case too.
            assert_eq!(
                decrypt_lookup_field(&[key()], &hex.to_uppercase()).unwrap(),
                *plain
            );
        }
    }

    #[test]
    fn kv_sequence_path_matches_appendix_example() {
        assert_eq!(
            encrypt_path(&key(), "charm.sh.kv.user.default/1").unwrap(),
            format!("{}/{}", VECTORS[0].1, VECTORS[1].1)
        );
    }

    #[test]
    fn empty_field_is_empty_both_ways() {
        assert_eq!(encrypt_lookup_field(&key(), "").unwrap(), "");
        assert_eq!(decrypt_lookup_field(&[], "").unwrap(), "");
    }

    #[test]
    fn decryption_tries_each_key_in_order() {
        let hex = encrypt_lookup_field(&key(), "hello").unwrap();
        assert_eq!(
            decrypt_lookup_field(&[other_key(), key()], &hex).unwrap(),
            "hello"
        );
        let err = decrypt_lookup_field(&[other_key()], &hex).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Keys);
        let err = decrypt_lookup_field(&[], &hex).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Keys);
    }

    #[test]
    fn tampered_field_is_rejected() {
        let hex = encrypt_lookup_field(&key(), "hello").unwrap();
        let mut bytes = hex::decode(&hex).unwrap();
        for i in 0..bytes.len() {
            bytes[i] ^= 0x01;
            let err = decrypt_lookup_field(&[key()], &hex::encode(&bytes)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Keys, "byte {i}");
            bytes[i] ^= 0x01;
        }
    }

    #[test]
    fn malformed_fields_are_corrupt() {
        for bad in ["zz", "abc", "00112233445566778899aabbccddee"] {
            let err = decrypt_lookup_field(&[key()], bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Corrupt, "{bad}");
        }
    }

    #[test]
    fn empty_plaintext_is_a_key_error_as_in_go() {
        // A valid SIV of the empty string: Go's DecryptLookupField rejects it.
        let sealed = cipher(&key()).encrypt(NO_HEADERS, b"").unwrap();
        assert_eq!(sealed.len(), SIV_SIZE);
        let err = decrypt_lookup_field(&[key()], &hex::encode(sealed)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Keys);
    }

    #[test]
    fn non_utf8_plaintext_is_corrupt() {
        let sealed = cipher(&key()).encrypt(NO_HEADERS, b"\xff\xfe").unwrap();
        let err = decrypt_lookup_field(&[key()], &hex::encode(sealed)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corrupt);
    }

    #[test]
    fn paths_are_encrypted_per_segment() {
        let k = key();
        let a = encrypt_lookup_field(&k, "a").unwrap();
        let b = encrypt_lookup_field(&k, "b").unwrap();
        assert_eq!(encrypt_path(&k, "/a/b").unwrap(), format!("/{a}/{b}"));
        assert_eq!(encrypt_path(&k, "charm:/a/b").unwrap(), format!("/{a}/{b}"));
        assert_eq!(encrypt_path(&k, "a//b").unwrap(), format!("{a}//{b}"));
        assert_eq!(encrypt_path(&k, "a/").unwrap(), format!("{a}/"));
        assert_eq!(encrypt_path(&k, "").unwrap(), "");
        // Only one prefix is stripped; the second is part of the first segment.
        let cc = encrypt_lookup_field(&k, "charm:a").unwrap();
        assert_eq!(encrypt_path(&k, "charm:charm:a").unwrap(), cc);
    }

    #[test]
    fn paths_round_trip() {
        let k = key();
        for path in ["/a/b", "a//b", "", "/", "db/42", "ünïcode/ß", "a/b/"] {
            let enc = encrypt_path(&k, path).unwrap();
            assert_eq!(decrypt_path(&[other_key(), k.clone()], &enc).unwrap(), path);
        }
        let enc = encrypt_path(&k, "/a/b").unwrap();
        let err = decrypt_path(&[other_key()], &enc).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Keys);
    }
}
