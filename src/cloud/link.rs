//! Charm's account linking over SSH (`api-link`, `api-keys`, `api-unlink`), as the Go
//! client speaks it (`charm/client/link.go`, `charm/server/link.go`,
//! `charm/proto/link.go`, v0.12.6). Each server message is one JSON line; the only
//! client message is the generator's `{"message":"yes"|"no"}`.
//!
//! This is the wire protocol only: what happens to the keys after a link is decided
//! by the account layer (`crate::account::link`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ssh::Reply;
use super::CharmClient;
use crate::error::{Error, LinkFailure, Result};

/// The server's `Link` message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkMessage {
    #[serde(default)]
    pub token: String,
    #[serde(default)]
    pub request_pub_key: String,
    #[serde(default)]
    pub request_addr: String,
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub port: i64,
    #[serde(default)]
    pub status: i64,
}

/// `proto.LinkStatus` values.
pub mod status {
    pub const TOKEN_CREATED: i64 = 1;
    pub const TOKEN_SENT: i64 = 2;
    pub const REQUEST_DENIED: i64 = 4;
    pub const SAME_USER: i64 = 5;
    pub const SUCCESS: i64 = 7;
    pub const TIMED_OUT: i64 = 8;
    pub const ERROR: i64 = 9;
    pub const VALID_TOKEN_REQUEST: i64 = 10;
    pub const INVALID_TOKEN_REQUEST: i64 = 11;
}

/// How a link the server completed ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkResult {
    /// The requesting key joined the account (new to it, or merged from another
    /// account: the server does not say which).
    Success,
    /// The requesting key was already in the account.
    SameUser,
}

/// One key of the account as `api-keys` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AccountKey {
    /// `<type> <base64>`, as the server stores it.
    pub key: String,
    /// RFC 3339, as the server sent it.
    #[serde(default)]
    pub created_at: Option<String>,
}

#[derive(Deserialize)]
struct KeysAnswer {
    #[serde(default)]
    active_key: i64,
    #[serde(default)]
    keys: Vec<AccountKey>,
}

/// The server's `{"message": ...}` line, sent instead of a `Link` on errors.
#[derive(Deserialize)]
struct ApiMessage {
    message: String,
}

/// Longest link code accepted: the server's are 6 characters.
const MAX_CODE_LEN: usize = 64;

/// What the generator's side calls back with during [`CharmClient::link_generate`].
pub trait GeneratorEvents: Send {
    /// The code to give the other device (valid for a minute).
    fn code(&mut self, message: &LinkMessage);
    /// Another device asks to join with `message.request_pub_key` from
    /// `message.request_addr`: true to let it in.
    fn confirm(&mut self, message: &LinkMessage) -> bool;
}

impl CharmClient {
    /// `api-link`: asks the server for a code, reports it, waits (at most `limit`)
    /// for a device to use it, asks `events` and answers. `Ok` only when the server
    /// completed the link; a denial (ours), a timeout and a server error are
    /// [`Error::Link`].
    pub fn link_generate(
        &self,
        events: &mut dyn GeneratorEvents,
        limit: Duration,
        stop: &(dyn Fn() -> bool + Sync),
    ) -> Result<(LinkResult, LinkMessage)> {
        let mut outcome: Option<Result<(LinkResult, LinkMessage)>> = None;
        let mut denied = false;
        let mut on_line = |line: &[u8]| -> Result<Reply> {
            let message = parse_line(line)?;
            match message.status {
                status::TOKEN_CREATED => {
                    events.code(&message);
                    Ok(Reply::Continue)
                }
                status::VALID_TOKEN_REQUEST => {
                    if events.confirm(&message) {
                        Ok(Reply::Send(b"{\"message\":\"yes\"}\n".to_vec()))
                    } else {
                        // The server sends nothing more to a generator that said no.
                        denied = true;
                        outcome = Some(Err(Error::link(
                            LinkFailure::Denied,
                            format!(
                                "you denied the link request of {} ({})",
                                message.request_addr, message.request_pub_key
                            ),
                        )));
                        Ok(Reply::Send(b"{\"message\":\"no\"}\n".to_vec()))
                    }
                }
                other => {
                    outcome = Some(final_status(other, message));
                    Ok(Reply::Finish)
                }
            }
        };
        let run = self
            .ssh
            .converse("api-link", None, limit, stop, &mut on_line);
        finish(run, outcome, limit, denied)
    }

