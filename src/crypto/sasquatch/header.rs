//! The sasquatch header: intro, recipient stanzas, footer with the header MAC
//! (`muesli/sasquatch` `format.go`, `primitives.go`).
//!
//! The parser is the Go parser's rules plus bounds: it reads at most
//! [`MAX_HEADER_LEN`] bytes and at most [`MAX_STANZAS`] stanzas, so hostile input
//! is rejected after a bounded amount of reading.

use std::io::Read;

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

use super::FileKey;

const INTRO: &[u8] = b"charm.sh/v1";
const STANZA_PREFIX: &[u8] = b"->";
const FOOTER_PREFIX: &[u8] = b"---";

/// Base64 characters per full body line.
const COLUMNS_PER_LINE: usize = 64;
/// Bytes carried by a full body line.
pub(crate) const BYTES_PER_LINE: usize = COLUMNS_PER_LINE / 4 * 3;

/// HMAC-SHA256 output. Go accepts any length here and fails the MAC check later.
const MAC_SIZE: usize = 32;

/// Go rejects more than 20 stanzas (after parsing); we stop parsing at the 21st.
pub const MAX_STANZAS: usize = 20;

/// Cap on the header (intro through the footer's LF). Real headers are under 1 KiB
/// for Ed25519 and scrypt and about 1 KiB for one RSA-4096 stanza; 20 RSA-16384
/// stanzas would still fit. Go has no cap, but Go also never writes more.
pub const MAX_HEADER_LEN: usize = 64 * 1024;

/// One recipient stanza: `-> type args...` and its decoded body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stanza {
    pub kind: String,
    pub args: Vec<String>,
    pub body: Vec<u8>,
}

/// A parsed header, with the exact bytes the MAC covers.
pub(crate) struct Header {
    pub stanzas: Vec<Stanza>,
    pub mac: Vec<u8>,
    /// Intro through the three dashes of the footer. The strict parser admits only
    /// one encoding of a header, so these bytes equal Go's re-marshalled header.
    pub mac_input: Vec<u8>,
}

/// Strict unpadded standard base64, as Go's `RawStdEncoding.Strict()`: rejects
/// padding, non-zero trailing bits and any whitespace.
pub(crate) fn b64_decode(s: &[u8]) -> Option<Vec<u8>> {
    STANDARD_NO_PAD.decode(s).ok()
}

pub(crate) fn b64_encode(bytes: &[u8]) -> String {
    STANDARD_NO_PAD.encode(bytes)
}

/// Encodes a stanza. Bodies wrap at 64 columns; a body whose length is a multiple
/// of 48 ends with a full line (no empty line, unlike age), and an empty body
/// writes no line at all (`format.go`).
fn encode_stanza(out: &mut Vec<u8>, stanza: &Stanza) {
    out.extend_from_slice(STANZA_PREFIX);
    for arg in std::iter::once(&stanza.kind).chain(&stanza.args) {
        out.push(b' ');
        out.extend_from_slice(arg.as_bytes());
    }
    out.push(b'\n');
    if stanza.body.is_empty() {
        return;
    }
    let encoded = b64_encode(&stanza.body);
    for line in encoded.as_bytes().chunks(COLUMNS_PER_LINE) {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
}

/// Encodes a whole header for `stanzas`, MAC'd with `file_key`.
pub(crate) fn encode_header(stanzas: &[Stanza], file_key: &FileKey) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(INTRO);
    out.push(b'\n');
    for stanza in stanzas {
        encode_stanza(&mut out, stanza);
    }
    out.extend_from_slice(FOOTER_PREFIX);
    let mac = header_mac(file_key, &out).finalize().into_bytes();
    out.push(b' ');
    out.extend_from_slice(b64_encode(&mac).as_bytes());
    out.push(b'\n');
    out
}

/// `HKDF-SHA256(file key, no salt, info = "header")`.
pub(super) fn hmac_key(file_key: &FileKey) -> Zeroizing<[u8; 32]> {
    let mut key = Zeroizing::new([0u8; 32]);
    hkdf::Hkdf::<Sha256>::new(None, file_key.as_slice())
        .expand(b"header", key.as_mut_slice())
        .expect("32 bytes is a valid HKDF-SHA256 length");
    key
}

fn header_mac(file_key: &FileKey, mac_input: &[u8]) -> Hmac<Sha256> {
    let key = hmac_key(file_key);
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_slice()).expect("HMAC takes any key");
    mac.update(mac_input);
    mac
}

impl Header {
    /// Checks the header MAC in constant time.
    pub fn verify_mac(&self, file_key: &FileKey) -> Result<()> {
        header_mac(file_key, &self.mac_input)
            .verify_slice(&self.mac)
            .map_err(|_| Error::corrupt("sasquatch: bad header MAC"))
    }
}

/// Whether an argument is 1+ bytes of printable non-space ASCII (0x21..=0x7E).
fn valid_arg(arg: &[u8]) -> bool {
    !arg.is_empty() && arg.iter().all(|&c| (0x21..=0x7e).contains(&c))
}

fn bad(msg: impl std::fmt::Display) -> Error {
    Error::corrupt(format!("sasquatch header: {msg}"))
}

