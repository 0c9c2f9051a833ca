//! Charm FS over HTTP (`charm/fs/fs.go`, `charm/server/http.go` v0.12.6): paths, listings, streaming
//! encrypted downloads and uploads.
//!
//! File contents are sasquatch files for the scrypt recipient whose password is the
//! text of encrypt key 0; path segments are AES-SIV lookup fields of key 0.

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::rc::Rc;

use serde::Deserialize;

use crate::crypto::lookup::{decrypt_lookup_field, encrypt_lookup_field};
use crate::crypto::sasquatch::{self, Decryptor, Encryptor, Identity, Recipient, CHUNK_SIZE};
use crate::crypto::EncryptKey;
use crate::error::{Error, Result};

/// Mode of uploaded files when the caller gives none: 0o660, what the Go kv client
/// sends (Go `fs.FileMode`, decimal on the wire).
pub const DEFAULT_FILE_MODE: u32 = 0o660;

/// The directory bit of a Go `fs.FileMode`.
#[cfg(any(test, feature = "unstable-internals"))]
pub const MODE_DIR: u32 = 1 << 31;

/// Largest directory listing we read (about 50,000 entries).
pub(crate) const MAX_LISTING: u64 = 16 << 20;

/// Bytes added to every ciphertext chunk (the Poly1305 tag).
const TAG_SIZE: u64 = 16;

/// One entry of a directory listing, with its name decrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    pub name: String,
    pub is_dir: bool,
    /// Size on the server (ciphertext bytes for files).
    pub size: u64,
    /// As the server sent it: RFC 3339 in the server's local zone.
    pub modtime: String,
    /// Go `fs.FileMode` bits ([`MODE_DIR`] for directories, permissions in the low 9).
    pub mode: u32,
}

/// The server's `FileInfo` JSON.
#[derive(Deserialize)]
pub(crate) struct WireInfo {
    name: String,
    #[serde(default)]
    is_dir: bool,
    #[serde(default)]
    size: i64,
    #[serde(default)]
    modtime: String,
    #[serde(default)]
    mode: u32,
    /// Absent for an empty directory.
    #[serde(default)]
    files: Vec<WireInfo>,
}

/// The non-empty segments of a plaintext path (`charm:` prefix, leading, trailing and
/// doubled slashes dropped; the server cleans those away anyway).
pub(crate) fn segments(path: &str) -> Vec<&str> {
    path.strip_prefix("charm:")
        .unwrap_or(path)
        .split('/')
        .filter(|s| !s.is_empty())
        .collect()
}

/// The request path `/v1/fs/<enc>/<enc>...` of a plaintext path (`/v1/fs/` for the
/// root).
pub(crate) fn url_path(key0: &EncryptKey, path: &str) -> Result<String> {
    let mut url = String::from("/v1/fs");
    let parts = segments(path);
    if parts.is_empty() {
        url.push('/');
    }
    for segment in parts {
        url.push('/');
        url.push_str(&encrypt_lookup_field(key0, segment)?);
    }
    Ok(url)
}

/// Decrypts the entries of a listing; like Go, one undecryptable name fails it all.
pub(crate) fn decrypt_listing(keys: &[EncryptKey], dir: WireInfo) -> Result<Vec<FileInfo>> {
    dir.files
        .into_iter()
        .map(|entry| {
            Ok(FileInfo {
                name: decrypt_lookup_field(keys, &entry.name)?,
                is_dir: entry.is_dir,
                size: u64::try_from(entry.size).unwrap_or(0),
                modtime: entry.modtime,
                mode: entry.mode,
            })
        })
        .collect()
}

/// The scrypt identities of all keys: the header is tried against each in one pass,
/// so no ciphertext has to be re-read (Go re-reads a consumed body, pitfall P9).
pub(crate) fn identities(keys: &[EncryptKey]) -> Vec<Identity> {
    keys.iter()
        .map(|k| Identity::scrypt(k.text().as_bytes()))
        .collect()
}

/// A downloaded file, decrypted as it is read.
///
/// Read errors are `io::Error`s wrapping the crate [`Error`]
/// ([`crate::crypto::sasquatch::into_crate_error`] recovers it): `Corrupt` for a
/// tampered or truncated file, `Network` when the connection fails.
pub struct FileReader {
    inner: Decryptor<NetworkReader>,
    mode: Option<u32>,
    encrypted_len: Option<u64>,
}

