//! The one error type of the crate.
//!
//! Every fallible function returns [`Error`]. Each variant belongs to exactly one
//! [`ErrorKind`]; the C ABI, the Go binding and the Python binding map kinds (never
//! messages) to their own status codes, sentinel errors and exception classes.
//! Messages never contain key or value bytes.
//!
//! The error model is kind + message + boxed source. A variant that says something
//! carries a `message` (what failed, in words) and, when the failure came from another
//! error value (an `io::Error` inside a network failure, a `ureq` or `russh` error, a
//! `serde_json` or `base64` error...), that error as `source`: a
//! `Box<dyn std::error::Error + Send + Sync>`, so no foreign type is part of the API
//! and a Rust caller can walk [`std::error::Error::source`] and downcast. `Display` is
//! "`<kind prefix>: <message>: <source>`": the C ABI, Go and Python see only the
//! message, so it keeps the cause's text (a report that prints the whole chain shows
//! the source twice). A source is attached only where its own `Display` and `Debug`
//! carry no key or value bytes (so never a `FromUtf8Error`, which holds the bytes).
//! The variants with a message are `#[non_exhaustive]`: fields can be added later;
//! inside the crate they are built with `Error::corrupt`, `Error::network`... and
//! `Error::caused_by`.

use std::fmt;
use std::io;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The source of an [`Error`]: any error value, boxed, so that no foreign type is
/// part of the API.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

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
    #[error("invalid argument: {message}{}", Cause(.source))]
    #[non_exhaustive]
    InvalidArgument {
        message: String,
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },

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
    #[error("corrupt data: {message}{}", Cause(.source))]
    #[non_exhaustive]
    Corrupt {
        message: String,
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },

    /// No usable encryption key, or the keys at hand do not decrypt the data.
    #[error("encryption keys: {message}{}", Cause(.source))]
    #[non_exhaustive]
    Keys {
        message: String,
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },

    /// SSH authentication or JWT handling with the Charm server failed.
    #[error("authentication failed: {message}{}", Cause(.source))]
    #[non_exhaustive]
    Auth {
        message: String,
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },

    /// The Charm server could not be reached or the connection broke.
    #[error("network error: {message}{}", Cause(.source))]
    #[non_exhaustive]
    Network {
        message: String,
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },

    /// The Charm server answered with an error status.
    #[error("server error {status}: {message}{}", Cause(.source))]
    #[non_exhaustive]
    Server {
        status: u16,
        message: String,
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },

    /// The database stayed locked by another writer past the busy timeout, or (deleting
    /// it) a handle in this or another process has it open.
    #[error("database busy: {message}{}", Cause(.source))]
    #[non_exhaustive]
    Busy {
        message: String,
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },

    /// A file on the server was still being written (its listing, its length and its
    /// contents disagree) for as long as sync was prepared to wait. Retryable, like
    /// [`Error::Busy`].
    #[error("server file not ready: {message}{}", Cause(.source))]
    #[non_exhaustive]
    NotReady {
        message: String,
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },

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
    #[error("internal error: {message}{}", Cause(.source))]
    #[non_exhaustive]
    Internal {
        message: String,
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },

    /// The handle was opened read-only ([`crate::Options::read_only`]) and the
    /// operation would write: a set, delete, batch commit, sync, reset or database
    /// deletion, or an open that would have to create or upgrade something.
    #[error("read-only: {message}{}", Cause(.source))]
    #[non_exhaustive]
    ReadOnly {
        message: String,
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },

    /// Linking a device into an account did not happen: see [`LinkFailure`] for why.
    /// Nothing changed on either device or on the server.
    #[error("link failed: {message}{}", Cause(.source))]
    #[non_exhaustive]
    Link {
        failure: LinkFailure,
        message: String,
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },
}

/// ": <source>" after a message when there is a source, so `Display` still says what
/// caused the failure (the C, Go and Python bindings see nothing else).
struct Cause<'a>(&'a Option<BoxError>);

