//! The Charm HTTP API transport (`charm/client/http.go`, `charm/server/http.go` v0.12.6): blocking `ureq` requests with
//! a bearer JWT, bounded JSON bodies and error bodies turned into [`Error::Server`].

use std::io::Read;
use std::sync::OnceLock;

use serde::de::DeserializeOwned;
use ureq::http::Response;
use ureq::{Agent, Body, RequestBuilder, SendBody};

use super::deadline;
use crate::error::{Error, Result};
use crate::timeouts::Timeouts;

/// Largest error body we read to find its `message`.
const MAX_ERROR_BODY: u64 = 64 << 10;

/// What a request carries, which decides its time bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exchange {
    /// A small API request: the request bound covers it whole, response body included.
    Api,
    /// A snapshot upload or download of any size: it may take as long as bytes keep
    /// flowing (the request bound is the longest silence), within the sync limit.
    Transfer,
}

/// See [`plain_http_host`].
static PLAIN_HTTP_HOST: OnceLock<String> = OnceLock::new();

/// The first server (`host:port`) other than a loopback one that this process sent a
/// request to over plain http, for a warning: the JWT and the encrypted files crossed
/// the network readable and unauthenticated. `None` if there was none.
pub fn plain_http_host() -> Option<&'static str> {
    PLAIN_HTTP_HOST.get().map(String::as_str)
}

/// A request body.
pub(crate) enum Payload<'a> {
    Empty,
    Json(Vec<u8>),
    /// A streamed body of exactly `len` bytes with its content type.
    Stream {
        content_type: String,
        len: u64,
        reader: &'a mut dyn Read,
    },
}

/// One Charm server's HTTP API.
pub(crate) struct HttpApi {
    agent: Agent,
    /// `host:port`.
    authority: String,
    loopback: bool,
    timeouts: Timeouts,
    /// Refuse plain http to a host that is not loopback.
    require_tls: bool,
}

impl HttpApi {
    pub(crate) fn new(host: &str, port: u16, timeouts: Timeouts, require_tls: bool) -> Self {
        let loopback = is_loopback(host);
        let mut builder = Agent::config_builder();
        if loopback {
            // Like Go's ProxyFromEnvironment: never send loopback traffic to a proxy.
            builder = builder.proxy(None);
        }
        let config = builder
            .http_status_as_error(false)
            .max_redirects(0)
            // Small requests must not wait for the ACK of the previous segment (see
            // `net.rs`); ureq's default today, stated so that it stays on.
            .no_delay(true)
            .timeout_resolve(Some(timeouts.connect))
            .timeout_connect(Some(timeouts.connect))
            .timeout_per_read(Some(timeouts.request))
            .timeout_per_write(Some(timeouts.request))
            .user_agent(concat!("charm-kv/", env!("CARGO_PKG_VERSION")))
            .build();
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]") // a bare IPv6 address
        } else {
            host.to_owned()
        };
        HttpApi {
            agent: config.into(),
            authority: format!("{host}:{port}"),
            loopback,
            timeouts,
            require_tls,
        }
    }

    /// The agent, for tests of its configuration.
    #[cfg(test)]
    pub(crate) fn agent(&self) -> &Agent {
        &self.agent
    }

    /// Sends `method path` (path starts with `/`, may carry a query) and returns the
    /// response if its status is below 300; otherwise the server's error.
    pub(crate) fn send(
        &self,
        scheme: &str,
        jwt: &str,
        exchange: Exchange,
        method: &str,
        path: &str,
        payload: Payload<'_>,
    ) -> Result<Response<Body>> {
        self.check_scheme(scheme)?;
        // The whole exchange, from connect to the last body byte (ureq's global
        // timeout also covers reading the body after this returns).
        let total = deadline::bound(match exchange {
            Exchange::Api => self.timeouts.request,
            Exchange::Transfer => self.timeouts.sync,
        })?;
        let url = format!("{scheme}://{}{path}", self.authority);
        let auth = format!("bearer {jwt}");
        let result = match (method, payload) {
            ("GET", Payload::Empty) => bounded(self.agent.get(&url), total)
                .header("Authorization", &auth)
                .call(),
            ("DELETE", Payload::Empty) => bounded(self.agent.delete(&url), total)
                .header("Authorization", &auth)
                .call(),
            ("POST", Payload::Empty) => bounded(self.agent.post(&url), total)
                .header("Authorization", &auth)
                .send_empty(),
            ("POST", Payload::Json(body)) => bounded(self.agent.post(&url), total)
                .header("Authorization", &auth)
                .header("Content-Type", "application/json")
                .send(&body[..]),
            (
                "POST",
                Payload::Stream {
                    content_type,
                    len,
                    reader,
                },
            ) => bounded(self.agent.post(&url), total)
                .header("Authorization", &auth)
                .header("Content-Type", &content_type)
                .header("Content-Length", &len.to_string())
                .send(SendBody::from_reader(reader)),
            (method, _) => {
                return Err(Error::internal(format!(
                    "unsupported HTTP request {method} with this body"
                )))
            }
        };
        let response = result.map_err(|e| {
            deadline::expired().unwrap_or_else(|| transport_error(method, path, &self.authority, e))
        })?;
        let status = response.status().as_u16();
        if status >= 300 {
            return Err(server_error(status, response));
        }
        Ok(response)
    }

    /// Plain http sends the JWT and the (encrypted) files readable by anyone on the
    /// path, and lets them be changed: refused with `require_tls`, else remembered for
    /// a warning. Loopback traffic never leaves the machine.
    fn check_scheme(&self, scheme: &str) -> Result<()> {
        if scheme != "http" || self.loopback {
            return Ok(());
        }
        if self.require_tls {
            return Err(Error::auth(format!(
                "the Charm server at {} offers only plain http, and TLS is required \
                 (CHARM_KV_REQUIRE_TLS); serve its HTTP API over https \
                 (CHARM_SERVER_PUBLIC_URL=https://...) or allow plain http",
                self.authority
            )));
        }
        let _ = PLAIN_HTTP_HOST.set(self.authority.clone());
        Ok(())
    }
}

