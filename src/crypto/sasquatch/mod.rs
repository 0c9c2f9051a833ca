//! The sasquatch `charm.sh/v1` file format (`muesli/sasquatch` @66979d92330a), byte-compatible
//! with `github.com/muesli/sasquatch` as pinned by Charm v0.12.6.
//!
//! Sasquatch is an early fork of age with its own labels, an 8-byte SSH tag, scrypt
//! work factor 8 and different body-wrapping rules, so age libraries cannot read it.
//! Supported recipients: `scrypt` (Charm's content encryption, the password being the
//! encrypt key text), `ssh-ed25519` and `ssh-rsa` (Charm's wrapping of encrypt keys).
//!
//! Hostile-input bounds (Go has none of them): a header is at most
//! [`MAX_HEADER_LEN`] bytes with at most [`MAX_STANZAS`] stanzas; the scrypt work
//! factor is at most 2^[`MAX_LOG_N`]; a file key must be 16 bytes; nothing may follow
//! the final payload chunk. None of them rejects a file that Go's encoder writes.
//!
//! Errors: a file for none of the given identities is [`Error::Keys`]; a malformed,
//! tampered or truncated file is [`Error::Corrupt`]. For `scrypt`, a tampered salt
//! or wrapped key is indistinguishable from a wrong password and so is also `Keys`.
//!
//! The [`Decryptor`] reports errors through `io::Error`; [`into_crate_error`] turns
//! them back into the crate's [`Error`].

mod header;
mod scrypt;
mod ssh_ed25519;
mod ssh_rsa;
mod stream;

#[cfg(test)]
mod tests;

use std::io::{self, Read, Write};

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::ChaCha20Poly1305;
use rand::RngCore;
use sha2::{Digest, Sha256};
use ssh_key::private::KeypairData;
use ssh_key::public::KeyData;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

pub use header::MAX_STANZAS;
#[cfg(any(test, feature = "unstable-internals"))]
pub use header::MAX_HEADER_LEN;
pub use scrypt::{ScryptIdentity, ScryptRecipient, DEFAULT_LOG_N};
#[cfg(any(test, feature = "unstable-internals"))]
pub use scrypt::MAX_LOG_N;
pub use ssh_ed25519::{Ed25519Identity, Ed25519Recipient};
pub use ssh_rsa::{RsaIdentity, RsaRecipient};
pub use stream::CHUNK_SIZE;

use header::Stanza;
use stream::{StreamReader, StreamWriter, PAYLOAD_NONCE_SIZE};

const FILE_KEY_SIZE: usize = 16;
type FileKey = Zeroizing<[u8; FILE_KEY_SIZE]>;

/// ChaCha20-Poly1305 with an all-zero nonce, as every sasquatch stanza body uses
/// (each wrap key is used once).
fn aead_wrap(key: &[u8; 32], file_key: &FileKey) -> Vec<u8> {
    ChaCha20Poly1305::new(key.into())
        .encrypt(&[0u8; 12].into(), file_key.as_slice())
        .expect("ChaCha20-Poly1305 encryption of 16 bytes cannot fail")
}

/// `Ok(None)` when the AEAD rejects the body (wrong key). Go takes whatever length
/// comes out; we insist on the 16 bytes every encoder writes.
fn aead_unwrap(key: &[u8; 32], body: &[u8]) -> Result<Option<FileKey>> {
    let Ok(plain) = ChaCha20Poly1305::new(key.into()).decrypt(&[0u8; 12].into(), body) else {
        return Ok(None);
    };
    let plain = Zeroizing::new(plain);
    if plain.len() != FILE_KEY_SIZE {
        return Err(Error::corrupt(format!(
            "sasquatch: wrapped file key is {} bytes, expected {FILE_KEY_SIZE}",
            plain.len()
        )));
    }
    let mut file_key = FileKey::default();
    file_key.copy_from_slice(&plain);
    Ok(Some(file_key))
}

