//! STREAM payload encryption: ChaCha20-Poly1305 over 64 KiB chunks, nonce = 11-byte
//! big-endian chunk counter plus a last-chunk flag byte (`muesli/sasquatch` `stream/`).

use std::io::{self, Read, Write};

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Nonce, Tag};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::error::Error;

use super::FileKey;

/// Plaintext bytes per chunk.
pub const CHUNK_SIZE: usize = 64 * 1024;
const TAG_SIZE: usize = 16;
const ENC_CHUNK_SIZE: usize = CHUNK_SIZE + TAG_SIZE;
/// Size of the random payload nonce that salts the payload key.
pub(crate) const PAYLOAD_NONCE_SIZE: usize = 16;

/// `HKDF-SHA256(file key, salt = payload nonce, info = "payload")`.
pub(super) fn payload_key(file_key: &FileKey, nonce: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut key = Zeroizing::new([0u8; 32]);
    hkdf::Hkdf::<Sha256>::new(Some(nonce), file_key.as_slice())
        .expand(b"payload", key.as_mut_slice())
        .expect("32 bytes is a valid HKDF-SHA256 length");
    key
}

pub(super) fn payload_cipher(file_key: &FileKey, nonce: &[u8]) -> ChaCha20Poly1305 {
    ChaCha20Poly1305::new(payload_key(file_key, nonce).as_slice().into())
}

/// The per-chunk nonce. A u64 counter fills the low 8 of the 11 counter bytes;
/// 2^64 chunks of 64 KiB cannot be reached, but overflow is still checked.
#[derive(Default)]
pub(super) struct ChunkNonce {
    pub(super) counter: u64,
}

impl ChunkNonce {
    pub(super) fn nonce(&self, last: bool) -> Nonce {
        let mut n = [0u8; 12];
        n[3..11].copy_from_slice(&self.counter.to_be_bytes());
        n[11] = u8::from(last);
        n.into()
    }

    fn advance(&mut self) -> io::Result<()> {
        self.counter = self
            .counter
            .checked_add(1)
            .ok_or_else(|| io::Error::other("sasquatch: STREAM chunk counter overflow"))?;
        Ok(())
    }
}

/// Wraps a crate error for the `io::Read`/`io::Write` interfaces.
pub(crate) fn corrupt_io(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, Error::corrupt(msg))
}

/// Encrypts plaintext into STREAM chunks written to `out`.
///
/// Matches Go's writer: a full chunk is sealed as non-last only once more data
/// arrives, so `finish` seals the final chunk, which is full when the plaintext is a
/// non-zero multiple of 64 KiB and empty only for an empty plaintext.
pub(crate) struct StreamWriter<W: Write> {
    out: W,
    cipher: ChaCha20Poly1305,
    nonce: ChunkNonce,
    /// Plaintext of the pending chunk; room for the tag is reserved.
    buf: Zeroizing<Vec<u8>>,
    failed: bool,
}

impl<W: Write> StreamWriter<W> {
    pub fn new(out: W, cipher: ChaCha20Poly1305) -> Self {
        StreamWriter {
            out,
            cipher,
            nonce: ChunkNonce::default(),
            buf: Zeroizing::new(Vec::with_capacity(ENC_CHUNK_SIZE)),
            failed: false,
        }
    }

    fn seal_and_write(&mut self, last: bool) -> io::Result<()> {
        let tag = self
            .cipher
            .encrypt_in_place_detached(&self.nonce.nonce(last), &[], &mut self.buf)
            .map_err(|_| io::Error::other("sasquatch: chunk encryption failed"))?;
        self.buf.extend_from_slice(&tag);
        let res = self.out.write_all(&self.buf);
        self.buf.clear();
        res?;
        self.nonce.advance()
    }

