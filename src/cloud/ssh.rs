//! One SSH command against a Charm server, as the Go client runs it
//! (`charm/client/client.go` v0.12.6): a fresh connection, user `charm`, public-key auth with
//! the user's identity, one `exec`, stdout read to the end, then disconnect.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use russh::client::{self, Handle};
use russh::keys::{HashAlg, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{ChannelMsg, Disconnect};

use super::deadline::Scope;
use super::known_hosts::{KnownHosts, Verdict};
use super::net;
use super::runtime::{block_on, block_on_own};
use crate::error::{Error, LinkFailure, Result};
use crate::timeouts::Timeouts;

/// SSH user name; the server ignores it.
const SSH_USER: &str = "charm";

/// Largest stdout we accept from a command. `api-auth` answers with a few KiB (one
/// wrapped key is ~400 bytes); anything near this is a broken or hostile server.
pub(crate) const MAX_OUTPUT: usize = 4 << 20;

/// How long we wait for the session to wind down after the command.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// The least of that wait, when the sync limit has (almost) run out.
const MIN_CLOSE_GRACE: Duration = Duration::from_millis(100);

/// How often a conversation checks whether its caller wants it stopped.
const STOP_POLL: Duration = Duration::from_millis(100);

/// Everything needed to run commands on one server.
pub(crate) struct SshTarget {
    pub host: String,
    pub port: u16,
    key: Arc<russh::keys::PrivateKey>,
    known_hosts: KnownHosts,
    /// `connect` bounds TCP connect, key exchange and host-key check; `request`
    /// bounds authentication, exec and reading the whole output.
    timeouts: Timeouts,
}

impl SshTarget {
    pub(crate) fn new(
        host: &str,
        port: u16,
        login: &ssh_key::PrivateKey,
        known_hosts: KnownHosts,
        timeouts: Timeouts,
    ) -> Result<Self> {
        Ok(SshTarget {
            host: host.to_owned(),
            port,
            key: Arc::new(convert_key(login)?),
            known_hosts,
            timeouts,
        })
    }

    /// Runs `command` and returns its stdout (the server never writes stderr).
    pub(crate) fn run(&self, command: &str) -> Result<Vec<u8>> {
        // Taken here: `block_on` may drive the command on a helper thread.
        let limit = Scope::current();
        block_on(self.run_async(command, limit))?
    }

    async fn run_async(&self, command: &str, limit: Scope) -> Result<Vec<u8>> {
        let (mut handle, addr) = self.open(limit, Some(self.timeouts.request)).await?;
        let result = match limit.bound(self.timeouts.request) {
            Err(e) => Err(e),
            Ok(command_bound) => {
                let work = async {
                    self.authenticate(&mut handle, &addr).await?;
                    exec(&handle, command, &addr).await
                };
                match tokio::time::timeout(command_bound, work).await {
                    Ok(result) => result,
                    Err(_) => Err(limit.expired().unwrap_or_else(|| {
                        Error::network(format!(
                            "SSH command {command:?} on {addr} timed out after {command_bound:?}"
                        ))
                    })),
                }
            }
        };
        close(handle, limit).await;
        result
    }

    /// Runs `command` as a conversation: `stdin` (if any) is written first, then every
    /// line the server prints goes to `on_line`, whose [`Reply`] may write more or end
    /// it. The whole conversation, connection included, is bounded by `limit` (the
    /// server may stay silent for most of it: a link waits up to a minute for the
    /// other device), and `stop` is polled a few times a second: when it says so the
    /// session ends with [`LinkFailure::Cancelled`]. Ends when the server closes the channel
    /// or `on_line` says [`Reply::Finish`].
    pub(crate) fn converse(
        &self,
        command: &str,
        stdin: Option<&[u8]>,
        limit: Duration,
        stop: &(dyn Fn() -> bool + Sync),
        on_line: &mut (dyn FnMut(&[u8]) -> Result<Reply> + Send),
    ) -> Result<()> {
        let scope = Scope::current();
        // Its own runtime: `on_line` may block (see `block_on_own`).
        block_on_own(async {
            let bounded = tokio::time::timeout(
                limit,
                self.converse_async(command, stdin, scope, stop, on_line),
            );
            bounded.await.unwrap_or_else(|_| {
                Err(Error::network(format!(
                    "SSH command {command:?} on {}:{} did not finish within {limit:?}",
                    self.host, self.port
                )))
            })
        })?
    }

    async fn converse_async(
        &self,
        command: &str,
        stdin: Option<&[u8]>,
        limit: Scope,
        stop: &(dyn Fn() -> bool + Sync),
        on_line: &mut (dyn FnMut(&[u8]) -> Result<Reply> + Send),
    ) -> Result<()> {
        let (mut handle, addr) = self.open(limit, None).await?;
        let work = async {
            self.authenticate(&mut handle, &addr).await?;
            let mut channel = handle
                .channel_open_session()
                .await
                .map_err(|e| ssh_error(&addr, e))?;
            channel
                .exec(true, command)
                .await
                .map_err(|e| ssh_error(&addr, e))?;
            if let Some(bytes) = stdin {
                channel.data(bytes).await.map_err(|e| ssh_error(&addr, e))?;
            }
            let mut pending = Vec::new();
            loop {
                if stop() {
                    return Err(Error::link(
                        LinkFailure::Cancelled,
                        "cancelled by the caller",
                    ));
                }
                let msg = match tokio::time::timeout(STOP_POLL, channel.wait()).await {
                    Err(_) => continue,
                    Ok(None) => return Ok(()),
                    Ok(Some(msg)) => msg,
                };
                match msg {
                    ChannelMsg::Data { data } => {
                        if pending.len() + data.len() > MAX_OUTPUT {
                            return Err(Error::corrupt(format!(
                                "the SSH command {command:?} on {addr} printed more than \
                                 {MAX_OUTPUT} bytes"
                            )));
                        }
                        pending.extend_from_slice(&data);
                        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                            let line: Vec<u8> = pending.drain(..=end).collect();
                            match on_line(&line[..end])? {
                                Reply::Continue => {}
                                Reply::Send(bytes) => channel
                                    .data(&bytes[..])
                                    .await
                                    .map_err(|e| ssh_error(&addr, e))?,
                                Reply::Finish => return Ok(()),
                            }
                        }
                    }
                    ChannelMsg::Close => return Ok(()),
                    _ => {}
                }
            }
        };
        let result = work.await;
        close(handle, limit).await;
        result
    }

    /// Connects, exchanges keys and checks the host key, within `limit` and the
    /// connect timeout. `inactivity` is how long the session may stay silent.
    async fn open(
        &self,
        limit: Scope,
        inactivity: Option<Duration>,
    ) -> Result<(Handle<HostKeyCheck>, String)> {
        let rejection = Arc::new(Mutex::new(None));
        let handler = HostKeyCheck {
            host: self.host.clone(),
            port: self.port,
            known_hosts: self.known_hosts.clone(),
            rejection: rejection.clone(),
        };
        let config = Arc::new(client::Config {
            inactivity_timeout: inactivity,
            ..Default::default()
        });
        let addr = format!("{}:{}", self.host, self.port);
        let connecting = async {
            let stream = net::connect(&self.host, self.port)
                .await
                .map_err(russh::Error::from)?;
            client::connect_stream(config, stream, handler).await
        };
        let connect_bound = limit.bound(self.timeouts.connect)?;
        match tokio::time::timeout(connect_bound, connecting).await {
            Err(_) => Err(limit.expired().unwrap_or_else(|| {
                Error::network(format!(
                    "SSH connection to {addr} timed out after {connect_bound:?}"
                ))
            })),
            Ok(Err(e)) => {
                let pinned = rejection.lock().unwrap_or_else(|p| p.into_inner()).take();
                Err(pinned.unwrap_or_else(|| connect_error(&addr, e)))
            }
            Ok(Ok(handle)) => Ok((handle, addr)),
        }
    }

    async fn authenticate(&self, handle: &mut Handle<HostKeyCheck>, addr: &str) -> Result<()> {
        // Ed25519 needs no choice. RSA signs with rsa-sha2-512/256 when the server says
        // it accepts them; a server that does not say gets both tried before SHA-1.
        let hashes: Vec<Option<HashAlg>> = if self.key.algorithm().is_rsa() {
            match handle
                .best_supported_rsa_hash()
                .await
                .map_err(|e| ssh_error(addr, e))?
            {
                Some(best) => vec![best],
                None => vec![Some(HashAlg::Sha512), Some(HashAlg::Sha256), None],
            }
        } else {
            vec![None]
        };
        for hash in hashes {
            let key = PrivateKeyWithHashAlg::new(self.key.clone(), hash);
            let result = handle
                .authenticate_publickey(SSH_USER, key)
                .await
                .map_err(|e| ssh_error(addr, e))?;
            if result.success() {
                return Ok(());
            }
        }
        Err(Error::auth(format!(
            "the Charm server at {addr} refused the SSH key \
             (does the server restrict logins with an authorized_keys file?)"
        )))
    }
}

