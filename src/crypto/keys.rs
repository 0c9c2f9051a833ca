//! Charm encrypt keys: the 88-character base64 text that every Charm client derives
//! its content, path and at-rest keys from (`charm/client/crypt.go`, `charm/crypt/crypt.go` v0.12.6).

use base64::Engine as _;
use rand::RngCore;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::{Error, Result};

/// Number of ASCII bytes of the key text used as a raw 32-byte key (AES-SIV lookup
/// fields, and the at-rest master key, as the Go client's `encryptKeyToBadgerKey`).
pub const RAW_KEY_LEN: usize = 32;

/// One Charm encrypt key. The key *is* its base64 text: the text bytes are the scrypt
/// password, and its first 32 ASCII bytes are the raw key. It is never base64-decoded.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct EncryptKey {
    id: String,
    text: String,
    created_at: Option<String>,
}

impl EncryptKey {
    /// Makes a new key the way the Go client does: 64 random bytes, standard base64
    /// with padding (88 characters), a random UUID v4 as id, no creation time yet.
    pub fn generate() -> Self {
        let mut raw = [0u8; 64];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        let text = base64::engine::general_purpose::STANDARD.encode(raw);
        raw.zeroize();
        EncryptKey {
            id: uuid::Uuid::new_v4().to_string(),
            text,
            created_at: None,
        }
    }

    /// Wraps an existing key text. The text must be at least 32 bytes long.
    pub fn from_text(
        id: impl Into<String>,
        text: impl Into<String>,
        created_at: Option<String>,
    ) -> Result<Self> {
        let key = EncryptKey {
            id: id.into(),
            text: text.into(),
            created_at,
        };
        if key.text.len() < RAW_KEY_LEN {
            return Err(Error::keys(format!(
                "encrypt key {} is {} bytes long; at least {RAW_KEY_LEN} are needed",
                key.id,
                key.text.len()
            )));
        }
        Ok(key)
    }

    /// The key's id (a UUID string on Charm servers).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The key text: the scrypt password of sasquatch content encryption.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// When the server recorded the key, as it sent it (opaque; `None` for a new key).
    pub fn created_at(&self) -> Option<&str> {
        self.created_at.as_deref()
    }

    /// The first 32 ASCII bytes of the text, as `encryptKeyToBadgerKey()` takes them.
    pub fn raw_key(&self) -> &[u8; RAW_KEY_LEN] {
        self.text.as_bytes()[..RAW_KEY_LEN]
            .try_into()
            .expect("length checked at construction")
    }
}

impl std::fmt::Debug for EncryptKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptKey")
            .field("id", &self.id)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_key_has_go_shape() {
        let key = EncryptKey::generate();
        assert_eq!(key.text().len(), 88);
        assert!(key.text().ends_with("=="));
        assert_eq!(key.raw_key(), &key.text().as_bytes()[..32]);
        assert_ne!(key.text(), EncryptKey::generate().text());
    }

    #[test]
    fn short_key_text_is_rejected() {
        let err = EncryptKey::from_text("id", "short", None).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Keys);
    }
}
