//! Progress reports of a sync, for progress bars.

/// What a sync is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPhase {
    /// Fetching and decrypting a remote snapshot.
    Download,
    /// Encrypting and uploading a local snapshot.
    Upload,
}

/// Progress of one transfer within a sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncProgress {
    pub phase: SyncPhase,
    /// Bytes transferred so far.
    pub done: u64,
    /// Bytes to transfer in all (0 when unknown).
    pub total: u64,
}