impl FileReader {
    pub(crate) fn new(
        body: Box<dyn Read + Send>,
        keys: &[EncryptKey],
        mode: Option<u32>,
        encrypted_len: Option<u64>,
    ) -> Result<Self> {
        let inner =
            sasquatch::decryptor(NetworkReader(body), &identities(keys)).map_err(|e| match e {
                e @ Error::Keys { .. } => e.reworded(|why| {
                    format!("the file is not encrypted with any of this account's keys ({why})")
                }),
                other => other,
            })?;
        Ok(FileReader {
            inner,
            mode,
            encrypted_len,
        })
    }

    /// The file's Go `fs.FileMode` (`X-File-Mode`), if the server sent one.
    #[cfg(any(test, feature = "unstable-internals"))]
    pub fn mode(&self) -> Option<u32> {
        self.mode
    }

    /// The size of the encrypted file (`Content-Length`), if the server sent one.
    pub fn encrypted_len(&self) -> Option<u64> {
        self.encrypted_len
    }
}

impl Read for FileReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

impl std::fmt::Debug for FileReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileReader")
            .field("mode", &self.mode)
            .field("encrypted_len", &self.encrypted_len)
            .finish_non_exhaustive()
    }
}

/// The HTTP body; its failures become `Error::Network` inside the `io::Error`.
pub(crate) struct NetworkReader(Box<dyn Read + Send>);

impl Read for NetworkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf).map_err(|e| {
            if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
                e
            } else {
                io::Error::new(
                    e.kind(),
                    Error::network("downloading the file failed").caused_by(e),
                )
            }
        })
    }
}

/// Length of the sasquatch file for `plain_len` plaintext bytes whose header and
/// payload nonce take `header_len` bytes: the payload is 64 KiB chunks plus a tag each,
/// and an empty plaintext is still one (empty, tagged) chunk.
pub(crate) fn encrypted_len(header_len: u64, plain_len: u64) -> u64 {
    let chunks = plain_len.div_ceil(CHUNK_SIZE as u64).max(1);
    header_len + plain_len + chunks * TAG_SIZE
}

/// The multipart body of an upload as one reader: part header, the file encrypted on
/// the fly from a plaintext reader of exactly `plain_len` bytes, closing boundary.
/// Its length is known before the first byte is sent.
pub(crate) struct MultipartUpload<R: Read> {
    boundary: String,
    suffix: Vec<u8>,
    /// Bytes of the suffix already handed out.
    suffix_pos: usize,
    source: R,
    plain_len: u64,
    plain_read: u64,
    encryptor: Option<Encryptor<SharedBuf>>,
    /// Ciphertext not yet handed out (starts with the multipart prefix).
    sink: SharedBuf,
    sink_pos: usize,
    total_len: u64,
    sent: u64,
    /// The first failure, kept because the HTTP client reports it only as I/O.
    failure: Option<Error>,
}

/// Boundary of our multipart bodies: 60 random hex characters, as Go's writer uses.
fn boundary() -> String {
    let mut bytes = [0u8; 30];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    hex::encode(bytes)
}

impl<R: Read> MultipartUpload<R> {
    pub(crate) fn new(source: R, plain_len: u64, key0: &EncryptKey) -> Result<Self> {
        let boundary = boundary();
        // The server ignores the filename; Go puts the plaintext path there.
        let prefix = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"data\"; filename=\"data\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .into_bytes();
        let suffix = format!("\r\n--{boundary}--\r\n").into_bytes();
        let sink = SharedBuf::default();
        sink.0.borrow_mut().extend_from_slice(&prefix);
        let encryptor =
            sasquatch::encryptor(sink.clone(), &[Recipient::scrypt(key0.text().as_bytes())])?;
        let header_len = (sink.0.borrow().len() - prefix.len()) as u64;
        let total_len =
            prefix.len() as u64 + encrypted_len(header_len, plain_len) + suffix.len() as u64;
        Ok(MultipartUpload {
            boundary,
            suffix,
            suffix_pos: 0,
            source,
            plain_len,
            plain_read: 0,
            encryptor: Some(encryptor),
            sink,
            sink_pos: 0,
            total_len,
            sent: 0,
            failure: None,
        })
    }