/// The recipient tag of an SSH key: the first 8 bytes of SHA-256 of its wire form
/// (age uses 4), unpadded base64.
fn ssh_tag(wire: &[u8]) -> String {
    header::b64_encode(&Sha256::digest(wire)[..8])
}

/// Someone a file is encrypted to.
#[derive(Clone, Debug)]
pub enum Recipient {
    /// A password; an scrypt recipient must be the only one in a file.
    Scrypt(ScryptRecipient),
    /// An SSH Ed25519 public key.
    SshEd25519(Ed25519Recipient),
    /// An SSH RSA public key.
    SshRsa(RsaRecipient),
}

impl Recipient {
    /// A password recipient with work factor 2^8, as Go's sasquatch writes. Charm
    /// uses the 88-character encrypt key text as the password.
    pub fn scrypt(password: &[u8]) -> Recipient {
        Recipient::Scrypt(ScryptRecipient {
            password: Zeroizing::new(password.to_vec()),
            log_n: DEFAULT_LOG_N,
        })
    }

    /// Parses an authorized_keys style line, `ssh-ed25519 AAAA... [comment]` or
    /// `ssh-rsa AAAA... [comment]`.
    pub fn from_authorized_key(line: &str) -> Result<Recipient> {
        let key = ssh_key::PublicKey::from_openssh(line.trim())
            .map_err(|e| Error::invalid("malformed SSH public key").caused_by(e))?;
        Recipient::from_public_key(&key)
    }

    /// A recipient for an SSH public key (Ed25519 or RSA).
    pub fn from_public_key(key: &ssh_key::PublicKey) -> Result<Recipient> {
        match key.key_data() {
            KeyData::Ed25519(pk) => Ok(Recipient::SshEd25519(Ed25519Recipient::new(&pk.0)?)),
            KeyData::Rsa(pk) => Ok(Recipient::SshRsa(RsaRecipient::new(pk)?)),
            other => Err(Error::invalid(format!(
                "unsupported SSH key type {}; sasquatch supports ssh-ed25519 and ssh-rsa",
                other.algorithm()
            ))),
        }
    }

    fn wrap(&self, file_key: &FileKey) -> Result<Stanza> {
        match self {
            Recipient::Scrypt(r) => r.wrap(file_key),
            Recipient::SshEd25519(r) => r.wrap(file_key),
            Recipient::SshRsa(r) => r.wrap(file_key),
        }
    }
}

/// Something that can decrypt files: a password or an SSH private key.
#[derive(Clone, Debug)]
pub enum Identity {
    /// A password for `scrypt` stanzas.
    Scrypt(ScryptIdentity),
    /// An SSH Ed25519 private key.
    SshEd25519(Ed25519Identity),
    /// An SSH RSA private key.
    SshRsa(RsaIdentity),
}

impl Identity {
    /// A password identity for `scrypt` stanzas.
    pub fn scrypt(password: &[u8]) -> Identity {
        Identity::Scrypt(ScryptIdentity {
            password: Zeroizing::new(password.to_vec()),
        })
    }

    /// An identity for an unencrypted SSH private key (Ed25519 or RSA).
    pub fn from_private_key(key: &ssh_key::PrivateKey) -> Result<Identity> {
        if key.is_encrypted() {
            return Err(Error::keys(
                "the SSH private key is passphrase-protected; decrypt it first",
            ));
        }
        match key.key_data() {
            KeypairData::Ed25519(kp) => Ok(Identity::SshEd25519(Ed25519Identity::new(
                &kp.public.0,
                &kp.private.to_bytes(),
            ))),
            KeypairData::Rsa(kp) => Ok(Identity::SshRsa(RsaIdentity::new(kp)?)),
            other => Err(Error::invalid(format!(
                "unsupported SSH key type {}; sasquatch supports ssh-ed25519 and ssh-rsa",
                other
                    .algorithm()
                    .map(|a| a.to_string())
                    .unwrap_or_else(|_| "unknown".into())
            ))),
        }
    }