/// Opens a session channel, execs `command` and collects stdout until the channel ends.
async fn exec(handle: &Handle<HostKeyCheck>, command: &str, addr: &str) -> Result<Vec<u8>> {
    let mut channel = handle
        .channel_open_session()
        .await
        .map_err(|e| ssh_error(addr, e))?;
    channel
        .exec(true, command)
        .await
        .map_err(|e| ssh_error(addr, e))?;
    let mut out = Vec::new();
    while let Some(msg) = channel.wait().await {
        match msg {
            ChannelMsg::Data { data } => {
                if out.len() + data.len() > MAX_OUTPUT {
                    return Err(Error::corrupt(format!(
                        "the SSH command {command:?} on {addr} printed more than {MAX_OUTPUT} bytes"
                    )));
                }
                out.extend_from_slice(&data);
            }
            ChannelMsg::Close => break,
            // Eof, exit status (always 0 on Charm), window updates, stderr (never used).
            _ => {}
        }
    }
    Ok(out)
}

/// Says goodbye and lets the session task finish, so the socket is closed now: the
/// task only runs while some thread is inside `block_on`, and a half-open connection
/// would, among other things, hold up the server's shutdown. Within the sync limit
/// when one is set, but never less than a moment: a session cut short still gets to
/// send its goodbye.
async fn close(handle: Handle<HostKeyCheck>, limit: Scope) {
    let grace = limit.bound(CLOSE_GRACE).unwrap_or(MIN_CLOSE_GRACE);
    let _ = handle.disconnect(Disconnect::ByApplication, "", "en").await;
    let _ = tokio::time::timeout(grace.max(MIN_CLOSE_GRACE), handle).await;
}