    /// The request's `Content-Type`.
    pub(crate) fn content_type(&self) -> String {
        format!("multipart/form-data; boundary={}", self.boundary)
    }

    /// The exact body length (`Content-Length`).
    pub(crate) fn len(&self) -> u64 {
        self.total_len
    }

    /// Why reading failed, if it did.
    pub(crate) fn take_failure(&mut self) -> Option<Error> {
        self.failure.take()
    }

    /// Encrypts more plaintext into the sink; at the end of the source, finishes the
    /// file. Returns false once everything has been produced.
    fn produce(&mut self) -> Result<bool> {
        let Some(encryptor) = self.encryptor.as_mut() else {
            return Ok(false);
        };
        let mut buf = vec![0u8; CHUNK_SIZE];
        let want = (self.plain_len - self.plain_read).min(buf.len() as u64) as usize;
        let n = if want == 0 {
            // Exactly plain_len bytes read: the source must be at its end.
            let extra = read_some(&mut self.source, &mut buf[..1])?;
            if extra != 0 {
                return Err(Error::invalid(format!(
                    "the upload source holds more than the announced {} bytes",
                    self.plain_len
                )));
            }
            0
        } else {
            read_some(&mut self.source, &mut buf[..want])?
        };
        if n == 0 {
            if self.plain_read != self.plain_len {
                return Err(Error::invalid(format!(
                    "the upload source ended after {} of the announced {} bytes",
                    self.plain_read, self.plain_len
                )));
            }
            let encryptor = self.encryptor.take().expect("checked above");
            encryptor.finish()?;
            let produced = self.sent + (self.sink.0.borrow().len() - self.sink_pos) as u64;
            let expected = self.total_len - self.suffix.len() as u64;
            if produced != expected {
                return Err(Error::internal(format!(
                    "encrypted upload is {produced} bytes, computed {expected}"
                )));
            }
            return Ok(true);
        }
        self.plain_read += n as u64;
        encryptor
            .write_all(&buf[..n])
            .map_err(sasquatch::into_crate_error)?;
        Ok(true)
    }
}

/// One `read` of the source, retrying interruptions.
fn read_some(source: &mut impl Read, buf: &mut [u8]) -> Result<usize> {
    loop {
        match source.read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io("reading the upload source", e)),
        }
    }
}

impl<R: Read> Read for MultipartUpload<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            {
                let mut sink = self.sink.0.borrow_mut();
                if self.sink_pos < sink.len() {
                    let n = (sink.len() - self.sink_pos).min(out.len());
                    out[..n].copy_from_slice(&sink[self.sink_pos..self.sink_pos + n]);
                    self.sink_pos += n;
                    self.sent += n as u64;
                    if self.sink_pos == sink.len() {
                        sink.clear();
                        self.sink_pos = 0;
                    }
                    return Ok(n);
                }
            }
            if self.encryptor.is_none() {
                let rest = &self.suffix[self.suffix_pos..];
                let n = rest.len().min(out.len());
                out[..n].copy_from_slice(&rest[..n]);
                self.suffix_pos += n;
                self.sent += n as u64;
                return Ok(n);
            }
            if let Err(e) = self.produce() {
                let message = e.to_string();
                self.failure.get_or_insert(e);
                return Err(io::Error::other(message));
            }
        }
    }
}

