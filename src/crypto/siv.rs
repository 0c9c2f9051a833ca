//! AES-256-SIV (RFC 5297) for one string with no associated data, pre-keyed.
//!
//! Byte-identical to `aes_siv::siv::Aes256Siv::encrypt(&[], p)` (tested below), but the
//! CMAC and CTR keys are expanded once and `S2V`'s first step, `D = CMAC(0^128)`, is
//! computed once: database keys are short, and that setup was most of the cost of a
//! lookup. Safe to share between threads (`&self`).

use aes::cipher::{InnerIvInit, KeyInit, StreamCipher};
use aes::Aes256;
use cmac::{Cmac, Mac};
use subtle::ConstantTimeEq;

type Ctr = ctr::Ctr128BE<Aes256>;
type Aes256CtrCore = ctr::CtrCore<Aes256, ctr::flavors::Ctr128BE>;
const BLOCK: usize = 16;

pub struct DeterministicSiv {
    mac: Cmac<Aes256>,
    /// The CTR key, expanded once (the aes crate zeroizes round keys on drop).
    ctr_cipher: Aes256,
    /// `CMAC(0^128)`: S2V's running value `D` before the one and only string.
    d: [u8; BLOCK],
}

impl DeterministicSiv {
    /// `key` = CMAC key (first half) || CTR key (second half), as RFC 5297.
    pub fn new(key: &[u8; 64]) -> Self {
        let mac = <Cmac<Aes256> as Mac>::new_from_slice(&key[..32]).expect("32-byte key");
        let mut zero = mac.clone();
        zero.update(&[0u8; BLOCK]);
        let d = zero.finalize().into_bytes().into();
        let ctr_cipher = Aes256::new_from_slice(&key[32..]).expect("32-byte key");
        DeterministicSiv { mac, ctr_cipher, d }
    }

    /// `V || CTR(V, plaintext)`.
    pub fn encrypt(&self, plaintext: &[u8]) -> Vec<u8> {
        let v = self.s2v(plaintext);
        let mut out = Vec::with_capacity(BLOCK + plaintext.len());
        out.extend_from_slice(&v);
        out.extend_from_slice(plaintext);
        self.ctr(&v, &mut out[BLOCK..]);
        out
    }

    /// The plaintext, or `None` when `ciphertext` was not made with this key.
    pub fn decrypt(&self, ciphertext: &[u8]) -> Option<Vec<u8>> {
        if ciphertext.len() < BLOCK {
            return None;
        }
        let (v, body) = ciphertext.split_at(BLOCK);
        let v: [u8; BLOCK] = v.try_into().expect("split at 16");
        let mut plaintext = body.to_vec();
        self.ctr(&v, &mut plaintext);
        bool::from(self.s2v(&plaintext).ct_eq(&v)).then_some(plaintext)
    }

    /// S2V over the single string `p`.
    fn s2v(&self, p: &[u8]) -> [u8; BLOCK] {
        let mut mac = self.mac.clone();
        if p.len() >= BLOCK {
            // T = p xorend D
            let (head, tail) = p.split_at(p.len() - BLOCK);
            mac.update(head);
            let mut last = [0u8; BLOCK];
            for (i, b) in last.iter_mut().enumerate() {
                *b = tail[i] ^ self.d[i];
            }
            mac.update(&last);
        } else {
            // T = dbl(D) xor pad(p)
            let mut t = dbl(self.d);
            for (i, &b) in p.iter().enumerate() {
                t[i] ^= b;
            }
            t[p.len()] ^= 0x80;
            mac.update(&t);
        }
        mac.finalize().into_bytes().into()
    }

    fn ctr(&self, v: &[u8; BLOCK], data: &mut [u8]) {
        let mut iv = *v;
        // RFC 5297 §2.6: clear the 31st and 63rd bits (from the right) of V.
        iv[8] &= 0x7f;
        iv[12] &= 0x7f;
        let mut cipher = Ctr::from_core(Aes256CtrCore::inner_iv_init(
            self.ctr_cipher.clone(),
            (&iv).into(),
        ));
        cipher.apply_keystream(data);
    }
}

/// Doubling in GF(2^128) with the polynomial x^128 + x^7 + x^2 + x + 1.
fn dbl(block: [u8; BLOCK]) -> [u8; BLOCK] {
    let value = u128::from_be_bytes(block);
    let carry = (value >> 127) as u8;
    let doubled = (value << 1) ^ u128::from(carry * 0x87);
    doubled.to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes_siv::aead::KeyInit;

    #[test]
    fn matches_the_reference_implementation_at_every_length() {
        let key: [u8; 64] = core::array::from_fn(|i| (i * 7 + 3) as u8);
        let ours = DeterministicSiv::new(&key);
        let mut reference = aes_siv::siv::Aes256Siv::new(&key.into());
        for len in 0..80 {
            let p: Vec<u8> = (0..len).map(|i| (i * 13) as u8).collect();
            let expected = reference.encrypt(&[] as &[&[u8]], &p).unwrap();
            assert_eq!(ours.encrypt(&p), expected, "length {len}");
            assert_eq!(ours.decrypt(&expected).unwrap(), p);
        }
    }

    #[test]
    fn rfc5297_deterministic_vector_shape_and_tampering() {
        let ours = DeterministicSiv::new(&[1u8; 64]);
        let c = ours.encrypt(b"key");
        assert_eq!(c.len(), 19);
        for i in 0..c.len() {
            let mut bad = c.clone();
            bad[i] ^= 1;
            assert!(ours.decrypt(&bad).is_none(), "flip at {i} accepted");
        }
        assert!(ours.decrypt(&c[..15]).is_none());
        assert!(DeterministicSiv::new(&[2u8; 64]).decrypt(&c).is_none());
    }
}
