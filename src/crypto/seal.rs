//! At-rest encryption of the rows of the local database (`docs/at-rest-encryption.md`).
//!
//! For each Charm encrypt key `K`, the master secret is `K[0..32]` (the 32 ASCII bytes
//! the Go client fed Badger), expanded with HKDF-SHA256 into independent subkeys:
//! - stored key   = AES-256-SIV(key_siv, plaintext key)                 (deterministic)
//! - stored value = 0x01 || nonce(24) || XChaCha20-Poly1305(value_key, nonce, value,
//!   ad = 0x01 || stored key)                                        (randomised)
//! - a value with an expiry = 0x02 || nonce(24) || XChaCha20-Poly1305(value_key, nonce,
//!   expiry(8, big-endian unix milliseconds) || value, ad = 0x02 || stored key): the
//!   expiry is encrypted and authenticated with the value; only the format byte says
//!   that the row has one.
//! - key check    = the first 8 bytes of HKDF(.., "key-check") as an i64 in `meta`,
//!   so a database opened with the wrong keys fails at open, not at the first read.

use chacha20::cipher::consts::U10;
use hkdf::Hkdf;
use rand::RngCore;
use ring::aead::{Aad, LessSafeKey, Nonce, Tag, UnboundKey, CHACHA20_POLY1305};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::siv::DeterministicSiv;
use super::EncryptKey;
use crate::error::{Error, Result};

const HKDF_SALT: &[u8] = b"charm-kv/v1 at-rest";
const VALUE_FORMAT_V1: u8 = 0x01;
/// A value whose plaintext starts with its expiry (see the module documentation).
const VALUE_FORMAT_EXPIRING: u8 = 0x02;
const EXPIRY_LEN: usize = 8;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// Bytes a stored value adds to the plaintext value.
pub const VALUE_OVERHEAD: usize = 1 + NONCE_LEN + TAG_LEN;
/// Bytes a stored key adds to the plaintext key (the SIV tag).
pub const KEY_OVERHEAD: usize = 16;

/// The ciphers derived from one encrypt key.
pub struct RowCipher {
    key_siv: DeterministicSiv,
    value_key: Zeroizing<[u8; 32]>,
    check: i64,
}

impl RowCipher {
    /// Derives the at-rest subkeys from an encrypt key.
    pub fn new(key: &EncryptKey) -> Self {
        let hkdf = Hkdf::<Sha256>::new(Some(HKDF_SALT), key.raw_key());
        let mut key_siv = Zeroizing::new([0u8; 64]);
        let mut value_key = Zeroizing::new([0u8; 32]);
        let mut check = [0u8; 8];
        // Expanding at most 64 bytes from SHA-256 cannot fail.
        hkdf.expand(b"key-siv", key_siv.as_mut())
            .expect("hkdf length");
        hkdf.expand(b"value-aead", value_key.as_mut())
            .expect("hkdf length");
        hkdf.expand(b"key-check", &mut check).expect("hkdf length");
        RowCipher {
            key_siv: DeterministicSiv::new(&key_siv),
            value_key,
            check: i64::from_be_bytes(check),
        }
    }

    /// The fingerprint stored in `meta.key_check`.
    pub fn check(&self) -> i64 {
        self.check
    }

    /// The stored (encrypted) form of a key: equal keys give equal bytes, so a lookup
    /// by primary key works.
    pub fn seal_key(&self, key: &[u8]) -> Vec<u8> {
        self.key_siv.encrypt(key)
    }

    /// Decrypts a stored key; `None` when it was not sealed with this cipher.
    pub fn open_key(&self, stored: &[u8]) -> Option<Vec<u8>> {
        self.key_siv.decrypt(stored)
    }

    /// Encrypts a value bound to its stored key (format 0x01, no expiry).
    #[cfg(any(test, feature = "unstable-internals"))]
    pub fn seal_value(&self, stored_key: &[u8], value: &[u8]) -> Vec<u8> {
        self.seal_entry(stored_key, value, None)
    }

