//! The `scrypt` recipient: a password-wrapped file key (`muesli/sasquatch` `scrypt.go`).
//! Charm encrypts all content with it, the password being the encrypt key text.

use rand::RngCore;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

use super::header::{b64_decode, b64_encode, Stanza};
use super::{aead_unwrap, aead_wrap, FileKey};

pub(crate) const STANZA_TYPE: &str = "scrypt";
const SALT_LABEL: &[u8] = b"charm.sh/v1/scrypt";
const SALT_SIZE: usize = 16;

/// The work factor Go's sasquatch always writes (N = 2^8).
pub const DEFAULT_LOG_N: u8 = 8;

/// Largest work factor the decoder accepts. Go has no bound, so a hostile file
/// could ask for N = 2^62. Go's encoder can only write 8; 16 costs 64 MiB and
/// a fraction of a second, leaving ample headroom without letting a server or
/// a crafted file exhaust memory (2^20 would already need 1 GiB).
pub const MAX_LOG_N: u8 = 16;

pub(super) fn wrap_key(password: &[u8], salt: &[u8], log_n: u8) -> Result<Zeroizing<[u8; 32]>> {
    let mut full_salt = Vec::with_capacity(SALT_LABEL.len() + salt.len());
    full_salt.extend_from_slice(SALT_LABEL);
    full_salt.extend_from_slice(salt);
    let params = scrypt::Params::new(log_n, 8, 1, 32)
        // scrypt's errors do not implement std::error::Error: message only.
        .map_err(|e| Error::corrupt(format!("sasquatch: invalid scrypt parameters: {e}")))?;
    let mut key = Zeroizing::new([0u8; 32]);
    scrypt::scrypt(password, &full_salt, &params, key.as_mut_slice())
        .map_err(|e| Error::internal(format!("scrypt: {e}")))?;
    Ok(key)
}

/// A password recipient (Charm: the encrypt key text).
#[derive(Clone)]
pub struct ScryptRecipient {
    pub(crate) password: Zeroizing<Vec<u8>>,
    pub(crate) log_n: u8,
}

/// A password identity.
#[derive(Clone)]
pub struct ScryptIdentity {
    pub(crate) password: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for ScryptRecipient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScryptRecipient")
            .field("log_n", &self.log_n)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ScryptIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScryptIdentity").finish_non_exhaustive()
    }
}

impl ScryptRecipient {
    pub(crate) fn wrap(&self, file_key: &FileKey) -> Result<Stanza> {
        wrap(&self.password, self.log_n, file_key)
    }
}

impl ScryptIdentity {
    pub(crate) fn unwrap(&self, stanza: &Stanza) -> Result<Option<FileKey>> {
        unwrap(&self.password, stanza)
    }
}

fn wrap(password: &[u8], log_n: u8, file_key: &FileKey) -> Result<Stanza> {
    let mut salt = [0u8; SALT_SIZE];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let key = wrap_key(password, &salt, log_n)?;
    Ok(Stanza {
        kind: STANZA_TYPE.to_owned(),
        args: vec![b64_encode(&salt), log_n.to_string()],
        body: aead_wrap(&key, file_key),
    })
}

/// `Ok(None)` means "wrong password" (try the next identity), as Go's
/// `ErrIncorrectIdentity`; a malformed stanza is a hard error.
fn unwrap(password: &[u8], stanza: &Stanza) -> Result<Option<FileKey>> {
    let invalid = |why: &str| Error::corrupt(format!("sasquatch: invalid scrypt stanza: {why}"));
    let [salt, log_n] = stanza.args.as_slice() else {
        return Err(invalid("expected 2 arguments"));
    };
    let salt = b64_decode(salt.as_bytes()).ok_or_else(|| invalid("salt is not base64"))?;
    if salt.len() != SALT_SIZE {
        return Err(invalid("salt is not 16 bytes"));
    }
    // Go parses with strconv.Atoi, which also takes a sign and leading zeros.
    let log_n: i64 = log_n
        .parse()
        .map_err(|_| invalid("work factor is not an integer"))?;
    if log_n <= 0 {
        return Err(invalid("work factor must be positive"));
    }
    if log_n > i64::from(MAX_LOG_N) {
        return Err(invalid(&format!(
            "work factor 2^{log_n} exceeds the limit 2^{MAX_LOG_N}"
        )));
    }
    let key = wrap_key(password, &salt, log_n as u8)?;
    aead_unwrap(&key, &stanza.body)
}