impl fmt::Display for Cause<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(source) => write!(f, ": {source}"),
            None => Ok(()),
        }
    }
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
            Error::InvalidArgument { .. } => ErrorKind::InvalidArgument,
            Error::Io { .. } | Error::Database(_) => ErrorKind::Io,
            Error::Corrupt { .. } => ErrorKind::Corrupt,
            Error::Keys { .. } => ErrorKind::Keys,
            Error::Auth { .. } => ErrorKind::Auth,
            Error::Network { .. } => ErrorKind::Network,
            Error::Server { .. } => ErrorKind::Server,
            Error::Busy { .. } | Error::NotReady { .. } => ErrorKind::Busy,
            Error::Closed => ErrorKind::Closed,
            Error::NotConfigured => ErrorKind::NotConfigured,
            Error::PendingWrites(_) => ErrorKind::PendingWrites,
            Error::Internal { .. } => ErrorKind::Internal,
            Error::ReadOnly { .. } => ErrorKind::ReadOnly,
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
            source: None,
        }
    }

    /// An [`Error::Server`]: the server answered `status` (0 when it answered with
    /// something unusable instead of an error status).
    pub(crate) fn server(status: u16, message: impl Into<String>) -> Self {
        Error::Server {
            status,
            message: message.into(),
            source: None,
        }
    }

    /// This error with `cause` as its [`std::error::Error::source`], whose text
    /// `Display` appends after the message. For the variants with a message (all but
    /// `NotFound`, `DatabaseNotFound`, `Io`, `Database`, `Closed`, `NotConfigured` and
    /// `PendingWrites`, which keep their own source or have none).
    pub(crate) fn caused_by(mut self, cause: impl Into<BoxError>) -> Self {
        match &mut self {
            Error::InvalidArgument { source, .. }
            | Error::Corrupt { source, .. }
            | Error::Keys { source, .. }
            | Error::Auth { source, .. }
            | Error::Network { source, .. }
            | Error::Server { source, .. }
            | Error::Busy { source, .. }
            | Error::NotReady { source, .. }
            | Error::Internal { source, .. }
            | Error::ReadOnly { source, .. }
            | Error::Link { source, .. } => *source = Some(cause.into()),
            Error::NotFound
            | Error::DatabaseNotFound(_)
            | Error::Io { .. }
            | Error::Database(_)
            | Error::Closed
            | Error::NotConfigured
            | Error::PendingWrites(_) => {
                debug_assert!(false, "caused_by on an error without a source field: {self}")
            }
        }
        self
    }

    /// The words of this error without its kind prefix and source, for the variants
    /// with a message: what a caller rewording an error builds on.
    pub(crate) fn message(&self) -> Option<&str> {
        match self {
            Error::InvalidArgument { message, .. }
            | Error::Corrupt { message, .. }
            | Error::Keys { message, .. }
            | Error::Auth { message, .. }
            | Error::Network { message, .. }
            | Error::Server { message, .. }
            | Error::Busy { message, .. }
            | Error::NotReady { message, .. }
            | Error::Internal { message, .. }
            | Error::ReadOnly { message, .. }
            | Error::Link { message, .. } => Some(message),
            _ => None,
        }
    }

    /// The message and the source's text, as `Display` shows them after the kind
    /// prefix; the whole `Display` for errors without a message.
    pub(crate) fn detail(&self) -> String {
        let source = match self {
            Error::InvalidArgument { source, .. }
            | Error::Corrupt { source, .. }
            | Error::Keys { source, .. }
            | Error::Auth { source, .. }
            | Error::Network { source, .. }
            | Error::Server { source, .. }
            | Error::Busy { source, .. }
            | Error::NotReady { source, .. }
            | Error::Internal { source, .. }
            | Error::ReadOnly { source, .. }
            | Error::Link { source, .. } => source,
            _ => return self.to_string(),
        };
        let message = self.message().unwrap_or_default();
        format!("{message}{}", Cause(source))
    }

    /// This error with its message replaced by `reword(message)`, keeping its kind and
    /// source; errors without a message are returned as they are.
    pub(crate) fn reworded(mut self, reword: impl FnOnce(&str) -> String) -> Self {
        match &mut self {
            Error::InvalidArgument { message, .. }
            | Error::Corrupt { message, .. }
            | Error::Keys { message, .. }
            | Error::Auth { message, .. }
            | Error::Network { message, .. }
            | Error::Server { message, .. }
            | Error::Busy { message, .. }
            | Error::NotReady { message, .. }
            | Error::Internal { message, .. }
            | Error::ReadOnly { message, .. }
            | Error::Link { message, .. } => *message = reword(message),
            _ => {}
        }
        self
    }

    /// Wraps an I/O error with what was being done (and to which path).
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// Turns an error from a `Read` back into the crate error it carries, if any:
    /// streaming decryptors report tampering as `io::Error::other(Error::Corrupt { .. })`.
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
                    Err(other) => return Error::internal("lost a wrapped error").caused_by(other),
                },
            }
        }
    }

    /// An [`Error::InvalidArgument`] saying `message`.
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Error::InvalidArgument {
            message: message.into(),
            source: None,
        }
    }

    /// An [`Error::Corrupt`] saying `message`.
    pub(crate) fn corrupt(message: impl Into<String>) -> Self {
        Error::Corrupt {
            message: message.into(),
            source: None,
        }
    }

    /// An [`Error::Keys`] saying `message`.
    pub(crate) fn keys(message: impl Into<String>) -> Self {
        Error::Keys {
            message: message.into(),
            source: None,
        }
    }

    /// An [`Error::Auth`] saying `message`.
    pub(crate) fn auth(message: impl Into<String>) -> Self {
        Error::Auth {
            message: message.into(),
            source: None,
        }
    }

    /// An [`Error::Network`] saying `message`.
    pub(crate) fn network(message: impl Into<String>) -> Self {
        Error::Network {
            message: message.into(),
            source: None,
        }
    }

    /// An [`Error::Busy`] saying `message`.
    pub(crate) fn busy(message: impl Into<String>) -> Self {
        Error::Busy {
            message: message.into(),
            source: None,
        }
    }

    /// An [`Error::NotReady`] saying `message`.
    pub(crate) fn not_ready(message: impl Into<String>) -> Self {
        Error::NotReady {
            message: message.into(),
            source: None,
        }
    }

    /// An [`Error::Internal`] saying `message`.
    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Error::Internal {
            message: message.into(),
            source: None,
        }
    }

    /// An [`Error::ReadOnly`] saying `message`.
    pub(crate) fn read_only(message: impl Into<String>) -> Self {
        Error::ReadOnly {
            message: message.into(),
            source: None,
        }
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
        Error::corrupt("unexpected column type in the database").caused_by(self)
    }
}