    /// Encrypts a value bound to its stored key, with its expiry (unix milliseconds)
    /// inside the ciphertext when there is one (format 0x02); without one it is the
    /// format 0x01 of [`RowCipher::seal_value`], so such rows never change.
    pub fn seal_entry(&self, stored_key: &[u8], value: &[u8], expires_at: Option<u64>) -> Vec<u8> {
        let (format, prefix_len) = match expires_at {
            None => (VALUE_FORMAT_V1, 0),
            Some(_) => (VALUE_FORMAT_EXPIRING, EXPIRY_LEN),
        };
        let mut out = Vec::with_capacity(VALUE_OVERHEAD + prefix_len + value.len());
        out.push(format);
        let mut nonce = [0u8; NONCE_LEN];
        // thread_rng is a CSPRNG seeded from the OS (and reseeded after fork); it saves
        // a system call per write.
        rand::thread_rng().fill_bytes(&mut nonce);
        out.extend_from_slice(&nonce);
        if let Some(at) = expires_at {
            out.extend_from_slice(&at.to_be_bytes());
        }
        out.extend_from_slice(value);
        let (key, ietf_nonce) = xchacha_subkey(&self.value_key, &nonce);
        let tag = with_value_ad(format, stored_key, |ad| {
            key.seal_in_place_separate_tag(ietf_nonce, Aad::from(ad), &mut out[1 + NONCE_LEN..])
        })
        .expect("ChaCha20-Poly1305 seals any in-memory buffer");
        out.extend_from_slice(tag.as_ref());
        out
    }

    /// Decrypts a stored value; fails when it was moved from another row or altered.
    /// The expiry, if any, is dropped: see [`RowCipher::open_entry`].
    pub fn open_value(&self, stored_key: &[u8], stored: &[u8]) -> Result<Vec<u8>> {
        self.open_entry(stored_key, stored).map(|(value, _)| value)
    }

    /// Decrypts a stored value and its expiry (unix milliseconds; `None` for none).
    pub fn open_entry(&self, stored_key: &[u8], stored: &[u8]) -> Result<(Vec<u8>, Option<u64>)> {
        let mut plain = vec![0u8; stored_value_len(stored)?];
        let expires_at = self.open_value_into(stored_key, stored, &mut plain)?;
        Ok((plain, expires_at))
    }

    /// Decrypts a stored value into `dest`, which must be exactly
    /// [`stored_value_len`] bytes long, and returns its expiry; on failure `dest` is
    /// left zeroed.
    pub fn open_value_into(
        &self,
        stored_key: &[u8],
        stored: &[u8],
        dest: &mut [u8],
    ) -> Result<Option<u64>> {
        let plain_len = stored_value_len(stored)?;
        if dest.len() != plain_len {
            return Err(Error::invalid("value buffer of the wrong length"));
        }
        let format = stored[0];
        let nonce: &[u8; NONCE_LEN] = stored[1..1 + NONCE_LEN].try_into().expect("length checked");
        let (key, ietf_nonce) = xchacha_subkey(&self.value_key, nonce);
        let sealed = &stored[1 + NONCE_LEN..];
        let (ciphertext, tag) = sealed.split_at(sealed.len() - TAG_LEN);
        let tag: [u8; TAG_LEN] = tag.try_into().expect("length checked");
        let failed = |_| Error::corrupt("stored value failed authentication");
        if format == VALUE_FORMAT_V1 {
            dest.copy_from_slice(ciphertext);
            // ring zeroes `dest` when the tag does not verify.
            with_value_ad(format, stored_key, |ad| {
                key.open_in_place_separate_tag(ietf_nonce, Aad::from(ad), Tag::from(tag), dest, 0..)
                    .map(|_| ())
            })
            .map_err(failed)?;
            return Ok(None);
        }
        // The expiry comes first: decrypted into a scratch buffer, wiped on drop.
        dest.fill(0);
        let mut plain = Zeroizing::new(ciphertext.to_vec());
        with_value_ad(format, stored_key, |ad| {
            key.open_in_place_separate_tag(
                ietf_nonce,
                Aad::from(ad),
                Tag::from(tag),
                plain.as_mut_slice(),
                0..,
            )
            .map(|_| ())
        })
        .map_err(failed)?;
        let (expiry, value) = plain.split_at(EXPIRY_LEN);
        dest.copy_from_slice(value);
        Ok(Some(u64::from_be_bytes(
            expiry.try_into().expect("length checked"),
        )))
    }
}

/// Whether a stored value carries an expiry (format 0x02): the first byte, readable
/// without decrypting, so a listing decrypts only such rows to learn their expiry.
pub fn has_expiry(stored: &[u8]) -> bool {
    stored.first() == Some(&VALUE_FORMAT_EXPIRING)
}

