//! The Charm HTTP API transport (`charm/client/http.go`, `charm/server/http.go` v0.12.6): blocking `ureq` requests with
//! a bearer JWT, bounded JSON bodies and error bodies turned into [`Error::Server`].

use std::io::Read;
use std::time::Duration;

use serde::de::DeserializeOwned;
use ureq::http::Response;
use ureq::{Agent, Body, SendBody};

use crate::error::{Error, Result};

/// Largest error body we read to find its `message`.
const MAX_ERROR_BODY: u64 = 64 << 10;

/// Time limits of HTTP requests.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HttpTimeouts {
    pub connect: Duration,
    /// Longest silence while sending or receiving (uploads and downloads of any size
    /// keep going as long as bytes flow).
    pub idle: Duration,
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
}

impl HttpApi {
    pub(crate) fn new(host: &str, port: u16, timeouts: HttpTimeouts) -> Self {
        let mut builder = Agent::config_builder();
        if is_loopback(host) {
            // Like Go's ProxyFromEnvironment: never send loopback traffic to a proxy.
            builder = builder.proxy(None);
        }
        let config = builder
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_resolve(Some(timeouts.connect))
            .timeout_connect(Some(timeouts.connect))
            .timeout_per_read(Some(timeouts.idle))
            .timeout_per_write(Some(timeouts.idle))
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
        }
    }

    /// Sends `method path` (path starts with `/`, may carry a query) and returns the
    /// response if its status is below 300; otherwise the server's error.
    pub(crate) fn send(
        &self,
        scheme: &str,
        jwt: &str,
        method: &str,
        path: &str,
        payload: Payload<'_>,
    ) -> Result<Response<Body>> {
        let url = format!("{scheme}://{}{path}", self.authority);
        let auth = format!("bearer {jwt}");
        let result = match (method, payload) {
            ("GET", Payload::Empty) => self.agent.get(&url).header("Authorization", &auth).call(),
            ("DELETE", Payload::Empty) => self
                .agent
                .delete(&url)
                .header("Authorization", &auth)
                .call(),
            ("POST", Payload::Empty) => self
                .agent
                .post(&url)
                .header("Authorization", &auth)
                .send_empty(),
            ("POST", Payload::Json(body)) => self
                .agent
                .post(&url)
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
            ) => self
                .agent
                .post(&url)
                .header("Authorization", &auth)
                .header("Content-Type", &content_type)
                .header("Content-Length", &len.to_string())
                .send(SendBody::from_reader(reader)),
            (method, _) => {
                return Err(Error::Internal(format!(
                    "unsupported HTTP request {method} with this body"
                )))
            }
        };
        let response = result.map_err(|e| transport_error(method, path, &self.authority, e))?;
        let status = response.status().as_u16();
        if status >= 300 {
            return Err(server_error(status, response));
        }
        Ok(response)
    }
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
        .map_err(|e| Error::Corrupt(format!("the Charm server sent unreadable {what} JSON: {e}")))
}

/// Reads a whole response body of at most `limit` bytes.
pub(crate) fn read_limited(response: Response<Body>, limit: u64, what: &str) -> Result<Vec<u8>> {
    response
        .into_body()
        .with_config()
        .limit(limit)
        .read_to_vec()
        .map_err(|e| match e {
            ureq::Error::BodyExceedsLimit(_) => Error::Corrupt(format!(
                "the Charm server sent a {what} response larger than {limit} bytes"
            )),
            other => Error::Network(format!("reading the {what} response failed: {other}")),
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
    Error::Server { status, message }
}

fn transport_error(method: &str, path: &str, authority: &str, e: ureq::Error) -> Error {
    // Strip the query; paths are encrypted hex and carry nothing secret.
    let path = path.split('?').next().unwrap_or(path);
    let what = format!("HTTP {method} {path} to {authority}");
    match e {
        ureq::Error::Timeout(t) => Error::Network(format!("{what} timed out ({t})")),
        ureq::Error::Io(e) => Error::Network(format!("{what} failed: {e}")),
        ureq::Error::ConnectionFailed => Error::Network(format!("{what}: connection failed")),
        ureq::Error::HostNotFound => Error::Network(format!("{what}: host not found")),
        ureq::Error::Protocol(e) => Error::Network(format!(
            "{what}: not an HTTP answer ({e}); is CHARM_HTTP_PORT the server's HTTP port?"
        )),
        other => Error::Network(format!("{what} failed: {other}")),
    }
}