/// What a conversation ([`SshTarget::converse`]) does after a line.
pub(crate) enum Reply {
    /// Wait for the next line.
    Continue,
    /// Write these bytes to the command's stdin, then wait for the next line.
    Send(Vec<u8>),
    /// End the session.
    Finish,
}

/// Converts our ssh-key 0.6 private key to russh's ssh-key generation through the
/// OpenSSH binary key encoding, which both read and write.
fn convert_key(login: &ssh_key::PrivateKey) -> Result<russh::keys::PrivateKey> {
    let bytes = login
        .to_bytes()
        .map_err(|e| Error::keys("encoding the SSH key").caused_by(e))?;
    russh::keys::PrivateKey::from_bytes(&bytes)
        .map_err(|e| Error::keys("loading the SSH key for the SSH client").caused_by(e))
}

/// russh's handler for one connection: the host-key check.
struct HostKeyCheck {
    host: String,
    port: u16,
    known_hosts: KnownHosts,
    /// Why the key was refused, reported instead of russh's generic error.
    rejection: Arc<Mutex<Option<Error>>>,
}

impl client::Handler for HostKeyCheck {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        server_public_key: &PublicKeyOrCertificate,
    ) -> std::result::Result<bool, Self::Error> {
        let verdict = match server_public_key {
            PublicKeyOrCertificate::PublicKey { key, .. } => match key.to_bytes() {
                Ok(wire) => {
                    let text = format!(
                        "{} {}",
                        key.algorithm().as_str(),
                        base64::engine::general_purpose::STANDARD.encode(wire)
                    );
                    self.known_hosts.check(&self.host, self.port, &text)
                }
                Err(e) => Err(Error::auth("unreadable server host key").caused_by(e)),
            },
            PublicKeyOrCertificate::Certificate(_) => Err(Error::auth(
                "the server presented a host certificate; Charm servers use plain keys",
            )),
        };
        let refusal = match verdict {
            Ok(Verdict::Known | Verdict::Pinned) => return Ok(true),
            Ok(Verdict::Mismatch { pinned }) => Error::auth(format!(
                "the SSH host key of {}:{} changed (pinned {pinned}); if the server's key \
                 really changed, remove its line from {}",
                self.host,
                self.port,
                self.known_hosts.path().display()
            )),
            Err(e) => e,
        };
        *self.rejection.lock().unwrap_or_else(|p| p.into_inner()) = Some(refusal);
        Ok(false)
    }
}

