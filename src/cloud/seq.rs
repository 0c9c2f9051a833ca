//! Named sequences: `GET`/`POST /v1/seq/<name>` (`charm/server/http.go` v0.12.6).
//!
//! `<name>` is one path segment: kv sends the encrypted lookup field of the db name.
//! GET returns the current value (creating the row at 0); POST increments it and
//! returns the new value (a missing row is created at 0 and 0 is returned).

use serde::Deserialize;

use crate::error::{Error, Result};

/// Largest seq response we read: `{"seq":18446744073709551615}\n` is 30 bytes.
pub(crate) const MAX_SEQ_RESPONSE: u64 = 4 << 10;

#[derive(Deserialize)]
pub(crate) struct SeqResponse {
    pub seq: u64,
}

/// The request path for sequence `name` (already encrypted).
pub(crate) fn seq_path(name: &str) -> Result<String> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(Error::invalid(format!(
            "sequence name {name:?} must be one non-empty URL-safe path segment"
        )));
    }
    Ok(format!("/v1/seq/{name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_names_must_be_one_safe_segment() {
        assert_eq!(seq_path("ab12").unwrap(), "/v1/seq/ab12");
        for bad in ["", "a/b", "a b", "%2f", "a?b", "..", "."] {
            assert!(seq_path(bad).is_err(), "{bad:?}");
        }
    }
}
