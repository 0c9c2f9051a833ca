//! Pairs as JSON lines: the format of export and import (and of the `charm-kv`
//! command's `--json` listings). One object per line, every field always written:
//!
//! ```text
//! {"key":"name","value":"Charm","key_base64":false,"value_base64":false}
//! {"key":"blob","value":"AAEC/w==","key_base64":false,"value_base64":true}
//! ```
//!
//! A key or value that is valid UTF-8 is written as a JSON string, anything else as
//! standard base64 with its `*_base64` flag set. On import the flags default to false,
//! so `{"key":"a","value":"b"}` is a valid line; blank lines are skipped, and any other
//! field is an error. The file is plaintext: whoever reads it reads every pair.
//!
//! A pair with an expiry has one more field, `expires_at_unix_ms` (an integer: unix
//! time in milliseconds), written only then:
//!
//! ```text
//! {"key":"session","value":"abc","key_base64":false,"value_base64":false,"expires_at_unix_ms":1795000000000}
//! ```
//!
//! On import it is optional; it must be from 1 to 253402300799999 (the end of the year
//! 9999), and a line whose expiry has already passed is not imported or counted. The
//! last line of a key wins: an expired line after a live one of the same key cancels
//! it, and leaves the database's own value of that key alone (re-importing an old
//! export must not delete what other devices set since).

use std::io::{BufRead, Write};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::kv::Kv;
use crate::store::KeyRange;

/// One line of an export.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    key: String,
    value: String,
    #[serde(default)]
    key_base64: bool,
    #[serde(default)]
    value_base64: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at_unix_ms: Option<i64>,
}

/// Bytes as JSON text: themselves when UTF-8, else base64 (and `true`).
pub fn text_or_base64(bytes: &[u8]) -> (String, bool) {
    match std::str::from_utf8(bytes) {
        Ok(text) => (text.to_owned(), false),
        Err(_) => (BASE64.encode(bytes), true),
    }
}

/// A key, its value and its expiry in unix milliseconds, if it has one.
pub type Entry = (Vec<u8>, Vec<u8>, Option<i64>);

/// The JSON object of one pair, without a newline.
pub fn encode_pair(key: &[u8], value: &[u8]) -> String {
    encode_entry(key, value, None)
}

/// The JSON object of one pair and its expiry (unix milliseconds), without a newline.
pub fn encode_entry(key: &[u8], value: &[u8], expires_at_unix_ms: Option<i64>) -> String {
    let (key, key_base64) = text_or_base64(key);
    let (value, value_base64) = text_or_base64(value);
    let line = Line {
        key,
        value,
        key_base64,
        value_base64,
        expires_at_unix_ms,
    };
    serde_json::to_string(&line).expect("strings, booleans and integers always serialise")
}

/// The pair of one line; the error says what is wrong (without the line number). An
/// expiry, if the line has one, is checked and dropped: see [`decode_entry`].
pub fn decode_pair(line: &str) -> std::result::Result<(Vec<u8>, Vec<u8>), String> {
    decode_entry(line).map(|(key, value, _)| (key, value))
}

/// The pair of one line and its expiry (unix milliseconds), if it has one.
pub fn decode_entry(line: &str) -> std::result::Result<Entry, String> {
    let line: Line = serde_json::from_str(line).map_err(|e| json_error_without_input(&e))?;
    if let Some(at) = line.expires_at_unix_ms {
        crate::store::expiry::check_expiry(at).map_err(|e| match e.message() {
            Some(why) if e.kind() == crate::error::ErrorKind::InvalidArgument => {
                format!("expires_at_unix_ms: {why}")
            }
            _ => e.to_string(),
        })?;
    }
    let expires_at = line.expires_at_unix_ms;
    let decode = |text: String, base64: bool, what: &str| match base64 {
        true => BASE64.decode(text.as_bytes()).map_err(|e| {
            format!(
                "{what} is not valid base64: {}",
                base64_error_without_input(e)
            )
        }),
        false => Ok(text.into_bytes()),
    };
    let key = decode(line.key, line.key_base64, "key")?;
    let value = decode(line.value, line.value_base64, "value")?;
    if key.is_empty() {
        return Err("key cannot be empty".to_owned());
    }
    if key.len() > crate::store::MAX_KEY_LEN {
        return Err(format!(
            "key is {} bytes; the limit is {}",
            key.len(),
            crate::store::MAX_KEY_LEN
        ));
    }
    if value.len() > crate::store::MAX_VALUE_LEN {
        return Err(format!(
            "value is {} bytes; the limit is {}",
            value.len(),
            crate::store::MAX_VALUE_LEN
        ));
    }
    Ok((key, value, expires_at))
}