/// `request` bounded to `total` from start to the last byte of the response body.
fn bounded<B>(request: RequestBuilder<B>, total: std::time::Duration) -> RequestBuilder<B> {
    request.config().timeout_global(Some(total)).build()
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Reads a whole JSON response of at most `limit` bytes.
pub(crate) fn read_json<T: DeserializeOwned>(
    response: Response<Body>,
    limit: u64,
    what: &str,
) -> Result<T> {
    let bytes = read_limited(response, limit, what)?;
    serde_json::from_slice(&bytes)
        .map_err(|e| {
            Error::corrupt(format!("the Charm server sent unreadable {what} JSON")).caused_by(e)
        })
}

/// Reads a whole response body of at most `limit` bytes.
pub(crate) fn read_limited(response: Response<Body>, limit: u64, what: &str) -> Result<Vec<u8>> {
    response
        .into_body()
        .with_config()
        .limit(limit)
        .read_to_vec()
        .map_err(|e| match e {
            ureq::Error::BodyExceedsLimit(_) => Error::corrupt(format!(
                "the Charm server sent a {what} response larger than {limit} bytes"
            )),
            other => Error::network(format!("reading the {what} response failed")).caused_by(other),
        })
}

/// The `Content-Type` of a response without parameters, lower-cased.
pub(crate) fn content_type(response: &Response<Body>) -> String {
    response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}

fn server_error(status: u16, response: Response<Body>) -> Error {
    let is_json = content_type(&response) == "application/json";
    let body = read_limited(response, MAX_ERROR_BODY, "error").unwrap_or_default();
    #[derive(serde::Deserialize)]
    struct Message {
        message: String,
    }
    let message = if is_json {
        // The server may append a stray `null` line after the message (`charm/server/http.go`), so take
        // the first JSON value only.
        serde_json::Deserializer::from_slice(&body)
            .into_iter::<Message>()
            .next()
            .and_then(|r| r.ok())
            .map(|m| m.message)
    } else {
        None
    };
    let message = message.unwrap_or_else(|| {
        let text = String::from_utf8_lossy(&body);
        let text = text.trim();
        if text.is_empty() {
            "(no message)".to_owned()
        } else {
            text.chars().take(200).collect()
        }
    });
    Error::server(status, message)
}

fn transport_error(method: &str, path: &str, authority: &str, e: ureq::Error) -> Error {
    // Strip the query; paths are encrypted hex and carry nothing secret.
    let path = path.split('?').next().unwrap_or(path);
    let what = format!("HTTP {method} {path} to {authority}");
    match e {
        ureq::Error::Timeout(t) => Error::network(format!("{what} timed out ({t})")),
        ureq::Error::Io(e) => Error::network(format!("{what} failed")).caused_by(e),
        ureq::Error::ConnectionFailed => Error::network(format!("{what}: connection failed")),
        ureq::Error::HostNotFound => Error::network(format!("{what}: host not found")),
        ureq::Error::Protocol(e) => Error::network(format!(
            "{what}: not an HTTP answer (is CHARM_HTTP_PORT the server's HTTP port?)"
        ))
        .caused_by(e),
        other => Error::network(format!("{what} failed")).caused_by(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ureq sets `TCP_NODELAY` on the sockets it opens when its configuration says so.
    #[test]
    fn http_agents_set_nodelay() {
        for host in ["127.0.0.1", "charm.example"] {
            let api = HttpApi::new(host, 35354, Timeouts::default(), false);
            assert!(api.agent().config().no_delay(), "{host}");
        }
    }

    /// The socket a request really used had `TCP_NODELAY` on, read back from the
    /// kernel while the request waits for its answer.
    #[test]
    fn http_connections_have_nodelay_set() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let server_addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut conn, client_addr) = listener.accept().unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = conn.read(&mut buf).unwrap();
                assert!(n > 0, "the client closed before its request was complete");
                head.extend_from_slice(&buf[..n]);
            }
            // The client is waiting for this answer: its socket is open.
            let nodelay = socket_option_of(client_addr, server_addr);
            conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
                .unwrap();
            nodelay
        });
        let api = HttpApi::new("127.0.0.1", server_addr.port(), Timeouts::default(), false);
        api.send("http", "jwt", Exchange::Api, "GET", "/v1/bio", Payload::Empty)
            .unwrap();
        assert_eq!(server.join().unwrap(), Ok(true));
    }

    /// `TCP_NODELAY` of this process's socket from `local` to `peer`: each descriptor
    /// in /proc/self/fd is duplicated with `pidfd_getfd` (no unsafe) and the one with
    /// these two addresses asked.
    fn socket_option_of(
        local: std::net::SocketAddr,
        peer: std::net::SocketAddr,
    ) -> std::result::Result<bool, String> {
        use rustix::process::{getpid, pidfd_getfd, pidfd_open, PidfdFlags, PidfdGetfdFlags};
        let me = pidfd_open(getpid(), PidfdFlags::empty()).map_err(|e| format!("pidfd_open: {e}"))?;
        for entry in std::fs::read_dir("/proc/self/fd").map_err(|e| e.to_string())? {
            let Some(number) = entry
                .ok()
                .and_then(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
            else {
                continue;
            };
            let Ok(fd) = pidfd_getfd(&me, number, PidfdGetfdFlags::empty()) else {
                continue;
            };
            let addresses = (rustix::net::getsockname(&fd), rustix::net::getpeername(&fd));
            if let (Ok(ours), Ok(Some(theirs))) = addresses {
                let ours = std::net::SocketAddr::try_from(ours);
                let theirs = std::net::SocketAddr::try_from(theirs);
                if ours == Ok(local) && theirs == Ok(peer) {
                    return rustix::net::sockopt::tcp_nodelay(&fd).map_err(|e| e.to_string());
                }
            }
        }
        Err(format!("no socket from {local} to {peer} in /proc/self/fd"))
    }

    /// A refused connection is a network error whose source is the `io::Error`
    /// (kind `ConnectionRefused`), and whose message still says what failed and why.
    #[test]
    fn a_refused_connection_keeps_the_io_error_as_source() {
        let port = {
            let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
            listener.local_addr().unwrap().port()
        };
        let api = HttpApi::new("127.0.0.1", port, Timeouts::default(), false);
        let err = api
            .send("http", "jwt", Exchange::Api, "GET", "/v1/bio", Payload::Empty)
            .unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Network, "{err}");
        let io = crate::error::source_of::<std::io::Error>(&err).expect("io::Error source");
        assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused, "{err}");
        assert!(err.to_string().contains("HTTP GET /v1/bio"), "{err}");
        assert!(err.to_string().ends_with(&io.to_string()), "{err}");
    }

    #[test]
    fn plain_http_is_refused_off_loopback_when_tls_is_required() {
        let remote = HttpApi::new("charm.example", 35354, Timeouts::default(), true);
        let err = remote.check_scheme("http").unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Auth, "{err}");
        assert!(err.to_string().contains("CHARM_KV_REQUIRE_TLS"), "{err}");
        remote.check_scheme("https").unwrap();
        for host in ["127.0.0.1", "localhost", "::1"] {
            HttpApi::new(host, 35354, Timeouts::default(), true)
                .check_scheme("http")
                .unwrap();
        }
    }
}