/// Maps a failure to connect (before authentication) to our errors.
fn connect_error(addr: &str, e: russh::Error) -> Error {
    Error::network(format!("cannot open an SSH session with {addr}")).caused_by(ssh_cause(e))
}

/// Maps an SSH failure after the handshake.
fn ssh_error(addr: &str, e: russh::Error) -> Error {
    Error::network(format!("SSH session with {addr} failed")).caused_by(ssh_cause(e))
}

/// The cause of an SSH failure as a source: an I/O failure as the `io::Error` itself
/// (russh's `IO` variant is transparent, so its `source()` would skip it), anything
/// else as russh's error.
fn ssh_cause(e: russh::Error) -> Box<dyn std::error::Error + Send + Sync> {
    match e {
        russh::Error::IO(io) => Box::new(io),
        other => Box::new(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::io::Write;
    use std::net::TcpListener;

    /// The socket the SSH leg really used had `TCP_NODELAY` on: read back from the
    /// kernel by the connection hook, for a connection made by [`SshTarget::run`].
    #[test]
    fn ssh_connections_have_nodelay_set() {
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            // Not SSH: the client gives up right after connecting.
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
        });
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            host: Some("127.0.0.1".into()),
            data_dir: Some(dir.path().to_owned()),
            ..Config::default()
        };
        let login =
            ssh_key::PrivateKey::random(&mut rand::rngs::OsRng, ssh_key::Algorithm::Ed25519)
                .unwrap();
        let known_hosts = KnownHosts::new(&config.data_path().unwrap());
        let target =
            SshTarget::new("127.0.0.1", port, &login, known_hosts, Timeouts::default()).unwrap();
        net::opened::take_nodelay();
        let err = target.run("api-auth").unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Network, "{err}");
        assert_eq!(net::opened::take_nodelay(), vec![true]);
        server.join().unwrap();
    }

    /// A refused connection is a network error whose source is the `io::Error`
    /// (kind `ConnectionRefused`), not only its text.
    #[test]
    fn a_refused_connection_keeps_the_io_error_as_source() {
        let port = {
            let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
            listener.local_addr().unwrap().port()
        };
        let dir = tempfile::tempdir().unwrap();
        let login =
            ssh_key::PrivateKey::random(&mut rand::rngs::OsRng, ssh_key::Algorithm::Ed25519)
                .unwrap();
        let known_hosts = KnownHosts::new(dir.path());
        let target =
            SshTarget::new("127.0.0.1", port, &login, known_hosts, Timeouts::default()).unwrap();
        let err = target.run("api-auth").unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Network, "{err}");
        let io = crate::error::source_of::<std::io::Error>(&err).expect("io::Error source");
        assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused, "{err}");
        assert!(err.to_string().ends_with(&io.to_string()), "{err}");
    }
}
