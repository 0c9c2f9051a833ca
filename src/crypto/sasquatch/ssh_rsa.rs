//! The `ssh-rsa` recipient: RSA-OAEP-SHA256 with a Charm label
//! (`muesli/sasquatch` `rsa.go`).

use rsa::traits::PublicKeyParts;
use rsa::{BigUint, Oaep, RsaPrivateKey, RsaPublicKey};

use crate::error::{Error, Result};

use super::header::Stanza;
use super::{ssh_tag, FileKey, FILE_KEY_SIZE};

pub(crate) const STANZA_TYPE: &str = "ssh-rsa";
const LABEL: &str = "charm.sh/v1/ssh-rsa";

/// Bounds on the modulus we accept. Go accepts any size; 16384 bits bounds the
/// cost of a hostile key, and 1024 bits is what OAEP-SHA256 of 16 bytes needs
/// with room to spare.
const MIN_BITS: usize = 1024;
const MAX_BITS: usize = 16384;

fn padding() -> Oaep {
    Oaep::new_with_label::<sha2::Sha256, _>(LABEL)
}

/// SSH mpint of a non-negative integer: minimal big-endian bytes, with a zero
/// byte prepended when the top bit is set (as Go's `ssh.Marshal` writes it).
fn put_mpint(out: &mut Vec<u8>, value: &BigUint) {
    let mut bytes = value.to_bytes_be();
    if bytes == [0] {
        bytes.clear();
    } else if bytes[0] & 0x80 != 0 {
        bytes.insert(0, 0);
    }
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(&bytes);
}

/// SSH wire form of an RSA public key: string "ssh-rsa", mpint e, mpint n. Built
/// from the numbers rather than copied from the input, so the tag is computed as
/// Go computes it even for a non-canonically encoded key.
fn wire(key: &RsaPublicKey) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + key.size());
    out.extend_from_slice(&(STANZA_TYPE.len() as u32).to_be_bytes());
    out.extend_from_slice(STANZA_TYPE.as_bytes());
    put_mpint(&mut out, key.e());
    put_mpint(&mut out, key.n());
    out
}

fn check_size(bits: usize) -> Result<()> {
    if !(MIN_BITS..=MAX_BITS).contains(&bits) {
        return Err(Error::invalid(format!(
            "ssh-rsa key of {bits} bits; supported sizes are {MIN_BITS} to {MAX_BITS}"
        )));
    }
    Ok(())
}

fn uint(m: &ssh_key::Mpint) -> Result<BigUint> {
    m.as_positive_bytes()
        .map(BigUint::from_bytes_be)
        .ok_or_else(|| Error::invalid("ssh-rsa key has a negative component"))
}

fn public_key(key: &ssh_key::public::RsaPublicKey) -> Result<RsaPublicKey> {
    let n = uint(&key.n)?;
    check_size(n.bits())?;
    RsaPublicKey::new_with_max_size(n, uint(&key.e)?, MAX_BITS)
        .map_err(|e| Error::invalid("invalid ssh-rsa public key").caused_by(e))
}

fn private_key(key: &ssh_key::private::RsaKeypair) -> Result<RsaPrivateKey> {
    let public = public_key(&key.public)?;
    let mut private = RsaPrivateKey::from_components(
        public.n().clone(),
        public.e().clone(),
        uint(&key.private.d)?,
        vec![uint(&key.private.p)?, uint(&key.private.q)?],
    )
    .map_err(|e| Error::keys("invalid ssh-rsa private key").caused_by(e))?;
    private
        .precompute()
        .map_err(|e| Error::keys("invalid ssh-rsa private key").caused_by(e))?;
    Ok(private)
}

/// An SSH RSA public key as a recipient.
#[derive(Clone)]
pub struct RsaRecipient {
    wire: Vec<u8>,
    key: RsaPublicKey,
}

/// An SSH RSA private key as an identity.
#[derive(Clone)]
pub struct RsaIdentity {
    wire: Vec<u8>,
    // Boxed: the CRT values make it several times larger than the other identities.
    key: Box<RsaPrivateKey>,
}

impl RsaRecipient {
    pub(crate) fn new(key: &ssh_key::public::RsaPublicKey) -> Result<Self> {
        let key = public_key(key)?;
        Ok(RsaRecipient {
            wire: wire(&key),
            key,
        })
    }

    pub(crate) fn wrap(&self, file_key: &FileKey) -> Result<Stanza> {
        wrap(&self.wire, &self.key, file_key)
    }
}

impl RsaIdentity {
    pub(crate) fn new(key: &ssh_key::private::RsaKeypair) -> Result<Self> {
        let key = private_key(key)?;
        Ok(RsaIdentity {
            wire: wire(&key.to_public_key()),
            key: Box::new(key),
        })
    }

    pub(crate) fn unwrap(&self, stanza: &Stanza) -> Result<Option<FileKey>> {
        unwrap(&self.key, &self.wire, stanza)
    }
}

impl std::fmt::Debug for RsaRecipient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RsaRecipient")
            .field("bits", &(self.key.size() * 8))
            .field("tag", &ssh_tag(&self.wire))
            .finish()
    }
}

impl std::fmt::Debug for RsaIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RsaIdentity")
            .field("tag", &ssh_tag(&self.wire))
            .finish_non_exhaustive()
    }
}

fn wrap(wire: &[u8], key: &RsaPublicKey, file_key: &FileKey) -> Result<Stanza> {
    let body = key
        .encrypt(&mut rand::rngs::OsRng, padding(), file_key.as_slice())
        .map_err(|e| Error::internal("RSA-OAEP encryption").caused_by(e))?;
    Ok(Stanza {
        kind: STANZA_TYPE.to_owned(),
        args: vec![ssh_tag(wire)],
        body,
    })
}

/// `Ok(None)`: the stanza is for another key. After a tag match a decryption
/// failure is a hard error, as in Go.
fn unwrap(key: &RsaPrivateKey, wire: &[u8], stanza: &Stanza) -> Result<Option<FileKey>> {
    let [tag] = stanza.args.as_slice() else {
        return Err(Error::corrupt(
            "sasquatch: invalid ssh-rsa stanza: expected 1 argument",
        ));
    };
    if *tag != ssh_tag(wire) {
        return Ok(None);
    }
    let failed = || {
        Error::corrupt(
            "sasquatch: ssh-rsa stanza matches this key but its file key does not decrypt",
        )
    };
    // Blinded, as Go's DecryptOAEP with a random source.
    let plain = zeroize::Zeroizing::new(
        key.decrypt_blinded(&mut rand::rngs::OsRng, padding(), &stanza.body)
            .map_err(|_| failed())?,
    );
    if plain.len() != FILE_KEY_SIZE {
        return Err(Error::corrupt(
            "sasquatch: ssh-rsa stanza holds a file key that is not 16 bytes",
        ));
    }
    let mut file_key = FileKey::default();
    file_key.copy_from_slice(&plain);
    Ok(Some(file_key))
}
