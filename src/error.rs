//! The one error type of the crate.
//!
//! Every fallible function returns [`Error`]. Each variant belongs to exactly one
//! [`ErrorKind`]; the C ABI, the Go binding and the Python binding map kinds (never
//! messages) to their own status codes, sentinel errors and exception classes.
//! Messages never contain key or value bytes.

use std::io;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in charm-kv.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The key does not exist in the database.
    #[error("key not found")]
    NotFound,

    /// The database (named, shortened if long) does not exist: `delete_database` of a
    /// name with no file.
    #[error("no database named {0}")]
    DatabaseNotFound(String),

    /// The caller passed something unusable (empty or path-escaping db name, bad option...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// A file-system operation failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },

    /// SQLite reported an error that is not contention or corruption.
    #[error("database error: {0}")]
    Database(#[source] DatabaseError),

    /// Stored or received bytes failed authentication, parsing or an integrity check.
    #[error("corrupt data: {0}")]
    Corrupt(String),

    /// No usable encryption key, or the keys at hand do not decrypt the data.
    #[error("encryption keys: {0}")]
    Keys(String),

    /// SSH authentication or JWT handling with the Charm server failed.
    #[error("authentication failed: {0}")]
    Auth(String),

    /// The Charm server could not be reached or the connection broke.
    #[error("network error: {0}")]
    Network(String),

    /// The Charm server answered with an error status.
    #[error("server error {status}: {message}")]
    Server { status: u16, message: String },

    /// The database stayed locked by another writer past the busy timeout.
    #[error("database busy: {0}")]
    Busy(String),

    /// A file on the server was still being written (its listing, its length and its
    /// contents disagree) for as long as sync was prepared to wait. Retryable, like
    /// [`Error::Busy`].
    #[error("server file not ready: {0}")]
    NotReady(String),

    /// The store (or batch, or iterator) was closed and cannot be used any more.
    #[error("store is closed")]
    Closed,

    /// An operation needs a Charm server and none is configured (local mode).
    #[error("no Charm server configured: set CHARM_HOST to sync with a self-hosted Charm server")]
    NotConfigured,

    /// The operation would throw away writes that were never pushed to the server.
    #[error("{0} local write(s) not yet pushed to the server; sync first or force the reset")]
    PendingWrites(u64),

    /// A bug in charm-kv, or a panic caught at the C boundary.
    #[error("internal error: {0}")]
    Internal(String),

    /// The handle was opened read-only ([`crate::Options::read_only`]) and the
    /// operation would write: a set, delete, batch commit, sync, reset or database
    /// deletion, or an open that would have to create or upgrade something.
    #[error("read-only: {0}")]
    ReadOnly(String),

    /// Linking a device into an account did not happen: see [`LinkFailure`] for why.
    /// Nothing changed on either device or on the server.
    #[error("link failed: {message}")]
    Link {
        failure: LinkFailure,
        message: String,
    },
}

/// Why a link ([`crate::account::Account::link_generate`] /
/// [`crate::account::Account::link_request`]) did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LinkFailure {
    /// The device that showed the code said no.
    Denied,
    /// No device used the code, or nobody answered, within the server's minute (or
    /// the caller's deadline).
    TimedOut,
    /// The server knows no such code (mistyped, expired or already used).
    InvalidCode,
    /// The caller cancelled it.
    Cancelled,
    /// The server reported an error while linking.
    ServerError,
}

/// An error SQLite reported. Opaque on purpose: the SQLite binding charm-kv uses is not
/// part of its API (its message and `source()` chain are all there is).
#[derive(Debug)]
pub struct DatabaseError(Box<dyn std::error::Error + Send + Sync>);

impl std::fmt::Display for DatabaseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for DatabaseError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// The category of an [`Error`]: what a caller can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    NotFound,
    InvalidArgument,
    Io,
    Corrupt,
    Keys,
    Auth,
    Network,
    Server,
    Busy,
    Closed,
    NotConfigured,
    PendingWrites,
    Internal,
    ReadOnly,
    Link,
}