    fn stanza_type(&self) -> &'static str {
        match self {
            Identity::Scrypt(_) => scrypt::STANZA_TYPE,
            Identity::SshEd25519(_) => ssh_ed25519::STANZA_TYPE,
            Identity::SshRsa(_) => ssh_rsa::STANZA_TYPE,
        }
    }

    /// `Ok(None)` when the stanza is not for this identity.
    fn unwrap(&self, stanza: &Stanza) -> Result<Option<FileKey>> {
        match self {
            Identity::Scrypt(i) => i.unwrap(stanza),
            Identity::SshEd25519(i) => i.unwrap(stanza),
            Identity::SshRsa(i) => i.unwrap(stanza),
        }
    }
}

/// Streaming encryption into `W`, in 64 KiB chunks with constant memory.
///
/// The header and payload nonce are written when it is created. Call
/// [`finish`](Encryptor::finish) at the end: it writes the final chunk, without
/// which the output is a truncated file that every decoder rejects.
pub struct Encryptor<W: Write> {
    stream: StreamWriter<W>,
}

impl<W: Write> Encryptor<W> {
    /// Writes the final chunk, flushes, and returns the output.
    pub fn finish(self) -> Result<W> {
        self.stream
            .finish()
            .map_err(|e| Error::io("writing sasquatch payload", e))
    }
}

impl<W: Write> Write for Encryptor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.write(buf)
    }

    /// Flushes the output. Buffered plaintext of the current chunk stays buffered:
    /// a chunk is sealed only when it is full or at `finish`.
    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

/// Starts encrypting to `recipients`, writing the header to `out` right away.
///
/// An scrypt recipient must be the only one, and its password must not be empty
/// (Go refuses both).
pub fn encryptor<W: Write>(mut out: W, recipients: &[Recipient]) -> Result<Encryptor<W>> {
    if recipients.is_empty() {
        return Err(Error::invalid("sasquatch: no recipients"));
    }
    if recipients.len() > MAX_STANZAS {
        return Err(Error::invalid(format!(
            "sasquatch: at most {MAX_STANZAS} recipients (decoders reject more)"
        )));
    }
    for r in recipients {
        if let Recipient::Scrypt(ScryptRecipient { password, .. }) = r {
            if recipients.len() != 1 {
                return Err(Error::invalid(
                    "sasquatch: an scrypt recipient must be the only recipient",
                ));
            }
            if password.is_empty() {
                return Err(Error::invalid("sasquatch: the scrypt password is empty"));
            }
        }
    }
    let mut file_key = FileKey::default();
    rand::rngs::OsRng.fill_bytes(file_key.as_mut_slice());
    let stanzas = recipients
        .iter()
        .map(|r| r.wrap(&file_key))
        .collect::<Result<Vec<_>>>()?;
    let mut head = header::encode_header(&stanzas, &file_key);
    let mut nonce = [0u8; PAYLOAD_NONCE_SIZE];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    head.extend_from_slice(&nonce);
    out.write_all(&head)
        .map_err(|e| Error::io("writing sasquatch header", e))?;
    Ok(Encryptor {
        stream: StreamWriter::new(out, stream::payload_cipher(&file_key, &nonce)),
    })
}

/// The input after the header: bytes the header parser read ahead, then the rest.
struct Source<R: Read> {
    ahead: Vec<u8>,
    pos: usize,
    inner: R,
}

impl<R: Read> Read for Source<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos < self.ahead.len() {
            let n = (self.ahead.len() - self.pos).min(buf.len());
            buf[..n].copy_from_slice(&self.ahead[self.pos..self.pos + n]);
            self.pos += n;
            return Ok(n);
        }
        self.inner.read(buf)
    }
}

