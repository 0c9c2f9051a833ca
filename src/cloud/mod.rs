//! The client of a self-hosted Charm server (`charm serve`): SSH `api-auth`, the JWT it
//! yields, and the HTTP API for sequences, files and encrypt keys.
//!
//! [`CharmClient`] is blocking, `Send + Sync`, and meant to be shared (`Arc`) by every
//! database of one account. See `docs/cloud-client.md` for the auth flow, host-key
//! pinning and the key cache.

mod auth;
mod http;
pub mod known_hosts;
mod runtime;
mod seq;
mod ssh;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

pub use auth::{AuthInfo, WrappedKey};

use crate::config::{Config, ServerAddr};
use crate::error::{Error, Result};
use crate::identity::SshIdentity;
use auth::Token;
use http::{HttpApi, HttpTimeouts, Payload};
use known_hosts::KnownHosts;
use ssh::{SshTarget, SshTimeouts};

/// Time limits of the client. A dead or silent server fails with
/// [`Error::Network`] after at most these.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// TCP connect plus SSH handshake.
    pub ssh_connect: Duration,
    /// SSH authentication, the command, and reading its output.
    pub ssh_command: Duration,
    /// HTTP name resolution and TCP connect (each).
    pub http_connect: Duration,
    /// Longest silence while an HTTP request or response is in flight.
    pub http_idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            ssh_connect: Duration::from_secs(15),
            ssh_command: Duration::from_secs(30),
            http_connect: Duration::from_secs(15),
            http_idle: Duration::from_secs(60),
        }
    }
}

/// An authenticated session: the `api-auth` answer and its token.
struct Session {
    info: Arc<AuthInfo>,
    token: Token,
}

/// A client of one Charm server for one SSH identity.
pub struct CharmClient {
    server: ServerAddr,
    config: Config,
    data_path: PathBuf,
    identity: SshIdentity,
    ssh: SshTarget,
    http: HttpApi,
    /// The cached session; the lock is held across `api-auth` so that concurrent
    /// callers share one SSH round trip.
    session: Mutex<Option<Session>>,
}

impl std::fmt::Debug for CharmClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CharmClient")
            .field("server", &self.server)
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl CharmClient {
    /// A client for the server `config` names ([`Error::NotConfigured`] in local mode),
    /// with the identity of the data path (generated if missing). Nothing is sent yet.
    pub fn new(config: &Config) -> Result<Self> {
        Self::with_timeouts(config, Timeouts::default())
    }

    /// [`CharmClient::new`] with explicit time limits.
    pub fn with_timeouts(config: &Config, timeouts: Timeouts) -> Result<Self> {
        let server = config.server().ok_or(Error::NotConfigured)?;
        let data_path = config.data_path()?;
        let identity = SshIdentity::load_or_generate(config)?;
        let ssh = SshTarget::new(
            &server.host,
            server.ssh_port,
            &identity,
            KnownHosts::new(&data_path),
            SshTimeouts {
                connect: timeouts.ssh_connect,
                command: timeouts.ssh_command,
            },
        )?;
        let http = HttpApi::new(
            &server.host,
            server.http_port,
            HttpTimeouts {
                connect: timeouts.http_connect,
                idle: timeouts.http_idle,
            },
        );
        Ok(CharmClient {
            server,
            config: config.clone(),
            data_path,
            identity,
            ssh,
            http,
            session: Mutex::new(None),
        })
    }

    /// The server this client talks to.
    pub fn server(&self) -> &ServerAddr {
        &self.server
    }

    /// The configuration it was made from.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The data path (identity, key cache, host-key pins).
    pub fn data_path(&self) -> &Path {
        &self.data_path
    }

    /// The SSH identity that logs in and unwraps the encrypt keys.
    pub fn identity(&self) -> &SshIdentity {
        &self.identity
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
        let payload = || match json {
            Some(body) => Payload::Json(body.to_vec()),
            None => Payload::Empty,
        };
        let (info, jwt) = self.session()?;
        match self
            .http
            .send(&info.http_scheme, &jwt, method, path, payload())
        {
            Err(Error::Server { status: 401, .. }) => {
                self.invalidate_auth();
                let (info, jwt) = self.session()?;
                self.http
                    .send(&info.http_scheme, &jwt, method, path, payload())
                    .map_err(reject_401)
            }
            other => other,
        }
    }

    /// `GET /v1/seq/<name>`: the current value of sequence `name`, which is sent as
    /// given (kv passes the encrypted lookup field of the db name).
    pub fn seq_get_raw(&self, name: &str) -> Result<u64> {
        let response = self.request("GET", &seq::seq_path(name)?, None)?;
        let seq: seq::SeqResponse = http::read_json(response, seq::MAX_SEQ_RESPONSE, "seq")?;
        Ok(seq.seq)
    }

    /// `POST /v1/seq/<name>`: increments sequence `name` and returns the new value.
    pub fn seq_next_raw(&self, name: &str) -> Result<u64> {
        let response = self.request("POST", &seq::seq_path(name)?, None)?;
        let seq: seq::SeqResponse = http::read_json(response, seq::MAX_SEQ_RESPONSE, "seq")?;
        Ok(seq.seq)
    }
}

/// A 401 after a fresh `api-auth` is an auth failure, not a transient one.
fn reject_401(e: Error) -> Error {
    match e {
        Error::Server {
            status: 401,
            message,
        } => Error::Auth(format!(
            "the Charm server rejected a freshly issued JWT: {message}"
        )),
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
        let err = CharmClient::new(&Config::default()).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::NotConfigured);
    }
}
