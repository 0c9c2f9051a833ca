//! `api-auth`: the SSH command that yields a JWT and the wrapped encrypt keys
//! (`charm/client/auth.go`, `charm/server/ssh.go` v0.12.6), and the in-memory token cache.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde::Deserialize;

pub use crate::crypto::keywrap::WrappedKey;
use crate::error::{Error, Result};

/// A token is renewed this long before its `exp`, so a request never races the expiry
/// (the Go client renews only after expiry and can get a 401).
pub(crate) const EXPIRY_SKEW: Duration = Duration::from_secs(60);

/// What an empty `api-auth` answer means.
pub(crate) const NO_AUTH: &str =
    "the Charm server returned no auth (api-auth printed nothing; see the server log)";

/// The answer of `api-auth`. Its `Debug` output leaves out the JWT.
#[derive(Clone, Deserialize)]
pub struct AuthInfo {
    pub jwt: String,
    pub charm_id: String,
    pub http_scheme: String,
    /// The server's name of our SSH key (`<type> <base64>`).
    #[serde(default)]
    pub public_key: Option<String>,
    /// Absent (not empty) when the account has no key for this SSH key yet.
    #[serde(default)]
    pub encrypt_keys: Vec<WrappedKey>,
}

impl std::fmt::Debug for AuthInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthInfo")
            .field("jwt", &"<redacted>")
            .field("charm_id", &self.charm_id)
            .field("http_scheme", &self.http_scheme)
            .field("public_key", &self.public_key)
            .field("encrypt_keys", &self.encrypt_keys.len())
            .finish()
    }
}

impl AuthInfo {
    /// Parses `api-auth` output. The server prints nothing when it fails.
    pub(crate) fn parse(output: &[u8]) -> Result<Self> {
        if output.iter().all(u8::is_ascii_whitespace) {
            return Err(Error::auth(NO_AUTH));
        }
        let info: AuthInfo = serde_json::from_slice(output).map_err(|e| {
            Error::auth("the Charm server returned unreadable auth JSON").caused_by(e)
        })?;
        if info.jwt.is_empty() || info.charm_id.is_empty() {
            return Err(Error::auth(
                "the Charm server returned auth without a JWT or charm id",
            ));
        }
        if !matches!(info.http_scheme.as_str(), "http" | "https") {
            return Err(Error::auth(format!(
                "the Charm server returned an unknown HTTP scheme {:?}",
                info.http_scheme
            )));
        }
        Ok(info)
    }
}

/// A JWT and when it stops being usable.
#[derive(Clone)]
pub(crate) struct Token {
    pub jwt: String,
    /// `exp` (Unix seconds), read without verifying the signature, as the Go client does.
    pub expires: Option<u64>,
}

impl Token {
    pub(crate) fn new(jwt: &str) -> Result<Self> {
        Ok(Token {
            jwt: jwt.to_owned(),
            expires: jwt_expiry(jwt)?,
        })
    }

    /// True while the token is more than [`EXPIRY_SKEW`] away from its expiry.
    pub(crate) fn is_fresh(&self) -> bool {
        match self.expires {
            None => true,
            Some(exp) => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs();
                now.saturating_add(EXPIRY_SKEW.as_secs()) < exp
            }
        }
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

/// The `exp` claim of a JWT, or `None` without one. The signature is not checked: the
/// server checks it, and the client only needs to know when to renew.
pub(crate) fn jwt_expiry(jwt: &str) -> Result<Option<u64>> {
    let bad = |why: &str| Error::auth(format!("the Charm server returned a malformed JWT: {why}"));
    let mut parts = jwt.split('.');
    let payload = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(_), Some(payload), Some(_), None) => payload,
        _ => return Err(bad("not three dot-separated parts")),
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| bad("payload is not base64url"))?;
    let claims: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|_| bad("payload is not JSON"))?;
    let claims = claims
        .as_object()
        .ok_or_else(|| bad("payload is not a claims object"))?;
    match claims.get("exp") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(exp) => {
            let exp = exp.as_f64().ok_or_else(|| bad("exp is not a number"))?;
            Ok(Some(if exp <= 0.0 { 0 } else { exp as u64 }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt_with(payload: &str) -> String {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.sig", b64(r#"{"alg":"EdDSA"}"#), b64(payload))
    }

    #[test]
    fn parses_the_go_auth_shape() {
        let jwt = jwt_with(r#"{"iss":"x","sub":"id","aud":["charm"],"exp":4102444800}"#);
        let json = format!(
            r#"{{"jwt":"{jwt}","charm_id":"c","http_scheme":"http","public_key":"ssh-ed25519 AAAA","encrypt_keys":[{{"id":"k","key":"Zm9v","created_at":"2024-01-01T12:00:00Z"}}]}}"#
        );
        let info = AuthInfo::parse(format!("{json}\n").as_bytes()).unwrap();
        assert_eq!(info.charm_id, "c");
        assert_eq!(info.encrypt_keys.len(), 1);
        assert_eq!(
            info.encrypt_keys[0].created_at.as_deref(),
            Some("2024-01-01T12:00:00Z")
        );
        let token = Token::new(&info.jwt).unwrap();
        assert_eq!(token.expires, Some(4102444800));
        assert!(!format!("{info:?}").contains(&info.jwt));
        assert!(token.is_fresh());
    }

    #[test]
    fn absent_keys_are_empty() {
        let jwt = jwt_with(r#"{"exp":1}"#);
        let json = format!(r#"{{"jwt":"{jwt}","charm_id":"c","http_scheme":"http"}}"#);
        let info = AuthInfo::parse(json.as_bytes()).unwrap();
        assert!(info.encrypt_keys.is_empty());
        assert!(!Token::new(&info.jwt).unwrap().is_fresh());
    }

    #[test]
    fn empty_or_garbage_output_is_an_auth_error() {
        for output in [&b""[..], b"\n", b"{\"jwt\":", b"hello", b"{}"] {
            let err = AuthInfo::parse(output).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::Auth, "{output:?}: {err}");
        }
        let err = AuthInfo::parse(b"").unwrap_err();
        assert!(err.to_string().contains("returned no auth"), "{err}");
    }

    #[test]
    fn malformed_jwts_are_rejected_and_missing_exp_never_expires() {
        assert!(jwt_expiry("a.b").is_err());
        assert!(jwt_expiry("a.!!!.c").is_err());
        assert!(jwt_expiry(&jwt_with("[1]")).is_err());
        assert_eq!(jwt_expiry(&jwt_with("{}")).unwrap(), None);
    }

    /// Unreadable auth JSON is an auth error whose source is serde_json's error.
    #[test]
    fn unreadable_auth_json_keeps_the_parse_error_as_source() {
        let err = AuthInfo::parse(b"{\"jwt\": ").unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Auth, "{err}");
        let cause = crate::error::source_of::<serde_json::Error>(&err).expect("serde_json source");
        assert!(cause.is_eof(), "{cause}");
        assert!(err.to_string().ends_with(&cause.to_string()), "{err}");
    }
}