/// Shows at most a short prefix of a hostile line in error messages.
fn excerpt(line: &[u8]) -> String {
    const MAX: usize = 40;
    let shown = String::from_utf8_lossy(&line[..line.len().min(MAX)]).into_owned();
    if line.len() > MAX {
        format!("{shown:?}...")
    } else {
        format!("{shown:?}")
    }
}

/// Incremental line parser state.
struct Parser {
    stanzas: Vec<Stanza>,
    /// Whether the last stanza may take more body lines (no short line yet).
    open: bool,
    seen_intro: bool,
}

enum Line {
    More,
    Footer(Vec<u8>),
}

impl Parser {
    fn line(&mut self, line: &[u8]) -> Result<Line> {
        if !self.seen_intro {
            if line != INTRO {
                return Err(bad(format!("unexpected intro {}", excerpt(line))));
            }
            self.seen_intro = true;
            return Ok(Line::More);
        }
        if line.starts_with(FOOTER_PREFIX) {
            let mut parts = line.split(|&c| c == b' ');
            let prefix = parts.next().unwrap_or_default();
            let args: Vec<&[u8]> = parts.collect();
            if prefix != FOOTER_PREFIX || args.len() != 1 {
                return Err(bad(format!("malformed footer {}", excerpt(line))));
            }
            let mac = b64_decode(args[0])
                .filter(|mac| mac.len() == MAC_SIZE)
                .ok_or_else(|| bad(format!("malformed MAC in footer {}", excerpt(line))))?;
            return Ok(Line::Footer(mac));
        }
        if line.starts_with(STANZA_PREFIX) {
            let mut parts = line.split(|&c| c == b' ');
            let prefix = parts.next().unwrap_or_default();
            let args: Vec<&[u8]> = parts.collect();
            if prefix != STANZA_PREFIX || args.is_empty() || !args.iter().all(|a| valid_arg(a)) {
                return Err(bad(format!("malformed stanza line {}", excerpt(line))));
            }
            if self.stanzas.len() == MAX_STANZAS {
                return Err(bad(format!("more than {MAX_STANZAS} recipient stanzas")));
            }
            // valid_arg admits ASCII only, so these conversions cannot fail.
            let mut args = args
                .into_iter()
                .map(|a| String::from_utf8_lossy(a).into_owned());
            let kind = args.next().unwrap_or_default();
            self.stanzas.push(Stanza {
                kind,
                args: args.collect(),
                body: Vec::new(),
            });
            self.open = true;
            return Ok(Line::More);
        }
        if !self.open {
            return Err(bad(format!("unexpected line {}", excerpt(line))));
        }
        if line.is_empty() {
            return Err(bad("empty body line"));
        }
        let bytes = b64_decode(line)
            .ok_or_else(|| bad(format!("malformed body line {}", excerpt(line))))?;
        if bytes.len() > BYTES_PER_LINE {
            return Err(bad(format!("body line too long {}", excerpt(line))));
        }
        let stanza = self.stanzas.last_mut().expect("open implies a stanza");
        stanza.body.extend_from_slice(&bytes);
        // Only the last line of a body may be short, so a short line closes it.
        if bytes.len() < BYTES_PER_LINE {
            self.open = false;
        }
        Ok(Line::More)
    }
}

/// Reads and parses a header from `input`. Returns the header and the bytes read
/// past its end (the start of the payload).
pub(crate) fn read_header<R: Read>(input: &mut R) -> Result<(Header, Vec<u8>)> {
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    let mut parser = Parser {
        stanzas: Vec::new(),
        open: false,
        seen_intro: false,
    };
    let mut line_start = 0;
    let mut scanned = 0;
    loop {
        // Process every complete line in the buffer.
        while let Some(nl) = buf[scanned..].iter().position(|&c| c == b'\n') {
            let line_end = scanned + nl;
            scanned = line_end + 1;
            let line = &buf[line_start..line_end];
            if let Line::Footer(mac) = parser.line(line)? {
                if parser.stanzas.is_empty() {
                    return Err(bad("no recipient stanzas"));
                }
                let header = Header {
                    stanzas: parser.stanzas,
                    mac,
                    mac_input: buf[..line_start + FOOTER_PREFIX.len()].to_vec(),
                };
                let rest = buf.split_off(scanned);
                return Ok((header, rest));
            }
            line_start = scanned;
        }
        scanned = buf.len();
        // Reject a wrong intro before reading further: garbage fails fast.
        if !parser.seen_intro {
            let n = buf.len().min(INTRO.len() + 1);
            let mut expected = INTRO.to_vec();
            expected.push(b'\n');
            if buf[..n] != expected[..n] {
                return Err(bad("not a charm.sh/v1 file (unexpected intro)"));
            }
        }
        if buf.len() >= MAX_HEADER_LEN {
            return Err(bad(format!(
                "no footer within the first {MAX_HEADER_LEN} bytes"
            )));
        }
        let old_len = buf.len();
        let want = (MAX_HEADER_LEN - old_len).min(4096);
        buf.resize(old_len + want, 0);
        let n = loop {
            match input.read(&mut buf[old_len..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io("reading sasquatch header", e)),
            }
        };
        buf.truncate(old_len + n);
        if n == 0 {
            return Err(bad("truncated before the footer"));
        }
    }
}
