//! Sync with a Charm server: encrypted full snapshots through Charm FS, the server's
//! sequence counter as a ticket, and local-first writes (`docs/sync.md`).

pub mod charm;
pub mod engine;
pub mod legacy;
pub mod restore;
pub mod snapshot;

pub use engine::{Remote, DEFAULT_TICKET_WAIT};

#[cfg(test)]
mod tests;