/// A `Write` target shared between the encryptor and the upload reader.
#[derive(Clone, Default)]
struct SharedBuf(Rc<RefCell<Vec<u8>>>);

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> EncryptKey {
        EncryptKey::from_text(
            "k",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==",
            None,
        )
        .unwrap()
    }

    #[test]
    fn paths_drop_empty_segments_and_the_charm_prefix() {
        assert_eq!(segments("charm:/a//b/"), ["a", "b"]);
        assert!(segments("/").is_empty());
        assert!(segments("charm:").is_empty());
        assert_eq!(url_path(&key(), "").unwrap(), "/v1/fs/");
        // tests/vectors/README.md (AES-SIV lookup fields): "a" and "1" with the test key.
        assert_eq!(
            url_path(&key(), "charm:/a/1").unwrap(),
            "/v1/fs/91b3e0fcc264008c29eee1b213a376f052/8b41469fbf59d64c11c65f067fe7bd5df5"
        );
    }

    #[test]
    fn encrypted_length_matches_the_go_vectors() {
        // sasquatch framing: 11 bytes -> 182-byte file; 0 -> 171; 65536 -> +65568 payload; 65537 -> +65585.
        let header = 171 - 16;
        assert_eq!(encrypted_len(header, 0), 171);
        assert_eq!(encrypted_len(header, 11), 182);
        assert_eq!(encrypted_len(header, 65536), header + 65536 + 16);
        assert_eq!(encrypted_len(header, 65537), header + 65537 + 32);
    }

    fn upload_body(plain: &[u8], announced: u64) -> (Result<Vec<u8>>, u64, String) {
        let mut upload = MultipartUpload::new(plain, announced, &key()).unwrap();
        let len = upload.len();
        let content_type = upload.content_type();
        let mut body = Vec::new();
        let result = match upload.read_to_end(&mut body) {
            Ok(_) => Ok(body),
            Err(_) => Err(upload.take_failure().expect("failure recorded")),
        };
        (result, len, content_type)
    }

    #[test]
    fn multipart_body_has_the_announced_length_and_decrypts() {
        for size in [0usize, 1, 65535, 65536, 65537, 200_000] {
            let plain: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            let (body, len, content_type) = upload_body(&plain, size as u64);
            let body = body.unwrap();
            assert_eq!(body.len() as u64, len, "size {size}");
            let boundary = content_type
                .strip_prefix("multipart/form-data; boundary=")
                .unwrap();
            assert_eq!(boundary.len(), 60);
            let head = format!("--{boundary}\r\n");
            assert!(body.starts_with(head.as_bytes()));
            let start = body.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            let tail = format!("\r\n--{boundary}--\r\n");
            assert!(body.ends_with(tail.as_bytes()));
            let file = &body[start..body.len() - tail.len()];
            let decrypted = sasquatch::decrypt(file, &identities(&[key()])).unwrap();
            assert_eq!(decrypted, plain, "size {size}");
        }
    }

    #[test]
    fn source_of_the_wrong_length_fails_the_upload() {
        let (short, _, _) = upload_body(b"abc", 4);
        assert_eq!(short.unwrap_err().kind(), crate::ErrorKind::InvalidArgument);
        let (long, _, _) = upload_body(b"abcde", 4);
        assert_eq!(long.unwrap_err().kind(), crate::ErrorKind::InvalidArgument);
    }

    /// A download that times out half-way through a file: the decryptor reports a
    /// network error whose source is the body's `io::Error` (kind `TimedOut`), and
    /// repeats the failure on later reads.
    #[test]
    fn a_failed_download_keeps_the_io_error_through_the_decryptor() {
        struct TimesOutAfter(Vec<u8>);
        impl Read for TimesOutAfter {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0.is_empty() {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "timed out reading"));
                }
                let n = buf.len().min(self.0.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0.drain(..n);
                Ok(n)
            }
        }
        let keys = [key()];
        let plain = vec![7u8; 3 * 65536];
        let recipients: Vec<_> = keys
            .iter()
            .map(|k| sasquatch::Recipient::scrypt(k.text().as_bytes()))
            .collect();
        let file = sasquatch::encrypt(&plain, &recipients).unwrap();
        let body = TimesOutAfter(file[..file.len() / 2].to_vec());
        let mut reader = sasquatch::decryptor(NetworkReader(Box::new(body)), &identities(&keys))
            .unwrap();
        let failed = reader.read_to_end(&mut Vec::new()).unwrap_err();
        let err = sasquatch::into_crate_error(failed);
        assert_eq!(err.kind(), crate::ErrorKind::Network, "{err}");
        let io = crate::error::source_of::<io::Error>(&err).expect("io::Error source");
        assert_eq!(io.kind(), io::ErrorKind::TimedOut, "{err}");
        assert!(err.to_string().ends_with("timed out reading"), "{err}");

        let again = sasquatch::into_crate_error(reader.read(&mut [0u8; 16]).unwrap_err());
        assert_eq!(again.kind(), crate::ErrorKind::Network, "{again}");
        assert_eq!(again.to_string(), err.to_string());
    }
}
