//! The client of a self-hosted Charm server (`charm serve`): SSH `api-auth`, the JWT it
//! yields, and the HTTP API for sequences, files and encrypt keys.
//!
//! [`CharmClient`] is blocking, `Send + Sync`, and meant to be shared (`Arc`) by every
//! database of one account. It never reads or writes the account's files (identity,
//! key cache): it is given the SSH key to log in with and a [`KeySource`] for the
//! encrypt keys, which the account layer (`crate::account`) implements. See
//! `docs/cloud-client.md` for the auth flow and host-key pinning.

mod auth;
pub(crate) mod deadline;
mod fs;
mod http;
pub mod known_hosts;
pub mod link;
mod net;
mod runtime;
mod seq;
mod ssh;

use std::sync::{Arc, Mutex, MutexGuard};

pub use auth::{AuthInfo, WrappedKey};
pub use fs::{FileInfo, FileReader, DEFAULT_FILE_MODE};
#[cfg(any(test, feature = "unstable-internals"))]
pub use fs::MODE_DIR;
pub use http::plain_http_host;

use std::io::Read;

use crate::config::{Config, ServerAddr};
use crate::crypto::lookup::encrypt_lookup_field;
use crate::crypto::EncryptKey;
use crate::error::{Error, Result};
use auth::Token;
use http::{Exchange, HttpApi, Payload};
use known_hosts::KnownHosts;
use ssh::SshTarget;

/// An authenticated session: the `api-auth` answer and its token.
struct Session {
    info: Arc<AuthInfo>,
    token: Token,
}

/// Where a client gets the account's encrypt keys, which encrypt file names, files and
/// sequence names. Implemented by the account layer, which alone decides which keys
/// the account has (`crate::account`).
pub trait KeySource: Send + Sync {
    /// The account's encrypt keys in server order (index 0 encrypts).
    fn encrypt_keys(&self, client: &CharmClient) -> Result<Vec<EncryptKey>>;
}

/// A client of one Charm server for one SSH key.
pub struct CharmClient {
    server: ServerAddr,
    config: Config,
    #[cfg(any(test, feature = "unstable-internals"))]
    data_path: std::path::PathBuf,
    ssh: SshTarget,
    http: HttpApi,
    /// The cached session; the lock is held across `api-auth` so that concurrent
    /// callers share one SSH round trip.
    session: Mutex<Option<Session>>,
    keys: Arc<dyn KeySource>,
}