/// serde_json's message for a line it could not read, without the piece of the line it
/// quotes: "invalid type: integer `123`, expected a string" names the user's value, and
/// messages never carry key or value bytes. What is left still says what was expected
/// and where.
fn json_error_without_input(e: &serde_json::Error) -> String {
    let message = e.to_string();
    if !matches!(e.classify(), serde_json::error::Category::Data) {
        return message;
    }
    // "invalid type: string \"…\", expected a boolean at line 1 column 9": kept are the
    // kind of token serde_json found (its first word) and what follows the last
    // ", expected" (written from our format, not from the line); field names in other
    // messages ("missing field `key`") are ours and stay.
    for prefix in ["invalid type: ", "invalid value: "] {
        let Some(rest) = message.strip_prefix(prefix) else {
            continue;
        };
        let found = rest
            .split_whitespace()
            .next()
            .unwrap_or("")
            .trim_end_matches(',');
        let found = match found.chars().all(|c| c.is_ascii_alphabetic()) {
            true => found,
            false => "value",
        };
        return match rest.rfind(", expected ") {
            Some(at) => format!("{prefix}{found}{}", &rest[at..]),
            None => format!("{prefix}{found}"),
        };
    }
    message
}

/// base64's message without the byte it found: only where.
fn base64_error_without_input(e: base64::DecodeError) -> String {
    match e {
        base64::DecodeError::InvalidByte(offset, _)
        | base64::DecodeError::InvalidLastSymbol(offset, _) => {
            format!("invalid symbol at offset {offset}")
        }
        other => other.to_string(),
    }
}

/// Writes every pair of `kv` (one snapshot, ascending keys) to `out` as JSON lines and
/// returns how many. A row that does not decrypt fails the export: a file that
/// silently lacks pairs would read as "these keys do not exist".
pub fn export(kv: &Kv, out: &mut dyn Write) -> Result<u64> {
    let mut count = 0;
    let mut pairs = kv.iter_in(&KeyRange::all(), true)?;
    while let Some(entry) = pairs.next_entry() {
        let (key, value, expires_at) = entry?;
        // Expiries are at most MAX_EXPIRY_MS, far inside i64.
        let line = encode_entry(&key, &value, expires_at.map(|at| at as i64));
        out.write_all(line.as_bytes())
            .and_then(|()| out.write_all(b"\n"))
            .map_err(|e| Error::io("writing the export", e))?;
        count += 1;
    }
    out.flush()
        .map_err(|e| Error::io("writing the export", e))?;
    Ok(count)
}