/// Streaming decryption of a sasquatch file.
///
/// Plaintext is handed out only from chunks whose tag verified. Errors come as
/// `io::Error`: a malformed, tampered or truncated payload is
/// `io::ErrorKind::InvalidData` wrapping [`Error::Corrupt`], and an error of the
/// underlying reader is passed through. [`into_crate_error`] maps either to the
/// crate's [`Error`]. After an error every further read fails the same way.
pub struct Decryptor<R: Read> {
    stream: StreamReader<Source<R>>,
}

impl<R: Read> Decryptor<R> {
    /// The underlying reader, positioned wherever decryption stopped.
    #[cfg(any(test, feature = "unstable-internals"))]
    pub fn into_inner(self) -> R {
        self.stream.into_inner().inner
    }
}

impl<R: Read> Read for Decryptor<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.read(buf)
    }
}

/// Recovers the crate [`Error`] from an `io::Error` returned by [`Decryptor`] (or
/// by [`Encryptor`]'s `Write`): the wrapped `Error::Corrupt`, or `Error::Io` for
/// a failure of the underlying reader or writer.
pub fn into_crate_error(e: io::Error) -> Error {
    Error::from_read("sasquatch stream", e)
}

/// Reads the header from `input`, finds the file key with `identities`, checks the
/// header MAC and reads the payload nonce.
///
/// Errors: [`Error::Keys`] when no identity matches any stanza (including files
/// whose stanzas are all of unknown types), [`Error::Corrupt`] for malformed or
/// tampered headers and truncation before the payload, [`Error::Io`] when reading
/// fails.
pub fn decryptor<R: Read>(mut input: R, identities: &[Identity]) -> Result<Decryptor<R>> {
    if identities.is_empty() {
        return Err(Error::keys(
            "sasquatch: no identities to decrypt with",
        ));
    }
    let (hdr, ahead) = header::read_header(&mut input)?;
    // Go enforces this only on the stanzas it reaches before finding its key;
    // a Go encoder never writes such a file, so reject it outright.
    if hdr.stanzas.len() > 1 && hdr.stanzas.iter().any(|s| s.kind == scrypt::STANZA_TYPE) {
        return Err(Error::corrupt(
            "sasquatch: an scrypt stanza must be the only stanza",
        ));
    }
    let mut file_key = None;
    'stanzas: for stanza in &hdr.stanzas {
        for identity in identities {
            if identity.stanza_type() != stanza.kind {
                continue;
            }
            if let Some(key) = identity.unwrap(stanza)? {
                file_key = Some(key);
                break 'stanzas;
            }
        }
    }
    let Some(file_key) = file_key else {
        return Err(Error::keys(
            "sasquatch: no identity matched a recipient",
        ));
    };
    hdr.verify_mac(&file_key)?;

    let mut source = Source {
        ahead,
        pos: 0,
        inner: input,
    };
    let mut nonce = [0u8; PAYLOAD_NONCE_SIZE];
    source.read_exact(&mut nonce).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            Error::corrupt("sasquatch: truncated before the payload nonce")
        } else {
            Error::io("reading sasquatch payload nonce", e)
        }
    })?;
    Ok(Decryptor {
        stream: StreamReader::new(source, stream::payload_cipher(&file_key, &nonce)),
    })
}

/// Encrypts `plaintext` to `recipients` in one go.
pub fn encrypt(plaintext: &[u8], recipients: &[Recipient]) -> Result<Vec<u8>> {
    let out = Vec::with_capacity(plaintext.len() + 256 + plaintext.len() / CHUNK_SIZE * 16);
    let mut enc = encryptor(out, recipients)?;
    enc.write_all(plaintext).map_err(into_crate_error)?;
    enc.finish()
}

/// Decrypts a whole file in one go.
pub fn decrypt(ciphertext: &[u8], identities: &[Identity]) -> Result<Vec<u8>> {
    let mut dec = decryptor(ciphertext, identities)?;
    let mut out = Vec::with_capacity(ciphertext.len());
    dec.read_to_end(&mut out).map_err(|e| {
        zeroize::Zeroize::zeroize(&mut out);
        into_crate_error(e)
    })?;
    Ok(out)
}
