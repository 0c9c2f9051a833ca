//! The `ssh-ed25519` recipient: X25519 to the birational image of an Ed25519 key,
//! with the shared secret tweaked by the SSH key (`muesli/sasquatch` `ed25519.go`, `ssh.go`). Charm
//! wraps each encrypt key to the account's SSH keys with it.

use curve25519_dalek::edwards::CompressedEdwardsY;
use rand::RngCore;
use sha2::{Digest, Sha256, Sha512};
use x25519_dalek::{x25519, X25519_BASEPOINT_BYTES};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

use super::header::{b64_decode, b64_encode, Stanza};
use super::{aead_unwrap, aead_wrap, ssh_tag, FileKey};

pub(crate) const STANZA_TYPE: &str = "ssh-ed25519";
const LABEL: &[u8] = b"charm.sh/v1/ssh-ed25519";

/// SSH wire form of an Ed25519 public key: string "ssh-ed25519", string key.
pub(super) fn wire(public: &[u8; 32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(51);
    for field in [STANZA_TYPE.as_bytes(), public.as_slice()] {
        out.extend_from_slice(&(field.len() as u32).to_be_bytes());
        out.extend_from_slice(field);
    }
    out
}

/// The X25519 public key (Montgomery u) of an Ed25519 public key:
/// u = (1 + y) / (1 - y).
pub(super) fn montgomery_u(public: &[u8; 32]) -> Result<[u8; 32]> {
    let point = CompressedEdwardsY(*public)
        .decompress()
        .ok_or_else(|| Error::invalid("ssh-ed25519 public key is not a curve point"))?;
    Ok(point.to_montgomery().to_bytes())
}

/// The X25519 secret of an Ed25519 key: the first half of SHA-512(seed), as the
/// Ed25519 signing scalar before clamping (X25519 clamps).
pub(super) fn x25519_secret(seed: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    let mut digest = Sha512::digest(seed);
    let mut secret = Zeroizing::new([0u8; 32]);
    secret.copy_from_slice(&digest[..32]);
    zeroize::Zeroize::zeroize(digest.as_mut_slice());
    secret
}

fn hkdf32(ikm: &[u8], salt: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut out = Zeroizing::new([0u8; 32]);
    hkdf::Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(LABEL, out.as_mut_slice())
        .expect("32 bytes is a valid HKDF-SHA256 length");
    out
}

/// Shared secret tweaked with the recipient's SSH key, then the wrap key.
fn wrap_key(
    shared: &[u8; 32],
    wire: &[u8],
    share: &[u8; 32],
    recipient_u: &[u8; 32],
) -> Zeroizing<[u8; 32]> {
    let tweak = hkdf32(&[], wire);
    let tweaked = Zeroizing::new(x25519(*tweak, *shared));
    let mut salt = [0u8; 64];
    salt[..32].copy_from_slice(share);
    salt[32..].copy_from_slice(recipient_u);
    hkdf32(tweaked.as_slice(), &salt)
}

/// An SSH Ed25519 public key as a recipient.
#[derive(Clone)]
pub struct Ed25519Recipient {
    wire: Vec<u8>,
    montgomery_u: [u8; 32],
}

/// An SSH Ed25519 private key as an identity, kept as its X25519 secret.
#[derive(Clone)]
pub struct Ed25519Identity {
    wire: Vec<u8>,
    secret: Zeroizing<[u8; 32]>,
    montgomery_u: [u8; 32],
}

impl Ed25519Recipient {
    pub(crate) fn new(public: &[u8; 32]) -> Result<Self> {
        Ok(Ed25519Recipient {
            wire: wire(public),
            montgomery_u: montgomery_u(public)?,
        })
    }

    pub(crate) fn wrap(&self, file_key: &FileKey) -> Result<Stanza> {
        wrap(&self.wire, &self.montgomery_u, file_key)
    }
}

impl Ed25519Identity {
    pub(crate) fn new(public: &[u8; 32], seed: &[u8; 32]) -> Self {
        let secret = x25519_secret(seed);
        // The salt uses the u derived from the secret, as Go does; for a
        // consistent key pair it equals montgomery_u(public).
        let montgomery_u = x25519(*secret, X25519_BASEPOINT_BYTES);
        Ed25519Identity {
            wire: wire(public),
            secret,
            montgomery_u,
        }
    }

    pub(crate) fn unwrap(&self, stanza: &Stanza) -> Result<Option<FileKey>> {
        unwrap(&self.secret, &self.montgomery_u, &self.wire, stanza)
    }
}

impl std::fmt::Debug for Ed25519Recipient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ed25519Recipient")
            .field("tag", &ssh_tag(&self.wire))
            .finish()
    }
}

impl std::fmt::Debug for Ed25519Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ed25519Identity")
            .field("tag", &ssh_tag(&self.wire))
            .finish_non_exhaustive()
    }
}

fn wrap(wire: &[u8], recipient_u: &[u8; 32], file_key: &FileKey) -> Result<Stanza> {
    let mut ephemeral = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(ephemeral.as_mut_slice());
    let share = x25519(*ephemeral, X25519_BASEPOINT_BYTES);
    let shared = Zeroizing::new(x25519(*ephemeral, *recipient_u));
    if *shared == [0u8; 32] {
        // Go's X25519 refuses low-order points the same way.
        return Err(Error::invalid("ssh-ed25519 recipient is a low-order point"));
    }
    let key = wrap_key(&shared, wire, &share, recipient_u);
    Ok(Stanza {
        kind: STANZA_TYPE.to_owned(),
        args: vec![ssh_tag(wire), b64_encode(&share)],
        body: aead_wrap(&key, file_key),
    })
}

/// `Ok(None)`: the stanza is for another key. Once the tag matches, any failure
/// is a hard error, as in Go ("failed to decrypt file key").
fn unwrap(
    secret: &[u8; 32],
    our_u: &[u8; 32],
    wire: &[u8],
    stanza: &Stanza,
) -> Result<Option<FileKey>> {
    let invalid =
        |why: &str| Error::corrupt(format!("sasquatch: invalid ssh-ed25519 stanza: {why}"));
    let [tag, share] = stanza.args.as_slice() else {
        return Err(invalid("expected 2 arguments"));
    };
    // Go validates the share before looking at the tag; so do we.
    let share: [u8; 32] = b64_decode(share.as_bytes())
        .ok_or_else(|| invalid("share is not base64"))?
        .try_into()
        .map_err(|_| invalid("share is not 32 bytes"))?;
    if *tag != ssh_tag(wire) {
        return Ok(None);
    }
    let shared = Zeroizing::new(x25519(*secret, share));
    if *shared == [0u8; 32] {
        return Err(invalid("share is a low-order point"));
    }
    let key = wrap_key(&shared, wire, &share, our_u);
    match aead_unwrap(&key, &stanza.body)? {
        Some(file_key) => Ok(Some(file_key)),
        None => Err(Error::corrupt(
            "sasquatch: ssh-ed25519 stanza matches this key but its file key does not decrypt",
        )),
    }
}