/// Reads JSON lines from `input` and writes them to `kv` in one atomic batch; with
/// `replace`, every key not in the input is deleted in the same batch. Every line is
/// read and checked before anything is written: a malformed one is
/// [`Error::InvalidArgument`] naming its line number, and the database is unchanged.
/// Returns the number of pairs imported (a key given twice counts twice; the last
/// line of a key wins; a line whose expiry has passed is not imported or counted, and
/// as a key's last line leaves that key as the database has it).
pub fn import(kv: &Kv, input: &mut dyn BufRead, replace: bool) -> Result<u64> {
    let mut pairs = Vec::new();
    let mut text = String::new();
    for number in 1.. {
        text.clear();
        let read = input.read_line(&mut text).map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidData => {
                Error::invalid(format!("line {number}: not UTF-8 text"))
            }
            _ => Error::io("reading the import", e),
        })?;
        if read == 0 {
            break;
        }
        if text.trim().is_empty() {
            continue;
        }
        let entry = decode_entry(text.trim_end_matches(['\n', '\r']))
            .map_err(|why| Error::invalid(format!("line {number}: {why}")))?;
        pairs.push(entry);
    }
    let mut batch = kv.batch();
    if replace {
        for key in kv.keys()? {
            batch.delete(key);
        }
    }
    let now = kv.now_ms() as i64;
    // The last line of a key decides what the import does with it. A line whose expiry
    // has passed is not imported: it cancels the earlier lines of its key and leaves
    // the database's own value alone (re-importing an old export must not delete, for
    // the whole account, what other devices set since).
    let mut last = std::collections::HashMap::new();
    for (index, (key, _, _)) in pairs.iter().enumerate() {
        last.insert(key.clone(), index);
    }
    let mut count = 0;
    for (index, (key, value, expires_at)) in pairs.into_iter().enumerate() {
        let live = expires_at.is_none_or(|at| at > now);
        if live {
            count += 1;
        }
        if last.get(&key) != Some(&index) || !live {
            continue;
        }
        match expires_at {
            Some(at) => batch.set_expiring_at_unix_ms(key, value, at),
            None => batch.set(key, value),
        };
    }
    batch.commit()?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_stays_text_and_other_bytes_become_base64() {
        assert_eq!(
            encode_pair(b"name", b"Charm \"kv\"\n"),
            r#"{"key":"name","value":"Charm \"kv\"\n","key_base64":false,"value_base64":false}"#
        );
        assert_eq!(
            encode_pair(b"\xff", b"\x00\xff"),
            r#"{"key":"/w==","value":"AP8=","key_base64":true,"value_base64":true}"#
        );
        assert_eq!(
            encode_entry(b"s", b"v", Some(1_795_000_000_000)),
            r#"{"key":"s","value":"v","key_base64":false,"value_base64":false,"expires_at_unix_ms":1795000000000}"#
        );
        assert_eq!(
            decode_entry(&encode_entry(b"s", b"v", Some(7))).unwrap(),
            (b"s".to_vec(), b"v".to_vec(), Some(7))
        );
        for (key, value) in [(&b"k"[..], &b""[..]), (b"\xff\xfe", b"\xc3\x28")] {
            let line = encode_pair(key, value);
            assert_eq!(decode_pair(&line).unwrap(), (key.to_vec(), value.to_vec()));
        }
    }

    #[test]
    fn malformed_lines_say_what_is_wrong() {
        for (line, why) in [
            ("not json", "expected"),
            (r#"{"key":"a"}"#, "missing field `value`"),
            (r#"{"key":"a","value":"b","extra":1}"#, "unknown field"),
            (r#"{"key":"","value":"b"}"#, "key cannot be empty"),
            (
                r#"{"key":"a","value":"b","expires_at_unix_ms":0}"#,
                "expires_at_unix_ms",
            ),
            (
                r#"{"key":"a","value":"b","expires_at_unix_ms":"soon"}"#,
                "invalid type",
            ),
            (
                r#"{"key":"a","value":"b","expires_at_unix_ms":253402300800000}"#,
                "expires_at_unix_ms",
            ),
            (
                r#"{"key":"a","value":"%%","value_base64":true}"#,
                "not valid base64",
            ),
        ] {
            let err = decode_pair(line).unwrap_err();
            assert!(err.contains(why), "{line}: {err}");
        }
        assert_eq!(
            decode_pair(r#"{"key":"a","value":"b"}"#).unwrap(),
            (b"a".to_vec(), b"b".to_vec())
        );
    }

    /// A message about a malformed line says what was expected and where, but never
    /// repeats what the user wrote in a key or value field.
    #[test]
    fn malformed_lines_do_not_echo_their_content() {
        for (line, secret, why) in [
            (
                r#"{"key":"a","value":918273645}"#,
                "918273645",
                "expected a string",
            ),
            (r#"{"key":true,"value":"b"}"#, "true", "expected a string"),
            (
                r#"{"key":"a","value":{"pin":"4711"}}"#,
                "4711",
                "expected a string",
            ),
            (
                r#"{"key":"a","value":"b","value_base64":"yes-secret"}"#,
                "yes-secret",
                "expected a boolean",
            ),
            (
                r#"{"key":"a","value":"QUJD*","value_base64":true}"#,
                "42",
                "offset 4",
            ),
            (
                r#"{"key":"a","value":"b","value_base64":"my`secret`pin"}"#,
                "secret",
                "expected a boolean",
            ),
            (
                r#"{"key":"a","value":"b","value_base64":"ab\"SECRET"}"#,
                "SECRET",
                "expected a boolean",
            ),
            (
                r#"{"key":"a","value":"b","value_base64":"x, expected y"}"#,
                "x, expected y",
                "expected a boolean",
            ),
        ] {
            let err = decode_pair(line).unwrap_err();
            assert!(err.contains(why), "{line}: {err}");
            assert!(!err.contains(secret), "{line}: {err}");
        }
    }
}