impl std::fmt::Debug for CharmClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CharmClient")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl CharmClient {
    /// A client for the server `config` names ([`Error::NotConfigured`] in local mode)
    /// that logs in with `login` and encrypts with the keys of `keys`, bounded by
    /// `config.timeouts`. Nothing is sent yet. `crate::account::Account::client` makes
    /// one for the account's identity.
    pub fn new(
        config: &Config,
        login: &ssh_key::PrivateKey,
        keys: Arc<dyn KeySource>,
    ) -> Result<Self> {
        let server = config.server().ok_or(Error::NotConfigured)?;
        config.timeouts.check()?;
        let data_path = config.data_path()?;
        let ssh = SshTarget::new(
            &server.host,
            server.ssh_port,
            login,
            KnownHosts::new(&data_path),
            config.timeouts,
        )?;
        let http = HttpApi::new(
            &server.host,
            server.http_port,
            config.timeouts,
            config.require_tls,
        );
        Ok(CharmClient {
            server,
            config: config.clone(),
            #[cfg(any(test, feature = "unstable-internals"))]
            data_path,
            ssh,
            http,
            session: Mutex::new(None),
            keys,
        })
    }

    /// The server this client talks to.
    #[cfg(any(test, feature = "unstable-internals"))]
    pub fn server(&self) -> &ServerAddr {
        &self.server
    }

    /// The configuration it was made from.
    #[cfg(any(test, feature = "unstable-internals"))]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The data path (host-key pins).
    #[cfg(any(test, feature = "unstable-internals"))]
    pub fn data_path(&self) -> &std::path::Path {
        &self.data_path
    }

    /// The current `api-auth` answer, running `api-auth` over SSH when there is no
    /// cached one or its JWT expires within a minute. The first call for a new SSH key
    /// creates the account on the server.
    pub fn auth(&self) -> Result<Arc<AuthInfo>> {
        Ok(self.session()?.0)
    }

    /// Forgets the cached auth; the next request runs `api-auth` again.
    pub fn invalidate_auth(&self) {
        *self.lock_session() = None;
    }

    /// Forgets the cached auth if its JWT is `jwt` (a thread that already renewed it
    /// keeps its new one).
    fn invalidate_token(&self, jwt: &str) {
        let mut session = self.lock_session();
        if session.as_ref().is_some_and(|s| s.token.jwt == jwt) {
            *session = None;
        }
    }

    /// The account's charm id.
    pub fn charm_id(&self) -> Result<String> {
        Ok(self.auth()?.charm_id.clone())
    }

    fn lock_session(&self) -> MutexGuard<'_, Option<Session>> {
        self.session.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached auth and JWT, renewed when needed.
    fn session(&self) -> Result<(Arc<AuthInfo>, String)> {
        let mut session = self.lock_session();
        if let Some(s) = session.as_ref().filter(|s| s.token.is_fresh()) {
            return Ok((s.info.clone(), s.token.jwt.clone()));
        }
        let output = self.ssh.run("api-auth")?;
        let info = Arc::new(AuthInfo::parse(&output)?);
        let token = Token::new(&info.jwt)?;
        let jwt = token.jwt.clone();
        *session = Some(Session {
            info: info.clone(),
            token,
        });
        Ok((info, jwt))
    }

    /// Test hook: replaces the cached JWT, as if the server had issued `jwt`. Its
    /// expiry is read from it when it has one, else the old expiry is kept.
    #[doc(hidden)]
    #[cfg(any(test, feature = "unstable-internals"))]
    pub fn debug_replace_jwt(&self, jwt: &str) {
        if let Some(s) = self.lock_session().as_mut() {
            s.token.jwt = jwt.to_owned();
            if let Ok(Some(exp)) = auth::jwt_expiry(jwt) {
                s.token.expires = Some(exp);
            }
        }
    }

    /// An authenticated request with a replayable body: on a 401 the auth is renewed
    /// once and the request repeated.
    fn request(
        &self,
        method: &str,
        path: &str,
        json: Option<&[u8]>,
    ) -> Result<ureq::http::Response<ureq::Body>> {
        self.exchange(Exchange::Api, method, path, json)
    }

    /// [`CharmClient::request`] for either kind of exchange.
    fn exchange(
        &self,
        exchange: Exchange,
        method: &str,
        path: &str,
        json: Option<&[u8]>,
    ) -> Result<ureq::http::Response<ureq::Body>> {
        let payload = || match json {
            Some(body) => Payload::Json(body.to_vec()),
            None => Payload::Empty,
        };
        let (info, jwt) = self.session()?;
        match self
            .http
            .send(&info.http_scheme, &jwt, exchange, method, path, payload())
        {
            Err(Error::Server { status: 401, .. }) => {
                self.invalidate_token(&jwt);
                let (info, jwt) = self.session()?;
                self.http
                    .send(&info.http_scheme, &jwt, exchange, method, path, payload())
                    .map_err(reject_401)
            }
            other => other,
        }
    }

    /// `GET /v1/seq/<name>`: the current value of sequence `name`, sent as given
    /// (see [`CharmClient::seq_get`] for plaintext names).
    pub fn seq_get_raw(&self, name: &str) -> Result<u64> {
        let response = self.request("GET", &seq::seq_path(name)?, None)?;
        let seq: seq::SeqResponse = http::read_json(response, seq::MAX_SEQ_RESPONSE, "seq")?;
        Ok(seq.seq)
    }

    /// `POST /v1/seq/<name>`: increments sequence `name` and returns the new value
    /// (0 when the sequence did not exist yet).
    pub fn seq_next_raw(&self, name: &str) -> Result<u64> {
        let response = self.request("POST", &seq::seq_path(name)?, None)?;
        let seq: seq::SeqResponse = http::read_json(response, seq::MAX_SEQ_RESPONSE, "seq")?;
        Ok(seq.seq)
    }

    /// The current value of the sequence of database `name` (plaintext; the server
    /// sees its lookup field under key 0, as the Go kv client sends it). A sequence
    /// that does not exist is created at 0.
    pub fn seq_get(&self, name: &str) -> Result<u64> {
        self.seq_get_raw(&self.seq_name(name)?)
    }

    /// Increments the sequence of database `name` and returns the new value.
    pub fn seq_next(&self, name: &str) -> Result<u64> {
        self.seq_next_raw(&self.seq_name(name)?)
    }

    fn seq_name(&self, name: &str) -> Result<String> {
        if name.is_empty() {
            return Err(Error::invalid("empty sequence name"));
        }
        encrypt_lookup_field(&self.key0()?, name)
    }

    /// The account's encrypt keys in server order (index 0 encrypts), from the
    /// client's [`KeySource`].
    pub fn encrypt_keys(&self) -> Result<Vec<EncryptKey>> {
        self.keys.encrypt_keys(self)
    }

    /// `POST /v1/encrypt-key`: stores `wrapped` as the key of SSH public key
    /// `public_key` (`<type> <base64>`). The server ignores a key id it already has
    /// for that key. The account layer wraps keys only for its own public key.
    pub fn add_encrypt_key(&self, wrapped: &WrappedKey, public_key: &str) -> Result<()> {
        let body = serde_json::json!({
            "id": wrapped.id,
            "key": wrapped.key,
            "public_key": public_key,
            "created_at": wrapped.created_at,
        });
        let body = serde_json::to_vec(&body)
            .map_err(|e| Error::internal("encoding the encrypt key").caused_by(e))?;
        self.request("POST", "/v1/encrypt-key", Some(&body))?;
        Ok(())
    }

    fn key0(&self) -> Result<EncryptKey> {
        self.encrypt_keys()?
            .into_iter()
            .next()
            .ok_or_else(|| Error::keys("the account has no encrypt key"))
    }

    /// Lists directory `path` (plaintext, `/`-separated; `""` or `"/"` is the root).
    /// `None` when it does not exist. Entry names are decrypted; like the Go client,
    /// one name that no key decrypts fails the listing ([`Error::Keys`]).
    pub fn fs_list(&self, path: &str) -> Result<Option<Vec<FileInfo>>> {
        let keys = self.encrypt_keys()?;
        let url = fs::url_path(&keys[0], path)?;
        let response = match self.request("GET", &url, None) {
            Err(e) if is_missing_file(&e) => return Ok(None),
            other => other?,
        };
        match http::content_type(&response).as_str() {
            "application/json" => {}
            "application/octet-stream" => {
                return Err(Error::invalid(format!(
                    "{path:?} is a file, not a directory"
                )))
            }
            other => {
                return Err(Error::corrupt(format!(
                    "the Charm server answered a listing with content type {other:?}"
                )))
            }
        }
        let dir: fs::WireInfo = http::read_json(response, fs::MAX_LISTING, "directory listing")?;
        fs::decrypt_listing(&keys, dir).map(Some)
    }

    /// Opens file `path` (plaintext) for reading; it is downloaded and decrypted as it
    /// is read (any of the account's keys may have encrypted it). A missing file is
    /// `Error::Server { status: 404, .. }`; a file no key decrypts is [`Error::Keys`].
    pub fn fs_read(&self, path: &str) -> Result<FileReader> {
        let keys = self.encrypt_keys()?;
        let url = Self::file_url(&keys[0], path)?;
        let response = self.exchange(Exchange::Transfer, "GET", &url, None)?;
        match http::content_type(&response).as_str() {
            "application/octet-stream" => {}
            "application/json" => {
                return Err(Error::invalid(format!(
                    "{path:?} is a directory, not a file"
                )))
            }
            other => {
                return Err(Error::corrupt(format!(
                    "the Charm server answered a file read with content type {other:?}"
                )))
            }
        }
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        let mode = header("x-file-mode").and_then(|m| u32::try_from(m).ok());
        let len = header("content-length");
        let body = Box::new(response.into_body().into_reader());
        FileReader::new(body, &keys, mode, len)
    }

    /// Encrypts exactly `len` bytes from `reader` (with key 0) and stores them as file
    /// `path` (plaintext), streaming: constant memory, exact `Content-Length`.
    /// Missing parent directories are created by the server. `mode` is the Go
    /// `fs.FileMode` to store (default [`DEFAULT_FILE_MODE`]; 0 is refused because the
    /// server would create unusable directories).
    ///
    /// The reader cannot be replayed, so a JWT the server rejects mid-way (it was
    /// checked fresh before) fails with [`Error::Auth`] instead of being retried; see
    /// [`CharmClient::fs_write_file`].
    pub fn fs_write(
        &self,
        path: &str,
        reader: impl Read,
        len: u64,
        mode: Option<u32>,
    ) -> Result<()> {
        self.upload(path, reader, len, mode).map_err(|e| match e {
            Error::Server { status: 401, .. } => {
                self.invalidate_auth();
                reject_401(e)
            }
            other => other,
        })
    }

    /// [`CharmClient::fs_write`] from a local file, retried once with a new JWT if the
    /// server rejects the old one.
    #[cfg(any(test, feature = "unstable-internals"))]
    pub fn fs_write_file(&self, path: &str, file: &std::path::Path, mode: Option<u32>) -> Result<()> {
        let open = || -> Result<(std::fs::File, u64)> {
            let f = std::fs::File::open(file)
                .map_err(|e| Error::io(format!("opening {}", file.display()), e))?;
            let len = f
                .metadata()
                .map_err(|e| Error::io(format!("reading {}", file.display()), e))?
                .len();
            Ok((f, len))
        };
        let (f, len) = open()?;
        match self.upload(path, f, len, mode) {
            Err(Error::Server { status: 401, .. }) => {
                self.invalidate_auth();
                let (f, len) = open()?;
                self.upload(path, f, len, mode).map_err(reject_401)
            }
            other => other,
        }
    }

    fn upload(&self, path: &str, reader: impl Read, len: u64, mode: Option<u32>) -> Result<()> {
        let mode = mode.unwrap_or(DEFAULT_FILE_MODE);
        if mode == 0 {
            return Err(Error::invalid(
                "file mode 0 would make the server create inaccessible directories",
            ));
        }
        let keys = self.encrypt_keys()?;
        let url = format!("{}?mode={mode}", Self::file_url(&keys[0], path)?);
        let mut body = fs::MultipartUpload::new(reader, len, &keys[0])?;
        let (info, jwt) = self.session()?;
        let payload = Payload::Stream {
            content_type: body.content_type(),
            len: body.len(),
            reader: &mut body,
        };
        let result = self.http.send(
            &info.http_scheme,
            &jwt,
            Exchange::Transfer,
            "POST",
            &url,
            payload,
        );
        match (result, body.take_failure()) {
            (Err(_), Some(cause)) => Err(cause),
            (result, _) => result.map(drop),
        }
    }

    /// Removes file or directory `path` (plaintext) recursively; a missing path is not
    /// an error. An empty path (or `/`) is refused: the server would delete every file
    /// of the account.
    pub fn fs_remove(&self, path: &str) -> Result<()> {
        let keys = self.encrypt_keys()?;
        let url = Self::file_url(&keys[0], path)?;
        self.request("DELETE", &url, None)?;
        Ok(())
    }

    /// The URL path of a file, refusing the root.
    fn file_url(key0: &EncryptKey, path: &str) -> Result<String> {
        if fs::segments(path).is_empty() {
            return Err(Error::invalid(format!(
                "{path:?} names the root of the account's files, not a file"
            )));
        }
        fs::url_path(key0, path)
    }
}