/// The length of the plaintext a stored value decrypts to.
pub fn stored_value_len(stored: &[u8]) -> Result<usize> {
    let prefix_len = match stored.first() {
        Some(&VALUE_FORMAT_V1) => 0,
        Some(&VALUE_FORMAT_EXPIRING) => EXPIRY_LEN,
        _ => return Err(Error::corrupt("stored value has an unknown format")),
    };
    if stored.len() < VALUE_OVERHEAD + prefix_len {
        return Err(Error::corrupt("stored value has an unknown format"));
    }
    Ok(stored.len() - VALUE_OVERHEAD - prefix_len)
}

/// XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha): HChaCha20 turns the key and the first
/// 16 nonce bytes into a subkey for IETF ChaCha20-Poly1305 with nonce
/// `0u32 || nonce[16..24]`. ring does the AEAD: for short values it is several times
/// faster than the portable implementation, with byte-identical output (tested).
fn xchacha_subkey(key: &[u8; 32], nonce: &[u8; NONCE_LEN]) -> (LessSafeKey, Nonce) {
    let input: &[u8; 16] = nonce[..16].try_into().expect("24-byte nonce");
    let subkey: Zeroizing<[u8; 32]> =
        Zeroizing::new(chacha20::hchacha::<U10>(key.into(), input.into()).into());
    let key = UnboundKey::new(&CHACHA20_POLY1305, subkey.as_ref()).expect("32-byte key");
    let mut ietf = [0u8; 12];
    ietf[4..].copy_from_slice(&nonce[16..]);
    (LessSafeKey::new(key), Nonce::assume_unique_for_key(ietf))
}

/// The associated data of a value, `format || stored key`, built on the stack for the
/// usual short keys (an allocation here was a measurable part of a point get).
fn with_value_ad<T>(format: u8, stored_key: &[u8], f: impl FnOnce(&[u8]) -> T) -> T {
    // The format byte is bound too, so a future format cannot be downgraded to this one.
    const INLINE: usize = 128;
    if stored_key.len() < INLINE {
        let mut ad = [0u8; INLINE];
        ad[0] = format;
        ad[1..=stored_key.len()].copy_from_slice(stored_key);
        f(&ad[..=stored_key.len()])
    } else {
        let mut ad = Vec::with_capacity(1 + stored_key.len());
        ad.push(format);
        ad.extend_from_slice(stored_key);
        f(&ad)
    }
}

/// The ciphers of all of an account's encrypt keys, in server order: index 0 writes,
/// every index is tried on reads.
pub struct Sealer {
    ciphers: Vec<RowCipher>,
    key_ids: Vec<String>,
}

impl Sealer {
    /// Builds the ciphers; at least one key is required.
    pub fn new(keys: &[EncryptKey]) -> Result<Self> {
        if keys.is_empty() {
            return Err(Error::keys("no encrypt key available"));
        }
        Ok(Sealer {
            ciphers: keys.iter().map(RowCipher::new).collect(),
            key_ids: keys.iter().map(|k| k.id().to_owned()).collect(),
        })
    }

    /// Whether these are exactly the ciphers of `keys`, in order.
    pub fn is_for(&self, keys: &[EncryptKey]) -> bool {
        self.key_ids
            .iter()
            .map(String::as_str)
            .eq(keys.iter().map(EncryptKey::id))
    }

    /// The cipher new rows are written with.
    pub fn writer(&self) -> &RowCipher {
        &self.ciphers[0]
    }

    /// All ciphers, writer first.
    pub fn ciphers(&self) -> &[RowCipher] {
        &self.ciphers
    }

    /// Decrypts a stored key with whichever cipher sealed it.
    pub fn open_key(&self, stored: &[u8]) -> Result<(Vec<u8>, usize)> {
        self.ciphers
            .iter()
            .enumerate()
            .find_map(|(i, c)| c.open_key(stored).map(|k| (k, i)))
            .ok_or_else(|| {
                Error::keys("a stored key does not decrypt with any available encrypt key")
            })
    }