    pub fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        if self.failed {
            return Err(io::Error::other(
                "sasquatch: encryptor failed earlier; the output is incomplete",
            ));
        }
        let total = data.len();
        while !data.is_empty() {
            if self.buf.len() == CHUNK_SIZE {
                // More data follows a full chunk, so that chunk is not the last.
                if let Err(e) = self.seal_and_write(false) {
                    self.failed = true;
                    return Err(e);
                }
            }
            let take = (CHUNK_SIZE - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        Ok(total)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    pub fn finish(mut self) -> io::Result<W> {
        if self.failed {
            return Err(io::Error::other(
                "sasquatch: encryptor failed earlier; the output is incomplete",
            ));
        }
        self.seal_and_write(true)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Why a [`StreamReader`] stopped; kept so later reads repeat the error.
#[derive(Clone)]
enum Failure {
    Corrupt(String),
    /// The source failed with a network error (an HTTP body): keeps its category.
    Network(String),
    Io(io::ErrorKind, String),
}

impl Failure {
    fn to_io(&self) -> io::Error {
        match self {
            Failure::Corrupt(msg) => corrupt_io(msg.clone()),
            Failure::Network(msg) => io::Error::other(Error::network(msg.clone())),
            Failure::Io(kind, msg) => io::Error::new(*kind, msg.clone()),
        }
    }
}

enum State {
    Reading,
    Done,
    Failed(Failure),
}

/// Decrypts STREAM chunks from `src`. A chunk's plaintext is handed out only after
/// its tag verified; the end of the stream is accepted only after a chunk that
/// verified with the last flag, and nothing may follow that chunk.
pub(crate) struct StreamReader<R: Read> {
    src: R,
    cipher: ChaCha20Poly1305,
    nonce: ChunkNonce,
    /// Ciphertext in, plaintext out (in place); `pos..end` is unread plaintext.
    buf: Zeroizing<Vec<u8>>,
    pos: usize,
    end: usize,
    state: State,
    /// The crate error a failed read of `src` carried, returned (with its source) by
    /// the first read that fails; later reads repeat the [`Failure`]'s text, as an
    /// error value cannot be cloned.
    source_error: Option<Error>,
}

/// Reads until `buf` is full or the source ends; returns the count.
fn read_full<R: Read>(src: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match src.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The [`Failure`] of a read of the source that failed with `e`; the crate error it
/// carried goes to `first` when its category is kept (network, corrupt).
fn source_failure(e: io::Error, first: &mut Option<Error>) -> Failure {
    let kind = e.kind();
    let error = Error::from_read("reading the payload", e);
    let failure = match &error {
        Error::Network { .. } => Failure::Network(error.detail()),
        Error::Corrupt { .. } => Failure::Corrupt(error.detail()),
        other => return Failure::Io(kind, other.to_string()),
    };
    *first = Some(error);
    failure
}

impl<R: Read> StreamReader<R> {
    pub fn new(src: R, cipher: ChaCha20Poly1305) -> Self {
        StreamReader {
            src,
            cipher,
            nonce: ChunkNonce::default(),
            buf: Zeroizing::new(vec![0u8; ENC_CHUNK_SIZE]),
            pos: 0,
            end: 0,
            state: State::Reading,
            source_error: None,
        }
    }

    #[cfg(any(test, feature = "unstable-internals"))]
    pub fn into_inner(self) -> R {
        self.src
    }

    fn open(&mut self, len: usize, last: bool) -> bool {
        let (body, tag) = self.buf[..len].split_at_mut(len - TAG_SIZE);
        let tag = Tag::clone_from_slice(tag);
        // The AEAD checks the tag before decrypting, so on failure `body` is
        // untouched and can be retried with the other flag.
        self.cipher
            .decrypt_in_place_detached(&self.nonce.nonce(last), &[], body, &tag)
            .is_ok()
    }

    /// Reads, authenticates and decrypts the next chunk into `buf`.
    fn next_chunk(&mut self) -> std::result::Result<(), Failure> {
        let n = read_full(&mut self.src, &mut self.buf)
            .map_err(|e| source_failure(e, &mut self.source_error))?;
        if n == 0 {
            return Err(Failure::Corrupt(
                "sasquatch: payload truncated (no final chunk)".into(),
            ));
        }
        if n < TAG_SIZE {
            return Err(Failure::Corrupt(
                "sasquatch: payload truncated (chunk shorter than its tag)".into(),
            ));
        }
        let last = if n < ENC_CHUNK_SIZE {
            // A short chunk can only be the last one.
            if !self.open(n, true) {
                return Err(Failure::Corrupt(
                    "sasquatch: failed to authenticate the final payload chunk".into(),
                ));
            }
            true
        } else if self.open(n, false) {
            false
        } else if self.open(n, true) {
            // A full final chunk: the file must end here.
            let mut probe = [0u8; 1];
            if read_full(&mut self.src, &mut probe)
                .map_err(|e| source_failure(e, &mut self.source_error))?
                != 0
            {
                return Err(Failure::Corrupt(
                    "sasquatch: data after the final payload chunk".into(),
                ));
            }
            true
        } else {
            return Err(Failure::Corrupt(
                "sasquatch: failed to authenticate a payload chunk".into(),
            ));
        };
        self.nonce
            .advance()
            .map_err(|e| Failure::Corrupt(e.to_string()))?;
        self.pos = 0;
        self.end = n - TAG_SIZE;
        if last {
            self.state = State::Done;
        }
        Ok(())
    }

    pub fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.pos < self.end {
                let n = (self.end - self.pos).min(out.len());
                out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            match &self.state {
                State::Done => return Ok(0),
                State::Failed(f) => return Err(f.to_io()),
                State::Reading => {}
            }
            if out.is_empty() {
                return Ok(0);
            }
            if let Err(f) = self.next_chunk() {
                let err = match (self.source_error.take(), &f) {
                    (Some(first), Failure::Corrupt(_)) => {
                        io::Error::new(io::ErrorKind::InvalidData, first)
                    }
                    (Some(first), _) => io::Error::other(first),
                    (None, _) => f.to_io(),
                };
                self.state = State::Failed(f);
                return Err(err);
            }
            // An empty final chunk ends the loop through State::Done.
        }
    }
}