impl Error {
    /// The category of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound | Error::DatabaseNotFound(_) => ErrorKind::NotFound,
            Error::InvalidArgument(_) => ErrorKind::InvalidArgument,
            Error::Io { .. } | Error::Database(_) => ErrorKind::Io,
            Error::Corrupt(_) => ErrorKind::Corrupt,
            Error::Keys(_) => ErrorKind::Keys,
            Error::Auth(_) => ErrorKind::Auth,
            Error::Network(_) => ErrorKind::Network,
            Error::Server { .. } => ErrorKind::Server,
            Error::Busy(_) | Error::NotReady(_) => ErrorKind::Busy,
            Error::Closed => ErrorKind::Closed,
            Error::NotConfigured => ErrorKind::NotConfigured,
            Error::PendingWrites(_) => ErrorKind::PendingWrites,
            Error::Internal(_) => ErrorKind::Internal,
            Error::ReadOnly(_) => ErrorKind::ReadOnly,
            Error::Link { .. } => ErrorKind::Link,
        }
    }

    /// Why a link did not happen, for an [`Error::Link`].
    pub fn link_failure(&self) -> Option<LinkFailure> {
        match self {
            Error::Link { failure, .. } => Some(*failure),
            _ => None,
        }
    }

    pub(crate) fn link(failure: LinkFailure, message: impl Into<String>) -> Self {
        Error::Link {
            failure,
            message: message.into(),
        }
    }

    /// Wraps an I/O error with what was being done (and to which path).
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// Turns an error from a `Read` back into the crate error it carries, if any:
    /// streaming decryptors report tampering as `io::Error::other(Error::Corrupt(..))`.
    pub fn from_read(context: impl Into<String>, err: io::Error) -> Self {
        let context = context.into();
        // Readers stacked on readers (decryptor over network body) may wrap twice.
        let mut err = err;
        loop {
            let wrapped = err
                .get_ref()
                .map(|inner| inner.is::<Error>() || inner.is::<io::Error>());
            if wrapped != Some(true) {
                return Error::io(context, err);
            }
            let inner = err.into_inner().expect("checked above");
            match inner.downcast::<Error>() {
                Ok(crate_error) => return *crate_error,
                Err(other) => match other.downcast::<io::Error>() {
                    Ok(io_error) => err = *io_error,
                    Err(_) => return Error::Internal("lost a wrapped error".into()),
                },
            }
        }
    }

    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidArgument(msg.into())
    }

    pub(crate) fn corrupt(msg: impl Into<String>) -> Self {
        Error::Corrupt(msg.into())
    }
}

/// Longest excerpt of caller text (names, paths) quoted in a message, in characters.
const EXCERPT_CHARS: usize = 64;

/// `text` quoted for an error message, cut to its first 64 characters plus "…": a
/// caller's 64 KiB name must not make a 64 KiB message.
pub(crate) fn quoted(text: &str) -> String {
    match text.char_indices().nth(EXCERPT_CHARS) {
        None => format!("{text:?}"),
        Some((end, _)) => format!("{:?}…", &text[..end]),
    }
}

/// A failure of the SQLite layer, which `?` turns into an [`Error`] through the
/// blanket `From` below. Not `impl From<rusqlite::Error> for Error`: that impl would be
/// public API naming a rusqlite type, so a rusqlite upgrade would change our API. The
/// trait lives in a crate-private module: nothing outside the crate can name or
/// implement it.
#[allow(unnameable_types)]
pub trait SqliteFailure {
    fn into_error(self) -> Error;
}

impl<E: SqliteFailure> From<E> for Error {
    fn from(err: E) -> Self {
        err.into_error()
    }
}

impl SqliteFailure for rusqlite::types::FromSqlError {
    fn into_error(self) -> Error {
        Error::Corrupt(format!("unexpected column type in the database: {self}"))
    }
}

impl SqliteFailure for rusqlite::Error {
    fn into_error(self) -> Error {
        use rusqlite::ErrorCode;
        let err = self;
        match err.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => {
                Error::Busy(err.to_string())
            }
            Some(ErrorCode::DatabaseCorrupt) | Some(ErrorCode::NotADatabase) => {
                Error::Corrupt(err.to_string())
            }
            // A row of the wrong type (an INTEGER where a BLOB is stored, say) is bad
            // data, not a failed operation.
            _ if matches!(
                err,
                rusqlite::Error::InvalidColumnType(..)
                    | rusqlite::Error::FromSqlConversionFailure(..)
                    | rusqlite::Error::IntegralValueOutOfRange(..)
            ) =>
            {
                Error::Corrupt(format!("unexpected data in the database: {err}"))
            }
            _ => Error::Database(DatabaseError(Box::new(err))),
        }
    }
}