    /// Whether `check` (from `meta.key_check`) belongs to one of our keys.
    pub fn knows_check(&self, check: i64) -> bool {
        self.ciphers.iter().any(|c| c.check == check)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> EncryptKey {
        EncryptKey::from_text("id", text, None).unwrap()
    }

    #[test]
    fn keys_are_deterministic_and_values_are_not() {
        let c = RowCipher::new(&EncryptKey::generate());
        assert_eq!(c.seal_key(b"k"), c.seal_key(b"k"));
        assert_ne!(c.seal_key(b"k"), c.seal_key(b"l"));
        assert_eq!(c.seal_key(b"").len(), KEY_OVERHEAD);
        let sk = c.seal_key(b"k");
        let (a, b) = (c.seal_value(&sk, b"v"), c.seal_value(&sk, b"v"));
        assert_ne!(a, b);
        assert_eq!(a.len(), 1 + VALUE_OVERHEAD);
        assert_eq!(c.open_value(&sk, &a).unwrap(), b"v");
        assert_eq!(c.open_key(&sk).unwrap(), b"k");
    }

    #[test]
    fn value_encryption_is_standard_xchacha20poly1305() {
        use chacha20poly1305::aead::{Aead, KeyInit, Payload};
        let key = EncryptKey::generate();
        let c = RowCipher::new(&key);
        // Stored keys on both sides of the inline associated-data buffer (128 bytes).
        for (key_len, len) in [
            (1, 0usize),
            (1, 1),
            (1, 63),
            (111, 64),
            (112, 65),
            (500, 1000),
        ] {
            let sk = c.seal_key(&vec![b'k'; key_len]);
            let value: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let sealed = c.seal_value(&sk, &value);
            let reference = chacha20poly1305::XChaCha20Poly1305::new(c.value_key.as_ref().into());
            let nonce = chacha20poly1305::XNonce::from_slice(&sealed[1..25]);
            let ad = [&[VALUE_FORMAT_V1][..], &sk].concat();
            let expected = reference
                .encrypt(
                    nonce,
                    Payload {
                        msg: &value,
                        aad: &ad,
                    },
                )
                .unwrap();
            assert_eq!(&sealed[25..], expected.as_slice(), "length {len}");
            assert_eq!(c.open_value(&sk, &sealed).unwrap(), value);
        }
    }

    #[test]
    fn value_moved_to_another_row_fails() {
        let c = RowCipher::new(&EncryptKey::generate());
        let (k1, k2) = (c.seal_key(b"a"), c.seal_key(b"b"));
        let v = c.seal_value(&k1, b"secret");
        assert_eq!(
            c.open_value(&k2, &v).unwrap_err().kind(),
            crate::ErrorKind::Corrupt
        );
        let mut flipped = v.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(c.open_value(&k1, &flipped).is_err());
        assert!(c.open_value(&k1, &v[..10]).is_err());
    }

    #[test]
    fn opening_into_a_buffer_matches_and_leaves_nothing_on_failure() {
        let c = RowCipher::new(&EncryptKey::generate());
        let (k1, k2) = (c.seal_key(b"a"), c.seal_key(b"b"));
        let sealed = c.seal_value(&k1, b"secret value");
        assert_eq!(stored_value_len(&sealed).unwrap(), 12);
        let mut dest = [0xAAu8; 12];
        c.open_value_into(&k1, &sealed, &mut dest).unwrap();
        assert_eq!(&dest, b"secret value");
        // Wrong row: the unauthenticated plaintext must not stay in the buffer.
        let mut dest = [0xAAu8; 12];
        let err = c.open_value_into(&k2, &sealed, &mut dest).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Corrupt);
        assert_eq!(dest, [0u8; 12]);
        let mut short = [0u8; 11];
        assert_eq!(
            c.open_value_into(&k1, &sealed, &mut short)
                .unwrap_err()
                .kind(),
            crate::ErrorKind::InvalidArgument
        );
        assert!(stored_value_len(&sealed[..VALUE_OVERHEAD - 1]).is_err());
        let mut other_format = sealed.clone();
        other_format[0] = 3;
        assert!(stored_value_len(&other_format).is_err());
    }

