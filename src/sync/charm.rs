//! The Charm server as a sync [`Remote`]: database `N` is the sequence `N` and the
//! folder `N/` of Charm FS; names and contents are encrypted by [`CharmClient`].

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Mutex;

use super::Remote;
use crate::cloud::{CharmClient, DEFAULT_FILE_MODE};
use crate::error::{Error, Result};

/// Copy buffer for downloads and uploads (the sasquatch chunk size).
const BUFFER: usize = 64 * 1024;

/// Sequences are stored as SQLite integers: anything above this is a hostile server.
const MAX_SEQ: u64 = i64::MAX as u64;

pub struct CharmRemote<'a> {
    client: &'a CharmClient,
    db: &'a str,
    /// Ciphertext sizes from the last listing: a download may not exceed its file's.
    sizes: Mutex<HashMap<u64, u64>>,
}

impl<'a> CharmRemote<'a> {
    pub fn new(client: &'a CharmClient, db: &'a str) -> Self {
        CharmRemote {
            client,
            db,
            sizes: Mutex::new(HashMap::new()),
        }
    }

    fn file(&self, seq: u64) -> String {
        format!("{}/{seq}", self.db)
    }

    /// Removes the database's folder (every snapshot) from the server.
    pub fn remove_all(&self) -> Result<()> {
        self.client.fs_remove(self.db)
    }
}

impl Remote for CharmRemote<'_> {
    fn current_seq(&self) -> Result<u64> {
        checked_seq(self.client.seq_get(self.db)?)
    }

    fn next_seq(&self) -> Result<u64> {
        checked_seq(self.client.seq_next(self.db)?)
    }

    fn list(&self) -> Result<Vec<u64>> {
        let Some(entries) = self.client.fs_list(self.db)? else {
            return Ok(Vec::new());
        };
        // Names that are not sequence numbers are not ours to interpret; the Go client
        // fails on them, we leave them alone. 0 is never a snapshot (the Go client starts at 1).
        let files: HashMap<u64, u64> = entries
            .iter()
            .filter(|e| !e.is_dir)
            .filter_map(|e| Some((e.name.parse::<u64>().ok()?, e.size)))
            .filter(|&(s, _)| s > 0 && s <= MAX_SEQ)
            .collect();
        let mut seqs: Vec<u64> = files.keys().copied().collect();
        seqs.sort_unstable();
        *crate::store::lock(&self.sizes) = files;
        Ok(seqs)
    }

    fn download(
        &self,
        seq: u64,
        out: &mut dyn Write,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<()> {
        let listed = self.listed_size(seq);
        let mut reader = self.client.fs_read(&self.file(seq))?;
        // charm serve writes an upload in place: a listing made meanwhile shows a file
        // that is still growing, and a download may catch it at another length.
        if let (Some(listed), Some(sent)) = (listed, reader.encrypted_len()) {
            if listed != sent {
                return Err(Error::not_ready(format!(
                    "file {seq} was listed with {listed} bytes and is sent with {sent}"
                )));
            }
        }
        let total = reader.encrypted_len().or(listed).unwrap_or(0);
        // Plaintext is never longer than the ciphertext the server said it holds: an
        // endless or swollen body is cut off instead of filling the disk.
        let limit = listed.or(reader.encrypted_len());
        let mut buf = vec![0u8; BUFFER];
        let mut done = 0u64;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::from_read("downloading a snapshot", e)),
            };
            out.write_all(&buf[..n])
                .map_err(|e| Error::io("writing a downloaded snapshot", e))?;
            done += n as u64;
            if limit.is_some_and(|limit| done > limit) {
                return Err(Error::not_ready(format!(
                    "the server sent more than the {} bytes it listed for file {seq}",
                    limit.unwrap_or(0)
                )));
            }
            progress(done.min(total.max(done)), total);
        }
        // `done` counts decrypted bytes, a little less than the ciphertext `total`:
        // the last report says the transfer is complete.
        let end = total.max(done);
        progress(end, end);
        Ok(())
    }

    fn listed_size(&self, seq: u64) -> Option<u64> {
        crate::store::lock(&self.sizes).get(&seq).copied()
    }

    fn upload(&self, seq: u64, path: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result<()> {
        let attempt = |progress: &mut dyn FnMut(u64, u64)| -> Result<()> {
            let file = std::fs::File::open(path)
                .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
            let len = file
                .metadata()
                .map_err(|e| Error::io(format!("reading {}", path.display()), e))?
                .len();
            let reader = Progress {
                inner: file,
                done: 0,
                total: len,
                progress,
            };
            self.client
                .fs_write(&self.file(seq), reader, len, Some(DEFAULT_FILE_MODE))
        };
        match attempt(progress) {
            // The JWT expired mid-way; the client dropped it, so one retry re-authenticates.
            Err(Error::Auth { .. }) => attempt(progress),
            other => other,
        }
    }

    fn remove(&self, seq: u64) -> Result<()> {
        self.client.fs_remove(&self.file(seq))
    }
}

fn checked_seq(seq: u64) -> Result<u64> {
    if seq > MAX_SEQ {
        return Err(Error::server(
            200,
            format!("sequence number {seq} is out of range"),
        ));
    }
    Ok(seq)
}

/// Reports bytes read from a file being uploaded.
struct Progress<'p, R> {
    inner: R,
    done: u64,
    total: u64,
    progress: &'p mut dyn FnMut(u64, u64),
}

impl<R: Read> Read for Progress<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        (self.progress)(self.done, self.total);
        Ok(n)
    }
}