/// True for failures a Charm server produces while briefly overloaded, worth a bounded
/// retry: an HTTP 5xx, or `api-auth` printing nothing (`charm serve` does both when a
/// new account logs in several times at once and its database transactions collide).
pub fn is_transient(e: &Error) -> bool {
    match e {
        Error::Server { status, .. } => *status >= 500,
        Error::Auth { message, .. } => message == auth::NO_AUTH,
        _ => false,
    }
}

/// The server's "no such file" answer (as opposed to a 404 for a deleted account).
fn is_missing_file(e: &Error) -> bool {
    matches!(e, Error::Server { status: 404, message, .. } if message == "file not found")
}

/// A 401 after a fresh `api-auth` is an auth failure, not a transient one.
fn reject_401(e: Error) -> Error {
    match e {
        Error::Server {
            status: 401,
            message,
            source,
            ..
        } => Error::Auth {
            message: format!("the Charm server rejected a freshly issued JWT: {message}"),
            source,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<CharmClient>();
    }

    #[test]
    fn local_mode_is_not_configured() {
        struct NoKeys;
        impl KeySource for NoKeys {
            fn encrypt_keys(&self, _: &CharmClient) -> Result<Vec<EncryptKey>> {
                Err(Error::keys("none"))
            }
        }
        let login =
            ssh_key::PrivateKey::random(&mut rand::rngs::OsRng, ssh_key::Algorithm::Ed25519)
                .unwrap();
        let err = CharmClient::new(&Config::default(), &login, Arc::new(NoKeys)).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::NotConfigured);
    }
}