    #[test]
    fn expiring_values_round_trip_with_their_expiry_encrypted() {
        use chacha20poly1305::aead::{Aead, KeyInit, Payload};
        let c = RowCipher::new(&EncryptKey::generate());
        let sk = c.seal_key(b"session");
        let at = 1_790_000_000_123u64;
        let sealed = c.seal_entry(&sk, b"token", Some(at));
        assert_eq!(sealed[0], 0x02);
        assert!(has_expiry(&sealed));
        assert_eq!(sealed.len(), VALUE_OVERHEAD + 8 + 5);
        assert_eq!(stored_value_len(&sealed).unwrap(), 5);
        assert_eq!(c.open_entry(&sk, &sealed).unwrap(), (b"token".to_vec(), Some(at)));
        assert_eq!(c.open_value(&sk, &sealed).unwrap(), b"token");
        // Nothing of the expiry is visible: the plaintext is expiry || value under the
        // standard XChaCha20-Poly1305 with the format byte in the associated data.
        assert!(!sealed.windows(8).any(|w| w == at.to_be_bytes()));
        let reference = chacha20poly1305::XChaCha20Poly1305::new(c.value_key.as_ref().into());
        let nonce = chacha20poly1305::XNonce::from_slice(&sealed[1..25]);
        let plain = reference
            .decrypt(
                nonce,
                Payload {
                    msg: &sealed[25..],
                    aad: &[&[0x02][..], &sk].concat(),
                },
            )
            .unwrap();
        assert_eq!(plain, [&at.to_be_bytes()[..], b"token"].concat());
        // Into a buffer: the value only, and the expiry returned.
        let mut dest = [0u8; 5];
        assert_eq!(c.open_value_into(&sk, &sealed, &mut dest).unwrap(), Some(at));
        assert_eq!(&dest, b"token");
        // No expiry: still the old format, byte for byte the same shape.
        let plain_row = c.seal_entry(&sk, b"token", None);
        assert_eq!(plain_row[0], 0x01);
        assert!(!has_expiry(&plain_row));
        assert_eq!(c.open_entry(&sk, &plain_row).unwrap(), (b"token".to_vec(), None));
        // The empty value with an expiry.
        let empty = c.seal_entry(&sk, b"", Some(1));
        assert_eq!(c.open_entry(&sk, &empty).unwrap(), (Vec::new(), Some(1)));
    }

    #[test]
    fn expiring_values_fail_with_another_key_row_or_any_change() {
        let c = RowCipher::new(&EncryptKey::generate());
        let (k1, k2) = (c.seal_key(b"a"), c.seal_key(b"b"));
        let sealed = c.seal_entry(&k1, b"secret", Some(42));
        let corrupt = |stored: &[u8], key: &[u8], cipher: &RowCipher| {
            cipher.open_entry(key, stored).unwrap_err().kind() == crate::ErrorKind::Corrupt
        };
        assert!(corrupt(&sealed, &k2, &c));
        let other = RowCipher::new(&EncryptKey::generate());
        assert!(corrupt(&sealed, &k1, &other));
        // Every byte is authenticated: the expiry, the value, the tag, the format.
        for i in 0..sealed.len() {
            let mut tampered = sealed.clone();
            tampered[i] ^= 1;
            assert!(c.open_entry(&k1, &tampered).is_err(), "byte {i}");
        }
        // Downgrading to the old format (dropping the expiry) does not verify.
        let mut downgraded = sealed.clone();
        downgraded[0] = 0x01;
        assert!(corrupt(&downgraded, &k1, &c));
        // Too short to hold an expiry.
        assert!(stored_value_len(&sealed[..VALUE_OVERHEAD + 7]).is_err());
        // On failure the caller's buffer is left zeroed.
        let mut dest = [0xAAu8; 6];
        assert!(c.open_value_into(&k2, &sealed, &mut dest).is_err());
        assert_eq!(dest, [0u8; 6]);
    }

    #[test]
    fn only_the_first_32_key_bytes_matter_as_in_badger() {
        let a = key("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==");
        let b = key("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXzzzz");
        let (ca, cb) = (RowCipher::new(&a), RowCipher::new(&b));
        assert_eq!(ca.seal_key(b"x"), cb.seal_key(b"x"));
        assert_eq!(ca.check(), cb.check());
    }

    #[test]
    fn sealer_reads_with_any_key_and_writes_with_the_first() {
        let (k0, k1) = (EncryptKey::generate(), EncryptKey::generate());
        let old = Sealer::new(std::slice::from_ref(&k1)).unwrap();
        let both = Sealer::new(&[k0, k1]).unwrap();
        let stored = old.writer().seal_key(b"key");
        assert_eq!(both.open_key(&stored).unwrap(), (b"key".to_vec(), 1));
        assert!(both.knows_check(old.writer().check()));
        assert_ne!(both.writer().check(), old.writer().check());
        let other = Sealer::new(&[EncryptKey::generate()]).unwrap();
        assert_eq!(
            other.open_key(&stored).unwrap_err().kind(),
            crate::ErrorKind::Keys
        );
        assert!(Sealer::new(&[]).is_err());
    }
}
