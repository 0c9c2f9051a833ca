//! Wrapping an encrypt key for an SSH public key, in the form a Charm server stores it
//! (`charm/client/crypt.go` v0.12.6): standard padded base64 of a sasquatch file whose
//! payload is the 88-character key text. Pure: no files, no network.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::crypto::sasquatch::{self, Identity, Recipient};
use crate::crypto::EncryptKey;
use crate::error::{Error, Result};

/// One wrapped key, as the server's `EncryptKey` JSON (without `public_key`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrappedKey {
    pub id: String,
    /// Standard base64 (padded) of a sasquatch file wrapping the key text.
    pub key: String,
    pub created_at: Option<String>,
}

/// Wraps `key` for `recipient` (an SSH public key).
pub fn wrap(key: &EncryptKey, recipient: &Recipient) -> Result<WrappedKey> {
    let file = sasquatch::encrypt(key.text().as_bytes(), std::slice::from_ref(recipient))?;
    Ok(WrappedKey {
        id: key.id().to_owned(),
        key: base64::engine::general_purpose::STANDARD.encode(file),
        created_at: key.created_at().map(str::to_owned),
    })
}

/// Unwraps one entry with `identity`. Not base64, not text, or tampered: `Corrupt`;
/// wrapped for another key: `Keys`.
pub fn unwrap(wrapped: &WrappedKey, identity: &Identity) -> Result<EncryptKey> {
    let file = base64::engine::general_purpose::STANDARD
        .decode(wrapped.key.trim())
        .map_err(|e| {
            Error::corrupt(format!("encrypt key {} is not base64", wrapped.id)).caused_by(e)
        })?;
    let text = sasquatch::decrypt(&file, std::slice::from_ref(identity)).map_err(|e| match e {
        e @ Error::Keys { .. } => e.reworded(|why| {
            format!("encrypt key {} is not wrapped for this SSH key ({why})", wrapped.id)
        }),
        other => other,
    })?;
    let text = String::from_utf8(text)
        // No source: a FromUtf8Error holds the bytes, here the unwrapped key.
        .map_err(|_| Error::corrupt(format!("encrypt key {} is not text", wrapped.id)))?;
    EncryptKey::from_text(wrapped.id.clone(), text, wrapped.created_at.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_identity() -> ssh_key::PrivateKey {
        ssh_key::PrivateKey::random(&mut rand::rngs::OsRng, ssh_key::Algorithm::Ed25519).unwrap()
    }

    #[test]
    fn round_trips_and_refuses_another_identity() {
        let ours = test_identity();
        let key = EncryptKey::generate();
        let wrapped = wrap(
            &key,
            &Recipient::from_public_key(ours.public_key()).unwrap(),
        )
        .unwrap();
        assert!(!wrapped.key.contains(&key.text()[..16]));
        let back = unwrap(&wrapped, &Identity::from_private_key(&ours).unwrap()).unwrap();
        assert_eq!((back.id(), back.text()), (key.id(), key.text()));

        let stranger =
            ssh_key::PrivateKey::random(&mut rand::rngs::OsRng, ssh_key::Algorithm::Ed25519)
                .unwrap();
        let err = unwrap(&wrapped, &Identity::from_private_key(&stranger).unwrap()).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Keys, "{err}");
    }

    #[test]
    fn damaged_entries_are_corrupt() {
        let identity = Identity::from_private_key(&test_identity()).unwrap();
        let bad = WrappedKey {
            id: "x".into(),
            key: "@@@".into(),
            created_at: None,
        };
        let err = unwrap(&bad, &identity).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Corrupt);
        // The decoder's error is the source, not only text in the message.
        let cause = crate::error::source_of::<base64::DecodeError>(&err).expect("base64 source");
        assert!(err.to_string().ends_with(&cause.to_string()), "{err}");
    }
}