impl SqliteFailure for rusqlite::Error {
    fn into_error(self) -> Error {
        use rusqlite::ErrorCode;
        let err = self;
        match err.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => {
                Error::busy("SQLite").caused_by(err)
            }
            Some(ErrorCode::DatabaseCorrupt) | Some(ErrorCode::NotADatabase) => {
                Error::corrupt("SQLite").caused_by(err)
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
                Error::corrupt("unexpected data in the database").caused_by(err)
            }
            _ => Error::Database(DatabaseError(Box::new(err))),
        }
    }
}

/// The first error of type `T` in the `source()` chain of `err` (not `err` itself).
#[cfg(test)]
pub(crate) fn source_of<T: std::error::Error + 'static>(err: &Error) -> Option<&T> {
    let mut next = std::error::Error::source(err);
    while let Some(cause) = next {
        if let Some(found) = cause.downcast_ref::<T>() {
            return Some(found);
        }
        next = cause.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_says_message_then_cause_and_source_returns_the_typed_cause() {
        let err = Error::network("HTTP GET /v1/bio to 127.0.0.1:1 failed")
            .caused_by(io::Error::new(io::ErrorKind::TimedOut, "timed out"));
        assert_eq!(
            err.to_string(),
            "network error: HTTP GET /v1/bio to 127.0.0.1:1 failed: timed out"
        );
        assert_eq!(err.kind(), ErrorKind::Network);
        let cause = source_of::<io::Error>(&err).expect("the io::Error is the source");
        assert_eq!(cause.kind(), io::ErrorKind::TimedOut);

        // Without a cause: the message alone, and no source.
        let plain = Error::corrupt("database has no key_check row");
        assert_eq!(plain.to_string(), "corrupt data: database has no key_check row");
        assert!(std::error::Error::source(&plain).is_none());

        // Rewording keeps the kind and the source.
        let reworded = err.reworded(|why| format!("downloading: {why}"));
        assert_eq!(reworded.kind(), ErrorKind::Network);
        assert!(reworded.to_string().ends_with(": timed out"), "{reworded}");
        assert!(source_of::<io::Error>(&reworded).is_some());
    }

    #[test]
    fn every_message_variant_takes_a_source_and_keeps_its_kind() {
        let cause = || io::Error::other("the cause");
        let cases = [
            (Error::invalid("m"), ErrorKind::InvalidArgument),
            (Error::corrupt("m"), ErrorKind::Corrupt),
            (Error::keys("m"), ErrorKind::Keys),
            (Error::auth("m"), ErrorKind::Auth),
            (Error::network("m"), ErrorKind::Network),
            (Error::server(500, "m"), ErrorKind::Server),
            (Error::busy("m"), ErrorKind::Busy),
            (Error::not_ready("m"), ErrorKind::Busy),
            (Error::internal("m"), ErrorKind::Internal),
            (Error::read_only("m"), ErrorKind::ReadOnly),
            (Error::link(LinkFailure::Denied, "m"), ErrorKind::Link),
        ];
        for (err, kind) in cases {
            let without = err.to_string();
            let err = err.caused_by(cause());
            assert_eq!(err.kind(), kind);
            assert_eq!(err.to_string(), format!("{without}: the cause"));
            assert_eq!(err.message(), Some("m"));
            assert!(source_of::<io::Error>(&err).is_some(), "{err}");
        }
    }

    /// A file that is not a database: SQLite's error stays the source of the
    /// `Corrupt` (boxed, so no rusqlite type is in the API).
    #[test]
    fn sqlite_corruption_keeps_the_sqlite_error_as_source() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("not-a-db");
        std::fs::write(&path, vec![0x5a; 8192]).unwrap();
        let conn = rusqlite::Connection::open(&path).unwrap();
        let failure = conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0))
            .unwrap_err();
        let err = Error::from(failure);
        assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
        let sqlite = source_of::<rusqlite::Error>(&err).expect("rusqlite::Error source");
        assert_eq!(
            sqlite.sqlite_error_code(),
            Some(rusqlite::ErrorCode::NotADatabase)
        );
        assert!(err.to_string().contains(&sqlite.to_string()), "{err}");
    }
}