    /// `api-link CODE`: asks to join the account that showed `code`, waiting (at most
    /// `limit`) for its answer. Invalid codes, denials, timeouts and server errors are
    /// [`Error::Link`].
    pub fn link_request(
        &self,
        code: &str,
        limit: Duration,
        stop: &(dyn Fn() -> bool + Sync),
    ) -> Result<(LinkResult, LinkMessage)> {
        let code = code.trim();
        if code.is_empty()
            || code.len() > MAX_CODE_LEN
            || !code.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return Err(Error::link(
                LinkFailure::InvalidCode,
                format!(
                    "{} is not a link code (letters and digits, as `link` shows them)",
                    crate::error::quoted(code)
                ),
            ));
        }
        let code = code.to_ascii_uppercase();
        let mut outcome: Option<Result<(LinkResult, LinkMessage)>> = None;
        let mut on_line = |line: &[u8]| -> Result<Reply> {
            let message = parse_line(line)?;
            match message.status {
                status::TOKEN_SENT | status::VALID_TOKEN_REQUEST => Ok(Reply::Continue),
                status::INVALID_TOKEN_REQUEST => {
                    outcome = Some(Err(Error::link(
                        LinkFailure::InvalidCode,
                        format!(
                            "the server knows no link code {code} (mistyped, expired or \
                             already used: codes last a minute)"
                        ),
                    )));
                    Ok(Reply::Finish)
                }
                other => {
                    outcome = Some(final_status(other, message));
                    Ok(Reply::Finish)
                }
            }
        };
        let command = format!("api-link {code}");
        let run = self.ssh.converse(&command, None, limit, stop, &mut on_line);
        finish(run, outcome, limit, false)
    }

    /// `api-keys`: the SSH public keys of the account, oldest first, and the index of
    /// the one this client logs in with.
    pub fn account_keys(&self) -> Result<(Vec<AccountKey>, Option<usize>)> {
        let output = self.ssh.run("api-keys")?;
        let answer: KeysAnswer = serde_json::from_slice(&output).map_err(|e| {
            match serde_json::from_slice::<ApiMessage>(&output) {
                Ok(m) => Error::server(500, m.message),
                Err(_) => Error::corrupt("api-keys answered something else").caused_by(e),
            }
        })?;
        let active = usize::try_from(answer.active_key)
            .ok()
            .filter(|i| *i < answer.keys.len());
        Ok((answer.keys, active))
    }

    /// `api-unlink`: removes SSH public key `key` (`<type> <base64>`) from the
    /// account. The server deletes the account when its last key goes.
    pub fn unlink_key(&self, key: &str) -> Result<()> {
        let body = serde_json::json!({"id": 0, "key": key, "created_at": null});
        let mut stdin = serde_json::to_vec(&body)
            .map_err(|e| Error::internal("encoding the unlink request").caused_by(e))?;
        stdin.push(b'\n');
        let mut said = Vec::new();
        let mut on_line = |line: &[u8]| -> Result<Reply> {
            said.extend_from_slice(line);
            Ok(Reply::Continue)
        };
        self.ssh.converse(
            "api-unlink",
            Some(&stdin),
            self.config.timeouts.request,
            &|| false,
            &mut on_line,
        )?;
        if said.is_empty() {
            return Ok(());
        }
        let message = serde_json::from_slice::<ApiMessage>(&said)
            .map(|m| m.message)
            .unwrap_or_else(|_| String::from_utf8_lossy(&said).into_owned());
        Err(Error::server(
            500,
            format!("could not unlink the key: {message}"),
        ))
    }
}

fn parse_line(line: &[u8]) -> Result<LinkMessage> {
    if let Ok(message) = serde_json::from_slice::<ApiMessage>(line) {
        if !message.message.is_empty() && !line.windows(8).any(|w| w == b"\"status\"") {
            return Err(Error::link(
                LinkFailure::ServerError,
                format!("the Charm server says: {}", message.message),
            ));
        }
    }
    serde_json::from_slice(line).map_err(|e| {
        Error::corrupt("the Charm server sent a link message that is not JSON").caused_by(e)
    })
}

/// The outcome of a final `Link` status.
fn final_status(status: i64, message: LinkMessage) -> Result<(LinkResult, LinkMessage)> {
    match status {
        status::SUCCESS => Ok((LinkResult::Success, message)),
        status::SAME_USER => Ok((LinkResult::SameUser, message)),
        status::REQUEST_DENIED => Err(Error::link(
            LinkFailure::Denied,
            "the device that showed the code denied the request",
        )),
        status::TIMED_OUT => Err(Error::link(
            LinkFailure::TimedOut,
            "the link timed out on the server (a code lasts a minute, and so does the \
             wait for an answer)",
        )),
        status::ERROR => Err(Error::link(
            LinkFailure::ServerError,
            "the Charm server reported an error while linking",
        )),
        other => Err(Error::corrupt(format!(
            "the Charm server sent link status {other} out of turn"
        ))),
    }
}

/// The conversation's result: its outcome if it reached one, else why not.
fn finish(
    run: Result<()>,
    outcome: Option<Result<(LinkResult, LinkMessage)>>,
    limit: Duration,
    denied: bool,
) -> Result<(LinkResult, LinkMessage)> {
    match (run, outcome) {
        (_, Some(outcome)) if denied => outcome,
        (Ok(()), Some(outcome)) => outcome,
        (Err(Error::Network { message, .. }), None)
            if message.contains("did not finish within") =>
        {
            Err(Error::link(
                LinkFailure::TimedOut,
                format!("no answer within the deadline of {limit:?}"),
            ))
        }
        (Err(e), _) => Err(e),
        (Ok(()), None) => Err(Error::link(
            LinkFailure::ServerError,
            "the Charm server ended the link session without a result",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_lines_parse() {
        let m = parse_line(br#"{"token":"AB3KLM","request_pub_key":"","request_addr":"","host":"localhost","port":35353,"status":1}"#).unwrap();
        assert_eq!((m.token.as_str(), m.status, m.port), ("AB3KLM", 1, 35353));
        let err =
            parse_line(br#"{"message":"Error linking account: invalid token 'X'"}"#).unwrap_err();
        assert_eq!(err.link_failure(), Some(LinkFailure::ServerError), "{err}");
        assert_eq!(
            parse_line(b"nope").unwrap_err().kind(),
            crate::ErrorKind::Corrupt
        );
    }

    #[test]
    fn final_statuses_map_to_distinct_failures() {
        let m = LinkMessage::default();
        assert_eq!(
            final_status(status::SUCCESS, m.clone()).unwrap().0,
            LinkResult::Success
        );
        assert_eq!(
            final_status(status::SAME_USER, m.clone()).unwrap().0,
            LinkResult::SameUser
        );
        for (code, failure) in [
            (status::REQUEST_DENIED, LinkFailure::Denied),
            (status::TIMED_OUT, LinkFailure::TimedOut),
            (status::ERROR, LinkFailure::ServerError),
        ] {
            let err = final_status(code, m.clone()).unwrap_err();
            assert_eq!(err.link_failure(), Some(failure));
        }
    }
}
