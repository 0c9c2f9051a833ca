//! Sync with a Charm server: encrypted full snapshots through Charm FS, the server's
//! sequence counter as a ticket, and local-first writes (`docs/sync.md`).

pub mod charm;
pub mod engine;
pub mod join;
pub mod legacy;
pub mod levels;
mod progress;
pub mod rejoin;
pub mod restore;
pub mod snapshot;
pub mod status;

pub use engine::{clean_stale_temp_files, Remote, DEFAULT_TICKET_WAIT};
pub use progress::{SyncPhase, SyncProgress};
pub use status::{ChainShape, LastSync, RemoteStatus, StoreStatus};

#[cfg(test)]
mod tests;
